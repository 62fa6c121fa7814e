"""The pool pings a connection only after it has sat idle (gridmap.store.db._ping_when_idle): a
connection in steady use goes out without a round trip, a dead idle one is replaced before anyone
uses it, and a connection that dies while in steady use costs one statement, not the pool."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridmap.store import db


@pytest.fixture()
def pinged(database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A one-connection engine with gridmap's idle ping, and the list of pings it made."""
    engine = sa.create_engine(db.normalise_url(database_url), pool_size=1, max_overflow=0)
    db._ping_when_idle(engine)
    pings: list[bool] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(True)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    yield engine, pings
    engine.dispose()


def _pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _kill(database_url: str, pid: int) -> None:
    other = sa.create_engine(db.normalise_url(database_url), poolclass=sa.pool.NullPool)
    with other.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    other.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pinged) -> None:
    engine, pings = pinged
    first = _pid(engine)
    assert [_pid(engine) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_dead_idle_connection_is_replaced_before_use(pinged, database_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pings = pinged
    first = _pid(engine)
    _kill(database_url, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection back in the pool counts as idle
    second = _pid(engine)  # no error: the ping failed and the pool opened a new connection
    assert second != first and pings == [True]
    assert _pid(engine) == second and len(pings) == 2  # alive: pinged and kept


def test_a_connection_that_dies_in_steady_use_costs_one_statement(pinged, database_url: str) -> None:
    engine, pings = pinged
    first = _pid(engine)
    _kill(database_url, first)
    with pytest.raises(sa.exc.OperationalError):
        _pid(engine)  # not idle: handed out unpinged, and its statement meets the closed socket
    assert _pid(engine) != first and pings == []  # the pool dropped it: the next checkout opens a new one
