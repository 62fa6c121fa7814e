"""The three lists (gridmap.lists, services/lists, api/lists, ``gridmap lists``) on real PostGIS with a
small synthetic Chinese district: a resources sheet as an office keeps it (GBK, GCJ-02
coordinates from an Amap pick, one row placed by its address), needs recorded by a grid worker,
the resources that could meet a need ranked, a project made of them and finished, a need referred
to the incident loop, the counts per grid, bad sheets refused whole, and who may do what."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import DISTRICT
from gridmap import lists


# -- pure -----------------------------------------------------------------------------------------
def test_matches_are_ranked_by_distance_community_and_capacity() -> None:
    resources = pd.DataFrame({
        "resource_id": [1, 2, 3, 4, 5, 6, 7],
        "categories": [["助餐"], ["助餐", "养老服务"], ["助餐"], ["托育"], ["助餐"], ["助餐"], ["助餐"]],
        "active": [True, True, True, True, False, True, True],
        "community_id": [10, 11, 10, 10, 10, 12, 10],
        "distance_m": [800.0, 300.0, np.nan, 100.0, 50.0, 5000.0, 300.0],
        "capacity": [20, 5, 50, 100, 100, 100, 40]})
    ranked = lists.rank_matches({"category": "助餐", "community_id": 10}, resources, within_m=1000)
    # 7 and 2 at 300 m (the larger first), then 1; 3 has no point but is in the community; 4 serves
    # another category, 5 is inactive, 6 is too far and elsewhere
    assert list(ranked["resource_id"]) == [7, 2, 1, 3]
    assert list(ranked["reason"]) == ["within", "within", "within", "community"]
    assert lists.rank_matches({"category": "助餐", "community_id": 99}, resources.iloc[:0], within_m=1000).empty


def test_status_moves_and_sheets_say_what_is_wrong() -> None:
    lists.check_move(lists.NEED_MOVES, lists.NEED_STATUS, "open", "matched")
    with pytest.raises(lists.ListError, match="a met item cannot become open") as caught:
        lists.check_move(lists.NEED_MOVES, lists.NEED_STATUS, "met", "open")
    assert "已解决" in caught.value.zh
    rules = lists.ListRules()
    rows, problems = lists.need_rows(pd.DataFrame({
        "类别": ["助餐", "飞行", "托育", "助医"], "描述": ["独居老人需要送餐", "x", None, "复诊"],
        "紧急程度": ["紧急", None, "马上", None], "经度": ["103.0", None, None, "abc"], "纬度": ["29.98", None, None, "1"],
        "社区代码": [None, "511802001001", None, None]}), rules)
    assert rows[0]["urgency"] == "high" and rows[0]["lon"] == 103.0 and rows[1]["urgency"] == "normal"
    found = sorted((p["row"], p["en"].split(" (")[0]) for p in problems)
    assert found == [(3, "unknown category '飞行'"), (4, "no description"), (4, "no place: give 经度/纬度, 地址 or 社区代码"),
                     (4, "unknown urgency '马上'"), (5, "longitude/latitude 'abc', '1' are not numbers"),
                     (5, "no place: give 经度/纬度, 地址 or 社区代码")]
    rows, problems = lists.resource_rows(pd.DataFrame({
        "单位名称": ["区人民医院", "夕阳红志愿队"], "资源类型": ["驻区单位", "志愿队伍"], "服务类别": ["助医、养老服务", "跳伞"],
        "容量": ["200", "-3"], "社区代码": ["511802001001"] * 2}), rules)
    assert rows[0]["kind"] == "unit" and rows[0]["categories"] == ["助医", "养老服务"] and rows[0]["capacity"] == 200
    assert sorted(p["en"] for p in problems) == ["capacity '-3' is not a whole number", "unknown category '跳伞'"]
    _, problems = lists.resource_rows(pd.DataFrame({"名称": ["食堂"], "类型": ["场地"], "服务类别": ["、"]}), rules)
    assert [p["en"] for p in problems] == ["no category served", "no place: give 经度/纬度, 地址 or 社区代码"]


# -- the district ---------------------------------------------------------------------------------
def places(engine: sa.Engine, count: int) -> list[dict]:
    """Points inside published grids of the district (their grid and community), spread out."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT g.code, c.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories c ON c.id = g.community_id "
            "WHERE g.kind = 'comprehensive' ORDER BY g.code LIMIT :n"), {"n": count}).all()
    return [{"grid": r[0], "community": r[1], "lon": r[2], "lat": r[3]} for r in rows]


