"""Dedicated grids as practice has them, and no slivers or stray pieces.

Institutions (schools, hospitals, government compounds, industrial parks, large enterprises,
markets, office towers) above a size or staff threshold get a dedicated grid (专属网格); parks,
kindergartens and small shops are folded into the comprehensive grids around them as units that
keep their name and type; the profile's ``[units]`` site policy says otherwise. No unit is smaller
than the sliver area unless it is a piece of its community touching no other unit, and a grid is
in pieces only where its community is (flagged ``island``, in both languages)."""

from __future__ import annotations

import dataclasses
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.geo.crs import metric_crs_for_frame
from gridmap.geo.fields import map_fields
from gridmap.geo.graph import build_graph
from gridmap.geo.partition import partition
from gridmap.geo.profile import PRESETS, Profile, ProfileError
from gridmap.geo.report import grid_statistics, plan_report
from gridmap.geo.units import UnitRules, build_units
from gridmap.services.partitioning import rules_fingerprint
from gridmap.web.reports import SUMMARY_LABELS

ORIGIN = (103.0, 30.0)  # a Chinese district: areas in the CGCS2000 Gauss-Krüger zone


def lonlat(geom):
    """A geometry drawn in metres east and north of ORIGIN, in lon/lat."""
    kx = 111_320.0 * math.cos(math.radians(ORIGIN[1]))
    return shapely.transform(geom, lambda c: np.column_stack([ORIGIN[0] + c[:, 0] / kx, ORIGIN[1] + c[:, 1] / 110_574.0]))


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def rows_of_buildings(x0: float, y0: float, x1: float, y1: float, households: int, step: float = 30.0) -> list[dict]:
    return [{"geometry": lonlat(shapely.box(x, y, x + 12, y + 12)), "户数": households}
            for x in np.arange(x0 + 5, x1 - 17, step) for y in np.arange(y0 + 5, y1 - 17, step)]


@pytest.fixture(scope="module")
def layout():
    """One community of 600 × 400 m cut by a road at x = 300, with homes, and sites as a district
    hands them over (Chinese field names: 类型, 名称, 职工人数)."""
    community = frame([{"code": "511802001001", "geometry": lonlat(shapely.box(0, 0, 600, 400))}])
    roads = frame([{"highway": "primary", "geometry": lonlat(shapely.LineString([(300, -10), (300, 410)]))}])
    sites = frame([
        {"类型": "学校", "名称": "第一小学", "职工人数": None, "geometry": lonlat(shapely.box(10, 10, 110, 90))},      # 8,000 m²
        {"类型": "公园", "名称": "人民公园", "职工人数": None, "geometry": lonlat(shapely.box(10, 280, 130, 390))},    # 13,200 m²
        {"类型": "幼儿园", "名称": "阳光幼儿园", "职工人数": None, "geometry": lonlat(shapely.box(150, 10, 230, 80))},  # 5,600 m²
        {"类型": "商场", "名称": "小商铺", "职工人数": None, "geometry": lonlat(shapely.box(320, 10, 360, 40))},       # 1,200 m²
        {"类型": "写字楼", "名称": "金融大厦", "职工人数": 450, "geometry": lonlat(shapely.box(400, 10, 450, 50))},    # 2,000 m², 450 staff
        {"类型": "写字楼", "名称": "小写字楼", "职工人数": 40, "geometry": lonlat(shapely.box(500, 10, 550, 50))},     # 2,000 m², 40 staff
    ])
    buildings = frame(rows_of_buildings(0, 100, 300, 270, 14) + rows_of_buildings(300, 60, 600, 400, 9))
    sites, _ = map_fields(sites)  # what an import does: 类型 → type, 名称 → name, 职工人数 → staff
    units = build_units(community, roads, buildings, sites=sites)
    return units, roads


def by_name(units: gpd.GeoDataFrame, name: str) -> pd.Series:
    found = units[units["name"] == name]
    assert len(found) == 1, f"{name}: {len(found)} units"
    return found.iloc[0]


# -- the policy ------------------------------------------------------------------------------------
def test_the_default_policy_names_institutions_by_area_or_staff() -> None:
    rules = UnitRules()
    types = ["school", "School", "park", "kindergarten", "retail", "retail", "industrial", "industrial",
             "office", "学校", "公园", "企业", "unknown"]
    area = [6000, 6000, 90000, 6000, 6000, 60000, 15000, 25000, 800, 5000, 50000, 100, 1e6]
    staff = [np.nan, np.nan, np.nan, 999, np.nan, np.nan, np.nan, np.nan, 300, np.nan, 999, 300, 999]
    assert rules.is_dedicated(types, area, staff).tolist() == [
        True, True, False, False, False, True, False, True, True, True, False, True, False]
    assert not rules.is_dedicated(["office"], [800]).any()  # no staff known: the area decides


