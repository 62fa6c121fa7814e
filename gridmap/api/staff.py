"""The grid staff: people (网格长, 专职/兼职网格员, 网格指导员, 楼栋长, 单元长, 志愿者), their
assignments to the published grids, and the staffing checks (一格一员, workload, grids a re-plan
changed). Names and phones are not public: reading needs a role in the territory; writing is the
territory's administrators'."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from gridmap.api.deps import SIGN_IN_FIRST, get_conn, optional_user, require_admin, require_role
from gridmap.errors import Unauthenticated
from gridmap.services import staff as service
from gridmap.store import staff as store
from gridmap.store import territories
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["staff"])
READERS = ("viewer", "worker", "handler", "planner")  # and administrators; writing is theirs alone


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(description="grid_leader, full_time_worker, part_time_worker, supervisor, building_leader, "
                                  "stairwell_leader or volunteer (or the Chinese name: 专职网格员 …)")
    phone: str | None = Field(None, max_length=40)
    staff_key: str | None = Field(None, max_length=64, description="the office's own key (工号)")


class StaffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a 工号 is not changed here

    name: str | None = Field(None, min_length=1, max_length=100)
    role: str | None = None
    phone: str | None = Field(None, max_length=40)
    username: str | None = Field(None, max_length=100, description="the account they sign in with (null: none); "
                                 "it then reads the households register of the grids they are assigned to")


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid_code: str | None = Field(None, min_length=1, max_length=32,
                                  description="a grid of the published plan (may be left out when a building is named)")
    microgrid_code: str | None = Field(None, max_length=40)
    building: str | None = Field(None, max_length=200, examples=["书香锦城 3栋"],
                                 description="a building of the territory (小区 and 楼栋, or an address): 楼栋长, 单元长")
    valid_from: date | None = Field(None, description="default: today")
    valid_to: date | None = Field(None, description="the last day; none: open-ended")


class AssignmentEnd(BaseModel):
    valid_to: date = Field(description="the assignment's last day")


def _reader(conn: sa.Connection, user: CurrentUser | None, code: str) -> CurrentUser:
    territories.get(conn, code)  # 404 in both languages if none
    return require_role(conn, user, READERS, code, "read staff")


def _writer(conn: sa.Connection, user: CurrentUser | None, code: str) -> CurrentUser:
    territories.get(conn, code)
    return require_admin(conn, user, code, "manage staff")


def _signed_in(user: CurrentUser | None) -> CurrentUser:
    """401 before anything is looked up: whether an id exists is not told to a stranger."""
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    return user


@router.get("/territories/{code}/staff", summary="The territory's grid staff with the grids each holds today")
def people(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> list[dict]:
    _reader(conn, user, code)
    return service.people(request.app.state.engine, code)


@router.post("/territories/{code}/staff", status_code=201, summary="Add a person to the territory's grid staff")
def create(code: str, body: StaffIn, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = _writer(conn, user, code)
    return service.create(request.app.state.engine, code, actor=actor.username, **body.model_dump())


@router.post("/territories/{code}/staff/adopt", summary="Take the people the published plan names (grid workers, "
             "micro-grid and building leaders) onto the staff, assigned from today; taken again, changes nothing")
def adopt(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
          user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = _writer(conn, user, code)
    return service.adopt(request.app.state.engine, code, actor=actor.username)


@router.patch("/staff/{staff_id}", summary="Change a person's name, role, phone or account")
def edit(staff_id: int, body: StaffPatch, request: Request, conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = _writer(conn, _signed_in(user), store.get(conn, staff_id)["territory"])
    return service.update(request.app.state.engine, staff_id, body.model_dump(exclude_unset=True),
                          actor=actor.username)


@router.delete("/staff/{staff_id}", status_code=204, summary="Remove a person (and their assignments)")
def remove(staff_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> None:
    actor = _writer(conn, _signed_in(user), store.get(conn, staff_id)["territory"])
    service.remove(request.app.state.engine, staff_id, actor=actor.username)


@router.post("/staff/{staff_id}/assignments", status_code=201,
             summary="Assign a person to a published grid, a micro-grid of it or a building in it")
def assign(staff_id: int, body: AssignmentIn, request: Request, conn: sa.Connection = Depends(get_conn),
           user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = _writer(conn, _signed_in(user), store.get(conn, staff_id)["territory"])
    return service.assign(request.app.state.engine, staff_id, body.grid_code, actor=actor.username,
                          microgrid_code=body.microgrid_code, building=body.building, valid_from=body.valid_from,
                          valid_to=body.valid_to)


@router.post("/staff-assignments/{assignment_id}/end", summary="End an assignment on a day (its last)")
def end(assignment_id: int, body: AssignmentEnd, request: Request, conn: sa.Connection = Depends(get_conn),
        user: CurrentUser | None = Depends(optional_user)) -> dict:
    actor = _writer(conn, _signed_in(user), store.assignment(conn, assignment_id)["territory"])
    return service.end_assignment(request.app.state.engine, assignment_id, body.valid_to, actor=actor.username)


@router.get("/territories/{code}/staffing", summary="Staffing checks: grids without a full-time worker (一格一员), "
            "workload per person, assignments to grids a re-plan changed")
def staffing(code: str, request: Request, on: date | None = None, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    _reader(conn, user, code)
    return service.report(request.app.state.engine, code, on=on)
