"""Units in PostGIS: storing the units built for communities, and the units an edit makes in one
draft (the pieces of a cut unit, the neighbours revised with the cut's crossing points).

Units are named by their row id here (``unit_row``); their text key is ``unit_key`` (the
``unit_id`` of GeoDataFrames). Units are shared by every plan that uses them; an edit never changes a unit in place, it makes
new ones (children of the unit they replace) and puts them in that draft only, so the published
plan and history keep theirs exactly. The current units of a territory (those without children)
are read through :mod:`gridmap.store.frames`.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.sql import ewkb_hex


class UnitNotInPlan(NotFound):
    """The unit is not one of the plan's."""

    @classmethod
    def of(cls, unit_row: int, plan_id: int) -> "UnitNotInPlan":
        return cls(f"unit {unit_row} is not in plan {plan_id}", f"单元 {unit_row} 不在方案 {plan_id} 中")


def replace_for_communities(conn: sa.Connection, units: gpd.GeoDataFrame, community_ids: dict[str, int]) -> None:
    """Store units for their communities (deleting old ones of those communities first)."""
    conn.execute(sa.text("DELETE FROM units WHERE community_id = ANY(:ids)"),
                 {"ids": [community_ids[c] for c in units["community_code"].unique()]})
    props = [json.dumps({k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v))
                         for k, v in row.items()}, ensure_ascii=False)
             for row in units[["site_type", "compound_id", "compound_part"]].to_dict(orient="records")]
    rows = [{"c": community_ids[c], "k": k, "kind": kind, "name": None if pd.isna(name) else str(name),
             "h": int(h), "p": None if pop is None or pd.isna(pop) else int(pop), "a": float(a), "props": pr, "g": g}
            for c, k, kind, name, h, pop, a, pr, g in zip(
                units["community_code"], units["unit_id"], units["kind"], units["name"], units["households"],
                units["population"] if "population" in units else [None] * len(units), units["area_m2"], props,
                ewkb_hex(units.geometry.values))]
    conn.execute(sa.text(
        "INSERT INTO units (community_id, unit_key, kind, name, households, population, area_m2, properties, geom) "
        "VALUES (:c, :k, :kind, :name, :h, :p, :a, CAST(:props AS jsonb), ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex'))))"),
        rows)


def in_use(conn: sa.Connection, community_ids: list[int]) -> int:
    """How many plans use units of these communities (units of a plan must not be rebuilt)."""
    return int(conn.execute(sa.text(
        "SELECT count(DISTINCT pu.plan_id) FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "WHERE u.community_id = ANY(:ids)"), {"ids": community_ids}).scalar_one())


def replace_by_pieces(conn: sa.Connection, plan_id: int, parent_id: int, pieces: list[dict]) -> list[int]:
    """Store the pieces of a cut unit (dicts with ``geom_hex``, ``households``, ``area_m2``) as new
    units (children of ``parent_id``) and put them in the parent's place in this plan only.

    Other plans that use the parent (the published one, history) keep it unchanged."""
    parent = conn.execute(sa.text(
        "SELECT u.id, u.community_id, u.unit_key, u.kind, u.name, u.properties, pu.grid_id FROM units u "
        "JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p WHERE u.id = :u"),
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
            "INSERT INTO units (community_id, unit_key, kind, name, households, area_m2, properties, parent_id, geom) "
            "VALUES (:c, :k, :kind, :name, :h, :a, CAST(:props AS jsonb), :parent, "
            "ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": parent.community_id, "k": key, "kind": parent.kind, "name": parent.name,
             "h": int(piece["households"]), "a": float(piece["area_m2"]), "parent": parent.id,
             "props": json.dumps(props, ensure_ascii=False), "g": piece["geom_hex"]}).scalar_one())
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
            "u.properties, pu.grid_id FROM units u JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p "
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
            "parent_id, geom) VALUES (:c, :k, :kind, :name, :h, :pop, :a, CAST(:props AS jsonb), :parent, "
            "ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": row.community_id, "k": f"{base}~{serial}", "kind": row.kind, "name": row.name, "h": row.households,
             "pop": row.population, "a": row.area_m2, "props": json.dumps(props, ensure_ascii=False),
             "parent": row.id, "g": geom_hex}).scalar_one()
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


__all__ = ["UnitNotInPlan", "replace_for_communities", "in_use", "replace_by_pieces", "revise", "neighbours",
           "for_cut"]
