"""The three lists (需求清单、资源清单、项目清单): needs raised and moved along, resources offered,
needs matched to resources, projects made of them, a need referred to the incident loop, sheets
imported all or nothing, and the counts per grid. Each write is one transaction with its audit
entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gridmap import lists
from gridmap.errors import Invalid
from gridmap.services.addresses import place_by_address
from gridmap.services.profiles import of_territory
from gridmap.sheets import SheetProblems, read_sheet
from gridmap.store import audit, plans, territories
from gridmap.store import lists as store

KINDS = {"needs": ("需求表", "needs sheet"), "resources": ("资源表", "resources sheet")}


def _plan(conn: sa.Connection, territory: str) -> int | None:
    found = plans.published_above(conn, territory)
    return found[1] if found else None


def _json(value):
    if isinstance(value, (pd.Timestamp, date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    return value


WHOLE = ("capacity", "projects")
"""Columns that are whole numbers although pandas reads them as floats when some are missing."""


def _row(row: dict) -> dict:
    """A row as JSON values; ids and counts that pandas read as floats (missing ones) as integers."""
    out = {}
    for key, value in row.items():
        value = _json(value)
        if isinstance(value, float) and value.is_integer() and (key.endswith("_id") or key in WHOLE):
            value = int(value)
        out[key] = value
    return out


def feature_collection(frame, id_column: str) -> dict:
    """A GeoDataFrame of points as a GeoJSON FeatureCollection (ids from ``id_column``; a row
    without a point has a null geometry), its values made JSON-able."""
    features = []
    for (_, row), geometry in zip(frame.drop(columns="geometry").iterrows(), frame.geometry):
        properties = _row(dict(row.items()))
        features.append({"type": "Feature", "id": properties.get(id_column),
                         "geometry": None if geometry is None or geometry.is_empty else
                         {"type": "Point", "coordinates": [round(geometry.x, 7), round(geometry.y, 7)]},
                         "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def _names(row: dict) -> dict:
    """A need's urgency and status (or a project's status) with their names in both languages."""
    out = dict(row)
    if "urgency" in out and out["urgency"] in lists.URGENCY:
        out["urgency_zh"], out["urgency_en"] = lists.URGENCY[out["urgency"]]
    table = lists.NEED_STATUS if "need_id" in out else lists.PROJECT_STATUS
    if out.get("status") in table:
        out["status_zh"], out["status_en"] = table[out["status"]]
    return out


# -- needs -------------------------------------------------------------------------------------------
def _placed(conn: sa.Connection, territory: str, item: dict) -> dict:
    """An item's place checked: in the territory; its community from the point (or the code)."""
    community = store.community_id(conn, item.get("community_code"), item.get("lon"), item.get("lat"))
    if item.get("lon") is None and community is None:
        raise lists.ListError("no place: give lon/lat or a community code of the territory",
                              "没有位置：请提供经纬度或本辖区的社区代码")
    if not store.within(conn, territory, community, item.get("lon"), item.get("lat")):
        raise lists.ListError(f"the place is outside territory {territory}", f"位置不在辖区 {territory} 内")
    return {**item, "community_id": community}


def create_need(engine: sa.Engine, territory: str, need: dict, *, actor: str) -> dict:
    """Record a need (``category, description``, optionally ``urgency, lon, lat, community_code,
    address, source, reported_by``); the category must be one of the territory's profile."""
    with engine.begin() as conn:
        return create_need_on(conn, territory, need, actor=actor)


def create_need_on(conn: sa.Connection, territory: str, need: dict, *, actor: str) -> dict:
    """:func:`create_need` inside the caller's transaction (a door-knock that found a need)."""
    row = territories.get(conn, territory)
    rules = of_territory(conn, territory).lists
    category = rules.category_of(need.get("category"))
    if category is None:
        raise lists.ListError(f"unknown category {need.get('category')!r} (one of {', '.join(rules.need_categories)})",
                              f"未知类别 {need.get('category')!r}（可用：{'、'.join(rules.need_categories)}）")
    urgency = lists.key_of(lists.URGENCY, need.get("urgency") or "normal")
    if urgency is None:
        raise lists.ListError(f"unknown urgency {need.get('urgency')!r} (one of {', '.join(lists.URGENCY)})",
                              f"未知紧急程度 {need.get('urgency')!r}")
    placed = _placed(conn, territory, {**need, "category": category, "urgency": urgency})
    need_id = store.insert_need(conn, row.id, placed, actor=actor)
    audit.record(conn, actor=actor, action="need.create", table="needs", row_key=str(need_id),
                 after={k: placed.get(k) for k in ("category", "urgency", "community_id", "source")})
    return _one_need(conn, territory, need_id)


