"""A plan's grids and the assignment of units to them (``grids``, ``plan_units``): where units
are, moving them, creating and dropping grids, the incremental statistics of touched grids, and
what changed between two plans.

A grid is a set of units, so every edit is a change of the assignment and no edit can open a gap
or an overlap. Only persistence lives here: the rules an edit must follow are checked once, by
the edit operations (:mod:`gridmap.services.edits`), before these functions are called.

Units are named here by their row id (``units.id``, what ``plan_units.unit_id`` holds and what the
HTTP API and the planner send); their text key (``units.unit_key``) is the ``unit_id`` of
GeoDataFrames (:mod:`gridmap.store.frames`, :mod:`gridmap.geo`).

The statistics of a grid are defined once, in :mod:`gridmap.geo.report` (households, population
and area summed over units; compactness Polsby-Popper in the territory's metric CRS; ``parts``
the number of polygons of the union of its units). :func:`refresh_grids` computes the same in SQL
for the grids an edit touched; a property test checks the two agree.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.geo.kinds import COMPREHENSIVE, DEDICATED
from gridmap.store.jsonb import to_json
from gridmap.store.sql import INSERT_BATCH, ewkb_hex

GRID_ATTRIBUTES = ("name", "worker", "kind", "locked")
"""What an edit may set on a grid (besides its units)."""


# -- where units are ------------------------------------------------------------------------------
def units_in_plan(conn: sa.Connection, plan_id: int, unit_rows: list[int]) -> dict[int, tuple[int, str, int]]:
    """unit row id → (grid id, grid code, community id) for those of ``unit_rows`` in the plan."""
    rows = conn.execute(sa.text(
        "SELECT pu.unit_id, g.id, g.code, u.community_id FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND pu.unit_id = ANY(:u)"),
        {"p": plan_id, "u": unit_rows})
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def grid_by_code(conn: sa.Connection, plan_id: int, code: str) -> sa.Row | None:
    """(id, code, community_id, kind) of a plan's grid, None when the plan has no such grid."""
    return conn.execute(sa.text("SELECT id, code, community_id, kind FROM grids WHERE plan_id = :p AND code = :c"),
                        {"p": plan_id, "c": code}).first()


def grid_units(conn: sa.Connection, grid_id: int) -> list[int]:
    return [r[0] for r in conn.execute(sa.text("SELECT unit_id FROM plan_units WHERE grid_id = :g ORDER BY unit_id"),
                                       {"g": grid_id})]


def grid_codes(conn: sa.Connection, plan_id: int, community_id: int | None = None) -> set[str]:
    """A plan's grid codes (of one community, when given)."""
    return {r[0] for r in conn.execute(sa.text(
        "SELECT code FROM grids WHERE plan_id = :p AND (CAST(:c AS int) IS NULL OR community_id = :c)"),
        {"p": plan_id, "c": community_id})}


def grid_communities(conn: sa.Connection, grid_ids: set[int]) -> list[tuple[str, int]]:
    """(grid code, community id) of each grid."""
    return [tuple(r) for r in conn.execute(sa.text("SELECT code, community_id FROM grids WHERE id = ANY(:ids)"),
                                           {"ids": sorted(grid_ids)})]


def unit_grids(conn: sa.Connection, plan_id: int, unit_rows: list[int]) -> dict[int, str]:
    """The grid code each of ``unit_rows`` is in (for the audit log's before/after of a move)."""
    rows = conn.execute(sa.text("SELECT pu.unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
                                "WHERE pu.plan_id = :p AND pu.unit_id = ANY(:ids)"), {"p": plan_id, "ids": unit_rows})
    return {int(u): c for u, c in rows}


# -- changing it ----------------------------------------------------------------------------------
def create_grid(conn: sa.Connection, plan_id: int, code: str, community_id: int, kind: str) -> int:
    """A new, empty grid of the plan; returns its id."""
    return conn.execute(sa.text(
        "INSERT INTO grids (plan_id, code, community_id, kind, households, area_m2, properties) "
        "VALUES (:p, :c, :cid, :k, 0, 0, '{}'::jsonb) RETURNING id"),
        {"p": plan_id, "c": code, "cid": community_id, "k": kind}).scalar_one()


