"""The three lists in PostGIS (``needs``, ``resources``, ``projects`` and their links, migration
0016): writing them, reading them with their community and published grid, the resources near a
need, and the counts per grid."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.sql import read_geoframe, with_ancestors, with_subtree


class ListItemNotFound(NotFound):
    """No need, resource or project with that id."""


POINT = "CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END"
COMMUNITY_AT = ("(SELECT c.id FROM territories c WHERE c.level = 'community' AND ST_Covers(c.geom, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) ORDER BY c.id LIMIT 1)")


def community_id(conn: sa.Connection, code: str | None, lon: float | None, lat: float | None) -> int | None:
    """The community of a place: the one holding the point, else the one of ``code``."""
    if lon is not None:
        found = conn.execute(sa.text(f"SELECT {COMMUNITY_AT}"), {"lon": lon, "lat": lat}).scalar()
        if found is not None:
            return int(found)
    if code:
        found = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c AND level = 'community'"),
                             {"c": code}).scalar()
        return None if found is None else int(found)
    return None


def within(conn: sa.Connection, territory: str, community: int | None, lon: float | None, lat: float | None) -> bool:
    """Whether a place lies in ``territory``: its point (when it has one) inside the territory's
    outline, and its community (when known) one of the territory's."""
    return bool(conn.execute(sa.text(
        with_subtree() + "SELECT (CAST(:c AS int) IS NULL OR :c IN (SELECT id FROM sub)) AND (CAST(:lon AS float8) IS NULL "
        "OR ST_Covers((SELECT geom FROM territories WHERE code = :territory), ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)))"),
        {"territory": territory, "c": community, "lon": lon, "lat": lat}).scalar())


def insert_need(conn: sa.Connection, territory_id: int, need: dict, *, actor: str) -> int:
    return int(conn.execute(sa.text(
        "INSERT INTO needs (territory_id, community_id, category, description, urgency, source, reported_by, address, "
        f"geom, created_by) VALUES (:t, :c, :category, :description, :urgency, :source, :reported_by, :address, {POINT}, "
        ":actor) RETURNING id"),
        {"t": territory_id, "c": need.get("community_id"), "category": need["category"], "description": need["description"],
         "urgency": need.get("urgency") or "normal", "source": need.get("source"), "reported_by": need.get("reported_by"),
         "address": need.get("address"), "lon": need.get("lon"), "lat": need.get("lat"), "actor": actor}).scalar_one())


def upsert_resource(conn: sa.Connection, territory_id: int, resource: dict, *, actor: str) -> tuple[int, bool]:
    """A resource made, or brought up to date by its name in the territory (one taken off the list
    stays off; a blank contact keeps the stored one): (id, whether new)."""
    row = conn.execute(sa.text(
        "INSERT INTO resources (territory_id, community_id, name, kind, categories, description, capacity, hours, contact, "
        f"address, geom, created_by) VALUES (:t, :c, :name, :kind, CAST(:categories AS text[]), :description, :capacity, "
        f":hours, :contact, :address, {POINT}, :actor) ON CONFLICT (territory_id, name) DO UPDATE SET "
        "community_id = EXCLUDED.community_id, kind = EXCLUDED.kind, categories = EXCLUDED.categories, "
        "description = EXCLUDED.description, capacity = EXCLUDED.capacity, hours = EXCLUDED.hours, "
        "contact = COALESCE(EXCLUDED.contact, resources.contact), address = EXCLUDED.address, geom = EXCLUDED.geom, "
        "updated_at = now() RETURNING id, (xmax = 0) AS inserted"),
        {"t": territory_id, "c": resource.get("community_id"), "name": resource["name"], "kind": resource["kind"],
         "categories": list(resource["categories"]), "description": resource.get("description"),
         "capacity": resource.get("capacity"), "hours": resource.get("hours"), "contact": resource.get("contact"),
         "address": resource.get("address"), "lon": resource.get("lon"), "lat": resource.get("lat"), "actor": actor}).one()
    return int(row.id), bool(row.inserted)


