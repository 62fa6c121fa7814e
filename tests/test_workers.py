"""Several server processes (``gridmap serve --workers N``): they start and answer on one port, and
the supervision pass, which every process runs on its own timer, runs in one of them at a time
(a PostgreSQL advisory lock), so no case goes up twice in one period."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from conftest import DISTRICT


def test_the_supervision_pass_runs_in_one_process_at_a_time(district: sa.Engine) -> None:
    from gridmap.services import incidents
    from gridmap.services.supervision import supervise
    from gridmap.store import locks

    incidents.ensure_categories(district)
    with district.connect() as conn:
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g JOIN plans p "
            "ON p.id = g.plan_id AND p.status = 'published' ORDER BY g.code LIMIT 1")).one()
    made = incidents.report(district, incidents.Report(category_code="0101", lon=lon, lat=lat,
                                                       reported_at=datetime.now(timezone.utc) - timedelta(days=20)),
                            actor="test")
    with locks.held(district, locks.SUPERVISION) as mine:  # another process is running the pass
        assert mine
        assert supervise(district) == {}
        with district.connect() as conn:
            assert conn.execute(sa.text("SELECT escalation_level FROM incidents WHERE public_id = :p"),
                                {"p": made["public_id"]}).scalar_one() == 0
    assert supervise(district).get("incidents", 0) >= 1  # its turn now
    with district.connect() as conn:
        assert conn.execute(sa.text("SELECT escalation_level FROM incidents WHERE public_id = :p"),
                            {"p": made["public_id"]}).scalar_one() == 1


def test_serve_with_two_processes_answers_on_one_port(district: sa.Engine, database_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url, "GRIDMAP_ESCALATION_MINUTES": "0"}
    server = subprocess.Popen([sys.executable, "-m", "gridmap.cli", "serve", "--port", str(port), "--workers", "2",
                               "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

        def children() -> int:
            count = 0
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as fh:
                            parent = int(fh.read().rsplit(")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
                    count += parent == server.pid
            return count

        deadline = time.monotonic() + 30
        while children() < 2 and time.monotonic() < deadline:  # (the second may still be starting)
            time.sleep(0.2)
        assert children() >= 2
        answers = [urllib.request.urlopen(f"http://127.0.0.1:{port}/api/territories/{DISTRICT}", timeout=10).status
                   for _ in range(20)]
        assert answers == [200] * 20
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
