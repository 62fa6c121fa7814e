"""``gridmap households``: the households register (住户登记) from the office's sheet, its counts
per grid, its export (masked unless ``--full``), and its key (new key, rotation)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from gridmap.cli import checks
from gridmap.cli.checks import UserError

ACTIONS = ("import", "summary", "export", "rekey", "new-key")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``households`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("households", help="the households register (住户登记): import, summary, export, keys")
    cmd.add_argument("action", choices=ACTIONS)
    cmd.add_argument("file", nargs="?", help="import: the register (.csv in UTF-8 or GBK, or .xlsx) with columns "
                     "姓名 and 小区 + 楼栋号 or 地址, optionally 单元, 房号, 户号, 身份证号, 联系电话, 与户主关系, 标签")
    cmd.add_argument("--territory", metavar="CODE", help="the territory (all actions but rekey and new-key)")
    cmd.add_argument("--encoding", help="import: the CSV's encoding when it is not what it looks like; "
                     "export: utf-8 (default) or gbk")
    cmd.add_argument("--replace", action="store_true", help="import: the sheet is the whole register "
                     "(residents not in it are removed)")
    cmd.add_argument("--check", action="store_true", help="import: check every row, store nothing")
    cmd.add_argument("--report", metavar="FILE.csv", help="import: when refused, every problem (row, English, 中文) here")
    cmd.add_argument("--out", metavar="FILE.csv", help="export: where to write (default: standard output)")
    cmd.add_argument("--full", action="store_true", help="export: names, ID numbers and phones unmasked (audited)")
    cmd.add_argument("--json", action="store_true", help="summary: every grid as JSON")
    cmd.set_defaults(func=cmd_households)


def cmd_households(args: argparse.Namespace) -> int:
    if args.action == "new-key":
        from gridmap.vault import new_key

        print(new_key())
        return 0
    from gridmap.services import households
    from gridmap.settings import Settings

    if args.file and args.action != "import":
        raise UserError(f"`gridmap households {args.action}` takes no FILE (only import does) / 只有 import 需要文件参数")
    if args.action == "import" and not args.file:
        raise UserError("usage: gridmap households import FILE --territory CODE [--encoding gbk] [--replace] [--check] / "
                        "用法：gridmap households import 文件 --territory 辖区代码")
    if args.action != "rekey" and not args.territory:
        raise UserError(f"`gridmap households {args.action}` needs --territory CODE / 须指定 --territory 辖区代码")
    path = checks.input_file(args.file, "households register") if args.action == "import" else None
    out = checks.output_file(args.out, "export file") if args.out else None
    report = checks.output_file(args.report, "problem report") if args.report else None
    engine = checks.engine()
    if args.territory:
        checks.territory(engine, args.territory)
    if args.action == "summary":
        return _print_summary(households.summary(engine, args.territory), as_json=args.json)
    vault = Settings.from_env().vault()
    if args.action == "rekey":
        done = households.rekey(engine, vault=vault, actor="cli")
        print(f"{done} residents encrypted again under the first key / 已用第一个密钥重新加密 {done} 名居民")
        return 0
    if args.action == "export":
        data = households.export(engine, args.territory, vault=vault, actor="cli", full=args.full,
                                 encoding=args.encoding or "utf-8")
        if out is None:
            sys.stdout.buffer.write(data)
        else:  # readable by its owner only: the register, masked or not, is personal data
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(out, 0o600)  # a file that was there before keeps no wider mode
            print(f"wrote {out} ({'full' if args.full else 'masked'}) / 已写入 {out}（{'未脱敏' if args.full else '已脱敏'}）")
        return 0
    from gridmap.register import RegisterSheetError

    try:
        done = households.import_sheet(engine, args.territory, path, vault=vault, actor="cli", encoding=args.encoding,
                                       replace=args.replace, check=args.check)
    except RegisterSheetError as exc:
        if report is not None:
            checks.write_problems(report, exc.problems)
            raise UserError(f"{exc.en} (all {len(exc.problems)} problems in {report}) / {exc.zh}"
                            f"（全部 {len(exc.problems)} 处问题见 {report}）") from None
        raise
    verb = "checked (nothing stored)" if args.check else "taken"
    print(f"{done['rows']} rows {verb}: {done['buildings']} buildings, {done['households_added']} households and "
          f"{done['residents_added']} residents added, {done['residents_updated']} updated, "
          f"{done['residents_removed']} removed / {'已检查（未存储）' if args.check else '已导入'} {done['rows']} 行："
          f"{done['buildings']} 栋楼，新增 {done['households_added']} 户、{done['residents_added']} 人，"
          f"更新 {done['residents_updated']} 人，移除 {done['residents_removed']} 人")
    return 0


def _print_summary(summary: dict, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        return 0
    t = summary["totals"]
    print(f"{summary['territory']}: {t['households']} households, {t['residents']} residents, {t['elderly']} aged "
          f"{summary['elderly_age']}+ in {len(summary['grids'])} grids / {t['households']} 户、{t['residents']} 人、"
          f"{summary['elderly_age']} 岁以上 {t['elderly']} 人，分布在 {len(summary['grids'])} 个网格")
    for tag in summary["focus_tags"]:
        print(f"  {t['tags'].get(tag['tag'], 0):>6}  {tag['tag_zh']} / {tag['tag_en']}")
    return 0