ITEM_TABLES = {"need": "needs", "resource": "resources", "project": "projects"}


def territory_of(conn: sa.Connection, kind: str, item_id: int) -> str:
    """Where a need, resource or project belongs, for the role checks: a need's or resource's
    community when it has one (so a street's or community's roles reach what the district
    entered there), else the territory it was entered under."""
    community = "LEFT JOIN territories c ON c.id = x.community_id " if kind != "project" else ""
    code = conn.execute(sa.text(
        f"SELECT {'COALESCE(c.code, t.code)' if community else 't.code'} FROM {ITEM_TABLES[kind]} x "
        f"JOIN territories t ON t.id = x.territory_id {community}WHERE x.id = :i"), {"i": item_id}).scalar()
    if code is None:
        zh = {"need": "需求", "resource": "资源", "project": "项目"}[kind]
        raise ListItemNotFound(f"no {kind} {item_id}", f"没有编号为 {item_id} 的{zh}")
    return code


def _grid_join(alias: str) -> str:
    return (f"LEFT JOIN LATERAL (SELECT g.code FROM grids g WHERE g.plan_id = :p AND {alias}.geom IS NOT NULL "
            f"AND g.geom && {alias}.geom AND ST_Covers(g.geom, {alias}.geom) ORDER BY g.code LIMIT 1) g ON true ")


def needs(conn: sa.Connection, territory: str, plan_id: int | None, *, need_id: int | None = None,
          status: list[str] | None = None, grid: str | None = None, personal: bool = False) -> gpd.GeoDataFrame:
    """Needs of ``territory``: entered there or below, or in one of its communities (or one need),
    with community and published grid; ``reported_by`` only when ``personal``."""
    return read_geoframe(conn, sa.text(
        with_subtree() + "SELECT n.id AS need_id, n.category, n.description, n.urgency, n.status, n.source, "
        f"{'n.reported_by' if personal else 'NULL::text AS reported_by'}, "
        "n.address, n.status_note, n.project_id, n.incident_public_id, c.code AS community_code, c.name AS community_name, "
        "g.code AS grid_code, n.created_by, n.created_at, n.updated_at, n.geom FROM needs n "
        "LEFT JOIN territories c ON c.id = n.community_id " + _grid_join("n") +
        "WHERE (n.territory_id IN (SELECT id FROM sub) OR n.community_id IN (SELECT id FROM sub)) "
        "AND (CAST(:i AS int) IS NULL OR n.id = :i) "
        "AND (CAST(:s AS text[]) IS NULL OR n.status = ANY(CAST(:s AS text[]))) "
        "AND (CAST(:grid AS text) IS NULL OR g.code = :grid) ORDER BY n.id"),
        {"territory": territory, "p": plan_id, "i": need_id, "s": status, "grid": grid})


def resources(conn: sa.Connection, territory: str, plan_id: int | None, *, resource_id: int | None = None,
              personal: bool = False) -> gpd.GeoDataFrame:
    """Resources entered in ``territory`` or below (or one), with community and published grid;
    the contact only when ``personal``."""
    contact = "r.contact" if personal else "NULL::text AS contact"
    return read_geoframe(conn, sa.text(
        with_subtree() + "SELECT r.id AS resource_id, r.name, r.kind, r.categories, r.description, r.capacity, r.hours, "
        f"{contact}, r.address, r.active, c.code AS community_code, c.name AS community_name, g.code AS grid_code, "
        "r.geom FROM resources r LEFT JOIN territories c ON c.id = r.community_id " + _grid_join("r") +
        "WHERE (r.territory_id IN (SELECT id FROM sub) OR r.community_id IN (SELECT id FROM sub)) "
        "AND (CAST(:i AS int) IS NULL OR r.id = :i) ORDER BY r.id"),
        {"territory": territory, "p": plan_id, "i": resource_id})


