"""Stairwells (单元) from an entrances layer (gridmap.geo.stairwells): doors matched to buildings,
front and back doors counted once, doors that lead elsewhere left out, a building's own 单元数
kept, the cuts between 单元 placed between their doors; then units and micro-grids cut by them,
and a district's own entrances file (GBK, Chinese fields) imported beside its buildings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.geo import stairwells
from gridmap.geo.atoms import FootprintAxis, stairwell_strips
from gridmap.geo.microgrids import divide
from gridmap.geo.shapes import LocalScale
from gridmap.geo.units import build_units

LON, LAT = 103.0, 29.98
SCALE = LocalScale.at(LAT)


def at(x_m: float, y_m: float) -> tuple[float, float]:
    """A point given in metres east and north of (LON, LAT), in lon/lat."""
    return LON + x_m / SCALE.mx, LAT + y_m / SCALE.my


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(*at(x0, y0), *at(x1, y1))


def door(x_m: float, y_m: float) -> shapely.Point:
    return shapely.Point(*at(x_m, y_m))


def frame(geoms, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=4490)


def strip_x_ranges(strips: list) -> list[tuple[float, float]]:
    """Each strip's east–west extent in metres (the test buildings' long axis runs east–west)."""
    return [((b[0] - LON) * SCALE.mx, (b[2] - LON) * SCALE.mx) for b in (shapely.bounds(s) for s in strips)]


# -- the layer read against the buildings ---------------------------------------------------------------
def test_doors_give_a_building_its_stairwells_and_cut_it_between_them() -> None:
    tower, other = box(0, 0, 40, 12), box(60, 0, 80, 12)
    buildings = frame([tower, other], 户数=[320, 40])
    front = [4, 12, 24, 36]  # four 单元, uneven: a wide third one
    back = [5, 11, 25, 35]
    doors = frame([door(x, 0) for x in front] + [door(x, 12) for x in back] +
                  [door(36.5, -1.5),  # a surveyed point 1.5 m off the outline: the fourth 单元 again
                   door(20, 0),  # the bicycle store's door
                   door(20, -10)],  # 10 m out in the street: no building's
                  entrance=["staircase"] * 9 + ["service", "yes"])
    out, summary = stairwells.attach(buildings, doors)
    assert out["entrances"].tolist() == [4, 0]
    assert summary == stairwells.StairwellSummary(doors=11, counted=9, far=1, shared_wall=0, not_stairwell=1,
                                                  buildings=1, disagree=0)
    # stairwells at 4.5, 11.5, 24.5 and 35.83 m: cut halfway between them, as fractions of 40 m
    assert np.allclose(out["entrance_cuts"].iloc[0], (8 / 40, 18 / 40, (24.5 + 107.5 / 3) / 2 / 40), atol=1e-6)
    assert out["entrance_cuts"].iloc[1] is None
    assert "9 of 11 doors" in summary.en() and "1 with no building within 3 m" in summary.en()
    assert "计入 9 个" in summary.zh() and "不是单元门" in summary.zh()

    cell = box(-5, -8, 45, 20)
    strips = stairwell_strips(cell, tower, 4, out["entrance_cuts"].iloc[0])
    assert len(strips) == 4 and shapely.coverage_is_valid(np.array(strips, dtype=object))
    assert np.isclose(sum(s.area for s in strips), cell.area, rtol=1e-9)
    shares = [shapely.intersection(s, tower).area / tower.area for s in strips]
    assert np.allclose(shares, [8 / 40, 10 / 40, (30.1667 - 18) / 40, (40 - 30.1667) / 40], atol=1e-4)
    for (west, east), x in zip(strip_x_ranges(strips), front):  # every 单元's door in its own strip
        assert west - 1e-6 <= x <= east + 1e-6
    even = stairwell_strips(cell, tower, 4)  # without the doors: even cuts, as before
    assert np.allclose([shapely.intersection(s, tower).area / tower.area for s in even], 0.25, atol=1e-6)


def test_labelled_doors_and_doors_close_together() -> None:
    a, b = box(0, 0, 30, 12), box(50, 0, 80, 12)
    buildings = frame([a, b], 户数=[90, 90])
    doors = frame([door(2, 0), door(18, 12), door(20.5, 0),  # 1单元 has doors at both ends; 2单元 beside one
                   door(60, 0), door(62, 0)],  # unlabelled, 2 m apart: one stairwell's two doors
                  单元号=["1单元", "1单元", "2单元", None, None])
    out, summary = stairwells.attach(buildings, doors)
    assert out["entrances"].tolist() == [2, 1]
    assert summary.counted == 5 and summary.buildings == 2


def test_a_door_in_a_wall_two_buildings_share_counts_for_neither() -> None:
    west, east = box(0, 0, 20, 12), box(20, 0, 40, 12)
    doors = frame([door(20, 6), door(19.5, 0), door(5, 0)])
    out, summary = stairwells.attach(frame([west, east], 户数=[60, 60]), doors)
    assert out["entrances"].tolist() == [2, 0]  # 0.5 m from the east building is not as near: the west's
    assert summary.shared_wall == 1 and summary.counted == 2


def test_a_buildings_own_count_wins_and_agreeing_doors_place_its_cuts() -> None:
    three, two, none = box(0, 0, 30, 12), box(50, 0, 80, 12), box(100, 0, 130, 12)
    buildings = frame([three, two, none], 户数=[90, 60, 60], 单元数=[3, 2, 0])
    doors = frame([door(5, 0), door(25, 0), door(55, 0), door(59, 12), door(75, 0)])
    out, summary = stairwells.attach(buildings, doors)
    assert "单元数" not in out and out["entrances"].tolist() == [3, 2, 0]
    assert out["entrance_cuts"].iloc[0] is None  # its doors say 2: the stairwells' places are unknown
    assert np.allclose(out["entrance_cuts"].iloc[1], [((55 + 59) / 2 + 75) / 2 / 30 - 50 / 30], atol=1e-6)
    assert summary.disagree == 1 and summary.buildings == 0
    assert "1 buildings keep their own 单元数" in summary.en() and "保留自己的单元数" in summary.zh()


def test_a_door_without_a_label_joins_the_labelled_stairwell_beside_it() -> None:
    slab = box(0, 0, 40, 12)
    doors = frame([door(5, 0), door(6, 12), door(25, 0), door(34, 0)],  # 1单元's back door has no label
                  单元号=["1单元", None, "2单元", None])
    out, _ = stairwells.attach(frame([slab], 户数=[90]), doors)
    assert out["entrances"].tolist() == [3]  # 1单元 (two doors), 2单元, and an unlabelled one at 34 m


def test_strips_carry_the_numbers_on_their_doors() -> None:
    """Stairwells labelled 3, 2, 1 from west to east: the west strip is 3单元, whichever way the
    building's axis runs; labels that are not 1 to the count leave the strips numbered along it."""
    community, _compound, buildings = compound_with_a_tower(210, small=0)
    buildings = buildings.rename(columns={"户数": "households"})
    grids = community.rename(columns={"code": "grid_code"}).assign(grid_code=["511802001001001"])
    doors = frame([door(6, 0), door(20, 0), door(34, 0)], 单元号=["3单元", "2单元", "1单元"])
    cut = divide(grids[["grid_code", "geometry"]], buildings, band=(50, 80), entrances=doors)
    rows = cut.buildings[cut.buildings["building_id"] == 0]
    assert sorted(rows["part"]) == [1, 2, 3]
    assert rows.loc[shapely.contains(rows.geometry.values, door(6, 6)), "part"].tolist() == [3]
    assert rows.loc[shapely.contains(rows.geometry.values, door(34, 6)), "part"].tolist() == [1]
    assert cut.report["stairwells"]["counted"] == 3 and cut.report["stairwells"]["buildings"] == 1
    odd = frame([door(6, 0), door(20, 0), door(34, 0)], 单元号=["A", "B", "C"])
    out, _ = stairwells.attach(buildings, odd)
    assert out["entrance_parts"].iloc[0] is None and out["entrances"].iloc[0] == 3


