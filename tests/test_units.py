"""Units: coverage without gaps or overlaps, compounds whole, households conserved — on the
real demo data and on generated layouts (hypothesis)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.ops import split

from gridmap.geo.quality import coverage_problems
from gridmap.geo.synthetic import street_grid_layout
from gridmap.geo.units import MIN_SHARED_DEG, UnitRules, build_units


def test_monaco_units_tile_every_community(monaco_units) -> None:
    layers, units = monaco_units
    assert coverage_problems(units, layers["communities"]).empty
    assert units.geometry.is_valid.all()
    assert set(units.geom_type) == {"Polygon"}  # each unit is one contiguous piece
    assert units["unit_id"].is_unique
    assert set(units["community_code"]) == set(layers["communities"]["code"])
    assert set(units["kind"]) == {"compound", "block", "site"}


def test_monaco_households_are_conserved(monaco_units) -> None:
    layers, units = monaco_units
    buildings = layers["buildings"]
    area = shapely.union_all(layers["communities"].geometry.values)
    inside = buildings[buildings.within(area)]["households"].sum()
    touching = buildings[buildings.intersects(area)]["households"].sum()
    assert inside <= units["households"].sum() <= touching
    assert units["households"].min() >= 0


def test_monaco_compounds_are_whole_unless_too_big(monaco_units) -> None:
    _, units = monaco_units
    limit = UnitRules().compound_max_households
    compounds = units[units["kind"] == "compound"]
    whole = compounds[compounds["compound_part"].isna()]
    split = compounds[compounds["compound_part"].notna()]
    assert len(whole) > 0 and len(split) > 0  # Monaco has both: the checks below are not vacuous
    # a compound within the limit stays whole: one unit per piece, and its pieces do not touch
    whole_groups = whole.groupby(["community_code", "compound_id"])
    assert (whole_groups["households"].sum() <= limit).all()
    for _, pieces in whole_groups:
        g = pieces.geometry.values
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                assert shapely.length(shapely.intersection(g[i].boundary, g[j].boundary)) <= MIN_SHARED_DEG
    # only a compound above the limit is divided, into several units
    split_groups = split.groupby(["community_code", "compound_id"])
    assert (split_groups.size() > 1).all()
    assert (split_groups["households"].sum() > limit).all()


def test_sites_become_site_units(monaco_units) -> None:
    layers, units = monaco_units
    sites = units[units["kind"] == "site"]
    assert len(sites) > 0 and sites["site_type"].notna().all()
    assert set(sites["site_type"]) <= set(UnitRules().site_types)


def test_slivers_are_merged(monaco_units) -> None:
    _, units = monaco_units
    # units below the sliver limit survive only where they have no neighbour in their community
    small = units[units["area_m2"] < UnitRules().min_unit_area_m2]
    for _, row in small.iterrows():
        same = units[(units["community_code"] == row["community_code"]) & (units["unit_id"] != row["unit_id"])]
        shared = shapely.length(shapely.intersection(shapely.boundary(same.geometry.values), row.geometry.boundary))
        assert shared.max(initial=0) <= MIN_SHARED_DEG, row["unit_id"]


def test_point_sites_mark_their_block() -> None:
    layout = street_grid_layout(3, compounds=0)
    centre = layout.communities.geometry.iloc[0].centroid
    sites = gpd.GeoDataFrame({"type": ["school"], "name": ["第一小学"]}, geometry=[centre], crs=4490)
    units = build_units(layout.communities, layout.roads, layout.buildings, sites=sites)
    site = units[units["kind"] == "site"]
    assert len(site) == 1 and site.iloc[0]["name"] == "第一小学" and site.iloc[0].geometry.contains(centre)


def test_a_compound_named_by_its_小区名称_gives_its_units_that_name() -> None:
    """A district's 小区 layer names its compounds 小区名称, which the field table reads as
    compound_name: the compound units carried no name until it was taken as the compound's name."""
    from gridmap.geo.fields import map_fields

    layout = street_grid_layout(3, compounds=2)
    given = layout.compounds.drop(columns=[c for c in ("name",) if c in layout.compounds])
    given["小区名称"] = [f"锦绣花园{i + 1}期" for i in range(len(given))]
    compounds, _ = map_fields(given)
    units = build_units(layout.communities, layout.roads, layout.buildings, compounds=compounds)
    named = units.loc[units["kind"] == "compound", "name"]
    assert len(named) >= 2 and all(isinstance(n, str) and n.startswith("锦绣花园") for n in named), named.tolist()


