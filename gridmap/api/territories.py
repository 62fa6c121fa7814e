"""Territories: the tree, single territories, GeoJSON for maps, and their layers."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.api.deps import get_conn, public_reader
from gridmap.store import layers, territories
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api/territories", tags=["territories"])


class TerritoryOut(BaseModel):
    code: str
    name: str
    level: Literal["city", "district", "street", "community"]
    parent_code: str | None
    area_m2: float | None
    plans: int = 0


class LayerOut(BaseModel):
    name: str
    kind: str
    geometry_type: str | None
    feature_count: int
    source_file: str | None
    source_crs: str | None
    encoding: str | None


@router.get("", response_model=list[TerritoryOut], summary="List all territories (parents first)")
def list_territories(conn: sa.Connection = Depends(get_conn),
                     _r: CurrentUser | None = Depends(public_reader)) -> list[TerritoryOut]:
    return [TerritoryOut(code=t.code, name=t.name, level=t.level, parent_code=t.parent_code, area_m2=t.area_m2,
                         plans=t.plans) for t in territories.list_all(conn)]


@router.get("/geojson", summary="Territories as a GeoJSON FeatureCollection (RFC 7946, lon/lat)",
            response_class=JSONResponse, responses=GEOJSON_OK)
def territories_geojson(
    level: Literal["city", "district", "street", "community"] | None = None,
    root: str | None = Query(None, description="only this territory and everything below it"),
    simplify: float = Query(0.0, ge=0, le=0.01, description="simplification tolerance in degrees"),
    conn: sa.Connection = Depends(get_conn),
    _r: CurrentUser | None = Depends(public_reader),
) -> JSONResponse:
    data = territories.feature_collection(conn, level=level, root=root, tolerance_deg=simplify)
    return JSONResponse(data, media_type="application/geo+json")


@router.get("/{code}", response_model=TerritoryOut, summary="One territory")
def get_territory(code: str, conn: sa.Connection = Depends(get_conn),
                  _r: CurrentUser | None = Depends(public_reader)) -> TerritoryOut:
    try:
        t = territories.get(conn, code)
    except territories.TerritoryNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return TerritoryOut(code=t.code, name=t.name, level=t.level, parent_code=t.parent_code, area_m2=t.area_m2)


@router.get("/{code}/layers", response_model=list[LayerOut], summary="A territory's GIS layers")
def get_layers(code: str, conn: sa.Connection = Depends(get_conn),
               _r: CurrentUser | None = Depends(public_reader)) -> list[LayerOut]:
    try:
        territories.get(conn, code)
    except territories.TerritoryNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return [LayerOut(**{k: row[k] for k in LayerOut.model_fields}) for row in layers.list_for(conn, code)]
