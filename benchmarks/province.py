"""Province benchmark: a generated province partitioned serially and on a local Dask cluster.

    .venv/bin/python benchmarks/province.py [--sizes 62500,250000,1000000] [--workers 2]
                                            [--units-per-community 200] [--mean-households 30]
                                            [--skip-dissolve]

A province at building grain (issue #23): about 1M units in 5,000 communities of 200 units, 30
households a unit on average (30M households), partitioned into grids of 300–500 households
(about 75,000). For each size, in the same run and on the same units and graph:

* the stages: generating the units, the unit graph (serial), the assignment of units to grids
  serially (``assign_grids`` with the serial runner) and on ``LocalCluster(n_workers=--workers,
  threads_per_worker=1)`` (cluster start-up timed apart), and the grids' statistics with their
  outlines dissolved (serial: shipping the geometries to workers cost more than the unions);
* the peak memory of this process and of each Dask worker (``ru_maxrss``);
* whether the two assignments are identical (they must be);
* the fitted growth exponent of each stage over the sizes (time ~ n^b) beside n log n's.

The peer is the serial path: the issue asks that the distributed one be the serial answer,
faster where the territory is large, and that what is faster serially stays serial.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.distributed import QUIET_WORKERS, DaskRunner  # noqa: E402
from gridmap.geo.crs import metric_crs_for_frame  # noqa: E402
from gridmap.geo.graph import build_graph  # noqa: E402
from gridmap.geo.partition import PartitionRules, assign_grids  # noqa: E402
from gridmap.geo.report import grid_statistics  # noqa: E402
from gridmap.geo.synthetic import unit_grid  # noqa: E402


def peak_mb() -> float:
    """Peak resident memory of the calling process, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fitted_exponent(sizes, seconds) -> float:
    """b of time ~ a·n^b, least squares on the logarithms."""
    return float(np.polyfit(np.log(np.asarray(sizes, dtype=float)), np.log(np.asarray(seconds, dtype=float)), 1)[0])


def one_size(n: int, per_community: int, mean_households: float, client, dissolve: bool) -> dict:
    started = time.perf_counter()
    units = unit_grid(n, units_per_community=per_community, seed=1, mean_households=mean_households)
    row = {"units": len(units), "communities": units["community_code"].nunique(),
           "households": int(units["households"].sum()), "generate_s": time.perf_counter() - started}
    started = time.perf_counter()
    graph = build_graph(units)
    row["graph_s"] = time.perf_counter() - started
    rules = PartitionRules(min_households=300, max_households=500)
    started = time.perf_counter()
    serial = assign_grids(units, graph, rules, seed=0)
    row["assign_serial_s"] = time.perf_counter() - started
    started = time.perf_counter()
    spread = assign_grids(units, graph, rules, seed=0, runner=DaskRunner(client))
    row["assign_dask_s"] = time.perf_counter() - started
    row["identical"] = bool((serial.grid_of == spread.grid_of).all() and serial.kinds == spread.kinds)
    row["grids"] = len(serial.kinds)
    totals = np.bincount(serial.grid_of, weights=units["households"].to_numpy(dtype=float))
    comprehensive = np.array([k == "comprehensive" for k in serial.kinds])
    row["in_band"] = float(((totals >= 300) & (totals <= 500))[comprehensive].mean())
    if dissolve:
        crs = metric_crs_for_frame(units)
        started = time.perf_counter()
        grid_statistics(units, serial.grid_of, crs)
        row["dissolve_s"] = time.perf_counter() - started
    row["peak_main_mb"] = peak_mb()
    row["peak_workers_mb"] = sorted(round(v) for v in client.run(peak_mb).values())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="62500,250000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--units-per-community", type=int, default=200)
    parser.add_argument("--skip-dissolve", action="store_true")
    parser.add_argument("--mean-households", type=float, default=30.0,
                        help="households a unit on average (30: 30M households in 1M units)")
    args = parser.parse_args()
    import dask
    from distributed import Client, LocalCluster

    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    with dask.config.set(QUIET_WORKERS):
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(lambda: __import__("gridmap.geo.partition"))  # workers import what tasks need once
    print(f"# Province benchmark: LocalCluster of {args.workers} workers started in "
          f"{time.perf_counter() - started:.1f} s (dashboard {client.dashboard_link})", flush=True)
    rows = []
    try:
        for n in sizes:
            row = one_size(n, args.units_per_community, args.mean_households, client, not args.skip_dissolve)
            rows.append(row)
            print(f"\n## {row['units']:,} units, {row['communities']:,} communities, {row['households']:,} households")
            print(f"  generate {row['generate_s']:.1f} s; graph {row['graph_s']:.1f} s (serial)")
            print(f"  assign serial {row['assign_serial_s']:.1f} s; on {args.workers} Dask workers "
                  f"{row['assign_dask_s']:.1f} s ({row['assign_serial_s'] / row['assign_dask_s']:.2f}x); "
                  f"identical: {row['identical']}")
            print(f"  {row['grids']:,} grids, {row['in_band']:.1%} of comprehensive grids in 300-500"
                  + (f"; dissolve + statistics {row['dissolve_s']:.1f} s (serial)" if "dissolve_s" in row else ""))
            print(f"  peak memory: this process {row['peak_main_mb']:.0f} MB, workers {row['peak_workers_mb']} MB",
                  flush=True)
    finally:
        client.close()
        cluster.close()
    if not all(r["identical"] for r in rows):
        sys.exit("the Dask assignment differs from the serial one")
    if len(rows) >= 2:
        n = np.array([r["units"] for r in rows], dtype=float)
        stages = ["graph_s", "assign_serial_s", "assign_dask_s",
                  *(["dissolve_s"] if "dissolve_s" in rows[0] else [])]
        fitted = ", ".join(f"{s[:-2]} b = {fitted_exponent(n, [r[s] for r in rows]):.2f}" for s in stages)
        print(f"\n## Growth (time ~ n^b): {fitted}; n log n over these sizes: b = "
              f"{fitted_exponent(n, n * np.log(n)):.2f}")


if __name__ == "__main__":
    main()
