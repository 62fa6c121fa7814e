"""Partition benchmark: gridmap against the three reference methods, on the same units and band.

    .venv/bin/pip install -e .[bench]          # spopt, gerrychain, pymetis, networkx
    .venv/bin/python benchmarks/partition.py [--maxp-budget 300] [--gerrychain-budget 60]
                                             [--skip-maxp] [--skip-scaling]
    .venv/bin/python benchmarks/partition.py --units-only [--units-scaling 4,8,16,32]   # momepy (dev extras)
    .venv/bin/python benchmarks/partition.py --chinese-only [--chinese yucheng,highrise]
    .venv/bin/python benchmarks/partition.py --gerrychain-lattices 1000,3000,10000 [--lattice-budget 300]
    .venv/bin/python benchmarks/partition.py --units-in-pieces 8,16,24       # units in pieces on 2 workers
    .venv/bin/python benchmarks/partition.py --city 16,32,64,128,256 [--workers 2]   # up to a million units

0. Units: Reykjavík's build_units beside momepy.enclosures (+ a spatial join of the households) on
   the same barrier layers, in the same run (median of 3); with ``--units-scaling``, build_units and
   partition on generated territories of growing size with the fitted growth exponent.
1. Reykjavík demo (72 communities): wall time of build_units and of partition, number of grids,
   share of grids inside the band, min/median/max households, mean compactness (Polsby-Popper),
   share of grid border length along major roads, compounds split, grids across communities.
2. The same figures, on the same units and band, for
   * METIS through pymetis with contiguous parts (CARTO's territory-balancing approach) and
     GerryChain's recursive_tree_part (balanced spanning-tree splits; epsilon = band half-width)
     on the largest connected piece of the unit graph (peers know nothing of communities; k from
     the band's middle). Both return labels, so gridmap's labels (``assign_grids`` on its prepared
     graph) are timed beside them, median of 5 runs for the fast ones; the whole ``partition``
     (plus dissolved grids, statistics, codes, report) is listed too;
   * GerryChain again on the largest subset of whole communities it finishes within its budget
     (it gives up or runs for many minutes on the whole piece), with gridmap's labels there;
   * spopt.region.MaxPHeuristic (PySAL threshold regionalisation: a minimum, no maximum) on the
     largest subset of communities it finishes within the budget (and gridmap on that subset).
3. Scaling on generated unit grids of 1k, 10k and 100k units (partition), then the units scaling.
4. Chinese-pattern districts (``--chinese yucheng,highrise``; ``--chinese-only`` for this alone):
   the demo's generated 雨城区 and a generated district of ~100 high-rise communities
   (``synthetic_district.Config.highrise``), under the demo's city profile (``规则.toml``): units
   at building grain where a miss needs it (the loop ``gridmap partition`` runs), share of
   comprehensive grids in the band, misses with a territory-valid proof, the share in band where
   feasible, dedicated share, slivers, grids in pieces, invalid geometries after projection to
   the CGCS2000 Gauss-Krüger zone, micro-grids in 50–80; METIS and GerryChain on the same units.
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
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.geo.crs import metric_crs_for_frame  # noqa: E402
from gridmap.geo.graph import build_graph  # noqa: E402
from gridmap.geo.partition import PartitionRules, assign_grids, assign_units, partition  # noqa: E402
from gridmap.geo.quality import split_compounds  # noqa: E402
from gridmap.geo.roads import RoadRules  # noqa: E402
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
    return {"method": name, "seconds": round(seconds, 3), "grids": int(len(per)),
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
    grids = result.grids.set_index("grid_code")
    missing = [c for c in comp if not LO <= grids.at[c, "households"] <= HI]
    proven = set(result.flags.loc[result.flags["flag"] == "infeasible_band", "grid_code"])
    unexplained = [c for c in missing if c not in proven]
    print(f"gridmap: {len(missing)} of {len(comp)} comprehensive grids outside [{LO}, {HI}]; "
          f"{len(missing) - len(unexplained)} shown infeasible in the report, {len(unexplained)} unexplained"
          + (f": {', '.join(unexplained)}" if unexplained else ""), flush=True)
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
    runs = []
    for _ in range(5):  # median of 5, as for gridmap's labels: single runs this short are noisy
        started = time.perf_counter()
        _, parts = pymetis.part_graph(k, adjacency=adjacency, vweights=[int(max(h, 0)) + 1 for h in units["households"]],
                                      options=options)
        runs.append(time.perf_counter() - started)
    seconds = float(np.median(runs))
    return figures("METIS (pymetis, contig)", units, np.asarray(parts), seconds, graph)


def run_gerrychain(units, graph, k, budget: float = None):
    import networkx as nx
    from gerrychain import Graph
    try:  # GerryChain 1.0 moved it; the old path is a deprecated alias that cannot be pickled
        from gerrychain.partition import recursive_tree_part
    except ImportError:
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
        assignment = job.get(timeout=budget or GERRYCHAIN_BUDGET_S)
    except multiprocessing.TimeoutError as exc:
        raise RuntimeError(f"no partition within {budget or GERRYCHAIN_BUDGET_S:.0f} s") from exc
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
        sub_graph = build_graph(subset, major_roads=RoadRules().major(roads),
                                group_column=None)
        keep = largest_component(subset, sub_graph)
        subset = subset.iloc[keep].reset_index(drop=True)
        sub_graph = build_graph(subset, major_roads=RoadRules().major(roads),
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


def community_subsets(units, roads):
    """Growing subsets of whole communities (1, 2, 4, ...), each cut to its largest connected
    piece, with the peers' graph (no community borders) and gridmap's own (with them)."""
    communities = units["community_code"].drop_duplicates().tolist()
    n_comm = 1
    while n_comm <= len(communities):
        subset = units[units["community_code"].isin(communities[:n_comm])].reset_index(drop=True)
        peer = build_graph(subset, major_roads=RoadRules().major(roads), group_column=None)
        subset = subset.iloc[largest_component(subset, peer)].reset_index(drop=True)
        peer = build_graph(subset, major_roads=RoadRules().major(roads), group_column=None)
        own = build_graph(subset, major_roads=RoadRules().major(roads))
        yield n_comm, subset, peer, own
        n_comm *= 2


def labels_timed(units, graph, repeat: int = 5):
    """gridmap's labels (assign_grids) on a prepared graph, median time of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        core = assign_grids(units, graph, PartitionRules())
        runs.append(time.perf_counter() - started)
    return core, float(np.median(runs))


