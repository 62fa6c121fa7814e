"""Incidents in monthly partitions (migration 0024): every incident in its UTC month's partition,
the months ahead made by the supervision pass, a month without a partition caught by the default
one and left there, references to an incident (events, whistles, duplicates) kept by two-column
foreign keys whose time the database fills, months the archive empties dropped, and the making
of months giving up rather than queueing reports behind its lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from gridmap.services import incidents as service
from gridmap.services.archiving import archive_incidents
from gridmap.services.supervision import supervise
from gridmap.store import incident_partitions as partitions
from gridmap.store import incident_rollups
from gridmap.store import incident_stats as stats

MONACO = "980100"


@pytest.fixture
def published(monaco_published: sa.Engine) -> sa.Engine:
    """Monaco partitioned and published, the incident categories loaded, no incidents."""
    service.ensure_categories(monaco_published)
    return monaco_published


def frame_at(engine: sa.Engine, when: list[datetime], status: str = "reported") -> pd.DataFrame:
    """Incidents at the published grids' inner points, one reported at each of ``when``."""
    with engine.connect() as conn:
        spots = conn.execute(sa.text(
            "SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' ORDER BY g.code LIMIT :n"),
            {"n": len(when)}).all()
    times = pd.to_datetime(when, utc=True)
    frame = pd.DataFrame({"category_code": "0103", "description": "partition test",
                          "lon": [float(s[0]) for s in spots], "lat": [float(s[1]) for s in spots],
                          "reported_at": times, "due_at": times + pd.Timedelta(hours=4), "status": status})
    if status == "closed":
        frame = frame.assign(**{f"{s}_at": times + pd.Timedelta(hours=1) for s in
                                ("filed", "dispatched", "claimed", "handled", "verified", "closed")})
    return frame


def where_rows_are(engine: sa.Engine) -> set[tuple[str, str]]:
    """(partition, the UTC month of report) of every incident."""
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT DISTINCT tableoid::regclass::text, to_char(reported_at AT TIME ZONE 'UTC', 'YYYYMM') "
            "FROM incidents")).all())


def months(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {p.name for p in partitions.listing(conn, counted=False)}


def in_step(engine: sa.Engine) -> None:
    assert incident_rollups.check(engine) == {table: 0 for table in incident_rollups.TABLES}


def test_each_incident_lies_in_its_months_partition(published: sa.Engine) -> None:
    """A bulk load makes its months first; then each incident is in the partition of its UTC
    month (07:30 on 1 April in Beijing is March's), none in the default partition, the months
    ahead exist, and every reading of them sees the same rows."""
    engine = published
    stored, _ = service.load_demo_incidents(engine, MONACO, count=600, seed=5)
    edge = datetime(2026, 4, 1, 7, 30, tzinfo=timezone(timedelta(hours=8)))  # April in Beijing, 23:30 on 31 March UTC
    frame = frame_at(engine, [edge, edge + timedelta(hours=1)])  # 00:30 UTC on 1 April
    service.make_months(engine, frame)
    with engine.begin() as conn:
        assert service.bulk_load(conn, frame, source="import", synthetic=False) == (2, 0)
    placed = where_rows_are(engine)
    assert placed and all(table == f"incidents_{month}" for table, month in placed), placed
    with engine.connect() as conn:
        edges = conn.execute(sa.text("SELECT tableoid::regclass::text FROM incidents WHERE source = 'import' "
                                     "ORDER BY reported_at")).scalars().all()
    assert edges == ["incidents_202603", "incidents_202604"]
    today = datetime.now(timezone.utc).date()
    ahead = {f"incidents_{(pd.Timestamp(today) + pd.DateOffset(months=k)):%Y%m}" for k in range(4)}
    assert ahead <= months(engine)
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters())["total"] == stored + 2
        # a date range reads only its months (plan-time pruning by the report time)
        plan = "\n".join(conn.execute(sa.text(
            "EXPLAIN SELECT count(*) FROM incidents WHERE reported_at >= '2026-03-01T00:00Z' "
            "AND reported_at < '2026-04-01T00:00Z'")).scalars())
    assert "incidents_202603" in plan and "incidents_202604" not in plan and "incidents_default" not in plan
    in_step(engine)


