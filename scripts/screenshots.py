"""Take the README's screenshots (docs/img/) in Debian's headless Chromium.

Run after ``./scripts/run.sh`` has loaded the demo (the database must hold the published
Reykjavík plan, stations and incidents):

    .venv/bin/python scripts/screenshots.py

It serves the app on a free loopback port, makes a draft of Reykjavík if there is none, signs in
as ``admin`` (password from ``$GRIDMAP_HOME/admin-password``), and photographs the planner with a
grid selected, the incident dashboard and the stations map.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from playwright.sync_api import sync_playwright

from gridmap.api.app import create_app
from gridmap.services import planning
from gridmap.settings import Settings
from gridmap.store.db import get_engine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CITY = "990100"


def serve() -> tuple[uvicorn.Server, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def draft_id() -> int:
    engine = get_engine()
    with engine.connect() as conn:
        found = conn.execute(sa.text(
            "SELECT p.id FROM plans p JOIN territories t ON t.id = p.territory_id WHERE t.code = :c "
            "AND p.status = 'draft' ORDER BY p.version DESC LIMIT 1"), {"c": CITY}).scalar()
    return found or planning.new_draft(engine, CITY, actor="screenshots")[0]


def main() -> int:
    password = (Settings.from_env().home / "admin-password").read_text().strip()
    OUT.mkdir(parents=True, exist_ok=True)
    plan = draft_id()
    server, url = serve()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"{url}/planner?territory={CITY}&plan={plan}")
            page.fill("#username", "admin")
            page.fill("#password", password)
            page.click("#login-button")
            page.wait_for_function(f"document.body.dataset.planLoaded === '{plan}'", timeout=60000)
            page.wait_for_timeout(1500)  # the first fit to the territory, before zooming in
            x, y = page.evaluate("""() => {
                const s = window.gridmapPlanner, m = window.gridmapPlannerMap();
                const code = Object.keys(s.grids).sort().find(c => s.grids[c].kind === 'comprehensive'
                                                             && s.grids[c].households > 350);
                const u = Object.values(s.units).filter(u => u.grid === code)
                                                .sort((a, b) => b.households - a.households)[0];
                m.setView(u.label, 15, {animate: false});
                const p = m.latLngToContainerPoint(u.label), r = m.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y]; }""")
            page.wait_for_timeout(500)
            page.mouse.click(x, y)  # the select tool: the grid under the pointer
            page.mouse.move(150, 800)  # and away, so no tooltip hides the labels
            page.wait_for_timeout(800)
            page.screenshot(path=str(OUT / "planner.png"))
            page.goto(f"{url}/dashboard?territory={CITY}")
            page.wait_for_timeout(4000)
            page.screenshot(path=str(OUT / "dashboard.png"))
            page.goto(f"{url}/maps/stations?territory={CITY}&type=pharmacy")
            page.wait_for_timeout(3000)
            page.screenshot(path=str(OUT / "stations.png"))
            browser.close()
    finally:
        server.should_exit = True
    for name in ("planner.png", "dashboard.png", "stations.png"):
        print(OUT / name, (OUT / name).stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
