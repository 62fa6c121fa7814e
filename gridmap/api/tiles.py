"""Mapbox Vector Tiles of the published collections, built in PostGIS, with TileJSON 3.0.

Tile URLs carry a version (``?v=``) that changes whenever a plan is published, so a browser or a
proxy may keep a versioned tile for a day: after a publish, clients that read the TileJSON again
ask for new URLs and never draw the grids of a plan that is no longer published. A tile asked for
without the current version is served fresh and not to be cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sized
from typing import Generic, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gridmap.api.deps import get_conn, public_reader
from gridmap.api.features import base_url
from gridmap.errors import NotFound
from gridmap.geo.tile_matrix_sets import MAX_LEVEL, TILE_MATRIX_SETS, WEB_MERCATOR_QUAD, TileMatrixSet
from gridmap.store import features
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["vector tiles"])
MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = MAX_LEVEL  # the XYZ tiles and both tile matrix sets go to level 22


def _collection(collection_id: str) -> features.Collection:
    c = features.COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFound(f"no collection {collection_id!r}; see /collections", f"没有数据集 {collection_id!r}；见 /collections")
    return c


@router.get("/tiles/{collection_id}/tilejson.json", summary="TileJSON 3.0 for a collection's vector tiles")
def tilejson(collection_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
             _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    c = _collection(collection_id)
    bounds = features.extent(conn, c) or [-180, -85.0511, 180, 85.0511]
    return {
        "tilejson": "3.0.0", "name": c.id, "description": c.description, "scheme": "xyz",
        "tiles": [f"{base_url(request)}/tiles/{c.id}/{{z}}/{{x}}/{{y}}.mvt?v={features.published_stamp(conn)}"],
        "minzoom": 0, "maxzoom": MAX_ZOOM, "bounds": bounds,
        "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6), 13],
        "vector_layers": [{"id": c.id, "description": c.title,
                           "fields": {k: k for k in c.properties if k != "services"}}],
    }


@router.get("/tiles/{collection_id}/{z}/{x}/{y}.mvt", summary="One vector tile (XYZ, Web Mercator)",
            response_class=Response, responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}})
def tile(request: Request, collection_id: str, z: int = Path(ge=0, le=MAX_ZOOM), x: int = Path(ge=0),
         y: int = Path(ge=0),
         v: str | None = Query(None, max_length=80, description="version from the TileJSON (changes on publish)"),
         conn: sa.Connection = Depends(get_conn), _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    c = _collection(collection_id)
    if x >= 2**z or y >= 2**z:
        raise NotFound(f"tile {z}/{x}/{y} does not exist: x and y must be below {2**z} at zoom {z}",
                       f"瓦片 {z}/{x}/{y} 不存在：第 {z} 级的 x 和 y 必须小于 {2**z}")
    stamp = features.published_stamp(conn)
    return _unchanged(request, collection_id, stamp) or \
        _tile_answer(collection_id, _published_tile(request, conn, c, z, x, y, stamp), v, stamp)


PLAN_COLLECTIONS = features.PUBLISHED_COLLECTIONS  # versioned by the publish stamp; the others never kept
KEPT_TILE_BYTES = 64 * 2**20
"""How many bytes of published plans' tiles a server keeps in memory (the latest asked for)."""
KEPT_OUTLINE_BYTES = 32 * 2**20
"""How many characters of the choropleth's grid outlines (:class:`gridmap.store.incident_stats.GridOutlines`)
a server keeps, in a :class:`KeptTiles` of their own: Reykjavík's 377 display outlines are 0.4 MB."""


Kept = TypeVar("Kept", bound=Sized)


