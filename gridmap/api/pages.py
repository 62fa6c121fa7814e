"""Server-rendered pages. The landing page lists the territories (works without JavaScript)
and shows them on a Leaflet map (vendored) with an optional, configurable basemap."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gridmap import __version__, web
from gridmap.api.deps import get_conn
from gridmap.geo.levels import level_name
from gridmap.store import territories

TEMPLATES = Jinja2Templates(directory=str(web.TEMPLATES))

router = APIRouter(include_in_schema=False)
# the landing page is also the OGC API landing document, so it belongs in the API definition
landing_router = APIRouter(tags=["OGC API Features"])
# Tianditu (天地图) WMTS in Web Mercator ("_w"): vector map and its Chinese annotation layer.
TIANDITU = ("https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=%s&STYLE=default"
            "&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=%s")


def basemaps(settings) -> list[dict]:
    """The configured basemap layers for the maps (none by default: every map works without)."""
    if settings.tianditu_key:
        return [{"url": TIANDITU % (layer, layer, settings.tianditu_key), "attribution": "天地图 Tianditu",
                 "subdomains": "01234567", "maxZoom": 18} for layer in ("vec", "cva")]
    if settings.basemap_url:
        return [{"url": settings.basemap_url, "attribution": settings.basemap_attribution, "maxZoom": 19}]
    return []


@landing_router.get("/", response_class=HTMLResponse, summary="Landing page: the OGC API landing document (JSON) "
                    "to API clients, the territories on a map (HTML) to browsers",
                    responses={200: {"content": {"application/json": {}, "text/html": {}}}})
def landing(request: Request, conn: sa.Connection = Depends(get_conn)):
    """The landing page; the OGC API landing document to clients that ask for JSON."""
    from fastapi.responses import JSONResponse

    from gridmap.api.features import landing_document, wants_json

    if wants_json(request):  # service metadata: open even where reading data needs a sign-in
        return JSONResponse(landing_document(request))
    settings = request.app.state.settings
    # GRIDMAP_PUBLIC_READ=false: the territories are data, so the page lists none (a browser's
    # sign-in lives in the pages' scripts, not in this request)
    rows = territories.list_all(conn) if settings.public_read else []
    children: dict[str | None, list] = {}
    for row in rows:
        children.setdefault(row.parent_code, []).append(row)
    return TEMPLATES.TemplateResponse(request, "index.html", {
        "roots": children.get(None, []), "children": children, "count": len(rows), "closed": not settings.public_read,
        "level_name": level_name, "version": __version__,
        "basemaps": basemaps(settings),
    })


@router.get("/planner", response_class=HTMLResponse)
def planner(request: Request) -> HTMLResponse:
    """The browser planner (all data comes from the API; see gridmap/web/static/js/planner.js)."""
    settings = request.app.state.settings
    return TEMPLATES.TemplateResponse(request, "planner.html", {
        "basemaps": basemaps(settings), "version": __version__})


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request) -> HTMLResponse:
    """The grid worker's phone page: report an incident where they stand (gridmap/web/static/js/report.js)."""
    return TEMPLATES.TemplateResponse(request, "report.html", {"basemaps": basemaps(request.app.state.settings),
                                                               "version": __version__})


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    """The incident dashboard: maps and counts that follow the filters (gridmap/web/static/js/dashboard.js)."""
    return TEMPLATES.TemplateResponse(request, "dashboard.html", {"basemaps": basemaps(request.app.state.settings),
                                                                  "version": __version__})


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> HTMLResponse:
    """The people of the grids (gridmap/web/static/js/people.js): grids coloured by staffing (一格一员)
    or by the households register's counts, a grid's staff and figures, and for the grid's own staff
    its households; on a phone, "my grids" first."""
    return TEMPLATES.TemplateResponse(request, "people.html", {"basemaps": basemaps(request.app.state.settings),
                                                               "version": __version__})


@router.get("/emergency", response_class=HTMLResponse)
def emergency_page(request: Request) -> HTMLResponse:
    """The emergency board (平战结合; gridmap/web/static/js/board.js): switch on and off, every grid's
    status and check-in on the map and in a table that refreshes itself, the report after."""
    return TEMPLATES.TemplateResponse(request, "emergency.html", {"basemaps": basemaps(request.app.state.settings),
                                                                  "version": __version__})


@router.get("/maps/stations", response_class=HTMLResponse)
def stations_page(request: Request, territory: str, type: str | None = None, minutes: float = 15.0,
                  conn: sa.Connection = Depends(get_conn)) -> HTMLResponse:
    """Grids, stations and their walking service areas (folium, offline)."""
    from gridmap.services import stations as service
    from gridmap.store import frames
    from gridmap.web.maps import stations_map

    grids = frames.published_grids(conn, territory)
    points = frames.stations(conn, territory, station_type=type, places=False)
    if grids.empty:
        return HTMLResponse(f"<p>territory {territory} has no published grids</p>", status_code=404)
    areas = service.service_areas(request.app.state.engine, territory, type, minutes=minutes) if type else None
    names = {t["code"]: (t["name_zh"], t["name_en"]) for t in service.station_types()}
    return HTMLResponse(stations_map(grids, points, areas, type_names=names).get_root().render())


@router.get("/maps/incidents", response_class=HTMLResponse)
def incidents_page(territory: str, metric: str = "per_1000_households", category: str | None = None,
                   conn: sa.Connection = Depends(get_conn)) -> HTMLResponse:
    """Incident choropleth, clusters, heat map and a month slider (folium, offline)."""
    from gridmap.store import incident_stats as stats
    from gridmap.web.maps import METRIC_NAMES, incidents_map

    if metric not in METRIC_NAMES:
        return HTMLResponse(f"<p>metric must be one of {', '.join(METRIC_NAMES)}</p>", status_code=422)
    filters = stats.Filters(category=category)
    fc = stats.choropleth(conn, territory, filters, display=True, metrics=(metric,))
    if not fc["features"]:
        return HTMLResponse(f"<p>territory {territory} has no published grids</p>", status_code=404)
    m = incidents_map(fc, stats.heat(conn, territory, filters, cell_deg=0.0005),
                      stats.clusters(conn, territory, filters, cell_deg=0.005), metric=metric,
                      monthly=stats.monthly_clusters(conn, territory, filters, cell_deg=0.005))
    return HTMLResponse(m.get_root().render())
