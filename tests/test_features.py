"""OGC API - Features (Part 1 Core) and vector tiles over real PostGIS: the landing document,
conformance, collections, paged items with bbox/datetime/property filters, single features, and
MVT tiles decoded by an independent decoder (mapbox-vector-tile)."""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlparse

import mapbox_vector_tile
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import shape

from gridmap.api.app import create_app
from gridmap.services import planning
from conftest import published_plan_id

MONACO = "980100"


@pytest.fixture
def served(monaco_published: sa.Engine, database_url: str) -> tuple[sa.Engine, TestClient, int]:
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    planning.new_draft(monaco, MONACO, actor="test")  # a draft, never served
    return monaco, TestClient(create_app(database_url=database_url)), plan_id


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_landing_and_conformance(served) -> None:
    _, client, _ = served
    landing = client.get("/", headers={"Accept": "application/json"})
    assert landing.headers["content-type"].startswith("application/json")
    rels = {link["rel"]: link["href"] for link in landing.json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert client.get(urlparse(rels["service-desc"]).path).json()["openapi"].startswith("3.")
    assert client.get("/?f=json").json()["title"] == "gridmap"
    assert client.get("/", headers={"Accept": "text/html"}).headers["content-type"].startswith("text/html")
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes


def test_collections_describe_themselves(served) -> None:
    _, client, _ = served
    body = client.get("/collections").json()
    ids = {c["id"] for c in body["collections"]}
    assert {"grids", "units", "communities", "stations", "incidents"} <= ids
    grids = client.get("/collections/grids").json()
    assert grids["itemType"] == "feature" and grids["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in grids["crs"]
    x0, y0, x1, y1 = grids["extent"]["spatial"]["bbox"][0]
    assert 7.40 < x0 < x1 < 7.45 and 43.72 < y0 < y1 < 43.76  # Monaco
    assert {link["rel"] for link in grids["links"]} >= {"self", "items"}
    assert client.get("/collections/nothing").status_code == 404


def test_items_are_the_published_grids_paged(served) -> None:
    engine, client, published_id = served
    with engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": published_id}).scalar()
    first = client.get("/collections/grids/items", params={"limit": 20})
    assert first.status_code == 200 and first.headers["content-type"] == "application/geo+json"
    page = first.json()
    assert page["type"] == "FeatureCollection" and page["numberMatched"] == expected
    assert page["numberReturned"] == len(page["features"]) == 20
    assert {f["properties"]["plan_id"] for f in page["features"]} == {published_id}  # never the draft
    seen = [f["id"] for f in page["features"]]
    links = {link["rel"]: link["href"] for link in page["links"]}
    assert "prev" not in links
    while "next" in links:
        url = urlparse(links["next"])
        page = client.get(url.path, params={k: v[0] for k, v in parse_qs(url.query).items()}).json()
        seen += [f["id"] for f in page["features"]]
        links = {link["rel"]: link["href"] for link in page["links"]}
        assert "prev" in links
    assert len(seen) == len(set(seen)) == expected
    feature = page["features"][0]
    lon, lat = shape(feature["geometry"]).representative_point().coords[0]
    assert -180 <= lon <= 180 and -90 <= lat <= 90 and lon < lat  # RFC 7946 order: lon, lat (Monaco: 7.4, 43.7)
    assert isinstance(feature["properties"]["grid_code"], str) and len(feature["properties"]["grid_code"]) == 15


def test_bbox_and_property_filters(served) -> None:
    _, client, _ = served
    everything = client.get("/collections/grids/items", params={"limit": 1000}).json()["features"]
    box = (7.415, 43.725, 7.425, 43.735)
    want = {f["id"] for f in everything if shape(f["geometry"]).intersects(shapely.box(*box))}
    got = client.get("/collections/grids/items", params={"limit": 1000, "bbox": ",".join(map(str, box))}).json()
    got_ids = {f["id"] for f in got["features"]}
    assert want and want <= got_ids  # bbox filters by envelope: a superset of exact intersections
    envelope = {f["id"] for f in everything if shapely.box(*shape(f["geometry"]).bounds).intersects(shapely.box(*box))}
    assert got_ids == envelope
    dedicated = client.get("/collections/grids/items", params={"kind": "dedicated", "limit": 1000}).json()
    assert dedicated["features"] and {f["properties"]["kind"] for f in dedicated["features"]} == {"dedicated"}
    assert client.get("/collections/grids/items", params={"bbox": "1,2,3"}).status_code == 400
    assert client.get("/collections/grids/items", params={"bbox": "0,95,1,96"}).status_code == 400
    assert client.get("/collections/grids/items", params={"colour": "red"}).status_code == 400
    assert client.get("/collections/grids/items", params={"limit": 0}).status_code == 422


def test_one_feature_and_the_other_collections(served) -> None:
    engine, client, _ = served
    code = client.get("/collections/grids/items", params={"limit": 1}).json()["features"][0]["id"]
    one = client.get(f"/collections/grids/items/{code}")
    assert one.status_code == 200 and one.json()["id"] == code and one.json()["type"] == "Feature"
    assert client.get("/collections/grids/items/000").status_code == 404
    communities = client.get("/collections/communities/items", params={"limit": 100}).json()
    assert {f["id"] for f in communities["features"]} >= {"980101900001", "980101900006"}
    units = client.get("/collections/units/items", params={"grid_code": code, "limit": 1000}).json()
    assert units["numberMatched"] == sum(1 for _ in units["features"]) > 0
    assert {f["properties"]["grid_code"] for f in units["features"]} == {code}


def test_incidents_never_expose_reporters(served) -> None:
    engine, client, _ = served
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO incidents (public_id, category_code, status, reporter_name, reporter_contact, geom, reported_at) "
            "VALUES ('R-1', '0101', 'reported', '张三', '13800000000', ST_SetSRID(ST_Point(7.42, 43.73), 4490), "
            "'2026-03-01T10:00:00Z')"))
    body = client.get("/collections/incidents/items").json()
    assert body["numberMatched"] == 1
    text = client.get("/collections/incidents/items").text + client.get("/collections/incidents/items/R-1").text
    assert "张三" not in text and "13800000000" not in text
    assert set(body["features"][0]["properties"]) >= {"incident_id", "category_code", "status"}
    assert not {"reporter_name", "reporter_contact"} & set(body["features"][0]["properties"])
    inside = client.get("/collections/incidents/items", params={"datetime": "2026-02-01T00:00:00Z/.."}).json()
    before = client.get("/collections/incidents/items", params={"datetime": "../2026-02-01T00:00:00Z"}).json()
    assert inside["numberMatched"] == 1 and before["numberMatched"] == 0
    assert client.get("/collections/incidents/items", params={"datetime": "yesterday"}).status_code == 400


