"""The grid staff: import an office's staff sheet, add and assign people, and the staffing checks
(一格一员, workload, assignments to grids a re-plan changed). Each write is one transaction with
its audit entry; a sheet with any bad row stores nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from gridmap import staffing
from gridmap.errors import Invalid
from gridmap.services.profiles import of_territory
from gridmap.sheets import read_sheet
from gridmap.store import audit, plans, territories, users
from gridmap.store import staff as store


class NoPublishedPlan(Invalid):
    """Staff are assigned to the grids of the published plan; there is none yet."""


def _published(conn: sa.Connection, territory_id: int, code: str) -> int:
    plan_id = plans.published_id(conn, territory_id)
    if plan_id is None:
        raise NoPublishedPlan(f"territory {code} has no published plan: staff are assigned to its published grids",
                              f"辖区 {code} 尚无已发布方案：人员须分配到已发布方案的网格")
    return plan_id


def import_sheet(engine: sa.Engine, territory_code: str, path: str | Path, *, actor: str, encoding: str | None = None,
                 today: date | None = None) -> dict:
    """Take an office's staff sheet (CSV in UTF-8 or GBK, or .xlsx; Chinese headers, see
    :data:`gridmap.staffing.SHEET_COLUMNS`): each row a person and, when it names a grid, their
    assignment to it.

    A person is found again by 工号, else by name (and phone, when the row gives one); their name
    and role follow the sheet, a phone the sheet leaves blank is kept. An assignment is found again
    by person, grid, micro-grid and 起始日期 (without one: the latest not yet ended); a 结束日期
    ends it. So the same sheet taken again changes nothing. Grid codes must be grids of the
    published plan, micro-grid codes its micro-grids; a 楼栋 (with its 小区 where the name alone is
    not unique) is a building of the territory's buildings layer, found as the households
    register finds it, and its grid is the one holding it when the row names none. Every problem
    of every row is reported at once and nothing is stored; every person and assignment changed
    is in the audit log."""
    today = today or date.today()
    rows, problems = staffing.sheet_rows(read_sheet(path, encoding=encoding))
    counts = {"people_added": 0, "people_updated": 0, "assignments_added": 0, "assignments_ended": 0}
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        plan_id = _published(conn, territory.id, territory_code)
        grids = store.published_grids(conn, plan_id).set_index("grid_code")
        micro = store.microgrid_codes(conn, plan_id)
        rows = _place_buildings(conn, territory_code, plan_id, rows, problems)
        for r in rows.itertuples():
            if r.grid_code and r.grid_code not in grids.index:
                problems.append((int(r.row), f"grid {r.grid_code} is not a grid of territory {territory_code}'s "
                                 "published plan", f"网格 {r.grid_code} 不是辖区 {territory_code} 已发布方案中的网格"))
            if r.microgrid_code and (r.microgrid_code not in micro or not r.microgrid_code.startswith(r.grid_code or "")):
                problems.append((int(r.row), f"micro-grid {r.microgrid_code} is not a micro-grid of grid {r.grid_code} "
                                 "in the published plan", f"微网格 {r.microgrid_code} 不是已发布方案中网格 {r.grid_code} 的微网格"))
        if problems:
            staffing.raise_problems(problems)
        for r in rows.itertuples():
            person = _person_of_row(conn, territory.id, r, counts, actor)
            if r.grid_code:
                _assignment_of_row(conn, person, r, grids.loc[r.grid_code], today, counts, actor)
        summary = {"territory": territory_code, "rows": len(rows), **counts, "file": Path(path).name}
        audit.record(conn, actor=actor, action="staff.import", table="staff", row_key=territory_code, after=summary)
    return summary


def _place_buildings(conn: sa.Connection, territory_code: str, plan_id: int, rows: pd.DataFrame,
                     problems: list) -> pd.DataFrame:
    """The rows with ``building_id`` and ``building_label`` for those naming a building (and the
    grid holding it where they name no grid); a building found nowhere, or several times, or
    outside the row's grid is a problem."""
    from gridmap.services.addresses import building_index

    rows = rows.assign(building_id=None, building_label=None).astype(object)
    named = rows[rows["building"].notna()]
    if named.empty:
        return rows
    index = building_index(conn, territory_code)
    found = {}
    for r in named.itertuples():
        building, _stairwell, _room, problem = index.find(int(r.row), r.compound, r.building, None)
        if problem is not None and not r.compound:  # ``书香锦城3栋``: 小区 and 楼栋 in one, as an address
            building, _stairwell, _room, as_address = index.find(int(r.row), None, None, r.building)
            problem = None if as_address is None else problem
        if problem is not None:
            problems.append((problem["row"], problem["en"], problem["zh"]))
        else:
            found[r.Index] = building
    if not found:
        return rows
    places = index.buildings.set_index("building_id").loc[list(found.values())]
    holding = store.grids_at(conn, plan_id, list(zip(places["lon"], places["lat"])))
    for (idx, building), grid, place in zip(found.items(), holding, places.itertuples()):
        row = rows.loc[idx]
        label = " ".join(str(x) for x in (place.compound_name, place.building_name or place.name) if x) or row["building"]
        if grid is None:
            problems.append((int(row["row"]), f"building {label} lies in no grid of the published plan",
                             f"楼栋 {label} 不在已发布方案的任何网格内"))
        elif row["grid_code"] and row["grid_code"] != grid:
            problems.append((int(row["row"]), f"building {label} is in grid {grid}, not {row['grid_code']}",
                             f"楼栋 {label} 在网格 {grid}，不在 {row['grid_code']}"))
        rows.at[idx, "grid_code"] = row["grid_code"] or grid
        rows.at[idx, "building_id"], rows.at[idx, "building_label"] = int(building), label
    return rows


