"""OGC API - Features Part 3 over real PostGIS, read by stock clients: OWSLib (which sends
``Accept: */*``) reads the landing page, conformance, collections, queryables and filtered items
from the real server; CQL2 text and JSON filters select what the same condition selects in
Python, values are bound (a quote in a value cannot change the query) and bad filters are
refused in both languages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import shape

from gridmap.api.app import create_app
from samples import serve

MONACO = "980100"


@pytest.fixture
def served(monaco_published: sa.Engine, database_url: str) -> tuple[sa.Engine, TestClient, list[dict]]:
    client = TestClient(create_app(database_url=database_url))
    grids = client.get("/collections/grids/items", params={"limit": 10000}).json()["features"]
    assert len(grids) > 10
    return monaco_published, client, grids


def codes(answer) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {f["properties"]["grid_code"] for f in answer.json()["features"]}


def test_cql2_text_and_json_select_what_the_condition_selects(served) -> None:
    _, client, grids = served
    households = sorted(f["properties"]["households"] for f in grids)
    cut = households[len(households) // 2]
    community = grids[0]["properties"]["community_code"]
    expected = {f["properties"]["grid_code"] for f in grids
                if f["properties"]["households"] > cut and f["properties"]["community_code"] == community}
    text = f"households > {cut} AND community_code = '{community}'"
    got = codes(client.get("/collections/grids/items", params={"filter": text, "limit": 10000}))
    assert got == expected and 0 < len(got) < len(grids)
    as_json = {"op": "and", "args": [{"op": ">", "args": [{"property": "households"}, cut]},
                                     {"op": "=", "args": [{"property": "community_code"}, community]}]}
    assert codes(client.get("/collections/grids/items", params={"filter": json.dumps(as_json),
                                                                "filter-lang": "cql2-json", "limit": 10000})) == expected
    # IN, BETWEEN, LIKE, NOT and arithmetic
    some = sorted(f["properties"]["grid_code"] for f in grids)[:3]
    assert codes(client.get("/collections/grids/items", params={
        "filter": "grid_code IN (" + ", ".join(f"'{c}'" for c in some) + ")", "limit": 100})) == set(some)
    lo, hi = households[2], households[-3]
    assert codes(client.get("/collections/grids/items", params={"filter": f"households BETWEEN {lo} AND {hi}",
                                                                "limit": 10000})) == \
        {f["properties"]["grid_code"] for f in grids if lo <= f["properties"]["households"] <= hi}
    prefix = some[0][:-2]
    assert codes(client.get("/collections/grids/items", params={"filter": f"grid_code LIKE '{prefix}%'",
                                                                "limit": 10000})) == \
        {f["properties"]["grid_code"] for f in grids if f["properties"]["grid_code"].startswith(prefix)}
    assert codes(client.get("/collections/grids/items", params={"filter": f"NOT (households * 2 <= {2 * cut})",
                                                                "limit": 10000})) == \
        {f["properties"]["grid_code"] for f in grids if f["properties"]["households"] > cut}


def test_spatial_filters_find_the_grid_at_a_point(served) -> None:
    _, client, grids = served
    target = grids[len(grids) // 2]
    point = shapely.point_on_surface(shape(target["geometry"]))
    found = codes(client.get("/collections/grids/items", params={
        "filter": f"S_INTERSECTS(geometry, POINT({point.x} {point.y}))"}))
    assert found == {target["properties"]["grid_code"]}
    box = shape(target["geometry"]).bounds
    near = codes(client.get("/collections/grids/items", params={
        "filter": "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*box), "limit": 1000}))
    assert target["properties"]["grid_code"] in near and len(near) < len(grids)
    as_json = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(box)}]}
    assert codes(client.get("/collections/grids/items", params={"filter": json.dumps(as_json),
                                                                "filter-lang": "cql2-json", "limit": 1000})) == near


def test_values_are_bound_and_bad_filters_are_refused_in_both_languages(served) -> None:
    engine, client, grids = served
    quote = {"op": "or", "args": [{"op": "=", "args": [{"property": "name"}, "x' OR '1'='1"]},
                                  {"op": "=", "args": [{"property": "grid_code"}, "'; DROP TABLE grids; --"]}]}
    hostile = client.get("/collections/grids/items", params={"filter": json.dumps(quote), "filter-lang": "cql2-json"})
    assert hostile.status_code == 200 and hostile.json()["numberMatched"] == 0  # values compared, never run
    # pygeofilter's text parser does not take CQL2's doubled quote (''): refused, not misread
    assert client.get("/collections/grids/items", params={"filter": "name = 'x'' OR ''1''=''1'"}).status_code == 400
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM grids")).scalar_one() >= len(grids)
    unknown = client.get("/collections/grids/items", params={"filter": "reporter_phone = '1'"})
    assert unknown.status_code == 400 and "reporter_phone" in unknown.json()["detail_en"]
    assert "可用于筛选的属性" in unknown.json()["detail_zh"]
    broken = client.get("/collections/grids/items", params={"filter": "households >>> 3"})
    assert broken.status_code == 400 and broken.json()["detail_zh"].startswith("filter 不是有效的")
    assert client.get("/collections/grids/items", params={"filter": "households > 1",
                                                          "filter-lang": "ecql"}).status_code == 400
    assert client.get("/collections/grids/items", params={
        "filter": "households > 1", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}).status_code == 400
    for refused_filter in ("community_code = 980101900001",  # a number against a text property: 400, not 500
                           " OR ".join(f"households = {i}" for i in range(1500))):  # nested too deeply
        answer = client.get("/collections/grids/items", params={"filter": refused_filter})
        assert answer.status_code == 400 and answer.json()["detail_zh"], (refused_filter[:40], answer.text[:200])
    pattern = {"op": "like", "args": [{"property": "name"}, 3]}
    assert client.get("/collections/grids/items", params={"filter": json.dumps(pattern),
                                                          "filter-lang": "cql2-json"}).status_code == 400
    after = {"op": "t_after", "args": [{"property": "reported_at"}, {"timestamp": "2026-01-01T00:00:00Z"}]}
    temporal = client.get("/collections/incidents/items", params={"filter": json.dumps(after),
                                                                  "filter-lang": "cql2-json"})
    assert temporal.status_code == 400 and "not supported" in temporal.json()["detail_en"]
    # CQL2's temporal functions (an optional class, not claimed): refused with what to write instead
    for text in ("T_AFTER(reported_at, TIMESTAMP('2026-01-01T00:00:00Z'))",  # the standard's form
                 "reported_at t_after TIMESTAMP('2026-01-01T00:00:00Z')"):  # pygeofilter's own infix form
        answer = client.get("/collections/incidents/items", params={"filter": text})
        assert answer.status_code == 400 and "compare instants" in answer.json()["detail_en"], answer.text
        assert "不支持时间函数" in answer.json()["detail_zh"]
    since = client.get("/collections/grids/items", params={"filter": "valid_from >= DATE('2000-01-01')"})
    assert since.status_code == 200 and since.json()["numberMatched"] == len(grids)
    future = client.get("/collections/grids/items", params={"filter": "valid_from > TIMESTAMP('2100-01-01T00:00:00Z')"})
    assert future.status_code == 200 and future.json()["numberMatched"] == 0
    quoted = client.get("/collections/grids/items", params={"filter": "name = 'T_AFTER(x)'"})
    assert quoted.status_code == 200 and quoted.json()["numberMatched"] == 0  # a value, not a function


def test_queryables_are_json_schema_with_the_database_types(served) -> None:
    _, client, _ = served
    answer = client.get("/collections/grids/queryables")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/schema+json")
    schema = answer.json()
    props = schema["properties"]
    assert schema["type"] == "object" and schema["$id"].endswith("/collections/grids/queryables")
    assert props["households"]["type"] == "integer" and props["area_m2"]["type"] == "number"
    assert props["grid_code"]["type"] == "string" and props["geometry"]["format"] == "geometry-polygon"
    assert client.get("/collections/incidents/queryables").json()["properties"]["reported_at"]["format"] == "date-time"
    links = {link["rel"] for link in client.get("/collections/grids").json()["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/queryables" in links
    assert client.get("/collections/nothing/queryables").status_code == 404


def test_owslib_reads_the_service_with_its_own_headers(served, database_url: str) -> None:
    """OWSLib's Features client against the real server under uvicorn: it sends ``Accept: */*``,
    so the landing page must answer JSON to it (and HTML still to a browser)."""
    from owslib.ogcapi.features import Features

    _, client, grids = served
    assert client.get("/", headers={"Accept": "*/*"}).headers["content-type"].startswith("application/json")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get("/", headers={"Accept": browser}).headers["content-type"].startswith("text/html")
    with serve(database_url) as url:
        service = Features(url)
        assert service.links and "conf/core" in " ".join(service.conformance()["conformsTo"])
        assert "grids" in {c["id"] for c in service.collections()["collections"]}
        assert "households" in service.collection_queryables("grids")["properties"]
        page = service.collection_items("grids", limit=1000)
        assert page["numberMatched"] == len(grids)
        big = service.collection_items("grids", limit=1000, filter="households > 400")
        assert {f["properties"]["grid_code"] for f in big["features"]} == \
            {f["properties"]["grid_code"] for f in grids if f["properties"]["households"] > 400}
        # GDAL's OAPIF driver reads the same collection
        info = subprocess.run(["ogrinfo", "-so", f"OAPIF:{url}", "grids"], capture_output=True, text=True, timeout=120)
        assert info.returncode == 0, info.stderr
        assert f"Feature Count: {len(grids)}" in info.stdout


def _crs_members(value, path: str = "") -> list[str]:
    """Where a GeoJSON document carries a ``crs`` member (RFC 7946 has none)."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "crs" and isinstance(inner, dict) and inner.get("type") == "name":
                found.append(path + "/crs")
            found += _crs_members(inner, f"{path}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value[:50]):
            found += _crs_members(inner, f"{path}/{i}")
    return found


def test_every_geojson_the_service_writes_is_rfc_7946(served, database_url: str) -> None:
    """PostGIS's ST_AsGeoJSON adds a ``crs`` member to every geometry not in EPSG:4326 unless told
    otherwise, and gridmap stores CGCS2000 (EPSG:4490): every GeoJSON route is read here and none
    may carry one (RFC 7946: WGS84 longitude/latitude is implied)."""
    from samples import signed_in_client

    engine, _, grids = served
    with engine.connect() as conn:
        plan_id = conn.execute(sa.text("SELECT id FROM plans WHERE status = 'published'")).scalar_one()
    client = signed_in_client(engine, database_url, "reader", "viewer", MONACO)
    routes = ["/collections/grids/items?limit=5", "/collections/units/items?limit=5",
              "/collections/communities/items", f"/collections/grids/items/{grids[0]['properties']['grid_code']}",
              f"/api/plans/{plan_id}/grids", f"/api/plans/{plan_id}/units",
              f"/api/territories/geojson?root={MONACO}", f"/api/territories/{MONACO}/incidents/choropleth"]
    for route in routes:
        answer = client.get(route)
        assert answer.status_code == 200, (route, answer.text[:200])
        body = answer.json()
        assert body.get("type") in ("FeatureCollection", "Feature"), route
        assert not _crs_members(body), (route, _crs_members(body)[:3])


def test_output_crs_part_2_in_each_crs_axis_order(served) -> None:
    """``crs``: CGCS2000 and WGS84 latitude first, Monaco's Gauss-Krüger definition refused (no EPSG
    zone at 7°E) but a zone code accepted, with ``Content-Crs``; ``bbox-crs`` in latitude-first
    order finds the same grids as the CRS84 bbox."""
    from pyproj import Transformer

    _, client, grids = served
    first = grids[0]
    code = first["properties"]["grid_code"]
    lon, lat = shapely.get_coordinates(shape(first["geometry"]))[0]
    described = client.get("/collections/grids").json()
    assert described["storageCrs"].endswith("/EPSG/0/4490") and "http://www.opengis.net/def/crs/EPSG/0/4326" in \
        described["crs"]
    answer = client.get(f"/collections/grids/items/{code}", params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"})
    assert answer.status_code == 200 and answer.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
    y, x = shapely.get_coordinates(shape(answer.json()["geometry"]))[0]
    assert abs(y - lat) < 1e-7 and abs(x - lon) < 1e-7  # latitude first
    zone = client.get("/collections/grids/items", params={"crs": "EPSG:4545", "limit": 1,
                                                          "filter": f"grid_code = '{code}'"})
    assert zone.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4545>"
    north, east = shapely.get_coordinates(shape(zone.json()["features"][0]["geometry"]))[0]
    expected = Transformer.from_crs(4490, 4545, always_xy=True).transform(lon, lat)
    assert abs(east - expected[0]) < 0.01 and abs(north - expected[1]) < 0.01  # northing first, in metres
    assert client.get("/collections/grids/items", params={"crs": "EPSG:3857"}).status_code == 400
    plain = client.get("/collections/grids/items", params={"limit": 1})
    assert plain.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    x0, y0, x1, y1 = shape(first["geometry"]).bounds
    by_lonlat = codes(client.get("/collections/grids/items", params={"bbox": f"{x0},{y0},{x1},{y1}", "limit": 1000}))
    by_latlon = codes(client.get("/collections/grids/items", params={
        "bbox": f"{y0},{x0},{y1},{x1}", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326", "limit": 1000}))
    assert code in by_lonlat and by_latlon == by_lonlat


def test_ogc_api_tiles_routes_serve_the_same_versioned_tiles(served) -> None:
    """OGC API - Tiles: the tile matrix set, a collection's tilesets and its tileset whose URL
    template (row = y, column = x) carries the publish version; the tile it names is the XYZ tile,
    decoded by mapbox-vector-tile."""
    import math

    import mapbox_vector_tile

    _, client, grids = served
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert [m["matrixWidth"] for m in tms["tileMatrices"][:4]] == [1, 2, 4, 8]
    assert abs(tms["tileMatrices"][0]["scaleDenominator"] - 559082264.0287178) < 1e-3  # the standard's value
    assert client.get("/tileMatrixSets").json()["tileMatrixSets"][0]["id"] == "WebMercatorQuad"
    assert client.get("/tileMatrixSets/nope").status_code == 404
    sets = client.get("/collections/grids/tiles").json()["tilesets"]
    assert sets[0]["dataType"] == "vector" and sets[0]["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    tileset = client.get("/collections/grids/tiles/WebMercatorQuad").json()
    template = next(link["href"] for link in tileset["links"] if link["rel"] == "item")
    stamp = client.get("/tiles/grids/tilejson.json").json()["tiles"][0].split("?v=")[1]
    assert template.endswith(f"?v={stamp}")
    lon, lat = shapely.point_on_surface(shape(grids[0]["geometry"])).coords[0]
    z = 15
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    url = template.replace("{tileMatrix}", str(z)).replace("{tileRow}", str(y)).replace("{tileCol}", str(x))
    ogc = client.get(url.split("testserver")[-1])
    assert ogc.status_code == 200 and ogc.headers["cache-control"] == "public, max-age=86400"
    assert ogc.content == client.get(f"/tiles/grids/{z}/{x}/{y}.mvt").content
    decoded = mapbox_vector_tile.decode(ogc.content)
    assert grids[0]["properties"]["grid_code"] in {f["properties"]["grid_code"] for f in decoded["grids"]["features"]}
    links = {link["rel"] for link in client.get("/collections/grids").json()["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector" in links
    assert tms["type"] == "TileMatrixSetType" and tms["tileMatrix"][3]["matrixWidth"] == 8  # TMS 1.0 for GDAL 3.6


def test_world_crs84_quad_tiles_and_gdal_reads_them_as_a_stock_client(served, database_url: str) -> None:
    """The WorldCRS84Quad tile matrix set has the standard's values; its tiles hold the grids at their
    lon/lat; and GDAL's OGCAPI driver (the GDAL 3.12 that pyogrio bundles: Debian's 3.6 was built
    without the driver's vector-tile path, GDAL #7993) opens the collection by the standard's
    routes, picks WorldCRS84Quad, fetches tiles through the versioned template and returns every
    published grid with its code (leading zeros kept) and households."""
    import mapbox_vector_tile

    _, client, grids = served
    quad = client.get("/tileMatrixSets/WorldCRS84Quad").json()
    first = quad["tileMatrices"][0]
    assert (first["matrixWidth"], first["matrixHeight"], first["cellSize"]) == (2, 1, 0.703125)
    assert abs(first["scaleDenominator"] - 279541132.0143589) < 1e-3 and quad["crs"].endswith("/OGC/1.3/CRS84")
    assert {s["id"] for s in client.get("/tileMatrixSets").json()["tileMatrixSets"]} == {"WebMercatorQuad",
                                                                                          "WorldCRS84Quad"}
    lon, lat = shapely.point_on_surface(shape(grids[0]["geometry"])).coords[0]
    z = 15
    span = 180 / 2**z
    row, col = int((90 - lat) / span), int((lon + 180) / span)
    answer = client.get(f"/collections/grids/tiles/WorldCRS84Quad/{z}/{row}/{col}")
    assert answer.status_code == 200
    decoded = mapbox_vector_tile.decode(answer.content)
    assert grids[0]["properties"]["grid_code"] in {f["properties"]["grid_code"] for f in decoded["grids"]["features"]}
    assert client.get(f"/collections/grids/tiles/WorldCRS84Quad/{z}/{2**z}/0").status_code == 404  # 2^z rows
    assert client.get(f"/collections/grids/tiles/WorldCRS84Quad/{z}/0/{2**z + 5}").status_code == 204  # 2^(z+1)
    assert client.get(f"/collections/grids/tiles/WorldCRS84Quad/{z}/0/{2**(z + 1)}").status_code == 404  # columns

    published = {f["properties"]["grid_code"]: f["properties"]["households"] for f in grids}
    # GDAL holds the interpreter while it reads: the client runs in a process of its own, beside the
    # server's thread here
    reader = ("import json, sys, pyogrio\n"
              "source = 'OGCAPI:' + sys.argv[1] + '/collections/grids'\n"
              "layers = [name for name, _ in pyogrio.list_layers(source)]\n"
              "read = pyogrio.read_dataframe(source, layer='Zoom level 14')\n"
              "print(json.dumps({'layers': layers, 'crs': read.crs.to_string(), 'codes': list(read['grid_code']),\n"
              "                  'households': [int(h) for h in read['households']]}))\n")
    with serve(database_url) as url:
        done = subprocess.run([sys.executable, "-c", reader, url], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    read = json.loads(done.stdout)
    assert "Zoom level 14" in read["layers"] and read["crs"] == "OGC:CRS84"
    assert dict(zip(read["codes"], read["households"])) == published  # every grid (a grid in two tiles: twice)
    assert all(code.startswith("9801") for code in read["codes"])


MAPLIBRE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="maplibre-gl.css"><script src="maplibre-gl.js"></script>
<style>html, body, #map { margin: 0; width: 800px; height: 600px; }</style></head>
<body><div id="map"></div><script>
const api = new URLSearchParams(location.search).get("api");
window.map = new maplibregl.Map({container: "map", center: [%(lon)f, %(lat)f], zoom: 15, attributionControl: false,
  style: {version: 8, sources: {grids: {type: "vector", url: api + "/tiles/grids/tilejson.json"}},
          layers: [{id: "grids", type: "fill", source: "grids", "source-layer": "grids",
                    paint: {"fill-color": "#2b8cbe", "fill-opacity": 0.3}}]}});
window.map.on("error", (e) => { window.mapError = String(e.error && e.error.message || e); });
</script></body></html>"""


@pytest.mark.browser
def test_maplibre_on_another_site_draws_the_grids_from_the_tilejson(served, database_url: str, tmp_path) -> None:
    """MapLibre GL JS (a stock web map, in real headless Chromium with software WebGL) on a page of
    another origin finds the tiles through the TileJSON, fetches them across origins (CORS) and
    draws the published grid under the map's centre, with its code and households."""
    import functools
    import http.server
    import shutil
    import threading

    from playwright.sync_api import sync_playwright

    _, client, grids = served
    here = grids[0]
    lon, lat = shapely.point_on_surface(shape(here["geometry"])).coords[0]
    for name in ("maplibre-gl.js", "maplibre-gl.css"):
        shutil.copy(Path(__file__).parent / "assets" / "maplibre-gl" / name, tmp_path / name)
    (tmp_path / "index.html").write_text(MAPLIBRE_PAGE % {"lon": lon, "lat": lat}, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    preflight = client.options("/tiles/grids/tilejson.json", headers={
        "Origin": "http://portal.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    try:
        with serve(database_url) as api, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{page_server.server_address[1]}/index.html?api={api}")
            page.wait_for_function("window.map && window.map.loaded() && window.map.areTilesLoaded() && "
                                   "window.map.querySourceFeatures('grids', {sourceLayer: 'grids'}).length > 0 || "
                                   "window.mapError", timeout=60000)
            assert not page.evaluate("window.mapError || ''"), page.evaluate("window.mapError")
            drawn = page.evaluate("""() => window.map.queryRenderedFeatures(
                window.map.project(window.map.getCenter()), {layers: ['grids']}).map(f => f.properties)""")
            browser.close()
    finally:
        page_server.shutdown()
    assert not errors, errors
    assert [(f["grid_code"], f["households"]) for f in drawn] == [
        (here["properties"]["grid_code"], here["properties"]["households"])]


@pytest.mark.browser  # a real HTTP server on loopback
def test_qgis_reads_the_features_and_the_tiles_with_its_own_providers(served, database_url: str) -> None:
    """QGIS 3.22 (Debian's python3-qgis, headless, in Debian's own Python): its OAPIF provider reads
    every published grid with its code as text and applies a subset string; its vector tile
    provider opens the XYZ tiles (scripts/qgis_client_check.py compares each with the server's API)."""
    script = Path(__file__).parents[1] / "scripts" / "qgis_client_check.py"
    with serve(database_url) as url:
        done = subprocess.run(["/usr/bin/python3", str(script), url], capture_output=True, text=True, timeout=240,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, (done.stdout[-1000:], done.stderr[-3000:])
    _, _, grids = served
    assert f"OAPIF {len(grids)} grids" in done.stdout and "vector tiles valid" in done.stdout


def test_the_api_definition_passes_the_ogc_checker(served) -> None:
    """ogcapi-registry validates the OpenAPI document against the OGC API rules for the
    conformance classes the service claims (it used to miss '/': the landing page was left out)."""
    import ogcapi_registry

    _, client, _ = served
    document = client.get("/openapi.json").json()
    result = ogcapi_registry.validate_ogc_api(document, client.get("/conformance").json()["conformsTo"])
    assert result.is_valid, result.errors[:5]
    assert "/" in document["paths"] and "/collections/{collection_id}/queryables" in document["paths"]
