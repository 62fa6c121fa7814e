"""`gridmap` errors: arguments are checked before anything is written, and every error is one
line on stderr (what went wrong, what to do) with a non-zero status, tracebacks only on request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap import cli
from samples import run_cli

MONACO = "980100"
GRIDMAP = [sys.executable, "-m", "gridmap.cli"]
# what a command could write: a changed count or a new audit entry means it wrote something
STATE = ("SELECT json_build_object('plans', (SELECT count(*) FROM plans), 'grids', (SELECT count(*) FROM grids), "
         "'units', (SELECT count(*) FROM units), 'layers', (SELECT count(*) FROM layers), "
         "'stations', (SELECT count(*) FROM stations), 'users', (SELECT count(*) FROM users), "
         "'user_roles', (SELECT count(*) FROM user_roles), 'plan_edits', (SELECT count(*) FROM plan_edits), "
         "'department_grids', (SELECT count(*) FROM department_grids), "
         "'audit_log', (SELECT COALESCE(max(id), 0) FROM audit_log))")


def state(engine: sa.Engine) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text(STATE)).scalar_one()


def one_error_line(stderr: str) -> str:
    """The one line of an error: "gridmap ...: error: ...", in English and Chinese (tests/test_cli_messages.py)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gridmap") and "error:" in lines[0] and "Traceback" not in stderr, stderr
    assert re.search(r" / .*[\u4e00-\u9fff]", lines[0]), f"no Chinese after ' / ': {lines[0]}"
    return lines[0]


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``gridmap ARGS`` in this process against the test database: (status, stdout, stderr)."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.delenv("GRIDMAP_DEBUG", raising=False)

    def go(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, *args)

    return go


