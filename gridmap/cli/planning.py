"""The commands that make draft plans and set their rules: ``gridmap partition`` (a territory into
grids), ``gridmap merge`` (departmental grid layers into one plan, 多网合一) and ``gridmap profile``
(the rules a territory follows)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.cli.checks import UserError
from gridmap.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add partition, merge and profile to the ``gridmap`` parser."""
    part = sub.add_parser("partition", help="partition a territory into grids (writes a draft plan); with --micro, "
                          "divide a draft's grids into micro-grids")
    part.add_argument("--territory", metavar="CODE", help="the territory to partition (not with --micro)")
    part.add_argument("--micro", action="store_true",
                      help="divide the grids of draft --plan ID into micro-grids (微网格) of the profile's micro band")
    part.add_argument("--plan", type=checks.positive_int, metavar="ID", help="--micro: the draft plan")
    part.add_argument("--grid", metavar="CODE", help="--micro: only this grid (its micro-grids are replaced)")
    _add_rule_arguments(part)
    part.add_argument("--seed", type=int, default=0)
    part.add_argument("--rebuild-units", action="store_true", help="rebuild units even if their inputs did not change (plans keep their own)")
    part.add_argument("--report", metavar="FILE.html", help="also write the partition report (works offline)")
    _add_placement_arguments(part)
    part.add_argument("--actor", default="cli")
    part.set_defaults(func=cmd_partition, usage_error=part.error)

    mer = sub.add_parser("merge", help="merge departmental grid layers into one draft plan (多网合一)")
    mer.add_argument("--territory", required=True, metavar="CODE")
    mer.add_argument("files", nargs="+", help="one GIS file per department (or with a department column)")
    mer.add_argument("--id-field", help="column with the department's own grid id (default: grid_id, id, 编号 ...)")
    mer.add_argument("--crs", help="CRS of files that do not declare one (e.g. gcj02)")
    mer.add_argument("--access-list", metavar="FILE", help="duty codes allowed for grid workers, one per line")
    _add_rule_arguments(mer)
    mer.add_argument("--seed", type=int, default=0)
    _add_placement_arguments(mer)
    mer.add_argument("--actor", default="cli")
    mer.set_defaults(func=cmd_merge)

    prof = sub.add_parser("profile", help="the rules a territory follows (bands, codes, road classes ...)")
    prof.add_argument("action", choices=["presets", "show", "set", "unset"])
    prof.add_argument("profile", nargs="?", metavar="NAME|FILE.toml", help="show, set: a preset or a TOML file")
    prof.add_argument("--territory", metavar="CODE", help="show: the profile it follows; set, unset: its own")
    prof.add_argument("--toml", action="store_true", help="show: print every rule as TOML (a file to edit)")
    prof.add_argument("--actor", default="cli")
    prof.set_defaults(func=cmd_profile)


def _add_placement_arguments(command: argparse.ArgumentParser) -> None:
    """--scheduler, --local-workers: where a partition's or a merge's pieces are cut."""
    where = command.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:8786",
                       help="cut the pieces on this Dask scheduler's workers (default: GRIDMAP_DASK_SCHEDULER; "
                            "else a local Dask cluster from GRIDMAP_DASK_MIN_UNITS units, 50,000 by default)")
    where.add_argument("--local-workers", type=checks.non_negative_int, metavar="N",
                       help="cut the pieces on a local Dask cluster of N worker processes (0: serially, here)")


def _add_rule_arguments(command: argparse.ArgumentParser) -> None:
    """--profile, --min, --max: which rules a partition or merge runs with."""
    command.add_argument("--profile", metavar="NAME|FILE.toml",
                         help="the rules to use: a preset (default, db11-2157, cjt-349) or a TOML file "
                              "(default: the territory's profile, see `gridmap profile`)")
    command.add_argument("--min", type=checks.positive_int,
                         help="minimum households per grid (default: the profile's, 300)")
    command.add_argument("--max", type=checks.positive_int,
                         help="maximum households per grid (default: the profile's, 500)")


