"""双报到: party members and units registered with their communities (from the office's sheet, or
one at a time), their service hours, the counts per grid, and the synthetic demo at the seed's
scale (19,000 registrations). Each write is one transaction with its audit entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gridmap import lists, registrations
from gridmap.errors import Invalid
from gridmap.services.addresses import place_by_address
from gridmap.sheets import SheetProblems, read_sheet
from gridmap.store import audit, layers, plans, territories
from gridmap.store import households as building_store
from gridmap.store import lists as places
from gridmap.store import registrations as store

DEMO_COUNT = 19_000
"""The seed articles' figure: one city registered 19,000 party members into its grids."""


def _since(today: date) -> date:
    return date(today.year, 1, 1)


def _placed(conn: sa.Connection, territory: str, rows: list[dict], problems: list[dict]) -> list[dict]:
    """Each row with its point (from an address when it has no coordinates) and community; the
    rows that cannot be placed in the territory become problems."""
    out = []
    for row in place_by_address(conn, territory, rows, problems):
        community = places.community_id(conn, row.get("community_code"), row["lon"], row["lat"])
        if community is None or not places.within(conn, territory, community, row["lon"], row["lat"]):
            problems.append({"row": row["row"], "en": f"the place is not in a community of territory {territory}",
                             "zh": f"位置不在辖区 {territory} 的社区内"})
            continue
        out.append({**row, "community_id": community})
    return out


def import_sheet(engine: sa.Engine, territory: str, path: str | Path, *, actor: str, encoding: str | None = None,
                 check: bool = False, today: date | None = None) -> dict:
    """Take a 双报到 sheet (see :data:`gridmap.registrations.SHEET_COLUMNS`): every problem of every
    row reported and nothing stored, or all rows; one already registered (same community, kind,
    name and organisation) is left as it is, so the same sheet taken twice adds nothing."""
    frame = read_sheet(path, encoding=encoding)
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        rows, problems = registrations.sheet_rows(frame, today=today or date.today())
        placed = _placed(conn, territory, rows, problems)
        if problems:
            raise SheetProblems.of(problems, ("报到表", "registrations sheet"))
        done = {"territory": territory, "rows": len(rows), "added": 0, "already": 0, "file": Path(path).name}
        if check:
            return {**done, "checked_only": True}
        if placed:
            done.update(store.insert(conn, row.id, pd.DataFrame(placed), actor=actor)[0])
        audit.record(conn, actor=actor, action="registrations.import", table="registrations", row_key=territory,
                     after=done)
    return done


def register(engine: sa.Engine, territory: str, item: dict, *, actor: str) -> dict:
    """Register one party member or unit (``kind, name``, optionally ``organisation, address, lon,
    lat, community_code, registered_on``)."""
    kind = registrations.kind_of(item.get("kind"))
    if kind is None:
        raise lists.ListError(f"unknown kind {item.get('kind')!r} (党员 or 单位)", f"未知类型 {item.get('kind')!r}（党员或单位）")
    if item.get("registered_on") and item["registered_on"] > date.today():
        raise lists.ListError("registered in the future", "报到日期晚于今天")
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        problems: list[dict] = []
        placed = _placed(conn, territory, [{**item, "row": 1, "kind": kind, "lon": item.get("lon"), "lat": item.get("lat"),
                                            "registered_on": item.get("registered_on") or date.today()}], problems)
        if problems:
            raise Invalid(problems[0]["en"], problems[0]["zh"])
        done, ids = store.insert(conn, row.id, pd.DataFrame(placed), actor=actor)
        if not done["added"]:
            raise Invalid(f"{item['name']} is registered with that community already", f"{item['name']} 已在该社区报到")
        audit.record(conn, actor=actor, action="registration.create", table="registrations", row_key=str(ids[0]),
                     after={"kind": kind, "community_id": placed[0]["community_id"]})
    return {"registration_id": ids[0], "territory": territory, "kind": kind, "name": item["name"],
            "community_id": placed[0]["community_id"]}


def log_hours(engine: sa.Engine, registration_id: int, *, hours: float, served_on: date | None = None,
              activity: str | None = None, project_id: int | None = None, need_id: int | None = None,
              actor: str) -> dict:
    """Log hours a registration served: at most 24 on a day (with what is logged for it already),
    not in the future; the project or need served, when named, of the registration's territory."""
    served_on = served_on or date.today()
    if not 0 < hours <= 24:
        raise Invalid("hours must be more than 0 and at most 24", "服务时长须大于 0 且不超过 24 小时")
    if served_on > date.today():
        raise Invalid("hours cannot be logged for a day to come", "不能登记未来日期的服务时长")
    with engine.begin() as conn:
        territory = store.territory_of(conn, registration_id)
        for kind, item, zh in (("project", project_id, "项目"), ("need", need_id, "需求")):
            if item is not None and item not in places.items_in(conn, kind, [item], territory) | \
                    places.items_above(conn, kind, [item], territory):
                raise Invalid(f"{kind} {item} is not one of this community's", f"{zh} {item} 不属于该社区")
        logged = store.hours_on(conn, registration_id, served_on)
        if logged + hours > 24:
            raise Invalid(f"{logged:g} hours are logged for {served_on} already: a day has 24",
                          f"{served_on} 已登记 {logged:g} 小时：一天最多 24 小时")
        entry = store.log_hours(conn, registration_id, served_on=served_on, hours=hours, activity=activity,
                                project_id=project_id, need_id=need_id, actor=actor)
        audit.record(conn, actor=actor, action="registration.hours", table="service_hours", row_key=str(entry),
                     after={"registration": registration_id, "hours": hours, "served_on": served_on.isoformat()})
    return {"entry_id": entry, "registration_id": registration_id, "hours": hours, "served_on": served_on.isoformat()}