def test_missing_code_column_is_an_error() -> None:
    layout = street_grid_layout(1)
    with pytest.raises(ValueError, match="'code'"):
        build_units(layout.communities.rename(columns={"code": "id"}), layout.roads, layout.buildings)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), streets=st.integers(1, 6), compounds=st.integers(0, 5),
       communities=st.integers(1, 3))
# a 52 m² sliver between a compound's fence and a primary road joined the block across the road
@example(seed=111, streets=4, compounds=5, communities=2)
def test_generated_layouts_tile_and_conserve(seed: int, streets: int, compounds: int, communities: int) -> None:
    layout = street_grid_layout(seed, communities_x=communities, streets=streets, compounds=compounds)
    units = build_units(layout.communities, layout.roads, layout.buildings, compounds=layout.compounds,
                        rules=UnitRules(compound_max_households=400), seed=seed)
    assert coverage_problems(units, layout.communities).empty
    assert units.geometry.is_valid.all()
    assert units["households"].sum() == layout.buildings["households"].sum()  # every building is inside
    assert units["unit_id"].is_unique
    # compounds: whole unless above the limit (then split into parts). A compound cut into
    # separate pieces by another compound keeps one unit per piece, and those never touch.
    c = units[units["kind"] == "compound"]
    whole = c[c["compound_part"].isna()]
    assert (whole["households"] <= 400).all()
    for _, pieces in whole.groupby(["community_code", "compound_id"]):
        if len(pieces) > 1:
            g = pieces.geometry.values
            for i in range(len(g)):
                for j in range(i + 1, len(g)):
                    assert shapely.length(shapely.intersection(g[i].boundary, g[j].boundary)) <= MIN_SHARED_DEG
    # blocks never cross the barrier roads: no primary/secondary road cuts a block in two (a unit's
    # border along a road holds the road's nodes, so it may "cross" the original line by 1e-16°)
    barriers = layout.roads[layout.roads["highway"].isin(["primary", "secondary"])]
    blocks = units[units["kind"] == "block"]
    for line in barriers.geometry.values:
        for block in blocks.geometry.values[blocks.geometry.intersects(line).to_numpy()]:
            halves = [p for p in split(block, line).geoms if p.area > 1e-10]  # ≈ 1 m²
            assert len(halves) == 1


def test_reykjavik_units_tile_all_72_communities(reykjavik_units) -> None:
    layers, units = reykjavik_units
    assert units["community_code"].nunique() == 72
    assert coverage_problems(units, layers["communities"]).empty
    assert units.geometry.is_valid.all()
    counts = units["kind"].value_counts()
    assert counts["compound"] > 1000 and counts["site"] > 80 and counts["block"] > 500
    # parks, kindergartens and small shops are folded into blocks that keep their type (the site policy)
    assert ((units["kind"] == "block") & units["site_type"].notna()).sum() > 150


def test_large_compound_is_split_around_its_buildings_not_through_them() -> None:
    from gridmap.geo.synthetic import _geo

    # a 400 m × 300 m community, a compound filling most of it with no internal roads, and a
    # lattice of 15 m houses of 30 households each: far above the limit, so it is tessellated
    community = gpd.GeoDataFrame({"code": ["511802001001"]}, geometry=_geo(np.array([shapely.box(0, 0, 400, 300)])),
                                 crs=4490)
    compound = gpd.GeoDataFrame({"name": ["大型小区"]}, geometry=_geo(np.array([shapely.box(20, 20, 380, 280)])),
                                crs=4490)
    xs, ys = np.meshgrid(np.arange(30, 370, 25.0), np.arange(30, 270, 25.0))
    houses = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 15, ys.ravel() + 15)
    buildings = gpd.GeoDataFrame({"building": ["apartments"] * len(houses), "households": [30] * len(houses)},
                                 geometry=_geo(houses), crs=4490)
    units = build_units(community, None, buildings, compounds=compound, rules=UnitRules(compound_max_households=300))
    parts = units[units["compound_part"].notna()]
    assert len(parts) >= buildings["households"].sum() // 300
    assert coverage_problems(units, community).empty
    for footprint in buildings.geometry.values:
        shares = shapely.area(shapely.intersection(parts.geometry.values, footprint)) / footprint.area
        assert shares.max() > 0.999  # each house lies whole in one part
    assert units["households"].sum() == buildings["households"].sum()
    assert (parts["households"] <= 300).all()