def test_the_profile_says_otherwise_per_type() -> None:
    profile = Profile.from_toml("""
[units]
dedicated_site_types = ["park", "school"]
dedicated_min_area_m2 = 1000
dedicated_min_staff = 50
[units.dedicated_min_area_by_type]
park = 20000
[units.dedicated_min_staff_by_type]
school = 80
""")
    rules = profile.units
    assert rules.dedicated_min_staff_by_type == {"school": 80}  # whole numbers stay whole
    assert rules.is_dedicated(["park", "park", "school", "school", "school", "hospital"],
                              [19000, 21000, 900, 900, 1000, 1e6], [np.nan, np.nan, 79, 80, np.nan, 999]).tolist() == [
        False, True, False, True, True, False]
    assert Profile.from_toml(profile.to_toml()) == profile


def test_profiles_written_before_keep_their_meaning() -> None:
    """Plans store their profile: the old [partition] keys are read into [units]."""
    old = PRESETS["default"].to_dict()
    old["partition"] = {**old["partition"], "dedicated_site_types": ["school", "park"], "dedicated_min_area_m2": 3000.0}
    old["units"] = {k: v for k, v in old["units"].items() if not k.startswith("dedicated_")}
    profile = Profile.from_dict(old, source="plan profile")
    assert profile.units.dedicated_site_types == ("school", "park")
    assert profile.units.dedicated_min_area_m2 == 3000.0
    assert profile.units.dedicated_min_area_by_type == {}  # it knew no per-type thresholds
    with pytest.raises(ProfileError) as twice:
        Profile.from_toml("[partition]\ndedicated_min_area_m2 = 1\n[units]\ndedicated_min_area_m2 = 2\n")
    assert "give it once" in twice.value.en and "只写一次" in twice.value.zh


def test_changing_the_site_policy_makes_units_stale() -> None:
    profile = PRESETS["default"]
    folded_schools = dataclasses.replace(profile, units=dataclasses.replace(
        profile.units, dedicated_site_types=tuple(t for t in profile.units.dedicated_site_types if t != "school")))
    more_staff = dataclasses.replace(profile, units=dataclasses.replace(profile.units, dedicated_min_staff=500))
    prints = {rules_fingerprint(p) for p in (profile, folded_schools, more_staff)}
    assert len(prints) == 3


# -- units and grids ---------------------------------------------------------------------------------
def test_institutions_are_dedicated_and_the_rest_folded_keeping_name_and_type(layout) -> None:
    units, _ = layout
    assert by_name(units, "第一小学")["kind"] == "site"  # a school of 8,000 m²
    assert by_name(units, "金融大厦")["kind"] == "site"  # an office tower of 2,000 m² by its 450 staff
    for name, site_type in (("人民公园", "公园"), ("阳光幼儿园", "幼儿园"), ("小商铺", "商场"), ("小写字楼", "写字楼")):
        unit = by_name(units, name)
        assert (unit["kind"], unit["site_type"]) == ("block", site_type), name  # folded, still on the map
    assert set(units.loc[units["kind"] == "site", "name"]) == {"第一小学", "金融大厦"}


def test_only_dedicated_sites_become_dedicated_grids_and_the_report_counts_them(layout) -> None:
    units, roads = layout
    result = partition(units, roads=roads)
    grids, out = result.grids, result.units
    dedicated = grids[grids["kind"] == "dedicated"]
    assert set(out.loc[out["grid_code"].isin(dedicated["grid_code"]) & (out["kind"] == "site"), "name"]) == {
        "第一小学", "金融大厦"}
    park_grid = by_name(out, "人民公园")["grid_code"]
    assert grids.set_index("grid_code").at[park_grid, "kind"] == "comprehensive"
    s = result.report["summary"]
    assert s["dedicated"] == len(dedicated) == 2
    assert s["dedicated_share"] == pytest.approx(2 / len(grids))
    assert s["dedicated_by_type"] == {"学校": 1, "写字楼": 1}
    assert s["folded_sites"] == 4
    assert s["smallest_unit_m2"] >= UnitRules().min_unit_area_m2
    assert all(key in SUMMARY_LABELS for key in s), "every figure of the summary has its bilingual label"


def test_a_site_given_as_a_point_is_dedicated_only_by_the_policy() -> None:
    community = frame([{"code": "511802001002", "geometry": lonlat(shapely.box(0, 0, 400, 200))}])
    roads = frame([{"highway": "primary", "geometry": lonlat(shapely.LineString([(200, -10), (200, 210)]))}])
    buildings = frame(rows_of_buildings(0, 0, 400, 200, 10))
    sites = frame([{"type": "hospital", "name": "人民医院", "geometry": lonlat(shapely.Point(100, 100))},
                   {"type": "retail", "name": "便利店", "geometry": lonlat(shapely.Point(300, 100))}])
    units = build_units(community, roads, buildings, sites=sites)
    assert by_name(units, "人民医院")["kind"] == "site"  # the 40,000 m² block holding the hospital
    assert units.loc[units["kind"] == "block", "name"].isna().all()  # a folded point tags nothing


