"""A plan's micro-grids (``microgrids``) and their buildings (``microgrid_buildings``): replacing
those of some grids, copying them with a plan, dropping those of grids an edit changed, their
leaders (楼栋长/单元长), and reading them as rows, GeoJSON and GeoDataFrames.

Leaders' phones are personal data: every read here leaves them out unless ``personal=True``,
which only the signed-in routes with a role over the territory (and the command line) ask for.
Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import NamedTuple

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import Invalid, NotFound
from gridmap.geo.microgrids import UNIT_ROW_SUFFIX_RE
from gridmap.store.jsonb import to_json
from gridmap.store.sql import INSERT_BATCH, PLACE_COLUMNS, PLACE_JOINS, ewkb_hex, read_geoframe, with_subtree


class MicrogridNotFound(NotFound):
    """No micro-grid (or building of one) of that code in the plan."""


# -- inputs ---------------------------------------------------------------------------------------
def buildings_in_area(conn: sa.Connection, owner: str, name: str, area) -> gpd.GeoDataFrame:
    """The buildings of layer ``name`` of territory ``owner`` meeting ``area``'s bounding box, with
    their feature row id (``building_id``) and attributes as columns."""
    raw = read_geoframe(conn, sa.text(
        "SELECT f.id AS building_id, f.properties, f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id "
        "JOIN territories t ON t.id = l.territory_id WHERE t.code = :owner AND l.name = :name "
        "AND f.geom && ST_GeomFromEWKB(decode(:area, 'hex')) ORDER BY f.feature_index"),
        {"owner": owner, "name": name, "area": ewkb_hex([area])[0]})
    attrs = pd.DataFrame(list(raw["properties"]), index=raw.index)
    attrs = attrs.drop(columns=[c for c in ("building_id",) if c in attrs])
    attrs.insert(0, "building_id", raw["building_id"].astype("int64"))
    return gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(raw.geometry.values, index=raw.index), crs=4490)


def plan_grid_ids(conn: sa.Connection, plan_id: int, codes: list[str] | None = None) -> dict[str, int]:
    """Grid code → grid row id of a plan's grids (those of ``codes`` when given)."""
    rows = conn.execute(sa.text(
        "SELECT code, id FROM grids WHERE plan_id = :p AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[])))"),
        {"p": plan_id, "codes": codes})
    return {r[0]: int(r[1]) for r in rows}


# -- writing --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leaders:
    """The leaders recorded in some grids' micro-grids, to carry over a re-division: a micro-grid's
    by its cells (the set of (feature id, 单元) it holds: two micro-grids of one tower's 单元 hold
    the same building, never the same 单元; :func:`carried_microgrid_leaders` says where each
    goes), a 单元's (单元长) by (feature id, 单元), a building's (楼栋长) by feature id. Each value is
    (name, phone)."""

    by_microgrid: list[tuple[tuple[tuple[int, int], ...], tuple[str | None, str | None]]] = field(default_factory=list)
    by_unit: dict[tuple[int, int], tuple[str | None, str | None]] = field(default_factory=dict)
    by_building: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)


def leaders_of(conn: sa.Connection, plan_id: int, grid_ids: list[int]) -> Leaders:
    """The leaders recorded in those grids' micro-grids (:class:`Leaders`)."""
    # every micro-grid with a leader, also one whose buildings lost their features (the layer imported
    # again): it has no cells to follow, and is named as not carried over rather than lost unsaid
    micro = conn.execute(sa.text(
        "SELECT m.leader_name, m.leader_phone, array_agg(b.feature_id ORDER BY b.feature_id, b.part) AS features, "
        "array_agg(b.part ORDER BY b.feature_id, b.part) AS parts FROM microgrids m "
        "LEFT JOIN microgrid_buildings b ON b.microgrid_id = m.id WHERE m.plan_id = :p AND m.grid_id = ANY(:g) "
        "AND (m.leader_name IS NOT NULL OR m.leader_phone IS NOT NULL) GROUP BY m.id ORDER BY m.code"),
        {"p": plan_id, "g": grid_ids})
    by_microgrid = [(_cells(r.features, r.parts), (r.leader_name, r.leader_phone)) for r in micro]
    rows = conn.execute(sa.text(
        "SELECT b.feature_id, b.part, b.leader_name, b.leader_phone, b.building_leader_name, b.building_leader_phone "
        "FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id WHERE m.plan_id = :p "
        "AND m.grid_id = ANY(:g) AND b.feature_id IS NOT NULL AND (b.leader_name IS NOT NULL OR "
        "b.leader_phone IS NOT NULL OR b.building_leader_name IS NOT NULL OR b.building_leader_phone IS NOT NULL)"),
        {"p": plan_id, "g": grid_ids}).all()
    by_unit = {(int(r.feature_id), int(r.part)): (r.leader_name, r.leader_phone) for r in rows
               if r.leader_name is not None or r.leader_phone is not None}
    by_building = {int(r.feature_id): (r.building_leader_name, r.building_leader_phone) for r in rows
                   if r.building_leader_name is not None or r.building_leader_phone is not None}
    return Leaders(by_microgrid, by_unit, by_building)