def test_a_surveys_garage_and_shop_doors_are_not_stairwells() -> None:
    slab = box(0, 0, 40, 12)
    doors = frame([door(5, 0), door(20, 0), door(35, 0)], 类型=["单元门", "车库", "商铺"])
    out, summary = stairwells.attach(frame([slab], 户数=[90]), doors)
    assert out["entrances"].tolist() == [1] and summary.not_stairwell == 2


def test_an_own_count_column_is_found_as_the_field_table_finds_it() -> None:
    buildings = frame([box(0, 0, 40, 12), box(60, 0, 100, 12)], 户数=[90, 90], **{" 单元数 ": [3, 0]})
    out, _ = stairwells.attach(buildings, frame([door(70, 0), door(90, 0)]))
    assert " 单元数 " not in out and out["entrances"].tolist() == [3, 2]


def test_cuts_that_do_not_rise_give_even_strips() -> None:
    cell, tower = box(-5, -8, 45, 20), box(0, 0, 40, 12)
    for cuts in ((0.5, 0.5, 0.75), (0.0, 0.5, 0.75), (0.75, 0.5, 0.25)):
        strips = stairwell_strips(cell, tower, 4, cuts)
        assert np.allclose([shapely.intersection(s, tower).area / tower.area for s in strips], 0.25, atol=1e-6)


