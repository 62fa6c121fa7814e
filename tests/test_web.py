"""The landing page, the API docs and the territory endpoints, over HTTP and in real Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.geometry
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from samples import launch_chromium, serve

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser sends: the landing page is HTML
STATIC = Path(__file__).resolve().parents[1] / "gridmap" / "web" / "static"


@pytest.fixture
def client(monaco: sa.Engine, database_url: str) -> TestClient:
    from gridmap.services.demo import load_demo

    load_demo(monaco, ["yaan"])
    return TestClient(create_app(database_url=database_url))


def test_landing_lists_territories(client: TestClient) -> None:
    page = client.get("/", headers=BROWSER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for expected in ("雅安市", "雨城区", "511802", "Monaco", "Fontvieille", "980101900001"):
        assert expected in html
    assert "(18)" in html  # territory count


def test_landing_explains_an_empty_database(engine: sa.Engine, database_url: str) -> None:
    html = TestClient(create_app(database_url=database_url)).get("/", headers=BROWSER).text
    assert "gridmap demo" in html


def test_docs_and_openapi_are_served_offline(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    spec = client.get("/openapi.json").json()
    assert "/api/territories" in spec["paths"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text + client.get("/", headers=BROWSER).text):
        assert client.get(asset).status_code == 200, asset


def test_no_page_or_script_loads_from_another_host(client: TestClient) -> None:
    pages = client.get("/", headers=BROWSER).text + client.get("/docs").text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', pages)
    for js in (STATIC / "js").glob("*.js"):
        assert "http://" not in js.read_text() and "https://" not in js.read_text(), js.name


def test_territory_api(client: TestClient) -> None:
    rows = client.get("/api/territories").json()
    assert {"code": "511802", "name": "雨城区", "level": "district", "parent_code": "511800"}.items() <= next(
        r for r in rows if r["code"] == "511802").items()
    assert client.get("/api/territories/980101900001").json()["name"] == "Fontvieille"
    missing = client.get("/api/territories/000000")
    assert missing.status_code == 404 and "000000" in missing.json()["detail"]
    layers = {layer["name"]: layer for layer in client.get("/api/territories/980100/layers").json()}
    assert layers["buildings"]["feature_count"] > 500


def test_geojson_is_rfc7946(client: TestClient) -> None:
    res = client.get("/api/territories/geojson", params={"level": "district", "root": "511800"})
    assert res.headers["content-type"].startswith("application/geo+json")
    fc = res.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 8
    feature = fc["features"][0]
    assert "crs" not in feature["geometry"]
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert 102 < lon < 104 and 28 < lat < 31  # lon/lat order
    assert client.get("/api/territories/geojson", params={"simplify": 1}).status_code == 422


def test_health(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.") and body["schema"]


# -- real browser -----------------------------------------------------------------------
@pytest.fixture
def live_server(client: TestClient, database_url: str) -> Iterator[str]:
    with serve(database_url) as url:
        yield url


@pytest.mark.browser
def test_landing_map_in_chromium(live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    foreign: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("request", lambda req: foreign.append(req.url) if not req.url.startswith(live_server) else None)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live_server + "/")
        page.wait_for_selector("#map[data-ready='true']", timeout=15000)
        assert page.get_attribute("#map", "data-features") == "18"
        assert page.evaluate("window.gridmapTerritoryLayer.getLayers().length") == 18
        count_painted = """() => {
            const c = document.querySelector('.leaflet-overlay-pane canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n; }"""
        assert page.evaluate(count_painted) > 100  # outlines really drawn on the canvas
        # selecting a territory in the list zooms the map to it and marks it
        zoom_before = page.evaluate("window.gridmapMap.getZoom()")
        page.click("a.zoom-to[data-code='511802']")
        page.wait_for_function(f"window.gridmapMap.getZoom() > {zoom_before}")
        assert page.locator("li.active[data-code='511802']").count() == 1
        page.wait_for_timeout(500)  # let the zoom animation end and the canvas redraw
        assert page.evaluate(count_painted) > 20000  # zoomed in, the district fills the view
        # English on request, Chinese by default
        assert page.inner_text("#territories-title span") == "辖区"
        assert page.inner_text("li[data-code='511802'] > .level") == "区"  # 雨城区: a district, as its name says
        page.click("#lang-switch")
        assert page.inner_text("#territories-title span") == "Territories"
        assert page.inner_text("li[data-code='511802'] > .level") == "district"
        page.screenshot(path=str(tmp_path / "landing.png"))
        browser.close()
    assert errors == []
    assert foreign == []  # nothing fetched from any other host (no CDN, no basemap by default)


def wire_bytes(client: TestClient, path: str, encoding: str) -> tuple[bytes, str | None]:
    """The body as it crosses the wire (not decoded) and its Content-Encoding."""
    with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as answer:
        return b"".join(answer.iter_raw()), answer.headers.get("content-encoding")


def test_responses_are_compressed_and_units_can_be_rounded(client: TestClient, monaco: sa.Engine) -> None:
    """Large answers go compressed to a client that accepts it (the planner's units): gzip,
    Brotli or Zstandard, the best one the client names, measured on the wire and decoded back to
    the same JSON; small ones as they are; decimals=6 rounds the units' coordinates (about 10 cm)
    and changes nothing else."""
    import gzip

    import brotli
    import zstandard

    from gridmap.services import planning
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(monaco, "980100")
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    path = f"/api/plans/{summary.plan_id}/units?simplify=0.5"
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    decoders = {"gzip": gzip.decompress, "br": brotli.decompress,
                "zstd": lambda raw: zstandard.ZstdDecompressor().decompressobj().decompress(raw)}
    sizes = {}
    for accepted, expected in (("gzip", "gzip"), ("gzip, br", "br"), ("gzip, deflate, br, zstd", "zstd")):
        raw, used = wire_bytes(client, path, accepted)
        assert used == expected, (accepted, used)
        assert decoders[used](raw) == plain.content
        sizes[used] = len(raw)
    assert max(sizes.values()) < len(plain.content) / 4, (sizes, len(plain.content))
    raw, used = wire_bytes(client, "/api/health", "gzip, br, zstd")
    assert used is None and raw.startswith(b"{")  # too small to be worth it
    tile_raw, tile_used = wire_bytes(client, "/collections/grids/items?limit=100", "br")
    assert tile_used == "br" and len(tile_raw) < len(client.get("/collections/grids/items?limit=100").content)

    rounded, full = client.get(path + "&decimals=6").json(), plain.json()
    xy = shapely.get_coordinates([shapely.geometry.shape(f["geometry"]) for f in rounded["features"]])
    assert (np.round(xy, 6) == xy).all()  # six decimals at most
    assert [f["properties"]["grid_code"] for f in rounded["features"]] == \
        [f["properties"]["grid_code"] for f in full["features"]]
    assert client.get(path + "&decimals=9").status_code == 422