def _person_of_row(conn: sa.Connection, territory_id: int, r, counts: dict, actor: str) -> int:
    """The stored person a sheet row names (made, or brought up to date); an ambiguous name without
    工号 or phone is refused (the transaction then stores nothing)."""
    found = store.candidates(conn, territory_id, staff_key=r.staff_key, name=r.name, phone=r.phone)
    if len(found) > 1:
        staffing.raise_problems([(int(r.row), f"{len(found)} people are called {r.name}: add their 工号 or phone",
                                  f"有 {len(found)} 人名为 {r.name}：请填写工号或电话以区分")])
    if not found:
        person = store.insert(conn, territory_id, name=r.name, role=r.role, phone=r.phone, staff_key=r.staff_key)
        counts["people_added"] += 1
        audit.record(conn, actor=actor, action="staff.create", table="staff", row_key=str(person),
                     after={"name": r.name, "role": r.role, "staff_key": r.staff_key, "phone": r.phone})
        return person
    person = found[0]
    before = store.get(conn, person)
    wanted = {"name": r.name, "role": r.role, "phone": r.phone or before["phone"],
              "staff_key": r.staff_key or before["staff_key"]}
    changes = {k: v for k, v in wanted.items() if v != before[k]}
    if changes:
        store.update(conn, person, changes)
        counts["people_updated"] += 1
        audit.record(conn, actor=actor, action="staff.update", table="staff", row_key=str(person),
                     before={k: before[k] for k in changes}, after=changes)
    return person


def _assignment_of_row(conn: sa.Connection, person: int, r, grid, today: date, counts: dict, actor: str) -> None:
    """A sheet row's assignment: found again (and ended when the row gives its last day), or made."""
    stored = store.matching(conn, person, grid_code=r.grid_code, microgrid_code=r.microgrid_code,
                            valid_from=r.valid_from, today=today, building_id=r.building_id,
                            building_label=r.building_label)
    if stored is not None:
        if r.valid_to is not None and r.valid_to != stored["valid_to"]:
            if r.valid_to < stored["valid_from"]:
                staffing.raise_problems([(int(r.row), f"结束日期 {r.valid_to} is before the assignment's start "
                                          f"{stored['valid_from']}", f"结束日期 {r.valid_to} 早于该分配的起始日期 "
                                          f"{stored['valid_from']}")])
            store.end_assignment(conn, stored["id"], r.valid_to)
            counts["assignments_ended"] += 1
            audit.record(conn, actor=actor, action="staff.end", table="staff_assignments", row_key=str(stored["id"]),
                         before={"valid_to": stored["valid_to"]}, after={"valid_to": r.valid_to})
        return
    valid_from = r.valid_from or today
    if r.valid_to is not None and r.valid_to < valid_from:
        staffing.raise_problems([(int(r.row), "结束日期 is before today (the start, none being given)",
                                  "结束日期早于今天（未填写起始日期时以今天为起始日期）")])
    made, _ = store.assign(conn, person, grid_code=r.grid_code, microgrid_code=r.microgrid_code, valid_from=valid_from,
                           valid_to=r.valid_to, grid_id=int(grid["grid_id"]), grid_lineage=int(grid["lineage"]),
                           building_id=r.building_id, building_label=r.building_label)
    counts["assignments_added"] += 1
    audit.record(conn, actor=actor, action="staff.assign", table="staff_assignments", row_key=str(made),
                 after={"staff_id": person, "grid_code": r.grid_code, "building": r.building_label,
                        "valid_from": valid_from, "valid_to": r.valid_to})