def move_units(conn: sa.Connection, plan_id: int, unit_rows: list[int], grid_id: int) -> None:
    """Put units (row ids) of the plan into grid ``grid_id``."""
    conn.execute(sa.text("UPDATE plan_units SET grid_id = :g WHERE plan_id = :p AND unit_id = ANY(:u)"),
                 {"g": grid_id, "p": plan_id, "u": sorted(unit_rows)})


def locked_grids(conn: sa.Connection, grid_ids: set[int]) -> list[str]:
    """Codes of those of ``grid_ids`` that are locked (sorted)."""
    rows = conn.execute(sa.text("SELECT code FROM grids WHERE id = ANY(:ids) AND locked ORDER BY code"),
                        {"ids": sorted(grid_ids)})
    return [r[0] for r in rows]


def set_grid_attribute(conn: sa.Connection, grid_id: int, column: str, value) -> None:
    """Set one of :data:`GRID_ATTRIBUTES`. A name set so is someone's: it loses its ``name_from``
    (the naming of dedicated grids then keeps it; :mod:`gridmap.geo.grid_names`)."""
    if column not in GRID_ATTRIBUTES:  # a programming error: the edit operations name only these
        raise ValueError(f"a grid's {column} cannot be set")
    given = ", properties = properties - 'name_from'" if column == "name" else ""
    conn.execute(sa.text(f"UPDATE grids SET {column} = :v{given} WHERE id = :g"), {"v": value, "g": grid_id})


def naming_inputs(conn: sa.Connection, plan_id: int, grid_ids: set[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What naming grids ``grid_ids`` again needs (:func:`gridmap.geo.grid_names.dedicated_grid_names`):
    the grids (``grid_id, grid_code, kind, grid_name, name_from``) and their units (``grid_code,
    kind, name, site_type, area_m2``)."""
    ids = sorted(grid_ids)
    grids = pd.read_sql(sa.text(
        "SELECT g.id AS grid_id, g.code AS grid_code, g.kind, g.name AS grid_name, "
        "g.properties->>'name_from' AS name_from FROM grids g "
        "WHERE g.plan_id = :p AND g.id = ANY(:ids) ORDER BY g.code"), conn, params={"p": plan_id, "ids": ids})
    units = pd.read_sql(sa.text(
        "SELECT g.code AS grid_code, u.kind, u.name, u.properties->>'site_type' AS site_type, u.area_m2 "
        "FROM plan_units pu JOIN grids g ON g.id = pu.grid_id JOIN units u ON u.id = pu.unit_id "
        "WHERE pu.plan_id = :p AND pu.grid_id = ANY(:ids) ORDER BY g.code, u.unit_key"), conn,
        params={"p": plan_id, "ids": ids})
    return grids, units


def unnamed_dedicated(conn: sa.Connection, plan_id: int) -> set[int]:
    """Ids of the plan's dedicated grids without a name or without a site type."""
    return {r[0] for r in conn.execute(sa.text(
        "SELECT id FROM grids WHERE plan_id = :p AND kind = :ded AND (name IS NULL OR properties->>'site_type' IS NULL)"),
        {"p": plan_id, "ded": DEDICATED})}


def set_naming(conn: sa.Connection, grid_ids: list[int], names: pd.DataFrame) -> None:
    """Store each grid's ``grid_name`` and naming properties (``names``: one row per grid of
    ``grid_ids``, in that order; a missing property is removed)."""
    if not grid_ids:
        return
    conn.execute(sa.text(
        "UPDATE grids g SET name = t.name, properties = (g.properties - CAST(:keys AS text[])) || CAST(t.props AS jsonb) "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:names AS text[]), CAST(:props AS text[])) AS t(id, name, props) "
        "WHERE g.id = t.id"),
        {"keys": list(NAMING_PROPERTIES), "ids": [int(i) for i in grid_ids],
         "names": [_text(n) for n in names["grid_name"]], "props": [to_json(p) for p in _naming(names)]})


