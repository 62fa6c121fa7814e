"""Aggregated incident figures for the dashboard maps: counts, a per-grid choropleth, heat cells
and clusters, all under the same filters (category, status, date range, street, community)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.errors import Invalid
from gridmap.api.deps import get_conn, public_reader
from gridmap.api.errors import bilingual_body, utc
from gridmap.api.plans import jsonable
from gridmap.incident_rules import STATES
from gridmap.store import incident_stats as stats
from gridmap.store import territories
from gridmap.store.users import CurrentUser

# no router prefix: besides the per-territory figures the dashboard asks which territory to open on
PREFIX = "/api/territories/{code}/incidents"
router = APIRouter(tags=["dashboard"])

def filters(code: str, category: str | None = None, status: str | None = Query(None, description="comma-separated"),
            start: datetime | None = None, end: datetime | None = None, street: str | None = None,
            community: str | None = None, conn: sa.Connection = Depends(get_conn),
            _r: CurrentUser | None = Depends(public_reader)) -> stats.Filters:
    territories.get(conn, code)  # 404 in both languages if none
    statuses = tuple(status.split(",")) if status else None
    if statuses and set(statuses) - set(STATES):
        raise Invalid(f"status must be among {', '.join(STATES)}", f"状态只能是 {'、'.join(STATES)}")
    start, end = utc(start), utc(end)
    if start and end and end <= start:
        raise Invalid("end must come after start", "结束时间必须晚于开始时间")
    return stats.Filters(category or None, statuses, start, end, street or None, community or None)


def cell_for_zoom(zoom: int) -> float:
    """Map cells about 60 screen pixels wide at that zoom, in degrees."""
    return 360.0 / (2 ** zoom) / 256 * 60


@router.get("/api/dashboard/territories", summary="Every territory with the number of incidents routed into it "
            "(its whole subtree), busiest first: the dashboard opens on the busiest one")
def territory_counts(conn: sa.Connection = Depends(get_conn),
                     _r: CurrentUser | None = Depends(public_reader)) -> list[dict]:
    return stats.territory_counts(conn)


@router.get(PREFIX + "/summary", summary="Counts by category, status and month (calendar months in UTC, as the "
            "date filters), overdue and median handling time")
def summary(code: str, f: stats.Filters = Depends(filters), conn: sa.Connection = Depends(get_conn)) -> dict:
    return jsonable(stats.summary(conn, code, f))


@router.get(PREFIX + "/choropleth", summary="Published grids with incidents per 1,000 households, overdue rate "
            "and median handling hours (GeoJSON)", responses=GEOJSON_OK)
def choropleth(code: str, metric: str | None = Query(None, description="compute only this measure: "
                                                     "per_1000_households, overdue_rate or median_hours"),
               f: stats.Filters = Depends(filters), conn: sa.Connection = Depends(get_conn), *, request: Request):
    if metric is not None and metric not in stats.METRICS:
        raise Invalid(f"metric must be one of {', '.join(stats.METRICS)}", f"指标只能是 {'、'.join(stats.METRICS)}")
    return Response(stats.choropleth_text(conn, code, f, display=True,
                                          metrics=(metric,) if metric else stats.METRICS,
                                          kept=request.app.state.kept_outlines),
                    media_type="application/geo+json")


@router.get(PREFIX + "/heat", summary="Heat-map cells: [[lat, lon, count], ...]")
def heat(code: str, zoom: int = Query(13, ge=0, le=22), f: stats.Filters = Depends(filters),
         conn: sa.Connection = Depends(get_conn)) -> list[list[float]]:
    return stats.heat(conn, code, f, cell_deg=cell_for_zoom(zoom) / 4)


@router.get(PREFIX + "/clusters", summary="Incidents clustered on map cells for a zoom level (and bbox)")
def clusters(code: str, zoom: int = Query(13, ge=0, le=22), bbox: str | None = None,
             f: stats.Filters = Depends(filters), conn: sa.Connection = Depends(get_conn)) -> list[dict]:
    box = None
    if bbox:
        from gridmap.api.features import parse_bbox

        try:
            box = parse_bbox(bbox)
        except Invalid as refused:  # 400, as the OGC items' bbox
            return JSONResponse(bilingual_body(refused), status_code=400)
    return stats.clusters(conn, code, f, cell_deg=cell_for_zoom(zoom), bbox=box)
