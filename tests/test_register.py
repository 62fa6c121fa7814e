"""The households register (gridmap.register, gridmap.vault, services/households, api/households,
``gridmap households``) on real PostGIS, with a small synthetic Chinese district imported from its
own files (GBK shapefiles: 楼栋号, 小区名称) and partitioned: an office's register sheet (GBK CSV
and .xlsx, Chinese headers, addresses like 书香锦城3栋2单元301) is matched to buildings; names,
ID numbers and phones are stored encrypted (nothing of them in the database or the audit log in
clear); a sheet with bad rows stores nothing and names every row; only the grid's own staff and
the territory's administrators read a grid's people, every read audited; exports are masked unless
an administrator asks for them in full; a key rotation keeps everything readable."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from gridmap import register
from gridmap.errors import Invalid
from gridmap.vault import Vault, VaultUnavailable, new_key

from conftest import DISTRICT

KEY = new_key()
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


# -- pure: ID numbers, masks, keys, the sheet ------------------------------------------------------------
def id_number(rng: random.Random, year: int) -> str:
    """A valid 18-character 公民身份号码 of 雨城区 (511802) born in ``year`` (the check digit computed)."""
    body = f"511802{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + register.ID_CHECK[sum(int(d) * w for d, w in zip(body, register.ID_WEIGHTS)) % 11]


def test_id_numbers_masks_and_building_names() -> None:
    rng = random.Random(1)
    good = id_number(rng, 1950)
    assert register.id_number_problem(good) is None and register.birth_year(good) == 1950
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    assert register.id_number_problem(wrong_check)[0] == "has a wrong check digit"
    body = "51180219501340123"  # born in month 13, with the right check digit: the date is what is wrong
    month13 = body + register.ID_CHECK[sum(int(d) * w for d, w in zip(body, register.ID_WEIGHTS)) % 11]
    assert register.id_number_problem(month13)[0] == "holds no valid birth date"
    assert register.mask_id_number("王小明") == "***" and register.mask_id_number("13800138000") == "*" * 11
    assert register.id_number_problem("12345") is not None and register.id_number_problem("511802501201123") is None
    assert register.mask_name("欧阳娜娜") == "欧***" and register.mask_phone("138 0013 8000") == "138****8000"
    assert register.mask_id_number(good) == good[:6] + "*" * 8 + good[-4:]
    # 3号楼, 3幢, full-width ３栋 and "3栋" are one building; the address carries 单元 and 房号
    assert register.row_keys("书香锦城", "３号楼", None)[0] == register.row_keys(" 书香锦城 ", "3幢", None)[0] \
        == register.row_keys("书香锦城", "3", None)[0] == ["书香锦城|3栋", "书香锦城3栋"]
    assert "书香锦城3栋" in register.building_keys("书香锦城", "3栋")
    # a building named in full (楼栋名称 书香锦城3栋) is found by a row's 小区 + 楼栋号 3号楼 all the same
    assert register.row_keys("书香锦城", "3号楼", None)[0][0] in register.building_keys("书香锦城", "书香锦城3栋")
    keys, stairwell, room = register.row_keys(None, None, "书香锦城3栋2单元301室")
    assert keys == ["书香锦城3栋2单元301室", "书香锦城3栋"] and (stairwell, room) == ("2", "301")


def test_a_sheet_with_bad_rows_names_every_one() -> None:
    rng = random.Random(2)
    same = id_number(rng, 1980)
    frame = pd.DataFrame({"姓名": ["张伟", "", "李娜", "王芳", "赵强"],
                          "身份证号": [same, None, same, "511802198001011234", None],
                          "联系电话": ["13800000001", None, "call me", None, None],
                          "小区": ["书香锦城"] * 5, "楼栋号": ["1栋", "1栋", None, "2栋", "3栋"],
                          "标签": ["独居老人、低保户", None, None, "外星人", "留守儿童"]})
    rows, problems = register.sheet_rows(frame, register.RegisterRules())
    assert rows.loc[0, "tags"] == ["独居老人", "低保户"] and rows.loc[4, "tags"] == ["留守儿童"]
    found = {(p["row"], p["en"].split(" (one of")[0]) for p in problems}
    masked = register.mask_id_number(same)
    assert found == {(3, "no name"), (4, "no building (楼栋号) and no address (地址)"),
                     (4, "phone ******* (7 characters) is not a phone number"),
                     (5, "ID number 511802********1234 has a wrong check digit"), (5, "unknown focus tag '外星人'"),
                     (4, f"ID number {masked} is on rows 2, 4")}, found
    assert all(same not in p["en"] and same not in p["zh"] for p in problems)  # the error names nobody in full
    with pytest.raises(register.RegisterSheetError, match="has no column for name"):
        register.sheet_rows(pd.DataFrame({"户主": ["张伟"], "楼栋号": ["1栋"]}), register.RegisterRules())
    with pytest.raises(register.RegisterSheetError, match="both read as building_name"):
        register.sheet_rows(pd.DataFrame({"姓名": ["张伟"], "楼栋": ["1栋"], "楼栋号": ["1栋"]}), register.RegisterRules())


def test_the_vault_encrypts_detects_tampering_and_rotates() -> None:
    old, new = Vault([KEY]), Vault([new_key(), KEY])
    token = old.encrypt("张伟")
    assert b"\xe5\xbc\xa0" not in token and old.decrypt(token) == "张伟" and new.decrypt(token) == "张伟"
    rotated = new.rotate(token)
    with pytest.raises(VaultUnavailable, match="key GRIDMAP_SECRET_KEY does not hold"):
        old.decrypt(rotated)  # rotated to the new key, which the old vault lacks
    tampered = bytearray(token)
    tampered[-5] ^= 1
    with pytest.raises(VaultUnavailable):
        old.decrypt(bytes(tampered))
    assert old.index("511802x") == old.index("511802X") != Vault([new_key()]).index("511802X")
    assert new.indexes("a")[1] == old.index("a")  # a row not yet rekeyed is found by the old key's hash
    with pytest.raises(VaultUnavailable, match="needs a key") as caught:
        Vault([])
    assert "GRIDMAP_SECRET_KEY" in caught.value.zh
    with pytest.raises(VaultUnavailable, match="key 2 is not a key"):
        Vault([KEY, "correct horse battery staple"])


# -- the district ------------------------------------------------------------------------------------------
def buildings(engine: sa.Engine) -> pd.DataFrame:
    from gridmap.store import households as store
    from gridmap.store import layers

    with engine.connect() as conn:
        return store.buildings(conn, DISTRICT, *layers.find(conn, DISTRICT, layers.ROLES["buildings"]))


def register_rows(engine: sa.Engine, count: int = 40, seed: int = 5) -> pd.DataFrame:
    """A register as an office keeps it: residents of buildings in compounds (小区 + 楼栋号, 单元, 房号),
    every fifth row written as one address instead, a valid ID number, a phone, some focus tags."""
    rng = random.Random(seed)
    found = buildings(engine).dropna(subset=["compound_name", "building_name"])
    picked = found.sample(n=min(count // 2, len(found)), random_state=seed)
    rows, used = [], set()
    for i in range(count):
        b = picked.iloc[i // 2]
        stairwell, room = str(1 + i % 2), f"{rng.randint(1, 6)}0{rng.randint(1, 4)}"
        born = rng.choice([1938, 1945, 1962, 1975, 1988, 2012])
        tags = ["独居老人"] if born < 1950 and i % 3 == 0 else ["留守儿童"] if born == 2012 else []
        person = id_number(rng, born)
        while person in used:  # one number, one person
            person = id_number(rng, born)
        used.add(person)
        row = {"姓名": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN), "身份证号": person,
               "联系电话": f"139{rng.randint(10_000_000, 99_999_999)}", "与户主关系": "户主" if i % 2 == 0 else "配偶",
               "标签": "、".join(tags), "小区": b.compound_name, "楼栋号": b.building_name, "单元": stairwell, "房号": room,
               "地址": None}
        if i % 5 == 4:  # the older sheets: one address column
            row.update(小区=None, 楼栋号=None, 单元=None, 房号=None,
                       地址=f"{b.compound_name}{b.building_name}{stairwell}单元{room}室")
        rows.append(row)
    return pd.DataFrame(rows)


def stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.text("SELECT count(*) FROM households")).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM residents")).scalar_one())


def test_import_encrypts_matches_buildings_and_is_idempotent(district: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import households

    vault = Vault([KEY])
    sheet = register_rows(district)
    path = tmp_path / "住户登记.csv"
    sheet.to_csv(path, index=False, encoding="gbk")
    done = households.import_sheet(district, DISTRICT, path, vault=vault, actor="test")
    assert done["rows"] == len(sheet) == done["residents_added"] and done["residents_updated"] == 0
    assert done["households_added"] == stored(district)[0] > 0
    with district.connect() as conn:  # nothing personal in clear: not in the rows, not in the audit log
        dump = conn.execute(sa.text("SELECT string_agg(encode(name_enc, 'escape') || encode(id_number_enc, 'escape') "
                                    "|| encode(phone_enc, 'escape'), '') FROM residents")).scalar_one()
        audit_text = conn.execute(sa.text("SELECT string_agg(CAST(after AS text), '') FROM audit_log")).scalar_one()
        labels = dict(conn.execute(sa.text("SELECT h.household_key, h.building_label FROM households h")).all())
    for person in sheet.itertuples():
        for secret in (person.姓名, person.身份证号, person.联系电话):
            assert secret not in dump and secret not in audit_text
    # an address row (书香锦城3栋2单元301室) and a 小区 + 楼栋号 row of that building: one building
    full = pd.read_csv(io.BytesIO(households.export(district, DISTRICT, vault=vault, actor="test", full=True)),
                       encoding="utf-8-sig", dtype=str).set_index("身份证号")
    address_row, compound_row = sheet.iloc[4], sheet.iloc[5]
    assert address_row["地址"] and pd.isna(compound_row["地址"])
    assert full.loc[address_row["身份证号"], "地址"] == full.loc[compound_row["身份证号"], "地址"] \
        == compound_row["小区"] + compound_row["楼栋号"]
    assert full.loc[address_row["身份证号"], "房号"] == address_row["地址"].split("单元")[1].removesuffix("室")
    assert len(set(labels)) == done["households_added"]
    again = households.import_sheet(district, DISTRICT, path, vault=vault, actor="test")
    assert again["residents_added"] == again["households_added"] == 0 and again["residents_updated"] == len(sheet)
    assert stored(district)[1] == len(sheet)
    # the same people as .xlsx, phones blank (kept), one moved to another room: updated, not added
    moved = sheet.copy()
    moved["联系电话"] = None
    moved.loc[0, "房号"] = "999"
    moved.loc[1, "身份证号"] = None  # the same name in the same room, this time without the ID number: the same person
    xlsx = tmp_path / "住户登记.xlsx"
    moved.to_excel(xlsx, index=False)
    third = households.import_sheet(district, DISTRICT, xlsx, vault=vault, actor="test")
    assert third["residents_added"] == 0 and third["households_added"] == 1
    people = households.export(district, DISTRICT, vault=vault, actor="test", full=True).decode("utf-8-sig")
    assert sheet.loc[0, "联系电话"] in people  # a blank phone kept the stored one
    assert sheet.loc[1, "身份证号"] in people and stored(district)[1] == len(sheet)  # and a blank ID number the stored one
    # the full export is a register the import reads back: the same people, nobody added
    export = tmp_path / "export.csv"
    export.write_bytes(households.export(district, DISTRICT, vault=vault, actor="test", full=True))
    back = households.import_sheet(district, DISTRICT, export, vault=vault, actor="test")
    assert back["residents_added"] == back["households_added"] == 0 and back["residents_updated"] == len(sheet)
    # a sheet without rows, taken with replace, would empty the register: refused
    empty = tmp_path / "empty.csv"
    empty.write_text("姓名,楼栋号\n", encoding="utf-8")
    with pytest.raises(Invalid, match="has no rows"):
        households.import_sheet(district, DISTRICT, empty, vault=vault, actor="test", replace=True)
    assert stored(district)[1] == len(sheet)


def test_a_bad_sheet_stores_nothing_and_names_every_row(district: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import households

    sheet = register_rows(district, count=10)
    sheet.loc[2, "楼栋号"] = "999栋"            # no such building
    sheet.loc[3, ["小区", "楼栋号"]] = [None, "1栋"]  # every compound has a 1栋: which one?
    sheet.loc[6, "标签"] = "重点青少年"          # not a tag of the profile
    sheet.loc[9] = sheet.loc[8]                 # the same name in the same room twice, no ID numbers
    sheet.loc[[8, 9], "身份证号"] = None
    path = tmp_path / "bad.csv"
    sheet.to_csv(path, index=False)
    with pytest.raises(register.RegisterSheetError) as caught:
        households.import_sheet(district, DISTRICT, path, vault=Vault([KEY]), actor="test")
    rows = sorted(p["row"] for p in caught.value.problems)
    assert rows == [4, 5, 8, 11], caught.value.problems
    assert "twice in one household" in str(caught.value)
    assert "matches no building" in str(caught.value) and "buildings: add the 小区" in str(caught.value)
    assert "第 4 行" in caught.value.zh and stored(district) == (0, 0)
    good = tmp_path / "good.csv"
    register_rows(district, count=6).to_csv(good, index=False)
    report = households.import_sheet(district, DISTRICT, good, vault=Vault([KEY]), actor="test", check=True)
    assert report["checked_only"] and report["rows"] == 6 and stored(district) == (0, 0)


def grid_of_households(engine: sa.Engine) -> tuple[str, str]:
    """A grid holding registered households and a published grid holding none."""
    with engine.connect() as conn:
        busy = conn.execute(sa.text(
            "SELECT g.code FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "JOIN households h ON ST_Covers(g.geom, h.geom) GROUP BY g.code ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        other = conn.execute(sa.text(
            "SELECT g.code FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.code <> :b "
            "ORDER BY g.code LIMIT 1"), {"b": busy}).scalar_one()
    return busy, other


def test_only_the_grids_staff_and_administrators_read_people_and_every_read_is_audited(
        district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services import staff
    from gridmap.settings import Settings
    from gridmap.store import users

    sheet = register_rows(district)
    path = tmp_path / "r.csv"
    sheet.to_csv(path, index=False)
    settings = Settings.from_env({**os.environ, "GRIDMAP_SECRET_KEY": KEY})
    client = TestClient(create_app(database_url=database_url, settings=settings))
    password = "register test password"
    with district.begin() as conn:
        for name in ("admin", "viewer", "worker", "worker_elsewhere", "staffed", "nobody"):
            users.create_user(conn, name, password)
        users.grant(conn, "admin", "admin", DISTRICT)
        users.grant(conn, "viewer", "viewer", DISTRICT)

    def headers(name: str | None) -> dict:
        if name is None:
            return {}
        token = client.post("/api/auth/token", data={"username": name, "password": password})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    with path.open("rb") as fh:
        files = {"file": ("住户登记.csv", fh, "text/csv")}
        assert client.post(f"/api/territories/{DISTRICT}/households/import", files=files,
                           headers=headers("viewer")).status_code == 403
    with path.open("rb") as fh:
        imported = client.post(f"/api/territories/{DISTRICT}/households/import",
                               files={"file": ("住户登记.csv", fh, "text/csv")}, headers=headers("admin"))
    assert imported.status_code == 200, imported.text
    assert imported.json()["residents_added"] == len(sheet)
    busy, other = grid_of_households(district)
    with district.begin() as conn:
        users.grant(conn, "worker", "worker", DISTRICT, grid_codes=[busy])
        users.grant(conn, "worker_elsewhere", "worker", DISTRICT, grid_codes=[other])
    person = staff.create(district, DISTRICT, actor="test", name="钱九", role="专职网格员", phone=None, staff_key=None)
    staff.assign(district, person["staff_id"], busy, actor="test", valid_from=pd.Timestamp("2026-01-01").date())
    # a staff record of "nobody" assigned to the code, but not to that plan's grid row: nothing
    other_person = staff.create(district, DISTRICT, actor="test", name="孙十", role="专职网格员", phone=None, staff_key=None)
    with district.begin() as conn:
        conn.execute(sa.text("UPDATE staff SET user_id = (SELECT id FROM users WHERE username = 'nobody') WHERE id = :s"),
                     {"s": other_person["staff_id"]})
        conn.execute(sa.text("INSERT INTO staff_assignments (staff_id, grid_code, grid_id, valid_from) "
                             "VALUES (:s, :g, NULL, '2026-01-01')"), {"s": other_person["staff_id"], "g": busy})
    # linking the staff record to an account is what lets it read its grid
    url = f"/api/territories/{DISTRICT}/grids/{busy}/households"
    assert client.get(url, headers=headers("staffed")).status_code == 403
    linked = client.patch(f"/api/staff/{person['staff_id']}", json={"username": "staffed"}, headers=headers("admin"))
    assert linked.status_code == 200 and linked.json()["user_id"] is not None
    assert client.patch(f"/api/staff/{person['staff_id']}", json={"username": "nobody-here"},
                        headers=headers("admin")).status_code == 422
    for who, status in ((None, 401), ("viewer", 403), ("nobody", 403), ("worker_elsewhere", 403), ("worker", 200),
                        ("staffed", 200), ("admin", 200)):
        answer = client.get(url, headers=headers(who))
        assert answer.status_code == status, (who, answer.text)
        if status == 200:
            body = answer.json()
            people = [r for h in body["households"] for r in h["residents"]]
            assert people and {r["name"] for r in people} <= set(sheet["姓名"]) and body["residents"] == len(people)
            assert {r["id_number"] for r in people} <= set(sheet["身份证号"])  # in full for the grid's staff
            assert body["grid_code"] == busy and all(h["grid_code"] == busy for h in body["households"])
    assert client.get(f"/api/territories/{DISTRICT}/grids/{other}/households", headers=headers("worker")).status_code == 403
    household_id = client.get(url, headers=headers("admin")).json()["households"][0]["household_id"]
    assert client.get(f"/api/households/{household_id}").status_code == 401
    assert client.get(f"/api/households/{household_id}", headers=headers("worker_elsewhere")).status_code == 403
    one = client.get(f"/api/households/{household_id}", headers=headers("worker"))
    assert one.status_code == 200 and one.json()["residents"][0]["id_number"] in set(sheet["身份证号"])
    with district.connect() as conn:
        reads = conn.execute(sa.text("SELECT actor, row_key FROM audit_log WHERE action = 'households.read' ORDER BY id")).all()
    assert [r[0] for r in reads] == ["worker", "staffed", "admin", "admin", "worker"]
    assert reads[0][1] == f"{DISTRICT}/{busy}" and reads[-1][1] == str(household_id)
    # counts for every role of the territory, nobody in them; none for strangers
    assert client.get(f"/api/territories/{DISTRICT}/households/summary").status_code == 401
    assert client.get(f"/api/territories/{DISTRICT}/households/summary", headers=headers("nobody")).status_code == 403
    summary = client.get(f"/api/territories/{DISTRICT}/households/summary", headers=headers("viewer")).json()
    assert summary["totals"]["residents"] == len(sheet)
    assert summary["totals"]["tags"]["独居老人"] == sum("独居老人" in t for t in sheet["标签"])
    assert summary["totals"]["elderly"] == sum(int(i[6:10]) <= pd.Timestamp.today().year - 60 for i in sheet["身份证号"])
    assert not any(name in str(summary) for name in sheet["姓名"])
    # exports: administrators only, masked unless full, both audited
    assert client.get(f"/api/territories/{DISTRICT}/households/export", headers=headers("worker")).status_code == 403
    masked = client.get(f"/api/territories/{DISTRICT}/households/export", headers=headers("admin"))
    full = client.get(f"/api/territories/{DISTRICT}/households/export", params={"full": "true", "encoding": "gbk"},
                      headers=headers("admin"))
    assert masked.status_code == full.status_code == 200
    masked_text, full_text = masked.content.decode("utf-8-sig"), full.content.decode("gbk")
    assert not any(n in masked_text for n in sheet["身份证号"]) and all(n in full_text for n in sheet["身份证号"])
    assert register.mask_id_number(sheet.loc[0, "身份证号"]) in masked_text
    # removing a resident is an administrator's, and audited
    resident = one.json()["residents"][0]["resident_id"]
    assert client.delete(f"/api/residents/{resident}", headers=headers("worker")).status_code == 403
    assert client.delete(f"/api/residents/{resident}", headers=headers("admin")).status_code == 204
    assert stored(district)[1] == len(sheet) - 1
    with district.connect() as conn:
        actions = conn.execute(sa.text("SELECT action FROM audit_log WHERE action LIKE 'households.%' AND action <> "
                                       "'households.read' ORDER BY id")).scalars().all()
    assert actions == ["households.import", "households.export", "households.export", "households.remove"]
    # without a key the people cannot be read: 503 in both languages, the counts still answer
    keyless = TestClient(create_app(database_url=database_url,
                                    settings=Settings.from_env({**os.environ, "GRIDMAP_SECRET_KEY": "",
                                                                "GRIDMAP_HOME": str(tmp_path / "no-home")})))
    token = keyless.post("/api/auth/token", data={"username": "admin", "password": password}).json()["access_token"]
    refused = keyless.get(url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 503 and "GRIDMAP_SECRET_KEY" in refused.json()["detail_zh"]
    assert keyless.get(f"/api/territories/{DISTRICT}/households/summary",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_cli_imports_reports_exports_and_rotates_the_key(district: sa.Engine, database_url: str,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url, "GRIDMAP_SECRET_KEY": KEY}

    def gridmap(*args: str, key: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gridmap.cli", "households", *args],
                              env={**env, **({"GRIDMAP_SECRET_KEY": key} if key else {})}, capture_output=True, text=True)

    sheet = register_rows(district, count=12)
    bad = sheet.copy()
    bad.loc[1, "楼栋号"] = "999栋"
    bad.to_csv(tmp_path / "bad.csv", index=False, encoding="gbk")
    refused = gridmap("import", str(tmp_path / "bad.csv"), "--territory", DISTRICT, "--report", str(tmp_path / "p.csv"))
    assert refused.returncode == 1 and "nothing was stored" in refused.stderr
    problems = pd.read_csv(tmp_path / "p.csv", encoding="utf-8-sig", dtype=str)
    assert list(problems["行 row"]) == ["3"] and "找不到对应的楼栋" in problems.iloc[0]["问题"]
    sheet.to_csv(tmp_path / "good.csv", index=False, encoding="gbk")
    done = gridmap("import", str(tmp_path / "good.csv"), "--territory", DISTRICT)
    assert done.returncode == 0, done.stderr
    assert f"{len(sheet)} rows taken" in done.stdout and f"{len(sheet)} residents added" in done.stdout
    summary = gridmap("summary", "--territory", DISTRICT)
    assert summary.returncode == 0 and f"{len(sheet)} residents" in summary.stdout and "独居老人" in summary.stdout
    # rotation: the new key first, rekey, then the old key dropped: still readable; the old key alone is not
    newer = new_key()
    assert gridmap("rekey", key=f"{newer},{KEY}").returncode == 0
    full = gridmap("export", "--territory", DISTRICT, "--full", "--out", str(tmp_path / "full.csv"), key=newer)
    assert full.returncode == 0, full.stderr
    table = pd.read_csv(tmp_path / "full.csv", encoding="utf-8-sig", dtype=str)
    assert set(table["身份证号"]) == set(sheet["身份证号"]) and set(table["姓名"]) == set(sheet["姓名"])
    assert oct((tmp_path / "full.csv").stat().st_mode & 0o777) == "0o600"
    back = gridmap("import", str(tmp_path / "full.csv"), "--territory", DISTRICT, key=newer)
    assert back.returncode == 0 and "0 residents added" in back.stdout  # the hashes were rebuilt under the new key
    old_only = gridmap("export", "--territory", DISTRICT, "--out", str(tmp_path / "old.csv"), key=KEY)
    assert old_only.returncode == 1 and "does not hold" in old_only.stderr
    masked = gridmap("export", "--territory", DISTRICT, "--encoding", "gbk", "--out", str(tmp_path / "m.csv"), key=newer)
    assert masked.returncode == 0
    shown = pd.read_csv(tmp_path / "m.csv", encoding="gbk", dtype=str)
    assert shown["姓名"].str.fullmatch(r".\*+").all() and not set(shown["身份证号"]) & set(sheet["身份证号"])
    # the re-import of the export (masked) is refused, not stored over the real data
    again = gridmap("import", str(tmp_path / "m.csv"), "--territory", DISTRICT, key=newer)
    assert again.returncode == 1 and "is not an ID number" in again.stderr
    assert stored(district)[1] == len(sheet)
    assert Fernet(newer.encode())  # the printed key is a key
    printed = gridmap("new-key").stdout.strip()
    assert Vault([printed]).decrypt(Vault([printed]).encrypt("x")) == "x"


def test_the_notebook_sees_counts_per_grid(district: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import households, reading

    sheet = register_rows(district, count=20)
    sheet.to_csv(tmp_path / "r.csv", index=False)
    households.import_sheet(district, DISTRICT, tmp_path / "r.csv", vault=Vault([KEY]), actor="test")
    with district.connect() as conn:
        frame = reading.households(conn, DISTRICT)
    assert frame.crs.to_epsg() == 4490 and frame["grid_code"].is_unique
    assert frame["residents"].sum() == len(sheet) and "独居老人" in frame.columns
    assert frame["留守儿童"].sum() == sum("留守儿童" in t for t in sheet["标签"])
    assert not set(frame.columns) & {"name", "id_number", "phone", "姓名"}


@pytest.mark.browser
def test_the_people_page_on_a_phone_and_for_a_viewer(district: sa.Engine, database_url: str, tmp_path: Path) -> None:
    """A grid worker on a phone: their grid is what the map shows (一格一员 colours), a tap on it
    gives its staff and counts, and its households with the focus residents first, in Chinese and
    in English; they record a need there and find the resource that could meet it. A viewer sees
    the same counts and no household."""
    from playwright.sync_api import sync_playwright

    from gridmap.services import households, staff
    from gridmap.settings import Settings
    from gridmap.store import users
    from samples import launch_chromium, serve

    sheet = register_rows(district, count=40)
    sheet.to_csv(tmp_path / "r.csv", index=False)
    households.import_sheet(district, DISTRICT, tmp_path / "r.csv", vault=Vault([KEY]), actor="test")
    busy, _ = grid_of_households(district)
    person = staff.create(district, DISTRICT, actor="test", name="钱九", role="专职网格员", phone=None, staff_key=None)
    staff.assign(district, person["staff_id"], busy, actor="test", valid_from=pd.Timestamp("2026-01-01").date())
    password = "people page password"
    with district.begin() as conn:
        for name, role, grids in (("worker", "worker", [busy]), ("viewer", "viewer", None)):
            users.create_user(conn, name, password)
            users.grant(conn, name, role, DISTRICT, grid_codes=grids)
        tagged_in_busy = conn.execute(sa.text(
            "SELECT count(DISTINCT h.id) FROM households h JOIN residents r ON r.household_id = h.id "
            "JOIN grids g ON ST_Covers(g.geom, h.geom) JOIN plans p ON p.id = g.plan_id AND p.status = 'published' "
            "WHERE g.code = :g AND cardinality(r.tags) > 0"), {"g": busy}).scalar_one()
        in_busy = conn.execute(sa.text(
            "SELECT count(*) FROM households h JOIN grids g ON ST_Covers(g.geom, h.geom) "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.code = :g"), {"g": busy}).scalar_one()
    from gridmap.services import lists

    with district.connect() as conn:
        centre = conn.execute(sa.text("SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
                              "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.code = :g"),
                              {"g": busy}).one()
    lists.save_resource(district, DISTRICT, {"name": "社区长者食堂", "kind": "服务机构", "categories": ["助餐"], "capacity": 60,
                                             "lon": centre[0], "lat": centre[1]}, actor="test")
    settings = Settings.from_env({**os.environ, "GRIDMAP_SECRET_KEY": KEY})
    fills = """() => { const out = {}; window.gridmapPeopleMap().eachLayer(l => {
        if (l.feature && l.feature.properties) out[l.feature.properties.grid_code] = [l.options.fillColor, l.options.fillOpacity]; });
        return out; }"""
    with serve(database_url, settings) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        errors: list[str] = []
        phone.on("pageerror", lambda exc: errors.append(str(exc)))
        phone.goto(f"{url}/people")
        phone.fill("#username", "worker")
        phone.fill("#password", password)
        phone.click("#login-button")
        phone.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        assert phone.is_checked("#mine")  # a worker's own grid first
        colours = phone.evaluate(fills)
        assert colours[busy] == ["#74c476", 0.75]  # 一格一员: it has its full-time worker
        others = [c for code, c in colours.items() if code != busy]
        assert others and all(opacity < 0.2 for _, opacity in others)  # the rest faint
        assert "#de2d26" in {c for c, _ in others}  # grids without a full-time worker, in red
        assert "个综合网格无专职网格员" in phone.inner_text("#totals")
        phone.evaluate(f"""() => window.gridmapPeopleMap().eachLayer(l => {{
            if (l.feature && l.feature.properties.grid_code === '{busy}') l.fire('click'); }})""")
        phone.wait_for_selector("#grid:not([hidden])")
        figures = phone.inner_text("#grid-figures")
        assert "钱九" in figures and "专职网格员" in figures and f"登记户数\n{in_busy}" in figures
        phone.click("#show-households")
        phone.wait_for_selector("#households li.household")
        shown = phone.locator("#households > li.household").count()
        assert shown == tagged_in_busy  # focus residents only, by default
        names = phone.inner_text("#households")
        assert any(n in names for n in sheet["姓名"]) and "*" not in names  # in full for the grid's worker
        phone.uncheck("#focus-only")
        assert phone.locator("#households > li.household").count() == in_busy
        assert 0 < tagged_in_busy < in_busy  # the sheet puts focus residents and others in this grid
        first_tags = phone.locator("#households > li.household").first.locator(".tag").count()
        last_tags = phone.locator("#households > li.household").last.locator(".tag").count()
        assert first_tags > 0 and last_tags == 0  # focus households first
        phone.click("#lang-switch")
        assert "Households registered" in phone.inner_text("#grid-figures")
        assert "stairwell" in phone.inner_text("#households") and "households, " in phone.inner_text("#households-note")
        phone.select_option("#measure", "tag:独居老人")
        assert "Focus: elderly living alone" in phone.inner_text("#measure")
        # the grid's needs: the worker records one where they stand (no location here: the grid's centre)
        assert "No open needs" in phone.inner_text("#needs")
        phone.select_option("#need-category", "助餐")
        phone.fill("#need-description", "独居老人需要每日送餐")
        phone.select_option("#need-urgency", "high")
        phone.click("#need-send")
        phone.wait_for_selector("#needs li.need")
        assert "meals · high · open" in phone.inner_text("#needs") and "独居老人需要每日送餐" in phone.inner_text("#needs")
        assert "Open needs\n1 (urgent 1)" in phone.inner_text("#grid-figures")
        phone.click("#needs li.need button.match")
        phone.wait_for_selector("#matches li.match-result")
        assert phone.inner_text("#matches").startswith("社区长者食堂 · ") and "capacity 60" in phone.inner_text("#matches")
        assert "Party members / units registered\n0 / 0" in phone.inner_text("#grid-figures")
        assert "Streets patrolled this week\n—" in phone.inner_text("#grid-figures") or \
            "Streets patrolled this week\n0%" in phone.inner_text("#grid-figures")
        phone.select_option("#measure", "open_needs")
        assert phone.evaluate(fills)[busy][0] == "#08306b"  # the one grid with a need: the darkest class
        assert not errors, errors
        viewer = browser.new_page(viewport={"width": 1280, "height": 800})
        viewer.goto(f"{url}/people")
        viewer.evaluate("() => { localStorage.setItem('gridmap.lang', 'zh'); }")
        viewer.fill("#username", "viewer")
        viewer.fill("#password", password)
        viewer.click("#login-button")
        viewer.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        assert viewer.is_disabled("#mine") and not viewer.is_checked("#mine")
        viewer.select_option("#measure", "households")
        assert len({c for c, _ in viewer.evaluate(fills).values()}) > 1  # the counts, classed
        viewer.evaluate(f"""() => window.gridmapPeopleMap().eachLayer(l => {{
            if (l.feature && l.feature.properties.grid_code === '{busy}') l.fire('click'); }})""")
        viewer.wait_for_selector("#grid:not([hidden])")
        assert viewer.is_hidden("#show-households") and "仅限本网格工作人员" in viewer.inner_text("#households-note")
        assert not any(n in viewer.content() for n in sheet["姓名"])
        browser.close()
