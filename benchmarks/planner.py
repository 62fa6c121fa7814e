"""How smooth the planner is with every unit of Reykjavík on screen (4,887 units, 430 grids), or of
a generated district at building grain (``--generated 50000``: 50 communities of 1,000 units in a
lattice, grids of 20 units), in headless Chromium (Debian's, software rendering: a slower machine
than any planner's desktop).

    .venv/bin/python benchmarks/planner.py [--rounds 10] [--generated 50000] [--previous GIT_REF]

Prints: time to load the draft (fetch + parse + draw), the units payload on the wire and
decoded (gzip), frame time of a full redraw after a pan and after a zoom (canvas), the time from a
paint click to the panel showing the new households (the median of 7 clicks), and a brush stroke across about 100 units of
one community until the panel and the grid table show it. The peer is the page drawing the same
units as SVG (Leaflet's default renderer without preferCanvas, one Leaflet layer per unit, as the
page did up to ``SVG_PEER_REF``), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gridmap.services.bootstrap import ensure_demo_plans  # noqa: E402
from gridmap.services.demo import load_demo  # noqa: E402
from gridmap.services.planning import new_draft  # noqa: E402
from gridmap.store import users  # noqa: E402
from gridmap.store.db import engine_for, resolve_url  # noqa: E402
from samples import launch_chromium, serve  # noqa: E402

PASSWORD = "benchmark password"
PAINTS = 7  # paint clicks timed per row (their median is printed)
FRAME = """() => new Promise(done => { const m = window.gridmapPlannerMap(); const t0 = performance.now();
    m.once('moveend', () => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))));
    %s })"""


def measure(page, rounds: int) -> dict:
    pans = [page.evaluate(FRAME % "m.panBy([120, 80], {animate: false});") for _ in range(rounds)]
    zooms = [page.evaluate(FRAME % f"m.setZoom({z}, {{animate: false}});")
             for z in [13, 12] * (rounds // 2)]
    return {"pan_ms": statistics.median(pans), "zoom_ms": statistics.median(zooms)}


BRUSH = """() => new Promise(done => {
    const s = window.gridmapPlanner, m = window.gridmapPlannerMap(), g = s.grids[s.selected];
    let rest = Object.values(s.units).filter(u => u.community === g.community && u.grid !== s.selected);
    const path = [rest.shift()];
    while (path.length < 100 && rest.length) {  // a walk from unit to nearest unit: one stroke over 100 units
        const last = path[path.length - 1];
        rest.sort((a, b) => m.distance(last.label, a.label) - m.distance(last.label, b.label));
        path.push(rest.shift());
    }
    const t0 = performance.now(), ev = ll => ({latlng: L.latLng(ll), originalEvent: {}});
    m.fire('mousedown', ev(path[0].label));
    path.forEach(u => m.fire('mousemove', ev(u.label)));
    m.fire('mouseup', ev(path[path.length - 1].label));
    const handled = performance.now() - t0;  // the stroke's events, before the frame that shows it
    requestAnimationFrame(() => requestAnimationFrame(() =>
        done([performance.now() - t0, +document.querySelector('#pending').textContent, handled])));
})"""


def brush_stroke(page) -> tuple[float, int, float]:
    """A brush stroke (radius 10 m) through about 100 units of the selected grid's community: the
    time from the first mouse event to the frame after the panel and the grid table show it, and
    how many units it painted, and the time its mouse events took before that frame."""
    page.click("button[data-tool='brush']")
    page.fill("#brush-radius", "10")
    page.dispatch_event("#brush-radius", "input")
    page.evaluate("""() => { const s = window.gridmapPlanner;  // the paint clicks before: taken back
        for (let n = s.undo.length; n > 0; n--) document.querySelector('#undo').click(); }""")
    page.wait_for_function("document.querySelector('#pending').textContent === '0'")
    ms, painted, handled = page.evaluate(BRUSH)
    return ms, painted, handled


GENERATED = "990900"
"""The generated district's code (a territory of its own, removed and made again by each run)."""


