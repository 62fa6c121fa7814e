"""Service stations in PostGIS: create, edit, close, list (GeoDataFrame or GeoJSON)."""

from __future__ import annotations

import json

import geopandas as gpd
import sqlalchemy as sa

EDITABLE = ("station_type", "name", "address", "opening_hours", "services")


class StationNotFound(LookupError):
    """No station with that id."""


def insert(conn: sa.Connection, *, territory_id: int, station_type: str, name: str, lon: float, lat: float,
           address: str | None = None, opening_hours: str | None = None, services: list[str] | None = None,
           source_ref: str | None = None) -> int:
    return conn.execute(sa.text(
        "INSERT INTO stations (territory_id, station_type, name, address, opening_hours, services, source_ref, geom) "
        "VALUES (:t, :ty, :n, :a, :o, CAST(:s AS jsonb), :ref, ST_SetSRID(ST_Point(:x, :y), 4490)) RETURNING id"),
        {"t": territory_id, "ty": station_type, "n": name, "a": address, "o": opening_hours,
         "s": json.dumps(services or [], ensure_ascii=False), "ref": source_ref, "x": lon, "y": lat}).scalar_one()


def get(conn: sa.Connection, station_id: int, *, lock: bool = False) -> dict:
    row = conn.execute(sa.text(
        "SELECT s.id, t.code AS territory, s.station_type, s.name, s.address, s.opening_hours, s.services, s.status, "
        "s.source_ref, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, s.created_at, s.closed_at FROM stations s "
        "JOIN territories t ON t.id = s.territory_id WHERE s.id = :i" + (" FOR UPDATE OF s" if lock else "")),
        {"i": station_id}).first()
    if row is None:
        raise StationNotFound(f"no station {station_id}")
    return dict(row._mapping)


def update(conn: sa.Connection, station_id: int, changes: dict) -> None:
    """Change editable fields (and the location, with lon/lat)."""
    sets, params = [], {"i": station_id}
    for column in EDITABLE:
        if column in changes:
            value = changes[column]
            if column == "services":
                sets.append("services = CAST(:services AS jsonb)")
                params["services"] = json.dumps(value or [], ensure_ascii=False)
            else:
                sets.append(f"{column} = :{column}")
                params[column] = value
    if "lon" in changes and "lat" in changes:
        sets.append("geom = ST_SetSRID(ST_Point(:lon, :lat), 4490)")
        params.update(lon=changes["lon"], lat=changes["lat"])
    if sets:
        conn.execute(sa.text(f"UPDATE stations SET {', '.join(sets)} WHERE id = :i"), params)


def close(conn: sa.Connection, station_id: int) -> None:
    conn.execute(sa.text("UPDATE stations SET status = 'closed', closed_at = now() WHERE id = :i"), {"i": station_id})


def frame(conn: sa.Connection, territory: str, *, station_type: str | None = None,
          status: str | None = "open") -> gpd.GeoDataFrame:
    """Stations at or below a territory as a GeoDataFrame (EPSG:4490)."""
    return gpd.read_postgis(sa.text(
        "WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :code UNION ALL "
        "SELECT c.id FROM territories c JOIN sub ON c.parent_id = sub.id) "
        "SELECT s.id, s.station_type, s.name, s.address, s.opening_hours, s.status, s.geom FROM stations s "
        "WHERE s.territory_id IN (SELECT id FROM sub) AND (CAST(:ty AS text) IS NULL OR s.station_type = :ty) "
        "AND (CAST(:st AS text) IS NULL OR s.status = :st) ORDER BY s.id"),
        conn, geom_col="geom", params={"code": territory, "ty": station_type, "st": status}).rename_geometry("geometry")


def delete_from_source(conn: sa.Connection, territory_id: int, prefix: str) -> None:
    conn.execute(sa.text("DELETE FROM stations WHERE territory_id = :t AND source_ref LIKE :p"),
                 {"t": territory_id, "p": prefix + "%"})


def count(conn: sa.Connection, territory_id: int, prefix: str) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM stations WHERE territory_id = :t AND source_ref LIKE :p"),
                        {"t": territory_id, "p": prefix + "%"}).scalar_one()


def territory_id(conn: sa.Connection, code: str) -> int | None:
    return conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": code}).scalar()


def outline_hex(conn: sa.Connection, code: str, *, envelope: bool = False) -> str | None:
    """A territory's boundary (or its bounding box) as hex EWKB, for layer_in_area."""
    shape = "ST_Envelope(geom)" if envelope else "geom"
    return conn.execute(sa.text(f"SELECT encode(ST_AsEWKB({shape}), 'hex') FROM territories WHERE code = :c"),
                        {"c": code}).scalar()


def layers_stamp(conn: sa.Connection, layers: list[tuple[str, str]]) -> str:
    """A string that changes whenever one of the (territory code, layer name) layers is re-imported."""
    parts = []
    for code, name in layers:
        parts.append(str(conn.execute(sa.text(
            "SELECT l.id || ':' || l.feature_count || ':' || l.imported_at FROM layers l JOIN territories t "
            "ON t.id = l.territory_id WHERE t.code = :c AND l.name = :n"), {"c": code, "n": name}).scalar()))
    return ",".join(parts)


def territory_at(conn: sa.Connection, territory: str, lon: float, lat: float) -> int | None:
    """The smallest territory at or below ``territory`` that contains the point (its community,
    normally), or None when the point is outside ``territory``."""
    return conn.execute(sa.text(
        "WITH RECURSIVE sub AS (SELECT id, level FROM territories WHERE code = :c UNION ALL "
        "SELECT t.id, t.level FROM territories t JOIN sub ON t.parent_id = sub.id) "
        "SELECT t.id FROM sub JOIN territories t ON t.id = sub.id "
        "WHERE ST_Intersects(t.geom, ST_SetSRID(ST_Point(:x, :y), 4490)) "
        "ORDER BY array_position(ARRAY['community','street','district','city']::text[], CAST(t.level AS text)) LIMIT 1"),
        {"c": territory, "x": lon, "y": lat}).scalar()


def published_grids(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The grids of the territory's published plan (or of the nearest published ancestor's plan,
    limited to this territory's communities)."""
    return gpd.read_postgis(sa.text(
        "WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :code UNION ALL "
        "SELECT c.id FROM territories c JOIN sub ON c.parent_id = sub.id) "
        "SELECT g.code AS grid_code, c.code AS community_code, c.name AS community, g.households, g.geom "
        "FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
        "JOIN territories c ON c.id = g.community_id WHERE g.community_id IN (SELECT id FROM sub) ORDER BY g.code"),
        conn, geom_col="geom", params={"code": territory}).rename_geometry("geometry")


__all__ = ["territory_id", "outline_hex", "layers_stamp", "territory_at", "published_grids", "StationNotFound", "insert", "get", "update", "close", "frame", "delete_from_source", "count", "EDITABLE"]
