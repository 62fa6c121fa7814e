"""The dashboard's monthly rollups (migration 0023): kept in step with the incidents by every kind
of write (a bulk load, a report, each step of the loop, an escalation, a publish that re-routes,
a direct DELETE, a TRUNCATE, reports from several connections at once), checked and rebuilt by
``gridmap incidents rollups``, and the figures read from them equal the same figures counted
from the incidents themselves, for date ranges that cut months anywhere (hypothesis)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.services import incidents as service
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from gridmap.store import incident_rollups
from gridmap.store import incident_stats as stats

MONACO = "980100"


@pytest.fixture
def loaded(monaco_published: sa.Engine) -> sa.Engine:
    """Monaco partitioned and published, with a year of demo incidents (a bulk load)."""
    service.load_demo_incidents(monaco_published, MONACO, count=1200, seed=3)
    return monaco_published


def in_step(engine: sa.Engine) -> None:
    differ = incident_rollups.check(engine)
    assert differ == {table: 0 for table in incident_rollups.TABLES}, differ


def raw_total(engine: sa.Engine, start: datetime | None = None, end: datetime | None = None) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM incidents WHERE (CAST(:s AS timestamptz) IS NULL OR reported_at >= :s) "
            "AND (CAST(:e AS timestamptz) IS NULL OR reported_at < :e)"), {"s": start, "e": end}).scalar_one()


def points(engine: sa.Engine, n: int) -> list[tuple[float, float]]:
    """``n`` points inside published grids (the grids' inner points)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' ORDER BY g.code LIMIT :n"), {"n": n}).all()
    return [(float(x), float(y)) for x, y in rows]


def test_every_kind_of_write_keeps_the_rollups_in_step(loaded: sa.Engine, database_url: str) -> None:
    engine = loaded
    in_step(engine)  # after the bulk load
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters())["total"] == raw_total(engine) > 1000
    # single reports, then every step of the loop on one of them, a rejection on another
    where = points(engine, 3)
    made = [service.report(engine, service.Report(category_code="0201", lon=x, lat=y, description="rollup test"),
                           actor="test")["public_id"] for x, y in where]
    in_step(engine)
    for action in ("file", "dispatch", "claim", "handle", "verify", "close"):
        service.transition(engine, made[0], action, actor="test")
    service.transition(engine, made[1], "reject", actor="test")
    in_step(engine)
    with engine.connect() as conn:
        summary = stats.summary(conn, MONACO, stats.Filters())
        assert summary["total"] == raw_total(engine)
        assert summary["rejected"] == conn.execute(sa.text(
            "SELECT count(*) FROM incidents WHERE status = 'rejected'")).scalar_one()
    # the supervision pass, long after everything fell due
    service.escalate_overdue(engine, now=datetime.now(timezone.utc) + timedelta(days=30), actor="test")
    in_step(engine)
    # a fresh partition published: incidents re-routed to other lineages
    fresh = partition_territory(engine, MONACO, seed=7)
    planning.publish(engine, fresh.plan_id, version=None, actor="test")
    in_step(engine)
    with engine.connect() as conn:
        fc = stats.choropleth(conn, MONACO, stats.Filters(), metrics=("per_1000_households",))
    assert sum(f["properties"]["incidents"] for f in fc["features"]) == raw_total(engine)
    # a direct DELETE (as a database administrator might), then drift, found and repaired
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE status = 'closed' "
                             "AND NOT EXISTS (SELECT 1 FROM whistles w WHERE w.incident_id = incidents.id) "
                             "ORDER BY id LIMIT 50)"))
    in_step(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE incident_grid_months SET incidents = incidents + 1 WHERE ctid = "
                             "(SELECT ctid FROM incident_grid_months WHERE incidents > 0 LIMIT 1)"))
        conn.execute(sa.text("DELETE FROM incident_cell_months WHERE ctid = "
                             "(SELECT ctid FROM incident_cell_months WHERE incidents > 0 LIMIT 1)"))
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "gridmap.cli", "incidents", "rollups"]
    found = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "incident_grid_months: 1 keys differ" in found.stdout and "incident_cell_months: 1 keys differ" in found.stdout
    assert "--rebuild" in found.stdout and "不一致" in found.stdout
    fixed = subprocess.run([*cli, "--rebuild"], env=env, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    again = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "agree" in again.stdout and "一致" in again.stdout, again.stdout
    # TRUNCATE empties them too, and a load afterwards starts from nothing
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE incidents CASCADE"))
        assert all(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() == 0 for t in incident_rollups.TABLES)


def test_reports_from_several_connections_at_once(loaded: sa.Engine) -> None:
    """Eight connections report into the same few grids and categories at the same time and take
    steps on each other's months: every report is counted once, none waits forever."""
    engine = loaded
    where = points(engine, 2)
    errors: list[BaseException] = []
    before = raw_total(engine)

    def worker(n: int) -> None:
        try:
            for i in range(12):
                x, y = where[(n + i) % 2]
                made = service.report(engine, service.Report(category_code=("0201", "0103")[i % 2], lon=x, lat=y),
                                      actor=f"worker{n}")["public_id"]
                service.transition(engine, made, "file", actor=f"worker{n}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    assert raw_total(engine) == before + 96
    in_step(engine)
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters())["by_status"]["filed"] == conn.execute(sa.text(
            "SELECT count(*) FROM incidents WHERE status = 'filed'")).scalar_one()


@pytest.fixture
def span(loaded: sa.Engine) -> tuple[sa.Engine, datetime, datetime]:
    with loaded.connect() as conn:
        first, last = conn.execute(sa.text("SELECT min(reported_at), max(reported_at) FROM incidents")).one()
    return loaded, first, last


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.floats(0, 1), b=st.floats(0, 1), category=st.sampled_from([None, "0103", "0201"]),
       statuses=st.sampled_from([None, ("closed",), ("dispatched", "claimed", "handled", "verified"), ("rejected",)]))
