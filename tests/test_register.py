"""The households register (gridmap.register, gridmap.vault, services/households, api/households,
``gridmap households``) on real PostGIS, with a small synthetic Chinese district imported from its
own files (GBK shapefiles: 楼栋号, 小区名称) and partitioned: an office's register sheet (GBK CSV
and .xlsx, Chinese headers, addresses like 书香锦城3栋2单元301) is matched to buildings; names,
ID numbers and phones are stored encrypted (nothing of them in the database or the audit log in
clear); a sheet with bad rows stores nothing and names every row; only the grid's own staff and
the territory's administrators read a grid's people, every read audited; exports are masked unless
an administrator asks for them in full; a key rotation keeps everything readable."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from gridmap import register
from gridmap.vault import Vault, VaultUnavailable, new_key
from tests.conftest import restore_snapshot, save_snapshot

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = "511802"
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
    assert register.id_number_problem("51180219501340123X") is not None  # month 13 (or its check digit)
    assert register.id_number_problem("12345") is not None and register.id_number_problem("511802501201123") is None
    assert register.mask_name("欧阳娜娜") == "欧***" and register.mask_phone("138 0013 8000") == "138****8000"
    assert register.mask_id_number(good) == good[:6] + "*" * 8 + good[-4:]
    # 3号楼, 3幢, full-width ３栋 and "3栋" are one building; the address carries 单元 and 房号
    assert register.row_keys("书香锦城", "３号楼", None)[0] == register.row_keys(" 书香锦城 ", "3幢", None)[0] == ["书香锦城|3栋"]
    assert "书香锦城3栋" in register.building_keys("书香锦城", "3栋")
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
                     (4, "phone 'call me' is not a phone number"),
                     (5, "ID number 511802********1234 has a wrong check digit"), (5, "unknown focus tag '外星人'"),
                     (4, f"ID number {masked} is on rows 2, 4")}, found
    assert all(same not in p["en"] and same not in p["zh"] for p in problems)  # the error names nobody in full
    with pytest.raises(register.RegisterSheetError, match="needs a name column"):
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
@pytest.fixture
def district(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    """A small synthetic 雨城区 imported from its files (as ``gridmap up`` imports the demo's) and
    its plan published; built once per session, then restored from a snapshot."""
    if restore_snapshot(engine, "register_district"):
        return engine
    from gridmap.geo import synthetic_district as sd
    from gridmap.services import planning
    from gridmap.services.bootstrap import ensure_district_demo
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory

    folder = tmp_path_factory.mktemp("register-district")
    sd.write_files(sd.generate(sd.load_boundary(), sd.Config.small()), folder)
    shutil.copy(ROOT / "data" / "districts" / "yucheng" / "规则.toml", folder / "规则.toml")
    load_demo(engine, ["yaan"])
    assert ensure_district_demo(engine, folder)
    planning.publish(engine, partition_territory(engine, DISTRICT).plan_id, version=None, actor="test")
    save_snapshot(engine, "register_district")
    return engine


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
    # an address row and a 小区 + 楼栋号 row of the same building are in the same building
    first = sheet.iloc[4]
    assert any(label.replace(" ", "") in first["地址"] for label in labels.values())
    again = households.import_sheet(district, DISTRICT, path, vault=vault, actor="test")
    assert again["residents_added"] == again["households_added"] == 0 and again["residents_updated"] == len(sheet)
    assert stored(district)[1] == len(sheet)
    # the same people as .xlsx, phones blank (kept), one moved to another room: updated, not added
    moved = sheet.copy()
    moved["联系电话"] = None
    moved.loc[0, "房号"] = "999"
    xlsx = tmp_path / "住户登记.xlsx"
    moved.to_excel(xlsx, index=False)
    third = households.import_sheet(district, DISTRICT, xlsx, vault=vault, actor="test")
    assert third["residents_added"] == 0 and third["households_added"] == 1
    people = households.export(district, DISTRICT, vault=vault, actor="test", full=True).decode("utf-8-sig")
    assert sheet.loc[0, "联系电话"] in people  # a blank phone kept the stored one


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
