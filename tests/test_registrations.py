"""双报到 (gridmap.registrations, services/registrations, api/registrations, ``gridmap registrations``)
on real PostGIS with a small synthetic Chinese district: the synthetic demo at scale, counted per
grid exactly as stored; an office's sheet (a member placed by the address of their building, a
unit by its coordinates) taken all or nothing and only once; service hours logged by grid
workers; names for administrators only."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import DISTRICT
from gridmap import registrations

TODAY = date(2026, 12, 4)


def test_kinds_sheets_and_the_synthetic_generator() -> None:
    assert registrations.kind_of("在职党员") == registrations.kind_of("party member") == "party_member"
    assert registrations.kind_of("驻区单位") == "unit" and registrations.kind_of("群众") is None
    rows, problems = registrations.sheet_rows(pd.DataFrame({
        "姓名": ["王伟", "李娜", "区医院", "张强"], "类型": ["党员", "群众", "单位", "党员"],
        "所在党组织": ["区教育局党委", None, None, None], "社区代码": ["511802001001", "511802001001", None, None],
        "报到日期": ["2026/3/1", None, "2027-01-01", "昨天"]}), today=TODAY)
    assert rows[0]["registered_on"] == date(2026, 3, 1) and rows[0]["kind"] == "party_member"
    assert sorted((p["row"], p["en"].split(" (")[0]) for p in problems) == [
        (3, "unknown kind '群众'"), (4, "no place: give 经度/纬度, 地址 or 社区代码"), (4, "registered in the future"),
        (5, "no place: give 经度/纬度, 地址 or 社区代码"), (5, "registered_on '昨天' is not a date")]
    buildings = pd.DataFrame({"lon": [103.0, 103.01, 103.02], "lat": [30.0, 30.0, 30.0], "community_id": [1, 1, 2],
                              "households": [10, 10, 980]})
    sites = pd.DataFrame({"lon": [103.05], "lat": [30.05], "community_id": [2]})
    frame, hours = registrations.synthetic(buildings, sites, members=2000, units=50, seed=3, today=TODAY)
    again, _ = registrations.synthetic(buildings, sites, members=2000, units=50, seed=3, today=TODAY)
    assert frame.equals(again) and len(frame) <= 2050 and (frame["kind"] == "unit").sum() == 50
    members = frame[frame["kind"] == "party_member"]
    assert (members["community_id"] == 2).mean() > 0.9  # where the households are
    assert frame["registered_on"].between(date(2023, 12, 1), TODAY).all()
    assert hours["hours"].between(1, 4).all() and hours["served_on"].between(date(2026, 1, 1), TODAY).all()
    assert (hours["served_on"] >= frame.loc[hours["row"], "registered_on"].to_numpy()).all()  # not before registering
    assert hours["row"].max() < len(frame) and 3 < len(hours) / len(frame) < 5


def test_the_demo_at_scale_is_counted_per_grid_as_stored(district: sa.Engine) -> None:
    from gridmap.services import registrations as service

    added = service.ensure_demo(district, DISTRICT, count=4000, today=TODAY)
    assert 3900 < added <= 4000 and service.ensure_demo(district, DISTRICT, count=4000, today=TODAY) == 0
    found = service.summary(district, DISTRICT, today=TODAY)
    with district.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE r.kind = 'party_member'), count(*) FILTER (WHERE r.kind = 'unit'), "
            "(SELECT sum(hours) FROM service_hours WHERE served_on >= '2026-01-01')::float8 FROM registrations r "
            "WHERE r.synthetic AND EXISTS (SELECT 1 FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "WHERE ST_Covers(g.geom, r.geom))")).one()
        per_grid = dict(conn.execute(sa.text(
            "SELECT g.code, count(*) FROM registrations r JOIN grids g ON ST_Covers(g.geom, r.geom) "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' GROUP BY g.code")).all())
    assert found["registered"] == added
    assert (found["totals"]["party_members"], found["totals"]["units"]) == (stored[0], stored[1])
    assert abs(found["totals"]["hours"] - stored[2]) < 1
    assert {g["grid_code"]: g["party_members"] + g["units"] for g in found["grids"]} == per_grid
    from gridmap.services import reading

    with district.connect() as conn:  # the notebook's read: every registration, its grid, no names
        frame = reading.registrations(conn, DISTRICT, on=TODAY)
    assert len(frame) == added and "name" not in frame and frame.crs.to_epsg() == 4490
    assert frame.groupby("grid_code").size().to_dict() == per_grid


def test_the_sheet_hours_and_who_reads_names(district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.store import households, layers, users

    with district.connect() as conn:
        building = households.buildings(conn, DISTRICT, *layers.find(conn, DISTRICT, layers.ROLES["buildings"])) \
            .dropna(subset=["compound_name"]).iloc[3]
        grid = conn.execute(sa.text(
            "SELECT g.code FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"), {"x": float(building.lon), "y": float(building.lat)}).scalar()
    sheet = pd.DataFrame({"姓名": ["王伟", "区税务局"], "类型": ["党员", "单位"], "所在党组织": ["区教育局党委", None],
                          "地址": [f"{building.compound_name}{building.building_name}", None],
                          "经度": [None, str(building.lon)], "纬度": [None, str(building.lat)],
                          "报到日期": ["2026-03-01", "2026-04-01"]})
    sheet.to_csv(tmp_path / "双报到.csv", index=False, encoding="gbk")
    password = "registrations test password"
    with district.begin() as conn:
        for name, role in (("admin", "admin"), ("worker", "worker"), ("viewer", "viewer")):
            users.create_user(conn, name, password)
            users.grant(conn, name, role, DISTRICT)
    client = TestClient(create_app(database_url=database_url))

    def headers(name: str) -> dict:
        token = client.post("/api/auth/token", data={"username": name, "password": password})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    url = f"/api/territories/{DISTRICT}/registrations"
    with (tmp_path / "双报到.csv").open("rb") as fh:
        assert client.post(f"{url}/import", files={"file": ("双报到.csv", fh)}, headers=headers("worker")).status_code == 403
    for expected in (2, 0):  # the same sheet twice: registered once
        with (tmp_path / "双报到.csv").open("rb") as fh:
            done = client.post(f"{url}/import", files={"file": ("双报到.csv", fh)}, headers=headers("admin"))
        assert done.status_code == 200 and done.json()["added"] == expected, done.text
    bad = sheet.assign(地址=["不存在的小区1栋", None])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with (tmp_path / "bad.csv").open("rb") as fh:
        refused = client.post(f"{url}/import", files={"file": ("bad.csv", fh)}, headers=headers("admin"))
    assert refused.status_code == 422 and [p["row"] for p in refused.json()["problems"]] == [2]

    as_viewer = client.get(url, headers=headers("viewer")).json()["features"]
    as_admin = {f["properties"]["name"]: f for f in client.get(url, headers=headers("admin")).json()["features"]}
    assert {f["properties"]["name"] for f in as_viewer} == {None} and set(as_admin) == {"王伟", "区税务局"}
    member = as_admin["王伟"]
    assert member["properties"]["grid_code"] == grid  # placed at the building of its address
    assert max(abs(a - b) for a, b in zip(member["geometry"]["coordinates"], (building.lon, building.lat))) < 2e-7
    hours = f"/api/registrations/{member['id']}/hours"
    assert client.post(hours, json={"hours": 2}, headers=headers("viewer")).status_code == 403
    assert client.post(hours, json={"hours": 25}, headers=headers("worker")).status_code == 422
    assert client.post(hours, json={"hours": 2, "served_on": "2099-01-01"}, headers=headers("worker")).status_code == 422
    logged = client.post(hours, json={"hours": 2.5, "activity": "陪独居老人就医"}, headers=headers("worker"))
    assert logged.status_code == 201, logged.text
    summary = client.get(f"{url}/summary", headers=headers("viewer")).json()
    here = {g["grid_code"]: g for g in summary["grids"]}[grid]
    assert here["party_members"] == 1 and here["units"] == 1 and here["hours"] == 2.5  # logged today, counted this year
    assert client.post(hours, json={"hours": 22}, headers=headers("worker")).status_code == 422  # 24.5 in one day
    assert client.post(hours, json={"hours": 1, "project_id": 999999}, headers=headers("worker")).status_code == 422
    assert client.get(f"{url}/summary").status_code == 401
    with district.connect() as conn:
        actions = conn.execute(sa.text("SELECT action FROM audit_log WHERE action LIKE 'registration%' ORDER BY id")).scalars().all()
    assert actions == ["registrations.import", "registrations.import", "registration.hours"]


def test_the_cli_checks_and_takes_a_sheet(district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    with district.connect() as conn:
        community = conn.execute(sa.text("SELECT code FROM territories WHERE level = 'community' ORDER BY code LIMIT 1")).scalar()
    pd.DataFrame({"单位名称": ["区供电公司"], "类型": ["驻区单位"], "社区代码": [community]}).to_excel(tmp_path / "r.xlsx", index=False)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "gridmap.cli", "registrations"]
    checked = subprocess.run([*run, "import", str(tmp_path / "r.xlsx"), "--territory", DISTRICT, "--check"], env=env,
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "checked (nothing stored)" in checked.stdout
    done = subprocess.run([*run, "import", str(tmp_path / "r.xlsx"), "--territory", DISTRICT], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "1 registered" in done.stdout, done.stderr
    summary = subprocess.run([*run, "summary", "--territory", DISTRICT], env=env, capture_output=True, text=True)
    assert "1 registered" in summary.stdout and "已报到 1" in summary.stdout


def test_a_demo_set_up_last_year_gets_this_years_hours_once(district: sa.Engine) -> None:
    """The demo's hours are this year's: a demo set up in 2025 has none in 2026, and the next
    `gridmap up` gives it 2026's (from the 1st of January to the day), once."""
    from gridmap.services import registrations as service

    assert service.ensure_demo(district, DISTRICT, count=200, today=date(2025, 6, 1)) > 0

    def hours_in(year: int) -> tuple[int, date | None, date | None]:
        with district.connect() as conn:
            return tuple(conn.execute(sa.text(
                "SELECT count(*), min(served_on), max(served_on) FROM service_hours WHERE served_on >= :a "
                "AND served_on < :b"), {"a": date(year, 1, 1), "b": date(year + 1, 1, 1)}).one())

    assert hours_in(2025)[0] > 0 and hours_in(2026)[0] == 0
    added = service.ensure_demo_hours(district, DISTRICT, today=date(2026, 3, 1))
    count, first, last = hours_in(2026)
    assert added == count > 0 and date(2026, 1, 1) <= first and last <= date(2026, 3, 1)
    assert service.ensure_demo_hours(district, DISTRICT, today=date(2026, 3, 2)) == 0  # once a year
