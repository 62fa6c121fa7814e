"""The commands for running a territory day to day: ``gridmap incidents`` (the category table; the
supervision pass, for cron) and ``gridmap stations`` (service stations: types, import, coverage)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.cli.checks import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add incidents and stations to the ``gridmap`` parser."""
    inc = sub.add_parser("incidents", help="the incident loop: categories, the supervision pass (cron), archiving, "
                                           "the dashboard's monthly rollups, the table's monthly partitions")
    inc.add_argument("action", choices=["categories", "escalate", "archive", "rollups", "partitions"])
    inc.add_argument("--reload", action="store_true",
                     help="categories: load the shipped category and question tables again (after editing "
                          "gridmap/data/incident_categories.csv or incident_category_attributes.csv)")
    inc.add_argument("--territory", metavar="CODE", help="archive: the territory whose incidents are archived")
    inc.add_argument("--before", type=checks.iso_date, metavar="YYYY-MM-DD",
                     help="archive: finished incidents reported before this day (the city's time zone)")
    inc.add_argument("--out", metavar="FILE.gpkg", help="archive: the GeoPackage to write (never overwritten)")
    inc.add_argument("--with-contacts", action="store_true",
                     help="archive: keep the reporters' names and contacts in the file (left out by default)")
    inc.add_argument("--dry-run", action="store_true", help="archive: count only; write and remove nothing")
    inc.add_argument("--rebuild", action="store_true",
                     help="rollups: work the monthly rollups out again from the incidents (they are checked otherwise)")
    inc.add_argument("--actor", default="cli")
    inc.set_defaults(func=cmd_incidents)

    sta = sub.add_parser("stations", help="service stations: types, import, 15-minute coverage")
    sta.add_argument("action", choices=["types", "import", "coverage"])
    sta.add_argument("file", nargs="?", help="import: a point file (any format import reads)")
    sta.add_argument("--territory", metavar="CODE", default="990100")
    sta.add_argument("--type-field", default="station_type")
    sta.add_argument("--name-field", default="name")
    sta.add_argument("--type", help="import: the type of every station when the file has no type column")
    sta.add_argument("--crs", help="import: CRS when the file has none (EPSG code or gcj02)")
    sta.add_argument("--minutes", type=checks.positive_float, default=15.0)
    sta.set_defaults(func=cmd_stations)


def cmd_incidents(args: argparse.Namespace) -> int:
    from gridmap.services import incidents
    from gridmap.store import incidents as store

    engine = checks.engine()
    if args.action == "categories":
        incidents.ensure_categories(engine, reload=args.reload)
        with engine.connect() as conn:
            for c in store.categories(conn):
                print(f"{c.code}  {c.name_zh} / {c.name_en}  -> {c.department_zh} ({c.department_code})  "
                      f"{c.time_limit:g} {c.time_unit.replace('_', ' ')}"
                      + (f"  asks: {', '.join(a.code + ('*' if a.required else '') for a in c.attributes)}"
                         if c.attributes else ""))
    elif args.action == "escalate":
        from gridmap.services import emergencies, whistles

        changed = incidents.escalate_overdue(engine, actor="cli")
        print(f"{len(changed)} incidents escalated / 督办升级事件 {len(changed)} 件")
        for c in changed:
            print(f"  {c['public_id']} -> level {c['level']} / 升至第 {c['level']} 级")
        missed = emergencies.sweep(engine, actor="cli")  # while an emergency is on: run this every minute
        late = whistles.sweep(engine, actor="cli")
        _say_months(incidents.make_months_ahead(engine), quiet=True)
        if missed or late:
            print(f"{len(missed)} missed check-ins and {len(late)} late departments escalated / "
                  f"未按时签到升级 {len(missed)} 个网格，吹哨未按时响应或报到升级 {len(late)} 个部门")
    elif args.action == "archive":
        return _archive(args, engine)
    elif args.action == "rollups":
        return _rollups(engine, rebuild=args.rebuild)
    elif args.action == "partitions":
        _partitions(engine)
    return 0


def _say_months(made: int | None, *, quiet: bool = False) -> None:
    """What making the months ahead did (``quiet``: nothing said when nothing was to be made)."""
    if made is None:
        print("the incidents table is busy (a long transaction holds it): the months ahead are made at the next "
              "pass / 事件表正忙（有长事务占用）：下次运行时再新建月分区")
    elif made or not quiet:
        print(f"{made} monthly partitions made ahead / 新建月分区 {made} 个")


