"""The grid staff in PostGIS (``staff``, ``staff_assignments``, migration 0014): people, their
assignments to the published plan's grids, and what the staffing checks read."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.microgrids import building_name_sql

EDITABLE = ("name", "phone", "role", "staff_key", "user_id")
STAFF_COLUMNS = "s.id AS staff_id, t.code AS territory, s.staff_key, s.name, s.phone, s.role, s.user_id"


class StaffNotFound(NotFound):
    """No person (or assignment) with that id."""


def insert(conn: sa.Connection, territory_id: int, *, name: str, role: str, phone: str | None = None,
           staff_key: str | None = None, user_id: int | None = None) -> int:
    return conn.execute(sa.text(
        "INSERT INTO staff (territory_id, staff_key, name, phone, role, user_id) VALUES (:t, :k, :n, :p, :r, :u) "
        "RETURNING id"), {"t": territory_id, "k": staff_key, "n": name, "p": phone, "r": role, "u": user_id}).scalar_one()


def candidates(conn: sa.Connection, territory_id: int, *, staff_key: str | None, name: str,
               phone: str | None) -> list[int]:
    """The people a sheet row may name: the one with its 工号 when stored; else those of its name
    (and phone, when it gives one), only those without a 工号 when the row has one (they are the
    same person, listed before their key was)."""
    if staff_key:
        keyed = conn.execute(sa.text("SELECT id FROM staff WHERE territory_id = :t AND staff_key = :k"),
                             {"t": territory_id, "k": staff_key}).scalar()
        if keyed is not None:
            return [keyed]
    return list(conn.execute(sa.text(
        "SELECT id FROM staff WHERE territory_id = :t AND name = :n AND (CAST(:p AS text) IS NULL OR phone = :p) "
        "AND (CAST(:k AS text) IS NULL OR staff_key IS NULL) ORDER BY id"),
        {"t": territory_id, "n": name, "p": phone, "k": staff_key}).scalars())


def microgrid_codes(conn: sa.Connection, plan_id: int) -> set[str]:
    """The codes of a plan's micro-grids."""
    return set(conn.execute(sa.text("SELECT code FROM microgrids WHERE plan_id = :p"), {"p": plan_id}).scalars())


def get(conn: sa.Connection, staff_id: int) -> dict:
    row = conn.execute(sa.text(f"SELECT {STAFF_COLUMNS} FROM staff s JOIN territories t ON t.id = s.territory_id "
                               "WHERE s.id = :i"), {"i": staff_id}).first()
    if row is None:
        raise StaffNotFound(f"no staff member {staff_id}", f"没有编号为 {staff_id} 的人员")
    return dict(row._mapping)


def update(conn: sa.Connection, staff_id: int, changes: dict) -> None:
    sets = [f"{c} = :{c}" for c in EDITABLE if c in changes]
    if sets:
        conn.execute(sa.text(f"UPDATE staff SET {', '.join(sets)}, updated_at = now() WHERE id = :i"),
                     {"i": staff_id, **{c: changes[c] for c in EDITABLE if c in changes}})


def delete(conn: sa.Connection, staff_id: int) -> bool:
    return conn.execute(sa.text("DELETE FROM staff WHERE id = :i"), {"i": staff_id}).rowcount > 0


def published_grids(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    """The grids of a (published) plan: ``grid_id, grid_code, kind, households, community_code,
    lineage``, ``buildings`` (summed over its units) and ``duties`` (the departments' duties the
    merge gave it)."""
    return pd.read_sql_query(sa.text(
        "SELECT g.id AS grid_id, g.code AS grid_code, g.kind, g.households, c.code AS community_code, g.lineage, "
        "COALESCE((SELECT sum((u.properties->>'buildings')::int) FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "WHERE pu.grid_id = g.id), 0)::int AS buildings, "
        "(SELECT count(*) FROM grid_duties d WHERE d.plan_id = g.plan_id AND d.grid_code = g.code)::int AS duties "
        "FROM grids g JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p ORDER BY g.code"),
        conn, params={"p": plan_id})