def test_no_layer_changes_nothing() -> None:
    buildings = frame([box(0, 0, 30, 12)], 户数=[90], 单元数=[3])
    assert stairwells.attach(buildings, None)[0] is buildings
    empty = gpd.GeoDataFrame({"entrance": []}, geometry=[], crs=4490)
    assert stairwells.attach(buildings, empty)[0] is buildings


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.integers(8, 20), min_size=1, max_size=5), min_size=1, max_size=4),
       st.randoms(use_true_random=False))
def test_generated_rows_of_buildings_get_their_stairwells_back(widths: list[list[int]], rng) -> None:
    """Buildings 10 m deep in a row, each of 1–5 单元 of 8–20 m; each 单元 has a front door and
    perhaps a back one within a metre of its middle, up to 2 m off the outline, and there are doors
    in the street and service doors: every building gets its 单元 count (a point block of 8–14 m
    too, whose front and back doors lie 10 m apart along its "long" axis), and each cut lies
    between the doors of the 单元 on either side of it."""
    footprints, doors, kinds, truth, slots = [], [], [], [], []
    x0 = 0.0
    for building in widths:
        length = float(sum(building))
        footprints.append(box(x0, 0, x0 + length, 10))
        edges = x0 + np.r_[0, np.cumsum(building)]
        middles = (edges[:-1] + edges[1:]) / 2
        slot = []
        for centre in middles:
            here = [centre + rng.uniform(-1, 1)]
            doors.append(door(here[0], -rng.uniform(0, 2)))
            kinds.append("staircase")
            if rng.random() < 0.5:
                here.append(centre + rng.uniform(-1, 1))
                doors.append(door(here[-1], 10 + rng.uniform(0, 2)))
                kinds.append("yes")
            slot.append(here)
        if rng.random() < 0.5:
            doors.append(door(x0 + rng.uniform(0, length), -rng.uniform(6, 20)))  # in the street
            kinds.append("staircase")
        if rng.random() < 0.5:
            doors.append(door(x0 + rng.uniform(0, length), 0))
            kinds.append("service")
        truth.append(len(building))
        slots.append(slot)
        x0 += length + 50
    out, summary = stairwells.attach(frame(footprints, 户数=[100] * len(footprints)),
                                     frame(doors, entrance=kinds))
    assert out["entrances"].tolist() == truth
    assert summary.far == sum(1 for p, k in zip(doors, kinds) if k == "staircase" and p.y < at(0, -5)[1])
    for cuts, slot, footprint in zip(out["entrance_cuts"], slots, footprints):
        if len(slot) == 1:
            assert cuts is None
            continue
        assert len(cuts) == len(slot) - 1
        axis = FootprintAxis.of(footprint)  # the fractions run along it, from whichever end it starts
        spans = sorted((lo, hi) for lo, hi in (np.sort(axis.fraction(axis.along(np.array([at(x, 0) for x in xs]))))[[0, -1]]
                                               for xs in slot))
        for c, (_, left_end), (right_start, _) in zip(cuts, spans[:-1], spans[1:]):
            assert left_end < c < right_start


