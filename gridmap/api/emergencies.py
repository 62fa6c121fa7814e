"""Emergency mode over HTTP (平战结合): administrators switch a territory (or some of its streets,
communities or grids) into an emergency and back; grid workers and handlers check in and set their
grids' statuses (where their roles reach); every role of the territory reads the board, the map
and the report."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from gridmap.api.deps import get_conn, optional_user, place_check, require_admin, require_role, require_role_reaching
from gridmap.api.incidents import seen_at
from gridmap.services import emergencies as service
from gridmap.store import emergencies as store
from gridmap.store import territories
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["emergencies"])
READERS = ("viewer", "worker", "handler", "planner")  # and administrators
RESPONDERS = ("worker", "handler")  # and administrators: check in, set a grid's status


class EmergencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=40, description="one of the profile's kinds: 防汛, 防火, 防疫, 防地震, "
                      "保安全 (or flood, fire, epidemic, earthquake, public safety)")
    reason: str = Field(min_length=1, max_length=2000)
    streets: list[str] = Field(default_factory=list, max_length=500, description="only these streets of the territory")
    communities: list[str] = Field(default_factory=list, max_length=2000)
    grids: list[str] = Field(default_factory=list, max_length=20000, description="only these published grids")
    polygon: dict | None = Field(None, description="a GeoJSON Polygon drawn on the map (CGCS2000/WGS84)")
    started_at: datetime | None = Field(None, description="when it began (default now; not in the future)")


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64, description="the phone's own id for this check-in: sent "
                           "again (a retry), it is kept once")
    grid_code: str | None = Field(None, max_length=32, description="default: the grids one's staff assignments hold, "
                                  "else the grid where one stands")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    on_duty: bool = True
    note: str | None = Field(None, max_length=500)
    at: datetime | None = Field(None, description="when (a check-in kept on a phone while offline); default now")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="normal, affected, needs_support, cleared (or 正常, 受影响, 需要支援, 已解除)")
    note: str | None = Field(None, max_length=2000)


def _territory(conn: sa.Connection, emergency_id: int) -> str:
    return store.get(conn, emergency_id)["territory"]


@router.post("/territories/{code}/emergencies", status_code=201,
             summary="Switch the territory (or streets, communities, grids, a drawn area of it) into emergency mode")
def start(code: str, body: EmergencyIn, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    actor = require_admin(conn, user, code, "run emergencies")
    return service.start(request.app.state.engine, code, kind=body.kind, reason=body.reason, actor=actor.username,
                         streets=body.streets, communities=body.communities, grids=body.grids, polygon=body.polygon,
                         at=seen_at(body.started_at))


@router.get("/territories/{code}/emergency-kinds", summary="The kinds of emergency the territory's profile names, "
            "and its check-in minutes")
def kinds(code: str, conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> dict:
    from gridmap.services.profiles import of_territory

    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read emergencies")
    rules = of_territory(conn, code).emergency
    return {"kinds": rules.names(), "checkin_minutes": rules.checkin_minutes,
            "street_after_minutes": rules.street_after_minutes}


@router.get("/territories/{code}/emergencies", summary="The emergencies of the territory, newest first (on: no end)")
def listing(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> list[dict]:
    territories.get(conn, code)
    require_role(conn, user, READERS, code, "read emergencies")
    return service.listing(request.app.state.engine, code)


@router.get("/emergencies/{emergency_id}", summary="One emergency and its grids")
def one(emergency_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
        user: CurrentUser | None = Depends(optional_user)) -> dict:
    require_role_reaching(conn, user, READERS, _territory(conn, emergency_id), "read emergencies")
    return service.get(request.app.state.engine, emergency_id)


@router.post("/emergencies/{emergency_id}/end", summary="Switch back to peacetime")
def end(emergency_id: int, body: EndIn, request: Request, conn: sa.Connection = Depends(get_conn),
        user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_admin(conn, user, _territory(conn, emergency_id), "run emergencies")
    return service.end(request.app.state.engine, emergency_id, actor=actor.username, note=body.note)


@router.post("/emergencies/{emergency_id}/checkins", status_code=201,
             summary="Check in (on duty, where one is) for one's grids; kept once per client_id")
def check_in(emergency_id: int, body: CheckIn, request: Request, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_role_reaching(conn, user, RESPONDERS, _territory(conn, emergency_id), "check in")
    engine = request.app.state.engine
    return service.check_in(engine, emergency_id, user_id=actor.id, walker=actor.username, client_id=body.client_id,
                            grid_code=body.grid_code, lon=body.lon, lat=body.lat, on_duty=body.on_duty, note=body.note,
                            at=seen_at(body.at), authorize=place_check(engine, actor, RESPONDERS, "check in"),
                            zone=request.app.state.calendar.zone)


@router.post("/emergencies/{emergency_id}/grids/{grid_code}/status",
             summary="Set a grid's status: normal, affected, needs support, cleared")
def set_status(emergency_id: int, grid_code: str, body: StatusIn, request: Request,
               conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = require_role_reaching(conn, user, RESPONDERS, _territory(conn, emergency_id), "check in")
    engine = request.app.state.engine
    return service.set_status(engine, emergency_id, grid_code, body.status, actor=actor.username, note=body.note,
                              authorize=place_check(engine, actor, RESPONDERS, "check in"))


@router.get("/emergencies/{emergency_id}/board", summary="The emergency board: every grid's status, check-in, "
            "escalation, incidents, focus households, resources near it and door-knock progress")
def board(emergency_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)) -> dict:
    require_role_reaching(conn, user, READERS, _territory(conn, emergency_id), "read emergencies")
    return service.board(request.app.state.engine, emergency_id)


@router.get("/emergencies/{emergency_id}/grids/{grid_code}/resources",
            summary="The active resources near one of the emergency's grids, nearest first")
def resources(emergency_id: int, grid_code: str, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> dict:
    require_role_reaching(conn, user, READERS, _territory(conn, emergency_id), "read emergencies")
    return service.resources_near(request.app.state.engine, emergency_id, grid_code)


@router.get("/emergencies/{emergency_id}/map", summary="The emergency's area and grids (GeoJSON)")
def emergency_map(emergency_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                  user: CurrentUser | None = Depends(optional_user)) -> dict:
    require_role_reaching(conn, user, READERS, _territory(conn, emergency_id), "read emergencies")
    return service.map_of(request.app.state.engine, emergency_id)


@router.get("/emergencies/{emergency_id}/report", summary="The event's report: timeline, check-ins, incidents and "
            "response times by department, grids by status over time, households reached, whistles")
def report(emergency_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    require_role_reaching(conn, user, READERS, _territory(conn, emergency_id), "read emergencies")
    return service.report(request.app.state.engine, emergency_id)
