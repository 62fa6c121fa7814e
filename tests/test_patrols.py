"""Patrols (gridmap.patrols, services/patrols, api/patrols) on real PostGIS with a small synthetic
Chinese district: a grid worker walks one of the district's own streets, the track goes up from
the phone (twice, as a phone retrying does: kept once) and as a GPX file; the week's coverage
counts the street length walked in the grid against the grid's streets, names who walked and
which assigned worker did not; tracks are seen by their walker and the administrators only."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import shapely
import sqlalchemy as sa

from conftest import DISTRICT
from gridmap import patrols

MONDAY = datetime(2026, 11, 30, 8, tzinfo=timezone.utc)


def test_a_track_drops_jumps_and_needs_two_times() -> None:
    points = [(103.0 + i * 1e-4, 30.0, MONDAY + timedelta(seconds=10 * i)) for i in range(10)]
    jump = (104.0, 30.0, MONDAY + timedelta(seconds=95))  # 96 km in 5 s: the GPS, not the walker
    again = (103.0, 30.0, MONDAY)  # the same moment twice
    track = patrols.track([jump, *reversed(points), again])
    assert (track.points, track.dropped) == (10, 2) and track.started_at == MONDAY
    assert 80 < track.length_m < 90  # 9 steps of about 9.6 m
    cold = (0.0, 0.0, MONDAY - timedelta(seconds=5))  # a cold start's first fix at 0, 0
    assert patrols.track([cold, *points]).points == 10  # the lone bad fix goes, the walk stays
    beijing = timezone(timedelta(hours=8))
    local = patrols.track([(103.0, 30.0, datetime(2026, 11, 30, 7)), (103.0001, 30.0, datetime(2026, 11, 30, 7, 0, 30))],
                          zone=beijing)
    assert local.started_at == datetime(2026, 11, 29, 23, tzinfo=timezone.utc)  # no offset: the city's time
    start, end = patrols.week_bounds("2026-W49", beijing)
    assert start <= local.started_at < end  # Monday 07:00 in Beijing is that week's, though Sunday in UTC
    with pytest.raises(patrols.TrackError, match="at least two points"):
        patrols.track([points[0], again])
    with pytest.raises(patrols.TrackError, match="not a longitude"):
        patrols.track([(200.0, 30.0, MONDAY), points[1]])
    assert patrols.week_of("2026-W49", date(2026, 1, 1)) == (date(2026, 11, 30), date(2026, 12, 7))
    assert patrols.week_of(None, date(2026, 12, 4)) == (date(2026, 11, 30), date(2026, 12, 7))
    with pytest.raises(patrols.TrackError, match="not an ISO week"):
        patrols.week_of("2026-W60", date(2026, 1, 1))


def street_in_a_grid(engine: sa.Engine) -> dict:
    """A street of the district lying in one published comprehensive grid, with some of the grid's
    buildings along it (within 20 m), that grid's code, and the street's length in it."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT g.code, ST_AsText(f.geom), ST_Length(ST_Intersection(f.geom, g.geom)::geography) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN layer_features f ON f.geom && g.geom "
            "JOIN layers l ON l.id = f.layer_id AND l.name = 'roads' WHERE g.kind = 'comprehensive' "
            "AND ST_CoveredBy(f.geom, g.geom) AND ST_Length(f.geom::geography) BETWEEN 100 AND 600 "
            "AND EXISTS (SELECT 1 FROM layer_features b JOIN layers lb ON lb.id = b.layer_id AND lb.name = 'buildings' "
            "WHERE b.geom && ST_Expand(f.geom, 0.001) AND ST_Intersects(ST_PointOnSurface(b.geom), g.geom) "
            "AND ST_DWithin(b.geom::geography, f.geom::geography, 20)) "
            "ORDER BY g.code, f.id LIMIT 1")).one()
    return {"grid": row[0], "line": shapely.from_wkt(row[1]), "length_m": row[2]}


def walk(line: shapely.LineString, start: datetime, step_m: float = 8.0) -> list[dict]:
    """Points along ``line`` every ``step_m`` metres, 6 s apart (a walk)."""
    count = max(int(line.length * 111_000 / step_m), 2)
    return [{"lon": p.x, "lat": p.y, "time": (start + timedelta(seconds=6 * i)).isoformat()}
            for i, p in enumerate(line.interpolate(i / count, normalized=True) for i in range(count + 1))]


