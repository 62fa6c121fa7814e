"""Service stations and the 15-minute circle: types, stations (GeoJSON), create/edit/close,
walking coverage per grid and community, service areas, and suggested new sites."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.errors import Invalid
from gridmap.api.deps import get_conn, optional_user, public_reader, require_role
from gridmap.api.plans import jsonable
from gridmap.geo.walking import DEFAULT_MINUTES, DEFAULT_SPEED_M_PER_MIN
from gridmap.services import stations as service
from gridmap.store import frames
from gridmap.store import stations as store
from gridmap.store import territories
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["stations"])
EDITORS = ("planner",)


class StationIn(BaseModel):
    station_type: str = Field(description="see /api/station-types")
    name: str = Field(min_length=1, max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    address: str | None = Field(None, max_length=500)
    opening_hours: str | None = Field(None, max_length=200, examples=["Mo-Fr 09:00-18:00"])
    services: list[str] = Field(default_factory=list, max_length=50)


class StationPatch(BaseModel):
    station_type: str | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    address: str | None = Field(None, max_length=500)
    opening_hours: str | None = Field(None, max_length=200)
    services: list[str] | None = Field(None, max_length=50)


def _territory(conn: sa.Connection, code: str) -> None:
    territories.get(conn, code)  # 404 in both languages if none


def _editable_station(conn: sa.Connection, station_id: int, user: CurrentUser | None, action: str) -> tuple[dict, CurrentUser]:
    """The station (404 if none) and the user, if they may ``action`` it (401/403 otherwise)."""
    current = store.get(conn, station_id)  # 404 in both languages if none
    return current, require_role(conn, user, EDITORS, current["territory"], action)


@router.get("/station-types", summary="Station types with Chinese and English names")
def types() -> list[dict]:
    return service.station_types()


@router.get("/territories/{code}/stations", summary="Stations at or below a territory (GeoJSON)",
            responses=GEOJSON_OK)
def stations(code: str, type: str | None = None, status: str | None = Query("open", pattern="^(open|closed)$"),
             conn: sa.Connection = Depends(get_conn), _r: CurrentUser | None = Depends(public_reader)) -> JSONResponse:
    _territory(conn, code)
    frame = (frames.stations(conn, code, station_type=type, status=status, places=False)
             .rename(columns={"station_id": "id"}).drop(columns="services"))
    return JSONResponse(json.loads(frame.to_json(drop_id=True)), media_type="application/geo+json")


@router.post("/territories/{code}/stations", status_code=201, summary="Create a station")
def create(code: str, body: StationIn, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)):
    _territory(conn, code)
    actor = require_role(conn, user, EDITORS, code, "create stations")
    return jsonable(service.create(request.app.state.engine, code, actor=actor.username, **body.model_dump()))


@router.patch("/stations/{station_id}", summary="Edit a station (type, name, place, hours, services)")
def edit(station_id: int, body: StationPatch, request: Request, conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)):
    _, actor = _editable_station(conn, station_id, user, "edit stations")
    changes = body.model_dump(exclude_unset=True)
    if ("lon" in changes) != ("lat" in changes):
        raise Invalid("move a station with both lon and lat", "移动站点需要同时给出经度和纬度")
    return jsonable(service.edit(request.app.state.engine, station_id, changes, actor=actor.username))


@router.post("/stations/{station_id}/close", summary="Close a station (kept, marked closed)")
def close(station_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)):
    _, actor = _editable_station(conn, station_id, user, "close stations")
    return jsonable(service.close(request.app.state.engine, station_id, actor=actor.username))


@router.get("/territories/{code}/coverage", summary="Share of households within a walk of each station type, "
            "per grid and community, and the underserved grids")
def coverage(code: str, request: Request, types: str | None = Query(None, description="comma-separated types"),
             minutes: float = Query(DEFAULT_MINUTES, gt=0, le=60),
             speed: float = Query(DEFAULT_SPEED_M_PER_MIN, gt=10, le=200, description="metres per minute"),
             threshold: float = Query(0.8, ge=0, le=1), conn: sa.Connection = Depends(get_conn),
             _r: CurrentUser | None = Depends(public_reader)):
    _territory(conn, code)
    wanted = types.split(",") if types else None
    if wanted and set(wanted) - set(service.TYPE_CODES):
        raise Invalid(f"types must be among {', '.join(service.TYPE_CODES)}",
                      f"类型只能是 {'、'.join(service.TYPE_CODES)}")
    return service.coverage(request.app.state.engine, code, types=wanted, minutes=minutes, speed_m_per_min=speed,
                            threshold=threshold)


@router.get("/territories/{code}/service-areas", summary="Walking service areas of the stations (GeoJSON)",
            responses=GEOJSON_OK)
def areas(code: str, request: Request, type: str | None = None, minutes: float = Query(DEFAULT_MINUTES, gt=0, le=60),
          speed: float = Query(DEFAULT_SPEED_M_PER_MIN, gt=10, le=200), conn: sa.Connection = Depends(get_conn),
          _r: CurrentUser | None = Depends(public_reader)):
    _territory(conn, code)
    frame = service.service_areas(request.app.state.engine, code, type, minutes=minutes, speed_m_per_min=speed)
    return JSONResponse(json.loads(frame.to_json(drop_id=True, default=str)), media_type="application/geo+json")


@router.get("/territories/{code}/suggest-stations", summary="Where k new stations of a type would reach the most "
            "households not reached yet")
def suggest(code: str, request: Request, type: str, k: int = Query(5, ge=1, le=50),
            minutes: float = Query(DEFAULT_MINUTES, gt=0, le=60), speed: float = Query(DEFAULT_SPEED_M_PER_MIN, gt=10,
                                                                                       le=200),
            conn: sa.Connection = Depends(get_conn), _r: CurrentUser | None = Depends(public_reader)):
    _territory(conn, code)
    return service.suggest(request.app.state.engine, code, type, k, minutes=minutes, speed_m_per_min=speed)