def carried_microgrid_leaders(before: list[tuple[tuple[tuple[int, int], ...], tuple[str | None, str | None]]],
                              after: dict[str, tuple[tuple[int, int], ...]]
                              ) -> tuple[dict[str, tuple[str | None, str | None]], list[str | None]]:
    """Where the micro-grid leaders of a division (``before``: (cells, (name, phone)) per micro-grid;
    a cell is a (building feature, 单元) pair) go in a new one (``after``: micro-grid code → cells):
    each to the new micro-grid that holds most of the cells they had, when it holds at least half
    of them (a leader follows most of their buildings and 单元) and no leader with more of their
    cells there came first. Returns code → leader, and the names (None: a leader recorded with a
    phone only) of the leaders left without one: the caller says they were not carried over. An
    unchanged micro-grid keeps its leader: it holds all their cells."""
    owner = {cell: code for code, cells in after.items() for cell in cells}
    offers = []
    for i, (cells, _leader) in enumerate(before):
        held: dict[str, int] = {}
        for cell in cells:
            if cell in owner:
                held[owner[cell]] = held.get(owner[cell], 0) + 1
        offers += [(-k, len(after[code]) - k, i, code) for code, k in held.items() if 2 * k >= len(cells) > 0]
    leaders = [leader for _cells_of, leader in before]
    placed: dict[str, tuple[str | None, str | None]] = {}
    taken: set[int] = set()
    for _more, _extra, i, code in sorted(offers):  # most cells first, then the closest fit
        if i not in taken and code not in placed:
            placed[code] = leaders[i]
            taken.add(i)
    dropped = [leaders[i][0] for i in range(len(leaders)) if i not in taken]
    return placed, dropped


def leaders_of_microgrids(conn: sa.Connection, plan_id: int, codes: list[str]) -> dict[str, str]:
    """Micro-grid code → its leader's name ("" when only a phone is recorded) for those of ``codes``
    that have a leader recorded (what a move that empties them takes away with them)."""
    rows = conn.execute(sa.text(
        "SELECT code, COALESCE(leader_name, '') FROM microgrids WHERE plan_id = :p AND code = ANY(:c) "
        "AND (leader_name IS NOT NULL OR leader_phone IS NOT NULL)"), {"p": plan_id, "c": list(codes)})
    return {r[0]: r[1] for r in rows}


def _cells(features, parts) -> tuple[tuple[int, int], ...]:
    """A micro-grid's cells as a key: its (feature id, 单元) pairs, sorted, missing features left out."""
    return tuple(sorted((int(f), int(p)) for f, p in zip(features, parts) if f is not None and pd.notna(f)))


def lineages(conn: sa.Connection, plan_id: int) -> dict[int, int]:
    """Grid row id → lineage of the plan's grids that have micro-grids (an edit that changes a
    grid's units gives it a new lineage)."""
    return {int(r[0]): int(r[1]) for r in conn.execute(sa.text(
        "SELECT g.id, g.lineage FROM grids g WHERE g.plan_id = :p AND EXISTS "
        "(SELECT 1 FROM microgrids m WHERE m.grid_id = g.id)"), {"p": plan_id})}


def changed_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int], before: dict[int, int]) -> list[int]:
    """Those of ``grid_ids`` with micro-grids whose lineage is no longer ``before``'s (their units changed)."""
    ids = sorted(set(grid_ids) & set(before))
    if not ids:
        return []
    now = dict(conn.execute(sa.text("SELECT id, lineage FROM grids WHERE id = ANY(:ids)"), {"ids": ids}).all())
    return [g for g in ids if now.get(g) != before[g]]


