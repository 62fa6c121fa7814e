"""gm.partition_layers: a district's own layers to grids, as `gridmap partition` makes them from the
stored ones, with the communities whose grids missed the band rebuilt at building grain, so that
every miss left is proven for the territory. On a small generated district in the 雨城区 pattern."""

from __future__ import annotations

from pathlib import Path

import pytest

import gridmap as gm
from gridmap.geo import synthetic_district as sd
from gridmap.geo.fields import map_fields
from gridmap.geo.grain import communities_to_refine

PROFILE = Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng" / "规则.toml"


@pytest.fixture(scope="module")
def layers() -> dict:
    district = sd.generate(sd.load_boundary(), sd.Config.small())
    return {name: map_fields(frame)[0] for name, frame in district.layers().items()}


def test_partition_layers_proves_every_miss_that_units_alone_left_open(layers: dict) -> None:
    given = dict(compounds=layers["compounds"], sites=layers["facilities"], waterways=layers["rivers"])
    lo, hi = gm.profile(str(PROFILE)).band
    units = gm.build_units(layers["communities"], layers["roads"], layers["buildings"], profile=str(PROFILE), **given)
    first = gm.partition(units, profile=str(PROFILE), roads=layers["roads"])
    full = gm.partition_layers(layers["communities"], layers["roads"], layers["buildings"], profile=str(PROFILE),
                               **given)
    open_before = communities_to_refine(first.units, first.grids, lo, hi)
    assert open_before  # the district has misses next to units of several buildings: the test can fail

    comp = full.grids[full.grids["kind"] == "comprehensive"]
    misses = set(comp.loc[~comp["households"].between(lo, hi), "grid_code"])
    proven = set(full.flags.loc[full.flags["flag"] == "infeasible_band", "grid_code"])
    assert misses <= proven  # every miss left carries a proof
    assert communities_to_refine(full.units, full.grids, lo, hi) == set()
    atomic = set(full.units.loc[full.units["atomic"].astype(bool), "community_code"])
    assert open_before <= atomic  # the communities left open were rebuilt one unit per building
    first_comp = first.grids[first.grids["kind"] == "comprehensive"]
    assert comp["households"].between(lo, hi).sum() >= first_comp["households"].between(lo, hi).sum()
    assert full.units["households"].sum() == units["households"].sum() == layers["buildings"]["households"].sum()
