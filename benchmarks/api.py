"""API latency and throughput on loopback, gridmap beside tipg on the same PostGIS tables.

    .venv/bin/python benchmarks/api.py [--seconds 10] [--clients 8]

What it does, in one run:
1. makes sure the Reykjavík demo has a published plan (4,887 units, 430 grids) and a draft copy;
2. creates views of the published grids in schema ``bench_tipg`` (same rows and columns gridmap
   serves) so tipg (https://github.com/developmentseed/tipg, the reference OGC API Features +
   tiles server for PostGIS) serves exactly the same data;
3. starts gridmap (uvicorn, 1 worker) and tipg (uvicorn, 1 worker, in its own virtualenv under
   ``.cache/bench/tipg-venv`` because it pins its own dependencies);
4. drives each scenario with a bounded closed-loop load generator (N clients, keep-alive,
   fixed duration) and prints p50/p95/p99 latency and throughput for both servers.

Scenarios: the grid containing a point; an items page of 1,000 grids; a vector tile at city
zoom (z13, the tiles covering the city, round robin); a unit move on the 4,887-unit draft (one
client: every move is a new version of the same draft).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.services.bootstrap import ensure_demo_plans  # noqa: E402
from gridmap.services.demo import load_demo  # noqa: E402
from gridmap.services.planning import new_draft  # noqa: E402
from gridmap.store import users  # noqa: E402
from gridmap.store.db import engine_for, resolve_url  # noqa: E402

REYKJAVIK = "990100"
TIPG_VERSION = "1.6.1"
VENV = ROOT / ".cache" / "bench" / "tipg-venv"
PASSWORD = "benchmark password"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> tuple[int, int]:
    """Demo loaded and published; a fresh draft; a planner; views for tipg. Returns (draft id, version)."""
    engine = engine_for(url)
    load_demo(engine, ["reykjavik"])
    ensure_demo_plans(engine, (REYKJAVIK,))
    draft_id, _ = new_draft(engine, REYKJAVIK, actor="benchmark")
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM users WHERE username = 'bench'")).first():
            users.create_user(conn, "bench", PASSWORD)
            users.grant(conn, "bench", "planner", REYKJAVIK)
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench_tipg"))
        conn.execute(sa.text(
            "CREATE OR REPLACE VIEW bench_tipg.grids AS SELECT g.code AS grid_code, g.name, c.code AS community_code, "
            "c.name AS community, g.kind, g.households, g.population, round(g.area_m2::numeric, 1)::float8 AS area_m2, "
            "(g.properties->>'compactness')::float AS compactness, (g.properties->>'unit_count')::int AS unit_count, "
            "g.worker, p.id AS plan_id, p.version AS plan_version, p.valid_from, g.geom FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories c ON c.id = g.community_id"))
    return draft_id, 1


def ensure_tipg() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"tipg=={TIPG_VERSION}", "uvicorn"], check=True)
    return python


def start(cmd: list[str], env: dict, port: int, probe: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", probe)
            if conn.getresponse().status < 500:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on port {port} did not start: {proc.stderr.read() if proc.stderr else ''}")


def run_load(port: int, requests: list[tuple[str, str, dict | None, dict]], *, clients: int, seconds: float,
             expect: tuple[int, ...] = (200,)) -> dict:
    """Closed loop: each client sends the next request as soon as the previous answered."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            with lock:
                i = next(counter)
            method, path, body, headers = requests[i % len(requests)]
            started = time.perf_counter()
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status not in expect:
                    errors.append(f"{response.status} {path}")
            except (OSError, http.client.HTTPException) as exc:
                errors.append(str(exc))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    ms = sorted(x * 1000 for x in latencies)
    return {"requests": len(ms), "errors": len(errors), "first_error": errors[0] if errors else "",
            "rps": len(ms) / elapsed, "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "mean": statistics.fmean(ms) if ms else float("nan")}


def percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile of an ascending list (nan when empty)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(math.ceil(p / 100 * len(ordered))) - 1)]


