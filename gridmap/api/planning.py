"""Plan editing: drafts, edit operations, validation, diff, publish, history, revert and deleting
a draft.

Writes need a planner (or admin) role over the plan's territory. A write names the draft
version it was made against; a stale version gets 409 with the edits saved since.

Every refusal (401, 403, 404, 409, 422 of these routes) answers ``detail`` in English, as it always
has, plus ``detail_en`` and ``detail_zh``: the planner shows the one of the user's language.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask
from pydantic import BaseModel, Field

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.api.conditional import unchanged, version_headers
from gridmap.api.deps import READ_ROLES, get_conn, optional_user, public_reader, require_role
from gridmap.api.plans import jsonable, readable_plan
from gridmap.errors import Invalid
from gridmap.services import planning
from gridmap.services.edits import Operation
from gridmap.store import plans, territories
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["planning"])
PLANNER = ("planner",)
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class EditRequest(BaseModel):
    version: int = Field(description="the draft version these edits were made against")
    operations: list[Operation] = Field(min_length=1, max_length=1000)
    dry_run: bool = Field(False, description="compute the statistics and roll back (a preview)")
    with_geometry: bool = Field(False, description="return the touched grids' new shapes as GeoJSON")


class DraftRequest(BaseModel):
    source: Literal["published"] | int = Field("published", description="'published' or a plan id to copy")


class PublishRequest(BaseModel):
    version: int = Field(description="the draft version being published")


class RevertRequest(BaseModel):
    publish: bool = False


def _territory_of(conn: sa.Connection, plan_id: int) -> str:
    code = plans.territory_of(conn, plan_id)
    if code is None:
        raise plans.PlanNotFound.of(plan_id)
    return code


def planner_scope(conn: sa.Connection, user: CurrentUser | None, territory: str, action: str) -> tuple[CurrentUser, list[str] | None]:
    """Who may edit: a planner of the territory (or above) edits everything (scope None); a planner
    of part of it edits that part only (scope = their territories); anyone else gets 401/403."""
    from gridmap.store.users import has_role, scopes_within

    if user is None:
        return require_role(conn, user, PLANNER, territory, action), None
    if has_role(conn, user, PLANNER, territory):
        return user, None
    scope = scopes_within(conn, user, PLANNER, territory)
    if not scope:
        require_role(conn, user, PLANNER, territory, action)  # raises 403
    return user, scope


@router.post("/api/territories/{code}/drafts", status_code=201, summary="New draft: a copy of the published plan "
             "or of another plan of the territory")
def create_draft(code: str, request: Request, body: DraftRequest = Body(default_factory=DraftRequest),
                 conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)):
    territories.get(conn, code)
    actor, _scope = planner_scope(conn, user, code, "create drafts")
    plan_id, version = planning.new_draft(request.app.state.engine, code, source=body.source, actor=actor.username)
    return {"plan_id": plan_id, "version": version, **jsonable(planning.plan_state(request.app.state.engine, plan_id))}


@router.get("/api/plans/{plan_id}/state", summary="A plan's edit version and counts")
def state(plan_id: int, request: Request, _plan: plans.Plan = Depends(readable_plan)) -> dict:
    return jsonable(planning.plan_state(request.app.state.engine, plan_id))


@router.get("/api/plans/{plan_id}/units", summary="A plan's units with their grid (GeoJSON); simplify in metres",
            responses={**GEOJSON_OK, 304: {"description": "not modified: the If-None-Match tag names this version"}})
def plan_units(plan_id: int, request: Request, simplify: float = 0.0,
               decimals: int = Query(7, ge=5, le=7, description="decimal places of coordinates (6: about 10 cm)"),
               conn: sa.Connection = Depends(get_conn), plan: plans.Plan = Depends(readable_plan)) -> Response:
    if not 0 <= simplify <= 100:
        raise Invalid("simplify must be between 0 and 100 metres", "simplify（简化程度）须在 0 到 100 米之间")
    # tagged by the plan's row and edit version: a browser that has this version asks again and gets 304
    tag = planning.units_tag(conn, plan, simplify, decimals)
    headers = version_headers(tag, public=plan.status != "draft" and request.app.state.settings.public_read)
    if unchanged(request, headers):
        return Response(status_code=304, headers=headers)
    shared = request.app.state.shared_cache
    document = planning.units_document(conn, plan, simplify_m=simplify, decimals=decimals, tag=tag, shared=shared)
    # a document written just now goes to the other processes' cache after the answer, not before it
    later = BackgroundTask(planning.share_units_document, shared, document, plan.territory) if document.fresh else None
    return Response(document.data, media_type="application/geo+json", headers=headers, background=later)


@router.get("/api/plans/{plan_id}/grid-stats", summary="Every grid's households, area, compactness, parts")
def grid_stats(plan_id: int, request: Request, _plan: plans.Plan = Depends(readable_plan)) -> list[dict]:
    return planning.grid_stats(request.app.state.engine, plan_id)


@router.post("/api/plans/{plan_id}/edits", summary="Apply edit operations to a draft (all or nothing)",
             responses={409: {"description": "stale version: the body lists the edits saved since"},
                        422: {"description": "an operation cannot be applied; nothing was changed"}})
def edit(plan_id: int, body: EditRequest, request: Request, conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)):
    territory = _territory_of(conn, plan_id)
    actor, scope = planner_scope(conn, user, territory, "edit plans")
    conn.rollback()  # release the read snapshot before the write transaction
    result = planning.apply_edits(request.app.state.engine, plan_id, body.operations, version=body.version,
                                  actor=actor.username, dry_run=body.dry_run, with_geometry=body.with_geometry,
                                  scope=scope)
    return JSONResponse(jsonable(result.as_dict()))


@router.get("/api/plans/{plan_id}/edits", summary="The saved edits of a draft after a version")
def edit_log(plan_id: int, since: int = 0, conn: sa.Connection = Depends(get_conn),
             _plan: plans.Plan = Depends(readable_plan)) -> list[dict]:
    return plans.edits_since(conn, plan_id, since)


@router.get("/api/plans/{plan_id}/validate", summary="Check the rules: coverage, contiguity, band, compounds whole")
def validate(plan_id: int, request: Request, _plan: plans.Plan = Depends(readable_plan)) -> dict:
    return planning.validate(request.app.state.engine, plan_id)


@router.get("/api/plans/{plan_id}/diff", summary="Grids added, removed and changed against the published plan "
            "(or ?against=plan id), with their shapes")
def diff(plan_id: int, request: Request, against: int | None = Query(None, ge=1, le=2_147_483_647),
         _plan: plans.Plan = Depends(readable_plan), conn: sa.Connection = Depends(get_conn),
         user: CurrentUser | None = Depends(optional_user)):
    """The plan compared with ``against`` (a plan id; default the published plan): the caller must
    be able to read that plan too (a draft needs a role over its territory)."""
    if against is not None:
        readable_plan(against, request, conn, user)
    return JSONResponse(jsonable(planning.diff(request.app.state.engine, plan_id, against)))


@router.get("/api/plans/{plan_id}/notes", summary="Notes on the plan's grids and units (why they were drawn so)")
def plan_notes(plan_id: int, conn: sa.Connection = Depends(get_conn), _plan: plans.Plan = Depends(readable_plan)):
    from gridmap.store import notes

    return JSONResponse(jsonable({"plan_id": plan_id, "notes": notes.of_plan(conn, plan_id)}))


@router.post("/api/plans/{plan_id}/publish", summary="Publish a draft atomically; the old plan becomes history")
def publish(plan_id: int, body: PublishRequest, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(optional_user)):
    territory = _territory_of(conn, plan_id)
    actor = require_role(conn, user, PLANNER, territory, "publish plans")
    conn.rollback()
    return jsonable(planning.publish(request.app.state.engine, plan_id, version=body.version, actor=actor.username))


@router.post("/api/plans/{plan_id}/revert", status_code=201, summary="Bring back a published or history plan as "
             "a new draft (and publish it, if asked)")
def revert(plan_id: int, request: Request, body: RevertRequest = Body(default_factory=RevertRequest),
           conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)):
    territory = _territory_of(conn, plan_id)
    actor = require_role(conn, user, PLANNER, territory, "revert plans")
    conn.rollback()
    return planning.revert(request.app.state.engine, plan_id, actor=actor.username, publish_now=body.publish)


@router.delete("/api/plans/{plan_id}", status_code=204, response_class=Response,
               summary="Delete a draft with its grids, edits and the units made for it alone (drafts only: "
               "published and history plans are kept)",
               responses={204: {"description": "deleted"},
                          404: {"description": "no such plan", "content": ERROR_JSON},
                          409: {"description": "the plan is published or history: the record is kept",
                                "content": ERROR_JSON}})
def delete_draft(plan_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                 user: CurrentUser | None = Depends(optional_user)) -> Response:
    territory = _territory_of(conn, plan_id)
    actor = require_role(conn, user, PLANNER, territory, "delete drafts")  # the whole plan, as for a publish
    conn.rollback()  # release the read snapshot before the write transaction
    planning.delete_draft(request.app.state.engine, plan_id, actor=actor.username)
    return Response(status_code=204)


@router.get("/api/territories/{code}/history", summary="Every plan of a territory with its validity period")
def history(code: str, request: Request, conn: sa.Connection = Depends(get_conn),
            user: CurrentUser | None = Depends(public_reader)) -> list[dict]:
    territories.get(conn, code)
    rows = planning.history(request.app.state.engine, code)
    may_see_drafts = user is not None and _has(conn, user, code)
    return [jsonable(r) for r in rows if r["status"] != "draft" or may_see_drafts]


def _has(conn: sa.Connection, user: CurrentUser, code: str) -> bool:
    from gridmap.store.users import has_role

    return has_role(conn, user, READ_ROLES, code)


__all__ = ["router"]