def test_partition_report_into_a_missing_folder_stores_no_plan(monaco: sa.Engine, database_url: str,
                                                                 tmp_path: Path) -> None:
    """The reported case: the draft plan used to be stored before the report failed with a traceback."""
    before = state(monaco)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    env.pop("GRIDMAP_DEBUG", None)
    done = subprocess.run([*GRIDMAP, "partition", "--territory", MONACO, "--report", str(tmp_path / "out" / "x.html")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert "out" in line and "does not exist" in line and "mkdir" in line
    assert done.stdout == ""
    assert state(monaco) == before  # no plan, no units, nothing in the audit log
    assert not (tmp_path / "out").exists()


@pytest.fixture
def published(monaco_published: sa.Engine) -> sa.Engine:
    monaco = monaco_published  # Monaco with its first partition published (conftest)

    return monaco


def test_missing_output_folders_are_refused_before_writing(published: sa.Engine, run, tmp_path: Path) -> None:
    before = state(published)
    missing = tmp_path / "nowhere"
    for args in (["export", "--territory", MONACO, "--format", "gpkg", "--out", str(missing / "grids.gpkg")],
                 ["db", "dump", "--territory", MONACO, "--out", str(missing / "monaco.zip")],
                 ["departments", "--territory", MONACO, "--out", str(missing / "layers" / "departments")],
                 ["partition", "--territory", MONACO, "--report", str(missing / "report.html")]):
        status, out, err = run(*args)
        assert status == 1, (args, err)
        line = one_error_line(err)
        assert "does not exist" in line and "mkdir -p" in line, (args, line)
        assert not missing.exists(), args
        assert state(published) == before, args
    # an output that is a folder, or a folder that is a file
    status, _, err = run("export", "--territory", MONACO, "--format", "gpkg", "--out", str(tmp_path))
    assert status == 1 and "is a folder" in one_error_line(err)
    (tmp_path / "file").write_text("x")
    status, _, err = run("departments", "--territory", MONACO, "--out", str(tmp_path / "file"))
    assert status == 1 and "not a folder" in one_error_line(err)
    assert state(published) == before


def test_missing_inputs_and_unknown_territories_are_refused_before_writing(published: sa.Engine, run,
                                                                            tmp_path: Path) -> None:
    from samples import write

    gpkg = write("gpkg", tmp_path / "sample")
    points = write("csv-lonlat", tmp_path / "points")
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "operations": [{"op": "set", "grid": "x", "name": "y"}]}))
    with published.connect() as conn:
        plan_id = str(conn.execute(sa.text("SELECT max(id) FROM plans")).scalar_one())
    before = state(published)
    nothing = str(tmp_path / "nothing.gpkg")
    cases = {
        # a missing input file
        ("import", nothing, "--territory", MONACO): "no such file",
        ("merge", "--territory", MONACO, str(gpkg), nothing): "no such file",
        ("merge", "--territory", MONACO, "--access-list", nothing, str(gpkg)): "no such file",
        ("stations", "import", nothing, "--territory", MONACO, "--type", "pharmacy"): "no such file",
        ("plan", "edits", plan_id, str(tmp_path / "nothing.json")): "no such file",
        ("db", "restore", str(tmp_path / "nothing.zip")): "no such file",
        # a territory that does not exist
        ("import", str(gpkg), "--territory", "123456"): "no territory with code '123456'",
        ("partition", "--territory", "123456"): "no territory with code '123456'",
        ("merge", "--territory", "123456", str(gpkg)): "no territory with code '123456'",
        ("stations", "import", str(points), "--territory", "123456", "--type", "pharmacy"):
            "no territory with code '123456'",
        ("departments", "--territory", "123456", "--out", str(tmp_path / "d")): "no territory with code '123456'",
        ("export", "--territory", "123456", "--format", "gpkg", "--out", str(tmp_path / "x.gpkg")):
            "no territory with code '123456'",
        ("db", "dump", "--territory", "123456", "--out", str(tmp_path / "x.zip")): "no territory with code '123456'",
        ("plan", "draft", "123456"): "no territory with code '123456'",
        ("layers", "--territory", "123456"): "no territory with code '123456'",
        ("user", "add", "eve", "--role", "planner", "--territory", "123456", "--password-stdin"):
            "no territory with code '123456'",
        # values, formats and combinations that cannot work
        ("plan", "publish", "first"): "a plan ID is a number",
        ("plan", "edits", plan_id): "usage: gridmap plan edits ID FILE.json",
        ("export", "--territory", MONACO, "--format", "kml", "--crs", "gk3", "--out", str(tmp_path / "x.kml")):
            "always longitude/latitude",
        ("export", "--territory", MONACO, "--format", "gpkg", "--layers", "grids,roads", "--out",
         str(tmp_path / "x.gpkg")): "unknown layer(s) roads",
        ("export", "--territory", MONACO, "--format", "gpkg", "--plan", "latest", "--out", str(tmp_path / "x.gpkg")):
            "--plan 'latest'",
        ("import", str(gpkg), "--territory", MONACO, "--crs", "EPSG:99999999"): "unknown coordinate system",
        ("import", str(gpkg), "--territory", MONACO, "--encoding", "klingon"): "unknown text encoding",
        ("partition", "--territory", MONACO, "--min", "600", "--max", "400"): "--min 600 is above --max 400",
        ("stations", "import", str(points), "--territory", MONACO, "--type", "castle"): "unknown station type",
        ("user", "add", "eve", "--role", "planner", "--password-stdin"): "needs --territory CODE",
        ("user", "grant", "nobody", "--role", "planner", "--territory", MONACO): "no user 'nobody'",
    }
    for args, expected in cases.items():
        status, out, err = run(*args)
        assert status == 1, (args, status, err)
        line = one_error_line(err)
        assert expected in line, (args, line)
        assert state(published) == before, args
    assert not (tmp_path / "d").exists() and not (tmp_path / "x.gpkg").exists() and not (tmp_path / "x.zip").exists()
    # edits files that are not what `plan edits` reads
    for text, expected in (("{not json", "is not valid JSON"), ('{"version": 1}', '"operations": [...]'),
                           ('{"version": "one", "operations": [{"op": "set"}]}', '"version" must be a whole number')):
        edits.write_text(text)
        status, _, err = run("plan", "edits", plan_id, str(edits))
        assert status == 1 and expected in one_error_line(err), (text, err)
    assert state(published) == before


