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

from gridmap.geo.partition import PartitionResult, PartitionRules, partition
from gridmap.geo.units import UnitRules, build_units
from gridmap.progress import QUIET, Progress
from gridmap.store import audit, plans
from gridmap.store.territories import ewkb_hex, get

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


def load_inputs(conn: sa.Connection, territory: str, communities: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame | None]:
    """The territory's input layers, cut to the communities' bounding box."""
    area = ewkb_hex([shapely.box(*communities.total_bounds)])[0]
    out: dict[str, gpd.GeoDataFrame | None] = {}
    for role, names in LAYER_NAMES.items():
        found = plans.find_layer(conn, territory, names)
        out[role] = plans.layer_in_area(conn, found[0], found[1], area) if found else None
    return out


def ensure_units(engine: sa.Engine, territory: str, *, rules: UnitRules | None = None, rebuild: bool = False,
                 progress: Progress = QUIET) -> tuple[gpd.GeoDataFrame, bool]:
    """The territory's units from the database, building and storing them first if missing."""
    with engine.connect() as conn:
        communities = plans.communities_of(conn, territory)
        if communities.empty:
            raise PartitionInputError(f"territory {territory} has no communities to partition")
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        existing = plans.stored_units(conn, list(ids.values()))
        in_use = plans.units_in_use(conn, list(ids.values()))
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
                            compounds=inputs["compounds"], sites=inputs["sites"], rules=rules)
    with progress.step(f"storing {len(units)} units"), engine.begin() as conn:
        plans.replace_units(conn, units, ids)
        audit.record(conn, actor="partition", action="build_units", table="units", row_key=territory,
                     after={"units": len(units), "communities": len(ids)})
    with engine.connect() as conn:
        return plans.stored_units(conn, list(ids.values())), True


def partition_territory(
    engine: sa.Engine,
    territory: str,
    *,
    min_households: int = 300,
    max_households: int = 500,
    seed: int = 0,
    rules: PartitionRules | None = None,
    author: str = "cli",
    rebuild_units: bool = False,
    progress: Progress = QUIET,
) -> PlanSummary:
    """Partition ``territory`` and store the result as a new draft plan (one transaction)."""
    units, built = ensure_units(engine, territory, rebuild=rebuild_units, progress=progress)
    with engine.connect() as conn:
        roads_at = plans.find_layer(conn, territory, LAYER_NAMES["roads"])
        roads = plans.layer_in_area(conn, roads_at[0], roads_at[1], ewkb_hex([shapely.box(*units.total_bounds)])[0]) \
            if roads_at else None
    with progress.step(f"partitioning {len(units)} units into grids of {min_households}-{max_households} households"):
        result = partition(units, min_households=min_households, max_households=max_households, seed=seed,
                           roads=roads, rules=rules)
    with progress.step("writing the draft plan"), engine.begin() as conn:
        target = get(conn, territory)
        communities = plans.communities_of(conn, territory)
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        params = {"min_households": min_households, "max_households": max_households, "seed": seed}
        plan_id, version = plans.create_plan(conn, territory_id=target.id, origin="partition", author=author,
                                             parameters=params, report=result.report)
        plans.write_grids(conn, plan_id, result.grids, result.units, ids)
        audit.record(conn, actor=author, action="partition", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, **result.report["summary"]})
    return PlanSummary(plan_id, version, territory, result, built)
