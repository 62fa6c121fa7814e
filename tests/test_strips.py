"""Strips of land without residents (a compound's wall to the road centre line) are shared among
the units they front and joined to them: no grid winds round its neighbours' compounds."""

from __future__ import annotations

import dataclasses
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap.geo.coverage import stitch_borders
from gridmap.geo.strips import share_strips
from gridmap.geo.tessellation import building_cells
from gridmap.geo.units import UnitRules, build_units

ORIGIN = (103.0, 30.0)
KX = 111_320.0 * math.cos(math.radians(ORIGIN[1]))
KY = 110_574.0


def lonlat(geom):
    """A geometry drawn in metres east and north of ORIGIN, in lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack([ORIGIN[0] + c[:, 0] / KX, ORIGIN[1] + c[:, 1] / KY]))


def metres(xy: np.ndarray) -> np.ndarray:
    return np.column_stack([(xy[:, 0] - ORIGIN[0]) * KX, (xy[:, 1] - ORIGIN[1]) * KY])


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


COMPOUNDS = {"甲小区": (14, 14, 180, 136), "乙小区": (14, 164, 180, 286), "丙小区": (200, 14, 286, 286),
             "丁小区": (470, 14, 586, 136)}
SCHOOL = (314, 14, 450, 136)  # 136 × 122 m: a dedicated site
PARK = (314, 164, 400, 226)   # a small park: folded into the blocks, named


@pytest.fixture(scope="module")
def layers():
    """One community of 600 × 300 m, its border on the road centre lines round it, cut by primary
    roads at x = 300 and (east of it) y = 150. West of x = 300 three compounds drawn at their walls
    14 m inside the road centre lines, as a district office hands them over; south-east a school
    and a fourth compound drawn the same way; north-east a park and houses without a compound."""
    community = frame([{"code": "511802001001", "name": "第一社区", "geometry": lonlat(shapely.box(0, 0, 600, 300))}])
    roads = frame([{"highway": "primary", "geometry": lonlat(shapely.LineString([(300, -20), (300, 320)]))},
                   {"highway": "primary", "geometry": lonlat(shapely.LineString([(300, 150), (620, 150)]))}])
    compounds = frame([{"name": name, "geometry": lonlat(shapely.box(*box))} for name, box in COMPOUNDS.items()])
    buildings = []
    for x0, y0, x1, y1 in COMPOUNDS.values():
        buildings += [{"户数": 30, "geometry": lonlat(shapely.box(x, y, x + 15, y + 15))}
                      for x in np.arange(x0 + 10, x1 - 25, 40) for y in np.arange(y0 + 10, y1 - 25, 40)]
    buildings += [{"户数": 40, "geometry": lonlat(shapely.box(x, 250, x + 15, 265))} for x in (470, 520, 560)]
    sites = frame([{"type": "学校", "name": "第一小学", "geometry": lonlat(shapely.box(*SCHOOL))},
                   {"type": "公园", "name": "街心公园", "geometry": lonlat(shapely.box(*PARK))}])
    return community, roads, frame(buildings), compounds, sites


def build(layers, **rules):
    community, roads, buildings, compounds, sites = layers
    return build_units(community, roads, buildings, compounds=compounds, sites=sites,
                       rules=dataclasses.replace(UnitRules(), **rules))


def unit_at(units: gpd.GeoDataFrame, x: float, y: float) -> gpd.GeoSeries:
    hit = units[units.geometry.contains(lonlat(shapely.Point(x, y)))]
    assert len(hit) == 1
    return hit.iloc[0]


def test_the_strip_round_three_compounds_is_shared_among_them(layers) -> None:
    units = build(layers)
    before = build(layers, share_land_along_walls=False)
    west = lonlat(shapely.box(0, 0, 300, 300))
    in_west = lambda frame: frame[frame.geometry.representative_point().within(west)]  # noqa: E731
    # without the rule one uninhabited unit runs round all three compounds; with it none is left
    assert (in_west(before)["households"] == 0).any()
    assert not (in_west(units)["households"] == 0).any()
    assert units["households"].sum() == before["households"].sum() == layers[2]["户数"].sum()
    # each compound whole in its own unit, which now reaches the road centre lines round it
    for name, box in COMPOUNDS.items():
        unit = units[units["name"] == name]
        assert len(unit) == 1 and unit.iloc[0]["kind"] == "compound"
        assert unit.iloc[0].geometry.buffer(1e-9).contains(lonlat(shapely.box(*box)))
    # the strip goes to the compound nearest: outside 甲's west wall to 甲, outside 丙's east side to 丙,
    # and the gap between 甲 and 乙 (y 136–164) split at its middle
    assert unit_at(units, 5, 70)["name"] == "甲小区"
    assert unit_at(units, 293, 150)["name"] == "丙小区"
    assert unit_at(units, 90, 143)["name"] == "甲小区"
    assert unit_at(units, 90, 157)["name"] == "乙小区"
    # the units still tile the community: nothing outside it, no gap, no overlap
    community = layers[0].geometry.iloc[0]
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(units.geometry.values), community)) < 1e-12
    assert shapely.coverage_is_valid(units.geometry.values)


def test_nothing_crosses_the_road_a_school_takes_its_pavement_and_a_park_stays_as_drawn(layers) -> None:
    units = build(layers)
    faces = [lonlat(shapely.box(*box)).buffer(1e-9) for box in ((0, 0, 300, 300), (300, 0, 600, 150), (300, 150, 600, 300))]
    for geom in units.geometry.values:  # the houses north-east touch the west strip too, across the road
        assert any(geom.within(face) for face in faces)
    # the school's dedicated unit reaches the road centre lines round it; the strip between it and
    # 丁 is split between them
    school = unit_at(units, 380, 5)
    assert school["kind"] == "site" and school["name"] == "第一小学"
    assert unit_at(units, 307, 70)["name"] == "第一小学" and unit_at(units, 380, 143)["name"] == "第一小学"
    assert unit_at(units, 455, 70)["name"] == "第一小学" and unit_at(units, 465, 70)["name"] == "丁小区"
    bare = (units["kind"] == "block") & units["site_type"].isna() & (units["households"] == 0)
    assert not bare.any()

    # the park is a named place: kept as drawn, neither cut nor grown, and not a frontage
    park = units[units["name"] == "街心公园"]
    assert len(park) == 1 and park.iloc[0]["site_type"] == "公园"
    drawn = gpd.GeoSeries([lonlat(shapely.box(*PARK))], crs=4490).to_crs(32648).area.iloc[0]
    assert park.to_crs(32648).area.iloc[0] == pytest.approx(drawn, rel=1e-6)


def test_share_strips_cuts_the_land_nearest_each_frontage_and_tiles_it() -> None:
    # a ring 10 m wide round two compounds side by side, its outer edge on the road centre lines
    a, b = lonlat(shapely.box(10, 10, 50, 40)), lonlat(shapely.box(50, 10, 90, 40))
    strip = lonlat(shapely.box(0, 0, 100, 50)).difference(shapely.union(a, b))
    geoms = np.array([a, b, strip], dtype=object)
    road = np.array([lonlat(shapely.LineString([(-10, 0), (110, 0)]))], dtype=object)
    houses = np.array([lonlat(shapely.box(20, 20, 30, 30)), lonlat(shapely.box(60, 20, 70, 30))], dtype=object)

    def share(community=("c", "c", "c"), walls=(True, True, False)):
        return share_strips(geoms, np.array(community, dtype=object), np.array([False, False, True]),
                            np.array([True, True, False]), np.array(walls), buildings=houses,
                            points=shapely.point_on_surface(houses), project=metres, barriers=road)

    shared = share()
    assert shared.strips == 1 and shared.parts == 2
    assert shared.source.tolist() == [0, 1, 2, 2] and shared.joins.tolist() == [-1, -1, 0, 1]  # nothing left of 2
    parts = shared.geometry[2:]
    assert shapely.area(parts).sum() == pytest.approx(shapely.area(strip), rel=1e-9)
    assert shapely.coverage_is_valid(parts)
    assert parts[0].contains(lonlat(shapely.Point(5, 25))) and parts[1].contains(lonlat(shapely.Point(95, 25)))
    # the land above their common corner split there
    assert parts[0].contains(lonlat(shapely.Point(42, 45))) and parts[1].contains(lonlat(shapely.Point(58, 45)))
    # inhabited, not walls, they take a block without residents all the same
    assert share(walls=(False, False, False)).joins.tolist() == [-1, -1, 0, 1]
    assert not share(community=("c", "c", "d")).strips  # the compounds are in another community


def test_an_inhabited_block_keeps_its_houses_land_and_gives_the_walls_theirs() -> None:
    # a block with a compound in its west half and a walk-up in its east half, 30 m from the wall
    compound = lonlat(shapely.box(10, 10, 60, 90))
    block = lonlat(shapely.box(0, 0, 150, 100)).difference(compound)
    walkup = lonlat(shapely.box(90, 40, 110, 60))
    shared = share_strips(np.array([compound, block], dtype=object), np.array(["c", "c"], dtype=object),
                          np.array([False, True]), np.array([True, True]), np.array([True, False]),
                          buildings=np.array([walkup], dtype=object),
                          points=shapely.point_on_surface(np.array([walkup], dtype=object)), project=metres)
    assert shared.source.tolist() == [0, 1, 1] and shared.joins.tolist() == [-1, -1, 0]
    rest, given = shared.geometry[1], shared.geometry[2]
    assert given.contains(lonlat(shapely.Point(5, 50))) and given.contains(lonlat(shapely.Point(70, 50)))
    assert rest.contains(lonlat(shapely.Point(80, 50))) and rest.contains(walkup)  # nearer the walk-up: its own
    assert rest.contains(lonlat(shapely.Point(140, 95)))  # 46 m from the walk-up, 80 m from the wall
    assert shapely.area(shared.geometry[1:]).sum() == pytest.approx(shapely.area(block), rel=1e-9)


def test_line_footprints_get_cells_that_tile_their_area() -> None:
    area = lonlat(shapely.box(0, 0, 100, 20))
    lines = np.array([lonlat(shapely.LineString([(0, 20), (40, 20)])), lonlat(shapely.LineString([(40, 20), (100, 20)]))],
                     dtype=object)
    cells = building_cells(np.array([area], dtype=object), lines, np.array([0, 0]))
    assert shapely.area(cells).sum() == pytest.approx(shapely.area(area), rel=1e-9)
    assert cells[0].contains(lonlat(shapely.Point(10, 10))) and cells[1].contains(lonlat(shapely.Point(90, 10)))


def test_two_communities_built_apart_meet_once_stitched() -> None:
    """Land cut where it meets a community border adds a vertex there that the units across it
    lack when the two communities are built apart (a stale one rebuilt, one built at building
    grain); the rebuild stitches the borders (gridmap.geo.coverage.stitch_borders, as
    gridmap.services.partitioning does) and the two form one clean coverage."""
    west = lonlat(shapely.box(0, 0, 300, 300))
    east = lonlat(shapely.box(300, 0, 600, 300))
    communities = frame([{"code": "511802001001", "geometry": west}, {"code": "511802001002", "geometry": east}])
    boxes = [(14, 14, 130, 286), (150, 14, 286, 130), (150, 150, 286, 286),   # west: the border at x = 300
             (314, 14, 450, 286), (470, 14, 586, 140), (470, 160, 586, 286)]  # east
    compounds = frame([{"name": f"小区{i}", "geometry": lonlat(shapely.box(*b))} for i, b in enumerate(boxes)])
    buildings = frame([{"户数": 40, "geometry": lonlat(shapely.box(b[0] + 20, b[1] + 20, b[0] + 35, b[1] + 35))}
                       for b in boxes])
    west_units, east_units = (build_units(communities.iloc[[i]], None, buildings, compounds=compounds) for i in (0, 1))
    # the west's land between compounds 1 and 2 and the border was cut there: a vertex the east lacks
    assert unit_at(west_units, 295, 200)["name"] == "小区2" and unit_at(west_units, 295, 80)["name"] == "小区1"
    apart = np.concatenate([west_units.geometry.values, east_units.geometry.values])
    assert not shapely.coverage_is_valid(apart)
    stitched, gained = stitch_borders(west_units.geometry.values, east_units.geometry.values)
    kept = east_units.geometry.values.copy()
    for i, geometry in gained.items():
        kept[i] = geometry
    assert gained and shapely.coverage_is_valid(np.concatenate([stitched, kept]))
