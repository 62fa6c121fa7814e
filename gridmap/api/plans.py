"""Plans: drafts and published plans of a territory, their grids (GeoJSON) and reports."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from gridmap.api.conditional import unchanged, version_headers
from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.errors import Invalid
from gridmap.api.deps import READ_ROLES, get_conn, may_read_published, optional_user, public_reader, require_role
from gridmap.store import features, frames, plans, territories
from gridmap.store.users import CurrentUser
from gridmap.geo.export import GPKG_DATASET_OPTIONS

router = APIRouter(tags=["plans"])
CONFLICT_FORMATS = {200: {"description": "GeoJSON, or CSV / GeoPackage with format=csv|gpkg",
                          "content": {**GEOJSON_OK[200]["content"], "text/csv": {}, "application/geopackage+sqlite3": {}}}}


class PlanOut(BaseModel):
    id: int
    version: int
    status: str
    origin: str | None
    author: str | None
    created_at: datetime
    published_at: datetime | None
    grids: int
    summary: dict | None


def readable_plan(plan_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                  user: CurrentUser | None = Depends(optional_user)) -> plans.Plan:
    """The path's plan (404 when there is none), if this caller may read it: published plans and
    history as public data, drafts only for users with a role over the territory."""
    plan = plans.get(conn, plan_id)
    if plan.status == "draft":
        from gridmap.store.users import scopes_within

        if user is None or not scopes_within(conn, user, READ_ROLES + ("planner",), plan.territory):
            require_role(conn, user, READ_ROLES, plan.territory, "read drafts")
    else:
        may_read_published(request, user)
    return plan


@router.get("/api/territories/{code}/plans", response_model=list[PlanOut], summary="A territory's plans")
def territory_plans(code: str, conn: sa.Connection = Depends(get_conn),
                    _reader: CurrentUser | None = Depends(public_reader)) -> list[PlanOut]:
    territories.get(conn, code)  # 404 in both languages if none
    return [PlanOut(**row) for row in plans.list_for(conn, code)]


@router.get("/api/plans/{plan_id}", summary="One plan: metadata, parameters and report summary")
def plan(plan_id: int, request: Request, p: plans.Plan = Depends(readable_plan)) -> JSONResponse:
    from gridmap.services.planning import report

    return JSONResponse(jsonable({
        "id": p.id, "territory": p.territory, "version": p.version, "status": p.status, "origin": p.origin,
        "author": p.author, "parameters": p.parameters, "created_at": p.created_at, "published_at": p.published_at,
        "summary": report(request.app.state.engine, plan_id)["summary"]}))


@router.get("/api/plans/{plan_id}/grids", summary="A plan's grids as GeoJSON (RFC 7946)",
            responses=GEOJSON_OK)
def plan_grids(plan_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
               plan: plans.Plan = Depends(readable_plan)) -> Response:
    """Tagged by the plan's version: asked again with the tag, 304 without the query."""
    from gridmap.services.planning import plan_tag

    headers = version_headers(plan_tag(conn, plan, "grids"),
                              public=plan.status != "draft" and request.app.state.settings.public_read)
    if unchanged(request, headers):
        return Response(status_code=304, headers=headers)
    return JSONResponse(features.grids_feature_collection(conn, plan_id), media_type="application/geo+json",
                        headers=headers)


@router.get("/api/plans/{plan_id}/search", summary="Find grids, communities, compounds, sites, buildings, "
            "addresses, roads and POIs by text; each hit with its point and the plan's grid holding it")
def plan_search(plan_id: int, q: str = Query(min_length=1, max_length=100, description="text or code to look for"),
                limit: int = Query(20, ge=1, le=100), conn: sa.Connection = Depends(get_conn),
                _plan: plans.Plan = Depends(readable_plan)) -> dict:
    from gridmap.store.search import search

    return {"query": q, "hits": search(conn, plan_id, q, limit)}


@router.get("/api/plans/{plan_id}/report", summary="A plan's report: summary, per-grid flags with their reasons "
            "(English and Chinese), proofs and the households histogram; computed for any plan, kept per edit version")
def plan_report(plan_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                plan: plans.Plan = Depends(readable_plan)) -> Response:
    from gridmap.services.planning import plan_tag, report

    public = plan.status != "draft" and request.app.state.settings.public_read
    headers = version_headers(plan_tag(conn, plan, "report"), public=public)
    if unchanged(request, headers):
        return Response(status_code=304, headers=headers)
    body = jsonable(report(request.app.state.engine, plan_id))
    with request.app.state.engine.connect() as fresh:  # a report worked out now is kept in the plan's row
        now = plans.get(fresh, plan_id)
        if now.lock_version != plan.lock_version:  # edited meanwhile: which version the body is, is not known
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        headers = version_headers(plan_tag(fresh, now, "report"), public=public)
    return JSONResponse(body, headers=headers)


