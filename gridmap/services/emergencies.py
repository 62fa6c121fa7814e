"""Emergency mode (平战结合, 平急转换): an administrator switches a territory, or some of its streets,
communities or grids, into emergency mode of a kind and back; in between grid workers check in,
each grid carries its status, missed check-ins go up to the community and the street, the board
shows it all, and everything is logged for the event's report. Each write is one transaction with
its event and audit entry: what was acknowledged was stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from gridmap import emergency as rules_of
from gridmap.emergency import CHECKIN_LEVELS, GRID_STATUS, EmergencyError
from gridmap.errors import Invalid, NotFound, StateConflict
from gridmap.services.profiles import of_territory
from gridmap.store import audit, plans, territories
from gridmap.store import emergencies as store


CLOCK_SKEW = timedelta(minutes=5)
"""A phone's clock may run this far ahead; a time further in the future is refused."""


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(timezone.utc)


def city_zone():
    """The city's time zone (``GRIDMAP_TIMEZONE``, as the incident loop's calendar has it)."""
    from gridmap.services.incidents import calendar_from_env

    return calendar_from_env().zone


def start(engine: sa.Engine, territory: str, *, kind: str, reason: str, actor: str, streets: list[str] | None = None,
          communities: list[str] | None = None, grids: list[str] | None = None, polygon: dict | None = None,
          at: datetime | None = None, synthetic: bool = False) -> dict:
    """Switch ``territory`` (or the streets, communities, grids or drawn polygon given, within it)
    into emergency mode of ``kind`` (one of the profile's ``[emergency] kinds``) for ``reason``,
    from ``at`` (now; earlier when it began before it was entered); grid workers must check in
    within the profile's ``checkin_minutes`` of it."""
    at = _now(at)
    if not (reason or "").strip():
        raise EmergencyError("an emergency needs its reason", "启动应急须说明原因")
    if at > datetime.now(timezone.utc) + CLOCK_SKEW:
        raise Invalid("an emergency cannot start in the future", "应急启动时间不能晚于现在")
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        rules = of_territory(conn, territory).emergency
        kind = rules.kind_of(kind)
        found = plans.published_above(conn, territory)
        if found is None:
            raise Invalid(f"territory {territory} has no published plan: an emergency is run on its grids",
                          f"辖区 {territory} 尚无已发布方案：应急按网格开展")
        places = [*(streets or []), *(communities or [])]
        inside = set(territories.codes_within(conn, territory, places))
        outside = sorted(set(places) - inside)
        if outside:
            raise Invalid(f"{', '.join(outside)} are not streets or communities of territory {territory}",
                          f"{'、'.join(outside)} 不是辖区 {territory} 的街道或社区")
        missing = sorted(set(grids or []) - plans.grids_within(conn, found[1], territory, list(grids or [])))
        if missing:
            raise Invalid(f"{', '.join(missing)} are not published grids of territory {territory}",
                          f"{'、'.join(missing)} 不是辖区 {territory} 已发布的网格")
        scope = {"territories": places, "grids": list(grids or []), **({"polygon": polygon} if polygon else {})}
        due = at + timedelta(minutes=rules.checkin_minutes)
        emergency_id = store.start(conn, territory, row.id, found[1], kind=kind, reason=reason.strip(), scope=scope,
                                   started_at=at, checkin_due=due, actor=actor, synthetic=synthetic)
        codes = store.grid_codes(conn, emergency_id)
        if not codes:
            raise Invalid("no published grid lies in the area chosen", "所选范围内没有已发布的网格")
        store.event(conn, emergency_id, at=at, actor=actor, kind="start",
                    detail={"kind": kind, "reason": reason.strip(), "scope": scope, "grids": len(codes),
                            "checkin_due": due.isoformat()})
        audit.record(conn, actor=actor, action="emergency.start", table="emergencies", row_key=str(emergency_id),
                     after={"territory": territory, "kind": kind, "reason": reason.strip(), "grids": len(codes),
                            "scope": scope})
        return {**shown(store.get(conn, emergency_id)), "grids": codes}


