"""What a district hands over, checked before anything is stored: text encodings, field names,
households, coordinate systems, GCJ-02 left unconverted, layers outside their territory; point
buildings; each through the service, the upload API and the command line, on real files and a
real PostGIS. Every refusal is said in English and Chinese and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from pyproj import CRS, Geod

from gridmap.errors import Invalid
from gridmap.geo.crs import wgs84_to_gcj02_geoms
from gridmap.geo.crs_checks import crs_label, crs_problems, gcj02_suspect, placement
from gridmap.geo.fields import map_fields
from gridmap.geo.households import complete_households, parse_levels
from gridmap.geo.io import VectorReadError, read_vector
from gridmap.geo.synthetic import street_grid_layout
from gridmap.geo.units import _allocate, build_units
from gridmap.services.demo import demo_dir, load_demo
from gridmap.services.importing import import_file
from gridmap.store import frames
from samples import signed_in_client, write, write_gcj02_geojson

MONACO = "980100"
YUCHENG = "511802"  # 雨城区, Ya'an demo (district outline only)
BARE_CODEC = "codec can't decode"


# -- files as a district hands them over --------------------------------------------------------------
def monaco_buildings(count: int | None = None) -> gpd.GeoDataFrame:
    """Monaco's demo buildings with a Chinese district's columns: 楼栋号, 户数, 层数, 类型."""
    raw = gpd.read_parquet(demo_dir() / "monaco" / "buildings.parquet").to_crs(4490)
    raw = raw.iloc[:count] if count else raw
    levels = parse_levels(raw["building:levels"]).fillna(3).astype(int)
    kind = np.where(raw["building"].isin(["apartments", "residential"]), "住宅", "商业")
    return gpd.GeoDataFrame({"楼栋号": [f"{i + 1}号楼" for i in range(len(raw))],
                             "户数": raw["households"].astype(int).to_numpy(), "层数": levels.to_numpy(),
                             "类型": kind}, geometry=raw.geometry.values, crs=4490)


def gbk_shapefile(frame: gpd.GeoDataFrame, folder: Path, stem: str = "楼栋", *, cpg: str | None = None) -> Path:
    """``frame`` as a GBK shapefile without .cpg (as ArcGIS on a Chinese Windows writes them), or
    with a .cpg saying ``cpg``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.shp"
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg)
    return path


def zipped(shp: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for part in shp.parent.glob(f"{shp.stem}.*"):
            archive.write(part, arcname=part.name)
    return target


def gbk_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("gbk"))
    return path


def gbk_geojson(folder: Path) -> Path:
    features = [{"type": "Feature", "properties": {"名称": "幸福小区", "户数": 320},
                 "geometry": {"type": "Point", "coordinates": [7.4236, 43.7306]}}]
    return gbk_text(folder / "小区.geojson", json.dumps({"type": "FeatureCollection", "features": features},
                                                         ensure_ascii=False))


def gbk_kml(folder: Path) -> Path:
    return gbk_text(folder / "小区.kml", '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/'
                    'kml/2.2"><Document><Placemark><name>幸福小区</name><Point><coordinates>7.4236,43.7306'
                    "</coordinates></Point></Placemark></Document></kml>")