def create(engine: sa.Engine, territory_code: str, *, name: str, role: str, phone: str | None = None,
           staff_key: str | None = None, actor: str) -> dict:
    """Add a person (``role``: a key, Chinese or English name of :data:`gridmap.staffing.ROLES`)."""
    key = _role(role)
    _check_phone(phone)
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        if staff_key and store.candidates(conn, territory.id, staff_key=staff_key, name="", phone=None):
            raise Invalid(f"staff key {staff_key} is already used in territory {territory_code}",
                          f"工号 {staff_key} 在辖区 {territory_code} 已被使用")
        staff_id = store.insert(conn, territory.id, name=name, role=key, phone=phone, staff_key=staff_key)
        audit.record(conn, actor=actor, action="staff.create", table="staff", row_key=str(staff_id),
                     after={"name": name, "role": key, "staff_key": staff_key})
        return store.get(conn, staff_id)


def update(engine: sa.Engine, staff_id: int, changes: dict, *, actor: str) -> dict:
    """Change a person's name, role, phone or account (``username``; None unlinks it); a name or
    role cannot be emptied."""
    for required in ("name", "role"):
        if required in changes and not changes[required]:
            raise Invalid(f"a person's {required} cannot be empty", f"人员的{'姓名' if required == 'name' else '角色'}不能为空")
    if "role" in changes:
        changes = {**changes, "role": _role(changes["role"])}
    _check_phone(changes.get("phone"))
    with engine.begin() as conn:
        if "username" in changes:  # the account they sign in with (None: none): they then read their grids' register
            changes = {k: v for k, v in changes.items() if k != "username"} | {"user_id": _account(conn, changes["username"])}
        before = store.get(conn, staff_id)
        store.update(conn, staff_id, changes)
        audit.record(conn, actor=actor, action="staff.update", table="staff", row_key=str(staff_id),
                     before={k: before[k] for k in changes if k in before}, after=changes)
        return store.get(conn, staff_id)


def _account(conn: sa.Connection, username: str | None) -> int | None:
    if username is None:
        return None
    user_id = users.id_of(conn, username)
    if user_id is None:
        raise Invalid(f"no account {username!r}: create it with `gridmap user add`",
                      f"没有账号 {username!r}：请先用 `gridmap user add` 创建")
    return user_id


def remove(engine: sa.Engine, staff_id: int, *, actor: str) -> None:
    """Remove a person and every assignment they had (all kept in the audit entry)."""
    with engine.begin() as conn:
        before = store.get(conn, staff_id)
        history = store.assignments_of(conn, staff_id)
        store.delete(conn, staff_id)
        audit.record(conn, actor=actor, action="staff.delete", table="staff", row_key=str(staff_id),
                     before={**{k: before[k] for k in ("name", "role", "phone", "staff_key")}, "assignments": history},
                     after={"deleted": True})


