"""``gridmap emergency``: switch a territory (or some of its communities or grids) into emergency
mode and back, read its board and report; ``gridmap drill``: the scripted drill on the demo
territories (平战结合)."""

from __future__ import annotations

import argparse
import json

from gridmap.cli import checks
from gridmap.cli.checks import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``emergency`` and ``drill`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("emergency", help="emergency mode (平战结合): start, end, list, board, report")
    cmd.add_argument("action", choices=["start", "end", "list", "board", "report"])
    cmd.add_argument("--territory", metavar="CODE", help="start, list: the territory")
    cmd.add_argument("--id", type=int, metavar="N", help="end, board, report: the emergency")
    cmd.add_argument("--kind", help="start: 防汛, 防火, 防疫, 防地震, 保安全 (or flood, fire, ...)")
    cmd.add_argument("--reason", help="start: why")
    cmd.add_argument("--communities", default="", metavar="CODE,CODE", help="start: only these communities or streets")
    cmd.add_argument("--grids", default="", metavar="CODE,CODE", help="start: only these grids")
    cmd.add_argument("--note", help="end: a closing note")
    cmd.add_argument("--json", action="store_true", help="board, report: the whole document as JSON")
    cmd.set_defaults(func=cmd_emergency)
    drill = sub.add_parser("drill", help="a scripted emergency drill on a demo territory, through the HTTP API")
    drill.add_argument("--territory", required=True, metavar="CODE")
    drill.add_argument("--scenario", default="flood", choices=["flood"])
    drill.add_argument("--grids", type=checks.positive_int, default=40, metavar="N", help="at most this many grids (nearest the water)")
    drill.add_argument("--url", help="drive a running server at this address (default: one started on loopback)")
    drill.add_argument("--seed", type=int, default=0)
    drill.add_argument("--json", action="store_true", help="the report and the tally as JSON")
    drill.set_defaults(func=cmd_drill)


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def cmd_emergency(args: argparse.Namespace) -> int:
    from gridmap.services import emergencies

    engine = checks.engine()
    if args.action in ("start", "list"):
        if not args.territory:
            raise UserError(f"gridmap emergency {args.action} needs --territory CODE / 需要 --territory 辖区代码")
        checks.territory(engine, args.territory)
    elif args.id is None:
        raise UserError(f"gridmap emergency {args.action} needs --id N / 需要 --id 应急编号")
    if args.action == "start":
        if not args.kind or not args.reason:
            raise UserError("usage: gridmap emergency start --territory CODE --kind 防汛 --reason TEXT "
                            "[--communities C,C] [--grids G,G] / 用法：需要 --kind 类型 与 --reason 原因")
        done = emergencies.start(engine, args.territory, kind=args.kind, reason=args.reason, actor="cli",
                                 communities=_codes(args.communities), grids=_codes(args.grids))
        print(f"emergency {done['id']} on ({done['kind']} / {done['kind_en']}): {len(done['grids'])} grids, check in by "
              f"{done['checkin_due']} / 应急 {done['id']} 已启动：{len(done['grids'])} 个网格，签到截止 {done['checkin_due']}")
    elif args.action == "end":
        done = emergencies.end(engine, args.id, actor="cli", note=args.note)
        print(f"emergency {args.id} ended at {done['ended_at']} / 应急 {args.id} 已于 {done['ended_at']} 结束")
    elif args.action == "list":
        for e in emergencies.listing(engine, args.territory):
            state = "on / 进行中" if e["ended_at"] is None else f"ended / 已结束 {e['ended_at']}"
            print(f"{e['id']:>5}  {e['kind']} ({e['kind_en']})  {e['started_at']}  {state}  {e['grids']} grids / 个网格  "
                  f"{e['reason']}")
    elif args.action == "board":
        board = emergencies.board(engine, args.id)
        if args.json:
            print(json.dumps(board, ensure_ascii=False, indent=1))
            return 0
        t = board["totals"]
        print(f"{t['grids']} grids: checked in on time {t['checkin_on_time']}, late {t['checkin_late']}, missing "
              f"{t['checkin_missing']}, waiting {t['checkin_waiting']} / 签到：按时 {t['checkin_on_time']}，迟到 "
              f"{t['checkin_late']}，未签到 {t['checkin_missing']}，未到期 {t['checkin_waiting']}")
        print(f"affected {t['status_affected']}, needs support {t['status_needs_support']}, cleared {t['status_cleared']} / "
              f"受影响 {t['status_affected']}，需要支援 {t['status_needs_support']}，已解除 {t['status_cleared']}")
    else:
        report = emergencies.report(engine, args.id)
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=1))
            return 0
        print(_report_lines(report))
    return 0


def _report_lines(report: dict) -> str:
    c, i, h = report["checkins"], report["incidents"], report["households"]
    lines = [f"emergency {report['emergency']['id']} ({report['emergency']['kind']}), {report['duration_minutes']} min / "
             f"应急 {report['emergency']['id']}，历时 {report['duration_minutes']} 分钟",
             f"  check-ins: {c['on_time']} on time, {c['late']} late, {c['missing']} missing of {c['grids']} grids / "
             f"签到：按时 {c['on_time']}，迟到 {c['late']}，未签到 {c['missing']}（共 {c['grids']} 个网格）",
             f"  incidents: {i['total']} ({i['emergency']} of emergency categories) / 事件 {i['total']} 件（应急类 {i['emergency']} 件）"]
    for d in i["by_department"]:
        lines.append(f"    {d['department_code']} {d['department']}: {d['incidents']}, responded {d['responded']}, "
                     f"median response {d['median_response_minutes']} min / 响应中位 {d['median_response_minutes']} 分钟")
    lines.append(f"  door-knocks: {h['reached']} of {h['targets']} reached / 敲门：已入户 {h['reached']} / {h['targets']}")
    for d in report["whistles"]["departments"]:
        lines.append(f"    whistle {d['department_code']}: acknowledged {d['acknowledged']}/{d['calls']}, arrived "
                     f"{d['arrived']}, on time {d['arrived_on_time']} / 吹哨报到：响应 {d['acknowledged']}，报到 {d['arrived']}")
    return "\n".join(lines)


def cmd_drill(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from gridmap.api.loopback import loopback_server
    from gridmap.services import drill

    engine = checks.engine()
    checks.territory(engine, args.territory)
    plan = drill.prepare(engine, args.territory, args.scenario, max_grids=args.grids)
    print(f"drill on {len(plan.grids)} grids of {args.territory} ({args.scenario}) / 演练：{args.territory} 的 "
          f"{len(plan.grids)} 个网格")
    try:
        with (nullcontext(args.url) if args.url else loopback_server(checks.database_url())) as url:
            result = drill.run(url, plan, seed=args.seed)
    except Exception as stopped:  # switched off again by the drill; its records are the drill's all the same
        if getattr(stopped, "emergency_id", None) is not None:
            drill.label_synthetic(engine, plan, stopped.emergency_id)
        raise
    labelled = drill.label_synthetic(engine, plan, result["emergency_id"])
    disagreements = drill.agrees(result)
    if args.json:
        print(json.dumps({**result, "labelled_synthetic": labelled, "disagreements": disagreements},
                         ensure_ascii=False, indent=1))
    else:
        print(_report_lines(result["report"]))
        print("the report agrees with what the drill did / 报告与演练操作一致" if not disagreements else
              "the report disagrees / 报告与演练操作不一致: " + "; ".join(disagreements))
    return 0 if not disagreements else 1
