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