class KeptTiles(Generic[Kept]):
    """The tiles of published plans a server has built, by collection, publish stamp and tile: a
    tile of one stamp never changes (its ETag says so to every cache on the way), so it is built
    once (ST_AsMVT took 9–11 ms of the database's time a tile under benchmarks/load.py). Tiles of
    an older stamp go as soon as one of a newer is kept, the least recently asked for when the
    tiles pass ``max_bytes``. One per app (``app.state.kept_tiles``): an app serves one database.
    Threads share it. It keeps anything versioned by the publish stamp whose ``len`` is its size
    (the choropleth's outlines too, ``app.state.kept_outlines``), under keys whose second element
    is the stamp.

    A tile holds its community's name: a community renamed by ``gridmap territory import
    --replace`` without a publish keeps its old name in the kept tiles (as in every HTTP cache
    holding them) until the next publish or a restart."""

    def __init__(self, max_bytes: int = KEPT_TILE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._tiles: OrderedDict[tuple, Kept] = OrderedDict()
        self._bytes = 0
        self._stamp: str | None = None
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Kept | None:
        """The tile kept under ``key`` (collection, stamp, z, x, y), or None."""
        with self._lock:
            data = self._tiles.get(key)
            if data is not None:
                self._tiles.move_to_end(key)
            return data

    def put(self, key: tuple, data: Kept) -> None:
        stamp = key[1]
        with self._lock:
            if stamp != self._stamp:  # a publish since: every kept tile is of a plan no longer published
                self._tiles.clear()
                self._bytes = 0
                self._stamp = stamp
            if key not in self._tiles:
                self._tiles[key] = data
                self._bytes += len(data)
            while self._bytes > self.max_bytes and self._tiles:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= len(dropped)


def _published_tile(request: Request, conn: sa.Connection, c: features.Collection, z: int, x: int, y: int,
                    stamp: str) -> bytes:
    """The tile, from the app's :class:`KeptTiles` when this stamp's tile was built already
    (collections of published plans only: the others are built every time)."""
    if c.id not in PLAN_COLLECTIONS:
        return features.tile(conn, c, z, x, y)
    kept: KeptTiles[bytes] = request.app.state.kept_tiles
    key = (c.id, stamp, z, x, y)
    data = kept.get(key)
    if data is None:
        data = features.tile(conn, c, z, x, y)
        kept.put(key, data)
    return data


def _tile_answer(collection_id: str, data: bytes, asked_version: str | None, stamp: str) -> Response:
    """A tile (204 when empty). A published plan's tile carries the publish stamp as its ETag and
    is cached for a day when asked for by the current version; other collections' tiles are
    answered afresh every time."""
    if collection_id not in PLAN_COLLECTIONS:
        headers = {"Cache-Control": "no-store"}
    else:
        headers = {"ETag": f'"{stamp}"', "Cache-Control": "public, max-age=86400" if asked_version == stamp else "no-cache"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


def _unchanged(request: Request, collection_id: str, stamp: str) -> Response | None:
    """304 for a published plan's tile the client holds in the current version (its If-None-Match
    names the stamp): nothing is drawn again."""
    if collection_id not in PLAN_COLLECTIONS:
        return None
    asked = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if f'"{stamp}"' in asked:
        return Response(status_code=304, headers={"ETag": f'"{stamp}"', "Cache-Control": "no-cache"})
    return None


@router.get("/tiles/context/{territory}/{z}/{x}/{y}.mvt", summary="One vector tile of a territory's own layers "
            "(water, compounds, sites, railways, roads by class, buildings): the planner's map context",
            response_class=Response, responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}})
