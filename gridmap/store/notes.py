"""Notes on a plan's grids and units (``plan_notes``): why a grid was drawn so."""

from __future__ import annotations

import sqlalchemy as sa

COLUMNS = "n.id, n.grid_code, n.unit_id, n.body, n.author, n.created_at"


def add(conn: sa.Connection, plan_id: int, body: str, *, grid_code: str | None, unit_id: int | None,
        author: str | None) -> int:
    """Store a note on a grid or a unit of the plan; its id."""
    return conn.execute(sa.text(
        "INSERT INTO plan_notes (plan_id, grid_code, unit_id, body, author) VALUES (:p, :g, :u, :b, :a) RETURNING id"),
        {"p": plan_id, "g": grid_code, "u": unit_id, "b": body, "a": author}).scalar_one()


def remove(conn: sa.Connection, plan_id: int, note_id: int) -> bool:
    """Delete a note of the plan; whether there was one."""
    return conn.execute(sa.text("DELETE FROM plan_notes WHERE plan_id = :p AND id = :n"),
                        {"p": plan_id, "n": note_id}).rowcount > 0


def of_plan(conn: sa.Connection, plan_id: int) -> list[dict]:
    """The plan's notes, oldest first, each with the grid its unit is in now (``grid_of_unit``)."""
    rows = conn.execute(sa.text(
        f"SELECT {COLUMNS}, g.code AS grid_of_unit FROM plan_notes n LEFT JOIN plan_units pu "
        "ON pu.plan_id = n.plan_id AND pu.unit_id = n.unit_id LEFT JOIN grids g ON g.id = pu.grid_id "
        "WHERE n.plan_id = :p ORDER BY n.created_at, n.id"), {"p": plan_id})
    return [dict(r._mapping) for r in rows]


def new_since(conn: sa.Connection, plan_id: int, base_id: int) -> list[dict]:
    """Notes of ``plan_id`` that ``base_id`` does not have (same target and text): what a diff shows."""
    rows = conn.execute(sa.text(
        f"SELECT {COLUMNS} FROM plan_notes n WHERE n.plan_id = :p AND NOT EXISTS (SELECT 1 FROM plan_notes b "
        "WHERE b.plan_id = :b AND b.grid_code IS NOT DISTINCT FROM n.grid_code AND b.unit_id IS NOT DISTINCT FROM "
        "n.unit_id AND b.body = n.body) ORDER BY n.created_at, n.id"), {"p": plan_id, "b": base_id})
    return [dict(r._mapping) for r in rows]


def copy(conn: sa.Connection, source_id: int, plan_id: int) -> None:
    """A new draft keeps the notes of the plan it was copied from."""
    conn.execute(sa.text(
        "INSERT INTO plan_notes (plan_id, grid_code, unit_id, body, author, created_at) "
        "SELECT :p, grid_code, unit_id, body, author, created_at FROM plan_notes WHERE plan_id = :s ORDER BY id"),
        {"p": plan_id, "s": source_id})


__all__ = ["add", "remove", "of_plan", "new_since", "copy"]
