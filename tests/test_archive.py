"""``gridmap incidents archive``: finished incidents of old months go to a GeoPackage (read back
by GDAL's ogrinfo) and leave the database; open ones never do, nothing is lost when the file
cannot be written or an incident is reopened meanwhile."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pyogrio
import pytest
import sqlalchemy as sa

from gridmap.errors import Invalid, StateConflict
from gridmap.services import archiving
from gridmap.services import incidents as service
from test_incident_service import loop  # noqa: F401 - the fixture: Monaco published, categories, people

MONACO = "980100"
BEFORE = date.today() - timedelta(days=180)  # the demo's incidents go back 400 days from today
CUTOFF = datetime.combine(BEFORE, time(), tzinfo=service.calendar_from_env().zone)  # midnight, the city's day


@pytest.fixture
def history(loop):  # noqa: F811
    """Monaco with 400 days of synthetic incidents (a mix of every status), one of them the
    original of a duplicate still open."""
    engine, _, _ = loop
    stored, _ = service.load_demo_incidents(engine, MONACO, count=800, days=400, seed=3)
    assert stored > 500
    with engine.begin() as conn:
        original, duplicate = conn.execute(sa.text(
            "SELECT id FROM incidents WHERE status = 'closed' AND reported_at < :b ORDER BY id LIMIT 2"),
            {"b": CUTOFF - timedelta(days=30)}).scalars().all()
        conn.execute(sa.text("UPDATE incidents SET duplicate_of = :o, status = 'dispatched', closed_at = NULL "
                             "WHERE id = :d"), {"o": original, "d": duplicate})
        conn.execute(sa.text("UPDATE incidents SET description = '井盖缺失，路人险些跌倒' WHERE id = (SELECT min(id) "
                             "FROM incidents WHERE status = 'rejected' AND reported_at < :b)"),
                     {"b": CUTOFF - timedelta(days=30)})
    return engine, original


def _expected(engine: sa.Engine, original: int) -> set[int]:
    """What the rules leave the database, worked out here by plain SQL."""
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT id FROM incidents WHERE status IN ('closed', 'rejected') AND reported_at < :b AND id <> :o"),
            {"b": CUTOFF, "o": original}).scalars())


def _ids(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM incidents")).scalars())


def test_archive_writes_reads_back_and_removes_only_what_is_finished(history, database_url: str, tmp_path: Path
                                                                      ) -> None:
    engine, original = history
    expected = _expected(engine, original)
    before = _ids(engine)
    with engine.connect() as conn:
        open_old = conn.execute(sa.text("SELECT count(*) FROM incidents WHERE status NOT IN ('closed', 'rejected') "
                                        "AND reported_at < :b"), {"b": CUTOFF}).scalar_one()
        events = conn.execute(sa.text("SELECT count(*) FROM incident_events WHERE incident_id = ANY(:i)"),
                              {"i": list(expected)}).scalar_one()
    assert len(expected) > 100 and open_old > 0
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "gridmap.cli", "incidents", "archive", "--territory", MONACO, "--before", BEFORE.isoformat()]
    dry = subprocess.run([*cli, "--dry-run"], env=env, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert f"{len(expected)} finished incidents" in dry.stdout and "试运行" in dry.stdout
    assert _ids(engine) == before
    out = tmp_path / f"归档 {BEFORE:%Y-%m}.gpkg"
    done = subprocess.run([*cli, "--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} incidents removed" in done.stdout and "从数据库删除" in done.stdout
    # the database: exactly those gone, with their events; the open duplicate keeps its original
    assert _ids(engine) == before - expected
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incident_events WHERE incident_id = ANY(:i)"),
                            {"i": list(expected)}).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE duplicate_of = :o"),
                            {"o": original}).scalar_one() == 1
        audit = conn.execute(sa.text("SELECT after FROM audit_log WHERE action = 'incidents.archive'")).scalar_one()
    # the file, read back by GDAL's own tool and by pyogrio
    info = subprocess.run(["ogrinfo", "-so", "-al", str(out)], capture_output=True, text=True, check=True).stdout
    assert f"Feature Count: {len(expected)}" in info and f"Feature Count: {events}" in info
    assert "EPSG\",4490" in info.replace(" ", "") or "CGCS2000" in info
    points = pyogrio.read_dataframe(out, layer="incidents")
    assert set(points["status"]) <= {"closed", "rejected"} and len(points) == len(expected)
    assert "井盖缺失，路人险些跌倒" in set(points["description"])  # Chinese text kept
    assert "reporter_contact" not in points and "reporter_name" not in points  # left out unless asked
    assert points["public_id"].is_unique and points.geometry.is_valid.all()
    assert audit["incidents"] == len(expected) and audit["events"] == events
    assert audit["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # again: nothing left to archive, and an existing file is never written over
    again = subprocess.run([*cli, "--out", str(out)], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "never written over" in again.stderr and "不会被覆盖" in again.stderr


def test_a_file_that_cannot_be_written_removes_nothing(history, tmp_path: Path, monkeypatch) -> None:
    engine, _ = history
    before = _ids(engine)

    def broken(frame, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archiving.pyogrio, "write_dataframe", broken)
    out = tmp_path / "a.gpkg"
    with pytest.raises(Invalid, match="nothing was removed"):
        archiving.archive_incidents(engine, MONACO, BEFORE, out)
    assert _ids(engine) == before and not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("change", ["event", "duplicate"])
def test_an_incident_that_changes_meanwhile_rolls_the_removal_back(history, tmp_path: Path, monkeypatch,
                                                                   change: str) -> None:
    """While the file is written another user adds to one of the incidents' history (an event: it
    would be deleted unwritten) or reports a duplicate of it (it would lose its original): the
    removal rolls back whole."""
    engine, _ = history
    before = _ids(engine)
    write = archiving._write

    def write_then_change(out, incidents, events):
        digest = write(out, incidents, events)
        with engine.begin() as conn:
            target = conn.execute(sa.text("SELECT id FROM incidents WHERE public_id = :p"),
                                  {"p": incidents[-1]["public_id"]}).scalar_one()
            if change == "event":
                conn.execute(sa.text("INSERT INTO incident_events (incident_id, from_status, to_status, action, actor, "
                                     "note) VALUES (:i, 'closed', 'closed', 'note', 'someone', '补充说明')"), {"i": target})
            else:
                conn.execute(sa.text("UPDATE incidents SET duplicate_of = :t WHERE id = (SELECT max(id) FROM incidents "
                                     "WHERE status NOT IN ('closed', 'rejected'))"), {"t": target})
        return digest

    monkeypatch.setattr(archiving, "_write", write_then_change)
    out = tmp_path / "b.gpkg"
    with pytest.raises(StateConflict, match="nothing was removed") as refused:
        archiving.archive_incidents(engine, MONACO, BEFORE, out)
    assert "未删除任何事件" in refused.value.zh
    assert _ids(engine) == before and out.exists()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'incidents.archive'")).scalar() == 0