def cmd_partition(args: argparse.Namespace) -> int:
    from gridmap.services.partitioning import partition_territory

    if args.micro:
        return _partition_micro(args)
    if args.plan is not None or args.grid is not None:  # usage mistakes: one line, exit status 2
        args.usage_error("--plan and --grid go with --micro (gridmap partition --micro --plan ID [--grid CODE]) / "
                         "--plan 与 --grid 须与 --micro 一起使用")
    if not args.territory:
        args.usage_error("the following arguments are required: --territory (or --micro --plan ID) / "
                         "请给出 --territory 辖区代码（或 --micro --plan 方案编号）")
    checks.household_band(args.min, args.max)
    report = checks.output_file(args.report, "--report") if args.report else None
    engine = checks.engine()
    place = checks.territory(engine, args.territory)
    try:
        summary = partition_territory(engine, args.territory, profile=args.profile, min_households=args.min,
                                      max_households=args.max, seed=args.seed, author=args.actor,
                                      rebuild_units=args.rebuild_units, progress=Progress(total=None),
                                      placement=_placement(args))
    except ConnectionError as exc:  # the Dask scheduler named cannot be reached: nothing stored
        raise UserError(checks.said(exc, "无法连接 Dask 调度器（--scheduler），未保存任何内容")) from exc
    print(summary)
    print(summary.zh())
    if report is not None:
        from gridmap.web.reports import partition_report_html

        html_text = partition_report_html(summary.result.grids, summary.result.report, summary.result.flags,
                                          title=(f"{place.name}（{args.territory}）· 方案草稿 {summary.version}",
                                                 f"{place.name} ({args.territory}) · draft plan {summary.version}"),
                                          standalone=True)
        try:
            report.write_text(html_text, encoding="utf-8")
        except OSError as exc:  # checked writable above; a full disk is still possible
            raise UserError(f"draft plan {summary.version} (id {summary.plan_id}) is stored, but its report could "
                            f"not be written to {args.report} ({exc.strerror or exc}); the planner shows it at "
                            f"/plans/{summary.plan_id}/report / 草稿方案 {summary.version}（编号 {summary.plan_id}）"
                            f"已保存，但报告未能写入 {args.report}；可在规划页面 /plans/{summary.plan_id}/report "
                            "查看报告") from exc
        print(f"report written to {args.report} / 报告已写入 {args.report}")
    return 0


def _placement(args: argparse.Namespace):
    """Where the pieces run: ``--scheduler`` / ``--local-workers``, else the settings."""
    from gridmap.distributed import Placement
    from gridmap.settings import Settings

    return Placement.of(Settings.from_env(), scheduler=args.scheduler, local_workers=args.local_workers)