def delete_for_grids(conn: sa.Connection, plan_id: int, grid_ids: list[int]) -> list[str]:
    """Delete the micro-grids of those grids (their buildings go with them); returns their codes."""
    if not grid_ids:
        return []
    rows = conn.execute(sa.text("DELETE FROM microgrids WHERE plan_id = :p AND grid_id = ANY(:g) RETURNING code"),
                        {"p": plan_id, "g": sorted(grid_ids)})
    return sorted(r[0] for r in rows)


def write(conn: sa.Connection, plan_id: int, grid_ids: dict[str, int], micro: gpd.GeoDataFrame,
          buildings: gpd.GeoDataFrame, leaders: Leaders | None = None) -> Written:
    """Insert micro-grids (:class:`gridmap.geo.microgrids.MicroResult` frames) and their buildings;
    the ``leaders`` of a previous division (:func:`leaders_of`) are carried over: a micro-grid's to
    the one holding most of its cells (:func:`carried_microgrid_leaders`), a 单元's and a
    building's where the same 单元 or building is found again. Returns :class:`Written`.

    A statement per :data:`~gridmap.store.sql.INSERT_BATCH` rows, from arrays: storing 雨城区's
    2,452 micro-grids and 7,924 buildings takes 0.8 s of ``gridmap partition --micro`` (1.8 s row
    by row)."""
    leaders = leaders or Leaders()
    none = (None, None)
    cells = {code: _cells(group["building_id"], group["part"])
             for code, group in buildings.groupby("microgrid_code")} if len(buildings) else {}
    ids: dict[str, int] = {}
    placed, dropped = carried_microgrid_leaders(leaders.by_microgrid, cells)
    if len(micro):
        kept = [placed.get(code, none) for code in micro["microgrid_code"]]
        flagged = [isinstance(flag, str) for flag in micro["flag"]]
        values = {
            "g": [grid_ids[code] for code in micro["grid_code"]], "c": [str(c) for c in micro["microgrid_code"]],
            "h": [int(h) for h in micro["households"]], "n": [int(n) for n in micro["building_count"]],
            "a": [float(a) for a in micro["area_m2"]],
            "f": [flag if ok else None for flag, ok in zip(micro["flag"], flagged)],
            "props": [to_json({"compactness": float(row.compactness), "parts": int(row.parts),
                                  "atom_count": int(row.atom_count),
                                  **({"reason": row.reason, "reason_zh": row.reason_zh} if ok else {})})
                      for row, ok in zip(micro.itertuples(index=False), flagged)],
            "ln": [leader[0] for leader in kept], "lp": [leader[1] for leader in kept],
            "geom": ewkb_hex(micro.geometry.values)}
        for start in range(0, len(micro), INSERT_BATCH):
            rows = conn.execute(sa.text(
                "INSERT INTO microgrids (plan_id, grid_id, code, households, building_count, area_m2, flag, "
                "properties, leader_name, leader_phone, geom) SELECT :p, g, c, h, n, a, f, CAST(props AS jsonb), "
                "ln, lp, ST_Multi(ST_GeomFromEWKB(decode(geom, 'hex'))) FROM unnest(CAST(:g AS bigint[]), "
                "CAST(:c AS text[]), CAST(:h AS integer[]), CAST(:n AS integer[]), CAST(:a AS float8[]), "
                "CAST(:f AS text[]), CAST(:props AS text[]), CAST(:ln AS text[]), CAST(:lp AS text[]), "
                "CAST(:geom AS text[])) WITH ORDINALITY AS t(g, c, h, n, a, f, props, ln, lp, geom, i) ORDER BY i "
                "RETURNING code, id"),
                {"p": plan_id, **{name: column[start:start + INSERT_BATCH] for name, column in values.items()}})
            ids.update({code: int(row_id) for code, row_id in rows})
    if len(buildings):
        feature = [int(f) if pd.notna(f) else None for f in buildings["building_id"]]
        part = [int(p) for p in buildings["part"]]
        parts = [int(p) for p in buildings["parts"]]
        unit = [leaders.by_unit.get((f, p), none) if f is not None and n > 1 else none
                for f, p, n in zip(feature, part, parts)]
        whole = [leaders.by_building.get(f, none) if f is not None else none for f in feature]
        values = {"m": [ids[code] for code in buildings["microgrid_code"]], "f": feature,
                  "n": [str(name) for name in buildings["building_name"]], "part": part, "parts": parts,
                  "h": [int(h) for h in buildings["households"]],
                  "ln": [leader[0] for leader in unit], "lp": [leader[1] for leader in unit],
                  "bn": [leader[0] for leader in whole], "bp": [leader[1] for leader in whole],
                  "geom": ewkb_hex(buildings.geometry.values)}
        for start in range(0, len(buildings), INSERT_BATCH):
            conn.execute(sa.text(
                "INSERT INTO microgrid_buildings (microgrid_id, feature_id, building_name, part, parts, households, "
                "leader_name, leader_phone, building_leader_name, building_leader_phone, geom) "
                "SELECT m, f, n, part, parts, h, ln, lp, bn, bp, "
                "ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromEWKB(decode(geom, 'hex'))), 3)) "
                "FROM unnest(CAST(:m AS bigint[]), CAST(:f AS bigint[]), CAST(:n AS text[]), CAST(:part AS integer[]), "
                "CAST(:parts AS integer[]), CAST(:h AS integer[]), CAST(:ln AS text[]), CAST(:lp AS text[]), "
                "CAST(:bn AS text[]), CAST(:bp AS text[]), CAST(:geom AS text[])) "
                "WITH ORDINALITY AS t(m, f, n, part, parts, h, ln, lp, bn, bp, geom, i) ORDER BY i"),
                {name: column[start:start + INSERT_BATCH] for name, column in values.items()})
    return Written(ids, dropped)


