"""How fast does a layer go into PostGIS? gridmap's import (COPY of EWKB + JSONB) against the
usual peer, ``GeoDataFrame.to_postgis`` (GeoAlchemy2 inserts), on the Reykjavík buildings.

Run: .venv/bin/python benchmarks/import_speed.py [--repeat 3]
Uses GRIDMAP_DATABASE_URL or the running local cluster; writes into a throwaway database.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gridmap.services.demo import demo_dir, load_demo
from gridmap.store import layers, migrate
from gridmap.store.databases import drop_database, ensure_postgis_database
from gridmap.store.db import resolve_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = make_url(resolve_url()).set(database=f"gridmap_bench_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    ensure_postgis_database(url)
    try:
        migrate.upgrade(url)
        engine = sa.create_engine(url)
        load_demo(engine, ["monaco"])
        frame = gpd.read_parquet(demo_dir() / "reykjavik" / "buildings.parquet")
        n = len(frame)
        ours, peer = [], []
        for _ in range(args.repeat):
            with engine.connect() as conn:
                trans = conn.begin()
                started = time.perf_counter()
                territory_id = conn.execute(sa.text("SELECT id FROM territories WHERE code = '980100'")).scalar_one()
                layer_id, _ = layers.create(conn, territory_id=territory_id, name="bench", kind="bench",
                                            geometry_type="GEOMETRY", source_file=None, source_crs=None,
                                            encoding=None, checksum=None, report={}, actor="bench", replace=True)
                layers.copy_features(conn, layer_id, frame)
                ours.append(time.perf_counter() - started)
                trans.rollback()
            started = time.perf_counter()
            frame.to_postgis("bench_peer", engine, if_exists="replace", index=False)
            peer.append(time.perf_counter() - started)
        o, p = statistics.median(ours), statistics.median(peer)
        print(f"features: {n} Reykjavík buildings (polygons with attributes)")
        print(f"gridmap import (COPY EWKB+JSONB):  median {o:.2f} s  ({n / o:,.0f} features/s)")
        print(f"GeoDataFrame.to_postgis (peer):    median {p:.2f} s  ({n / p:,.0f} features/s)")
        print(f"ratio peer/gridmap: {p / o:.1f}x")
        engine.dispose()
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
