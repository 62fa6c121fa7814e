"""Server-rendered pages. The landing page lists the territories (works without JavaScript)
and shows them on a Leaflet map (vendored) with an optional, configurable basemap."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gridmap import __version__
from gridmap.api.deps import get_conn
from gridmap.store import territories

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LEVEL_NAMES = {"city": ("市", "city"), "district": ("区/县", "district"), "street": ("街道/乡镇", "street"),
               "community": ("社区/村", "community")}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, conn: sa.Connection = Depends(get_conn)):
    """The landing page; the OGC API landing document to clients that ask for JSON."""
    from fastapi.responses import JSONResponse

    from gridmap.api.features import landing_document, wants_json

    if wants_json(request):
        return JSONResponse(landing_document(request))
    rows = territories.list_all(conn)
    children: dict[str | None, list] = {}
    for row in rows:
        children.setdefault(row.parent_code, []).append(row)
    settings = request.app.state.settings
    return TEMPLATES.TemplateResponse(request, "index.html", {
        "roots": children.get(None, []), "children": children, "count": len(rows),
        "level_names": LEVEL_NAMES, "version": __version__,
        "basemap_url": settings.basemap_url, "basemap_attribution": settings.basemap_attribution,
    })
