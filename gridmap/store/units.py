"""Units in PostGIS: the generations of units built for communities, and the units an edit makes
in one draft (the pieces of a cut unit, the neighbours revised with the cut's crossing points).

Units are named by their row id here (``unit_row``); their text key is ``unit_key`` (the
``unit_id`` of GeoDataFrames). Units are shared by every plan that uses them and never change in
place. An edit makes new ones (children of the unit they replace) and puts them in that draft
only. A rebuild of a community's units (its inputs changed: ``unit_builds`` records what each
build was made from) retires the old generation (``retired_at``) and stores a new one; plans keep
their retired units, so the published plan and history keep theirs exactly. The current units of
a territory (not retired, not made by an edit) are read through :mod:`gridmap.store.frames`.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.jsonb import to_json
from gridmap.store.sql import INSERT_BATCH, ewkb_hex


DRAFT_MADE = "(u.properties ?| array['cut_from', 'revision_of'])"
"""SQL (on ``u``): a unit an edit made in a draft (a cut piece, or a neighbour revised with the
cut's crossing points), which belongs to that draft and not to the territory's current units."""


class UnitNotInPlan(NotFound):
    """The unit is not one of the plan's."""

    @classmethod
    def of(cls, unit_row: int, plan_id: int) -> "UnitNotInPlan":
        return cls(f"unit {unit_row} is not in plan {plan_id}", f"单元 {unit_row} 不在方案 {plan_id} 中")


# -- generations: what units were built from, retiring the stale ones -----------------------------
def boundary_fingerprints(conn: sa.Connection, community_ids: list[int]) -> dict[int, str]:
    """An MD5 of each community's boundary (normalised: the same shape stored with another ring
    start or orientation has the same fingerprint; any moved, added or removed vertex changes it)."""
    return {int(r[0]): r[1] for r in conn.execute(sa.text(
        "SELECT id, md5(ST_AsEWKB(ST_Normalize(geom))) FROM territories WHERE id = ANY(:ids)"), {"ids": community_ids})}


def current_builds(conn: sa.Connection, community_ids: list[int]) -> dict[int, dict]:
    """What the current units of each community were built from: ``{community id: {"id", "inputs",
    "built_at", "units"}}``; ``id`` None for units stored before builds were recorded, ``mixed``
    True when the current units come from more than one build. Communities without current units
    are absent."""
    found: dict[int, dict] = {}
    for row in conn.execute(sa.text(
            "SELECT u.community_id, u.build_id, b.inputs, b.built_at, count(*) AS n FROM units u "
            "LEFT JOIN unit_builds b ON b.id = u.build_id WHERE u.community_id = ANY(:ids) AND u.retired_at IS NULL "
            f"AND NOT {DRAFT_MADE} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"), {"ids": community_ids}):
        entry = {"id": row.build_id, "inputs": row.inputs or {}, "built_at": row.built_at, "units": int(row.n)}
        if row.community_id in found:
            entry = {**entry, "mixed": True, "units": entry["units"] + found[row.community_id]["units"]}
        found[int(row.community_id)] = entry
    return found


def record_builds(conn: sa.Connection, builds: dict[int, dict], *, territory_id: int | None, actor: str) -> dict[int, int]:
    """Record one build per community (``{community id: {"inputs": ..., "reasons": [...]}}``);
    returns {community id: build id}."""
    ids = {}
    for community_id, build in sorted(builds.items()):
        ids[community_id] = conn.execute(sa.text(
            "INSERT INTO unit_builds (community_id, territory_id, inputs, reasons, built_by) "
            "VALUES (:c, :t, CAST(:i AS jsonb), CAST(:r AS jsonb), :a) RETURNING id"),
            {"c": community_id, "t": territory_id, "i": to_json(build["inputs"], sort_keys=True),
             "r": to_json(build.get("reasons", [])), "a": actor}).scalar_one()
    return ids


def lock_rebuilds(conn: sa.Connection) -> None:
    """Serialise the storing of rebuilt units, until the caller's transaction ends: two rebuilds
    at once would retire each other's new units, or revise a neighbour twice."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('gridmap-unit-rebuild'))"))


def current_near(conn: sa.Connection, community_ids: list[int]) -> pd.DataFrame:
    """The current units of other communities along the borders of these (any territory): those a
    rebuild of them must match vertex for vertex. Columns id, community_id, wkb (bytes)."""
    # each community on its own (near one of them), not their union: the union's box holds the
    # whole district when the communities lie apart (1.2 s for 13 of Reykjavík's; this: 0.06 s)
    return pd.read_sql(sa.text(
        "SELECT u.id, u.community_id, ST_AsBinary(u.geom) AS wkb FROM units u "
        f"WHERE u.retired_at IS NULL AND NOT {DRAFT_MADE} AND NOT (u.community_id = ANY(:ids)) "
        "AND EXISTS (SELECT 1 FROM territories t WHERE t.id = ANY(:ids) AND ST_DWithin(u.geom, t.geom, 1e-6)) "
        "ORDER BY u.id"),
        conn, params={"ids": community_ids}).assign(wkb=lambda f: f["wkb"].map(bytes))


def collect_retired(conn: sa.Connection, community_ids: list[int], *, including_now: bool = False) -> int:
    """Delete the units of these communities retired by an earlier rebuild that no plan uses (the
    generation retired now stays until the next one, so a partition that read it a moment ago
    can still store its plan; ``including_now``: that generation too, when the partition that read
    it is the one rebuilding it at building grain); and the builds no unit refers to any more.
    Returns how many units."""
    deleted = conn.execute(sa.text(
        f"DELETE FROM units u WHERE u.community_id = ANY(:ids) AND u.retired_at {'<=' if including_now else '<'} now() "
        "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.unit_id = u.id) "
        "AND NOT EXISTS (SELECT 1 FROM units c WHERE c.parent_id = u.id)"), {"ids": community_ids}).rowcount
    conn.execute(sa.text(
        "DELETE FROM unit_builds b WHERE b.community_id = ANY(:ids) "
        "AND NOT EXISTS (SELECT 1 FROM units u WHERE u.build_id = b.id)"), {"ids": community_ids})
    return deleted


def retire(conn: sa.Connection, community_ids: list[int]) -> int:
    """Retire the current units of these communities (draft-made pieces and revisions included):
    they keep their rows, so every plan that uses them stays exactly as it is. Returns how many."""
    return conn.execute(sa.text(
        "UPDATE units SET retired_at = now() WHERE community_id = ANY(:ids) AND retired_at IS NULL"),
        {"ids": community_ids}).rowcount


def revise_current(conn: sa.Connection, geometries: dict[int, object]) -> dict[int, int]:
    """Replace current units by copies with more vertices on their edges (``{unit id: shapely
    geometry}``: the same area, with the border points of a rebuilt neighbouring community), so
    units still match edge for edge. A copy keeps the key, households and build, and stands for
    the unit it revises (``revision_of_id``, parent); the old one is retired, and plans that use
    it keep it. A unit no plan uses is changed in place (mapped to itself). Returns {old id: new
    id} (a unit no longer current is left alone)."""
    replaced: dict[int, int] = {}
    for (unit_row, geom), geom_hex in zip(geometries.items(), ewkb_hex(list(geometries.values()))):
        # a unit no plan uses is nobody's history: it takes the new vertices in place
        if conn.execute(sa.text(
                "UPDATE units SET geom = ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex'))) WHERE id = :u "
                "AND retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.unit_id = :u)"),
                {"u": unit_row, "g": geom_hex}).rowcount:
            replaced[unit_row] = unit_row
            continue
        row = conn.execute(sa.text(
            "UPDATE units SET retired_at = now() WHERE id = :u AND retired_at IS NULL RETURNING id, community_id, "
            "unit_key, kind, name, households, population, area_m2, properties, build_id"), {"u": unit_row}).first()
        if row is None:
            continue
        props = {**row.properties, "revision_of_id": row.properties.get("revision_of_id", row.id)}
        replaced[row.id] = conn.execute(sa.text(
            "INSERT INTO units (community_id, unit_key, kind, name, households, population, area_m2, properties, "
            "parent_id, build_id, geom) VALUES (:c, :k, :kind, :name, :h, :pop, :a, CAST(:props AS jsonb), :parent, "
            ":b, ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": row.community_id, "k": row.unit_key, "kind": row.kind, "name": row.name, "h": row.households,
             "pop": row.population, "a": row.area_m2, "props": to_json(props),
             "parent": row.id, "b": row.build_id, "g": geom_hex}).scalar_one()
    return replaced


def add_generation(conn: sa.Connection, units: gpd.GeoDataFrame, community_ids: dict[str, int],
                   build_ids: dict[int, int]) -> int:
    """Store newly built units (the current generation of their communities, whose old units the
    caller retired first), each with its community's build; returns how many."""
    if units.empty:
        return 0
    props = [to_json(row)
             for row in units[[c for c in ("site_type", "compound_id", "compound_part", "buildings", "lone_tower",
                                         "atomic")
                               if c in units]].to_dict(orient="records")]
    population = units["population"] if "population" in units else pd.Series([None] * len(units))
    values = {"c": [community_ids[c] for c in units["community_code"]],
              "b": [build_ids[community_ids[c]] for c in units["community_code"]],
              "k": [str(k) for k in units["unit_id"]], "kind": [str(k) for k in units["kind"]],
              "name": [None if pd.isna(name) else str(name) for name in units["name"]],
              "h": [int(h) for h in units["households"]],
              "p": [None if pop is None or pd.isna(pop) else int(pop) for pop in population],
              "a": [float(a) for a in units["area_m2"]], "props": props, "g": ewkb_hex(units.geometry.values)}
    # a statement per INSERT_BATCH units (row by row: 1.9 s for Reykjavík's 8,301 units; this: 0.2 s)
    for start in range(0, len(units), INSERT_BATCH):
        conn.execute(sa.text(
            "INSERT INTO units (community_id, build_id, unit_key, kind, name, households, population, area_m2, "
            "properties, geom) SELECT c, b, k, kind, name, h, p, a, CAST(props AS jsonb), "
            "ST_Multi(ST_GeomFromEWKB(decode(g, 'hex'))) FROM unnest(CAST(:c AS bigint[]), CAST(:b AS bigint[]), "
            "CAST(:k AS text[]), CAST(:kind AS text[]), CAST(:name AS text[]), CAST(:h AS integer[]), "
            "CAST(:p AS integer[]), CAST(:a AS float8[]), CAST(:props AS text[]), CAST(:g AS text[])) "
            "WITH ORDINALITY AS t(c, b, k, kind, name, h, p, a, props, g, n) ORDER BY n"),
            {name: column[start:start + INSERT_BATCH] for name, column in values.items()})
    return len(units)


# -- a draft's own units, when the draft goes -------------------------------------------------------
def reachable_from_plan(conn: sa.Connection, plan_id: int) -> list[int]:
    """The plan's units and the units they were made from (parents of cut pieces and revisions)."""
    return [int(r[0]) for r in conn.execute(sa.text(
        "WITH RECURSIVE c(id) AS (SELECT unit_id FROM plan_units WHERE plan_id = :p "
        "UNION SELECT u.parent_id FROM units u JOIN c ON u.id = c.id WHERE u.parent_id IS NOT NULL) "
        "SELECT id FROM c"), {"p": plan_id})]


def collect_unused(conn: sa.Connection, unit_ids: list[int]) -> int:
    """Delete those of ``unit_ids`` that only a deleted plan needed: units an edit made (cut
    pieces ``KEY.N``, revisions ``KEY~N``) or of a retired generation, that no plan uses and no
    unit descends from (leaves first: a parent whose children all went may go next). The
    territory's current units stay, whether plans use them or not. Returns how many were deleted."""
    deleted = 0
    while True:
        n = conn.execute(sa.text(
            "DELETE FROM units u WHERE u.id = ANY(:ids) AND (u.parent_id IS NOT NULL OR u.retired_at IS NOT NULL) "
            "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.unit_id = u.id) "
            "AND NOT EXISTS (SELECT 1 FROM units x WHERE x.parent_id = u.id)"), {"ids": unit_ids}).rowcount
        deleted += n
        if not n:
            return deleted


def replace_by_pieces(conn: sa.Connection, plan_id: int, parent_id: int, pieces: list[dict]) -> list[int]:
    """Store the pieces of a cut unit (dicts with ``geom_hex``, ``households``, ``area_m2``) as new
    units (children of ``parent_id``) and put them in the parent's place in this plan only.

    Other plans that use the parent (the published one, history) keep it unchanged."""
    parent = conn.execute(sa.text(
        "SELECT u.id, u.community_id, u.unit_key, u.kind, u.name, u.properties, u.build_id, u.retired_at, pu.grid_id "
        "FROM units u JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p WHERE u.id = :u"),
        {"p": plan_id, "u": parent_id}).first()
    if parent is None:
        raise UnitNotInPlan.of(parent_id, plan_id)
    keys = {r[0] for r in conn.execute(sa.text(
        "SELECT unit_key FROM units WHERE community_id = :c AND unit_key LIKE :k"),
        {"c": parent.community_id, "k": parent.unit_key + ".%"})}
    new_ids = []
    serial = 1
    for piece in pieces:
        while f"{parent.unit_key}.{serial}" in keys:
            serial += 1
        key = f"{parent.unit_key}.{serial}"
        keys.add(key)
        props = {**parent.properties, "cut_from": parent.unit_key}
        new_ids.append(conn.execute(sa.text(
            "INSERT INTO units (community_id, unit_key, kind, name, households, area_m2, properties, parent_id, "
            "build_id, retired_at, geom) VALUES (:c, :k, :kind, :name, :h, :a, CAST(:props AS jsonb), :parent, :b, :r, "
            "ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": parent.community_id, "k": key, "kind": parent.kind, "name": parent.name,
             "b": parent.build_id, "r": parent.retired_at,
             "h": int(piece["households"]), "a": float(piece["area_m2"]), "parent": parent.id,
             "props": to_json(props), "g": piece["geom_hex"]}).scalar_one())
    conn.execute(sa.text("DELETE FROM plan_units WHERE plan_id = :p AND unit_id = :u"), {"p": plan_id, "u": parent.id})
    conn.execute(sa.text("INSERT INTO plan_units (plan_id, unit_id, grid_id) VALUES (:p, :u, :g)"),
                 [{"p": plan_id, "u": u, "g": parent.grid_id} for u in new_ids])
    return new_ids


def revise(conn: sa.Connection, plan_id: int, revisions: dict[int, str]) -> dict[int, int]:
    """Put revised copies of units (``{unit id: EWKB hex}``: the same area with the vertices a
    cut added to a shared edge) in their place in this plan only; returns {old id: new id}.

    A revision is a child of the unit it revises (key ``<key>~N``), with the same households and
    properties, and remembers the unit it stands for (``revision_of_id``), so a diff does not
    count it as a move. Other plans keep the original unchanged."""
    replaced: dict[int, int] = {}
    for unit_row, geom_hex in revisions.items():
        row = conn.execute(sa.text(
            "SELECT u.id, u.community_id, u.unit_key, u.kind, u.name, u.households, u.population, u.area_m2, "
            "u.properties, u.build_id, u.retired_at, pu.grid_id FROM units u "
            "JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p "
            "WHERE u.id = :u"), {"p": plan_id, "u": unit_row}).first()
        if row is None:
            raise UnitNotInPlan.of(unit_row, plan_id)
        base = row.properties.get("revision_of", row.unit_key)
        taken = {r[0] for r in conn.execute(sa.text(
            "SELECT unit_key FROM units WHERE community_id = :c AND unit_key LIKE :k"),
            {"c": row.community_id, "k": base + "~%"})}
        serial = 1
        while f"{base}~{serial}" in taken:
            serial += 1
        props = {**row.properties, "revision_of": base, "revision_of_id": row.properties.get("revision_of_id", row.id)}
        new_id = conn.execute(sa.text(
            "INSERT INTO units (community_id, unit_key, kind, name, households, population, area_m2, properties, "
            "parent_id, build_id, retired_at, geom) VALUES (:c, :k, :kind, :name, :h, :pop, :a, CAST(:props AS jsonb), "
            ":parent, :b, :r, ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": row.community_id, "k": f"{base}~{serial}", "kind": row.kind, "name": row.name, "h": row.households,
             "pop": row.population, "a": row.area_m2, "props": to_json(props),
             "parent": row.id, "b": row.build_id, "r": row.retired_at, "g": geom_hex}).scalar_one()
        conn.execute(sa.text("UPDATE plan_units SET unit_id = :n WHERE plan_id = :p AND unit_id = :u"),
                     {"n": new_id, "p": plan_id, "u": row.id})
        replaced[row.id] = new_id
    return replaced


def neighbours(conn: sa.Connection, plan_id: int, unit_row: int) -> list[sa.Row]:
    """The units of the plan that touch a unit (id, grid id, EWKB hex): those a cut may revise."""
    return conn.execute(sa.text(
        "SELECT n.id, pn.grid_id, encode(ST_AsEWKB(n.geom), 'hex') AS geom_hex FROM units u "
        "JOIN plan_units pn ON pn.plan_id = :p JOIN units n ON n.id = pn.unit_id "
        "WHERE u.id = :u AND n.id <> u.id AND ST_Intersects(n.geom, u.geom) ORDER BY n.id"),
        {"p": plan_id, "u": unit_row}).all()


def for_cut(conn: sa.Connection, plan_id: int, unit_row: int) -> sa.Row:
    """A unit of the plan with its geometry (EWKB hex), households and grid, for cutting."""
    row = conn.execute(sa.text(
        "SELECT u.id, u.households, u.area_m2, encode(ST_AsEWKB(u.geom), 'hex') AS geom_hex, g.id AS grid_id "
        "FROM units u JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p "
        "JOIN grids g ON g.id = pu.grid_id WHERE u.id = :u"), {"p": plan_id, "u": unit_row}).first()
    if row is None:
        raise UnitNotInPlan.of(unit_row, plan_id)
    return row


__all__ = ["DRAFT_MADE", "UnitNotInPlan", "boundary_fingerprints", "current_builds", "record_builds", "lock_rebuilds",
           "current_near", "collect_retired", "retire", "revise_current", "add_generation", "reachable_from_plan", "collect_unused", "replace_by_pieces", "revise", "neighbours",
           "for_cut"]