def _one_need(conn: sa.Connection, territory: str, need_id: int, *, personal: bool = True) -> dict:
    frame = store.needs(conn, territory, _plan(conn, territory), need_id=need_id, personal=personal)
    feature = feature_collection(frame, "need_id")["features"][0]
    return {**feature, "properties": _names(feature["properties"])}


def need(engine: sa.Engine, need_id: int, *, personal: bool = False) -> dict:
    """One need as a GeoJSON Feature (who raised it only when ``personal``)."""
    with engine.connect() as conn:
        return _one_need(conn, store.territory_of(conn, "need", need_id), need_id, personal=personal)


def needs(engine: sa.Engine, territory: str, *, status: list[str] | None = None, grid: str | None = None,
          personal: bool = False) -> dict:
    """The territory's needs as a GeoJSON FeatureCollection (lon/lat; no point: geometry null; who
    raised each only when ``personal``)."""
    with engine.connect() as conn:
        territories.get(conn, territory)
        collection = feature_collection(store.needs(conn, territory, _plan(conn, territory), status=status, grid=grid,
                                                    personal=personal), "need_id")
    for feature in collection["features"]:
        feature["properties"] = _names(feature["properties"])
    return collection


def move_need(engine: sa.Engine, need_id: int, status: str, *, actor: str, note: str | None = None) -> dict:
    """Move a need to another status (the moves :data:`gridmap.lists.NEED_MOVES` allows); closing
    one needs a reason."""
    wanted = lists.key_of(lists.NEED_STATUS, status) or status
    if wanted == "closed" and not (note or "").strip():
        raise lists.ListError("closing a need without meeting it needs a reason (note)", "关闭未解决的需求须说明原因")
    if wanted in ("in_project", "referred"):
        raise lists.ListError(f"a need becomes {wanted} by its project or its incident, not by hand",
                              "需求通过立项或转为事件改变为该状态，不能直接修改")
    with engine.begin() as conn:
        territory = store.territory_of(conn, "need", need_id)
        before = store.set_need(conn, need_id, {})
        if before["status"] == "in_project":
            raise lists.ListError("a need in a project moves with its project (done: met; cancelled: open again)",
                                  "已立项的需求随项目变化（项目完成即解决，项目取消即重新待办）")
        lists.check_move(lists.NEED_MOVES, lists.NEED_STATUS, before["status"], wanted)
        store.set_need(conn, need_id, {"status": wanted, "status_note": note})
        audit.record(conn, actor=actor, action="need.status", table="needs", row_key=str(need_id),
                     before={"status": before["status"]}, after={"status": wanted, "note": note})
        return _one_need(conn, territory, need_id)


def matches(engine: sa.Engine, need_id: int, *, within_m: float | None = None) -> dict:
    """The resources that could meet a need, best first (:func:`gridmap.lists.rank_matches`)."""
    with engine.connect() as conn:
        territory = store.territory_of(conn, "need", need_id)
        rules = of_territory(conn, territory).lists
        radius = within_m or rules.match_within_m
        row = store.needs(conn, territory, None, need_id=need_id).iloc[0]
        community = store.community_id(conn, row["community_code"], None, None)
        candidates = store.candidates(conn, need_id, radius)
    ranked = lists.rank_matches({"category": row["category"], "community_id": community}, candidates, within_m=radius)
    return {"need_id": need_id, "category": row["category"], "within_m": radius,
            "resources": [_row({k: v for k, v in r.items() if k != "community_id"}) for r in ranked.to_dict("records")]}


