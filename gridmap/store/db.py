"""Connections: which database gridmap talks to, and creating it with PostGIS when missing."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from gridmap.progress import QUIET, Progress


class DatabaseUnavailable(RuntimeError):
    """No database is configured or reachable; the message says what to run."""


def resolve_url(settings=None) -> str:
    """``GRIDMAP_DATABASE_URL`` if set, else the private local cluster's URL."""
    from gridmap.settings import Settings
    from gridmap.store.cluster import ClusterError, cluster_from_settings

    settings = settings or Settings.from_env()
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = cluster_from_settings(settings)
    try:
        if not cluster.status().running:
            raise DatabaseUnavailable(
                "the local PostGIS is not running: start it with `gridmap db start` "
                "(or set GRIDMAP_DATABASE_URL to another PostGIS)"
            )
        return cluster.url()
    except ClusterError as exc:
        raise DatabaseUnavailable(str(exc)) from exc


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg2 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


POOL_SIZE = 12
MAX_OVERFLOW = 8


@lru_cache(maxsize=8)
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL, pinged before use so a restarted server is survived. The pool keeps
    as many connections as requests usually run at once, so a burst does not pay for new
    connections (and their SCRAM handshakes) on every request."""
    return sa.create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, future=True)


def get_engine(settings=None) -> sa.Engine:
    return engine_for(resolve_url(settings))


def ensure_postgis_database(url: str, progress: Progress = QUIET) -> None:
    """Create the database named in ``url`` if it does not exist, then enable PostGIS in it."""
    target: URL = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": target.database}).scalar()
        if not exists:
            with progress.step(f"creating database {target.database}"):
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
