"""Download a territory's plan in a government GIS format (the CLI's ``gridmap export`` over HTTP),
and a community's wall map (``gridmap print``)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from gridmap.api.deps import READ_ROLES, may_read_published, optional_user, require_role
from gridmap.services import exporting
from gridmap.services.exporting import ExportRequest, parse_layers
from gridmap.services.printing import WallMapRequest
from gridmap.store.users import CurrentUser, scopes_within
from gridmap.web.wallmap import print_wall_map

router = APIRouter(tags=["export"])

MEDIA_TYPES = {".zip": "application/zip", ".gpkg": "application/geopackage+sqlite3",
               ".geojson": "application/geo+json", ".kml": "application/vnd.google-earth.kml+xml",
               ".csv": "text/csv", ".parquet": "application/vnd.apache.parquet"}


@router.get("/api/territories/{code}/export",
            summary="Download a plan as Shapefile, GeoPackage, File Geodatabase, GeoJSON, KML, CSV or GeoParquet",
            response_class=FileResponse,
            responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()},
                             "description": "the file (a zip for Shapefile, File Geodatabase and several GeoJSON/CSV layers)"}})
def export_download(
    code: str, request: Request,
    format: Literal["shp", "gpkg", "gdb", "geojson", "kml", "csv", "parquet"] = Query("gpkg"),
    crs: str = Query("4490", max_length=40, description="4490, 4326, gk3, gk3-cm, gcj02 or an EPSG code"),
    encoding: Literal["utf-8", "gbk"] = Query("utf-8"),
    plan: str = Query("published", max_length=16, pattern=r"^(published|draft|[0-9]{1,9})$"),
    layers: str = Query("grids", max_length=80, description="comma list of grids,units,stations,incidents,crosswalk"),
    user: CurrentUser | None = Depends(optional_user),
) -> FileResponse:
    """The same files ``gridmap export`` writes. Published plans are public data (unless the
    deployment requires sign-in); a draft needs a role over the territory."""
    may_read_published(request, user)

    def authorize(conn: sa.Connection, plan) -> None:
        if plan.status == "draft" and (user is None or not scopes_within(conn, user, READ_ROLES, code)):
            require_role(conn, user, READ_ROLES, plan.territory, "export drafts")

    wanted = ExportRequest(territory=code, format=format, crs=crs, encoding=encoding, plan=plan,
                           layers=parse_layers(layers))  # a bad request is refused (422) in both languages
    folder = Path(tempfile.mkdtemp(prefix="gridmap-download-"))
    try:
        _, result = exporting.export_download(request.app.state.engine, wanted, folder, authorize)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if result.format == "csv" and result.path.suffix == ".csv":
        media = "text/csv; charset=" + ("gbk" if result.encoding == "gbk" else "utf-8")
    else:
        media = MEDIA_TYPES[result.path.suffix]
    return FileResponse(result.path, media_type=media, filename=result.path.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@router.get("/api/territories/{code}/wallmap", summary="A community's wall map of grids (A4/A3, PDF or PNG)",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}, "image/png": {}},
                             "description": "the sheet: grids with codes and households, legend, scale bar"}})
def wall_map_download(
    code: str, request: Request,
    plan: str = Query("published", max_length=16, pattern=r"^(published|draft|[0-9]{1,9})$"),
    paper: Literal["A4", "A3"] = Query("A4"),
    format: Literal["pdf", "png"] = Query("pdf"),
    lang: Literal["zh", "en"] = Query("zh"),
    plan_id: int | None = Query(None, ge=1, le=2_147_483_647, description="a plan by its id (instead of plan=)"),
    user: CurrentUser | None = Depends(optional_user),
) -> Response:
    """The sheet ``gridmap print`` writes, for the community ``code``: published plans are public
    data (unless the deployment requires sign-in); a draft needs a role over the territory."""
    may_read_published(request, user)

    def authorize(conn: sa.Connection, plan) -> None:  # a draft: a role over the community or above it
        if plan.status == "draft":
            require_role(conn, user, READ_ROLES, code, "print drafts")

    sheet = print_wall_map(request.app.state.engine, WallMapRequest(code, plan, paper, format, lang, plan_id),
                           authorize)
    return Response(sheet.content, media_type=sheet.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{sheet.filename}"'})
