"""``gridmap staff``: a territory's grid staff from the office's sheet, the list, and the
staffing checks (一格一员, workload, assignments to grids a re-plan changed)."""

from __future__ import annotations

import argparse
import json

from gridmap.cli import checks
from gridmap.cli.checks import UserError

SHOWN = 20  # grid codes listed in the plain output of a check


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``staff`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("staff", help="grid staff: import the office's sheet, take in the people the plan names, "
                         "list, check staffing (一格一员)")
    cmd.add_argument("action", choices=["import", "adopt", "list", "check"],
                     help="adopt: the published plan's grid workers and micro-grid / building leaders onto the staff")
    cmd.add_argument("file", nargs="?", help="import: the staff sheet (.csv in UTF-8 or GBK, or .xlsx) with "
                     "columns 姓名, 角色 and optionally 电话, 工号, 网格编码, 微网格编码, 小区, 楼栋, 起始日期, 结束日期")
    cmd.add_argument("--territory", required=True, metavar="CODE")
    cmd.add_argument("--encoding", help="import: the CSV's encoding when it is not what it looks like")
    cmd.add_argument("--on", type=checks.iso_date, metavar="YYYY-MM-DD", help="check: the day (default today)")
    cmd.add_argument("--json", action="store_true", help="check: the whole report as JSON")
    cmd.set_defaults(func=cmd_staff)


def cmd_staff(args: argparse.Namespace) -> int:
    from gridmap.services import staff

    if args.file and args.action != "import":
        raise UserError(f"`gridmap staff {args.action}` takes no FILE (only import does) / 只有 import 需要文件参数")
    if args.action == "import" and not args.file:
        raise UserError("usage: gridmap staff import FILE --territory CODE [--encoding gbk] / "
                        "用法：gridmap staff import 文件 --territory 辖区代码 [--encoding gbk]")
    path = checks.input_file(args.file, "staff sheet") if args.action == "import" else None
    engine = checks.engine()
    checks.territory(engine, args.territory)
    if args.action == "import":
        done = staff.import_sheet(engine, args.territory, path, actor="cli", encoding=args.encoding)
        print(f"{done['rows']} rows taken: {done['people_added']} people and {done['assignments_added']} assignments "
              f"added / 已导入 {done['rows']} 行：新增人员 {done['people_added']} 名、分配 {done['assignments_added']} 条")
    elif args.action == "adopt":
        done = staff.adopt(engine, args.territory, actor="cli")
        print(f"{done['people_added']} people and {done['assignments_added']} assignments added from plan "
              f"{done['plan_id']} ({done['already_assigned']} already held) / 已从方案新增人员 {done['people_added']} 名、"
              f"分配 {done['assignments_added']} 条（已有 {done['already_assigned']} 条）")
        for a in done["ambiguous"]:
            print(f"  left: {a['name']} (grid {a['grid_code']}) names {a['people']} people; add their phone / "
                  f"未处理：{a['name']}（网格 {a['grid_code']}）对应 {a['people']} 人，请补充电话")
    elif args.action == "list":
        for person in staff.people(engine, args.territory):
            print(f"{person['staff_id']:>5}  {person['name']:<12} {person['role_zh']:<6} {person['phone'] or '-':<14} "
                  f"{','.join(person['grids']) or '-'}")
    else:
        report = staff.report(engine, args.territory, on=args.on)
        if args.json:
            print(json.dumps(report, ensure_ascii=False, default=str, indent=1))
            return 0
        s = report["summary"]
        print(f"{report['territory']} on {report['on']}: {s['comprehensive_grids']} comprehensive grids, "
              f"{s['people']} people assigned / {report['on']}：综合网格 {s['comprehensive_grids']} 个，"
              f"已分配人员 {s['people']} 名")
        for key in ("no_full_time_worker", "over_grids", "over_households", "grid_changed"):
            en, zh = report["flags"][key]["en"], report["flags"][key]["zh"]
            print(f"  {s[key]:>5}  {en} / {zh}")
        bare = [g["grid_code"] for g in report["grids"] if "no_full_time_worker" in g["flags"]]
        if bare:
            more = f" … (+{len(bare) - SHOWN}; --json lists all / 全部见 --json)" if len(bare) > SHOWN else ""
            print(f"grids without a full-time worker / 无专职网格员的网格: {', '.join(bare[:SHOWN])}{more}")
        for w in report["workers"]:
            print(f"  {w['name']:<10} {w['role_zh']:<6} {w['grid_count']} grids / 网格, {w['households']} households / 户, "
                  f"{w.get('buildings', 0)} buildings / 栋, {w.get('duties', 0)} duties / 职责, "
                  f"{w['open_incidents']} open / 在办 ({w['overdue_incidents']} overdue / 超期)"
                  + (f"  [{', '.join(w['flags'])}]" if w["flags"] else ""))
        for c in report["changed"]:
            went = ", ".join(f"{n['grid_code']} ({n['share']:.0%})" for n in c["now_in"]) or "-"
            print(f"  {c['name']}: grid {c['grid_code']} changed; now in / 现属 {went}")
    return 0
