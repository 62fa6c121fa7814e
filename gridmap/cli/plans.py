"""The commands on stored plans: ``gridmap plan`` (drafts, edits, validation, diff, publish, revert,
history, deleting a draft) and ``gridmap export`` (a plan written for a government GIS system)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.cli.checks import UserError
from gridmap.progress import Progress

SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}  # `plan validate`'s problem lines
LAYER_ZH = {"grids": "网格", "units": "单元", "microgrids": "微网格", "stations": "站点", "incidents": "事件",
            "crosswalk": "对照表"}  # `export`'s counts


def register(sub: argparse._SubParsersAction) -> None:
    """Add plan and export to the ``gridmap`` parser."""
    pln = sub.add_parser("plan", help="drafts, edits, validation, diff, publish, revert, history, delete a draft")
    pln.add_argument("action", choices=["draft", "edits", "validate", "diff", "publish", "revert", "history", "delete"])
    pln.add_argument("target", help="territory CODE (draft, history) or plan ID (the others)")
    pln.add_argument("file", nargs="?", help="edits: a JSON file {version, operations: [...]}")
    pln.add_argument("--source", help="draft: copy this plan id instead of the published plan")
    pln.add_argument("--publish", action="store_true", help="revert: publish the restored plan at once")
    pln.add_argument("--actor", default="cli")
    pln.set_defaults(func=cmd_plan)

    mic = sub.add_parser("microgrid", help="a plan's micro-grids (微网格): list them, record their leaders (楼栋长/单元长)")
    mic.add_argument("action", choices=["list", "leader"])
    mic.add_argument("plan", type=checks.positive_int, metavar="PLAN_ID")
    mic.add_argument("code", nargs="?", metavar="MICROGRID_CODE",
                     help="leader: the micro-grid; list: its buildings and 单元 with their 楼栋长 and 单元长")
    mic.add_argument("--grid", metavar="CODE", help="list: only this grid's micro-grids")
    mic.add_argument("--building", metavar="ID|NAME", help="leader: a building of the micro-grid (its id or 楼栋号): its 楼栋长, for all its 单元 "
                     "wherever they lie")
    mic.add_argument("--unit", type=checks.positive_int, metavar="K", help="leader: with --building, the 单元长 of its 单元 K (a building this plan cuts into 单元)")
    mic.add_argument("--name", help="leader: the leader's name (empty clears it; left out: kept)")
    mic.add_argument("--phone", help="leader: the leader's phone (personal data: never on public endpoints; "
                                     "empty clears it; left out: kept)")
    mic.add_argument("--actor", default="cli")
    mic.set_defaults(func=cmd_microgrid)

    exp = sub.add_parser("export", help="write a plan for a government GIS system (shp, gpkg, gdb, geojson, kml, csv) "
                                        "or an analyst (parquet)")
    exp.add_argument("--territory", required=True, metavar="CODE")
    exp.add_argument("--format", required=True, choices=["shp", "gpkg", "gdb", "geojson", "kml", "csv", "parquet"],
                     help="gdb: an Esri File Geodatabase (zipped folder) for ArcGIS; parquet: GeoParquet")
    exp.add_argument("--crs", default="4490",
                     help="4490 (CGCS2000, default), 4326, gk3 (3-degree Gauss-Krüger zone with zone prefix, "
                          "EPSG:4513-4533), gk3-cm (without, EPSG:4534-4554), gcj02, or any EPSG code")
    exp.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"], help="attribute text (shp, csv)")
    exp.add_argument("--plan", default="published", help="published (default), draft, or a version number")
    exp.add_argument("--layers", default="grids", help="comma list of grids,units,microgrids,stations,incidents,crosswalk")
    exp.add_argument("--out", required=True, metavar="PATH")
    exp.set_defaults(func=cmd_export)

    prn = sub.add_parser("print", help="a community's wall map of grids (A4/A3, PDF/PNG) with codes, households, legend")
    prn.add_argument("--community", required=True, metavar="CODE")
    prn.add_argument("--plan", default="published", help="published (default), draft, or a version number")
    prn.add_argument("--paper", default="A4", choices=["A4", "A3"])
    prn.add_argument("--lang", default="zh", choices=["zh", "en"], help="language of the sheet (default Chinese)")
    prn.add_argument("--out", required=True, metavar="PATH", help="a .pdf or .png file (the suffix picks the format)")
    prn.set_defaults(func=cmd_print)


def _edits_file(path_text: str | None) -> tuple[list, int | None]:
    """The operations (and the version they were made against) of a `plan edits` JSON file."""
    import json

    if not path_text:
        raise UserError("usage: gridmap plan edits ID FILE.json (a JSON file {version, operations: [...]}) / "
                        "用法：gridmap plan edits 方案编号 文件.json（JSON 文件 {version, operations: [...]}）")
    path = checks.input_file(path_text, "edits file")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"edits file {path_text} is not UTF-8 text ({exc.reason}) / "
                        f"编辑文件 {path_text} 不是 UTF-8 编码的文本，请另存为 UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"edits file {path_text} is not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno} / 编辑文件 {path_text} 不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} "
                        "列有误") from exc
    if isinstance(body, list):
        ops, version = body, None
    elif isinstance(body, dict) and isinstance(body.get("operations"), list):
        ops, version = body["operations"], body.get("version")
    else:
        raise UserError(f"edits file {path_text} needs {{\"version\": N, \"operations\": [...]}} or a list of "
                        f"operations / 编辑文件 {path_text} 应为 {{\"version\": N, \"operations\": [...]}} 或一组编辑操作")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UserError(f"edits file {path_text}: \"version\" must be a whole number (the draft version the edits "
                        f"were made against) / 编辑文件 {path_text}：\"version\" 须为整数（这些编辑所依据的草稿版本）")
    if not ops or not all(isinstance(op, dict) for op in ops):
        raise UserError(f"edits file {path_text}: \"operations\" must be a non-empty list of objects such as "
                        "{\"op\": \"assign\", \"units\": [...], \"grid\": \"...\"} / "
                        f"编辑文件 {path_text}：\"operations\" 须为非空的对象列表，如 "
                        "{\"op\": \"assign\", \"units\": [...], \"grid\": \"...\"}")
    return ops, version


def cmd_plan(args: argparse.Namespace) -> int:
    """Check the arguments (and read an edits file) before the database is touched, then act."""
    from gridmap.services import planning

    if args.file and args.action != "edits":
        raise UserError(f"`gridmap plan {args.action}` takes no FILE (only edits does) / 只有 edits 需要文件参数")
    if args.source and args.action != "draft":
        raise UserError("--source is for `gridmap plan draft` only / --source 只用于 `gridmap plan draft`")
    if args.publish and args.action != "revert":
        raise UserError("--publish is for `gridmap plan revert` only / --publish 只用于 `gridmap plan revert`")
    by_territory = args.action in ("draft", "history")
    plan_id = None if by_territory else checks.plan_id(args.target)
    source = "published"
    if args.source:
        source = checks.plan_id(args.source)
    ops, version = _edits_file(args.file) if args.action == "edits" else (None, None)
    engine = checks.engine()
    if by_territory:
        checks.territory(engine, args.target)
    try:
        return _plan_action(args, engine, plan_id, source, ops, version)
    except planning.VersionConflict as exc:
        raise UserError(f"{exc.en}; see `gridmap plan history`, then make the edits against the current version / "
                        f"{exc.zh}（可用 `gridmap plan history` 查看各版本，再按当前版本重做编辑）") from exc
    except (planning.EditError, LookupError) as exc:
        raise UserError(checks.said(exc)) from exc


def _plan_action(args: argparse.Namespace, engine, plan_id: int | None, source: int | str, ops: list | None,
                 version: int | None) -> int:
    """Do one checked `gridmap plan` action; the status is 1 only for a plan that does not validate."""
    import json

    from gridmap.services import planning

    if args.action == "draft":
        plan_id, version = planning.new_draft(engine, args.target, actor=args.actor, source=source)
        print(f"draft plan {version} (id {plan_id}) of {args.target} / 辖区 {args.target} 的方案草稿 {version}"
              f"（编号 {plan_id}）")
    elif args.action == "history":
        for row in planning.history(engine, args.target):
            print(_history_line(row))
    elif args.action == "edits":
        result = planning.apply_edits(engine, plan_id, ops, version=version, actor=args.actor)
        print(json.dumps(result.as_dict()["summary"], default=str))
        if result.microgrids:
            print(f"{result.microgrids['message']}\n{result.microgrids['message_zh']}")
    elif args.action == "validate":
        report = planning.validate(engine, plan_id)
        for p in report["problems"]:
            print(f"{p['severity']:<8} {p['kind']:<16} {p['message_en']}")
            print(f"  {SEVERITY_ZH.get(p['severity'], p['severity'])}：{p['message_zh']}")
        print(f"{report['errors']} errors, {report['warnings']} warnings / {report['errors']} 个错误，"
              f"{report['warnings']} 个警告")
        return 0 if report["valid"] else 1
    elif args.action == "diff":
        d = planning.diff(engine, plan_id)
        added, removed, changed = len(d["added"]), len(d["removed"]), len(d["changed"])
        print(f"against plan {d['against']}: {added} grids added, {removed} removed, {changed} changed, "
              f"{d['units_moved']} units moved")
        print(f"  与方案 {d['against']} 相比：新增 {added} 个网格，删除 {removed} 个，改变 {changed} 个，"
              f"移动 {d['units_moved']} 个单元")
    elif args.action == "publish":
        out = planning.publish(engine, plan_id, version=None, actor=args.actor)
        print(f"plan {out['id']} published; previous published plan: {out['previous'] or 'none'} / "
              f"方案 {out['id']} 已发布；此前发布的方案：{out['previous'] or '无'}")
    elif args.action == "revert":
        out = planning.revert(engine, plan_id, actor=args.actor, publish_now=args.publish)
        print(f"new draft {out['plan_id']} from plan {plan_id}" + (" (published)" if out["published"] else "")
              + f" / 由方案 {plan_id} 恢复为新草稿 {out['plan_id']}" + ("（已发布）" if out["published"] else ""))
    elif args.action == "delete":
        out = planning.delete_draft(engine, plan_id, actor=args.actor)
        print(f"deleted draft plan {out['version']} (id {plan_id}) of {out['territory']}: {out['grids']} grids, "
              f"{out['edits']} saved edits; {out['units_deleted']} units made for it alone")
        print(f"  已删除辖区 {out['territory']} 的方案草稿 {out['version']}（编号 {plan_id}）：{out['grids']} 个网格，"
              f"{out['edits']} 条已保存的编辑；仅为它构建的 {out['units_deleted']} 个单元")
    return 0


def _history_line(row: dict) -> str:
    """One plan of `plan history`: the English columns, then the same in Chinese after `` / ``."""
    from gridmap.store.plans import ORIGIN_ZH, STATUS_ZH

    origin = row["origin"] or ""
    valid_from, valid_to = row["valid_from"] or "-", row["valid_to"] or "-"
    return (f"plan {row['id']:<5} v{row['version']:<4} {row['status']:<10} {origin:<10} "
            f"{row['grids']:>5} grids  valid {valid_from} .. {valid_to} / "
            f"{STATUS_ZH.get(row['status'], row['status'])} {ORIGIN_ZH.get(origin, origin)} "
            f"{row['grids']} 个网格 有效期 {valid_from} 至 {valid_to}")


def cmd_export(args: argparse.Namespace) -> int:
    import re

    from gridmap.geo.crs import CRSError, output_crs
    from gridmap.services.exporting import ExportRequest, export_territory, parse_layers

    if not re.fullmatch(r"published|draft|[0-9]{1,9}", args.plan):
        raise UserError(f"--plan {args.plan!r}: give published, draft or a version number / "
                        f"--plan {args.plan}：应为 published（已发布）、draft（草稿）或版本号")
    layers = parse_layers(args.layers)
    try:
        target = output_crs(args.crs, 116.4, 39.9)  # the zone of gk3 does not matter for the check
    except CRSError:
        raise UserError(f"unknown --crs {args.crs!r}; choose 4490, 4326, gk3, gk3-cm, gcj02 or an EPSG code / "
                        f"无法识别的坐标系 --crs {args.crs}：可选 4490、4326、gk3、gk3-cm、gcj02 或 EPSG 代码") from None
    if args.format in ("geojson", "kml") and not target.geographic:
        raise UserError(f"{args.format} is always longitude/latitude; choose --crs 4326, 4490 or gcj02, or "
                        f"--format gpkg, shp or csv for a projected CRS / {args.format} 格式只能用经纬度：请选 --crs "
                        "4326、4490 或 gcj02；如需投影坐标，请用 --format gpkg、shp 或 csv")
    if args.encoding == "gbk" and args.format not in ("shp", "csv"):
        raise UserError(f"{args.format} is UTF-8 by definition; --encoding gbk is for shp and csv / "
                        f"{args.format} 格式固定为 UTF-8 编码；--encoding gbk 只用于 shp 和 csv")
    if args.format == "kml" and "crosswalk" in layers:
        raise UserError("KML holds map features only; leave the crosswalk out of --layers, or choose gpkg / "
                        "KML 只能存放地图要素：请从 --layers 中去掉 crosswalk（对照表），或改用 gpkg")
    out = checks.output_file(args.out, "--out")
    engine = checks.engine()
    checks.territory(engine, args.territory)
    request = ExportRequest(territory=args.territory, format=args.format, crs=args.crs, encoding=args.encoding,
                            plan=args.plan, layers=layers)
    result = export_territory(engine, request, out)
    counts = ", ".join(f"{name} {n}" for name, n in result.layers.items())
    counts_zh = "，".join(f"{LAYER_ZH.get(name, name)} {n}" for name, n in result.layers.items())
    print(f"wrote {result.path} ({result.format}, {result.crs}, {result.encoding}): {counts}")
    print(f"  已写入 {result.path}（{result.format}，{result.crs}，{result.encoding}）：{counts_zh}")
    progress = Progress()
    for note in result.notes:  # what the format could not hold as given (text cut to a Shapefile's field)
        progress.say(note["en"], note["zh"])
    return 0


def cmd_print(args: argparse.Namespace) -> int:
    """``gridmap print --community CODE --out sheet.pdf [--paper A3] [--plan draft] [--lang en]``."""
    import re

    from gridmap.services.printing import WallMapRequest
    from gridmap.web.wallmap import print_wall_map

    if not re.fullmatch(r"published|draft|[0-9]{1,9}", args.plan):
        raise UserError(f"--plan {args.plan!r}: give published, draft or a version number / "
                        f"--plan {args.plan}：应为 published（已发布）、draft（草稿）或版本号")
    suffix = args.out.rsplit(".", 1)[-1].lower() if "." in args.out else ""
    if suffix not in ("pdf", "png"):
        raise UserError(f"--out {args.out!r}: name a .pdf or .png file / --out {args.out}：请给出 .pdf 或 .png 文件名")
    out = checks.output_file(args.out, "--out")
    engine = checks.engine()
    checks.territory(engine, args.community)
    sheet = print_wall_map(engine, WallMapRequest(args.community, args.plan, args.paper, suffix, args.lang))
    out.write_bytes(sheet.content)
    print(f"wrote {out} ({args.paper} {suffix}, plan version {sheet.plan.version}, {sheet.grids} grids) / "
          f"已写入 {out}（{args.paper} {suffix}，方案版本 {sheet.plan.version}，{sheet.grids} 个网格）")
    return 0


def _leader_recorded(done: dict) -> str:
    """What ``gridmap microgrid leader`` recorded, in English and Chinese (``done``: set_leader's
    answer: the name now on record and whether a phone is)."""
    who = (done["leader_name"] or "(no name)") + (", phone on record" if done.get("has_phone") else "")
    who_zh = (done["leader_name"] or "（无姓名）") + ("，已有电话" if done.get("has_phone") else "")
    if not done["leader_name"] and not done.get("has_phone"):
        who, who_zh = "(none: cleared)", "（无：已清除）"
    if done["role"] == "unit":
        return (f"stairwell leader of stairwell {done['part']} of building {done['building']} in micro-grid "
                f"{done['microgrid']} recorded: {who} / 已记录微网格 {done['microgrid']} 中楼栋 {done['building']} "
                f"{done['part']}单元的单元长：{who_zh}")
    if done["role"] == "building":
        return (f"building leader of building {done['building']} recorded: {who} (on all its rows, in micro-grids "
                f"{', '.join(done['microgrids'])}) / 已记录楼栋 {done['building']} 的楼栋长：{who_zh}"
                f"（涉及微网格 {'、'.join(done['microgrids'])}）")
    return (f"leader of micro-grid {done['microgrid']} recorded: {who} "
            f"/ 已记录微网格 {done['microgrid']} 的负责人：{who_zh}")


def _print_microgrid_buildings(rows: list[dict]) -> None:
    """One micro-grid's buildings, a row per building kept whole or per 单元 of one cut into 单元,
    with the building's 楼栋长 and the 单元's 单元长 (names and phones: the CLI is the operator's)."""
    print("building 楼栋 | stairwell 单元 | households 户数 | building leader 楼栋长 | stairwell leader 单元长")
    if not rows:
        print("(no buildings: the micro-grid is empty / 该微网格没有楼栋)")
    for r in rows:
        unit = f"{r['part']}/{r['parts']}" if (r["parts"] or 0) > 1 else ""
        building_leader = " ".join(x for x in (r["building_leader_name"], r["building_leader_phone"]) if x)
        unit_leader = " ".join(x for x in (r["leader_name"], r["leader_phone"]) if x)
        print(f"{r['building_name'] or r['building_id']} | {unit} | {r['households']} | {building_leader} | {unit_leader}")


def cmd_microgrid(args: argparse.Namespace) -> int:
    """``gridmap microgrid list PLAN [CODE] [--grid CODE]`` and ``gridmap microgrid leader PLAN CODE --name N
    --phone P [--building B [--unit K]]``."""
    from gridmap.errors import Refusal
    from gridmap.services.microgrids import set_leader
    from gridmap.store import microgrids, plans

    engine = checks.engine()
    try:
        if args.action == "list" and args.code:
            if args.grid:
                raise UserError("give a micro-grid's code or --grid, not both / 请给出微网格编码或 --grid，不要同时给出")
            with engine.connect() as conn:
                plans.get(conn, args.plan)
                rows = microgrids.buildings(conn, args.plan, args.code, personal=True)
            _print_microgrid_buildings(rows)
            return 0
        if args.action == "list":
            with engine.connect() as conn:
                plans.get(conn, args.plan)
                rows = microgrids.rows(conn, args.plan, grid=args.grid, personal=True)
            if not rows:
                print(f"plan {args.plan} has no micro-grids{' in grid ' + args.grid if args.grid else ''} "
                      f"(make them with `gridmap partition --micro --plan {args.plan}`) / 该方案尚无微网格")
            if rows:  # a table: its header in both languages, then the figures
                print("micro-grid 微网格 | grid 网格 | households 户数 | buildings 楼栋 | flag 标记 | leader 负责人 | "
                      "building leaders 楼栋长 | stairwell leaders 单元长")
            for r in rows:
                leader = " ".join(x for x in (r["leader_name"], r["leader_phone"]) if x)
                print(f"{r['microgrid_code']} | {r['grid_code']} | {r['households']} | {r['building_count']} | "
                      f"{r['flag'] or ''} | {leader} | {r['building_leaders'] or ''} | {r['stairwell_leaders'] or ''}")
            if any(r["building_leaders"] or r["stairwell_leaders"] for r in rows):
                print(f"(building and stairwell leaders: how many are recorded; who they are: "
                      f"`gridmap microgrid list {args.plan} MICROGRID_CODE` / 楼栋长、单元长为已登记人数；姓名见上述命令)")
            return 0
        if not args.code:
            raise UserError("microgrid leader needs the micro-grid's code / 请给出微网格编码")
        if args.name is None and args.phone is None:
            raise UserError("microgrid leader needs --name and/or --phone / 请给出 --name 和/或 --phone")
        done = set_leader(engine, args.plan, args.code, name=args.name, phone=args.phone, building=args.building,
                          part=args.unit, actor=args.actor)
    except Refusal as exc:
        raise UserError(checks.said(exc)) from exc
    print(_leader_recorded(done))
    return 0
