"""Answers every server process reads: kept in Redis when ``GRIDMAP_REDIS_URL`` is set, else in
PostgreSQL (``answer_cache``, :mod:`gridmap.store.answers`).

``gridmap serve --workers N`` runs N processes; an answer one of them worked out (a plan's units
document for the planner: about a second to write for Reykjavík) is put here under a key that
names what it was made from, so the others read it instead of working it out again. A key is
never stale, only unused: Redis lets unused ones expire (``EXPIRE_SECONDS``), PostgreSQL keeps the
newest few of a kind per territory.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from gridmap.store import answers

EXPIRE_SECONDS = 7 * 24 * 3600
"""How long Redis keeps an answer nobody asked for."""


class SharedCache(Protocol):
    """Bytes under a key, for every process."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, *, kind: str, territory: str) -> None: ...


class PostgresCache:
    """In the database every process already shares (no other service to run)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def get(self, key: str) -> bytes | None:
        with self.engine.connect() as conn:
            return answers.get(conn, answers.key_of(key))

    def put(self, key: str, data: bytes, *, kind: str, territory: str) -> None:
        with self.engine.begin() as conn:
            answers.put(conn, answers.key_of(key), kind=kind, territory=territory, body=data)


class RedisCache:
    """In Redis (``GRIDMAP_REDIS_URL``), beside the throttles' counters: reads do not touch the
    database. An unreachable Redis is a miss, never an error: the answer is worked out again."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _key(self, key: str) -> str:
        return "gridmap:answer:" + answers.key_of(key)

    def get(self, key: str) -> bytes | None:
        import redis

        try:
            value = self.client.get(self._key(key))
        except redis.RedisError:
            return None
        return bytes(value) if value is not None else None

    def put(self, key: str, data: bytes, *, kind: str, territory: str) -> None:
        import redis

        try:
            self.client.set(self._key(key), data, ex=EXPIRE_SECONDS)
        except redis.RedisError:
            pass  # kept in this process only; the next process works it out again


def shared_cache(engine: sa.Engine, redis_url: str | None) -> SharedCache:
    """Redis when a URL is given, else PostgreSQL."""
    return RedisCache(redis_url) if redis_url else PostgresCache(engine)


__all__ = ["SharedCache", "PostgresCache", "RedisCache", "shared_cache", "EXPIRE_SECONDS"]
