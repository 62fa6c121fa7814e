"""The monthly partitions of ``incidents`` (migration 0024 partitions the table): making the months
ahead, listing them, and dropping the months the archive has emptied.

A partition is a UTC calendar month of report, ``incidents_YYYYMM``; ``incidents_default`` holds
the reports of a month that had no partition when they came (a back-dated import). Making a month
attaches an empty table (a lock that lets reports and reads go on, held for a moment); a month whose
reports are already in the default partition is left to it. Dropping a month takes the table's
strongest lock for a moment: it is done only for months left empty, and gives up rather than wait.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

PARTITION = re.compile(r"incidents_(?:\d{6}|default)")
"""The names of the partitions (tables of their own to the catalogue, not to the models)."""

MONTHS_AHEAD = 3
"""Months made ahead of the current one, so reports never wait for a month to be made."""

LOCK_TIMEOUT = "1s"
"""How long making or dropping a month waits for its lock before giving up until the next pass
(a waiting strong lock would queue every report behind it)."""


@dataclass(frozen=True)
class Partition:
    name: str
    month: date | None  # None: the default partition
    rows: int
    bytes: int


@contextmanager
def _short_lock_wait(conn: sa.Connection) -> Iterator[None]:
    """Within it, a lock not had in ``LOCK_TIMEOUT`` raises (lock_not_available); the caller's
    own setting is back afterwards (after an error, the rollback of the transaction or savepoint
    puts it back)."""
    before = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": LOCK_TIMEOUT})
    yield
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": before})


def ensure(conn: sa.Connection, first: date, last: date) -> int:
    """Make the missing months from ``first``'s to ``last``'s; returns how many were made. Run it
    in a transaction of its own: attaching a month locks the default partition until the
    transaction ends, and a query that reads every month waits for that."""
    with _short_lock_wait(conn):
        return conn.execute(sa.text("SELECT gridmap_incident_partitions_ensure(:a, :b)"),
                            {"a": first, "b": last}).scalar_one()


def ensure_ahead(conn: sa.Connection, today: date | None = None) -> int:
    """Make the current month and the ``MONTHS_AHEAD`` after it where missing (the supervision
    pass runs this); returns how many were made: 0 too when a lock was not had in
    ``LOCK_TIMEOUT`` (the table is busy: the next pass makes them)."""
    today = today or datetime.now(timezone.utc).date()
    months = today.year * 12 + today.month - 1 + MONTHS_AHEAD
    try:
        with conn.begin_nested():
            return ensure(conn, today.replace(day=1), date(months // 12, months % 12 + 1, 1))
    except sa.exc.OperationalError as exc:
        if not _lock_busy(exc):
            raise
        return 0


def _lock_busy(exc: sa.exc.OperationalError) -> bool:
    """Whether the error is a lock not had within the lock timeout (lock_not_available)."""
    return getattr(exc.orig, "pgcode", None) == "55P03"


def listing(conn: sa.Connection, *, counted: bool = True) -> list[Partition]:
    """Every partition, oldest month first and the default last, with its size and its rows
    (counted; without ``counted``, 1 for a partition holding any and 0 for an empty one)."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'incidents'::regclass ORDER BY c.relname = 'incidents_default', c.relname")).all()
    found = []
    for name, size in rows:
        count = conn.execute(sa.text(
            f'SELECT count(*) FROM "{name}"' if counted else f'SELECT count(*) FROM (SELECT FROM "{name}" LIMIT 1) s'
        )).scalar_one()
        suffix = name.removeprefix("incidents_")
        month = None if suffix == "default" else date(int(suffix[:4]), int(suffix[4:]), 1)
        found.append(Partition(name, month, count, size))
    return found


def default_months(conn: sa.Connection) -> dict[date, int]:
    """The months whose reports are in the default partition, and how many each."""
    return {m: n for m, n in conn.execute(sa.text(
        "SELECT (date_trunc('month', reported_at AT TIME ZONE 'UTC'))::date, count(*) FROM incidents_default "
        "GROUP BY 1 ORDER BY 1"))}


def estimated_rows(conn: sa.Connection) -> int:
    """The planner's estimate of the incidents stored (the sum over the partitions)."""
    return conn.execute(sa.text(
        "SELECT COALESCE(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'incidents'::regclass")).scalar_one()


def drop_empty_before(conn: sa.Connection, before: datetime) -> list[str]:
    """Drop the month partitions that end by ``before`` (a time with its zone) and hold no
    incident (the archive emptied them); returns their names. A month whose lock is not had
    within ``LOCK_TIMEOUT`` is left for a later archive (a savepoint keeps the rest of the
    transaction)."""
    dropped = []
    for part in listing(conn, counted=False):
        if part.month is None or part.rows:
            continue
        if datetime.combine(_next_month(part.month), datetime.min.time(), tzinfo=timezone.utc) > before:
            continue
        try:
            with conn.begin_nested(), _short_lock_wait(conn):  # (detached first: the references to it go with it)
                conn.execute(sa.text(f'ALTER TABLE incidents DETACH PARTITION "{part.name}"'))
                conn.execute(sa.text(f'DROP TABLE "{part.name}"'))
            dropped.append(part.name)
        except sa.exc.OperationalError as exc:
            if not _lock_busy(exc):
                raise
    return dropped


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


__all__ = ["MONTHS_AHEAD", "PARTITION", "Partition", "default_months", "drop_empty_before", "ensure",
           "ensure_ahead", "estimated_rows", "listing"]
