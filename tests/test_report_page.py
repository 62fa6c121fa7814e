"""The grid worker's phone page (/report) in real headless Chromium at 390 × 844 with the phone's
location given to the browser: the report lands in the published grid that holds that location;
a report made with the network down waits on the phone and is sent when the network returns; the
page speaks Chinese by default and English on the switch, with no text of the other language."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gridmap.services.partitioning import partition_territory
from gridmap.store import users
from samples import launch_chromium, serve
from conftest import published_plan_id

MONACO = "980100"
PASSWORD = "worker on foot"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def site(monaco_published: sa.Engine, database_url: str) -> Iterator[tuple[sa.Engine, str, dict]]:
    """Monaco published, a grid worker of Monaco, the app on loopback, and a place inside a grid
    (the point on the surface of the fourth grid: longitude, latitude and the grid's code)."""
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    from gridmap.services.incidents import ensure_categories

    plan_id = published_plan_id(monaco)
    ensure_categories(monaco)
    with monaco.begin() as conn:
        users.create_user(conn, "walker", PASSWORD)
        users.grant(conn, "walker", "worker", MONACO)
        users.create_user(conn, "runner", PASSWORD)  # a second worker sharing the phone
        users.grant(conn, "runner", "worker", MONACO)
        code, lon, lat = conn.execute(sa.text(
            "SELECT g.code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM grids "
            "WHERE plan_id = :p AND kind = 'comprehensive' ORDER BY code OFFSET 3 LIMIT 1) g"),
            {"p": plan_id}).one()
    with serve(database_url) as url:
        yield monaco, url, {"grid": code, "lon": lon, "lat": lat}


def stored(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT i.public_id, g.code AS grid, i.description, i.reporter_role, i.source, i.attributes FROM incidents i "
            "JOIN grids g ON g.lineage = i.grid_lineage JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "ORDER BY i.id"))]


def sign_in_on(page, name: str) -> None:
    """Sign in with the page's own form (the phone report page's), as ``name``."""
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login-button")


@pytest.mark.browser
def test_report_from_the_phone_lands_in_the_grid_where_the_worker_stands(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, here = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      geolocation={"latitude": here["lat"], "longitude": here["lon"], "accuracy": 8},
                                      permissions=["geolocation"])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/report")
        assert page.inner_text("h1").endswith("事件上报")  # Chinese by default
        width = page.evaluate("() => document.getElementById('map').getBoundingClientRect().width")
        assert width >= 380, width  # the map fills the phone's width
        sign_in_on(page, "walker")
        page.wait_for_function("document.querySelectorAll('#category option').length > 0")
        page.click("#locate")
        page.wait_for_function(f"document.querySelector('#place').textContent.includes('{here['grid']}')")
        page.select_option("#category", "0102")  # a manhole cover: the category asks its own questions
        page.wait_for_selector("#questions select[data-question='cover_state']")
        assert "井盖状况 *" in page.inner_text("#questions") and "所在位置（可选）" in page.inner_text("#questions")
        page.fill("#description", "井盖缺失，已设置警示")
        posted: list[str] = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" and "/api/incidents" in r.url else None)
        page.click("#send")  # the required question unanswered: the browser holds the form back
        page.wait_for_timeout(300)
        assert posted == [] and page.is_hidden("#receipt") and stored(engine) == []
        assert page.evaluate("document.querySelector(\"#questions select[data-question='cover_state']\")"
                             ".validity.valueMissing")
        page.select_option("#questions select[data-question='cover_state']", "missing")
        page.select_option("#questions select[data-question='location']", "footway")
        # the description is a full-width field under its label, as the address is
        label, area, address = page.evaluate("""() => [document.querySelector('#description').previousElementSibling,
            document.querySelector('#description'), document.querySelector('#address')].map(e => {
            const r = e.getBoundingClientRect(); return [r.left, r.top, r.bottom, r.width]; })""")
        assert area[1] >= label[2] - 1, (label, area)  # under its label, not beside it
        assert abs(area[3] - address[3]) < 2 and abs(area[0] - address[0]) < 2, (area, address)  # as wide as the address
        page.click("#send")
        page.wait_for_selector("#receipt:not([hidden])")
        # the confirmation where the worker looks: whole on the phone's screen, inside the visible panel
        page.wait_for_timeout(300)
        seen = page.evaluate("""() => { const r = document.querySelector('#receipt').getBoundingClientRect(),
            s = document.querySelector('#side').getBoundingClientRect();
            return [r.top, r.bottom, Math.max(s.top, 0), Math.min(s.bottom, window.innerHeight)]; }""")
        assert seen[0] >= seen[2] and seen[1] <= seen[3], seen
        receipt = page.inner_text("#receipt")
        public_id = re.search(r"已上报 (\S+)", receipt).group(1)
        rows = {r["public_id"]: r for r in stored(engine)}
        assert rows[public_id]["grid"] == here["grid"] and here["grid"] in receipt
        assert rows[public_id]["description"] == "井盖缺失，已设置警示"
        assert rows[public_id]["reporter_role"] == "grid_worker"
        assert rows[public_id]["attributes"] == {"cover_state": "missing", "location": "footway"}
        page.select_option("#category", "0103")  # street lights: no questions
        assert page.is_hidden("#questions")

        # the network drops: the report waits on the phone, with its author and the time it was made
        context.set_offline(True)
        page.fill("#description", "路灯不亮")
        page.click("#send")
        page.wait_for_function("document.querySelector('#queued').textContent.includes('1')")
        assert len(stored(engine)) == 1
        kept = page.evaluate("() => JSON.parse(localStorage.getItem('gridmap.reportQueue'))")
        assert len(kept) == 1 and kept[0]["owner"] == "walker" and kept[0]["reported_at"]
        # its author signs out before the network returns; another worker signs in on the same
        # phone: the report is not sent as theirs, nor shown
        page.click("#logout")
        context.set_offline(False)

        def sign_in(name: str) -> None:
            sign_in_on(page, name)
            page.wait_for_function(f"document.querySelector('#who').textContent === '{name}'")

        sign_in("runner")
        page.wait_for_timeout(800)
        assert page.inner_text("#queued") == "" and len(stored(engine)) == 1
        page.click("#logout")
        sign_in("walker")  # its author again: sent at sign-in
        page.wait_for_function("document.querySelector('#queued').textContent === ''", timeout=15000)
        page.wait_for_function("JSON.parse(localStorage.getItem('gridmap.reportQueue')).length === 0")
        after = stored(engine)
        assert len(after) == 2 and after[-1]["description"] == "路灯不亮" and after[-1]["grid"] == here["grid"]

        # and a report kept while offline goes as soon as the network returns (at the place located
        # before: locating again here could answer after the network dropped)
        context.set_offline(True)
        page.fill("#description", "树枝挡路")
        page.click("#send")
        page.wait_for_function("document.querySelector('#queued').textContent.includes('1')")
        context.set_offline(False)
        page.evaluate("() => window.dispatchEvent(new Event('online'))")
        page.wait_for_function("document.querySelector('#queued').textContent === ''", timeout=15000)
        assert [r["description"] for r in stored(engine)][-1] == "树枝挡路"

        # English: nothing Chinese left on the page but what the user typed, the category's own
        # questions and their choices included
        page.fill("#description", "")
        page.select_option("#category", "0501")
        page.click("#lang-switch")
        side = page.inner_text("#side") + page.inner_text("header h1")  # (the switch itself says 中文)
        assert not CJK.search(side), [line for line in side.splitlines() if CJK.search(line)]
        assert "What was seen *" in side and "Blocked exit or passage" in side
        assert "Grid " + here["grid"] in page.inner_text("#place")
        assert not errors, errors
        browser.close()


@pytest.mark.browser
def test_a_place_outside_every_grid_is_said_and_refused_in_both_languages(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, here = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      geolocation={"latitude": here["lat"] - 0.2, "longitude": here["lon"], "accuracy": 8},
                                      permissions=["geolocation"])  # at sea, south of Monaco
        page = context.new_page()
        page.goto(f"{url}/report")
        sign_in_on(page, "walker")
        page.wait_for_function("document.querySelectorAll('#category option').length > 0")
        page.click("#locate")
        page.wait_for_function("document.querySelector('#place').textContent.includes('不在已发布的网格内')")
        page.click("#send")
        page.wait_for_function("document.querySelector('#message').textContent.startsWith('上报失败')")
        assert "不在任何已发布的网格内" in page.inner_text("#message")
        page.click("#lang-switch")
        assert "outside every published grid" in page.inner_text("#message")
        assert stored(engine) == []
        browser.close()


@pytest.mark.browser
def test_the_map_shows_where_one_may_report_for_a_worker_and_an_administrator_of_all(site) -> None:
    """Without a basemap the map must still show something to tap on: a worker's communities, or
    for an administrator of every territory, the districts."""
    from playwright.sync_api import sync_playwright

    engine, url, _ = site
    import httpx

    with engine.begin() as conn:
        users.create_user(conn, "chief", PASSWORD)
        users.grant(conn, "chief", "admin", None)  # every territory, present and future
        districts = conn.execute(sa.text("SELECT count(*) FROM territories WHERE level = 'district'")).scalar_one()
    communities = len(httpx.get(f"{url}/api/territories/geojson", params={"level": "community", "root": MONACO}
                                ).json()["features"])
    drawn = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for who in ("walker", "chief"):
            page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
            page.goto(f"{url}/report")
            sign_in_on(page, who)
            outlines = "document.querySelectorAll('#map svg path[stroke=\"#2b8cbe\"]').length"  # the area's style
            page.wait_for_function(f"{outlines} > 0")
            drawn[who] = page.evaluate(outlines)
        browser.close()
    assert drawn == {"walker": communities, "chief": districts} and districts >= 1


def patrols_stored(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT p.id, p.walker, p.points, p.source, ST_NPoints(p.geom) AS vertices, ST_M(ST_StartPoint(p.geom)) AS t0, "
            "(SELECT array_agg(i.description ORDER BY i.id) FROM incidents i WHERE i.patrol_id = p.id) AS incidents "
            "FROM patrols p ORDER BY p.id"))]


