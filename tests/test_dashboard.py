"""The incident maps and dashboard over labelled-synthetic Monaco incidents: the demo generator's
patterns, aggregates checked against direct counts, the filters, and the page in real Chromium
(the map draws; a filter changes the counts)."""

from __future__ import annotations

import contextlib
import re

import pytest
import shapely
import shapely.geometry
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from gridmap.api.app import create_app
from gridmap.services import incidents as service
from gridmap.store import incident_stats as stats
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from samples import histogram_median, launch_chromium, serve

MONACO = "980100"


@pytest.fixture
def demo(monaco_published: sa.Engine, database_url: str):
    monaco = monaco_published  # Monaco with its first partition published (conftest)
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
    """Per-grid median handling hours (read off the rollup's histogram of handling times) equal
    the same histogram median worked out from the closed cases themselves, and lie within the
    histogram's bucket width (10 %) of pandas' exact median, under no filter, a category, a date
    range that cuts a month (its first days read from the incidents) and a community; so does the
    summary's median of all of them."""
    import pandas as pd

    with engine.connect() as conn:
        closed = pd.read_sql(sa.text(
            "SELECT g.code AS grid, i.category_code, i.reported_at, c.code AS community, "
            "extract(epoch FROM i.closed_at - i.reported_at)::float8 / 3600 AS hours FROM incidents i "
            "JOIN grids g ON g.id = i.grid_id JOIN territories c ON c.id = i.community_id WHERE i.status = 'closed'"), conn)
    cut = closed.reported_at.sort_values().iloc[len(closed) // 2]
    assert cut.day > 1 or cut.hour > 0  # not a month's first instant: the range has days at its start
    cases = {(): closed, (("category", "0201"),): closed[closed.category_code == "0201"],
             (("start", cut.isoformat()),): closed[closed.reported_at >= cut],
             (("community", "980101900006"),): closed[closed.community == "980101900006"]}
    for params, rows in cases.items():
        features = client.get(f"{base}/choropleth", params={**dict(params), "metric": "median_hours"}).json()["features"]
        got = {f["properties"]["grid_code"]: f["properties"]["median_hours"] for f in features}
        expected = rows.groupby("grid").hours.agg(histogram_median).round(1)
        exact = rows.groupby("grid").hours.median()
        assert len(expected) > 0 and {g for g, v in got.items() if v is not None} == set(expected.index), params
        assert all(abs(got[g] - v) <= 0.051 for g, v in expected.items()), params
        assert all(abs(got[g] - v) <= 0.1 * v + 0.051 for g, v in exact.items()), params
        assert (expected - exact).abs().mean() < 0.03 * exact.mean()  # far closer than a bucket, typically
        # the summary's one median, over the same cases (its counts and median are one statement)
        overall = client.get(f"{base}/summary", params=dict(params)).json()["median_hours"]
        assert overall is not None and abs(overall - histogram_median(rows.hours)) <= 0.051, (params, overall)


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
        refused: list[str] = []  # signed out: nothing asked for that only a sign-in may read
        page.on("response", lambda r: refused.append(r.url) if r.status in (401, 403) else None)
        page.goto(f"{url}/dashboard?territory={MONACO}")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        assert page.inner_text("#count-total") == str(stored)
        page.wait_for_function("document.getElementById('whistles-note').textContent.length > 0")
        assert "登录" in page.inner_text("#whistles-note") and refused == []
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
def test_signing_in_on_the_dashboard_shows_the_lists(demo, database_url: str) -> None:
    """The territory's needs, resources and projects need a sign-in: the dashboard offers the app's
    sign-in form itself (no detour through another page), and shows the lists once signed in."""
    from playwright.sync_api import sync_playwright

    from gridmap.store import users

    engine, _, _, _ = demo
    with engine.begin() as conn:
        users.create_user(conn, "watcher", "dashboard watcher")
        users.grant(conn, "watcher", "viewer", MONACO)
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/dashboard?territory={MONACO}")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        page.wait_for_function("document.getElementById('lists-note').textContent.length > 0")
        assert page.inner_text("#lists-note") == "登录后显示本辖区的清单。" and "人员与住户" not in page.inner_text("#lists")
        assert page.is_visible("#lists #login") and page.is_hidden("#logout")
        page.fill("#username", "watcher")
        page.fill("#password", "wrong")
        page.click("#login-button")
        page.wait_for_function("document.getElementById('login-message').textContent === '用户名或密码错误'")
        page.fill("#password", "dashboard watcher")
        page.click("#login-button")
        page.wait_for_function("document.querySelectorAll('#lists-figures dt').length > 0")
        assert page.inner_text("#who") == "watcher" and page.is_visible("#logout") and page.is_hidden("#login")
        assert page.inner_text("#lists-note") == "" and "登录" not in page.inner_text("#whistles-note")
        page.click("#lang-switch")
        assert not re.search(r"[\u4e00-\u9fff]", page.inner_text("#lists") + page.inner_text("#whistles"))
        page.click("#lang-switch")
        page.reload()  # the sign-in is the tab's: kept
        page.wait_for_function("document.querySelectorAll('#lists-figures dt').length > 0", timeout=30000)
        assert page.inner_text("#who") == "watcher"
        page.click("#logout")
        page.wait_for_function("document.getElementById('lists-note').textContent === '登录后显示本辖区的清单。'")
        assert page.is_visible("#login") and page.evaluate("sessionStorage.getItem('gridmap.token')") is None
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
        # the clusters: a circle each, sized by its count, its count shown on hovering it
        circles = page.evaluate("""() => {
            const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
                                           .find(m => m instanceof L.Map);
            const found = [];
            map.eachLayer(l => {
                if (!(l instanceof L.CircleMarker) || !l.feature || !l.feature.properties.label) return;
                l.fire('mouseover', {latlng: l.getLatLng()}, true);
                const tip = document.querySelector('.leaflet-tooltip');
                found.push([l.feature.properties.label, l.getRadius(), tip ? tip.textContent.trim() : null]);
                l.fire('mouseout', {latlng: l.getLatLng()}, true);
            });
            return found;
        }""")
        with engine.connect() as conn:
            wanted = stats.clusters(conn, MONACO, stats.Filters(), cell_deg=0.005)
        assert len(circles) == len(wanted) > 1
        assert sum(int(label.split(" ")[0]) for label, _, _ in circles) == sum(c["count"] for c in wanted)
        assert all(tip == label for label, _, tip in circles)
        by_count = sorted((int(label.split(" ")[0]), radius) for label, radius, _ in circles)
        assert by_count[0][1] < by_count[-1][1] or by_count[0][0] == by_count[-1][0]  # more incidents, larger
        on_map = """() => {  // [circles of the whole period, [tooltip of each month circle]]
            const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
                                           .find(m => m instanceof L.Map);
            let whole = 0; const month = [];
            map.eachLayer(l => {
                if (!(l instanceof L.CircleMarker)) return;
                if (l.feature && l.feature.properties.label) whole += 1;
                else if (l.getTooltip()) month.push(l.getTooltip().getContent());
            });
            return [whole, month];
        }"""
        assert page.inner_text("#gridmap-month") == "全部 All" and page.evaluate(on_map) == [len(wanted), []]
        page.fill("#gridmap-month-slider", str(months))  # the last month
        page.dispatch_event("#gridmap-month-slider", "input")
        last = page.inner_text("#gridmap-month")
        assert re.fullmatch(r"\d{4}-\d{2}", last)
        whole, month = page.evaluate(on_map)
        assert whole == 0 and month  # that month alone: the whole period's clusters are off the map
        assert all(tip.startswith(f"{last}: ") and tip.endswith(" 件 incidents") for tip in month)
        page.fill("#gridmap-month-slider", "0")
        page.dispatch_event("#gridmap-month-slider", "input")
        assert page.evaluate(on_map) == [len(wanted), []]  # back to the whole period
        page.check(".leaflet-control-layers-overlays label:has-text('Heat map') input")
        page.wait_for_selector("canvas.leaflet-heatmap-layer")
        assert errors == []
        browser.close()


def table_shape(engine: sa.Engine) -> set[str]:
    """Every index and constraint definition of the incidents table, the copies PostgreSQL keeps
    of its self-reference for each month (named by a counter: by their definition), and how many
    indexes each monthly partition has."""
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'incidents'::regclass UNION ALL "
            "SELECT CASE WHEN conparentid = 0 THEN conname ELSE 'copy' END || ' ' || pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = 'incidents'::regclass UNION ALL "
            "SELECT c.relname || ' has ' || count(i.indexrelid) || ' indexes' FROM pg_inherits h "
            "JOIN pg_class c ON c.oid = h.inhrelid LEFT JOIN pg_index i ON i.indrelid = c.oid "
            "WHERE h.inhparent = 'incidents'::regclass GROUP BY c.relname")).scalars())


