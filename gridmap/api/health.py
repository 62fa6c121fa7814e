"""Health: is the database reachable, which PostGIS, which schema revision."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gridmap import __version__
from gridmap.store.db import postgis_version, schema_revision

router = APIRouter(tags=["health"])


@router.get("/api/health", summary="Service and database health")
def health(request: Request) -> JSONResponse:
    try:
        with request.app.state.engine.connect() as conn:
            postgis = postgis_version(conn)
            revision = schema_revision(conn)
        return JSONResponse({"status": "ok", "version": __version__, "postgis": postgis, "schema": revision})
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "version": __version__,
                             "detail": type(exc).__name__}, status_code=503)