def test_vector_tiles(served) -> None:
    engine, client, published_id = served
    meta = client.get("/tiles/grids/tilejson.json").json()
    assert meta["tilejson"] == "3.0.0" and "/tiles/grids/{z}/{x}/{y}.mvt?v=" in meta["tiles"][0]
    x, y = tile_of(7.42, 43.735, 14)
    response = client.get(f"/tiles/grids/14/{x}/{y}.mvt")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(response.content)["grids"]
    codes = {f["properties"]["grid_code"] for f in layer["features"]}
    with engine.connect() as conn:  # the grids whose shape meets the tile, by PostGIS's own reckoning
        expected = set(conn.execute(sa.text(
            "SELECT code FROM grids WHERE plan_id = :p AND ST_Intersects(ST_Transform(geom, 3857), "
            "ST_TileEnvelope(14, :x, :y))"), {"p": published_id, "x": x, "y": y}).scalars())
    assert expected and expected <= codes
    assert all(isinstance(f["properties"]["households"], int) for f in layer["features"])
    ocean = tile_of(-30.0, 0.0, 14)
    assert client.get(f"/tiles/grids/14/{ocean[0]}/{ocean[1]}.mvt").status_code == 204
    assert client.get("/tiles/grids/3/8/0.mvt").status_code == 404
    assert client.get("/tiles/grids/30/0/0.mvt").status_code == 422
    assert client.get("/tiles/nothing/0/0/0.mvt").status_code == 404


def test_locate_the_grid_at_a_point(served) -> None:
    engine, client, published_id = served
    with engine.connect() as conn:
        code, lon, lat, community = conn.execute(sa.text(
            "SELECT g.code, ST_X(p), ST_Y(p), c.code FROM (SELECT *, ST_PointOnSurface(geom) p FROM grids "
            "WHERE plan_id = :p ORDER BY code LIMIT 1 OFFSET 7) g JOIN territories c ON c.id = g.community_id"),
            {"p": published_id}).one()
    found = client.get("/api/locate", params={"lon": lon, "lat": lat}).json()
    assert found["grid_code"] == code and found["community_code"] == community and found["plan_id"] == published_id
    assert found["street_code"] == community[:9] and found["district_code"] == community[:6]
    assert client.get("/api/locate", params={"lon": lon, "lat": lat, "crs": "gcj02"}).json()["grid_code"] == code
    assert client.get("/api/locate", params={"lon": 0, "lat": 0}).status_code == 404
    assert client.get("/api/locate", params={"lon": 200, "lat": 0}).status_code == 422


