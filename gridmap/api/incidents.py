"""Incidents for the people who run the loop: report, list, follow, move through the workflow,
and run the supervision pass.

Who sees what: a role covers the incidents of its territory; a handler bound to a department only
that department's, a grid worker bound to grids only those grids'. Reporters' names and contacts
go to administrators and to the handlers the incident is routed to (who call the reporter back),
never to anyone else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr

from gridmap.api.deps import ROLE_ZH, get_conn, optional_user, signed_in
from gridmap.api.errors import bilingual_body, utc
from gridmap.api.plans import jsonable
from gridmap.errors import Forbidden, Invalid, Unauthenticated
from gridmap.incident_rules import ACTION_NAMES, ACTION_ROLES, STATES, TRANSITIONS, TransitionError, allowed_actions
from gridmap.services import incidents as service
from gridmap.store import incidents as store
from gridmap.store.users import CurrentUser, incident_scopes

router = APIRouter(prefix="/api", tags=["incidents"])
REPORT_ROLES = ("worker", "handler", "planner")
READ_ROLES = ("handler", "worker", "planner", "viewer")
CONTACT_ROLES = ("handler",)


class IncidentIn(BaseModel):
    category_code: str = Field(max_length=32, examples=["0201"])
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: str = Field("4490", pattern="^(4490|4326|gcj02)$", description="gcj02 for points from Amap/Tencent maps")
    description: str | None = Field(None, max_length=4000)
    reporter_name: str | None = Field(None, max_length=200)
    reporter_contact: str | None = Field(None, max_length=200)
    reporter_role: str | None = Field(None, max_length=32, examples=["grid_worker", "resident"])
    photo_urls: list[str] = Field(default_factory=list, max_length=20)
    address: str | None = Field(None, max_length=500)
    reported_at: datetime | None = Field(None, description="when it was seen, for a report kept on a phone while "
                                         "offline: at most 7 days ago and not in the future (default: now)")
    attributes: dict[str, StrictStr | StrictInt | StrictFloat | list[StrictStr]] = Field(
        default_factory=dict, max_length=50, examples=[{"hazards": ["fuel", "exit"]}],
        description="answers to the category's questions (GET /api/incident-categories), by question code")


OFFLINE_REPORT_MAX_AGE = timedelta(days=7)
"""How old a report kept on a phone may be when it finally arrives (its due time runs from then)."""


def seen_at(value: datetime | None) -> datetime | None:
    """The time a report was seen (UTC when it names no zone), refused outside [now − 7 days, now + 5 min]."""
    if value is None:
        return None
    at = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    if at > now + timedelta(minutes=5) or at < now - OFFLINE_REPORT_MAX_AGE:
        raise Invalid(f"reported_at {at.isoformat()} must lie within the last 7 days and not in the future",
                      f"上报时间 {at.isoformat()} 须在最近 7 天内且不晚于现在")
    return at


class TransitionIn(BaseModel):
    action: str = Field(description=", ".join(TRANSITIONS))
    note: str | None = Field(None, max_length=4000)
    department: str | None = Field(None, max_length=32, description="for reassign (and dispatch): department code")
    duplicate_of: str | None = Field(None, max_length=40, description="for reject: the incident this duplicates")
    expected_status: str | None = Field(None, description="the status you saw; 409 if it changed meanwhile")


def to_storage(lon: float, lat: float, crs: str) -> tuple[float, float]:
    if crs != "gcj02":
        return lon, lat
    import numpy as np

    from gridmap.geo.crs import gcj02_to_wgs84

    x, y = gcj02_to_wgs84(np.array([lon]), np.array([lat]))
    return float(x[0]), float(y[0])


def may_report(conn: sa.Connection, user: CurrentUser, community: str, grid: str) -> bool:
    """Whether ``user`` may report an incident in ``grid`` of ``community``: a role of
    :data:`REPORT_ROLES` over it (the one rule for the API, Open311 and needs referred to the
    incident loop)."""
    return any(s.covers(community, grid) for s in incident_scopes(conn, user, REPORT_ROLES))


def refuse_report(conn: sa.Connection, user: CurrentUser, community: str, grid: str) -> None:
    """:func:`may_report`, raising :class:`Forbidden` (403, in both languages) when not."""
    if not may_report(conn, user, community, grid):
        raise Forbidden(f"{user.username} may not report incidents in grid {grid} (community {community})",
                        f"{user.username} 无权在网格 {grid}（社区 {community}）上报事件")


def is_admin(user: CurrentUser | None) -> bool:
    return user is not None and any(role == "admin" for role, _ in user.roles)


@router.get("/incident-categories", summary="The category table: department and time limit of each category")
def categories(conn: sa.Connection = Depends(get_conn)) -> list[dict]:
    return [{**vars(c), "attributes": [a.as_dict() for a in c.attributes]} for c in store.categories(conn)]


@router.post("/incidents", status_code=201, summary="Report an incident: routed to its grid and department, "
             "with its due time and possible duplicates within 250 m")
def report(body: IncidentIn, request: Request, user: CurrentUser | None = Depends(optional_user)):
    engine = request.app.state.engine
    lon, lat = to_storage(body.lon, body.lat, body.crs)
    if user is None:
        raise Unauthenticated("sign in first (POST /api/auth/token)", "请先登录（POST /api/auth/token）")

    def authorize(conn: sa.Connection, community: str, grid: str) -> None:  # the place the report was routed to
        refuse_report(conn, user, community, grid)

    try:
        stored = service.report(engine, service.Report(
            category_code=body.category_code, lon=lon, lat=lat, description=body.description,
            reporter_name=body.reporter_name, reporter_contact=body.reporter_contact,
            reporter_role=body.reporter_role, photo_urls=body.photo_urls, address=body.address, source="api",
            reported_at=seen_at(body.reported_at), attributes=body.attributes),
            actor=user.username, calendar=request.app.state.calendar, authorize=authorize)
    except service.ReportError as exc:
        return JSONResponse(status_code=422, content=bilingual_body(exc))
    return jsonable(stored)


@router.get("/incidents", summary="Incidents, newest first, filtered")
def search(request: Request, status: str | None = Query(None, description="comma-separated states"),
           category: str | None = None, community: str | None = None, street: str | None = None,
           grid: str | None = None, start: datetime | None = None, end: datetime | None = None,
           overdue: bool | None = None, limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
           conn: sa.Connection = Depends(get_conn), user: CurrentUser = Depends(signed_in)) -> list[dict]:
    statuses = status.split(",") if status else None
    if statuses and set(statuses) - set(STATES):
        raise Invalid(f"status must be among {', '.join(STATES)}", f"状态只能是 {'、'.join(STATES)}")
    rows = store.search(conn, statuses=statuses, category=category, community=community, street=street, grid=grid,
                        start=utc(start), end=utc(end), overdue=overdue, limit=limit, offset=offset, with_contact=True)
    readers, contacts = incident_scopes(conn, user, READ_ROLES), incident_scopes(conn, user, CONTACT_ROLES)
    return [jsonable(_shown(r, contacts)) for r in rows if any(s.allows(r) for s in readers)]


def _shown(item: dict, contacts: list) -> dict:
    """The incident without the reporter's name and contact unless the caller needs them."""
    if not any(s.allows(item) for s in contacts):
        item = {k: v for k, v in item.items() if k not in ("reporter_name", "reporter_contact")}
    return item


