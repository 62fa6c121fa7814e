"""The planner in real headless Chromium against the real app and PostGIS: sign in, select a grid,
paint three units into it with real mouse clicks, watch the panel, save, reload, publish and find
the change in OGC API Features; and two pages editing one draft, the second save conflicting."""

from __future__ import annotations

from collections.abc import Iterator

import json
import urllib.request
import pytest
import sqlalchemy as sa

from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from gridmap.store import users
from samples import launch_chromium, serve

MONACO = "980100"
PASSWORD = "planner password"


@pytest.fixture
def site(monaco: sa.Engine, database_url: str) -> Iterator[tuple[sa.Engine, str, int]]:
    """Monaco with a published plan, a draft copied from it, a planner; the app on loopback."""
    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    draft_id, _ = planning.new_draft(monaco, MONACO, actor="test")
    with monaco.begin() as conn:
        users.create_user(conn, "planner", PASSWORD)
        users.grant(conn, "planner", "planner", MONACO)
    with serve(database_url) as url:
        yield monaco, url, draft_id


def open_planner(browser, url: str, draft_id: int):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/planner?territory={MONACO}&plan={draft_id}")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
    page.errors = errors
    return page


def pick_grid_and_units(page) -> dict:
    """A comprehensive grid and three units of its community that are in other grids."""
    return page.evaluate("""() => {
        const s = window.gridmapPlanner;
        const units = Object.values(s.units);
        for (const code of Object.keys(s.grids).sort()) {
            const g = s.grids[code];
            if (g.kind !== 'comprehensive') continue;
            const own = units.filter(u => u.grid === code);
            const others = units.filter(u => u.community === g.community && u.grid !== code)
                                .sort((a, b) => b.households - a.households);
            if (own.length && others.length >= 3)
                return {grid: code, own: own[0].id, targets: others.slice(0, 3).map(u => u.id)};
        }
        return null; }""")


def click_unit(page, unit_id: int) -> None:
    """A real mouse click on the unit's interior point, after bringing it into view."""
    page.evaluate(f"""() => {{
        const u = window.gridmapPlanner.units[{unit_id}];
        window.gridmapPlannerMap().setView(u.label, 18, {{animate: false}}); }}""")
    page.wait_for_timeout(150)
    x, y = page.evaluate(f"""() => {{
        const m = window.gridmapPlannerMap(), u = window.gridmapPlanner.units[{unit_id}];
        const p = m.latLngToContainerPoint(u.label), r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }}""")
    page.mouse.click(x, y)


@pytest.mark.browser
def test_paint_save_reload_publish(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        assert page.inner_text("#tools .tool.active") == "选择"  # Chinese by default
        pick = pick_grid_and_units(page)
        assert pick, "no grid with three units of its community elsewhere"
        click_unit(page, pick["own"])
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{pick['grid']}'")
        before = int(page.inner_text("#grid-households"))
        moved = page.evaluate(f"() => {pick['targets']}.map(id => window.gridmapPlanner.units[id].households)")

        page.click("button[data-tool='paint']")
        for unit_id in pick["targets"]:
            click_unit(page, unit_id)
        expected = before + sum(moved)
        page.wait_for_function(f"document.querySelector('#grid-households').textContent === '{expected}'")
        assert page.inner_text("#pending") == "3"
        page.wait_for_function("document.querySelector('#grid-compactness').textContent !== '—'")

        page.click("#save")
        page.wait_for_function("document.querySelector('#message').textContent.includes('已保存')")
        assert page.inner_text("#pending") == "0"

        page.reload()  # the tab keeps its sign-in (sessionStorage), so the draft loads again by itself
        page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
        grids_after = page.evaluate(f"() => {pick['targets']}.map(id => window.gridmapPlanner.units[id].grid)")
        assert grids_after == [pick["grid"]] * 3  # persisted
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT households FROM grids WHERE plan_id = :p AND code = :c"),
                                  {"p": draft_id, "c": pick["grid"]}).scalar_one()
        assert stored == expected

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#publish")
        page.wait_for_function("document.querySelector('#message').textContent.startsWith('已发布')")
        assert "只读" in page.inner_text("#plan-info")  # the published plan is read-only now
        with urllib.request.urlopen(f"{url}/collections/grids/items/{pick['grid']}") as response:
            served = json.load(response)
        assert served["properties"]["households"] == expected and served["properties"]["plan_id"] == draft_id

        page.click("#lang-switch")
        assert page.inner_text("#tools .tool.active") == "Select"
        assert page.errors == []
        browser.close()