def test_ranges_that_cut_months_anywhere_count_what_the_incidents_do(span, a: float, b: float, category: str | None,
                                                                    statuses: tuple[str, ...] | None) -> None:
    """Whole months from the rollups, the days at the ends from the incidents: the summary's
    totals, overdue and months, the choropleth's grids and overdue, the heat cells' and the month
    play's counts all equal the same counts taken from the incidents in that range (the
    conditions written here, not the code's)."""
    engine, first, last = span
    low, high = sorted((a, b))
    start = first + (last - first) * low - timedelta(hours=1)
    end = first + (last - first) * high + timedelta(hours=1)
    filters = stats.Filters(category=category, statuses=statuses, start=start, end=end)
    where = ("i.reported_at >= :s AND i.reported_at < :e AND (CAST(:c AS text) IS NULL OR i.category_code = :c) "
             "AND (CAST(:st AS text[]) IS NULL OR i.status = ANY(:st))")
    params = {"s": start, "e": end, "c": category, "st": list(statuses) if statuses else None}
    late = "COALESCE(i.closed_at, now()) > i.due_at AND i.status <> 'rejected'"
    with engine.connect() as conn:
        expected = {r.month: (r.n, r.late) for r in conn.execute(sa.text(
            "SELECT to_char(date_trunc('month', i.reported_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month, count(*) AS n, "
            f"count(*) FILTER (WHERE {late}) AS late FROM incidents i WHERE {where} GROUP BY 1"), params)}
        per_grid = {r.code: (r.n, float(r.rate)) for r in conn.execute(sa.text(
            f"SELECT g.code, count(*) AS n, round(count(*) FILTER (WHERE {late})::numeric / count(*), 3) AS rate "
            "FROM incidents i "
            "JOIN grids g ON g.lineage = i.grid_lineage "
            f"JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE {where} GROUP BY 1"), params)}
        summary = stats.summary(conn, MONACO, filters)
        fc = stats.choropleth(conn, MONACO, filters, metrics=("per_1000_households", "overdue_rate"))
        heat = stats.heat(conn, MONACO, filters, cell_deg=0.002)
        play = stats.monthly_clusters(conn, MONACO, filters, cell_deg=0.005)
        clusters = stats.clusters(conn, MONACO, filters, cell_deg=0.003)
        close_in = stats.clusters(conn, MONACO, filters, cell_deg=0.0005)  # zoom 17: from the incidents
        box = (7.41, 43.72, 7.425, 43.735)  # the cells it touches, as the map asks for its view
        boxed = stats.clusters(conn, MONACO, filters, cell_deg=0.003, bbox=box)
        in_box = conn.execute(sa.text(
            f"SELECT count(*) FROM incidents i WHERE {where} AND floor(ST_X(i.geom) * 1024) BETWEEN floor(:x0 * 1024) "
            "AND floor(:x1 * 1024) AND floor(ST_Y(i.geom) * 1024) BETWEEN floor(:y0 * 1024) AND floor(:y1 * 1024)"),
            {**params, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]}).scalar_one()
        open_now = conn.execute(sa.text(f"SELECT count(*) FROM incidents i WHERE {where} "
                                        "AND i.status NOT IN ('closed', 'rejected')"), params).scalar_one()
        singles = {c["incident"]: c for c in clusters if c["count"] == 1}
        found = conn.execute(sa.text(
            f"SELECT i.public_id, ST_X(i.geom), ST_Y(i.geom) FROM incidents i WHERE {where} AND i.public_id = ANY(:p)"),
            {**params, "p": [p for p in singles if p]}).all()
    total = sum(n for n, _ in expected.values())
    # clusters from the rollups' cells: every incident once, the open ones, and a cell of one named
    # by the incident there (under the same filters)
    assert sum(c["count"] for c in clusters) == total and sum(c["open"] for c in clusters) == open_now
    assert sum(c["count"] for c in close_in) == total and sum(c["open"] for c in close_in) == open_now
    assert sum(c["count"] for c in boxed) == in_box
    assert None not in singles and len(found) == len(singles)
    assert all(abs(singles[p]["lon"] - x) < 1e-6 and abs(singles[p]["lat"] - y) < 1e-6 for p, x, y in found)
    assert summary["total"] == total and summary["overdue"] == sum(late for _, late in expected.values())
    assert {m["month"]: (m["count"], m["overdue"]) for m in summary["by_month"]} == expected
    got = {f["id"]: (f["properties"]["incidents"], f["properties"]["overdue_rate"])
           for f in fc["features"] if f["properties"]["incidents"]}
    assert got == per_grid
    assert sum(c[2] for c in heat) == total
    assert {m: sum(c["count"] for c in cells) for m, cells in play.items()} == {m: n for m, (n, _) in expected.items()}


