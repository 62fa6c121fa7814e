"""Partition benchmark: gridmap against the three reference methods, on the same units and band.

    .venv/bin/pip install -e .[bench]          # spopt, gerrychain, pymetis, networkx
    .venv/bin/python benchmarks/partition.py [--maxp-budget 300] [--skip-scaling]

1. Reykjavík demo (72 communities): wall time of build_units and of partition, number of grids,
   share of grids inside the band, min/median/max households, mean compactness (Polsby-Popper),
   share of grid border length along major roads, compounds split, grids across communities.
2. The same figures, on the same units and band, for
   * spopt.region.MaxPHeuristic (PySAL threshold regionalisation: a minimum, no maximum) on the
     largest subset of communities it finishes within the budget (and gridmap on that subset),
   * GerryChain's recursive_tree_part (balanced spanning-tree splits; epsilon = band half-width),
   * METIS through pymetis with contiguous parts (CARTO's territory-balancing approach).
   Peers get the whole connected unit graph (they know nothing of communities) and k = the
   number of comprehensive grids gridmap made.
3. Scaling on generated unit grids of 1k, 10k and 100k units.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.geo.crs import metric_crs_for_frame  # noqa: E402
from gridmap.geo.graph import build_graph  # noqa: E402
from gridmap.geo.partition import PartitionRules, partition  # noqa: E402
from gridmap.geo.quality import split_compounds  # noqa: E402
from gridmap.geo.synthetic import unit_grid  # noqa: E402
from gridmap.geo.units import build_units  # noqa: E402
from gridmap.services.demo import demo_dir  # noqa: E402

LO, HI = 300, 500
GERRYCHAIN_BUDGET_S = 300.0


def figures(name: str, units: gpd.GeoDataFrame, labels: np.ndarray, seconds: float, graph,
            comprehensive: np.ndarray | None = None) -> dict:
    """The same figures for any assignment ``labels`` (one label per unit)."""
    frame = pd.DataFrame({"g": labels, "h": units["households"].to_numpy(), "c": units["community_code"].to_numpy()})
    per = frame.groupby("g").agg(h=("h", "sum"), communities=("c", "nunique"))
    if comprehensive is not None:
        per = per[per.index.isin(comprehensive)]
    dissolved = gpd.GeoDataFrame({"g": labels}, geometry=units.geometry.values, crs=units.crs).dissolve("g")
    metric = dissolved.to_crs(metric_crs_for_frame(units))
    area = metric.area.to_numpy()
    perim = metric.length.to_numpy()
    compact = 4 * math.pi * area / np.maximum(perim, 1e-9) ** 2
    cross = labels[graph.left] != labels[graph.right]
    border = graph.length_m[cross].sum()
    along = (graph.length_m[cross] * graph.major_share[cross]).sum()
    split = len(split_compounds(units.assign(grid_code=labels.astype(str)), HI)) if "compound_id" in units else 0
    return {"method": name, "seconds": round(seconds, 2), "grids": int(len(per)),
            "in_band": f"{per['h'].between(LO, HI).mean():.1%}", "min": int(per["h"].min()),
            "median": float(per["h"].median()), "max": int(per["h"].max()),
            "compactness": round(float(compact.mean()), 3),
            "border_on_major_roads": f"{along / border:.1%}" if border else "n/a",
            "compounds_split": split, "grids_across_communities": int((per["communities"] > 1).sum())}


def run_gridmap(units, roads, graph):
    started = time.perf_counter()
    result = partition(units, roads=roads)
    seconds = time.perf_counter() - started
    codes = result.units["grid_code"].to_numpy()
    comp = result.grids.loc[result.grids["kind"] == "comprehensive", "grid_code"].to_numpy()
    return figures("gridmap", units, codes, seconds, graph, comp), int(len(comp))


def largest_component(units: gpd.GeoDataFrame, graph) -> np.ndarray:
    labels = graph.components()
    main = np.bincount(labels).argmax()
    return np.flatnonzero(labels == main)


def run_metis(units, graph, k):
    import pymetis

    adjacency = [[] for _ in range(graph.n)]
    for a, b in zip(graph.left, graph.right):
        adjacency[a].append(int(b))
        adjacency[b].append(int(a))
    options = pymetis.Options(contig=True)
    started = time.perf_counter()
    _, parts = pymetis.part_graph(k, adjacency=adjacency, vweights=[int(max(h, 0)) + 1 for h in units["households"]],
                                  options=options)
    seconds = time.perf_counter() - started
    return figures("METIS (pymetis, contig)", units, np.asarray(parts), seconds, graph)


def run_gerrychain(units, graph, k):
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.tree import recursive_tree_part

    g = nx.Graph()
    for i, h in enumerate(units["households"]):
        g.add_node(i, households=int(h))
    g.add_edges_from(zip(graph.left.tolist(), graph.right.tolist()))
    total = units["households"].sum()
    g = Graph.from_networkx(g)
    started = time.perf_counter()
    # in a worker process with a time cap: on lumpy units it can retry for tens of minutes
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(1)
    try:
        job = pool.apply_async(recursive_tree_part, (g, range(k), total / k, "households", (HI - LO) / (HI + LO)))
        assignment = job.get(timeout=GERRYCHAIN_BUDGET_S)
    except multiprocessing.TimeoutError as exc:
        raise RuntimeError(f"no partition within {GERRYCHAIN_BUDGET_S:.0f} s") from exc
    finally:
        pool.terminate()
    seconds = time.perf_counter() - started
    labels = np.array([assignment[i] for i in range(graph.n)])
    return figures("GerryChain recursive_tree_part", units, labels, seconds, graph)


def run_maxp(units, graph, budget: float, roads):
    """MaxPHeuristic on growing subsets of whole communities until one exceeds the budget."""
    import libpysal
    from spopt.region import MaxPHeuristic

    communities = units["community_code"].drop_duplicates().tolist()
    best = None
    n_comm = 1
    while n_comm <= len(communities):
        subset = units[units["community_code"].isin(communities[:n_comm])].reset_index(drop=True)
        sub_graph = build_graph(subset, roads=roads, major_classes=PartitionRules().major_road_classes,
                                group_column=None)
        keep = largest_component(subset, sub_graph)
        subset = subset.iloc[keep].reset_index(drop=True)
        sub_graph = build_graph(subset, roads=roads, major_classes=PartitionRules().major_road_classes,
                                group_column=None)
        neighbours = {i: [] for i in range(len(subset))}
        for a, b in zip(sub_graph.left, sub_graph.right):
            neighbours[int(a)].append(int(b))
            neighbours[int(b)].append(int(a))
        w = libpysal.weights.W(neighbours, silence_warnings=True)
        gdf = subset.assign(hh=subset["households"].astype(float))
        started = time.perf_counter()
        model = MaxPHeuristic(gdf, w, ["hh"], "hh", LO, top_n=2, max_iterations_construction=20)
        model.solve()
        seconds = time.perf_counter() - started
        labels = np.asarray(model.labels_)
        ours_started = time.perf_counter()
        ours = partition(subset, roads=roads)
        ours_seconds = time.perf_counter() - ours_started
        comp = ours.grids.loc[ours.grids["kind"] == "comprehensive", "grid_code"].to_numpy()
        best = (n_comm, len(subset), figures("spopt MaxPHeuristic", subset, labels, seconds, sub_graph),
                figures("gridmap (same subset)", subset, ours.units["grid_code"].to_numpy(), ours_seconds,
                        sub_graph, comp))
        print(f"  MaxP on {n_comm} communities / {len(subset)} units: {seconds:.1f} s", flush=True)
        if seconds * 4 > budget:  # the next (doubled) subset would not finish in the budget
            break
        n_comm *= 2
    return best


def scaling() -> None:
    print("\n## Scaling on generated unit grids")
    rows = []
    for n in (1_000, 10_000, 100_000):
        units = unit_grid(n, seed=1)
        started = time.perf_counter()
        result = partition(units)
        seconds = time.perf_counter() - started
        rows.append((len(units), seconds, result.report["summary"]["in_band_share"]))
        print(f"  {len(units):>7} units: {seconds:6.1f} s  ({len(result.grids)} grids, "
              f"{result.report['summary']['in_band_share']:.1%} in band)", flush=True)
    (n1, t1, _), (n3, t3, _) = rows[0], rows[-1]
    print(f"  growth exponent (time ~ n^b): b = {math.log(t3 / t1) / math.log(n3 / n1):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--maxp-budget", type=float, default=300.0)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    folder = demo_dir() / "reykjavik"
    layers = {p.stem: gpd.read_parquet(p) for p in folder.glob("*.parquet")}
    started = time.perf_counter()
    units = build_units(layers["communities"], layers["roads"], layers["buildings"], waterways=layers["waterways"],
                        railways=layers["railways"], compounds=layers["residential_areas"], sites=layers["sites"])
    print(f"## Reykjavík: {len(units)} units built in {time.perf_counter() - started:.1f} s "
          f"({units['households'].sum()} households, 72 communities)")
    roads = layers["roads"]
    graph = build_graph(units, roads=roads, major_classes=PartitionRules().major_road_classes)
    ours, k = run_gridmap(units, roads, graph)
    rows = [ours]
    # peers: the largest connected piece of the unit graph, ignoring communities
    peer_graph_full = build_graph(units, roads=roads, major_classes=PartitionRules().major_road_classes,
                                  group_column=None)
    keep = largest_component(units, peer_graph_full)
    peer_units = units.iloc[keep].reset_index(drop=True)
    peer_graph = build_graph(peer_units, roads=roads, major_classes=PartitionRules().major_road_classes,
                             group_column=None)
    k_peer = max(int(round(peer_units["households"].sum() / ((LO + HI) / 2))), 1)
    print(f"peers: largest connected piece, {len(peer_units)} units, k = {k_peer}")
    ours_peer_started = time.perf_counter()
    ours_peer = partition(peer_units, roads=roads)
    rows.append(figures("gridmap (peer units)", peer_units, ours_peer.units["grid_code"].to_numpy(),
                        time.perf_counter() - ours_peer_started, peer_graph,
                        ours_peer.grids.loc[ours_peer.grids["kind"] == "comprehensive", "grid_code"].to_numpy()))
    for runner in (run_metis, run_gerrychain):
        try:
            rows.append(runner(peer_units, peer_graph, k_peer))
        except Exception as exc:  # a peer that fails is reported, not hidden
            rows.append({"method": runner.__name__, "error": f"{type(exc).__name__}: {exc}"})
    maxp = run_maxp(units, graph, args.maxp_budget, roads)
    pd.set_option("display.width", 250)
    print("\n## Same units, same band [300, 500]")
    print(pd.DataFrame(rows).to_string(index=False))
    if maxp:
        n_comm, n_units, theirs, ours_sub = maxp
        print(f"\n## MaxPHeuristic (minimum only) on the largest subset it finishes: {n_comm} communities, {n_units} units")
        print(pd.DataFrame([theirs, ours_sub]).to_string(index=False))
    if not args.skip_scaling:
        scaling()


if __name__ == "__main__":
    main()
