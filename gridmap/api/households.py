"""The households register over HTTP. Personal data (names, ID numbers, phones) is read only by
the grid's own staff (a worker role bound to the grid, or a staff record assigned to it and linked
to the account) and the territory's administrators, every read audited; nothing of it is public.
The counts per grid are for every role of the territory. Importing, removing and the full
(unmasked) export are the administrators'."""

from __future__ import annotations

from datetime import date
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import SIGN_IN_FIRST, get_conn, optional_user, require_admin, require_role
from gridmap.api.sheet_upload import received_sheet
from gridmap.errors import Forbidden, Unauthenticated
from gridmap.services import households as service
from gridmap.store import households as store
from gridmap.store import plans, territories, users
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api", tags=["households"])
COUNT_READERS = ("viewer", "worker", "handler", "planner")  # and administrators: counts, nobody in them


def _vault(request: Request):
    return request.app.state.settings.vault()


def _grid_reader(conn: sa.Connection, user: CurrentUser | None, admin_of: str, plan_id: int,
                 grid: str | None) -> CurrentUser:
    """401 without a user; the user if they administer ``admin_of`` (or above) or are the staff of
    ``grid`` of plan ``plan_id``; 403 otherwise."""
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    if users.has_role(conn, user, (), admin_of):  # () : administrators only
        return user
    if grid is not None and grid in store.readable_grids(conn, user.id, plan_id, date.today()):
        return user
    raise Forbidden(f"{user.username} may not read the households register of grid {grid}: only that grid's staff "
                    f"and the administrators of {admin_of} may",
                    f"{user.username} 无权查看网格 {grid} 的住户登记：仅限该网格的工作人员和辖区 {admin_of} 的管理员")


def _unknown_is_forbidden(conn: sa.Connection, user: CurrentUser, what_en: str, what_zh: str):
    """A household or resident id that does not exist answers as one the user may not read (403),
    so that ids cannot be probed; only an administrator of every territory is told it is not there."""
    def refuse(exc: store.HouseholdNotFound):
        if users.admin_everywhere(conn, user):
            return exc
        return Forbidden(f"{user.username} may not read {what_en}", f"{user.username} 无权查看{what_zh}")
    return refuse


@router.get("/territories/{code}/my-grids",
            summary="The grids the signed-in user works in (a worker role's grids, their staff assignments) and "
                    "whether they administer the territory: whose households they may read")
def my_grids(code: str, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> dict:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    territories.get(conn, code)
    found = plans.published_above(conn, code)
    grids = store.readable_grids(conn, user.id, found[1], date.today()) if found else set()
    if found:
        grids = plans.grids_within(conn, found[1], code, sorted(grids))
    return {"territory": code, "grids": sorted(grids), "administrator": users.has_role(conn, user, (), code)}


@router.get("/territories/{code}/households/summary",
            summary="The register per published grid: households, residents, elderly and focus tags (counts only)")
def summary(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)) -> dict:
    territories.get(conn, code)
    require_role(conn, user, COUNT_READERS, code, "read the households register")
    return service.summary(request.app.state.engine, code)


@router.get("/territories/{code}/grids/{grid_code}/households",
            summary="A grid's households and residents in full (the grid's staff and administrators; audited)")
def grid_register(code: str, grid_code: str, request: Request, conn: sa.Connection = Depends(get_conn),
                  user: CurrentUser | None = Depends(optional_user)) -> dict:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    _owner, plan_id = service.covering_plan(conn, code)
    actor = _grid_reader(conn, user, code, plan_id, grid_code)
    return service.grid_register(request.app.state.engine, code, grid_code, vault=_vault(request), actor=actor.username)


@router.get("/households/{household_id}", summary="One household with its residents (its grid's staff and administrators; audited)")
def household(household_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
              user: CurrentUser | None = Depends(optional_user)) -> dict:
    if user is None:  # before any lookup: whether a household exists is not told to a stranger
        raise Unauthenticated(*SIGN_IN_FIRST)
    try:
        registered = store.household_territory(conn, household_id)
        _owner, plan_id, grid = service.household_place(conn, household_id)
    except store.HouseholdNotFound as exc:
        raise _unknown_is_forbidden(conn, user, f"household {household_id}", f"住户 {household_id}")(exc) from None
    actor = _grid_reader(conn, user, registered, plan_id, grid)
    return service.household(request.app.state.engine, household_id, vault=_vault(request), actor=actor.username)


@router.delete("/residents/{resident_id}", status_code=204, summary="Remove a resident (administrators; audited)")
def remove_resident(resident_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                    user: CurrentUser | None = Depends(optional_user)) -> None:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    try:
        code, _household = store.resident_territory(conn, resident_id)
    except store.HouseholdNotFound as exc:
        raise _unknown_is_forbidden(conn, user, f"resident {resident_id}", f"居民 {resident_id}")(exc) from None
    actor = require_admin(conn, user, code, "manage the households register")
    service.remove_resident(request.app.state.engine, resident_id, actor=actor.username)


@router.get("/territories/{code}/households/export",
            summary="The register as CSV with the import's headers: masked, or in full for an administrator (audited)")
def export(code: str, request: Request, full: bool = False, encoding: Literal["utf-8", "gbk"] = "utf-8",
           conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> Response:
    territories.get(conn, code)
    if full:
        actor = require_admin(conn, user, code, "export the households register in full")
    else:
        actor = require_admin(conn, user, code, "read the households register")
    data = service.export(request.app.state.engine, code, vault=_vault(request), actor=actor.username, full=full,
                          encoding=encoding)
    name = f"households-{code}{'-full' if full else '-masked'}.csv"
    return Response(data, media_type=f"text/csv; charset={encoding}",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.post("/territories/{code}/households/import",
             summary="Take an office's register sheet (.csv UTF-8/GBK or .xlsx): all rows or none, problems listed")
async def import_sheet(code: str, request: Request, file: UploadFile = File(description="the register, .csv or .xlsx"),
                       encoding: Literal["utf-8", "gbk"] | None = Form(None),
                       replace: bool = Form(False, description="the sheet is the whole register: residents not in it are removed"),
                       check: bool = Form(False, description="report what the sheet would do, store nothing"),
                       user: CurrentUser | None = Depends(optional_user)) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        territories.get(conn, code)
        actor = require_admin(conn, user, code, "manage the households register")
    vault = _vault(request)
    async with received_sheet(file) as (target, original):
        result = await run_in_threadpool(service.import_sheet, engine, code, target, vault=vault, actor=actor.username,
                                         encoding=encoding, replace=replace, check=check)
    return {**result, "file": original}
