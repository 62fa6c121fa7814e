"""Every message the ``gridmap`` command prints is in English and Chinese (the project's rule for
whatever a user sees): a planning day on Monaco through ``gridmap.cli.main`` in this process, each
answer checked for its English and its Chinese. The English is asserted unchanged too, since
scripts match it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa

from gridmap import cli

MONACO = "980100"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def run(monaco_built: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture):
    """``gridmap ARGS`` in this process against Monaco (units built): (status, stdout, stderr)."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.delenv("GRIDMAP_DEBUG", raising=False)

    def go(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        assert status in (0, 1), err
        return status, out, err

    return go


def both(text: str, english: str, chinese: str) -> None:
    """``text`` says ``english`` and ``chinese`` (each a substring)."""
    assert english in text, text
    assert chinese in text, text


def every_line_has_chinese(text: str) -> None:
    """No line of ``text`` without a Chinese counterpart: each line holds Chinese, or the next one does."""
    lines = [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        assert CJK.search(line) or (i + 1 < len(lines) and CJK.search(lines[i + 1])), (line, text)


def gbk_shapefile_without_cpg(folder: Path) -> Path:
    """Two buildings in Monaco, a Chinese field name and GBK text, no .cpg: import guesses GBK."""
    frame = gpd.GeoDataFrame({"户数": [12, 30], "名称": ["一号楼", "二号楼"]},
                             geometry=[shapely.box(7.4200, 43.7300, 7.4202, 43.7302),
                                       shapely.box(7.4210, 43.7310, 7.4212, 43.7312)], crs=4326)
    path = folder / "楼.shp"
    frame.to_file(path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def test_a_planning_day_answers_in_both_languages(run, tmp_path: Path) -> None:
    _, out, _ = run("profile", "set", "default", "--territory", MONACO)
    both(out, f"territory {MONACO} (and those under it without their own) now follows profile default",
         f"辖区 {MONACO}（及其下未设自己规则的辖区）现采用规则 default")
    every_line_has_chinese(out)

    _, out, _ = run("import", str(gbk_shapefile_without_cpg(tmp_path)), "--territory", MONACO, "--layer", "extra")
    both(out, "imported 2 features into layer 'extra'", "已导入 2 个要素")
    both(out, "note: attributes are not UTF-8 and the shapefile has no .cpg: decoded as GBK", "已按 GBK 解码")
    both(out, "fields: 户数 → households", "字段：户数 → households")
    every_line_has_chinese(out)
    _, out, _ = run("import", str(gbk_shapefile_without_cpg(tmp_path)), "--territory", MONACO, "--layer", "楼栋二期")
    _, out, _ = run("layers", "--territory", MONACO)  # a header in both languages, Chinese names lined up
    lines = out.splitlines()
    assert lines[0].startswith("layer / 图层") and "kind / 类型" in lines[0] and "features / 要素数" in lines[0]
    extra, chinese = next(x for x in lines if x.startswith("extra ")), next(x for x in lines if x.startswith("楼栋二期"))
    import unicodedata

    def column(line: str, text: str) -> int:  # where ``text`` starts, as a terminal shows it
        head = line[:line.index(text)]
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in head)

    assert column(extra, " 2 ") == column(chinese, " 2 ")  # the feature counts in one column

    report = tmp_path / "report.html"
    _, out, _ = run("partition", "--territory", MONACO, "--report", str(report))
    both(out, f"report written to {report}", f"报告已写入 {report}")
    plan_id = re.search(r"\(id (\d+)\)", out).group(1)
    assert "Monaco（980100）· 方案草稿" in report.read_text(encoding="utf-8")  # named, not a bare code
    every_line_has_chinese(out)

    _, out, _ = run("partition", "--micro", "--plan", plan_id)
    flags = re.search(r"; (\d+) flags", out).group(1)
    cut = re.search(r"\((\d+) cut by their 单元\)", out).group(1)
    both(out, f"{flags} flags", f"{flags} 条标记")
    assert f"{cut} 栋按单元拆分" in out, out
    every_line_has_chinese(out)

    status, out, _ = run("plan", "validate", plan_id)
    both(out, "errors, ", "个错误")
    every_line_has_chinese(out)
    _, out, _ = run("plan", "publish", plan_id)
    both(out, f"plan {plan_id} published; previous published plan: none", f"方案 {plan_id} 已发布；此前发布的方案：无")
    _, out, _ = run("plan", "history", MONACO)
    both(out, "published", "已发布")
    every_line_has_chinese(out)
    _, out, _ = run("plan", "draft", MONACO)
    both(out, "draft plan 2", "方案草稿 2")
    draft_id = re.search(r"\(id (\d+)\)", out).group(1)
    _, out, _ = run("plan", "diff", draft_id)
    both(out, "0 grids added, 0 removed, 0 changed, 0 units moved", "新增 0 个网格，删除 0 个，改变 0 个，移动 0 个单元")

    target = tmp_path / "monaco.zip"
    _, out, _ = run("export", "--territory", MONACO, "--format", "shp", "--layers", "grids,microgrids",
                    "--out", str(target))
    both(out, f"wrote {target}", f"已写入 {target}")
    assert re.search(r"网格 \d+，微网格 \d+", out), out
    every_line_has_chinese(out)

    _, out, _ = run("migrate")
    both(out, "schema at revision", "数据库结构版本")
    _, out, _ = run("user", "add", "ana", "--role", "planner", "--territory", MONACO, "--password-stdin",
                    stdin="long enough password\n")
    both(out, f"user ana: add done (planner@{MONACO})", "用户 ana：已添加")
    _, out, _ = run("demo", "--only", "monaco", "--force")
    both(out, "monaco: 9 territories", "monaco：9 个辖区")
    every_line_has_chinese(out)


def test_the_cluster_state_is_said_in_both_languages(tmp_path: Path) -> None:
    from gridmap.store.cluster import ClusterStatus

    running = ClusterStatus(True, True, 5433, tmp_path, 42)
    assert running.describe().startswith("running (pid 42) on 127.0.0.1:5433")
    assert running.describe_zh().startswith("运行中（进程 42）")
    assert "尚未初始化" in ClusterStatus(False, False, None, tmp_path, None).describe_zh()
    assert ClusterStatus(True, False, None, tmp_path, None).describe_zh().startswith("已停止")