def generated_district(engine, n_units: int) -> str:
    """A district of ``n_units`` square units (40 m, 5–40 households each) in communities of 1,000
    (a 40 × 25 lattice each), with a published plan of grids of 4 × 5 units: the size of a large
    Chinese district at building grain, stored through the same store functions a partition uses.
    Returns the district's code."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from gridmap.geo.report import grid_statistics
    from gridmap.services import planning
    from gridmap.store import assignment, plans, territories
    from gridmap.store import units as unit_store

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM plans WHERE territory_id IN (SELECT id FROM territories WHERE code LIKE :c)"),
                     {"c": GENERATED + "%"})
        conn.execute(sa.text("DELETE FROM units WHERE community_id IN (SELECT id FROM territories WHERE code LIKE :c)"),
                     {"c": GENERATED + "%"})
        conn.execute(sa.text("DELETE FROM unit_builds WHERE community_id IN (SELECT id FROM territories WHERE code LIKE :c)"),
                     {"c": GENERATED + "%"})
        conn.execute(sa.text("DELETE FROM territories WHERE code LIKE :c AND level = 'community'"), {"c": GENERATED + "%"})
        conn.execute(sa.text("DELETE FROM territories WHERE code = :c"), {"c": GENERATED})
    metric = 32648  # UTM 48N, around Chengdu
    cell, cols, rows = 40.0, 40, 25
    n_communities = max(1, n_units // (cols * rows))
    per_row = int(np.ceil(np.sqrt(n_communities * 2)))
    x0, y0 = 400_000.0, 3_280_000.0
    rng = np.random.default_rng(7)
    community_boxes, unit_frames = [], []
    for k in range(n_communities):
        cx, cy = x0 + (k % per_row) * cols * cell, y0 + (k // per_row) * rows * cell
        community_boxes.append(shapely.box(cx, cy, cx + cols * cell, cy + rows * cell))
        i, j = np.meshgrid(np.arange(cols), np.arange(rows), indexing="ij")
        i, j = i.ravel(), j.ravel()
        code = f"{GENERATED}{k + 1:06d}"
        unit_frames.append(gpd.GeoDataFrame({
            "community_code": code, "unit_id": [f"{code}-{a}-{b}" for a, b in zip(i, j)], "kind": "block",
            "name": None, "households": rng.integers(5, 41, len(i)), "area_m2": cell * cell,
            "grid_code": [f"{code}{(a // 4) * (rows // 5) + b // 5 + 1:03d}" for a, b in zip(i, j)]},
            geometry=shapely.box(cx + i * cell, cy + j * cell, cx + (i + 1) * cell, cy + (j + 1) * cell), crs=metric))
    units = gpd.GeoDataFrame(gpd.pd.concat(unit_frames, ignore_index=True), crs=metric).to_crs(4490)
    communities = gpd.GeoDataFrame({"code": [f"{GENERATED}{k + 1:06d}" for k in range(n_communities)],
                                    "name": [f"Generated {k + 1}" for k in range(n_communities)],
                                    "parent_code": GENERATED, "area_m2": cols * rows * cell * cell},
                                   geometry=community_boxes, crs=metric).to_crs(4490)
    district = gpd.GeoDataFrame({"code": [GENERATED], "name": ["Generated district"], "parent_code": [None],
                                 "area_m2": [float(communities["area_m2"].sum())]},
                                geometry=[shapely.MultiPolygon([g for g in communities.geometry])], crs=4490)
    communities["geometry"] = communities.geometry.apply(lambda g: shapely.MultiPolygon([g]))
    with engine.begin() as conn:
        territories.upsert(conn, district, level="district", source="benchmark")
        ids = territories.upsert(conn, communities, level="community", source="benchmark")
        builds = unit_store.record_builds(conn, {cid: {"inputs": {"generated": True}} for cid in ids.values()},
                                          territory_id=None, actor="benchmark")
        unit_store.add_generation(conn, units, ids, builds)
        db_ids = dict(conn.execute(sa.text(
            "SELECT unit_key, id FROM units WHERE community_id = ANY(:c) AND retired_at IS NULL"),
            {"c": list(ids.values())}).all())
        units["db_id"] = units["unit_id"].map(db_ids)
        grids = grid_statistics(units, units["grid_code"], metric).rename(columns={"_grid": "grid_code"})
        grids["community_code"] = grids["grid_code"].str[:12]
        grids["kind"] = "comprehensive"
        district_id = territories.get(conn, GENERATED).id
        plan_id, _ = plans.create(conn, territory_id=district_id, origin="partition", author="benchmark",
                                  parameters={"min_households": 300, "max_households": 500}, report={})
        assignment.write(conn, plan_id, grids, units, ids)
    planning.publish(engine, plan_id, version=None, actor="benchmark")
    return GENERATED


SVG_PEER_REF = "27a729d"
"""The last page that drew a Leaflet layer per unit (since, one layer draws every unit on the canvas:
gridmap/web/static/js/units-layer.js); the SVG peer is that page with Leaflet's SVG renderer."""


