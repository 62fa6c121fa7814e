"""The incident maps and dashboard over labelled-synthetic Monaco incidents: the demo generator's
patterns, aggregates checked against direct counts, the filters, and the page in real Chromium
(the map draws; a filter changes the counts)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services import incidents as service
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from samples import launch_chromium, serve

MONACO = "980100"


@pytest.fixture
def demo(monaco: sa.Engine, database_url: str):
    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    stored, left_out = service.load_demo_incidents(monaco, MONACO, count=1500, seed=1)
    return monaco, TestClient(create_app(database_url=database_url)), stored, left_out


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_demo_incidents_are_labelled_and_patterned(demo) -> None:
    engine, _, stored, left_out = demo
    assert stored + left_out == 1500 and stored > 1200
    assert scalar(engine, "SELECT count(*) FROM incidents WHERE NOT synthetic OR description NOT LIKE '[synthetic demo]%'") == 0
    assert service.load_demo_incidents(engine, MONACO, count=1500) == (stored, 0)  # idempotent
    # every incident is routed to a published grid of its community, with its category's department
    assert scalar(engine, "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id "
                          "JOIN incident_categories c ON c.code = i.category_code "
                          "WHERE g.community_id = i.community_id AND i.department_id = c.department_id") == stored
    # bulk routing agrees with the single-report routing in PostGIS, incident by incident
    from gridmap.store import incidents as store
    with engine.connect() as conn:
        sample = conn.execute(sa.text("SELECT ST_X(geom) AS x, ST_Y(geom) AS y, grid_id FROM incidents "
                                      "ORDER BY id LIMIT 200")).all()
        assert all(store.route(conn, r.x, r.y).grid_id == r.grid_id for r in sample)
    # seasons: the street-light category is reported more in the dark months than in summer
    winter = scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = '0103' "
                            "AND extract(month FROM reported_at) IN (11, 12, 1, 2)")
    summer = scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = '0103' "
                            "AND extract(month FROM reported_at) IN (5, 6, 7, 8)")
    assert winter > 2 * summer
    late = scalar(engine, "SELECT count(*) FROM incidents WHERE status = 'closed' AND closed_at > due_at")
    assert 0.03 * stored < late < 0.4 * stored and scalar(engine, "SELECT max(escalation_level) FROM incidents") >= 2
    # every closed case has its whole history, in order
    assert scalar(engine, "SELECT count(*) FROM (SELECT incident_id, array_agg(action ORDER BY at, id) a FROM incident_events "
                          "GROUP BY 1) s JOIN incidents i ON i.id = s.incident_id WHERE i.status = 'closed' AND "
                          "s.a <> ARRAY['report','file','dispatch','claim','handle','verify','close']::varchar[]") == 0


def check_medians(engine: sa.Engine, client: TestClient, base: str) -> None:
    """Per-grid median handling hours (read presorted from the handling index) equal pandas'
    median of the closed cases, under no filter, a category, a date range and a community."""
    import pandas as pd

    with engine.connect() as conn:
        closed = pd.read_sql(sa.text(
            "SELECT g.code AS grid, i.category_code, i.reported_at, c.code AS community, "
            "extract(epoch FROM i.closed_at - i.reported_at)::float8 / 3600 AS hours FROM incidents i "
            "JOIN grids g ON g.id = i.grid_id JOIN territories c ON c.id = i.community_id WHERE i.status = 'closed'"), conn)
    cut = closed.reported_at.sort_values().iloc[len(closed) // 2]
    cases = {(): closed, (("category", "0201"),): closed[closed.category_code == "0201"],
             (("start", cut.isoformat()),): closed[closed.reported_at >= cut],
             (("community", "980101900006"),): closed[closed.community == "980101900006"]}
    for params, rows in cases.items():
        features = client.get(f"{base}/choropleth", params={**dict(params), "metric": "median_hours"}).json()["features"]
        got = {f["properties"]["grid_code"]: f["properties"]["median_hours"] for f in features}
        expected = rows.groupby("grid").hours.median().round(1)
        assert len(expected) > 0 and {g for g, v in got.items() if v is not None} == set(expected.index), params
        assert all(abs(got[g] - v) <= 0.051 for g, v in expected.items()), params


def test_aggregates_match_direct_counts(demo) -> None:
    engine, client, stored, _ = demo
    base = f"/api/territories/{MONACO}/incidents"
    summary = client.get(f"{base}/summary").json()
    assert summary["total"] == stored
    assert summary["open"] == scalar(engine, "SELECT count(*) FROM incidents WHERE status NOT IN ('closed','rejected')")
    assert sum(c["count"] for c in summary["by_category"]) == stored == sum(summary["by_status"].values())
    assert sum(m["count"] for m in summary["by_month"]) == stored
    garbage = client.get(f"{base}/summary", params={"category": "0201", "status": "closed"}).json()
    assert garbage["total"] == scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = '0201' "
                                              "AND status = 'closed'")
    community = "980101900006"
    assert client.get(f"{base}/summary", params={"community": community}).json()["total"] == scalar(
        engine, "SELECT count(*) FROM incidents i JOIN territories c ON c.id = i.community_id WHERE c.code = :c",
        c=community)
    fc = client.get(f"{base}/choropleth").json()
    assert sum(f["properties"]["incidents"] for f in fc["features"]) == stored
    some = next(f["properties"] for f in fc["features"] if f["properties"]["incidents"] and f["properties"]["households"])
    assert some["per_1000_households"] == round(1000 * some["incidents"] / some["households"], 1)
    assert 0 <= some["overdue_rate"] <= 1
    check_medians(engine, client, base)
    cells = client.get(f"{base}/heat", params={"zoom": 14}).json()
    assert sum(c[2] for c in cells) == stored and len(cells) < stored  # aggregated, never one row per incident
    clusters = client.get(f"{base}/clusters", params={"zoom": 12}).json()
    assert sum(c["count"] for c in clusters) == stored and len(clusters) < 100
    assert client.get(f"{base}/summary", params={"status": "lost"}).status_code == 422
    assert client.get("/api/territories/000/incidents/summary").status_code == 404


@pytest.mark.browser
def test_dashboard_in_chromium(demo, database_url: str) -> None:
    from playwright.sync_api import sync_playwright

    engine, _, stored, _ = demo
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/dashboard?territory={MONACO}")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        assert page.inner_text("#count-total") == str(stored)
        grids = scalar(engine, "SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id WHERE p.status = 'published'")
        assert page.evaluate("document.body.dataset.grids") == str(grids)
        painted = page.evaluate("""() => { const c = document.querySelector('.leaflet-overlay-pane canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
        assert painted > 10000  # the choropleth and clusters are really drawn
        page.select_option("#category", "0201")
        page.wait_for_function(f"document.body.dataset.ready === 'true' && document.body.dataset.total !== '{stored}'")
        expected = scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = '0201'")
        assert page.inner_text("#count-total") == str(expected)
        page.select_option("#status", "closed")
        page.wait_for_function("document.body.dataset.ready === 'true'")
        page.wait_for_timeout(300)
        closed = scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = '0201' AND status = 'closed'")
        assert page.inner_text("#count-total") == str(closed)
        page.click("#lang-switch")
        assert page.inner_text("#counts h2") == "Counts"
        assert errors == []
        browser.close()


@pytest.mark.browser
def test_incident_map_page_is_offline_and_animates(demo, database_url: str) -> None:
    import re

    from playwright.sync_api import sync_playwright

    engine, client, stored, _ = demo
    page_html = client.get("/maps/incidents", params={"territory": MONACO, "metric": "overdue_rate"}).text
    assert not re.search(r"https?://", page_html)  # no CDN, no basemap: works offline
    assert "超期率 overdue rate" in page_html and "gridmap-month-slider" in page_html
    assert client.get("/maps/incidents", params={"territory": MONACO, "metric": "beauty"}).status_code == 422
    months = scalar(engine, "SELECT count(DISTINCT date_trunc('month', reported_at)) FROM incidents")
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/maps/incidents?territory={MONACO}")
        page.wait_for_selector(".leaflet-control-layers")
        assert page.locator(".leaflet-control-layers-overlays label").count() == 3  # choropleth, clusters, heat
        first = page.inner_text("#gridmap-month")
        page.fill("#gridmap-month-slider", str(months - 1))
        page.dispatch_event("#gridmap-month-slider", "input")
        assert page.inner_text("#gridmap-month") != first
        page.check(".leaflet-control-layers-overlays label:has-text('Heat map') input")
        page.wait_for_selector("canvas.leaflet-heatmap-layer")
        assert errors == []
        browser.close()


def table_shape(engine: sa.Engine) -> set[str]:
    """Every index and constraint definition of the incidents table."""
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'incidents'::regclass UNION ALL "
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'incidents'::regclass")).scalars())


def test_large_bulk_load_rebuilds_indexes_and_keys_once(monaco: sa.Engine, monkeypatch) -> None:
    """A load at least as large as the table drops the secondary indexes and foreign keys and
    rebuilds them after the INSERT: afterwards the table has exactly the indexes and keys it had,
    the rows are routed as on the row-by-row path, and a failure on the way leaves both the
    table's shape and its rows as they were (DDL is transactional)."""
    from gridmap.services import incidents as service_module
    from gridmap.store import incidents as store

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    shape = table_shape(monaco)
    assert any("ix_incidents_handling" in d for d in shape) and any("FOREIGN KEY (grid_id)" in d for d in shape)
    monkeypatch.setattr(store, "REBUILD_MIN_ROWS", 1)
    detached = []
    real_detach = store._detach_indexes
    monkeypatch.setattr(store, "_detach_indexes", lambda conn: detached.append(1) or real_detach(conn))

    def broken_audit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service_module.audit, "record", broken_audit)
    with pytest.raises(RuntimeError):
        service.load_demo_incidents(monaco, MONACO, count=400, seed=2)
    assert detached and table_shape(monaco) == shape
    assert scalar(monaco, "SELECT count(*) FROM incidents") == 0
    monkeypatch.undo()
    monkeypatch.setattr(store, "REBUILD_MIN_ROWS", 1)
    monkeypatch.setattr(store, "_detach_indexes", lambda conn: detached.append(2) or real_detach(conn))
    stored, _ = service.load_demo_incidents(monaco, MONACO, count=400, seed=2)
    assert detached[-1] == 2 and stored > 300 and table_shape(monaco) == shape
    assert scalar(monaco, "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id "
                          "JOIN incident_categories c ON c.code = i.category_code "
                          "WHERE g.community_id = i.community_id AND i.department_id = c.department_id") == stored
    assert scalar(monaco, "SELECT count(DISTINCT incident_id) FROM incident_events") == stored
    # the foreign keys are real again: a grid id that does not exist is refused
    with pytest.raises(sa.exc.IntegrityError), monaco.begin() as conn:
        conn.execute(sa.text("UPDATE incidents SET grid_id = -1 WHERE id = (SELECT min(id) FROM incidents)"))


def test_bulk_load_keeps_text_and_times_exactly(demo) -> None:
    """The bulk path's CSV carries awkward text (quotes, commas, line breaks, Chinese, an empty
    string beside a missing one) and microsecond timestamps through COPY unchanged."""
    import pandas as pd

    engine, _, _, _ = demo
    with engine.connect() as conn:
        spot = conn.execute(sa.text("SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM incidents ORDER BY id LIMIT 1")).one()
    texts = ['路灯不亮, "东门" 附近', "line one\nline two", "", None]
    when = pd.Timestamp("2026-03-01 08:15:30.123456", tz="Asia/Shanghai")
    frame = pd.DataFrame({"category_code": "0103", "description": texts, "lon": spot.x, "lat": spot.y,
                          "reported_at": when, "due_at": when + pd.Timedelta(hours=4), "status": "reported"})
    with engine.begin() as conn:
        assert service.bulk_load(conn, frame, source="import", synthetic=False, with_events=False) == (4, 0)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT description, reported_at, due_at, closed_at FROM incidents "
                                    "WHERE source = 'import' ORDER BY public_id")).all()
    assert [r.description for r in rows] == texts
    assert all(r.reported_at == when.to_pydatetime() and r.due_at - r.reported_at == pd.Timedelta(hours=4)
               and r.closed_at is None for r in rows)


def test_bulk_load_without_a_published_plan_stores_nothing(monaco: sa.Engine) -> None:
    """No published grids: every row is left out (counted), nothing is stored, no error."""
    import pandas as pd

    frame = pd.DataFrame({"category_code": ["0103"], "description": ["x"], "lon": [7.42], "lat": [43.73],
                          "reported_at": [pd.Timestamp("2026-03-01", tz="UTC")],
                          "due_at": [pd.Timestamp("2026-03-02", tz="UTC")], "status": ["reported"]})
    with monaco.begin() as conn:
        assert service.bulk_load(conn, frame, source="import", synthetic=False) == (0, 1)
    assert scalar(monaco, "SELECT count(*) FROM incidents") == 0
