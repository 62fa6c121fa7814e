"""OGC API - Features, Part 1: Core (with GeoJSON), and Part 3: Filtering (queryables, CQL2 text
and JSON through ``pygeofilter``), over the published data.

``/`` answers the OGC landing document (JSON) to API clients and HTML only to browsers: a client
that sends ``Accept: */*`` (OWSLib, curl) or ``?f=json`` gets JSON; HTML goes to those that name
``text/html`` (every browser does) or ask ``?f=html``. The API definition is OpenAPI 3.1 (what
FastAPI writes), so the OpenAPI 3.0 conformance class is not claimed.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gridmap import __version__
from gridmap.api.deps import get_conn, public_reader
from gridmap.api.errors import bilingual_body, utc
from gridmap.errors import Invalid, NotFound
from gridmap.store import features
from gridmap.store.features import NoPublishedPlanHere
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["OGC API Features"])
GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
]
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
STORAGE_CRS = EPSG_URI + "4490"
GK_ZONES = range(4513, 4555)  # CGCS2000 3-degree Gauss-Krüger: with the zone number (4513-4533) and without
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
FILTER_LANGS = ("cql2-text", "cql2-json")
MAX_FILTER_CHARS = 20_000
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
            {"href": f"{base}/?f=html", "rel": "alternate", "type": "text/html", "title": "the landing page"},
            {"href": f"{base}/openapi.json", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.1",
             "title": "the API definition"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "the API documentation"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
             "title": "conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json", "title": "the collections"},
            {"href": f"{base}/tileMatrixSets", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
             "type": "application/json", "title": "tile matrix sets (OGC API - Tiles)"},
        ],
    }


def wants_json(request: Request) -> bool:
    """JSON unless the client asks for HTML: ``?f=html``, or an Accept header naming ``text/html``
    without ``?f=json`` (browsers); ``*/*``, no header or any JSON type get JSON."""
    fmt = request.query_params.get("f")
    if fmt:
        return fmt.lower() != "html"
    return "text/html" not in request.headers.get("accept", "")


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict:
    from gridmap.api.tiles import TILE_CONFORMANCE

    return {"conformsTo": CONFORMANCE + TILE_CONFORMANCE}


def _collection_or_404(collection_id: str) -> features.Collection:
    collection = features.COLLECTIONS.get(collection_id)
    if collection is None:
        raise NotFound(f"no collection {collection_id!r}; see /collections", f"没有数据集 {collection_id!r}；见 /collections")
    return collection


def content_crs(srs: features.OutputSRS | None) -> str:
    """The ``Content-Crs`` header of an answer (Part 2): the CRS URI in angle brackets."""
    return f"<{CRS84 if srs is None else EPSG_URI + str(srs.srid)}>"


def output_srs(uri: str) -> features.OutputSRS | None:
    """The ``crs`` (or ``bbox-crs``) parameter: None for CRS84 (the default), else EPSG:4490,
    EPSG:4326 or a CGCS2000 Gauss-Krüger zone (EPSG:4513-4554), each in its own axis order as
    OGC API - Features Part 2 asks (latitude or northing first); anything else is refused."""
    if uri in (CRS84, "CRS84", "OGC:CRS84"):
        return None
    code = uri.removeprefix(EPSG_URI).removeprefix("EPSG:")
    if not code.isdigit() or not (int(code) in (4490, 4326) or int(code) in GK_ZONES):
        raise Invalid(f"crs {uri!r} is not offered: use {CRS84}, {EPSG_URI}4490, {EPSG_URI}4326 or a CGCS2000 "
                      f"3-degree Gauss-Krüger zone {EPSG_URI}4513 … 4554",
                      f"不提供坐标系 {uri!r}：可用 {CRS84}、{EPSG_URI}4490、{EPSG_URI}4326 或 CGCS2000 三度带高斯-克吕格投影 "
                      f"{EPSG_URI}4513 … 4554")
    from pyproj import CRS

    crs = CRS.from_epsg(int(code))
    return features.OutputSRS(int(code), crs.axis_info[0].direction in ("north", "south"),
                              7 if crs.is_geographic else 3)


def offered_crs(box: list[float] | None) -> list[str]:
    """CRS84, CGCS2000, WGS84 and the Gauss-Krüger zone of the data's centre (both numberings)."""
    from gridmap.geo.crs import CRSError, gk3_zone_crs

    out = [CRS84, STORAGE_CRS, EPSG_URI + "4326"]
    if box:
        try:
            out += [EPSG_URI + str(gk3_zone_crs((box[0] + box[2]) / 2, with_zone_prefix=p).to_epsg())
                    for p in (True, False)]
        except CRSError:  # outside China's zones (the demo abroad): the geographic ones only
            pass
    return out


def bbox_in_crs84(box: tuple[float, float, float, float] | None, bbox_crs: str) -> tuple[float, float, float, float] | None:
    """A ``bbox`` given in ``bbox-crs`` (its axis order) as CRS84 longitude/latitude."""
    srs = output_srs(bbox_crs)
    if box is None or srs is None:
        return box
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(srs.srid, 4490, always_xy=False)  # authority axis order in and out
    lat0, lon0, lat1, lon1 = to_lonlat.transform_bounds(*box)
    return lon0, lat0, lon1, lat1


def describe(conn: sa.Connection, request: Request, c: features.Collection) -> dict:
    base = base_url(request)
    box = features.extent(conn, c)
    extent: dict = {"spatial": {"bbox": [box or [-180, -90, 180, 90]], "crs": CRS84}}
    temporal = features.time_extent(conn, c)
    if temporal:
        extent["temporal"] = {"interval": [temporal], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        "crs": offered_crs(box), "storageCrs": STORAGE_CRS,
        "extent": extent, "title_zh": c.title_zh, "queryables": sorted(c.queryable_exprs),
        "links": [
            {"href": f"{base}/collections/{c.id}", "rel": "self", "type": "application/json", "title": c.title},
            {"href": f"{base}/collections/{c.id}/items", "rel": "items", "type": GEOJSON, "title": "items"},
            {"href": f"{base}/collections/{c.id}/queryables", "rel": QUERYABLES_REL, "type": "application/schema+json",
             "title": "the properties a filter may use"},
            {"href": f"{base}/tiles/{c.id}/tilejson.json", "rel": "tiles", "type": "application/json",
             "title": "vector tiles (TileJSON)"},
            {"href": f"{base}/collections/{c.id}/tiles", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
             "type": "application/json", "title": "vector tilesets (OGC API - Tiles)"},
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


def _bbox_refused(bbox_crs: str) -> Invalid:
    if bbox_crs in (CRS84, "CRS84", "OGC:CRS84"):
        return Invalid("bbox must be four numbers: minLon,minLat,maxLon,maxLat",
                       "bbox 必须是四个数：最小经度,最小纬度,最大经度,最大纬度")
    return Invalid("bbox must be four numbers in the axis order of bbox-crs", "bbox 必须是四个数，按 bbox-crs 的坐标轴顺序")


def parse_bbox(value: str | None, bbox_crs: str = CRS84) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if bbox_crs not in (CRS84, "CRS84", "OGC:CRS84"):
        try:
            parts = [float(v) for v in value.split(",")]
        except ValueError:
            raise _bbox_refused(bbox_crs) from None
        if len(parts) != 4:
            raise _bbox_refused(bbox_crs)
        return bbox_in_crs84((parts[0], parts[1], parts[2], parts[3]), bbox_crs)
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise _bbox_refused(CRS84) from None
    if len(parts) == 6:  # 3D bbox: drop heights
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if len(parts) != 4:
        raise _bbox_refused(CRS84)
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise Invalid("bbox is outside lon -180..180, lat -90..90 or has minLat > maxLat",
                      "bbox 超出经度 -180..180、纬度 -90..90，或最小纬度大于最大纬度")
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
            raise Invalid(f"datetime {text!r} is not RFC 3339", f"datetime {text!r} 不是 RFC 3339 时间") from None

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
          filter_: str | None = Query(None, alias="filter", description="a CQL2 filter over the queryables "
                                      "(e.g. households > 400 AND community_code = '980100001')"),
          filter_lang: str = Query("cql2-text", alias="filter-lang", description="cql2-text or cql2-json"),
          filter_crs: str = Query(CRS84, alias="filter-crs", description="the CRS of geometries in the filter"),
          crs: str = Query(CRS84, description="the CRS of the answer's coordinates (CRS84, EPSG:4490, 4326, "
                                             "a CGCS2000 Gauss-Krüger zone), in that CRS's axis order"),
          bbox_crs: str = Query(CRS84, alias="bbox-crs", description="the CRS of bbox, in its axis order"),
          conn: sa.Connection = Depends(get_conn),
          _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    c = _collection_or_404(collection_id)
    # a published plan's items are versioned by the publish stamp: held in this version, not sent again
    tag = None
    if c.id in features.PUBLISHED_COLLECTIONS:
        import hashlib

        stamp = features.published_stamp(conn)
        tag = f'"{stamp}-{hashlib.sha256(str(request.url).encode()).hexdigest()[:16]}"'
        asked = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
        if tag in asked:
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-cache"})
    known = {"limit", "offset", "bbox", "datetime", "f", "filter", "filter-lang", "filter-crs", "crs", "bbox-crs"}
    filters = {k: v for k, v in request.query_params.items() if k not in known}
    unknown = sorted(set(filters) - set(c.queryable_exprs))
    tree = None
    try:
        if unknown:
            queryable = sorted(c.queryable_exprs)
            raise Invalid(f"unknown parameter(s) {', '.join(unknown)}; this collection can be filtered by "
                          f"{', '.join(queryable) or 'nothing else'}",
                          f"未知的参数 {'、'.join(unknown)}；此数据集可按 {'、'.join(queryable) or '（无）'} 筛选")
        tree = parse_filter(filter_, filter_lang, filter_crs)
        srs = output_srs(crs)
        page, returned, matched = features.items(conn, c, limit=limit, offset=offset, bbox=parse_bbox(bbox, bbox_crs),
                                                 interval=parse_datetime(datetime_), filters=filters, cql_filter=tree,
                                                 srs=srs)
    except Invalid as refused:
        return JSONResponse(bilingual_body(refused), status_code=400)
    except (sa.exc.ProgrammingError, sa.exc.DataError, sa.exc.InternalError) as exc:
        if tree is None:
            raise
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]  # e.g. a number compared with a text property
        return JSONResponse(bilingual_body(Invalid(f"filter cannot be applied: {reason}",
                                                   f"筛选条件无法执行：{reason}")), status_code=400)
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
    headers = {"Content-Crs": content_crs(srs)}
    if tag:
        headers.update({"ETag": tag, "Cache-Control": "no-cache"})
    return Response(body.encode(), media_type=GEOJSON, headers=headers)


def parse_filter(text: str | None, lang: str, crs: str):
    """The ``filter`` parameter parsed by pygeofilter's CQL2 parsers (None when absent); a filter
    that does not parse, an unknown language or a CRS other than CRS84 is refused in both languages."""
    if text is None:
        return None
    if lang not in FILTER_LANGS:
        raise Invalid(f"filter-lang must be one of {', '.join(FILTER_LANGS)}", f"filter-lang 只能是 {'、'.join(FILTER_LANGS)}")
    if crs not in (CRS84, "CRS84", "OGC:CRS84"):
        raise Invalid(f"filter-crs must be {CRS84} (longitude, latitude)", f"filter-crs 只能是 {CRS84}（经度、纬度）")
    if len(text) > MAX_FILTER_CHARS:
        raise Invalid(f"filter is longer than {MAX_FILTER_CHARS:,} characters", f"filter 超过 {MAX_FILTER_CHARS:,} 个字符")
    from gridmap.store.cql import temporal_refused, uses_temporal_functions

    try:
        if lang == "cql2-json":
            import json

            from pygeofilter.parsers.cql2_json import parse as parse_json

            tree = json.loads(text)
            if uses_temporal_functions(tree=tree):
                raise temporal_refused()
            return parse_json(_bbox_in_order(tree))
        from pygeofilter.parsers.cql2_text import parse as parse_text

        if uses_temporal_functions(text):
            raise temporal_refused()
        return parse_text(text)
    except Invalid:
        raise
    except Exception as exc:  # noqa: BLE001 - the parsers raise lark's and their own errors
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise Invalid(f"filter is not valid {lang}: {reason}", f"filter 不是有效的 {lang}：{reason}") from None


def _bbox_in_order(node):
    """pygeofilter 0.4's CQL2-JSON parser reads ``{"bbox": [minx, miny, maxx, maxy]}`` in the wrong
    order (geopython/pygeofilter#163: its Envelope takes x1, x2, y1, y2): hand it the order it reads."""
    if isinstance(node, dict):
        if set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
            b = node["bbox"]
            x0, y0, x1, y1 = (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
            return {"bbox": [x0, x1, y0, y1]}
        return {k: _bbox_in_order(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_bbox_in_order(v) for v in node]
    return node


@router.get("/collections/{collection_id}/queryables", summary="The properties a filter may use (JSON Schema)",
            response_class=JSONResponse, responses={200: {"content": {"application/schema+json": {}}}})
def queryables(collection_id: str, request: Request, conn: sa.Connection = Depends(get_conn),
               _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    import json

    c = _collection_or_404(collection_id)
    props: dict[str, dict] = {}
    for name, (kind, fmt) in features.queryable_types(conn, c).items():
        props[name] = {"title": name, "type": kind, **({"format": fmt} if fmt else {})}
    geometry = "point" if c.geometry_type == "point" else "polygon"
    props["geometry"] = {"title": "geometry", "format": f"geometry-{geometry}",
                         "$ref": f"https://geojson.org/schema/{geometry.capitalize()}.json"}
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema",
           "$id": f"{base_url(request)}/collections/{c.id}/queryables", "type": "object", "title": c.title,
           "description": c.title_zh, "properties": props, "additionalProperties": False}
    return Response(json.dumps(doc, ensure_ascii=False).encode(), media_type="application/schema+json")


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature (GeoJSON)",
            response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def item(collection_id: str, feature_id: str, request: Request,
         crs: str = Query(CRS84, description="the CRS of the answer's coordinates, in its axis order"),
         conn: sa.Connection = Depends(get_conn), _reader: CurrentUser | None = Depends(public_reader)) -> Response:
    import json

    c = _collection_or_404(collection_id)
    try:
        srs = output_srs(crs)
    except Invalid as refused:
        return JSONResponse(bilingual_body(refused), status_code=400)
    text = features.one(conn, c, feature_id, srs)
    if text is None:
        raise NotFound(f"no feature {feature_id!r} in {collection_id}", f"{collection_id} 中没有要素 {feature_id!r}")
    feature = json.loads(text)
    base = base_url(request)
    feature["links"] = [
        {"href": f"{base}/collections/{c.id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": f"{base}/collections/{c.id}", "rel": "collection", "type": "application/json"}]
    return Response(json.dumps(feature, ensure_ascii=False).encode(), media_type=GEOJSON,
                    headers={"Content-Crs": content_crs(srs)})


@router.get("/api/locate", tags=["grids"], summary="The published grid (and community, street, district) at a "
            "point; crs=gcj02 for Amap/Tencent coordinates")
def locate(request: Request, lon: float = Query(ge=-180, le=180), lat: float = Query(ge=-90, le=90),
           crs: str = Query("4490", pattern="^(4490|4326|gcj02)$"), conn: sa.Connection = Depends(get_conn),
           reader: CurrentUser | None = Depends(public_reader)) -> dict:
    if crs == "gcj02":
        import numpy as np

        from gridmap.geo.crs import gcj02_to_wgs84

        x, y = gcj02_to_wgs84(np.array([lon]), np.array([lat]))
        lon, lat = float(x[0]), float(y[0])
    # the grid's worker: the staff's full-time workers today for a signed-in reader (names on the
    # staff are not public), the plan's text for anyone
    today = datetime.now(request.app.state.calendar.zone).date() if reader is not None else None
    found = features.locate(conn, lon, lat, staff_on=today)
    if found is None:
        unplanned = features.unplanned_at(conn, lon, lat)
        if unplanned is not None:  # not a gap between grids: the place has no published plan at all
            raise NoPublishedPlanHere(*unplanned)
        raise NotFound(f"no published grid at lon {lon:.6f}, lat {lat:.6f}",
                       f"经度 {lon:.6f}、纬度 {lat:.6f} 处没有已发布的网格")
    return {**found, "lon": lon, "lat": lat}
