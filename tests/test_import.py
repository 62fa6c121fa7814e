"""``gridmap import`` into a real PostGIS: every format, GCJ-02, atomicity, the CLI."""

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
from gridmap.store.layers import LayerExists
from gridmap.store.territories import TerritoryNotFound
from samples import CARRIES_CODE, CODES, FORMATS, NAMES, write, write_gcj02_geojson

TERRITORY = "980101900001"  # Fontvieille, Monaco demo


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("layers", "layer_features", "audit_log")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_imports(fmt: str, monaco: sa.Engine, tmp_path: Path) -> None:
    path = write(fmt, tmp_path)
    crs = "EPSG:4326" if path.suffix == ".csv" else None
    summary = import_file(monaco, path, territory=TERRITORY, layer="sample", crs=crs)
    assert summary.features == 3
    with monaco.connect() as conn:
        stored = frames.layer_features(conn, TERRITORY, "sample")
        srid = conn.execute(sa.text(
            "SELECT DISTINCT ST_SRID(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'sample'")).scalar_one()
    assert srid == 4490
    name_col = "name" if "name" in stored else "Name"
    assert list(stored[name_col]) == NAMES
    if fmt in CARRIES_CODE:
        assert list(stored["code"].astype(str)) == CODES


def test_gbk_shapefile_round_trips_chinese(monaco: sa.Engine, tmp_path: Path) -> None:
    summary = import_file(monaco, write("shp-gbk-no-cpg", tmp_path), territory=TERRITORY, layer="gbk")
    assert summary.encoding == "gbk" and any("GBK" in n for n in summary.notes)
    with monaco.connect() as conn:
        names = conn.execute(sa.text(
            "SELECT f.properties->>'name' FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'gbk' ORDER BY f.feature_index")).scalars().all()
    assert names == NAMES


def test_gcj02_geojson_lands_on_the_wgs84_truth(monaco: sa.Engine, tmp_path: Path) -> None:
    truth = np.array([[103.0133, 29.9805], [121.5272106, 31.1774276], [116.377817, 39.911954]])
    path = write_gcj02_geojson(tmp_path, truth)
    summary = import_file(monaco, path, territory=TERRITORY, layer="amap", crs="gcj02")
    assert summary.source_crs == "GCJ-02"
    with monaco.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ST_X(f.geom), ST_Y(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'amap' ORDER BY f.feature_index")).all()
    geod = Geod(ellps="WGS84")
    for (x, y), (tx, ty) in zip(rows, truth):
        assert geod.inv(x, y, tx, ty)[2] < 1.0  # metres
    # imported without conversion, the same file is hundreds of metres off
    import_file(monaco, path, territory=TERRITORY, layer="amap_raw")
    with monaco.connect() as conn:
        raw = conn.execute(sa.text(
            "SELECT ST_X(f.geom), ST_Y(f.geom) FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'amap_raw' ORDER BY f.feature_index")).all()
    assert all(geod.inv(x, y, tx, ty)[2] > 100 for (x, y), (tx, ty) in zip(raw, truth))


def test_failed_import_leaves_the_database_unchanged(monaco: sa.Engine, tmp_path: Path, monkeypatch) -> None:
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


def test_broken_file_writes_nothing(monaco: sa.Engine, tmp_path: Path) -> None:
    before = _counts(monaco)
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(VectorReadError):
        import_file(monaco, broken, territory=TERRITORY)
    with pytest.raises(TerritoryNotFound):
        import_file(monaco, write("gpkg", tmp_path), territory="999999999999")
    assert _counts(monaco) == before


def test_existing_layer_needs_replace(monaco: sa.Engine, tmp_path: Path) -> None:
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


def test_cli_import(monaco: sa.Engine, database_url: str, tmp_path: Path) -> None:
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
