"""Merge results in PostGIS: departments, their grids, the crosswalk, conflicts and duties."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.jsonb import to_json
from gridmap.store.sql import ewkb_hex, read_geoframe


def store_department_grids(conn: sa.Connection, territory_id: int, grids: gpd.GeoDataFrame) -> None:
    """Replace the territory's departmental grids of every department in ``grids``."""
    for department, layer in grids.groupby("department", sort=False):
        dept_id = conn.execute(sa.text(
            "INSERT INTO departments (code, name) VALUES (:c, :n) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name "
            "RETURNING id"), {"c": str(department)[:32], "n": str(department)}).scalar_one()
        conn.execute(sa.text("DELETE FROM department_grids WHERE department_id = :d AND territory_id = :t"),
                     {"d": dept_id, "t": territory_id})
        conn.execute(sa.text(
            "INSERT INTO department_grids (department_id, territory_id, grid_ref, name, duties, worker, geom) "
            "VALUES (:d, :t, :ref, :name, CAST(:duties AS jsonb), :worker, ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex'))))"),
            [{"d": dept_id, "t": territory_id, "ref": str(r), "name": None if pd.isna(n) else str(n),
              "duties": to_json(list(du)), "worker": None if pd.isna(w) else str(w), "g": g}
             for r, n, du, w, g in zip(layer["grid_id"], layer["name"], layer["duties"], layer["worker"],
                                       ewkb_hex(layer.geometry.values))])


def store_results(conn: sa.Connection, plan_id: int, crosswalk: pd.DataFrame, conflicts: gpd.GeoDataFrame,
                  duties: pd.DataFrame) -> None:
    if len(crosswalk):
        conn.execute(sa.text(
            "INSERT INTO merge_crosswalk (plan_id, department, grid_ref, grid_code, area_share, household_share, "
            "area_m2, households) VALUES (:p, :d, :r, :c, :a, :h, :am, :hh)"),
            [{"p": plan_id, "d": d, "r": str(r), "c": c, "a": float(a), "h": None if pd.isna(h) else float(h),
              "am": float(am), "hh": float(hh)}
             for d, r, c, a, h, am, hh in crosswalk[["department", "grid_id", "grid_code", "area_share",
                                                      "household_share", "area_m2", "households"]].itertuples(index=False)])
    if len(conflicts):
        conn.execute(sa.text(
            "INSERT INTO plan_conflicts (plan_id, department, kind, grids, area_m2, detail, geom) "
            "VALUES (:p, :d, :k, CAST(:g AS jsonb), :a, :detail, ST_GeomFromEWKB(decode(:geom, 'hex')))"),
            [{"p": plan_id, "d": d, "k": k, "g": to_json([str(x) for x in g]), "a": float(a),
              "detail": detail, "geom": geom}
             for d, k, g, a, detail, geom in zip(conflicts["department"], conflicts["kind"], conflicts["grids"],
                                                 conflicts["area_m2"], conflicts["detail"],
                                                 ewkb_hex(conflicts.geometry.values))])
    if len(duties):
        conn.execute(sa.text("INSERT INTO grid_duties (plan_id, grid_code, department, duty) VALUES (:p, :c, :d, :u)"),
                     [{"p": plan_id, "c": c, "d": d, "u": u} for c, d, u in duties[["grid_code", "department", "duty"]]
                      .itertuples(index=False)])


def crosswalk(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    return pd.read_sql(sa.text(
        "SELECT department, grid_ref AS grid_id, grid_code, area_share, household_share, area_m2, households "
        "FROM merge_crosswalk WHERE plan_id = :p ORDER BY department, grid_ref, grid_code"), conn, params={"p": plan_id})


def conflicts(conn: sa.Connection, plan_id: int) -> gpd.GeoDataFrame:
    return read_geoframe(conn, sa.text(
        "SELECT department, kind, grids, area_m2, detail, geom FROM plan_conflicts WHERE plan_id = :p ORDER BY id"),
        {"p": plan_id})


def conflicts_feature_collection(conn: sa.Connection, plan_id: int) -> dict:
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',c.id,'geometry',ST_AsGeoJSON(c.geom, 7, 0)::json,'properties',json_build_object("
        "'department',c.department,'kind',c.kind,'grids',c.grids,'area_m2',round(c.area_m2::numeric,1),"
        "'detail',c.detail)) ORDER BY c.id), '[]'::json)) FROM plan_conflicts c WHERE c.plan_id = :p"),
        {"p": plan_id}).scalar_one()


def duties(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    return pd.read_sql(sa.text("SELECT grid_code, department, duty FROM grid_duties WHERE plan_id = :p "
                               "ORDER BY grid_code, department, duty"), conn, params={"p": plan_id})
