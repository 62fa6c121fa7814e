"""Connections: which database gridmap talks to (``GRIDMAP_DATABASE_URL`` or the private local
cluster), one pooled engine per URL, and what a connection can say about its database. Creating
and dropping databases is :mod:`gridmap.store.databases` (which the cluster uses too)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
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
                "(or set GRIDMAP_DATABASE_URL to another PostGIS) / 本地 PostGIS 数据库未运行：请用 "
                "`gridmap db start` 启动（或将 GRIDMAP_DATABASE_URL 设为其他 PostGIS 数据库）"
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


POOL_SIZE = 20
MAX_OVERFLOW = 0


@lru_cache(maxsize=8)
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL, its idle connections pinged before use (:func:`_ping_when_idle`)
    so a restarted server is survived. The pool keeps
    all its connections open (no overflow), so a burst does not pay for new connections: with 12
    kept and 8 more opened on demand, two or three connections a second came and went under
    ``benchmarks/load.py``, each a new server process with a SCRAM handshake and cold caches.

    Its connections do not JIT-compile queries: gridmap's queries read rollups, one month or one
    neighbourhood, and PostgreSQL's cost estimates over many partitions and rollup rows made it
    compile queries that then ran in milliseconds (a report's possible-duplicates search: 78 ms of
    compiling for 2 ms of work, with ten million incidents in 17 months; the dashboard's figures:
    100-300 ms). They prepare the statements every request runs (:func:`prepared`) unless
    ``GRIDMAP_PREPARED_STATEMENTS`` is off."""
    from gridmap.settings import Settings

    engine = sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, future=True,
                              execution_options={PREPARED_OPTION: Settings.from_env().prepared_statements})
    sa.event.listen(engine, "connect", _session_settings)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 5.0
"""A pooled connection unused for this long is pinged before it is handed out."""


