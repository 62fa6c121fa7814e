"""Feature collections served by OGC API Features and vector tiles, as SQL built in one place.

Each collection is a FROM clause, an id, a geometry and a fixed set of properties; filters come
only from whitelisted queryables and bound parameters, never from string-pasted input. GeoJSON
and MVT are both produced inside PostGIS (``json_agg`` / ``ST_AsMVT``), so a page of 1,000
grids or a tile is one round trip.

Coordinates are stored in EPSG:4490 (CGCS2000), which agrees with WGS84 to centimetres; they are
served as lon/lat as RFC 7946 asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from pygeofilter import ast as pygeofilter_ast

from gridmap.errors import NotFound
from gridmap.store import cql
from gridmap.store.db import prepared

from gridmap.store.incidents import CURRENT_GRID_JOIN

PUBLISHED_GRIDS = ("grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
                   "JOIN territories c ON c.id = g.community_id")


@dataclass(frozen=True)
class Collection:
    """One served collection: ``source`` is a FROM clause (no user input in it)."""

    id: str
    title: str
    title_zh: str
    description: str
    source: str
    id_expr: str
    geom_expr: str
    properties: dict[str, str]
    queryables: dict[str, str] = field(default_factory=dict)
    order: str = ""
    time_expr: str | None = None
    geometry_type: str = "polygon"

    @property
    def queryable_exprs(self) -> dict[str, str]:
        """Every property a request may filter on (by ``?name=value`` or in a CQL2 filter), with its
        SQL expression: the served properties and the extra filter keys."""
        return {**self.properties, **self.queryables}


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    Collection(
        "grids", "Published grids", "已发布网格",
        "The grids of every territory's published plan: code, name, kind and a dedicated grid's site type "
        "(English key and Chinese term), community, households, area, grid worker.",
        PUBLISHED_GRIDS, "g.code", "g.geom",
        {"grid_code": "g.code", "name": "g.name", "community_code": "c.code", "community": "c.name",
         "kind": "g.kind", "site_type": "g.properties->>'site_type'", "site_type_zh": "g.properties->>'site_type_zh'",
         "households": "g.households", "population": "g.population",
         "area_m2": "round(g.area_m2::numeric, 1)::float8", "compactness": "(g.properties->>'compactness')::float",
         "unit_count": "(g.properties->>'unit_count')::int", "worker": "g.worker", "plan_id": "p.id",
         "plan_version": "p.version", "valid_from": "p.valid_from"},
        {"community_code": "c.code", "kind": "g.kind", "grid_code": "g.code"}, "g.code"),
    Collection(
        "microgrids", "Micro-grids of published plans", "已发布方案的微网格",
        "Micro-grids (微网格): the buildings (or 单元) of a published grid in groups of about 50–80 households, "
        "coded below their grid. Leaders' names and phones are never served here.",
        "microgrids m JOIN plans p ON p.id = m.plan_id AND p.status = 'published' JOIN grids g ON g.id = m.grid_id "
        "JOIN territories c ON c.id = g.community_id",
        "m.code", "m.geom",
        {"microgrid_code": "m.code", "grid_code": "g.code", "community_code": "c.code", "community": "c.name",
         "households": "m.households", "building_count": "m.building_count",
         "area_m2": "round(m.area_m2::numeric, 1)::float8", "flag": "m.flag", "plan_id": "p.id",
         "plan_version": "p.version"},
        {"community_code": "c.code", "grid_code": "g.code", "microgrid_code": "m.code", "flag": "m.flag"}, "m.code"),
    Collection(
        "units", "Units of published plans", "已发布方案的单元",
        "Relatively independent areas (compounds, blocks, dedicated sites) with the published grid they belong to.",
        "plan_units pu JOIN plans p ON p.id = pu.plan_id AND p.status = 'published' JOIN units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id",
        "u.id", "u.geom",
        {"unit_id": "u.id", "unit_key": "u.unit_key", "kind": "u.kind", "name": "u.name",
         "households": "u.households", "area_m2": "round(u.area_m2::numeric, 1)::float8", "community_code": "c.code",
         "grid_code": "g.code"},
        {"community_code": "c.code", "grid_code": "g.code", "kind": "u.kind"}, "u.id"),
    *(Collection(
        plural, f"{label.capitalize()} boundaries", zh,
        f"Boundaries of the {label} level of the territory hierarchy.",
        f"territories t LEFT JOIN territories up ON up.id = t.parent_id WHERE t.level = '{level}'",
        "t.code", "t.geom",
        {"code": "t.code", "name": "t.name", "level": "t.level", "parent_code": "up.code",
         "area_m2": "round(t.area_m2::numeric, 1)::float8"},
        {"parent_code": "up.code", "code": "t.code"}, "t.code")
      for level, plural, label, zh in (("community", "communities", "community", "社区边界"),
                                       ("street", "streets", "street", "街道边界"),
                                       ("district", "districts", "district", "区县边界"))),
    Collection(
        "stations", "Service stations", "服务站点",
        "Party-and-people service centres, family-doctor stations and the other service stations.",
        "stations s JOIN territories t ON t.id = s.territory_id", "s.id", "s.geom",
        {"station_id": "s.id", "station_type": "s.station_type", "name": "s.name", "address": "s.address",
         "opening_hours": "s.opening_hours", "services": "s.services", "status": "s.status", "territory": "t.code"},
        {"station_type": "s.station_type", "status": "s.status"}, "s.id", geometry_type="point"),
    Collection(
        "incidents", "Incidents", "事件",
        "Reported incidents with their grid and state. Reporters' names and contacts are never served here.",
        "incidents i " + CURRENT_GRID_JOIN + "LEFT JOIN grids rg ON rg.id = i.grid_id "
        "LEFT JOIN territories c ON c.id = i.community_id",
        "i.public_id", "i.geom",
        {"incident_id": "i.public_id", "category_code": "i.category_code", "status": "i.status",
         "grid_code": "g.code", "reported_grid_code": "rg.code", "community_code": "c.code",
         "escalation_level": "i.escalation_level",
         "reported_at": "i.reported_at", "due_at": "i.due_at", "closed_at": "i.closed_at"},
        {"category_code": "i.category_code", "status": "i.status", "grid_code": "g.code", "community_code": "c.code"},
        "i.reported_at DESC, i.public_id", time_expr="i.reported_at", geometry_type="point"),
)}


def _where(collection: Collection, *, bbox: tuple[float, float, float, float] | None,
           interval: tuple[datetime | None, datetime | None] | None, filters: dict[str, str],
           cql_filter: pygeofilter_ast.Node | None = None) -> tuple[str, dict]:
    clauses, params = [], {}
    if cql_filter is not None:
        condition, bound = cql.where(cql_filter, collection.queryable_exprs, collection.geom_expr)
        clauses.append(condition)
        params.update(bound)
    if bbox is not None:
        clauses.append(f"{collection.geom_expr} && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if interval is not None and collection.time_expr:
        start, end = interval
        if start is not None:
            clauses.append(f"{collection.time_expr} >= :t0")
            params["t0"] = start
        if end is not None:
            clauses.append(f"{collection.time_expr} <= :t1")
            params["t1"] = end
    for i, (name, value) in enumerate(sorted(filters.items())):
        clauses.append(f"{collection.queryable_exprs[name]}::text = :q{i}")
        params[f"q{i}"] = value
    joiner = " AND " if " WHERE " in collection.source else " WHERE "
    return (joiner + " AND ".join(clauses)) if clauses else "", params


def _properties_sql(collection: Collection) -> str:
    return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in collection.properties.items()) + ")"


@dataclass(frozen=True)
class OutputSRS:
    """Coordinates in another CRS than CRS84 (OGC API - Features Part 2): the EPSG code, whether
    the CRS puts northing/latitude first (EPSG:4490 and 4326 do, and so do the Gauss-Krüger zones),
    and the decimals (7 for degrees, 3 for metres)."""

    srid: int
    north_first: bool
    decimals: int


def _geometry_sql(collection: Collection, srs: OutputSRS | None) -> str:
    if srs is None:
        return f"ST_AsGeoJSON({collection.geom_expr}, 7, 0)::json"
    moved = f"ST_Transform({collection.geom_expr}, {int(srs.srid)})"
    if srs.north_first:
        moved = f"ST_FlipCoordinates({moved})"
    return f"ST_AsGeoJSON({moved}, {int(srs.decimals)}, 0)::json"


def items(conn: sa.Connection, collection: Collection, *, limit: int, offset: int,
          bbox: tuple[float, float, float, float] | None = None,
          interval: tuple[datetime | None, datetime | None] | None = None,
          filters: dict[str, str] | None = None, cql_filter: pygeofilter_ast.Node | None = None,
          srs: OutputSRS | None = None) -> tuple[str, int, int]:
    """One page of features as a GeoJSON array (text built in PostGIS), how many it holds, and how
    many match in all. ``cql_filter``: a parsed CQL2 filter (:mod:`gridmap.store.cql`); ``srs``:
    coordinates in that CRS instead of CRS84 (``bbox`` stays CRS84: the API converts it)."""
    where, params = _where(collection, bbox=bbox, interval=interval, filters=filters or {}, cql_filter=cql_filter)
    matched = conn.execute(sa.text(f"SELECT count(*) FROM {collection.source}{where}"), params).scalar_one()
    page, returned = conn.execute(sa.text(
        f"SELECT COALESCE(json_agg(f), '[]'::json)::text, count(*) FROM (SELECT 'Feature' AS type, {collection.id_expr} AS id, "
        f"{_geometry_sql(collection, srs)} AS geometry, {_properties_sql(collection)} AS properties "
        f"FROM {collection.source}{where} ORDER BY {collection.order} LIMIT :limit OFFSET :offset) f"),
        {**params, "limit": limit, "offset": offset}).one()
    return page, returned, matched


def one(conn: sa.Connection, collection: Collection, feature_id: str, srs: OutputSRS | None = None) -> str | None:
    """One feature (GeoJSON text) by id, or None; ``srs`` as in :func:`items`."""
    joiner = " AND " if " WHERE " in collection.source else " WHERE "
    return conn.execute(sa.text(
        f"SELECT row_to_json(f)::text FROM (SELECT 'Feature' AS type, {collection.id_expr} AS id, "
        f"{_geometry_sql(collection, srs)} AS geometry, {_properties_sql(collection)} AS properties "
        f"FROM {collection.source}{joiner}{collection.id_expr}::text = :fid ORDER BY {collection.order} LIMIT 1) f"),
        {"fid": feature_id}).scalar()


JSON_TYPES = {16: ("boolean", None), 20: ("integer", None), 21: ("integer", None), 23: ("integer", None),
              700: ("number", None), 701: ("number", None), 1700: ("number", None), 1082: ("string", "date"),
              1114: ("string", "date-time"), 1184: ("string", "date-time")}
"""PostgreSQL type OIDs to JSON Schema types (anything else: a string)."""


def queryable_types(conn: sa.Connection, collection: Collection) -> dict[str, tuple[str, str | None]]:
    """The JSON Schema type (and format) of each queryable, from the types PostgreSQL gives their
    expressions (a query of no rows: nothing is read)."""
    return _json_types(conn, collection, collection.queryable_exprs)


def property_types(conn: sa.Connection, collection: Collection) -> dict[str, tuple[str, str | None]]:
    """The JSON Schema type (and format) of each property a tile carries (arrays left out, as in tiles)."""
    return _json_types(conn, collection, {k: v for k, v in collection.properties.items() if k != "services"})


def _json_types(conn: sa.Connection, collection: Collection, exprs: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    names = list(exprs)
    result = conn.execute(sa.text(
        "SELECT " + ", ".join(f"{exprs[n]} AS q{i}" for i, n in enumerate(names)) +
        f" FROM {collection.source} LIMIT 0"))
    description = result.cursor.description
    result.close()
    return {name: JSON_TYPES.get(column[1], ("string", None)) for name, column in zip(names, description)}


def extent(conn: sa.Connection, collection: Collection) -> list[float] | None:
    box = conn.execute(sa.text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent({collection.geom_expr}) e "
        f"FROM {collection.source}) s")).first()
    return None if box is None or box[0] is None else [round(float(v), 7) for v in box]


def time_extent(conn: sa.Connection, collection: Collection) -> list[str | None] | None:
    if not collection.time_expr:
        return None
    lo, hi = conn.execute(sa.text(f"SELECT min({collection.time_expr}), max({collection.time_expr}) "
                                  f"FROM {collection.source}")).one()
    return [lo.isoformat() if lo else None, hi.isoformat() if hi else None]


def tile(conn: sa.Connection, collection: Collection, z: int, x: int, y: int, *, extent_px: int = 4096,
         buffer_px: int = 64) -> bytes:
    """A Mapbox Vector Tile of the collection (layer named after it), built by ST_AsMVT.

    The tile envelope is transformed once to EPSG:4490 for the index (a Web Mercator rectangle is
    a lon/lat rectangle), and only features in it are transformed to Web Mercator."""
    props = ", ".join(f"{v} AS {k}" for k, v in collection.properties.items()
                      if k not in ("services",))  # arrays do not fit MVT attributes
    joiner = " AND " if " WHERE " in collection.source else " WHERE "
    margin = buffer_px / extent_px
    data = conn.execute(sa.text(
        f"WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env, ST_Transform(ST_TileEnvelope(:z, :x, :y, "
        f"margin => :margin), 4490) AS env4490) "
        f"SELECT ST_AsMVT(t, :layer, :ext, 'geom') FROM (SELECT {props}, ST_AsMVTGeom(ST_Transform("
        f"{collection.geom_expr}, 3857), b.env, :ext, :buf, true) AS geom FROM b, {collection.source}"
        f"{joiner}{collection.geom_expr} && b.env4490) t WHERE t.geom IS NOT NULL"),
        {"z": z, "x": x, "y": y, "layer": collection.id, "ext": extent_px, "buf": buffer_px,
         "margin": margin}).scalar()
    return bytes(data) if data else b""


def tile_crs84(conn: sa.Connection, collection: Collection, bounds: tuple[float, float, float, float], *,
               extent_px: int = 4096, buffer_px: int = 64) -> bytes:
    """A Mapbox Vector Tile of the collection in longitude/latitude (a WorldCRS84Quad tile whose
    ``bounds`` are given): CGCS2000 coordinates are written as they are stored, as CRS84 items are."""
    props = ", ".join(f"{v} AS {k}" for k, v in collection.properties.items() if k not in ("services",))
    joiner = " AND " if " WHERE " in collection.source else " WHERE "
    pad = (bounds[2] - bounds[0]) * buffer_px / extent_px
    data = conn.execute(sa.text(
        f"WITH b AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) AS env, "
        f"ST_MakeEnvelope(:x0 - :pad, :y0 - :pad, :x1 + :pad, :y1 + :pad, 4490) AS env4490) "
        f"SELECT ST_AsMVT(t, :layer, :ext, 'geom') FROM (SELECT {props}, ST_AsMVTGeom(ST_SetSRID("
        f"{collection.geom_expr}, 4326), b.env, :ext, :buf, true) AS geom FROM b, {collection.source}"
        f"{joiner}{collection.geom_expr} && b.env4490) t WHERE t.geom IS NOT NULL"),
        {"x0": bounds[0], "y0": bounds[1], "x1": bounds[2], "y1": bounds[3], "pad": pad, "layer": collection.id,
         "ext": extent_px, "buf": buffer_px}).scalar()
    return bytes(data) if data else b""


CONTEXT_ROLES: tuple[tuple[str, int], ...] = (
    ("water", 0), ("compounds", 13), ("sites", 13), ("railways", 10), ("roads", 11), ("buildings", 15))
"""The context layers the planner draws under the units, bottom to top, each from the zoom at which
it is worth drawing (a district's 30,000 buildings are a grey smear below zoom 15)."""
MINOR_ROADS = ("footway", "path", "cycleway", "steps", "pedestrian", "corridor", "service", "track", "bridleway",
               "living_street", "小区路", "步行道", "人行道")
"""Road classes left out of context tiles below zoom 14 (paths and service lanes: a smear at city scale)."""
_CONTEXT_NAMES = {"water": ("waterways",), "compounds": ("compounds", "residential_areas"), "sites": ("sites",),
                  "railways": ("railways",), "roads": ("roads",), "buildings": ("buildings", "楼栋")}


def context_tile(conn: sa.Connection, territory: str, z: int, x: int, y: int, *, road_class: str = "highway",
                 extent_px: int = 4096, buffer_px: int = 16) -> bytes:
    """One Mapbox Vector Tile of the territory's own layers (its nearest ones: the territory's, else
    an ancestor's, as partitions read them), one MVT layer per role of :data:`CONTEXT_ROLES`: the
    ``name`` of each feature, and each road's ``class`` (the profile's ``road_class`` column, else
    OSM's ``highway``). Built by ST_AsMVT per layer; the layers' tiles are concatenated (an MVT
    tile is a list of layers). Empty bytes where nothing is drawn."""
    from gridmap.store.layers import find

    parts: list[bytes] = []
    for role, min_zoom in CONTEXT_ROLES:
        found = find(conn, territory, _CONTEXT_NAMES[role]) if z >= min_zoom else None
        if found is None:
            continue
        data = conn.execute(sa.text(
            "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env, ST_Transform(ST_TileEnvelope(:z, :x, :y, "
            "margin => :margin), 4490) AS env4490) "
            "SELECT ST_AsMVT(t, :layer, :ext, 'geom') FROM (SELECT COALESCE(f.properties->>'name', "
            "f.properties->>'名称', f.properties->>'道路名称', f.properties->>'compound_name', "
            "f.properties->>'building_name') AS name, COALESCE(f.properties->>:cls, f.properties->>'highway') AS class, "
            "ST_AsMVTGeom(ST_Transform(f.geom, 3857), b.env, :ext, :buf, true) AS geom "
            "FROM b, layer_features f JOIN layers l ON l.id = f.layer_id JOIN territories t ON t.id = l.territory_id "
            "WHERE t.code = :owner AND l.name = :name AND f.geom && b.env4490) t WHERE t.geom IS NOT NULL "
            "AND (:layer <> 'roads' OR :z >= 14 OR t.class IS NULL OR t.class <> ALL(CAST(:minor AS text[])))"),
            {"z": z, "x": x, "y": y, "layer": role, "ext": extent_px, "buf": buffer_px, "margin": buffer_px / extent_px,
             "cls": road_class, "owner": found[0], "name": found[1], "minor": list(MINOR_ROADS)}).scalar()
        if data:
            parts.append(bytes(data))
    return b"".join(parts)


PUBLISHED_COLLECTIONS = frozenset({"grids", "microgrids", "units"})
"""Collections whose content changes only on a publish (the published stamp versions them); the
others (stations, incidents, territories) change on their own."""


PUBLISHED_STAMP = (
    "SELECT count(*)::text || '-' || COALESCE(sum(id), 0)::text || '-' || COALESCE(sum(lock_version), 0)::text || '-' "
    "|| floor(COALESCE(max(extract(epoch FROM published_at)), 0) * 1000)::bigint::text FROM plans WHERE status = 'published'")
"""The publish stamp as a query of one value (:func:`published_stamp`), for a statement that reads
it in the same snapshot as what it versions."""


def published_stamp(conn: sa.Connection) -> str:
    """A token that changes whenever any plan is published (or a published plan is edited):
    part of tile URLs and ETags, so no cache serves grids of a plan that is no longer published."""
    return conn.execute(sa.text(PUBLISHED_STAMP)).scalar_one()


def locate(conn: sa.Connection, lon: float, lat: float, *, staff_on: date | None = None) -> dict | None:
    """The published grid containing a point (lon/lat in EPSG:4490) with its community, street and
    district, and its worker: with ``staff_on``, the full-time workers the staff holds on that
    grid (its code and, where recorded, the same units: lineage) that day, else the plan's name;
    None outside every published grid. Uses the grids' GiST index."""
    row = prepared(conn, (
        "SELECT g.code AS grid_code, g.name AS grid_name, g.kind, g.properties->>'site_type' AS site_type, "
        "g.properties->>'site_type_zh' AS site_type_zh, g.households, COALESCE((SELECT "
        "string_agg(DISTINCT s.name, '、') FROM staff_assignments a JOIN staff s ON s.id = a.staff_id "
        "WHERE CAST(:on AS date) IS NOT NULL AND a.grid_code = g.code AND (a.grid_lineage IS NULL OR a.grid_lineage = "
        "g.lineage) AND s.role = 'full_time_worker' AND a.valid_from <= CAST(:on AS date) "
        "AND (a.valid_to IS NULL OR a.valid_to >= CAST(:on AS date))), g.worker) AS worker, p.id AS plan_id, "
        "c.code AS community_code, c.name AS community, s.code AS street_code, s.name AS street, "
        "d.code AS district_code, d.name AS district FROM grids g "
        "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories c ON c.id = g.community_id "
        "LEFT JOIN territories s ON s.id = c.parent_id LEFT JOIN territories d ON d.id = s.parent_id "
        "WHERE ST_Intersects(g.geom, ST_SetSRID(ST_Point(CAST(:x AS float8), CAST(:y AS float8)), 4490)) "
        "ORDER BY p.published_at DESC LIMIT 1"), {"x": lon, "y": lat, "on": staff_on}).first()
    return dict(row._mapping) if row else None


# -- a plan's grids and units for the planner and the plan pages (drafts included) -----------------
def grids_feature_collection(conn: sa.Connection, plan_id: int, codes: list[str] | None = None) -> dict:
    """A plan's grids (all, or those with ``codes``) as an RFC 7946 FeatureCollection; ``label`` is
    a point inside each grid for its map label."""
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',g.code,'geometry',ST_AsGeoJSON(g.geom, 7, 0)::json,"
        "'properties', json_build_object('grid_code',g.code,'community_code',c.code,'community',c.name,"
        "'kind',g.kind,'households',g.households,'population',g.population,'area_m2',round(g.area_m2::numeric,1),"
        "'compactness',(g.properties->>'compactness')::float,'unit_count',(g.properties->>'unit_count')::int,"
        "'parts',COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)),'name',g.name,"
        "'site_type',g.properties->>'site_type','site_type_zh',g.properties->>'site_type_zh','worker',g.worker,"
        "'locked',g.locked,'label',ST_AsGeoJSON(ST_PointOnSurface(g.geom), 7, 0)::json)) "
        "ORDER BY g.code), '[]'::json)) FROM grids g JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p "
        "AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(CAST(:codes AS text[])))"),
        {"p": plan_id, "codes": codes}).scalar_one()