def candidates(conn: sa.Connection, need_id: int, radius_m: float) -> pd.DataFrame:
    """The resources of the need's territory tree (entered under the territory the need was
    entered under, one of its ancestors or one of its descendants) serving its category, with their distance to it in metres (NaN
    where either has no point) and whether they are in its community: what :func:`gridmap.lists.rank_matches`
    ranks. Those farther than ``radius_m`` and in another community are left out here already."""
    return pd.read_sql_query(sa.text(
        "WITH RECURSIVE n AS (SELECT * FROM needs WHERE id = :n), "
        "up AS (SELECT t.id, t.parent_id FROM territories t JOIN n ON t.id = n.territory_id "
        "UNION ALL SELECT t.id, t.parent_id FROM territories t JOIN up ON t.id = up.parent_id), "
        "down AS (SELECT t.id FROM territories t JOIN n ON t.id = n.territory_id "
        "UNION ALL SELECT t.id FROM territories t JOIN down ON t.parent_id = down.id), "
        "tree AS (SELECT id FROM up UNION SELECT id FROM down) "
        "SELECT r.id AS resource_id, r.name, r.kind, r.categories, r.capacity, r.hours, r.active, r.community_id, "
        "c.code AS community_code, CASE WHEN r.geom IS NULL OR n.geom IS NULL THEN NULL "
        "ELSE ST_Distance(r.geom::geography, n.geom::geography) END AS distance_m, "
        "ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat FROM n JOIN resources r ON n.category = ANY(r.categories) "
        "LEFT JOIN territories c ON c.id = r.community_id "
        "WHERE (r.community_id = n.community_id OR (r.geom IS NOT NULL AND n.geom IS NOT NULL "
        "AND ST_DWithin(r.geom::geography, n.geom::geography, :radius))) AND r.territory_id IN (SELECT id FROM tree)"),
        conn, params={"n": need_id, "radius": radius_m})


def set_need(conn: sa.Connection, need_id: int, changes: dict) -> dict:
    """Change a need's columns (status, status_note, project_id, incident_public_id, urgency,
    description, category); returns the row before."""
    before = conn.execute(sa.text("SELECT status, status_note, project_id, incident_public_id, urgency, description, "
                                  "category FROM needs WHERE id = :i FOR UPDATE"), {"i": need_id}).mappings().first()
    if before is None:
        raise ListItemNotFound(f"no need {need_id}", f"没有编号为 {need_id} 的需求")
    allowed = ("status", "status_note", "project_id", "incident_public_id", "urgency", "description", "category")
    sets = [f"{c} = :{c}" for c in allowed if c in changes]
    if sets:
        conn.execute(sa.text(f"UPDATE needs SET {', '.join(sets)}, updated_at = now() WHERE id = :i"),
                     {"i": need_id, **{c: changes[c] for c in allowed if c in changes}})
    return dict(before)


def set_resource_active(conn: sa.Connection, resource_id: int, active: bool) -> bool:
    """Set whether a resource is offered; returns whether it was before."""
    was = conn.execute(sa.text("SELECT active FROM resources WHERE id = :i FOR UPDATE"), {"i": resource_id}).scalar()
    if was is None:
        raise ListItemNotFound(f"no resource {resource_id}", f"没有编号为 {resource_id} 的资源")
    conn.execute(sa.text("UPDATE resources SET active = :a, updated_at = now() WHERE id = :i"), {"i": resource_id, "a": active})
    return bool(was)


def insert_project(conn: sa.Connection, territory_id: int, project: dict, *, actor: str) -> int:
    return int(conn.execute(sa.text(
        "INSERT INTO projects (territory_id, name, owner, budget, start_date, end_date, created_by) "
        "VALUES (:t, :name, :owner, :budget, :start, :end, :actor) RETURNING id"),
        {"t": territory_id, "name": project["name"], "owner": project.get("owner"), "budget": project.get("budget"),
         "start": project.get("start_date"), "end": project.get("end_date"), "actor": actor}).scalar_one())


