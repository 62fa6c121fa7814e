"""A bounded load run (the short form of benchmarks/load.py): concurrent signed-in clients
mixing incident reports, map reads and planner edits against a real ``gridmap serve`` process.
No timing is asserted (benchmarks/ measures that); what must hold under load is asserted: no
error of any kind, and every acknowledged incident stored."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

import loadgen as load

MONACO = "980100"


def test_concurrent_mixed_load_has_no_errors_and_loses_no_report(monaco_built: sa.Engine, database_url: str) -> None:
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import planning
    from gridmap.services.incidents import ensure_categories
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    ensure_categories(monaco)
    setup = load.prepare(monaco, MONACO, planners=3)
    server = load.Server(database_url)
    try:
        result = asyncio.run(load.run_load(server.url, MONACO, setup, clients=50, seconds=8))
    finally:
        server.stop()
    assert result.errors == [], result.errors[:5]
    assert {"report", "read", "edit"} <= set(result.latencies)
    assert len(result.acknowledged) > 20
    with monaco.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM incidents WHERE public_id = ANY(:ids)"),
                              {"ids": result.acknowledged}).scalar()
        total = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar()
    assert stored == total == len(result.acknowledged)
