"""``gridmap import`` into a real PostGIS: every format, GCJ-02, atomicity, the CLI; a district's
GBK shapefile with Chinese field names (the checks of what a district hands over are in
test_import_checks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from pyproj import Geod

from gridmap.geo.io import VectorReadError
from gridmap.services.importing import import_file
from gridmap.store import frames
from gridmap.store import layers as layer_store
from gridmap.errors import Invalid
from gridmap.store.layers import LayerExists
from gridmap.store.territories import TerritoryNotFound
from samples import CARRIES_CODE, CODES, FORMATS, NAMES, write, write_gcj02_geojson

TERRITORY = "511802"  # 雨城区 of the Ya'an demo: the samples lie inside it (an import outside its territory is refused)


@pytest.fixture
def yucheng(engine: sa.Engine) -> sa.Engine:
    """The engine with the Ya'an demo (districts only) loaded."""
    from gridmap.services.demo import load_demo

    load_demo(engine, ["yaan"])
    return engine


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("layers", "layer_features", "audit_log")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_imports(fmt: str, yucheng: sa.Engine, tmp_path: Path) -> None:
    path = write(fmt, tmp_path)
    crs = "EPSG:4326" if path.suffix == ".csv" else None
    summary = import_file(yucheng, path, territory=TERRITORY, layer="sample", crs=crs)
    assert summary.features == 3
    with yucheng.connect() as conn:
        stored = frames.layer_features(conn, TERRITORY, "sample")
        srid = conn.execute(sa.text(
            "SELECT DISTINCT ST_SRID(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'sample'")).scalar_one()
    assert srid == 4490
    name_col = "name" if "name" in stored else "Name"
    assert list(stored[name_col]) == NAMES
    if fmt in CARRIES_CODE:
        assert list(stored["code"].astype(str)) == CODES


def test_gbk_shapefile_round_trips_chinese(yucheng: sa.Engine, tmp_path: Path) -> None:
    summary = import_file(yucheng, write("shp-gbk-no-cpg", tmp_path), territory=TERRITORY, layer="gbk")
    assert summary.encoding == "gbk" and any("GBK" in n for n in summary.notes)
    with yucheng.connect() as conn:
        names = conn.execute(sa.text(
            "SELECT f.properties->>'name' FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'gbk' ORDER BY f.feature_index")).scalars().all()
    assert names == NAMES