def test_large_bulk_load_rebuilds_indexes_and_keys_once(monaco_built: sa.Engine, monkeypatch) -> None:
    """A load at least as large as the table drops the secondary indexes and foreign keys and
    rebuilds them after the INSERT: afterwards the table has exactly the indexes and keys it had,
    the rows are routed as on the row-by-row path, and a failure on the way leaves both the
    table's shape and its rows as they were (DDL is transactional)."""
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import incidents as service_module
    from gridmap.store import incidents as store

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    # the months a load needs are made in a transaction of their own before it (make_months), and
    # stay: made here first, so the shape compared is the one the load starts from whichever tests
    # ran before on this database (otherwise the months a year back exist or not by test order)
    from datetime import date, timedelta

    from gridmap.store import incident_partitions

    with monaco.begin() as conn:
        incident_partitions.ensure(conn, date.today() - timedelta(days=400), date.today() + timedelta(days=31))
    shape = table_shape(monaco)
    assert any("ix_incidents_open_lineage" in d for d in shape) and any("FOREIGN KEY (grid_id)" in d for d in shape)
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


# --- The dashboard as the quickstart leaves it (issue 15, items 9 and 11): Monaco, listed first,
# has published grids and no incidents; Reykjavík has a year of them. These tests only read.

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# incidents routed into each territory's subtree, territories with a plan (as the dashboard lists them)
SUBTREE_COUNTS = ("WITH RECURSIVE up AS (SELECT id AS below, id AS above FROM territories UNION ALL "
                  "SELECT up.below, t.parent_id FROM up JOIN territories t ON t.id = up.above "
                  "WHERE t.parent_id IS NOT NULL) "
                  "SELECT t.code, count(i.id) AS n FROM territories t JOIN up ON up.above = t.id "
                  "LEFT JOIN incidents i ON i.community_id = up.below WHERE t.level <> 'community' "
                  "AND EXISTS (SELECT 1 FROM plans p WHERE p.territory_id = t.id AND p.status = 'published') "
                  "GROUP BY t.code ORDER BY n DESC, t.code")


