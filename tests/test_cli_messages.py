"""Every error `gridmap` prints says it in English and Chinese ("English / 中文" on one line): the
messages written in gridmap/cli (scanned, so an English-only one cannot creep back), argparse's own
usage complaints, and what gridmap.cli._explain makes of any other exception."""

from __future__ import annotations

import argparse
import ast
import errno
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap import cli
from gridmap.cli import checks
from samples import run_cli

CLI = Path(cli.__file__).parent
CJK = re.compile(r"[\u4e00-\u9fff]")
# the calls whose message a user sees: UserError (status 1), argparse's type errors and our usage errors (status 2)
RAISERS = {"UserError", "ArgumentTypeError", "usage_error"}
# calls that build the message in both languages from a caught error (a refusal's en and zh, or the English and a
# Chinese note): gridmap.cli.checks.said
BILINGUAL_BUILDERS = {"said"}
# (file name, line) of a message allowed without Chinese, with the reason: none yet. Add one only for a message
# with no words (a bare code, a path), never to postpone a translation.
LANGUAGE_NEUTRAL: dict[tuple[str, int], str] = {}


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _literal_text(node: ast.expr) -> str | None:
    """The literal parts of a message built from string literals, f-strings, + and (a if c else b); None when
    the message is something else (a variable, str(exc) ...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_text(node.left), _literal_text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.IfExp):
        body, orelse = _literal_text(node.body), _literal_text(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def english_only_messages() -> list[str]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not (isinstance(node, ast.Call) and _name(node.func) in RAISERS):
                continue
            where = f"{path.name}:{node.lineno}"
            if (path.name, node.lineno) in LANGUAGE_NEUTRAL:
                continue
            if not node.args:
                found.append(f"{where}: {_name(node.func)}() without a message")
                continue
            message = node.args[0]
            if isinstance(message, ast.Call) and _name(message.func) in BILINGUAL_BUILDERS:
                continue
            text = _literal_text(message)
            if text is None:
                found.append(f"{where}: the message is not a literal; write \"English / 中文\" or use checks.said(exc)")
            elif not checks.bilingual(text):
                found.append(f"{where}: no \" / \" and Chinese after it in {text[:80]!r}")
    return found


def test_no_cli_error_message_is_english_only() -> None:
    assert english_only_messages() == []


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan sees the calls (a renamed exception would make it pass on nothing)."""
    calls = [node for path in CLI.glob("*.py") for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and _name(node.func) in RAISERS]
    assert len(calls) > 80
    assert _literal_text(ast.parse('f"no file {p} / 没有文件 {p}"', mode="eval").body) == "no file  / 没有文件 "
    assert _literal_text(ast.parse("str(exc)", mode="eval").body) is None
    assert all(LANGUAGE_NEUTRAL.values())  # every exception says why


