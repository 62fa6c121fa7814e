"""Territories: the tree, single territories, GeoJSON for maps, and their layers."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from gridmap.api.openapi_doc import GEOJSON_OK
from gridmap.api.deps import get_conn, optional_user, public_reader, require_admin
from gridmap.geo.profile import Profile
from gridmap.services import profiles
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
    t = territories.get(conn, code)  # 404 in both languages if none
    return TerritoryOut(code=t.code, name=t.name, level=t.level, parent_code=t.parent_code, area_m2=t.area_m2)


@router.get("/{code}/layers", response_model=list[LayerOut], summary="A territory's GIS layers")
def get_layers(code: str, conn: sa.Connection = Depends(get_conn),
               _r: CurrentUser | None = Depends(public_reader)) -> list[LayerOut]:
    territories.get(conn, code)  # 404 in both languages if none
    return [LayerOut(**{k: row[k] for k in LayerOut.model_fields}) for row in layers.list_for(conn, code)]


def _profile_answer(conn: sa.Connection, code: str) -> dict:
    holder, _ = territories.profile_of(conn, code)
    profile = profiles.of_territory(conn, code)
    return {"territory": code, "held_by": holder, **profile.describe(), "profile": profile.to_dict(),
            "toml": profile.to_toml()}


@router.get("/{code}/profile", summary="The rules a territory follows (its own profile, an ancestor's, or the default)")
def get_profile(code: str, conn: sa.Connection = Depends(get_conn),
                _r: CurrentUser | None = Depends(public_reader)) -> dict:
    return _profile_answer(conn, code)


@router.put("/{code}/profile", summary="Set a territory's own profile: a TOML document or a preset's name "
            "(sent as text/plain or application/toml)")
def put_profile(code: str, request: Request, body: str = Body(..., media_type="text/plain", max_length=200_000,
                                                              description="the profile as TOML, or a preset name"),
                user: CurrentUser | None = Depends(optional_user)) -> dict:
    from gridmap.geo.profile import PRESETS

    engine = request.app.state.engine
    with engine.connect() as conn:
        actor = require_admin(conn, user, code, "set profiles")
    text = body.strip()
    profile = PRESETS[text] if text in PRESETS else Profile.from_toml(text, source="profile")
    profiles.set_for_territory(engine, code, profile, actor=actor.username)
    with engine.connect() as conn:
        return _profile_answer(conn, code)


@router.delete("/{code}/profile", status_code=204, summary="Remove a territory's own profile (it follows its parent's)")
def delete_profile(code: str, request: Request, user: CurrentUser | None = Depends(optional_user)) -> Response:
    engine = request.app.state.engine
    with engine.connect() as conn:
        actor = require_admin(conn, user, code, "set profiles")
    profiles.set_for_territory(engine, code, None, actor=actor.username)
    return Response(status_code=204)
