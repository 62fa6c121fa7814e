"""The audit log: every write records who did it, when, and the state before and after."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gridmap.store.jsonb import to_json


def record(conn: sa.Connection, *, actor: str, action: str, table: str, row_key: str | None = None,
           before: Any = None, after: Any = None) -> None:
    """Append one audit entry inside the caller's transaction (so it commits or rolls back with it)."""
    conn.execute(
        sa.text("INSERT INTO audit_log (actor, action, table_name, row_key, before, after) "
                "VALUES (:actor, :action, :table, :row_key, CAST(:before AS jsonb), CAST(:after AS jsonb))"),
        {"actor": actor, "action": action, "table": table, "row_key": row_key,
         "before": None if before is None else to_json(before, lenient=True),
         "after": None if after is None else to_json(after, lenient=True)},
    )