def _partition_micro(args: argparse.Namespace) -> int:
    """``gridmap partition --micro --plan ID [--grid CODE]``: micro-grids of a draft's grids."""
    from gridmap.errors import Refusal
    from gridmap.services.microgrids import divide_plan

    if args.plan is None:
        args.usage_error("--micro needs --plan ID (a draft plan) / --micro 须给出 --plan 方案编号（草稿）")
    if args.territory or args.min or args.max or args.profile or args.report or args.rebuild_units:
        args.usage_error("--micro takes --plan, --grid, --seed, --scheduler and --local-workers only: the band is "
                         "the plan's profile's micro_band / --micro 只接受 --plan、--grid、--seed、--scheduler、"
                         "--local-workers：户数区间取方案规则中的 micro_band")
    engine = checks.engine()
    try:
        summary = divide_plan(engine, args.plan, grid=args.grid, seed=args.seed, actor=args.actor,
                              progress=Progress(total=None), placement=_placement(args))
    except Refusal as exc:
        raise UserError(checks.said(exc)) from exc
    except ConnectionError as exc:  # the Dask scheduler named cannot be reached: nothing stored
        raise UserError(checks.said(exc, "无法连接 Dask 调度器（--scheduler），未保存任何内容")) from exc
    print(summary)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from gridmap.services.merging import merge_files

    checks.household_band(args.min, args.max)
    files = [checks.input_file(f, "departmental file") for f in args.files]
    checks.crs(args.crs)
    access = None
    if args.access_list:
        path = checks.input_file(args.access_list, "--access-list")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"--access-list {args.access_list} is not UTF-8 text ({exc.reason}); save it as "
                            f"UTF-8, one duty code per line / --access-list {args.access_list} 不是 UTF-8 编码的文本："
                            "请另存为 UTF-8，每行一个职责代码") from exc
        access = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    engine = checks.engine()
    checks.territory(engine, args.territory)
    try:
        summary = merge_files(engine, args.territory, files, crs=args.crs, id_field=args.id_field,
                              profile=args.profile, min_households=args.min, max_households=args.max,
                              access_list=access, seed=args.seed, author=args.actor, progress=Progress(),
                              placement=_placement(args))
    except ConnectionError as exc:  # the Dask scheduler named cannot be reached: nothing stored
        raise UserError(checks.said(exc, "无法连接 Dask 调度器（--scheduler），未保存任何内容")) from exc
    print(summary)
    print(summary.zh())
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """The rules a territory follows: list the presets, show one (or a territory's), set or unset it."""
    from gridmap.geo.profile import PRESETS, load
    from gridmap.services import profiles

    if args.action == "presets":
        for name, preset in PRESETS.items():
            lo, hi = preset.band
            mlo, mhi = preset.micro_band
            print(f"{name:<10} {preset.title_zh} / {preset.title_en}; {lo}–{hi} households, "
                  f"micro-grids {mlo}–{mhi}, codes {preset.partition.code_scheme.name} / "
                  f"网格 {lo}–{hi} 户，微网格 {mlo}–{mhi} 户，编码 {preset.partition.code_scheme.name}")
        return 0
    if args.action == "show":
        if args.territory:
            engine = checks.engine()
            checks.territory(engine, args.territory)
            with engine.connect() as conn:
                profile = profiles.of_territory(conn, args.territory)
        else:
            profile = load(args.profile)
        if args.toml:
            print(profile.to_toml(), end="")
        else:
            d = profile.describe()
            (lo, hi), (mlo, mhi) = d["band"], d["micro_band"]
            print(f"{d['name']}: {d['title_zh']} / {d['title_en']}; {lo}–{hi} households per grid, "
                  f"{mlo}–{mhi} per micro-grid, grid codes {d['code_scheme']} (--toml prints every rule)")
            print(f"  每个网格 {lo}–{hi} 户，每个微网格 {mlo}–{mhi} 户，网格编码 {d['code_scheme']}（--toml 列出全部规则）")
        return 0
    if not args.territory:
        raise UserError(f"profile {args.action} needs --territory CODE / 请给出 --territory 辖区代码")
    if args.action == "set" and not args.profile:
        raise UserError("profile set needs a preset name or a TOML file (`gridmap profile presets` lists the presets) "
                        "/ 请给出预设规则名或 TOML 文件（`gridmap profile presets` 列出预设）")
    engine = checks.engine()
    checks.territory(engine, args.territory)
    profile = profiles.set_for_territory(engine, args.territory, args.profile if args.action == "set" else None,
                                         actor=args.actor)
    if profile is None:
        print(f"territory {args.territory} follows its parent's profile again")
        print(f"  辖区 {args.territory} 恢复沿用上级的规则")
    else:
        lo, hi = profile.band
        print(f"territory {args.territory} (and those under it without their own) now follows profile "
              f"{profile.name}: {lo}–{hi} households per grid")
        print(f"  辖区 {args.territory}（及其下未设自己规则的辖区）现采用规则 {profile.name}：每个网格 {lo}–{hi} 户")
    return 0
