"""双报到 over HTTP: counts per grid for every role of the territory; the registrations (GeoJSON,
names and organisations for administrators only); registering and importing are the
administrators'; grid workers, handlers and administrators log service hours."""

from __future__ import annotations

from datetime import date
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import SIGN_IN_FIRST, get_conn, optional_user, require_admin, require_role
from gridmap.api.sheet_upload import received_sheet
from gridmap.errors import Unauthenticated
from gridmap.services import lists as list_service
from gridmap.services import registrations as service
from gridmap.store import territories, users
from gridmap.store import registrations as store
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["registrations"])
READERS = ("viewer", "worker", "handler", "planner")  # and administrators
LOGGERS = ("worker", "handler")  # and administrators


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="party_member or unit (党员, 单位)")
    name: str = Field(min_length=1, max_length=200)
    organisation: str | None = Field(None, max_length=200, description="the member's party branch or workplace")
    address: str | None = Field(None, max_length=500)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    community_code: str | None = Field(None, max_length=32)
    registered_on: date | None = None


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: float = Field(gt=0, le=24)
    served_on: date | None = Field(None, description="default today")
    activity: str | None = Field(None, max_length=500)
    project_id: int | None = None
    need_id: int | None = None


@router.get("/territories/{code}/registrations/summary",
            summary="双报到 per published grid: party members and units registered, hours this year, projects joined")
def summary(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read the lists")
    return service.summary(request.app.state.engine, code)


@router.get("/territories/{code}/registrations", response_class=JSONResponse,
            summary="The registrations (GeoJSON) with their grid and hours this year; names for administrators")
def listing(code: str, conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    territories.get(conn, code)
    reader = require_role(conn, user, READERS, code, "read the lists")
    frame = service.listing(conn, code, names=users.has_role(conn, reader, (), code))
    return JSONResponse(list_service.feature_collection(frame, "registration_id"), media_type="application/geo+json")


@router.post("/territories/{code}/registrations", status_code=201, summary="Register a party member or a unit (administrators)")
def register(code: str, body: RegistrationIn, request: Request, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_admin(conn, user, code, "manage the lists")
    return service.register(request.app.state.engine, code, body.model_dump(), actor=actor.username)


@router.post("/registrations/{registration_id}/hours", status_code=201,
             summary="Log hours a registration served (grid workers, handlers, administrators)")
def log_hours(registration_id: int, body: HoursIn, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> dict:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    actor = require_role(conn, user, LOGGERS, store.territory_of(conn, registration_id), "record needs")
    return service.log_hours(request.app.state.engine, registration_id, actor=actor.username, **body.model_dump())


@router.post("/territories/{code}/registrations/import",
             summary="Take a 双报到 sheet (.csv UTF-8/GBK or .xlsx): all rows or none (administrators)")
async def import_sheet(code: str, request: Request, file: UploadFile = File(description="the sheet, .csv or .xlsx"),
                       encoding: Literal["utf-8", "gbk"] | None = Form(None), check: bool = Form(False),
                       user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        territories.get(conn, code)
        actor = require_admin(conn, user, code, "manage the lists")
    async with received_sheet(file) as (target, original):
        done = await run_in_threadpool(service.import_sheet, engine, code, target, actor=actor.username,
                                       encoding=encoding, check=check)
    return {**done, "file": original}