@pytest.fixture(scope="module")
def quickstart(demo_database):
    """(database URL, engine, {territory code: incidents}) of the ``gridmap up`` database."""
    from gridmap.store.db import engine_for, normalise_url

    assert demo_database.first_run.returncode == 0, demo_database.first_run.stderr
    url = normalise_url(demo_database.url)
    engine = engine_for(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text(SUBTREE_COUNTS)).all())
    return url, engine, counts


def busiest(counts: dict[str, int]) -> str:
    return max(counts, key=lambda code: counts[code])


@contextlib.contextmanager
def dashboard_page(database_url: str, query: str = ""):
    """The dashboard in headless Chromium, drawn; fails if the page raised a script error."""
    from playwright.sync_api import sync_playwright

    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/dashboard{query}")
            page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
            yield page
            assert errors == []
        finally:
            browser.close()


def set_language(page, lang: str) -> None:
    if page.evaluate("window.gridmapLang") != lang:
        page.click("#lang-switch")
    assert page.evaluate("window.gridmapLang") == lang


def wait_drawn(page) -> None:
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)


def legend_rows(page) -> list[str]:
    return page.eval_on_selector_all("#legend > div", "rows => rows.map(r => r.textContent.trim())")


@pytest.mark.browser
def test_dashboard_opens_on_the_busiest_territory(quickstart) -> None:
    """Opened without a territory, the dashboard shows the one with the most incidents, not the
    first listed (Monaco, which has none); its legend has distinct classes, in order. A territory
    asked for in the address is still honoured."""
    url, _, counts = quickstart
    empty = [code for code, n in counts.items() if n == 0]
    assert empty and counts[busiest(counts)] > 0  # the situation reported: one territory has none
    with dashboard_page(url) as page:
        listed = page.eval_on_selector_all("#territory option", "os => os.map(o => o.value)")
        assert set(listed) == set(counts) and counts[listed[0]] < counts[busiest(counts)]  # the first is not it
        assert page.eval_on_selector("#territory", "s => s.value") == busiest(counts)
        assert page.inner_text("#count-total") == str(counts[busiest(counts)])
        rows = legend_rows(page)
        classes = [r for r in rows if re.fullmatch(r"[\d.]+( – [\d.]+)?", r)]
        assert len(classes) >= 3 and len(set(classes)) == len(classes), rows
        bounds = [float(x) for r in classes for x in r.split(" – ")]
        assert bounds == sorted(bounds), rows  # classes in order, each above the last
    with dashboard_page(url, f"?territory={empty[0]}") as page:
        assert page.eval_on_selector("#territory", "s => s.value") == empty[0]
        assert page.inner_text("#count-total") == "0"