def matching(conn: sa.Connection, staff_id: int, *, grid_code: str, microgrid_code: str | None,
             valid_from: date | None, today: date, building_id: int | None = None,
             building_label: str | None = None) -> dict | None:
    """The stored assignment a sheet row (or a request) speaks of: the same person, grid,
    micro-grid and building, from the same day; without a day, the latest one not ended before
    ``today``. A building assignment whose building went with a re-imported buildings layer is
    found by its label and pointed at the building again."""
    row = conn.execute(sa.text(
        "SELECT id, valid_from, valid_to, building_id FROM staff_assignments WHERE staff_id = :s AND grid_code = :g AND "
        "microgrid_code IS NOT DISTINCT FROM :m AND (building_id IS NOT DISTINCT FROM CAST(:b AS bigint) OR "
        "(building_id IS NULL AND CAST(:b AS bigint) IS NOT NULL AND building_label = :bl)) AND "
        "(CASE WHEN CAST(:f AS date) IS NULL THEN valid_to IS NULL OR "
        "valid_to >= :today ELSE valid_from = :f END) ORDER BY valid_from DESC, id DESC LIMIT 1"),
        {"s": staff_id, "g": grid_code, "m": microgrid_code, "f": valid_from, "today": today, "b": building_id,
         "bl": building_label}).first()
    if row is None:
        return None
    if building_id is not None and row.building_id is None:
        conn.execute(sa.text("UPDATE staff_assignments SET building_id = :b WHERE id = :i"), {"b": building_id, "i": row.id})
    return {"id": row.id, "valid_from": row.valid_from, "valid_to": row.valid_to}


def assign(conn: sa.Connection, staff_id: int, *, grid_code: str, microgrid_code: str | None, valid_from: date,
           valid_to: date | None, grid_id: int | None, grid_lineage: int | None, building_id: int | None = None,
           building_label: str | None = None) -> tuple[int, bool]:
    """Assign a person to a grid (a micro-grid of it, a building in it); an assignment the same in
    every respect is kept, not made twice. Its id, and whether it is new."""
    same = conn.execute(sa.text(
        "SELECT id FROM staff_assignments WHERE staff_id = :s AND grid_code = :g AND microgrid_code IS NOT DISTINCT "
        "FROM :m AND building_id IS NOT DISTINCT FROM CAST(:b AS bigint) AND valid_from = :f "
        "AND valid_to IS NOT DISTINCT FROM :to"),
        {"s": staff_id, "g": grid_code, "m": microgrid_code, "f": valid_from, "to": valid_to, "b": building_id}).scalar()
    if same is not None:
        return same, False
    return conn.execute(sa.text(
        "INSERT INTO staff_assignments (staff_id, grid_code, microgrid_code, grid_id, grid_lineage, valid_from, "
        "valid_to, building_id, building_label) VALUES (:s, :g, :m, :gid, :lin, :f, :to, :b, :bl) RETURNING id"),
        {"s": staff_id, "g": grid_code, "m": microgrid_code, "gid": grid_id, "lin": grid_lineage, "f": valid_from,
         "to": valid_to, "b": building_id, "bl": building_label}).scalar_one(), True


def assignment(conn: sa.Connection, assignment_id: int) -> dict:
    row = conn.execute(sa.text(
        "SELECT a.id AS assignment_id, a.staff_id, t.code AS territory, a.grid_code, a.microgrid_code, a.building_id, "
        "a.building_label, a.valid_from, a.valid_to FROM staff_assignments a JOIN staff s ON s.id = a.staff_id JOIN territories t ON "
        "t.id = s.territory_id WHERE a.id = :i"), {"i": assignment_id}).first()
    if row is None:
        raise StaffNotFound(f"no staff assignment {assignment_id}", f"没有编号为 {assignment_id} 的人员分配")
    return dict(row._mapping)


def assignments_of(conn: sa.Connection, staff_id: int) -> list[dict]:
    """Every assignment a person has had (what removing them deletes)."""
    rows = conn.execute(sa.text("SELECT id, grid_code, microgrid_code, building_label, valid_from, valid_to FROM "
                                "staff_assignments "
                                "WHERE staff_id = :s ORDER BY id"), {"s": staff_id})
    return [dict(r._mapping) for r in rows]


