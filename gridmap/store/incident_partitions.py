"""The monthly partitions of ``incidents`` (migration 0024 partitions the table): making the months
ahead, listing them, and dropping the months the archive has emptied.

A partition is a UTC calendar month of report, ``incidents_YYYYMM``; ``incidents_default`` holds
the reports of a month that had no partition when they came (a back-dated import). Making a month
attaches an empty table: for a moment that holds writes to ``incidents`` and to the tables it
refers to, and locks (and scans) the default partition; a month whose reports are already in the
default partition is left to it. Dropping a month locks the whole table for a moment: it is done
only for past months left empty. Both give up after ``LOCK_TIMEOUT`` rather than wait on, since
a waiting strong lock queues every report behind it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

from gridmap.errors import StateConflict

PARTITION = re.compile(r"incidents_(?:\d{6}|default)")
"""The names of the partitions (tables of their own to the catalogue, not to the models)."""

MONTHS_AHEAD = 3
"""Months made ahead of the current one, so reports never wait for a month to be made."""

LOCK_TIMEOUT = "1s"
"""How long making or dropping a month waits for its locks before giving up (a waiting strong
lock would queue every report behind it)."""

BUSY_CODES = {"55P03", "40P01"}
"""lock_not_available (the lock timeout) and deadlock_detected: another transaction holds the table."""


class PartitionsBusy(StateConflict):
    """A month could not be made: a long transaction holds the incidents table."""

    def __init__(self) -> None:
        super().__init__("the incidents table is busy (a long transaction holds it): its monthly partitions could "
                         "not be made now; nothing was changed, try again in a moment",
                         "事件表正忙（有长事务占用）：暂时无法新建月分区；未作任何更改，请稍后重试")


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


def _busy(exc: sa.exc.DBAPIError) -> bool:
    return getattr(exc.orig, "pgcode", None) in BUSY_CODES


def ensure(conn: sa.Connection, first: date, last: date) -> int:
    """Make the missing months from ``first``'s to ``last``'s; returns how many were made. Raises
    :class:`PartitionsBusy` (the transaction is then to be rolled back) when the locks are not
    had within ``LOCK_TIMEOUT``. Run it in a transaction of its own and commit at once: the
    locks of an attach are held until the transaction ends."""
    # another maker's turn is waited for in full (that lock holds no one else up); then the
    # function takes it again at once (it is this session's), and the table's locks within the timeout
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('gridmap-incident-partitions'))"))
    try:
        with _short_lock_wait(conn):
            return conn.execute(sa.text("SELECT gridmap_incident_partitions_ensure(:a, :b)"),
                                {"a": first, "b": last}).scalar_one()
    except sa.exc.DBAPIError as exc:
        if _busy(exc):
            raise PartitionsBusy() from exc
        raise


def ensure_listing_made(conn: sa.Connection, first: date, last: date) -> list[str]:
    """:func:`ensure`, returning the names of the months it made: read from the catalogue alone
    (no month is scanned or locked) under the makers' lock, so a month another maker makes
    meanwhile is not counted as this one's (a refused restore drops the months it made again)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('gridmap-incident-partitions'))"))
    before = set(_names(conn))
    ensure(conn, first, last)
    return sorted(set(_names(conn)) - before)


def _names(conn: sa.Connection) -> list[str]:
    """The partitions' names, from the catalogue."""
    return [r[0] for r in conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'incidents'::regclass"))]


def ensure_ahead(conn: sa.Connection, today: date | None = None) -> int | None:
    """Make the current month and the ``MONTHS_AHEAD`` after it where missing (the supervision
    pass runs this); returns how many were made, None when the table was busy (the next pass
    makes them)."""
    today = today or datetime.now(timezone.utc).date()
    months = today.year * 12 + today.month - 1 + MONTHS_AHEAD
    try:
        with conn.begin_nested():
            return ensure(conn, today.replace(day=1), date(months // 12, months % 12 + 1, 1))
    except PartitionsBusy:
        return None


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


def empty_months_before(conn: sa.Connection, before: datetime) -> list[str]:
    """The month partitions that end by ``before`` (a time with its zone; never the current
    month or a later one) and hold no incident now, found without locking anything: the
    candidates for ``drop_if_empty``."""
    this_month = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    limit = min(before, this_month)
    names = conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'incidents'::regclass AND c.relname ~ '^incidents_[0-9]{6}$' ORDER BY c.relname")).scalars().all()
    empty = []
    for name in names:
        month = date(int(name[10:14]), int(name[14:16]), 1)
        if datetime.combine(_next_month(month), datetime.min.time(), tzinfo=timezone.utc) > limit:
            continue
        if not conn.execute(sa.text(f'SELECT EXISTS (SELECT FROM "{name}")')).scalar_one():
            empty.append(name)
    return empty


def drop_if_empty(conn: sa.Connection, name: str) -> bool | None:
    """Drop month partition ``name`` if it is still empty: locked with the table first (within
    ``LOCK_TIMEOUT``), found empty again under the lock (a back-dated report may have come since
    it was found empty), then detached and dropped. True when dropped, False when it was not
    empty any more, None when the table was busy. Run each in a transaction of its own: the
    table stays locked until it ends."""
    try:
        with conn.begin_nested(), _short_lock_wait(conn):
            conn.execute(sa.text(f'LOCK TABLE ONLY incidents, "{name}" IN ACCESS EXCLUSIVE MODE'))
            if conn.execute(sa.text(f'SELECT EXISTS (SELECT FROM "{name}")')).scalar_one():
                return False
            # (detached first: the copies of the references to it go with it)
            conn.execute(sa.text(f'ALTER TABLE incidents DETACH PARTITION "{name}"'))
            conn.execute(sa.text(f'DROP TABLE "{name}"'))
        return True
    except sa.exc.DBAPIError as exc:
        if not _busy(exc):
            raise
        return None


def analyse(conn: sa.Connection) -> bool:
    """Fresh statistics of the table as a whole (autovacuum analyses each month, never the
    partitioned table, whose statistics the planner uses for joins over all months). False when
    a month being made at that moment got in its way (a deadlock PostgreSQL broke): run it again."""
    try:
        with conn.begin_nested():
            conn.execute(sa.text("ANALYZE incidents"))
        return True
    except sa.exc.DBAPIError as exc:
        if not _busy(exc):
            raise
        return False


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


__all__ = ["MONTHS_AHEAD", "PARTITION", "Partition", "PartitionsBusy", "analyse", "default_months", "drop_if_empty", "empty_months_before",
           "ensure", "ensure_ahead", "ensure_listing_made", "estimated_rows", "listing"]
