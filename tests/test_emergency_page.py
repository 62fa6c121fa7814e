"""The emergency board (/emergency) and the phone's duty section (/report) in real headless
Chromium on the synthetic 雨城区: an administrator picks two grids on the map and switches them
into flood mode; a grid worker on a phone checks in where they stand, reports their grid affected
and knocks on a door of the campaign; the board, refreshing itself, shows the grid affected and
checked in on time, coloured so on the map; the administrator ends it and reads the report; both
pages in Chinese by default and in English on the switch."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import DISTRICT

PASSWORD = "emergency page password"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.browser
def test_the_board_and_the_phone_through_an_emergency(district: sa.Engine, database_url: str) -> None:
    from playwright.sync_api import sync_playwright

    from gridmap.services import campaigns, incidents, staff
    from gridmap.store import users
    from samples import launch_chromium, serve

    incidents.ensure_categories(district)
    with district.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.kind = 'comprehensive' "
            "ORDER BY g.code LIMIT 2")).all()
    (grid_a, a_lon, a_lat), (grid_b, *_) = rows
    with district.begin() as conn:
        for name, role in (("chief", "admin"), ("wang", "worker")):
            users.create_user(conn, name, PASSWORD)
            users.grant(conn, name, role, DISTRICT)
    from gridmap.services import lists

    lists.save_resource(district, DISTRICT, {"name": "冲锋舟队", "kind": "志愿队伍", "categories": ["其他"], "capacity": 12,
                                             "lon": a_lon, "lat": a_lat}, actor="test")
    person = staff.create(district, DISTRICT, name="王网格", role="专职网格员", actor="test")
    staff.assign(district, person["staff_id"], grid_a, actor="test", valid_from=date(2026, 1, 1))
    staff.update(district, person["staff_id"], {"username": "wang"}, actor="test")

    def sign_in(page, name: str) -> None:
        page.fill("#username", name)
        page.fill("#password", PASSWORD)
        page.click("#login-button")

    import os

    from gridmap.settings import Settings
    from gridmap.vault import new_key

    settings = Settings.from_env({**os.environ, "GRIDMAP_SECRET_KEY": new_key()})  # the register can be read
    with serve(database_url, settings) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        board = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        board.on("pageerror", lambda exc: errors.append(str(exc)))
        board.goto(f"{url}/emergency?territory={DISTRICT}")
        assert board.inner_text("h1").endswith("应急指挥（平战结合）")
        sign_in(board, "chief")
        board.wait_for_selector("#start:not([hidden])")
        board.wait_for_function("window.gridmapBoardMap && Object.keys(window.gridmapBoardMap()._layers).length > 5")
        for code in (grid_a, grid_b):  # picked on the map
            board.evaluate(f"""() => window.gridmapBoardMap().eachLayer(l => {{
                if (l.feature && l.feature.properties.grid_code === '{code}' && !('status' in l.feature.properties))
                    l.fire('click'); }})""")
        assert board.inner_text("#picked") == "已点选 2 个网格"
        board.select_option("#kind", "防汛")
        board.fill("#reason", "河水上涨")
        board.evaluate("() => { window.gridmapBoard.refreshMs = 400; }")  # (15 s in use)
        board.click("#start-button")
        board.wait_for_function("document.querySelectorAll('#grids tbody tr').length === 2")
        assert board.is_hidden("#start") and "签到截止" in board.inner_text("#current-meta")
        assert {r.get_attribute("data-grid") for r in board.query_selector_all("#grids tbody tr")} == {grid_a, grid_b}
        with district.connect() as conn:
            emergency_id = conn.execute(sa.text("SELECT id FROM emergencies WHERE ended_at IS NULL")).scalar_one()
        campaigns.create(district, DISTRICT, name="防汛敲门", emergency_id=emergency_id, actor="test",
                         deadline=datetime.now(timezone.utc) + timedelta(hours=3))

        # the phone: check in where one stands, the grid's status, a door
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      geolocation={"latitude": a_lat, "longitude": a_lon, "accuracy": 10},
                                      permissions=["geolocation"])
        phone = context.new_page()
        phone.on("pageerror", lambda exc: errors.append(str(exc)))
        phone.goto(f"{url}/report")
        sign_in(phone, "wang")
        phone.wait_for_selector("#duty:not([hidden])")
        assert phone.inner_text("#duty-title") == "应急状态：防汛"
        phone.click("#checkin")
        phone.wait_for_function("document.querySelector('#checkin-state').textContent.includes('按时')")
        assert grid_a in phone.inner_text("#checkin-state")
        phone.select_option("#duty-status", "affected")
        phone.click("#status-send")
        phone.wait_for_function("document.querySelector('#message').textContent.includes('受影响')")
        phone.wait_for_selector("#doors li.door")
        phone.locator("#doors li.door").first.locator("button[data-outcome=visited]").click()
        phone.wait_for_function("document.querySelector('#doors li.door').dataset.outcome === 'visited'")
        with district.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM campaign_visits WHERE visitor = 'wang'")).scalar_one() == 1
        # a basement without network: the next knock waits on the phone, and goes when the network returns
        context.set_offline(True)
        phone.locator("#doors li.door").nth(1).locator("button[data-outcome=nobody_home]").click()
        phone.wait_for_function("document.querySelector('#knocks-queued').textContent.includes('1 条')")
        context.set_offline(False)
        phone.evaluate("() => window.dispatchEvent(new Event('online'))")
        phone.wait_for_function("JSON.parse(localStorage.getItem('gridmap.knockQueue')).length === 0", timeout=15000)
        with district.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM campaign_visits WHERE visitor = 'wang' "
                                        "AND outcome = 'nobody_home'")).scalar_one() == 1
            stored = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM emergency_checkins")).one()
        assert stored == pytest.approx((a_lon, a_lat), abs=1e-6)  # where the phone stood
        phone.click("#lang-switch")
        duty = phone.inner_text("#duty")
        assert "Emergency: flood" in duty and "Check in (on duty)" in duty
        shown = (phone.inner_text("#duty-emergency") + phone.inner_text("#duty-status-box")).replace("河水上涨", "")
        assert not CJK.search(shown), shown  # (but the reason the administrator typed)

        # the board refreshes itself: grid A affected, checked in on time, coloured so on the map
        board.wait_for_function(f"""() => {{ const r = document.querySelector("#grids tr[data-grid='{grid_a}']");
            return r && r.dataset.status === 'affected' && r.dataset.checkin === 'on_time'; }}""", timeout=15000)
        colour = board.evaluate(f"""() => {{ let c = null; window.gridmapBoardMap().eachLayer(l => {{
            if (l.feature && l.feature.properties.grid_code === '{grid_a}' && l.options.fillColor !== '#ffffff'
                && l.options.fillOpacity === 0.6) c = l.options.fillColor; }}); return c; }}""")
        assert colour == "#fdae61"
        assert "按时签到\n1" in board.inner_text("#totals") and "受影响\n1" in board.inner_text("#totals")
        board.click(f"#grids tr[data-grid='{grid_a}']")  # what command can send there
        board.wait_for_selector(f"#grid-detail[data-grid='{grid_a}'] li")
        assert "冲锋舟队" in board.inner_text("#grid-detail") and "容量 12" in board.inner_text("#grid-detail")
        board.click("#focus-list")  # the administrator reads the grid's focus households (none registered here)
        board.wait_for_selector("#focus-households li")
        assert board.inner_text("#focus-households") == "本网格没有登记重点关注户。"
        board.fill("#end-note", "水位回落")
        board.click("#end-button")
        board.wait_for_function("document.querySelector('#report').textContent.startsWith('报告')", timeout=15000)
        assert "签到按时 1" in board.inner_text("#report") and "已入户 1" in board.inner_text("#report")
        board.click("#lang-switch")
        english = board.inner_text("#current").replace("河水上涨", "").replace("水位回落", "").replace("冲锋舟队", "")
        assert "Report:" in english and "Checked in on time" in english
        assert not CJK.search(english), [line for line in english.splitlines() if CJK.search(line)]
        assert not errors, errors
        browser.close()


@pytest.mark.browser
def test_a_campaigns_progress_on_the_people_map(district: sa.Engine, database_url: str) -> None:
    """A peacetime door-knocking campaign nine tenths through its time: on /people its progress is
    a measure of the map; the grids behind the even pace (all but the one whose doors were all
    knocked) are edged in red dashes, as many as the progress API flags, and a grid's figures say
    how far it got."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import campaigns
    from gridmap.store import users
    from samples import launch_chromium, serve

    with district.begin() as conn:
        users.create_user(conn, "chief", PASSWORD)
        users.grant(conn, "chief", "admin", DISTRICT)
    now = datetime.now(timezone.utc)
    made = campaigns.create(district, DISTRICT, name="入户走访", actor="test", starts_at=now - timedelta(hours=9),
                            deadline=now + timedelta(hours=1))
    with district.connect() as conn:
        grid, targets = conn.execute(sa.text(
            "SELECT grid_code, array_agg(id ORDER BY id) FROM campaign_targets WHERE campaign_id = :c GROUP BY grid_code "
            "ORDER BY count(*), grid_code LIMIT 1"), {"c": made["id"]}).one()
    for n, target in enumerate(targets):
        campaigns.knock(district, target, "visited", visitor="chief", user_id=None, client_id=f"p{n}")
    progress = campaigns.progress(district, made["id"])
    behind = {g["grid_code"] for g in progress["grids"] if g["behind"]}
    assert grid not in behind and len(behind) == len(progress["grids"]) - 1
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/people")
        page.fill("#username", "chief")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        page.select_option("#measure", "knocks")
        dashed = page.evaluate("""() => { const out = []; window.gridmapPeopleMap().eachLayer(l => {
            if (l.feature && l.feature.properties.grid_code && l.options.dashArray) out.push(l.feature.properties.grid_code); });
            return out; }""")
        assert set(dashed) == behind
        assert f"落后于进度（{len(behind)} 个" in page.inner_text("#legend")
        page.evaluate(f"""() => window.gridmapPeopleMap().eachLayer(l => {{
            if (l.feature && l.feature.properties.grid_code === '{grid}') l.fire('click'); }})""")
        page.wait_for_selector("#grid:not([hidden])")
        assert f"敲门进度\n{len(targets)} / {len(targets)}" in page.inner_text("#grid-figures")
        assert not errors, errors
        browser.close()
