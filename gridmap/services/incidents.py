"""The incident loop as operations: report (route, time limit, duplicate candidates), move through
the workflow, and the periodic supervision pass that escalates overdue cases a level at a time.

Each operation is one transaction: a report that cannot be routed stores nothing; a transition
that the workflow forbids changes nothing and says why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.patrols import REPORT_GRACE
from gridmap.incident_rules import (
    EMERGENCY_UNIT,
    FINAL_STATES,
    STATE_NAMES,
    TransitionError,
    WorkCalendar,
    default_categories,
    next_state,
    public_holiday_calendar,
)
from gridmap.geo import routing
from gridmap.service_attributes import check_answers
from gridmap.store import audit
from gridmap.store import emergencies as emergency_store
from gridmap.store import incident_partitions as partitions
from gridmap.store import incidents as store
from gridmap.store import territories

DUPLICATE_RADIUS_M = 250.0
ESCALATION_LEVELS = ("", "督办 supervised", "街道 street", "区 district", "市 city")
MAX_LEVEL = len(ESCALATION_LEVELS) - 1
EMERGENCY_STEP = timedelta(minutes=1)
"""An overdue case of an emergency category goes up a level every minute (not every day)."""


class ReportError(Invalid):
    """A report that cannot be accepted (unknown category, a point outside every published grid ...),
    said in English and Chinese."""


def calendar_from_env(env: dict[str, str] | None = None) -> WorkCalendar:
    """The working calendar of time limits: the public holidays of GRIDMAP_HOLIDAYS (default CN:
    China's, with 调休, from chinesecalendar; another ISO country code: from ``holidays``; "none":
    Monday-Friday only), then the GRIDMAP_CALENDAR JSON file over it (see WorkCalendar.from_dict:
    other hours, extra holidays, a year the data does not have yet); GRIDMAP_TIMEZONE sets the zone."""
    env = dict(os.environ if env is None else env)
    data: dict = {}
    if env.get("GRIDMAP_CALENDAR"):
        data = json.loads(Path(env["GRIDMAP_CALENDAR"]).read_text(encoding="utf-8"))
    if env.get("GRIDMAP_TIMEZONE"):
        data["timezone"] = env["GRIDMAP_TIMEZONE"]
    base = public_holiday_calendar(env.get("GRIDMAP_HOLIDAYS", "CN"), data.get("timezone", "Asia/Shanghai"))
    return WorkCalendar.from_dict(data, base=base)


def ensure_categories(engine: sa.Engine, *, reload: bool = False) -> int:
    """Load the shipped category table (with each category's questions) into the database if it has
    none, or again when ``reload`` (after the tables were edited); shipped categories it lacks (new
    in this version: the emergency ones) are added, those it has are left as edited. Returns how
    many there are."""
    with engine.begin() as conn:
        shipped = default_categories()
        if reload or not store.categories(conn):
            store.sync_categories(conn, shipped)
        else:
            known = store.category_codes(conn)
            store.sync_categories(conn, [c for c in shipped if c.code not in known])
        return len(store.categories(conn))


@dataclass
class Report:
    """What a reporter sends: category, where (lon/lat in EPSG:4490/WGS84), what, and who."""

    category_code: str
    lon: float
    lat: float
    description: str | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None
    reporter_role: str | None = None
    photo_urls: list[str] = field(default_factory=list)
    address: str | None = None
    source: str = "api"
    reported_at: datetime | None = None
    attributes: dict = field(default_factory=dict)
    """Answers to the category's questions, by question code (a list for a multi-value question)."""


def report(engine: sa.Engine, item: Report, *, actor: str, calendar: WorkCalendar | None = None,
           radius_m: float = DUPLICATE_RADIUS_M, synthetic: bool = False,
           authorize: Callable[[sa.Connection, str, str], None] | None = None) -> dict:
    """Route and store a report in a transaction of its own; returns the stored incident and the
    open incidents of the same category within ``radius_m`` (possible duplicates, offered, not
    merged). ``authorize`` is called with the report's own connection and the routed community's
    and grid's codes before anything is stored, and may raise to refuse (on that connection: a
    second one from the pool cost a checkout and its round trips on every report)."""
    with engine.begin() as conn:
        return report_on(conn, item, actor=actor, calendar=calendar, radius_m=radius_m, synthetic=synthetic,
                         authorize=authorize)


def report_on(conn: sa.Connection, item: Report, *, actor: str, calendar: WorkCalendar | None = None,
              radius_m: float = DUPLICATE_RADIUS_M, synthetic: bool = False,
              authorize: Callable[[sa.Connection, str, str], None] | None = None) -> dict:
    """:func:`report` inside the caller's transaction (a need referred to the incident loop is
    marked and its incident made in one)."""
    calendar = calendar or calendar_from_env()
    if not (-180 <= item.lon <= 180 and -90 <= item.lat <= 90):
        raise ReportError(f"coordinates out of range: lon {item.lon}, lat {item.lat}",
                          f"坐标超出范围：经度 {item.lon}，纬度 {item.lat}")
    at = item.reported_at or datetime.now(timezone.utc)
    category = store.category(conn, item.category_code)
    if category is None:
        raise ReportError(f"unknown category {item.category_code!r}; see /open311/v2/services.json",
                          f"没有类别 {item.category_code!r}；类别表见 /open311/v2/services.json")
    try:
        answers = check_answers(category.code, category.attributes, item.attributes)
    except Invalid as wrong:
        raise ReportError(wrong.en, wrong.zh) from None
    # reported while an emergency was on there (a report kept offline: when it was made): counted in its report
    emergency = emergency_store.on_at(conn, item.lon, item.lat, at)
    if category.emergency and emergency is None:
        raise ReportError(f"category {category.code} ({category.name_en}) is an emergency category: it opens only "
                          "where an emergency is on", f"类别 {category.code}（{category.name_zh}）为应急类别：仅在应急状态范围内可上报")
    where = store.route(conn, item.lon, item.lat)
    if where is None:
        from gridmap.store.features import no_published_plan, unplanned_at

        unplanned = unplanned_at(conn, item.lon, item.lat)
        if unplanned is not None:  # not a gap between grids: no plan is published there at all
            en, zh = no_published_plan(*unplanned)
            raise ReportError(f"{en}; nothing was stored", f"{zh}；未保存")
        raise ReportError(f"the point lon {item.lon:.6f}, lat {item.lat:.6f} lies outside every published grid; "
                          "nothing was stored",
                          f"经度 {item.lon:.6f}、纬度 {item.lat:.6f} 处不在任何已发布的网格内；未保存")
    if authorize is not None:
        authorize(conn, where.community_code, where.grid_code)
    duplicates = store.nearby_open(conn, category.code, item.lon, item.lat, radius_m)
    # linked to a patrol its reporter is walking (or has just ended): a report from the phone, not
    # a need referred or a door-knock's issue
    incident_id, public_id, reported_at, patrol = store.insert(
        conn, category_code=category.code, description=item.description, lon=item.lon, lat=item.lat,
        route_=where, reported_at=at,
        due_at=category.due(at, calendar), reporter_name=item.reporter_name,
        reporter_contact=item.reporter_contact, reporter_role=item.reporter_role, photo_urls=item.photo_urls,
        address=item.address, source=item.source, actor=actor, synthetic=synthetic, attributes=answers,
        emergency_id=emergency, patrol_grace=REPORT_GRACE if item.source == "api" and not synthetic else None)
    audit.record(conn, actor=actor, action="incident.report", table="incidents", row_key=public_id,
                 after={"category": category.code, "grid": where.grid_code, "source": item.source})
    stored = store.get_new(conn, incident_id, reported_at)
    return {**stored, "patrol_id": patrol, "possible_duplicates": duplicates}


def transition(engine: sa.Engine, public_id: str, action: str, *, actor: str, note: str | None = None,
               department: str | None = None, duplicate_of: str | None = None,
               expected_status: str | None = None, at: datetime | None = None) -> dict:
    """Take one workflow step. ``department`` is required for reassign (and optional for dispatch);
    ``expected_status`` guards against acting on a case that moved meanwhile. Raises
    :class:`TransitionError` (→ 409) with the reason when the step is not allowed."""
    with engine.begin() as conn:
        current = store.get(conn, public_id, lock=True)
        if expected_status is not None and current["status"] != expected_status:
            raise TransitionError(f"the incident is {current['status']} now, not {expected_status}: reload it",
                                  f"事件现在是“{STATE_NAMES[current['status']][0]}”，不是"
                                  f"“{STATE_NAMES.get(expected_status, (expected_status,))[0]}”：请刷新")
        target = next_state(current["status"], action)
        dept_id = None
        if action == "reassign" and not department:
            raise TransitionError("reassign needs the department to reassign to", "改派需要指定改派到的部门")
        if department:
            dept_id = store.department_by_code(conn, department)
            if dept_id is None:
                raise TransitionError(f"no department {department!r}", f"没有部门 {department!r}")
            if action == "reassign" and department == current["department_code"]:
                raise TransitionError(f"the incident is already with {department}", f"事件已在 {department} 办理")
        dup_id = None
        if duplicate_of:
            if action != "reject":
                raise TransitionError("only a rejection can name the incident it duplicates", "只有不予立案时才能指明重复的事件")
            dup_id = store.id_of(conn, duplicate_of)
            if dup_id is None or dup_id == current["id"]:
                raise TransitionError(f"no other incident {duplicate_of!r}", f"没有另一个编号为 {duplicate_of!r} 的事件")
        store.set_status(conn, current["id"], target, department=dept_id, duplicate_of=dup_id, at=at,
                         reported_at=current["reported_at"])
        detail = {k: v for k, v in (("department", department), ("duplicate_of", duplicate_of)) if v}
        store.add_event(conn, current["id"], current["status"], target, action, actor, note, detail, at,
                        incident_reported_at=current["reported_at"])
        audit.record(conn, actor=actor, action=f"incident.{action}", table="incidents", row_key=public_id,
                     before={"status": current["status"]}, after={"status": target, **detail})
        return with_events(conn, public_id)


def with_events(conn: sa.Connection, public_id: str, *, with_contact: bool = False) -> dict:
    item = store.get(conn, public_id, with_contact=with_contact)
    item["events"] = store.events(conn, item["id"])
    return item


def escalate_overdue(engine: sa.Engine, *, now: datetime | None = None, step: timedelta = timedelta(hours=24),
                     actor: str = "supervision") -> list[dict]:
    """The periodic supervision pass (督办): every open incident past its due time is flagged for
    supervision (level 1); one still open ``step`` after its last escalation (a minute for an
    emergency category) goes up one level (street, district, city), never more than one level per
    pass. Returns what changed."""
    now = now or datetime.now(timezone.utc)
    changed = []
    with engine.begin() as conn:
        rising = []
        for row in store.overdue_open(conn, now):
            if row.status in FINAL_STATES:
                continue
            every = EMERGENCY_STEP if row.time_unit == EMERGENCY_UNIT else step
            if row.escalation_level == 0:
                level = 1
            elif row.escalation_level < MAX_LEVEL and row.escalated_at is not None and now - row.escalated_at >= every:
                level = row.escalation_level + 1
            else:
                continue
            rising.append((row, level))
        store.escalate(conn, {(row.id, row.reported_at): level for row, level in rising}, now)
        for row, level in rising:
            store.add_event(conn, row.id, row.status, row.status, "escalate", actor,
                            f"overdue since {row.due_at.isoformat()}: {ESCALATION_LEVELS[level]}",
                            {"level": level}, now, incident_reported_at=row.reported_at)
            changed.append({"public_id": row.public_id, "level": level})
        if changed:
            audit.record(conn, actor=actor, action="incident.escalate", table="incidents", row_key=None,
                         after={"escalated": changed})
    return changed


def make_months(engine: sa.Engine, frame) -> int:
    """Make the monthly partitions a load of ``frame``'s incidents needs (its first report's month
    to its last's), in a transaction of its own, before ``bulk_load``: without them its rows would
    go to the default partition. Returns how many months were made; raises
    ``PartitionsBusy`` (nothing made, nothing loaded yet) when a long transaction holds the table."""
    if not len(frame):
        return 0
    times = pd.to_datetime(frame["reported_at"], utc=True)
    with engine.begin() as conn:
        return partitions.ensure(conn, times.min().date(), times.max().date())


def make_months_ahead(engine: sa.Engine, *, now: datetime | None = None) -> int | None:
    """Make the current month's partition and the next ``MONTHS_AHEAD`` where missing (the
    supervision pass and ``gridmap incidents escalate`` run it); returns how many were made, None
    when the table was busy (a long transaction held it a second: the next pass makes them)."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    with engine.begin() as conn:
        return partitions.ensure_ahead(conn, today)


def bulk_load(conn: sa.Connection, frame, *, source: str, synthetic: bool, with_events: bool = True) -> tuple[int, int]:
    """Route many incidents by the published grids (in bulk, with the same border rule as a single
    report) and store them in the caller's transaction; see ``store.incidents.bulk_insert``. Call
    ``make_months`` first. Returns (stored, left out: outside every published grid or of an
    unknown category)."""
    grids = store.routing_grids(conn)
    ids = np.array([g.id for g in grids], dtype=np.int64)
    where = routing.containing(frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                               shapely.from_wkb([bytes(g.wkb) for g in grids]), np.arange(len(grids)))
    grid_id = pd.array(np.full(len(frame), pd.NA), dtype="Int64")
    inside = where >= 0
    grid_id[inside] = ids[where[inside]]
    routed = frame.assign(grid_id=grid_id)
    return store.bulk_insert(conn, routed, source=source, synthetic=synthetic, with_events=with_events)


BULK_REROUTE_MIN = 20_000
"""From this many incidents on, a publish routes them in Python (vectorised point in polygon)
instead of one PostGIS lookup each: measured on Reykjavík, 888,878 incidents take 91 s one by
one and about 40 s in bulk, nearly all of it the UPDATE of the rows."""


def follow_plan(conn: sa.Connection, plan_id: int, previous_id: int | None) -> dict:
    """Make incidents follow plan ``plan_id``, just published in place of ``previous_id``, in the
    caller's (the publish's) transaction.

    An incident keeps ``grid_id``, the grid it was reported in (history, accountability); what
    follows the published plan is its grid lineage (see store.incidents). Grids that hold the
    same units as before keep their lineage and their incidents; incidents of grids whose units
    changed are routed again by location, with the rule of a single report. Work grows with the
    incidents in changed grids: an edit and publish of Reykjavík with 888,878 incidents re-routes
    a few thousand in under a second. Returns what was done."""
    if previous_id is None:
        return {"adopted": 0, "rerouted": 0, "outside": 0}
    adopted = store.adopt_lineages(conn, plan_id, previous_id)
    if store.vanished_count(conn, plan_id, previous_id) < BULK_REROUTE_MIN:
        routed, outside = store.reroute_in_place(conn, plan_id, previous_id)
        return {"adopted": adopted, "rerouted": routed, "outside": outside}
    ids, lon, lat = store.vanished_points(conn, plan_id, previous_id)
    grids = store.plan_grid_shapes(conn, plan_id)
    where = routing.containing(np.asarray(lon), np.asarray(lat), shapely.from_wkb([bytes(g.wkb) for g in grids]),
                               np.array([g.code for g in grids], dtype=object))
    lineage = [None if w < 0 else int(grids[w].lineage) for w in where.tolist()]
    store.set_lineages(conn, ids, lineage)
    outside = sum(1 for value in lineage if value is None)
    return {"adopted": adopted, "rerouted": len(ids) - outside, "outside": outside}


def load_demo_incidents(engine: sa.Engine, territory: str = "990100", *, count: int = 20000, days: int = 365,
                        seed: int = 0) -> tuple[int, int]:
    """A year (by default) of labelled-synthetic incidents up to now over the demo territory, so the
    maps are alive on first start. Idempotent: nothing happens when synthetic incidents exist.
    Returns (stored, left out)."""
    from gridmap.geo.incident_demo import generate, places
    from gridmap.store import frames, layers as layer_store

    ensure_categories(engine)
    with engine.connect() as conn:
        if store.synthetic_count(conn) > 0:
            return store.synthetic_count(conn), 0
        area = territories.outline_hex(conn, territory)
        if area is None:
            return 0, 0
        outline = shapely.from_wkb(bytes.fromhex(area))
        layers = {}
        for role in ("buildings", "roads", "sites"):
            found = layer_store.find(conn, territory, (role,))
            layers[role] = frames.layer_in_area(conn, found[0], found[1], outline) if found else None
        cats = store.categories(conn)
    if layers["buildings"] is None or layers["roads"] is None:
        return 0, 0
    now = datetime.now(timezone.utc)
    frame = generate(places(layers["buildings"], layers["roads"], layers["sites"], outline, seed=seed), cats,
                     count=count, start=now - timedelta(days=days), days=days, seed=seed,
                     calendar=calendar_from_env().for_synthetic_history(),
                     now=now)
    make_months(engine, frame)
    with engine.begin() as conn:
        result = bulk_load(conn, frame, source="demo", synthetic=True)
        audit.record(conn, actor="demo", action="incident.demo", table="incidents", row_key=territory,
                     after={"stored": result[0], "left_out": result[1]})
    store.vacuum_analyze(engine)
    return result


__all__ = ["report_on", "follow_plan", "bulk_load", "load_demo_incidents", "Report", "ReportError", "TransitionError", "report", "transition", "with_events", "escalate_overdue", "make_months", "make_months_ahead",
           "ensure_categories", "calendar_from_env", "DUPLICATE_RADIUS_M", "ESCALATION_LEVELS", "MAX_LEVEL"]