class Written(NamedTuple):
    """What :func:`write` stored: micro-grid code → row id, and the names of the micro-grid leaders
    of the division before that could not be carried over (:func:`carried_microgrid_leaders`)."""

    ids: dict[str, int]
    leaders_dropped: list[str | None]


def copy(conn: sa.Connection, source_id: int, plan_id: int) -> int:
    """Copy plan ``source_id``'s micro-grids (with buildings and leaders) to plan ``plan_id``,
    whose grids have the same codes (a draft copied from it); returns how many."""
    conn.execute(sa.text(
        "INSERT INTO microgrids (plan_id, grid_id, code, households, building_count, area_m2, flag, properties, "
        "leader_name, leader_phone, geom) SELECT :p, ng.id, m.code, m.households, m.building_count, m.area_m2, m.flag, "
        "m.properties || jsonb_build_object('copied_from', m.id), m.leader_name, m.leader_phone, m.geom "
        "FROM microgrids m JOIN grids og ON og.id = m.grid_id JOIN grids ng ON ng.plan_id = :p AND ng.code = og.code "
        "WHERE m.plan_id = :s"), {"p": plan_id, "s": source_id})
    return conn.execute(sa.text(
        "INSERT INTO microgrid_buildings (microgrid_id, feature_id, building_name, part, parts, households, "
        "leader_name, leader_phone, building_leader_name, building_leader_phone, geom) SELECT nm.id, b.feature_id, "
        "b.building_name, b.part, b.parts, b.households, b.leader_name, b.leader_phone, b.building_leader_name, "
        "b.building_leader_phone, b.geom FROM microgrid_buildings b JOIN microgrids om ON om.id = b.microgrid_id "
        "JOIN microgrids nm ON nm.plan_id = :p AND nm.code = om.code WHERE om.plan_id = :s"),
        {"p": plan_id, "s": source_id}).rowcount