def end(engine: sa.Engine, emergency_id: int, *, actor: str, note: str | None = None, at: datetime | None = None) -> dict:
    """Switch back to peacetime; the emergency's log is closed and its report can be read."""
    at = _now(at)
    with engine.begin() as conn:
        current = store.get(conn, emergency_id, lock=True)
        if current["ended_at"] is not None:
            raise StateConflict(f"emergency {emergency_id} ended at {current['ended_at'].isoformat()}",
                                f"应急事件 {emergency_id} 已于 {current['ended_at'].isoformat()} 结束")
        at = max(at, current["started_at"])
        store.end(conn, emergency_id, at=at, actor=actor, note=note)
        store.event(conn, emergency_id, at=at, actor=actor, kind="end", detail={"note": note})
        audit.record(conn, actor=actor, action="emergency.end", table="emergencies", row_key=str(emergency_id),
                     after={"note": note})
        return shown(store.get(conn, emergency_id))


def _on(current: dict) -> None:
    if current["ended_at"] is not None:
        raise StateConflict(f"emergency {current['id']} has ended", f"应急事件 {current['id']} 已结束")


def check_in(engine: sa.Engine, emergency_id: int, *, user_id: int | None, walker: str, client_id: str,
             grid_code: str | None = None, lon: float | None = None, lat: float | None = None, on_duty: bool = True,
             note: str | None = None, at: datetime | None = None,
             authorize: Callable[[dict[str, str]], None] | None = None, zone=None) -> dict:
    """A grid worker's check-in (on duty, where they are): for the grid named, else the
    emergency's grids their staff assignments hold, else the grid where they stand. ``authorize``
    gets {grid: community} before anything is stored and may refuse. Sent again with the same
    ``client_id`` (the phone retrying), it is kept once."""
    now = datetime.now(timezone.utc)
    at = _now(at)
    if at > now + CLOCK_SKEW:
        raise Invalid(f"a check-in at {at.isoformat()} is in the future", f"签到时间 {at.isoformat()} 晚于现在")
    with engine.begin() as conn:
        current = store.get(conn, emergency_id, share=True)  # the end waits for it, or it sees the end
        if at < current["started_at"]:
            raise Invalid("a check-in cannot come before the emergency began", "签到时间早于应急启动时间")
        if current["ended_at"] is not None and at > current["ended_at"]:  # (one made during it, sent later, counts)
            raise StateConflict(f"emergency {emergency_id} has ended", f"应急事件 {emergency_id} 已结束")
        if grid_code:
            grids = [grid_code]
        else:
            day = at.astimezone(zone or city_zone()).date()
            grids = store.assigned_grids(conn, emergency_id, user_id, day) if user_id else []
            if not grids and lon is not None and lat is not None:
                here = store.grid_at(conn, emergency_id, lon, lat)
                grids = [here] if here else []
        if not grids:
            raise Invalid("name the grid: you hold none of this emergency's grids and stand in none of them",
                          "请指明网格：你不负责本次应急范围内的网格，也不在其中")
        communities = store.grid_communities(conn, emergency_id, grids)
        unknown = sorted(set(grids) - set(communities))
        if unknown:
            raise NotFound(f"grid {', '.join(unknown)} is not in emergency {emergency_id}",
                           f"网格 {'、'.join(unknown)} 不在应急事件 {emergency_id} 范围内")
        if authorize is not None:
            authorize(communities)
        done = store.check_in(conn, emergency_id, grids, user_id=user_id, walker=walker, at=at, on_duty=on_duty,
                              note=note, client_id=client_id, lon=lon, lat=lat)
        for item in done:
            if item["stored"]:
                store.event(conn, emergency_id, at=at, actor=walker, kind="checkin", grid_code=item["grid_code"],
                            detail={"on_duty": on_duty, "lon": lon, "lat": lat, "note": note})
        if any(item["stored"] for item in done):
            audit.record(conn, actor=walker, action="emergency.checkin", table="emergency_checkins",
                         row_key=str(emergency_id), after={"grids": [i["grid_code"] for i in done if i["stored"]],
                                                           "at": at.isoformat(), "on_duty": on_duty})
    due = current["checkin_due"]
    return {"emergency_id": emergency_id, "checkin_due": due.isoformat(), "at": at.isoformat(),
            "grids": [{**item, "first_check_in": item["first_check_in"].isoformat() if item["first_check_in"] else None,
                       "late": bool(item["first_check_in"] and item["first_check_in"] > due)} for item in done]}


