"""How smooth the planner is with every unit of Reykjavík on screen (4,887 units, 430 grids), in
headless Chromium (Debian's, software rendering: a slower machine than any planner's desktop).

    .venv/bin/python benchmarks/planner.py [--rounds 10]

Prints: time to load the draft (fetch + parse + draw), frame time of a full redraw after a pan
and after a zoom (canvas), and the time from a paint click to the panel showing the new
households. The peer is the same page drawing the same units as SVG (Leaflet's default renderer
without preferCanvas), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
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
FRAME = """() => new Promise(done => { const m = window.gridmapPlannerMap(); const t0 = performance.now();
    m.once('moveend', () => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))));
    %s })"""


def measure(page, rounds: int) -> dict:
    pans = [page.evaluate(FRAME % "m.panBy([120, 80], {animate: false});") for _ in range(rounds)]
    zooms = [page.evaluate(FRAME % f"m.setZoom({z}, {{animate: false}});")
             for z in [13, 12] * (rounds // 2)]
    return {"pan_ms": statistics.median(pans), "zoom_ms": statistics.median(zooms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    url = resolve_url()
    engine = engine_for(url)
    load_demo(engine, ["reykjavik"])
    ensure_demo_plans(engine, ("990100",))
    draft_id, _ = new_draft(engine, "990100", actor="benchmark")
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM users WHERE username = 'bench'")).first():
            users.create_user(conn, "bench", PASSWORD)
            users.grant(conn, "bench", "planner", "990100")
    from playwright.sync_api import sync_playwright

    with serve(url) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        print(f"planner with the Reykjavík draft (plan {draft_id}) in headless Chromium, 1400x900")
        print(f"{'renderer':<10}{'units':>7}{'load s':>9}{'pan frame ms':>14}{'zoom frame ms':>15}{'paint→panel ms':>16}")
        for renderer in ("canvas", "svg"):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            if renderer == "svg":  # the peer: the same page with Leaflet's SVG renderer
                page.route("**/static/js/planner.js", lambda route: route.fulfill(
                    body=(ROOT / "gridmap/web/static/js/planner.js").read_text()
                    .replace("canvas = L.canvas({ padding: 0.1, tolerance: 2 });", "canvas = L.svg({ padding: 0.1 });")
                    .replace("preferCanvas: true", "preferCanvas: false"), content_type="application/javascript"))
            page.goto(f"{base}/planner?territory=990100&plan={draft_id}")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            started = page.evaluate("() => performance.now()")
            page.click("#login-button")
            page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=120000)
            load_s = (page.evaluate("() => performance.now()") - started) / 1000
            units = page.evaluate("() => Object.keys(window.gridmapPlanner.units).length")
            page.evaluate("() => { window.gridmapPlannerMap().setZoom(12, {animate: false}); }")
            frames = measure(page, args.rounds)
            # paint: select a grid, then time a paint click on a unit of its community to the panel update
            ids = page.evaluate("""() => { const s = window.gridmapPlanner, us = Object.values(s.units);
                const a = us[100]; const b = us.find(u => u.community === a.community && u.grid !== a.grid);
                s.selected = a.grid; return b.id; }""")
            page.click("button[data-tool='paint']")
            paint = page.evaluate(f"""() => new Promise(done => {{
                const u = window.gridmapPlanner.units[{ids}], t0 = performance.now();
                u.layer.eachLayer(l => l.fire('click', {{latlng: L.latLng(u.label)}}));
                requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))); }})""")
            print(f"{renderer:<10}{units:>7}{load_s:>9.2f}{frames['pan_ms']:>14.1f}{frames['zoom_ms']:>15.1f}{paint:>16.1f}")
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