def set_leader(conn: sa.Connection, plan_id: int, code: str, *, name: str | None, phone: str | None,
               building: str | None = None, part: int | None = None) -> dict:
    """Record a leader in micro-grid ``code`` (``name``/``phone``: None keeps what is recorded, an
    empty text clears it): the micro-grid's own (微网格负责人, no ``building``); a building's
    楼栋长 (``building``: its feature id or name, as found in this micro-grid), kept on every row of
    that building in the plan (a tower cut into 单元 may lie in several micro-grids: it has one
    楼栋长); or, with ``part``, the 单元长 of that 单元 of a building cut into 单元. Returns what is
    on record now (``role``: ``microgrid``, ``building`` or ``unit``; ``leader_name``, ``has_phone``:
    the number itself is not repeated); :class:`MicrogridNotFound`, and
    :class:`Invalid` for a 单元 of a building this plan keeps whole."""
    micro_id = conn.execute(sa.text("SELECT id FROM microgrids WHERE plan_id = :p AND code = :c"),
                            {"p": plan_id, "c": code}).scalar()
    if micro_id is None:
        raise MicrogridNotFound(f"plan {plan_id} has no micro-grid {code}", f"方案 {plan_id} 没有微网格 {code}")
    given = {"sn": name is not None, "n": name or None, "st": phone is not None, "t": phone or None}
    if building is None:
        now = conn.execute(sa.text(
            f"UPDATE microgrids SET leader_name = {_given_or_kept('leader_name', 'n')}, leader_phone = {_given_or_kept('leader_phone', 't')} "
            "WHERE id = :m RETURNING leader_name, leader_phone IS NOT NULL"), {**given, "m": micro_id}).one()
        return {"microgrid": code, "role": "microgrid", "leader_name": now[0], "has_phone": bool(now[1])}
    key = str(building).strip()
    found = conn.execute(sa.text(
        f"SELECT b.id, b.feature_id, {_BASE_NAME} AS base, b.part, b.parts FROM microgrid_buildings b "
        "WHERE b.microgrid_id = :m AND (b.feature_id::text = :b OR b.building_name = :b "
        f"OR {_BASE_NAME} = :b OR split_part(b.building_name, ' ', 1) = :b) ORDER BY b.part"),
        {"m": micro_id, "b": key}).all()
    if not found or len({(r.feature_id, r.base) for r in found}) > 1:
        what = "no building" if not found else "several buildings called"
        raise MicrogridNotFound(f"micro-grid {code} has {what} {key!r}" + ("" if not found else ": give its id"),
                                f"微网格 {code} 中" + ("没有楼栋" if not found else "有多栋楼名为") + f" {key!r}"
                                + ("" if not found else "：请给出楼栋编号"))
    first = found[0]
    # the building wherever it lies in the plan: by its feature; once the feature is gone (the layer
    # imported again), by its name among the feature-less rows of this grid only (another grid's
    # building of the same name is another building)
    same = ("b.feature_id = :f" if first.feature_id is not None else
            f"b.feature_id IS NULL AND {_BASE_NAME} = :base AND m.grid_id = (SELECT grid_id FROM microgrids WHERE id = :m)")
    scope = ("FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id WHERE m.plan_id = :p AND " + same)
    params = {"p": plan_id, "f": first.feature_id, "base": first.base, "m": micro_id, **given}
    if part is None:
        rows = conn.execute(sa.text(
            f"UPDATE microgrid_buildings t SET building_leader_name = {_given_or_kept('t.building_leader_name', 'n')}, "
            f"building_leader_phone = {_given_or_kept('t.building_leader_phone', 't')} WHERE t.id IN (SELECT b.id {scope}) "
            "RETURNING (SELECT code FROM microgrids WHERE id = t.microgrid_id), t.building_leader_name, "
            "t.building_leader_phone IS NOT NULL"), params).all()
        return {"microgrid": code, "role": "building", "building": first.base, "building_id": first.feature_id,
                "microgrids": sorted({r[0] for r in rows}), "leader_name": rows[0][1], "has_phone": bool(rows[0][2])}
    if first.parts <= 1:
        raise Invalid(f"building {first.base!r} is not cut into stairwells (单元) in this plan: its leader is its "
                      "building leader (leave out the stairwell)",
                      f"楼栋 {first.base!r} 在本方案中未按单元划分：其负责人即楼栋长（不要指定单元）")
    row = next((r for r in found if r.part == part), None)
    if row is None:
        held = [str(r.part) for r in found]
        raise MicrogridNotFound(f"micro-grid {code} holds stairwells {', '.join(held)} of building {first.base!r}, "
                                f"not {part}", f"微网格 {code} 包含楼栋 {first.base!r} 的 {'、'.join(held)} 单元，没有 {part} 单元")
    now = conn.execute(sa.text(
        f"UPDATE microgrid_buildings SET leader_name = {_given_or_kept('leader_name', 'n')}, leader_phone = {_given_or_kept('leader_phone', 't')} "
        "WHERE id = :id RETURNING leader_name, leader_phone IS NOT NULL"), {**given, "id": row.id}).one()
    return {"microgrid": code, "role": "unit", "building": first.base, "building_id": first.feature_id,
            "part": part, "leader_name": now[0], "has_phone": bool(now[1])}


def _given_or_kept(column: str, param: str) -> str:
    """SQL: the new value of ``column``, parameter ``:param``, where ``:s<param>`` says it was given;
    else the value it has (a leader's phone given alone keeps the name)."""
    return f"CASE WHEN :s{param} THEN :{param} ELSE {column} END"


