"""Upload a GIS file as a layer of a territory: ``gridmap import`` over HTTP.

The file is received completely (within ``GRIDMAP_MAX_UPLOAD_MB``, enforced by the body-limit
middleware while it streams in) before anything is read; then it is checked and stored in one
transaction. A half-finished upload, a broken or hostile file (zip bomb, too many features or
vertices, coordinates out of range, no CRS), text in an unexpected encoding, a wrong coordinate
system, GCJ-02 left unconverted, a layer outside the territory or a buildings layer with missing
households gets a 4xx with the reason in English and Chinese (``detail_en``, ``detail_zh``) and
leaves nothing behind. ``fields`` and ``estimate_missing`` are ``gridmap import``'s ``--fields``
and ``--estimate-missing``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import optional_user, require_role
from gridmap.errors import Invalid
from gridmap.geo.crs import CRSError
from gridmap.geo.io import SUPPORTED_SUFFIXES, VectorReadError
from gridmap.services.importing import import_file
from gridmap.store import territories
from gridmap.store.users import CurrentUser

router = APIRouter(tags=["territories"])
LAYER_NAME = r"^[\w\-. ]{1,100}$"


@router.post("/api/territories/{code}/layers", status_code=201,
             summary="Upload a GIS file (GeoPackage, zipped Shapefile, GeoJSON, KML, CSV, GeoParquet) as a layer")
async def upload_layer(
    code: str, request: Request,
    file: UploadFile = File(description="the file; a Shapefile as one .zip"),
    name: str | None = Form(None, pattern=LAYER_NAME, description="layer name (default: the file name)"),
    crs: str | None = Form(None, max_length=64, description="when the file has no CRS, or is GCJ-02: e.g. 4490, gcj02"),
    encoding: Literal["utf-8", "gbk"] | None = Form(None),
    expect: Literal["polygon", "line", "point"] | None = Form(None),
    kind: str = Form("imported", max_length=32, pattern=r"^[a-z_]{1,32}$"),
    replace: bool = Form(False),
    fields: str | None = Form(None, max_length=1000,
                              description="columns to take as gridmap's own, e.g. households=户数,name=楼栋号 "
                                          "(over the field table of gridmap/geo/fields.py)"),
    estimate_missing: bool = Form(False, description="buildings: estimate missing or invalid households "
                                                     "(marked households_estimated) instead of refusing them"),
    user: CurrentUser | None = Depends(optional_user),
) -> dict:
    engine = request.app.state.engine
    with engine.connect() as conn:
        territories.get(conn, code)  # 404 in both languages if none
        actor = require_role(conn, user, ("planner",), code, "import layers")
    original = Path(file.filename or "upload").name[:200]
    suffix = Path(original).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES or suffix == ".shp":
        offered = sorted(SUPPORTED_SUFFIXES - {".shp"})
        raise Invalid(f"{original}: upload one of {', '.join(offered)} (a Shapefile as one .zip with its .shx, .dbf "
                      "and .prj)", f"{original}：请上传 {'、'.join(offered)} 之一（Shapefile 请与 .shx、.dbf、.prj 一起打成一个 .zip）")
    layer = name or re.sub(r"[^\w\-. ]", "_", Path(original).stem)[:100] or "upload"
    folder = Path(tempfile.mkdtemp(prefix="gridmap-upload-"))
    try:
        target = folder / ((re.sub(r"[^\w\-.]", "_", Path(original).stem)[:80] or "upload") + suffix)
        with open(target, "wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, 1 << 20)
        settings = request.app.state.settings
        summary = await run_in_threadpool(
            import_file, engine, target, territory=code, layer=layer, crs=crs, encoding=encoding, expect=expect,
            kind=kind, replace=replace, actor=actor.username, limits=settings.read_limits(), source_name=original,
            fields=fields, estimate_missing=estimate_missing)
    except VectorReadError as exc:  # both languages, without the server's temporary paths
        raise Invalid(exc.en.replace(str(folder), ""), exc.zh.replace(str(folder), "")) from exc
    except CRSError as exc:
        raise Invalid(str(exc).replace(str(folder), ""), f"坐标系有误：{exc}".replace(str(folder), "")) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"territory": summary.territory, "layer": summary.layer, "features": summary.features,
            "source_crs": summary.source_crs, "geometry_types": summary.geometry_types, "encoding": summary.encoding,
            "repaired": summary.repaired, "notes": summary.notes, "replaced": summary.replaced,
            "fields": summary.fields, "warnings": summary.warnings, "households": summary.households,
            "estimated": summary.estimated, "outside": summary.outside}