def context_tile(request: Request, territory: str = Path(pattern=r"^[0-9]{2,20}$"), z: int = Path(ge=0, le=MAX_ZOOM),
                 x: int = Path(ge=0), y: int = Path(ge=0), conn: sa.Connection = Depends(get_conn),
                 _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    from gridmap.services.profiles import of_territory
    from gridmap.store.territories import exists

    if x >= 2**z or y >= 2**z:
        raise NotFound(f"tile {z}/{x}/{y} does not exist: x and y must be below {2**z} at zoom {z}",
                       f"瓦片 {z}/{x}/{y} 不存在：第 {z} 级的 x 和 y 必须小于 {2**z}")
    if not exists(conn, territory):
        raise NotFound(f"no territory with code {territory!r}", f"没有代码为 {territory!r} 的辖区")
    data = features.context_tile(conn, territory, z, x, y, road_class=of_territory(conn, territory).roads.class_column)
    # layers change only when re-imported; behind a sign-in, no shared cache may keep a tile
    headers = {"Cache-Control": ("public" if request.app.state.settings.public_read else "private") + ", max-age=300"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


# -- OGC API - Tiles ------------------------------------------------------------------------------
# The same tiles by the standard's routes, so stock clients find them: /tileMatrixSets
# (WebMercatorQuad, WorldCRS84Quad), /collections/{id}/tiles (the tilesets of a collection),
# /collections/{id}/tiles/{tms} (one tileset, its URL template carrying the version) and
# /collections/{id}/tiles/{tms}/{tileMatrix}/{tileRow}/{tileCol} (a tile: row is y, col x).
# GDAL's OGCAPI driver takes the WorldCRS84Quad tileset when there is one, and reads the
# collection's CRS84 extent in the tile matrix set's CRS: the two agree only in CRS84.
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILE_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]


def _tms(tms_id: str) -> TileMatrixSet:
    tms = TILE_MATRIX_SETS.get(tms_id)
    if tms is None:
        raise NotFound(f"no tile matrix set {tms_id!r}; see /tileMatrixSets", f"没有瓦片矩阵集 {tms_id!r}；见 /tileMatrixSets")
    return tms


@router.get("/tileMatrixSets", summary="The tile matrix sets offered (OGC API - Tiles)")
def tile_matrix_sets(request: Request) -> dict:
    return {"tileMatrixSets": [{"id": tms.id, "title": tms.title, "uri": tms.uri,
                                "links": [{"rel": "self", "type": "application/json",
                                           "href": f"{base_url(request)}/tileMatrixSets/{tms.id}"}]}
                               for tms in TILE_MATRIX_SETS.values()]}


@router.get("/tileMatrixSets/{tms_id}", summary="One tile matrix set (OGC Two Dimensional Tile Matrix Set)")
def tile_matrix_set(tms_id: str) -> dict:
    return _tms(tms_id).document()


def _tileset(request: Request, conn: sa.Connection, c: features.Collection, tms: TileMatrixSet) -> dict:
    base = base_url(request)
    bounds = features.extent(conn, c) or [-180, -85.0511, 180, 85.0511]
    stamp = features.published_stamp(conn)
    return {
        "title": f"{c.title} ({tms.id})", "dataType": "vector", "crs": tms.crs, "tileMatrixSetURI": tms.uri,
        "boundingBox": {"lowerLeft": bounds[:2], "upperRight": bounds[2:],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "layers": [{"id": c.id, "dataType": "vector", "geometryType": c.geometry_type,
                    "propertiesSchema": {"type": "object", "properties": {
                        name: {"type": kind, **({"format": fmt} if fmt else {})}
                        for name, (kind, fmt) in features.property_types(conn, c).items()}}}],
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections/{c.id}/tiles/{tms.id}"},
            {"rel": TILING_SCHEME_REL, "type": "application/json", "href": f"{base}/tileMatrixSets/{tms.id}"},
            {"rel": "item", "type": MVT, "templated": True,  # the version changes when a plan is published
             "href": f"{base}/collections/{c.id}/tiles/{tms.id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?v={stamp}"},
        ],
    }


@router.get("/collections/{collection_id}/tiles", summary="The tilesets of a collection (OGC API - Tiles)")
def collection_tilesets(collection_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
                        _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    c = _collection(collection_id)
    listed = []
    for tms in TILE_MATRIX_SETS.values():
        tileset = _tileset(request, conn, c, tms)
        summary = {k: tileset[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI")}
        listed.append({**summary, "links": [tileset["links"][0], tileset["links"][1]]})
    return {"tilesets": listed}


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="A collection's tileset (OGC API - Tiles)")
def collection_tileset(collection_id: str, tms_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
                       _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    c = _collection(collection_id)
    return _tileset(request, conn, c, _tms(tms_id))


@router.get("/collections/{collection_id}/tiles/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}",
            summary="One vector tile (OGC API - Tiles: row is y, column x)", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}})
def collection_tile(request: Request, collection_id: str, tms_id: str, tile_matrix: int = Path(ge=0, le=MAX_ZOOM),
                    tile_row: int = Path(ge=0), tile_col: int = Path(ge=0),
                    v: str | None = Query(None, max_length=80, description="version from the tileset (changes on "
                                                                            "publish)"),
                    conn: sa.Connection = Depends(get_conn),
                    _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    tms = _tms(tms_id)
    if tms is WEB_MERCATOR_QUAD:
        return tile(request, collection_id, tile_matrix, tile_col, tile_row, v, conn, _reader)
    c = _collection(collection_id)
    if not tms.contains(tile_matrix, tile_row, tile_col):
        columns, rows = tms.matrix_size(tile_matrix)
        raise NotFound(f"tile {tile_matrix}/{tile_row}/{tile_col} does not exist in {tms.id}: rows below {rows}, "
                       f"columns below {columns}",
                       f"瓦片 {tile_matrix}/{tile_row}/{tile_col} 不在 {tms.id} 中：行号须小于 {rows}，列号须小于 {columns}")
    stamp = features.published_stamp(conn)
    unchanged = _unchanged(request, collection_id, stamp)
    if unchanged is not None:
        return unchanged
    data = features.tile_crs84(conn, c, tms.tile_bounds(tile_matrix, tile_row, tile_col))
    return _tile_answer(collection_id, data, v, stamp)
