"""The three lists over HTTP (needs, resources, projects), GeoJSON where they have a place. Reading
needs a role in the territory (a resource's contact: its workers, handlers and administrators);
grid workers, handlers and administrators record needs and move them along (match, close, refer to
the incident loop); resources and projects are the administrators'."""

from __future__ import annotations

from datetime import date
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import SIGN_IN_FIRST, get_conn, optional_user, require_admin, require_role
from gridmap.api.incidents import refuse_report
from gridmap.api.sheet_upload import received_sheet
from gridmap.errors import Invalid, Unauthenticated
from gridmap.services import lists as service
from gridmap.store import lists as store
from gridmap.store import territories, users
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["lists"])
READERS = ("viewer", "worker", "handler", "planner")  # and administrators
ACTORS = ("worker", "handler")  # and administrators: they record needs and move them along
CONTACT_READERS = ("worker", "handler")
GEOJSON = "application/geo+json"


class NeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=40, description="one of the profile's categories (养老服务 …)")
    description: str = Field(min_length=1, max_length=4000)
    urgency: str = Field("normal", description="low, normal, high, urgent (or 一般, 较急, 紧急, 特急)")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    community_code: str | None = Field(None, max_length=32, description="where, when there is no point")
    address: str | None = Field(None, max_length=500)
    source: str | None = Field(None, max_length=40, description="resident, worker, survey …")
    reported_by: str | None = Field(None, max_length=100)


class NeedMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="open, matched, met, closed (closing needs a note)")
    note: str | None = Field(None, max_length=2000)


class Referral(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category_code: str = Field(min_length=1, max_length=16, description="an incident category (GET /api/incident-categories)")


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="unit, venue, volunteers, fund, service (or 驻区单位, 场地, 志愿队伍, 资金, 服务机构)")
    categories: list[str] = Field(min_length=1, max_length=20)
    description: str | None = Field(None, max_length=4000)
    capacity: int | None = Field(None, ge=0)
    hours: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=500)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    community_code: str | None = Field(None, max_length=32)


class Activity(BaseModel):
    active: bool


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    need_ids: list[int] = Field(default_factory=list, max_length=1000)
    resource_ids: list[int] = Field(default_factory=list, max_length=1000)
    owner: str | None = Field(None, max_length=200)
    budget: float | None = Field(None, ge=0)
    start_date: date | None = None
    end_date: date | None = None


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(None, description="planned → active → done (needs an outcome), or cancelled")
    outcome: str | None = Field(None, max_length=4000)
    owner: str | None = Field(None, max_length=200)
    budget: float | None = Field(None, ge=0)
    start_date: date | None = None
    end_date: date | None = None


def _signed_in(user: CurrentUser | None) -> CurrentUser:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    return user


def _territory_of(conn: sa.Connection, user: CurrentUser | None, kind: str, item_id: int) -> str:
    """The item's territory, after a sign-in is checked (an id is not told to a stranger)."""
    _signed_in(user)
    return store.territory_of(conn, kind, item_id)


# -- needs -------------------------------------------------------------------------------------------
@router.get("/territories/{code}/needs", summary="The needs list (GeoJSON): category, urgency, status, grid",
            response_class=JSONResponse)