def refer_to_incident(engine: sa.Engine, need_id: int, category_code: str, *, actor: str, calendar=None,
                      authorize=None) -> dict:
    """Turn a need into an incident of the incident loop (at its point, in the incident category
    given; ``authorize`` is the incident loop's own check of where the actor may report); the need
    is ``referred`` and names the incident. One transaction under the need's row lock: a second
    referral (a double click) waits and is then refused, and a failure or a crash leaves neither
    the mark nor the incident."""
    from gridmap.services import incidents

    with engine.begin() as conn:
        territory = store.territory_of(conn, "need", need_id)
        before = store.set_need(conn, need_id, {})  # locks the row
        row = store.needs(conn, territory, None, need_id=need_id).iloc[0]
        if row.geometry is None or row.geometry.is_empty:
            raise lists.ListError("a need without a point cannot become an incident: give it a place first",
                                  "没有具体位置的需求不能转为事件：请先补充位置")
        lists.check_move(lists.NEED_MOVES, lists.NEED_STATUS, before["status"], "referred")
        made = incidents.report_on(conn, incidents.Report(category_code=category_code, lon=row.geometry.x,
                                                          lat=row.geometry.y, description=row["description"],
                                                          address=row["address"], source="need"), actor=actor,
                                   calendar=calendar, authorize=authorize)
        store.set_need(conn, need_id, {"status": "referred", "incident_public_id": made["public_id"]})
        audit.record(conn, actor=actor, action="need.refer", table="needs", row_key=str(need_id),
                     before={"status": before["status"]}, after={"status": "referred", "incident": made["public_id"]})
        return _one_need(conn, territory, need_id)


# -- resources ---------------------------------------------------------------------------------------
def save_resource(engine: sa.Engine, territory: str, resource: dict, *, actor: str) -> dict:
    """Add a resource, or bring the one of that name up to date (``name, kind, categories``,
    optionally ``description, capacity, hours, contact, address, lon, lat, community_code``)."""
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        rules = of_territory(conn, territory).lists
        kind = lists.key_of(lists.RESOURCE_KINDS, resource.get("kind"))
        if kind is None:
            raise lists.ListError(f"unknown kind {resource.get('kind')!r} (one of {', '.join(lists.RESOURCE_KINDS)})",
                                  f"未知资源类型 {resource.get('kind')!r}")
        categories = [rules.category_of(c) for c in resource.get("categories") or []]
        if not categories or None in categories:
            raise lists.ListError(f"categories must be some of {', '.join(rules.need_categories)}",
                                  f"服务类别须为以下之一：{'、'.join(rules.need_categories)}")
        placed = _placed(conn, territory, {**resource, "kind": kind, "categories": list(dict.fromkeys(categories))})
        resource_id, new = store.upsert_resource(conn, row.id, placed, actor=actor)
        audit.record(conn, actor=actor, action="resource.create" if new else "resource.update", table="resources",
                     row_key=str(resource_id), after={k: placed.get(k) for k in ("name", "kind", "categories", "capacity")})
        frame = store.resources(conn, territory, _plan(conn, territory), resource_id=resource_id, personal=True)
    return feature_collection(frame, "resource_id")["features"][0]


def resources(engine: sa.Engine, territory: str, *, personal: bool = False) -> dict:
    """The territory's resources as GeoJSON (the contacts only when ``personal``)."""
    with engine.connect() as conn:
        territories.get(conn, territory)
        collection = feature_collection(store.resources(conn, territory, _plan(conn, territory), personal=personal),
                                        "resource_id")
    for feature in collection["features"]:
        kind = feature["properties"]["kind"]
        feature["properties"]["kind_zh"], feature["properties"]["kind_en"] = lists.RESOURCE_KINDS[kind]
    return collection


def set_resource_active(engine: sa.Engine, resource_id: int, active: bool, *, actor: str) -> None:
    """Take a resource off the list (it is no longer offered for needs), or back."""
    with engine.begin() as conn:
        was = store.set_resource_active(conn, resource_id, active)
        audit.record(conn, actor=actor, action="resource.active", table="resources", row_key=str(resource_id),
                     before={"active": was}, after={"active": active})


