"""Everything read from PostGIS as a GeoDataFrame (EPSG:4490): the one read path of the store,
used by the services (partition, merge, validation, reports, exports) and, through them, by the
notebook API.

Each read names its places the way a government register does: grids, units, stations and
incidents carry their community, street and district codes and names, and codes stay text. A
territory below the plan's own territory (a street of a city plan) gets the plan's rows inside
its subtree only. Unit identifiers: ``unit_id`` is a unit's key (text, e.g.
``990101001001-0007``), ``db_id`` its row id where a caller needs it.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gridmap.store.incident_stats import Filters
from gridmap.store.incidents import CURRENT_GRID_JOIN
from gridmap.store.sql import PLACE_COLUMNS, PLACE_JOINS, ewkb_hex, read_geoframe, with_subtree
from gridmap.store.units import DRAFT_MADE
from gridmap.store.territories import TerritoryNotFound, exists, outline_hex


def _read(conn: sa.Connection, sql: str, **params) -> gpd.GeoDataFrame:
    return read_geoframe(conn, sa.text(sql), params)


def territories(conn: sa.Connection) -> pd.DataFrame:
    """Every territory: code, name, level, parent_code, area_m2 (sorted by code)."""
    return pd.read_sql(sa.text(
        "SELECT t.code, t.name, t.level, p.code AS parent_code, t.area_m2 FROM territories t "
        "LEFT JOIN territories p ON p.id = t.parent_id ORDER BY t.code"), conn)


def communities(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The communities at or below the territory: id, code, name, street and district, area,
    geometry. :class:`TerritoryNotFound` for an unknown code."""
    frame = _read(conn, with_subtree() + "SELECT c.id, c.code, c.name, s.code AS street_code, s.name AS street_name, "
                  f"d.code AS district_code, d.name AS district_name, c.area_m2, c.geom FROM territories c {PLACE_JOINS}"
                  "WHERE c.level = 'community' AND c.id IN (SELECT id FROM sub) ORDER BY c.code", territory=territory)
    if frame.empty and not exists(conn, territory):
        raise TerritoryNotFound.of(territory)
    return frame