@pytest.fixture(scope="module")
def centreline():
    """A district whose community borders follow road centre lines, the roads digitised a metre
    off them (the usual Chinese civil-affairs data): units and a partition of them."""
    from gridmap.geo.partition import partition
    from gridmap.geo.synthetic import centreline_layout

    layout = centreline_layout(1)
    units = build_units(layout.communities, layout.roads, layout.buildings)
    return layout, units, partition(units, roads=layout.roads)


def test_centreline_borders_leave_no_sliver_spike_or_gap(centreline) -> None:
    layout, units, result = centreline
    geoms = np.asarray(units.geometry.values, dtype=object)
    assert shapely.coverage_is_valid(geoms)  # edge for edge, no tolerance
    assert coverage_problems(units, layout.communities).empty
    assert (units["area_m2"] >= UnitRules().min_unit_area_m2).all()  # no sliver survives
    assert set(units.geom_type) == {"Polygon"}
    assert result.flags[result.flags["flag"] == "not_contiguous"].empty
    # no hair-thin spike: opening each unit by half a metre moves its outline by little
    from gridmap.geo.crs import metric_crs_for_frame

    metric = np.asarray(units.to_crs(metric_crs_for_frame(units)).geometry.values, dtype=object)
    opened = shapely.buffer(shapely.buffer(metric, -0.5), 0.5)
    assert shapely.hausdorff_distance(metric, opened).max() < 5.0


@pytest.mark.parametrize("crs", ["4490", "4326", "gk3", "gk3-cm", "gcj02"])
def test_units_and_grids_stay_valid_in_every_export_crs(centreline, crs, tmp_path) -> None:
    """Written as a Shapefile in each CRS the export offers and read back by GDAL's ogrinfo:
    no unit and no grid is invalid there (they were self-intersecting after projection)."""
    import subprocess

    from gridmap.geo.export import export

    _, units, result = centreline
    out = tmp_path / f"centreline_{crs}.zip"
    export({"units": units.drop(columns=["compound_part"]), "grids": result.grids}, out, format="shp", crs=crs)
    for layer in ("units", "grids"):
        answer = subprocess.run(
            ["ogrinfo", "-ro", "-q", "-dialect", "sqlite", "-sql",
             f"SELECT count(*) AS bad FROM {layer} WHERE NOT ST_IsValid(geometry)", f"/vsizip/{out}/{layer}.shp"],
            capture_output=True, text=True, check=True).stdout
        assert "bad (Integer) = 0" in answer, (layer, answer)


@pytest.mark.parametrize("turn", range(8))
def test_an_internal_road_divides_an_oversize_compound_where_it_crosses_at_any_angle(turn: int) -> None:
    """A service road crossing an oversize compound divides it along the road (the split's first
    rule: internal roads, then buildings), whatever the angle: a road cut to the compound by an
    overlay ends a hair (1e-16°) off the outline, and the noding must not leave that end
    dangling. The houses sit close to the road on one side and far from it on the other, so a
    split by the buildings alone would not follow the road."""
    from gridmap.geo.synthetic import _geo

    angle = 7.0 + 11.0 * turn  # degrees: never along the lattice
    square = shapely.affinity.rotate(shapely.box(-150, -150, 150, 150), angle, origin=(0, 0))
    road = shapely.affinity.rotate(shapely.LineString([(-400, 13.7), (400, 13.7)]), angle * 0.5 + 3, origin=(0, 0))
    community = gpd.GeoDataFrame({"code": ["511802001001"]}, geometry=_geo(np.array([shapely.box(-300, -300, 300, 300)])),
                                 crs=4490)
    compound = gpd.GeoDataFrame({"name": ["小区"]}, geometry=_geo(np.array([square])), crs=4490)
    side = [shapely.affinity.translate(road.parallel_offset(d, "left"), 0, 0) for d in (12, -60)]
    houses = [shapely.box(*p.buffer(4).bounds) for line in side
              for p in (line.interpolate(f, normalized=True) for f in np.linspace(0.42, 0.58, 4))]
    houses = [h for h in houses if square.contains(h)]
    buildings = gpd.GeoDataFrame({"building": ["apartments"] * len(houses), "households": [90] * len(houses)},
                                 geometry=_geo(np.array(houses)), crs=4490)
    roads = gpd.GeoDataFrame({"highway": ["service"]}, geometry=_geo(np.array([road])), crs=4490)
    units = build_units(community, roads, buildings, compounds=compound, rules=UnitRules(compound_max_households=500))
    parts = units[units["compound_part"].notna()]
    assert len(parts) >= 2 and units["households"].sum() == buildings["households"].sum()
    assert coverage_problems(units, community).empty
    inside = shapely.intersection(_geo(np.array([road]))[0], _geo(np.array([square]))[0])
    borders = shapely.union_all([shapely.intersection(a.boundary, b.boundary) for i, a in enumerate(parts.geometry)
                                 for b in parts.geometry.values[i + 1:]])
    # the road's whole stretch inside the compound is a border between two of its parts
    assert shapely.hausdorff_distance(inside, shapely.intersection(borders, inside.buffer(1e-7))) < 1e-6