@pytest.mark.browser
def test_legend_without_data_says_so_in_both_languages(quickstart) -> None:
    """A territory without incidents gets one legend line saying there is no data, in Chinese
    and in English, instead of degenerate classes ("≤ 0, > 0, > 0 ..."); with data, classes return."""
    url, _, counts = quickstart
    empty = next(code for code, n in counts.items() if n == 0)
    with dashboard_page(url, f"?territory={empty}") as page:
        assert page.inner_text("#count-total") == "0"
        for lang, no_data in (("zh", "无数据"), ("en", "No data"), ("zh", "无数据")):
            set_language(page, lang)
            rows = legend_rows(page)
            assert len(rows) == 1 and no_data in rows[0], rows
            assert not re.search(r"[≤>]\s*0", rows[0]) and bool(CJK.search(rows[0])) == (lang == "zh"), rows
        page.select_option("#territory", busiest(counts))
        wait_drawn(page)
        assert len(legend_rows(page)) >= 3 and "无数据" not in legend_rows(page)[0]


@pytest.mark.browser
def test_dashboard_speaks_both_languages_everywhere(quickstart) -> None:
    """In English no Chinese is left anywhere on the dashboard (the heat-map layer control, the
    zoom and fit buttons, the legend, the play button, the tooltips); back in Chinese the
    controls, Leaflet's included, are Chinese again."""
    url, _, counts = quickstart
    with dashboard_page(url, f"?territory={busiest(counts)}") as page:
        assert page.inner_text(".leaflet-control-layers-overlays label").strip() == "热力图"
        set_language(page, "en")
        assert page.inner_text("#lang-switch") == "中文"  # the way back is the one Chinese word left
        shown = page.evaluate("() => { const b = document.getElementById('lang-switch'); b.hidden = true; "
                              "const text = document.body.innerText; b.hidden = false; return text; }")
        # territory names are data, not the interface: a Chinese district keeps its name in English
        names = sorted(page.eval_on_selector_all("#territory option", "os => os.map(o => o.textContent.trim())"),
                       key=len, reverse=True)

        def interface(text: str) -> str:
            for name in names:
                text = text.replace(name, "")
            return text

        assert "Heat map" in shown and not CJK.search(interface(shown)), CJK.findall(interface(shown))
        attributes = page.eval_on_selector_all(":is([title], [aria-label], option):not(#lang-switch)", "es => es.map(e => "
                                               "[e.title, e.getAttribute('aria-label'), e.textContent].join(' '))")
        assert not [a for a in attributes if CJK.search(interface(a))]
        assert page.inner_text(".leaflet-control-layers-overlays label").strip() == "Heat map"
        set_language(page, "zh")
        assert page.inner_text(".leaflet-control-layers-overlays label").strip() == "热力图"
        for selector in (".leaflet-control-zoom-in", ".leaflet-control-zoom-out", "#fit-territory"):
            assert CJK.search(page.get_attribute(selector, "title")), selector
        assert CJK.search(page.inner_text("#fit-territory")) and CJK.search(page.inner_text("#play"))
        page.check(".leaflet-control-layers-overlays input")  # the heat map still draws
        page.wait_for_selector("canvas.leaflet-heatmap-layer")
        set_language(page, "en")
        assert page.inner_text(".leaflet-control-layers-overlays label").strip() == "Heat map"
        assert page.is_checked(".leaflet-control-layers-overlays input")