@pytest.mark.browser
def test_a_patrol_recorded_on_the_phone_survives_the_network_and_a_reload(site) -> None:
    """The worker starts a patrol and walks (the browser's location moved 6 m at a time): the walk
    so far goes up while walking, a report made on the way is recorded on it, the network drops,
    the walk ends offline and waits on the phone, and goes up whole when the network returns
    (replacing the part); a second walk survives a reload of the page. Chinese by default,
    English on the switch."""
    from playwright.sync_api import sync_playwright

    engine, url, here = site
    step = 6.0 / 111_320  # 6 m north, in degrees of latitude
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      geolocation={"latitude": here["lat"], "longitude": here["lon"], "accuracy": 8},
                                      permissions=["geolocation"])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/report")
        assert page.is_hidden("#patrol")  # nothing to record before signing in
        sign_in_on(page, "walker")
        page.wait_for_selector("#patrol:not([hidden])")
        page.wait_for_function("document.querySelectorAll('#category option').length > 0")
        page.click("#patrol-start")
        page.wait_for_function("document.querySelector('#patrol-status').textContent.startsWith('巡查中')")
        assert page.is_visible("#patrol-stop") and page.is_hidden("#patrol-start")
        moved = 0

        def walk(steps: int) -> None:
            nonlocal moved
            for _ in range(steps):
                moved += 1
                context.set_geolocation({"latitude": here["lat"] + moved * step, "longitude": here["lon"], "accuracy": 8})
                page.wait_for_timeout(700)  # about 9 m/s: under the server's 15 m/s for a GPS jump

        walk(5)
        kept = page.evaluate("() => JSON.parse(localStorage.getItem('gridmap.patrol'))")
        assert kept["owner"] == "walker" and len(kept["points"]) >= 5, kept
        page.evaluate("() => window.gridmapPatrol.sendPart()")  # what the two-minute timer does
        page.wait_for_function("JSON.parse(localStorage.getItem('gridmap.patrol')).sent >= 5")
        part = patrols_stored(engine)
        assert len(part) == 1 and part[0]["walker"] == "walker" and part[0]["source"] == "phone"

        # a report on the way is recorded on the patrol
        page.click("#locate")
        page.wait_for_function(f"document.querySelector('#place').textContent.includes('{here['grid']}')")
        page.select_option("#category", "0103")
        page.fill("#description", "巡查中发现路灯不亮")
        page.click("#send")
        page.wait_for_selector("#receipt:not([hidden])")
        assert "已记入本次巡查" in page.inner_text("#receipt")

        # the network drops; the walk goes on and ends offline: it waits on the phone
        context.set_offline(True)
        walk(4)
        page.click("#patrol-stop")
        page.wait_for_function("document.querySelector('#patrol-queued').textContent.includes('1 条巡查轨迹')")
        assert page.is_visible("#patrol-start")
        assert patrols_stored(engine)[0]["points"] == part[0]["points"]
        context.set_offline(False)
        page.evaluate("() => window.dispatchEvent(new Event('online'))")
        page.wait_for_function("document.querySelector('#patrol-status').textContent.startsWith('巡查已上传')",
                               timeout=15000)
        whole = patrols_stored(engine)
        assert len(whole) == 1 and whole[0]["points"] > part[0]["points"] >= 5  # the part replaced by the whole
        assert whole[0]["vertices"] == whole[0]["points"] and whole[0]["t0"] is not None  # each point's time
        assert whole[0]["incidents"] == ["巡查中发现路灯不亮"]
        assert page.evaluate("() => JSON.parse(localStorage.getItem('gridmap.patrolQueue')).length") == 0

        # a second walk: the page reloaded half-way keeps it and goes on following the phone
        page.click("#patrol-start")
        walk(3)
        page.reload()
        page.wait_for_function("document.querySelector('#patrol-status').textContent.startsWith('巡查中')")
        walk(3)
        page.click("#lang-switch")
        status = page.inner_text("#patrol")
        assert status.startswith("Patrol") and not CJK.search(status), status
        page.click("#patrol-stop")
        page.wait_for_function("document.querySelector('#patrol-status').textContent.startsWith('Patrol uploaded')",
                               timeout=15000)
        after = patrols_stored(engine)
        assert len(after) == 2 and after[1]["points"] >= 6, after

        # a shared phone: walker's third walk is still running when runner signs in and starts
        # their own; walker's walk is kept for walker (not lost, not sent as runner's)
        page.click("#lang-switch")  # back to Chinese
        page.click("#patrol-start")
        walk(3)
        page.click("#logout")
        sign_in_on(page, "runner")
        page.wait_for_selector("#patrol-start:not([hidden])")
        assert page.inner_text("#patrol-status") == ""  # nothing of the last walker's on screen
        page.click("#patrol-start")
        walk(2)
        page.click("#patrol-stop")
        page.wait_for_function("document.querySelector('#patrol-status').textContent.startsWith('巡查已上传')",
                               timeout=15000)
        kept = page.evaluate("() => JSON.parse(localStorage.getItem('gridmap.patrolQueue'))")
        assert [w["owner"] for w in kept] == ["walker"] and len(kept[0]["points"]) >= 3
        assert [p["walker"] for p in patrols_stored(engine)] == ["walker", "walker", "runner"]
        page.click("#logout")
        sign_in_on(page, "walker")
        page.wait_for_function("JSON.parse(localStorage.getItem('gridmap.patrolQueue')).length === 0", timeout=15000)
        assert [p["walker"] for p in patrols_stored(engine)] == ["walker", "walker", "runner", "walker"]
        assert not errors, errors
        browser.close()


