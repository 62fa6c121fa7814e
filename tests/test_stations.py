"""Stations and the 15-minute circle: walking distances on generated street lattices (property
test against exact Manhattan distances), greedy site choice against brute force, and the
service on real Monaco data: stations API, coverage per grid and community, service areas,
suggested sites."""

from __future__ import annotations

import itertools
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from gridmap.api.app import create_app
from gridmap.geo import walking
from gridmap.services import stations as service
from gridmap.store import frames
from samples import launch_chromium, serve, signed_in_client

MONACO = "980100"
UTM31 = 32631  # metres around Monaco


def lattice(n: int, spacing: float) -> gpd.GeoDataFrame:
    """An n × n street lattice (spacing metres) near Monaco, as lon/lat lines."""
    lines = [shapely.LineString([(0, i * spacing), ((n - 1) * spacing, i * spacing)]) for i in range(n)]
    lines += [shapely.LineString([(i * spacing, 0), (i * spacing, (n - 1) * spacing)]) for i in range(n)]
    frame = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)},
                             geometry=gpd.GeoSeries(lines).translate(370_000, 4_842_000), crs=UTM31)
    return frame.to_crs(4326)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 8), station=st.tuples(st.integers(0, 7), st.integers(0, 7)),
       limit_blocks=st.floats(0.5, 6.0))
def test_walking_distance_on_a_lattice_is_manhattan(n: int, station: tuple[int, int], limit_blocks: float) -> None:
    spacing = 100.0
    net = walking.build_network(lattice(n, spacing))
    assert net.node_count == n * n
    sx, sy = min(station[0], n - 1), min(station[1], n - 1)
    node, snap = net.nearest(np.array([[370_000 + sx * spacing, 4_842_000 + sy * spacing]]) - 0.0)
    # nearest() works in the network's own metric CRS; re-find the station node from lattice indices
    origin = net.xy.min(axis=0)
    ix = np.round((net.xy - origin) / spacing).astype(int)
    start = int(np.flatnonzero((ix[:, 0] == sx) & (ix[:, 1] == sy))[0])
    limit = limit_blocks * spacing
    distance = net.reach(np.array([start]), limit)
    manhattan = (np.abs(ix[:, 0] - sx) + np.abs(ix[:, 1] - sy)) * spacing
    # lengths are measured after reprojection: allow 1% for the scale of the transverse Mercator zone
    reached = np.isfinite(distance)
    assert np.all(manhattan[reached] <= limit * 1.01)
    assert np.all(reached[manhattan <= limit * 0.99])
    assert np.allclose(distance[reached], manhattan[reached], rtol=0.01)


def test_greedy_sites_match_brute_force_on_a_small_case() -> None:
    rng = np.random.default_rng(3)
    matrix = sparse.csr_matrix((rng.random((8, 30)) < 0.25).astype(float))
    weights = rng.integers(1, 50, 30).astype(float)
    chosen = walking.greedy_sites(matrix, weights, 1)
    best = max(range(8), key=lambda r: float(matrix[r].toarray()[0] @ weights))
    assert chosen[0][0] == best
    two = walking.greedy_sites(matrix, weights, 2)
    optimum = max(float(((matrix[list(pair)].toarray().sum(axis=0) > 0) * weights).sum())
                  for pair in itertools.combinations(range(8), 2))
    assert sum(g for _, g in two) >= (1 - 1 / np.e) * optimum  # the greedy guarantee
    assert len({r for r, _ in two}) == 2


@pytest.fixture
def monaco_stations(monaco_published: sa.Engine, database_url: str):
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    loaded = service.load_demo_stations(monaco, MONACO)
    return monaco, loaded, signed_in_client(monaco, database_url, "planner", "planner", MONACO)


def test_demo_stations_follow_the_documented_table(monaco_stations) -> None:
    engine, loaded, _ = monaco_stations
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.text("SELECT station_type, count(*) FROM stations GROUP BY 1")).all())
    assert loaded == sum(kinds.values()) and kinds["school"] == 9 and kinds["pharmacy"] == 9
    assert kinds["mediation"] == 8 and kinds["clinic"] == 3 and "fire_station" not in kinds
    assert service.load_demo_stations(engine, MONACO) == loaded  # idempotent