def building_name_sql(alias: str = "b") -> str:
    """SQL: the name of the building a ``microgrid_buildings`` row (``alias``) belongs to: a 单元's
    row (``parts > 1``) without the ' N单元' its name carries
    (:func:`gridmap.geo.microgrids.unit_row_name`), a whole building's row as it is (its own name
    may end so)."""
    return (f"CASE WHEN {alias}.parts > 1 THEN regexp_replace({alias}.building_name, '{UNIT_ROW_SUFFIX_RE}', '') "
            f"ELSE {alias}.building_name END")


_BASE_NAME = building_name_sql("b")


# -- hand edits (buildings painted between micro-grids) --------------------------------------------
def cells_for_move(conn: sa.Connection, plan_id: int, to_code: str, moving: list[int]) -> gpd.GeoDataFrame:
    """The building cells an edit concerns: every cell of the micro-grids of ``to_code``'s grid and
    the cells ``moving`` wherever they are (:data:`gridmap.geo.microgrid_edits.CELL_COLUMNS`)."""
    return read_geoframe(conn, sa.text(
        "SELECT b.id AS cell_id, m.code AS microgrid_code, g.code AS grid_code, "
        # a building whose feature is gone (layer re-imported) is known by its name, without the
        # ' N单元' its 单元 strips carry
        f"COALESCE(b.feature_id::text, {_BASE_NAME}) AS building_key, "
        "b.households, b.geom FROM microgrid_buildings b "
        "JOIN microgrids m ON m.id = b.microgrid_id JOIN grids g ON g.id = m.grid_id WHERE m.plan_id = :p AND "
        "(m.grid_id = (SELECT grid_id FROM microgrids WHERE plan_id = :p AND code = :c) OR b.id = ANY(:ids)) "
        "ORDER BY b.id"), {"p": plan_id, "c": to_code, "ids": [int(i) for i in moving]})


def exists(conn: sa.Connection, plan_id: int, code: str) -> bool:
    """Whether the plan has micro-grid ``code``."""
    return conn.execute(sa.text("SELECT 1 FROM microgrids WHERE plan_id = :p AND code = :c"),
                        {"p": plan_id, "c": code}).first() is not None


def recreate(conn: sa.Connection, plan_id: int, code: str, cells: list[int]) -> str | None:
    """Micro-grid ``code`` made again, empty, in the grid that holds the building cells ``cells``
    (an undo giving back the buildings of a micro-grid the move emptied, which removed it): when
    the plan has no micro-grid ``code`` now, an edit of this plan moved buildings out of it (a
    code that never was is not made), the cells all lie in one grid, and ``code`` is that grid's
    code followed by as many digits (0–9) as its other micro-grids' codes have. Returns the grid's
    code, or None when it cannot be made (the caller refuses)."""
    if exists(conn, plan_id, code) or not re.fullmatch(r"[0-9]+", code):
        return None
    emptied_before = conn.execute(sa.text(
        "SELECT 1 FROM plan_edits e, jsonb_array_elements(e.operations) o WHERE e.plan_id = :p "
        "AND o->>'op' = 'microgrid_assign' AND o->'from' ? :c LIMIT 1"), {"p": plan_id, "c": code}).first()
    if emptied_before is None:
        return None
    grids = conn.execute(sa.text(
        "SELECT DISTINCT m.grid_id, g.code, (SELECT max(length(o.code)) FROM microgrids o WHERE o.grid_id = m.grid_id) "
        "FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id JOIN grids g ON g.id = m.grid_id "
        "WHERE m.plan_id = :p AND b.id = ANY(:ids)"), {"p": plan_id, "ids": [int(i) for i in cells]}).all()
    if len(grids) != 1:
        return None
    grid_id, grid_code, length = grids[0]
    if not (code.startswith(grid_code) and code[len(grid_code):].isdigit() and len(code) == length):
        return None
    conn.execute(sa.text(
        "INSERT INTO microgrids (plan_id, grid_id, code, households, building_count, area_m2, properties, geom) "
        "SELECT :p, :g, :c, 0, 0, 0, '{}'::jsonb, ST_Multi(ST_Union(b.geom)) FROM microgrid_buildings b "
        "WHERE b.id = ANY(:ids)"), {"p": plan_id, "g": grid_id, "c": code, "ids": [int(i) for i in cells]})
    return grid_code


