"""What a community's wall map (A4/A3, PDF/PNG) shows, read in one snapshot: the plan's grids and
micro-grids, the community's outline, its roads and water, the plan's band. The sheet itself is
drawn by :mod:`gridmap.web.wallmap`, which the CLI (``gridmap print``), the API and the planner's
print button call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.services import profiles, reading
from gridmap.store import frames, layers, plans, territories
from gridmap.store.plans import Plan

PAPERS = ("A4", "A3")
FORMATS = ("pdf", "png")
LANGUAGES = ("zh", "en")
CONTEXT_LAYERS = {"roads": ("roads",), "water": ("waterways", "water"), "buildings": ("buildings",)}
"""The territory's own layers drawn under the grids, by the names a partition reads (the
buildings: a grid worker finds their own houses by them, in a village of scattered houses above all)."""


@dataclass(frozen=True)
class WallMapRequest:
    """Which community, which plan (published, draft or a version), which sheet."""

    community: str
    plan: str = "published"
    paper: str = "A4"
    format: str = "pdf"
    lang: str = "zh"
    plan_id: int | None = None
    """A plan by its id (the planner's: versions are numbered per territory, so a version alone
    could name a street's plan where the city's is shown); it must cover the community."""


    def __post_init__(self) -> None:
        for value, allowed, en, zh in ((self.paper, PAPERS, "paper", "纸张"), (self.format, FORMATS, "format", "格式"),
                                       (self.lang, LANGUAGES, "language", "语言")):
            if value not in allowed:
                raise Invalid(f"unknown {en} {value!r}; choose from {', '.join(allowed)}",
                              f"{zh} {value!r} 不支持，可选 {'、'.join(allowed)}")


@dataclass(frozen=True)
class WallMapData:
    """Everything the sheet shows (frames in EPSG:4490)."""

    request: WallMapRequest
    plan: Plan
    community_name: str
    band: tuple[int, int]
    grids: gpd.GeoDataFrame
    outline: gpd.GeoDataFrame
    microgrids: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    water: gpd.GeoDataFrame | None
    buildings: gpd.GeoDataFrame | None = None
    place_name: str = ""
    """Where the community lies, as the sheet's subtitle says it: the plan's territory and the
    street or town between it and the community (``洪雅县 城关镇``)."""

    @property
    def filename(self) -> str:
        """``gridmap-<community>-v<plan version>-<paper>.<format>``."""
        r = self.request
        return f"gridmap-{r.community}-v{self.plan.version}-{r.paper}.{r.format}"


def _context(conn: sa.Connection, community: str, area) -> dict[str, gpd.GeoDataFrame]:
    found = {}
    for role, names in CONTEXT_LAYERS.items():
        where = layers.find(conn, community, names)
        if where is not None:
            found[role] = frames.layer_in_area(conn, where[0], where[1], area)
    return found


def where_it_lies(plan_territory: str, plan_territory_name: str, street: territories.TerritoryRow | None) -> str:
    """The sheet's place: the plan's territory, and the community's street or town when that is
    not the plan's territory itself (a county's plan: ``洪雅县 城关镇``; a street's plan: the street)."""
    if street is not None and street.code != plan_territory and street.name:
        return f"{plan_territory_name} {street.name}"
    return plan_territory_name


def gather(engine: sa.Engine, request: WallMapRequest,
           authorize: Callable[[sa.Connection, Plan], None] | None = None) -> WallMapData:
    """What the community's wall map shows. ``authorize(conn, plan)`` may refuse (a draft needs a
    role). Refuses a code that is not a community (a wall map is one community's sheet)."""
    with reading.snapshot(engine) as conn:
        place = territories.get(conn, request.community)
        if place.level != "community":
            raise Invalid(f"{request.community} is a {place.level}, not a community: a wall map shows one community; "
                          "print each of its communities",
                          f"{request.community} 不是社区（而是 {place.level}）：网格图按社区打印，请逐个社区打印")
        if request.plan_id is not None:
            plan = plans.get(conn, request.plan_id)
            if request.community not in territories.codes_below(conn, plan.territory, "community"):
                raise Invalid(f"plan {request.plan_id} (territory {plan.territory}) does not cover community "
                              f"{request.community}", f"方案 {request.plan_id}（辖区 {plan.territory}）不含社区 {request.community}")
        else:
            plan = reading.plan(conn, request.community, request.plan)
        if authorize is not None:
            authorize(conn, plan)
        grids = reading.plan_grids(conn, plan, request.community)
        outline = frames.communities(conn, request.community)
        micro = reading.plan_microgrids(conn, plan, request.community)
        context = _context(conn, request.community, outline.geometry.iloc[0]) if not outline.empty else {}
        band = profiles.of_parameters(plan.parameters).band
        street = territories.get(conn, place.parent_code) if place.parent_code else None
    place_name = where_it_lies(plan.territory, plan.territory_name, street)
    if grids.empty:
        raise Invalid(f"plan version {plan.version} has no grids in {request.community}",
                      f"第 {plan.version} 版方案在 {request.community} 内没有网格")
    return WallMapData(request, plan, place.name, band, grids, outline, micro, context.get("roads"),
                       context.get("water"), context.get("buildings"), place_name)


__all__ = ["PAPERS", "FORMATS", "LANGUAGES", "WallMapRequest", "WallMapData", "gather", "where_it_lies"]
