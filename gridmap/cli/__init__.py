"""The ``gridmap`` command. Thin: every subcommand calls a service or store function.

    gridmap db start | stop | status | url     the private local PostGIS
    gridmap db dump --territory CODE --out F.zip | restore F.zip [--replace]   a territory, whole
    gridmap migrate [--revision REV] [--downgrade REV]
    gridmap demo [--only NAME] [--force]       load data/boundaries/ (idempotent)
    gridmap territory import COMMUNITIES [--streets F] [--district F] [--parent CODE] [--fields code=社区代码,...]
                 [--crs EPSG|gcj02] [--encoding gbk] [--replace] [--dry-run]   a district's own boundaries
    gridmap import FILE --territory CODE [--layer NAME] [--crs CRS] [--encoding gbk] [--replace]
    gridmap partition --territory CODE [--profile NAME|FILE] [--min 300 --max 500] [--report FILE.html]
    gridmap merge --territory CODE FILE... [--profile NAME|FILE] [--access-list FILE] [--scheduler URL]  多网合一
    gridmap profile presets | show [NAME|FILE] [--territory CODE] [--toml] | set NAME|FILE --territory CODE
                  | unset --territory CODE     the rules a territory follows
    gridmap departments --territory CODE --out DIR    generated departmental layers
    gridmap territories                        list the territory tree
    gridmap layers --territory CODE            list a territory's layers
    gridmap serve [--host H] [--port P] [--workers N]
    gridmap user add NAME [--role ROLE --territory CODE | --role admin --everywhere]
                 | grant NAME --role R (--territory CODE | --everywhere) [--department D | --grids G,G]
                 | passwd NAME | list
    gridmap apikey create NAME --user USER [--days N] | list | revoke NAME
    gridmap staff import FILE --territory CODE [--encoding gbk] | adopt --territory CODE | list --territory CODE
                  | check --territory CODE [--on DATE] [--json]   grid staff and 一格一员
    gridmap households import FILE --territory CODE [--replace] [--check] [--report F.csv] | summary --territory CODE
                  | export --territory CODE [--full] [--encoding gbk] --out F.csv | rekey | new-key   住户登记
    gridmap lists import needs|resources FILE --territory CODE [--crs gcj02] [--check] | summary --territory CODE
                  | match NEED_ID [--within M]        需求、资源、项目清单
    gridmap registrations import FILE --territory CODE [--check] | summary --territory CODE | demo --territory CODE   双报到
    gridmap patrols import FILE.gpx --territory CODE --walker USER | coverage --territory CODE [--week 2026-W49]   巡查
    gridmap emergency start --territory CODE --kind 防汛 --reason TEXT [--communities C,C] [--grids G,G]
                  | end --id N | list --territory CODE | board --id N | report --id N [--json]   平战结合
    gridmap drill --territory CODE --scenario flood [--grids N] [--url URL]   the scripted drill (demo territories)
    gridmap plan draft CODE [--source ID] | edits ID FILE.json | validate ID | diff ID | publish ID
                 | revert ID [--publish] | history CODE
    gridmap incidents categories | escalate     the category table; the supervision pass (for cron)
    gridmap stations types | import FILE --territory CODE [--type TYPE] | coverage --territory CODE [--minutes 15]
    gridmap export --territory CODE --format shp|gpkg|gdb|geojson|kml|csv|parquet --crs 4490|4326|gk3|gk3-cm|gcj02
                   [--encoding utf-8|gbk] [--plan published|draft|VERSION] [--layers grids,units,...] --out PATH
    gridmap up [--host H] [--port P] [--no-serve] [--no-demo]   db start + migrate + demo (plans, stations, incidents)
                                                    + admin + serve

``gridmap COMMAND --help`` lists every option of a command.

Arguments are checked (files, folders, numbers, territories, formats) before anything is written.
Every error is one line on stderr, "English / 中文", with a non-zero status; GRIDMAP_DEBUG=1 adds the traceback.

This package holds the parser and the error handling; each group of commands is a module with a
``register(sub)`` that adds its subcommands, and ``cmd_*`` functions that run them:

    checks      the argument checks the commands share (files, folders, numbers, territories ...)
    database    db, migrate, demo
    territory   territory import
    data        import, departments, territories, layers
    planning    partition, merge, profile
    plans       plan, export
    people      user, apikey
    staff       staff (the grid staff)
    households  households (the households register, personal data encrypted)
    lists       lists (needs, resources and projects)
    registrations  registrations (双报到: party members and units)
    patrols     patrols (巡查 tracks and their coverage)
    emergency   emergency, drill (平战结合: emergency mode, the scripted drill)
    operations  incidents, stations
    serving     serve, up

Heavy imports (the database, geometry, the web app) stay inside the command functions, so that
``gridmap --help`` and argument mistakes answer at once.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from gridmap import __version__
from gridmap.cli import (data, database, emergency, households, lists, operations, patrols, people, planning, plans,
                         registrations, serving, staff, territory)
from gridmap.cli.checks import UserError, halves, said

__all__ = ["DEBUG_VARIABLE", "UserError", "build_parser", "main"]

DEBUG_VARIABLE = "GRIDMAP_DEBUG"  # =1: show the traceback of an error as well

# argparse's own complaints, said in Chinese too: (its English, a pattern of it, the Chinese)
_ARGPARSE_ZH = (
    (re.compile(r"the following arguments are required: (?P<x>.+)"), "缺少必需的参数：{x}"),
    (re.compile(r"unrecognized arguments: (?P<x>.+)"), "无法识别的参数：{x}"),
    (re.compile(r"argument (?P<a>\S+): invalid choice: (?P<x>.+?) \(choose from (?P<c>.+)\)"), "参数 {a} 的取值 {x} 无效（可选：{c}）"),
    (re.compile(r"argument (?P<a>\S+): expected one argument"), "参数 {a} 需要一个值"),
    (re.compile(r"argument (?P<a>\S+): expected (?P<x>.+) arguments?"), "参数 {a} 需要 {x} 个值"),
    (re.compile(r"argument (?P<a>\S+): not allowed with argument (?P<b>\S+)"), "参数 {a} 不能与 {b} 同时使用"),
    (re.compile(r"argument (?P<a>\S+): ignored explicit argument (?P<x>.+)"), "参数 {a} 不接受取值 {x}"),
    (re.compile(r"argument (?P<a>\S+): invalid (?P<t>\S+) value: (?P<x>.+)"), "参数 {a} 的取值 {x} 无效"),
    (re.compile(r"one of the arguments (?P<x>.+) is required"), "须给出以下参数之一：{x}"),
    (re.compile(r"ambiguous option: (?P<x>\S+) could match (?P<c>.+)"), "选项 {x} 有歧义，可能是：{c}"),
)


def usage_zh(message: str) -> str:
    """argparse's complaint ``message`` in Chinese ("" when it is bilingual already: our own checks)."""
    from gridmap.cli.checks import bilingual

    if bilingual(message):
        return ""
    for pattern, zh in _ARGPARSE_ZH:
        found = pattern.fullmatch(message)
        if found:
            return zh.format(**found.groupdict())
    return "命令参数有误"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line too, in English and Chinese: the problem and where
    the usage is."""

    def error(self, message: str) -> NoReturn:
        zh = usage_zh(message)
        text = f"{message} / {zh}" if zh else message
        self.exit(2, f"{self.prog}: error: {text} (see `{self.prog} --help` / 用法见 `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gridmap", description="Plan and run community grids (网格化服务管理).",
                     epilog=f"Errors are one line; {DEBUG_VARIABLE}=1 shows their traceback too.")
    parser.add_argument("--version", action="version", version=f"gridmap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (database, territory, data, planning, plans, people, staff, households, lists, registrations, patrols,
                  emergency, operations, serving):  # the order --help lists them in
        group.register(sub)
    return parser


def _one_line(text: str, limit: int = 600) -> str:
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _both(en: str, zh: str, limit: int = 600) -> str:
    """A refusal's two texts as one line, each half cut on its own when the whole is too long (cut
    as one line, a long English half left the Chinese one a few characters: "…第 11…")."""
    en, zh = _one_line(en, 10 * limit), _one_line(zh, 10 * limit)
    if en == zh:
        return _one_line(en, limit)
    room = limit - 3
    if len(en) + len(zh) > room:
        zh_room = max(room // 2, room - len(en))
        zh = _one_line(zh, zh_room)
        en = _one_line(en, room - len(zh))
    return f"{en} / {zh}"


def _explain(exc: BaseException) -> str:
    """One line saying what went wrong and what to do, for any exception."""
    import sqlalchemy as sa

    from gridmap.errors import Refusal
    from gridmap.store.cluster import ClusterError
    from gridmap.store.databases import DatabaseUnavailable

    cause = exc.__cause__
    if type(exc).__module__.startswith("pandas") and isinstance(cause, sa.exc.DBAPIError):
        return _explain(cause)  # pandas' read_sql wraps the database's own error: say that one
    debug = f"run again with {DEBUG_VARIABLE}=1 to see the traceback"
    debug_zh = f"设置 {DEBUG_VARIABLE}=1 后重新运行可查看详细出错信息（traceback）"
    if isinstance(exc, UserError):  # already in both languages (tests/test_cli_messages.py)
        both = halves(str(exc))
        return _both(*both) if both else _one_line(exc)
    if isinstance(exc, Refusal):  # gridmap's own refusals say it in both languages (a VersionConflict too)
        return _both(exc.en, exc.zh)
    if isinstance(exc, ClusterError):
        return _one_line(said(exc, "本地数据库集群无法创建、启动或连接，原因见前面的英文说明"))
    if isinstance(exc, DatabaseUnavailable):
        return _one_line(said(exc, "数据库未配置或无法连接，原因见前面的英文说明；可用 `gridmap db status` 查看"))
    if isinstance(exc, sa.exc.OperationalError) and exc.statement is None:  # failed to connect
        first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        return _one_line(f"cannot connect to the database: {first} — is it running "
                         "(`gridmap db status`, `gridmap db start`), and is GRIDMAP_DATABASE_URL right? / "
                         "无法连接数据库：请确认数据库已启动（`gridmap db status`、`gridmap db start`），"
                         "且 GRIDMAP_DATABASE_URL 设置正确")
    if isinstance(exc, sa.exc.ProgrammingError) and "does not exist" in str(exc.orig):
        first = str(exc.orig).strip().splitlines()[0]
        return _one_line(f"the database schema is missing or old ({first}): run `gridmap migrate` / "
                         "数据库结构缺失或版本过旧：请运行 `gridmap migrate`")
    if isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.startswith("psycopg2"):
        orig = getattr(exc, "orig", None) or exc  # raw psycopg2 errors come from COPY (db dump, restore)
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        return _one_line(f"database error: {_one_line(first, 300)}; {debug} / 数据库出错；{debug_zh}")
    if isinstance(exc, (KeyError, IndexError)):  # their text is a bare key: a bug, not a message
        return _one_line(f"unexpected {type(exc).__name__}: {_one_line(exc, 300)}; this is a bug: {debug} and report it / "
                         f"程序内部错误（{type(exc).__name__}）：{debug_zh}，并向开发方报告")
    if isinstance(exc, (ValueError, LookupError)):  # the project's own errors (bad file, CRS, territory ...)
        return _one_line(said(exc))
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return _one_line(f"cannot use{where}: {exc.strerror}; check the path, its permissions and free space / "
                         f"无法使用{where}：请检查路径、权限和磁盘剩余空间")
    return _one_line(f"unexpected {type(exc).__name__}: {_one_line(exc or 'no message', 300)}; this is a bug: {debug} and report it / "
                     f"程序内部错误（{type(exc).__name__}）：{debug_zh}，并向开发方报告")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every error ends as one line on stderr (``gridmap: error: ...``) and a
    non-zero status: 1 for errors, 2 for wrong arguments, 130 when interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        print("gridmap: interrupted / 已中断", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gridmap ... | head`: the reader has gone, nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        if os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0", "false", "no"):
            import traceback

            traceback.print_exc()
        print(f"gridmap: error: {_explain(exc)}", file=sys.stderr)
        return 1
