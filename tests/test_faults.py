"""Faults injected for real, on a private PostgreSQL cluster of this module's own (so it can be
restarted without touching the other tests' server):

* SIGKILL the server in the middle of a burst of incident reports: every acknowledged report is
  stored, with its history; nothing is half-written.
* SIGKILL ``gridmap plan publish`` while its transaction is open: the previous plan stays the
  published one, never a mixture.
* SIGKILL ``gridmap import`` while it is storing: no layer, no stray features.
* Restart PostgreSQL under load: the service answers 503 with Retry-After meanwhile (never 500),
  and recovers by itself.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gridmap.store.cluster import LocalCluster

pytestmark = pytest.mark.cluster
MONACO = "980100"
GRIDMAP = [sys.executable, "-m", "gridmap.cli"]
PASSWORD = "fault injection"


@pytest.fixture(scope="module")
def site():
    """A private cluster with Monaco published, the categories and an administrator."""
    from gridmap.services import planning
    from gridmap.services.demo import load_demo
    from gridmap.services.incidents import ensure_categories
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import migrate, users

    home = Path(tempfile.mkdtemp(prefix="gridmap-faults-", dir="/tmp"))
    os.chmod(home, 0o755)
    cluster = LocalCluster(home, db_name="faults")
    url = cluster.start()
    migrate.upgrade(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    load_demo(engine, ["monaco"])
    summary = partition_territory(engine, MONACO)
    planning.publish(engine, summary.plan_id, version=None, actor="test")
    ensure_categories(engine)
    with engine.begin() as conn:
        users.create_user(conn, "admin", PASSWORD)
        users.grant(conn, "admin", "admin", MONACO)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_ESCALATION_MINUTES": "0"}
    yield cluster, url, engine, env
    engine.dispose()
    cluster.stop()
    shutil.rmtree(home, ignore_errors=True)


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


class Server:
    """``gridmap serve`` as a separate process that can be killed for real."""

    def __init__(self, env: dict) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # not a pipe: nobody reads it while the server runs
        self.proc = subprocess.Popen([*GRIDMAP, "serve", "--port", str(self.port), "--log-level", "warning"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=2).read()
                return
            except OSError:
                assert self.proc.poll() is None, self.errors()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def token(self) -> str:
        data = urllib.parse.urlencode({"username": "admin", "password": PASSWORD}).encode()
        return json.loads(urllib.request.urlopen(self.url + "/api/auth/token", data=data, timeout=10).read())[
            "access_token"]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def post_json(url: str, body: dict, token: str, timeout: float = 10) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_sigkill_during_a_burst_of_reports_loses_no_acknowledged_report(site) -> None:
    _, _, engine, env = site
    points = scalar(engine, "SELECT json_agg(json_build_array(ST_X(p), ST_Y(p))) FROM (SELECT ST_PointOnSurface(g.geom) "
                            "AS p FROM grids g JOIN plans pl ON pl.id = g.plan_id AND pl.status = 'published') x")
    server = Server(env)
    token = server.token()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def reporter(worker: int) -> None:
        n = 0
        while not stop.is_set():
            lon, lat = points[(worker * 7 + n) % len(points)]
            n += 1
            try:
                status, body = post_json(server.url + "/api/incidents", {
                    "category_code": "0101", "lon": lon, "lat": lat, "description": f"burst {worker}/{n}"}, token)
            except (OSError, http.client.HTTPException):
                return  # the server is gone (possibly mid-answer: headers sent, body cut off)
            if status == 201:
                with lock:
                    acknowledged.append(body["public_id"])

    threads = [threading.Thread(target=reporter, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # mid-burst: requests are in flight
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acknowledged) >= 60
    restarted = Server(env)
    try:
        stored = scalar(engine, "SELECT count(*) FROM incidents WHERE public_id = ANY(:ids)", ids=acknowledged)
        assert stored == len(acknowledged)
        # nothing half-written: every incident has its report event, and a grid and department
        assert scalar(engine, "SELECT count(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM incident_events e "
                              "WHERE e.incident_id = i.id) OR i.grid_id IS NULL OR i.department_id IS NULL") == 0
        status, _ = post_json(restarted.url + "/api/incidents", {"category_code": "0101", "lon": points[0][0],
                                                                 "lat": points[0][1]}, restarted.token())
        assert status == 201
    finally:
        restarted.stop()


def test_sigkill_during_publish_keeps_the_previous_plan(site) -> None:
    from gridmap.services import planning

    _, _, engine, env = site
    published = scalar(engine, "SELECT id FROM plans WHERE status = 'published'")
    draft_id, _ = planning.new_draft(engine, MONACO, actor="test")
    history = scalar(engine, "SELECT count(*) FROM plans WHERE status = 'history'")
    blocker = engine.connect()
    tx = blocker.begin()
    blocker.execute(sa.text("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE"))  # publish waits at its audit row
    proc = subprocess.Popen([*GRIDMAP, "plan", "publish", str(draft_id)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE 'INSERT INTO audit_log%'"):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "publish never reached its audit row"
            time.sleep(0.05)
        # the publisher has already swapped the plans inside its transaction, and now dies
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        tx.rollback()
        blocker.close()
    deadline = time.monotonic() + 30
    while scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
                         "OR query LIKE 'INSERT INTO audit_log%' AND state = 'active'"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert scalar(engine, "SELECT id FROM plans WHERE status = 'published'") == published
    assert scalar(engine, "SELECT status FROM plans WHERE id = :p", p=draft_id) == "draft"
    assert scalar(engine, "SELECT count(*) FROM plans WHERE status = 'history'") == history
    assert scalar(engine, "SELECT count(*) FROM plans WHERE status = 'published' AND valid_to IS NOT NULL") == 0
    # and the same publish, uninterrupted, goes through
    done = subprocess.run([*GRIDMAP, "plan", "publish", str(draft_id)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert scalar(engine, "SELECT id FROM plans WHERE status = 'published'") == draft_id


def test_sigkill_during_import_leaves_nothing(site, tmp_path) -> None:
    _, _, engine, env = site
    rng = np.random.default_rng(0)
    x, y = 7.42 + rng.random(150_000) * 0.01, 43.73 + rng.random(150_000) * 0.01  # on Monaco, not at sea
    big = gpd.GeoDataFrame({"name": [f"楼{i}" for i in range(len(x))]},
                           geometry=shapely.buffer(shapely.points(x, y), 0.00005, quad_segs=4), crs=4490)
    path = tmp_path / "many.parquet"
    big.to_parquet(path)
    layers = scalar(engine, "SELECT count(*) FROM layers")
    features = scalar(engine, "SELECT count(*) FROM layer_features")
    proc = subprocess.Popen([*GRIDMAP, "import", str(path), "--territory", MONACO, "--layer", "killed"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' OR "
                             "query LIKE 'INSERT INTO layer_features%'"):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the import never started storing"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND pid <> pg_backend_pid() AND state <> 'idle'"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert scalar(engine, "SELECT count(*) FROM layers") == layers
    assert scalar(engine, "SELECT count(*) FROM layer_features") == features
    assert scalar(engine, "SELECT count(*) FROM layers WHERE name = 'killed'") == 0


def test_postgres_restart_under_load_is_503_then_recovers(site) -> None:
    cluster, _, engine, env = site
    server = Server(env)
    statuses: list[tuple[float, int]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for path in ("/api/territories", "/collections/grids/items?limit=5", f"/api/territories/{MONACO}/plans"):
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(server.url + path, timeout=30) as response:
                        statuses.append((started, response.status, path, time.monotonic() - started))
                except urllib.error.HTTPError as exc:
                    retry = exc.headers.get("Retry-After")
                    statuses.append((started, exc.code if exc.code != 503 or retry else -503, path,
                                     time.monotonic() - started))
                except OSError as exc:  # a dropped or stalled connection is a failure too
                    statuses.append((started, repr(exc)[:60], path, time.monotonic() - started))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        engine.dispose()
        cluster.stop()
        time.sleep(1.5)  # requests keep coming while the database is down
        cluster.start()
        back = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        server.stop()
    codes = {code for _, code, _, _ in statuses}
    assert codes <= {200, 503}, [s for s in statuses if s[1] not in (200, 503)][:5]  # never a 500 or a drop
    assert 503 in codes
    assert max(took for _, _, _, took in statuses) < 5  # answered at once, not stalled
    later = [code for at, code, _, _ in statuses if at > back + 1.5]
    assert later and set(later) == {200}  # recovered by itself
    assert scalar(engine, "SELECT count(*) FROM plans WHERE status = 'published'") == 1


def test_sigkill_during_an_emergency_loses_no_acknowledged_check_in_or_knock(site) -> None:
    """The drill's writes under the same fault: a burst of check-ins and door-knocks during an
    emergency, the server killed mid-burst. Every acknowledged check-in and knock is stored, each
    check-in with its event in the emergency's log and each knock with its audit entry (nothing
    half-written), and the phones' retries after the restart are kept once."""
    from datetime import datetime, timedelta, timezone

    from gridmap.services import campaigns, emergencies

    _, _, engine, env = site
    on = emergencies.start(engine, MONACO, kind="防汛", reason="故障演练", actor="test")
    campaign = campaigns.create(engine, MONACO, name="故障敲门", emergency_id=on["id"], actor="test",
                                deadline=datetime.now(timezone.utc) + timedelta(hours=2))
    targets = scalar(engine, "SELECT json_agg(id ORDER BY id) FROM campaign_targets WHERE campaign_id = :c",
                     c=campaign["id"])
    grids = on["grids"]
    server = Server(env)
    token = server.token()
    acknowledged: dict[str, list[str]] = {"checkin": [], "knock": []}
    lock = threading.Lock()
    stop = threading.Event()

    def phone(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            client_id = f"fault-{worker}-{n}"
            if n % 2:
                kind, url = "checkin", f"{server.url}/api/emergencies/{on['id']}/checkins"
                body = {"client_id": client_id, "grid_code": grids[(worker + n) % len(grids)]}
            else:
                kind = "knock"
                url = f"{server.url}/api/campaign-targets/{targets[(worker * 31 + n) % len(targets)]}/knocks"
                body = {"outcome": "visited", "client_id": client_id}
            try:
                status, _ = post_json(url, body, token)
            except (OSError, http.client.HTTPException):
                return
            if status == 201:
                with lock:
                    acknowledged[kind].append(client_id)

    threads = [threading.Thread(target=phone, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged["checkin"]) + len(acknowledged["knock"]) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acknowledged["checkin"]) >= 20 and len(acknowledged["knock"]) >= 20
    restarted = Server(env)
    try:
        assert scalar(engine, "SELECT count(DISTINCT client_id) FROM emergency_checkins WHERE client_id = ANY(:ids)",
                      ids=acknowledged["checkin"]) == len(acknowledged["checkin"])
        assert scalar(engine, "SELECT count(*) FROM campaign_visits WHERE client_id = ANY(:ids)",
                      ids=acknowledged["knock"]) == len(acknowledged["knock"])
        # nothing half-written: every check-in stored has its event, every knock its audit entry
        assert scalar(engine, "SELECT count(*) FROM emergency_checkins WHERE emergency_id = :e", e=on["id"]) == \
            scalar(engine, "SELECT count(*) FROM emergency_events WHERE emergency_id = :e AND kind = 'checkin'", e=on["id"])
        assert scalar(engine, "SELECT count(*) FROM campaign_visits WHERE campaign_id = :c", c=campaign["id"]) == \
            scalar(engine, "SELECT count(*) FROM audit_log WHERE action = 'campaign.knock' AND (after->>'campaign_id')::int = :c",
                   c=campaign["id"])
        # the phones send what they sent before the kill again: each is kept once
        token = restarted.token()
        before = scalar(engine, "SELECT count(*) FROM emergency_checkins")
        first = acknowledged["checkin"][0]
        worker, n = (int(x) for x in first.split("-")[1:])
        status, body = post_json(f"{restarted.url}/api/emergencies/{on['id']}/checkins",
                                 {"client_id": first, "grid_code": grids[(worker + n) % len(grids)]}, token)
        assert status == 201 and body["grids"][0]["stored"] is False
        assert scalar(engine, "SELECT count(*) FROM emergency_checkins") == before
    finally:
        restarted.stop()