@router.get("/plans/{plan_id}/report", response_class=HTMLResponse, include_in_schema=False)
def plan_report_page(plan_id: int, request: Request, conn: sa.Connection = Depends(get_conn),
                     user: CurrentUser | None = Depends(optional_user)) -> HTMLResponse:
    """The report as a page; a page too when the reader may not see it (a draft without signing
    in, an unknown plan): a readable refusal in both languages with the way to sign in."""
    import pandas as pd

    from gridmap.services.planning import report
    from gridmap.geo.report import FLAG_COLUMNS
    from gridmap.web.reports import partition_report_html, refusal_page

    from gridmap.api.errors import status_of
    from gridmap.errors import Refusal

    try:
        p = readable_plan(plan_id, request, conn, user)
    except Refusal as exc:
        status = status_of(exc)
        return HTMLResponse(refusal_page(status, plan_id), status_code=status)
    full = report(request.app.state.engine, plan_id)
    grids = frames.plan_grids(conn, plan_id)
    flags = pd.DataFrame(full.get("flags", []), columns=FLAG_COLUMNS)
    settings = request.app.state.settings
    return HTMLResponse(partition_report_html(
        grids, {**full, "plan_id": plan_id}, flags, title=plan_titles(conn, p), territory=p.territory,
        basemap_url=settings.basemap_url, basemap_attribution=settings.basemap_attribution))


PLAN_STATUS = {"draft": ("草稿", "draft"), "published": ("已发布", "published"), "history": ("历史", "history")}


def plan_titles(conn: sa.Connection, p) -> tuple[str, str]:
    """A plan's report title in Chinese and in English, with its territory's name: ("511802 雨城区 ·
    方案 3（已发布）", "511802 雨城区 · plan 3 (published)")."""
    from gridmap.store.territories import TerritoryNotFound, get

    zh, en = PLAN_STATUS.get(p.status, (p.status, p.status))
    try:
        name = get(conn, p.territory).name or ""
    except TerritoryNotFound:  # the title is decoration: the code alone will do
        name = ""
    place = f"{p.territory} {name}".strip()
    return f"{place} · 方案 {p.version}（{zh}）", f"{place} · plan {p.version} ({en})"


def plan_title(conn: sa.Connection, p) -> str:
    """A plan's report title in both languages: "511802 雨城区 · 方案 3（已发布） plan 3 (published)"."""
    zh, en = plan_titles(conn, p)
    return f"{zh} {en.split(' · ', 1)[-1]}"


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# -- merge results ------------------------------------------------------------------------------
def _download(frame, plan_id: int, name: str, fmt: str):
    """CSV (UTF-8 with BOM, so spreadsheet software shows Chinese) or GeoPackage bytes."""
    import tempfile
    from pathlib import Path

    from fastapi.responses import Response

    if fmt == "csv":
        data = frame.drop(columns="geometry", errors="ignore").to_csv(index=False).encode("utf-8-sig")
        return Response(data, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="plan{plan_id}_{name}.csv"'})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"plan{plan_id}_{name}.gpkg"
        out = frame.copy()
        for column in out.columns:
            if out[column].map(lambda v: isinstance(v, (list, dict))).any():
                out[column] = out[column].map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else str(v))
        out.to_file(path, driver="GPKG", layer=name, engine="pyogrio", dataset_options=GPKG_DATASET_OPTIONS)
        data = path.read_bytes()
    return Response(data, media_type="application/geopackage+sqlite3",
                    headers={"Content-Disposition": f'attachment; filename="plan{plan_id}_{name}.gpkg"'})


@router.get("/api/plans/{plan_id}/crosswalk", summary="Merge crosswalk: each departmental grid → unified grids "
            "(format=json|csv|gpkg)", responses={200: {"content": {"text/csv": {}, "application/geopackage+sqlite3": {}}}})
def plan_crosswalk(plan_id: int, format: str = "json", conn: sa.Connection = Depends(get_conn),
                   _plan: plans.Plan = Depends(readable_plan)):
    from gridmap.store import merges

    frame = merges.crosswalk(conn, plan_id)
    if format == "json":
        return JSONResponse(jsonable(frame.astype(object).where(frame.notna(), None).to_dict(orient="records")))
    if format == "csv":
        return _download(frame, plan_id, "crosswalk", "csv")
    if format == "gpkg":  # with each pair's geometry: the unified grid's part that came from the old grid
        import geopandas as gpd

        grids = frames.plan_grids(conn, plan_id)[["grid_code", "geometry"]]
        return _download(gpd.GeoDataFrame(frame.merge(grids, on="grid_code"), geometry="geometry", crs=4490),
                         plan_id, "crosswalk", "gpkg")
    raise Invalid("format must be json, csv or gpkg", "格式只能是 json、csv 或 gpkg")


@router.get("/api/plans/{plan_id}/conflicts", summary="Merge conflicts (format=geojson|csv|gpkg)",
            responses=CONFLICT_FORMATS)
def plan_conflicts(plan_id: int, format: str = "geojson", conn: sa.Connection = Depends(get_conn),
                   _plan: plans.Plan = Depends(readable_plan)):
    from gridmap.store import merges

    if format == "geojson":
        return JSONResponse(merges.conflicts_feature_collection(conn, plan_id), media_type="application/geo+json")
    if format in ("csv", "gpkg"):
        return _download(merges.conflicts(conn, plan_id), plan_id, "conflicts", format)
    raise Invalid("format must be geojson, csv or gpkg", "格式只能是 geojson、csv 或 gpkg")


@router.get("/api/plans/{plan_id}/duties", summary="Each unified grid's duties, tagged with their department")
def plan_duties(plan_id: int, conn: sa.Connection = Depends(get_conn),
                _plan: plans.Plan = Depends(readable_plan)) -> JSONResponse:
    from gridmap.store import merges

    frame = merges.duties(conn, plan_id)
    grouped = {code: [{"department": d, "duty": u} for d, u in zip(g["department"], g["duty"])]
               for code, g in frame.groupby("grid_code")}
    return JSONResponse(grouped)