def gcj02(lon: float, lat: float) -> tuple[float, float]:
    """What Amap shows for a CGCS2000/WGS84 point (the forward GCJ-02 shift, inverted by the import)."""
    from gridmap.geo.crs import wgs84_to_gcj02

    x, y = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    return float(x[0]), float(y[0])


def test_the_lists_from_sheet_to_project_through_the_api(district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services.incidents import ensure_categories
    from gridmap.store import households, layers, users

    ensure_categories(district)
    spots = places(district, 1000)
    here = spots[0]
    there = max(spots, key=lambda p: (p["lon"] - here["lon"]) ** 2 + (p["lat"] - here["lat"]) ** 2)  # far from it
    with district.connect() as conn:
        building = households.buildings(conn, DISTRICT, *layers.find(conn, DISTRICT, layers.ROLES["buildings"])) \
            .dropna(subset=["compound_name"]).iloc[0]
    near = gcj02(here["lon"] + 0.0005, here["lat"])  # about 50 m east, as picked on Amap
    sheet = pd.DataFrame({
        "名称": ["社区食堂", "区人民医院", "夕阳红志愿队", "远处食堂"],
        "类型": ["服务机构", "驻区单位", "志愿队伍", "服务机构"],
        "服务类别": ["助餐", "助医、养老服务", "助餐、养老服务", "助餐"],
        "容量": ["80", "500", "30", "200"], "服务时间": ["11:00-13:00", "全天", "周末", "11:00-13:00"],
        "联系电话": ["0835-1234567", "0835-7654321", "13900001111", "0835-0000000"],
        "经度": [str(near[0]), None, None, str(gcj02(there["lon"], there["lat"])[0])],
        "纬度": [str(near[1]), None, None, str(gcj02(there["lon"], there["lat"])[1])],
        "地址": [None, f"{building.compound_name}{building.building_name}", None, None],
        "社区代码": [None, None, here["community"], None]})
    sheet.to_csv(tmp_path / "资源.csv", index=False, encoding="gbk")
    password = "lists test password"
    with district.begin() as conn:
        for name, role, grids in (("admin", "admin", None), ("worker", "worker", [here["grid"]]), ("viewer", "viewer", None)):
            users.create_user(conn, name, password)
            users.grant(conn, name, role, DISTRICT, grid_codes=grids)
    client = TestClient(create_app(database_url=database_url))

    def headers(name: str | None) -> dict:
        if name is None:
            return {}
        token = client.post("/api/auth/token", data={"username": name, "password": password})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    url = f"/api/territories/{DISTRICT}"
    with (tmp_path / "资源.csv").open("rb") as fh:
        assert client.post(f"{url}/lists/import", data={"kind": "resources", "crs": "gcj02"},
                           files={"file": ("资源.csv", fh)}, headers=headers("worker")).status_code == 403
    with (tmp_path / "资源.csv").open("rb") as fh:
        taken = client.post(f"{url}/lists/import", data={"kind": "resources", "crs": "gcj02"},
                            files={"file": ("资源.csv", fh)}, headers=headers("admin"))
    assert taken.status_code == 200, taken.text
    assert taken.json()["added"] == 4
    listed = client.get(f"{url}/resources", headers=headers("viewer")).json()
    by_name = {f["properties"]["name"]: f for f in listed["features"]}
    assert all(f["properties"]["contact"] is None for f in listed["features"])  # no contacts for a viewer
    assert client.get(f"{url}/resources", headers=headers("worker")).json()["features"][0]["properties"]["contact"]
    canteen = by_name["社区食堂"]["geometry"]["coordinates"]
    assert abs(canteen[0] - (here["lon"] + 0.0005)) < 1e-6 and abs(canteen[1] - here["lat"]) < 1e-6  # GCJ-02 undone
    assert by_name["社区食堂"]["properties"]["grid_code"] == here["grid"]
    assert abs(by_name["区人民医院"]["geometry"]["coordinates"][0] - building.lon) < 1e-9  # placed by its address
    assert by_name["夕阳红志愿队"]["geometry"] is None and by_name["夕阳红志愿队"]["properties"]["community_code"] == here["community"]
    # the same sheet again changes nothing; a bad one names its rows and stores nothing
    with (tmp_path / "资源.csv").open("rb") as fh:
        again = client.post(f"{url}/lists/import", data={"kind": "resources", "crs": "gcj02"},
                            files={"file": ("资源.csv", fh)}, headers=headers("admin")).json()
    assert again["added"] == 0 and again["updated"] == 4
    bad = sheet.copy()
    bad.loc[0, "服务类别"] = "跳伞"
    bad.loc[1, "地址"] = "不存在的小区99栋"
    bad.loc[3, "名称"] = "社区食堂"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with (tmp_path / "bad.csv").open("rb") as fh:
        refused = client.post(f"{url}/lists/import", data={"kind": "resources"}, files={"file": ("bad.csv", fh)},
                              headers=headers("admin"))
    assert refused.status_code == 422
    assert sorted(p["row"] for p in refused.json()["problems"]) == [2, 2, 3]
    assert "第 2 行" in refused.json()["detail_zh"]

    # a worker records a need where they stand; the resources that could meet it, best first
    assert client.post(f"{url}/needs", json={"category": "助餐", "description": "x", "lon": here["lon"], "lat": here["lat"]},
                       headers=headers("viewer")).status_code == 403
    made = client.post(f"{url}/needs", json={"category": "助餐", "description": "独居老人每日午餐", "urgency": "紧急",
                                            "lon": here["lon"], "lat": here["lat"], "source": "worker"},
                       headers=headers("worker"))
    assert made.status_code == 201, made.text
    need = made.json()
    assert need["properties"]["grid_code"] == here["grid"] and need["properties"]["urgency"] == "high"
    assert need["properties"]["status_zh"] == "待办"
    outside = client.post(f"{url}/needs", json={"category": "助餐", "description": "x", "lon": 7.42, "lat": 43.73},
                          headers=headers("worker"))
    assert outside.status_code == 422 and "不在辖区" in outside.json()["detail_zh"]
    need_id = need["id"]
    found = client.get(f"/api/needs/{need_id}/matches", headers=headers("viewer")).json()
    names = [r["name"] for r in found["resources"]]
    assert names == ["社区食堂", "夕阳红志愿队"]  # the canteen 50 m away, then the team of the community; not the far one
    assert 30 < found["resources"][0]["distance_m"] < 70
    assert client.get(f"/api/needs/{need_id}/matches", params={"within": 1e6}, headers=headers("viewer")).status_code == 422
    wide = client.get(f"/api/needs/{need_id}/matches", params={"within": 50_000}, headers=headers("viewer")).json()
    assert "远处食堂" in [r["name"] for r in wide["resources"]]

    # a project of the need and the canteen: only administrators; done needs an outcome, and meets the need
    body = {"name": "助餐进楼栋", "need_ids": [need_id], "resource_ids": [by_name["社区食堂"]["id"]], "budget": 12000,
            "start_date": "2026-12-01", "end_date": "2027-03-01", "owner": "社区居委会"}
    assert client.post(f"{url}/projects", json=body, headers=headers("worker")).status_code == 403
    project = client.post(f"{url}/projects", json=body, headers=headers("admin"))
    assert project.status_code == 201, project.text
    project_id = project.json()["project_id"]
    assert client.get(f"/api/needs/{need_id}", headers=headers("viewer")).json()["properties"]["status"] == "in_project"
    assert client.patch(f"/api/projects/{project_id}", json={"status": "done"}, headers=headers("admin")).status_code == 422
    assert client.patch(f"/api/projects/{project_id}", json={"status": "active"}, headers=headers("admin")).status_code == 200
    done = client.patch(f"/api/projects/{project_id}", json={"status": "done", "outcome": "42 位老人每日送餐"},
                        headers=headers("admin"))
    assert done.status_code == 200 and done.json()["status_zh"] == "已完成"
    assert client.get(f"/api/needs/{need_id}", headers=headers("viewer")).json()["properties"]["status"] == "met"
    assert client.post(f"/api/needs/{need_id}/status", json={"status": "open"}, headers=headers("worker")).status_code == 422
    # a need is in one project at a time, moves with it, and a cancelled project opens it again
    third = client.post(f"{url}/needs", json={"category": "托育", "description": "放学后托管", "lon": here["lon"],
                                             "lat": here["lat"], "reported_by": "张阿姨"}, headers=headers("worker")).json()
    assert third["properties"]["reported_by"] == "张阿姨"
    assert client.get(f"/api/needs/{third['id']}", headers=headers("viewer")).json()["properties"]["reported_by"] is None
    first = client.post(f"{url}/projects", json={"name": "托管一期", "need_ids": [third["id"]], "start_date": "2026-12-01"},
                        headers=headers("admin"))
    again = client.post(f"{url}/projects", json={"name": "托管二期", "need_ids": [third["id"]]}, headers=headers("admin"))
    assert first.status_code == 201 and again.status_code == 422 and "只能纳入待办或已匹配" in again.json()["detail_zh"]
    assert client.post(f"/api/needs/{third['id']}/status", json={"status": "met"},
                       headers=headers("worker")).status_code == 422  # moves with its project only
    cancelled = client.patch(f"/api/projects/{first.json()['project_id']}", json={"status": "cancelled"},
                             headers=headers("admin"))
    assert cancelled.status_code == 200
    reopened = client.get(f"/api/needs/{third['id']}", headers=headers("viewer")).json()["properties"]
    assert reopened["status"] == "open" and reopened["project_id"] is None
    assert client.patch(f"/api/projects/{first.json()['project_id']}", json={"end_date": "2020-01-01"},
                        headers=headers("admin")).status_code == 422
    assert client.post(f"/api/needs/{third['id']}/status", json={"status": "closed", "note": "家长自行解决"},
                       headers=headers("worker")).status_code == 200

    # another need: closing without a reason is refused; one referred to the incident loop
    second = client.post(f"{url}/needs", json={"category": "设施维修", "description": "楼道灯坏了", "lon": here["lon"],
                                              "lat": here["lat"]}, headers=headers("worker")).json()
    assert client.post(f"/api/needs/{second['id']}/status", json={"status": "closed"},
                       headers=headers("worker")).status_code == 422
    elsewhere = client.post(f"{url}/needs", json={"category": "设施维修", "description": "路灯坏了", "lon": there["lon"],
                                                 "lat": there["lat"]}, headers=headers("worker")).json()
    refused = client.post(f"/api/needs/{elsewhere['id']}/incident", json={"category_code": "0101"}, headers=headers("worker"))
    assert refused.status_code == 403  # the worker reports incidents in their own grid only
    assert client.get(f"/api/needs/{elsewhere['id']}", headers=headers("viewer")).json()["properties"]["status"] == "open"
    referred = client.post(f"/api/needs/{second['id']}/incident", json={"category_code": "0101"}, headers=headers("worker"))
    assert referred.status_code == 201, referred.text
    public_id = referred.json()["properties"]["incident_public_id"]
    assert referred.json()["properties"]["status"] == "referred"
    incident = client.get(f"/api/incidents/{public_id}", headers=headers("admin")).json()
    assert incident["description"] == "楼道灯坏了" and incident["grid_code"] == here["grid"]
    refer_twice_at_once_and_fail_half_way(district, client, url, headers, here)

    # the counts per grid, and the GeoJSON list filtered by grid
    summary = client.get(f"{url}/lists/summary", headers=headers("viewer")).json()
    grid = {g["grid_code"]: g for g in summary["grids"]}[here["grid"]]
    assert grid["resources"] == sum(f["properties"]["grid_code"] == here["grid"] for f in listed["features"]) >= 1
    assert grid["open_needs"] == 0 and grid["projects"] == {"done": 1, "cancelled": 1}
    assert summary["needs_by_status"] == {"met": 1, "referred": 3, "closed": 1, "open": 1}
    in_grid = client.get(f"{url}/needs", params={"grid": here["grid"]}, headers=headers("viewer"))
    assert in_grid.headers["content-type"].startswith("application/geo+json") and len(in_grid.json()["features"]) == 5
    assert client.get(f"{url}/needs").status_code == 401 and client.get(f"/api/needs/{need_id}").status_code == 401
    with district.connect() as conn:
        actions = conn.execute(sa.text("SELECT action FROM audit_log WHERE action ~ '^(need|resource|project)' "
                                       "ORDER BY id")).scalars().all()
    assert actions == ["resources.import", "resources.import", "need.create", "project.create", "project.update",
                       "project.update", "need.create", "project.create", "project.update", "need.status", "need.create",
                       "need.create", "need.refer", "need.create", "need.refer", "need.create", "need.refer"]


def refer_twice_at_once_and_fail_half_way(district: sa.Engine, client, url: str, headers, here: dict) -> None:
    """A need referred twice at the same moment (a double tap) makes one incident and the second
    is refused; a referral failing after its incident was written (the database going away) leaves
    neither the incident nor the mark; then it can be referred again."""
    import threading

    from gridmap.services import lists as lists_service
    from gridmap.store import lists as lists_store

    def incidents_saying(text: str) -> int:
        with district.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM incidents WHERE description = :d"), {"d": text}).scalar_one()

    need = client.post(f"{url}/needs", json={"category": "设施维修", "description": "单元门坏了", "lon": here["lon"],
                                            "lat": here["lat"]}, headers=headers("worker")).json()
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def refer() -> None:
        start.wait()
        try:
            outcomes.append(lists_service.refer_to_incident(district, need["id"], "0101", actor="worker"))
        except Exception as exc:  # noqa: BLE001 - the refusal is the outcome looked at
            outcomes.append(exc)

    threads = [threading.Thread(target=refer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from gridmap.errors import Refusal

    assert sum(isinstance(o, dict) for o in outcomes) == 1 and sum(isinstance(o, Refusal) for o in outcomes) == 1, outcomes
    assert incidents_saying("单元门坏了") == 1

    broken = client.post(f"{url}/needs", json={"category": "设施维修", "description": "电梯异响", "lon": here["lon"],
                                              "lat": here["lat"]}, headers=headers("worker")).json()
    real_set_need = lists_store.set_need

    def dies_on_the_mark(conn, need_id, changes):  # when the need is to name its incident
        if "incident_public_id" in changes:
            raise ConnectionError("the database went away")
        return real_set_need(conn, need_id, changes)

    lists_store.set_need = dies_on_the_mark
    try:
        with pytest.raises(ConnectionError):
            lists_service.refer_to_incident(district, broken["id"], "0101", actor="worker")
    finally:
        lists_store.set_need = real_set_need
    assert incidents_saying("电梯异响") == 0
    assert client.get(f"/api/needs/{broken['id']}", headers=headers("viewer")).json()["properties"]["status"] == "open"
    again = client.post(f"/api/needs/{broken['id']}/incident", json={"category_code": "0101"}, headers=headers("worker"))
    assert again.status_code == 201 and incidents_saying("电梯异响") == 1


def test_the_cli_takes_a_needs_sheet_and_the_notebook_reads_the_lists(district: sa.Engine, database_url: str,
                                                                     tmp_path: Path) -> None:
    from gridmap.services import reading

    spots = places(district, 3)
    sheet = pd.DataFrame({"类别": ["养老服务", "托育", "就业"], "描述": ["上门助浴", "托管两岁幼儿", "求职登记"],
                          "紧急程度": ["一般", "较急", None], "经度": [str(spots[0]["lon"]), None, str(spots[2]["lon"])],
                          "纬度": [str(spots[0]["lat"]), None, str(spots[2]["lat"])],
                          "社区代码": [None, spots[1]["community"], None]})
    sheet.to_excel(tmp_path / "需求.xlsx", index=False)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "gridmap.cli", "lists"]
    checked = subprocess.run([*run, "import", "needs", str(tmp_path / "需求.xlsx"), "--territory", DISTRICT, "--check"],
                             env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "checked (nothing stored)" in checked.stdout
    done = subprocess.run([*run, "import", "needs", str(tmp_path / "需求.xlsx"), "--territory", DISTRICT], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 needs rows taken: 3 added" in done.stdout
    summary = subprocess.run([*run, "summary", "--territory", DISTRICT], env=env, capture_output=True, text=True)
    assert "3 open needs" in summary.stdout and "待办需求 3 项" in summary.stdout
    bad = sheet.assign(类别=["养老服务", "飞行", "就业"])
    bad.to_csv(tmp_path / "bad.csv", index=False, encoding="gbk")
    refused = subprocess.run([*run, "import", "needs", str(tmp_path / "bad.csv"), "--territory", DISTRICT], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "row 3: unknown category '飞行'" in refused.stderr and "第 3 行" in refused.stderr
    with district.connect() as conn:
        needs = reading.needs(conn, DISTRICT)
        assert reading.projects(conn, DISTRICT).empty
    assert len(needs) == 3 and needs.crs.to_epsg() == 4490
    assert list(needs["grid_code"].notna()) == [True, False, True]  # the second has only its community
    assert needs.loc[0, "grid_code"] == spots[0]["grid"] and needs.loc[1, "community_code"] == spots[1]["community"]


@pytest.mark.browser
def test_the_dashboard_shows_the_lists_to_a_signed_in_role_and_says_where_to_sign_in(district: sa.Engine,
                                                                                     database_url: str) -> None:
    """The incident dashboard's lists section: without a sign-in it says where to sign in; signed
    in on the people page in the same tab, it gives the territory's open and urgent needs, needs
    by status, resources and projects by status as the API counts them, and a grid's tooltip its
    own; in Chinese and in English."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import lists
    from gridmap.store import users
    from samples import launch_chromium, serve

    spot = places(district, 1)[0]
    made = [lists.create_need(district, DISTRICT, {"category": "助餐", "description": f"送餐 {i}", "urgency": urgency,
                                                  "lon": spot["lon"], "lat": spot["lat"]}, actor="test")
            for i, urgency in enumerate(("high", "low", "low"))]
    food = lists.save_resource(district, DISTRICT, {"name": "长者食堂", "kind": "服务机构", "categories": ["助餐"],
                                                    "lon": spot["lon"], "lat": spot["lat"]}, actor="test")
    lists.create_project(district, DISTRICT, {"name": "送餐上门", "need_ids": [made[2]["id"]],
                                              "resource_ids": [food["id"]]}, actor="test")
    expected = lists.summary(district, DISTRICT)
    assert expected["totals"]["open_needs"] == 2 and expected["totals"]["projects"] == {"planned": 1}
    from gridmap.services import incidents, whistles

    incidents.ensure_categories(district)  # a whistle on an incident: 市政 arrives, 应急 has not yet
    made = incidents.report(district, incidents.Report(category_code="0101", lon=spot["lon"], lat=spot["lat"]),
                            actor="test")
    blown = whistles.blow(district, departments=["SZ", "YJ"], actor="test", incident=made["public_id"])
    whistles.answer(district, blown["id"], "SZ", "arrive", actor="test")
    password = "dashboard lists password"
    with district.begin() as conn:
        users.create_user(conn, "viewer", password)
        users.grant(conn, "viewer", "viewer", DISTRICT)
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/dashboard?territory={DISTRICT}")
        page.wait_for_function("document.querySelector('#lists-note').textContent.includes('登录后显示')")
        assert page.inner_text("#lists-figures") == ""
        page.goto(f"{url}/people")
        page.fill("#username", "viewer")
        page.fill("#password", password)
        page.click("#login-button")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        page.goto(f"{url}/dashboard?territory={DISTRICT}")
        page.wait_for_function("document.querySelector('#lists-figures').textContent.includes('待办需求')")
        figures = page.inner_text("#lists-figures")
        assert "待办需求\n2（紧急 1）" in figures and "可用资源\n1" in figures, figures
        assert "项目按状态\n计划中 1" in figures and "项目中 1" in figures and "待办 2" in figures
        grid = spot["grid"]
        tip = page.evaluate(f"""() => {{ let text = null; window.gridmapDashboardMap().eachLayer(l => {{
            if (l.feature && l.feature.properties && l.feature.properties.grid_code === '{grid}') {{
                l.openTooltip(); text = l.getTooltip().getContent(); if (typeof text === 'function') text = text(l); }} }});
            return text; }}""")
        counts = {g["grid_code"]: g for g in expected["grids"]}[grid]
        assert f"待办需求 {counts['open_needs']} · 资源 {counts['resources']} · 项目 1" in tip, tip
        page.wait_for_selector("#scorecard tbody tr[data-department='SZ']")
        rows = {r.get_attribute("data-department"): r.inner_text() for r in page.query_selector_all("#scorecard tbody tr")}
        assert rows["SZ"].split("\t")[1:] == ["1", "1/1", "0", "100%"], rows  # acknowledged at once (arrival)
        assert rows["YJ"].split("\t")[1:] == ["1", "0/1", "—", "—"], rows  # not due yet: not judged
        page.click("#lang-switch")
        assert "Public works" in page.inner_text("#scorecard") and "1 whistles blown" in page.inner_text("#whistles-note")
        english = page.inner_text("#lists")
        assert "Open needs\n2 (urgent 1)" in english and "planned 1" in english and "Projects by status" in english
        assert not errors, errors
        browser.close()