@pytest.mark.parametrize("vertex_off_m", [1.5, None])
def test_a_road_ending_on_the_community_border_adds_no_vertex_to_it(vertex_off_m) -> None:
    """A compound against the community border, crossed by a service road that leaves the
    community there (with and without a vertex of the border 1.5 m from the crossing). The road's
    end on the border stays loose: a point put there would be one the units of the community
    across lack when only one side is rebuilt (two validation errors after a re-import, seen in
    test_stale_units). No unit has a vertex on the border but the border's own and the
    compound's corners."""
    from gridmap.geo.synthetic import _geo

    ring = [(-300, -300), (300, -300), (300, 300), (-300, 300)]
    if vertex_off_m is not None:
        ring.append((-300, 20.0 + vertex_off_m))  # a vertex of the border beside the road's crossing
    community = gpd.GeoDataFrame({"code": ["511802001001"]}, geometry=_geo(np.array([shapely.Polygon(ring)])),
                                 crs=4490)
    compound = gpd.GeoDataFrame({"name": ["小区"]}, geometry=_geo(np.array([shapely.box(-300, -150, 0, 150)])), crs=4490)
    road = shapely.LineString([(-400, 20.0), (100, 20.0)])  # crosses the border, the compound and beyond
    houses = [shapely.box(x, y, x + 12, y + 12) for x in (-250, -180, -110, -50) for y in (40, -60, -120)]
    buildings = gpd.GeoDataFrame({"building": ["apartments"] * len(houses), "households": [90] * len(houses)},
                                 geometry=_geo(np.array(houses)), crs=4490)
    roads = gpd.GeoDataFrame({"highway": ["service"]}, geometry=_geo(np.array([road])), crs=4490)
    # (the land between the compound and the border is its own: no wall's land is cut on the border
    # here, which a partial rebuild would stitch: tests/test_strips.py)
    units = build_units(community, roads, buildings, compounds=compound,
                        rules=UnitRules(compound_max_households=500, share_land_along_walls=False))
    assert coverage_problems(units, community).empty
    assert units["households"].sum() == buildings["households"].sum()
    assert units["compound_part"].notna().sum() >= 2  # the compound was split (by its buildings)
    # the unit vertices on the community border (within the noding grid's rounding) are the
    # border's own vertices or the compound's corners on it
    border = community.geometry.values[0].boundary
    own = np.concatenate([shapely.get_coordinates(community.geometry.values[0]),
                          shapely.get_coordinates(compound.geometry.values[0])])
    xy = shapely.get_coordinates(units.geometry.values)
    on_border = xy[shapely.distance(shapely.points(xy), border) < 1e-9]
    assert len(on_border) >= 4  # the community's and the compound's corners at least: the check has teeth
    gap = np.hypot(*(on_border[:, None, :] - own[None, :, :]).transpose(2, 0, 1)).min(axis=1)
    assert (gap < 1e-9).all(), on_border[gap >= 1e-9]