# -- projects ----------------------------------------------------------------------------------------
def create_project(engine: sa.Engine, territory: str, project: dict, *, actor: str) -> dict:
    """A project taking needs (open or matched: they become ``in_project``) with resources, all of
    the territory; ``name`` required, ``owner, budget, start_date, end_date`` optional."""
    need_ids = sorted(set(project.get("need_ids") or []))
    resource_ids = sorted(set(project.get("resource_ids") or []))
    if not (project.get("name") or "").strip():
        raise lists.ListError("a project needs a name", "项目须有名称")
    if project.get("start_date") and project.get("end_date") and project["end_date"] < project["start_date"]:
        raise lists.ListError("a project cannot end before it starts", "项目结束日期不能早于开始日期")
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        for kind, ids, zh in (("need", need_ids, "需求"), ("resource", resource_ids, "资源")):
            outside = sorted(set(ids) - store.items_in(conn, kind, ids, territory))
            if outside:
                raise lists.ListError(f"{kind}s {', '.join(map(str, outside))} are not of territory {territory}",
                                      f"{zh} {'、'.join(map(str, outside))} 不属于辖区 {territory}")
        project_id = store.insert_project(conn, row.id, project, actor=actor)
        for need_id in need_ids:
            before = store.set_need(conn, need_id, {})  # locks the row: two projects cannot take it at once
            if before["status"] not in ("open", "matched"):
                raise lists.ListError(f"need {need_id} is {before['status']}: a project takes open or matched needs",
                                      f"需求 {need_id} 为“{lists.NEED_STATUS[before['status']][0]}”：项目只能纳入待办或已匹配的需求")
            store.set_need(conn, need_id, {"status": "in_project", "project_id": project_id})
        store.link_project(conn, project_id, need_ids, resource_ids)
        audit.record(conn, actor=actor, action="project.create", table="projects", row_key=str(project_id),
                     after={"name": project["name"], "needs": need_ids, "resources": resource_ids,
                            "budget": None if project.get("budget") is None else float(project["budget"])})
        return _project(conn, territory, project_id)


def _project(conn: sa.Connection, territory: str, project_id: int) -> dict:
    row = store.projects(conn, territory, project_id=project_id).to_dict("records")[0]
    return _names(_row(row))


def update_project(engine: sa.Engine, project_id: int, changes: dict, *, actor: str) -> dict:
    """Change a project (status along :data:`gridmap.lists.PROJECT_MOVES`, outcome, owner, budget,
    dates). Done (with its outcome): its needs still in it are met; cancelled: they open again."""
    changes = {k: v for k, v in changes.items() if v is not None or k not in ("status", "outcome")}
    with engine.begin() as conn:
        territory = store.territory_of(conn, "project", project_id)
        before = store.set_project(conn, project_id, {})
        if "status" in changes:
            changes["status"] = lists.key_of(lists.PROJECT_STATUS, changes["status"]) or changes["status"]
            lists.check_move(lists.PROJECT_MOVES, lists.PROJECT_STATUS, before["status"], changes["status"])
            if changes["status"] == "done" and not (changes.get("outcome") or before["outcome"]):
                raise lists.ListError("a finished project needs its outcome", "项目完成时须填写成效")
        start, end = changes.get("start_date", before["start_date"]), changes.get("end_date", before["end_date"])
        if start and end and end < start:
            raise lists.ListError("a project cannot end before it starts", "项目结束日期不能早于开始日期")
        store.set_project(conn, project_id, changes)
        follow = {"done": "met", "cancelled": "open"}.get(changes.get("status"))
        released = store.release_needs(conn, project_id, follow) if follow else 0
        audit.record(conn, actor=actor, action="project.update", table="projects", row_key=str(project_id),
                     before={k: _json(before[k]) for k in changes if k in before},
                     after={**{k: _json(v) for k, v in changes.items()}, **({"needs": released} if follow else {})})
        return _project(conn, territory, project_id)


def projects(engine: sa.Engine, territory: str) -> list[dict]:
    with engine.connect() as conn:
        territories.get(conn, territory)
        return [_names(_row(r)) for r in store.projects(conn, territory).to_dict("records")]