def summary(engine: sa.Engine, territory: str, *, today: date | None = None) -> dict:
    """Per published grid: party members and units registered, hours served this year (to
    ``today``), projects joined; with the territory's totals (a project counted once)."""
    today = today or date.today()
    with engine.connect() as conn:
        territories.get(conn, territory)
        found = plans.published_above(conn, territory)
        frame, projects = store.grid_counts(conn, territory, found[1], since=_since(today), until=today) if found else \
            (pd.DataFrame(columns=["grid_code", "party_members", "units", "hours", "projects"]), 0)
        total = store.count(conn, territory)
    grids = [{"grid_code": r["grid_code"], "party_members": int(r["party_members"]), "units": int(r["units"]),
              "hours": round(float(r["hours"]), 1), "projects": int(r["projects"])} for r in frame.to_dict("records")]
    return {"territory": territory, "since": _since(today).isoformat(), "until": today.isoformat(), "registered": total,
            "totals": {**{k: sum(g[k] for g in grids) for k in ("party_members", "units")},
                       "hours": round(sum(g["hours"] for g in grids), 1), "projects": projects},
            "grids": grids}


def listing(conn: sa.Connection, territory: str, *, names: bool, on: date | None = None):
    """The registrations of a territory with grid and hours from 1 January to ``on`` (today)."""
    on = on or date.today()
    found = plans.published_above(conn, territory)
    return store.registrations(conn, territory, found[1] if found else None, names=names, since=_since(on), until=on)


def ensure_demo(engine: sa.Engine, territory: str, *, count: int = DEMO_COUNT, seed: int = 19, actor: str = "gridmap up",
                today: date | None = None) -> int:
    """The synthetic 双报到 of a demo territory at the seed's scale, when it has none: ``count``
    registrations (one in twenty a unit), members at buildings in proportion to their households,
    units at sites; every row marked ``synthetic``. Returns how many were added."""
    today = today or date.today()
    with engine.begin() as conn:
        if store.count(conn, territory):
            return 0
        row = territories.get(conn, territory)
        found = layers.find(conn, territory, layers.ROLES["buildings"])
        if found is None:
            return 0
        buildings = building_store.buildings(conn, territory, *found).dropna(subset=["community_id"])
        buildings["households"] = buildings["households"].fillna(1)
        sites_layer = layers.find(conn, territory, layers.ROLES["sites"])
        sites = building_store.buildings(conn, territory, *sites_layer).dropna(subset=["community_id"]) \
            if sites_layer else buildings.iloc[:0]
        units = count // 20
        frame, service = registrations.synthetic(buildings, sites, members=count - units, units=units, seed=seed,
                                                 today=today)
        done, ids = store.insert(conn, row.id, frame, actor=actor, synthetic=True)
        service["registration_id"] = [ids[r] for r in service["row"]]
        done["service_entries"] = store.insert_hours(conn, service.dropna(subset=["registration_id"]), actor=actor,
                                                     activity="synthetic")
        audit.record(conn, actor=actor, action="registrations.demo", table="registrations", row_key=territory,
                     after=done)
    return done["added"]


def ensure_demo_hours(engine: sa.Engine, territory: str, *, seed: int = 19, actor: str = "gridmap up",
                      today: date | None = None) -> int:
    """This year's synthetic service hours for a demo territory whose synthetic registrations have
    none this year (the demo was set up in an earlier year: "hours this year" would read 0 after
    the 1st of January); how many entries were added."""
    today = today or date.today()
    with engine.begin() as conn:
        rows = store.synthetic_without_hours(conn, territory, date(today.year, 1, 1))
        if rows.empty:
            return 0
        hours = registrations.synthetic_hours(list(rows["registered_on"]), rng=np.random.default_rng(seed + today.year),
                                              today=today)
        hours["registration_id"] = [int(rows["registration_id"].iloc[r]) for r in hours["row"]]
        added = store.insert_hours(conn, hours, actor=actor, activity="synthetic")
        audit.record(conn, actor=actor, action="registrations.demo_hours", table="service_hours", row_key=territory,
                     after={"year": today.year, "entries": added})
    return added


__all__ = ["import_sheet", "register", "log_hours", "summary", "listing", "ensure_demo", "ensure_demo_hours",
           "DEMO_COUNT"]