def run_gerrychain_subsets(units, roads, budget: float):
    """GerryChain on growing community subsets until a run fails or exceeds ``budget``: the
    largest subset it finished, beside gridmap's labels on the same units."""
    best = None
    for n_comm, subset, peer, own in community_subsets(units, roads):
        k = max(int(round(subset["households"].sum() / ((LO + HI) / 2))), 1)
        try:
            theirs = run_gerrychain(subset, peer, k, budget)
        except Exception as exc:
            print(f"  GerryChain on {n_comm} communities / {len(subset)} units, k = {k}: {type(exc).__name__}: {exc}",
                  flush=True)
            break
        core, seconds = labels_timed(subset, own)
        comprehensive = np.flatnonzero(np.array([kind == "comprehensive" for kind in core.kinds]))
        best = (n_comm, len(subset), theirs,
                figures("gridmap labels (same subset)", subset, core.grid_of, seconds, peer, comprehensive))
        print(f"  GerryChain on {n_comm} communities / {len(subset)} units, k = {k}: {theirs['seconds']:.1f} s",
              flush=True)
    return best


def barrier_frame(layers: dict) -> gpd.GeoSeries:
    """The lines build_units divides communities by (barrier road classes, waterways, railways;
    tunnels excepted; outlines of area features), as a GeoSeries in EPSG:4490."""
    from gridmap.geo.units import _lines, _not_tunnel

    roads = layers["roads"]
    parts = [_lines(roads, keep=_not_tunnel(roads) & RoadRules().is_barrier(roads))]
    parts += [_lines(layers[name], keep=_not_tunnel(layers[name])) for name in ("waterways", "railways")
              if layers.get(name) is not None and len(layers[name])]
    return gpd.GeoSeries(np.concatenate(parts), crs=4490)


