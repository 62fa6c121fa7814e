"""Units, plans and grids in PostGIS: loading a territory's inputs, storing units and plans."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.territories import TerritoryNotFound, ewkb_hex

SUBTREE_SQL = (
    "WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :code "
    "UNION ALL SELECT c.id FROM territories c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub")
ANCESTORS_CTE = (
    "WITH RECURSIVE up AS (SELECT id, parent_id, 0 AS depth FROM territories WHERE code = :code "
    "UNION ALL SELECT t.id, t.parent_id, up.depth + 1 FROM territories t JOIN up ON t.id = up.parent_id) ")


def communities_of(conn: sa.Connection, code: str) -> gpd.GeoDataFrame:
    """The communities at or below territory ``code`` (code, name, id, geometry)."""
    frame = gpd.read_postgis(sa.text(
        f"SELECT t.id, t.code, t.name, t.geom FROM territories t WHERE t.level = 'community' "
        f"AND t.id IN ({SUBTREE_SQL}) ORDER BY t.code"), conn, geom_col="geom", params={"code": code})
    if frame.empty:
        exists = conn.execute(sa.text("SELECT 1 FROM territories WHERE code = :c"), {"c": code}).first()
        if exists is None:
            raise TerritoryNotFound(f"no territory with code {code!r}")
    return frame.rename_geometry("geometry")


def find_layer(conn: sa.Connection, code: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The nearest layer called one of ``names`` on the territory or one of its ancestors:
    (owner territory code, layer name)."""
    row = conn.execute(sa.text(
        ANCESTORS_CTE + "SELECT t.code, l.name FROM up JOIN territories t ON t.id = up.id "
        "JOIN layers l ON l.territory_id = t.id WHERE l.name = ANY(:names) "
        "ORDER BY up.depth, array_position(CAST(:names AS text[]), CAST(l.name AS text)) LIMIT 1"),
        {"code": code, "names": list(names)}).first()
    return (row[0], row[1]) if row else None


def layer_in_area(conn: sa.Connection, owner: str, name: str, area_wkb_hex: str) -> gpd.GeoDataFrame:
    """Features of a layer that intersect an area (bounding-box prefilter in PostGIS)."""
    raw = gpd.read_postgis(sa.text(
        "SELECT f.properties, f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id "
        "JOIN territories t ON t.id = l.territory_id WHERE t.code = :owner AND l.name = :name "
        "AND f.geom && ST_GeomFromEWKB(decode(:area, 'hex')) ORDER BY f.feature_index"),
        conn, geom_col="geom", params={"owner": owner, "name": name, "area": area_wkb_hex})
    attrs = pd.DataFrame(list(raw["properties"]), index=raw.index)
    return gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(raw["geom"].values, index=raw.index), crs=4490)


def stored_units(conn: sa.Connection, community_ids: list[int]) -> gpd.GeoDataFrame:
    """The current units of communities: leaves only (a unit cut in a draft is replaced by its pieces)."""
    frame = gpd.read_postgis(sa.text(
        "SELECT u.id AS db_id, u.unit_key AS unit_id, t.code AS community_code, u.kind, u.name, "
        "u.households, u.population, u.area_m2, u.properties, u.geom FROM units u "
        "JOIN territories t ON t.id = u.community_id WHERE u.community_id = ANY(:ids) "
        "AND NOT EXISTS (SELECT 1 FROM units c WHERE c.parent_id = u.id) ORDER BY u.unit_key"),
        conn, geom_col="geom", params={"ids": community_ids})
    props = pd.DataFrame(list(frame["properties"]), index=frame.index)
    for column in ("site_type", "compound_id", "compound_part"):
        frame[column] = props[column] if column in props else None
    return frame.drop(columns="properties").rename_geometry("geometry")


def replace_units(conn: sa.Connection, units: gpd.GeoDataFrame, community_ids: dict[str, int]) -> None:
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


