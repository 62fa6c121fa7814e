"""The incident rollups' upkeep (migration 0023 defines them and the triggers that keep them):
checking them against the incidents, rebuilding them, and dropping the rows that count nothing
any more (left by incidents archived or moved away)."""

from __future__ import annotations

import sqlalchemy as sa

TABLES = {
    "incident_grid_months": (("month", "grid_lineage", "community_id", "street_id", "category_code", "status"),
                             ("incidents", "late", "supervised")),
    "incident_handling_months": (("category_code", "month", "grid_lineage", "community_id", "street_id", "bucket"),
                                 ("incidents",)),
    "incident_cell_months": (("category_code", "status", "month", "community_id", "street_id", "cell_x", "cell_y"),
                             ("incidents", "sum_lon", "sum_lat")),
}
"""Each rollup's key and its sums."""

SUM_TOLERANCE = 1e-6
"""Coordinate sums kept step by step and summed afresh differ in their last bits."""


def rebuild(conn: sa.Connection) -> None:
    """Work every rollup out again from the incidents (locks them while it runs)."""
    conn.execute(sa.text("SELECT gridmap_incident_rollups_rebuild()"))


def check(conn: sa.Connection) -> dict[str, int]:
    """For each rollup, how many of its keys count otherwise than the incidents do now (0
    everywhere: they are in step). Works them out again inside a savepoint that is rolled back,
    so nothing changes."""
    differ: dict[str, int] = {}
    savepoint = conn.begin_nested()
    try:
        for table in TABLES:
            conn.execute(sa.text(f"CREATE TEMP TABLE kept_{table} ON COMMIT DROP AS SELECT * FROM {table}"))
        rebuild(conn)
        for table, (key, sums) in TABLES.items():
            joined = " AND ".join(f"a.{k} = b.{k}" for k in key)
            unequal = " OR ".join(
                f"abs(COALESCE(a.{s}, 0) - COALESCE(b.{s}, 0)) > {SUM_TOLERANCE}" if s.startswith("sum_")
                else f"COALESCE(a.{s}, 0) <> COALESCE(b.{s}, 0)" for s in sums)
            differ[table] = conn.execute(sa.text(
                f"SELECT count(*) FROM kept_{table} a FULL JOIN {table} b ON {joined} WHERE {unequal}")).scalar_one()
    finally:
        savepoint.rollback()
    return differ


def prune(conn: sa.Connection) -> int:
    """Delete the rollup rows that count nothing (every sum zero); returns how many."""
    removed = 0
    for table, (_, sums) in TABLES.items():
        empty = " AND ".join(f"abs({s}) <= {SUM_TOLERANCE}" if s.startswith("sum_") else f"{s} = 0" for s in sums)
        removed += conn.execute(sa.text(f"DELETE FROM {table} WHERE {empty}")).rowcount
    return removed


__all__ = ["TABLES", "check", "prune", "rebuild"]
