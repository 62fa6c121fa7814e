"""Health: is the database reachable, which PostGIS, which schema revision, and how far the
working calendar's holiday data reaches (an operator sees the end coming before time limits stop)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gridmap import __version__
from gridmap.incident_rules import WorkCalendar
from gridmap.store.db import postgis_version, schema_revision

router = APIRouter(tags=["health"])
CALENDAR_WARNING_DAYS = 60


def calendar_health(calendar: WorkCalendar, today: date | None = None) -> dict:
    """The calendar's source, the last day its holiday data covers (None: no holiday data, every
    year counts Monday-Friday) and, within ``CALENDAR_WARNING_DAYS`` of that day, a warning in
    both languages: time limits running past it are refused until the data is updated."""
    out: dict = {"source": calendar.source, "covered_until": None}
    if calendar.covered_years is None:
        return out
    today = today or date.today()
    until = None
    if today.year in calendar.covered_years:  # the end of the run of covered years from this one on
        year = today.year
        while year + 1 in calendar.covered_years:
            year += 1
        until = date(year, 12, 31)
    out["covered_until"] = until.isoformat() if until else None
    if until is None or (until - today).days <= CALENDAR_WARNING_DAYS:
        out["warning_en"] = (f"the holiday data of the working calendar ends {until or 'before today'}: update "
                             "chinesecalendar/holidays or extend GRIDMAP_CALENDAR, or time limits past it are refused")
        out["warning_zh"] = (f"工作日历的节假日数据截至 {until or '今天之前'}：请升级 chinesecalendar/holidays 或补充 "
                             "GRIDMAP_CALENDAR，否则超过该日的办理时限将无法计算")
    return out


@router.get("/api/health", summary="Service and database health")
def health(request: Request) -> JSONResponse:
    try:
        with request.app.state.engine.connect() as conn:
            postgis = postgis_version(conn)
            revision = schema_revision(conn)
        return JSONResponse({"status": "ok", "version": __version__, "postgis": postgis, "schema": revision,
                             "calendar": calendar_health(request.app.state.calendar)})
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "version": __version__,
                             "detail": type(exc).__name__}, status_code=503)