def test_stations_api(monaco_stations, database_url: str) -> None:
    engine, _, planner = monaco_stations
    viewer = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    body = {"station_type": "party_service_station", "name": "丰维耶党群服务站", "lon": 7.4165, "lat": 43.7275,
            "opening_hours": "Mo-Fr 09:00-17:00", "services": ["调解", "法律咨询"]}
    assert viewer.post(f"/api/territories/{MONACO}/stations", json=body).status_code == 403
    created = planner.post(f"/api/territories/{MONACO}/stations", json=body)
    assert created.status_code == 201, created.text
    station = created.json()
    assert station["territory"] == "980101900001" and station["services"] == ["调解", "法律咨询"]  # the community
    outside = planner.post(f"/api/territories/{MONACO}/stations", json={**body, "lon": 7.0, "lat": 43.0})
    assert outside.status_code == 422 and "outside territory" in outside.json()["detail"]
    assert "不在辖区" in outside.json()["detail_zh"]
    assert planner.post(f"/api/territories/{MONACO}/stations", json={**body, "station_type": "bar"}).status_code == 422
    edited = planner.patch(f"/api/stations/{station['id']}", json={"name": "丰维耶党群服务中心站", "opening_hours": "24/7"})
    assert edited.json()["name"] == "丰维耶党群服务中心站" and edited.json()["opening_hours"] == "24/7"
    assert planner.patch(f"/api/stations/{station['id']}", json={"lon": 7.42}).status_code == 422
    listed = TestClient(create_app(database_url=database_url)).get(
        f"/api/territories/{MONACO}/stations", params={"type": "party_service_station"}).json()
    assert [f["properties"]["name"] for f in listed["features"]] == ["丰维耶党群服务中心站"]
    assert planner.post(f"/api/stations/{station['id']}/close").json()["status"] == "closed"
    assert planner.post(f"/api/stations/{station['id']}/close").status_code == 409
    closed = planner.patch(f"/api/stations/{station['id']}", json={"name": "x"})  # a closed station: 409, as
    assert closed.status_code == 409 and "已关闭" in closed.json()["detail_zh"]  # closing it twice is
    reopened = TestClient(create_app(database_url=database_url)).get(
        f"/api/territories/{MONACO}/stations", params={"type": "party_service_station"}).json()
    assert reopened["features"] == []  # closed stations leave the open list
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text("SELECT action FROM audit_log WHERE table_name = 'stations' "
                                                      "ORDER BY id"))]
    assert actions == ["station.create", "station.edit", "station.close"]


def test_coverage_service_areas_and_suggestions(monaco_stations, database_url: str) -> None:
    engine, _, planner = monaco_stations
    report = planner.get(f"/api/territories/{MONACO}/coverage", params={"types": "school,pharmacy,legal_aid"}).json()
    assert report["walk_m"] == 15 * 75
    assert report["types"]["legal_aid"]["stations"] == 0 and report["types"]["legal_aid"]["share"] == 0
    school = report["types"]["school"]
    assert 0 < school["covered"] <= school["households"]
    grids = report["grids"]
    assert len(grids) == len({g["grid_code"] for g in grids}) > 0
    assert all(g["school"] is None or 0 <= g["school"] <= 1 for g in grids)
    total = sum(g["households"] for g in grids)
    assert abs(total - school["households"]) / school["households"] < 0.02  # nearly every building is in a grid
    below = {(u["grid_code"], u["station_type"]) for u in report["underserved"]}
    assert all(("%s" % g["grid_code"], "legal_aid") in below for g in grids if g["households"] > 0)
    assert len({c["community_code"] for c in report["communities"]}) == 6

    # covered households are never farther than the walk as the crow flies (an independent check)
    ctx = service.context(engine, MONACO)
    with engine.connect() as conn:
        from gridmap.store import frames

        schools = frames.stations(conn, MONACO, station_type="school", places=False)
    ok = walking.covered(ctx.network, ctx.demand, schools, report["walk_m"])
    home = shapely.get_coordinates(np.asarray(ctx.demand.points.to_crs(ctx.network.crs).values, dtype=object))
    where = shapely.get_coordinates(np.asarray(schools.to_crs(ctx.network.crs).geometry.values, dtype=object))
    crow = np.min(np.hypot(home[:, None, 0] - where[None, :, 0], home[:, None, 1] - where[None, :, 1]), axis=1)
    assert np.all(crow[ok] <= report["walk_m"] + 1e-6) and ok.any() and (~ok).any()

    areas = planner.get(f"/api/territories/{MONACO}/service-areas", params={"type": "pharmacy", "minutes": 5}).json()
    assert len(areas["features"]) == 9
    for feature in areas["features"]:
        assert shapely.geometry.shape(feature["geometry"]).area > 0
    stations = gpd.GeoDataFrame.from_features(planner.get(f"/api/territories/{MONACO}/stations",
                                                          params={"type": "pharmacy"}).json()["features"], crs=4326)
    area_shapes = gpd.GeoDataFrame.from_features(areas["features"], crs=4326)
    assert all(area.buffer(1e-4).contains(point) for area, point in zip(area_shapes.geometry, stations.geometry))

    suggestion = planner.get(f"/api/territories/{MONACO}/suggest-stations", params={"type": "clinic", "k": 3}).json()
    assert len(suggestion["sites"]) <= 3 and suggestion["share_after"] >= suggestion["share_before"]
    gains = [s["households_added"] for s in suggestion["sites"]]
    assert gains == sorted(gains, reverse=True) and all(g > 0 for g in gains)
    assert all(7.40 < s["lon"] < 7.45 and 43.72 < s["lat"] < 43.76 for s in suggestion["sites"])
    assert planner.get(f"/api/territories/{MONACO}/suggest-stations", params={"type": "spa"}).status_code == 422