def test_a_week_of_patrols_through_the_api(district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services import staff
    from gridmap.store import users

    street = street_in_a_grid(district)
    password = "patrol test password"
    with district.begin() as conn:
        for name, role in (("wang", "worker"), ("li", "worker"), ("viewer", "viewer"), ("admin", "admin")):
            users.create_user(conn, name, password)
            users.grant(conn, name, role, DISTRICT)
    for name, account in (("王网格", "wang"), ("李网格", "li")):  # both assigned to the grid; only 王 walks
        person = staff.create(district, DISTRICT, actor="test", name=name, role="专职网格员", phone=None, staff_key=None)
        staff.assign(district, person["staff_id"], street["grid"], actor="test", valid_from=date(2026, 1, 1))
        staff.update(district, person["staff_id"], {"username": account}, actor="test")
    client = TestClient(create_app(database_url=database_url))

    def headers(name: str | None) -> dict:
        if name is None:
            return {}
        token = client.post("/api/auth/token", data={"username": name, "password": password})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    url = f"/api/territories/{DISTRICT}/patrols"
    body = {"points": walk(street["line"], MONDAY)}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=headers("viewer")).status_code == 403
    sent = client.post(url, json=body, headers=headers("wang"))
    assert sent.status_code == 201 and sent.json()["stored"], sent.text
    assert abs(sent.json()["length_m"] - street["length_m"]) / street["length_m"] < 0.05
    again = client.post(url, json=body, headers=headers("wang"))  # the phone retrying: kept once
    assert again.status_code == 201 and again.json()["state"] == "kept" and again.json()["patrol_id"] == sent.json()["patrol_id"]
    first_half = {"points": body["points"][: len(body["points"]) // 2]}
    assert client.post(url, json=first_half, headers=headers("wang")).json()["state"] == "kept"  # shorter: kept as it was
    far = {"points": [{"lon": 7.42, "lat": 43.73, "time": MONDAY.isoformat()},
                      {"lon": 7.4201, "lat": 43.73, "time": (MONDAY + timedelta(seconds=20)).isoformat()}]}
    assert client.post(url, json=far, headers=headers("wang")).status_code == 422  # not in the territory

    # 李's own walk, uploaded as GPX the next day, along the same street back
    back = walk(shapely.LineString(list(street["line"].coords)[::-1]), MONDAY + timedelta(days=1))
    gpx = tmp_path / "track.gpx"

    def write_gpx(points: list[dict]) -> None:
        gpx.write_text('<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
                       "<trk><trkseg>" + "".join(f'<trkpt lat="{p["lat"]}" lon="{p["lon"]}"><time>{p["time"]}</time></trkpt>'
                                                 for p in points) + "</trkseg></trk></gpx>", encoding="utf-8")

    write_gpx(back[: len(back) // 3])  # the part of the walk sent before the network dropped
    with gpx.open("rb") as fh:
        part = client.post(f"{url}/upload", files={"file": ("track.gpx", fh)}, headers=headers("li"))
    assert part.status_code == 201 and part.json()["state"] == "stored", part.text
    write_gpx(back)  # then the whole walk: it replaces the part
    with gpx.open("rb") as fh:
        uploaded = client.post(f"{url}/upload", files={"file": ("track.gpx", fh)}, headers=headers("li"))
    assert uploaded.status_code == 201 and uploaded.json()["points"] == len(back), uploaded.text
    assert uploaded.json()["state"] == "replaced" and uploaded.json()["patrol_id"] == part.json()["patrol_id"]
    broken = tmp_path / "broken.gpx"
    broken.write_text("<gpx><trk>", encoding="utf-8")
    with broken.open("rb") as fh:
        assert client.post(f"{url}/upload", files={"file": ("broken.gpx", fh)}, headers=headers("li")).status_code == 422

    # tracks: one's own; all of them for administrators
    week = {"week": "2026-W49"}
    assert [f["properties"]["walker"] for f in client.get(url, params=week, headers=headers("wang")).json()["features"]] == ["wang"]
    assert client.get(url, params=week, headers=headers("viewer")).json()["features"] == []
    assert [f["properties"]["walker"] for f in client.get(url, params=week, headers=headers("admin")).json()["features"]] \
        == ["wang", "li"]
    assert client.get(url, params={"week": "2026-W48"}, headers=headers("admin")).json()["features"] == []

    # coverage: the street walked is the street's length in the grid; who walked; who did not
    found = client.get(f"{url}/coverage", params=week, headers=headers("viewer")).json()
    grid = {g["grid_code"]: g for g in found["grids"]}[street["grid"]]
    # the street walked whole, and of the streets crossing it the 20 m on either side of the walk
    assert street["length_m"] * 0.95 < grid["walked_m"] <= grid["street_m"] and 0 < grid["share"] <= 1
    assert grid["walkers"] == ["li", "wang"] and grid["not_patrolled"] == []
    only_wang = client.get(f"{url}/coverage", params={"week": "2026-W49"}, headers=headers("viewer")).json()
    assert only_wang["totals"]["grids_patrolled"] >= 1
    with district.begin() as conn:  # 李's track taken away: 李 did not patrol
        conn.execute(sa.text("DELETE FROM patrols WHERE walker = 'li'"))
    grid = {g["grid_code"]: g for g in client.get(f"{url}/coverage", params=week,
                                                   headers=headers("viewer")).json()["grids"]}[street["grid"]]
    assert grid["walkers"] == ["wang"] and grid["not_patrolled"] == ["李网格"]
    assert client.get(f"{url}/coverage", params={"week": "bad"}, headers=headers("viewer")).status_code == 422
    with district.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'patrol.stored'")).scalar_one() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'patrol.replaced'")).scalar_one() == 1
        from gridmap.services import reading

        frame = reading.patrols(conn, DISTRICT, week="2026-W49")  # the notebook's read
    assert list(frame["walker"]) == ["wang"] and frame.crs.to_epsg() == 4490
    assert abs(frame["length_m"].iloc[0] - street["length_m"]) / street["length_m"] < 0.05


def test_the_cli_takes_a_geojson_track_and_prints_the_coverage(district: sa.Engine, database_url: str,
                                                               tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from gridmap.store import users

    street = street_in_a_grid(district)
    with district.begin() as conn:
        users.create_user(conn, "zhao", "patrol test password")
    points = walk(street["line"], MONDAY)
    (tmp_path / "t.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"time": p["time"]}, "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]}}
        for p in points]}), encoding="utf-8")
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "gridmap.cli", "patrols"]
    done = subprocess.run([*run, "import", str(tmp_path / "t.geojson"), "--territory", DISTRICT, "--walker", "zhao"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0 and f"track of {len(points)} points" in done.stdout and ": stored" in done.stdout, done.stderr
    nobody = subprocess.run([*run, "import", str(tmp_path / "t.geojson"), "--territory", DISTRICT, "--walker", "nobody"],
                            env=env, capture_output=True, text=True)
    assert nobody.returncode == 1 and "没有账号" in nobody.stderr
    shown = subprocess.run([*run, "coverage", "--territory", DISTRICT, "--week", "2026-W49", "--json"], env=env,
                           capture_output=True, text=True)
    grid = {g["grid_code"]: g for g in json.loads(shown.stdout)["grids"]}[street["grid"]]
    assert grid["walkers"] == ["zhao"] and street["length_m"] * 0.95 < grid["walked_m"] <= grid["street_m"]


def test_incidents_found_on_a_patrol_the_last_visit_of_each_building_and_the_leaders_view(
        district: sa.Engine, database_url: str) -> None:
    """A walk sent in two parts, as the phone sends it while walking: an incident its walker
    reported before the first part arrived is linked when it arrives, one reported after it is
    linked at once, another walker's is not; the time each building of the grid was passed is read
    from the track where it came closest (checked against the walk's own times, in metres
    computed apart from PostGIS); the grid leader sees the worker's track, a worker of another grid
    does not."""
    import geopandas as gpd
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services import incidents, staff
    from gridmap.services.patrols import city_zone
    from gridmap.store import users

    incidents.ensure_categories(district)
    street = street_in_a_grid(district)
    with district.connect() as conn:
        other_grid = conn.execute(sa.text(
            "SELECT g.code FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "WHERE g.code <> :g AND NOT ST_Intersects(g.geom, ST_Buffer(ST_GeomFromText(:line, 4490), 0.001)) "
            "ORDER BY g.code LIMIT 1"), {"g": street["grid"], "line": street["line"].wkt}).scalar_one()
        category = conn.execute(sa.text("SELECT code FROM incident_categories WHERE active AND NOT EXISTS "
                                        "(SELECT 1 FROM jsonb_array_elements(COALESCE(attributes, '[]'::jsonb)) a "
                                        "WHERE (a->>'required')::boolean) ORDER BY code LIMIT 1")).scalar_one()
    password = "patrol test password"
    with district.begin() as conn:
        for name, role in (("wang", "worker"), ("zhang", "worker"), ("zhao", "worker"), ("admin", "admin")):
            users.create_user(conn, name, password)
            users.grant(conn, name, role, DISTRICT)
    for name, role, account, grid in (("王网格", "专职网格员", "wang", street["grid"]), ("张组长", "网格长", "zhang", street["grid"]),
                                      ("赵网格", "专职网格员", "zhao", other_grid)):
        person = staff.create(district, DISTRICT, actor="test", name=name, role=role, phone=None, staff_key=None)
        staff.assign(district, person["staff_id"], grid, actor="test", valid_from=date(2026, 1, 1))
        staff.update(district, person["staff_id"], {"username": account}, actor="test")
    client = TestClient(create_app(database_url=database_url))
    tokens = {name: client.post("/api/auth/token", data={"username": name, "password": password}).json()["access_token"]
              for name in ("wang", "zhang", "zhao", "admin")}

    def as_(name: str) -> dict:
        return {"Authorization": f"Bearer {tokens[name]}"}

    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
    points = walk(street["line"], start)
    half = len(points) // 2
    at = lambda i: datetime.fromisoformat(points[i]["time"])  # noqa: E731
    mid = street["line"].interpolate(0.5, normalized=True)

    def report(name: str, when: datetime) -> dict:
        sent = client.post("/api/incidents", headers=as_(name), json={
            "category_code": category, "lon": mid.x, "lat": mid.y, "crs": "4490", "reported_at": when.isoformat()})
        assert sent.status_code == 201, sent.text
        return sent.json()

    early = report("wang", at(2))  # before any part of the walk reached the server
    assert early["patrol_id"] is None
    url = f"/api/territories/{DISTRICT}/patrols"
    part = client.post(url, json={"points": points[:half]}, headers=as_("wang")).json()
    assert part["state"] == "stored" and part["incidents_linked"] == [early["public_id"]]
    during = report("wang", at(half) + timedelta(minutes=1))  # on the walk: the part sent is its patrol
    assert during["patrol_id"] == part["patrol_id"]
    others = report("zhang", at(3))  # someone else's report at the same time is not on wang's walk
    later = report("wang", at(len(points) - 1) + timedelta(minutes=20))  # long after the walk
    whole = client.post(url, json={"points": points}, headers=as_("wang")).json()
    assert whole["state"] == "replaced" and whole["patrol_id"] == part["patrol_id"] and whole["incidents_linked"] == []
    assert client.get(f"/api/incidents/{others['public_id']}", headers=as_("admin")).json()["patrol_id"] is None
    assert client.get(f"/api/incidents/{later['public_id']}", headers=as_("admin")).json()["patrol_id"] is None
    year, week_no, _ = start.astimezone(city_zone()).isocalendar()
    week = {"week": f"{year}-W{week_no:02d}"}
    track = client.get(url, params=week, headers=as_("admin")).json()["features"]
    assert [f["properties"]["incidents"] for f in track] == [[early["public_id"], during["public_id"]]]

    # who sees the track: its walker, the grid's leader; not a worker of another grid
    for name, seen in (("wang", 1), ("zhang", 1), ("zhao", 0)):
        assert len(client.get(url, params=week, headers=as_(name)).json()["features"]) == seen, name

    # the last visit of each building of the grid, against the walk's own times (6 s a point,
    # evenly along the street) and distances measured in a metric projection
    visits = client.get(f"{url[:-len('/patrols')]}/grids/{street['grid']}/visits", params=week, headers=as_("zhang"))
    assert visits.status_code == 200, visits.text
    frame = gpd.GeoDataFrame.from_features(visits.json()["features"], crs=4490)
    assert len(frame) > 0 and visits.json()["buildings"] == len(frame)
    metric = frame.to_crs(frame.estimate_utm_crs())
    line = gpd.GeoSeries([street["line"]], crs=4490).to_crs(metric.crs).iloc[0]
    near = metric.distance(line) <= 19.0  # (a metre's margin either side of 20 m for the projection)
    far = metric.distance(line) > 21.0
    assert near.any(), "the street passes no building within 20 m: the test needs a street with buildings"
    assert frame.loc[near, "last_visit"].notna().all() and frame.loc[far, "last_visit"].isna().all()
    duration = (at(len(points) - 1) - at(0)).total_seconds()
    for idx in frame.index[near]:
        closest = line.project(shapely.ops.nearest_points(line, metric.geometry[idx])[0], normalized=True)
        expected = at(0) + timedelta(seconds=closest * duration)
        seen = datetime.fromisoformat(frame.at[idx, "last_visit"])
        assert abs((seen - expected).total_seconds()) < 12, (frame.at[idx, "building_name"], seen, expected)
    assert (frame.loc[near, "walker"] == "wang").all() and frame.loc[near, "in_week"].all()
    assert visits.json()["visited_in_week"] == int(frame["in_week"].sum())
    hidden = client.get(f"{url[:-len('/patrols')]}/grids/{street['grid']}/visits", params=week, headers=as_("zhao")).json()
    assert all(f["properties"]["last_visit"] is None for f in hidden["features"])  # not zhao's walk to see
    assert hidden["visited_in_week"] == visits.json()["visited_in_week"]  # the week's count is everyone's, as coverage's
    assert client.get(f"{url[:-len('/patrols')]}/grids/NOPE/visits", headers=as_("admin")).status_code == 404
    coverage = {g["grid_code"]: g for g in client.get(f"{url}/coverage", params=week, headers=as_("zhao")).json()["grids"]}
    assert coverage[street["grid"]]["buildings"] == len(frame)
    assert coverage[street["grid"]]["buildings_visited"] == int(frame["in_week"].sum())


@pytest.mark.browser
def test_the_people_page_shows_a_grids_tracks_and_buildings_by_last_visit(district: sa.Engine, database_url: str) -> None:
    """On /people a grid leader selects the grid a worker walked this week: the week's buildings
    visited count shows in the grid's figures, and the map draws the track and the grid's
    buildings green (visited this week) or red (never), as many of each as the visits API says;
    in English too."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import patrols as service
    from gridmap.services import staff
    from gridmap.store import users
    from samples import launch_chromium, serve

    street = street_in_a_grid(district)
    password = "people patrol password"
    with district.begin() as conn:
        for name in ("wang", "zhang"):
            users.create_user(conn, name, password)
            users.grant(conn, name, "worker", DISTRICT)
        walker_id = conn.execute(sa.text("SELECT id FROM users WHERE username = 'wang'")).scalar_one()
    for name, role, account in (("王网格", "专职网格员", "wang"), ("张组长", "网格长", "zhang")):
        person = staff.create(district, DISTRICT, actor="test", name=name, role=role, phone=None, staff_key=None)
        staff.assign(district, person["staff_id"], street["grid"], actor="test", valid_from=date(2026, 1, 1))
        staff.update(district, person["staff_id"], {"username": account}, actor="test")
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    points = [(p["lon"], p["lat"], datetime.fromisoformat(p["time"])) for p in walk(street["line"], start)]
    service.record(district, DISTRICT, points, user_id=walker_id, walker="wang")
    expected = service.visits(district, DISTRICT, street["grid"], week=None, user_ids=None)
    assert 0 < expected["visited_in_week"] < expected["buildings"]
    colours = """() => { const out = {}; window.gridmapPeopleMap().eachLayer(l => {
        if (l.feature && l.feature.properties && 'in_week' in l.feature.properties)
            out[l.options.fillColor] = (out[l.options.fillColor] || 0) + 1; }); return out; }"""
    tracks = """() => { let n = 0; window.gridmapPeopleMap().eachLayer(l => {
        if (l.feature && l.feature.properties && 'patrol_id' in l.feature.properties) n += 1; }); return n; }"""
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/people")
        page.fill("#username", "zhang")
        page.fill("#password", password)
        page.click("#login-button")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        page.evaluate(f"""() => window.gridmapPeopleMap().eachLayer(l => {{
            if (l.feature && l.feature.properties.grid_code === '{street["grid"]}') l.fire('click'); }})""")
        page.wait_for_selector("#show-patrols:not([hidden])")
        figures = page.inner_text("#grid-figures")
        assert f"本周到访楼栋\n{expected['visited_in_week']} / {expected['buildings']}" in figures, figures
        page.click("#show-patrols")
        page.wait_for_function("document.querySelector('#patrol-note').textContent.startsWith('本周到访')")
        drawn = page.evaluate(colours)
        never = expected["buildings"] - expected["visited_in_week"]  # a fresh grid: visited now or never
        assert drawn == {"#1a9641": expected["visited_in_week"], "#d7191c": never}, drawn
        assert page.evaluate(tracks) == 1
        page.click("#lang-switch")
        assert page.inner_text("#patrol-note").startswith(f"Visited this week: {expected['visited_in_week']}")
        assert "Buildings visited this week" in page.inner_text("#grid-figures")
        assert not errors, errors
        browser.close()
