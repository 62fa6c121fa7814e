"""The grid staff: import an office's staff sheet, add and assign people, and the staffing checks
(一格一员, workload, assignments to grids a re-plan changed). Each write is one transaction with
its audit entry; a sheet with any bad row stores nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa

from gridmap import staffing
from gridmap.errors import Invalid
from gridmap.services.profiles import of_territory
from gridmap.sheets import read_sheet
from gridmap.store import audit, plans, territories
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
    :data:`gridmap.staffing.SHEET_COLUMNS`): each row a person (matched by 工号, else by name and
    phone) and, when it names a grid, their assignment to it. Grid codes must be grids of the
    published plan. Every problem of every row is reported at once and nothing is stored."""
    today = today or date.today()
    rows = staffing.sheet_rows(read_sheet(path, encoding=encoding), today=today)
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        plan_id = _published(conn, territory.id, territory_code)
        grids = store.published_grids(conn, plan_id).set_index("grid_code")
        problems = [(int(r.row), f"grid {r.grid_code} is not a grid of territory {territory_code}'s published plan",
                     f"网格 {r.grid_code} 不是辖区 {territory_code} 已发布方案中的网格")
                    for r in rows.itertuples() if r.grid_code and r.grid_code not in grids.index]
        if problems:
            staffing.raise_problems(problems)
        people_new = assignments_new = 0
        for r in rows.itertuples():
            person = store.find(conn, territory.id, staff_key=r.staff_key, name=r.name, phone=r.phone)
            if person is None:
                person = store.insert(conn, territory.id, name=r.name, role=r.role, phone=r.phone, staff_key=r.staff_key)
                people_new += 1
            else:
                store.update(conn, person, {"name": r.name, "role": r.role, "phone": r.phone})
            if r.grid_code:
                grid = grids.loc[r.grid_code]
                _, made = store.assign(conn, person, grid_code=r.grid_code, microgrid_code=r.microgrid_code,
                                       valid_from=r.valid_from, valid_to=r.valid_to, grid_id=int(grid["grid_id"]),
                                       grid_lineage=int(grid["lineage"]))
                assignments_new += made
        summary = {"territory": territory_code, "rows": len(rows), "people_added": people_new,
                   "assignments_added": assignments_new, "file": Path(path).name}
        audit.record(conn, actor=actor, action="staff.import", table="staff", row_key=territory_code, after=summary)
    return summary


def create(engine: sa.Engine, territory_code: str, *, name: str, role: str, phone: str | None = None,
           staff_key: str | None = None, actor: str) -> dict:
    """Add a person (``role``: a key, Chinese or English name of :data:`gridmap.staffing.ROLES`)."""
    key = _role(role)
    with engine.begin() as conn:
        territory = territories.get(conn, territory_code)
        if staff_key and store.find(conn, territory.id, staff_key=staff_key, name=name, phone=phone) is not None:
            raise Invalid(f"staff key {staff_key} is already used in territory {territory_code}",
                          f"工号 {staff_key} 在辖区 {territory_code} 已被使用")
        staff_id = store.insert(conn, territory.id, name=name, role=key, phone=phone, staff_key=staff_key)
        audit.record(conn, actor=actor, action="staff.create", table="staff", row_key=str(staff_id),
                     after={"name": name, "role": key, "staff_key": staff_key})
        return store.get(conn, staff_id)


def update(engine: sa.Engine, staff_id: int, changes: dict, *, actor: str) -> dict:
    if "role" in changes:
        changes = {**changes, "role": _role(changes["role"])}
    with engine.begin() as conn:
        before = store.get(conn, staff_id)
        store.update(conn, staff_id, changes)
        audit.record(conn, actor=actor, action="staff.update", table="staff", row_key=str(staff_id),
                     before={k: before[k] for k in changes if k in before}, after=changes)
        return store.get(conn, staff_id)


def remove(engine: sa.Engine, staff_id: int, *, actor: str) -> None:
    with engine.begin() as conn:
        before = store.get(conn, staff_id)
        store.delete(conn, staff_id)
        audit.record(conn, actor=actor, action="staff.delete", table="staff", row_key=str(staff_id),
                     before={"name": before["name"], "role": before["role"]}, after={"deleted": True})


def assign(engine: sa.Engine, staff_id: int, grid_code: str, *, actor: str, microgrid_code: str | None = None,
           valid_from: date | None = None, valid_to: date | None = None) -> dict:
    """Assign a person to a grid of the published plan, from ``valid_from`` (today) to ``valid_to``."""
    valid_from = valid_from or date.today()
    if valid_to is not None and valid_to < valid_from:
        raise Invalid("valid_to is before valid_from", "结束日期早于起始日期")
    with engine.begin() as conn:
        person = store.get(conn, staff_id)
        territory = territories.get(conn, person["territory"])
        grids = store.published_grids(conn, _published(conn, territory.id, territory.code)).set_index("grid_code")
        if grid_code not in grids.index:
            raise Invalid(f"grid {grid_code} is not a grid of territory {territory.code}'s published plan",
                          f"网格 {grid_code} 不是辖区 {territory.code} 已发布方案中的网格")
        grid = grids.loc[grid_code]
        assignment_id, _ = store.assign(conn, staff_id, grid_code=grid_code, microgrid_code=microgrid_code,
                                        valid_from=valid_from, valid_to=valid_to, grid_id=int(grid["grid_id"]),
                                        grid_lineage=int(grid["lineage"]))
        audit.record(conn, actor=actor, action="staff.assign", table="staff_assignments", row_key=str(assignment_id),
                     after={"staff_id": staff_id, "grid_code": grid_code, "valid_from": valid_from, "valid_to": valid_to})
        return store.assignment(conn, assignment_id)


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
    with engine.connect() as conn:
        territory = territories.get(conn, territory_code)
        frame = store.people(conn, territory.id)
    return [{**r, **staffing.role_names(r["role"]), "grids": list(r["grids"])} for r in frame.to_dict("records")]


def _role(text: str) -> str:
    key = staffing.role_key(text)
    if key is None:
        raise Invalid(f"unknown role {text!r} (one of {', '.join(staffing.ROLES)})",
                      f"未知角色 {text!r}（可用：{'、'.join(v[0] for v in staffing.ROLES.values())}）")
    return key


__all__ = ["NoPublishedPlan", "import_sheet", "create", "update", "remove", "assign", "end_assignment", "report",
           "people"]