def needs(code: str, request: Request, status: str | None = None, grid: str | None = None,
          conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    territories.get(conn, code)
    reader = require_role(conn, user, READERS, code, "read the lists")
    statuses = [s for s in (status or "").split(",") if s] or None
    personal = users.has_role(conn, reader, ACTORS, code)  # who raised a need: for those who act on it
    return JSONResponse(service.needs(request.app.state.engine, code, status=statuses, grid=grid, personal=personal),
                        media_type=GEOJSON)


@router.post("/territories/{code}/needs", status_code=201, summary="Record a need (grid workers, handlers, administrators)")
def create_need(code: str, body: NeedIn, request: Request, conn: sa.Connection = Depends(get_conn),
                user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_role(conn, user, ACTORS, code, "record needs")
    return service.create_need(request.app.state.engine, code, body.model_dump(), actor=actor.username)


@router.get("/needs/{need_id}", summary="One need (GeoJSON Feature)")
def need(need_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)) -> dict:
    code = _territory_of(conn, user, "need", need_id)
    reader = require_role(conn, user, READERS, code, "read the lists")
    return service.need(request.app.state.engine, need_id, personal=users.has_role(conn, reader, ACTORS, code))


@router.post("/needs/{need_id}/status", summary="Move a need: open, matched, met, or closed with a reason")
def move_need(need_id: int, body: NeedMove, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_role(conn, user, ACTORS, _territory_of(conn, user, "need", need_id), "record needs")
    return service.move_need(request.app.state.engine, need_id, body.status, note=body.note, actor=actor.username)


@router.get("/needs/{need_id}/matches", summary="The resources that could meet a need, best first")
def matches(need_id: int, request: Request, within: float | None = None, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> dict:
    if within is not None and not 0 < within <= 50_000:
        raise Invalid("within must be between 0 and 50,000 metres", "within 须在 0 到 50,000 米之间")
    require_role(conn, user, READERS, _territory_of(conn, user, "need", need_id), "read the lists")
    return service.matches(request.app.state.engine, need_id, within_m=within)


@router.post("/needs/{need_id}/incident", status_code=201,
             summary="Refer a need to the incident loop (an incident at its point; the need is referred)")
def refer(need_id: int, body: Referral, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_role(conn, user, ACTORS, _territory_of(conn, user, "need", need_id), "record needs")
    engine = request.app.state.engine

    def authorize(conn: sa.Connection, community: str, grid: str) -> None:  # the incident loop's own rule
        refuse_report(conn, actor, community, grid)

    return service.refer_to_incident(engine, need_id, body.category_code, actor=actor.username,
                                     calendar=request.app.state.calendar, authorize=authorize)


# -- resources ---------------------------------------------------------------------------------------
@router.get("/territories/{code}/resources", summary="The resources list (GeoJSON); contacts for workers, "
            "handlers and administrators", response_class=JSONResponse)
def resources(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    territories.get(conn, code)
    reader = require_role(conn, user, READERS, code, "read the lists")
    personal = users.has_role(conn, reader, CONTACT_READERS, code)
    return JSONResponse(service.resources(request.app.state.engine, code, personal=personal), media_type=GEOJSON)


@router.post("/territories/{code}/resources", status_code=201,
             summary="Add a resource, or update the one of that name (administrators)")
def save_resource(code: str, body: ResourceIn, request: Request, conn: sa.Connection = Depends(get_conn),
                  user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_admin(conn, user, code, "manage the lists")
    return service.save_resource(request.app.state.engine, code, body.model_dump(), actor=actor.username)


@router.post("/resources/{resource_id}/active", summary="Take a resource off the list, or back (administrators)")
def set_active(resource_id: int, body: Activity, request: Request, conn: sa.Connection = Depends(get_conn),
               user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_admin(conn, user, _territory_of(conn, user, "resource", resource_id), "manage the lists")
    service.set_resource_active(request.app.state.engine, resource_id, body.active, actor=actor.username)
    return {"resource_id": resource_id, "active": body.active}


# -- projects ----------------------------------------------------------------------------------------
@router.get("/territories/{code}/projects", summary="The projects list: needs matched to resources, status, outcome")
def projects(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> list[dict]:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read the lists")
    return service.projects(request.app.state.engine, code)


@router.post("/territories/{code}/projects", status_code=201, summary="Make a project of needs and resources (administrators)")
def create_project(code: str, body: ProjectIn, request: Request, conn: sa.Connection = Depends(get_conn),
                   user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_admin(conn, user, code, "manage the lists")
    return service.create_project(request.app.state.engine, code, body.model_dump(), actor=actor.username)


@router.patch("/projects/{project_id}", summary="Move a project along (done: its needs are met), or change it (administrators)")
def update_project(project_id: int, body: ProjectPatch, request: Request, conn: sa.Connection = Depends(get_conn),
                   user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_admin(conn, user, _territory_of(conn, user, "project", project_id), "manage the lists")
    return service.update_project(request.app.state.engine, project_id, body.model_dump(exclude_unset=True),
                                  actor=actor.username)


# -- counts and sheets ---------------------------------------------------------------------------------
@router.get("/territories/{code}/lists/summary",
            summary="Per published grid: open and urgent needs, active resources, projects by status")
def summary(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read the lists")
    return service.summary(request.app.state.engine, code)


@router.post("/territories/{code}/lists/import",
             summary="Take a needs or resources sheet (.csv UTF-8/GBK or .xlsx): all rows or none (administrators)")
async def import_sheet(code: str, request: Request, kind: Literal["needs", "resources"] = Form(),
                       file: UploadFile = File(description="the sheet, .csv or .xlsx"),
                       encoding: Literal["utf-8", "gbk"] | None = Form(None),
                       crs: Literal["4490", "gcj02"] | None = Form(None, description="the sheet's 经度/纬度"),
                       check: bool = Form(False), user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        territories.get(conn, code)
        actor = require_admin(conn, user, code, "manage the lists")
    async with received_sheet(file) as (target, original):
        done = await run_in_threadpool(service.import_sheet, engine, code, kind, target, actor=actor.username,
                                       encoding=encoding, crs=crs, check=check)
    return {**done, "file": original}