def test_a_closed_service_road_divides_an_oversize_compound_too() -> None:
    """OSM draws some service roads as closed rings (round a block of houses); such a ring is a road
    like any other for the split, beside an open road in another oversize compound (a ring there
    once made the roads of the units fail to line up)."""
    from gridmap.geo.synthetic import _geo

    community = gpd.GeoDataFrame({"code": ["511802001001"]}, geometry=_geo(np.array([shapely.box(-400, -300, 400, 300)])),
                                 crs=4490)
    west, east = shapely.box(-350, -150, -50, 150), shapely.box(50, -150, 350, 150)
    compounds = gpd.GeoDataFrame({"name": ["西区", "东区"]}, geometry=_geo(np.array([west, east])), crs=4490)
    ring = shapely.LinearRing([(-300, -100), (-100, -100), (-100, 100), (-300, 100)])
    line = shapely.LineString([(0, 13.7), (400, 13.7)])
    houses = ([shapely.box(x, y, x + 12, y + 12) for x, y in ((-260, -40), (-180, -40), (-260, 10))]  # inside the ring
              + [shapely.box(x, y, x + 12, y + 12) for x in (-330, -70) for y in (-130, 120)]  # outside it
              + [shapely.box(x, y, x + 12, y + 12) for x in (100, 200, 300) for y in (40, -60)])
    buildings = gpd.GeoDataFrame({"building": ["apartments"] * len(houses), "households": [90] * len(houses)},
                                 geometry=_geo(np.array(houses)), crs=4490)
    roads = gpd.GeoDataFrame({"highway": ["service", "service"]}, geometry=_geo(np.array([ring, line])), crs=4490)
    units = build_units(community, roads, buildings, compounds=compounds, rules=UnitRules(compound_max_households=300))
    assert coverage_problems(units, community).empty
    assert units["households"].sum() == buildings["households"].sum()
    inside = _geo(np.array([shapely.Polygon(ring.coords)]))[0]
    parts = units[units["compound_part"].notna()].geometry.values
    # one part of the west compound is the land inside the ring; the east one is cut along its road
    east_parts = [p for p in parts if shapely.intersects(p, _geo(np.array([shapely.Point(200, 13.7)]))[0].buffer(5e-5))]
    assert len(east_parts) >= 2
    assert any(abs(shapely.area(shapely.intersection(p, inside)) - shapely.area(p)) < 1e-3 * shapely.area(p)
               and abs(shapely.area(p) - shapely.area(inside)) < 0.02 * shapely.area(inside) for p in parts)


def test_slivers_join_a_neighbour_on_their_side_of_the_road() -> None:
    """A compound, two slivers of 100 m² in a row beside it, a main road, a block across it: the
    sliver on the road prefers the other sliver (on its side) to the block (across the road), the
    other sliver prefers the compound, and both end in the compound, at once, though each chose
    the other's neighbour (a pair of slivers choosing each other once waited for each other
    forever, and 151 of Reykjavík's units stayed slivers)."""
    import pandas as pd

    from gridmap.geo.units import _merge_small, metric_area_fn

    m = 1 / 111_320.0

    def box(x0: float, x1: float):
        return shapely.box(103.0 + x0 * m, 30.0, 103.0 + x1 * m, 30.0 + 10 * m)

    road = shapely.LineString([(103.0 + 60 * m, 29.99), (103.0 + 60 * m, 30.01)])
    units = pd.DataFrame({"community_code": ["c"] * 4, "kind": ["compound", "block", "block", "block"],
                          "households": [40.0, 1.0, 2.0, 30.0],
                          "geometry": [box(0, 50), box(50, 55), box(55, 60), box(60, 110)]})
    area_fn = metric_area_fn("EPSG:4547")
    merged = _merge_small(units, 400.0, area_fn, np.array([road], dtype=object))
    assert len(merged) == 2
    assert merged["kind"].tolist() == ["compound", "block"] and merged["households"].tolist() == [43.0, 30.0]
    assert shapely.equals(merged["geometry"].iloc[0], box(0, 60)) and shapely.equals(merged["geometry"].iloc[1], box(60, 110))
    # 25 pairs of slivers, each pair choosing each other with nothing else near: 25 groups at once
    # (one pair a round, for the 20 rounds there are, when each had to wait for the other)
    pairs = pd.DataFrame({"community_code": ["c"] * 50, "kind": ["block"] * 50, "households": [1.0] * 50,
                          "geometry": [box(100 * i + 5 * j, 100 * i + 5 * j + 5) for i in range(25) for j in (0, 1)]})
    joined = _merge_small(pairs, 400.0, area_fn, np.array([road], dtype=object))
    assert len(joined) == 25 and (joined["households"] == 2.0).all()
