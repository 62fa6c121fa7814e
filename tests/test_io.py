"""Reading GIS files: every format, good and broken, with the errors a user would need."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmap.geo.io import VectorReadError, check_frame, read_vector
from samples import CARRIES_CODE, CODES, FORMATS, NAMES, points, polygons, write


@pytest.mark.parametrize("fmt", FORMATS)
def test_good_file_reads_in_cgcs2000(fmt: str, tmp_path: Path) -> None:
    path = write(fmt, tmp_path)
    # CSV cannot declare a CRS, and guessing WGS84 would misplace GCJ-02 data: it must be given.
    result = read_vector(path, crs="EPSG:4326" if path.suffix == ".csv" else None)
    frame = result.frame
    assert frame.crs.to_epsg() == 4490
    assert len(frame) == 3
    name_col = "name" if "name" in frame else "Name"
    assert list(frame[name_col]) == NAMES  # Chinese intact, whatever the encoding
    if fmt in CARRIES_CODE:
        assert list(frame["code"].astype(str)) == CODES  # leading zeros intact
    expected = points() if fmt == "csv-lonlat" else polygons()
    assert np.allclose(frame.total_bounds, expected.total_bounds, atol=1e-9)


def test_gbk_without_cpg_is_detected_and_said(tmp_path: Path) -> None:
    result = read_vector(write("shp-gbk-no-cpg", tmp_path))
    assert result.encoding == "gbk"
    assert any("GBK" in note for note in result.notes)


def test_explicit_encoding_wins(tmp_path: Path) -> None:
    result = read_vector(write("shp-gbk-no-cpg", tmp_path), encoding="gbk")
    assert list(result.frame["name"]) == NAMES


def _broken(kind: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated-gpkg":
        good = write("gpkg", folder / "good")
        path = folder / "broken.gpkg"
        path.write_bytes(good.read_bytes()[:2000])
    elif kind == "shp-missing-dbf":
        path = write("shp-utf8", folder)
        path.with_suffix(".dbf").unlink()
    elif kind == "bad-json":
        path = folder / "bad.geojson"
        path.write_text('{"type": "FeatureCollection", "features": [ {"type": "Feat')
    elif kind == "bad-kml":
        path = folder / "bad.kml"
        path.write_text("<kml><Document><Placemark><Polygon>not coordinates")
    elif kind == "not-a-zip":
        path = folder / "grids.zip"
        path.write_bytes(b"PK\x03\x04 this is not really a zip")
    elif kind == "zip-two-shp":
        a = write("shp-utf8", folder / "a")
        path = folder / "two.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for part in a.parent.iterdir():
                zf.write(part, arcname=part.name)
                zf.write(part, arcname="second" + part.suffix)
    elif kind == "csv-no-geometry":
        path = folder / "plain.csv"
        path.write_text("code,name\n001,甲\n")
    elif kind == "csv-bad-number":
        path = folder / "points.csv"
        path.write_text("code,name,lon,lat\n001,甲,103.0,30.0\n002,乙,east,30.1\n", encoding="utf-8")
    elif kind == "csv-bad-wkt":
        path = folder / "wkt.csv"
        path.write_text('code,wkt\n001,"POINT (103 30)"\n002,"POLYGON ((1 2, 3"\n')
    elif kind == "unsupported":
        path = folder / "grids.dwg"
        path.write_bytes(b"AC1032")
    else:
        raise ValueError(kind)
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("truncated-gpkg", "cannot be read"),
    ("shp-missing-dbf", r"\.dbf file is missing"),
    ("bad-json", "cannot be read"),
    ("bad-kml", "cannot be read"),
    ("not-a-zip", "not a valid zip"),
    ("zip-two-shp", "exactly one .shp"),
    ("csv-no-geometry", "no geometry columns"),
    ("csv-bad-number", r"not numbers in feature #2 \(code=002\)"),
    ("csv-bad-wkt", r"unreadable WKT in feature #2 \(code=002\)"),
    ("unsupported", "unsupported format"),
])
def test_broken_file_is_rejected_with_a_clear_message(kind: str, message: str, tmp_path: Path) -> None:
    path = _broken(kind, tmp_path)
    with pytest.raises(VectorReadError, match=message):
        read_vector(path, crs="EPSG:4326" if path.suffix == ".csv" else None)


def test_csv_needs_a_crs(tmp_path: Path) -> None:
    with pytest.raises(VectorReadError, match="does not say its coordinate system"):
        read_vector(write("csv-lonlat", tmp_path))


def test_projected_coordinates_without_crs_are_out_of_range(tmp_path: Path) -> None:
    frame = polygons().to_crs(4543)  # Gauss-Krüger metres
    path = tmp_path / "projected.csv"
    frame.drop(columns="geometry").assign(wkt=frame.geometry.to_wkt()).to_csv(path, index=False)
    with pytest.raises(VectorReadError, match="out of range"):
        read_vector(path, crs="EPSG:4490")
    # with the right CRS the same file is fine
    good = read_vector(path, crs="EPSG:4543")
    assert np.allclose(good.frame.total_bounds, polygons().total_bounds, atol=1e-7)


def test_empty_geometry_is_rejected_naming_the_feature(tmp_path: Path) -> None:
    path = tmp_path / "empty.geojson"
    features = [
        {"type": "Feature", "properties": {"code": "001"}, "geometry": {"type": "Point", "coordinates": [103, 30]}},
        {"type": "Feature", "properties": {"code": "002"}, "geometry": None},
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(VectorReadError, match=r"empty geometry in feature #2 \(code=002\)"):
        read_vector(path)


def test_wrong_geometry_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pts.gpkg"
    points().to_file(path)
    with pytest.raises(VectorReadError, match="expected polygon geometries, found Point"):
        read_vector(path, expect="polygon")


def test_self_intersecting_polygon_is_repaired_and_reported() -> None:
    bowtie = shapely.Polygon([(103.0, 30.0), (103.01, 30.01), (103.01, 30.0), (103.0, 30.01)])
    frame = gpd.GeoDataFrame({"code": ["007"]}, geometry=[bowtie], crs=4490)
    result = check_frame(frame, expect="polygon")
    fixed = result.frame.geometry.iloc[0]
    assert fixed.is_valid and fixed.geom_type in ("Polygon", "MultiPolygon")
    assert fixed.area == pytest.approx(0.01 * 0.01 / 2, rel=1e-6)
    assert len(result.repaired) == 1 and "code=007" in result.repaired[0]
    assert "Self-intersection at 103.005000, 30.005000" in result.repaired[0]
    assert "第 1 个要素（code=007）：自相交，位于 103.005000, 30.005000" in result.repaired[0]  # both languages
    # a district's buildings: named by their own Chinese column
    named = check_frame(gpd.GeoDataFrame({"建筑名称": ["正街1号"]}, geometry=[bowtie], crs=4490), expect="polygon")
    assert named.repaired[0].startswith("feature #1 (建筑名称=正街1号): Self-intersection at")


def test_multi_layer_geopackage_needs_a_layer_name(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    polygons().to_file(path, layer="grids")
    points().to_file(path, layer="stations")
    with pytest.raises(VectorReadError, match="has 2 layers"):
        read_vector(path)
    assert len(read_vector(path, layer="stations").frame) == 3


def test_empty_layer_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(VectorReadError, match="no features"):
        check_frame(polygons().iloc[0:0])