def lineages(conn: sa.Connection, plan_id: int) -> dict[int, int]:
    """Grid row id → lineage of every grid of the plan (an edit that changes a grid's units gives
    it a new one: :func:`new_lineage`)."""
    return {int(r[0]): int(r[1]) for r in conn.execute(sa.text(
        "SELECT id, lineage FROM grids WHERE plan_id = :p"), {"p": plan_id})}


def new_lineage(conn: sa.Connection, grid_ids: set[int]) -> None:
    """Grids whose units changed start a lineage of their own: incidents in them are routed
    again when the plan is published (``services.incidents.follow_plan``)."""
    conn.execute(sa.text("UPDATE grids SET lineage = nextval('grid_lineage_seq') WHERE id = ANY(:ids)"),
                 {"ids": sorted(grid_ids)})


def drop_empty_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int]) -> list[str]:
    """Delete those of ``grid_ids`` that have no units left; returns their codes."""
    rows = conn.execute(sa.text(
        "DELETE FROM grids g WHERE g.plan_id = :p AND g.id = ANY(:ids) "
        "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.grid_id = g.id) RETURNING code"),
        {"p": plan_id, "ids": sorted(grid_ids)})
    return sorted(r[0] for r in rows)


NAMING_PROPERTIES = ("site_type", "site_type_zh", "name_from")
"""What a grid keeps in ``properties`` beside its ``name``: a dedicated grid's site type (English
key and Chinese term) and where its name came from (:mod:`gridmap.geo.grid_names`)."""


def _text(value) -> str | None:
    """A frame's value as text for the database, None for a missing one."""
    return None if value is None or pd.isna(value) else str(value)


def _naming(grids: pd.DataFrame) -> list[dict]:
    """Each grid's naming properties (only those it has)."""
    present = [c for c in NAMING_PROPERTIES if c in grids]
    rows = zip(*(grids[c] for c in present)) if present else ([] for _ in range(len(grids)))
    return [{c: _text(v) for c, v in zip(present, row) if _text(v) is not None} for row in rows]


def write(conn: sa.Connection, plan_id: int, grids: gpd.GeoDataFrame, units: pd.DataFrame,
          community_ids: dict[str, int]) -> None:
    """Insert a new plan's grids and its unit → grid assignment (``units`` carry ``db_id`` and
    ``grid_code``; ``grids`` the statistics of :mod:`gridmap.geo.report` and, where given, the
    ``grid_name`` and naming properties of :mod:`gridmap.geo.grid_names`)."""
    has_population = "population" in grids
    names = [_text(n) for n in grids["grid_name"]] if "grid_name" in grids else [None] * len(grids)
    values = {"c": [str(c) for c in grids["grid_code"]], "n": names,
              "cid": [community_ids[c] for c in grids["community_code"]],
              "k": [str(k) for k in grids["kind"]], "h": [int(h) for h in grids["households"]],
              "pop": [int(v) if has_population and not pd.isna(v) else None
                      for v in (grids["population"] if has_population else [None] * len(grids))],
              "a": [float(a) for a in grids["area_m2"]],
              "props": [to_json({"compactness": round(float(row.compactness), 4), "unit_count": int(row.unit_count),
                                    **({"parts": int(row.parts)} if "parts" in grids else {}), **naming})
                        for row, naming in zip(grids.itertuples(index=False), _naming(grids))],
              "g": ewkb_hex(grids.geometry.values)}
    grid_ids: dict[str, int] = {}
    # a statement per INSERT_BATCH grids (a round trip each: 0.3 s for Reykjavík's 377)
    for start in range(0, len(grids), INSERT_BATCH):
        rows = conn.execute(sa.text(
            "INSERT INTO grids (plan_id, code, name, community_id, kind, households, population, area_m2, properties, "
            "geom) SELECT :p, c, nm, cid, k, h, pop, a, CAST(props AS jsonb), ST_Multi(ST_GeomFromEWKB(decode(g, 'hex'))) "
            "FROM unnest(CAST(:c AS text[]), CAST(:n AS text[]), CAST(:cid AS bigint[]), CAST(:k AS text[]), "
            "CAST(:h AS integer[]), CAST(:pop AS integer[]), CAST(:a AS float8[]), CAST(:props AS text[]), "
            "CAST(:g AS text[])) WITH ORDINALITY AS t(c, nm, cid, k, h, pop, a, props, g, n) ORDER BY n RETURNING code, id"),
            {"p": plan_id, **{name: column[start:start + INSERT_BATCH] for name, column in values.items()}})
        grid_ids.update({code: int(grid_id) for code, grid_id in rows})
    # one statement for all assignments (row-by-row executemany took 1.4 s for 7,000 units)
    conn.execute(sa.text("INSERT INTO plan_units (plan_id, unit_id, grid_id) "
                         "SELECT :p, u, g FROM unnest(CAST(:units AS bigint[]), CAST(:grids AS bigint[])) AS t(u, g)"),
                 {"p": plan_id, "units": [int(u) for u in units["db_id"]],
                  "grids": [grid_ids[g] for g in units["grid_code"]]})


