"""``gridmap lists``: a community's needs and resources lists from the office's sheets, the
counts per grid, and the resources that could meet a need."""

from __future__ import annotations

import argparse
import json

from gridmap.cli import checks
from gridmap.cli.checks import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``lists`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("lists", help="the needs, resources and projects lists (需求/资源/项目清单)")
    cmd.add_argument("action", choices=["import", "summary", "match"])
    cmd.add_argument("what", nargs="?", help="import: needs or resources; match: the need's id")
    cmd.add_argument("file", nargs="?", help="import: the sheet (.csv in UTF-8 or GBK, or .xlsx)")
    cmd.add_argument("--territory", metavar="CODE", help="import, summary: the territory")
    cmd.add_argument("--encoding", help="import: the CSV's encoding when it is not what it looks like")
    cmd.add_argument("--crs", choices=["4490", "gcj02"], help="import: the sheet's 经度/纬度 (default CGCS2000)")
    cmd.add_argument("--check", action="store_true", help="import: check every row, store nothing")
    cmd.add_argument("--report", metavar="FILE.csv", help="import: when refused, every problem here")
    cmd.add_argument("--within", type=float, metavar="METRES", help="match: how far a resource may be")
    cmd.add_argument("--json", action="store_true", help="summary, match: the whole answer as JSON")
    cmd.set_defaults(func=cmd_lists)


def cmd_lists(args: argparse.Namespace) -> int:
    from gridmap.services import lists

    engine = None
    if args.action == "import":
        if args.what not in ("needs", "resources") or not args.file or not args.territory:
            raise UserError("usage: gridmap lists import needs|resources FILE --territory CODE [--crs gcj02] [--check] / "
                            "用法：gridmap lists import needs|resources 文件 --territory 辖区代码")
        path = checks.input_file(args.file, f"{args.what} sheet")
        report = checks.output_file(args.report, "problem report") if args.report else None
        engine = checks.engine()
        checks.territory(engine, args.territory)
        from gridmap.sheets import SheetProblems

        try:
            done = lists.import_sheet(engine, args.territory, args.what, path, actor="cli", encoding=args.encoding,
                                      crs=args.crs, check=args.check)
        except SheetProblems as exc:
            if report is not None:
                checks.write_problems(report, exc.problems)
                raise UserError(f"{exc.en} (all {len(exc.problems)} problems in {report}) / {exc.zh}"
                                f"（全部 {len(exc.problems)} 处问题见 {report}）") from None
            raise
        verb = ("checked (nothing stored)", "已检查（未存储）") if args.check else ("taken", "已导入")
        print(f"{done['rows']} {args.what} rows {verb[0]}: {done['added']} added, {done['updated']} updated / "
              f"{verb[1]} {done['rows']} 行：新增 {done['added']}，更新 {done['updated']}")
        return 0
    if args.action == "summary":
        if not args.territory:
            raise UserError("usage: gridmap lists summary --territory CODE [--json] / "
                            "用法：gridmap lists summary --territory 辖区代码")
        engine = checks.engine()
        checks.territory(engine, args.territory)
        found = lists.summary(engine, args.territory)
        if args.json:
            print(json.dumps(found, ensure_ascii=False, indent=1))
            return 0
        t = found["totals"]
        print(f"{args.territory}: {t['open_needs']} open needs ({t['urgent_needs']} urgent), {t['resources']} active "
              f"resources / 待办需求 {t['open_needs']} 项（紧急 {t['urgent_needs']}），资源 {t['resources']} 项")
        for status, count in sorted(found["needs_by_status"].items()):
            print(f"  {count:>6}  {status}")
        return 0
    try:
        need_id = int(args.what or "")
    except ValueError:
        raise UserError("usage: gridmap lists match NEED_ID [--within METRES] / 用法：gridmap lists match 需求编号") from None
    engine = checks.engine()
    found = lists.matches(engine, need_id, within_m=args.within)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=1))
        return 0
    print(f"need {need_id} ({found['category']}): {len(found['resources'])} resources within {found['within_m']:.0f} m "
          f"or in its community / 需求 {need_id}：可匹配资源 {len(found['resources'])} 项")
    for r in found["resources"]:
        distance = "-" if r["distance_m"] is None else f"{r['distance_m']:.0f} m"
        print(f"  {r['resource_id']:>5}  {r['name']:<20} {distance:>8}  {r['kind']}  capacity / 容量 "
              f"{r['capacity'] or '-'}")
    return 0
