"""Hostile and broken input against the real app and PostGIS: oversized and endless bodies,
uploads that are zip bombs, too heavy, out of range, without a CRS, broken or cut off halfway;
non-UTF-8 text; SQL metacharacters in every text field; bursts of public reports. Each gets a
clear 4xx and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import zipfile

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.settings import Settings
from samples import serve, signed_in_client

MONACO = "980100"
NASTY = "Robert'); DROP TABLE incidents; -- 小明 \\ % _ \" $$ ;"
POINT_IN_MONACO = (7.4236, 43.7306)


def count(engine: sa.Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar())


def geojson(features: list[dict]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode()


def square(x: float, y: float, d: float = 0.001, **props) -> dict:
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def planner(monaco: sa.Engine, database_url: str):
    return signed_in_client(monaco, database_url, "planner1", "planner", MONACO)


def test_oversized_and_endless_bodies_are_413(monaco: sa.Engine, database_url: str) -> None:
    settings = dataclasses.replace(Settings.from_env(), max_body_bytes=64 * 1024)
    client = TestClient(create_app(database_url=database_url, settings=settings))
    big = b'{"category_code": "0101", "description": "' + b"x" * 100_000 + b'"}'
    declared = client.post("/api/incidents", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "at most 65,536" in declared.json()["detail"]
    assert "最多接受 65,536 字节" in declared.json()["detail_zh"]

    def endless():  # no Content-Length: counted as it streams, cut off at the limit
        for _ in range(1000):
            yield b"x" * 10_000

    streamed = client.post("/api/incidents", content=endless(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/api/incidents", content=b"{}", headers={"content-length": "abc"}).status_code == 400
    assert count(monaco, "SELECT count(*) FROM incidents") == 0


def test_upload_a_layer_and_the_refusals(monaco: sa.Engine, database_url: str, planner) -> None:
    ok = planner.post(f"/api/territories/{MONACO}/layers", data={"name": "小区边界", "crs": "4326"},
                      files={"file": ("xiaoqu.geojson", geojson([square(7.42, 43.73, name="幸福小区"),
                                                                 square(7.425, 43.73, name=NASTY)]))})
    assert ok.status_code == 201, ok.text
    assert ok.json()["features"] == 2 and ok.json()["layer"] == "小区边界"
    with monaco.connect() as conn:
        names = sorted(conn.execute(sa.text("SELECT f.properties->>'name' FROM layer_features f JOIN layers l "
                                            "ON l.id = f.layer_id WHERE l.name = '小区边界'")).scalars())
    assert names == sorted(["幸福小区", NASTY])  # stored verbatim, nothing executed

    before = count(monaco, "SELECT count(*) FROM layers")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.shp", "w") as member:
            for _ in range(50):
                member.write(b"\0" * (1 << 20))
        archive.writestr("bomb.shx", b"\0" * 100)
        archive.writestr("bomb.dbf", b"\0" * 100)
    cases = {
        "zip bomb": (("bomb.zip", bomb.getvalue()), {}, "zip bomb"),
        "out of range": (("far.geojson", geojson([square(700.0, 43.7)])), {}, "out of range"),
        "no crs in csv": (("points.csv", "lon,lat,name\n7.42,43.73,a\n".encode()), {}, "coordinate system"),
        "broken gpkg": (("broken.gpkg", b"SQLite format 3\0" + b"\x13" * 500), {}, "broken.gpkg"),
        "not utf-8 json": (("gbk.geojson", '{"type": "FeatureCollection", "features": [名]}'.encode("gbk")), {}, ""),
        "lone .shp": (("grids.shp", b"\0" * 100), {}, "a Shapefile as one .zip"),
        "wrong type": (("pts.geojson", geojson([{"type": "Feature", "properties": {},
                                                  "geometry": {"type": "Point", "coordinates": [7.42, 43.73]}}])),
                       {"expect": "polygon"}, "expected polygon"),
        "bad layer name": (("x.geojson", geojson([square(7.42, 43.73)])), {"name": "../../etc/passwd"}, ""),
        "unknown crs": (("x.geojson", geojson([square(7.42, 43.73)])), {"crs": "EPSG:999999"},
                        "unknown coordinate system"),
        "projected data declared as lon/lat": (("utm.geojson", geojson([square(741_000.0, 4_845_000.0, d=100)])),
                                               {"crs": "4326"}, "out of range"),
    }
    for label, (upload, fields, reason) in cases.items():
        answer = planner.post(f"/api/territories/{MONACO}/layers", data=fields, files={"file": upload})
        assert answer.status_code == 422, (label, answer.status_code, answer.text)
        assert reason in answer.text, (label, answer.text)
        assert "/tmp/" not in answer.text, label  # no server paths in messages
    assert count(monaco, "SELECT count(*) FROM layers") == before

    heavy = dataclasses.replace(Settings.from_env(), max_vertices=100)
    token = planner.headers["Authorization"]
    strict = TestClient(create_app(database_url=database_url, settings=heavy), headers={"Authorization": token})
    ring = [[7.42 + 0.001 * __import__("math").cos(i / 50), 43.73 + 0.001 * __import__("math").sin(i / 50)]
            for i in range(315)]
    ring.append(ring[0])
    many = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    refused = strict.post(f"/api/territories/{MONACO}/layers", files={"file": ("round.geojson", geojson([many]))})
    assert refused.status_code == 422 and "more than 100 vertices" in refused.text
    small = dataclasses.replace(Settings.from_env(), max_upload_bytes=10_000)
    tiny = TestClient(create_app(database_url=database_url, settings=small), headers={"Authorization": token})
    too_big = tiny.post(f"/api/territories/{MONACO}/layers",
                        files={"file": ("big.geojson", geojson([square(7.42, 43.73, pad="x" * 20_000)]))})
    assert too_big.status_code == 413
    assert count(monaco, "SELECT count(*) FROM layers") == before


def test_upload_needs_a_planner_and_a_repair_is_reported(monaco: sa.Engine, database_url: str, planner) -> None:
    body = {"file": ("bowtie.geojson", geojson([{
        "type": "Feature", "properties": {"name": "self-intersecting"},
        "geometry": {"type": "Polygon", "coordinates": [[[7.42, 43.73], [7.421, 43.731], [7.421, 43.73],
                                                         [7.42, 43.731], [7.42, 43.73]]]}}]))}
    assert TestClient(create_app(database_url=database_url)).post(
        f"/api/territories/{MONACO}/layers", files=body).status_code == 401
    viewer = signed_in_client(monaco, database_url, "viewer1", "viewer", MONACO)
    assert viewer.post(f"/api/territories/{MONACO}/layers", files=body).status_code == 403
    done = planner.post(f"/api/territories/{MONACO}/layers", files=body, data={"expect": "polygon"})
    assert done.status_code == 201 and "Self-intersection" in " ".join(done.json()["repaired"])
    again = planner.post(f"/api/territories/{MONACO}/layers", files=body)
    assert again.status_code == 409  # the layer exists: replace=true to overwrite


def test_a_half_finished_upload_stores_nothing(monaco: sa.Engine, database_url: str, planner) -> None:
    before = count(monaco, "SELECT count(*) FROM layers")
    token = planner.headers["Authorization"]
    payload = geojson([square(7.42, 43.73)])
    boundary = "gridmapboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.geojson\"\r\n"
            f"Content-Type: application/geo+json\r\n\r\n").encode()
    body = head + payload + f"\r\n--{boundary}--\r\n".encode()
    with serve(database_url) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /api/territories/{MONACO}/layers HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 2])
        # the client went away halfway; a complete upload afterwards still works
        import urllib.request

        urllib.request.urlopen(f"{url}/api/health", timeout=10).read()
    assert count(monaco, "SELECT count(*) FROM layers") == before


def test_text_fields_keep_metacharacters_and_bad_encodings_are_refused(monaco_built: sa.Engine, database_url: str) -> None:
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import planning
    from gridmap.services.incidents import ensure_categories
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    ensure_categories(monaco)
    admin = signed_in_client(monaco, database_url, "root1", "admin", MONACO)
    lon, lat = POINT_IN_MONACO
    made = admin.post("/api/incidents", json={"category_code": "0101", "lon": lon, "lat": lat, "description": NASTY,
                                              "address": NASTY, "reporter_name": NASTY, "reporter_role": "resident"})
    assert made.status_code == 201, made.text
    shown = admin.get(f"/api/incidents/{made.json()['public_id']}").json()
    assert shown["description"] == NASTY and shown["address"] == NASTY
    station = admin.post(f"/api/territories/{MONACO}/stations", json={"station_type": "pharmacy", "name": NASTY,
                                                                      "lon": lon, "lat": lat, "address": NASTY})
    assert station.status_code == 201 and station.json()["name"] == NASTY
    draft_id, _ = planning.new_draft(monaco, MONACO, actor="test")
    state = admin.get(f"/api/plans/{draft_id}/state").json()
    grid = admin.get(f"/api/plans/{draft_id}/grids").json()["features"][0]["properties"]["grid_code"]
    named = admin.post(f"/api/plans/{draft_id}/edits", json={"version": state["version"], "operations": [
        {"op": "set", "grid": grid, "name": NASTY, "worker": NASTY}]})
    assert named.status_code == 200, named.text
    assert count(monaco, "SELECT count(*) FROM grids WHERE name = :n AND worker = :n", n=NASTY) == 1
    assert count(monaco, "SELECT count(*) FROM incidents") == 1  # the table is still there
    # a body that is not UTF-8, and numbers that are not numbers: 4xx, nothing stored
    raw = ('{"category_code": "0101", "lon": %s, "lat": %s, "description": "' % (lon, lat)).encode() + \
        "井盖".encode("gbk") + b'"}'
    assert admin.post("/api/incidents", content=raw, headers={"content-type": "application/json"}).status_code in (
        400, 422)
    nan = admin.post("/api/incidents", content=b'{"category_code": "0101", "lon": NaN, "lat": 43.7}',
                     headers={"content-type": "application/json"})
    assert nan.status_code == 422
    cut = admin.post(f"/api/plans/{draft_id}/edits", content=json.dumps(
        {"version": state["version"] + 1, "operations": [{"op": "cut", "unit": 1, "line": {
            "type": "LineString", "coordinates": [[7.42, 43.73], [float("inf"), 43.74]]}}]}).encode(),
        headers={"content-type": "application/json"})
    assert cut.status_code == 422
    assert count(monaco, "SELECT count(*) FROM incidents") == 1
    # offsets PostgreSQL does not take (beyond ±15:59, which ISO 8601 allows) are read as UTC instants
    for url in ("/api/incidents", f"/api/territories/{MONACO}/incidents/summary", "/collections/incidents/items",
                "/open311/v2/requests.json"):
        key = "datetime" if url.startswith("/collections") else ("start_date" if "open311" in url else "start")
        answer = admin.get(url, params={key: "2000-01-01T00:00:00+16:00" + ("/.." if key == "datetime" else "")})
        assert answer.status_code == 200, (url, answer.text)


def test_public_open311_is_rate_limited(monaco_built: sa.Engine, database_url: str) -> None:
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import planning
    from gridmap.services.incidents import ensure_categories
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    ensure_categories(monaco)
    settings = dataclasses.replace(Settings.from_env(), open311_public=True, open311_rate_per_minute=3)
    client = TestClient(create_app(database_url=database_url, settings=settings))
    lon, lat = POINT_IN_MONACO
    form = {"service_code": "0101", "lat": str(lat), "long": str(lon), "description": "坑"}
    answers = [client.post("/open311/v2/requests.json", data=form) for _ in range(5)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert int(answers[3].headers["Retry-After"]) > 0 and answers[3].json()[0]["code"] == 429
    assert count(monaco, "SELECT count(*) FROM incidents") == 3
    nan = client.post("/open311/v2/requests.json", data={**form, "lat": "nan"})
    assert nan.status_code in (400, 429)
    client.app.state.throttle.storage.reset()  # a new minute
    assert client.post("/open311/v2/requests.json", data={**form, "lat": "nan"}).status_code == 400
    assert client.post("/open311/v2/requests.json", data={**form, "description": "x" * 5000}).status_code == 400
    assert count(monaco, "SELECT count(*) FROM incidents") == 3