def end_assignment(conn: sa.Connection, assignment_id: int, valid_to: date) -> None:
    conn.execute(sa.text("UPDATE staff_assignments SET valid_to = :to WHERE id = :i"), {"i": assignment_id, "to": valid_to})


def people(conn: sa.Connection, territory_id: int) -> pd.DataFrame:
    """Every person the territory keeps, with their assignments' grid codes active today."""
    return pd.read_sql_query(sa.text(
        f"SELECT {STAFF_COLUMNS}, COALESCE(array_agg(DISTINCT a.grid_code) FILTER (WHERE a.id IS NOT NULL), "
        "'{}') AS grids FROM staff s JOIN territories t ON t.id = s.territory_id LEFT JOIN staff_assignments a ON "
        "a.staff_id = s.id AND a.valid_from <= current_date AND (a.valid_to IS NULL OR a.valid_to >= current_date) "
        "WHERE s.territory_id = :t GROUP BY s.id, t.code ORDER BY s.id"), conn, params={"t": territory_id})


def active_assignments(conn: sa.Connection, territory_id: int, plan_id: int | None, on: date) -> pd.DataFrame:
    """The assignments of the territory's people active on ``on``: ``assignment_id, staff_id, name,
    phone, role, grid_code, microgrid_code, building_id, building_label, valid_from, valid_to, grid_id``
    and ``grid_changed``
    (the published plan has no grid of that code, or its grid there holds other units than the
    one assigned: another lineage)."""
    return pd.read_sql_query(sa.text(
        "SELECT a.id AS assignment_id, s.id AS staff_id, s.name, s.phone, s.role, a.grid_code, a.microgrid_code, "
        "a.building_id, a.building_label, a.valid_from, a.valid_to, a.grid_id, (g.id IS NULL OR (a.grid_lineage IS NOT NULL AND g.lineage <> "
        "a.grid_lineage)) AS grid_changed FROM staff_assignments a JOIN staff s ON s.id = a.staff_id "
        "LEFT JOIN grids g ON g.plan_id = :p AND g.code = a.grid_code WHERE s.territory_id = :t AND a.valid_from <= :on "
        "AND (a.valid_to IS NULL OR a.valid_to >= :on) ORDER BY s.id, a.grid_code"),
        conn, params={"t": territory_id, "p": plan_id, "on": on})