def test_an_incident_without_a_due_time_and_a_truncate_of_the_rollups_too(loaded: sa.Engine) -> None:
    """A closed incident with no due time counts as on time (it cannot be late), as the figures
    always read it; a TRUNCATE that names the rollups as well as the incidents empties them all."""
    engine = loaded
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE incidents SET due_at = NULL WHERE id IN "
                             "(SELECT id FROM incidents WHERE status = 'closed' ORDER BY id LIMIT 5)"))
    in_step(engine)
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters())["overdue"] == conn.execute(sa.text(
            "SELECT count(*) FROM incidents WHERE COALESCE(closed_at, now()) > due_at AND status <> 'rejected'")).scalar_one()
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE incidents, incident_grid_months, incident_cell_months CASCADE"))
        assert all(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() == 0 for t in incident_rollups.TABLES)


def test_the_supervision_pass_beside_steps_on_the_same_months(loaded: sa.Engine) -> None:
    """The supervision pass escalates many overdue incidents in one transaction while other
    connections take steps on open incidents of the same grids and months: nothing deadlocks,
    every change is counted."""
    engine = loaded
    where = points(engine, 3)
    fresh = [service.report(engine, service.Report(category_code="0201", lon=x, lat=y), actor="test")["public_id"]
             for x, y in where * 4]
    errors: list[BaseException] = []

    def steps(mine: list[str]) -> None:
        try:
            for public_id in mine:
                for action in ("file", "dispatch", "claim"):
                    service.transition(engine, public_id, action, actor="centre")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    later = datetime.now(timezone.utc) + timedelta(days=400)
    threads = [threading.Thread(target=steps, args=(fresh[n::3],)) for n in range(3)]
    for t in threads:
        t.start()
    for _ in range(3):
        service.escalate_overdue(engine, now=later, step=timedelta(seconds=0), actor="test")
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    in_step(engine)
    with engine.connect() as conn:
        assert stats.summary(conn, MONACO, stats.Filters())["supervised"] == conn.execute(sa.text(
            "SELECT count(*) FROM incidents WHERE escalation_level > 0")).scalar_one()
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE public_id = ANY(:p) AND status = 'claimed'"),
                            {"p": fresh}).scalar_one() == 12


