"""The grid staff (gridmap.staffing, services/staff, api/staff, ``gridmap staff``) on real PostGIS:
an office's sheet with Chinese headers in GBK (and as .xlsx) becomes people and assignments to the
published grids, a sheet with bad rows names every one and stores nothing, the staffing checks
count grids without a full-time worker (一格一员) and workers over their limits, a re-plan that
changes an assigned grid shows it with where the grid went, and only the territory's roles read
or write."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from gridmap import staffing
from gridmap.errors import Invalid

MONACO = "980100"
TODAY = date(2026, 12, 4)


def test_the_names_a_plans_free_text_gives() -> None:
    assert staffing.names_in("张三、李四 138 0000 0021") == [("张三", None), ("李四", "13800000021")]
    assert staffing.names_in("王五 13800000000，赵六") == [("王五", "13800000000"), ("赵六", None)]
    assert staffing.names_in("  ") == [] and staffing.names_in(None) == []


def test_roles_are_read_by_key_chinese_or_english_name() -> None:
    assert staffing.role_key("专职网格员") == staffing.role_key("full_time_worker") == \
        staffing.role_key("Full-time grid worker") == "full_time_worker"
    assert staffing.role_key("网格长") == "grid_leader" and staffing.role_key("队长") is None


def test_a_sheet_with_bad_rows_names_every_one() -> None:
    frame = pd.DataFrame({"姓名": ["张三", "李四", "", "王五", "赵六"],
                          "角色": ["专职网格员", "组长", "志愿者", "楼栋长", "专职网格员"],
                          "电话": ["13800000001", "13800000002", None, "call me", None],
                          "起始日期": ["2026-01-01", "2026/02/01", None, "2026-13-01", "2026-03-01"],
                          "结束日期": [None, None, None, None, "2026-02-01"]})
    rows, problems = staffing.sheet_rows(frame)
    assert len(rows) == 5
    with pytest.raises(staffing.StaffSheetError) as caught:
        staffing.raise_problems(problems)
    message = str(caught.value)
    for row, what in ((3, "unknown role '组长'"), (4, "no name"), (5, "phone 'call me' is not a phone number"),
                      (5, "valid_from '2026-13-01' is not a date"), (6, "valid_to is before valid_from")):
        assert f"row {row}: {what}" in message, (row, what, message)
    assert "第 3 行：未知角色" in caught.value.zh


def test_a_good_sheet_keeps_codes_as_text_and_reads_excel_dates() -> None:
    frame = pd.DataFrame({" 工号 ": ["007", "008"], "姓名": ["张三", "李四"], "岗位": ["专职网格员", "楼栋长"],
                          "网格编码": ["098010001001001", None], "任职日期": [None, "2026-01-05 00:00:00"],
                          "结束日期": [None, "2026/2/1"]})
    rows, problems = staffing.sheet_rows(frame)
    assert problems == []
    assert rows.loc[0, "staff_key"] == "007" and rows.loc[0, "grid_code"] == "098010001001001"
    assert rows.loc[0, "valid_from"] is None and rows.loc[0, "row"] == 2  # no date: the import takes today
    assert rows.loc[1, "valid_from"] == date(2026, 1, 5) and rows.loc[1, "valid_to"] == date(2026, 2, 1)


def test_a_sheet_is_refused_for_two_columns_of_one_meaning_and_a_person_of_two_roles() -> None:
    with pytest.raises(staffing.StaffSheetError, match="'网格' and '网格编码' both read as grid_code"):
        staffing.sheet_rows(pd.DataFrame({"姓名": ["张三"], "角色": ["志愿者"], "网格": ["第一网格"], "网格编码": ["1"]}))
    _, problems = staffing.sheet_rows(pd.DataFrame({"工号": ["9", "9", "10", "10"], "姓名": ["张三", "张三", "李四", None],
                                                    "角色": ["网格长", "专职网格员", "志愿者", "志愿者"]}))
    assert sorted((row, en.split(":")[0]) for row, en, _ in problems) == [(3, "张三 has two roles (grid_leader, full_time_worker)"),
                                                                   (5, "no name")]


@pytest.fixture
def published(monaco_published: sa.Engine) -> sa.Engine:
    return monaco_published


def grids_of(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(sa.text(
            "SELECT g.code, g.kind, g.households FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = "
            "'published' ORDER BY g.code"), conn)


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM staff), (SELECT count(*) FROM staff_assignments), "
            "(SELECT count(*) FROM audit_log)")).one())


def write_gbk_sheet(path: Path, rows: list[list[str]]) -> Path:
    text = "\n".join(",".join(r) for r in [["工号", "姓名", "角色", "电话", "网格编码", "起始日期"], *rows]) + "\n"
    path.write_bytes(text.encode("gbk"))
    return path


def test_import_assign_check_and_a_replan(published: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import planning
    from gridmap.services import staff

    grids = grids_of(published)
    comp = grids[grids["kind"] == "comprehensive"]["code"].tolist()
    big = grids[grids["kind"] == "comprehensive"].sort_values("households")["code"].tolist()[-2:]
    sheet = write_gbk_sheet(tmp_path / "网格员.csv", [
        ["A01", "张三", "专职网格员", "13800000001", comp[0], "2026-01-01"],
        ["A02", "李四", "专职网格员", "13800000002", big[0], "2026-01-01"],
        ["A02", "李四", "专职网格员", "13800000002", big[1], "2026-01-01"],  # two grids: over the limit of one
        ["", "王五", "网格长", "", comp[0], ""],
        ["A03", "赵六", "专职网格员", "", comp[1], "2025-01-01"]])
    done = staff.import_sheet(published, MONACO, sheet, actor="test", today=TODAY)
    assert done["people_added"] == 4 and done["assignments_added"] == 5
    # the same sheet again, a month later (王五's row has no start: not a new assignment either)
    again = staff.import_sheet(published, MONACO, sheet, actor="test", today=date(2027, 1, 4))
    assert again["people_added"] == again["people_updated"] == again["assignments_added"] == 0
    assert counts(published)[:2] == (4, 5)
    listed = {p["name"]: p for p in staff.people(published, MONACO)}
    assert listed["李四"]["grids"] == sorted(big) and listed["张三"]["role_zh"] == "专职网格员"

    report = staff.report(published, MONACO, on=TODAY)
    covered = {comp[0], comp[1], *big}
    assert report["summary"]["comprehensive_grids"] == len(comp)
    assert report["summary"]["no_full_time_worker"] == len(set(comp) - covered)
    by_grid = {g["grid_code"]: g for g in report["grids"]}
    assert by_grid[comp[0]]["full_time_worker"] == ["张三"] and by_grid[comp[0]]["grid_leader"] == ["王五"]
    assert all(("no_full_time_worker" in g["flags"]) == (code not in covered) for code, g in by_grid.items())
    workers = {w["name"]: w for w in report["workers"]}
    households = dict(zip(grids["code"], grids["households"]))
    assert workers["李四"]["grid_count"] == 2 and "over_grids" in workers["李四"]["flags"]
    assert workers["李四"]["households"] == households[big[0]] + households[big[1]]
    assert ("over_households" in workers["李四"]["flags"]) == (workers["李四"]["households"] > 500)
    assert workers["张三"]["flags"] == [] and "over_grids" not in workers["王五"]["flags"]  # not full-time
    assert staff.report(published, MONACO, on=date(2025, 6, 1))["summary"]["people"] == 1  # only 赵六 then
    from gridmap.services import reading

    with published.connect() as conn:
        mapped = reading.staff(conn, MONACO, on=TODAY)  # what gm.staff reads: assignments with their grids
    assert len(mapped) == 5 and mapped.crs.to_epsg() == 4490 and mapped.geometry.notna().all()
    assert "phone" not in mapped.columns and set(mapped.loc[mapped["name"] == "王五", "role_zh"]) == {"网格长"}

    # a re-plan moves a unit out of 张三's grid: the assignment shows the grid changed and where it went
    draft, _ = planning.new_draft(published, MONACO, actor="test")
    with published.connect() as conn:
        unit, target = conn.execute(sa.text(
            "SELECT pu.unit_id, g2.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id JOIN units u ON "
            "u.id = pu.unit_id JOIN plan_units pu2 ON pu2.plan_id = pu.plan_id JOIN grids g2 ON g2.id = pu2.grid_id "
            "AND g2.code <> ALL(:avoid) AND g2.community_id = g.community_id AND g2.kind = 'comprehensive' "
            "JOIN units u2 ON u2.id = pu2.unit_id AND ST_Intersects(u.geom, u2.geom) AND ST_Length(ST_Intersection("
            "ST_Boundary(u.geom), ST_Boundary(u2.geom))) > 0 WHERE pu.plan_id = :p AND g.code = :c "
            "ORDER BY u.households, pu.unit_id LIMIT 1"), {"p": draft, "c": comp[0], "avoid": sorted(covered)}).one()
    planning.apply_edits(published, draft, [{"op": "assign", "units": [unit], "grid": target}], version=None,
                         actor="test")
    planning.publish(published, draft, version=None, actor="test")
    after = staff.report(published, MONACO, on=TODAY)
    changed = {c["name"]: c for c in after["changed"]}
    assert set(changed) == {"张三", "王五"} and after["summary"]["grid_changed"] == 2
    went = changed["张三"]["now_in"]  # where the old grid's land is now: the two grids, the larger share first
    assert {w["grid_code"] for w in went} == {comp[0], target} and abs(sum(w["share"] for w in went) - 1) < 1e-3
    assert [w["share"] for w in went] == sorted((w["share"] for w in went), reverse=True)
    assert "grid_changed" in {w["name"]: w for w in after["workers"]}["张三"]["flags"]
    assert "no_full_time_worker" in {g["grid_code"]: g for g in after["grids"]}[comp[0]]["flags"]  # 张三 no longer counts

    # the office's next sheet: 赵六 left on a day (结束日期), 李四 without a phone column keeps his phone
    later = tmp_path / "later.csv"
    later.write_bytes(("工号,姓名,角色,网格编码,起始日期,结束日期\n"
                       f"A03,赵六,专职网格员,{comp[1]},2025-01-01,2026-11-30\n"
                       f"A02,李四,专职网格员,{big[0]},2026-01-01,\n").encode("gbk"))
    third = staff.import_sheet(published, MONACO, later, actor="test", today=TODAY)
    assert third["assignments_ended"] == 1 and third["assignments_added"] == 0 and third["people_updated"] == 0
    workers = {w["name"] for w in staff.report(published, MONACO, on=TODAY)["workers"]}
    assert "赵六" not in workers and {p["name"]: p for p in staff.people(published, MONACO)}["李四"]["phone"] == \
        "13800000002"


def test_a_bad_sheet_stores_nothing(published: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import staff

    comp = grids_of(published)["code"].tolist()
    before = counts(published)
    sheet = write_gbk_sheet(tmp_path / "bad.csv", [["B1", "张三", "专职网格员", "", comp[0], "2026-01-01"],
                                                  ["B2", "李四", "专职网格员", "", "999999999999999", "2026-01-01"]])
    with pytest.raises(Invalid) as caught:
        staff.import_sheet(published, MONACO, sheet, actor="test", today=TODAY)
    assert "row 3: grid 999999999999999 is not a grid" in str(caught.value) and "未存储任何内容" in caught.value.zh
    assert counts(published) == before
    # a bad role and a bad grid are told together; a blank line keeps the rows' numbers
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(("姓名,角色,网格编码\n张三,组长,\n\n李四,志愿者,999\n").encode("gbk"))
    with pytest.raises(Invalid) as caught:
        staff.import_sheet(published, MONACO, mixed, actor="test", today=TODAY)
    assert "row 2: unknown role '组长'" in str(caught.value) and "row 4: grid 999 is not a grid" in str(caught.value)
    assert counts(published) == before
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(Invalid, match="not a readable Excel workbook"):
        staff.import_sheet(published, MONACO, broken, actor="test")
    assert counts(published) == before


def test_the_cli_takes_an_xlsx_and_checks(published: sa.Engine, database_url: str, tmp_path: Path) -> None:
    comp = grids_of(published)
    codes = comp[comp["kind"] == "comprehensive"]["code"].tolist()
    book = tmp_path / "人员.xlsx"
    pd.DataFrame({"姓名": ["孙七", "周八"], "角色": ["专职网格员", "兼职网格员"], "网格编号": [codes[0], codes[1]],
                  "工号": ["0042", "0043"], "起始日期": [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-02-01")],
                  "电话": ["NA", None]}).to_excel(book, index=False)  # real date cells
    env = {"GRIDMAP_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    gridmap = [sys.executable, "-m", "gridmap.cli"]
    done = subprocess.run([*gridmap, "staff", "import", str(book), "--territory", MONACO], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode != 0 and "row 2: phone 'NA' is not a phone number" in done.stderr  # 'NA' is text
    pd.read_excel(book, dtype=str).assign(电话=None).to_excel(book, index=False)
    done = subprocess.run([*gridmap, "staff", "import", str(book), "--territory", MONACO], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 people and 2 assignments added" in done.stdout
    with published.connect() as conn:
        assert conn.execute(sa.text("SELECT string_agg(staff_key, ',' ORDER BY staff_key) FROM staff")).scalar() == \
            "0042,0043"  # leading zeros kept
    check = subprocess.run([*gridmap, "staff", "check", "--territory", MONACO], capture_output=True, text=True,
                           env=env, timeout=120)
    assert check.returncode == 0, check.stderr
    assert f"{len(codes) - 1}  no full-time grid worker" in check.stdout and "没有专职网格员" in check.stdout
    assert "孙七" in check.stdout and codes[1] in check.stdout.split("无专职网格员的网格:")[1].splitlines()[0]
    missing = subprocess.run([*gridmap, "staff", "import", str(tmp_path / "none.csv"), "--territory", MONACO],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode != 0 and "none.csv" in missing.stderr


def test_only_the_territorys_roles_read_and_only_its_administrators_write(published: sa.Engine,
                                                                         database_url: str) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.store import users

    with published.begin() as conn:
        community = conn.execute(sa.text("SELECT t.code FROM territories t JOIN territories p ON p.id = t.parent_id "
                                         "WHERE p.code = :m ORDER BY t.code LIMIT 1"), {"m": MONACO}).scalar()
        # "stranger" administers one community of Monaco: not the territory the staff are kept in
        for name, role, territory in (("viewer", "viewer", MONACO), ("planner", "planner", MONACO),
                                      ("admin", "admin", MONACO), ("stranger", "admin", community)):
            users.create_user(conn, name, "staff test password")
            users.grant(conn, name, role, territory)
    client = TestClient(create_app(database_url=database_url))

    def headers(name: str | None) -> dict:
        if name is None:
            return {}
        token = client.post("/api/auth/token", data={"username": name, "password": "staff test password"})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    code = grids_of(published).query("kind == 'comprehensive'")["code"].iloc[0]
    body = {"name": "钱九", "role": "专职网格员", "phone": "13900000000"}
    for who, status in ((None, 401), ("viewer", 403), ("planner", 403), ("stranger", 403)):
        assert client.post(f"/api/territories/{MONACO}/staff", json=body, headers=headers(who)).status_code == status
    assert counts(published)[0] == 0
    made = client.post(f"/api/territories/{MONACO}/staff", json=body, headers=headers("admin"))
    assert made.status_code == 201 and made.json()["role"] == "full_time_worker"
    staff_id = made.json()["staff_id"]
    assert client.post(f"/api/staff/{staff_id}/assignments", json={"grid_code": code},
                       headers=headers("planner")).status_code == 403
    assigned = client.post(f"/api/staff/{staff_id}/assignments", json={"grid_code": code, "valid_from": "2026-01-01"},
                           headers=headers("admin"))
    assert assigned.status_code == 201 and assigned.json()["grid_code"] == code
    assert client.post(f"/api/staff/{staff_id}/assignments", json={"grid_code": "nope"},
                       headers=headers("admin")).status_code == 422
    assert client.patch("/api/staff/999999", json={"phone": "13900000001"}).status_code == 401  # no id is told
    assert client.patch(f"/api/staff/{staff_id}", json={"name": None}, headers=headers("admin")).status_code == 422
    assert client.patch(f"/api/staff/{staff_id}", json={"staff_key": "x"}, headers=headers("admin")).status_code == 422
    assert client.patch(f"/api/staff/{staff_id}", json={"phone": "call me"}, headers=headers("admin")).status_code == 422
    assert client.get(f"/api/territories/{MONACO}/staff").status_code == 401  # names and phones are not public
    assert client.get(f"/api/territories/{MONACO}/staff", headers=headers("stranger")).status_code == 403
    listed = client.get(f"/api/territories/{MONACO}/staff", headers=headers("viewer"))
    assert listed.status_code == 200 and listed.json()[0]["grids"] == [code]
    report = client.get(f"/api/territories/{MONACO}/staffing", params={"on": "2026-06-01"}, headers=headers("viewer"))
    assert report.status_code == 200
    assert {g["grid_code"]: g for g in report.json()["grids"]}[code]["full_time_worker"] == ["钱九"]
    ended = client.post(f"/api/staff-assignments/{assigned.json()['assignment_id']}/end",
                        json={"valid_to": "2026-03-01"}, headers=headers("admin"))
    assert ended.status_code == 200 and ended.json()["valid_to"] == "2026-03-01"
    later = client.get(f"/api/territories/{MONACO}/staffing", params={"on": "2026-06-01"}, headers=headers("viewer"))
    assert {g["grid_code"]: g for g in later.json()["grids"]}[code]["full_time_worker"] == []
    with published.connect() as conn:
        actions = conn.execute(sa.text("SELECT array_agg(action ORDER BY id) FROM audit_log WHERE action LIKE 'staff.%'"))
        assert actions.scalar() == ["staff.create", "staff.assign", "staff.end"]


def test_building_leaders_by_building_and_the_people_the_plan_names(district: sa.Engine, database_url: str,
                                                                    tmp_path: Path) -> None:
    """On a Chinese district's own buildings: a sheet names 楼栋长 by 小区 and 楼栋 without a grid
    code (the grid holding the building is theirs); a building that is not there, or in another
    grid than the row's, refuses the whole sheet. Then the people the plan names in free text (a
    grid's worker field, a micro-grid's leader) come onto the staff once, however often taken in,
    and the grid's worker a phone locates is the staff's."""
    from conftest import DISTRICT
    from gridmap.services import staff

    with district.connect() as conn:
        named = conn.execute(sa.text(
            "SELECT f.properties->>'compound_name' AS compound, f.properties->>'building_name' AS building, g.code AS grid, "
            "ST_X(ST_PointOnSurface(f.geom)) AS lon, ST_Y(ST_PointOnSurface(f.geom)) AS lat "
            "FROM layer_features f JOIN layers l ON l.id = f.layer_id AND l.name = 'buildings' "
            "JOIN grids g ON ST_Covers(g.geom, ST_PointOnSurface(f.geom)) JOIN plans p ON p.id = g.plan_id "
            "AND p.status = 'published' WHERE f.properties->>'compound_name' IS NOT NULL "
            "AND f.properties->>'building_name' IS NOT NULL ORDER BY g.code, f.id LIMIT 400")).mappings().all()
    first = named[0]
    other = next(b for b in named if b["grid"] != first["grid"])
    sheet = tmp_path / "楼栋长.csv"

    def write(rows: list[dict]) -> None:
        pd.DataFrame(rows).to_csv(sheet, index=False, encoding="gbk")

    good = [{"姓名": "刘楼长", "角色": "楼栋长", "电话": "13800000011", "小区": first["compound"], "楼栋": first["building"]},
            {"姓名": "陈楼长", "角色": "楼栋长", "电话": "13800000012", "小区": other["compound"], "楼栋": other["building"],
             "网格编码": other["grid"]}]
    write([*good, {"姓名": "错楼长", "角色": "楼栋长", "小区": "没有这个小区", "楼栋": "99栋"},
           {"姓名": "跨楼长", "角色": "楼栋长", "小区": other["compound"], "楼栋": other["building"], "网格编码": first["grid"]}])
    with pytest.raises(Invalid) as refused:
        staff.import_sheet(district, DISTRICT, sheet, actor="test")
    text = str(refused.value.en)
    assert "row 4" in text and "matches no building" in text and "row 5" in text and f"not {first['grid']}" in text
    with district.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staff")).scalar_one() == 0  # nothing half-taken
    write(good)
    done = staff.import_sheet(district, DISTRICT, sheet, actor="test")
    assert done["people_added"] == 2 and done["assignments_added"] == 2
    assert staff.import_sheet(district, DISTRICT, sheet, actor="test")["assignments_added"] == 0  # the same sheet again
    with district.begin() as conn:  # the buildings layer imported again: the old buildings' rows are gone
        conn.execute(sa.text("UPDATE staff_assignments SET building_id = NULL"))
    assert staff.import_sheet(district, DISTRICT, sheet, actor="test")["assignments_added"] == 0  # found by label
    with district.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staff_assignments WHERE building_id IS NULL")).scalar_one() == 0
    with district.connect() as conn:
        held = conn.execute(sa.text("SELECT s.name, a.grid_code, a.building_label, a.building_id IS NOT NULL "
                                    "FROM staff_assignments a JOIN staff s ON s.id = a.staff_id ORDER BY s.name")).all()
    assert sorted(held) == sorted([("刘楼长", first["grid"], f"{first['compound']} {first['building']}", True),
                                   ("陈楼长", other["grid"], f"{other['compound']} {other['building']}", True)])
    # by the API's own words: an address-like name, no grid
    person = staff.create(district, DISTRICT, name="单元长甲", role="单元长", actor="test")
    made = staff.assign(district, person["staff_id"], None, building=f"{first['compound']}{first['building']}", actor="test")
    assert made["grid_code"] == first["grid"] and made["building_label"] == f"{first['compound']} {first['building']}"
    with pytest.raises(Invalid, match="matches no building"):
        staff.assign(district, person["staff_id"], None, building="没有这个小区 1栋", actor="test")

    # the plan's free-text names onto the staff: a grid's worker field; a micro-grid's leader
    from gridmap.services import microgrids, planning

    draft, _ = planning.new_draft(district, DISTRICT, actor="test")
    divided = microgrids.divide_plan(district, draft, grid=other["grid"], actor="test")
    micro = divided.result.microgrids["microgrid_code"].iloc[0]
    microgrids.set_leader(district, draft, micro, name="赵微网格", phone="13800000031", actor="test")
    planning.publish(district, draft, version=None, actor="test")
    with district.begin() as conn:
        conn.execute(sa.text("UPDATE grids g SET worker = '张网格、李网格 13800000021' FROM plans p WHERE p.id = g.plan_id "
                             "AND p.status = 'published' AND g.code = :g"), {"g": other["grid"]})
    namesake = staff.create(district, DISTRICT, name="李网格", role="兼职网格员", phone="13900000099", actor="test")
    adopted = staff.adopt(district, DISTRICT, actor="test")
    assert adopted["people_added"] == 3 and adopted["assignments_added"] == adopted["people_added"]
    again = staff.adopt(district, DISTRICT, actor="test")
    assert again["people_added"] == 0 and again["assignments_added"] == 0
    assert again["already_assigned"] == adopted["assignments_added"]
    people = {p["name"]: p for p in staff.people(district, DISTRICT) if p["staff_id"] != namesake["staff_id"]}
    assert staff.people(district, DISTRICT) and namesake["staff_id"] not in {  # another 李网格: not taken for the plan's
        p["staff_id"] for p in staff.people(district, DISTRICT) if other["grid"] in p["grids"]}
    assert people["张网格"]["role"] == "full_time_worker" and people["李网格"]["phone"] == "13800000021"
    assert people["李网格"]["grids"] == [other["grid"]]
    assert people["赵微网格"]["role"] == "building_leader" and people["赵微网格"]["phone"] == "13800000031"
    worker = next(w for w in staff.report(district, DISTRICT)["workers"] if w["name"] == "张网格")
    with district.connect() as conn:
        buildings = conn.execute(sa.text(
            "SELECT count(*) FROM layer_features f JOIN layers l ON l.id = f.layer_id AND l.name = 'buildings' "
            "JOIN grids g ON ST_Covers(g.geom, ST_PointOnSurface(f.geom)) JOIN plans p ON p.id = g.plan_id "
            "AND p.status = 'published' WHERE g.code = :g"), {"g": other["grid"]}).scalar_one()
    assert worker["grids"] == [other["grid"]] and worker["buildings"] == buildings > 0 and worker["duties"] == 0
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app

    client = TestClient(create_app(database_url=database_url))
    where = {"lon": other["lon"], "lat": other["lat"], "crs": "4490"}
    with district.begin() as conn:  # the plan's text changed after: what a signed-in phone sees is the staff's
        conn.execute(sa.text("UPDATE grids g SET worker = '旧名字' FROM plans p WHERE p.id = g.plan_id "
                             "AND p.status = 'published' AND g.code = :g"), {"g": other["grid"]})
        from gridmap.store import users

        users.create_user(conn, "phone", "phone password 1")
        users.grant(conn, "phone", "worker", DISTRICT)
    token = client.post("/api/auth/token", data={"username": "phone", "password": "phone password 1"}).json()["access_token"]
    here = client.get("/api/locate", params=where, headers={"Authorization": f"Bearer {token}"}).json()
    assert here["grid_code"] == other["grid"] and set(here["worker"].split("、")) == {"张网格", "李网格"}
    assert client.get("/api/locate", params=where).json()["worker"] == "旧名字"  # the public sees the plan's text