def set_status(engine: sa.Engine, emergency_id: int, grid_code: str, status: str, *, actor: str,
               note: str | None = None, at: datetime | None = None,
               authorize: Callable[[dict[str, str]], None] | None = None) -> dict:
    """A grid's status as its worker reports it (normal, affected, needs support, cleared)."""
    at = _now(at)
    key = rules_of.key_of(GRID_STATUS, status, ("网格状态", "grid status"))
    with engine.begin() as conn:
        current = store.get(conn, emergency_id, share=True)
        _on(current)
        communities = store.grid_communities(conn, emergency_id, [grid_code])
        if not communities:
            raise NotFound(f"grid {grid_code} is not in emergency {emergency_id}",
                           f"网格 {grid_code} 不在应急事件 {emergency_id} 范围内")
        if authorize is not None:
            authorize(communities)
        before = store.set_status(conn, emergency_id, grid_code, status=key, at=at, actor=actor, note=note)
        store.event(conn, emergency_id, at=at, actor=actor, kind="status", grid_code=grid_code,
                    detail={"from": before, "to": key, "note": note})
        audit.record(conn, actor=actor, action="emergency.status", table="emergency_grids",
                     row_key=f"{emergency_id}/{grid_code}", before={"status": before}, after={"status": key, "note": note})
    return {"emergency_id": emergency_id, "grid_code": grid_code, "status": key, "from": before, "at": at.isoformat(),
            **dict(zip(("status_zh", "status_en"), GRID_STATUS[key]))}


def sweep(engine: sa.Engine, *, now: datetime | None = None, actor: str = "supervision") -> list[dict]:
    """The emergency pass (every minute while an emergency is on): a grid without a check-in at the
    deadline goes to its community, and ``street_after_minutes`` later to its street; one level a
    pass at most. What went up."""
    now = _now(now)
    changed = []
    with engine.begin() as conn:
        rows = store.missing_checkins(conn, now)
        profiles: dict[int, rules_of.EmergencyRules] = {}
        for r in rows.itertuples():
            if r.emergency_id not in profiles:
                profiles[r.emergency_id] = of_territory(conn, store.get(conn, int(r.emergency_id))["territory"]).emergency
            checked = None if pd.isna(r.checked_in_at) else pd.Timestamp(r.checked_in_at).to_pydatetime()
            level = rules_of.checkin_level(pd.Timestamp(r.checkin_due).to_pydatetime(), checked, now,
                                           profiles[r.emergency_id])
            level = min(level, int(r.escalation_level) + 1)
            if level <= r.escalation_level:
                continue
            store.escalate_checkin(conn, int(r.emergency_id), r.grid_code, level, now)
            told = r.community_code if level == 1 else r.street_code
            store.event(conn, int(r.emergency_id), at=now, actor=actor, kind="checkin_missed", grid_code=r.grid_code,
                        detail={"level": level, "to": told, "to_zh": CHECKIN_LEVELS[level][0],
                                "to_en": CHECKIN_LEVELS[level][1]})
            changed.append({"emergency_id": int(r.emergency_id), "grid_code": r.grid_code, "level": level, "to": told})
        if changed:
            audit.record(conn, actor=actor, action="emergency.checkin_missed", table="emergency_grids", row_key=None,
                         after={"escalated": changed})
    return changed