# -- slivers and pieces ---------------------------------------------------------------------------------
def isolated(units: gpd.GeoDataFrame) -> np.ndarray:
    """Units that share no border with a unit of their own community."""
    graph = build_graph(units)
    degree = np.bincount(np.concatenate([graph.left, graph.right]), minlength=len(units))
    return degree == 0


def test_no_sliver_survives_and_an_islet_is_its_own_flagged_exception() -> None:
    main = shapely.box(0, 0, 300, 200)
    islet = shapely.box(400, 0, 415, 20)  # 300 m², below the sliver area, and an island: it stays
    communities = frame([{"code": "511802001003", "geometry": lonlat(shapely.MultiPolygon([main, islet]))},
                         {"code": "511802001004", "geometry": lonlat(shapely.box(0, 200, 300, 400))}])
    # a road that cuts a 10 × 12 m sliver off a corner of the first community
    roads = frame([{"highway": "primary", "geometry": lonlat(shapely.LineString([(-5, 12), (10, 12), (10, -5)]))}])
    buildings = frame(rows_of_buildings(0, 0, 300, 200, 12) + rows_of_buildings(0, 200, 300, 400, 12))
    units = build_units(communities, roads, buildings)
    small = units["area_m2"].to_numpy() < UnitRules().min_unit_area_m2
    assert small.sum() == 1 and (isolated(units) | ~small).all()  # the islet, and no sliver
    result = partition(units, roads=roads)
    in_pieces = result.grids[result.grids["parts"] > 1]
    assert len(in_pieces) == 1 and (in_pieces["community_code"] == "511802001003").all()
    flags = result.flags.set_index("grid_code")
    assert flags.loc[in_pieces["grid_code"].iloc[0], "flag"] == "island"
    reason = flags.loc[in_pieces["grid_code"].iloc[0]]
    assert "because its community is" in reason["reason"] and "岛屿或飞地" in reason["reason_zh"]
    assert result.report["summary"]["island_grids"] == 1 and "not_contiguous" not in set(result.flags["flag"])


def test_a_grid_in_pieces_inside_one_piece_of_community_is_not_an_island(layout) -> None:
    units, roads = layout
    result = partition(units, roads=roads)
    out = result.units.copy()
    graph = build_graph(out)
    # give one grid a unit that does not touch it: now in pieces, though its community is one piece
    grid_units = out.groupby("grid_code").groups
    code = next(c for c, idx in grid_units.items() if len(idx) >= 2)
    members = set(grid_units[code])
    touching = set(graph.right[np.isin(graph.left, list(members))]) | set(graph.left[np.isin(graph.right, list(members))])
    far = next(i for i in range(len(out)) if i not in members and i not in touching)
    out.loc[far, "grid_code"] = code
    grids = grid_statistics(out, out["grid_code"].to_numpy(), metric_crs_for_frame(out)).rename(
        columns={"_grid": "grid_code"})
    grids["kind"] = ["dedicated" if c in set(result.grids.loc[result.grids["kind"] == "dedicated", "grid_code"])
                     else "comprehensive" for c in grids["grid_code"]]
    report = plan_report(out, grids, graph, 300, 500)
    flagged = {(f["grid_code"], f["flag"]) for f in report["flags"]}
    assert (code, "not_contiguous") in flagged and not any(flag == "island" for _, flag in flagged)
    reason = next(f for f in report["flags"] if f["grid_code"] == code and f["flag"] == "not_contiguous")
    assert "community is one piece" in reason["reason"] and "连成一片" in reason["reason_zh"]


# -- the demo city -----------------------------------------------------------------------------------------
def test_reykjavik_dedicates_institutions_not_parks_and_leaves_no_sliver(reykjavik_units) -> None:
    layers, units = reykjavik_units
    small = units["area_m2"].to_numpy() < UnitRules().min_unit_area_m2
    assert not (small & ~isolated(units)).any()
    result = partition(units, roads=layers["roads"])
    s = result.report["summary"]
    by_type = s["dedicated_by_type"]
    assert sum(by_type.values()) == s["dedicated"] and s["dedicated_share"] < 0.30  # was 150 of 426 (35 %)
    assert not {"park", "kindergarten", "clinic"} & set(by_type)
    assert by_type.get("school", 0) >= 40 and s["folded_sites"] >= 150
    assert "not_contiguous" not in set(result.flags["flag"])
    pieces = set(result.grids.loc[result.grids["parts"] > 1, "grid_code"])
    assert pieces <= set(result.flags.loc[result.flags["flag"] == "island", "grid_code"])
