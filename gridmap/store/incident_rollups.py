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
    """Work every rollup out again from the incidents. It empties them first (TRUNCATE): reports
    and dashboards wait until it commits (about 15 s a million incidents)."""
    conn.execute(sa.text("SELECT gridmap_incident_rollups_rebuild()"))


def check(engine: sa.Engine) -> dict[str, int]:
    """For each rollup, how many of its keys count otherwise than the incidents do now (0
    everywhere: they are in step). The rollups are worked out afresh into copies of the
    transaction (``gridmap_incident_rollups_fresh``) and compared, all in one snapshot: nothing
    is locked against reports or dashboards, and nothing committed meanwhile shows as a
    difference."""
    differ: dict[str, int] = {}
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        conn.execute(sa.text("SELECT gridmap_incident_rollups_fresh()"))
        for table, (key, sums) in TABLES.items():
            joined = " AND ".join(f"a.{k} = b.{k}" for k in key)
            unequal = " OR ".join(
                f"abs(COALESCE(a.{s}, 0) - COALESCE(b.{s}, 0)) > {SUM_TOLERANCE}" if s.startswith("sum_")
                else f"COALESCE(a.{s}, 0) <> COALESCE(b.{s}, 0)" for s in sums)
            differ[table] = conn.execute(sa.text(
                f"SELECT count(*) FROM {table} a FULL JOIN fresh_{table} b ON {joined} WHERE {unequal}")).scalar_one()
    return differ


def prune(conn: sa.Connection) -> int:
    """Delete the rollup rows that count nothing (every sum zero); returns how many. Rows another
    transaction holds are left for a later prune (they may count again by then): a prune never
    waits for a report, nor a report for it."""
    removed = 0
    for table, (_, sums) in TABLES.items():
        empty = " AND ".join(f"abs({s}) <= {SUM_TOLERANCE}" if s.startswith("sum_") else f"{s} = 0" for s in sums)
        removed += conn.execute(sa.text(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {empty} FOR UPDATE SKIP LOCKED)")).rowcount
    return removed


__all__ = ["TABLES", "check", "prune", "rebuild"]
