"""Connections: which database gridmap talks to (``GRIDMAP_DATABASE_URL`` or the private local
cluster), one pooled engine per URL, and what a connection can say about its database. Creating
and dropping databases is :mod:`gridmap.store.databases` (which the cluster uses too)."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gridmap.store.databases import DatabaseUnavailable


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
    connections (and their SCRAM handshakes) on every request.

    Its connections do not JIT-compile queries: gridmap's queries read rollups, one month or one
    neighbourhood, and PostgreSQL's cost estimates over many partitions and rollup rows made it
    compile queries that then ran in milliseconds (a report's possible-duplicates search: 78 ms of
    compiling for 2 ms of work, with ten million incidents in 17 months; the dashboard's figures:
    100-300 ms)."""
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, future=True)
    sa.event.listen(engine, "connect", _without_jit)
    return engine


def statement_by_statement(engine: sa.Engine) -> sa.Connection:
    """A connection on which every statement commits as it runs (autocommit): for a read of one or
    a few independent statements, or one self-contained write, as every signed-in request's token
    check is. It spares the two round trips a transaction costs (psycopg2 sends BEGIN on its own,
    then COMMIT or ROLLBACK). Returned to the pool, the connection gets its usual isolation back."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _without_jit(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def get_engine(settings=None) -> sa.Engine:
    return engine_for(resolve_url(settings))


def postgis_version(conn: sa.Connection) -> str:
    """The PostGIS library version of the connected database."""
    return str(conn.execute(sa.text("SELECT postgis_lib_version()")).scalar())


def schema_revision(conn: sa.Connection) -> str | None:
    """The Alembic revision the connected database is at (None before the first migration)."""
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