# -- counts ------------------------------------------------------------------------------------------
def summary(engine: sa.Engine, territory: str) -> dict:
    """Per published grid: open needs, urgent ones, active resources, projects by status; with the
    territory's totals (needs known only by their community included) and its categories."""
    with engine.connect() as conn:
        territories.get(conn, territory)
        rules = of_territory(conn, territory).lists
        plan_id = _plan(conn, territory)
        frame = store.grid_counts(conn, territory, plan_id) if plan_id else pd.DataFrame(
            columns=["grid_code", "open_needs", "urgent_needs", "resources", "projects"])
        needs_by_status = store.need_statuses(conn, territory)
        totals = store.totals(conn, territory)  # with the needs placed only by their community
    grids = [{"grid_code": r["grid_code"], "open_needs": int(r["open_needs"]), "urgent_needs": int(r["urgent_needs"]),
              "resources": int(r["resources"]), "projects": dict(r["projects"] or {})} for r in frame.to_dict("records")]
    return {"territory": territory, "categories": rules.names(), "needs_by_status": needs_by_status,
            "totals": totals,
            "grids": grids}


# -- sheets ------------------------------------------------------------------------------------------
def import_sheet(engine: sa.Engine, territory: str, kind: str, path: str | Path, *, actor: str,
                 encoding: str | None = None, crs: str | None = None, check: bool = False) -> dict:
    """Take a needs or resources sheet (CSV in UTF-8 or GBK, or .xlsx; Chinese headers: see
    :data:`gridmap.lists.NEED_COLUMNS`, :data:`gridmap.lists.RESOURCE_COLUMNS`). Each row's place
    is its 经度/纬度 (CGCS2000, or GCJ-02 with ``crs="gcj02"``), else its 地址 (a building of the
    territory), else its 社区代码. Every problem of every row is reported and nothing is stored;
    ``check`` stores nothing anyway. Resources are found again by name, so the same sheet taken
    twice adds nothing; needs are added."""
    if kind not in KINDS:
        raise Invalid(f"a list sheet is needs or resources, not {kind!r}", f"清单表须为需求或资源，而不是 {kind!r}")
    frame = read_sheet(path, encoding=encoding)
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        rules = of_territory(conn, territory).lists
        items, problems = (lists.need_rows if kind == "needs" else lists.resource_rows)(frame, rules)
        if crs and crs.lower().replace("-", "") == "gcj02":
            _from_gcj02(items)
        elif crs and crs not in ("4490", "EPSG:4490", "4326", "EPSG:4326"):
            raise Invalid(f"coordinates of a list sheet are CGCS2000 (4490) or GCJ-02 (gcj02), not {crs}",
                          f"清单表的坐标须为 CGCS2000（4490）或 GCJ-02（gcj02），而不是 {crs}")
        items = place_by_address(conn, territory, items, problems)
        for item in items:
            try:
                item.update(_placed(conn, territory, item))
            except lists.ListError as exc:
                problems.append({"row": item["row"], "en": exc.en, "zh": exc.zh})
        if kind == "resources":
            names = pd.Series([i["name"] for i in items])
            for name in names[names.duplicated()].unique():
                rows = ", ".join(str(i["row"]) for i in items if i["name"] == name)
                problems.append({"row": min(i["row"] for i in items if i["name"] == name),
                                 "en": f"resource {name} is on rows {rows}", "zh": f"资源 {name} 重复出现在第 {rows} 行"})
        if problems:
            raise SheetProblems.of(problems, KINDS[kind])
        done = {"territory": territory, "kind": kind, "rows": len(items), "added": 0, "updated": 0, "file": Path(path).name}
        if check:
            return {**done, "checked_only": True}
        for item in items:
            if kind == "needs":
                store.insert_need(conn, row.id, item, actor=actor)
                done["added"] += 1
            else:
                _id, new = store.upsert_resource(conn, row.id, item, actor=actor)
                done["added" if new else "updated"] += 1
        audit.record(conn, actor=actor, action=f"{kind}.import", table=kind, row_key=territory, after=done)
    return done


def _from_gcj02(items: list[dict]) -> None:
    from gridmap.geo.crs import gcj02_to_wgs84

    placed = [i for i in items if i["lon"] is not None]
    if placed:
        lon, lat = gcj02_to_wgs84(np.array([i["lon"] for i in placed]), np.array([i["lat"] for i in placed]))
        for item, x, y in zip(placed, lon, lat):
            item["lon"], item["lat"] = float(x), float(y)


__all__ = ["create_need", "need", "needs", "move_need", "matches", "refer_to_incident", "save_resource", "resources",
           "set_resource_active", "create_project", "update_project", "projects", "summary", "import_sheet"]