def test_usage_mistakes_are_one_line(run) -> None:
    for args, expected in ((["partition"], "the following arguments are required: --territory"),
                           (["partition", "--territory", MONACO, "--min", "0"], "argument --min: 0 is not positive"),
                           (["export", "--territory", MONACO, "--format", "dwg", "--out", "x"], "invalid choice"),
                           (["serve", "--port", "99999"], "not a port number"),
                           (["stations", "coverage", "--minutes", "-5"], "not a positive number")):
        status, out, err = run(*args)
        assert status == 2, (args, err)
        line = one_error_line(err)
        assert expected in line and "--help" in line, (args, line)


def test_unexpected_errors_are_one_line_and_say_how_to_see_the_traceback(run, monkeypatch) -> None:
    def broken(args):
        raise RuntimeError("the flux capacitor is empty\nsecond line")

    monkeypatch.setattr(cli.data, "cmd_territories", broken)
    status, _, err = run("territories")
    line = one_error_line(err)
    assert status == 1
    assert "RuntimeError" in line and "the flux capacitor is empty second line" in line and "GRIDMAP_DEBUG=1" in line
    monkeypatch.setenv("GRIDMAP_DEBUG", "1")
    status, _, err = run("territories")
    assert status == 1 and "Traceback" in err and "the flux capacitor is empty" in err.splitlines()[-1]


def test_an_unreachable_database_is_one_line() -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    env.pop("GRIDMAP_DEBUG", None)
    for args in (["territories"], ["partition", "--territory", MONACO], ["plan", "history", MONACO]):
        out = subprocess.run([*GRIDMAP, *args], env=env, capture_output=True, text=True)
        assert out.returncode == 1
        line = one_error_line(out.stderr)
        assert "Connection refused" in line and "gridmap db status" in line


def test_a_user_added_is_audited_with_the_grant_and_a_refused_grant_leaves_nothing(published: sa.Engine, run,
                                                                                     monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    status, out, err = run("user", "add", "ana", "--role", "planner", "--territory", MONACO, "--password-stdin")
    assert status == 0, err
    with published.connect() as conn:
        after = conn.execute(sa.text("SELECT after FROM audit_log WHERE action = 'user.add' AND row_key = 'ana'")
                             ).scalar_one()
    assert after == {"role": "planner", "territory": MONACO, "everywhere": False, "department": None, "grids": None}
    before = state(published)
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    status, _, err = run("user", "add", "bob", "--role", "handler", "--territory", MONACO, "--department", "nope",
                         "--password-stdin")  # the user is created, then the grant refused: both undone
    assert status == 1 and "no department with code 'nope'" in one_error_line(err)
    assert state(published) == before  # no user bob, no audit entry


def test_a_database_never_migrated_says_run_migrate(server_url: str, monkeypatch, capsys) -> None:
    """A district's own first step on a database of its own, before `gridmap migrate`: pandas wraps
    the database's "relation does not exist" in its own DatabaseError, which was called a bug."""
    import secrets

    from sqlalchemy.engine import make_url

    from gridmap.store.databases import drop_database, ensure_postgis_database

    url = make_url(server_url).set(database=f"gridmap_bare_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    ensure_postgis_database(url)  # created, PostGIS on, no tables
    try:
        monkeypatch.setenv("GRIDMAP_DATABASE_URL", url)
        folder = Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng"
        status, _, err = run_cli(capsys, "territory", "import", str(folder / "社区.shp"), "--parent", "511800",
                                 "--dry-run")
        assert status == 1
        line = one_error_line(err)
        assert "run `gridmap migrate`" in line and "territories" in line and "bug" not in line
    finally:
        drop_database(url)