def units_in_use(conn: sa.Connection, community_ids: list[int]) -> int:
    """How many plans use units of these communities (units of a plan must not be rebuilt)."""
    return int(conn.execute(sa.text(
        "SELECT count(DISTINCT pu.plan_id) FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "WHERE u.community_id = ANY(:ids)"), {"ids": community_ids}).scalar_one())


def create_plan(conn: sa.Connection, *, territory_id: int, origin: str, author: str, parameters: dict,
                report: dict) -> tuple[int, int]:
    """A new draft plan with the next version number; returns (plan id, version)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": territory_id})  # serialise versions
    version = conn.execute(sa.text("SELECT COALESCE(max(version), 0) + 1 FROM plans WHERE territory_id = :t"),
                           {"t": territory_id}).scalar_one()
    plan_id = conn.execute(sa.text(
        "INSERT INTO plans (territory_id, status, version, origin, author, parameters, report, report_version) "
        "VALUES (:t, 'draft', :v, :o, :a, CAST(:p AS jsonb), CAST(:r AS jsonb), "
        "CASE WHEN CAST(:r AS jsonb) ? 'summary' THEN 1 END) RETURNING id"),
        {"t": territory_id, "v": version, "o": origin, "a": author,
         "p": json.dumps(parameters, ensure_ascii=False), "r": json.dumps(report, ensure_ascii=False, default=str)},
    ).scalar_one()
    return plan_id, version


def write_grids(conn: sa.Connection, plan_id: int, grids: gpd.GeoDataFrame, units: pd.DataFrame,
                community_ids: dict[str, int]) -> None:
    """Insert a plan's grids and its unit → grid assignment (units carry db_id and grid_code)."""
    grid_ids: dict[str, int] = {}
    for row, geom in zip(grids.itertuples(index=False), ewkb_hex(grids.geometry.values)):
        grid_ids[row.grid_code] = conn.execute(sa.text(
            "INSERT INTO grids (plan_id, code, community_id, kind, households, population, area_m2, properties, geom) "
            "VALUES (:p, :c, :cid, :k, :h, :pop, :a, CAST(:props AS jsonb), ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) "
            "RETURNING id"),
            {"p": plan_id, "c": row.grid_code, "cid": community_ids[row.community_code], "k": row.kind,
             "h": int(row.households), "pop": int(row.population) if "population" in grids and not pd.isna(row.population) else None,
             "a": float(row.area_m2),
             "props": json.dumps({"compactness": round(float(row.compactness), 4), "unit_count": int(row.unit_count),
                                  **({"parts": int(row.parts)} if "parts" in grids else {})}),
             "g": geom}).scalar_one()
    conn.execute(sa.text("INSERT INTO plan_units (plan_id, unit_id, grid_id) VALUES (:p, :u, :g)"),
                 [{"p": plan_id, "u": int(u), "g": grid_ids[g]} for u, g in zip(units["db_id"], units["grid_code"])])


def plan_count(conn: sa.Connection, code: str) -> int | None:
    """How many plans a territory has (None when there is no such territory)."""
    row = conn.execute(sa.text(
        "SELECT (SELECT count(*) FROM plans p WHERE p.territory_id = t.id) FROM territories t WHERE t.code = :c"),
        {"c": code}).first()
    return None if row is None else int(row[0])


def list_plans(conn: sa.Connection, territory_code: str) -> list[dict]:
    rows = conn.execute(sa.text(
        "SELECT p.id, p.version, p.status, p.origin, p.author, p.created_at, p.published_at, "
        "(SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS grids, "
        "CASE WHEN p.report_version = p.lock_version THEN p.report->'summary' END AS summary "
        "FROM plans p JOIN territories t ON t.id = p.territory_id WHERE t.code = :c ORDER BY p.version"),
        {"c": territory_code})
    return [dict(r._mapping) for r in rows]


def get_plan(conn: sa.Connection, plan_id: int) -> dict | None:
    row = conn.execute(sa.text(
        "SELECT p.id, t.code AS territory, p.version, p.status, p.origin, p.author, p.parameters, p.report, "
        "p.created_at, p.published_at FROM plans p JOIN territories t ON t.id = p.territory_id WHERE p.id = :id"),
        {"id": plan_id}).first()
    return dict(row._mapping) if row else None


def grids_feature_collection(conn: sa.Connection, plan_id: int, codes: list[str] | None = None) -> dict:
    """A plan's grids (all, or those with ``codes``) as an RFC 7946 FeatureCollection; ``label`` is
    a point inside each grid for its map label."""
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',g.code,'geometry',ST_AsGeoJSON(g.geom, 7, 0)::json,"
        "'properties', json_build_object('grid_code',g.code,'community_code',c.code,'community',c.name,"
        "'kind',g.kind,'households',g.households,'population',g.population,'area_m2',round(g.area_m2::numeric,1),"
        "'compactness',(g.properties->>'compactness')::float,'unit_count',(g.properties->>'unit_count')::int,"
        "'parts',COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)),'name',g.name,'worker',g.worker,"
        "'label',ST_AsGeoJSON(ST_PointOnSurface(g.geom), 7)::json)) "
        "ORDER BY g.code), '[]'::json)) FROM grids g JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p "
        "AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(CAST(:codes AS text[])))"),
        {"p": plan_id, "codes": codes}).scalar_one()


def plan_grids(conn: sa.Connection, plan_id: int) -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(sa.text(
        "SELECT g.code AS grid_code, c.code AS community_code, g.kind, g.households, g.population, g.area_m2, "
        "(g.properties->>'compactness')::float AS compactness, (g.properties->>'unit_count')::int AS unit_count, g.geom "
        "FROM grids g JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p ORDER BY g.code"),
        conn, geom_col="geom", params={"p": plan_id})
    return frame.rename_geometry("geometry")


def report_inputs(conn: sa.Connection, plan_id: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    """What a plan's report is computed from: its units (``unit_id`` = the unit key, kind, site
    type, households, community, grid, geometry), its grids (kind, households, compactness,
    parts) and the plan row (lock_version, report_version, parameters, the stored report)."""
    units = gpd.read_postgis(sa.text(
        "SELECT u.unit_key AS unit_id, u.id AS db_id, c.code AS community_code, u.kind, "
        "u.properties->>'site_type' AS site_type, u.households, g.code AS grid_code, u.geom FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id "
        "WHERE pu.plan_id = :p ORDER BY c.code, u.unit_key"), conn, geom_col="geom", params={"p": plan_id})
    grids = pd.read_sql(sa.text(
        "SELECT g.code AS grid_code, c.code AS community_code, g.kind, g.households, "
        "COALESCE((g.properties->>'compactness')::float, 0) AS compactness, "
        "COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)) AS parts FROM grids g "
        "JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p ORDER BY g.code"), conn, params={"p": plan_id})
    plan = conn.execute(sa.text("SELECT lock_version, report_version, parameters, report FROM plans WHERE id = :p"),
                        {"p": plan_id}).one()._asdict()
    return units.rename_geometry("geometry"), grids, plan


def store_report(conn: sa.Connection, plan_id: int, report: dict, version: int) -> bool:
    """Keep a plan's report, computed at edit version ``version``; nothing is stored (False) when
    the plan was edited meanwhile (the next reader computes it again)."""
    return conn.execute(sa.text(
        "UPDATE plans SET report = CAST(:r AS jsonb), report_version = :v WHERE id = :p AND lock_version = :v"),
        {"p": plan_id, "v": version, "r": json.dumps(report, ensure_ascii=False, default=str)}).rowcount == 1


__all__ = ["communities_of", "find_layer", "layer_in_area", "stored_units", "replace_units", "units_in_use",
           "create_plan", "write_grids", "plan_count", "list_plans", "get_plan", "grids_feature_collection", "plan_grids",
           "report_inputs", "store_report"]
