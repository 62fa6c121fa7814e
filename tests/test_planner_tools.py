"""The planner's brush and grid table in real headless Chromium against the real app and PostGIS:
a real mouse drag paints the units under the brush (one undo step, never across a community),
Alt + drag erases them back to their saved grid, and the table of all grids follows every change,
donor grids included, sorts, filters and selects."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from samples import launch_chromium
from test_planner_browser import click_unit, open_planner, site  # noqa: F401  (the fixture, used by name)

CJK = re.compile(r"[\u4e00-\u9fff]")


def screen_xy(page, latlng: list[float]) -> tuple[float, float]:
    return page.evaluate(f"""() => {{
        const m = window.gridmapPlannerMap(), p = m.latLngToContainerPoint({latlng});
        const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }}""")


def brush_path(page) -> dict:
    """A comprehensive grid, one of its units, and the nearest unit of its community in another grid."""
    return page.evaluate("""() => {
        const s = window.gridmapPlanner, m = window.gridmapPlannerMap(), units = Object.values(s.units);
        let best = null;
        for (const code of Object.keys(s.grids).sort()) {
            const g = s.grids[code];
            if (g.kind !== 'comprehensive') continue;
            for (const own of units.filter(u => u.grid === code)) {
                for (const other of units.filter(u => u.community === g.community && u.grid !== code)) {
                    const d = m.distance(own.label, other.label);
                    if (!best || d < best.d) best = {d, grid: code, community: g.community, own: own.id, target: other.id,
                                                     from: own.label, to: other.label, donor: other.grid};
                }
            }
            if (best) return best;
        }
        return null; }""")


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
    page.mouse.up()


def table_rows(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#grid-table tbody tr')].map(tr => ({
        code: tr.dataset.code, cells: [...tr.cells].map(td => td.textContent), cls: tr.className}))""")


