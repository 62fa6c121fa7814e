"""``gridmap registrations``: 双报到: party members and units registered with their communities,
from the office's sheet; the counts per grid; the synthetic demo at the seed's scale."""

from __future__ import annotations

import argparse
import json

from gridmap.cli import checks
from gridmap.cli.checks import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``registrations`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("registrations", help="双报到: party members and units registered with their communities")
    cmd.add_argument("action", choices=["import", "summary", "demo"])
    cmd.add_argument("file", nargs="?", help="import: the sheet (.csv in UTF-8 or GBK, or .xlsx) with 姓名/单位名称, "
                     "类型 (党员/单位), 所在党组织, 经度/纬度 or 地址 or 社区代码, 报到日期")
    cmd.add_argument("--territory", required=True, metavar="CODE")
    cmd.add_argument("--encoding", help="import: the CSV's encoding when it is not what it looks like")
    cmd.add_argument("--check", action="store_true", help="import: check every row, store nothing")
    cmd.add_argument("--count", type=int, default=19_000, help="demo: how many synthetic registrations (default 19,000)")
    cmd.add_argument("--json", action="store_true", help="summary: every grid as JSON")
    cmd.set_defaults(func=cmd_registrations)


def cmd_registrations(args: argparse.Namespace) -> int:
    from gridmap.services import registrations

    if args.file and args.action != "import":
        raise UserError(f"`gridmap registrations {args.action}` takes no FILE (only import does) / 只有 import 需要文件参数")
    path = checks.input_file(args.file, "registrations sheet") if args.action == "import" else None
    if args.action == "import" and path is None:
        raise UserError("usage: gridmap registrations import FILE --territory CODE [--check] / "
                        "用法：gridmap registrations import 文件 --territory 辖区代码")
    engine = checks.engine()
    checks.territory(engine, args.territory)
    if args.action == "import":
        done = registrations.import_sheet(engine, args.territory, path, actor="cli", encoding=args.encoding,
                                          check=args.check)
        print(f"{done['rows']} rows {'checked (nothing stored)' if args.check else 'taken'}: {done['added']} registered, "
              f"{done['already']} already / {'已检查（未存储）' if args.check else '已导入'} {done['rows']} 行："
              f"新报到 {done['added']}，已报到 {done['already']}")
    elif args.action == "demo":
        added = registrations.ensure_demo(engine, args.territory, count=args.count, actor="cli")
        print(f"{added} synthetic registrations added (none when the territory has some already) / "
              f"已生成 {added} 条合成报到记录（已有记录时不生成）")
    else:
        found = registrations.summary(engine, args.territory)
        if args.json:
            print(json.dumps(found, ensure_ascii=False, indent=1))
            return 0
        t = found["totals"]
        print(f"{args.territory}: {found['registered']} registered; in its grids {t['party_members']} party members, "
              f"{t['units']} units, {t['hours']:.1f} hours since {found['since']}, {t['projects']} projects / "
              f"已报到 {found['registered']}；网格内党员 {t['party_members']} 名、单位 {t['units']} 个，"
              f"{found['since']} 以来服务 {t['hours']:.1f} 小时，参与项目 {t['projects']} 个")
    return 0
