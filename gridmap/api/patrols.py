"""Patrols over HTTP: grid workers (and handlers, administrators) record their tracks from the
phone or upload GPX/GeoJSON files; a track, and the times its walker passed each building, are
read by the walker, their grid leaders and supervisors (网格长, 网格指导员: staff with an account
assigned to the same grids) and the territory's administrators only; the week's coverage per grid
(no track in it) by every role of the territory."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import get_conn, optional_user, require_role
from gridmap.api.sheet_upload import received_upload
from gridmap.services import patrols as service
from gridmap.store import territories, users
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["patrols"])
WALKERS = ("worker", "handler")  # and administrators
READERS = ("viewer", "worker", "handler", "planner")  # and administrators: the coverage


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    time: datetime = Field(description="when the phone was there (ISO 8601; without an offset: the city's time, "
                                       "GRIDMAP_TIMEZONE, Asia/Shanghai by default)")


class TrackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[Point] = Field(min_length=2, max_length=50_000)


@router.post("/territories/{code}/patrols", status_code=201,
             summary="Record a patrol's track from the phone (grid workers, handlers, administrators); sent twice, kept once")
def record(code: str, body: TrackIn, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    walker = require_role(conn, user, WALKERS, code, "record patrols")
    return service.record(request.app.state.engine, code, [(p.lon, p.lat, p.time) for p in body.points],
                          user_id=walker.id, walker=walker.username, source="phone", zone=request.app.state.calendar.zone)


@router.post("/territories/{code}/patrols/upload", status_code=201,
             summary="Upload a patrol's track as a GPX or GeoJSON file (the signed-in walker's)")
async def upload(code: str, request: Request, file: UploadFile = File(description="a .gpx or .geojson track"),
                 crs: Literal["4490", "gcj02"] | None = Form(None), user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        territories.get(conn, code)
        walker = require_role(conn, user, WALKERS, code, "record patrols")
    async with received_upload(file, (".gpx", ".geojson", ".json"), ("轨迹", "a track")) as (target, _original):
        points, source = await run_in_threadpool(service.read_points, target, crs=crs)
    return await run_in_threadpool(service.record, engine, code, points, user_id=walker.id, walker=walker.username,
                                   source=source, zone=request.app.state.calendar.zone)


def _readable(conn: sa.Connection, request: Request, reader: CurrentUser, code: str) -> list[int] | None:
    """The walkers whose tracks ``reader`` may see: everyone's for an administrator (None)."""
    if users.has_role(conn, reader, (), code):
        return None
    return service.readable_walkers(request.app.state.engine, reader.id, zone=request.app.state.calendar.zone)


@router.get("/territories/{code}/patrols", response_class=JSONResponse,
            summary="The tracks of a week (GeoJSON) with the incidents reported on each: one's own and, for a grid "
                    "leader or supervisor, their grids' staff's; every track for administrators")
def tracks(code: str, request: Request, week: str | None = None, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    territories.get(conn, code)
    reader = require_role(conn, user, READERS, code, "read patrols")
    return JSONResponse(service.tracks(request.app.state.engine, code, week=week,
                                       user_ids=_readable(conn, request, reader, code),
                                       zone=request.app.state.calendar.zone),
                        media_type="application/geo+json")


@router.get("/territories/{code}/grids/{grid_code}/visits", response_class=JSONResponse,
            summary="A grid's buildings (GeoJSON), each with the last time a readable track passed within 20 m "
                    "(up to the end of the week), its walker, and whether it was in that week")
def visits(code: str, grid_code: str, request: Request, week: str | None = None, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    territories.get(conn, code)
    reader = require_role(conn, user, READERS, code, "read patrols")
    return JSONResponse(service.visits(request.app.state.engine, code, grid_code, week=week,
                                       user_ids=_readable(conn, request, reader, code),
                                       zone=request.app.state.calendar.zone),
                        media_type="application/geo+json")


@router.get("/territories/{code}/patrols/coverage",
            summary="A week's patrols per grid: share of its streets walked (within 20 m), who walked, which staff did not")
def coverage(code: str, request: Request, week: str | None = None, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read patrols")
    return service.coverage(request.app.state.engine, code, week=week, zone=request.app.state.calendar.zone)