def test_context_tiles_carry_the_territorys_own_layers(served) -> None:
    """/tiles/context/{territory}: one MVT layer per role from the territory's imported layers (the
    demo keeps them on the city), buildings from zoom 15, paths left out below 14, roads with class."""
    engine, client, _ = served
    x, y = tile_of(7.4246, 43.7384, 16)  # Monaco-Ville
    response = client.get(f"/tiles/context/980100/16/{x}/{y}.mvt")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = mapbox_vector_tile.decode(response.content)
    assert {"roads", "buildings"} <= set(layers)
    classes = {f["properties"].get("class") for f in layers["roads"]["features"]}
    with engine.connect() as conn:  # the buildings meeting the tile, by PostGIS's own reckoning
        expected = conn.execute(sa.text(
            "SELECT count(*) FROM layer_features f JOIN layers l ON l.id = f.layer_id JOIN territories t "
            "ON t.id = l.territory_id WHERE t.code = '980100' AND l.name = 'buildings' "
            "AND ST_Intersects(ST_Transform(f.geom, 3857), ST_TileEnvelope(16, :x, :y))"), {"x": x, "y": y}).scalar_one()
    assert expected > 0 and len(layers["buildings"]["features"]) >= expected
    assert classes - {None}  # OSM's highway values as the class
    x14, y14 = tile_of(7.4246, 43.7384, 13)
    coarse = mapbox_vector_tile.decode(client.get(f"/tiles/context/980100/13/{x14}/{y14}.mvt").content)
    assert "buildings" not in coarse
    assert not {f["properties"].get("class") for f in coarse["roads"]["features"]} & {"footway", "steps", "path"}
    assert "footway" in classes or "steps" in classes or "pedestrian" in classes  # they are there at 16
    # water, railways, compound outlines and sites too: a tile at zoom 14 over one feature of each has it
    for role, layer in (("water", "waterways"), ("railways", "railways"), ("compounds", "residential_areas"),
                        ("sites", "sites")):
        with engine.connect() as conn:
            lon, lat = conn.execute(sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(f.geom) AS p FROM layer_features f JOIN layers l "
                "ON l.id = f.layer_id JOIN territories t ON t.id = l.territory_id WHERE t.code = '980100' AND l.name = :l "
                "ORDER BY f.id LIMIT 1) s"), {"l": layer}).one()
        tx, ty = tile_of(lon, lat, 14)
        got = mapbox_vector_tile.decode(client.get(f"/tiles/context/980100/14/{tx}/{ty}.mvt").content)
        assert got.get(role, {}).get("features"), (role, sorted(got))
    assert client.get(f"/tiles/context/980101900001/16/{x}/{y}.mvt").status_code == 200  # a community: its city's layers
    ocean = tile_of(-30.0, 0.0, 16)
    assert client.get(f"/tiles/context/980100/16/{ocean[0]}/{ocean[1]}.mvt").status_code == 204
    assert client.get("/tiles/context/123456/16/0/0.mvt").status_code == 404
    assert client.get("/tiles/context/980100/3/8/0.mvt").status_code == 404


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_refusal_is_said_in_both_languages(served) -> None:
    """Each kind of bad request a public client can send gets its status and a reason in English
    (``detail_en``, also ``detail``) and in Chinese (``detail_zh``): OGC parameters, tiles, exports,
    the dashboard, stations, plans, and FastAPI's own validation."""
    _, client, plan_id = served
    asked = {
        "/collections/nothing": 404,
        "/collections/grids/items?bbox=1,2,3": 400,
        "/collections/grids/items?bbox=0,95,1,96": 400,
        "/collections/grids/items?bbox=a,b,c,d&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4490": 400,
        "/collections/grids/items?datetime=yesterday": 400,
        "/collections/grids/items?colour=red": 400,
        "/collections/grids/items?limit=0": 422,
        "/collections/grids/items/000": 404,
        "/api/locate?lon=0&lat=0": 404,
        "/api/locate?lon=200&lat=0": 422,
        "/tiles/grids/3/8/0.mvt": 404,
        "/tiles/nothing/0/0/0.mvt": 404,
        "/tiles/context/123456/16/0/0.mvt": 404,
        "/tileMatrixSets/Mars": 404,
        "/collections/grids/tiles/Mars": 404,
        f"/api/territories/{MONACO}/export?format=kml&crs=gk3": 422,
        f"/api/territories/{MONACO}/export?layers=grids,secrets": 422,
        "/api/territories/123456": 404,
        f"/api/territories/{MONACO}/incidents/choropleth?metric=beauty": 422,
        f"/api/territories/{MONACO}/incidents/summary?status=lost": 422,
        f"/api/territories/{MONACO}/coverage?types=casino": 422,
        f"/api/plans/{plan_id}/conflicts?format=shp": 422,
        f"/api/territories/{MONACO}/incidents/clusters?bbox=bad": 400,
    }
    for path, status in asked.items():
        answer = client.get(path)
        body = answer.json()
        assert answer.status_code == status, (path, answer.status_code, body)
        assert body["detail_en"] and CJK.search(body["detail_zh"]), (path, body)
        if status != 422 or isinstance(body["detail"], str):
            assert body["detail"] == body["detail_en"], (path, body)
