"""``gridmap partition``: units for a territory's communities, then a draft plan in PostGIS.

Inputs come from the territory's layers (or its ancestors': the demo keeps them on the city):
roads, buildings, waterways, railways, compounds (``compounds`` or ``residential_areas``) and
sites. Units are built once per community and reused: a plan refers to its units, so units that
a plan uses are never rebuilt underneath it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import shapely
import sqlalchemy as sa

from gridmap.geo.partition import PartitionResult, partition
from gridmap.geo.profile import Profile
from gridmap.geo.units import build_units
from gridmap.progress import QUIET, Progress
from gridmap.services import profiles
from gridmap.services.profiles import ProfileSpec
from gridmap.store import assignment, audit, frames, layers, plans
from gridmap.store import units as unit_store
from gridmap.store.territories import get

LAYER_NAMES = {
    "roads": ("roads",), "buildings": ("buildings",), "waterways": ("waterways",),
    "railways": ("railways",), "compounds": ("compounds", "residential_areas"), "sites": ("sites",),
}


class PartitionInputError(ValueError):
    """The territory lacks what a partition needs (communities, buildings ...)."""


@dataclass
class PlanSummary:
    plan_id: int
    version: int
    territory: str
    result: PartitionResult
    units_built: bool

    def __str__(self) -> str:
        s = self.result.report["summary"]
        return (f"draft plan {self.version} (id {self.plan_id}) for {self.territory}: {s['grids']} grids "
                f"({s['comprehensive']} comprehensive, {s['dedicated']} dedicated) from {s['units']} units; "
                f"{s['in_band']}/{s['comprehensive']} comprehensive grids in [{s['min_households']}, "
                f"{s['max_households']}] households; median {s['households_median']:.0f}; "
                f"{len(self.result.flags)} flags")


def input_layer(conn: sa.Connection, territory: str, role: str, area) -> gpd.GeoDataFrame | None:
    """The layer serving ``role`` (roads, buildings ...) for the territory, cut to ``area``'s
    bounding box; None when neither the territory nor its ancestors have one."""
    found = layers.find(conn, territory, LAYER_NAMES[role])
    return frames.layer_in_area(conn, found[0], found[1], area) if found else None


def load_inputs(conn: sa.Connection, territory: str, communities: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame | None]:
    """The territory's input layers, cut to the communities' bounding box."""
    area = shapely.box(*communities.total_bounds)
    return {role: input_layer(conn, territory, role, area) for role in LAYER_NAMES}


def ensure_units(engine: sa.Engine, territory: str, *, profile: Profile | None = None, rebuild: bool = False,
                 progress: Progress = QUIET) -> tuple[gpd.GeoDataFrame, bool]:
    """The territory's units from the database, building and storing them first if missing (by
    ``profile``'s unit and road rules; default: the territory's profile)."""
    with engine.connect() as conn:
        profile = profile or profiles.of_territory(conn, territory)
        communities = frames.communities(conn, territory)
        if communities.empty:
            raise PartitionInputError(f"territory {territory} has no communities to partition")
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        existing = frames.current_units(conn, territory)
        in_use = unit_store.in_use(conn, list(ids.values()))
    have_all = set(existing["community_code"]) >= set(ids) if len(existing) else False
    if have_all and not rebuild:
        progress.say(f"reusing {len(existing)} stored units of {len(ids)} communities")
        return existing, False
    if rebuild and in_use:
        raise PartitionInputError(f"the units of {territory} are used by {in_use} plan(s) and cannot be rebuilt")
    with engine.connect() as conn, progress.step(f"loading input layers for {len(ids)} communities"):
        inputs = load_inputs(conn, territory, communities)
    if inputs["buildings"] is None:
        raise PartitionInputError(f"territory {territory} (and its ancestors) has no 'buildings' layer; "
                                  "import one with `gridmap import ... --layer buildings`")
    with progress.step("building units (compounds, blocks, sites)"):
        units = build_units(communities[["code", "name", "geometry"]], inputs["roads"], inputs["buildings"],
                            waterways=inputs["waterways"], railways=inputs["railways"],
                            compounds=inputs["compounds"], sites=inputs["sites"], rules=profile.units,
                            road_rules=profile.roads)
    with progress.step(f"storing {len(units)} units"), engine.begin() as conn:
        unit_store.replace_for_communities(conn, units, ids)
        audit.record(conn, actor="partition", action="build_units", table="units", row_key=territory,
                     after={"units": len(units), "communities": len(ids)})
    with engine.connect() as conn:
        return frames.current_units(conn, territory), True


def partition_territory(
    engine: sa.Engine,
    territory: str,
    *,
    profile: ProfileSpec = None,
    min_households: int | None = None,
    max_households: int | None = None,
    seed: int = 0,
    author: str = "cli",
    rebuild_units: bool = False,
    progress: Progress = QUIET,
) -> PlanSummary:
    """Partition ``territory`` and store the result as a new draft plan (one transaction).

    The rules are ``profile``'s (default: the territory's), the band overridden by
    ``min_households``/``max_households`` when given; the plan stores the profile it was made with.
    """
    with engine.connect() as conn:
        rules = profiles.for_run(conn, territory, profile, min_households=min_households,
                                 max_households=max_households)
    units, built = ensure_units(engine, territory, profile=rules, rebuild=rebuild_units, progress=progress)
    with engine.connect() as conn:
        roads = input_layer(conn, territory, "roads", shapely.box(*units.total_bounds))
    lo, hi = rules.band
    with progress.step(f"partitioning {len(units)} units into grids of {lo}-{hi} households"):
        result = partition(units, seed=seed, roads=roads, rules=rules.partition, road_rules=rules.roads)
    result.report["profile"] = rules.describe()  # the report says which rules it measured against
    with progress.step("writing the draft plan"), engine.begin() as conn:
        target = get(conn, territory)
        communities = frames.communities(conn, territory)
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        params = profiles.parameters_of(rules, seed=seed)
        plan_id, version = plans.create(conn, territory_id=target.id, origin="partition", author=author,
                                        parameters=params, report=result.report)
        assignment.write(conn, plan_id, result.grids, result.units, ids)
        audit.record(conn, actor=author, action="partition", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, **result.report["summary"]})
    return PlanSummary(plan_id, version, territory, result, built)