@pytest.mark.browser
def test_clear_filters_after_a_play_leaves_no_month_behind(quickstart) -> None:
    """After a play, "Clear filters" empties the month shown, and a language switch does not
    bring it back as a raw "2026-12"; the month a play shows reads as a month in both languages."""
    url, _, counts = quickstart
    with dashboard_page(url, f"?territory={busiest(counts)}") as page:
        page.evaluate("window.gridmapDashboard.stepMs = 60000")  # stay on the first month
        page.click("#play")
        page.wait_for_function("document.getElementById('month-label').textContent !== ''")
        assert re.fullmatch(r"\d{4} 年 \d{1,2} 月", page.inner_text("#month-label"))
        page.click("#play")  # stop
        page.click("#clear")
        wait_drawn(page)
        assert page.eval_on_selector("#start", "e => e.value") == "" and page.inner_text("#month-label") == ""
        assert page.inner_text("#count-total") == str(counts[busiest(counts)])
        for lang in ("en", "zh", "en"):
            set_language(page, lang)
            assert page.inner_text("#month-label") == "", lang
        assert not re.search(r"\b\d{4}-\d{2}\b", page.inner_text("#side"))  # no raw month anywhere
        page.click("#play")
        page.wait_for_function("document.getElementById('month-label').textContent !== ''")
        month = page.inner_text("#month-label")
        assert re.fullmatch(r"[A-Z][a-z]+ \d{4}", month), month  # a readable month, not "2025-12"
        assert page.inner_text("#play") == "Stop"
        page.click("#clear")
        assert page.inner_text("#play") == "Play by month" and page.inner_text("#month-label") == ""


