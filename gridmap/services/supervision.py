"""The supervision pass the server runs on its own: overdue incidents go up (督办), and while an
emergency is on, every minute, missed check-ins go to the community and the street and departments
late to a whistle go up; the incidents' monthly partitions of the months ahead are made. One place calls them all, so a CLI run and the server agree; with several
server processes one of them runs it at a time (a PostgreSQL advisory lock)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa


def supervise(engine: sa.Engine, *, full: bool = True, now: datetime | None = None) -> dict[str, int]:
    """Run the passes due: with ``full`` (the regular period) all of them; otherwise only when an
    emergency is on (the minute passes). What each changed, by name (empty: nothing ran or changed)."""
    from gridmap.services import emergencies, incidents, whistles
    from gridmap.store import locks

    if not full and not emergencies.any_on(engine):
        return {}
    with locks.held(engine, locks.SUPERVISION) as mine:
        if not mine:  # another server process is running it (gridmap serve --workers N)
            return {}
        changed = {"incidents": len(incidents.escalate_overdue(engine, now=now)),
                   "checkins": len(emergencies.sweep(engine, now=now)),
                   "whistles": len(whistles.sweep(engine, now=now))}
        if full:
            changed["months"] = incidents.make_months_ahead(engine, now=now)
    return {k: v for k, v in changed.items() if v}


__all__ = ["supervise"]