# -- statistics, incrementally --------------------------------------------------------------------
GRID_STATS_SQL = (
    "SELECT g.id, g.code, c.code AS community_code, g.kind, g.households, g.population, g.area_m2, "
    "(g.properties->>'unit_count')::int AS unit_count, (g.properties->>'compactness')::float AS compactness, "
    "COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)) AS parts "
    "FROM grids g JOIN territories c ON c.id = g.community_id ")


def refresh_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int], metric_srid: int, *,
                  reshaped: set[int] | None = None) -> list[dict]:
    """Re-dissolve and re-sum those of ``grid_ids`` whose units changed (``reshaped``; None: all of
    them) from their units; returns the statistics of all of ``grid_ids``, as defined in
    :mod:`gridmap.geo.report` (the perimeter measured in ``metric_srid``). A grid only renamed or
    given a worker keeps its shape and sums: dissolving it again would give the same."""
    ids = sorted(grid_ids)
    if not ids:
        return []
    redo = ids if reshaped is None else sorted(set(ids) & set(reshaped))
    if redo:
        _redissolve(conn, plan_id, redo, metric_srid)
    rows = conn.execute(sa.text(GRID_STATS_SQL + "WHERE g.id = ANY(:ids) ORDER BY g.code"), {"ids": ids})
    return [dict(r._mapping) for r in rows]


def _redissolve(conn: sa.Connection, plan_id: int, ids: list[int], metric_srid: int) -> None:
    """Shape, sums and shape figures of grids ``ids`` from their units."""
    conn.execute(sa.text(
        "UPDATE grids g SET geom = s.geom, households = s.households, population = s.population, area_m2 = s.area, "
        "properties = g.properties || jsonb_build_object('unit_count', s.n, 'parts', ST_NumGeometries(s.geom), "
        "'compactness', CASE WHEN s.perimeter > 0 THEN round((4 * pi() * s.area / s.perimeter ^ 2)::numeric, 4) "
        "ELSE 0 END) "
        "FROM (SELECT d.*, ST_Perimeter(ST_Transform(d.geom, :srid)) AS perimeter FROM ("
        "SELECT pu.grid_id, ST_Multi(ST_Union(u.geom)) AS geom, sum(u.households) AS households, "
        "sum(u.population) AS population, sum(u.area_m2) AS area, count(*) AS n FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND pu.grid_id = ANY(:ids) GROUP BY pu.grid_id) d) s "
        "WHERE g.id = s.grid_id"), {"p": plan_id, "ids": ids, "srid": metric_srid})


def grid_stats(conn: sa.Connection, plan_id: int) -> list[dict]:
    """Every grid's statistics as stored (the same columns :func:`refresh_grids` returns)."""
    rows = conn.execute(sa.text(GRID_STATS_SQL + "WHERE g.plan_id = :p ORDER BY g.code"), {"p": plan_id})
    return [dict(r._mapping) for r in rows]


