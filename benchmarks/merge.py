"""Merge benchmark: 19 departmental layers over the Reykjavík demo, stage by stage, with the
reference approaches for the steps they share, in the same run.

    .venv/bin/pip install -e .[bench]        # adds maup
    .venv/bin/python benchmarks/merge.py

* assignment of units to each department's grids: gridmap's overlay (spatial index, covers /
  touches prefilters, intersections only where needed, on all cores) against ``maup.assign``;
* conflict detection: gridmap's per-department pass against a plain chain of
  ``geopandas.overlay`` calls (self-intersection for overlaps, differences for gaps and parts
  outside, intersection with communities for crossings).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.geo.departments import departmental_layers  # noqa: E402
from gridmap.geo.conflicts import Thresholds, classify_pieces, find_conflicts  # noqa: E402
from gridmap.geo.merge import MergeRules, merge_layers, normalise_layers, overlay_units  # noqa: E402
from gridmap.geo.shapes import LocalScale  # noqa: E402
from gridmap.geo.units import build_units  # noqa: E402
from gridmap.services.demo import demo_dir  # noqa: E402

warnings.filterwarnings("ignore")


def overlay_chain(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, budget: float
                  ) -> tuple[int, list[str], list[tuple[str, str, np.ndarray, list[tuple]]]]:
    """Conflict detection the plain way: geopandas.overlay calls, one department at a time,
    until ``budget`` seconds are spent. Returns the rows found (as the chain gives them), the
    departments done, and its pieces for the comparison: (department, kind, pieces, members)
    with members as grid ids (a pair for overlaps, the grid for parts outside, the grid and the
    community for community crossings, none for gaps, which the chain does not relate to grids)."""
    found = 0
    done: list[str] = []
    pieces: list[tuple[str, str, np.ndarray, list[tuple]]] = []
    started = time.perf_counter()
    territory = gpd.GeoDataFrame(geometry=[shapely.union_all(communities.geometry.values)], crs=communities.crs)
    for department, layer in grids.groupby("department", sort=False):
        if time.perf_counter() - started > budget:
            break
        layer = layer[["grid_id", "geometry"]].reset_index(drop=True)
        pairs = gpd.overlay(layer, layer.rename(columns={"grid_id": "other"}), how="intersection", keep_geom_type=True)
        pairs = pairs[pairs["grid_id"] < pairs["other"]]
        gaps = gpd.overlay(territory, layer, how="difference", keep_geom_type=True)
        outside = gpd.overlay(layer, territory, how="difference", keep_geom_type=True)
        crossing = gpd.overlay(layer, communities[["code", "geometry"]], how="intersection", keep_geom_type=True)
        found += len(pairs) + len(gaps) + len(outside) + int((crossing.groupby("grid_id")["code"].nunique() > 1).sum())
        done.append(department)
        for kind, frame, members in (("overlap", pairs, lambda r: (r.grid_id, r.other)),
                                     ("gap", gaps, lambda r: ()), ("outside", outside, lambda r: (r.grid_id,)),
                                     ("crossing", crossing, lambda r: (r.grid_id, r.code))):
            exploded = frame.explode(index_parts=False).reset_index(drop=True)
            pieces.append((str(department), kind, np.asarray(exploded.geometry.values, dtype=object),
                           [members(r) for r in exploded.itertuples()]))
    return found, done, pieces


def chain_findings(pieces, scale: LocalScale, rules: MergeRules) -> pd.DataFrame:
    """The chain's pieces under the report's own rules (``gridmap.geo.conflicts``): a piece
    narrower than the sliver width is a sliver, gathered per set of grids; a piece or gathering
    below the tolerance is noise; a grid crosses communities where two or more of its parts in
    different communities are above the tolerance and wider than a sliver."""
    limits = Thresholds(rules.tolerance_m2, rules.sliver_width_m)
    rows = []
    for department, kind, geoms, members in pieces:
        if len(geoms) == 0:
            continue
        if kind == "crossing":
            frame = pd.DataFrame({"grid": [m[0] for m in members], "code": [m[1] for m in members],
                                  "a": scale.area(geoms), "w": scale.width(geoms)})
            real = frame[(frame["a"] >= limits.tolerance_m2) & (frame["w"] >= limits.sliver_width_m)]
            for grid, sub in real.groupby("grid"):
                if sub["code"].nunique() >= 2:
                    rows.append({"department": department, "kind": "crosses_community", "grids": (str(grid),),
                                 "area_m2": float(sub["a"].sum()), "geometry": None})
            continue
        for f in classify_pieces(kind, geoms, [tuple(str(x) for x in m) for m in members], scale, limits):
            rows.append({"department": department, "kind": f.kind, "grids": tuple(sorted(f.members)),
                         "area_m2": f.area_m2, "geometry": f.geometry})
    return pd.DataFrame(rows, columns=["department", "kind", "grids", "area_m2", "geometry"])


def compare_findings(chain: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """Per kind: how many findings each side has and how many the other side also has: overlaps,
    crossings and parts outside by department and grids; gaps and slivers (which the chain cannot
    relate to grids the way gridmap gathers them) by place: a finding is matched when one of the
    same kind and department covers half of its area."""
    out = []
    for kind in ("overlap", "gap", "sliver", "outside", "crosses_community"):
        a = chain[chain["kind"] == kind]
        b = ours[ours["kind"] == kind]
        if kind in ("overlap", "crosses_community", "outside"):
            ka = {(d, tuple(sorted(map(str, g)))) for d, g in zip(a["department"], a["grids"])}
            kb = {(d, tuple(sorted(map(str, g)))) for d, g in zip(b["department"], b["grids"])}
            matched_a = matched_b = len(ka & kb)
        else:
            matched_a = sum(_placed(row, b) for row in a.itertuples())
            matched_b = sum(_placed(row, a) for row in b.itertuples())
        out.append({"kind": kind, "chain (same rules)": len(a), "gridmap": len(b),
                    "chain's found by gridmap": matched_a, "gridmap's found by chain": matched_b,
                    "chain m²": round(float(a["area_m2"].sum())), "gridmap m²": round(float(b["area_m2"].sum()))})
    return pd.DataFrame(out)


def _placed(row, others: pd.DataFrame) -> bool:
    """Whether a finding of ``others`` (same department) covers half of ``row``'s geometry."""
    if row.geometry is None:
        return False
    same = others[(others["department"] == row.department) & others["geometry"].notna()]
    if same.empty:
        return False
    geoms = np.asarray(same["geometry"].values, dtype=object)
    shared = shapely.area(shapely.intersection(geoms, row.geometry)).max(initial=0.0)
    return bool(shared >= 0.5 * shapely.area(row.geometry))


