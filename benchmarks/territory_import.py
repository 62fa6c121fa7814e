"""How long does a district's own data take to go in? ``gridmap territory import`` of the demo
district's communities (117, with streets) plus ``gridmap import`` of its buildings (≈7,900 GBK
polygons), every check included, against GDAL's ``ogr2ogr`` loading the same two files into
PostGIS with no checks at all (the floor any loader is measured against). Target: under 10 s.

Run: .venv/bin/python benchmarks/territory_import.py [--repeat 3]
Uses GRIDMAP_DATABASE_URL or the running local cluster; writes into a throwaway database.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gridmap.services.boundaries import import_boundaries
from gridmap.services.demo import load_demo
from gridmap.services.importing import import_file
from gridmap.store import migrate
from gridmap.store.databases import drop_database, ensure_postgis_database
from gridmap.store.db import resolve_url

FOLDER = Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng"


def ours(engine: sa.Engine) -> tuple[float, float]:
    """Seconds for the territory import and for the buildings import (then both undone)."""
    started = time.perf_counter()
    import_boundaries(engine, FOLDER / "社区.shp", streets=FOLDER / "街道.gpkg", parent="511800", actor="bench")
    middle = time.perf_counter()
    import_file(engine, FOLDER / "楼栋.shp", territory="511802", layer="buildings", kind="buildings", actor="bench")
    done = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM layers WHERE name = 'buildings'"))
        conn.execute(sa.text("DELETE FROM territories WHERE level IN ('street', 'community')"))
    return middle - started, done - middle


def peer(url: sa.URL) -> float:
    """Seconds for ogr2ogr to load the same two files into new tables."""
    target = (f"PG:host={url.host} port={url.port} dbname={url.database} user={url.username}"
              + (f" password={url.password}" if url.password else ""))
    started = time.perf_counter()
    for file, table in (("社区.shp", "peer_communities"), ("楼栋.shp", "peer_buildings")):
        subprocess.run(["ogr2ogr", "-f", "PostgreSQL", target, str(FOLDER / file), "-nln", table, "-overwrite",
                        "-lco", "GEOMETRY_NAME=geom", "-nlt", "PROMOTE_TO_MULTI", "--config", "SHAPE_ENCODING", "CP936",
                        "--config", "PG_USE_COPY", "YES"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("ogr2ogr") is None:
        raise SystemExit("ogr2ogr (gdal-bin) is needed for the peer figure")
    url = make_url(resolve_url()).set(database=f"gridmap_bench_{secrets.token_hex(3)}")
    text = url.render_as_string(hide_password=False)
    ensure_postgis_database(text)
    try:
        migrate.upgrade(text)
        engine = sa.create_engine(text)
        load_demo(engine, ["yaan"])  # the real district outline the communities are checked against
        territory, buildings, peers = [], [], []
        for _ in range(args.repeat):
            t, b = ours(engine)
            territory.append(t)
            buildings.append(b)
            peers.append(peer(url))
        t, b, p = statistics.median(territory), statistics.median(buildings), statistics.median(peers)
        print(f"files: {FOLDER.relative_to(FOLDER.parents[2])} (117 communities + 10 streets; 楼栋.shp buildings)")
        print(f"gridmap territory import (checks, clean coverage, tree):  median {t:.2f} s")
        print(f"gridmap import buildings (fields, households, checks):    median {b:.2f} s")
        print(f"gridmap total:                                            median {t + b:.2f} s  (target < 10 s)")
        print(f"ogr2ogr, the same two files, no checks (peer):            median {p:.2f} s")
        print(f"ratio gridmap/ogr2ogr: {(t + b) / p:.1f}x")
        engine.dispose()
    finally:
        drop_database(text)


if __name__ == "__main__":
    main()
