"""Import checks at a district's size: the checks every layer import runs, timed on 10,000
buildings spread over the real 雨城区 outline (clean, and the same buildings in GCJ-02), with
5,000 streets and 200 community borders for the GCJ-02 check's line evidence.

    .venv/bin/python benchmarks/import_checks.py [--buildings 10000] [--repeat 3]

Prints the median time of each check (ms). The tests check the same calls' answers at this size
(tests/test_import_checks.py); the times live here, where a busy machine cannot fail a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.geo.crs import wgs84_to_gcj02_geoms  # noqa: E402
from gridmap.geo.crs_checks import crs_problems, gcj02_suspect, placement  # noqa: E402
from gridmap.geo.fields import map_fields  # noqa: E402
from gridmap.geo.households import complete_households  # noqa: E402
from gridmap.services.demo import demo_dir  # noqa: E402


def layers(count: int) -> tuple:
    districts = gpd.read_parquet(demo_dir() / "yaan" / "districts.parquet").to_crs(4490)
    outline = districts.loc[districts["code"] == "511802"].geometry.iloc[0]
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = outline.bounds
    x, y = rng.uniform(minx, maxx, count * 4), rng.uniform(miny, maxy, count * 4)
    boxes = shapely.box(x, y, x + 0.0002, y + 0.00014)
    boxes = boxes[shapely.contains(outline, boxes)][:count]
    raw = gpd.GeoDataFrame({"楼栋号": [f"{i + 1}栋" for i in range(len(boxes))], "户数": rng.integers(6, 90, len(boxes)),
                            "层数": rng.integers(2, 30, len(boxes))}, geometry=boxes, crs=4490)
    gcj = raw.set_geometry(gpd.GeoSeries(wgs84_to_gcj02_geoms(np.asarray(boxes, dtype=object)), crs=4490))
    lx, ly = rng.uniform(minx, maxx, 5000), rng.uniform(miny, maxy, 5000)
    angle = rng.uniform(0, np.pi, 5000)
    roads = shapely.linestrings(np.stack([np.column_stack([lx, ly]), np.column_stack(
        [lx + 0.003 * np.cos(angle), ly + 0.003 * np.sin(angle)])], axis=1))
    borders = shapely.boundary(shapely.buffer(shapely.points(lx[:200], ly[:200]), 0.01, quad_segs=16))
    return outline, raw, gcj, roads, borders


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buildings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    outline, raw, gcj, roads, borders = layers(args.buildings)
    frame, _ = map_fields(raw)
    checks = {
        "field names (map_fields)": lambda: map_fields(raw),
        "crs_problems": lambda: crs_problems(raw, None, tuple(outline.bounds)),
        "placement": lambda: placement(frame.geometry.values, outline),
        "gcj02_suspect (clean layer)": lambda: gcj02_suspect(frame.geometry.values, outline),
        "gcj02_suspect (GCJ-02 layer)": lambda: gcj02_suspect(gcj.geometry.values, outline),
        "gcj02_suspect (clean, roads and borders)": lambda: gcj02_suspect(frame.geometry.values, outline, borders, roads),
        "gcj02_suspect (GCJ-02, roads and borders)": lambda: gcj02_suspect(gcj.geometry.values, outline, borders, roads),
        "complete_households": lambda: complete_households(frame, labels={"households": "户数"}),
    }
    print(f"import checks on {len(raw):,} buildings (median of {args.repeat}):")
    for label, call in checks.items():
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            call()
            runs.append(time.perf_counter() - started)
        print(f"  {label}: {np.median(runs) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
