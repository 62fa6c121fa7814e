"""Territories (city → district → street → community): writing, listing, GeoJSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gridmap.store.models import SRID, TERRITORY_LEVELS


class TerritoryNotFound(LookupError):
    """No territory with that code."""


@dataclass(frozen=True)
class TerritoryRow:
    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    area_m2: float | None
    plans: int = 0


def ewkb_hex(geoms: np.ndarray) -> list[str]:
    """Hex EWKB with the storage SRID, the cheapest way to hand geometry to PostGIS."""
    with_srid = shapely.set_srid(np.asarray(geoms, dtype=object), SRID)
    return list(shapely.to_wkb(with_srid, hex=True, include_srid=True))


def upsert(conn: sa.Connection, frame: gpd.GeoDataFrame, *, level: str, source: str) -> dict[str, int]:
    """Insert or update territories by code; ``frame`` has code, name, parent_code (or None),
    area_m2 and MultiPolygon geometry in EPSG:4490. Parents must exist already. Returns code → id."""
    if level not in TERRITORY_LEVELS:
        raise ValueError(f"level must be one of {TERRITORY_LEVELS}")
    ids: dict[str, int] = {}
    hexes = ewkb_hex(frame.geometry.values)
    for row, geom in zip(frame.itertuples(index=False), hexes):
        parent_code = getattr(row, "parent_code", None)
        parent_code = None if parent_code is None or pd.isna(parent_code) else str(parent_code)
        parent_id = None
        if parent_code:
            parent_id = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": parent_code}).scalar()
            if parent_id is None:
                raise TerritoryNotFound(f"parent territory {parent_code} of {row.code} does not exist")
        props = getattr(row, "properties", None) or {}
        ids[row.code] = conn.execute(sa.text(
            """INSERT INTO territories (code, name, level, parent_id, area_m2, source, properties, geom)
               VALUES (:code, :name, :level, :parent_id, :area, :source, CAST(:props AS jsonb),
                       ST_Multi(ST_GeomFromEWKB(decode(:geom, 'hex'))))
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
                   parent_id = EXCLUDED.parent_id, area_m2 = EXCLUDED.area_m2, source = EXCLUDED.source,
                   properties = territories.properties || EXCLUDED.properties, geom = EXCLUDED.geom,
                   updated_at = now()
               RETURNING id"""),
            {"code": str(row.code), "name": str(row.name), "level": level, "parent_id": parent_id,
             "area": float(row.area_m2), "source": source, "props": json.dumps(props, ensure_ascii=False),
             "geom": geom},
        ).scalar_one()
    return ids


def get(conn: sa.Connection, code: str) -> TerritoryRow:
    row = conn.execute(sa.text(
        "SELECT t.id, t.code, t.name, t.level, p.code AS parent_code, t.area_m2 FROM territories t "
        "LEFT JOIN territories p ON p.id = t.parent_id WHERE t.code = :c"), {"c": code}).first()
    if row is None:
        raise TerritoryNotFound(f"no territory with code {code!r}")
    return TerritoryRow(*row)


def root_codes(conn: sa.Connection) -> list[str]:
    """Codes of the territories at the top of the tree (no parent)."""
    return [r[0] for r in conn.execute(sa.text("SELECT code FROM territories WHERE parent_id IS NULL ORDER BY code"))]


def list_all(conn: sa.Connection) -> list[TerritoryRow]:
    """Every territory, parents before children, ordered by code."""
    rows = conn.execute(sa.text(
        "SELECT t.id, t.code, t.name, t.level, p.code, t.area_m2, "
        "(SELECT count(*) FROM plans pl WHERE pl.territory_id = t.id AND pl.status <> 'history') "
        "FROM territories t LEFT JOIN territories p ON p.id = t.parent_id "
        "ORDER BY array_position(ARRAY['city','district','street','community']::text[], t.level), t.code"))
    return [TerritoryRow(*r) for r in rows]


def feature_collection(conn: sa.Connection, *, level: str | None = None, root: str | None = None,
                       tolerance_deg: float = 0.0) -> dict:
    """Territories as an RFC 7946 FeatureCollection (lon/lat), optionally simplified for display."""
    where = []
    params: dict = {"tol": tolerance_deg}
    if level:
        where.append("t.level = :level")
        params["level"] = level
    if root:
        where.append("t.id IN (WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :root "
                     "UNION ALL SELECT c.id FROM territories c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)")
        params["root"] = root
    sql = (
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',t.code,"
        "'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0 THEN ST_SimplifyPreserveTopology(t.geom, :tol) ELSE t.geom END, 7, 0)::json,"
        "'properties', json_build_object('code',t.code,'name',t.name,'level',t.level,'parent_code',p.code,"
        "'area_m2',round(t.area_m2::numeric,1))) ORDER BY t.code), '[]'::json)) "
        "FROM territories t LEFT JOIN territories p ON p.id = t.parent_id"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    return conn.execute(sa.text(sql), params).scalar_one()