def _partitions(engine) -> None:
    """``gridmap incidents partitions``: the months ahead made where missing and the table's
    statistics refreshed (autovacuum never analyses the partitioned table as a whole: run this
    monthly from cron), then every monthly partition with its incidents and size, and the months
    whose reports are in the default one."""
    from gridmap.services import incidents
    from gridmap.store import incident_partitions

    _say_months(incidents.make_months_ahead(engine))
    with engine.begin() as conn:
        if not incident_partitions.analyse(conn):
            print("the table's statistics were not refreshed (a month was being made): run this again / "
                  "事件表统计信息未更新（正在新建月分区）：请再运行一次")
        listed = incident_partitions.listing(conn)
        stray = incident_partitions.default_months(conn)
    for part in listed:
        month = part.month.strftime("%Y-%m") if part.month else "default / 默认"
        print(f"{part.name:<20} {month:<14} {part.rows:>10} incidents / 件  {part.bytes / 2**20:9.1f} MiB")
    for month, count in stray.items():
        print(f"  {month:%Y-%m}: {count} incidents in the default partition (reported before the month had one) / "
              f"{count} 件在默认分区（上报时该月尚无分区）")


def _rollups(engine, *, rebuild: bool) -> int:
    """``gridmap incidents rollups [--rebuild]``: the dashboard's monthly rollups checked against
    the incidents (exit 1 when they differ), or worked out again."""
    from gridmap.store import incident_rollups

    if rebuild:
        with engine.begin() as conn:
            incident_rollups.rebuild(conn)
        print("the monthly rollups were worked out again from the incidents / 已按事件重新汇总各月统计")
        return 0
    differ = incident_rollups.check(engine)
    for table, count in differ.items():
        print(f"{table}: {count} keys differ from the incidents / {count} 项与事件不一致")
    if any(differ.values()):
        print("run `gridmap incidents rollups --rebuild` / 请运行 `gridmap incidents rollups --rebuild`")
        return 1
    print("the monthly rollups agree with the incidents / 各月统计与事件一致")
    return 0


def _archive(args: argparse.Namespace, engine) -> int:
    """``gridmap incidents archive --territory CODE --before DATE --out FILE.gpkg``."""
    from gridmap.errors import Refusal
    from gridmap.services.archiving import archive_incidents

    if not args.territory or args.before is None or (args.out is None and not args.dry_run):
        raise UserError("archive needs --territory CODE, --before YYYY-MM-DD and --out FILE.gpkg (or --dry-run) / "
                        "归档须给出 --territory 辖区代码、--before 日期 和 --out 文件（或 --dry-run）")
    checks.territory(engine, args.territory)
    out = None if args.dry_run else checks.output_file(args.out, "--out")
    try:
        summary = archive_incidents(engine, args.territory, args.before, out, with_contacts=args.with_contacts,
                                    actor=args.actor)
    except Refusal as exc:
        raise UserError(checks.said(exc)) from exc
    print(summary)
    print(summary.zh())
    return 0


def cmd_stations(args: argparse.Namespace) -> int:
    from gridmap.services import stations

    if args.file and args.action != "import":
        raise UserError(f"`gridmap stations {args.action}` takes no FILE (only import does) / 只有 import 需要文件参数")
    if args.action == "types":
        for t in stations.station_types():
            print(f"{t['code']:<24} {t['name_zh']} / {t['name_en']}")
        return 0
    if args.action == "import":
        if not args.file:
            raise UserError("usage: gridmap stations import FILE --territory CODE [--type TYPE] / "
                            "用法：gridmap stations import 文件 --territory 辖区代码 [--type 站点类型]")
        path = checks.input_file(args.file)
        checks.crs(args.crs)
        if args.type is not None and args.type not in stations.TYPE_CODES:
            raise UserError(f"unknown station type --type {args.type!r}; `gridmap stations types` lists them / "
                            f"没有站点类型 {args.type}，`gridmap stations types` 列出全部类型")
    engine = checks.engine()
    checks.territory(engine, args.territory)
    try:
        if args.action == "import":
            from gridmap.geo.io import read_vector

            frame = read_vector(path, crs=args.crs).frame
            n = stations.import_stations(engine, args.territory, frame, type_column=args.type_field,
                                         name_column=args.name_field, default_type=args.type)
            print(f"{n} stations imported into {args.territory} / 已导入 {n} 个站点到辖区 {args.territory}")
        elif args.action == "coverage":
            report = stations.coverage(engine, args.territory, minutes=args.minutes)
            for code, t in report["types"].items():
                share = "-" if t["share"] is None else f"{t['share']:.1%}"
                print(f"{code:<24} {t['stations']:>4} stations  {share:>6} of households within {args.minutes:g} min / "
                      f"{t['stations']} 个站点，{args.minutes:g} 分钟内覆盖 {share} 的住户")
            below = len(report["underserved"])
            print(f"{below} (grid, type) pairs below {report['threshold']:.0%} / "
                  f"{below} 个（网格，站点类型）组合的覆盖低于 {report['threshold']:.0%}")
    except stations.StationError as exc:
        raise UserError(checks.said(exc)) from exc
    return 0