def gbk_geopackage(folder: Path) -> Path:
    """A GeoPackage whose text was stored as GBK bytes (an old converter did that)."""
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "小区.gpkg"
    gpd.GeoDataFrame({"name": ["xxxx"]}, geometry=[shapely.Point(7.4236, 43.7306)], crs=4490).to_file(
        path, layer="xiaoqu")
    with sqlite3.connect(path) as db:
        for trigger in [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
            db.execute(f'DROP TRIGGER "{trigger}"')
        db.execute("UPDATE xiaoqu SET name = CAST(? AS TEXT)", ("幸福小区".encode("gbk"),))
    return path


def yucheng_outline() -> shapely.Geometry:
    districts = gpd.read_parquet(demo_dir() / "yaan" / "districts.parquet").to_crs(4490)
    return districts.loc[districts["code"] == YUCHENG].geometry.iloc[0]


def yucheng_buildings(count: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``count`` buildings (about 20 × 15 m) spread over 雨城区, each wholly inside it, with a
    district's columns, in CGCS2000."""
    outline = yucheng_outline()
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = outline.bounds
    x, y = rng.uniform(minx, maxx, count * 4), rng.uniform(miny, maxy, count * 4)
    boxes = shapely.box(x, y, x + 0.0002, y + 0.00014)
    boxes = boxes[shapely.contains(outline, boxes)][:count]
    assert len(boxes) == count
    return gpd.GeoDataFrame({"楼栋号": [f"{i + 1}栋" for i in range(count)], "户数": rng.integers(6, 90, count),
                             "层数": rng.integers(2, 30, count)}, geometry=boxes, crs=4490)


def as_gcj02(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The same buildings digitised on Amap: GCJ-02 coordinates, still labelled CGCS2000."""
    moved = wgs84_to_gcj02_geoms(np.asarray(frame.geometry.values, dtype=object))
    return frame.set_geometry(gpd.GeoSeries(moved, index=frame.index, crs=4490))


def count_layers(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.text("SELECT count(*) FROM layers")).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM layer_features")).scalar_one())


@pytest.fixture
def yucheng(engine: sa.Engine) -> sa.Engine:
    load_demo(engine, ["yaan"])
    return engine


# -- short CRS names ---------------------------------------------------------------------------------
def test_crs_labels_are_short_names() -> None:
    assert crs_label(4490) == "EPSG:4490 CGCS2000"
    assert crs_label("EPSG:3857") == "EPSG:3857 WGS 84 / Pseudo-Mercator"
    assert crs_label("gcj02") == "GCJ-02"
    assert crs_label(CRS.from_epsg(4490).to_wkt("WKT1_ESRI")) == "EPSG:4490 CGCS2000"  # a shapefile's .prj
    assert crs_label(CRS.from_epsg(4490).to_json()) == "EPSG:4490 CGCS2000"  # GeoParquet's PROJJSON
    assert crs_label(4547) == "EPSG:4547 CGCS2000 / 3-degree Gauss-Kruger CM 114E"
    custom = crs_label("+proj=tmerc +lon_0=103 +ellps=GRS80 +units=m")
    assert "{" not in custom and "PROJCRS" not in custom and custom.startswith("custom CRS (+proj=tmerc")


def test_what_a_reader_reports_is_a_short_name(tmp_path: Path) -> None:
    frame = monaco_buildings(5)
    frame.to_parquet(tmp_path / "b.parquet")
    assert read_vector(tmp_path / "b.parquet").source_crs == "EPSG:4490 CGCS2000"
    assert read_vector(gbk_shapefile(frame, tmp_path / "shp")).source_crs == "EPSG:4490 CGCS2000"
    frame.to_crs(3857).to_file(tmp_path / "m.gpkg")
    assert read_vector(tmp_path / "m.gpkg").source_crs == "EPSG:3857 WGS 84 / Pseudo-Mercator"


def test_gcj02_conversion_lands_on_the_truth_across_china(tmp_path: Path) -> None:
    truth = np.array([[103.0133, 29.9805], [121.5272106, 31.1774276], [116.377817, 39.911954]])
    result = read_vector(write_gcj02_geojson(tmp_path, truth), crs="gcj02")
    geod = Geod(ellps="WGS84")
    for point, (x, y) in zip(result.frame.geometry, truth):
        assert geod.inv(point.x, point.y, x, y)[2] < 1.0
    assert result.source_crs == "GCJ-02"


# -- text encodings: never a bare codec error ---------------------------------------------------------
def _refusal(call) -> VectorReadError:
    with pytest.raises(VectorReadError) as refused:
        call()
    assert BARE_CODEC not in refused.value.en and BARE_CODEC not in refused.value.zh
    assert refused.value.zh != refused.value.en
    return refused.value


GBK_EN, GBK_ZH = "looks like GBK: add --encoding gbk", "看起来是 GBK 编码：请加 --encoding gbk"


def test_gbk_field_names_without_cpg_are_read(tmp_path: Path) -> None:
    frame = monaco_buildings(5)
    frame["楼栋号"] = [f"B{i}" for i in range(5)]
    frame["类型"] = "apartments"  # every value ASCII: only the .dbf header's field names are GBK
    result = read_vector(gbk_shapefile(frame, tmp_path))
    assert result.encoding == "gbk" and list(result.frame.columns[:4]) == ["楼栋号", "户数", "层数", "类型"]
    zip_result = read_vector(zipped(gbk_shapefile(frame, tmp_path / "z"), tmp_path / "楼栋.zip"))
    assert zip_result.encoding == "gbk" and "户数" in zip_result.frame


def test_a_cpg_that_lies_is_refused_with_the_fix(tmp_path: Path) -> None:
    says_utf8 = gbk_shapefile(monaco_buildings(5), tmp_path / "a", cpg="UTF-8")
    refused = _refusal(lambda: read_vector(says_utf8))
    assert "not UTF-8 (as its .cpg says)" in refused.en and GBK_EN in refused.en and GBK_ZH in refused.zh
    assert read_vector(says_utf8, encoding="gbk").frame["楼栋号"].iloc[0] == "1号楼"
    says_gbk = tmp_path / "b" / "楼栋.shp"
    says_gbk.parent.mkdir()
    pyogrio.write_dataframe(monaco_buildings(5), says_gbk, encoding="UTF-8")
    says_gbk.with_suffix(".cpg").write_text("GBK")
    refused = _refusal(lambda: read_vector(says_gbk))
    assert "it is UTF-8: import it with --encoding utf-8" in refused.en and "--encoding utf-8" in refused.zh
    zipped_lie = zipped(says_utf8, tmp_path / "lie.zip")
    assert GBK_EN in _refusal(lambda: read_vector(zipped_lie)).en


def test_a_wrong_encoding_given_is_refused_with_the_fix(tmp_path: Path) -> None:
    shp = gbk_shapefile(monaco_buildings(5), tmp_path)
    refused = _refusal(lambda: read_vector(shp, encoding="utf-8"))
    assert "(as --encoding utf-8 says)" in refused.en and GBK_EN in refused.en and GBK_ZH in refused.zh
    utf8 = write("shp-utf8", tmp_path / "u")
    assert "it is UTF-8" in _refusal(lambda: read_vector(utf8, encoding="gbk")).en


@pytest.mark.parametrize("kind", ["csv", "geojson", "kml", "gpkg"])
def test_gbk_text_formats_say_so_and_read_with_the_fix(kind: str, tmp_path: Path) -> None:
    if kind == "csv":
        path = gbk_text(tmp_path / "小区.csv", "lon,lat,名称\n7.4236,43.7306,幸福小区\n")
        crs = "EPSG:4326"
    else:
        path = {"geojson": gbk_geojson, "kml": gbk_kml, "gpkg": gbk_geopackage}[kind](tmp_path)
        crs = None
    refused = _refusal(lambda: read_vector(path, crs=crs))
    assert GBK_EN in refused.en and GBK_ZH in refused.zh
    frame = read_vector(path, crs=crs, encoding="gbk").frame
    assert "幸福小区" in frame.astype(str).to_numpy().ravel().tolist()


def test_text_that_is_neither_utf8_nor_gbk(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"lon,lat,name\n7.42,43.73,\xff\xfe\xff\n")
    refused = _refusal(lambda: read_vector(path, crs=4326))
    assert "neither UTF-8 nor GBK" in refused.en and "--encoding" in refused.en and "也不是 GBK" in refused.zh


# -- coordinates against their label ---------------------------------------------------------------------
def test_crs_problems_name_the_fix() -> None:
    outline = yucheng_outline()
    ref = tuple(outline.bounds)
    right = yucheng_buildings(200)
    assert crs_problems(right, None, ref) == [] and crs_problems(right) == []
    mercator = right.to_crs(3857).set_crs(4326, allow_override=True)
    found = crs_problems(mercator, None, ref)
    assert [p.kind for p in found] == ["projected_as_degrees"] and found[0].fix == "--crs EPSG:3857"
    assert "out of range" in found[0].en and "EPSG:3857 WGS 84 / Pseudo-Mercator" in found[0].zh
    assert crs_problems(mercator)[0].fix is None  # without a place to compare, no guess
    zoned = right.to_crs(4523).set_crs(4490, allow_override=True)  # CGCS2000 GK zone 35: 35,xxx,xxx eastings
    assert crs_problems(zoned)[0].fix == "--crs EPSG:4523"
    swapped = right.set_geometry(shapely.transform(right.geometry.values, lambda c: c[:, ::-1]))
    found = crs_problems(swapped, None, ref)
    assert found[0].kind == "swapped_axes" and "beyond ±90" in found[0].en and "颠倒" in found[0].zh
    neighbour = right.to_crs(4543).set_crs(4544, allow_override=True)  # CM 102E read as CM 105E
    found = crs_problems(neighbour, None, ref)
    assert found[0].kind == "label_contradicts" and found[0].fix == "--crs EPSG:4543"
    far_zone = right.to_crs(4543).set_crs(4534, allow_override=True)  # CM 75E: outside where 4534 is used
    assert crs_problems(far_zone)[0].kind == "label_contradicts"
    degrees = right.set_crs(4543, allow_override=True)
    found = crs_problems(degrees, None, ref)
    assert found[0].kind == "degrees_as_projected" and found[0].fix == "--crs EPSG:4490"
    assert crs_problems(right.iloc[:5], "gcj02", ref) == []


# -- a layer against its territory -------------------------------------------------------------------------
def test_placement_measures_by_count_and_by_area_length_or_count() -> None:
    outline = shapely.box(0, 0, 1, 1)
    polygons = np.array([shapely.box(0.1, 0.1, 0.2, 0.2), shapely.box(0.9, 0.5, 1.1, 0.6),
                         shapely.box(2, 2, 2.1, 2.1), shapely.box(3, 3, 3.1, 3.1)], dtype=object)
    p = placement(polygons, outline)
    assert (p.features, p.outside, p.measure) == (4, 2, "area")
    assert p.outside_share == 0.5 and p.outside_measure == pytest.approx(0.03 / 0.05)
    lines = np.array([shapely.LineString([(0.5, 0.5), (1.5, 0.5)]), shapely.LineString([(0.1, 0.1), (0.1, 0.9)])])
    q = placement(lines, outline)
    assert q.measure == "length" and q.outside == 0 and q.outside_measure == pytest.approx(0.5 / 1.8, rel=1e-2)  # metres, not degrees
    r = placement(shapely.points([(0.5, 0.5), (5, 5), (1, 0.5)]), outline)
    assert r.measure == "count" and r.outside == 1 and r.outside_measure == pytest.approx(1 / 3)
    en, zh = p.describe()
    assert en == "50% of its features (2 of 4; 60% of their area)" and "4 个要素中有 2 个" in zh


def town_quarter() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A town quarter of 雨城区 (about 2 km square): streets about every 200 m, a compound in each
    block set back 15 m from the street centre lines with its own lane through the middle, and
    rows of buildings on both sides of the lane; no street runs through a building. Returns
    roads (streets and lanes), compounds and buildings, in CGCS2000."""
    rng = np.random.default_rng(7)
    mx, my = 111_320.0 * np.cos(np.radians(30.0)), 110_574.0
    xs, ys = (np.r_[0, np.cumsum(rng.uniform(130, 270, 10))] for _ in range(2))  # blocks of uneven size
    to_deg = lambda g: shapely.transform(g, lambda c: np.column_stack([103.0 + c[:, 0] / mx, 30.0 + c[:, 1] / my]))  # noqa: E731
    streets = ([shapely.LineString([(x, 0), (x, ys[-1])]) for x in xs]
               + [shapely.LineString([(0, y), (xs[-1], y)]) for y in ys])
    compounds, lanes, buildings = [], [], []
    for x0, x1 in zip(xs[:-1], xs[1:]):
        for y0, y1 in zip(ys[:-1], ys[1:]):
            compounds.append(shapely.box(x0 + 15, y0 + 15, x1 - 15, y1 - 15))
            middle = (x0 + x1) / 2
            lanes.append(shapely.LineString([(middle, y0 + 15), (middle, y1 - 15)]))
            for y in np.arange(y0 + 25, y1 - 35, 24.0):
                buildings += [shapely.box(x0 + 25, y, middle - 10, y + 12), shapely.box(middle + 10, y, x1 - 25, y + 12)]
    roads = gpd.GeoDataFrame({"道路等级": ["主干路"] * len(streets) + ["小区路"] * len(lanes)},
                             geometry=to_deg(np.array(streets + lanes, dtype=object)), crs=4490)
    compounds = gpd.GeoDataFrame({"小区名称": [f"小区{i + 1}" for i in range(len(compounds))]},
                                 geometry=to_deg(np.array(compounds, dtype=object)), crs=4490)
    buildings = gpd.GeoDataFrame({"楼栋号": [f"{i + 1}栋" for i in range(len(buildings))],
                                  "户数": rng.integers(12, 60, len(buildings))},
                                 geometry=to_deg(np.array(buildings, dtype=object)), crs=4490)
    assert shapely.contains(yucheng_outline(), shapely.box(*roads.total_bounds))
    return roads, compounds, buildings


def test_gcj02_is_told_from_the_territory() -> None:
    outline = yucheng_outline()
    right = yucheng_buildings(2000)
    assert gcj02_suspect(right.geometry.values, outline) is None
    found = gcj02_suspect(as_gcj02(right).geometry.values, outline)
    assert found is not None and 200 < found.shift_m < 700 and found.found == ("outside",)
    assert found.outside_after == 0 < found.outside_before
    en, zh = found.said("楼栋.shp")
    assert "looks like GCJ-02 (Amap/Tencent coordinates, ~" in en and en.endswith("import it with --crs gcj02")
    assert "lie outside the territory as labelled, 0% once converted from GCJ-02" in en
    assert "疑似 GCJ-02" in zh and "请加 --crs gcj02 导入" in zh
    # pieces of the district (a streets layer): their edges follow the district's once converted
    minx, miny, maxx, maxy = outline.bounds
    xs, ys = np.meshgrid(np.linspace(minx, maxx, 5)[:-1], np.linspace(miny, maxy, 5)[:-1])
    cells = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + (maxx - minx) / 4, ys.ravel() + (maxy - miny) / 4)
    pieces = shapely.get_parts(shapely.intersection(outline, cells))
    pieces = pieces[shapely.get_type_id(pieces) == 3]
    assert len(pieces) >= 10
    found = gcj02_suspect(wgs84_to_gcj02_geoms(pieces), outline)
    assert found is not None and "edges" in found.found and found.edges_after > 0.3 > 0.05 > found.edges_before
    assert "of its edges follow the territory's borders or roads" in found.said("街道.gpkg")[0]
    assert gcj02_suspect(pieces, outline) is None
    # a correct layer reaching out of the territory is partly outside, not GCJ-02
    east = np.linspace(103.25, 103.30, 100)
    overhanging = np.concatenate([right.geometry.values[:300], shapely.box(east, 29.95, east + 0.0002, 29.9502)])
    assert placement(overhanging, outline).outside == 100
    assert gcj02_suspect(overhanging, outline) is None
    # a layer of a few features gives no evidence by shifts, whatever a shifted copy lands on
    assert gcj02_suspect(wgs84_to_gcj02_geoms(pieces[:2]), outline, shapely.boundary(pieces)) is None
    # outside China there is no GCJ-02 to find
    monaco = gpd.read_parquet(demo_dir() / "monaco" / "cities.parquet").geometry.iloc[0]
    assert gcj02_suspect(monaco_buildings(50).geometry.values, monaco) is None


def test_gcj02_inside_the_territory_is_told_by_its_roads() -> None:
    """Compounds and buildings deep inside the district, where the outline says nothing: real ones
    sit between the roads (a compound along them, with its own lane), a GCJ-02 copy does not."""
    outline = yucheng_outline()
    roads, compounds, buildings = town_quarter()
    lines = roads.geometry.values
    for layer in (compounds, buildings):
        geoms = layer.geometry.values
        assert gcj02_suspect(geoms, outline) is None  # nothing to compare with but the outline, far away
        assert gcj02_suspect(geoms, outline, roads=lines) is None
        found = gcj02_suspect(as_gcj02(layer).geometry.values, outline, roads=lines)
        assert found is not None and "roads" in found.found and found.outside_before == 0
        assert "roads run through" in found.said("x")[0] and "道路穿过其要素的长度" in found.said("x")[1]
    assert gcj02_suspect(as_gcj02(roads.iloc[:22]).geometry.values, outline, roads=lines) is not None


def test_the_checks_hold_on_10000_buildings_with_roads_and_borders() -> None:
    """The checks at a district's size give the same answers as on small layers (their speed is
    measured in benchmarks/import_checks.py, not timed here)."""
    outline = yucheng_outline()
    raw = yucheng_buildings(10_000)
    gcj = as_gcj02(raw)
    frame, mapping = map_fields(raw)
    assert {"户数": "households", "层数": "levels"}.items() <= mapping.renamed.items()
    assert crs_problems(raw, None, tuple(outline.bounds)) == []
    assert placement(frame.geometry.values, outline).outside == 0
    assert gcj02_suspect(frame.geometry.values, outline) is None
    assert gcj02_suspect(gcj.geometry.values, outline) is not None
    roads, borders = district_lines(outline)
    assert gcj02_suspect(frame.geometry.values, outline, borders, roads) is None
    assert gcj02_suspect(gcj.geometry.values, outline, borders, roads) is not None
    completed, _ = complete_households(frame, labels={"households": "户数"})
    assert completed["households"].notna().all() and len(completed) == 10_000


def district_lines(outline: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """5,000 streets of about 300 m across the district, and 200 community borders."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(*outline.bounds[::2], 5000), rng.uniform(*outline.bounds[1::2], 5000)
    angle = rng.uniform(0, np.pi, 5000)
    roads = shapely.linestrings(np.stack([np.column_stack([x, y]),
                                          np.column_stack([x + 0.003 * np.cos(angle), y + 0.003 * np.sin(angle)])],
                                         axis=1))
    borders = shapely.boundary(shapely.buffer(shapely.points(x[:200], y[:200]), 0.01, quad_segs=16))
    return roads, borders


# -- households --------------------------------------------------------------------------------------
def test_counts_written_as_text_are_read_and_said() -> None:
    """A district's 户数 column typed as text: 76户, 共 120 户, full-width digits are the office's
    counts and are taken (and said); anything else is still refused."""
    frame, _ = map_fields(monaco_buildings(6))
    frame["households"] = ["76户", " 共 120 户", "１２０", 40, "共计1,200户", "1-2户"]
    with pytest.raises(Invalid) as refused:
        complete_households(frame)
    assert "1 of 6 buildings" in refused.value.en and "'1-2户' (not a number)" in refused.value.en
    done, report = complete_households(frame.iloc[:5])
    assert done["households"].tolist() == [76, 120, 120, 40, 1200] and report.estimated == 0
    assert report.from_text == 4
    en, zh = report.said()
    assert en == "4 households counts read from text (e.g. 76户 → 76, 共 120 户 → 120, １２０ → 120)"
    assert zh.startswith("4 个户数从文字中读出（如 76户 → 76")


def test_a_shops_empty_count_is_zero_and_a_homes_is_refused() -> None:
    """20 of a new user's 24 refusals were 商铺 and schools whose empty 户数 simply means none."""
    frame, _ = map_fields(monaco_buildings(4))
    frame["households"] = np.array([None, None, 12, None], dtype=object)
    frame["type"] = ["商铺", "学校", "住宅", "住宅"]
    with pytest.raises(Invalid) as refused:
        complete_households(frame)
    assert "1 of 4 buildings" in refused.value.en and "feature #4" in refused.value.en
    done, report = complete_households(frame.iloc[:3])
    assert done["households"].tolist() == [0, 0, 12] and report.not_homes == 2 and report.estimated == 0
    assert report.said() == ("2 non-residential buildings (shops, schools, offices …, by their type) with no "
                             "households count counted as 0", "2 栋非住宅楼（按类型：商铺、学校、办公等）户数为空，按 0 户计")


def test_households_checked_estimated_and_marked() -> None:
    frame, _ = map_fields(monaco_buildings(10))
    frame["households"] = frame["households"].astype(object)
    frame.loc[[1, 4, 6, 8], "households"] = [-5, None, "约30", "NaN"]
    frame.loc[[1, 4, 6, 8], "type"] = "住宅"  # homes: a shop's empty count is 0 (the test below)
    with pytest.raises(Invalid) as refused:
        complete_households(frame, name="楼栋.shp", labels={"households": "户数", "building_name": "楼栋号"})
    en, zh = refused.value.en, refused.value.zh
    assert "households (户数) missing or invalid in 4 of 10 buildings" in en and "--estimate-missing" in en
    assert "feature #2 (楼栋号=2号楼): -5 (negative)" in en and "feature #5 (楼栋号=5号楼): empty" in en
    assert "feature #7 (楼栋号=7号楼): '约30' (approximate)" in en and "'NaN' (NaN)" in en
    assert "10 栋楼中有 4 栋的户数（户数）缺失或无效" in zh and "第 2 个要素（楼栋号=2号楼）：-5（负数）" in zh
    assert "'约30'（约数）" in zh and "--estimate-missing" in zh
    done, report = complete_households(frame, estimate_missing=True)
    assert report.estimated == 4 and done["households_estimated"].tolist() == [i in (1, 4, 6, 8) for i in range(10)]
    assert done.loc[6, "households"] == 30  # the office's own guess, not one from the footprint
    assert (done["households"] >= 0).all() and done["households"].dtype.kind == "i"
    kept = ~done["households_estimated"]
    assert done.loc[kept, "households"].tolist() == [int(v) for v in frame.loc[kept, "households"]]
    assert "for 4 of 10 buildings" in report.said()[0] and "10 栋楼中有 4 栋" in report.said()[1]
    none, report = complete_households(frame.drop(columns="households"))
    assert "households" not in none and report.estimated_all
    assert report.said()[0] == ("no households column: households will be estimated from levels and footprint "
                                "for all 10 buildings")
    # a layer without levels (层数 / 楼层) either: the estimate says it takes each type's default levels
    assert "levels" in frame
    _, report = complete_households(frame.drop(columns=["households", "levels"]))
    assert "from footprint and each building type's default levels (the layer has no levels column" in report.said()[0]
    assert "占地面积和各类建筑的默认层数（该图层没有层数字段" in report.said()[1]
    assert map_fields(frame.rename(columns={"levels": "楼层"}))[0].columns.tolist().count("levels") == 1  # 楼层 is levels
    # a layer with both 地上层数 and 总层数 (common) is read, not refused: the floors above ground are the levels
    both, mapping = map_fields(frame.drop(columns="levels").assign(总层数=[9] * len(frame), 地上层数=[7] * len(frame)))
    assert both["levels"].tolist() == [7] * len(frame) and "总层数" in both and "地上层数 → levels" in mapping.lines()
    points = frame.set_geometry(shapely.centroid(frame.geometry.values))
    with pytest.raises(Invalid, match="are points, which have no footprint"):
        complete_households(points.drop(columns="households"))
    with pytest.raises(Invalid, match="4 buildings are points"):
        complete_households(points, estimate_missing=True)


# -- point buildings and units ---------------------------------------------------------------------------
def test_units_are_built_from_address_points() -> None:
    layout = street_grid_layout(4)
    points = layout.buildings.set_geometry(shapely.point_on_surface(layout.buildings.geometry.values))
    units = build_units(layout.communities, layout.roads, points, compounds=layout.compounds)
    assert units["households"].sum() == points["households"].sum()  # every point inside counts, once
    unit_geoms = units.geometry.values
    owner = np.array([np.flatnonzero(shapely.intersects(unit_geoms, p))[0] for p in points.geometry.values])
    expected = np.bincount(owner, weights=points["households"].to_numpy(), minlength=len(units))
    assert units["households"].tolist() == expected.astype(int).tolist()
    footprints = build_units(layout.communities, layout.roads, layout.buildings, compounds=layout.compounds)
    assert footprints["households"].sum() == units["households"].sum()


def test_allocation_by_area_share_and_by_point() -> None:
    units = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], dtype=object)
    buildings = np.array([shapely.box(0.5, 0.2, 1.5, 0.4), shapely.box(0.1, 0.1, 0.3, 0.3),
                          shapely.box(0.7, 0.5, 1.1, 0.6), shapely.Point(1.5, 0.5), shapely.Point(1.0, 0.8)],
                         dtype=object)
    counts = np.array([10, 7, 4, 5, 3])
    totals = _allocate(buildings, counts, units)
    assert totals.sum() == counts.sum()
    assert totals.tolist() == [5 + 7 + 3 + 3, 5 + 1 + 5]  # halves, whole, 3:1, a point, a point on the border


def test_build_units_never_estimates_given_households_silently() -> None:
    layout = street_grid_layout(2)
    broken = layout.buildings.copy()
    broken["households"] = broken["households"].astype(float)
    broken.loc[[3, 9], "households"] = [np.nan, -1]
    broken.loc[[3, 9], "type"] = "住宅"
    broken["楼栋号"] = [f"{i + 1}号楼" for i in range(len(broken))]
    with pytest.raises(Invalid) as refused:
        build_units(layout.communities, layout.roads, broken)
    assert "missing or invalid in 2 of" in refused.value.en and "feature #4 (楼栋号=4号楼): empty" in refused.value.en
    assert "re-import the layer with --estimate-missing" in refused.value.en and "重新导入" in refused.value.zh
    chinese = layout.buildings.rename(columns={"households": "户数"})
    assert build_units(layout.communities, layout.roads, chinese)["households"].sum() == \
        layout.buildings["households"].sum()
    estimated = build_units(layout.communities, layout.roads, layout.buildings.drop(columns="households"))
    assert estimated["households"].sum() > 0  # no column: the documented estimate, as for OSM data


# -- through the service: every bad file refused in both languages, nothing stored ------------------------
def _invalid_households(folder: Path):
    frame = monaco_buildings(40)
    frame["户数"] = frame["户数"].astype(str)
    frame.loc[[3, 7, 11, 15], "户数"] = ["-5", "", "约30", "NaN"]
    frame.loc[[3, 7, 11, 15], "类型"] = "住宅"
    return gbk_shapefile(frame, folder), {"layer": "buildings"}


def _numeric_households_gpkg(folder: Path):
    frame = monaco_buildings(40)
    frame["户数"] = frame["户数"].astype(float)
    frame.loc[[1, 2], "户数"] = [np.nan, -3.0]
    frame.loc[[1, 2], "类型"] = "住宅"
    folder.mkdir(parents=True)
    frame.to_file(folder / "楼栋.gpkg")
    return folder / "楼栋.gpkg", {"kind": "buildings", "layer": "楼栋2024"}


def _two_households_columns(folder: Path):
    return gbk_shapefile(monaco_buildings(40).assign(住户数=1), folder), {"layer": "buildings"}


def _points_without_households(folder: Path):
    frame = monaco_buildings(40).drop(columns="户数")
    frame = frame.set_geometry(shapely.centroid(frame.geometry.values))
    return gbk_shapefile(frame, folder, "门牌"), {"kind": "buildings"}


def _mercator_labelled_wgs84(folder: Path):
    folder.mkdir(parents=True)
    monaco_buildings(40).to_crs(3857).set_crs(4326, allow_override=True).to_file(folder / "roads.gpkg")
    return folder / "roads.gpkg", {}


def _swapped_axes(folder: Path):
    frame = monaco_buildings(40)
    folder.mkdir(parents=True)
    frame.set_geometry(shapely.transform(frame.geometry.values, lambda c: c[:, ::-1])).to_file(
        folder / "sites.geojson")
    return folder / "sites.geojson", {}


CASES = {
    "households negative, NaN, empty, not a number (GBK shapefile)": (
        _invalid_households,
        ["households (户数) missing or invalid in 4 of 40 buildings", "feature #4 (楼栋号=4号楼): '-5' (negative)",
         "feature #8 (楼栋号=8号楼): empty", "'约30' (approximate)", "'NaN' (NaN)", "--estimate-missing"],
        ["40 栋楼中有 4 栋的户数（户数）缺失或无效", "第 4 个要素（楼栋号=4号楼）：'-5'（负数）", "'约30'（约数）",
         "--estimate-missing"]),
    "households NaN and negative (GeoPackage, --kind buildings)": (
        _numeric_households_gpkg, ["missing or invalid in 2 of 40 buildings", "feature #2 (楼栋号=2号楼): empty",
                                   "feature #3 (楼栋号=3号楼): -3.0 (negative)"], ["（负数）"]),
    "two households columns": (_two_households_columns, ["columns '户数', '住户数' could each be households",
                                                         "--fields households=户数"], ["都可以作为 households"]),
    "--fields naming a missing column": (
        lambda folder: (gbk_shapefile(monaco_buildings(40), folder), {"fields": "households=住户总数"}),
        ["--fields households=住户总数: the file has no column '住户总数' (its columns: 楼栋号, 户数, 层数, 类型)"],
        ["文件中没有字段 '住户总数'"]),
    "point buildings without households": (
        _points_without_households, ["no households column, but 40 buildings are points"],
        ["没有户数字段，但有 40 栋楼是点"]),
    "EPSG:3857 labelled EPSG:4326": (
        _mercator_labelled_wgs84, ["out of range for EPSG:4326 WGS 84", "look like metres of a projected CRS",
                                   "import it with --crs EPSG:3857"], ["像是投影坐标", "请加 --crs EPSG:3857 导入"]),
    "latitude first": (_swapped_axes, ["the coordinates look swapped (latitude first)", "swapped, it lies there"],
                       ["经纬度似乎颠倒了"]),
    "a layer far outside the territory": (
        lambda folder: (write("gpkg", folder), {}),
        ["100% of its features (3 of 3; 100% of their area) lie outside territory 980100",
         "the layer spans lon 103.000..103.029, lat 30.000..30.009, the territory lon 7.412..7.440",
         "Nothing was imported"],
        ["个要素中有 3 个（100%，面积的 100%）位于辖区 980100", "图层范围为经度 103.000..103.029"]),
    "GBK CSV": (lambda folder: (gbk_text(folder / "站点.csv", "lon,lat,名称\n7.4236,43.7306,药店\n"),
                                {"crs": "EPSG:4326"}), [GBK_EN], [GBK_ZH]),
    "GBK GeoJSON": (lambda folder: (gbk_geojson(folder), {}), [GBK_EN], [GBK_ZH]),
    "a .cpg that lies": (lambda folder: (gbk_shapefile(monaco_buildings(40), folder, cpg="UTF-8"), {}),
                         ["not UTF-8 (as its .cpg says)", GBK_EN], [GBK_ZH]),
    "--encoding utf-8 on GBK": (lambda folder: (gbk_shapefile(monaco_buildings(40), folder), {"encoding": "utf-8"}),
                                ["(as --encoding utf-8 says)", GBK_EN], [GBK_ZH]),
    "--estimate-missing on roads": (lambda folder: (gbk_shapefile(monaco_buildings(40), folder, "roads"),
                                                    {"estimate_missing": True}),
                                    ["--estimate-missing applies to buildings layers"], ["只适用于楼栋图层"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_file_is_refused_in_both_languages_and_stores_nothing(case: str, monaco: sa.Engine,
                                                                       tmp_path: Path) -> None:
    build, en_parts, zh_parts = CASES[case]
    path, options = build(tmp_path / "in")
    before = count_layers(monaco)
    with pytest.raises(Invalid) as refused:
        import_file(monaco, path, territory=MONACO, **options)
    for part in en_parts:
        assert part in refused.value.en, (part, refused.value.en)
    for part in zh_parts:
        assert part in refused.value.zh, (part, refused.value.zh)
    assert BARE_CODEC not in refused.value.en + refused.value.zh
    assert count_layers(monaco) == before


def test_fixed_imports_go_through(monaco: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "osm.gpkg"
    monaco_buildings(40).drop(columns="户数").to_crs(3857).set_crs(4326, allow_override=True).to_file(path)
    summary = import_file(monaco, path, territory=MONACO, layer="楼栋", crs="EPSG:3857")
    assert summary.source_crs == "EPSG:3857 WGS 84 / Pseudo-Mercator" and summary.warnings == []
    assert summary.households["estimated_all"]  # 楼栋 is a buildings layer; without households it is estimated
    assert ("households: no households column: households will be estimated from levels and footprint for all 40 "
            "buildings") in str(summary) and "没有户数字段" in str(summary)
    picked = import_file(monaco, _two_households_columns(tmp_path / "two")[0], territory=MONACO, layer="楼栋2",
                         kind="buildings", fields="households=户数")
    assert "户数 → households" in picked.fields and picked.estimated == 0
    with monaco.connect() as conn:
        stored = frames.layer_features(conn, MONACO, "楼栋2")
        row = conn.execute(sa.text("SELECT source_crs FROM layers WHERE name = '楼栋'")).scalar_one()
    assert "住户数" in stored and stored["households"].tolist() == monaco_buildings(40)["户数"].tolist()
    assert row == "EPSG:3857 WGS 84 / Pseudo-Mercator"
    estimated = import_file(monaco, _invalid_households(tmp_path / "bad")[0], territory=MONACO, layer="楼栋2",
                            kind="buildings", replace=True, estimate_missing=True)
    assert estimated.estimated == 4 and "households estimated from levels and footprint for 4 of 40" in str(estimated)
    with monaco.connect() as conn:
        stored = frames.layer_features(conn, MONACO, "楼栋2")
        audit = conn.execute(sa.text("SELECT after FROM audit_log WHERE action = 'import' ORDER BY id DESC")).first()[0]
    assert stored["households_estimated"].sum() == 4 and stored.loc[3, "households_estimated"]
    assert audit["households_estimated"] == 4 and "户数 → households" in audit["fields"]


def test_point_buildings_import_with_their_households(monaco: sa.Engine, tmp_path: Path) -> None:
    frame = monaco_buildings(60)
    frame = frame.set_geometry(shapely.point_on_surface(frame.geometry.values))
    summary = import_file(monaco, gbk_shapefile(frame, tmp_path, "门牌地址"), territory=MONACO, kind="buildings")
    assert summary.geometry_types == ["Point"] and summary.estimated == 0
    with monaco.connect() as conn:
        stored = frames.layer_features(conn, MONACO, "门牌地址")
    assert stored["households"].sum() == frame["户数"].sum()


def test_a_layer_partly_outside_is_imported_with_a_warning(monaco: sa.Engine, tmp_path: Path) -> None:
    frame = monaco_buildings(100)
    moved = frame.geometry.values.copy()
    moved[:20] = shapely.transform(moved[:20], lambda c: c + [0.05, 0.0])  # 20 buildings 4 km east, in France
    path = gbk_shapefile(frame.set_geometry(moved), tmp_path)
    summary = import_file(monaco, path, territory=MONACO, layer="楼栋3", kind="buildings")
    assert summary.features == 100 and len(summary.warnings) == 2  # and: the partition reads 'buildings'
    assert "20% of its features (20 of 100;" in summary.warnings[0]["en"]
    assert "imported all the same" in summary.warnings[0]["en"] and "仍已导入" in summary.warnings[0]["zh"]
    assert "warning: 20% of its features" in str(summary) and "警告：" in str(summary)
    assert summary.outside["outside"] == 20
    assert "the layer spans" in summary.warnings[0]["en"]  # 4 km off: where the layer and the territory are


def test_features_just_outside_are_said_to_lie_just_beyond_the_border() -> None:
    """Roads along a district's outer border drawn a little beyond it: the warning says so and how
    far, not two bounding boxes that are the same; features far off still get both boxes."""
    from gridmap.geo.crs_checks import placement

    outline = shapely.box(103.0, 30.0, 103.05, 30.05)
    inside = [shapely.LineString([(103.001 + 0.001 * i, 30.001), (103.001 + 0.001 * i, 30.049)]) for i in range(40)]
    beyond = [shapely.LineString([(103.0502, 30.001 + 0.01 * i), (103.0502, 30.009 + 0.01 * i)]) for i in range(3)]
    found = placement(np.array(inside + beyond, dtype=object), outline)
    assert found.outside == 3 and 15 < found.furthest_m < 25  # 0.0002° east at 30°N: about 19 m
    en, zh = found.where()
    assert "all just beyond its border, the furthest 19 m from it" in en and "最远 19 米" in zh
    far = placement(np.array(inside + [shapely.LineString([(103.2, 30.0), (103.21, 30.0)])], dtype=object), outline)
    assert "the layer spans" in far.where()[0]


# -- GCJ-02 in a Chinese territory ------------------------------------------------------------------------
def test_gcj02_left_unconverted_is_refused_with_the_fix(yucheng: sa.Engine, tmp_path: Path) -> None:
    right = yucheng_buildings(2000)
    path = gbk_shapefile(as_gcj02(right), tmp_path / "amap")  # labelled CGCS2000, digitised on Amap
    before = count_layers(yucheng)
    with pytest.raises(Invalid) as refused:
        import_file(yucheng, path, territory=YUCHENG, layer="buildings")
    assert "this layer looks like GCJ-02 (Amap/Tencent coordinates, ~" in refused.value.en
    assert "lie outside the territory as labelled, 0% once converted" in refused.value.en
    assert refused.value.en.endswith("import it with --crs gcj02")
    assert "疑似 GCJ-02 坐标（高德/腾讯地图坐标" in refused.value.zh and "请加 --crs gcj02 导入" in refused.value.zh
    assert count_layers(yucheng) == before
    summary = import_file(yucheng, path, territory=YUCHENG, layer="buildings", crs="gcj02")
    assert summary.source_crs == "GCJ-02" and summary.warnings == [] and summary.outside["outside"] == 0
    with yucheng.connect() as conn:
        stored = frames.layer_features(conn, YUCHENG, "buildings")
    assert shapely.contains(yucheng_outline(), stored.geometry.values).all()
    clean = import_file(yucheng, gbk_shapefile(right, tmp_path / "clean"), territory=YUCHENG, layer="clean")
    assert clean.warnings == []


def test_gcj02_told_by_the_territorys_roads(yucheng: sa.Engine, tmp_path: Path) -> None:
    roads, compounds, buildings = town_quarter()
    import_file(yucheng, gbk_shapefile(roads, tmp_path / "roads", "道路"), territory=YUCHENG, layer="roads")
    amap = gbk_shapefile(as_gcj02(compounds), tmp_path / "amap", "小区")
    before = count_layers(yucheng)
    with pytest.raises(Invalid) as refused:
        import_file(yucheng, amap, territory=YUCHENG, layer="compounds")
    assert "looks like GCJ-02" in refused.value.en and "roads run through" in refused.value.en
    assert "--crs gcj02" in refused.value.en and "请加 --crs gcj02 导入" in refused.value.zh
    assert count_layers(yucheng) == before
    assert import_file(yucheng, amap, territory=YUCHENG, layer="compounds", crs="gcj02").source_crs == "GCJ-02"
    assert import_file(yucheng, gbk_shapefile(buildings, tmp_path / "b"), territory=YUCHENG,
                       layer="buildings").features == len(buildings)


def test_importing_10000_buildings(yucheng: sa.Engine, tmp_path: Path) -> None:
    path = gbk_shapefile(yucheng_buildings(10_000, seed=1), tmp_path)
    started = time.perf_counter()
    summary = import_file(yucheng, path, territory=YUCHENG, layer="buildings")
    print(f"\n  import of 10,000 buildings, all checks included: {time.perf_counter() - started:.2f} s")
    assert summary.features == 10_000 and summary.warnings == [] and summary.estimated == 0


# -- over HTTP and on the command line ------------------------------------------------------------------------
def test_uploads_say_both_languages_and_store_nothing(monaco: sa.Engine, database_url: str, tmp_path: Path) -> None:
    client = signed_in_client(monaco, database_url, "admin1", "admin", MONACO)
    url = f"/api/territories/{MONACO}/layers"
    good = zipped(gbk_shapefile(monaco_buildings(40), tmp_path / "good"), tmp_path / "楼栋.zip")
    done = client.post(url, data={"name": "楼栋"}, files={"file": ("楼栋.zip", good.read_bytes())})
    assert done.status_code == 201, done.text
    answer = done.json()
    assert answer["encoding"] == "gbk" and "户数 → households" in answer["fields"] and answer["estimated"] == 0
    assert answer["source_crs"] == "EPSG:4490 CGCS2000"
    before = count_layers(monaco)
    bad = zipped(_invalid_households(tmp_path / "bad")[0], tmp_path / "bad.zip")
    mercator = _mercator_labelled_wgs84(tmp_path / "merc")[0]
    uploads = {
        "households": (("楼栋.zip", bad.read_bytes()), {"name": "楼栋2", "kind": "buildings"},
                       "missing or invalid in 4 of 40 buildings", "缺失或无效"),
        "gbk geojson": (("小区.geojson", gbk_geojson(tmp_path / "g").read_bytes()), {}, GBK_EN, GBK_ZH),
        "mercator": (("roads.gpkg", mercator.read_bytes()), {}, "--crs EPSG:3857", "请加 --crs EPSG:3857"),
        "outside": (("grids.gpkg", write("gpkg", tmp_path / "far").read_bytes()), {},
                    "lie outside territory 980100", "位于辖区 980100"),
        "fields": (("楼栋.zip", good.read_bytes()), {"name": "楼栋3", "fields": "households=人数"},
                   "has no column '人数'", "没有字段 '人数'"),
    }
    for label, (upload, form, en, zh) in uploads.items():
        refused = client.post(url, data=form, files={"file": upload})
        assert refused.status_code == 422, (label, refused.text)
        body = refused.json()
        assert en in body["detail_en"] and zh in body["detail_zh"] and body["detail"] == body["detail_en"], label
        assert "/tmp/" not in refused.text and BARE_CODEC not in refused.text, label
    assert count_layers(monaco) == before
    estimated = client.post(url, data={"name": "楼栋4", "kind": "buildings", "estimate_missing": "true"},
                            files={"file": ("楼栋.zip", bad.read_bytes())})
    assert estimated.status_code == 201, estimated.text
    assert estimated.json()["estimated"] == 4 and "households_estimated" in estimated.json()["households"]["said"]["en"]


def test_gcj02_upload_is_refused(yucheng: sa.Engine, database_url: str, tmp_path: Path) -> None:
    client = signed_in_client(yucheng, database_url, "admin2", "admin", YUCHENG)
    amap = zipped(gbk_shapefile(as_gcj02(yucheng_buildings(1000)), tmp_path), tmp_path / "amap.zip")
    url = f"/api/territories/{YUCHENG}/layers"
    refused = client.post(url, data={"name": "buildings"}, files={"file": ("amap.zip", amap.read_bytes())})
    assert refused.status_code == 422 and "--crs gcj02" in refused.json()["detail_en"]
    assert "请加 --crs gcj02 导入" in refused.json()["detail_zh"]
    done = client.post(url, data={"name": "buildings", "crs": "gcj02"}, files={"file": ("amap.zip", amap.read_bytes())})
    assert done.status_code == 201 and done.json()["source_crs"] == "GCJ-02"


def test_cli_refusals_are_one_line(monaco: sa.Engine, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    path, _ = _mercator_labelled_wgs84(tmp_path / "m")
    before = count_layers(monaco)
    base = [sys.executable, "-m", "gridmap.cli", "import", str(path), "--territory", MONACO, "--layer", "道路"]
    for extra, expected in (([], "--crs EPSG:3857"), (["--fields", "households"], "canonical=COLUMN"),
                            (["--crs", "EPSG:3857", "--kind", "roads", "--estimate-missing"],
                             "applies to buildings layers")):
        refused = subprocess.run(base + extra, env=env, capture_output=True, text=True)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("gridmap: error:")]
        assert refused.returncode == 1 and len(errors) == 1 and expected in errors[0], refused.stderr
        assert "Traceback" not in refused.stderr
    assert count_layers(monaco) == before
    done = subprocess.run(base + ["--crs", "EPSG:3857"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "(from EPSG:3857 WGS 84 / Pseudo-Mercator; Polygon" in done.stdout


def test_which_layers_are_buildings() -> None:
    """A layer is checked as buildings when imported as ``--kind buildings`` or under a name the
    partition reads buildings from (``store.layers.ROLES``)."""
    from gridmap.services.importing import is_buildings_layer
    from gridmap.store.layers import ROLES

    assert is_buildings_layer("imported", "楼栋") and is_buildings_layer("buildings", "2024年楼栋")
    assert is_buildings_layer(None, " Buildings ") and not is_buildings_layer("roads", "roads")
    assert "楼栋" in ROLES["buildings"]
