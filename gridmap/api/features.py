"""OGC API - Features, Part 1: Core (with GeoJSON and OpenAPI 3.0), over the published data.

``/`` answers HTML to browsers (the landing page) and the OGC landing document to clients that
ask for JSON (``Accept: application/json`` or ``?f=json``).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from gridmap import __version__
from gridmap.api.deps import get_conn, public_reader
from gridmap.api.errors import utc
from gridmap.store import features
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["OGC API Features"])
GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
MAX_LIMIT = 10_000


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def landing_document(request: Request) -> dict:
    base = base_url(request)
    return {
        "title": "gridmap", "description": "Community grids (网格化服务管理): grids, units, boundaries, stations "
        "and incidents as OGC API Features and vector tiles.", "version": __version__,
        "links": [
            {"href": f"{base}/?f=json", "rel": "self", "type": "application/json", "title": "this document"},
            {"href": f"{base}/", "rel": "alternate", "type": "text/html", "title": "the landing page"},
            {"href": f"{base}/openapi.json", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "the API definition"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "the API documentation"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
             "title": "conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json", "title": "the collections"},
        ],
    }


def wants_json(request: Request) -> bool:
    fmt = request.query_params.get("f")
    if fmt:
        return fmt.lower() == "json"
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}


def _collection_or_404(collection_id: str) -> features.Collection:
    collection = features.COLLECTIONS.get(collection_id)
    if collection is None:
        raise HTTPException(404, f"no collection {collection_id!r}; see /collections")
    return collection


def describe(conn: sa.Connection, request: Request, c: features.Collection) -> dict:
    base = base_url(request)
    extent: dict = {"spatial": {"bbox": [features.extent(conn, c) or [-180, -90, 180, 90]], "crs": CRS84}}
    temporal = features.time_extent(conn, c)
    if temporal:
        extent["temporal"] = {"interval": [temporal], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature", "crs": [CRS84],
        "extent": extent, "title_zh": c.title_zh, "queryables": sorted(c.queryables),
        "links": [
            {"href": f"{base}/collections/{c.id}", "rel": "self", "type": "application/json", "title": c.title},
            {"href": f"{base}/collections/{c.id}/items", "rel": "items", "type": GEOJSON, "title": "items"},
            {"href": f"{base}/tiles/{c.id}/tilejson.json", "rel": "tiles", "type": "application/json",
             "title": "vector tiles (TileJSON)"},
        ],
    }


@router.get("/collections", summary="The collections served")
def collections(request: Request, conn: sa.Connection = Depends(get_conn),
                _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    base = base_url(request)
    return {"links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
            "collections": [describe(conn, request, c) for c in features.COLLECTIONS.values()]}


@router.get("/collections/{collection_id}", summary="One collection")
def collection(collection_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
               _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    return describe(conn, request, _collection_or_404(collection_id))


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise HTTPException(400, "bbox must be four numbers: minLon,minLat,maxLon,maxLat") from None
    if len(parts) == 6:  # 3D bbox: drop heights
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if len(parts) != 4:
        raise HTTPException(400, "bbox must be four numbers: minLon,minLat,maxLon,maxLat")
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise HTTPException(400, "bbox is outside lon -180..180, lat -90..90 or has minLat > maxLat")
    if x0 > x1:  # crosses the antimeridian: no territory here does; take the whole width
        x0, x1 = -180.0, 180.0
    return x0, y0, x1, y1


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """An RFC 3339 instant or an interval ``start/end`` with ``..`` for open ends."""
    if value is None:
        return None

    def one(text: str) -> datetime | None:
        if text in ("..", ""):
            return None
        try:
            return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise HTTPException(400, f"datetime {text!r} is not RFC 3339") from None

    if "/" in value:
        start, end = value.split("/", 1)
        return one(start), one(end)
    instant = one(value)
    return instant, instant


@router.get("/collections/{collection_id}/items", summary="Features of a collection (GeoJSON), paged",
            response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def items(collection_id: str, request: Request,
          limit: int = Query(10, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0),
          bbox: str | None = Query(None, description="minLon,minLat,maxLon,maxLat (CRS84)"),
          datetime_: str | None = Query(None, alias="datetime", description="instant or interval a/b, .. open"),
          conn: sa.Connection = Depends(get_conn),
          _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    c = _collection_or_404(collection_id)
    known = {"limit", "offset", "bbox", "datetime", "f"}
    filters = {k: v for k, v in request.query_params.items() if k not in known}
    unknown = sorted(set(filters) - set(c.queryables))
    if unknown:
        raise HTTPException(400, f"unknown parameter(s) {', '.join(unknown)}; this collection can be filtered by "
                                 f"{', '.join(sorted(c.queryables)) or 'nothing else'}")
    page, returned, matched = features.items(conn, c, limit=limit, offset=offset, bbox=parse_bbox(bbox),
                                   interval=parse_datetime(datetime_), filters=filters)
    base = f"{base_url(request)}/collections/{c.id}/items"
    keep = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}

    def link(rel: str, at: int) -> dict:
        return {"href": f"{base}?{urlencode({**keep, 'limit': limit, 'offset': at})}", "rel": rel, "type": GEOJSON}

    links = [link("self", offset), {"href": f"{base_url(request)}/collections/{c.id}", "rel": "collection",
                                    "type": "application/json"}]
    if offset + limit < matched:
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    import json

    head = json.dumps({"type": "FeatureCollection", "numberMatched": matched, "numberReturned": returned,
                       "timeStamp": datetime.now().astimezone().isoformat(timespec="seconds"), "links": links},
                      ensure_ascii=False)
    body = head[:-1] + ', "features": ' + page + "}"
    return Response(body.encode(), media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature (GeoJSON)",
            response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def item(collection_id: str, feature_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
         _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    import json

    c = _collection_or_404(collection_id)
    text = features.one(conn, c, feature_id)
    if text is None:
        raise HTTPException(404, f"no feature {feature_id!r} in {collection_id}")
    feature = json.loads(text)
    base = base_url(request)
    feature["links"] = [
        {"href": f"{base}/collections/{c.id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": f"{base}/collections/{c.id}", "rel": "collection", "type": "application/json"}]
    return Response(json.dumps(feature, ensure_ascii=False).encode(), media_type=GEOJSON)


@router.get("/api/locate", tags=["grids"], summary="The published grid (and community, street, district) at a "
            "point; crs=gcj02 for Amap/Tencent coordinates")
def locate(lon: float = Query(ge=-180, le=180), lat: float = Query(ge=-90, le=90),
           crs: str = Query("4490", pattern="^(4490|4326|gcj02)$"), conn: sa.Connection = Depends(get_conn),
           _reader: CurrentUser | None = Depends(public_reader)) -> dict:
    if crs == "gcj02":
        import numpy as np

        from gridmap.geo.crs import gcj02_to_wgs84

        x, y = gcj02_to_wgs84(np.array([lon]), np.array([lat]))
        lon, lat = float(x[0]), float(y[0])
    found = features.locate(conn, lon, lat)
    if found is None:
        raise HTTPException(404, f"no published grid at lon {lon:.6f}, lat {lat:.6f}")
    return {**found, "lon": lon, "lat": lat}