def _ping_when_idle(engine: sa.Engine) -> None:
    """Ping a connection at checkout only when it has sat in the pool for
    :data:`PING_AFTER_IDLE_S` or more. A failed ping raises ``InvalidatePoolError``, as
    ``pool_pre_ping`` does: SQLAlchemy's pool then discards every connection opened before it and
    retries the checkout with a fresh one.

    ``pool_pre_ping`` pings at every checkout: one round trip more for each, and a signed-in
    report checks out twice (the token, then the report), so under load it was 7.5% of the
    server's samples for the token check alone. A connection in steady use is known to be alive;
    one that has sat idle may have outlived a database restart, and is pinged. The price: after a
    restart, the requests that hold a connection (as with ``pool_pre_ping``) and those that take a
    connection returned less than :data:`PING_AFTER_IDLE_S` before it fail, until the first of
    them fails and SQLAlchemy discards every connection opened before the failure (a disconnect
    seen on a statement invalidates the whole pool): under load, that is the requests of a moment,
    each answered 503."""
    import time

    @sa.event.listens_for(engine.pool, "checkin")
    def _mark(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def _ping(dbapi_connection, record, proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # just opened, or back in the pool a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure of the ping means connections to replace
            raise sa.exc.InvalidatePoolError(f"pooled connection found dead after {time.monotonic() - since:.0f} s "
                                             "idle") from exc
        if alive is False:
            raise sa.exc.InvalidatePoolError("pooled connection found dead")


def statement_by_statement(engine: sa.Engine) -> sa.Connection:
    """A connection on which every statement commits as it runs (autocommit): for a read of one or
    a few independent statements, or one self-contained write, as every signed-in request's token
    check is. It spares the two round trips a transaction costs (psycopg2 sends BEGIN on its own,
    then COMMIT or ROLLBACK). Returned to the pool, the connection gets its usual isolation back."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


PREPARED_OPTION = "gridmap_prepared"
"""The engine's execution option saying its connections may prepare statements (:func:`prepared`)."""
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")
"""A bound parameter of ``sqlalchemy.text``, by its own rule (``TextClause._bind_params_regex``):
``:name``, not a ``::type`` cast nor an escaped ``\\:``."""


@dataclass(frozen=True)
class _Prepared:
    """A ``text()`` statement as a server-side prepared statement: its name, the PREPARE that
    makes it (``$1``, ``$2`` … in place of ``:name``) and the EXECUTE that runs it (the values
    filled in by psycopg2, in the PREPARE's order)."""

    name: str
    prepare: str
    execute: str


@lru_cache(maxsize=512)
def _prepared_form(sql: str) -> _Prepared:
    names: list[str] = []

    def numbered(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = _BIND.sub(numbered, sql).replace("\\:", ":")  # (an escaped colon is a colon, as text() has it)
    name = "gridmap_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    values = ", ".join(f"%({n})s" for n in names)
    return _Prepared(name, f"PREPARE {name} AS {body}", f"EXECUTE {name}" + (f"({values})" if names else ""))


def prepared(conn: sa.Connection, sql: str, params: dict | None = None) -> sa.CursorResult:
    """``conn.execute(sa.text(sql), params)``, as a server-side prepared statement: prepared once
    per database connection (on first use) and planned once, generically
    (``plan_cache_mode = force_generic_plan`` on gridmap's connections, :func:`engine_for`): the
    plan does not look at the values, and a partitioned table's months are pruned as it runs.

    For the small statements every request runs, whose plan would be the same whatever the values.
    Under the load test (``benchmarks/load.py``) PostgreSQL spent nearly as long planning as
    executing: 28 s against 33 s in a 30-second run. Showing an incident joins nine tables: 1.1 ms
    to plan, 0.06 ms to run; prepared, 0.33 ms a call instead of 1.5 ms, round trip included. Left
    to choose (``auto``), PostgreSQL kept planning it afresh: its generic plan, with every month's
    partition in it, looked dearer than one planned for the month.

    The statement's parameters must have a type PostgreSQL can infer where they are first used
    (``CAST(:x AS int)`` where nothing else says). Prepared statements outlive a rollback and go
    with their connection; the set of those made is kept in the connection's ``info``, which
    SQLAlchemy clears whenever the DBAPI connection is replaced.

    Only on engines made by :func:`engine_for` with ``GRIDMAP_PREPARED_STATEMENTS`` on (the
    default; off behind PgBouncer's transaction pooling, where the next transaction may run on
    another server connection that never saw the PREPARE): elsewhere the statement runs as it is."""
    if not conn.get_execution_options().get(PREPARED_OPTION, False):  # (off, or an engine not made here)
        return conn.execute(sa.text(sql), params or {})
    form = _prepared_form(sql)
    proxied = conn.connection
    made: set[str] = proxied.info.setdefault("gridmap_prepared", set())
    if form.name not in made:
        # through SQLAlchemy (its errors and its handling of a lost connection), with no parameters:
        # a % in the statement is left as it is
        conn.exec_driver_sql(form.prepare, execution_options={"no_parameters": True})
        made.add(form.name)
    return conn.exec_driver_sql(form.execute, params or {})


def _session_settings(dbapi_connection, _record) -> None:
    """No JIT compiling (see :func:`engine_for`); prepared statements planned once, generically:
    those of :func:`prepared`, and those PL/pgSQL keeps of the triggers' and functions' statements
    (which have no parameters or plan alike either way)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off; SET plan_cache_mode = force_generic_plan")
    dbapi_connection.commit()


def get_engine(settings=None) -> sa.Engine:
    return engine_for(resolve_url(settings))


def postgis_version(conn: sa.Connection) -> str:
    """The PostGIS library version of the connected database."""
    return str(conn.execute(sa.text("SELECT postgis_lib_version()")).scalar())


def schema_revision(conn: sa.Connection) -> str | None:
    """The Alembic revision the connected database is at (None before the first migration)."""
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