@pytest.mark.browser
def test_brush_paints_in_one_undo_step_and_alt_erases(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        path = brush_path(page)
        assert path, "no grid with a unit of its community elsewhere"
        before = page.evaluate("() => Object.fromEntries(Object.values(window.gridmapPlanner.units).map(u => [u.id, u.grid]))")
        assert not page.is_visible("#brush-options")  # only with the brush
        page.click("button[data-tool='brush']")
        assert page.is_visible("#brush-options")
        page.evaluate(f"""() => {{ window.gridmapPlannerMap().fitBounds([{path['from']}, {path['to']}],
                                                                          {{padding: [150, 150], animate: false}}); }}""")
        page.wait_for_timeout(200)
        start, end = screen_xy(page, path["from"]), screen_xy(page, path["to"])
        page.mouse.click(*start)  # the first click selects the grid
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{path['grid']}'")
        page.fill("#brush-radius", "10")
        page.dispatch_event("#brush-radius", "input")
        drag(page, start, end)
        page.wait_for_function("+document.querySelector('#pending').textContent > 0")
        after = page.evaluate("() => Object.values(window.gridmapPlanner.units).map(u => [u.id, u.grid, u.community])")
        moved = [(uid, community) for uid, grid, community in after if grid != before[str(uid)]]
        assert moved and all(grid == path["grid"] for uid, grid, _ in after if before[str(uid)] != grid)
        assert {community for _, community in moved} == {path["community"]}  # never across a community
        assert path["target"] in {uid for uid, _ in moved}
        assert int(page.inner_text("#pending")) == len(moved)
        assert page.evaluate("() => window.gridmapPlanner.undo.length") == 1  # the whole stroke: one step

        page.click("#undo")
        page.wait_for_function("document.querySelector('#pending').textContent === '0'")
        page.click("#redo")
        page.wait_for_function(f"document.querySelector('#pending').textContent === '{len(moved)}'")

        page.keyboard.down("Alt")  # erase: the units under the brush go back to their saved grid
        drag(page, start, end)
        page.keyboard.up("Alt")
        page.wait_for_function("document.querySelector('#pending').textContent === '0'")
        back = page.evaluate("() => Object.fromEntries(Object.values(window.gridmapPlanner.units).map(u => [u.id, u.grid]))")
        assert back == before
        page.click("#save")  # a stroke erased again: nothing to send (the changes net out per unit)
        page.wait_for_function("document.querySelector('#message').textContent.includes('没有需要保存的修改')")

        # painted twice (into the grid, then into a third grid of the community): erase takes it back one
        # move, to the grid it had before the last one, not to the saved grid
        third = page.evaluate(f"""() => {{ const s = window.gridmapPlanner;
            return Object.keys(s.grids).sort().find(c => s.grids[c].community === '{path['community']}'
                && c !== '{path['grid']}' && c !== '{path['donor']}' && !s.grids[c].locked); }}""")
        assert third, "a community of at least three grids"
        page.click("button[data-tool='paint']")
        for grid in (path["grid"], third):
            page.evaluate(f"() => {{ window.gridmapPlanner.selected = '{grid}'; }}")
            page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['to']}, 18, {{animate: false}}); }}")
            page.wait_for_timeout(150)
            page.mouse.click(*screen_xy(page, path["to"]))
            page.wait_for_function(f"window.gridmapPlanner.units[{path['target']}].grid === '{grid}'")
        page.click("button[data-tool='brush']")
        page.fill("#brush-radius", "3")
        page.dispatch_event("#brush-radius", "input")
        x, y = screen_xy(page, path["to"])
        page.keyboard.down("Alt")
        drag(page, (x - 2, y), (x + 2, y), steps=2)
        page.keyboard.up("Alt")
        page.wait_for_function(f"window.gridmapPlanner.units[{path['target']}].grid === '{path['grid']}'")
        assert path["grid"] != path["donor"] == before[str(path["target"])]  # not the saved grid
        page.keyboard.down("Alt")  # erased already: a second erase leaves it (an erase is not a move to take back)
        drag(page, (x - 2, y), (x + 2, y), steps=2)
        page.keyboard.up("Alt")
        page.wait_for_timeout(300)
        assert page.evaluate(f"() => window.gridmapPlanner.units[{path['target']}].grid") == path["grid"]
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_grid_table_follows_painting_sorts_filters_and_selects(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with engine.begin() as conn:  # a grid with its worker (网格员), as the table lists them
        staffed = conn.execute(sa.text("UPDATE grids SET worker = '王网格' WHERE id = (SELECT min(id) FROM grids "
                                       "WHERE plan_id = :p) RETURNING code"), {"p": draft_id}).scalar_one()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        grids = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).length")
        page.wait_for_function(f"document.querySelectorAll('#grid-table tbody tr').length === {grids}")
        worker_of = {r["code"]: r["cells"][6] for r in table_rows(page)}
        assert worker_of[staffed] == "王网格" and sum(1 for w in worker_of.values() if w) == 1
        page.fill("#grid-filter", "王网格")  # the filter finds a grid by its worker too
        page.wait_for_function("document.querySelectorAll('#grid-table tbody tr').length === 1")
        assert [r["code"] for r in table_rows(page)] == [staffed]
        page.fill("#grid-filter", "")
        page.wait_for_function(f"document.querySelectorAll('#grid-table tbody tr').length === {grids}")
        for row in table_rows(page):  # compactness in [0, 1] (or not known yet), parts a whole count
            compact, parts = row["cells"][4], row["cells"][5]
            assert compact == "—" or 0 <= float(compact) <= 1, row
            assert parts == "—" or int(parts) >= 1, row
        assert page.inner_text("#grid-table-count") == f"共 {grids} 个网格，显示 {grids} 个"
        # the same plan loaded again in the page: its rows once each (the table keeps rows by code)
        page.evaluate(f"() => window.gridmapPlannerLoad({draft_id})")
        page.click("#grid-table th[data-sort='code']")  # the table drawn again, at once
        page.click("#grid-table th[data-sort='code']")
        codes = [r["code"] for r in table_rows(page)]
        assert len(codes) == grids and len(set(codes)) == grids
        band = page.evaluate("() => window.gridmapPlanner.band")
        for row in table_rows(page):  # the deviation column is the distance from the band
            households, deviation = int(row["cells"][1]), row["cells"][2]
            if deviation != "—":
                expected = households - band[0] if households < band[0] else max(households - band[1], 0)
                assert int(deviation) == expected, row

        page.click("#grid-table th[data-sort='households']")
        values = [int(r["cells"][1]) for r in table_rows(page)]
        assert values == sorted(values, reverse=True)
        page.click("#grid-table th[data-sort='households']")
        values = [int(r["cells"][1]) for r in table_rows(page)]
        assert values == sorted(values)

        path = brush_path(page)
        page.fill("#grid-filter", path["grid"])
        page.wait_for_function("document.querySelectorAll('#grid-table tbody tr').length === 1")
        page.evaluate("() => { const m = window.gridmapPlannerMap(); m.setZoom(m.getMinZoom(), {animate: false}); }")
        zoom_before = page.evaluate("() => window.gridmapPlannerMap().getZoom()")
        page.click(f"#grid-table tr[data-code='{path['grid']}']")  # a row selects its grid and zooms to it
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{path['grid']}'")
        page.wait_for_function(f"window.gridmapPlannerMap().getZoom() > {zoom_before}")
        inside = page.evaluate(f"""() => {{ const s = window.gridmapPlanner, m = window.gridmapPlannerMap();
            const u = Object.values(s.units).find(u => u.grid === '{path['grid']}');
            return m.getBounds().contains(u.label); }}""")
        assert inside  # the map shows the grid picked
        page.fill("#grid-filter", "")
        page.wait_for_function(f"document.querySelectorAll('#grid-table tbody tr').length === {grids}")
        donor_before = next(int(r["cells"][1]) for r in table_rows(page) if r["code"] == path["donor"])

        page.click("button[data-tool='paint']")
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['to']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(150)
        page.mouse.click(*screen_xy(page, path["to"]))
        page.wait_for_function("document.querySelector('#pending').textContent === '1'")
        moved = page.evaluate(f"() => window.gridmapPlanner.units[{path['target']}].households")
        # the row is drawn again after the paint (a unit of no households leaves the figure as it was:
        # the mark of a changed grid is what says the row followed)
        page.wait_for_function(f"""() => {{
            const row = document.querySelector("#grid-table tr[data-code='{path['donor']}']");
            return row && row.classList.contains('changed') && +row.cells[1].textContent === {donor_before - moved}; }}""")
        rows = {r["code"]: r for r in table_rows(page)}
        assert "changed" in rows[path["donor"]]["cls"] and "changed" in rows[path["grid"]]["cls"]
        assert rows[path["grid"]]["cells"][1] == page.inner_text("#grid-households")  # the same figure as the panel
        assert "selected" in rows[path["grid"]]["cls"]

        page.check("#grid-outside-only")
        page.wait_for_function("""() => [...document.querySelectorAll('#grid-table tbody tr')]
            .every(tr => !['0', '—'].includes(tr.cells[2].textContent))""")
        outside = table_rows(page)
        expected = page.evaluate("""() => { const s = window.gridmapPlanner, sums = {};
            Object.values(s.units).forEach(u => sums[u.grid] = (sums[u.grid] || 0) + u.households);
            return Object.keys(sums).filter(c => (s.grids[c] || {}).kind !== 'dedicated'
                && (sums[c] < s.band[0] || sums[c] > s.band[1])).length; }""")
        assert len(outside) == expected

        page.click("#lang-switch")
        headers = page.inner_text("#grid-table thead")
        assert "Households" in headers and "Worker" in headers
        assert not CJK.search(headers + page.inner_text("#grid-table-count"))
        assert page.get_attribute("#grid-filter", "placeholder") == "Filter by grid, community code or worker"
        assert not page.errors, page.errors
        browser.close()


