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
    """A street of the district lying in one published comprehensive grid, that grid's code, and
    the street's length in it."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT g.code, ST_AsText(f.geom), ST_Length(ST_Intersection(f.geom, g.geom)::geography) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN layer_features f ON f.geom && g.geom "
            "JOIN layers l ON l.id = f.layer_id AND l.name = 'roads' WHERE g.kind = 'comprehensive' "
            "AND ST_CoveredBy(f.geom, g.geom) AND ST_Length(f.geom::geography) BETWEEN 100 AND 600 "
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
