"""The `gridmap` command end to end: version, help, `up` (the quickstart path) and `serve`."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy.engine import make_url

from gridmap import __version__
from gridmap.store.databases import drop_database

GRIDMAP = [sys.executable, "-m", "gridmap.cli"]


def test_version() -> None:
    out = subprocess.run([*GRIDMAP, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"gridmap {__version__}"


def test_help_lists_the_subcommands() -> None:
    out = subprocess.run([*GRIDMAP, "--help"], capture_output=True, text=True).stdout
    for command in ("db", "migrate", "demo", "import", "serve", "up", "territories"):
        assert command in out
    bare = subprocess.run(GRIDMAP, capture_output=True, text=True)
    assert bare.returncode == 2


def test_unreachable_database_is_a_clear_error() -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    out = subprocess.run([*GRIDMAP, "territories"], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "Connection refused" in out.stderr or "could not connect" in out.stderr


@pytest.fixture
def fresh_url(server_url: str):
    url = make_url(server_url).set(database=f"gridmap_up_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    yield url
    drop_database(url)


def test_the_quickstarts_published_plans_pass_their_own_validation(demo_database) -> None:
    """Every demo territory's published plan, as ``gridmap up`` builds it (units built, some
    communities rebuilt at building grain and stitched to their neighbours), has no validation
    error: the units of each community tile it, their borders match vertex for vertex across
    communities built apart. Reykjavík's had two mismatched borders (two copies of one crossing
    1e-10° apart) until the stitching took them for one point."""
    from gridmap.services import planning
    from gridmap.store import plans
    from gridmap.store.db import engine_for, normalise_url

    assert demo_database.first_run.returncode == 0, demo_database.first_run.stderr
    engine = engine_for(normalise_url(demo_database.url))
    for territory in ("990100", "980100", "511802"):
        with engine.connect() as conn:
            plan_id = plans.find(conn, territory, "published").id
        checked = planning.validate(engine, plan_id)
        assert checked["errors"] == 0, (territory, [p["message_en"] for p in checked["problems"]
                                                    if p["severity"] == "error"])


def test_up_without_the_demo_is_a_database_for_a_districts_own_data(fresh_url, tmp_path) -> None:
    """`gridmap up --no-demo --no-serve`: migrated, the incident categories and the admin user,
    and not one demo territory, plan, incident or registration (a district office's own database)."""
    import sqlalchemy as sa

    from gridmap.store.db import engine_for, normalise_url

    env = {**os.environ, "GRIDMAP_DATABASE_URL": fresh_url, "GRIDMAP_HOME": str(tmp_path)}
    done = subprocess.run([*GRIDMAP, "up", "--no-demo", "--no-serve"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "created user 'admin'" in done.stderr and "loading demo" not in done.stderr
    engine = engine_for(normalise_url(fresh_url))
    try:
        with engine.connect() as conn:
            counts = conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM territories), (SELECT count(*) FROM plans), "
                "(SELECT count(*) FROM incidents), (SELECT count(*) FROM registrations), "
                "(SELECT count(*) FROM incident_categories), (SELECT count(*) FROM users)")).one()
    finally:
        engine.dispose()
    assert counts[:4] == (0, 0, 0, 0) and counts[4] > 0 and counts[5] == 1, counts
    listing = subprocess.run([*GRIDMAP, "territories"], env=env, capture_output=True, text=True)
    assert listing.returncode == 0 and "990100" not in listing.stdout and "511802" not in listing.stdout


def test_up_creates_migrates_loads_and_is_fast_the_second_time(demo_database) -> None:
    env, first, tmp_path = demo_database.env, demo_database.first_run, demo_database.home
    assert first.returncode == 0, first.stderr
    assert "loading demo reykjavik" in first.stderr and "applying migrations" in first.stderr
    # the Chinese demo district imported from its own files, a published plan for each demo
    # territory (Reykjavík, Monaco, 雨城区) and an administrator to sign in with
    assert "the Chinese demo district 雨城区 from its own files" in first.stderr
    assert first.stderr.count("published draft plan 1") == 3
    assert "for 511802: " in first.stderr
    secret = tmp_path / "admin-password"
    assert "created user 'admin'" in first.stderr and secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text().strip() in first.stderr
    key = tmp_path / "secret.key"  # the key of personal data, written once, readable by its owner only
    assert key.stat().st_mode & 0o777 == 0o600 and "wrote the key of personal data" in first.stderr
    key_text = key.read_text()
    for code in ("990100", "511802"):  # 双报到 at the seed's scale, labelled synthetic
        counted = subprocess.run([*GRIDMAP, "registrations", "summary", "--territory", code, "--json"], env=env,
                                 capture_output=True, text=True)
        summary = json.loads(counted.stdout)
        assert 18_900 < summary["registered"] <= 19_000 and summary["totals"]["hours"] > 0, counted.stderr
    started = time.monotonic()
    second = subprocess.run([*GRIDMAP, "up", "--no-serve"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("up to date") == 3 and "loading demo" not in second.stderr
    assert time.monotonic() - started < 30
    assert "created user" not in second.stderr and "published" not in second.stderr
    assert "双报到" not in second.stderr and "wrote the key" not in second.stderr and key.read_text() == key_text
    assert "雨城区 from its own files" not in second.stderr  # imported once
    listing = subprocess.run([*GRIDMAP, "territories"], env=env, capture_output=True, text=True).stdout
    assert "990101001001" in listing and "雨城区" in listing

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*GRIDMAP, *args], env=env, capture_output=True, text=True, input=stdin)

    assert "published" in run("plan", "history", "980100").stdout
    made = run("plan", "draft", "980100")
    assert made.returncode == 0 and "draft plan 2" in made.stdout, made.stderr
    draft_id = re.search(r"\(id (\d+)\)", made.stdout).group(1)
    checked = run("plan", "validate", draft_id)
    assert "errors" in checked.stdout and checked.returncode in (0, 1)
    assert "0 grids added, 0 removed, 0 changed, 0 units moved" in run("plan", "diff", draft_id).stdout
    added = run("user", "add", "ana", "--role", "planner", "--territory", "980100", "--password-stdin",
                stdin="long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "short" not in run("user", "list").stdout and "planner@980100" in run("user", "list").stdout
    weak = run("user", "add", "bob", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "at least 8 characters" in weak.stderr
    published = run("plan", "publish", draft_id)
    assert published.returncode == 0 and f"plan {draft_id} published" in published.stdout


def test_serve_answers_landing_and_docs(fresh_url: str) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": fresh_url}
    from gridmap.store.databases import ensure_postgis_database

    ensure_postgis_database(fresh_url)
    migrated = subprocess.run([*GRIDMAP, "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0 and "schema at revision" in migrated.stdout, migrated.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([*GRIDMAP, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                landing = urllib.request.urlopen(urllib.request.Request(  # as a browser asks: HTML
                    f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"}), timeout=2).read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "server did not answer"
                time.sleep(0.2)
        assert "网格地图" in landing
        docs = urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