def test_a_month_without_a_partition_goes_to_the_default_and_stays_there(published: sa.Engine,
                                                                          database_url: str) -> None:
    """Reports of a month that has no partition land in the default one; making that month later
    leaves it to the default (its rows would have to move), says so, and everything still counts
    them; a month made before its load holds its own."""
    engine = published
    old = frame_at(engine, [datetime(2015, 6, 3, 9, tzinfo=timezone.utc), datetime(2015, 6, 20, 9, tzinfo=timezone.utc)])
    with engine.begin() as conn:  # no make_months: a back-dated import
        assert service.bulk_load(conn, old, source="import", synthetic=False) == (2, 0)
    assert where_rows_are(engine) == {("incidents_default", "201506")}
    with engine.begin() as conn:
        assert partitions.ensure(conn, date(2015, 5, 1), date(2015, 7, 1)) == 2  # May and July, not June
        assert partitions.default_months(conn) == {date(2015, 6, 1): 2}
    assert {"incidents_201505", "incidents_201507"} <= months(engine) and "incidents_201506" not in months(engine)
    later = frame_at(engine, [datetime(2015, 7, 9, 9, tzinfo=timezone.utc)])
    service.make_months(engine, later)
    with engine.begin() as conn:
        service.bulk_load(conn, later, source="import", synthetic=False)
    assert ("incidents_201507", "201507") in where_rows_are(engine)
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters(start=datetime(2015, 1, 1, tzinfo=timezone.utc),
                                                       end=datetime(2016, 1, 1, tzinfo=timezone.utc)))["total"] == 3
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    shown = subprocess.run([sys.executable, "-m", "gridmap.cli", "incidents", "partitions"], env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "2015-06: 2 incidents in the default partition" in shown.stdout and "默认分区" in shown.stdout
    line = next(s for s in shown.stdout.splitlines() if s.startswith("incidents_201507"))
    assert line.split()[2] == "1"
    in_step(engine)


def test_references_to_an_incident_name_its_time_and_follow_it(published: sa.Engine) -> None:
    """An event, a whistle and a duplicate that name only the incident's id get its report time
    from the database; a reference to no incident is refused by the foreign key; deleting the
    original clears the duplicate's link (both columns) and takes its events and whistles with it."""
    engine = published
    frame = frame_at(engine, [datetime(2026, 2, 10, 9, tzinfo=timezone.utc), datetime(2026, 5, 10, 9, tzinfo=timezone.utc)])
    service.make_months(engine, frame)
    with engine.begin() as conn:
        service.bulk_load(conn, frame, source="import", synthetic=False, with_events=False)
        (a, a_at), (b, _) = conn.execute(sa.text("SELECT id, reported_at FROM incidents ORDER BY reported_at")).all()
        territory = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": MONACO}).scalar_one()
        conn.execute(sa.text("INSERT INTO incident_events (incident_id, to_status, action) VALUES (:a, 'filed', 'file')"),
                     {"a": a})
        conn.execute(sa.text(
            "INSERT INTO whistles (territory_id, incident_id, blown_by, blown_at, ack_due, arrive_due) "
            "VALUES (:t, :a, 'test', now(), now(), now())"), {"t": territory, "a": a})
        conn.execute(sa.text("UPDATE incidents SET duplicate_of = :a WHERE id = :b"), {"a": a, "b": b})
        assert conn.execute(sa.text("SELECT incident_reported_at FROM incident_events WHERE incident_id = :a"),
                            {"a": a}).scalar_one() == a_at
        assert conn.execute(sa.text("SELECT incident_reported_at FROM whistles")).scalar_one() == a_at
        assert conn.execute(sa.text("SELECT duplicate_of_reported_at FROM incidents WHERE id = :b"),
                            {"b": b}).scalar_one() == a_at
    for statement in ("INSERT INTO incident_events (incident_id, to_status) VALUES (-5, 'filed')",
                      "UPDATE incidents SET duplicate_of = -5 WHERE id = :b"):
        with pytest.raises(sa.exc.IntegrityError, match="foreign key"), engine.begin() as conn:
            conn.execute(sa.text(statement), {"b": b})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incidents WHERE id = :a"), {"a": a})
        assert conn.execute(sa.text("SELECT duplicate_of, duplicate_of_reported_at FROM incidents WHERE id = :b"),
                            {"b": b}).one() == (None, None)
        assert conn.execute(sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :a"), {"a": a}).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM whistles")).scalar_one() == 0
    in_step(engine)