def _iso(value) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def board(engine: sa.Engine, emergency_id: int, *, now: datetime | None = None) -> dict:
    """The emergency board: per grid its status, check-in (on time, late, missing), escalation,
    last position, open incidents, focus households, resources near it and door-knock progress;
    with the totals."""
    now = _now(now)
    with engine.connect() as conn:
        current = store.get(conn, emergency_id)
        profile = of_territory(conn, current["territory"])
        frame = store.board(conn, emergency_id, focus_tags=list(profile.households.focus_tags),
                            near_m=profile.lists.match_within_m)
    due = current["checkin_due"]
    grids = []
    for r in frame.to_dict("records"):
        checked = None if pd.isna(r["checked_in_at"]) else pd.Timestamp(r["checked_in_at"])
        checkin = "on_time" if checked is not None and checked <= due else "late" if checked is not None else \
            "missing" if now > due else "waiting"
        grids.append({"grid_code": r["grid_code"], "community_code": r["community_code"], "community": r["community"],
                      "status": r["status"], "status_zh": GRID_STATUS[r["status"]][0],
                      "status_en": GRID_STATUS[r["status"]][1], "status_at": _iso(r["status_at"]),
                      "status_by": r["status_by"], "status_note": r["status_note"],
                      "checked_in_at": _iso(checked), "checked_in_by": r["checked_in_by"], "checkin": checkin,
                      "escalation_level": int(r["escalation_level"]),
                      "position": None if pd.isna(r["lon"]) else [float(r["lon"]), float(r["lat"])],
                      "open_incidents": int(r["open_incidents"]), "emergency_incidents": int(r["emergency_incidents"]),
                      "overdue_incidents": int(r["overdue_incidents"]), "focus_households": int(r["focus_households"]),
                      "resources": int(r["resources"]), "households": int(r["households"] or 0),
                      "knock_targets": None if pd.isna(r["targets"]) else int(r["targets"]),
                      "knock_reached": None if pd.isna(r["reached"]) else int(r["reached"])})
    count = lambda key, value: sum(g[key] == value for g in grids)  # noqa: E731
    totals = {"grids": len(grids), **{f"checkin_{k}": count("checkin", k) for k in ("on_time", "late", "missing", "waiting")},
              **{f"status_{k}": count("status", k) for k in GRID_STATUS},
              "escalated_community": count("escalation_level", 1), "escalated_street": count("escalation_level", 2),
              "open_incidents": sum(g["open_incidents"] for g in grids),
              "focus_households": sum(g["focus_households"] for g in grids)}
    return {"emergency": shown(current), "now": now.isoformat(), "totals": totals, "grids": grids,
            "statuses": [{"status": k, "status_zh": zh, "status_en": en} for k, (zh, en) in GRID_STATUS.items()]}


def shown(current: dict) -> dict:
    """An emergency's row for the wire: times in ISO 8601, the kind's English name."""
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in current.items()}
    out["kind_en"] = rules_of.KIND_EN.get(current["kind"], current["kind"])
    return out


def listing(engine: sa.Engine, territory: str) -> list[dict]:
    with engine.connect() as conn:
        territories.get(conn, territory)
        return [shown(r) for r in store.listing(conn, territory)]


def get(engine: sa.Engine, emergency_id: int) -> dict:
    with engine.connect() as conn:
        return {**shown(store.get(conn, emergency_id)), "grids": store.grid_codes(conn, emergency_id)}


def resources_near(engine: sa.Engine, emergency_id: int, grid_code: str) -> dict:
    """The active resources near one of the emergency's grids (within the profile's ``[lists]
    match_within_m``), nearest first, with the kind's names."""
    from gridmap.lists import RESOURCE_KINDS

    with engine.connect() as conn:
        current = store.get(conn, emergency_id)
        if grid_code not in store.grid_communities(conn, emergency_id, [grid_code]):
            raise NotFound(f"grid {grid_code} is not in emergency {emergency_id}",
                           f"网格 {grid_code} 不在应急事件 {emergency_id} 范围内")
        near = of_territory(conn, current["territory"]).lists.match_within_m
        rows = store.resources_near(conn, emergency_id, grid_code, near)
    return {"grid_code": grid_code, "within_m": near,
            "resources": [{**r, "kind_zh": RESOURCE_KINDS.get(r["kind"], (r["kind"], r["kind"]))[0],
                           "kind_en": RESOURCE_KINDS.get(r["kind"], (r["kind"], r["kind"]))[1]} for r in rows]}


def map_of(engine: sa.Engine, emergency_id: int) -> dict:
    """The emergency's area and grids as GeoJSON (for the board's map)."""
    with engine.connect() as conn:
        store.get(conn, emergency_id)
        grids, area = store.grid_geometries(conn, emergency_id)
    return {"type": "FeatureCollection", "area": json.loads(area) if area else None,
            "features": [{"type": "Feature", "id": code, "geometry": json.loads(geom),
                          "properties": {"grid_code": code}} for code, geom in grids]}


