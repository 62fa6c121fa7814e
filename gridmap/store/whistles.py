"""The whistle (吹哨报到) in PostGIS (migration 0021): whistles on an incident or a need, the
departments each calls, their acknowledgement and arrival, escalation when late, and each
department's scorecard."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.sql import with_subtree


class WhistleNotFound(NotFound):
    """No whistle of that id (or it does not call that department)."""


def department_ids(conn: sa.Connection, codes: list[str]) -> dict[str, int]:
    return dict(conn.execute(sa.text("SELECT code, id FROM departments WHERE code = ANY(:c)"), {"c": codes}).all())


def blow(conn: sa.Connection, *, territory_id: int, incident_id: int | None, need_id: int | None,
         emergency_id: int | None, note: str | None, actor: str, at: datetime, ack_due: datetime,
         arrive_due: datetime, departments: list[int], synthetic: bool = False) -> int:
    whistle_id = conn.execute(sa.text(
        "INSERT INTO whistles (territory_id, emergency_id, incident_id, need_id, note, blown_by, blown_at, ack_due, "
        "arrive_due, synthetic) VALUES (:t, :e, :i, :n, :note, :by, :at, :ack, :arrive, :syn) RETURNING id"),
        {"t": territory_id, "e": emergency_id, "i": incident_id, "n": need_id, "note": note, "by": actor, "at": at,
         "ack": ack_due, "arrive": arrive_due, "syn": synthetic}).scalar_one()
    conn.execute(sa.text("INSERT INTO whistle_calls (whistle_id, department_id) SELECT :w, unnest(CAST(:d AS int[]))"),
                 {"w": whistle_id, "d": departments})
    return int(whistle_id)


def get(conn: sa.Connection, whistle_id: int, *, lock: bool = False) -> dict:
    """A whistle with its calls; ``lock``: its row locked (answers one at a time, so the last
    arrival closes it)."""
    row = conn.execute(sa.text(
        "SELECT w.id, t.code AS territory, w.emergency_id, i.public_id AS incident_public_id, w.need_id, w.note, "
        "w.blown_by, w.blown_at, w.ack_due, w.arrive_due, w.closed_at, w.synthetic FROM whistles w "
        "JOIN territories t ON t.id = w.territory_id LEFT JOIN incidents i ON i.id = w.incident_id AND i.reported_at = w.incident_reported_at WHERE w.id = :w"
        + (" FOR UPDATE OF w" if lock else "")), {"w": whistle_id}).mappings().first()
    if row is None:
        raise WhistleNotFound(f"no whistle {whistle_id}", f"没有编号为 {whistle_id} 的吹哨")
    calls = conn.execute(sa.text(
        "SELECT d.code AS department_code, d.name AS department, COALESCE(d.name_en, d.name) AS department_en, "
        "c.acknowledged_at, c.acknowledged_by, c.arrived_at, c.arrived_by, c.escalation_level, c.escalated_at "
        "FROM whistle_calls c JOIN departments d ON d.id = c.department_id WHERE c.whistle_id = :w ORDER BY d.code"),
        {"w": whistle_id}).mappings().all()
    return {**dict(row), "calls": [dict(c) for c in calls]}


def answer(conn: sa.Connection, whistle_id: int, department_id: int, *, step: str, at: datetime,
           actor: str) -> bool:
    """Record a department's acknowledgement (``step="acknowledge"``) or arrival (``"arrive"``, which
    acknowledges too when it had not); whether it was new."""
    if step == "arrive":
        sql = ("UPDATE whistle_calls SET arrived_at = :at, arrived_by = :by, acknowledged_at = COALESCE(acknowledged_at, :at), "
               "acknowledged_by = COALESCE(acknowledged_by, :by) WHERE whistle_id = :w AND department_id = :d "
               "AND arrived_at IS NULL RETURNING 1")
    else:
        sql = ("UPDATE whistle_calls SET acknowledged_at = :at, acknowledged_by = :by WHERE whistle_id = :w "
               "AND department_id = :d AND acknowledged_at IS NULL RETURNING 1")
    done = conn.execute(sa.text(sql), {"w": whistle_id, "d": department_id, "at": at, "by": actor}).first()
    if done is None and not conn.execute(sa.text(
            "SELECT 1 FROM whistle_calls WHERE whistle_id = :w AND department_id = :d"),
            {"w": whistle_id, "d": department_id}).first():
        raise WhistleNotFound(f"whistle {whistle_id} does not call that department", f"吹哨 {whistle_id} 未召集该部门")
    return done is not None


def late(conn: sa.Connection, now: datetime) -> pd.DataFrame:
    """Calls late at ``now``: not acknowledged by the acknowledgement deadline (to level 1) or not
    arrived by the arrival deadline (to level 2), not yet escalated that far; locked for the pass."""
    return pd.read_sql_query(sa.text(
        "SELECT c.whistle_id, c.department_id, d.code AS department_code, c.escalation_level, "
        "CASE WHEN c.arrived_at IS NULL AND w.arrive_due < :now THEN 2 ELSE 1 END AS level, w.emergency_id, "
        "(c.acknowledged_at IS NOT NULL AND c.acknowledged_at <= w.ack_due) AS acknowledged_in_time "
        "FROM whistle_calls c JOIN whistles w ON w.id = c.whistle_id JOIN departments d ON d.id = c.department_id "
        "WHERE w.closed_at IS NULL AND ((c.acknowledged_at IS NULL AND w.ack_due < :now AND c.escalation_level < 1) "
        "OR (c.arrived_at IS NULL AND w.arrive_due < :now AND c.escalation_level < 2)) "
        "ORDER BY c.whistle_id, d.code FOR UPDATE OF c SKIP LOCKED"), conn, params={"now": now})


def escalate(conn: sa.Connection, whistle_id: int, department_id: int, level: int, at: datetime) -> None:
    conn.execute(sa.text("UPDATE whistle_calls SET escalation_level = :l, escalated_at = :at "
                         "WHERE whistle_id = :w AND department_id = :d"),
                 {"w": whistle_id, "d": department_id, "l": level, "at": at})


def close_if_done(conn: sa.Connection, whistle_id: int, at: datetime) -> bool:
    """Close the whistle when every department has arrived; whether it closed."""
    return conn.execute(sa.text(
        "UPDATE whistles SET closed_at = :at WHERE id = :w AND closed_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM whistle_calls WHERE whistle_id = :w AND arrived_at IS NULL) RETURNING 1"),
        {"w": whistle_id, "at": at}).first() is not None


def calls(conn: sa.Connection, territory: str | None = None, emergency_id: int | None = None) -> pd.DataFrame:
    """Every call of the whistles blown in the territory's tree (or in an emergency), with its
    times and deadlines: what a scorecard is counted from."""
    return pd.read_sql_query(sa.text(
        (with_subtree() if territory else "") +
        "SELECT w.id AS whistle_id, d.code AS department_code, d.name AS department, COALESCE(d.name_en, d.name) AS "
        "department_en, w.blown_at, w.ack_due, w.arrive_due, c.acknowledged_at, c.arrived_at, c.escalation_level "
        "FROM whistle_calls c JOIN whistles w ON w.id = c.whistle_id JOIN departments d ON d.id = c.department_id WHERE "
        + ("w.territory_id IN (SELECT id FROM sub)" if territory else "w.emergency_id = :e") + " ORDER BY w.id, d.code"),
        conn, params={"territory": territory, "e": emergency_id})


__all__ = ["WhistleNotFound", "department_ids", "blow", "get", "answer", "late", "escalate", "close_if_done", "calls"]