def test_stations_map_page(monaco_stations, database_url: str) -> None:
    import re

    engine, _, planner = monaco_stations
    html = planner.get("/maps/stations", params={"territory": MONACO, "type": "pharmacy", "minutes": 5}).text
    assert not re.search(r"https?://", html)  # vendored Leaflet only
    import json

    def present(text: str) -> bool:  # in HTML as is, or \u-escaped inside the map's JSON
        return text in html or json.dumps(text)[1:-1] in html

    assert present("步行服务范围 Walking service areas") and present("药店 Pharmacy") and present("服务站点 Stations")
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(sa.text("SELECT name FROM stations WHERE station_type = 'pharmacy'"))]
    assert all(present(name) for name in names)
    assert planner.get("/maps/stations", params={"territory": "511800"}).status_code == 404  # no published grids


HOVER_CIRCLES = """() => {
    const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
                                   .find(m => m instanceof L.Map);
    const circles = [], grids = [];
    let areas = 0;
    map.eachLayer(group => {
        if (!(group instanceof L.GeoJSON)) return;
        group.eachLayer(l => {
            const props = l.feature.properties;
            if (l instanceof L.CircleMarker) {
                l.fire('mouseover', {latlng: l.getLatLng()}, true);  // the pointer on it
                const tip = document.querySelector('.leaflet-tooltip');
                circles.push([props.label, tip ? tip.textContent.trim() : null]);
                l.fire('mouseout', {latlng: l.getLatLng()}, true);
            } else if (props.grid_code) grids.push(props.grid_code);
            else if (props.station_type) areas += 1;
        });
    });
    return {circles, grids, areas, injected: document.getElementById('xss') !== null};
}"""
"""Hover every circle of a stations page's map: each one's label and what its tooltip showed, the
grids and service areas drawn, and whether an element a station's name tried to inject exists."""


@pytest.mark.browser
def test_stations_map_draws_every_station_with_its_name_in_chromium(monaco_stations, database_url: str) -> None:
    """The stations page in a real browser: one circle for every station of the type, each with
    its name in its tooltip, its service areas and the grids drawn under them; a name holding
    HTML is shown as text, never run."""
    from html import unescape

    from playwright.sync_api import sync_playwright

    engine, _, planner = monaco_stations
    with engine.connect() as conn:
        names = sorted(r[0] for r in conn.execute(sa.text("SELECT name FROM stations WHERE station_type = 'pharmacy'")))
        grids = set(frames.published_grids(conn, MONACO)["grid_code"])
    hostile = '<img id="xss" src="x" onerror="document.title=1">志愿站'
    made = planner.post(f"/api/territories/{MONACO}/stations",
                        json={"station_type": "volunteer", "name": hostile, "lon": 7.4165, "lat": 43.7275})
    assert made.status_code == 201, made.text
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        for kind in ("pharmacy", "volunteer"):
            page.goto(f"{url}/maps/stations?territory={MONACO}&type={kind}&minutes=5")
            page.wait_for_function("Object.keys(window).some(k => k.startsWith('map_') && window[k] instanceof L.Map)")
            if kind == "pharmacy":
                drawn = page.evaluate(HOVER_CIRCLES)
            else:
                volunteer = page.evaluate(HOVER_CIRCLES)
        browser.close()
    assert planner.post(f"/api/stations/{made.json()['id']}/close").status_code == 200
    assert len(drawn["circles"]) == len(names) == 9
    assert all(tooltip == unescape(label) for label, tooltip in drawn["circles"])  # what hovering a circle shows
    assert sorted(unescape(label).split(" · ")[0] for label, _ in drawn["circles"]) == names
    assert all(label.endswith("药店 Pharmacy") for label, _ in drawn["circles"])
    assert set(drawn["grids"]) == grids and drawn["areas"] == 9  # a service area for each pharmacy
    assert [tip for _, tip in volunteer["circles"]] == [f"{hostile} · 志愿服务站 Volunteer station"]
    assert not volunteer["injected"]  # shown as text: no <img> was made