def report(engine: sa.Engine, emergency_id: int) -> dict:
    """The event's report: its timeline, each grid's check-in (minutes after the switch, on time or
    not, how far a miss went), incidents and response times by department, grids by status over
    time, households reached by the door-knocks, and the whistles blown."""
    from gridmap.services import whistles

    with engine.connect() as conn:
        current = store.get(conn, emergency_id)
        events = store.events(conn, emergency_id)
        grid_frame = store.grid_rows(conn, emergency_id)
        incidents = store.incidents_in(conn, emergency_id)
        reached = store.households_reached(conn, emergency_id)
    start_at, end_at = current["started_at"], current["ended_at"] or datetime.now(timezone.utc)
    due = current["checkin_due"]
    minutes = rules_of.minutes_between(pd.Series([start_at] * len(grid_frame)), grid_frame["checked_in_at"])
    checkins = [{"grid_code": r.grid_code, "community_code": r.community_code,
                 "checked_in_at": _iso(r.checked_in_at), "checked_in_by": r.checked_in_by,
                 "minutes_after_start": None if pd.isna(m) else round(float(m), 1),
                 "on_time": bool(not pd.isna(r.checked_in_at) and pd.Timestamp(r.checked_in_at) <= due),
                 "escalation_level": int(r.escalation_level)} for r, m in zip(grid_frame.itertuples(), minutes)]
    by_department = []
    if len(incidents):
        incidents = incidents.assign(
            response_min=rules_of.minutes_between(incidents["reported_at"], incidents["responded_at"]),
            close_min=rules_of.minutes_between(incidents["reported_at"], incidents["closed_at"]))
        for (code, zh, en), group in incidents.groupby(["department_code", "department", "department_en"], dropna=False):
            by_department.append({"department_code": code, "department": zh, "department_en": en,
                                  "incidents": len(group), "emergency_incidents": int(group["emergency_category"].sum()),
                                  "responded": int(group["responded_at"].notna().sum()),
                                  "closed": int(group["closed_at"].notna().sum()),
                                  "median_response_minutes": _median(group["response_min"]),
                                  "median_close_minutes": _median(group["close_min"])})
    changes = events[events["kind"] == "status"].assign(
        status=lambda f: [d["to"] for d in f["detail"]]) if len(events) else pd.DataFrame(columns=["grid_code", "status", "at"])
    step = max(timedelta(minutes=10), (end_at - start_at) / 12)
    timeline = [{"at": pd.Timestamp(e.at).isoformat(), "actor": e.actor, "kind": e.kind, "grid_code": e.grid_code,
                 "detail": e.detail} for e in events.itertuples()]
    on_time = sum(c["on_time"] for c in checkins)
    return {"emergency": shown(current), "duration_minutes": round((end_at - start_at).total_seconds() / 60, 1),
            "ended": current["ended_at"] is not None,
            "checkins": {"grids": len(checkins), "on_time": on_time,
                         "late": sum(c["checked_in_at"] is not None and not c["on_time"] for c in checkins),
                         "missing": sum(c["checked_in_at"] is None for c in checkins),
                         "escalated_community": sum(c["escalation_level"] >= 1 for c in checkins),
                         "escalated_street": sum(c["escalation_level"] >= 2 for c in checkins),
                         "per_grid": checkins},
            "incidents": {"total": len(incidents), "emergency": int(incidents["emergency_category"].sum()) if len(incidents) else 0,
                          "by_department": by_department},
            "statuses_over_time": rules_of.status_timeline(changes[["grid_code", "status", "at"]],
                                                           list(grid_frame["grid_code"]), start_at, end_at, step),
            "households": reached,
            "whistles": whistles.summary_for_emergency(engine, emergency_id),
            "timeline": timeline}


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if values.empty else round(float(values.median()), 1)


def on_at(engine: sa.Engine, lon: float, lat: float, at: datetime | None = None) -> int | None:
    with engine.connect() as conn:
        return store.on_at(conn, lon, lat, at)


def any_on(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return store.any_on(conn)


__all__ = ["resources_near", "shown", "start", "end", "check_in", "set_status", "sweep", "board", "listing", "get", "map_of", "report", "on_at",
           "any_on"]
