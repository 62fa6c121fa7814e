"""Which finished incidents may leave the database, what is written of them, and their removal
(``gridmap incidents archive``; the file itself is :mod:`gridmap.services.archiving`'s)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from gridmap.store.incidents import FROM, PUBLIC_COLUMNS
from gridmap.store.sql import with_subtree

FINISHED = ("closed", "rejected")
"""The statuses an incident may be archived in: its loop is over."""


def archivable(conn: sa.Connection, territory: str, before: datetime) -> list[int]:
    """Ids of the incidents of ``territory``'s subtree reported before ``before`` that may leave:
    finished (closed or rejected), not part of an emergency's or a whistle's record (those are
    kept whole with their emergency), and not the original of a duplicate that stays (the
    duplicate would lose its link); a duplicate that stays keeps its original, and so on along
    the chain."""
    ids = set(conn.execute(sa.text(
        with_subtree() + "SELECT i.id FROM incidents i WHERE i.community_id IN (SELECT id FROM sub) "
        "AND i.status = ANY(:done) AND i.reported_at < :before AND i.emergency_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM whistles w WHERE w.incident_id = i.id)"),
        {"territory": territory, "done": list(FINISHED), "before": before}).scalars())
    links = conn.execute(sa.text(
        "SELECT id, duplicate_of FROM incidents WHERE duplicate_of IS NOT NULL")).all()
    while True:  # an original stays while a duplicate of it stays
        keep = {original for duplicate, original in links if original in ids and duplicate not in ids}
        if not keep:
            return sorted(ids)
        ids -= keep


def rows(conn: sa.Connection, ids: list[int], *, with_contacts: bool) -> tuple[list[dict], list[dict]]:
    """The incidents ``ids`` as their public record (codes and names rather than row ids; the
    reporter's name and contact only ``with_contacts``) and all their events, oldest first."""
    contact = ", i.reporter_name, i.reporter_contact" if with_contacts else ""
    incidents = [dict(r._mapping) for r in conn.execute(sa.text(
        f"SELECT {PUBLIC_COLUMNS}{contact} FROM {FROM} WHERE i.id = ANY(:ids) ORDER BY i.reported_at, i.id"),
        {"ids": ids})]
    events = [dict(r._mapping) for r in conn.execute(sa.text(
        "SELECT i.public_id, e.at, e.action, e.from_status, e.to_status, e.actor, e.note, e.detail "
        "FROM incident_events e JOIN incidents i ON i.id = e.incident_id AND i.reported_at = e.incident_reported_at WHERE e.incident_id = ANY(:ids) "
        "ORDER BY i.public_id, e.at, e.id"), {"ids": ids})]
    return incidents, events


def remove(conn: sa.Connection, ids: list[int], events: int) -> int | None:
    """Delete the incidents ``ids`` (their events go with them), when every one of them still
    may leave and their history is still the ``events`` events that were written; else nothing
    (None). The rows are locked first: an event, whistle or duplicate that another user adds to
    one of them from then on waits, and then finds it gone, rather than being deleted with it."""
    conn.execute(sa.text("SELECT id FROM incidents WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": ids})
    still = conn.execute(sa.text(
        "SELECT count(*) FROM incidents i WHERE i.id = ANY(:ids) AND i.status = ANY(:done) AND i.emergency_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM whistles w WHERE w.incident_id = i.id) "
        "AND NOT EXISTS (SELECT 1 FROM incidents d WHERE d.duplicate_of = i.id AND NOT d.id = ANY(:ids))"),
        {"ids": ids, "done": list(FINISHED)}).scalar_one()
    history = conn.execute(sa.text("SELECT count(*) FROM incident_events WHERE incident_id = ANY(:ids)"),
                           {"ids": ids}).scalar_one()
    if still != len(ids) or history != events:
        return None
    return len(conn.execute(sa.text("DELETE FROM incidents WHERE id = ANY(:ids) RETURNING id"), {"ids": ids}).all())


__all__ = ["FINISHED", "archivable", "rows", "remove"]
