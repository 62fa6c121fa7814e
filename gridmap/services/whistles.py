"""The community's whistle (社区吹哨、部门报到): on an incident or a need the community names the
departments it calls and the deadlines; each acknowledges and then reports arrival (报到) in
time, or goes up (level 1: not acknowledged in time; level 2: not arrived in time) and counts
against it on its scorecard (response time, on-time share), shown in the dashboard. Each write is
one transaction with its audit entry, and its emergency's event when blown inside one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from gridmap import emergency as rules_of
from gridmap.errors import Invalid
from gridmap.services.profiles import of_territory
from gridmap.store import audit, territories
from gridmap.store import emergencies as emergency_store
from gridmap.store import incidents as incident_store
from gridmap.store import lists as list_store
from gridmap.store import whistles as store

LEVELS = {1: ("未按时响应", "not acknowledged in time"), 2: ("未按时报到", "not arrived in time")}


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(timezone.utc)


def blow(engine: sa.Engine, *, departments: list[str], actor: str, incident: str | None = None,
         need_id: int | None = None, note: str | None = None, ack_minutes: int | None = None,
         arrive_minutes: int | None = None, at: datetime | None = None, synthetic: bool = False,
         authorize: Callable[[str], None] | None = None) -> dict:
    """Blow the whistle on an incident (its public number) or a need: ``departments`` (codes) must
    acknowledge within ``ack_minutes`` and arrive within ``arrive_minutes`` (the profile's
    ``[emergency] whistle_ack_minutes`` / ``whistle_arrive_minutes`` by default). ``authorize``
    gets the community (the territory) it is blown in and may refuse."""
    at = _now(at)
    if (incident is None) == (need_id is None):
        raise Invalid("a whistle is blown on one incident or one need", "吹哨须针对一件事件或一项需求")
    codes = list(dict.fromkeys(departments or []))
    if not codes:
        raise Invalid("name the departments called", "请指明召集的部门")
    with engine.begin() as conn:
        if incident is not None:
            item = incident_store.get(conn, incident)
            territory, lon, lat, incident_id = item["community_code"], item["lon"], item["lat"], item["id"]
        else:
            territory = list_store.territory_of(conn, "need", need_id)
            lon, lat = list_store.need_place(conn, need_id) or (None, None)
            incident_id = None
        if authorize is not None:
            authorize(territory)
        rules = of_territory(conn, territory).emergency
        ids = store.department_ids(conn, codes)
        unknown = [c for c in codes if c not in ids]
        if unknown:
            raise Invalid(f"no department {', '.join(unknown)}", f"没有部门 {'、'.join(unknown)}")
        ack_due = at + timedelta(minutes=ack_minutes or rules.whistle_ack_minutes)
        arrive_due = at + timedelta(minutes=arrive_minutes or rules.whistle_arrive_minutes)
        if arrive_due < ack_due:
            raise Invalid("arrival cannot be due before the acknowledgement", "报到期限不能早于响应期限")
        emergency_id = emergency_store.on_at(conn, lon, lat) if lon is not None else None
        whistle_id = store.blow(conn, territory_id=territories.id_of(conn, territory), incident_id=incident_id,
                                need_id=need_id, emergency_id=emergency_id, note=note, actor=actor, at=at,
                                ack_due=ack_due, arrive_due=arrive_due, departments=[ids[c] for c in codes],
                                synthetic=synthetic)
        if emergency_id is not None:
            emergency_store.event(conn, emergency_id, at=at, actor=actor, kind="whistle",
                                  detail={"whistle_id": whistle_id, "departments": codes, "incident": incident,
                                          "need_id": need_id})
        audit.record(conn, actor=actor, action="whistle.blow", table="whistles", row_key=str(whistle_id),
                     after={"departments": codes, "incident": incident, "need_id": need_id,
                            "ack_due": ack_due.isoformat(), "arrive_due": arrive_due.isoformat()})
        return _shown(store.get(conn, whistle_id))


def answer(engine: sa.Engine, whistle_id: int, department: str, step: str, *, actor: str, at: datetime | None = None,
           authorize: Callable[[str, str], None] | None = None) -> dict:
    """A department acknowledges (``step="acknowledge"``) or reports arrival (``"arrive"``). Sent
    twice, the first time stands. ``authorize`` gets (territory, department) and may refuse."""
    at = _now(at)
    if step not in ("acknowledge", "arrive"):
        raise Invalid("the step is acknowledge or arrive", "步骤须为响应（acknowledge）或报到（arrive）")
    with engine.begin() as conn:
        current = store.get(conn, whistle_id, lock=True)
        if authorize is not None:
            authorize(current["territory"], department)
        if at < current["blown_at"]:
            raise Invalid("an answer cannot come before the whistle was blown", "响应时间早于吹哨时间")
        ids = store.department_ids(conn, [department])
        if department not in ids:
            raise Invalid(f"no department {department}", f"没有部门 {department}")
        new = store.answer(conn, whistle_id, ids[department], step=step, at=at, actor=actor)
        if new:
            closed = store.close_if_done(conn, whistle_id, at) if step == "arrive" else False
            if current["emergency_id"] is not None:
                emergency_store.event(conn, current["emergency_id"], at=at, actor=actor, kind=f"whistle_{step}",
                                      detail={"whistle_id": whistle_id, "department": department, "closed": closed})
            audit.record(conn, actor=actor, action=f"whistle.{step}", table="whistle_calls",
                         row_key=f"{whistle_id}/{department}", after={"at": at.isoformat()})
        return _shown(store.get(conn, whistle_id))


def sweep(engine: sa.Engine, *, now: datetime | None = None, actor: str = "supervision") -> list[dict]:
    """The whistle pass: a department not acknowledged by its deadline goes to level 1, not arrived
    by the arrival deadline to level 2 (one level a pass). What went up."""
    now = _now(now)
    changed = []
    with engine.begin() as conn:
        for r in store.late(conn, now).itertuples():
            # one level a pass; a department that acknowledged in time and is late only in arriving
            # goes straight to level 2 (it was never late to acknowledge)
            level = 2 if int(r.level) == 2 and r.acknowledged_in_time else min(int(r.level), int(r.escalation_level) + 1)
            if level <= r.escalation_level:
                continue
            store.escalate(conn, int(r.whistle_id), int(r.department_id), level, now)
            if not pd.isna(r.emergency_id):
                emergency_store.event(conn, int(r.emergency_id), at=now, actor=actor, kind="whistle_late",
                                      detail={"whistle_id": int(r.whistle_id), "department": r.department_code,
                                              "level": level, "zh": LEVELS[level][0], "en": LEVELS[level][1]})
            changed.append({"whistle_id": int(r.whistle_id), "department": r.department_code, "level": level})
        if changed:
            audit.record(conn, actor=actor, action="whistle.late", table="whistle_calls", row_key=None,
                         after={"escalated": changed})
    return changed


def scorecard_of(frame: pd.DataFrame, now: datetime) -> list[dict]:
    """Per department: calls, acknowledged and arrived (and how many of each in time), the median
    minutes to acknowledge and to arrive, the on-time share (arrived by the deadline, of the calls
    whose deadline has passed or that arrived), and the escalations."""
    if frame.empty:
        return []
    frame = frame.assign(
        ack_min=rules_of.minutes_between(frame["blown_at"], frame["acknowledged_at"]),
        arrive_min=rules_of.minutes_between(frame["blown_at"], frame["arrived_at"]),
        ack_on_time=pd.to_datetime(frame["acknowledged_at"], utc=True) <= pd.to_datetime(frame["ack_due"], utc=True),
        arrive_on_time=pd.to_datetime(frame["arrived_at"], utc=True) <= pd.to_datetime(frame["arrive_due"], utc=True),
        judged=frame["arrived_at"].notna() | (pd.to_datetime(frame["arrive_due"], utc=True) < pd.Timestamp(now)))
    out = []
    for (code, zh, en), group in frame.groupby(["department_code", "department", "department_en"]):
        judged = int(group["judged"].sum())
        out.append({"department_code": code, "department": zh, "department_en": en, "calls": len(group),
                    "acknowledged": int(group["acknowledged_at"].notna().sum()),
                    "acknowledged_on_time": int(group["ack_on_time"].sum()),
                    "arrived": int(group["arrived_at"].notna().sum()), "arrived_on_time": int(group["arrive_on_time"].sum()),
                    "median_ack_minutes": _median(group["ack_min"]), "median_arrive_minutes": _median(group["arrive_min"]),
                    "on_time_share": round(int(group["arrive_on_time"].sum()) / judged, 3) if judged else None,
                    "escalated": int((group["escalation_level"] > 0).sum())})
    return sorted(out, key=lambda d: d["department_code"])


def scorecard(engine: sa.Engine, territory: str, *, now: datetime | None = None) -> dict:
    with engine.connect() as conn:
        territories.get(conn, territory)
        frame = store.calls(conn, territory=territory)
    return {"territory": territory, "whistles": int(frame["whistle_id"].nunique()) if len(frame) else 0,
            "departments": scorecard_of(frame, _now(now))}


def summary_for_emergency(engine: sa.Engine, emergency_id: int) -> dict:
    with engine.connect() as conn:
        frame = store.calls(conn, emergency_id=emergency_id)
    return {"whistles": int(frame["whistle_id"].nunique()) if len(frame) else 0,
            "departments": scorecard_of(frame, datetime.now(timezone.utc))}


def get(engine: sa.Engine, whistle_id: int) -> dict:
    with engine.connect() as conn:
        return _shown(store.get(conn, whistle_id))


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if values.empty else round(float(values.median()), 1)


def _shown(row: dict) -> dict:
    iso = lambda v: v.isoformat() if isinstance(v, datetime) else v  # noqa: E731
    return {**{k: iso(v) for k, v in row.items() if k != "calls"},
            "calls": [{k: iso(v) for k, v in c.items()} for c in row["calls"]]}


__all__ = ["blow", "answer", "sweep", "scorecard", "scorecard_of", "summary_for_emergency", "get", "LEVELS"]
