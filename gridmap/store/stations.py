"""Service stations in PostGIS: create, edit, close, count. Lists of stations are read through
:mod:`gridmap.store.frames`."""

from __future__ import annotations

import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.jsonb import to_json

EDITABLE = ("station_type", "name", "address", "opening_hours", "services")


class StationNotFound(NotFound):
    """No station with that id."""


def insert(conn: sa.Connection, *, territory_id: int, station_type: str, name: str, lon: float, lat: float,
           address: str | None = None, opening_hours: str | None = None, services: list[str] | None = None,
           source_ref: str | None = None) -> int:
    return conn.execute(sa.text(
        "INSERT INTO stations (territory_id, station_type, name, address, opening_hours, services, source_ref, geom) "
        "VALUES (:t, :ty, :n, :a, :o, CAST(:s AS jsonb), :ref, ST_SetSRID(ST_Point(:x, :y), 4490)) RETURNING id"),
        {"t": territory_id, "ty": station_type, "n": name, "a": address, "o": opening_hours,
         "s": to_json(services or []), "ref": source_ref, "x": lon, "y": lat}).scalar_one()


def get(conn: sa.Connection, station_id: int, *, lock: bool = False) -> dict:
    row = conn.execute(sa.text(
        "SELECT s.id, t.code AS territory, s.station_type, s.name, s.address, s.opening_hours, s.services, s.status, "
        "s.source_ref, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, s.created_at, s.closed_at FROM stations s "
        "JOIN territories t ON t.id = s.territory_id WHERE s.id = :i" + (" FOR UPDATE OF s" if lock else "")),
        {"i": station_id}).first()
    if row is None:
        raise StationNotFound(f"no station {station_id}", f"没有编号为 {station_id} 的站点")
    return dict(row._mapping)


def update(conn: sa.Connection, station_id: int, changes: dict) -> None:
    """Change editable fields (and the location, with lon/lat)."""
    sets, params = [], {"i": station_id}
    for column in EDITABLE:
        if column in changes:
            value = changes[column]
            if column == "services":
                sets.append("services = CAST(:services AS jsonb)")
                params["services"] = to_json(value or [])
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


def count(conn: sa.Connection, territory_id: int, prefix: str) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM stations WHERE territory_id = :t AND source_ref LIKE :p"),
                        {"t": territory_id, "p": prefix + "%"}).scalar_one()




def open_types_by_territory(conn: sa.Connection) -> dict[str, list[str]]:
    """Each territory with a published plan (where a stations map is opened) whose subtree holds
    open stations, with their types."""
    rows = conn.execute(sa.text(
        "WITH RECURSIVE down AS (SELECT p.territory_id AS top, p.territory_id AS id FROM plans p "
        "WHERE p.status = 'published' UNION SELECT d.top, t.id FROM down d JOIN territories t ON t.parent_id = d.id) "
        "SELECT top.code, array_agg(DISTINCT s.station_type ORDER BY s.station_type) FROM down "
        "JOIN stations s ON s.territory_id = down.id AND s.status = 'open' JOIN territories top ON top.id = down.top "
        "GROUP BY top.code ORDER BY top.code")).all()
    return {code: list(types) for code, types in rows}


__all__ = ["StationNotFound", "insert", "get", "update", "close", "count", "open_types_by_territory", "EDITABLE"]
