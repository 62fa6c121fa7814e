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


def test_rounds_decide_on_the_tally_and_only_the_partition_kept_is_assembled(layers: dict) -> None:
    """A round that is partitioned again is never dissolved: its tally (each unit's grid, each
    grid's kind and households, no geometry) says what the assembled grids would, and the loop
    assembles the last partition alone."""
    from gridmap.geo.grain import partition_at_building_grain
    from gridmap.geo.partition import assign_units

    profile = gm.profile(str(PROFILE))
    lo, hi = profile.band
    given = dict(compounds=layers["compounds"], sites=layers["facilities"], waterways=layers["rivers"])
    refined: set[str] = set()

    def build(codes: frozenset[str] = frozenset()):
        refined.update(codes)
        return gm.build_units(layers["communities"], layers["roads"], layers["buildings"], profile=str(PROFILE),
                              atomize=frozenset(refined), **given)

    assembled: list[int] = []
    runs: list = []

    class Counted:
        def __init__(self, inner) -> None:
            self.inner = inner

        def tally(self):
            return self.inner.tally()

        def assembled(self):
            assembled.append(len(runs))
            return self.inner.assembled()

    def run(units, memo):
        runs.append(assign_units(units, rules=profile.partition, road_rules=profile.roads, roads=layers["roads"],
                                 memo=memo))
        return Counted(runs[-1])

    kept = partition_at_building_grain(build(), run, build, lo, hi)
    assert len(runs) >= 2 and assembled == []  # refined at least once; nothing assembled on the way
    result = kept.assembled()
    assert assembled == [len(runs)]
    # the first round's tally decides as its assembled grids would have
    units, grids = runs[0].tally()
    whole = runs[0].assembled()
    assert communities_to_refine(units, grids, lo, hi) == communities_to_refine(whole.units, whole.grids, lo, hi) != set()
    assert sorted(grids["households"]) == sorted(whole.grids["households"])
    assert sorted(result.grids["households"]) == sorted(runs[-1].tally()[1]["households"])