@router.get("/incidents/{public_id}", summary="One incident with its history and the actions open to it")
def one(public_id: str, conn: sa.Connection = Depends(get_conn), user: CurrentUser = Depends(signed_in)) -> dict:
    item = service.with_events(conn, public_id, with_contact=True)  # 404 in both languages if none
    if not any(s.allows(item) for s in incident_scopes(conn, user, READ_ROLES)):
        raise Forbidden(f"incident {public_id} is not in {user.username}'s territory, grids or department",
                        f"事件 {public_id} 不在 {user.username} 的辖区、网格或部门内")
    item = _shown(item, incident_scopes(conn, user, CONTACT_ROLES))
    item["actions"] = allowed_actions(item["status"])
    return jsonable(item)


@router.post("/incidents/{public_id}/transitions", summary="Take a workflow step (409 with the reason when the "
             "workflow does not allow it)")
def move(public_id: str, body: TransitionIn, request: Request, conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)):
    current = store.get(conn, public_id)  # 404 in both languages if none
    if body.action not in TRANSITIONS:
        raise Invalid(f"unknown action {body.action!r}; actions are {', '.join(TRANSITIONS)}",
                      f"未知的操作 {body.action!r}：可用操作为 {'、'.join(TRANSITIONS)}")
    if user is None:
        raise Unauthenticated("sign in first (POST /api/auth/token)", "请先登录（POST /api/auth/token）")
    if not any(s.allows(current) for s in incident_scopes(conn, user, ACTION_ROLES[body.action])):
        roles = ACTION_ROLES[body.action]
        raise Forbidden(f"{user.username} may not {body.action} incident {public_id}: it needs the role "
                        f"{' or '.join(roles)} over its community, grid or department",
                        f"{user.username} 不能对事件 {public_id} {ACTION_NAMES[body.action][0]}：需要该事件所在社区、网格或部门的"
                        f"{'或'.join(ROLE_ZH.get(r, r) for r in roles)}角色")
    actor = user
    conn.rollback()
    try:
        done = service.transition(request.app.state.engine, public_id, body.action, actor=actor.username,
                                  note=body.note, department=body.department, duplicate_of=body.duplicate_of,
                                  expected_status=body.expected_status)
    except TransitionError as exc:
        return JSONResponse(status_code=409, content=bilingual_body(exc, status=current["status"],
                                                                    allowed=allowed_actions(current["status"])))
    done["actions"] = allowed_actions(done["status"])
    return jsonable(done)


@router.post("/incidents/escalate", summary="Run the supervision pass now (it also runs periodically): overdue "
             "incidents, and during an emergency missed check-ins and departments late to a whistle")
def escalate(request: Request, user: CurrentUser = Depends(signed_in)) -> dict:
    from gridmap.services import emergencies, whistles

    if not is_admin(user):
        raise Forbidden("only administrators run the supervision pass", "只有管理员可以执行督办")
    engine = request.app.state.engine
    return {"escalated": service.escalate_overdue(engine, actor=user.username),
            "checkins_missed": emergencies.sweep(engine, actor=user.username),
            "whistles_late": whistles.sweep(engine, actor=user.username)}