def test_service_areas_are_kept_for_every_server_process(monaco_stations, monkeypatch) -> None:
    """A station type's service areas, once worked out, are read back from PostgreSQL by another
    process (here: this one with its in-process network forgotten and the network builder made to
    fail) until a station of that type changes; then they are worked out again."""
    engine, _, _ = monaco_stations
    first = service.service_areas(engine, MONACO, "pharmacy", minutes=5)
    assert len(first) == 9
    service._CACHE.clear()  # another process: no network built

    def no_network(*args, **kwargs):
        raise AssertionError("the service areas were worked out again")

    monkeypatch.setattr(walking, "build_network", no_network)
    again = service.service_areas(engine, MONACO, "pharmacy", minutes=5)
    assert again.crs == first.crs and list(again["station_id"]) == list(first["station_id"])
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(again.geometry, first.geometry))
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM answer_cache WHERE kind = 'service_areas'")).scalar_one()
    assert kept >= 1
    station = int(first["station_id"].iloc[0])
    service.edit(engine, station, {"name": "新药房"}, actor="test")  # a station changed: another answer
    with pytest.raises(AssertionError, match="worked out again"):
        service.service_areas(engine, MONACO, "pharmacy", minutes=5)


def _kept_areas(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM answer_cache WHERE kind = 'service_areas'")).scalar_one()


def _wait_for(engine: sa.Engine, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while _kept_areas(engine) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    return _kept_areas(engine)


def test_the_server_works_out_service_areas_before_the_first_map(monaco_stations, database_url: str,
                                                                 monkeypatch) -> None:
    """Soon after the start, the server works out and keeps the service areas of every station
    type (one process of several: the advisory lock; in a child process at the lowest priority, so
    requests never wait for it), so the first stations map of a type is read from PostgreSQL, with
    no network built; a station edited is worked out again by the next pass."""
    import dataclasses
    import json

    import psutil

    from gridmap.settings import Settings
    from gridmap.store import locks

    engine, _, _ = monaco_stations
    with engine.connect() as conn:
        types = conn.execute(sa.text("SELECT count(DISTINCT station_type) FROM stations WHERE status = 'open'")).scalar()
    assert types >= 4
    app = create_app(database_url, dataclasses.replace(Settings.from_env(), warm_minutes=0.02))
    with locks.held(engine, locks.WARM_ANSWERS) as taken:  # another server process holds the lock
        assert taken
        with TestClient(app):
            time.sleep(2.5)  # two passes' time: this process did nothing
            assert _kept_areas(engine) == 0
    with TestClient(app) as client:  # the lock is free: this process works them out, in the background
        # in a child process it starts for the pass, at the lowest CPU priority, not in the serving process
        niceness, deadline = [], time.monotonic() + 60  # (0 while it starts, 19 once it works)
        while 19 not in niceness and time.monotonic() < deadline:
            for child in psutil.Process().children():
                try:
                    if "spawn_main" in " ".join(child.cmdline()):
                        niceness.append(child.nice())
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)
        assert 19 in niceness, niceness
        assert _wait_for(engine, types, 120) == types
        service._CACHE.clear()  # the first map of another process: no network built

        def no_network(*args, **kwargs):
            raise AssertionError("the service areas were worked out for the map")

        monkeypatch.setattr(walking, "build_network", no_network)  # what shows none was built (not a timing)
        page = client.get("/maps/stations", params={"territory": MONACO, "type": "pharmacy"})
        assert page.status_code == 200
        assert any(text in page.text for text in ("步行服务范围", json.dumps("步行服务范围")[1:-1]))
        monkeypatch.undo()
        with engine.connect() as conn:
            station = conn.execute(sa.text("SELECT min(id) FROM stations WHERE station_type = 'pharmacy'")).scalar()
        service.edit(engine, station, {"name": "新药房"}, actor="test")
        assert _wait_for(engine, types + 1, 60) == types + 1  # the changed type's areas, kept beside the old


def test_one_type_that_fails_does_not_stop_the_warming_pass(monaco_stations, monkeypatch, caplog) -> None:
    """A type whose service areas cannot be worked out (here: made to fail) is logged and left;
    the other types are still worked out and kept in the same pass."""
    engine, _, _ = monaco_stations
    real = service.service_areas

    def failing(engine_, territory, station_type=None, **kwargs):
        if station_type == "clinic":
            raise RuntimeError("a broken road layer")
        return real(engine_, territory, station_type, **kwargs)

    monkeypatch.setattr(service, "service_areas", failing)
    done = {d["type"]: d for d in service.warm(engine)}
    assert done["clinic"].get("failed") and not done["clinic"]["made"]
    assert all(d["made"] for t, d in done.items() if t != "clinic") and len(done) >= 4
    assert "clinic" in caplog.text and "could not be worked out" in caplog.text
    assert _kept_areas(engine) == len(done) - 1