def test_the_axis_runs_along_the_longer_side() -> None:
    tall = box(0, 0, 12, 40)  # north–south this time
    axis = FootprintAxis.of(tall)
    assert axis is not None and abs(axis.axis[1]) == pytest.approx(1.0)
    assert axis.end - axis.start == pytest.approx(40, rel=1e-6)
    assert FootprintAxis.of(shapely.Point(*at(0, 0))) is None


# -- units and micro-grids cut by them ------------------------------------------------------------------
def compound_with_a_tower(tower_households: int, *, small: int = 4) -> tuple[gpd.GeoDataFrame, ...]:
    """One community that is one compound: a 40 m tower and ``small`` buildings of 40 households."""
    outline = box(-20, -20, 60 + 30 * small, 40)
    footprints = [box(0, 0, 40, 12)] + [box(60 + 30 * i, 0, 80 + 30 * i, 12) for i in range(small)]
    community = frame([outline], code=["511802001001"], name=["测试社区"])
    compound = frame([outline], name=["测试小区"])
    buildings = frame(footprints, 户数=[tower_households] + [40] * small)
    return community, compound, buildings


TOWER_DOORS = [4, 12, 24, 36]  # four 单元 of the 40 m tower; the cut between the 2nd and 3rd at 18 m


def test_a_tower_without_a_count_is_cut_by_the_doors_of_its_stairwells() -> None:
    community, compound, buildings = compound_with_a_tower(600)
    lone = build_units(community, None, buildings, compounds=compound)
    assert lone["lone_tower"].sum() == 1
    doors = frame([door(x, 0) for x in TOWER_DOORS], 单元号=["1", "2", "3", "4"])
    units = build_units(community, None, buildings, compounds=compound, entrances=doors)
    tower = buildings.geometry.iloc[0]
    holding = units[shapely.intersects(units.geometry.values, tower)]
    west = holding[shapely.contains(holding.geometry.values, door(4, 6))]  # the first 单元's side
    assert np.isclose(shapely.area(shapely.intersection(west.geometry.iloc[0], tower)) / tower.area, 18 / 40, atol=1e-3)
    # its households follow the cut, as a straddling building's do: 18/40 and 22/40 of 600
    assert not units["lone_tower"].any() and sorted(holding["households"]) == [270, 330]
    assert west["households"].iloc[0] == 270
    assert units["households"].sum() == 760
    counted = build_units(community, None, buildings.assign(单元数=[4, 1, 1, 1, 1]), compounds=compound)
    assert sorted(counted.loc[shapely.intersects(counted.geometry.values, tower), "households"]) == [300, 300]


def test_micro_grids_cut_a_building_by_its_doors() -> None:
    community, _compound, buildings = compound_with_a_tower(150, small=2)
    buildings = buildings.rename(columns={"户数": "households"})  # as stored: imports name their fields
    grids = community.rename(columns={"code": "grid_code"}).assign(grid_code=["511802001001001"])
    whole = divide(grids[["grid_code", "geometry"]], buildings, band=(50, 80))
    flag = whole.flags[whole.flags["flag"] == "building_above_max"]
    assert len(flag) == 1 and "entrances layer" in flag["reason"].iloc[0] and "单元门" in flag["reason_zh"].iloc[0]
    doors = frame([door(9, 0), door(30, 0)])  # two 单元, the cut at 19.5 m
    cut = divide(grids[["grid_code", "geometry"]], buildings, band=(50, 80), entrances=doors)
    assert cut.flags[cut.flags["flag"] == "building_above_max"].empty
    tower = cut.buildings[cut.buildings["building_id"] == 0]
    assert sorted(tower["households"]) == [73, 77] and set(tower["parts"]) == {2}  # 19.5/40 and 20.5/40 of 150
    west = tower[shapely.contains(tower.geometry.values, door(5, 6))]
    assert west["households"].tolist() == [73]
    assert cut.report["summary"]["in_band"] == cut.report["summary"]["microgrids"]


# -- a district's own files -----------------------------------------------------------------------------
def write_gbk(frame_: gpd.GeoDataFrame, path: Path) -> Path:
    frame_.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)  # as handed over: no .cpg, GBK detected
    return path


