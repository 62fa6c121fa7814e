"""Small sample layers written in every supported format, for the import tests.

Written with geopandas/pyogrio here and read back by gridmap's reader (and, in the export tests
to come, by GDAL's ogrinfo), so a format bug on either side shows. Also: a signed-in API client.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from gridmap.geo.crs import wgs84_to_gcj02_geoms

NAMES = ["雨城区网格一", "名山区网格二", "荥经县网格三"]
CODES = ["000123", "000456", "012000"]


def polygons() -> gpd.GeoDataFrame:
    """Three grid-like squares near Ya'an, with Chinese names and zero-padded codes."""
    boxes = [shapely.box(103.00 + i * 0.01, 30.00, 103.009 + i * 0.01, 30.009) for i in range(3)]
    return gpd.GeoDataFrame({"code": CODES, "name": NAMES, "households": [320, 410, 480]},
                            geometry=boxes, crs=4490)


def points() -> gpd.GeoDataFrame:
    pts = shapely.points([103.001, 103.011, 103.021], [30.001, 30.002, 30.003])
    return gpd.GeoDataFrame({"code": CODES, "name": NAMES}, geometry=pts, crs=4490)


def write(fmt: str, folder: Path) -> Path:
    """Write the sample in ``fmt``; returns the path to import."""
    folder.mkdir(parents=True, exist_ok=True)
    gdf = polygons()
    if fmt == "gpkg":
        path = folder / "grids.gpkg"
        gdf.to_file(path, driver="GPKG")
    elif fmt == "shp-utf8":
        path = folder / "grids.shp"
        gdf.to_file(path, driver="ESRI Shapefile", encoding="UTF-8")
    elif fmt == "shp-gbk":
        path = folder / "grids.shp"
        gdf.to_file(path, driver="ESRI Shapefile", encoding="GBK")
    elif fmt == "shp-gbk-no-cpg":
        path = folder / "grids.shp"
        gdf.to_file(path, driver="ESRI Shapefile", encoding="GBK")
        path.with_suffix(".cpg").unlink()
    elif fmt == "shp-zip":
        shp = write("shp-utf8", folder / "parts")
        path = folder / "grids.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for part in shp.parent.iterdir():
                zf.write(part, arcname=f"grids/{part.name}")
    elif fmt == "geojson":
        path = folder / "grids.geojson"
        gdf.to_crs(4326).to_file(path, driver="GeoJSON")
    elif fmt == "kml":
        path = folder / "grids.kml"
        gdf.to_crs(4326).to_file(path, driver="KML")
    elif fmt == "csv-lonlat":
        path = folder / "points.csv"
        pts = points()
        frame = pts.drop(columns="geometry").assign(lon=pts.geometry.x, lat=pts.geometry.y)
        frame.to_csv(path, index=False)
    elif fmt == "csv-wkt":
        path = folder / "grids.csv"
        gdf.drop(columns="geometry").assign(wkt=gdf.geometry.to_wkt()).to_csv(path, index=False)
    elif fmt == "parquet":
        path = folder / "grids.parquet"
        gdf.to_parquet(path)
    else:
        raise ValueError(fmt)
    return path


def write_gcj02_geojson(folder: Path, wgs_points: np.ndarray) -> Path:
    """A GeoJSON of points whose coordinates are GCJ-02 (as digitised on an Amap basemap)."""
    folder.mkdir(parents=True, exist_ok=True)
    geoms = wgs84_to_gcj02_geoms(shapely.points(wgs_points))
    features = [{"type": "Feature", "properties": {"name": f"点{i}", "code": f"00{i}"},
                 "geometry": json.loads(shapely.to_geojson(g))} for i, g in enumerate(geoms)]
    path = folder / "amap_points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


FORMATS = ["gpkg", "shp-utf8", "shp-gbk", "shp-gbk-no-cpg", "shp-zip", "geojson", "kml", "csv-lonlat",
           "csv-wkt", "parquet"]
# KML keeps only Name/Description as plain fields in every GDAL build; code and households
# travel in ExtendedData and are checked where the driver exposes them.
CARRIES_CODE = {"gpkg", "shp-utf8", "shp-gbk", "shp-gbk-no-cpg", "shp-zip", "geojson", "csv-lonlat",
                "csv-wkt", "parquet"}


def signed_in_client(engine: sa.Engine, database_url: str, username: str, role: str | None, territory: str | None,
                     *, password: str = "correct horse battery"):
    """A TestClient carrying the bearer token of a new user with ``role`` over ``territory``,
    obtained through the real sign-in endpoint."""
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.store import users

    with engine.begin() as conn:
        users.create_user(conn, username, password)
        if role:
            users.grant(conn, username, role, territory)
    client = TestClient(create_app(database_url=database_url))
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


@contextlib.contextmanager
def serve(database_url: str, settings=None):
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL
    (``settings``: the app's, else the environment's)."""
    from gridmap.api.loopback import loopback_server

    with loopback_server(database_url, settings) as url:
        yield url


def launch_chromium(playwright):
    """Debian's Chromium, headless, with nothing that would reach out to the network on its own."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


def histogram_median(hours) -> float:
    """The median as the rollup reads it (migration 0023), worked out here from the cases
    themselves: buckets 10 % wide (bucket 0 under a minute, bucket b from 60·1.1^(b-1) s to
    60·1.1^b s), the mean of the middle two cases placed evenly within their buckets."""
    import numpy as np

    seconds = np.sort(np.asarray(hours, dtype=float) * 3600)
    bucket = np.where(seconds < 60, 0, 1 + np.floor(np.log(np.maximum(seconds, 60) / 60) / np.log(1.1))).astype(int)
    start = np.where(bucket == 0, 0.0, 60 * 1.1 ** (bucket - 1.0))
    end = 60 * 1.1 ** bucket.astype(float)
    values = []
    for rank in {(len(seconds) - 1) // 2, len(seconds) // 2}:
        same = np.flatnonzero(bucket == bucket[rank])
        values.append(start[rank] + (end[rank] - start[rank]) * (rank - same[0] + 0.5) / len(same))
    return float(np.mean(values)) / 3600


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``gridmap ARGS`` in this process (the environment as the caller set it): (exit status,
    stdout, stderr); argparse's own refusals (SystemExit) give their status too."""
    from gridmap import cli

    capsys.readouterr()
    try:
        status = cli.main(list(args))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err