@pytest.mark.browser
def test_second_save_gets_the_conflict_message(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        first, second = open_planner(browser, url, draft_id), open_planner(browser, url, draft_id)
        for page in (first, second):
            pick = pick_grid_and_units(page)
            click_unit(page, pick["own"])
            page.click("button[data-tool='paint']")
            click_unit(page, pick["targets"][0] if page is first else pick["targets"][1])
            page.wait_for_function("document.querySelector('#pending').textContent === '1'")
        first.click("#save")
        first.wait_for_function("document.querySelector('#message').textContent.includes('已保存')")
        second.click("#save")
        second.wait_for_function("document.querySelector('#message').classList.contains('conflict')")
        assert "保存冲突" in second.inner_text("#message")
        assert second.inner_text("#pending") == "1"  # the unsaved change is kept, not dropped
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": draft_id}).scalar()
        assert version == 2  # only the first save landed
        assert first.errors == [] and second.errors == []
        browser.close()


def screen_point(page, lat: float, lng: float) -> tuple[float, float]:
    return page.evaluate(f"""() => {{
        const m = window.gridmapPlannerMap(), p = m.latLngToContainerPoint([{lat}, {lng}]),
              r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }}""")


def households_of(page, code: str) -> int:
    return page.evaluate(f"""() => Object.values(window.gridmapPlanner.units)
        .filter(u => u.grid === '{code}').reduce((s, u) => s + u.households, 0)""")


@pytest.mark.browser
def test_merge_split_undo_lasso_cut_and_validate(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        pair = page.evaluate("""() => {
            const s = window.gridmapPlanner, units = Object.values(s.units);
            const codes = Object.keys(s.grids).filter(c => s.grids[c].kind === 'comprehensive').sort();
            for (const a of codes) for (const b of codes)
                if (a < b && s.grids[a].community === s.grids[b].community)
                    return {a, b, ua: units.find(u => u.grid === a).id, ub: units.find(u => u.grid === b).id};
            return null; }""")
        a, b = pair["a"], pair["b"]
        both = households_of(page, a) + households_of(page, b)
        click_unit(page, pair["ua"])
        page.click("button[data-tool='merge']")
        click_unit(page, pair["ub"])
        page.wait_for_function(f"document.querySelector('#grid-households').textContent === '{both}'")
        page.click("#undo")
        assert page.inner_text("#grid-households") == str(households_of(page, a)) != str(both)
        page.click("#redo")
        assert page.inner_text("#grid-households") == str(both)
        page.click("#save")
        page.wait_for_function("document.querySelector('#message').textContent.includes('已保存')")
        with engine.connect() as conn:
            codes = set(conn.execute(sa.text("SELECT code FROM grids WHERE plan_id = :p"), {"p": draft_id}).scalars())
        assert a in codes and b not in codes

        # split two units of the merged grid off into a new grid
        members = page.evaluate(f"() => Object.values(window.gridmapPlanner.units).filter(u => u.grid === '{a}')"
                                ".map(u => u.id)")
        page.click("button[data-tool='split']")
        for unit_id in members[:2]:
            click_unit(page, unit_id)
        page.click("#finish-split")
        new_code = page.inner_text("#grid-code")
        assert new_code != a and new_code.startswith(a[:12])
        page.click("#save")
        page.wait_for_function("document.querySelector('#message').textContent.includes('已保存')")
        with engine.connect() as conn:
            moved = set(conn.execute(sa.text(
                "SELECT pu.unit_id FROM plan_units pu JOIN grids g ON g.id = pu.grid_id WHERE g.plan_id = :p "
                "AND g.code = :c"), {"p": draft_id, "c": new_code}).scalars())
        assert moved == set(members[:2])

        # lasso: a small loop around one unit of another grid of the community paints it into the new grid
        target = page.evaluate(f"""() => {{
            const s = window.gridmapPlanner, c = s.grids['{a}'].community;
            return Object.values(s.units).find(u => u.community === c && u.grid !== '{new_code}').id; }}""")
        click_unit(page, target)  # centres the map on it (select tool: selects its grid) ...
        click_unit(page, members[0])  # ... then select the new grid again
        page.click("button[data-tool='lasso']")
        lat, lng = page.evaluate(f"() => window.gridmapPlanner.units[{target}].label")
        x, y = screen_point(page, lat, lng)
        page.mouse.move(x - 6, y - 6)
        page.mouse.down()
        for dx, dy in ((6, -6), (6, 6), (-6, 6), (-6, -6)):
            page.mouse.move(x + dx, y + dy, steps=3)
        page.mouse.up()
        assert page.evaluate(f"() => window.gridmapPlanner.units[{target}].grid") == new_code
        # one canvas only: a second one on top (the lasso line's) would swallow every later click
        assert page.evaluate("() => document.querySelectorAll('.leaflet-overlay-pane canvas').length") == 1

        # cut: choose a unit, draw a line across it, finish: the unit becomes pieces on the map and in PostGIS
        page.click("button[data-tool='cut']")
        click_unit(page, members[1])
        assert page.evaluate("() => window.gridmapPlanner.cutUnit") == members[1]
        lat, lng = page.evaluate(f"""() => {{ const u = window.gridmapPlanner.units[{members[1]}];
            u.layer.eachLayer(l => window.gridmapPlannerMap().fitBounds(l.getBounds().pad(1.0), {{animate: false}}));
            return u.label; }}""")
        west, east = page.evaluate(f"""() => {{ let b = null; window.gridmapPlanner.units[{members[1]}].layer
            .eachLayer(l => b = l.getBounds()); return [b.getWest(), b.getEast()]; }}""")
        page.wait_for_timeout(150)
        for lon in (west - 0.3 * (east - west), east + 0.3 * (east - west)):  # real clicks, outside the unit
            page.mouse.click(*screen_point(page, lat, lon))
        page.click("#finish-cut")
        page.wait_for_function(f"!window.gridmapPlanner.units[{members[1]}]")
        with engine.connect() as conn:
            pieces = conn.execute(sa.text("SELECT count(*) FROM units WHERE parent_id = :u"),
                                  {"u": members[1]}).scalar_one()
        assert pieces >= 2
        assert page.inner_text("#pending") == "0"  # the lasso edit was saved with the cut

        # validation: a list of problems; clicking one zooms to it
        page.click("#validate")
        page.wait_for_selector("#problems li")
        page.evaluate("() => { window.gridmapPlannerMap().setView([0, 0], 3, {animate: false}); }")
        page.click("#problems li >> nth=0")
        page.wait_for_timeout(300)
        after = page.evaluate("() => window.gridmapPlannerMap().getCenter()")
        assert 7.3 < after["lng"] < 7.5 and 43.6 < after["lat"] < 43.8  # zoomed back to the problem in Monaco
        page.click("#diff")
        page.wait_for_function("document.querySelector('#diff-summary').textContent.length > 0")
        assert "变更" in page.inner_text("#diff-summary")
        assert page.errors == []
        browser.close()