def test_an_entrances_file_rebuilds_the_units_and_cuts_the_tower(engine: sa.Engine, tmp_path: Path) -> None:
    from gridmap.progress import Progress
    from gridmap.services.boundaries import import_boundaries
    from gridmap.services.importing import import_file
    from gridmap.services.microgrids import divide_plan
    from gridmap.services.partitioning import partition_territory

    class Said(Progress):
        """What a partition says, kept."""

        def __init__(self) -> None:
            super().__init__(quiet=True)
            self.lines: list[str] = []

        def say(self, en: str, zh: str) -> None:
            self.lines.append(f"{en} / {zh}")

    community, _compound, buildings = compound_with_a_tower(600, small=12)
    x0, y0, x1, y1 = community.total_bounds
    east = frame([shapely.box(x1, y0, x1 + (x1 - x0), y1)])
    communities = gpd.GeoDataFrame({"社区代码": ["511802001001", "511802001002"], "社区名称": ["第一社区", "第二社区"],
                                    "街道名称": ["东城街道"] * 2, "市名称": ["雅安市"] * 2},
                                   geometry=[community.geometry.iloc[0], east.geometry.iloc[0]], crs=4490)
    import_boundaries(engine, write_gbk(communities, tmp_path / "社区.shp"), actor="test")
    far_east = [shapely.affinity.translate(g, xoff=x1 - x0) for g in buildings.geometry.iloc[1:9]]
    all_buildings = frame(list(buildings.geometry) + far_east, 户数=list(buildings["户数"]) + [40] * 8,
                          楼栋号=[f"{i + 1}栋" for i in range(len(buildings) + 8)])
    import_file(engine, write_gbk(all_buildings, tmp_path / "楼栋.shp"), territory="511802", layer="buildings",
                kind="buildings", actor="test")
    first = partition_territory(engine, "511802", author="test")
    assert first.result.units["lone_tower"].sum() == 1
    above = first.result.flags[first.result.flags["flag"] == "above_max"]
    assert len(above) == 1 and "entrances layer" in above["reason"].iloc[0]

    # front and back doors of each 单元, labelled in a 单元 column (stored as `entrances`: the field
    # table's name for a building's count); the back doors stand apart, so only the labels pair them
    back = [9, 13, 24, 35]
    doors = frame([door(x, 0) for x in TOWER_DOORS] + [door(x, 12) for x in back] + [door(20, -15)],
                  单元=[f"{i + 1}单元" for i in range(4)] * 2 + ["9单元"], 类型=["单元门"] * 9)
    import_file(engine, write_gbk(doors, tmp_path / "单元门.shp"), territory="511802", layer="单元门",
                kind="entrances", actor="test")
    said = Said()
    second = partition_territory(engine, "511802", author="test", progress=said)
    text = "\n".join(said.lines)
    assert "entrances layer added" in text and "新增 entrances 图层" in text
    assert "entrances layer: 8 of 9 doors counted; 单元 counts for 1 buildings" in text and "单元门图层" in text
    units = second.result.units
    assert not units["lone_tower"].any()
    assert units["households"].sum() == 600 + 40 * 20
    tower = buildings.geometry.iloc[0]
    with engine.connect() as conn:
        split = conn.execute(sa.text(
            "SELECT households, ST_Area(ST_Intersection(geom, ST_GeomFromText(:t, 4490))) / ST_Area(ST_GeomFromText(:t, 4490)) "
            "FROM units WHERE retired_at IS NULL AND ST_Intersects(geom, ST_GeomFromText(:t, 4490)) ORDER BY 2"),
            {"t": tower.wkt}).all()
    # stairwells at 6.5, 12.5, 24 and 35.5 m: the tower cut at 18.25 m, its households by area
    assert [h for h, _ in split] == [274, 326]  # ordered by their share: the west piece first
    assert np.allclose([s for _, s in split], [18.25 / 40, 21.75 / 40], atol=1e-3)

    micro = divide_plan(engine, second.plan_id, actor="test")
    rows = micro.result.buildings
    ours = rows[rows["building_id"] == rows.loc[rows["households"] >= 140, "building_id"].iloc[0]]
    assert set(ours["parts"]) == {4} and ours["households"].sum() == 600
