"""The pool pings a connection only after it has sat idle (gridmap.store.db._ping_when_idle): a
connection in steady use goes out without a round trip; a dead idle one is found by the ping and
the pool opens fresh connections before anyone uses it; a connection that dies in steady use fails
the statement that meets it, and the pool replaces it for the next checkout."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridmap.store import db

NEVER_IDLE = 3600.0  # the steady-use tests: no pause between checkouts counts as idle, however slow the machine


@pytest.fixture()
def pinged(database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A two-connection engine with gridmap's idle ping, and the list of pings it made."""
    engine = sa.create_engine(db.normalise_url(database_url), pool_size=2, max_overflow=0)
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
    """Terminate a backend and wait (up to 5 s) until it has exited."""
    other = sa.create_engine(db.normalise_url(database_url), poolclass=sa.pool.NullPool)
    with other.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    other.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pinged, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pings = pinged
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", NEVER_IDLE)
    first = _pid(engine)
    assert [_pid(engine) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_dead_idle_connection_is_replaced_before_use(pinged, database_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pings = pinged
    a, b = engine.connect(), engine.connect()  # two pooled connections, both alive
    both = [c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in (a, b)]
    b.close()
    a.close()  # the pool hands them out in the order they came back: b first
    _kill(database_url, both[1])
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection back in the pool counts as idle
    fresh = _pid(engine)  # no error: the ping found b dead, and the pool opened a new connection
    assert fresh not in both and pings == [True]
    # the pool was discarded as a whole, as pool_pre_ping does: a, alive, is not handed out either
    a, b = engine.connect(), engine.connect()
    now = {c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in (a, b)}
    a.close()
    b.close()
    assert not now & set(both)


def test_a_connection_that_dies_in_steady_use_fails_one_statement(pinged, database_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pings = pinged
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", NEVER_IDLE)
    first = _pid(engine)
    _kill(database_url, first)
    with pytest.raises(sa.exc.OperationalError):
        _pid(engine)  # not idle: handed out unpinged, and its statement meets the closed socket
    assert _pid(engine) != first and pings == []  # the pool dropped it: the next checkout opens a new one
