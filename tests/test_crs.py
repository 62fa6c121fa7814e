"""Coordinate systems: GCJ-02 against published reference points, round trips, metric zones."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from gridmap.geo import crs

# WGS84 → GCJ-02 reference pairs published with the eviltransform library's tests
# (lat/lon in degrees): Shanghai, Shenzhen, Beijing.
REFERENCE = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
]
GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_reference(wgs, gcj) -> None:
    lon, lat = crs.wgs84_to_gcj02(np.array([wgs[0]]), np.array([wgs[1]]))
    _, _, dist = GEOD.inv(lon[0], lat[0], gcj[0], gcj[1])
    assert dist < 0.01  # centimetres


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_inverse_lands_within_millimetres(wgs, gcj) -> None:
    lon, lat = crs.gcj02_to_wgs84(np.array([gcj[0]]), np.array([gcj[1]]))
    _, _, dist = GEOD.inv(lon[0], lat[0], wgs[0], wgs[1])
    assert dist < 0.001
    # and the offset itself is the few hundred metres GCJ-02 is known for
    _, _, offset = GEOD.inv(wgs[0], wgs[1], gcj[0], gcj[1])
    assert 100 < offset < 1000


@settings(max_examples=200, deadline=None)
@given(st.floats(73.6, 134.7), st.floats(18.2, 53.5))
def test_round_trip_inside_china(lon: float, lat: float) -> None:
    glon, glat = crs.wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    wlon, wlat = crs.gcj02_to_wgs84(glon, glat)
    _, _, dist = GEOD.inv(wlon[0], wlat[0], lon, lat)
    assert dist < 0.01


def test_no_offset_outside_china() -> None:
    lon, lat = crs.wgs84_to_gcj02(np.array([-21.9, 7.42]), np.array([64.1, 43.73]))
    assert np.allclose(lon, [-21.9, 7.42]) and np.allclose(lat, [64.1, 43.73])


def test_geometry_conversion_keeps_shape_and_type() -> None:
    poly = shapely.Polygon([(103.0, 30.0), (103.01, 30.0), (103.01, 30.01), (103.0, 30.01)])
    frame = gpd.GeoDataFrame({"name": ["雨城区"]}, geometry=[poly], crs=4490)
    there = crs.wgs84_to_gcj02_frame(frame)
    back = crs.gcj02_to_wgs84_frame(there)
    assert back.geometry.iloc[0].geom_type == "Polygon"
    assert shapely.hausdorff_distance(back.geometry.iloc[0], poly) < 1e-8
    assert shapely.hausdorff_distance(there.geometry.iloc[0], poly) > 1e-3


@pytest.mark.parametrize(("lon", "epsg"), [(102.0, 4543), (114.0, 4547), (103.2, 4543), (75.0, 4534), (135.0, 4554)])
def test_gk3_zone_without_prefix(lon: float, epsg: int) -> None:
    assert crs.gk3_zone_crs(lon).to_epsg() == epsg
    assert crs.metric_crs_for(lon, 30.0).to_epsg() == epsg


@pytest.mark.parametrize(("lon", "epsg"), [(102.0, 4522), (114.0, 4526), (75.0, 4513), (135.0, 4533)])
def test_gk3_zone_with_prefix(lon: float, epsg: int) -> None:
    zone_crs = crs.gk3_zone_crs(lon, with_zone_prefix=True)
    assert zone_crs.to_epsg() == epsg
    # the zone number is the leading digits of the false easting
    false_easting = next(p.value for p in zone_crs.coordinate_operation.params if p.name == "False easting")
    assert int(false_easting // 1_000_000) == round(lon / 3)


def test_metric_crs_outside_china_is_utm() -> None:
    assert crs.metric_crs_for(-21.9, 64.1).to_epsg() == 32627
    assert crs.metric_crs_for(7.42, 43.73).to_epsg() == 32632
    with pytest.raises(crs.CRSError):
        crs.gk3_zone_crs(-21.9)


def test_area_is_metric() -> None:
    # a 0.01° square near Ya'an is about 1.11 km × 0.96 km
    poly = shapely.box(103.0, 30.0, 103.01, 30.01)
    area = crs.area_m2(gpd.GeoDataFrame(geometry=[poly], crs=4490))[0]
    geod_area = abs(GEOD.geometry_area_perimeter(poly)[0])
    assert area == pytest.approx(geod_area, rel=1e-3)


@pytest.mark.parametrize("text", ["gcj02", "GCJ-02", "gcj_02"])
def test_parse_gcj02(text: str) -> None:
    assert crs.parse_crs(text) == crs.GCJ02


def test_parse_errors() -> None:
    assert crs.parse_crs("4490").to_epsg() == 4490
    with pytest.raises(crs.CRSError, match="unknown coordinate system"):
        crs.parse_crs("EPSG:999999")


def test_a_chinese_sheet_names_its_coordinate_system_in_chinese() -> None:
    """The wall map's Chinese footer named its CRS in English ("CGCS2000 / 3-degree Gauss-Kruger CM 105E")."""
    from pyproj import CRS

    from gridmap.geo.crs import crs_name_zh

    assert crs_name_zh(CRS.from_epsg(4544).name) == "CGCS2000 / 3度带高斯-克吕格投影 中央经线 105°E"
    assert crs_name_zh(CRS.from_epsg(4523).name) == "CGCS2000 / 3度带高斯-克吕格投影 第 35 带"
    assert crs_name_zh(CRS.from_epsg(32627).name) == "WGS 84 / UTM 投影 第 27 带（北半球）"  # Reykjavík
    assert crs_name_zh(CRS.from_epsg(4490).name) == "CGCS2000 地理坐标系"
    assert crs_name_zh("Some local grid") == "Some local grid"  # unknown: as it is