def tiles_settled(page, quiet_s: float = 1.0, limit_s: float = 20.0) -> None:
    """Wait until no context tile has been asked for during ``quiet_s`` (the first opening's tiles
    are in): Playwright's "networkidle" may have passed before the tiles were even asked for."""
    import time

    count, since, started = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - started < limit_s:
        now = page.evaluate("() => performance.getEntriesByType('resource').filter(r => r.name.includes('/tiles/')).length")
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)


def page_at(ref: str) -> dict[str, str]:
    """The planner's script and style sheet at git commit ``ref``."""
    return {name: subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout
            for name, path in (("js", "gridmap/web/static/js/planner.js"), ("css", "gridmap/web/static/css/planner.css"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--generated", type=int, metavar="UNITS",
                        help="a generated district of this many units instead of Reykjavík (e.g. 50000)")
    parser.add_argument("--previous", metavar="GIT_REF",
                        help="also measure the page as it was at this commit (its planner.js), in the same run")
    args = parser.parse_args()
    previous = page_at(args.previous) if args.previous else {}  # the page as it was
    try:
        svg_peer = page_at(SVG_PEER_REF)
    except subprocess.CalledProcessError:  # a shallow clone or a tarball: no history to take the peer from
        print(f"(no SVG peer: commit {SVG_PEER_REF} is not in this checkout)")
        svg_peer = None
    url = resolve_url()
    engine = engine_for(url)
    if args.generated:
        import time

        started = time.perf_counter()
        territory = generated_district(engine, args.generated)
        print(f"generated district {territory}: {args.generated} units stored and published in "
              f"{time.perf_counter() - started:.1f} s")
    else:
        territory = "990100"
        load_demo(engine, ["reykjavik"])
        ensure_demo_plans(engine, (territory,))
    draft_id, _ = new_draft(engine, territory, actor="benchmark")
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM users WHERE username = 'bench'")).first():
            users.create_user(conn, "bench", PASSWORD)
        if not conn.execute(sa.text("SELECT 1 FROM user_roles r JOIN users u ON u.id = r.user_id JOIN territories t "
                                    "ON t.id = r.territory_id WHERE u.username = 'bench' AND t.code = :t"),
                            {"t": territory}).first():
            users.grant(conn, "bench", "planner", territory)
    from playwright.sync_api import sync_playwright

    with serve(url) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        print(f"planner with the draft of {territory} (plan {draft_id}) in headless Chromium, 1400x900")
        print("load s: first opening (the run's first row: PostgreSQL writes the units; later rows get them from "
              "the server's cache); reload s: the same plan again in the same page (the browser asks with the "
              "units' ETag: 304)")
        print(f"{'renderer':<10}{'units':>7}{'load s':>9}{'reload s':>9}{'wire MB':>9}{'JSON MB':>9}{'pan frame ms':>14}"
              f"{'zoom frame ms':>15}{'paint→panel ms':>16}{'brush→table ms':>16}{'(events ms)':>12}{'brushed':>9}")
        for renderer in ("canvas",) + (("svg",) if svg_peer else ()) + ((f"@{args.previous}",) if previous else ()):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            if renderer.startswith("@"):  # the page as it was at that commit (canvas)
                page.route("**/static/js/planner.js", lambda route: route.fulfill(
                    body=previous["js"], content_type="application/javascript"))
                page.route("**/static/css/planner.css", lambda route: route.fulfill(
                    body=previous["css"], content_type="text/css"))
            if renderer == "svg":  # the peer: the page with Leaflet's SVG renderer, a Leaflet layer per unit
                page.route("**/static/js/planner.js", lambda route: route.fulfill(
                    body=svg_peer["js"]
                    .replace("canvas = L.canvas({ padding: 0.1, tolerance: 2 });", "canvas = L.svg({ padding: 0.1 });")
                    .replace("preferCanvas: true", "preferCanvas: false"), content_type="application/javascript"))
                page.route("**/static/css/planner.css", lambda route: route.fulfill(
                    body=svg_peer["css"], content_type="text/css"))
            page.goto(f"{base}/planner?territory={territory}&plan={draft_id}")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            started = page.evaluate("() => performance.now()")
            page.click("#login-button")
            page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=120000)
            load_s = (page.evaluate("() => performance.now()") - started) / 1000
            units = page.evaluate("() => Object.keys(window.gridmapPlanner.units).length")
            # the units request's size on the wire and decoded, from the page's Resource Timing (a
            # 50,000-unit answer is too large for the inspector's cache to hand back)
            wire, decoded = page.evaluate("""() => { const e = performance.getEntriesByType('resource')
                .filter(r => r.name.includes('/units?')).pop(); return [e.encodedBodySize, e.decodedBodySize]; }""")
            # the same plan again in the same page, once the first opening's tiles are in (a reload
            # measured while they still arrive measured them): the browser asks with the units' ETag (304)
            tiles_settled(page)
            started = page.evaluate("() => performance.now()")
            page.evaluate(f"() => window.gridmapPlannerLoad({draft_id})")
            reload_s = (page.evaluate("() => performance.now()") - started) / 1000
            page.evaluate("() => { window.gridmapPlannerMap().setZoom(12, {animate: false}); }")
            frames = measure(page, args.rounds)
            # paint: select a grid, then time a paint click on a unit of its community to the panel
            # update; the median of PAINTS clicks in different grids (one click is too noisy to tell)
            pairs = page.evaluate(f"""() => {{ const s = window.gridmapPlanner, us = Object.values(s.units), out = [];
                for (let i = 100; out.length < {PAINTS} && i < us.length; i += Math.max(1, Math.floor(us.length / 40))) {{
                    const a = us[i], b = us.find(u => u.community === a.community && u.grid !== a.grid);
                    if (b && !out.some(p => p[1] === b.id || p[0] === a.grid)) out.push([a.grid, b.id]); }}
                return out; }}""")
            page.click("button[data-tool='paint']")
            paints = []
            for grid, unit in pairs:
                page.evaluate(f"() => {{ window.gridmapPlanner.selected = '{grid}'; }}")
                page.wait_for_timeout(400)  # the last paint's preview and redraw are done
                paints.append(page.evaluate(f"""() => new Promise(done => {{
                    const u = window.gridmapPlanner.units[{unit}], t0 = performance.now();
                    if (u.layer) u.layer.eachLayer(l => l.fire('click', {{latlng: L.latLng(u.label)}}, true));  // a page
                    else {{  // of a layer per unit, or of one unit layer (its hit test, then the click, bubbling as a real one)
                        const units = window.gridmapPlannerUnits(), m = window.gridmapPlannerMap();
                        units._containsPoint(m.project(L.latLng(u.label)).subtract(m.getPixelOrigin()));  // not rounded
                        units.fire('click', {{latlng: L.latLng(u.label)}}, true); }}
                    requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))); }})"""))
                if page.evaluate(f"() => window.gridmapPlanner.units[{unit}].grid !== '{grid}'"):
                    raise SystemExit(f"{renderer}: a paint click painted nothing (the timing would be of nothing)")
            paint = statistics.median(paints)
            brush_ms, brushed, handled_ms = brush_stroke(page)
            if brushed < 50:  # the stroke walks about 100 units: far fewer painted would time too little
                raise SystemExit(f"{renderer}: the brush stroke painted {brushed} units, not about 100")
            print(f"{renderer:<10}{units:>7}{load_s:>9.2f}{reload_s:>9.2f}{wire / 1e6:>9.2f}{decoded / 1e6:>9.2f}{frames['pan_ms']:>14.1f}"
                  f"{frames['zoom_ms']:>15.1f}{paint:>16.1f}{brush_ms:>16.1f}{handled_ms:>12.1f}{brushed:>9}")
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
