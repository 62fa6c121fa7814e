"""Answers kept for every server process in PostgreSQL (``answer_cache``, migration 0022): read and
written by a key that names what the answer was made from, so a key is never stale, only unused;
the oldest of a kind and territory go when more than a few are kept."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

KEEP = 16
"""Answers of one kind kept per territory (the newest)."""


def key_of(*parts: object) -> str:
    """The key of an answer: a SHA-256 of what it depends on."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def get(conn: sa.Connection, key: str) -> bytes | None:
    body = conn.execute(sa.text("SELECT body FROM answer_cache WHERE key = :k"), {"k": key}).scalar()
    return bytes(body) if body is not None else None


def has(conn: sa.Connection, key: str) -> bool:
    """Whether an answer is kept under ``key`` (without reading it)."""
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM answer_cache WHERE key = :k)"), {"k": key}).scalar())


def put(conn: sa.Connection, key: str, *, kind: str, territory: str, body: bytes) -> None:
    """Keep an answer (another process that made the same one meanwhile: one is kept) and let the
    oldest of its kind and territory go beyond :data:`KEEP`."""
    conn.execute(sa.text(
        "INSERT INTO answer_cache (key, kind, territory_id, body) SELECT :k, :kind, t.id, :b FROM territories t "
        "WHERE t.code = :t ON CONFLICT (key) DO NOTHING"), {"k": key, "kind": kind, "t": territory, "b": body})
    conn.execute(sa.text(
        "DELETE FROM answer_cache WHERE key IN (SELECT a.key FROM answer_cache a JOIN territories t ON t.id = a.territory_id "
        "WHERE a.kind = :kind AND t.code = :t ORDER BY a.made_at DESC OFFSET :keep)"),
        {"kind": kind, "t": territory, "keep": KEEP})


__all__ = ["KEEP", "key_of", "get", "has", "put"]