def test_said_gives_both_languages() -> None:
    from gridmap.errors import Invalid
    from gridmap.store.users import UserError as StoreUserError

    assert checks.said(Invalid("bad grid", "网格有误")) == "bad grid / 网格有误"
    assert checks.said(StoreUserError("no user 'x'", "没有用户 x")) == "no user 'x' / 没有用户 x"
    assert checks.said(ValueError("already / 已有")) == "already / 已有"  # Chinese already: as it is
    plain = checks.said(ConnectionError("cannot reach tcp://x"), "无法连接")
    assert plain == "cannot reach tcp://x / 无法连接"
    assert CJK.search(checks.said(ValueError("odd")))
    # a Chinese file name in an English message is not a translation
    assert checks.said(ValueError("城管网格.shp: no grid id column"), "缺少网格编号列") == \
        "城管网格.shp: no grid id column / 缺少网格编号列"


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path):
    """``gridmap ARGS`` in this process, no database reachable (every case here fails before one is
    needed, or is about the database not being there): (status, the one error line)."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("GRIDMAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GRIDMAP_DEBUG", raising=False)

    def go(*args: str) -> tuple[int, str]:
        status, _out, err = run_cli(capsys, *args)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, (args, err)
        return status, lines[0]

    return go


def bilingual(line: str, english: str, chinese: str) -> None:
    """``line`` says ``english``, then " / ", then ``chinese`` (the English first, as scripts match it)."""
    assert english in line and chinese in line, line
    start = line.index(english)
    assert " / " in line[start:line.index(chinese, start)], line


def test_argument_mistakes_say_it_in_both_languages(run, tmp_path: Path) -> None:
    edits = tmp_path / "edits.json"
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing"
    cases = [
        # plan edits: the file checks (all before the database)
        (("plan", "edits", "7"), "usage: gridmap plan edits ID FILE.json", "用法：gridmap plan edits 方案编号"),
        (("plan", "edits", "7", str(tmp_path / "none.json")), "no such file", "编辑文件"),
        (("plan", "edits", "7", str(folder)), "is a folder; give a file", "是文件夹，请给出文件"),
        (("plan", "edits", "7", "{not json"), None, None),  # filled in below
        (("plan", "publish", "first"), "a plan ID is a number", "方案编号应为数字"),
        (("plan", "validate", "7", str(edits)), "takes no FILE (only edits does)", "只有 edits 需要文件参数"),
        (("plan", "history", "980100", "--source", "3"), "--source is for `gridmap plan draft` only", "只用于"),
        (("plan", "publish", "7", "--publish"), "--publish is for `gridmap plan revert` only", "只用于"),
        # db dump / restore usage
        (("db", "dump", "--territory", "980100"), "usage: gridmap db dump --territory CODE --out FILE.zip",
         "用法：gridmap db dump --territory 辖区代码"),
        (("db", "restore"), "usage: gridmap db restore FILE.zip", "辖区由备份文件本身指明"),
        (("db", "restore", str(tmp_path / "none.zip")), "dump", "备份文件"),
        (("db", "status", "--replace"), "takes no FILE, --territory, --out or --replace", "只用于 dump 和 restore"),
        (("db", "dump", "--territory", "980100", "--out", str(missing / "x.zip")), "does not exist; create it first",
         "不存在，请先创建"),
        # export, print, partition, import options
        (("export", "--territory", "980100", "--format", "gpkg", "--plan", "latest", "--out", "x.gpkg"),
         "--plan 'latest': give published, draft or a version number", "已发布"),
        (("export", "--territory", "980100", "--format", "kml", "--crs", "gk3", "--out", "x.kml"),
         "always longitude/latitude", "只能用经纬度"),
        (("export", "--territory", "980100", "--format", "gpkg", "--encoding", "gbk", "--out", "x.gpkg"),
         "UTF-8 by definition", "固定为 UTF-8 编码"),
        (("export", "--territory", "980100", "--format", "kml", "--crs", "4326", "--layers", "grids,crosswalk",
          "--out", "x.kml"), "KML holds map features only", "KML 只能存放地图要素"),
        (("export", "--territory", "980100", "--format", "gpkg", "--out", str(folder)), "is a folder",
         "是文件夹，请给出文件名"),
        (("print", "--community", "980100", "--out", "sheet.svg"), "name a .pdf or .png file", ".pdf 或 .png"),
        (("partition", "--territory", "980100", "--min", "600", "--max", "400"), "--min 600 is above --max 400",
         "最少户数不能超过最多户数"),
        (("import", str(tmp_path / "none.gpkg"), "--territory", "980100"), "no such file", "输入文件"),
        (("departments", "--territory", "980100", "--out", str(edits)), "is a file, not a folder",
         "是文件而不是文件夹"),
        (("stations", "import", "--territory", "980100"), "usage: gridmap stations import FILE", "用法："),
        (("stations", "types", str(edits)), "takes no FILE (only import does)", "只有 import 需要文件参数"),
        (("staff", "import", "--territory", "980100"), "usage: gridmap staff import FILE", "用法："),
        (("staff", "list", str(edits), "--territory", "980100"), "takes no FILE (only import does)",
         "只有 import 需要文件参数"),
        # user and apikey options (checked before the database, before a password is asked)
        (("user", "grant", "eve"), "grant needs --role ROLE", "grant 须给出 --role 角色"),
        (("user", "add", "eve", "--territory", "980100", "--everywhere", "--role", "admin"),
         "give --territory CODE or --everywhere, not both", "只能给出其一"),
        (("user", "add", "eve", "--role", "planner", "--everywhere"), "--everywhere is for --role admin only",
         "规划员角色请给出 --territory 辖区代码"),
        (("user", "add", "eve", "--role", "planner"), "--role planner needs --territory CODE",
         "须给出 --territory 辖区代码"),
        (("user", "add", "eve", "--role", "planner", "--territory", "980100", "--grids", "G1"),
         "--grids binds a grid worker only", "只用于网格员"),
        (("user", "passwd", "eve", "--role", "admin"), "takes no --role", "只用于 add 和 grant"),
        (("apikey", "list", "--user", "eve"), "takes no --user or --days", "只用于 create"),
    ]
    edits.write_text("{not json", encoding="utf-8")
    cases[3] = (("plan", "edits", "7", str(edits)), "is not valid JSON", "不是有效的 JSON")
    for text, english, chinese in (('{"version": 1}', '"operations": [...]', "或一组编辑操作"),
                                   ('{"version": "one", "operations": [{"op": "set"}]}',
                                    '"version" must be a whole number', '"version" 须为整数'),
                                   ('{"version": 1, "operations": []}', "must be a non-empty list", "须为非空的对象列表")):
        bad = tmp_path / f"edits-{len(cases)}.json"
        bad.write_text(text, encoding="utf-8")
        cases.append((("plan", "edits", "7", str(bad)), english, chinese))
    gbk = tmp_path / "gbk.json"
    gbk.write_bytes(json.dumps({"version": 1, "operations": [{"op": "set", "name": "网格"}]},
                               ensure_ascii=False).encode("gbk"))
    cases.append((("plan", "edits", "7", str(gbk)), "is not UTF-8 text", "不是 UTF-8 编码的文本"))
    for args, english, chinese in cases:
        status, line = run(*args)
        assert status == 1, (args, line)
        assert line.startswith("gridmap: error: "), line
        bilingual(line, english, chinese)
    assert not missing.exists()


def test_usage_mistakes_say_it_in_both_languages(run) -> None:
    for args, english, chinese in (
            (["partition"], "the following arguments are required: --territory", "请给出 --territory 辖区代码"),
            (["export", "--out", "x"], "the following arguments are required: --territory, --format",
             "缺少必需的参数：--territory, --format"),
            (["export", "--territory", "980100", "--format", "dwg", "--out", "x"], "invalid choice: 'dwg'",
             "参数 --format 的取值 'dwg' 无效"),
            (["territories", "--nope"], "unrecognized arguments: --nope", "无法识别的参数：--nope"),
            (["partition", "--territory", "980100", "--seed", "x"], "invalid int value: 'x'", "参数 --seed 的取值"),
            (["partition", "--territory", "980100", "--min", "0"], "0 is not positive", "0 须不小于 1"),
            (["serve", "--port", "99999"], "not a port number", "不是有效端口号"),
            (["serve", "--port", "http"], "'http' is not a port number", "不是端口号"),
            (["stations", "coverage", "--minutes", "-5"], "not a positive number", "不是正数"),
            (["stations", "coverage", "--minutes", "soon"], "'soon' is not a number", "不是数字"),
            (["staff", "check", "--territory", "980100", "--on", "tomorrow"], "not a date like 2024-01-31",
             "不是 2024-01-31 这样的日期")):
        status, line = run(*args)
        assert status == 2, (args, line)
        bilingual(line, english, chinese)
        assert "--help` / 用法见 `gridmap" in line and line.endswith("--help`)"), line


def test_what_explain_says_for_any_error_is_in_both_languages(run, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridmap.errors import NotFound
    from gridmap.store.backup import BackupError
    from gridmap.store.cluster import ClusterError
    from gridmap.store.databases import DatabaseUnavailable
    from gridmap.store.users import UserError as StoreUserError

    def raising(exc: BaseException):
        def command(args: argparse.Namespace) -> int:
            raise exc
        return command

    orig = Exception("relation \"grids\" does not exist\nLINE 1: SELECT")
    for exc, english, chinese in (
            (RuntimeError("the flux capacitor is empty"), "unexpected RuntimeError: the flux capacitor is empty",
             "程序内部错误（RuntimeError）"),
            (KeyError("grid_id"), "unexpected KeyError: 'grid_id'; this is a bug", "并向开发方报告"),
            (OSError(errno.ENOSPC, "No space left on device", "/tmp/x.gpkg"), "cannot use /tmp/x.gpkg",
             "请检查路径、权限和磁盘剩余空间"),
            (NotFound("no grid G9", "没有网格 G9"), "no grid G9", "没有网格 G9"),
            (StoreUserError("no user 'eve'", "没有用户 eve"), "no user 'eve'", "没有用户 eve"),
            (BackupError("x.zip: not a gridmap dump (bad zip) / x.zip 不是 gridmap 备份文件"), "not a gridmap dump",
             "不是 gridmap 备份文件"),
            (ValueError("the layer has no geometry column"), "the layer has no geometry column", "操作未完成"),
            (ClusterError("no PostgreSQL server found under /usr/lib/postgresql"), "no PostgreSQL server found",
             "本地数据库集群无法创建、启动或连接"),
            (DatabaseUnavailable("PostGIS cannot be enabled in x"), "PostGIS cannot be enabled", "数据库未配置或无法连接"),
            (sa.exc.ProgrammingError("SELECT 1", {}, orig), "the database schema is missing or old",
             "数据库结构缺失或版本过旧"),
            (sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")), "database error: duplicate key",
             "数据库出错")):
        monkeypatch.setattr(cli.data, "cmd_territories", raising(exc))
        status, line = run("territories")
        assert status == 1, (exc, line)
        bilingual(line, english, chinese)
    # a long message is cut in its middle, not where the Chinese is
    monkeypatch.setattr(cli.data, "cmd_territories", raising(RuntimeError("x" * 2000)))
    _, line = run("territories")
    assert "并向开发方报告" in line and len(line) < 700
    # a long refusal (a hundred buildings named) keeps half the line for its Chinese
    from gridmap.errors import Invalid

    monkeypatch.setattr(cli.data, "cmd_territories", raising(Invalid("feature #1: empty; " * 60, "第 1 个要素：空；" * 60)))
    _, line = run("territories")
    english, chinese = line.split(" / ", 1)
    assert len(line) < 700 and len(chinese) >= 290 and chinese.endswith("…") and english.endswith("…")
    # and a command's own long message, "English / 中文" in one string
    long_en, long_zh = "feature #1: empty; " * 60, "第 1 个要素：空；" * 60
    monkeypatch.setattr(cli.data, "cmd_territories", raising(checks.UserError(f"{long_en} / {long_zh}")))
    _, line = run("territories")
    english, chinese = line.split(" / ", 1)
    assert len(line) < 700 and len(chinese) >= 290 and chinese.startswith("第 1 个要素")


def test_an_unreachable_database_says_it_in_both_languages(run) -> None:
    status, line = run("territories")
    assert status == 1
    bilingual(line, "cannot connect to the database", "无法连接数据库")
    assert "gridmap db status" in line


def test_a_local_database_that_is_not_running_says_it_in_both_languages(run, monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    monkeypatch.delenv("GRIDMAP_DATABASE_URL")
    monkeypatch.setenv("GRIDMAP_HOME", str(tmp_path / "no-cluster"))
    status, line = run("territories")
    assert status == 1
    assert CJK.search(line), line  # not running, or no PostgreSQL here at all: either way in both


def test_interrupted_says_it_in_both_languages(run, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.data, "cmd_territories", interrupted)
    capsys.readouterr()
    assert cli.main(["territories"]) == 130
    assert capsys.readouterr().err.strip() == "gridmap: interrupted / 已中断"


def test_refusals_from_the_database_layer_keep_their_chinese(database_url: str, run,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """users.UserError (user, apikey) and a missing territory, through the real database."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    for args, english, chinese in (
            (("user", "grant", "nobody", "--role", "planner", "--territory", "123456"), "no user 'nobody'",
             "没有用户 nobody"),
            (("apikey", "revoke", "no-such-key"), "no live API key named 'no-such-key'", "没有名为 no-such-key 的有效 API 密钥"),
            (("apikey", "create", "k1", "--user", "nobody"), "no active user 'nobody'", "没有启用中的用户 nobody"),
            (("plan", "validate", "999999"), "999999", "方案")):
        status, line = run(*args)
        assert status == 1, (args, line)
        bilingual(line, english, chinese)