def link_project(conn: sa.Connection, project_id: int, need_ids: list[int], resource_ids: list[int]) -> None:
    if need_ids:
        conn.execute(sa.text("INSERT INTO project_needs (project_id, need_id) SELECT :p, unnest(CAST(:n AS int[])) "
                             "ON CONFLICT DO NOTHING"), {"p": project_id, "n": need_ids})
    if resource_ids:
        conn.execute(sa.text("INSERT INTO project_resources (project_id, resource_id) SELECT :p, unnest(CAST(:r AS int[])) "
                             "ON CONFLICT DO NOTHING"), {"p": project_id, "r": resource_ids})


def items_in(conn: sa.Connection, kind: str, ids: list[int], territory: str) -> set[int]:
    """Those of ``ids`` (needs, resources or projects) of ``territory``: entered there or below, or
    (needs and resources) in one of its communities."""
    community = " OR community_id IN (SELECT id FROM sub)" if kind != "project" else ""
    return set(conn.execute(sa.text(with_subtree() + f"SELECT id FROM {ITEM_TABLES[kind]} WHERE id = ANY(:i) "
                                    f"AND (territory_id IN (SELECT id FROM sub){community})"),
                            {"territory": territory, "i": ids}).scalars())


def items_above(conn: sa.Connection, kind: str, ids: list[int], territory: str) -> set[int]:
    """Those of ``ids`` (needs, resources or projects) entered on ``territory`` or one of its
    ancestors (a district's project that a community's people serve in)."""
    return set(conn.execute(sa.text(with_ancestors() + f"SELECT id FROM {ITEM_TABLES[kind]} WHERE id = ANY(:i) "
                                    "AND territory_id IN (SELECT id FROM up)"), {"territory": territory, "i": ids}).scalars())


def set_project(conn: sa.Connection, project_id: int, changes: dict) -> dict:
    before = conn.execute(sa.text("SELECT status, outcome, owner, budget, start_date, end_date FROM projects "
                                  "WHERE id = :i FOR UPDATE"), {"i": project_id}).mappings().first()
    if before is None:
        raise ListItemNotFound(f"no project {project_id}", f"没有编号为 {project_id} 的项目")
    allowed = ("status", "outcome", "owner", "budget", "start_date", "end_date")
    sets = [f"{c} = :{c}" for c in allowed if c in changes]
    if sets:
        conn.execute(sa.text(f"UPDATE projects SET {', '.join(sets)}, updated_at = now() WHERE id = :i"),
                     {"i": project_id, **{c: changes[c] for c in allowed if c in changes}})
    return dict(before)


def release_needs(conn: sa.Connection, project_id: int, status: str) -> int:
    """A finished or cancelled project's needs that are still in it move on: ``met``, or ``open``
    again (and out of it); needs moved on since are left as they are."""
    return conn.execute(sa.text(
        "UPDATE needs SET status = :s, project_id = CASE WHEN :s = 'open' THEN NULL ELSE project_id END, "
        "updated_at = now() WHERE project_id = :p AND status = 'in_project'"), {"p": project_id, "s": status}).rowcount


def projects(conn: sa.Connection, territory: str, *, project_id: int | None = None) -> pd.DataFrame:
    """Projects entered in ``territory`` or below (or one), with their needs and resources' ids."""
    return pd.read_sql_query(sa.text(
        with_subtree() + "SELECT p.id AS project_id, p.name, p.owner, p.budget::float8 AS budget, p.start_date, "
        "p.end_date, p.status, p.outcome, p.created_at, "
        "COALESCE((SELECT array_agg(need_id ORDER BY need_id) FROM project_needs WHERE project_id = p.id), '{}') AS need_ids, "
        "COALESCE((SELECT array_agg(resource_id ORDER BY resource_id) FROM project_resources WHERE project_id = p.id), "
        "'{}') AS resource_ids FROM projects p WHERE p.territory_id IN (SELECT id FROM sub) "
        "AND (CAST(:i AS int) IS NULL OR p.id = :i) ORDER BY p.id"), conn, params={"territory": territory, "i": project_id})


