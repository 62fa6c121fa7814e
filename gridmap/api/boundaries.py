"""Create or update territories from a district's boundary files: ``gridmap territory import``
over HTTP (multipart). The files are received whole before anything is read, checked, and the
territories stored in one transaction, or refused with every finding (422) and nothing stored."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import optional_user, require_admin
from gridmap.errors import Invalid
from gridmap.geo.io import SUPPORTED_SUFFIXES
from gridmap.services.boundaries import BoundaryImport, import_boundaries
from gridmap.store import territories
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["territories"])
FIELDS = r"^([A-Za-z_]+=[^,=]{1,64})(,[A-Za-z_]+=[^,=]{1,64})*$"


async def _save(upload: UploadFile, folder: Path, role: str) -> Path:
    """An uploaded file written whole to ``folder`` (a Shapefile arrives as one .zip)."""
    original = Path(upload.filename or role).name[:200]
    suffix = Path(original).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES or suffix == ".shp":
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES - {".shp"}))
        raise Invalid(f"{original}: upload one of {allowed} (a Shapefile as one .zip with its .shx, .dbf and .prj)",
                      f"{original}：请上传以下格式之一：{allowed}（Shapefile 请连同 .shx、.dbf、.prj 打包为一个 .zip）")
    target = folder / role / ((re.sub(r"[^\w\-.]", "_", Path(original).stem)[:80] or role) + suffix)
    target.parent.mkdir()
    with open(target, "wb") as out:
        await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
    return target


def summary_json(summary: BoundaryImport) -> dict:
    return {"city": summary.city, "city_unnamed": summary.city_unnamed, "dry_run": summary.dry_run,
            "counts": summary.counts, "created": summary.created,
            "updated": summary.updated, "removed": summary.removed, "columns": summary.columns,
            "source_crs": summary.source_crs,
            "findings": [f.as_dict() for f in summary.findings]}


@router.post("/api/territories", status_code=201,
             summary="Create or update territories from a district's boundary files (communities; streets, district)")
async def import_territories(
    request: Request,
    communities: UploadFile = File(description="the communities' boundaries, 12-digit codes (a Shapefile as one .zip)"),
    streets: UploadFile | None = File(None, description="the streets' boundaries (default: dissolved by code)"),
    district: UploadFile | None = File(None, description="the district outline (default: the stored one, or dissolved)"),
    parent: str | None = Form(None, pattern=r"^\d{4,12}$", description="the city (or district) above"),
    parent_name: str | None = Form(None, max_length=100, description="the city's name, when it is created (雅安市)"),
    fields: str | None = Form(None, pattern=FIELDS, description="columns holding code, name ...: code=社区代码,name=社区名称"),
    crs: str | None = Form(None, max_length=64, description="when the files have none, or are GCJ-02: e.g. 4490, gcj02"),
    encoding: Literal["utf-8", "gbk"] | None = Form(None),
    replace: bool = Form(False, description="update territories that exist (plans keep their history)"),
    dry_run: bool = Form(False, description="check and report; store nothing"),
    user: CurrentUser | None = Depends(optional_user),
) -> dict:
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        known = parent if parent and territories.exists(conn, parent) else None  # a new city: admins of all
        actor = require_admin(conn, user, known, "import territories")
    folder = Path(tempfile.mkdtemp(prefix="gridmap-territory-"))
    try:
        files = {role: await _save(upload, folder, role) for role, upload in
                 (("communities", communities), ("streets", streets), ("district", district)) if upload is not None}
        summary = await run_in_threadpool(
            import_boundaries, engine, files["communities"], streets=files.get("streets"),
            district=files.get("district"), parent=parent, parent_name=parent_name, fields=fields, crs=crs, encoding=encoding,
            replace=replace, dry_run=dry_run, actor=actor.username)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return summary_json(summary)