def tiles_at(z: int, bounds: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    def xy(lon: float, lat: float) -> tuple[int, int]:
        n = 2**z
        return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    (x0, y1), (x1, y0) = xy(bounds[0], bounds[1]), xy(bounds[2], bounds[3])
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--zoom", type=int, default=13)
    args = parser.parse_args()

    url = resolve_url()
    draft_id, version = prepare(url)
    engine = engine_for(url)
    with engine.connect() as conn:
        bounds = conn.execute(sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM bench_tipg.grids "
            "WHERE community_code LIKE '99%') s")).one()
        points = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM bench_tipg.grids "
            "WHERE community_code LIKE '99%' ORDER BY grid_code) s")).all()
        moves = conn.execute(sa.text(
            "SELECT u.unit_id, a.code, b.code FROM plan_units u JOIN grids a ON a.id = u.grid_id JOIN grids b "
            "ON b.plan_id = a.plan_id AND b.community_id = a.community_id AND b.code <> a.code "
            "WHERE u.plan_id = :p AND a.kind = 'comprehensive' AND b.kind = 'comprehensive' ORDER BY u.unit_id LIMIT 200"),
            {"p": draft_id}).all()
        grids_served = conn.execute(sa.text("SELECT count(*) FROM bench_tipg.grids")).scalar_one()
    db = urlparse(url.replace("postgresql+psycopg2", "postgresql"))
    dsn = f"postgresql://{db.username}:{db.password}@{db.hostname}:{db.port}{db.path}"

    ours_port, tipg_port = free_port(), free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    ours = start([sys.executable, "-m", "uvicorn", "--factory", "gridmap.api.app:create_app", "--port", str(ours_port),
                  "--log-level", "warning"], env, ours_port, "/api/health")
    tipg_env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["bench_tipg"]',
                "TIPG_TABLE_CONFIG__bench_tipg_grids__PK": "grid_code", "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    tipg = start([str(ensure_tipg()), "-m", "uvicorn", "tipg.main:app", "--port", str(tipg_port), "--log-level",
                  "warning"], tipg_env, tipg_port, "/collections")
    try:
        token = json.loads(_post_form(ours_port, "/api/auth/token", {"username": "bench", "password": PASSWORD}))
        auth = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"}
        random.seed(0)
        sample = random.sample(points, min(200, len(points)))
        tiles = tiles_at(args.zoom, tuple(bounds))
        scenarios = {
            "grid at a point": (
                [("GET", f"/api/locate?lon={x}&lat={y}", None, {}) for x, y in sample],
                [("GET", f"/collections/bench_tipg.grids/items?filter-lang=cql2-text&filter="
                         f"S_INTERSECTS(geom,POINT({x}%20{y}))&limit=1", None, {}) for x, y in sample]),
            f"items page of 1,000 grids ({grids_served} served)": (
                [("GET", "/collections/grids/items?limit=1000", None, {})],
                [("GET", "/collections/bench_tipg.grids/items?limit=1000", None, {})]),
            f"vector tile z{args.zoom} ({len(tiles)} tiles)": (
                [("GET", f"/tiles/grids/{args.zoom}/{x}/{y}.mvt", None, {}) for x, y in tiles],
                [("GET", f"/collections/bench_tipg.grids/tiles/WebMercatorQuad/{args.zoom}/{x}/{y}", None, {})
                 for x, y in tiles]),
        }
        print(f"gridmap vs tipg {TIPG_VERSION} on loopback; {args.clients} clients x {args.seconds:.0f} s per scenario; "
              f"{os.cpu_count()} cores shared by load generator, both servers and PostGIS")
        print(f"throughput with {args.clients} clients (latency there is mostly queueing); latency with 1 client")
        print(f"{'scenario':<40}{'server':<9}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}   |{'1 client p50':>13}"
              f"{'p95':>7}{'p99':>7}{'errors':>8}")
        for name, (mine, theirs) in scenarios.items():
            for label, port, reqs in (("gridmap", ours_port, mine), ("tipg", tipg_port, theirs)):
                run_load(port, reqs[:5], clients=2, seconds=1.0, expect=(200, 204))  # warm up
                r = run_load(port, reqs, clients=args.clients, seconds=args.seconds, expect=(200, 204))
                one = run_load(port, reqs, clients=1, seconds=args.seconds / 2, expect=(200, 204))
                print(f"{name:<40}{label:<9}{r['rps']:>8.1f}{r['p50']:>7.1f}{r['p95']:>7.1f}{r['p99']:>7.1f}   |"
                      f"{one['p50']:>13.1f}{one['p95']:>7.1f}{one['p99']:>7.1f}{r['errors'] + one['errors']:>8} "
                      f"{r['first_error'] or one['first_error']}")
        edit_ms = unit_moves(ours_port, draft_id, version, moves, auth, seconds=args.seconds)
        print(f"{'unit move, 4,887-unit draft (1 client)':<40}{'gridmap':<9}{edit_ms['rps']:>8.1f}{'':>21}   |"
              f"{edit_ms['p50']:>13.1f}{edit_ms['p95']:>7.1f}{edit_ms['p99']:>7.1f}{edit_ms['errors']:>8} "
              "(tipg is read-only)")
    finally:
        for proc in (ours, tipg):
            proc.terminate()
            proc.wait(timeout=10)
    return 0


def _post_form(port: int, path: str, fields: dict) -> str:
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=urlencode(fields), headers={"Content-Type": "application/x-www-form-urlencoded"})
    return conn.getresponse().read().decode()


def unit_moves(port: int, plan_id: int, version: int, moves: list, headers: dict, *, seconds: float) -> dict:
    """One client moving units back and forth; each request carries the version the last returned."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ms, errors = [], 0
    stop = time.monotonic() + seconds
    i = 0
    began = time.monotonic()
    while time.monotonic() < stop:
        unit, home, other = moves[(i // 2) % len(moves)]
        target = other if i % 2 == 0 else home
        body = {"version": version, "operations": [{"op": "assign", "units": [unit], "grid": target}]}
        started = time.perf_counter()
        conn.request("POST", f"/api/plans/{plan_id}/edits", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        ms.append((time.perf_counter() - started) * 1000)
        if response.status == 200:
            version = json.loads(data)["version"]
        else:
            errors += 1
        i += 1
    elapsed = time.monotonic() - began
    ms.sort()
    return {"rps": len(ms) / elapsed, "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "errors": errors}


if __name__ == "__main__":
    sys.exit(main())
