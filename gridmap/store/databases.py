"""Databases on a PostgreSQL server: creating one with PostGIS when missing, and dropping one.

Used by ``gridmap up``/``migrate`` against ``GRIDMAP_DATABASE_URL``, by the private cluster when
it first starts, and by the tests for their throwaway databases. Knows nothing of which database
gridmap uses (:mod:`gridmap.store.db`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from gridmap.progress import QUIET, Progress


class DatabaseUnavailable(RuntimeError):
    """No database is configured or reachable; the message says what to run."""


def ensure_postgis_database(url: str, progress: Progress = QUIET) -> None:
    """Create the database named in ``url`` if it does not exist, then enable PostGIS in it."""
    target: URL = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": target.database}).scalar()
        if not exists:
            with progress.step(f"creating database {target.database}", f"创建数据库 {target.database}"):
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}" ENCODING \'UTF8\' TEMPLATE template0'))
    admin.dispose()
    enable_postgis(url)


def enable_postgis(url: str) -> str:
    """``CREATE EXTENSION IF NOT EXISTS postgis``; returns the PostGIS version."""
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            try:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
            except sa.exc.DBAPIError as exc:
                raise DatabaseUnavailable(
                    f"PostGIS cannot be enabled in {make_url(url).database}: {exc.orig}".strip()
                ) from exc
            return str(conn.execute(sa.text("SELECT postgis_lib_version()")).scalar())
    finally:
        eng.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (tests use this to clean up their session database)."""
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


__all__ = ["DatabaseUnavailable", "ensure_postgis_database", "enable_postgis", "drop_database"]