def need_statuses(conn: sa.Connection, territory: str) -> dict[str, int]:
    """How many needs of the territory (or below) are in each status."""
    rows = conn.execute(sa.text(with_subtree() + "SELECT status, count(*) FROM needs WHERE territory_id IN "
                                "(SELECT id FROM sub) OR community_id IN (SELECT id FROM sub) GROUP BY status"),
                        {"territory": territory})
    return {r[0]: int(r[1]) for r in rows}


def need_place(conn: sa.Connection, need_id: int) -> tuple[float, float] | None:
    """A need's point (lon, lat), or None when only its community is known."""
    row = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM needs WHERE id = :i AND geom IS NOT NULL"),
                       {"i": need_id}).first()
    return (float(row[0]), float(row[1])) if row else None


def totals(conn: sa.Connection, territory: str) -> dict:
    """The territory's open needs (open or matched), urgent ones among them and active resources,
    those without a point (only their community known) included, and its projects by status
    (each once, however many grids it touches)."""
    row = conn.execute(sa.text(
        with_subtree() + ", n AS (SELECT status, urgency FROM needs WHERE territory_id IN (SELECT id FROM sub) "
        "OR community_id IN (SELECT id FROM sub)) SELECT (SELECT count(*) FROM n WHERE status IN ('open', 'matched')), "
        "(SELECT count(*) FROM n WHERE status IN ('open', 'matched') AND urgency IN ('high', 'urgent')), "
        "(SELECT count(*) FROM resources WHERE (territory_id IN (SELECT id FROM sub) OR community_id IN "
        "(SELECT id FROM sub)) AND active), (SELECT COALESCE(jsonb_object_agg(status, n), '{}') FROM (SELECT status, "
        "count(*) AS n FROM projects WHERE territory_id IN (SELECT id FROM sub) GROUP BY status) p)"),
        {"territory": territory}).one()
    return {"open_needs": int(row[0]), "urgent_needs": int(row[1]), "resources": int(row[2]),
            "projects": {k: int(v) for k, v in dict(row[3]).items()}}


def grid_counts(conn: sa.Connection, territory: str, plan_id: int) -> pd.DataFrame:
    """Per grid of plan ``plan_id`` in the territory: open needs (open or matched), urgent ones,
    active resources, and projects touching the grid by status (a project is in the grids of its
    needs)."""
    return pd.read_sql_query(sa.text(
        with_subtree() + ", gs AS (SELECT g.code, g.geom FROM grids g WHERE g.plan_id = :p "
        "AND g.community_id IN (SELECT id FROM sub)) "
        "SELECT gs.code AS grid_code, "
        "(SELECT count(*) FROM needs n WHERE n.geom && gs.geom AND ST_Covers(gs.geom, n.geom) "
        "AND n.status IN ('open', 'matched')) AS open_needs, "
        "(SELECT count(*) FROM needs n WHERE n.geom && gs.geom AND ST_Covers(gs.geom, n.geom) "
        "AND n.status IN ('open', 'matched') AND n.urgency IN ('high', 'urgent')) AS urgent_needs, "
        "(SELECT count(*) FROM resources r WHERE r.active AND r.geom && gs.geom AND ST_Covers(gs.geom, r.geom)) AS resources, "
        "(SELECT COALESCE(jsonb_object_agg(st, k), '{}') FROM (SELECT p.status AS st, count(DISTINCT p.id) AS k "
        "FROM projects p JOIN project_needs pn ON pn.project_id = p.id JOIN needs n ON n.id = pn.need_id "
        "WHERE n.geom && gs.geom AND ST_Covers(gs.geom, n.geom) GROUP BY p.status) x) AS projects "
        "FROM gs ORDER BY gs.code"), conn, params={"territory": territory, "p": plan_id})


__all__ = ["need_place", "ListItemNotFound", "community_id", "within", "insert_need", "upsert_resource", "territory_of", "needs",
           "resources", "candidates", "set_need", "set_resource_active", "insert_project", "link_project", "items_in", "items_above",
           "set_project", "release_needs", "projects", "need_statuses", "totals", "grid_counts", "ITEM_TABLES"]