def named_in_plan(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    """The people a plan names without the staff register: each grid's ``worker`` (professional
    grid worker), each micro-grid's leader, each building's 楼栋长 (once, in the first micro-grid
    holding it: a tower cut into 单元 may lie in several) and each 单元's 单元长:
    ``grid_code, microgrid_code, building_id, building_label, parts, name, phone, kind`` (``grid``,
    ``microgrid``, ``building``, ``unit``)."""
    name = building_name_sql("b")
    # one row a building: by its feature, or (its feature gone with a re-imported layer) by its
    # grid and name, or its own row when it has no name either
    building = f"COALESCE(b.feature_id::text, g.code || '/' || COALESCE({name}, 'row ' || b.id))"
    return pd.read_sql_query(sa.text(
        "SELECT g.code AS grid_code, NULL::text AS microgrid_code, NULL::bigint AS building_id, NULL::text AS "
        "building_label, 1 AS parts, g.worker AS name, NULL::text AS phone, 'grid' AS kind FROM grids g "
        "WHERE g.plan_id = :p AND NULLIF(trim(g.worker), '') IS NOT NULL "
        "UNION ALL SELECT g.code, m.code, NULL, NULL, 1, m.leader_name, m.leader_phone, 'microgrid' FROM microgrids m "
        "JOIN grids g ON g.id = m.grid_id WHERE m.plan_id = :p AND NULLIF(trim(m.leader_name), '') IS NOT NULL "
        f"UNION ALL (SELECT DISTINCT ON ({building}) g.code, m.code, b.feature_id, {name}, 1, b.building_leader_name, "
        "b.building_leader_phone, 'building' FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id "
        "JOIN grids g ON g.id = m.grid_id WHERE m.plan_id = :p AND NULLIF(trim(b.building_leader_name), '') IS NOT NULL "
        f"ORDER BY {building}, m.code) "
        "UNION ALL SELECT g.code, m.code, b.feature_id, b.building_name, b.parts, b.leader_name, b.leader_phone, "
        "'unit' FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id JOIN grids g ON g.id = m.grid_id "
        "WHERE m.plan_id = :p AND b.parts > 1 AND NULLIF(trim(b.leader_name), '') IS NOT NULL "
        "ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST"),
        conn, params={"p": plan_id})


def grids_at(conn: sa.Connection, plan_id: int, points: list[tuple[float, float]]) -> list[str | None]:
    """The code of the grid of plan ``plan_id`` holding each (lon, lat) point, None outside every grid."""
    if not points:
        return []
    rows = conn.execute(sa.text(
        "SELECT p.i, (SELECT g.code FROM grids g WHERE g.plan_id = :p AND g.geom && p.pt AND ST_Covers(g.geom, p.pt) "
        "ORDER BY g.code LIMIT 1) FROM (SELECT i, ST_SetSRID(ST_Point(x, y), 4490) AS pt FROM unnest(CAST(:x AS float8[]), "
        "CAST(:y AS float8[])) WITH ORDINALITY AS u(x, y, i)) p ORDER BY p.i"),
        {"p": plan_id, "x": [float(p[0]) for p in points], "y": [float(p[1]) for p in points]}).all()
    return [code for _, code in rows]


def incidents_per_grid(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    """Per grid of the plan: open incidents and those of them past their due time."""
    return pd.read_sql_query(sa.text(
        "SELECT g.code AS grid_code, count(i.id) AS open, count(i.id) FILTER (WHERE i.due_at < now()) AS overdue "
        "FROM grids g JOIN incidents i ON i.grid_lineage = g.lineage AND i.status NOT IN ('rejected', 'closed') "
        "WHERE g.plan_id = :p GROUP BY g.code"), conn, params={"p": plan_id})


def where_it_went(conn: sa.Connection, grid_id: int, plan_id: int, limit: int = 3) -> list[dict]:
    """The grids of a plan that cover a former grid (by its row), largest share of its area first."""
    rows = conn.execute(sa.text(
        "SELECT n.code, ST_Area(ST_Intersection(n.geom, o.geom)::geography) / NULLIF(ST_Area(o.geom::geography), 0) "
        "AS share FROM grids o JOIN grids n ON n.plan_id = :p AND ST_Intersects(n.geom, o.geom) WHERE o.id = :o "
        "ORDER BY share DESC NULLS LAST, n.code LIMIT :k"), {"o": grid_id, "p": plan_id, "k": limit}).all()
    return [{"grid_code": code, "share": round(float(share or 0), 4)} for code, share in rows if (share or 0) > 0.001]


def assignment_grids(conn: sa.Connection, territory_id: int, plan_id: int, on: date):
    """The territory's assignments active on ``on`` with the geometry of their grid in the plan
    (what the notebook maps): a GeoDataFrame in EPSG:4490."""
    import geopandas as gpd

    return gpd.read_postgis(sa.text(
        "SELECT a.id AS assignment_id, s.id AS staff_id, s.name, s.role, a.grid_code, a.microgrid_code, "
        "a.building_label, a.valid_from, a.valid_to, g.households, g.geom FROM staff_assignments a JOIN staff s ON s.id = a.staff_id LEFT JOIN grids g "
        "ON g.plan_id = :p AND g.code = a.grid_code WHERE s.territory_id = :t AND a.valid_from <= :on AND "
        "(a.valid_to IS NULL OR a.valid_to >= :on) ORDER BY s.id, a.grid_code"),
        conn, geom_col="geom", params={"t": territory_id, "p": plan_id, "on": on}).set_crs(4490, allow_override=True)


__all__ = ["grids_at", "named_in_plan", "StaffNotFound", "EDITABLE", "insert", "candidates", "get", "update", "delete", "published_grids",
           "microgrid_codes", "matching", "assign", "assignment", "assignments_of", "end_assignment", "people",
           "active_assignments", "incidents_per_grid", "where_it_went", "assignment_grids"]