def test_search_finds_grids_communities_and_named_features_with_their_grid(site) -> None:  # noqa: F811
    """/api/plans/{id}/search over the real demo data: every hit's grid is the grid whose unit holds
    its point (checked here with shapely on the plan's units, not by the same SQL)."""
    import json
    import urllib.parse
    import urllib.request

    import shapely

    from gridmap.store import frames

    from test_planner_browser import PASSWORD

    engine, url, draft_id = site
    form = urllib.parse.urlencode({"username": "planner", "password": PASSWORD}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/auth/token", data=form)) as r:
        token = json.load(r)["access_token"]

    def search(text: str) -> list[dict]:  # a draft: read by its planner
        request = urllib.request.Request(f"{url}/api/plans/{draft_id}/search?q={urllib.parse.quote(text)}",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as r:
            return json.load(r)["hits"]

    with engine.connect() as conn:
        units = frames.plan_units(conn, draft_id)
    grid_codes = sorted(units["grid_code"].unique())
    hits = search(grid_codes[0][:-2])  # a code's prefix: its grid and its siblings
    assert grid_codes[0] in [h["label"] for h in hits if h["kind"] == "grid"]
    assert all(h["label"].startswith(grid_codes[0][:-2]) for h in hits if h["kind"] == "grid")

    hits = search("océanographique")  # case-insensitive, inside the name
    museum = [h for h in hits if h["kind"] == "feature" and h["detail"] == "buildings"]
    assert museum and museum[0]["label"].startswith("Musée Océanographique")
    point = shapely.Point(museum[0]["point"])
    holder = units[units.geometry.intersects(point)]
    assert len(holder) >= 1 and museum[0]["grid_code"] == holder["grid_code"].iloc[0]

    # a POI, a street address (buildings' addr:street) and a road, each in the grid holding its point
    for text, layer in (("Mairie de Monaco", "pois"), ("Rue de la Lüjerneta", "buildings"),
                        ("Avenue Princesse Alice", "roads")):
        found = [h for h in search(text) if h["kind"] == "feature" and h["detail"] == layer]
        assert found, (text, search(text))
        point = shapely.Point(found[0]["point"])
        holder = units[units.geometry.intersects(point)]
        assert found[0]["grid_code"] is None or (len(holder) and found[0]["grid_code"] in set(holder["grid_code"])), \
            (text, found[0])
    assert search("Mairie de Monaco")[0]["grid_code"] is not None  # a POI inside the plan: its grid named

    community = units["community_code"].iloc[0]
    assert any(h["kind"] == "community" and community in h["label"] for h in search(community))
    assert search("%") == [] and search("_") == []  # literal text, not a pattern matching everything


@pytest.mark.browser
def test_search_box_zooms_and_selects(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        code = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).sort()[3]")
        page.fill("#search", code)
        page.press("#search", "Enter")  # before the hits came: goes to the first once they do
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{code}'")
        page.fill("#search", "Océano")
        page.wait_for_function("document.querySelector('#search-results').textContent.includes('Océanographique')")
        first = page.inner_text("#search-results li[data-index='0']")
        assert "Musée Océanographique" in first and "楼栋" in first
        page.click("#search-results li[data-index='0']")
        page.wait_for_function(f"document.querySelector('#grid-code').textContent !== '{code}'")
        assert page.evaluate("() => window.gridmapPlannerMap().getZoom()") >= 18
        grid = page.inner_text("#grid-code")
        assert grid in first  # the hit names the grid it lies in
        page.fill("#search", "zzzz-nothing")
        page.wait_for_function("document.querySelector('#search-results').textContent.includes('没有找到')")
        page.click("#lang-switch")
        assert page.get_attribute("#search", "placeholder").startswith("Search:")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_context_layers_draw_under_the_units_and_switch_off(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        tiles: list[str] = []
        page.on("response", lambda r: tiles.append(r.url) if "/tiles/context/" in r.url and r.status == 200 else None)
        page.evaluate("() => { window.gridmapPlannerMap().setView([43.7384, 7.4246], 17, {animate: false}); }")
        page.wait_for_function("document.querySelectorAll('.leaflet-context-pane canvas').length > 0")
        page.wait_for_function("""() => [...document.querySelectorAll('.leaflet-context-pane canvas')].some(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;  // something is drawn
            return false; })""")
        assert tiles and all("/tiles/context/980100/" in t for t in tiles)
        z_context = page.evaluate("() => +getComputedStyle(document.querySelector('.leaflet-context-pane')).zIndex")
        z_units = page.evaluate("() => +getComputedStyle(document.querySelector('.leaflet-overlay-pane')).zIndex")
        assert z_context < z_units  # under the units
        page.uncheck("#context-on")
        page.wait_for_function("document.querySelectorAll('.leaflet-context-pane canvas').length === 0")
        page.check("#context-on")
        page.wait_for_function("document.querySelectorAll('.leaflet-context-pane canvas').length > 0")
        page.click("#lang-switch")
        assert "roads" in page.inner_text("label:has(#context-on)")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_export_from_the_planner_is_read_back_by_ogrinfo(site, tmp_path) -> None:  # noqa: F811
    """The draft exported from the planner (with the planner's sign-in) as a GBK Shapefile in the
    Gauss-Krüger zone and as a GeoPackage with units: GDAL reads every grid back, names intact; and
    the selected grid's community printed as an A3 wall map of the same draft."""
    import subprocess

    from playwright.sync_api import sync_playwright

    from gridmap.services import planning

    engine, url, first_draft = site
    # a plan's id and its version in the territory differ from here on (the export names the version)
    planning.delete_draft(engine, first_draft, actor="test")
    draft_id, version = planning.new_draft(engine, "980100", actor="test")
    assert draft_id != version
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        grids = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).length")
        units = page.evaluate("() => Object.keys(window.gridmapPlanner.units).length")
        page.select_option("#export-format", "shp:gbk")
        page.select_option("#export-crs", "gk3")
        with page.expect_download() as download:
            page.click("#export")
        shp = tmp_path / download.value.suggested_filename
        download.value.save_as(shp)
        assert shp.suffix == ".zip" and f"-v{version}-" in shp.name  # the draft shown, not plan v{id}
        info = subprocess.run(["ogrinfo", "-ro", "-al", "-so", f"/vsizip/{shp}"], capture_output=True, text=True)
        assert info.returncode == 0, info.stderr
        assert f"Feature Count: {grids}" in info.stdout
        assert "CGCS2000" in info.stdout and "Gauss" in info.stdout  # the zone's projection, named
        cpg = subprocess.run(["unzip", "-p", str(shp), "*.cpg"], capture_output=True, text=True).stdout
        assert cpg.strip().upper() in ("GBK", "CP936", "936")

        page.select_option("#export-crs", "4490")
        for fmt in ("shp:utf-8", "kml:utf-8"):  # the other formats a district office asks for
            page.select_option("#export-format", fmt)
            with page.expect_download() as download:
                page.click("#export")
            out = tmp_path / download.value.suggested_filename
            download.value.save_as(out)
            where = f"/vsizip/{out}" if out.suffix == ".zip" else str(out)
            info = subprocess.run(["ogrinfo", "-ro", "-al", "-so", where], capture_output=True, text=True)
            assert info.returncode == 0 and f"Feature Count: {grids}" in info.stdout, (fmt, info.stdout, info.stderr)
            if fmt.startswith("shp"):
                cpg = subprocess.run(["unzip", "-p", str(out), "*.cpg"], capture_output=True, text=True).stdout
                assert cpg.strip().upper() in ("UTF-8", "UTF8"), cpg

        page.select_option("#export-format", "gpkg:utf-8")
        page.check("#export-units")
        with page.expect_download() as download:
            page.click("#export")
        gpkg = tmp_path / download.value.suggested_filename
        download.value.save_as(gpkg)
        listing = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(gpkg)], capture_output=True, text=True).stdout
        counts = dict(re.findall(r"Layer name: (\w+)\n(?:.*\n)*?Feature Count: (\d+)", listing))
        assert int(counts["grids"]) == grids and int(counts["units"]) == units, listing
        page.wait_for_function("document.querySelector('#message').textContent.includes('已下载')")

        # the wall map of the selected grid's community, in the page's language, of the draft shown
        code = sorted(page.evaluate("() => Object.keys(window.gridmapPlanner.grids)"))[0]
        community = page.evaluate(f"() => window.gridmapPlanner.grids['{code}'].community")
        options = page.eval_on_selector_all("#print-community option", "os => os.map(o => o.value)")
        assert community in options and len(options) == len(set(options))
        page.evaluate(f"() => {{ window.gridmapPlanner.selected = '{code}'; }}")
        page.select_option("#print-paper", "A3")
        page.select_option("#print-format", "png")
        with page.expect_download() as download:
            page.click("#print-map")
        sheet = tmp_path / download.value.suggested_filename
        download.value.save_as(sheet)
        assert sheet.name == f"gridmap-{community}-v{version}-A3.png", sheet.name
        assert sheet.read_bytes().startswith(b"\x89PNG")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_locking_a_grid_keeps_paint_out_and_is_kept_with_the_draft(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        path = brush_path(page)
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['to']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(150)
        page.mouse.click(*screen_xy(page, path["to"]))  # select the donor grid (select tool)
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{path['donor']}'")
        page.click("#lock-grid")
        page.wait_for_function("document.querySelector('#lock-grid').textContent === '解锁网格' || "
                               "/无法|冲突|失败|请先/.test(document.querySelector('#message').textContent)")
        assert page.inner_text("#lock-grid") == "解锁网格", page.inner_text("#message")  # what went wrong, if it did
        assert page.get_attribute("#lock-grid", "aria-pressed") == "true"
        page.wait_for_function(f"""() => document.querySelector("#grid-table tr[data-code='{path['donor']}']")
                                           .cells[7].textContent === '🔒'""")
        with engine.connect() as conn:  # saved at once, with the draft
            import sqlalchemy as sa
            assert conn.execute(sa.text("SELECT locked FROM grids WHERE plan_id = :p AND code = :c"),
                                {"p": draft_id, "c": path["donor"]}).scalar_one() is True

        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['from']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(150)
        page.mouse.click(*screen_xy(page, path["from"]))  # select the other grid
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{path['grid']}'")
        page.click("button[data-tool='paint']")
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['to']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(150)
        page.mouse.click(*screen_xy(page, path["to"]))  # a unit of the locked grid: refused at once
        page.wait_for_function("document.querySelector('#message').textContent.includes('已锁定')")
        assert page.inner_text("#pending") == "0"
        assert page.evaluate(f"() => window.gridmapPlanner.units[{path['target']}].grid") == path["donor"]

        page.reload()
        page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
        assert page.evaluate(f"() => window.gridmapPlanner.grids['{path['donor']}'].locked") is True
        page.click("#lang-switch")
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({path['to']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(150)
        page.mouse.click(*screen_xy(page, path["to"]))
        page.wait_for_function("document.querySelector('#lock-grid').textContent === 'Unlock grid'")
        page.click("#lock-grid")
        page.wait_for_function("document.querySelector('#lock-grid').textContent === 'Lock grid'")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_phone_layout_map_fills_the_screen_and_the_panel_folds(site) -> None:  # noqa: F811
    """At 390 × 844 (a phone) the map takes the whole screen under the header, the panel is a sheet
    over its bottom that folds to its handle, and a grid can still be found and selected."""
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/planner?territory=980100")
        page.wait_for_function("document.body.dataset.planLoaded", timeout=30000)  # the published plan, signed out
        box = page.evaluate("() => { const r = document.querySelector('#map').getBoundingClientRect();"
                            " return [r.width, r.height, r.top]; }")
        assert box[0] == 390 and box[1] >= 844 - 60  # the whole width, all but the header
        sheet = page.evaluate("() => document.querySelector('#side').getBoundingClientRect().height")
        assert 0 < sheet <= 844 * 0.56
        assert page.is_visible("#sheet-handle")
        page.click("#sheet-handle")
        page.wait_for_function("document.querySelector('#side').getBoundingClientRect().height < 60")
        assert page.get_attribute("#sheet-handle", "aria-expanded") == "false"
        assert page.inner_text("#sheet-handle") == "展开面板"
        page.click("#sheet-handle")
        page.wait_for_function("document.querySelector('#side').getBoundingClientRect().height > 200")
        code = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).sort()[0]")
        page.fill("#search", code)
        page.press("#search", "Enter")
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{code}'")
        assert page.evaluate("() => window.gridmapPlannerMap().getSize().x") == 390
        # one thumb on the map: the sheet folded, a tap on a unit selects its grid
        unit, grid = page.evaluate(f"""() => {{ const u = Object.values(window.gridmapPlanner.units)
            .find(u => u.grid !== '{code}' && u.households > 0); return [u.id, u.grid]; }}""")
        page.click("#sheet-handle")
        page.wait_for_function("document.querySelector('#side').getBoundingClientRect().height < 60")
        page.evaluate(f"""() => {{ const u = window.gridmapPlanner.units[{unit}];
            window.gridmapPlannerMap().setView(u.label, 18, {{animate: false}}); }}""")
        page.wait_for_timeout(200)
        x, y = page.evaluate(f"""() => {{ const m = window.gridmapPlannerMap(), u = window.gridmapPlanner.units[{unit}];
            const p = m.latLngToContainerPoint(u.label), r = m.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y]; }}""")
        page.touchscreen.tap(x, y)
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{grid}'")
        page.click("#sheet-handle")
        page.click("#lang-switch")
        assert page.inner_text("#sheet-handle") == "Fold the panel"
        assert not errors, errors
        page.click("#to-report")  # reporting from the street: the phone report page, one tap away
        page.wait_for_url("**/report")
        assert page.is_visible("#username")  # signed out: the report page asks the worker to sign in first
        browser.close()
    with sync_playwright() as p:  # a wide screen: no handle, the panel beside the map as before
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/planner?territory=980100")
        page.wait_for_function("document.body.dataset.planLoaded", timeout=30000)
        assert not page.is_visible("#sheet-handle")
        assert page.evaluate("() => document.querySelector('#map').getBoundingClientRect().left") > 300
        browser.close()


@pytest.mark.browser
def test_notes_are_written_on_a_grid_and_shown_in_the_diff(site) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        code = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).sort()[2]")
        page.fill("#search", code)
        page.press("#search", "Enter")
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{code}'")
        note = "沿主干道划界 <b>不是标签</b>"  # text, never markup
        page.fill("#note-text", note)
        page.click("#add-note")
        page.wait_for_function("document.querySelectorAll('#note-list li').length === 1")
        assert note in page.inner_text("#note-list") and "planner" in page.inner_text("#note-list")
        assert page.evaluate("() => document.querySelectorAll('#note-list b').length") == 0
        page.reload()
        page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
        page.fill("#search", code)
        page.press("#search", "Enter")
        page.wait_for_function("document.querySelectorAll('#note-list li').length === 1")  # kept with the draft
        page.click("#diff")
        page.wait_for_function("document.querySelector('#diff-notes').textContent.includes('沿主干道划界')")
        assert "新增备注 1 条" in page.inner_text("#diff-summary")
        page.click("#lang-switch")
        assert "1 new notes" in page.inner_text("#diff-summary")
        assert page.inner_text("#diff-notes").startswith(f"grid {code}: ")
        page.click("#lang-switch")
        page.click("#note-list button")
        page.wait_for_function("document.querySelectorAll('#note-list li').length === 0")

        # a note about one unit: click it (select tool), say the note is about it, write it
        unit = page.evaluate(f"() => Object.values(window.gridmapPlanner.units).find(u => u.grid === '{code}').id")
        assert page.is_hidden("#note-on option[value='unit']")  # no unit clicked yet: only the grid is offered
        click_unit(page, unit)
        page.wait_for_function(f"document.querySelector('#note-on option[value=unit]').textContent === '关于单元 {unit}'")
        page.select_option("#note-on", "unit")
        page.fill("#note-text", "这栋楼的住户走北门")
        page.click("#add-note")
        page.wait_for_function("document.querySelectorAll('#note-list li').length === 1")
        assert f"单元 {unit}：这栋楼的住户走北门" in page.inner_text("#note-list")
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT unit_id, grid_code FROM plan_notes WHERE plan_id = :p"),
                                {"p": draft_id}).all()
        assert [k.unit_id for k in kept] == [unit]
        page.click("#diff")  # the comparison opened above closes ...
        page.wait_for_function("window.gridmapPlanner.diff === null")
        page.click("#diff")  # ... and opens again, with the new note
        page.wait_for_function("document.querySelector('#diff-notes').textContent.includes('这栋楼的住户走北门')")
        assert f"{unit}" in page.inner_text("#diff-notes")
        page.click("#note-list button")
        page.wait_for_function("document.querySelectorAll('#note-list li').length === 0")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_compare_overlays_the_other_plan_its_moved_units_and_both_plans_figures(site) -> None:  # noqa: F811
    """Two units saved into a neighbouring grid of the draft; compared with the published plan:
    the two units filled, the published plan's borders dashed over the map, the figures of both
    plans in a table (the draft's households of the two grids differ), in both languages."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import planning
    from test_planning import two_grids

    engine, url, draft_id = site
    a, b, touching = two_grids(engine, draft_id)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": draft_id}).scalar_one()
        published_id = conn.execute(sa.text("SELECT id FROM plans WHERE status = 'published'")).scalar_one()
    planning.apply_edits(engine, draft_id, [{"op": "assign", "units": touching[:2], "grid": a}], version=version,
                         actor="planner")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        options = page.eval_on_selector_all("#compare-with option", "os => os.map(o => o.value)")
        assert options[0] == str(published_id) and str(draft_id) not in options  # the published plan first
        page.click("#diff")
        page.wait_for_function("!document.querySelector('#compare-figures').hidden")
        moved = page.evaluate("() => window.gridmapPlanner.diff.movedShown")
        assert moved == 2
        layers = page.evaluate("() => window.gridmapPlanner.diffLayer.getLayers().map(l => l.getLayers().length)")
        with engine.connect() as conn:
            published_grids = conn.execute(sa.text("SELECT count(*) FROM grids WHERE plan_id = :p"),
                                           {"p": published_id}).scalar_one()
        assert layers[0] == 2 and layers[2] == published_grids  # moved units; the other plan's borders
        rows = {r["figure"]: r for r in page.evaluate("""() => [...document.querySelectorAll('#compare-figures tbody tr')]
            .map(tr => ({figure: tr.dataset.figure, cells: [...tr.cells].map(td => td.textContent), cls: tr.className}))""")}
        assert rows["grids"]["cells"][1] == rows["grids"]["cells"][2] == str(published_grids)
        with engine.connect() as conn:  # each plan's figures, read here from its grids
            figures = {plan: conn.execute(sa.text(
                "SELECT count(*), min(households), max(households) FROM grids WHERE plan_id = :p "
                "AND kind = 'comprehensive'"), {"p": plan}).one() for plan in (draft_id, published_id)}
        for column, plan in ((1, draft_id), (2, published_id)):
            count, fewest, most = figures[plan]
            assert [rows[f]["cells"][column] for f in ("comprehensive", "households_min", "households_max")] == \
                [str(count), str(fewest), str(most)], (rows, figures)
        for row in rows.values():  # a figure that differs between the plans is marked, and only such a one
            assert ("changed" in row["cls"]) == (row["cells"][1] != row["cells"][2]), row
        assert "移动 2 个单元" in page.inner_text("#diff-summary")
        assert page.inner_text("#compare-this").startswith("v") and "已发布" in page.inner_text("#compare-other")
        page.click("#lang-switch")
        assert "2 units moved" in page.inner_text("#diff-summary") and "published" in page.inner_text("#compare-other")
        assert not CJK.search(page.inner_text("#compare-figures"))
        page.click("#diff")  # off again: the table and the overlay go
        page.wait_for_function("document.querySelector('#compare-figures').hidden && !window.gridmapPlanner.diffLayer")
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_side_by_side_shows_the_compared_plan_beside_in_step(site) -> None:  # noqa: F811
    """"Side by side" with no comparison open opens it and a second map of the published plan right
    of the draft: half the width each, the published plan's every grid drawn there and the two
    moved units in magenta, a pan or zoom of either map moving the other, a caption in both
    languages; closing the comparison closes the second map and gives the first its width back."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import planning
    from test_planning import two_grids

    engine, url, draft_id = site
    a, b, touching = two_grids(engine, draft_id)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": draft_id}).scalar_one()
        published_id = conn.execute(sa.text("SELECT id FROM plans WHERE status = 'published'")).scalar_one()
        published_grids = conn.execute(sa.text("SELECT count(*) FROM grids WHERE plan_id = :p"),
                                       {"p": published_id}).scalar_one()
    planning.apply_edits(engine, draft_id, [{"op": "assign", "units": touching[:2], "grid": a}], version=version,
                         actor="planner")
    # the two maps' centres apart in screen pixels (Leaflet rounds each map's pixel origin), and their zooms
    centres = """() => { const a = window.gridmapPlannerMap(), b = window.gridmapPlannerSideMap();
        return [a.project(a.getCenter()).distanceTo(a.project(b.getCenter())), a.getZoom(), b.getZoom(),
                a.getCenter().lng]; }"""
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        full_width = page.eval_on_selector("#map", "m => m.getBoundingClientRect().width")
        page.click("#side-by-side")
        page.wait_for_function("window.gridmapPlannerSideMap() !== null")
        assert page.get_attribute("#side-by-side", "aria-pressed") == "true"
        assert not page.eval_on_selector("#compare-figures", "t => t.hidden")  # the comparison opened with it
        widths = page.evaluate("""() => ['#map', '#map-other'].map(s => document.querySelector(s).getBoundingClientRect())
            .map(r => [r.left, r.width])""")
        assert abs(widths[0][1] - widths[1][1]) <= 4 and widths[0][1] < 0.6 * full_width  # 3 px: the divider
        assert widths[1][0] >= widths[0][0] + widths[0][1] - 1  # right of the plan shown
        drawn = page.evaluate("""() => { const found = {}; window.gridmapPlannerSideMap().eachLayer(l => {
            if (!l.getLayers || l.feature !== undefined) return;
            const first = l.getLayers()[0], p = first && first.feature && first.feature.properties;
            const kind = !p ? 'labels' : (p.unit_id !== undefined ? 'units' : 'grids');
            found[kind] = l.getLayers().length; }); return found; }""")
        assert drawn["grids"] == published_grids and drawn["units"] == 2  # the other plan's grids; the moved units
        assert "已发布" in page.inner_text("#map-other-caption")
        before = page.evaluate(centres)
        page.evaluate("() => { window.gridmapPlannerMap().panBy([150, 90], {animate: false}); }")
        c = page.evaluate(centres)
        assert c[3] != before[3] and c[0] <= 2 and c[1] == c[2]  # moved, and the other map with it
        page.evaluate("() => { const m = window.gridmapPlannerSideMap(); m.setZoom(m.getZoom() + 1, {animate: false}); }")
        c2 = page.evaluate(centres)
        assert c2[1] == c2[2] == c[1] + 1 and c2[0] <= 2
        page.click("#lang-switch")
        assert "published" in page.inner_text("#map-other-caption")
        page.click("#diff")  # closing the comparison closes the second map
        page.wait_for_function("window.gridmapPlannerSideMap() === null && document.querySelector('#map-other').hidden")
        assert page.get_attribute("#side-by-side", "aria-pressed") == "false"
        assert abs(page.eval_on_selector("#map", "m => m.getBoundingClientRect().width") - full_width) <= 2
        assert not page.errors, page.errors
        browser.close()