def momepy_units(layers: dict) -> tuple[gpd.GeoDataFrame, float]:
    """momepy.enclosures on the same barriers, limited by the territory and divided by the
    community boundaries, plus a spatial join of the buildings' households (estimated by the same
    rule as build_units; the estimate is not timed): the enclosures and the seconds taken."""
    import momepy

    from gridmap.geo.households import estimate_households

    communities = layers["communities"].to_crs(4490)
    buildings = layers["buildings"].to_crs(4490)
    households = estimate_households(buildings).to_numpy()
    barriers = barrier_frame(layers)
    started = time.perf_counter()
    limit = gpd.GeoSeries([communities.union_all()], crs=4490)
    # community boundaries as primary barriers too (momepy 0.11's additional_barriers returns
    # overlapping enclosures here: 2.4 times the territory's area)
    lines = gpd.GeoSeries(np.concatenate([barriers.values, communities.boundary.values]), crs=4490)
    enclosures = momepy.enclosures(lines, limit=limit, clip=True)
    points = gpd.GeoDataFrame({"households": households}, geometry=buildings.representative_point(), crs=4490)
    joined = gpd.sjoin(points, enclosures[["geometry"]], predicate="within")
    enclosures["households"] = joined.groupby("index_right")["households"].sum().reindex(
        enclosures.index, fill_value=0).to_numpy()
    return enclosures, time.perf_counter() - started


def units_stage(layers: dict, repeat: int = 3) -> gpd.GeoDataFrame:
    """Reykjavík's units: build_units beside momepy.enclosures (+ households join) on the same
    barrier layers, in the same run (median of ``repeat`` runs each)."""
    import shapely

    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        units = build_units(layers["communities"], layers["roads"], layers["buildings"], waterways=layers["waterways"],
                            railways=layers["railways"], compounds=layers["residential_areas"], sites=layers["sites"])
        runs.append(time.perf_counter() - started)
    theirs = [momepy_units(layers) for _ in range(repeat)]
    enclosures, _ = theirs[-1]
    rows = [{"method": "gridmap build_units", "seconds": round(float(np.median(runs)), 2), "units": len(units),
             "households": int(units["households"].sum()),
             "clean_coverage": bool(shapely.coverage_is_valid(units.geometry.values)),
             "note": "compounds and sites whole, oversize split by buildings, slivers merged"},
            {"method": "momepy.enclosures + households join", "seconds": round(float(np.median([s for _, s in theirs])), 2),
             "units": len(enclosures), "households": int(enclosures["households"].sum()),
             "clean_coverage": bool(shapely.coverage_is_valid(enclosures.geometry.values)),
             "note": "blocks between barriers only"}]
    print("## Units: Reykjavík, same barrier layers (median of %d runs)" % repeat)
    print(pd.DataFrame(rows).to_string(index=False), flush=True)
    return units


def fitted_exponent(sizes, seconds) -> float:
    """b of time ~ a·n^b, least squares on the logarithms."""
    return float(np.polyfit(np.log(np.asarray(sizes, dtype=float)), np.log(np.asarray(seconds, dtype=float)), 1)[0])


def units_scaling(sides: list[int]) -> None:
    """build_units and partition on generated territories (synthetic.centreline_layout: side ×
    side communities with borders on road centre lines), the fitted growth exponent of each and of
    both together, and of n·log n over the same sizes for comparison."""
    from gridmap.geo.synthetic import centreline_layout

    print("\n## Scaling: units built and partitioned on generated territories")
    rows = []
    for side in sides:
        layout = centreline_layout(1, nx=side, ny=side)
        started = time.perf_counter()
        units = build_units(layout.communities, layout.roads, layout.buildings)
        built = time.perf_counter() - started
        started = time.perf_counter()
        result = partition(units, roads=layout.roads)
        parted = time.perf_counter() - started
        rows.append((len(units), built, parted))
        print(f"  {side * side:>6} communities, {len(layout.buildings):>8} buildings: {len(units):>8} units built in "
              f"{built:7.1f} s, partitioned in {parted:7.1f} s ({len(result.grids)} grids, "
              f"{result.report['summary']['in_band_share']:.1%} in band)", flush=True)
    if len(rows) >= 2:
        n = np.array([r[0] for r in rows], dtype=float)
        nlogn = fitted_exponent(n, n * np.log(n))
        print(f"  growth exponent (time ~ n^b): build b = {fitted_exponent(n, [r[1] for r in rows]):.2f}, "
              f"partition b = {fitted_exponent(n, [r[2] for r in rows]):.2f}, "
              f"both b = {fitted_exponent(n, [r[1] + r[2] for r in rows]):.2f} "
              f"(n log n over these sizes: b = {nlogn:.2f})")


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