def test_a_cut_month_is_read_the_cheaper_way() -> None:
    """A month the date range cuts is read from its days in the range or as the whole month less
    its days out of the range, whichever holds fewer days (the hypothesis test above checks the
    figures either way)."""
    def utc(month: int, day: int) -> datetime:
        return datetime(2026, month, day, tzinfo=timezone.utc)

    # 25 days of October in the range: the whole month less its first 6 days; half of November: its days
    assert stats.Filters(start=utc(10, 7), end=utc(11, 16)).parts() == (
        (utc(10, 1), utc(11, 1)), [(utc(10, 1), utc(10, 7), -1), (utc(11, 1), utc(11, 16), 1)])
    # within one month: 13 days read, not 18
    assert stats.Filters(start=utc(10, 7), end=utc(10, 20)).parts() == (None, [(utc(10, 7), utc(10, 20), 1)])
    # nearly the whole month: it, less a day at each end
    assert stats.Filters(start=utc(10, 2), end=utc(10, 31)).parts() == (
        (utc(10, 1), utc(11, 1)), [(utc(10, 1), utc(10, 2), -1), (utc(10, 31), utc(11, 1), -1)])
    # open at one end, whole months in between, a late start in a month read as its own days
    assert stats.Filters(start=utc(3, 28)).parts() == ((utc(4, 1), None), [(utc(3, 28), utc(4, 1), 1)])
    assert stats.Filters(end=utc(6, 1)).parts() == ((None, utc(6, 1)), [])


def _every_cut_day(self: stats.Filters):
    """``Filters.parts`` reading every day of a cut month from the incidents (as before)."""
    low = None if self.start is None else stats._month_start(self.start, up=True)
    high = None if self.end is None else stats._month_start(self.end, up=False)
    if low is not None and high is not None and low >= high:
        return None, [(self.start, self.end, 1)]
    spans = []
    if self.start is not None and self.start < low:
        spans.append((self.start, low, 1))
    if self.end is not None and high < self.end:
        spans.append((high, self.end, 1))
    return (low, high), spans


def _flat(value, path: str = "") -> list[tuple[str, object]]:
    """A figure as (path, leaf) pairs, lists in a sorted order (SQL gives groups in any order)."""
    if isinstance(value, dict):
        return [p for k in sorted(value) for p in _flat(value[k], f"{path}.{k}")]
    if isinstance(value, list):
        items = sorted((_flat(v) for v in value), key=repr)
        return [(f"{path}[{n}]{p}", leaf) for n, item in enumerate(items) for p, leaf in item]
    return [(path, value)]


def test_a_cut_month_gives_the_same_figures_either_way(span, monkeypatch) -> None:
    """Whole months less their days out of the range (-1 spans) give exactly the figures of reading
    every day in the range: the summary (medians too), the choropleth with all three measures,
    heat, clusters and the month play, for ranges cut every way (both ends in one month, each
    end either way, whole months, open ends) under no filter, a category and a status."""
    engine, first, last = span
    month = stats._month_start(first + (last - first) / 2, up=False)
    after = stats._month_start(month + timedelta(days=32), up=False)
    day = timedelta(days=1)
    ranges = [(month + day, after - day), (month + 2 * day, after + 10 * day), (month + 20 * day, after + 25 * day),
              (month, after), (None, after + 3 * day), (month + 27 * day, None), (month + 5 * day, month + 9 * day)]
    assert any(s == -1 for r in ranges for *_, s in stats.Filters(start=r[0], end=r[1]).parts()[1])

    def figures(filters: stats.Filters) -> list:
        with engine.connect() as conn:
            return _flat([stats.summary(conn, MONACO, filters), stats.choropleth(conn, MONACO, filters),
                          stats.heat(conn, MONACO, filters, cell_deg=0.002),
                          stats.clusters(conn, MONACO, filters, cell_deg=0.003),
                          stats.monthly_clusters(conn, MONACO, filters, cell_deg=0.005)])

    for start, end in ranges:
        for category, statuses in ((None, None), ("0103", None), (None, ("closed",))):
            filters = stats.Filters(category=category, statuses=statuses, start=start, end=end)
            cheaper = figures(filters)
            with monkeypatch.context() as patch:
                patch.setattr(stats.Filters, "parts", _every_cut_day)
                direct = figures(filters)
            assert [p for p, _ in cheaper] == [p for p, _ in direct], (start, end, category, statuses)
            for (path, a), (_, b) in zip(cheaper, direct):
                same = abs(a - b) <= 2e-6 if isinstance(a, float) and isinstance(b, float) else a == b
                assert same, (path, a, b, start, end, category, statuses)