@pytest.mark.browser
def test_month_play_shows_every_month_with_incidents(quickstart) -> None:
    """The play steps through every calendar month (UTC, as the date filters) from the first
    incident to the last, and each step shows that month's count: none is skipped (the demo's
    year reaches 13 calendar months back, which a fixed "last 12 months" window missed)."""
    url, engine, counts = quickstart
    code = busiest(counts)
    with engine.connect() as conn:
        per_month = dict(conn.execute(sa.text(
            "WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :c UNION ALL "
            "SELECT t.id FROM territories t JOIN sub ON t.parent_id = sub.id) "
            "SELECT to_char(date_trunc('month', reported_at AT TIME ZONE 'UTC'), 'YYYY-MM'), count(*) FROM incidents "
            "WHERE community_id IN (SELECT id FROM sub) GROUP BY 1"), {"c": code}).all())
    first, last = min(per_month), max(per_month)
    expected, (y, m) = [], map(int, first.split("-"))
    while f"{y:04d}-{m:02d}" <= last:
        expected.append((f"{y:04d}-{m:02d}", per_month.get(f"{y:04d}-{m:02d}", 0)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    assert sum(n for _, n in expected) == counts[code]
    with dashboard_page(url, f"?territory={code}") as page:
        page.evaluate("""() => {
            window.gridmapDashboard.stepMs = 50; window.drawn = [];
            new MutationObserver(() => { if (document.body.dataset.ready === 'true') window.drawn.push(
                [document.getElementById('start').value, document.getElementById('end').value,
                 Number(document.body.dataset.total)]); })
              .observe(document.body, {attributes: true, attributeFilter: ['data-ready']}); }""")
        page.click("#play")
        page.wait_for_function("window.drawn.length > 0 && window.gridmapDashboard.playing === null", timeout=120000)
        drawn = page.evaluate("window.drawn")
        assert [(start[:7], total) for start, _, total in drawn] == expected
        assert all(end[:7] == start[:7] and end > start for start, end, _ in drawn)  # whole months
        assert re.fullmatch(r"\d{4} 年 \d{1,2} 月", page.inner_text("#month-label"))


def test_month_counts_are_utc_months_whatever_the_server_time_zone(quickstart) -> None:
    """The summary's months (what the play steps through) are the UTC calendar months the date
    filters select, also on a database whose session time zone is not UTC."""
    url, _, counts = quickstart
    code = busiest(counts)
    shanghai = make_url(url).update_query_dict({"options": "-c timezone=Asia/Shanghai"})
    client = TestClient(create_app(database_url=shanghai.render_as_string(hide_password=False)))
    base = f"/api/territories/{code}/incidents/summary"
    months = client.get(base).json()["by_month"]
    assert sum(m["count"] for m in months) == counts[code] and len(months) >= 12
    for month in (months[0], months[len(months) // 2], months[-1]):
        y, m = map(int, month["month"].split("-"))
        start, end = f"{y:04d}-{m:02d}-01T00:00:00Z", f"{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00Z"
        assert client.get(base, params={"start": start, "end": end}).json()["total"] == month["count"], month
    ranking = client.get("/api/dashboard/territories").json()
    assert {t["code"]: t["incidents"] for t in ranking if t["code"] in counts} == counts
    assert [t["incidents"] for t in ranking] == sorted((t["incidents"] for t in ranking), reverse=True)


@pytest.mark.browser
def test_category_table_has_a_bilingual_header_per_column(quickstart) -> None:
    """Every column of the category table has a header in both languages, and the columns hold
    what their headers say (the incidents column adds up to the total, the open one to the open)."""
    url, _, counts = quickstart
    with dashboard_page(url, f"?territory={busiest(counts)}") as page:
        headers = page.eval_on_selector_all("#by-category thead th", "hs => hs.map(h => "
                                            "[h.getAttribute('data-zh'), h.getAttribute('data-en'), h.textContent])")
        rows = page.eval_on_selector_all("#by-category tbody tr", "rs => rs.map(r => "
                                         "Array.from(r.cells, c => c.textContent))")
        assert rows and all(len(r) == len(headers) for r in rows) and len(headers) >= 2
        assert all(zh and en and CJK.search(zh) and not CJK.search(en) and text == zh for zh, en, text in headers)
        column = {en: i for i, (_, en, _) in enumerate(headers)}
        assert sum(int(r[column["Incidents"]]) for r in rows) == int(page.inner_text("#count-total"))
        assert sum(int(r[column["Open"]]) for r in rows) == int(page.inner_text("#count-open"))
        set_language(page, "en")
        assert page.eval_on_selector_all("#by-category thead th", "hs => hs.map(h => h.textContent)") == [
            en for _, en, _ in headers]


@pytest.mark.browser
def test_map_zoom_is_bounded_and_fits_the_territory(quickstart) -> None:
    """The map neither zooms nor pans without limit into blank canvas, and a bilingual control
    brings back the whole territory (the extent of its published grids)."""
    url, engine, counts = quickstart
    code = busiest(counts)
    with engine.connect() as conn:
        box = conn.execute(sa.text(
            "WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :c UNION ALL "
            "SELECT t.id FROM territories t JOIN sub ON t.parent_id = sub.id) "
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(g.geom) e FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.community_id IN (SELECT id FROM sub)) x"),
            {"c": code}).one()
    grids = f"L.latLngBounds([{box[1]}, {box[0]}], [{box[3]}, {box[2]}])"
    view = ("() => { const m = gridmapDashboardMap(); const b = " + grids + "; return {zoom: m.getZoom(), "
            "min: m.getMinZoom(), max: m.getMaxZoom(), fit: m.getBoundsZoom(b), shows: m.getBounds().pad(0.01).contains(b), "
            "centre: [m.getCenter().lat, m.getCenter().lng]}; }")
    with dashboard_page(url, f"?territory={code}") as page:
        start = page.evaluate(view)
        assert start["shows"] and start["zoom"] == start["fit"]  # opens on the whole territory
        assert 0 < start["min"] < start["zoom"] < start["max"] <= 19  # finite, sensible limits
        page.evaluate("() => { gridmapDashboardMap().setZoom(30, {animate: false}); }")
        wait_drawn(page)
        assert page.evaluate(view)["zoom"] == start["max"]
        page.evaluate("() => { gridmapDashboardMap().setView([0, 0], 0, {animate: false}); }")  # far away, far out
        wait_drawn(page)
        away = page.evaluate(view)
        assert away["zoom"] == start["min"]
        height, width = box[3] - box[1], box[2] - box[0]
        assert box[1] - 2 * height <= away["centre"][0] <= box[3] + 2 * height
        assert box[0] - 2 * width <= away["centre"][1] <= box[2] + 2 * width
        title = page.get_attribute("#fit-territory", "title")
        assert CJK.search(page.inner_text("#fit-territory")) and CJK.search(title)
        page.click("#fit-territory")
        page.wait_for_function(f"({view})().shows && ({view})().zoom === ({view})().fit")
        set_language(page, "en")
        assert page.inner_text("#fit-territory") == "Fit to territory"
        assert not CJK.search(page.get_attribute("#fit-territory", "title"))


def test_choropleth_draws_each_grids_stored_display_outline(demo) -> None:
    """The choropleth's outlines are the grids' display outlines, which the database keeps with
    each grid (migration 0025): within 2 m of the grid, simplified, and rewritten with the grid."""
    engine, client, _, _ = demo
    answer = client.get(f"/api/territories/{MONACO}/incidents/choropleth")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/geo+json")
    drawn = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in answer.json()["features"]}
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT g.code, ST_AsBinary(g.geom) AS geom, ST_NPoints(g.geom) AS n, ST_NPoints(g.geom_display) AS shown, "
            "ST_HausdorffDistance(ST_Transform(g.geom, 32632), ST_Transform(g.geom_display, 32632)) AS off "
            "FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published'")).all()
    assert drawn and set(drawn) == {r.code for r in rows}
    assert all(r.off <= 2.5 and r.shown <= r.n for r in rows) and sum(r.shown for r in rows) < sum(r.n for r in rows)
    for row in rows:  # the outline drawn is the grid's, to the 6 decimals written
        exact = shapely.from_wkb(bytes(row.geom))
        assert drawn[row.code].is_valid and shapely.hausdorff_distance(drawn[row.code], exact) < 3e-5
    with engine.connect() as conn:  # a grid rewritten: its display outline follows, with no writer's help
        with conn.begin() as transaction:
            shift = conn.execute(sa.text(
                "WITH moved AS (UPDATE grids g SET geom = ST_Multi(ST_Translate(g.geom, 0.001, 0)) FROM plans p "
                "WHERE p.id = g.plan_id AND p.status = 'published' AND g.code = :c RETURNING g.geom_display) "
                "SELECT ST_X(ST_Centroid(geom_display)) FROM moved"), {"c": rows[0].code}).scalar_one()
            transaction.rollback()  # (the fixture's data stays as it was)
    assert abs(shift - drawn[rows[0].code].centroid.x - 0.001) < 1e-5