def chinese_district(which: str, gerrychain_budget: float) -> None:
    """Section 4 for one generated district (see the module docstring)."""
    import shapely

    from gridmap.geo import synthetic_district as sd
    from gridmap.geo.crs import gk3_zone_crs
    from gridmap.geo.fields import map_fields
    from gridmap.geo.grain import partition_at_building_grain
    from gridmap.geo.microgrids import divide
    from gridmap.geo.profile import Profile

    config = {"yucheng": sd.Config(), "highrise": sd.Config.highrise()}[which]
    district = sd.generate(config=config)
    profile = Profile.from_toml((Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng" / "规则.toml")
                                .read_text(encoding="utf-8"))
    layers = {name: map_fields(frame)[0] for name, frame in district.layers().items()}
    lo, hi = profile.band
    print(f"\n## Chinese-pattern district '{which}': {len(layers['communities'])} communities, "
          f"{len(layers['buildings']):,} buildings, {int(layers['buildings']['households'].sum()):,} households "
          f"(profile {profile.name}, band {lo}-{hi}, micro-grids {profile.micro_band[0]}-{profile.micro_band[1]})",
          flush=True)
    refined: set[str] = set()

    def build(codes: frozenset[str] = frozenset()) -> gpd.GeoDataFrame:
        refined.update(codes)  # a community once at building grain stays there, as in the store
        return build_units(layers["communities"][["code", "name", "geometry"]], layers["roads"], layers["buildings"],
                           waterways=layers["rivers"], compounds=layers["compounds"], sites=layers["facilities"],
                           rules=profile.units, road_rules=profile.roads, atomize=frozenset(refined))

    def run(units: gpd.GeoDataFrame, memo):
        return assign_units(units, roads=layers["roads"], rules=profile.partition, road_rules=profile.roads, memo=memo)

    started = time.perf_counter()
    coarse = build()
    units_s = time.perf_counter() - started
    result = partition_at_building_grain(coarse, run, build, lo, hi).assembled()
    total_s = time.perf_counter() - started
    grids, units = result.grids, result.units
    comp = grids[grids["kind"] == "comprehensive"]
    inside = comp["households"].between(lo, hi)
    flags = result.flags
    proven = set(flags.loc[flags["flag"] == "infeasible_band", "grid_code"])
    misses = comp[~inside]
    n_proven = int(misses["grid_code"].isin(proven).sum())
    islands = set(flags.loc[flags["flag"] == "island", "grid_code"])
    in_pieces = grids[(grids["parts"] > 1) & ~grids["grid_code"].isin(islands)]
    lon = float(shapely.get_x(shapely.centroid(shapely.union_all(layers["communities"].geometry.values))))
    gk = gk3_zone_crs(lon)
    started = time.perf_counter()
    micro = divide(grids, layers["buildings"], band=profile.micro_band, rules=profile.partition)
    micro_s = time.perf_counter() - started
    mg = micro.microgrids
    m_in = mg["households"].between(*profile.micro_band)
    m_proven = (set(micro.flags.loc[micro.flags["flag"].isin(["infeasible_band", "building_above_max"]),
                                    "microgrid_code"]) if len(micro.flags) else set())
    invalid = {name: int((~frame.to_crs(gk).is_valid).sum())
               for name, frame in (("units", units), ("grids", grids), ("micro-grids", mg))}
    print(f"units: {len(coarse):,} built in {units_s:.1f} s; {len(refined)} communities rebuilt at building grain "
          f"-> {len(units):,} units; units + partition + refinement {total_s:.1f} s")
    print(f"comprehensive grids in [{lo}, {hi}]: {int(inside.sum())} of {len(comp)} ({inside.mean():.1%}); "
          f"{len(misses)} misses, {n_proven} with a territory-valid proof (infeasible_band), "
          f"{len(misses) - n_proven} without; in band where feasible: "
          f"{int(inside.sum()) / max(len(comp) - n_proven, 1):.1%}")
    print(f"dedicated grids: {int((grids['kind'] == 'dedicated').sum())} of {len(grids)} "
          f"({result.report['summary']['dedicated_share']:.1%}); units under {profile.units.min_unit_area_m2:.0f} m²: "
          f"{int((units['area_m2'] < profile.units.min_unit_area_m2).sum())}; grids in pieces (not islands): "
          f"{len(in_pieces)}; invalid after projection to EPSG:{gk.to_epsg()}: {invalid}")
    metric = comp.to_crs(gk)
    pp = 4 * np.pi * metric.area.to_numpy() / metric.length.to_numpy() ** 2  # Polsby-Popper, in the GK zone
    print(f"compactness of comprehensive grids (Polsby-Popper): min {pp.min():.3f}, 10th percentile "
          f"{np.percentile(pp, 10):.3f}, median {np.median(pp):.3f}; under 0.15: {int((pp < 0.15).sum())}")
    m_proven_misses = int(mg.loc[~m_in, "microgrid_code"].isin(m_proven).sum())
    print(f"micro-grids: {int(m_in.sum())} of {len(mg)} in {tuple(profile.micro_band)} ({m_in.mean():.1%}); "
          f"{int((~m_in).sum())} misses, {m_proven_misses} proven (a 单元 or building alone outside the band, or "
          f"no division of the grid's 单元 into the band); in band where feasible: "
          f"{int(m_in.sum()) / max(len(mg) - m_proven_misses, 1):.1%}; "
          f"in pieces: {int((mg['parts'] > 1).sum())}; {micro_s:.1f} s", flush=True)
    major = profile.roads.major(layers["roads"])
    graph = build_graph(units, major_roads=major, group_column=None)
    peer_units = units.iloc[largest_component(units, graph)].reset_index(drop=True)
    peer_graph = build_graph(peer_units, major_roads=major, group_column=None)
    k_peer = max(int(round(peer_units["households"].sum() / ((lo + hi) / 2))), 1)
    rows = [figures("gridmap (units, partition, refinement)", units, units["grid_code"].to_numpy(), total_s,
                    build_graph(units, major_roads=major), comp["grid_code"].to_numpy())]
    for runner, extra in ((run_metis, {}), (run_gerrychain, {"budget": gerrychain_budget})):
        try:
            rows.append(runner(peer_units, peer_graph, k_peer, **extra))
        except Exception as exc:  # a peer that fails is reported, not hidden
            rows.append({"method": runner.__name__, "error": f"{type(exc).__name__}: {exc}"})
    print(f"peers on the largest connected piece of the same units ({len(peer_units):,} units, k = {k_peer}; "
          "they know nothing of communities):")
    print(pd.DataFrame(rows).to_string(index=False))


def gerrychain_lattices(sizes: list[int], budget: float) -> None:
    """GerryChain's recursive_tree_part beside gridmap's labels on generated lattices of one
    community each (synthetic.unit_grid: rectangles, lognormal households of 20 on average, so
    about 20 units a grid; with 80, five units a grid, GerryChain finds no balanced cut at all,
    even at 1,000 units: "Could not find a possible cut after 100000 attempts"), same graph, same k and
    band tolerance; GerryChain under ``budget`` seconds a size (in a worker process it cannot
    outlive), and the ratio of the two times where both finished."""
    print(f"\n## GerryChain on generated lattices (budget {budget:.0f} s a size)")
    rows = []
    for n in sizes:
        units = unit_grid(n, units_per_community=n, seed=2, mean_households=20.0)  # about 20 units a grid
        graph = build_graph(units)
        k = max(int(round(units["households"].sum() / ((LO + HI) / 2))), 1)
        core, core_s = labels_timed(units, graph, repeat=3)
        comprehensive = np.flatnonzero([kind == "comprehensive" for kind in core.kinds])
        ours = figures("gridmap labels", units, core.grid_of, core_s, graph, comprehensive)
        try:
            theirs = run_gerrychain(units, graph, k, budget=budget)
            ratio = f"{theirs['seconds'] / core_s:.0f}x"
        except Exception as exc:  # no answer within the budget (or an error): reported, not hidden
            theirs = {"method": "GerryChain recursive_tree_part", "error": f"{type(exc).__name__}: {exc}"}
            ratio = f"> {budget / core_s:.0f}x" if "within" in str(exc) else "n/a"
        rows.append({"units": len(units), "k": k, "gridmap s": ours["seconds"], "gridmap in band": ours["in_band"],
                     "GerryChain s": theirs.get("seconds", theirs.get("error")),
                     "GerryChain in band": theirs.get("in_band", ""), "GerryChain / gridmap": ratio})
        print(f"  {rows[-1]}", flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


def units_in_pieces(sides: list[int]) -> None:
    """A generated territory's units built serially and in pieces on a LocalCluster of 2 worker
    processes (:mod:`gridmap.geo.unit_pieces`), in the same run: seconds, the same units by id,
    households, one clean coverage; growth exponents of both."""
    from gridmap.distributed import runner_for
    from gridmap.geo.synthetic import centreline_layout
    from gridmap.geo.unit_pieces import build_units_in_pieces

    print("\n## Units built in pieces on a LocalCluster of 2 workers, beside the serial build")
    rows = []
    with runner_for(0, local_workers=2) as runner:
        for side in sides:
            layout = centreline_layout(1, nx=side, ny=side)
            started = time.perf_counter()
            whole = build_units(layout.communities, layout.roads, layout.buildings)
            serial_s = time.perf_counter() - started
            started = time.perf_counter()
            pieces = build_units_in_pieces(layout.communities, layout.roads, layout.buildings, runner=runner)
            pieces_s = time.perf_counter() - started
            rows.append((len(whole), serial_s, pieces_s))
            print(f"  {side * side:>5} communities, {len(layout.buildings):>7} buildings, {len(whole):>6} units: serial "
                  f"{serial_s:6.1f} s, in pieces {pieces_s:6.1f} s ({serial_s / pieces_s:.2f}x); same units by id "
                  f"{set(whole['unit_id']) == set(pieces['unit_id'])}, households {int(whole['households'].sum())} / "
                  f"{int(pieces['households'].sum())}, one clean coverage "
                  f"{bool(shapely.coverage_is_valid(pieces.geometry.values))}", flush=True)
    if len(rows) >= 2:
        n = np.array([r[0] for r in rows], dtype=float)
        print(f"  growth exponent (time ~ n^b): serial b = {fitted_exponent(n, [r[1] for r in rows]):.2f}, "
              f"in pieces b = {fitted_exponent(n, [r[2] for r in rows]):.2f}")


class PeakMemory:
    """The largest resident memory of this process and its children together (a LocalCluster's
    workers included), sampled every ``every`` seconds on a thread while the block runs."""

    def __init__(self, every: float = 0.5):
        import threading

        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # a worker that ended between the listing and the reading
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def city_scale(sides: list[int], workers: int) -> None:
    """A generated city (synthetic.centreline_layout, side × side communities) built and partitioned
    at growing sizes, up to a million units: units built in pieces of at most
    ``unit_pieces.MAX_PIECE_BUILDINGS`` buildings (memory bounded by the piece, not the city), on a
    LocalCluster of ``workers`` processes (0: serially here), the partition's pieces on the same
    cluster. Seconds of each stage, peak memory of all processes together, the fitted growth
    exponents beside n log n's over the same sizes."""
    from gridmap.distributed import runner_for
    from gridmap.geo.synthetic import centreline_layout
    from gridmap.geo.tasks import SERIAL
    from gridmap.geo.unit_pieces import MAX_PIECE_BUILDINGS, build_units_in_pieces, piece_count

    where = f"a LocalCluster of {workers} workers" if workers else "serially, here"
    print(f"\n## A generated city built and partitioned at growing size ({where}; pieces of at most "
          f"{MAX_PIECE_BUILDINGS:,} buildings)", flush=True)
    rows = []
    for side in sides:
        started = time.perf_counter()
        layout = centreline_layout(1, nx=side, ny=side)
        made = time.perf_counter() - started
        with PeakMemory() as memory:
            context = runner_for(0, local_workers=workers) if workers else _serial(SERIAL)
            with context as runner:
                started = time.perf_counter()
                units = build_units_in_pieces(layout.communities, layout.roads, layout.buildings, runner=runner)
                built = time.perf_counter() - started
                started = time.perf_counter()
                result = partition(units, roads=layout.roads, runner=runner)
                parted = time.perf_counter() - started
        rows.append((len(units), built, parted))
        print(f"  {side * side:>6} communities, {len(layout.buildings):>9,} buildings (made in {made:5.0f} s), "
              f"{piece_count(len(layout.buildings), max(workers, 1))} pieces: {len(units):>9,} units built in "
              f"{built:7.1f} s, partitioned in {parted:7.1f} s ({len(result.grids):,} grids, "
              f"{result.report['summary']['in_band_share']:.1%} in band); peak memory {memory.peak / 1e9:.1f} GB, "
              f"one clean coverage {bool(shapely.coverage_is_valid(units.geometry.values))}", flush=True)
        del layout, units, result
    if len(rows) >= 2:
        n = np.array([r[0] for r in rows], dtype=float)
        print(f"  growth exponent (time ~ n^b): build b = {fitted_exponent(n, [r[1] for r in rows]):.2f}, "
              f"partition b = {fitted_exponent(n, [r[2] for r in rows]):.2f}, "
              f"both b = {fitted_exponent(n, [r[1] + r[2] for r in rows]):.2f} "
              f"(n log n over these sizes: b = {fitted_exponent(n, n * np.log(n)):.2f})", flush=True)


def _serial(runner):
    """``runner`` as a context manager, as runner_for gives a cluster's."""
    from contextlib import nullcontext

    return nullcontext(runner)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--maxp-budget", type=float, default=300.0)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-maxp", action="store_true", help="leave out MaxPHeuristic (minutes)")
    parser.add_argument("--units-only", action="store_true", help="only the units stage (and its scaling)")
    parser.add_argument("--units-scaling", default="4,8,16,32",
                        help="sides of the generated territories (side x side communities) for the units scaling; "
                             "'' to skip")
    parser.add_argument("--gerrychain-budget", type=float, default=60.0, help="seconds per GerryChain subset run")
    parser.add_argument("--chinese", default="yucheng,highrise",
                        help="generated Chinese-pattern districts for section 4 ('' to skip)")
    parser.add_argument("--chinese-only", action="store_true", help="only section 4")
    parser.add_argument("--gerrychain-lattices", default="",
                        help="only GerryChain beside gridmap on generated lattices of these sizes (e.g. 1000,3000,10000)")
    parser.add_argument("--lattice-budget", type=float, default=300.0, help="seconds for GerryChain per lattice")
    parser.add_argument("--units-in-pieces", default="",
                        help="only build_units serially beside build_units_in_pieces on a LocalCluster of 2 workers, "
                             "on generated territories of these sides (e.g. 8,16,24)")
    parser.add_argument("--city", default="",
                        help="only a generated city built and partitioned at these sides (side x side communities; "
                             "256: a million units), units in bounded pieces (e.g. 16,32,64,128,256)")
    parser.add_argument("--workers", type=int, default=2,
                        help="with --city: LocalCluster workers (0: serially in this process)")
    args = parser.parse_args()
    if args.city:
        city_scale([int(n) for n in args.city.split(",")], args.workers)
        return
    if args.units_in_pieces:
        units_in_pieces([int(n) for n in args.units_in_pieces.split(",")])
        return
    if args.gerrychain_lattices:
        gerrychain_lattices([int(n) for n in args.gerrychain_lattices.split(",")], args.lattice_budget)
        return
    if args.chinese_only:
        for which in filter(None, args.chinese.split(",")):
            chinese_district(which, args.gerrychain_budget)
        return
    folder = demo_dir() / "reykjavik"
    layers = {p.stem: gpd.read_parquet(p) for p in folder.glob("*.parquet")}
    units = units_stage(layers)
    if args.units_only:
        if args.units_scaling:
            units_scaling([int(side) for side in args.units_scaling.split(",")])
        return
    roads = layers["roads"]
    graph = build_graph(units, major_roads=RoadRules().major(roads))
    ours, k = run_gridmap(units, roads, graph)
    rows = [ours]
    # peers: the largest connected piece of the unit graph, ignoring communities
    peer_graph_full = build_graph(units, major_roads=RoadRules().major(roads),
                                  group_column=None)
    keep = largest_component(units, peer_graph_full)
    peer_units = units.iloc[keep].reset_index(drop=True)
    peer_graph = build_graph(peer_units, major_roads=RoadRules().major(roads),
                             group_column=None)
    k_peer = max(int(round(peer_units["households"].sum() / ((LO + HI) / 2))), 1)
    print(f"peers: largest connected piece, {len(peer_units)} units, k = {k_peer}")
    # gridmap gets its unit graph prepared too (its own: no edges across communities), as the
    # peers get theirs; first the labels alone (what METIS and GerryChain return), then the whole
    # product (dissolved grids, statistics, codes, report)
    ours_graph = build_graph(peer_units, major_roads=RoadRules().major(roads))
    core, core_s = labels_timed(peer_units, ours_graph)
    comprehensive = np.array([kind == "comprehensive" for kind in core.kinds])
    rows.append(figures("gridmap labels (assign_grids)", peer_units, core.grid_of, core_s, peer_graph,
                        np.flatnonzero(comprehensive)))
    ours_peer_started = time.perf_counter()
    ours_peer = partition(peer_units, graph=ours_graph)
    rows.append(figures("gridmap partition (+ grids, codes, report)", peer_units, ours_peer.units["grid_code"].to_numpy(),
                        time.perf_counter() - ours_peer_started, peer_graph,
                        ours_peer.grids.loc[ours_peer.grids["kind"] == "comprehensive", "grid_code"].to_numpy()))
    for runner in (run_metis, run_gerrychain):
        try:
            rows.append(runner(peer_units, peer_graph, k_peer))
        except Exception as exc:  # a peer that fails is reported, not hidden
            rows.append({"method": runner.__name__, "error": f"{type(exc).__name__}: {exc}"})
    maxp = None if args.skip_maxp else run_maxp(units, graph, args.maxp_budget, roads)
    gerry = run_gerrychain_subsets(units, roads, args.gerrychain_budget)
    pd.set_option("display.width", 250)
    print("\n## Same units, same band [300, 500]")
    print(pd.DataFrame(rows).to_string(index=False))
    timing = {row["method"]: row.get("seconds") for row in rows}
    labels_s = timing.get("gridmap labels (assign_grids)")
    for peer in ("METIS (pymetis, contig)", "GerryChain recursive_tree_part"):
        if labels_s and timing.get(peer) == timing.get(peer):  # not NaN
            if timing.get(peer):
                print(f"   gridmap labels take {labels_s / timing[peer]:.1f}x the time of {peer}; "
                      f"{peer} takes {timing[peer] / labels_s:.1f}x gridmap's")
    if maxp:
        n_comm, n_units, theirs, ours_sub = maxp
        print(f"\n## MaxPHeuristic (minimum only) on the largest subset it finishes: {n_comm} communities, {n_units} units")
        print(pd.DataFrame([theirs, ours_sub]).to_string(index=False))
    if gerry:
        n_comm, n_units, theirs, ours_sub = gerry
        print(f"\n## GerryChain recursive_tree_part on the largest subset it finishes within "
              f"{args.gerrychain_budget:.0f} s: {n_comm} communities, {n_units} units")
        print(pd.DataFrame([theirs, ours_sub]).to_string(index=False))
        print(f"   GerryChain takes {theirs['seconds'] / max(ours_sub['seconds'], 1e-9):,.0f}x the time of gridmap's labels")
    if maxp:
        print(f"   MaxPHeuristic takes {maxp[2]['seconds'] / max(maxp[3]['seconds'], 1e-9):,.0f}x the time of "
              "gridmap's whole partition (graph, labels, grids, report)")
    for which in filter(None, args.chinese.split(",")):
        chinese_district(which, args.gerrychain_budget)
    if not args.skip_scaling:
        scaling()
        if args.units_scaling:
            units_scaling([int(side) for side in args.units_scaling.split(",")])


if __name__ == "__main__":
    main()
