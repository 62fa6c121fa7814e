"""A load generator for ``gridmap serve``: concurrent signed-in clients mixing incident reports,
map reads and planner edits, counting latencies, errors and acknowledged reports. Used by
``tests/test_load.py`` (a short, bounded run whose assertions are about correctness, not speed)
and by ``benchmarks/load.py`` (the measured run)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import httpx2 as httpx
import sqlalchemy as sa

PASSWORD = "load test password"


@dataclass
class LoadResult:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + len(self.errors)

    def report(self) -> str:
        lines = [f"{self.requests} requests in {self.seconds:.0f} s ({self.requests / self.seconds:.0f}/s), "
                 f"{len(self.errors)} errors, {len(self.acknowledged)} incidents acknowledged"]
        for kind, values in sorted(self.latencies.items()):
            ms = sorted(v * 1000 for v in values)
            p95 = ms[int(0.95 * (len(ms) - 1))]
            lines.append(f"  {kind:10} {len(ms):6} requests  p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
                         f"max {ms[-1]:7.1f} ms")
        return "\n".join(lines)


def prepare(engine: sa.Engine, territory: str, planners: int) -> dict:
    """Users, a draft per planner, points inside published grids, grid codes and a bbox."""
    from gridmap.services import planning
    from gridmap.store import users

    with engine.begin() as conn:
        for name, role in [("loadadmin", "admin"), *[(f"planner{i}", "planner") for i in range(planners)]]:
            if not conn.execute(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": name}).first():
                users.create_user(conn, name, PASSWORD)
                users.grant(conn, name, role, territory)
        points = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) AS p FROM grids g JOIN plans pl "
            "ON pl.id = g.plan_id AND pl.status = 'published' ORDER BY g.code) x")).all()
        box = conn.execute(sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                   "ST_Extent(geom) AS e FROM territories WHERE code = :c) x"), {"c": territory}).one()
    drafts = [planning.new_draft(engine, territory, actor=f"planner{i}")[0] for i in range(planners)]
    with engine.connect() as conn:
        codes = {d: list(conn.execute(sa.text("SELECT code FROM grids WHERE plan_id = :p ORDER BY code LIMIT 50"),
                                      {"p": d}).scalars()) for d in drafts}
    return {"points": [tuple(p) for p in points], "box": tuple(box), "drafts": drafts, "codes": codes}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


async def run_load(base_url: str, territory: str, setup: dict, *, clients: int, seconds: float,
                   seed: int = 0) -> LoadResult:
    result = LoadResult(seconds)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        async def token(user: str) -> str:
            answer = await http.post("/api/auth/token", data={"username": user, "password": PASSWORD})
            answer.raise_for_status()
            return answer.json()["access_token"]

        admin = await token("loadadmin")
        planner_tokens = [await token(f"planner{i}") for i in range(len(setup["drafts"]))]

        async def client(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            mine = number % 10 == 0 and number // 10 < len(setup["drafts"])
            draft = setup["drafts"][number // 10] if mine else None
            headers = {"Authorization": f"Bearer {planner_tokens[number // 10] if mine else admin}"}
            version = None
            while time.monotonic() < deadline:
                roll = rng.random()
                started = time.monotonic()
                try:
                    if mine and roll < 0.5:
                        kind = "edit"
                        if version is None:
                            state = await http.get(f"/api/plans/{draft}/state", headers=headers)
                            if state.status_code != 200:
                                result.errors.append(f"state {state.status_code} {state.text[:120]}")
                                continue
                            version = state.json()["version"]
                        code = rng.choice(setup["codes"][draft])
                        answer = await http.post(f"/api/plans/{draft}/edits", headers=headers, json={
                            "version": version, "operations": [{"op": "set", "grid": code,
                                                                "worker": f"网格员{rng.randrange(1000)}"}]})
                        if answer.status_code == 200:
                            version = answer.json()["version"]
                    elif roll < 0.45:
                        kind = "report"
                        lon, lat = rng.choice(setup["points"])
                        answer = await http.post("/api/incidents", headers=headers, json={
                            "category_code": rng.choice(["0101", "0103", "0201"]), "lon": lon, "lat": lat,
                            "description": f"load test {number}"})
                        if answer.status_code == 201:
                            result.acknowledged.append(answer.json()["public_id"])
                    else:
                        kind = "read"
                        minx, miny, maxx, maxy = setup["box"]
                        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                        choice = rng.randrange(4)
                        if choice == 0:
                            d = 0.01
                            answer = await http.get("/collections/grids/items", headers=headers, params={
                                "bbox": f"{lon - d},{lat - d},{lon + d},{lat + d}", "limit": 100})
                        elif choice == 1:
                            x, y = tile_of(lon, lat, 14)
                            answer = await http.get(f"/tiles/grids/14/{x}/{y}.mvt", headers=headers)
                        elif choice == 2:
                            answer = await http.get(f"/api/territories/{territory}/incidents/choropleth",
                                                    headers=headers)
                        else:
                            answer = await http.get("/api/locate", headers=headers, params={"lon": lon, "lat": lat})
                    if answer.status_code >= 400 and not (kind == "read" and answer.status_code == 404):
                        result.errors.append(f"{kind} {answer.status_code} {answer.text[:120]}")
                    else:
                        result.latencies.setdefault(kind, []).append(time.monotonic() - started)
                except httpx.HTTPError as exc:
                    result.errors.append(f"{kind} {type(exc).__name__}")

        await asyncio.gather(*(client(i) for i in range(clients)))
    return result


class Server:
    """``gridmap serve`` in its own process, logging to a file."""

    def __init__(self, database_url: str, workers: int = 1) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url, "GRIDMAP_ESCALATION_MINUTES": "0"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gridmap.cli", "serve", "--port", str(self.port),
                                      "--workers", str(workers), "--log-level", "warning"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30 * workers
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    raise RuntimeError("server did not start: " + self.log.read().decode(errors="replace"))
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")
