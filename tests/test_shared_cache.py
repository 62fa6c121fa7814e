"""Answers several server processes share: a plan's units document worked out by one process is
read by the next from Redis (``GRIDMAP_REDIS_URL``, a real ``redis-server`` started here) or,
without Redis, from PostgreSQL; the throttles' counters are shared through Redis too."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.api.throttle import Throttle
from gridmap.errors import Refusal
from gridmap.services import planning
from gridmap.settings import Settings
from gridmap.store import features
from gridmap.store.shared_cache import RedisCache
from conftest import published_plan_id

MONACO = "980100"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of its own, on a free loopback port, keeping nothing on disk."""
    import redis

    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def published(monaco_published: sa.Engine) -> tuple[sa.Engine, int]:
    plan_id = published_plan_id(monaco_published)
    return monaco_published, plan_id


def _app(database_url: str, redis: str | None):
    return create_app(database_url, dataclasses.replace(Settings.from_env(), redis_url=redis))


@pytest.mark.parametrize("where", ["redis", "postgresql"])
def test_another_process_reads_the_units_document_instead_of_writing_it(published, database_url: str, redis_url: str,
                                                                        where: str, monkeypatch) -> None:
    engine, plan_id = published
    url = redis_url if where == "redis" else None
    first = TestClient(_app(database_url, url)).get(f"/api/plans/{plan_id}/units")
    assert first.status_code == 200 and len(first.content) > 100_000
    # another server process: nothing kept in its memory, and writing the document would fail
    monkeypatch.setattr(planning, "_UNITS_CACHE", planning._DocumentCache(max_bytes=10**8))

    def no_writing(*args, **kwargs):
        raise AssertionError("the units document was written again")

    monkeypatch.setattr(features, "units_feature_collection", no_writing)
    second = TestClient(_app(database_url, url)).get(f"/api/plans/{plan_id}/units")
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    with engine.connect() as conn:
        in_postgres = conn.execute(sa.text("SELECT count(*) FROM answer_cache WHERE kind = 'units_document'")).scalar()
    assert in_postgres == (0 if where == "redis" else 1)  # with Redis, the database is not touched


def test_an_unreachable_redis_is_a_miss_not_an_error(published, database_url: str) -> None:
    _, plan_id = published
    cache = RedisCache(f"redis://127.0.0.1:{_free_port()}/0")
    assert cache.get("x") is None
    cache.put("x", b"y", kind="units_document", territory=MONACO)  # silently kept nowhere
    response = TestClient(_app(database_url, f"redis://127.0.0.1:{_free_port()}/0")).get(f"/api/plans/{plan_id}/units")
    assert response.status_code == 200 and response.json()["type"] == "FeatureCollection"


def test_throttles_count_across_processes_through_redis(redis_url: str) -> None:
    one, other = Throttle(redis_url), Throttle(redis_url)
    address = f"203.0.113.{_free_port() % 250}"
    for _ in range(3):
        one.public_submission(address, per_minute=3)
    with pytest.raises(Refusal) as refused:
        other.public_submission(address, per_minute=3)  # the other process sees the three
    assert "too many requests" in refused.value.en and "请求过多" in refused.value.zh
    alone = Throttle(None)
    alone.public_submission(address, per_minute=3)  # in memory: a process of its own counts alone