def _units_collection_sql(cast: str) -> sa.TextClause:
    """The query of :func:`units_feature_collection` (``cast``: ``json`` or ``text``). Outlines are
    simplified by Douglas–Peucker (``ST_Simplify``, small units kept), and by the topology-preserving
    version only where that leaves a unit invalid: on Reykjavík's 7,373 units 2 need it, and the
    simplification takes 0.12 s instead of 0.25–0.33 s for the same points (132,205 against 132,209).
    ``OFFSET 0`` keeps the simplified outline computed once (a lateral subquery without it is pulled up
    and its expression copied into both uses)."""
    return sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id', u.id, 'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0 AND NOT ST_IsValid(d.s) THEN "
        "ST_SimplifyPreserveTopology(u.geom, :tol) ELSE d.s END, :dec, 0)::json, 'properties', json_build_object("
        "'unit_id', u.id, 'unit_key', u.unit_key, 'grid_code', g.code, 'community_code', c.code, 'kind', u.kind, "
        "'name', u.name, 'households', u.households, 'area_m2', round(u.area_m2::numeric, 1), "
        "'compound_id', u.properties->>'compound_id', 'label', ST_AsGeoJSON(ST_PointOnSurface(u.geom), :dec, 0)::json))"
        f" ORDER BY u.id), '[]'::json))::{cast} FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id "
        "CROSS JOIN LATERAL (SELECT CASE WHEN :tol > 0 THEN ST_Simplify(u.geom, :tol, true) ELSE u.geom END AS s "
        "OFFSET 0) d "
        "WHERE pu.plan_id = :p AND (CAST(:ids AS int[]) IS NULL OR u.id = ANY(CAST(:ids AS int[])))")