def test_gcj02_geojson_lands_on_the_wgs84_truth(yucheng: sa.Engine, tmp_path: Path) -> None:
    # points inside 雨城区 (the same conversion for Shanghai and Beijing: test_import_checks.py)
    truth = np.array([[103.0133, 29.9805], [103.05, 30.05], [103.02, 30.1]])
    path = write_gcj02_geojson(tmp_path, truth)
    summary = import_file(yucheng, path, territory=TERRITORY, layer="amap", crs="gcj02")
    assert summary.source_crs == "GCJ-02"
    with yucheng.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ST_X(f.geom), ST_Y(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'amap' ORDER BY f.feature_index")).all()
    geod = Geod(ellps="WGS84")
    for (x, y), (tx, ty) in zip(rows, truth):
        assert geod.inv(x, y, tx, ty)[2] < 1.0  # metres
    # imported without conversion, the same file is hundreds of metres off (three points deep
    # inside the district give no evidence of GCJ-02: see test_import_checks.py for what does)
    import_file(yucheng, path, territory=TERRITORY, layer="amap_raw")
    with yucheng.connect() as conn:
        raw = conn.execute(sa.text(
            "SELECT ST_X(f.geom), ST_Y(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'amap_raw' ORDER BY f.feature_index")).all()
    assert all(geod.inv(x, y, tx, ty)[2] > 100 for (x, y), (tx, ty) in zip(raw, truth))


def test_failed_import_leaves_the_database_unchanged(yucheng: sa.Engine, tmp_path: Path, monkeypatch) -> None:
    monaco = yucheng
    import_file(monaco, write("gpkg", tmp_path / "a"), territory=TERRITORY, layer="grids")
    before = _counts(monaco)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    # a failure in the middle of writing (the layer row exists, features half-copied)
    monkeypatch.setattr(layer_store, "copy_features", explode)
    with pytest.raises(RuntimeError):
        import_file(monaco, write("geojson", tmp_path / "b"), territory=TERRITORY, layer="grids", replace=True)
    monkeypatch.undo()
    assert _counts(monaco) == before
    with monaco.connect() as conn:
        kept = frames.layer_features(conn, TERRITORY, "grids")
    assert list(kept["code"]) == CODES  # the old layer is intact


def test_broken_file_writes_nothing(yucheng: sa.Engine, tmp_path: Path) -> None:
    monaco = yucheng
    before = _counts(monaco)
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(VectorReadError):
        import_file(monaco, broken, territory=TERRITORY)
    with pytest.raises(TerritoryNotFound):
        import_file(monaco, write("gpkg", tmp_path), territory="999999999999")
    assert _counts(monaco) == before


def test_existing_layer_needs_replace(yucheng: sa.Engine, tmp_path: Path) -> None:
    monaco = yucheng
    path = write("gpkg", tmp_path)
    import_file(monaco, path, territory=TERRITORY, layer="grids")
    with pytest.raises(LayerExists, match="--replace"):
        import_file(monaco, path, territory=TERRITORY, layer="grids")
    summary = import_file(monaco, path, territory=TERRITORY, layer="grids", replace=True)
    assert summary.replaced == 3
    with monaco.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM layers WHERE name = 'grids'")).scalar_one() == 1
        actions = conn.execute(sa.text(
            "SELECT before, after FROM audit_log WHERE action = 'import' ORDER BY id")).all()
    assert actions[0].before is None and actions[1].before == {"features": 3}


def test_cli_import(yucheng: sa.Engine, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    path = write("shp-gbk", tmp_path)
    cmd = [sys.executable, "-m", "gridmap.cli", "import", str(path), "--territory", TERRITORY, "--layer", "网格"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported 3 features into layer '网格'" in done.stdout
    assert "reading grids.shp" in done.stderr  # progress lines
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "exists already" in again.stderr and "Traceback" not in again.stderr
    bad = subprocess.run([sys.executable, "-m", "gridmap.cli", "import", str(tmp_path / "nope.gpkg"),
                          "--territory", TERRITORY], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "no such file" in bad.stderr


# -- a district's buildings: GBK, Chinese field names ----------------------------------------------------
def _district_buildings(folder: Path, *, ascii_values: bool = False) -> Path:
    """Buildings of 雨城区 as a district hands them over: a GBK shapefile without .cpg whose field
    names are Chinese (户数, 楼栋号, 层数); with ``ascii_values`` every value is plain ASCII, so only
    the field names in the .dbf header are GBK."""
    import geopandas as gpd
    import pyogrio
    import shapely

    folder.mkdir(parents=True, exist_ok=True)
    x = 103.0 + np.arange(6) * 0.002
    names = [f"A{i + 1}" for i in range(6)] if ascii_values else [f"{i + 1}号楼" for i in range(6)]
    frame = gpd.GeoDataFrame({"楼栋号": names, "户数": [36, 48, 24, 60, 12, 90], "层数": [6, 8, 4, 11, 3, 18]},
                             geometry=shapely.box(x, 30.0, x + 0.0003, 30.0002), crs=4490)
    path = folder / "楼栋.shp"
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    return path


@pytest.mark.parametrize("ascii_values", [False, True])
def test_gbk_buildings_with_chinese_field_names_keep_their_households(yucheng: sa.Engine, tmp_path: Path,
                                                                      ascii_values: bool) -> None:
    """The issue's case: 户数 in a GBK shapefile used to import every building with 0 households."""
    path = _district_buildings(tmp_path, ascii_values=ascii_values)
    summary = import_file(yucheng, path, territory=TERRITORY, layer="buildings")
    assert summary.encoding == "gbk"
    assert "户数 → households" in summary.fields and "楼栋号 → building_name" in summary.fields
    assert "层数 → levels" in summary.fields
    assert "fields: " in str(summary) and "户数 → households" in str(summary)
    assert summary.households["estimated"] == 0 and summary.households["said"] is None
    with yucheng.connect() as conn:
        stored = frames.layer_features(conn, TERRITORY, "buildings")
        report = conn.execute(sa.text("SELECT report FROM layers WHERE name = 'buildings'")).scalar_one()
    assert stored["households"].tolist() == [36, 48, 24, 60, 12, 90]
    assert "户数" not in stored and stored["building_name"].iloc[0] == ("A1" if ascii_values else "1号楼")
    assert "户数 → households" in report["fields"]


def test_cli_import_with_fields_and_estimates(yucheng: sa.Engine, database_url: str, tmp_path: Path) -> None:
    import geopandas as gpd

    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    path = _district_buildings(tmp_path / "a")
    frame = gpd.read_file(path, encoding="gbk")
    frame["户数"] = frame["户数"].astype(object)
    frame.loc[2, "户数"] = None
    broken = tmp_path / "b" / "楼栋.gpkg"
    broken.parent.mkdir()
    frame.rename(columns={"户数": "住户总数"}).to_file(broken)
    base = [sys.executable, "-m", "gridmap.cli", "import", str(broken), "--territory", TERRITORY,
            "--layer", "buildings", "--fields", "households=住户总数"]
    refused = subprocess.run(base, env=env, capture_output=True, text=True)
    lines = [line for line in refused.stderr.splitlines() if line.startswith("gridmap: error")]
    assert refused.returncode == 1 and len(lines) == 1 and "Traceback" not in refused.stderr
    assert "missing or invalid in 1 of 6 buildings" in lines[0] and "--estimate-missing" in lines[0]
    assert "feature #3 (楼栋号=3号楼): empty" in lines[0]
    done = subprocess.run(base + ["--estimate-missing"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "fields: 住户总数 → households" in done.stdout
    assert "households estimated from levels and footprint for 1 of 6 buildings" in done.stdout
    with yucheng.connect() as conn:
        stored = frames.layer_features(conn, TERRITORY, "buildings")
    assert stored["households_estimated"].tolist() == [False, False, True, False, False, False]
    assert stored["households"].iloc[2] >= 1 and stored["households"].iloc[0] == 36
    wrong = subprocess.run(base[:-2] + ["--fields", "households=人数"], env=env, capture_output=True, text=True)
    assert wrong.returncode == 1 and "has no column '人数'" in wrong.stderr and "住户总数" in wrong.stderr


def test_a_layer_of_an_input_kind_under_another_name_is_stored_with_a_warning(yucheng: sa.Engine,
                                                                              tmp_path: Path) -> None:
    """A second file of sites (or roads) imported under its own name is stored, but units and
    partitions read that kind from the layer named for it only: the clerk is told, in both languages."""
    path = write("gpkg", tmp_path)
    summary = import_file(yucheng, path, territory=TERRITORY, layer="公共设施点", kind="sites")
    assert summary.features == 3
    [warning] = [w for w in summary.warnings if "partitions read" in w["en"]]
    assert "layer '公共设施点' (kind sites) is stored" in warning["en"] and "--layer sites" in warning["en"]
    assert "图层名“sites”" in warning["zh"] and "才会生效" in warning["zh"]
    named = import_file(yucheng, path, territory=TERRITORY, layer="sites", kind="sites")
    assert not [w for w in named.warnings if "partitions read" in w["en"]]


def test_a_shapefile_without_prj_is_refused_naming_the_crs_its_coordinates_fit(yucheng: sa.Engine,
                                                                               tmp_path: Path) -> None:
    """District offices hand over Gauss-Krüger metres with the .prj lost: the refusal names the zone
    in which the coordinates lie inside the territory, as a command-line option."""
    from samples import polygons

    path = tmp_path / "楼栋.shp"
    polygons().to_crs(4543).to_file(path, driver="ESRI Shapefile", encoding="GBK")  # CGCS2000 GK CM 102E
    path.with_suffix(".prj").unlink()
    with pytest.raises(Invalid) as refused:
        import_file(yucheng, path, territory=TERRITORY, encoding="gbk")
    assert "no .prj" in refused.value.en and "give --crs EPSG:4543" in refused.value.en
    assert "请加 --crs EPSG:4543" in refused.value.zh
    summary = import_file(yucheng, path, territory=TERRITORY, encoding="gbk", crs="EPSG:4543")
    assert summary.features == 3