def assign(engine: sa.Engine, staff_id: int, grid_code: str | None, *, actor: str, microgrid_code: str | None = None,
           building: str | None = None, valid_from: date | None = None, valid_to: date | None = None) -> dict:
    """Assign a person to a grid of the published plan (a micro-grid of it; a building in it, named
    by 小区 and 楼栋 or an address: the grid holding it when none is given), from ``valid_from``
    (today) to ``valid_to``."""
    valid_from = valid_from or date.today()
    if valid_to is not None and valid_to < valid_from:
        raise Invalid("valid_to is before valid_from", "结束日期早于起始日期")
    if not grid_code and not building:
        raise Invalid("name a grid or a building", "请填写网格或楼栋")
    with engine.begin() as conn:
        person = store.get(conn, staff_id)
        territory = territories.get(conn, person["territory"])
        plan_id = _published(conn, territory.id, territory.code)
        problems: list[tuple[int, str, str]] = []
        placed = _place_buildings(conn, territory.code, plan_id, pd.DataFrame([{
            "row": 1, "grid_code": grid_code, "microgrid_code": microgrid_code, "compound": None, "building": building}]),
            problems)
        if problems:
            raise Invalid("; ".join(en for _, en, _ in problems), "；".join(zh for _, _, zh in problems))
        grid_code, building_id, label = placed.at[0, "grid_code"], placed.at[0, "building_id"], placed.at[0, "building_label"]
        grids = store.published_grids(conn, plan_id).set_index("grid_code")
        if grid_code not in grids.index:
            raise Invalid(f"grid {grid_code} is not a grid of territory {territory.code}'s published plan",
                          f"网格 {grid_code} 不是辖区 {territory.code} 已发布方案中的网格")
        grid = grids.loc[grid_code]
        if microgrid_code and (microgrid_code not in store.microgrid_codes(conn, plan_id) or
                               not microgrid_code.startswith(grid_code)):
            raise Invalid(f"micro-grid {microgrid_code} is not a micro-grid of grid {grid_code} in the published plan",
                          f"微网格 {microgrid_code} 不是已发布方案中网格 {grid_code} 的微网格")
        assignment_id, made = store.assign(conn, staff_id, grid_code=grid_code, microgrid_code=microgrid_code,
                                           valid_from=valid_from, valid_to=valid_to, grid_id=int(grid["grid_id"]),
                                           grid_lineage=int(grid["lineage"]), building_id=building_id,
                                           building_label=label)
        if made:  # the same assignment asked for again changes nothing
            audit.record(conn, actor=actor, action="staff.assign", table="staff_assignments",
                         row_key=str(assignment_id), after={"staff_id": staff_id, "grid_code": grid_code,
                                                            "building": label, "valid_from": valid_from,
                                                            "valid_to": valid_to})
        return store.assignment(conn, assignment_id)


ADOPTED_ROLE = {"grid": "full_time_worker", "microgrid": "building_leader", "building": "building_leader",
                "unit": "stairwell_leader"}
"""The role of a person the plan names: a grid's worker is its full-time worker (一格一员); a
micro-grid's or a building's leader its 楼栋长; a 单元's leader (a building split by them) its 单元长."""


def adopt(engine: sa.Engine, territory_code: str, *, actor: str, today: date | None = None) -> dict:
    """Take the people the published plan names into the staff register, assigned from ``today``:
    each grid's ``worker`` (full-time worker of the grid), each micro-grid's and building's leader
    (楼栋长 of the micro-grid, and of the building; 单元长 of one 单元). A person already on the
    staff (same name, and phone where the plan gives one) is not made twice and keeps their role;
    an assignment already held is not made twice; a name several people share, with no phone to
    tell them apart, is listed and left. One transaction, audited; taken again, changes nothing."""
    today = today or date.today()
    counts = {"people_added": 0, "assignments_added": 0, "already_assigned": 0}
    ambiguous: list[dict] = []
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        plan_id = _published(conn, territory.id, territory_code)
        grids = store.published_grids(conn, plan_id).set_index("grid_code")
        for r in store.named_in_plan(conn, plan_id).itertuples():
            role = ADOPTED_ROLE[r.kind]
            named = staffing.names_in(r.name)
            given = _text(r.phone)
            given = given if given and staffing.PHONE.match(given) and len(named) == 1 else None  # the one named
            for name, phone in named:
                phone = phone or given
                found = store.candidates(conn, territory.id, staff_key=None, name=name, phone=phone)
                if not found and phone:  # on the staff without a phone yet: the same person
                    found = [p for p in store.candidates(conn, territory.id, staff_key=None, name=name, phone=None)
                             if not store.get(conn, p)["phone"]]
                if len(found) > 1:
                    ambiguous.append({"name": name, "grid_code": r.grid_code, "people": len(found)})
                    continue
                if found:
                    person = found[0]
                else:
                    person = store.insert(conn, territory.id, name=name, role=role, phone=phone, staff_key=None)
                    counts["people_added"] += 1
                    audit.record(conn, actor=actor, action="staff.create", table="staff", row_key=str(person),
                                 after={"name": name, "role": role, "phone": phone, "from": "plan"})
                building = None if pd.isna(r.building_id) else int(r.building_id)
                microgrid, label = _text(r.microgrid_code), _text(r.building_label)
                if store.matching(conn, person, grid_code=r.grid_code, microgrid_code=microgrid, valid_from=None,
                                  today=today, building_id=building, building_label=label) is not None:
                    counts["already_assigned"] += 1
                    continue
                grid = grids.loc[r.grid_code]
                made, _ = store.assign(conn, person, grid_code=r.grid_code, microgrid_code=microgrid,
                                       valid_from=today, valid_to=None, grid_id=int(grid["grid_id"]),
                                       grid_lineage=int(grid["lineage"]), building_id=building, building_label=label)
                counts["assignments_added"] += 1
                audit.record(conn, actor=actor, action="staff.assign", table="staff_assignments", row_key=str(made),
                             after={"staff_id": person, "grid_code": r.grid_code, "microgrid_code": microgrid,
                                    "building": label, "valid_from": today, "from": "plan"})
        summary = {"territory": territory_code, "plan_id": plan_id, **counts, "ambiguous": ambiguous}
        audit.record(conn, actor=actor, action="staff.adopt", table="staff", row_key=territory_code, after=summary)
    return summary


