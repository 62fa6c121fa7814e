"""Property test: any sequence of edits (moves, merges, splits, cuts, in any order, valid or not)
keeps a draft's invariants in PostGIS, checked by recounting from the units themselves.

Invariants after every step: each unit of the plan in exactly one grid; no grid crosses a
community boundary; the plan's units tile every community (area and households conserved); each
grid's cached households and unit count equal a recount; the version rises by one per saved edit
and not at all for a rejected one.
"""

from __future__ import annotations

import math

import pytest
import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.services import planning
from conftest import published_plan_id

MONACO = "980100"

step = st.tuples(st.sampled_from(["assign", "merge", "split", "cut"]), st.integers(0, 10**6), st.integers(0, 10**6),
                 st.floats(0, math.pi))


@pytest.fixture
def monaco_plan(monaco_published: sa.Engine) -> tuple[sa.Engine, int, dict]:
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    with monaco.connect() as conn:
        totals = dict(conn.execute(sa.text(
            "SELECT c.code, ROW(sum(u.households), sum(u.area_m2))::text FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "JOIN territories c ON c.id = u.community_id WHERE pu.plan_id = :p GROUP BY c.code"),
            {"p": plan_id}).all())
    return monaco, plan_id, totals


def operation(conn: sa.Connection, plan_id: int, kind: str, a: int, b: int, angle: float) -> dict:
    """Turn random numbers into an operation on the current draft (not always a valid one)."""
    rows = conn.execute(sa.text(
        "SELECT pu.unit_id, g.code, g.community_id FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "WHERE pu.plan_id = :p ORDER BY pu.unit_id"), {"p": plan_id}).all()
    units = [(u, g) for u, g, _ in rows]
    unit, code, community = rows[a % len(rows)]
    # mostly a grid of the unit's own community (a plausible edit), sometimes any grid (a forbidden one)
    pool = sorted({g for _, g, c in rows if c == community or b % 5 == 0})
    other = pool[b % len(pool)]
    if kind == "assign":
        return {"op": "assign", "units": [unit, units[(a + 1) % len(units)][0]], "grid": other}
    if kind == "merge":
        return {"op": "merge", "grids": [code, other]}
    if kind == "split":
        members = [u for u, g in units if g == code]
        return {"op": "split", "grid": code, "units": members[: 1 + b % max(1, len(members))]}
    x, y, x0, y0, x1, y1 = conn.execute(sa.text(
        "SELECT ST_X(p), ST_Y(p), ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM (SELECT geom g, "
        "ST_PointOnSurface(geom) p FROM units WHERE id = :u) s"), {"u": unit}).one()
    reach = 2 * max(x1 - x0, y1 - y0)
    dx, dy = math.cos(angle) * reach, math.sin(angle) * reach
    return {"op": "cut", "unit": unit, "line": {"type": "LineString", "coordinates": [[x - dx, y - dy], [x + dx, y + dy]]}}


def check(conn: sa.Connection, plan_id: int, totals: dict) -> None:
    crossing = conn.execute(sa.text(
        "SELECT count(*) FROM plan_units pu JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
        "WHERE pu.plan_id = :p AND (u.community_id <> g.community_id OR g.plan_id <> pu.plan_id)"),
        {"p": plan_id}).scalar_one()
    assert crossing == 0
    stale = conn.execute(sa.text(
        "SELECT count(*) FROM grids g LEFT JOIN (SELECT pu.grid_id, sum(u.households) h, count(*) n FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p GROUP BY pu.grid_id) s ON s.grid_id = g.id "
        "WHERE g.plan_id = :p AND (s.n IS NULL OR g.households <> s.h OR (g.properties->>'unit_count')::int <> s.n)"),
        {"p": plan_id}).scalar_one()
    assert stale == 0  # no empty grid, cached sums equal a recount
    overlap = conn.execute(sa.text(
        "SELECT count(*) FROM plan_units a JOIN units ua ON ua.id = a.unit_id JOIN plan_units b ON b.plan_id = a.plan_id "
        "AND b.unit_id > a.unit_id JOIN units ub ON ub.id = b.unit_id AND ub.geom && ua.geom "
        "WHERE a.plan_id = :p AND ST_Area(ST_Intersection(ua.geom, ub.geom)) > 1e-12"), {"p": plan_id}).scalar_one()
    assert overlap == 0  # a cut unit's parent left the plan: pieces never overlap anything
    # exact coverage: every edge of every unit is matched by its neighbour's (GEOS coverage
    # validation, no tolerance), before and after cuts
    geoms = shapely.from_wkb([bytes(r[0]) for r in conn.execute(sa.text(
        "SELECT ST_AsBinary(u.geom) FROM plan_units pu JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p"),
        {"p": plan_id})])
    assert shapely.coverage_is_valid(geoms)
    grids = shapely.from_wkb([bytes(r[0]) for r in conn.execute(sa.text(
        "SELECT ST_AsBinary(geom) FROM grids WHERE plan_id = :p"), {"p": plan_id})])
    assert shapely.coverage_is_valid(grids)  # grids (unions of units) match edge for edge too: no hairline gap
    # the statistics PostGIS keeps for every grid (refreshed incrementally, only for touched grids)
    # equal the one definition, gridmap.geo.report.grid_statistics, recomputed from the units
    from gridmap.geo.crs import metric_crs_for
    from gridmap.geo.report import grid_statistics
    from gridmap.store import frames, territories

    units = frames.plan_units(conn, plan_id)
    stored = frames.plan_grids(conn, plan_id).set_index("grid_code")
    territory_id = conn.execute(sa.text("SELECT territory_id FROM plans WHERE id = :p"), {"p": plan_id}).scalar_one()
    defined = grid_statistics(units, units["grid_code"], metric_crs_for(*territories.centre(conn, territory_id)))
    defined = defined.set_index("_grid").loc[stored.index]
    assert (defined["households"] == stored["households"]).all() and (defined["unit_count"] == stored["unit_count"]).all()
    assert ((defined["area_m2"] - stored["area_m2"]).abs() <= 1e-6 * stored["area_m2"]).all()
    assert (defined["parts"] == stored["parts"]).all()
    assert ((defined["compactness"] - stored["compactness"]).abs() <= 2e-4).all()
    now = dict(conn.execute(sa.text(
        "SELECT c.code, ROW(sum(u.households), sum(u.area_m2))::text FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "JOIN territories c ON c.id = u.community_id WHERE pu.plan_id = :p GROUP BY c.code"), {"p": plan_id}).all())
    assert now.keys() == totals.keys()
    for code, value in totals.items():
        hh, area = map(float, value.strip("()").split(","))
        hh_now, area_now = map(float, now[code].strip("()").split(","))
        assert hh_now == hh and abs(area_now - area) <= 1e-6 * area, code


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_any_edit_sequence_keeps_the_invariants(monaco_plan, steps) -> None:
    engine, published_id, totals = monaco_plan
    draft_id, _ = planning.new_draft(engine, MONACO, actor="property")
    version = 1
    for kind, a, b, angle in steps:
        with engine.connect() as conn:
            op = operation(conn, draft_id, kind, a, b, angle)
        try:
            result = planning.apply_edits(engine, draft_id, [op], version=version, actor="property")
        except planning.EditError:
            pass  # a rejected edit must change nothing
        else:
            assert result.version == version + 1
            version = result.version
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"),
                                {"p": draft_id}).scalar_one() == version
            check(conn, draft_id, totals)