def test_days_read_from_the_incidents_are_read_in_parallel_and_whole_months_are_not(span) -> None:
    """A range that reads days from the incidents (a month it cuts) lets the summary, the heat map,
    the clusters and the month play share their scans with parallel workers, for their own
    transaction only (gone after a commit: ``SET LOCAL``); a range of whole months, and the
    choropleth, run with the server's own costs, also after a reader that set them in the same
    transaction (:data:`gridmap.store.incident_stats.PARALLEL_SPANS`)."""
    engine, first, last = span
    month = stats._month_start(first + (last - first) / 2, up=False)
    after = stats._month_start(month + timedelta(days=32), up=False)
    cut = stats.Filters(start=month + timedelta(days=3), end=after + timedelta(days=12))
    whole = stats.Filters(start=month, end=after)
    assert cut.parts()[1] and not whole.parts()[1]
    readers = {"summary": lambda conn, f: stats.summary(conn, MONACO, f),
               "heat": lambda conn, f: stats.heat(conn, MONACO, f, cell_deg=0.002),
               "clusters": lambda conn, f: stats.clusters(conn, MONACO, f, cell_deg=0.003),
               "month play": lambda conn, f: stats.monthly_clusters(conn, MONACO, f, cell_deg=0.005),
               "choropleth": lambda conn, f: stats.choropleth(conn, MONACO, f)}

    def setting(conn: sa.Connection) -> str:
        return conn.execute(sa.text("SHOW parallel_setup_cost")).scalar_one()

    with engine.connect() as conn:
        default = setting(conn)
        conn.commit()
        assert default != "10"
        for name, read in readers.items():
            for filters, parallel in ((cut, name != "choropleth"), (whole, False)):
                read(conn, filters)
                assert (setting(conn) == "10") == parallel, (name, filters)
                conn.commit()  # a plain SET would outlive the commit on this pooled connection
                assert setting(conn) == default, name
                conn.commit()
        for name in ("summary", "heat", "clusters", "month play"):  # then, in the same transaction:
            readers[name](conn, cut)
            assert setting(conn) == "10"
            readers["choropleth"](conn, cut)
            assert setting(conn) == default, name
            readers[name](conn, cut)
            readers[name](conn, whole)
            assert setting(conn) == default, name
            conn.rollback()


def test_the_cut_days_are_read_once_for_counts_and_handling_times() -> None:
    """A range's cut days become one common table (``SpanDays``) that the grid counts and the
    handling histogram of one statement both read; whole months need none; it keeps only the
    columns it can, and the histogram needs its buckets."""
    def utc(month: int, day: int) -> datetime:
        return datetime(2026, month, day, tzinfo=timezone.utc)

    cut = stats.Filters(start=utc(10, 7), end=utc(11, 16), category="0103")
    assert stats.Filters(start=utc(10, 1), end=utc(12, 1)).span_days(("grid_lineage",)) is None
    days = cut.span_days(("grid_lineage", "bucket"), scoped=False)
    assert days is not None and days.keys == ("grid_lineage", "bucket")
    assert days.sql.count("FROM incident_facts r") == 2  # October less 6 days (-1), 15 days of November (+1)
    assert ", 1 AS sign" in days.sql and ", -1 AS sign" in days.sql and days.params["category"] == "0103"
    rows, _ = cut.grid_rows(scoped=False, days=days)
    handling, _ = cut.handling_rows(scoped=False, days=days)
    for sql in (rows, handling):
        assert "FROM days d" in sql and "incident_facts" not in sql  # the days come from the table alone
        assert "incident_grid_months" in sql or "incident_handling_months" in sql  # October from the rollups
    assert "NULL" in rows  # community, street, category, status, month: not kept, not grouped by
    with pytest.raises(ValueError):
        cut.span_days(("grid_lineage", "description"))
    with pytest.raises(ValueError):
        cut.handling_rows(days=cut.span_days(("grid_lineage",)))


def test_a_summary_and_a_choropleth_read_the_cut_days_once(span) -> None:
    """The statements the summary and the choropleth run over a range that cuts months on both
    sides scan ``incident_facts`` once a sign (the days added, the days taken away): their counts
    and their handling times share the scan."""
    engine, first, last = span
    month = stats._month_start(first + (last - first) / 2, up=False)
    after = stats._month_start(month + timedelta(days=32), up=False)
    cut = stats.Filters(start=month + timedelta(days=3), end=after + timedelta(days=5))
    assert sorted(sign for *_, sign in cut.parts()[1]) == [-1, 1]
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.connect() as conn:
            for read in (lambda: stats.summary(conn, MONACO, cut), lambda: stats.choropleth(conn, MONACO, cut)):
                statements.clear()
                read()
                facts = [s for s in statements if "incident_facts" in s]
                assert len(facts) == 1 and facts[0].count("FROM incident_facts r") == 2, facts
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