def main() -> None:
    import argparse

    import maup

    parser = argparse.ArgumentParser()
    parser.add_argument("--overlay-budget", type=float, default=300.0, help="seconds for the overlay chain")
    parser.add_argument("--merge-runs", type=int, default=1,
                        help="merge this many times (the figures of each; this shared machine's speed varies)")
    parser.add_argument("--merge-only", action="store_true", help="stop after the merges (no peers)")
    parser.add_argument("--local-workers", type=int, default=0,
                        help="also merge with the unified plan's pieces cut on a LocalCluster of N workers "
                             "(its start included), beside the serial merges, the same answer checked")
    args = parser.parse_args()

    folder = demo_dir() / "reykjavik"
    layers = {p.stem: gpd.read_parquet(p) for p in folder.glob("*.parquet")}
    communities = layers["communities"]
    started = time.perf_counter()
    units = build_units(communities, layers["roads"], layers["buildings"], waterways=layers["waterways"],
                        railways=layers["railways"], compounds=layers["residential_areas"], sites=layers["sites"])
    print(f"units: {len(units)} built in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    generated = departmental_layers(units, communities, seed=0)
    total = sum(len(f) for f in generated.layers.values())
    print(f"departmental layers: 19 layers, {total} grids generated in {time.perf_counter() - started:.1f} s")

    for run in range(max(args.merge_runs, 1)):
        started = time.perf_counter()
        result = merge_layers(generated.layers, units, communities, roads=layers["roads"])
        whole = time.perf_counter() - started
        if run == 0:
            print(f"\n## gridmap merge: {result.summary['text']}")
            print(f"   conflicts: {result.summary['conflicts']}; offset layers: {result.summary['offset_layers']}")
        print("   stage timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.summary["timings_s"].items()))
        print(f"   total {whole:.1f} s", flush=True)
    if args.local_workers:
        from gridmap.distributed import runner_for

        for run in range(max(args.merge_runs, 1)):
            started = time.perf_counter()
            with runner_for(0, local_workers=args.local_workers) as runner:
                ready = time.perf_counter() - started
                spread = merge_layers(generated.layers, units, communities, roads=layers["roads"], runner=runner)
            whole = time.perf_counter() - started
            same = spread.units["grid_code"].equals(result.units["grid_code"])
            print(f"   on a LocalCluster of {args.local_workers} workers: total {whole:.1f} s (the cluster's start "
                  f"{ready:.1f} s; partition {spread.summary['timings_s']['partition']:.2f} s); the serial plan: {same}",
                  flush=True)
    if args.merge_only:
        return

    grids = normalise_layers({d: result.corrected_layers.get(d, f) for d, f in generated.layers.items()})
    from gridmap.geo.crs import metric_crs_for_frame
    from gridmap.geo.units import metric_area_fn

    area = metric_area_fn(metric_crs_for_frame(communities))(np.asarray(units.geometry.values, dtype=object))
    started = time.perf_counter()
    overlay_units(units, grids, area, workers=1)
    ours_one = time.perf_counter() - started
    started = time.perf_counter()
    ours = overlay_units(units, grids, area)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {d: maup.assign(units, layer.reset_index(drop=True)) for d, layer in grids.groupby("department")}
    maup_s = time.perf_counter() - started
    best = ours.assign(department=grids["department"].to_numpy()[ours["grid"].to_numpy()]) \
        .sort_values("area_m2", ascending=False).drop_duplicates(["unit", "department"])
    agree = []
    for department, assignment in theirs.items():
        mine = best[best["department"] == department].set_index("unit")["grid"]
        offsets = np.flatnonzero(grids["department"].to_numpy() == department)
        theirs_global = assignment.dropna().astype(int).map(lambda i, o=offsets: o[i])
        common = theirs_global.index.intersection(mine.index)
        agree.append(float((mine.loc[common] == theirs_global.loc[common]).mean()))
    print("\n## unit → departmental grid assignment (all 19 layers)")
    print(pd.DataFrame([{"method": "gridmap overlay_units, one thread", "seconds": round(ours_one, 2)},
                        {"method": "gridmap overlay_units, all cores", "seconds": round(ours_s, 2)},
                        {"method": "maup.assign", "seconds": round(maup_s, 2)}]).to_string(index=False))
    print(f"   same grid chosen for {np.mean(agree):.2%} of unit × department pairs")

    territory = shapely.union_all(communities.geometry.values)
    scale = LocalScale.at(float(shapely.get_y(shapely.centroid(territory))))
    started = time.perf_counter()
    chain, done, pieces = overlay_chain(grids, communities, args.overlay_budget)
    chain_s = time.perf_counter() - started
    subset = grids[grids["department"].isin(done)]
    started = time.perf_counter()
    rules = MergeRules()
    rows, _ = find_conflicts(subset, communities, territory, scale, tolerance_m2=rules.tolerance_m2,
                             sliver_width_m=rules.sliver_width_m, workers=1)
    ours_c = time.perf_counter() - started
    print(f"\n## conflict detection (overlaps, gaps, outside, community crossings), single thread, on the "
          f"{len(done)} of 19 departments the overlay chain finished within {args.overlay_budget:.0f} s "
          f"({len(subset)} grids)")
    print(pd.DataFrame([{"method": "gridmap find_conflicts", "seconds": round(ours_c, 2), "rows": len(rows)},
                        {"method": "geopandas.overlay chain (raw rows)", "seconds": round(chain_s, 2), "rows": chain}])
          .to_string(index=False))
    ours = pd.DataFrame(rows, columns=["department", "kind", "grids", "area_m2", "detail", "geometry"])
    print(f"\n## the same findings? the chain's pieces under the report's rules (tolerance {rules.tolerance_m2:g} m², "
          f"slivers narrower than {rules.sliver_width_m:g} m gathered per set of grids), beside gridmap's rows")
    print(compare_findings(chain_findings(pieces, scale, rules), ours).to_string(index=False))
    raw = pd.DataFrame([{"kind": kind, "pieces": len(g),
                         "below the tolerance": int((scale.area(g) < rules.tolerance_m2).sum()) if len(g) else 0,
                         "thinner than a sliver": int((scale.width(g) < rules.sliver_width_m).sum()) if len(g) else 0}
                        for _, kind, g, _ in pieces]).groupby("kind").sum()
    print("the chain's raw pieces (parts of its rows):")
    print(raw.to_string())

if __name__ == "__main__":
    main()