def apply_move(conn: sa.Connection, plan_id: int, moving: list[int], to_code: str, restated: gpd.GeoDataFrame,
               removed: list[str]) -> None:
    """Store a hand edit: the cells ``moving`` join micro-grid ``to_code``; the micro-grids
    ``restated`` (:class:`gridmap.geo.microgrid_edits.Restated`) take their new statistics, flag
    and polygon; those ``removed`` (left without a cell) are deleted."""
    conn.execute(sa.text(
        "UPDATE microgrid_buildings SET microgrid_id = (SELECT id FROM microgrids WHERE plan_id = :p AND code = :c) "
        "WHERE id = ANY(:ids)"), {"p": plan_id, "c": to_code, "ids": [int(i) for i in moving]})
    for row, geom in zip(restated.itertuples(index=False), ewkb_hex(restated.geometry.values)):
        props = {"compactness": float(row.compactness), "parts": int(row.parts), "edited": True,
                 "reason": row.reason if isinstance(row.reason, str) else None,
                 "reason_zh": row.reason_zh if isinstance(row.reason_zh, str) else None}
        conn.execute(sa.text(
            "UPDATE microgrids SET households = :h, building_count = :n, area_m2 = :a, flag = :f, "
            # what the edit measures replaces what was there, a measure it could not make (null) included
            "properties = (properties - 'reason' - 'reason_zh' - 'compactness') || jsonb_strip_nulls(CAST(:props AS jsonb)), "
            "geom = ST_Multi(ST_GeomFromEWKB(decode(:geom, 'hex'))) WHERE plan_id = :p AND code = :c"),
            {"h": int(row.households), "n": int(row.building_count), "a": float(row.area_m2),
             "f": row.flag if isinstance(row.flag, str) else None, "props": to_json(props),
             "geom": geom, "p": plan_id, "c": row.microgrid_code})
    if removed:
        conn.execute(sa.text("DELETE FROM microgrids WHERE plan_id = :p AND code = ANY(:c)"),
                     {"p": plan_id, "c": list(removed)})


def cell_collection(conn: sa.Connection, plan_id: int, grid: str) -> dict:
    """The building cells of one grid's micro-grids as an RFC 7946 FeatureCollection (what the
    planner paints): cell id, micro-grid, building (``building_name`` as stored: a 单元's row with its
    ' N单元'; ``building``: the building's own name, :func:`building_name_sql`), 单元, households.
    No leaders."""
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',b.id,'geometry',ST_AsGeoJSON(b.geom, 7, 0)::json,'properties',json_build_object("
        "'cell_id',b.id,'microgrid_code',m.code,'building_id',b.feature_id,'building_name',b.building_name,"
        f"'building',{_BASE_NAME},'part',b.part,'parts',b.parts,'households',b.households)) ORDER BY b.id), '[]'::json)) "
        "FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id JOIN grids g ON g.id = m.grid_id "
        "WHERE m.plan_id = :p AND g.code = :g"), {"p": plan_id, "g": grid}).scalar_one()


# -- reading --------------------------------------------------------------------------------------
def _leaders(personal: bool, alias: str) -> str:
    return f"{alias}.leader_name, {alias}.leader_phone" if personal else f"{alias}.leader_name, NULL::text AS leader_phone"


def rows(conn: sa.Connection, plan_id: int, *, grid: str | None = None, personal: bool = False) -> list[dict]:
    """A plan's micro-grids (of one grid when given), in code order, without geometry; with how
    many of their buildings have a 楼栋长 (``building_leaders``; a building whose feature is gone,
    the layer imported again, counted by its name) and of their 单元 a 单元长
    (``stairwell_leaders``) recorded (who they are: :func:`buildings`)."""
    result = conn.execute(sa.text(
        f"SELECT m.code AS microgrid_code, g.code AS grid_code, m.households, m.building_count, "
        f"round(m.area_m2::numeric, 1)::float8 AS area_m2, m.flag, m.properties->>'reason' AS reason, "
        f"m.properties->>'reason_zh' AS reason_zh, {_leaders(personal, 'm')}, "
        f"(SELECT count(DISTINCT COALESCE(b.feature_id::text, 'name:' || {_BASE_NAME})) FROM microgrid_buildings b "
        "WHERE b.microgrid_id = m.id AND (b.building_leader_name IS NOT NULL OR b.building_leader_phone IS NOT NULL)) "
        "AS building_leaders, (SELECT count(*) FROM microgrid_buildings b WHERE b.microgrid_id = m.id "
        "AND (b.leader_name IS NOT NULL OR b.leader_phone IS NOT NULL)) AS stairwell_leaders FROM microgrids m "
        "JOIN grids g ON g.id = m.grid_id WHERE m.plan_id = :p AND (CAST(:g AS text) IS NULL OR g.code = :g) "
        "ORDER BY m.code"), {"p": plan_id, "g": grid})
    return [dict(r._mapping) for r in result]