def units_feature_collection(conn: sa.Connection, plan_id: int, *, unit_ids: list[int] | None = None,
                             simplify_m: float = 0.0, decimals: int = 7, as_text: bool = False) -> dict | str:
    """A plan's units (all, or ``unit_ids``) with their grid, as an RFC 7946 FeatureCollection.

    ``simplify_m`` > 0 simplifies outlines for display (about that many metres); ``decimals``
    rounds coordinates (7: about 1 cm, the stored precision; 6: about 10 cm, enough to draw).
    ``as_text``: the JSON text as PostgreSQL wrote it, for a response that sends it on as it is
    (parsing and writing again 6 MB of Reykjavík's units took 0.6 s)."""
    return conn.execute(_units_collection_sql("text" if as_text else "json"),
                        {"p": plan_id, "ids": unit_ids, "tol": simplify_m / 111_000.0, "dec": int(decimals)}).scalar_one()


__all__ = ["PUBLISHED_COLLECTIONS", "Collection", "COLLECTIONS", "items", "one", "extent", "time_extent", "tile", "context_tile", "CONTEXT_ROLES",
           "published_stamp", "locate",
           "grids_feature_collection", "units_feature_collection"]


def unplanned_at(conn: sa.Connection, lon: float, lat: float) -> tuple[str, str] | None:
    """Where no published grid holds a point (lon/lat in EPSG:4490): the territory holding it that
    has no published plan over it (its district where it has one, else the community), as (code,
    name); None when no community holds the point, or one does and a published plan covers it (a
    gap between that plan's grids)."""
    from gridmap.store.plans import published_above

    community = conn.execute(sa.text(
        "SELECT code FROM territories WHERE level = 'community' AND ST_Intersects(geom, ST_SetSRID(ST_Point("
        "CAST(:x AS float8), CAST(:y AS float8)), 4490)) ORDER BY code LIMIT 1"), {"x": lon, "y": lat}).scalar()
    if community is None or published_above(conn, community) is not None:
        return None
    row = conn.execute(sa.text(
        "WITH RECURSIVE up AS (SELECT id, parent_id, level, code, name, 0 AS depth FROM territories WHERE code = :c "
        "UNION ALL SELECT t.id, t.parent_id, t.level, t.code, t.name, up.depth + 1 FROM territories t "
        "JOIN up ON t.id = up.parent_id) SELECT code, name FROM up ORDER BY (level = 'district') DESC, depth LIMIT 1"),
        {"c": community}).first()
    return (row[0], row[1] or row[0]) if row else None


def no_published_plan(code: str, name: str) -> tuple[str, str]:
    """What a place without a published plan is told (English, Chinese)."""
    return (f"{name} ({code}) has no published grid plan yet: an administrator publishes one in the planner "
            "before incidents can be reported here",
            f"{name}（{code}）尚未发布网格方案：管理员在网格规划页发布方案后才能在此上报事件")


class NoPublishedPlanHere(NotFound):
    """No published grid at a point because its territory has no published plan at all (not a gap
    between grids): the answer names the territory and says ``reason: no_published_plan``."""

    def __init__(self, code: str, name: str):
        super().__init__(*no_published_plan(code, name))
        self.territory = code

    def details(self) -> dict:
        return {"reason": "no_published_plan", "territory": self.territory}