def current_units(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The current units of the territory's communities: the current generation (not retired by
    a rebuild; plans keep using their retired units, read through :func:`plan_units`), without
    the units an edit made in a draft (cut pieces, revised neighbours: they are that draft's own),
    whatever plan uses them; one tiling of each community. With the columns ``build_units``
    returns (so they go straight into ``partition`` or ``merge_layers``), their places and
    ``db_id``."""
    frame = _read(conn, with_subtree() + "SELECT u.id AS db_id, u.unit_key AS unit_id, c.code AS community_code, "
                  "u.kind, u.name, u.households, u.population, u.area_m2, u.properties->>'site_type' AS site_type, "
                  "u.properties->>'compound_id' AS compound_id, (u.properties->>'compound_part')::float AS compound_part, "
                  "(u.properties->>'buildings')::int AS buildings, "
                  "COALESCE((u.properties->>'lone_tower')::boolean, false) AS lone_tower, "
                  "COALESCE((u.properties->>'atomic')::boolean, false) AS atomic, "
                  "c.name AS community_name, s.code AS street_code, s.name AS street_name, d.code AS district_code, "
                  f"d.name AS district_name, u.geom FROM units u JOIN territories c ON c.id = u.community_id {PLACE_JOINS}"
                  f"WHERE u.community_id IN (SELECT id FROM sub) AND u.retired_at IS NULL AND NOT {DRAFT_MADE} "
                  "ORDER BY c.code, u.unit_key",
                  territory=territory)
    return frame


def plan_grids(conn: sa.Connection, plan_id: int, territory: str | None = None) -> gpd.GeoDataFrame:
    """A plan's grids (inside ``territory`` when given) with their places, figures and validity
    dates: code, name, kind, site type (English key and Chinese term: a dedicated grid's
    institution), places, area, households, population, worker, plan version, valid from/to,
    compactness, unit count, parts."""
    inside = "AND g.community_id IN (SELECT id FROM sub) " if territory else ""
    return _read(conn, (with_subtree() if territory else "") +
                 "SELECT g.code AS grid_code, g.name AS grid_name, g.kind, g.properties->>'site_type' AS site_type, "
                 f"g.properties->>'site_type_zh' AS site_type_zh, {PLACE_COLUMNS}, g.area_m2, g.households, "
                 "g.population, g.worker, p.version AS plan_version, p.valid_from, p.valid_to, "
                 "(g.properties->>'compactness')::float AS compactness, (g.properties->>'unit_count')::int AS unit_count, "
                 "COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)) AS parts, g.geom "
                 "FROM grids g JOIN plans p ON p.id = g.plan_id JOIN territories c ON c.id = g.community_id "
                 f"{PLACE_JOINS}WHERE g.plan_id = :plan {inside}ORDER BY g.code", territory=territory, plan=plan_id)


def plan_units(conn: sa.Connection, plan_id: int, territory: str | None = None) -> gpd.GeoDataFrame:
    """A plan's units (inside ``territory`` when given) with the grid each belongs to, their
    places, kind, site type, compound, households, population, area and ``db_id``."""
    inside = "AND u.community_id IN (SELECT id FROM sub) " if territory else ""
    return _read(conn, (with_subtree() if territory else "") +
                 "SELECT u.unit_key AS unit_id, u.id AS db_id, u.kind AS unit_kind, u.name AS unit_name, "
                 f"g.code AS grid_code, {PLACE_COLUMNS}, u.area_m2, u.households, u.population, "
                 "u.properties->>'site_type' AS site_type, u.properties->>'compound_id' AS compound_id, "
                 "(u.properties->>'compound_part')::float AS compound_part, (u.properties->>'buildings')::int AS buildings, "
                 "COALESCE((u.properties->>'lone_tower')::boolean, false) AS lone_tower, "
                 "COALESCE((u.properties->>'atomic')::boolean, false) AS atomic, u.geom "
                 "FROM plan_units pu JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
                 f"JOIN territories c ON c.id = u.community_id {PLACE_JOINS}WHERE pu.plan_id = :plan {inside}"
                 "ORDER BY g.code, u.unit_key", territory=territory, plan=plan_id)


def layer_in_area(conn: sa.Connection, owner: str, name: str, area,
                  where_in: tuple[str, tuple[str, ...]] | None = None) -> gpd.GeoDataFrame:
    """Features of layer ``name`` of territory ``owner`` that meet ``area`` (a shapely geometry
    in EPSG:4490, or several: a feature meeting any of them, once; a bounding-box test in PostGIS),
    attributes as columns, in the layer's order; with ``where_in`` (an attribute and its values),
    only the features whose attribute has one of the values (a partition reads only the major
    roads: 26,000 of Reykjavík's roads are not). The attribute is compared as the text the layer
    stores (``highway = 'primary'``), as road classes are. Several areas (the boxes of communities
    that lie apart) read only what lies near them: one box around them all can hold the district."""
    areas = list(area) if isinstance(area, (list, tuple, np.ndarray)) else [area]
    only = "AND f.properties->>:attribute = ANY(:values) " if where_in else ""
    raw = read_geoframe(conn, sa.text(
        "WITH hit AS (SELECT DISTINCT f.id FROM unnest(CAST(:areas AS text[])) AS a(hex) "
        "JOIN layer_features f ON f.geom && ST_GeomFromEWKB(decode(a.hex, 'hex')) "
        "WHERE f.layer_id = (SELECT l.id FROM layers l JOIN territories t ON t.id = l.territory_id "
        "WHERE t.code = :owner AND l.name = :name)) "
        f"SELECT f.feature_index, {_PROPERTIES_TEXT}, f.geom FROM layer_features f JOIN hit ON hit.id = f.id "
        f"WHERE true {only}"),
        {"owner": owner, "name": name, "areas": ewkb_hex(areas),
         **({"attribute": where_in[0], "values": list(where_in[1])} if where_in else {})})
    return _features(raw)


def layer_features(conn: sa.Connection, territory: str, name: str) -> gpd.GeoDataFrame:
    """A layer of exactly this territory, whole, attributes as columns; :class:`NoSuchLayer`
    when it has none of that name."""
    from gridmap.store.layers import NoSuchLayer

    raw = read_geoframe(conn, sa.text(
        f"SELECT f.feature_index, {_PROPERTIES_TEXT}, f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id "
        "JOIN territories t ON t.id = l.territory_id WHERE t.code = :c AND l.name = :n"),
        {"c": territory, "n": name})
    if raw.empty and conn.execute(sa.text("SELECT 1 FROM layers l JOIN territories t ON t.id = l.territory_id "
                                          "WHERE t.code = :c AND l.name = :n"), {"c": territory, "n": name}).first() is None:
        raise NoSuchLayer(f"territory {territory} has no layer {name!r}", f"辖区 {territory} 没有图层 {name!r}")
    return _features(raw)


_PROPERTIES_TEXT = "f.properties::text AS properties"
"""A feature's attributes as JSON text, parsed by :func:`_features` for all rows at once: the
driver's own parsing, one ``json.loads`` a row, took 0.2 s of reading Reykjavík's 32,000 buildings."""


def _features(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Layer features read as ``feature_index, properties`` (JSON text) and geometry, as a frame
    of their attributes in the layer's order, indexed 0..n-1. The order is put here, not by the
    query: sorting the wide rows in PostgreSQL spilled to disk (10 MB for Reykjavík's buildings)."""
    raw = raw.iloc[np.argsort(raw["feature_index"].to_numpy(), kind="stable")].reset_index(drop=True)
    attrs = pd.DataFrame(json.loads("[" + ",".join(raw["properties"]) + "]"), index=raw.index)
    return gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(raw.geometry.values, index=raw.index), crs=4490)


def layer(conn: sa.Connection, territory: str, name: str, *, within: str = "envelope") -> gpd.GeoDataFrame:
    """An imported layer (roads, buildings, ...) of the territory or its nearest ancestor, cut to
    the territory's bounding box (``within="envelope"``) or outline (``"outline"``)."""
    from gridmap.store.layers import NoSuchLayer, find

    found = find(conn, territory, (name,))
    if found is None:
        raise NoSuchLayer.of(name, territory)
    area = outline_hex(conn, territory, envelope=within == "envelope")
    return layer_in_area(conn, found[0], found[1], shapely.from_wkb(bytes.fromhex(area)))


def stations(conn: sa.Connection, territory: str, *, station_type: str | None = None, status: str | None = "open",
             places: bool = True) -> gpd.GeoDataFrame:
    """Stations at or below the territory (of a type, in a status: None for any): id, type, name,
    address, opening hours, status, services and, with ``places``, the published grid and
    community each stands in."""
    where = ("WHERE s.territory_id IN (SELECT id FROM sub) AND (CAST(:ty AS text) IS NULL OR s.station_type = :ty) "
             "AND (CAST(:st AS text) IS NULL OR s.status = :st) ORDER BY s.id")
    if not places:
        return _read(conn, with_subtree() + "SELECT s.id AS station_id, s.station_type, s.name, s.address, "
                     f"s.opening_hours, s.status, s.services, s.geom FROM stations s {where}",
                     territory=territory, ty=station_type, st=status)
    return _read(conn, with_subtree() + "SELECT s.id AS station_id, s.station_type, s.name, s.address, "
                 "s.opening_hours, s.status, s.services, g.code AS grid_code, c.code AS community_code, "
                 "c.name AS community_name, s.geom FROM stations s LEFT JOIN LATERAL (SELECT g.code, g.community_id "
                 "FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
                 "WHERE ST_Intersects(g.geom, s.geom) LIMIT 1) g ON true LEFT JOIN territories c ON c.id = g.community_id "
                 + where, territory=territory, ty=station_type, st=status)


def published_grids(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The published grids inside a territory (of its own plan or its nearest published
    ancestor's): code, community code and name, households, geometry."""
    return _read(conn, with_subtree() + "SELECT g.code AS grid_code, c.code AS community_code, c.name AS community, "
                 "g.households, g.geom FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
                 "JOIN territories c ON c.id = g.community_id WHERE g.community_id IN (SELECT id FROM sub) "
                 "ORDER BY g.code", territory=territory)


def incidents(conn: sa.Connection, territory: str, filters: Filters = Filters(), *,
              limit: int | None = None) -> gpd.GeoDataFrame:
    """Incidents routed into the territory, filtered as on the dashboard: ``grid_code`` is the grid
    of the published plan holding each now, ``reported_grid_code`` the one it was reported in.
    Never reporter details: an export or a notebook is not the place for who reported what."""
    where, params = filters.where()
    return _read(conn, with_subtree() + "SELECT i.public_id AS incident_id, i.category_code, "
                 "cat.name_zh AS category_name, i.status, dep.name AS department, g.code AS grid_code, "
                 "rg.code AS reported_grid_code, c.code AS community_code, c.name AS community_name, "
                 "s.code AS street_code, s.name AS street_name, i.reported_at, i.due_at, i.closed_at, "
                 "i.escalation_level, i.synthetic, (COALESCE(i.closed_at, now()) > i.due_at) AS overdue, i.geom "
                 "FROM incidents i LEFT JOIN incident_categories cat ON cat.code = i.category_code "
                 "LEFT JOIN departments dep ON dep.id = i.department_id " + CURRENT_GRID_JOIN +
                 "LEFT JOIN grids rg ON rg.id = i.grid_id LEFT JOIN territories c ON c.id = i.community_id "
                 f"LEFT JOIN territories s ON s.id = i.street_id WHERE {where} ORDER BY i.reported_at, i.id"
                 + (" LIMIT :limit" if limit else ""), territory=territory, **params, **({"limit": limit} if limit else {}))


def crosswalk(conn: sa.Connection, plan_id: int) -> pd.DataFrame:
    """The merge crosswalk of a plan made by a merge (empty for other plans)."""
    return pd.read_sql(sa.text(
        "SELECT department, grid_ref AS grid_id, grid_code, area_share, household_share, area_m2, households "
        "FROM merge_crosswalk WHERE plan_id = :p ORDER BY department, grid_ref, grid_code"), conn, params={"p": plan_id})


__all__ = ["territories", "communities", "current_units", "plan_grids", "plan_units", "layer_in_area",
           "layer_features", "layer",
           "stations", "published_grids", "incidents", "crosswalk"]
