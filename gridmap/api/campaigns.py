"""Door-knocking campaigns (敲门行动) and the whistle (吹哨报到) over HTTP. Administrators start
campaigns and blow whistles; grid workers and handlers knock on the doors of their grids;
handlers of a department called (and administrators) acknowledge and report arrival; every role
of the territory reads the progress, the whistles and the departments' scorecard."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from gridmap.api.deps import (get_conn, optional_user, place_check, require_admin, require_role, require_role_reaching,
                              signed_in)
from gridmap.api.incidents import seen_at
from gridmap.errors import Forbidden
from gridmap.services import campaigns as service
from gridmap.services import whistles
from gridmap.store import territories, users
from gridmap.store.users import CurrentUser, incident_scopes

router = APIRouter(prefix="/api", tags=["campaigns and whistles"])
READERS = ("viewer", "worker", "handler", "planner")  # and administrators
KNOCKERS = ("worker", "handler")  # and administrators


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=40)
    text_zh: str = Field(min_length=1, max_length=500)
    text_en: str | None = Field(None, max_length=500)
    required: bool = False
    choices: list[str] = Field(default_factory=list, max_length=50)


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    purpose: str | None = Field(None, max_length=2000)
    deadline: datetime
    starts_at: datetime | None = None
    questions: list[Question] = Field(default_factory=list, max_length=50)
    emergency_id: int | None = Field(None, description="inside this emergency's area (and counted in its report)")


class KnockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(description="visited, nobody_home, refused, issue_found (or 已入户, 无人在家（待回访）, 拒绝, 发现问题)")
    client_id: str = Field(min_length=1, max_length=64, description="the phone's id for this knock: sent again, kept once")
    answers: dict = Field(default_factory=dict)
    note: str | None = Field(None, max_length=2000)
    need: dict | None = Field(None, description="issue_found: a need to record (category, description, urgency)")
    incident_category: str | None = Field(None, max_length=16, description="issue_found: report an incident of this category")
    at: datetime | None = None


class WhistleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    departments: list[str] = Field(min_length=1, max_length=30, description="department codes (GET /api/incident-categories)")
    incident: str | None = Field(None, max_length=40, description="the incident's public number")
    need_id: int | None = None
    note: str | None = Field(None, max_length=2000)
    ack_minutes: int | None = Field(None, ge=1, le=10080)
    arrive_minutes: int | None = Field(None, ge=1, le=10080)
    blown_at: datetime | None = Field(None, description="when it was blown (by phone or radio, entered later); "
                                      "default now, within the last 7 days")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(None, description="when (reported by phone or radio, entered later); default now")


def as_utc(value: datetime | None) -> datetime | None:
    """A time as given, UTC when it names no zone."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


# -- campaigns ---------------------------------------------------------------------------------------
@router.post("/territories/{code}/campaigns", status_code=201,
             summary="Start a door-knocking campaign: every registered household, and every building with none")
def create(code: str, body: CampaignIn, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_admin(conn, user, code, "run campaigns")
    return service.create(request.app.state.engine, code, name=body.name, purpose=body.purpose,
                          deadline=as_utc(body.deadline), starts_at=as_utc(body.starts_at), questions=[q.model_dump() for q in body.questions],
                          emergency_id=body.emergency_id, actor=actor.username)


@router.get("/territories/{code}/campaigns", summary="The territory's campaigns, newest first")
def listing(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> list[dict]:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read campaigns")
    return service.listing(request.app.state.engine, code)


@router.get("/campaigns/{campaign_id}/progress", summary="Progress per grid (behind an even pace flagged) and per worker")
def progress(campaign_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    require_role_reaching(conn, user, READERS, service.territory_of(engine, campaign_id=campaign_id), "read campaigns")
    return service.progress(engine, campaign_id)


@router.get("/campaigns/{campaign_id}/grids/{grid_code}/targets",
            summary="A grid's households and buildings to knock on, with their latest knock (GeoJSON)")
def targets(campaign_id: int, grid_code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    require_role_reaching(conn, user, READERS, service.territory_of(engine, campaign_id=campaign_id), "read campaigns")
    return service.targets(engine, campaign_id, grid_code)


@router.post("/campaign-targets/{target_id}/knocks", status_code=201,
             summary="Record a knock (its outcome, answers; an issue found raises a need or an incident)")
def knock(target_id: int, body: KnockIn, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    actor = require_role_reaching(conn, user, KNOCKERS, service.territory_of(engine, target_id=target_id), "knock on doors")
    check = place_check(engine, actor, KNOCKERS, "knock on doors")
    return service.knock(engine, target_id, body.outcome, visitor=actor.username, user_id=actor.id,
                         client_id=body.client_id, answers=body.answers, note=body.note, need=body.need,
                         incident_category=body.incident_category, at=seen_at(body.at),
                         authorize=lambda community, grid: check({grid: community}))


# -- whistles ----------------------------------------------------------------------------------------
@router.post("/whistles", status_code=201, summary="Blow the whistle on an incident or a need: the departments named "
             "must acknowledge and report arrival (报到) by the deadlines")
def blow(body: WhistleIn, request: Request, conn: sa.Connection = Depends(get_conn),
         actor: CurrentUser = Depends(signed_in)) -> dict:
    engine = request.app.state.engine

    def authorize(territory: str) -> None:  # the administrators of the place it is blown in
        require_admin(conn, actor, territory, "blow the whistle")

    return whistles.blow(engine, departments=body.departments, actor=actor.username, incident=body.incident,
                         need_id=body.need_id, note=body.note, ack_minutes=body.ack_minutes,
                         arrive_minutes=body.arrive_minutes, at=seen_at(body.blown_at), authorize=authorize)


@router.get("/whistles/{whistle_id}", summary="A whistle and each department's acknowledgement and arrival")
def one(whistle_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
        user: CurrentUser = Depends(signed_in)) -> dict:
    found = whistles.get(request.app.state.engine, whistle_id)
    require_role(conn, user, READERS, found["territory"], "read whistles")
    return found


@router.post("/whistles/{whistle_id}/departments/{department}/{step}",
             summary="A department called acknowledges (acknowledge) or reports arrival (arrive)")
def answer(whistle_id: int, department: str, step: Literal["acknowledge", "arrive"], request: Request,
           body: AnswerIn | None = None, conn: sa.Connection = Depends(get_conn),
           actor: CurrentUser = Depends(signed_in)) -> dict:

    def authorize(territory: str, code: str) -> None:  # the department's own handlers, or an administrator
        if users.has_role(conn, actor, (), territory):
            return
        if not any(s.department == code and s.covers(territory, None)
                   for s in incident_scopes(conn, actor, ("handler",)) if s.role == "handler"):
            raise Forbidden(f"{actor.username} does not answer for department {code} in {territory}",
                            f"{actor.username} 不代表部门 {code} 在 {territory} 响应")

    return whistles.answer(request.app.state.engine, whistle_id, department, step, actor=actor.username,
                           at=seen_at(body.at) if body else None, authorize=authorize)


@router.get("/territories/{code}/whistles/scorecard",
            summary="Each department's whistle scorecard: calls, acknowledged and arrived in time, median minutes")
def scorecard(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read whistles")
    return whistles.scorecard(request.app.state.engine, code)
