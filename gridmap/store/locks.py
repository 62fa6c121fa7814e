"""Advisory locks in PostgreSQL: work that one process of several must do at a time (the
supervision pass and the warming of kept answers when ``gridmap serve --workers N`` runs several
server processes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

SUPERVISION = 0x67726964  # "grid": the supervision pass
"""The advisory lock key of the supervision pass."""
WARM_ANSWERS = 0x67726965
"""The advisory lock key of the pass that works out the answers every process reads (service areas)."""


@contextmanager
def held(engine: sa.Engine, key: int) -> Iterator[bool]:
    """Try to take the session advisory lock ``key`` on a connection of its own; yields whether it
    was taken (another holder: False, nothing waits) and lets it go on exit."""
    with engine.connect() as conn:
        taken = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield taken
        finally:
            if taken:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.rollback()


__all__ = ["SUPERVISION", "WARM_ANSWERS", "held"]