@pytest.mark.browser
def test_where_nothing_is_published_the_phone_says_so_in_its_own_language(monaco_built: sa.Engine,
                                                                           database_url: str) -> None:
    """A territory without a published plan: the place tapped and the report refused both say that
    no plan is published there (not that the place is outside the grids); a location the browser
    refuses is told in the page's language, never in the browser's English."""
    from playwright.sync_api import sync_playwright

    from gridmap.services.incidents import ensure_categories

    partition_territory(monaco_built, MONACO)  # a draft only: nothing published
    ensure_categories(monaco_built)
    with monaco_built.begin() as conn:
        users.create_user(conn, "walker", PASSWORD)
        users.grant(conn, "walker", "worker", MONACO)
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM territories "
            "WHERE level = 'community' AND code LIKE '9801%' ORDER BY code LIMIT 1) s")).one()
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = context.new_page()  # no permission to locate: the browser refuses
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/report")
        sign_in_on(page, "walker")
        page.wait_for_function("document.querySelectorAll('#category option').length > 0")
        page.click("#locate")
        page.wait_for_function("document.querySelector('#message').className === 'warn'")
        said = page.inner_text("#message")
        assert said.startswith("无法定位（") and not re.search(r"[A-Za-z]", said), said
        page.click("#lang-switch")
        said = page.inner_text("#message")
        assert said.startswith("Cannot locate (") and not CJK.search(said), said
        page.click("#lang-switch")

        page.evaluate(f"() => window.gridmapReport.map.fire('click', {{latlng: L.latLng({lat}, {lon})}})")
        page.wait_for_function("document.querySelector('#place').textContent.length > 0")
        place = page.inner_text("#place")
        assert "尚未发布网格方案" in place and "不在已发布的网格内" not in place, place
        page.fill("#description", "路灯不亮")
        page.click("#send")
        page.wait_for_function("document.querySelector('#message').className === 'error'")
        refused = page.inner_text("#message")
        assert refused.startswith("上报失败：") and "尚未发布网格方案" in refused and "不在任何已发布的网格内" not in refused, refused
        page.click("#lang-switch")
        refused = page.inner_text("#message")
        assert "has no published grid plan yet" in refused and not CJK.search(refused.replace("Monaco", "")), refused
        assert errors == []
        browser.close()