def buildings(conn: sa.Connection, plan_id: int, code: str, *, personal: bool = False) -> list[dict]:
    """The buildings (and 单元) of one micro-grid, each with its 单元长 (``leader_*``, on a 单元's
    row) and its building's 楼栋长 (``building_leader_*``); :class:`MicrogridNotFound`."""
    exists = conn.execute(sa.text("SELECT 1 FROM microgrids WHERE plan_id = :p AND code = :c"),
                          {"p": plan_id, "c": code}).first()
    if exists is None:
        raise MicrogridNotFound(f"plan {plan_id} has no micro-grid {code}", f"方案 {plan_id} 没有微网格 {code}")
    result = conn.execute(sa.text(
        f"SELECT b.feature_id AS building_id, b.building_name, b.part, b.parts, b.households, {_leaders(personal, 'b')}, "
        f"b.building_leader_name, {'b.building_leader_phone' if personal else 'NULL::text AS building_leader_phone'} "
        "FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id WHERE m.plan_id = :p AND m.code = :c "
        "ORDER BY b.building_name, b.part"), {"p": plan_id, "c": code})
    return [dict(r._mapping) for r in result]


def feature_collection(conn: sa.Connection, plan_id: int, *, grid: str | None = None, personal: bool = False) -> dict:
    """A plan's micro-grids as an RFC 7946 FeatureCollection (phones only with ``personal``)."""
    phone = "m.leader_phone" if personal else "NULL"
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',m.code,'geometry',ST_AsGeoJSON(m.geom, 7, 0)::json,'properties',json_build_object("
        "'microgrid_code',m.code,'grid_code',g.code,'community_code',c.code,'households',m.households,"
        "'building_count',m.building_count,'area_m2',round(m.area_m2::numeric,1),'flag',m.flag,"
        "'reason',m.properties->>'reason','reason_zh',m.properties->>'reason_zh','leader_name',m.leader_name,"
        f"'leader_phone',{phone})) ORDER BY m.code), '[]'::json)) FROM microgrids m JOIN grids g ON g.id = m.grid_id "
        "JOIN territories c ON c.id = g.community_id WHERE m.plan_id = :p AND (CAST(:g AS text) IS NULL OR g.code = :g)"),
        {"p": plan_id, "g": grid}).scalar_one()


def frame(conn: sa.Connection, plan_id: int, territory: str | None = None) -> gpd.GeoDataFrame:
    """A plan's micro-grids (inside ``territory`` when given) as a GeoDataFrame with their grid and
    places: what exports and the notebook read. No phones."""
    inside = "AND g.community_id IN (SELECT id FROM sub) " if territory else ""
    return read_geoframe(conn, sa.text(
        (with_subtree() if territory else "") +
        f"SELECT m.code AS microgrid_code, g.code AS grid_code, {PLACE_COLUMNS}, m.area_m2, m.households, "
        "m.building_count, m.flag, m.properties->>'reason_zh' AS reason_zh, m.properties->>'reason' AS reason, "
        "m.leader_name, p.version AS plan_version, p.valid_from, p.valid_to, m.geom FROM microgrids m "
        "JOIN grids g ON g.id = m.grid_id JOIN plans p ON p.id = m.plan_id JOIN territories c ON c.id = g.community_id "
        f"{PLACE_JOINS}WHERE m.plan_id = :plan {inside}ORDER BY m.code"), {"plan": plan_id, "territory": territory})


def count(conn: sa.Connection, plan_id: int) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM microgrids WHERE plan_id = :p"), {"p": plan_id}).scalar_one())


__all__ = ["MicrogridNotFound", "Leaders", "buildings_in_area", "plan_grid_ids", "lineages", "changed_grids", "leaders_of", "delete_for_grids", "write", "copy",
           "set_leader", "building_name_sql", "cells_for_move", "apply_move", "cell_collection", "rows", "buildings", "feature_collection",
           "frame", "count"]