def summary(conn: sa.Connection, plan_id: int, min_households: int, max_households: int) -> dict:
    """Counts over the plan's grids (cached sums; one pass over the grids table, no geometry)."""
    row = conn.execute(sa.text(
        "SELECT count(*) AS grids, count(*) FILTER (WHERE kind = :comp) AS comprehensive, "
        "count(*) FILTER (WHERE kind = :ded) AS dedicated, "
        "count(*) FILTER (WHERE kind = :comp AND households BETWEEN :lo AND :hi) AS in_band, "
        "count(*) FILTER (WHERE kind = :comp AND households < :lo) AS below_min, "
        "count(*) FILTER (WHERE kind = :comp AND households > :hi) AS above_max, "
        "count(*) FILTER (WHERE COALESCE((properties->>'parts')::int, ST_NumGeometries(geom)) > 1) AS not_contiguous, "
        "COALESCE(sum(households), 0) AS households, "
        "(SELECT count(*) FROM plan_units WHERE plan_id = :p) AS units FROM grids WHERE plan_id = :p"),
        {"p": plan_id, "lo": min_households, "hi": max_households, "comp": COMPREHENSIVE, "ded": DEDICATED}).first()
    return {**row._mapping, "min_households": min_households, "max_households": max_households}


def snapshot(conn: sa.Connection, plan_id: int, codes: list[str] | None = None) -> dict[str, dict]:
    """What the audit log keeps of grids: households, unit count, name, worker, kind (no shapes)."""
    rows = conn.execute(sa.text(
        "SELECT g.code, g.households, g.name, g.worker, g.kind, COALESCE(n.units, 0) AS units FROM grids g "
        "LEFT JOIN (SELECT grid_id, count(*) AS units FROM plan_units WHERE plan_id = :p GROUP BY grid_id) n "
        "ON n.grid_id = g.id WHERE g.plan_id = :p "
        "AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(CAST(:codes AS text[]))) ORDER BY g.code"),
        {"p": plan_id, "codes": codes})
    return {r.code: {"households": r.households, "units": r.units, "name": r.name, "worker": r.worker,
                     "kind": r.kind} for r in rows}


# -- two plans compared ---------------------------------------------------------------------------
def unit_moves(conn: sa.Connection, plan_id: int, base_id: int) -> list[dict]:
    """Units whose grid differs between ``base_id`` and ``plan_id`` (None where a unit is absent,
    as for the parent and the pieces of a cut unit). A revision of a unit (the neighbour of a cut,
    with one more vertex) stands for the unit it revises: it is not a move."""
    same = "COALESCE((u.properties->>'revision_of_id')::int, u.id)"
    rows = conn.execute(sa.text(
        f"WITH a AS (SELECT {same} AS unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p), "
        f"b AS (SELECT {same} AS unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :b) "
        "SELECT COALESCE(a.unit_id, b.unit_id) AS unit, b.code AS before, a.code AS after FROM a FULL JOIN b "
        "ON a.unit_id = b.unit_id WHERE a.code IS DISTINCT FROM b.code ORDER BY 1"), {"p": plan_id, "b": base_id})
    return [dict(r._mapping) for r in rows]


def grids_with_change(conn: sa.Connection, plan_id: int, base_id: int, codes: dict[str, str]) -> dict:
    """A FeatureCollection of the changed grids: current shape for added/changed, the old one for removed."""
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id', g.code, 'geometry', ST_AsGeoJSON(g.geom, 7, 0)::json, 'properties', json_build_object("
        "'grid_code', g.code, 'change', c.change, 'households', g.households, 'plan_id', g.plan_id))), '[]'::json)) "
        "FROM jsonb_each_text(CAST(:codes AS jsonb)) c(code, change) JOIN grids g ON g.code = c.code AND "
        "g.plan_id = CASE WHEN c.change = 'removed' THEN :b ELSE :p END"),
        {"p": plan_id, "b": base_id, "codes": to_json(codes)}).scalar_one()


__all__ = ["GRID_ATTRIBUTES", "locked_grids", "units_in_plan", "grid_by_code", "grid_units", "grid_codes", "grid_communities",
           "unit_grids", "create_grid", "move_units", "set_grid_attribute", "lineages", "new_lineage", "drop_empty_grids", "write",
           "GRID_STATS_SQL", "refresh_grids", "grid_stats", "summary", "snapshot", "unit_moves", "grids_with_change"]