def test_the_archive_drops_the_months_it_empties(published: sa.Engine, tmp_path) -> None:
    """Archiving every incident of a month drops its partition; a month still holding an
    incident that may not leave (open) keeps its own; the rollups stay in step."""
    engine = published
    done = frame_at(engine, [datetime(2016, 3, 5, 9, tzinfo=timezone.utc), datetime(2016, 3, 25, 9, tzinfo=timezone.utc),
                             datetime(2016, 4, 5, 9, tzinfo=timezone.utc)], status="closed")
    still_open = frame_at(engine, [datetime(2016, 4, 9, 9, tzinfo=timezone.utc)])
    for frame in (done, still_open):
        service.make_months(engine, frame)
        with engine.begin() as conn:
            service.bulk_load(conn, frame, source="import", synthetic=True)
    assert {"incidents_201603", "incidents_201604"} <= months(engine)
    summary = archive_incidents(engine, MONACO, date(2016, 6, 1), tmp_path / "2016.gpkg", zone=timezone.utc)
    # (empty months other tests left before June 2016 go too: the tests share the database's months)
    assert summary.removed == 3 and "incidents_201603" in summary.months_dropped
    assert all(name < "incidents_201606" for name in summary.months_dropped)
    assert "incidents_201603" in str(summary) and "incidents_201603" in summary.zh()
    assert "incidents_201603" not in months(engine) and "incidents_201604" in months(engine)
    assert where_rows_are(engine) == {("incidents_201604", "201604")}
    in_step(engine)
    # a report back-dated into the dropped month still has a home: the default partition
    late = frame_at(engine, [datetime(2016, 3, 7, 9, tzinfo=timezone.utc)])
    with engine.begin() as conn:
        assert service.bulk_load(conn, late, source="import", synthetic=False) == (1, 0)
    assert ("incidents_default", "201603") in where_rows_are(engine)


def test_making_months_gives_up_rather_than_queue_reports_behind_it(published: sa.Engine) -> None:
    """A long transaction that read every month holds the default partition: making a month (which
    must lock it) gives up after the lock timeout instead of waiting on, so a report arriving
    meanwhile (its duplicate search reads every month) waits at most that long; once the reader
    is gone the months are made, and the supervision pass makes those that come into range."""
    engine = published
    far = date(2031, 1, 15)
    spot = frame_at(engine, [datetime.now(timezone.utc)])
    gave_up: list[tuple[int, float]] = []

    def make() -> None:
        started = time.monotonic()
        with engine.begin() as conn:
            made = partitions.ensure_ahead(conn, far)
        gave_up.append((made, time.monotonic() - started))

    with engine.connect() as reader:
        reader.begin()
        reader.execute(sa.text("SELECT count(*) FROM incidents"))  # every month, the default too
        maker = threading.Thread(target=make)
        maker.start()
        time.sleep(0.2)
        report_s = _report(engine, spot)
        maker.join(10)
        reader.rollback()
    assert gave_up and gave_up[0][0] is None and 0.9 <= gave_up[0][1] < 5, gave_up  # None: busy
    assert report_s < gave_up[0][1] + 1.0
    assert "incidents_203101" not in months(engine)
    with engine.begin() as conn:
        assert partitions.ensure_ahead(conn, far) == 4
    assert {f"incidents_2031{m:02d}" for m in (1, 2, 3, 4)} <= months(engine)
    assert supervise(engine, now=datetime(2031, 3, 2, tzinfo=timezone.utc)).get("months") == 2  # May, June
    with engine.begin() as conn:  # no far months left to the next tests
        for m in range(1, 7):
            conn.execute(sa.text(f"ALTER TABLE incidents DETACH PARTITION incidents_2031{m:02d}"))
            conn.execute(sa.text(f"DROP TABLE incidents_2031{m:02d}"))


def _report(engine: sa.Engine, spot: pd.DataFrame) -> float:
    started = time.monotonic()
    service.report(engine, service.Report(category_code="0201", lon=float(spot.lon[0]), lat=float(spot.lat[0]),
                                          description="while a month is made"), actor="test")
    return time.monotonic() - started


def test_month_bounds_are_utc_whatever_the_session_says(published: sa.Engine) -> None:
    """A month made by a session in Beijing time with a day-month date style is bounded by UTC
    midnights all the same (the bounds are written out, not printed by the session)."""
    with published.begin() as conn:
        conn.execute(sa.text("SET LOCAL TimeZone = 'Asia/Shanghai'"))
        conn.execute(sa.text("SET LOCAL DateStyle = 'SQL, DMY'"))
        assert partitions.ensure(conn, date(2019, 1, 1), date(2019, 1, 31)) == 1
    with published.connect() as conn:
        conn.execute(sa.text("SET TimeZone = 'UTC'"))
        bounds = conn.execute(sa.text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                                      "WHERE relname = 'incidents_201901'")).scalar_one()
    assert bounds == "FOR VALUES FROM ('2019-01-01 00:00:00+00') TO ('2019-02-01 00:00:00+00')"


def test_two_makers_at_once_make_each_month_once(published: sa.Engine) -> None:
    """The server's pass, cron and a bulk load may make months at the same moment: they take
    turns (no duplicate table, no deadlock) and each month is made once."""
    made: list[int] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:
            with published.begin() as conn:
                made.append(partitions.ensure(conn, date(2041, 1, 1), date(2041, 6, 1)))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and sorted(made) == [0, 0, 6]
    with published.begin() as conn:
        for m in range(1, 7):
            conn.execute(sa.text(f"ALTER TABLE incidents DETACH PARTITION incidents_2041{m:02d}"))
            conn.execute(sa.text(f"DROP TABLE incidents_2041{m:02d}"))
