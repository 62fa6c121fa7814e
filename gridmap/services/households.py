"""The households register: import an office's sheet (matched to buildings, all or nothing), read
a grid's households as its staff, count them per grid, export (masked unless full), re-encrypt
under a new key. Every write is one transaction with its audit entry; every read of personal data
is audited (who, which grid or household, how many people) and the audit holds no personal data."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from gridmap import register
from gridmap.errors import Invalid, NotFound
from gridmap.services.profiles import of_territory
from gridmap.sheets import read_sheet
from gridmap.services.addresses import BuildingIndex, NoBuildings, building_index
from gridmap.store import audit, plans, territories
from gridmap.store import households as store
from gridmap.vault import Vault

ELDERLY_AGE = 60
"""Age from which a resident counts as elderly in the per-grid figures (老年人): those who are 60 or
turn 60 this year, by the birth year the register keeps (年内满 60 周岁)."""
EXPORT_COLUMNS = (("address", "地址"), ("stairwell", "单元"), ("room", "房号"), ("household_no", "户号"),
                  ("community_code", "社区代码"), ("grid_code", "网格编码"), ("name", "姓名"), ("id_number", "身份证号"),
                  ("phone", "联系电话"), ("relation", "与户主关系"), ("tags", "关注标签"), ("birth_year", "出生年份"))
"""The export's columns (key, Chinese header): the headers the import reads back (the building as
its 小区 and 楼栋号 written together, ``书香锦城3栋``, which the import finds it by)."""


def _label(building_id: int, b: pd.Series) -> str:
    """How a building is shown: 小区 and 楼栋号 (else its name or address), else its feature id."""
    parts = [b["compound_name"], b["building_name"] or b["name"] or b["address"]]
    return " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip()) or f"#{building_id}"


def _match(rows: pd.DataFrame, index: BuildingIndex) -> tuple[list[int | None], list[tuple[str | None, str | None]], list[dict]]:
    """Each row's building (None when it has none), the 单元 and 房号 its address gave, and the
    problems: a row matching no building, or several."""
    found, parts, problems = [], [], []
    for r in rows.itertuples():
        building, stairwell, room, problem = index.find(int(r.row), r.compound_name, r.building_name, r.address)
        found.append(building)
        parts.append((stairwell, room))
        if problem:
            problems.append(problem)
    return found, parts, problems


def import_sheet(engine: sa.Engine, territory_code: str, path: str | Path, *, vault: Vault, actor: str,
                 encoding: str | None = None, replace: bool = False, check: bool = False) -> dict:
    """Take an office's register (CSV in UTF-8 or GBK, or .xlsx, Chinese headers: see
    :data:`gridmap.register.SHEET_COLUMNS`). Each row is a resident placed in a building of the
    territory (by 小区 + 楼栋号 or by address) and a household (its 户号, else 单元 + 房号).

    A resident is found again by ID number, else by name within the household, so the same sheet
    taken twice changes nothing; an ID number or phone left blank keeps the stored one. ``replace``:
    the sheet is the whole register, residents not in it are removed. Any problem in any row (a
    building that matches nothing or several, a bad ID number or phone, an unknown tag, one person
    on two rows) is reported with every other and nothing is stored; ``check`` reports without
    storing anyway. Households and residents are written in a few set-based statements, all in one
    transaction. The audit entry counts; it names nobody."""
    frame = read_sheet(path, encoding=encoding)
    counts = {"households_added": 0, "households_updated": 0, "residents_added": 0, "residents_updated": 0,
              "residents_removed": 0}
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        rules = of_territory(conn, territory_code).households
        rows, problems = register.sheet_rows(frame, rules)
        index = building_index(conn, territory_code)
        buildings = index.buildings
        matched, parts, unmatched = _match(rows, index)
        problems += unmatched
        placed = _placed(rows, matched, parts, buildings)
        problems += _same_person(placed) + _split_households(placed)
        if problems:
            register.raise_problems(problems)
        if replace and not len(rows):
            raise Invalid(f"{Path(path).name} has no rows: taken with replace it would empty the register; nothing was "
                          "changed", f"{Path(path).name} 没有数据行：以替换方式导入会清空住户登记；未做任何更改")
        summary = {"territory": territory_code, "rows": len(rows), "file": Path(path).name,
                   "buildings": int(placed["building_id"].nunique())}
        if check:
            return {**summary, **counts, "checked_only": True}
        households = store.upsert_households(conn, territory.id, placed.drop_duplicates("household_key"))
        counts["households_added"] = int(households["inserted"].sum())
        counts["households_updated"] = len(households) - counts["households_added"]
        placed = placed.merge(households[["household_key", "household_id"]], on="household_key", how="left")
        placed = placed.astype(object).where(placed.notna(), None)  # a merge turns None into NaN
        person = [vault.indexes(p) for p in placed["person"]]
        member = [vault.indexes(m) for m in placed["member"]]
        stored = store.residents_matching(conn, territory.id, [i for row in person for i in row],
                                          [i for row in member for i in row])
        by_person = dict(zip(stored["person_index"], stored["resident_id"]))
        by_member = stored.groupby("member_index")["resident_id"].apply(list).to_dict()
        new, old = [], []
        for r, person_indexes, member_indexes in zip(placed.itertuples(), person, member):
            resident = {"household_id": int(r.household_id), "person_index": person_indexes[0],
                        "member_index": member_indexes[0], "name_enc": vault.encrypt(r.name),
                        "id_number_enc": vault.encrypt(r.id_number), "phone_enc": vault.encrypt(r.phone),
                        "relation": r.relation, "tags": list(r.tags), "birth_year": r.birth_year}
            found = next((by_person[i] for i in person_indexes if i in by_person), None)
            if found is None:  # the same name in the same household, stored with or without an ID number
                same = {x for i in member_indexes for x in by_member.get(i, [])}
                found = same.pop() if len(same) == 1 else None
                if found is not None and r.id_number is None:  # keep the ID number it is stored (and found) by
                    resident["person_index"] = stored.set_index("resident_id").loc[found, "person_index"]
            (new if found is None else old).append(resident if found is None else {**resident, "resident_id": int(found)})
        kept = store.insert_residents(conn, territory.id, new) + [r["resident_id"] for r in old]
        store.update_residents(conn, old)
        counts["residents_added"], counts["residents_updated"] = len(new), len(old)
        if replace:
            counts["residents_removed"] = store.delete_residents_except(conn, territory.id, kept)
        summary = {**summary, **counts}
        audit.record(conn, actor=actor, action="households.import", table="residents", row_key=territory_code,
                     after={**summary, "replace": replace})
    return summary


def _placed(rows: pd.DataFrame, matched: list, parts: list, buildings: pd.DataFrame) -> pd.DataFrame:
    """The sheet's rows with their building, household key and place (rows without a building dropped):
    what the import writes, and ``person``, what a resident is found again by."""
    by_id = buildings.set_index("building_id")
    out = []
    for r, building_id, (address_stairwell, address_room) in zip(rows.itertuples(), matched, parts):
        if building_id is None:
            continue
        b = by_id.loc[building_id]
        stairwell, room = r.stairwell or address_stairwell, r.room or address_room
        ref = register.building_ref(b["compound_name"], b["building_name"] or b["name"], b["address"], building_id)
        key = register.household_key(ref, stairwell, room, r.household_no)
        out.append({"row": r.row, "name": r.name, "id_number": r.id_number, "phone": r.phone, "relation": r.relation,
                    "tags": r.tags, "birth_year": r.birth_year, "household_key": key, "building_id": int(building_id),
                    "label": _label(building_id, b), "stairwell": stairwell, "room": room,
                    "household_no": r.household_no, "lon": float(b["lon"]), "lat": float(b["lat"]),
                    "community_id": None if pd.isna(b["community_id"]) else int(b["community_id"]),
                    "person": r.id_number or f"{r.name}|{key}", "member": f"{r.name}|{key}"})
    return pd.DataFrame(out, columns=["row", "name", "id_number", "phone", "relation", "tags", "birth_year",
                                      "household_key", "building_id", "label", "stairwell", "room", "household_no",
                                      "lon", "lat", "community_id", "person", "member"]).astype(object)


def _split_households(placed: pd.DataFrame) -> list[dict]:
    """A 户号 whose rows are in two buildings: one household cannot live in both."""
    problems = []
    numbered = placed[placed["household_no"].notna()]
    for number, group in numbered.groupby("household_no"):
        if group["building_id"].nunique() > 1:
            rows = ", ".join(str(r) for r in group["row"])
            problems.append({"row": int(group["row"].iloc[1]), "en": f"household number {number} is on rows {rows} "
                             "in different buildings", "zh": f"户号 {number} 出现在第 {rows} 行的不同楼栋中"})
    return problems


def _same_person(placed: pd.DataFrame) -> list[dict]:
    """Two rows without an ID number for one name in one household: one person twice, or two
    people the sheet cannot tell apart (the ID numbers are checked by the sheet reader)."""
    problems = []
    unnamed = placed[placed["id_number"].isna()]
    for _, group in unnamed.groupby("person"):
        if len(group) > 1:
            rows = ", ".join(str(r) for r in group["row"])
            problems.append({"row": int(group["row"].iloc[1]),
                             "en": f"rows {rows} name {register.mask_name(group['name'].iloc[0])} twice in one household "
                                   "without an ID number: add their ID numbers",
                             "zh": f"第 {rows} 行在同一户中重复出现 {register.mask_name(group['name'].iloc[0])}，且没有身份证号：请填写身份证号"})
    return problems


# -- reading -----------------------------------------------------------------------------------------
def _people(frame: pd.DataFrame, vault: Vault, *, masked: bool) -> list[dict]:
    out = []
    for r in frame.itertuples():
        name, id_number, phone = (vault.decrypt(r.name_enc), vault.decrypt(r.id_number_enc), vault.decrypt(r.phone_enc))
        if masked:
            name, id_number, phone = register.mask_name(name), register.mask_id_number(id_number), register.mask_phone(phone)
        out.append({"resident_id": int(r.resident_id), "household_id": int(r.household_id),
                    "building_id": None if pd.isna(r.building_id) else int(r.building_id),
                    "building_label": r.building_label, "stairwell": r.stairwell, "room": r.room,
                    "household_no": r.household_no, "community_code": r.community_code, "grid_code": r.grid_code,
                    "name": name, "id_number": id_number, "phone": phone, "relation": r.relation,
                    "tags": list(r.tags or []), "birth_year": None if pd.isna(r.birth_year) else int(r.birth_year)})
    return out


def _households(people: list[dict]) -> list[dict]:
    grouped: dict[int, dict] = {}
    for p in people:
        h = grouped.setdefault(p["household_id"], {k: p[k] for k in ("household_id", "building_id", "building_label",
                                                                     "stairwell", "room", "household_no",
                                                                     "community_code", "grid_code")} | {"residents": []})
        h["residents"].append({k: p[k] for k in ("resident_id", "name", "id_number", "phone", "relation", "tags",
                                                 "birth_year")})
    return list(grouped.values())


def covering_plan(conn: sa.Connection, territory_code: str) -> tuple[str, int]:
    """The published plan whose grids a territory's households are in: its own, else its nearest
    ancestor's (owner code, plan id); refused when there is none."""
    territories.get(conn, territory_code)
    found = plans.published_above(conn, territory_code)
    if found is None:
        raise NotFound(f"territory {territory_code} (and its ancestors) has no published plan: the register is read "
                       "by the published grids", f"辖区 {territory_code}（及其上级）尚无已发布方案：住户登记按已发布网格查看")
    return found