def end_assignment(engine: sa.Engine, assignment_id: int, valid_to: date, *, actor: str) -> dict:
    """End an assignment on ``valid_to`` (its last day)."""
    with engine.begin() as conn:
        before = store.assignment(conn, assignment_id)
        if valid_to < before["valid_from"]:
            raise Invalid("the assignment would end before it began", "结束日期早于该分配的起始日期")
        store.end_assignment(conn, assignment_id, valid_to)
        audit.record(conn, actor=actor, action="staff.end", table="staff_assignments", row_key=str(assignment_id),
                     before={"valid_to": before["valid_to"]}, after={"valid_to": valid_to})
        return store.assignment(conn, assignment_id)


def report(engine: sa.Engine, territory_code: str, *, on: date | None = None) -> dict:
    """The staffing of a territory's published grids on ``on`` (today): per grid its staff and
    flags, per person their grids, households, open and overdue incidents and flags, the
    assignments to grids a re-plan changed with where each grid went, and the counts."""
    on = on or date.today()
    with engine.connect() as conn:
        territory = territories.get(conn, territory_code)
        plan_id = _published(conn, territory.id, territory_code)
        rules = of_territory(conn, territory_code).staff
        grids = store.published_grids(conn, plan_id)
        active = store.active_assignments(conn, territory.id, plan_id, on)
        per_grid, per_worker = staffing.check_staffing(grids, active, store.incidents_per_grid(conn, plan_id), rules)
        changed = [{"assignment_id": int(r.assignment_id), "staff_id": int(r.staff_id), "name": r.name,
                    "grid_code": r.grid_code,
                    "now_in": store.where_it_went(conn, int(r.grid_id), plan_id) if r.grid_id == r.grid_id and
                    r.grid_id is not None else []}
                   for r in active[active["grid_changed"]].itertuples()]
    flags = {name: int(sum(name in f for f in frame["flags"])) if len(frame) else 0
             for name, frame in (("no_full_time_worker", per_grid), ("over_grids", per_worker),
                                 ("over_households", per_worker))}
    return {"territory": territory_code, "on": on.isoformat(), "plan_id": plan_id, "rules": vars(rules),
            "summary": {"comprehensive_grids": len(per_grid), "people": int(active["staff_id"].nunique()),
                        **flags, "grid_changed": len(changed)},
            "flags": {k: {"en": en, "zh": zh} for k, (en, zh) in staffing.FLAG_TEXT.items()},
            "grids": per_grid.to_dict("records"), "workers": per_worker.to_dict("records"), "changed": changed}


def people(engine: sa.Engine, territory_code: str) -> list[dict]:
    """Every person the territory keeps, with their role's names and the grids they hold today."""
    with engine.connect() as conn:
        territory = territories.get(conn, territory_code)
        frame = store.people(conn, territory.id).astype(object)
    frame = frame.where(frame.notna(), None)  # a user id missing for some: None, not NaN
    return [{**r, **staffing.role_names(r["role"]), "grids": sorted(r["grids"]),
             "user_id": None if r["user_id"] is None else int(r["user_id"])} for r in frame.to_dict("records")]


def _text(value: object) -> str | None:
    """A cell of a frame read from the database: its text, or None for a NULL (None or NaN)."""
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _check_phone(phone: str | None) -> None:
    if phone and not staffing.PHONE.match(phone):
        raise Invalid(f"phone {phone!r} is not a phone number", f"电话 {phone!r} 不是电话号码")


def _role(text: str) -> str:
    key = staffing.role_key(text)
    if key is None:
        raise Invalid(f"unknown role {text!r} (one of {', '.join(staffing.ROLES)})",
                      f"未知角色 {text!r}（可用：{'、'.join(v[0] for v in staffing.ROLES.values())}）")
    return key


__all__ = ["NoPublishedPlan", "import_sheet", "create", "update", "remove", "assign", "end_assignment", "report",
           "people"]
