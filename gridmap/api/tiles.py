"""Mapbox Vector Tiles of the published collections, built in PostGIS, with TileJSON 3.0.

Tile URLs carry a version (``?v=``) that changes whenever a plan is published, so a browser or a
proxy may keep a versioned tile for a day: after a publish, clients that read the TileJSON again
ask for new URLs and never draw the grids of a plan that is no longer published. A tile asked for
without the current version is served fresh and not to be cached."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from gridmap.api.deps import get_conn, public_reader
from gridmap.api.features import base_url
from gridmap.store import features
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["vector tiles"])
MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22


def _collection(collection_id: str) -> features.Collection:
    c = features.COLLECTIONS.get(collection_id)
    if c is None:
        raise HTTPException(404, f"no collection {collection_id!r}; see /collections")
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
def tile(collection_id: str, z: int = Path(ge=0, le=MAX_ZOOM), x: int = Path(ge=0), y: int = Path(ge=0),
         v: str | None = Query(None, max_length=80, description="version from the TileJSON (changes on publish)"),
         conn: sa.Connection = Depends(get_conn), _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    c = _collection(collection_id)
    if x >= 2**z or y >= 2**z:
        raise HTTPException(404, f"tile {z}/{x}/{y} does not exist: x and y must be below {2**z} at zoom {z}")
    data = features.tile(conn, c, z, x, y)
    stamp = features.published_stamp(conn)
    headers = {"ETag": f'"{stamp}"', "Cache-Control": "public, max-age=86400" if v == stamp else "no-cache"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


@router.get("/tiles/context/{territory}/{z}/{x}/{y}.mvt", summary="One vector tile of a territory's own layers "
            "(water, compounds, sites, railways, roads by class, buildings): the planner's map context",
            response_class=Response, responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}})
def context_tile(request: Request, territory: str = Path(pattern=r"^[0-9]{2,20}$"), z: int = Path(ge=0, le=MAX_ZOOM),
                 x: int = Path(ge=0), y: int = Path(ge=0), conn: sa.Connection = Depends(get_conn),
                 _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    from gridmap.services.profiles import of_territory
    from gridmap.store.territories import exists

    if x >= 2**z or y >= 2**z:
        raise HTTPException(404, f"tile {z}/{x}/{y} does not exist: x and y must be below {2**z} at zoom {z}")
    if not exists(conn, territory):
        raise HTTPException(404, f"no territory with code {territory!r}")
    data = features.context_tile(conn, territory, z, x, y, road_class=of_territory(conn, territory).roads.class_column)
    # layers change only when re-imported; behind a sign-in, no shared cache may keep a tile
    headers = {"Cache-Control": ("public" if request.app.state.settings.public_read else "private") + ", max-age=300"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