def grid_register(engine: sa.Engine, territory_code: str, grid_code: str, *, vault: Vault, actor: str) -> dict:
    """The households of a grid of the published plan covering the territory, with their residents
    in full (the caller has checked that ``actor`` is that grid's staff or an administrator); the
    read is audited."""
    with engine.begin() as conn:
        _owner, plan_id = covering_plan(conn, territory_code)
        if grid_code not in plans.grids_within(conn, plan_id, territory_code, [grid_code]):
            raise NotFound(f"grid {grid_code} is not a published grid of territory {territory_code}",
                           f"网格 {grid_code} 不是辖区 {territory_code} 已发布的网格")
        frame = store.residents_of(conn, plan_id, grid_code=grid_code)
        audit.record(conn, actor=actor, action="households.read", table="residents", row_key=f"{territory_code}/{grid_code}",
                     after={"grid": grid_code, "households": int(frame["household_id"].nunique()), "residents": len(frame)})
    people = _people(frame, vault, masked=False)
    return {"territory": territory_code, "grid_code": grid_code, "households": _households(people),
            "residents": len(people), "focus": _focus(people)}


def household_place(conn: sa.Connection, household_id: int) -> tuple[str, int, str | None]:
    """Where a household is, for the reader check before anything personal is read: the owner of
    the published plan covering it, that plan, and the grid of it the household is in (None: in
    none)."""
    code = store.household_territory(conn, household_id)
    owner, plan_id = covering_plan(conn, code)
    grid = store.residents_of(conn, plan_id, household_id=household_id)["grid_code"].dropna()
    return owner, plan_id, (str(grid.iloc[0]) if len(grid) else None)


