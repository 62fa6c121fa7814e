"""How smooth the planner is with every unit of Reykjavík on screen (4,887 units, 430 grids), in
headless Chromium (Debian's, software rendering: a slower machine than any planner's desktop).

    .venv/bin/python benchmarks/planner.py [--rounds 10]

Prints: time to load the draft (fetch + parse + draw), the units payload on the wire and
decoded (gzip), frame time of a full redraw after a pan and after a zoom (canvas), the time from a
paint click to the panel showing the new households, and a brush stroke across about 100 units of
one community until the panel and the grid table show it. The peer is the same page drawing the
same units as SVG (Leaflet's default renderer without preferCanvas), measured in the same run.
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
    requestAnimationFrame(() => requestAnimationFrame(() =>
        done([performance.now() - t0, +document.querySelector('#pending').textContent])));
})"""


def brush_stroke(page) -> tuple[float, int]:
    """A brush stroke (radius 10 m) through about 100 units of the selected grid's community: the
    time from the first mouse event to the frame after the panel and the grid table show it, and
    how many units it painted."""
    page.click("button[data-tool='brush']")
    page.fill("#brush-radius", "10")
    page.dispatch_event("#brush-radius", "input")
    page.evaluate("() => { document.querySelector('#undo').click(); }")  # the paint click before: taken back
    page.wait_for_function("document.querySelector('#pending').textContent === '0'")
    ms, painted = page.evaluate(BRUSH)
    return ms, painted


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
        print(f"{'renderer':<10}{'units':>7}{'load s':>9}{'wire MB':>9}{'JSON MB':>9}{'pan frame ms':>14}"
              f"{'zoom frame ms':>15}{'paint→panel ms':>16}{'brush→table ms':>16}{'brushed':>9}")
        units_answer: dict = {}  # the units request of each page: its size on the wire and decoded
        for renderer in ("canvas", "svg"):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("response", lambda r, key=renderer: units_answer.__setitem__(key, r) if "/units?" in r.url else None)
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
            answer = units_answer[renderer]
            wire, decoded = answer.request.sizes()["responseBodySize"], len(answer.body())
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
            brush_ms, brushed = brush_stroke(page)
            print(f"{renderer:<10}{units:>7}{load_s:>9.2f}{wire / 1e6:>9.2f}{decoded / 1e6:>9.2f}{frames['pan_ms']:>14.1f}"
                  f"{frames['zoom_ms']:>15.1f}{paint:>16.1f}{brush_ms:>16.1f}{brushed:>9}")
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
