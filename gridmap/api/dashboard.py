"""Aggregated incident figures for the dashboard maps: counts, a per-grid choropleth, heat cells
and clusters, all under the same filters (category, status, date range, street, community)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.api.deps import get_conn, public_reader
from gridmap.api.errors import utc
from gridmap.api.plans import jsonable
from gridmap.incident_rules import STATES
from gridmap.store import incident_stats as stats
from gridmap.store import territories
from gridmap.store.users import CurrentUser

# no router prefix: besides the per-territory figures the dashboard asks which territory to open on
PREFIX = "/api/territories/{code}/incidents"
router = APIRouter(tags=["dashboard"])

# incidents routed into each territory's whole subtree (as the summary counts them: by community),
# from one GROUP BY over incidents rolled up the territory tree
TERRITORY_COUNTS = sa.text(
    "WITH RECURSIVE up AS (SELECT id AS below, id AS above FROM territories UNION ALL "
    "SELECT up.below, t.parent_id FROM up JOIN territories t ON t.id = up.above WHERE t.parent_id IS NOT NULL), "
    "per AS (SELECT community_id, count(*) AS n FROM incidents WHERE community_id IS NOT NULL GROUP BY 1) "
    "SELECT t.code, t.name, t.level, COALESCE(sum(per.n), 0)::bigint AS incidents FROM territories t "
    "JOIN up ON up.above = t.id LEFT JOIN per ON per.community_id = up.below "
    "GROUP BY t.id, t.code, t.name, t.level ORDER BY incidents DESC, t.code")


def filters(code: str, category: str | None = None, status: str | None = Query(None, description="comma-separated"),
            start: datetime | None = None, end: datetime | None = None, street: str | None = None,
            community: str | None = None, conn: sa.Connection = Depends(get_conn),
            _r: CurrentUser | None = Depends(public_reader)) -> stats.Filters:
    try:
        territories.get(conn, code)
    except territories.TerritoryNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    statuses = tuple(status.split(",")) if status else None
    if statuses and set(statuses) - set(STATES):
        raise HTTPException(422, f"status must be among {', '.join(STATES)}")
    start, end = utc(start), utc(end)
    if start and end and end <= start:
        raise HTTPException(422, "end must come after start")
    return stats.Filters(category or None, statuses, start, end, street or None, community or None)


def cell_for_zoom(zoom: int) -> float:
    """Map cells about 60 screen pixels wide at that zoom, in degrees."""
    return 360.0 / (2 ** zoom) / 256 * 60


@router.get("/api/dashboard/territories", summary="Every territory with the number of incidents routed into it "
            "(its whole subtree), busiest first: the dashboard opens on the busiest one")
def territory_counts(conn: sa.Connection = Depends(get_conn),
                     _r: CurrentUser | None = Depends(public_reader)) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(TERRITORY_COUNTS)]


@router.get(PREFIX + "/summary", summary="Counts by category, status and month (calendar months in UTC, as the "
            "date filters), overdue and median handling time")
def summary(code: str, f: stats.Filters = Depends(filters), conn: sa.Connection = Depends(get_conn)) -> dict:
    # by_month groups by calendar month in the session's time zone; the date filters (start, end)
    # are instants, which the dashboard sends as UTC day boundaries: group in UTC too, so a month
    # listed here is exactly the month the dashboard then asks for, whatever the server's time zone
    conn.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
    return jsonable(stats.summary(conn, code, f))


@router.get(PREFIX + "/choropleth", summary="Published grids with incidents per 1,000 households, overdue rate "
            "and median handling hours (GeoJSON)", responses=GEOJSON_OK)
def choropleth(code: str, metric: str | None = Query(None, description="compute only this measure: "
                                                     "per_1000_households, overdue_rate or median_hours"),
               f: stats.Filters = Depends(filters), conn: sa.Connection = Depends(get_conn)):
    if metric is not None and metric not in stats.METRICS:
        raise HTTPException(422, f"metric must be one of {', '.join(stats.METRICS)}")
    return JSONResponse(stats.choropleth(conn, code, f, simplify_deg=0.00002,
                                         metrics=(metric,) if metric else stats.METRICS),
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

        box = parse_bbox(bbox)
    return stats.clusters(conn, code, f, cell_deg=cell_for_zoom(zoom), bbox=box)
