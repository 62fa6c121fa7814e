"""Export speed: gridmap's export beside GDAL's ``ogr2ogr`` reading the same rows from PostGIS.

    .venv/bin/python benchmarks/export.py [--territory 990100] [--repeat 3]

Needs the demo loaded (``./scripts/run.sh`` or ``gridmap up --no-serve``); only reads. For each
format it exports the published plan's grids, units and incidents of the territory, in the
CGCS2000 3-degree Gauss-Krüger definition (``gk3``), and times:

* **gridmap**: ``gridmap.services.exporting.export_territory`` — PostGIS → GeoDataFrames →
  typed, renamed, reprojected columns → files (with the data dictionary, zip for Shapefile);
* **ogr2ogr** (the peer, Debian's gdal-bin): one ``ogr2ogr -sql`` per layer straight from PostGIS
  into the same format and CRS (no renaming for dBASE, no dictionary, no zip).

Prints the median wall time of each and the file sizes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from gridmap.geo.crs import output_crs  # noqa: E402
from gridmap.services.exporting import ExportRequest, export_territory  # noqa: E402
from gridmap.store import frames, plans  # noqa: E402
from gridmap.store.db import engine_for, resolve_url  # noqa: E402

LAYER_SQL = {
    "grids": "SELECT g.code AS grid_code, g.name AS grid_name, g.kind, g.households, g.population, g.worker, "
             "ST_Area(g.geom::geography) AS area_m2, g.geom FROM grids g WHERE g.plan_id = {plan}",
    "units": "SELECT u.unit_key AS unit_id, u.kind, u.name, g.code AS grid_code, u.households, u.area_m2, u.geom "
             "FROM plan_units pu JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
             "WHERE pu.plan_id = {plan}",
    "incidents": "SELECT i.public_id AS incident_id, i.category_code, i.status, i.reported_at, i.due_at, "
                 "i.closed_at, i.geom FROM incidents i",
}
DRIVERS = {"shp": "ESRI Shapefile", "gpkg": "GPKG"}


def pg_dsn(url: str) -> str:
    u = make_url(url)
    return (f"PG:host={u.host} port={u.port or 5432} dbname={u.database} user={u.username}"
            + (f" password={u.password}" if u.password else ""))


def median_time(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--territory", default="990100")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = resolve_url()
    engine = engine_for(url)
    with engine.connect() as conn:
        plan = plans.find(conn, args.territory)
        grids = frames.plan_grids(conn, plan.id, args.territory)
    lon, lat = (grids.total_bounds[0] + grids.total_bounds[2]) / 2, (grids.total_bounds[1] + grids.total_bounds[3]) / 2
    target = output_crs("gk3", lon, lat).crs.to_wkt()
    work = Path(tempfile.mkdtemp(prefix="gridmap-bench-export-"))
    (work / "crs.wkt").write_text(target)
    print(f"territory {args.territory}, plan v{plan.version}; layers grids, units, incidents; CRS gk3; "
          f"median of {args.repeat}")
    try:
        for fmt in ("shp", "gpkg"):
            ours_path = work / f"ours.{fmt}"

            def ours():
                export_territory(engine, ExportRequest(territory=args.territory, format=fmt, crs="gk3",
                                                       layers=("grids", "units", "incidents")), ours_path)

            def peer():
                folder = work / f"peer_{fmt}"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                out = folder / ("peer.gpkg" if fmt == "gpkg" else ".")
                for name, sql in LAYER_SQL.items():
                    subprocess.run(["ogr2ogr", "-f", DRIVERS[fmt], "-t_srs", str(work / "crs.wkt"), "-nln", name,
                                    *(["-update"] if fmt == "gpkg" and (folder / "peer.gpkg").exists() else []),
                                    *(["-lco", "ENCODING=UTF-8"] if fmt == "shp" else []),
                                    str(out), pg_dsn(url), "-sql", sql.format(plan=plan.id)], check=True,
                                   capture_output=True)

            t_ours = median_time(ours, args.repeat)
            t_peer = median_time(peer, args.repeat)
            size_ours = sum(p.stat().st_size for p in work.glob("ours*"))
            size_peer = sum(p.stat().st_size for p in (work / f"peer_{fmt}").rglob("*") if p.is_file())
            print(f"{fmt:5} gridmap {t_ours:6.2f} s ({size_ours / 1e6:5.1f} MB)   "
                  f"ogr2ogr {t_peer:6.2f} s ({size_peer / 1e6:5.1f} MB)")
            for p in work.glob("ours*"):
                p.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