def pixel_at(page, latlng: list[float]) -> list[int]:
    """The RGBA of the planner's canvas under ``latlng`` (the canvas spans the renderer's bounds)."""
    return page.evaluate(f"""() => {{
        const m = window.gridmapPlannerMap(), r = window.gridmapPlannerUnits()._renderer;
        const p = m.latLngToLayerPoint({latlng}).subtract(r._bounds.min), c = r._container;
        const scale = c.width / (r._bounds.max.x - r._bounds.min.x);
        return [...c.getContext('2d').getImageData(Math.round(p.x * scale), Math.round(p.y * scale), 1, 1).data]; }}""")


@pytest.mark.browser
def test_one_layer_draws_every_unit_finds_it_under_the_pointer_and_redraws_a_paint(site) -> None:  # noqa: F811
    """Every unit is drawn by one layer on the one canvas: the unit under each unit's interior point
    is that unit (hit test, every unit of the plan), the tooltip follows the pointer from one unit
    to the next, and a paint click redraws the painted unit in its new grid's colour (and an undo
    in its old one) while a unit far from it is not touched."""
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        assert page.evaluate("() => document.querySelectorAll('.leaflet-overlay-pane canvas').length") == 1
        assert page.evaluate("""() => { const units = window.gridmapPlannerUnits(), all = Object.values(window.gridmapPlanner.units);
            return units.count() === all.length && all.every(u => units.unitAt(L.latLng(u.label)) === u); }""")
        # a point on a unit's outline is in no unit's interior, and within the click tolerance of one
        assert page.evaluate("""() => { const units = window.gridmapPlannerUnits(), u = Object.values(window.gridmapPlanner.units)[0];
            const ring = u.geometry.type === 'Polygon' ? u.geometry.coordinates[0] : u.geometry.coordinates[0][0];
            const on = L.latLng(ring[0][1], ring[0][0]);
            return units.unitAt(on, 2 / Math.pow(2, window.gridmapPlannerMap().getZoom())) !== null; }""")
        path = brush_path(page)
        page.evaluate(f"""() => {{ window.gridmapPlannerMap().fitBounds([{path['from']}, {path['to']}],
                                                                          {{padding: [150, 150], animate: false}}); }}""")
        page.wait_for_timeout(300)
        # the second move comes right after the first was answered, inside the 32 ms in which Leaflet's
        # canvas drops pointer moves: the tooltip still has to name the unit the pointer rests on
        stops = [(path["own"], screen_xy(page, path["from"])), (path["target"], screen_xy(page, path["to"]))]
        for unit, xy in stops:
            page.mouse.move(*xy)
            page.wait_for_function(f"""() => {{ const t = document.querySelector('.leaflet-tooltip');
                return t && t.textContent.startsWith('单元 {unit} ·'); }}""", timeout=3000)
        far = page.evaluate(f"""() => {{ const s = window.gridmapPlanner, m = window.gridmapPlannerMap(),
            b = m.getBounds().pad(-0.05), to = L.latLng({path['to']});
            const inView = Object.values(s.units).filter(u => b.contains(u.label) && m.distance(u.label, to) > 150);
            return inView.length ? inView[0].label : null; }}""")
        before, far_before = pixel_at(page, path["to"]), far and pixel_at(page, far)
        page.mouse.click(*screen_xy(page, path["from"]))  # select the grid, then paint the unit next to it
        page.click("button[data-tool='paint']")
        page.mouse.click(*screen_xy(page, path["to"]))
        page.wait_for_function("+document.querySelector('#pending').textContent === 1")
        page.wait_for_timeout(100)  # the partial redraw waits for the next frame
        painted = pixel_at(page, path["to"])
        assert painted != before, (before, painted)
        if far:
            assert pixel_at(page, far) == far_before
        page.click("#undo")
        page.wait_for_function("document.querySelector('#pending').textContent === '0'")
        page.mouse.move(0, 0)  # no hover outline
        page.wait_for_timeout(100)
        assert pixel_at(page, path["to"]) == before
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_outlines_and_labels_follow_painting_before_the_save(site) -> None:  # noqa: F811
    """A paint shows both grids as the server's dry run draws them (dashed outlines, labels with the
    new households), not only after a save; an undo puts the saved outlines and labels back."""
    from playwright.sync_api import sync_playwright

    _engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        path = page.evaluate("""() => {  // two neighbouring grids and a unit of households to move between them
            const s = window.gridmapPlanner, units = Object.values(s.units), m = window.gridmapPlannerMap();
            for (const u of units.filter(u => u.households > 0)) {
                const g = s.grids[u.grid], near = units.filter(v => v.community === u.community && v.grid !== u.grid
                    && s.grids[v.grid].kind === 'comprehensive' && m.distance(v.label, u.label) < 150);
                if (g && g.kind === 'comprehensive' && near.length) return {unit: u.id, donor: u.grid, to: near[0].grid};
            }
            return null; }""")
        assert path is not None
        labels = """() => [...document.querySelectorAll('.grid-label')].map(l => [l.className.includes('unsaved'),
            l.querySelector('b').textContent, l.textContent])"""
        dashed = """code => { const out = [];
            window.gridmapPlannerMap().eachLayer(l => { if (l.feature && l.feature.properties.grid_code === code
                && l.options.dashArray) out.push(l.options.dashArray); }); return out.length; }"""
        saved = page.evaluate(f"() => window.gridmapPlanner.tally['{path['donor']}'].households")
        moved = page.evaluate(f"() => window.gridmapPlanner.units[{path['unit']}].households")
        click_unit(page, page.evaluate(f"() => Object.values(window.gridmapPlanner.units).find(u => u.grid === '{path['to']}').id"))
        page.click("button[data-tool='paint']")
        click_unit(page, path["unit"])
        page.wait_for_function("document.querySelector('#pending').textContent === '1'")
        page.wait_for_function(f"window.gridmapPlanner.preview['{path['donor']}'] !== undefined")
        page.wait_for_function(f"({dashed})('{path['donor']}') > 0 && ({dashed})('{path['to']}') > 0")
        donor = path["donor"][-3:]  # the label names the grid by the last 3 digits of its code
        shown = page.evaluate(labels)
        assert [True, donor, f"{donor}{saved - moved}"] in shown, (shown, saved, moved)  # the new figure, unsaved
        assert [False, donor, f"{donor}{saved}"] not in shown  # the saved label is taken off meanwhile
        assert sum(unsaved for unsaved, _, _ in shown) == 2  # the donor and the grid painted into
        page.click("#undo")
        page.wait_for_function(f"({dashed})('{path['donor']}') === 0 && ({dashed})('{path['to']}') === 0")
        shown = page.evaluate(labels)
        assert not any(unsaved for unsaved, _, _ in shown)
        assert [False, donor, f"{donor}{saved}"] in shown  # the saved label back
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_a_wider_brush_paints_more_never_across_a_community_or_out_of_a_locked_grid(site) -> None:  # noqa: F811
    """The same short stroke with a 5 m and a 60 m brush: the wider one paints more units, none of
    another community although some lie under it; units of a locked grid stay where they are."""
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_planner(browser, url, draft_id)
        # a unit of households with, within 60 m, units of its own community in other grids and of another community
        spot = page.evaluate("""() => {
            const s = window.gridmapPlanner, m = window.gridmapPlannerMap(), units = Object.values(s.units);
            for (const u of units) {
                const g = s.grids[u.grid];
                if (!g || g.kind !== 'comprehensive') continue;
                const near = units.filter(v => v.id !== u.id && m.distance(v.label, u.label) < 45);
                const own = near.filter(v => v.community === u.community && v.grid !== u.grid);
                const foreign = near.filter(v => v.community !== u.community);
                if (own.length && foreign.length) return {grid: u.grid, unit: u.id, at: u.label,
                    own: own.map(v => v.id), foreign: foreign.map(v => v.id)};
            }
            return null; }""")
        assert spot, "no unit near both its own community's other grids and another community"
        page.click("button[data-tool='brush']")
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({spot['at']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(200)
        x, y = screen_xy(page, spot["at"])
        page.mouse.click(x, y)  # selects the unit's grid
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{spot['grid']}'")

        def stroke(radius: int) -> list[int]:
            page.fill("#brush-radius", str(radius))
            page.dispatch_event("#brush-radius", "input")
            drag(page, (x - 4, y), (x + 4, y), steps=4)
            page.wait_for_timeout(100)
            painted = page.evaluate("() => Object.values(window.gridmapPlanner.units).filter(u => u.grid !== u.saved)"
                                    ".map(u => u.id)")
            page.evaluate("() => { const s = window.gridmapPlanner;"
                          " for (let n = s.undo.length; n > 0; n--) document.querySelector('#undo').click(); }")
            page.wait_for_function("document.querySelector('#pending').textContent === '0'")
            return painted

        narrow, wide = stroke(5), stroke(60)
        assert len(wide) > len(narrow) and set(spot["own"]) & set(wide)
        assert not set(spot["foreign"]) & set(wide)  # under the brush, in another community: not painted
        assert "网格不能跨越社区边界" in page.inner_text("#message") or "不能跨越社区" in page.inner_text("#notice-text")

        # the donor grid of the units painted, locked: the same stroke leaves its units alone
        donor = page.evaluate(f"() => window.gridmapPlanner.units[{sorted(set(spot['own']) & set(wide))[0]}].grid")
        from gridmap.services import planning

        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": draft_id}).scalar_one()
        planning.apply_edits(engine, draft_id, [{"op": "set", "grid": donor, "locked": True}], version=version,
                             actor="planner")  # locked by someone else meanwhile
        page.evaluate(f"() => window.gridmapPlannerLoad({draft_id})")
        page.wait_for_function(f"window.gridmapPlanner.grids['{donor}'].locked === true")
        page.click("button[data-tool='brush']")
        page.evaluate(f"() => {{ window.gridmapPlannerMap().setView({spot['at']}, 18, {{animate: false}}); }}")
        page.wait_for_timeout(200)
        page.mouse.click(x, y)
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{spot['grid']}'")
        page.fill("#brush-radius", "60")
        page.dispatch_event("#brush-radius", "input")
        drag(page, (x - 4, y), (x + 4, y), steps=4)
        page.wait_for_timeout(100)
        grids_now = page.evaluate("() => Object.fromEntries(Object.values(window.gridmapPlanner.units)"
                                  ".map(u => [u.id, u.grid]))")
        held = [u for u in spot["own"] if u in wide and page.evaluate(f"() => window.gridmapPlanner.units[{u}].saved") == donor]
        assert held and all(grids_now[str(u)] == donor for u in held)  # painted before, kept by the lock now
        assert not page.errors, page.errors
        browser.close()


@pytest.mark.browser
def test_a_tianditu_key_gives_every_map_its_basemap(monaco_built: sa.Engine, database_url: str) -> None:
    """With GRIDMAP_TIANDITU_KEY set, the landing map and the planner ask Tianditu for its vector map
    and its Chinese annotation (Web Mercator WMTS, the key in each request); without one they ask
    no other host (tests/test_web.py)."""
    import dataclasses

    from playwright.sync_api import sync_playwright

    from gridmap.settings import Settings
    from samples import serve

    pixel = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
             + b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
             + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    settings = dataclasses.replace(Settings.from_env(), tianditu_key="k-test-123")
    with serve(database_url, settings) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        for path in ("/", "/planner?territory=980100"):
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            asked: list[str] = []
            page.route(lambda u: "tianditu.gov.cn" in u,
                       lambda route: (asked.append(route.request.url), route.fulfill(body=pixel, content_type="image/png")))
            page.goto(url + path, wait_until="domcontentloaded")
            for _ in range(100):  # until both layers' tiles were asked for (10 s at most)
                if all(any(f"/{layer}/" in a for a in asked) for layer in ("vec_w", "cva_w")):
                    break
                page.wait_for_timeout(100)
            assert asked, path
            assert all("tk=k-test-123" in a and "TILEMATRIXSET=w" in a for a in asked), asked[:3]
            assert {layer for layer in ("vec_w", "cva_w") if any(f"/{layer}/" in a for a in asked)} == {"vec_w", "cva_w"}
            page.close()
        browser.close()
