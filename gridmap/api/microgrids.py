"""Micro-grids (微网格) of a plan: JSON and GeoJSON, one micro-grid with its buildings, making them
for a draft, painting buildings between the micro-grids of a grid (the planner's micro-grid
mode), and recording their leaders (楼栋长/单元长).

Reads follow the plan's own rule (published plans and history public, drafts for users with a
role over the territory). Leaders' phones are personal data: they are answered only to a
signed-in user with a role over the territory (never to anonymous readers, never on OGC API
Features or tiles). Writes need a planner and a draft.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridmap.api.deps import READ_ROLES, get_conn, optional_user, require_role
from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.api.plans import jsonable, readable_plan
from gridmap.errors import Invalid
from gridmap.services import microgrids as service
from gridmap.store import microgrids, plans
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["micro-grids"])


class DivideRequest(BaseModel):
    grid: str | None = Field(None, max_length=40, description="only this grid (default: every comprehensive grid)")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    version: int | None = Field(None, ge=0, le=2**31 - 1,
                                description="the draft's edit version the planner last saw (409 when stale)")


class LeaderRequest(BaseModel):
    name: str | None = Field(None, max_length=100, description="the leader's name (微网格负责人, 楼栋长 or 单元长); "
                             "empty clears it, left out keeps it")
    phone: str | None = Field(None, max_length=40, description="the leader's phone (personal data); empty clears it, "
                              "left out keeps it")
    building: str | None = Field(None, max_length=100, description="a building of the micro-grid: id or 楼栋号")
    part: int | None = Field(None, ge=1, le=99, description="the building's 单元 (单元长)")


class MoveRequest(BaseModel):
    cells: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        ..., min_length=1, max_length=5000,
        description="building cells (cell_id from /microgrid-cells) to move into the micro-grid")
    version: int | None = Field(None, ge=0, le=2**31 - 1,
                                description="the draft's edit version the planner last saw (409 when stale)")
    recreate: bool = Field(False, description="make the micro-grid again when a move emptied and removed it (an "
                                              "undo): the buildings must lie in one grid whose code it begins with")


def _personal(conn: sa.Connection, user: CurrentUser | None, plan: plans.Plan) -> bool:
    """Whether this caller may see leaders' phones: a signed-in user with a role over the territory."""
    if user is None:
        return False
    from gridmap.store.users import has_role

    return has_role(conn, user, READ_ROLES, plan.territory)


@router.get("/api/plans/{plan_id}/microgrids", summary="A plan's micro-grids (JSON, or GeoJSON with format=geojson); "
            "phones only for signed-in users with a role over the territory", responses=GEOJSON_OK)
def plan_microgrids(plan_id: int, grid: str | None = None, format: str = "json",
                    conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user),
                    plan: plans.Plan = Depends(readable_plan)) -> JSONResponse:
    personal = _personal(conn, user, plan)
    if format == "geojson":
        return JSONResponse(microgrids.feature_collection(conn, plan_id, grid=grid, personal=personal),
                            media_type="application/geo+json")
    if format != "json":
        raise Invalid("format must be json or geojson", "format 须为 json 或 geojson")
    return JSONResponse(jsonable({"plan_id": plan_id, "microgrids": microgrids.rows(conn, plan_id, grid=grid,
                                                                                  personal=personal)}))


@router.get("/api/plans/{plan_id}/microgrids/{code}", summary="One micro-grid with its buildings (and 单元)")
def one_microgrid(plan_id: int, code: str, conn: sa.Connection = Depends(get_conn),
                  user: CurrentUser | None = Depends(optional_user),
                  plan: plans.Plan = Depends(readable_plan)) -> JSONResponse:
    personal = _personal(conn, user, plan)
    found = [r for r in microgrids.rows(conn, plan_id, personal=personal) if r["microgrid_code"] == code]
    building_rows = microgrids.buildings(conn, plan_id, code, personal=personal)
    return JSONResponse(jsonable({**found[0], "buildings": building_rows}))


@router.post("/api/plans/{plan_id}/microgrids", summary="Divide a draft's grids (or one) into micro-grids of the "
             "profile's micro band, replacing theirs (planner)")
def divide(plan_id: int, request: Request, body: DivideRequest = Body(default_factory=DivideRequest),
           conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    plan = plans.get(conn, plan_id)
    actor = require_role(conn, user, ("planner",), plan.territory, "edit plans")
    conn.rollback()
    summary = service.divide_plan(request.app.state.engine, plan_id, grid=body.grid, seed=body.seed,
                                  version=body.version, actor=actor.username)
    dropped = summary.leaders_line()
    return JSONResponse(jsonable({"plan_id": plan_id, "version": summary.edit_version, "grids": summary.grids,
                                  "replaced": summary.replaced, "summary": summary.result.report["summary"],
                                  "flags": summary.result.report["flags"], "leaders_dropped": summary.leaders_dropped,
                                  "leaders_message": dropped[0] if dropped else None,
                                  "leaders_message_zh": dropped[1] if dropped else None}))


@router.get("/api/plans/{plan_id}/microgrid-cells", summary="The building cells of one grid's micro-grids "
            "(GeoJSON): what the planner paints between micro-grids", responses=GEOJSON_OK)
def microgrid_cells(plan_id: int, grid: str, conn: sa.Connection = Depends(get_conn),
                    plan: plans.Plan = Depends(readable_plan)) -> JSONResponse:
    return JSONResponse(microgrids.cell_collection(conn, plan_id, grid), media_type="application/geo+json")


@router.post("/api/plans/{plan_id}/microgrids/{code}/cells", summary="Paint building cells into micro-grid "
             "{code} (same grid; the micro-grids they leave and join are stated again); drafts only (planner)")
def move_cells(plan_id: int, code: str, body: MoveRequest, request: Request, conn: sa.Connection = Depends(get_conn),
               user: CurrentUser | None = Depends(optional_user)) -> JSONResponse:
    plan = plans.get(conn, plan_id)
    actor = require_role(conn, user, ("planner",), plan.territory, "edit plans")
    conn.rollback()
    return JSONResponse(jsonable(service.move_buildings(request.app.state.engine, plan_id, code, body.cells,
                                                        version=body.version, actor=actor.username,
                                                        recreate=body.recreate)))


@router.put("/api/plans/{plan_id}/microgrids/{code}/leader", summary="Record a micro-grid's leader (微网格负责人), or "
            "a building's (楼栋长) or a 单元's (单元长) in it; drafts only (planner)")
def leader(plan_id: int, code: str, body: LeaderRequest, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    plan = plans.get(conn, plan_id)
    actor = require_role(conn, user, ("planner",), plan.territory, "edit plans")
    conn.rollback()
    return service.set_leader(request.app.state.engine, plan_id, code, name=body.name, phone=body.phone,
                              building=body.building, part=body.part, actor=actor.username)


__all__ = ["router"]