def household(engine: sa.Engine, household_id: int, *, vault: Vault, actor: str) -> dict:
    """One household with its residents in full (the caller checked the reader); audited."""
    with engine.begin() as conn:
        owner, plan_id, _grid = household_place(conn, household_id)
        frame = store.residents_of(conn, plan_id, household_id=household_id)
        audit.record(conn, actor=actor, action="households.read", table="households", row_key=str(household_id),
                     after={"household": household_id, "residents": len(frame)})
    found = _households(_people(frame, vault, masked=False))
    if not found:
        raise store.HouseholdNotFound(f"no household {household_id}", f"没有编号为 {household_id} 的住户")
    return {"territory": owner, **found[0]}


def _focus(people: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for p in people:
        for tag in p["tags"]:
            counts[tag] += 1
    return dict(counts)


def summary(engine: sa.Engine, territory_code: str, *, today: date | None = None) -> dict:
    """The register per published grid, no person in it: households, residents, elderly (60 and
    over) and residents per focus tag, with the territory's totals and its tags (both languages)."""
    with engine.connect() as conn:
        return counts(conn, territory_code, today=today)


def counts(conn: sa.Connection, territory_code: str, *, today: date | None = None) -> dict:
    """:func:`summary` on an open connection (the notebook reads it in its snapshot)."""
    today = today or date.today()
    territories.get(conn, territory_code)
    rules = of_territory(conn, territory_code).households
    found = plans.published_above(conn, territory_code)
    frame = store.grid_counts(conn, territory_code, found[1], elderly_born_by=today.year - ELDERLY_AGE) \
        if found is not None else pd.DataFrame(columns=["grid_code", "households", "residents", "elderly", "tag", "tagged"])
    grids: dict[str, dict] = {}
    for r in frame.itertuples():
        g = grids.setdefault(r.grid_code, {"grid_code": r.grid_code, "households": 0, "residents": 0, "elderly": 0,
                                           "tags": {t: 0 for t in rules.focus_tags}})
        if r.tag is None or pd.isna(r.tag):
            g.update(households=int(r.households), residents=int(r.residents), elderly=int(r.elderly))
        else:
            g["tags"][r.tag] = int(r.tagged)
    rows = sorted(grids.values(), key=lambda g: g["grid_code"])
    totals = {"households": sum(g["households"] for g in rows), "residents": sum(g["residents"] for g in rows),
              "elderly": sum(g["elderly"] for g in rows),
              "tags": {t: sum(g["tags"].get(t, 0) for g in rows) for t in rules.focus_tags}}
    return {"territory": territory_code, "focus_tags": rules.names(), "elderly_age": ELDERLY_AGE,
            "imported": bool(rows) or store.any_registered(conn, territory_code),  # False: never imported here
            "totals": totals, "grids": rows}


# -- export, removal, keys ---------------------------------------------------------------------------
def export(engine: sa.Engine, territory_code: str, *, vault: Vault, actor: str, full: bool = False,
           encoding: str = "utf-8") -> bytes:
    """The territory's register as CSV with the import's Chinese headers (so it reads back),
    names, ID numbers and phones masked unless ``full`` (the caller checked that ``actor`` may);
    ``encoding`` utf-8 (with a BOM, as Excel wants) or gbk. Audited, full or not."""
    with engine.begin() as conn:
        territories.get(conn, territory_code)
        found = plans.published_above(conn, territory_code)
        frame = store.residents_of(conn, found[1] if found else None, territory=territory_code)
        audit.record(conn, actor=actor, action="households.export", table="residents", row_key=territory_code,
                     after={"full": full, "residents": len(frame), "encoding": encoding})
    people = _people(frame, vault, masked=not full)
    for p in people:
        p["address"] = p["building_label"].replace(" ", "")
    table = pd.DataFrame([{zh: ("、".join(p[k]) if k == "tags" else p[k]) for k, zh in EXPORT_COLUMNS} for p in people],
                         columns=[zh for _, zh in EXPORT_COLUMNS])
    text = table.to_csv(index=False)
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return text.encode("utf-8-sig")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise Invalid(f"the register holds text {encoding} cannot write ({exc.object[exc.start:exc.end]!r}): "
                      "export it as UTF-8", f"住户信息中有 {encoding} 无法表示的文字：请导出为 UTF-8") from None
    except LookupError:
        raise Invalid(f"unknown encoding {encoding!r} (utf-8 or gbk)", f"未知编码 {encoding!r}（可用 utf-8 或 gbk）") from None


def remove_resident(engine: sa.Engine, resident_id: int, *, actor: str) -> None:
    """Remove a resident (moved away, deceased, or their data to be erased), and the household
    left empty; audited without the person's data."""
    with engine.begin() as conn:
        code, household_id = store.resident_territory(conn, resident_id)
        store.delete_resident(conn, resident_id)
        audit.record(conn, actor=actor, action="households.remove", table="residents", row_key=str(resident_id),
                     before={"territory": code, "household": household_id}, after={"deleted": True})


def rekey(engine: sa.Engine, *, vault: Vault, actor: str, page: int = 2000) -> int:
    """Encrypt every resident again under the vault's first key and recompute the keyed hashes
    (after a new key was put first in ``GRIDMAP_SECRET_KEY``); one transaction, audited. Returns
    how many residents were rewritten."""
    done, after = 0, 0
    with engine.begin() as conn:
        while True:
            frame = store.tokens(conn, after, page)
            if frame.empty:
                break
            keys = store.household_keys(conn, [int(h) for h in frame["household_id"].unique()])
            rows = []
            for r in frame.itertuples():
                member = f"{vault.decrypt(r.name_enc)}|{keys[int(r.household_id)]}"
                person = vault.decrypt(r.id_number_enc) or member
                rows.append({"resident_id": int(r.resident_id), "name_enc": vault.rotate(r.name_enc),
                             "id_number_enc": vault.rotate(r.id_number_enc), "phone_enc": vault.rotate(r.phone_enc),
                             "person_index": vault.index(person), "member_index": vault.index(member)})
            store.write_tokens(conn, rows)
            done += len(rows)
            after = int(frame["resident_id"].iloc[-1])
        audit.record(conn, actor=actor, action="households.rekey", table="residents", after={"residents": done})
    return done


__all__ = ["import_sheet", "covering_plan", "grid_register", "household", "household_place", "summary", "counts", "export", "remove_resident",
           "rekey", "NoBuildings", "ELDERLY_AGE", "EXPORT_COLUMNS"]
