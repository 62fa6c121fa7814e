"""Partition units into grids: dedicated sites first, then balanced, contiguous, compact grids.

The rules (docs/domain.md, "Size rules"): every unit in exactly one grid; no grid crosses a community
boundary; every grid contiguous; every comprehensive grid within [min, max] households wherever
the community's totals and geometry allow it; borders along major roads preferred.

How (:func:`assign_grids`, one step per function below): inside each community, dedicated sites
become grids of their own; every remaining unit above ``max`` is a grid alone (it cannot be split
further here: ``build_units`` already split compounds by their own structure). Each connected
piece of what is left (units joined by shared borders) gets k grids, the feasible count closest to
total / target, and is cut by **recursive spanning-tree bisection** (:mod:`gridmap.geo.bisection`):
a spanning tree of the piece's adjacency graph is cut at the edge whose two sides best fit the
household split, so every grid is contiguous by construction. Tree edges are weighted so that
crossing a major road is expensive (cuts fall along major roads), with seeded jitter; several
trees are tried per cut. Where the band is still missed, local repairs
(:mod:`gridmap.geo.repair`) move units, merge grids and re-cut neighbourhoods. Pieces without
residents join a neighbouring grid. :func:`partition` adds the dissolved grids, their statistics
and codes, and the report (:mod:`gridmap.geo.report`). The result is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import band
from gridmap.geo import uninhabited as uninhabited_units
from gridmap.geo.bisection import Cutter, area_moments, subgraph
from gridmap.geo.codes import BEIJING_15, CodeScheme
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import UnitGraph, build_graph, grouped, piece_graphs
from gridmap.geo.grid_names import NAME_COLUMNS, dedicated_grid_names
from gridmap.geo.heap import with_frozen_heap
from gridmap.geo.kinds import SITE
from gridmap.geo.pieces import PieceMemo, PieceTask, seed_key
from gridmap.geo.exact import EXACT_MAX_UNITS
from gridmap.geo.repair import (
    PIECE_MAX_UNITS,
    band_violation_of,
    exact_pairs,
    exact_regions,
    recut_neighbourhoods,
    refine,
)
from gridmap.geo.report import grid_statistics, plan_report
from gridmap.geo.tasks import SERIAL, Runner, run_pieces
from gridmap.geo.roads import RoadRules


@dataclass(frozen=True)
class PartitionRules:
    """Everything a city may set differently (see docs/domain.md: sources disagree)."""

    min_households: int = 300
    max_households: int = 500
    target_households: float | None = None  # default: middle of the band
    major_road_penalty: float = 8.0
    trees_per_cut: int = 12
    compactness_weight: float = 0.05
    code_scheme: CodeScheme = field(default_factory=lambda: BEIJING_15)


@dataclass
class PartitionResult:
    """``units`` (with ``grid_code``), ``grids`` (one row per grid: a dedicated grid named after its
    institution, with its site type; :mod:`gridmap.geo.grid_names`) and ``report``."""

    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    report: dict
    flags: pd.DataFrame

    def __repr__(self) -> str:
        s = self.report["summary"]
        return (f"<PartitionResult {s['grids']} grids ({s['comprehensive']} comprehensive, {s['dedicated']} dedicated) "
                f"from {s['units']} units; {s['in_band_share']:.0%} of comprehensive grids in "
                f"[{s['min_households']}, {s['max_households']}]; {len(self.flags)} flags>")


# -- public API -----------------------------------------------------------------------------------
@dataclass
class GridAssignment:
    """The core answer of a partition, before any geometry is dissolved: the grid index of every
    unit and each grid's kind. Why a grid misses the band is the report's business
    (:mod:`gridmap.geo.report`), derived from the assignment, as for any other plan."""

    grid_of: np.ndarray
    kinds: list[str]


def assign_grids(units: gpd.GeoDataFrame, graph: UnitGraph, rules: PartitionRules, *, seed: int = 0,
                 edge_factor: np.ndarray | None = None, small_pieces_exact: bool = False,
                 runner: Runner = SERIAL, memo: PieceMemo | None = None) -> GridAssignment:
    """Which grid each unit goes to (dedicated sites, oversize units, then balanced bisection of
    every connected piece with repair), on a prepared unit graph. ``partition`` is this plus the
    dissolved grids, their statistics, codes and the report; the benchmark times it on its own
    beside METIS, which also returns labels only.

    Grids are numbered in the order they are made: dedicated sites, oversize units, then the grids
    of each piece (pieces in graph order), then any uninhabited community of its own.

    Each piece is cut on its own graph (:func:`gridmap.geo.graph.piece_graphs`), on ``runner``
    (:mod:`gridmap.geo.tasks`: here by default, or as tasks on a Dask cluster); the answer is the
    same wherever the pieces run.

    ``small_pieces_exact``: pieces small enough for the exact search skip the neighbourhood re-cuts
    and pair splits and go from bisection and single moves straight to the exact search (micro-grids:
    grids of a few dozen buildings, where this halves the time and misses no more; measured on
    雨城区's first 100 grids, 14.4 s → 7.8 s, 85.8% → 86.2% in band, compactness equal).

    ``memo`` (a :class:`PieceMemo` kept across the partitions of one run) answers the pieces it has
    cut before, unchanged, without cutting them again: the partition after a refinement at building
    grain cuts only the communities whose units changed."""
    households, kind, site_type = _unit_columns(units)
    edge_weight = _edge_weights(graph, rules, edge_factor)
    grid_of, grid_kind = _single_unit_grids(kind, site_type, graph.area_m2, households, rules)
    community = units["community_code"].to_numpy()
    labels, inhabited, uninhabited = _connected_pieces(graph, grid_of, households, community)
    unit_ids = units["unit_id"].astype(str).to_numpy() if "unit_id" in units else None
    found = [_in_id_order(members, edges, local, unit_ids) for members, edges, local in
             piece_graphs(graph, labels, inhabited)]
    pieces = [PieceTask(local, households[members], edge_weight[edges], seed_key(members, unit_ids))
              for members, edges, local in found]
    ids = [unit_ids[members] for members, _, _ in found] if unit_ids is not None else None
    cut = _cut_remembered(pieces, ids, memo if ids is not None else None, runner, rules, seed, small_pieces_exact)
    for (members, _, _), parts in zip(found, cut):
        _add_grids(grid_of, grid_kind, [members[p] for p in parts], "comprehensive")
    _join_uninhabited(graph, labels, uninhabited, grid_of, grid_kind, community)
    # units without residents go to the grid they border most (no ring round the neighbours' compounds)
    uninhabited_units.settle(graph, grid_of, np.array([k == "comprehensive" for k in grid_kind], dtype=bool),
                             households, fixed=kind == SITE, community=community)
    return GridAssignment(grid_of, grid_kind)


def _in_id_order(members: np.ndarray, edges: np.ndarray, local: UnitGraph, unit_ids: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, UnitGraph]:
    """A piece's units, edges and graph in the order of its units' ids (where units have ids): the
    cut then depends on the piece alone, not on the order its units came in."""
    if unit_ids is None:
        return members, edges, local
    order = np.argsort(unit_ids[members], kind="stable")
    graph, edge_order = local.reordered(order)
    return members[order], edges[edge_order], graph


def _cut_remembered(pieces: list[PieceTask], ids: list[np.ndarray] | None, memo: PieceMemo | None, runner: Runner,
                    rules: PartitionRules, seed: int, small_exact: bool) -> list[list[np.ndarray]]:
    """The grids of every piece: from ``memo`` where it holds the piece (``ids``: each piece's unit
    ids), else cut on ``runner`` (and kept in ``memo``)."""
    keys = [memo.key(piece, piece_ids, rules, seed, small_exact) for piece, piece_ids in zip(pieces, ids)] \
        if memo is not None and ids is not None else None
    cut: list = [memo.get(key) for key in keys] if keys else [None] * len(pieces)
    todo = [i for i, parts in enumerate(cut) if parts is None]
    fresh = run_pieces(runner, cut_pieces, [pieces[i] for i in todo], np.array([pieces[i].graph.n for i in todo]),
                       what=("pieces", "片区"), rules=rules, seed=seed, small_exact=small_exact)
    for i, parts in zip(todo, fresh):
        cut[i] = parts
        if keys:
            memo.put(keys[i], parts)
    return cut


def cut_pieces(batch: list[PieceTask], *, rules: PartitionRules, seed: int, small_exact: bool
               ) -> list[list[np.ndarray]]:
    """The grids (local unit indices) of each piece of ``batch``: the task a runner runs."""
    return [_cut_piece(task, rules, seed, small_exact) for task in batch]


def _unit_columns(units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Households, kind (default 'block') and lower-case site type (default '') of every unit."""
    households = units["households"].to_numpy(dtype=float)
    kind = units["kind"].to_numpy() if "kind" in units else np.full(len(units), "block", dtype=object)
    site_type = (units["site_type"].astype("string").str.lower().fillna("").to_numpy()
                 if "site_type" in units else np.full(len(units), "", dtype=object))
    return households, kind, site_type


def _edge_weights(graph: UnitGraph, rules: PartitionRules, edge_factor: np.ndarray | None = None) -> np.ndarray:
    """Spanning-tree weight of every graph edge: low for a long shared border between close
    centroids (units that belong together); raised by ``major_road_penalty`` times the share of
    the border that runs along a major road, so minimum spanning trees cross major roads at few
    edges and cuts fall there; multiplied by the caller's ``edge_factor`` (one per edge, > 1 =
    rather draw a grid border here)."""
    distance = np.hypot(*(graph.xy[graph.left] - graph.xy[graph.right]).T)
    edge_weight = (distance + 1.0) / (graph.length_m + 1.0) * (1.0 + rules.major_road_penalty * graph.major_share)
    if edge_factor is not None:
        if len(edge_factor) != len(graph.left):
            raise ValueError("edge_factor needs one value per graph edge")
        edge_weight = edge_weight * np.asarray(edge_factor, dtype=float)
    return edge_weight


def _add_grids(grid_of: np.ndarray, grid_kind: list[str], parts: list[np.ndarray], kind: str) -> None:
    """Make each of ``parts`` (unit indices) a new grid of ``kind``, numbered in order (in place)."""
    for members in parts:
        grid_of[members] = len(grid_kind)
        grid_kind.append(kind)


def _single_unit_grids(kind: np.ndarray, site_type: np.ndarray, area_m2: np.ndarray, households: np.ndarray,
                       rules: PartitionRules) -> tuple[np.ndarray, list[str]]:
    """The grids of one unit each: every unit of kind ``site`` (a dedicated grid: which sites
    are dedicated, by type, area and staff, is the unit rules' site policy, applied when the units
    were built, :meth:`gridmap.geo.units.UnitRules.is_dedicated`; other sites were folded into
    blocks), then every other unit above the maximum (a comprehensive grid alone: it has no
    structure left to split it by). Other units get grid -1. ``site_type`` and ``area_m2`` are
    not read: the policy is the units'."""
    dedicated = kind == SITE
    alone = ~dedicated & (households > rules.max_households)
    grid_of = np.full(len(households), -1, dtype=np.int64)
    grid_kind: list[str] = []
    _add_grids(grid_of, grid_kind, [np.array([i]) for i in np.flatnonzero(dedicated)], "dedicated")
    _add_grids(grid_of, grid_kind, [np.array([i]) for i in np.flatnonzero(alone)], "comprehensive")
    return grid_of, grid_kind


def _connected_pieces(graph: UnitGraph, grid_of: np.ndarray, households: np.ndarray, community: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The connected pieces of the units not yet in a grid (always inside one community), in graph
    order: a piece label per unit (-1 for units in a grid already), the labels of those to cut
    into grids, and those without residents that join a neighbouring grid instead (unless the
    piece is all its community has: then it is cut, into one grid)."""
    rest = grid_of < 0
    labels = graph.components(rest)
    island_count = pd.Series(labels[rest]).groupby(community[rest]).nunique()
    piece_labels = np.unique(labels[rest])
    totals = np.bincount(labels[rest], weights=households[rest], minlength=int(labels.max()) + 1)
    rest_index = np.flatnonzero(rest)
    _, at = np.unique(labels[rest_index], return_index=True)
    first = dict(zip(piece_labels.tolist(), rest_index[at].tolist()))  # each piece's smallest unit
    placed_communities = set(community[~rest])
    to_cut: list[int] = []
    uninhabited: list[int] = []
    for piece_label in piece_labels:
        own = community[first[piece_label]]
        if totals[piece_label] == 0 and (island_count.get(own, 1) > 1 or own in placed_communities):
            uninhabited.append(int(piece_label))
        else:
            to_cut.append(int(piece_label))
    return labels, np.array(to_cut, dtype=np.int64), np.array(uninhabited, dtype=np.int64)


def _cut_piece(task: PieceTask, rules: PartitionRules, seed: int, small_exact: bool = False) -> list[np.ndarray]:
    """The grids of one connected piece: the count closest to the target first, its feasible
    neighbours when lumpy units defeat it; the first plan inside the band wins, else the one
    with the least band violation, its misses then re-divided by the exact search where their
    region is small enough (:func:`gridmap.geo.repair.exact_regions`). Indices are the piece's own."""
    graph, households, edge_weight = task.graph, task.households, task.edge_weight
    members = np.arange(graph.n)
    moments = area_moments(graph)
    total = households.sum()
    k, _, _ = band.choose_grid_count(total, rules.min_households, rules.max_households, rules.target_households)
    parts = None
    for k_try in dict.fromkeys([k, *band.candidate_counts(total, rules.min_households, rules.max_households, k)]):
        attempt = _bisect_and_repair(graph, members, k_try, households, moments, edge_weight, rules,
                                     (seed, task.seed_key), quick=small_exact and len(members) <= EXACT_MAX_UNITS)
        if parts is None or band_violation_of(attempt, households, rules) < band_violation_of(parts, households, rules):
            parts = attempt
        if band_violation_of(parts, households, rules) == 0:
            return parts
    # small regions around the misses searched exactly, then the whole piece; micro-grids (small_exact:
    # hundreds of grids of atoms, each piece a grid) keep to the small regions
    return exact_regions(graph, parts, households, rules,
                         piece_max_units=EXACT_MAX_UNITS if small_exact else PIECE_MAX_UNITS)


def _bisect_and_repair(graph: UnitGraph, members: np.ndarray, k: int, households: np.ndarray, moments: np.ndarray,
                       edge_weight: np.ndarray, rules: PartitionRules, seed: tuple[int, int], quick: bool = False
                       ) -> list[np.ndarray]:
    """``k`` grids of one piece: spanning-tree bisection, then the local repairs (single moves
    only when ``quick``: the exact search that follows in :func:`_cut_piece` covers a small
    piece whole). The random stream is seeded by ``seed`` (the run's seed and the piece's
    smallest unit in the territory) and ``k``, so the result does not depend on the order in
    which pieces are processed, or where."""
    piece_seed = np.random.SeedSequence([*seed, k])  # (the run's seed, the piece's :func:`seed_key`, k)
    cutter = Cutter(households, moments, rules, np.random.default_rng(piece_seed))
    parts = refine(graph, cutter.split(subgraph(graph, members, edge_weight), k), households, rules)
    if quick:  # a small piece: the exact search after all counts is worth more than the re-cuts
        return parts
    parts = recut_neighbourhoods(graph, parts, households, rules, cutter, edge_weight)
    return exact_pairs(graph, parts, households, rules)


def _join_uninhabited(graph: UnitGraph, labels: np.ndarray, pieces: np.ndarray, grid_of: np.ndarray,
                      grid_kind: list[str], community: np.ndarray) -> None:
    """Pieces without residents (``pieces``: their labels in ``labels``) join the neighbouring
    grid they share the longest border with (in place, one after the other, so a piece may join
    through one that joined before it)."""
    if not len(pieces):
        return
    # each piece's border edges, found once: (piece label, the unit across, border length)
    ends = np.concatenate([graph.left, graph.right])
    across = np.concatenate([graph.right, graph.left])
    length = np.concatenate([graph.length_m, graph.length_m])
    leaving = labels[ends] != labels[across]
    border_of = dict(zip(pieces.tolist(), grouped(np.where(leaving, labels[ends], -1), pieces)))
    edges = len(graph.left)
    for piece, members in zip(pieces.tolist(), grouped(labels, pieces)):
        border = border_of[piece][np.argsort(border_of[piece] % edges, kind="stable")]  # in edge order
        other, lengths = across[border], length[border]
        assigned = grid_of[other] >= 0
        if assigned.any():
            totals = pd.Series(lengths[assigned]).groupby(grid_of[other][assigned]).sum()
            grid_of[members] = int(totals.idxmax())
            continue
        # an uninhabited island: it joins the nearest grid of its community (which is then made
        # of separate pieces, the one allowed exception to contiguity, and flagged as such)
        same = np.flatnonzero((community == community[members[0]]) & (grid_of >= 0))
        if len(same):
            centre = graph.xy[members].mean(axis=0)
            nearest = same[np.argmin(np.hypot(*(graph.xy[same] - centre).T))]
            grid_of[members] = grid_of[nearest]
        else:
            _add_grids(grid_of, grid_kind, [members], "comprehensive")  # an uninhabited community of its own


def with_band(rules: PartitionRules | None, min_households: int | None = None,
              max_households: int | None = None) -> PartitionRules:
    """``rules`` (default: :class:`PartitionRules`) with the band replaced where a bound is given:
    the one place an explicit ``--min``/``--max`` overrides a profile, so an explicit 300–500
    wins over any other profile band just as 250–400 does."""
    rules = rules or PartitionRules()
    changes = {k: v for k, v in (("min_households", min_households), ("max_households", max_households))
               if v is not None}
    rules = dataclasses.replace(rules, **changes) if changes else rules
    target = rules.target_households
    if target is not None and not rules.min_households <= target <= rules.max_households:
        rules = dataclasses.replace(rules, target_households=None)  # a target of another band: the new middle
    if rules.min_households <= 0 or rules.min_households > rules.max_households:
        raise ValueError(f"the household band {rules.min_households}–{rules.max_households} is not a band: "
                         "min_households must be positive and not exceed max_households")
    return rules


def partition(
    units: gpd.GeoDataFrame,
    *,
    min_households: int | None = None,
    max_households: int | None = None,
    seed: int = 0,
    roads: gpd.GeoDataFrame | None = None,
    rules: PartitionRules | None = None,
    road_rules: RoadRules | None = None,
    graph: UnitGraph | None = None,
    edge_factor: np.ndarray | None = None,
    runner: Runner = SERIAL,
    memo: PieceMemo | None = None,
) -> PartitionResult:
    """Assign every unit to a grid; see the module docstring for the method. The arguments are
    :func:`assign_units`'; this is its answer assembled (:meth:`AssignedUnits.assembled`): the
    dissolved grids, their statistics and codes, and the report.

    ``units`` needs ``unit_id, community_code, kind, households, geometry`` (as made by
    :func:`gridmap.geo.units.build_units`); ``site_type`` marks dedicated sites.

    Example
    -------
    >>> result = partition(units, min_households=300, max_households=500, seed=0)  # doctest: +SKIP
    >>> result.grids[["grid_code", "households", "compactness"]]  # doctest: +SKIP
    >>> micro = partition(units_of_one_grid, min_households=50, max_households=80)  # doctest: +SKIP
    """
    return assign_units(units, min_households=min_households, max_households=max_households, seed=seed, roads=roads,
                        rules=rules, road_rules=road_rules, graph=graph, edge_factor=edge_factor, runner=runner,
                        memo=memo).assembled()


@dataclass
class AssignedUnits:
    """A partition before its grids are dissolved: every unit's grid (``assignment``) on the unit
    graph it was cut on. A caller that may partition again (a refinement at building grain,
    :mod:`gridmap.geo.grain`) looks at :meth:`tally` and assembles only the answer it keeps: the
    dissolve and the report are a third of a partition (Reykjavík: 0.6 of 2.0 s)."""

    units: gpd.GeoDataFrame
    graph: UnitGraph
    assignment: GridAssignment
    rules: PartitionRules
    seed: int

    def tally(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The units with ``grid_code`` (the grid's number) and the grids' ``grid_code, kind,
        households``: what deciding on another round needs, without any geometry."""
        grid_of = self.assignment.grid_of
        households = self.units["households"].fillna(0).to_numpy(dtype=float)
        grids = pd.DataFrame({"grid_code": np.arange(len(self.assignment.kinds)), "kind": self.assignment.kinds,
                              "households": np.bincount(grid_of, households, minlength=len(self.assignment.kinds))})
        return self.units.assign(grid_code=grid_of), grids

    @with_frozen_heap
    def assembled(self) -> PartitionResult:
        """The grids dissolved, their statistics and codes, and the report."""
        return _assemble(self.units, self.graph, self.assignment.grid_of, self.assignment.kinds, self.rules,
                         self.seed)


@with_frozen_heap
def assign_units(
    units: gpd.GeoDataFrame,
    *,
    min_households: int | None = None,
    max_households: int | None = None,
    seed: int = 0,
    roads: gpd.GeoDataFrame | None = None,
    rules: PartitionRules | None = None,
    road_rules: RoadRules | None = None,
    graph: UnitGraph | None = None,
    edge_factor: np.ndarray | None = None,
    runner: Runner = SERIAL,
    memo: PieceMemo | None = None,
) -> AssignedUnits:
    """The grid of every unit (:func:`partition` without the assembly).

    The band is ``rules``' (300–500 by default), with ``min_households``/``max_households``
    overriding it when given. Pass ``roads`` to prefer grid borders along the major roads
    (``road_rules``). ``graph`` and ``edge_factor`` (one multiplier per graph edge, > 1 = rather
    draw a grid border here) let callers such as the merge add their own preferences. ``runner``
    says where the pieces are cut (:mod:`gridmap.geo.tasks`; ``gridmap.distributed.runner_for``
    gives a Dask cluster's): the grids are the same wherever they run. ``memo``
    (:class:`PieceMemo`) lets partitions of one run share the pieces they have in common.
    """
    rules = with_band(rules, min_households, max_households)
    for column in ("unit_id", "community_code", "households"):
        if column not in units:
            raise ValueError(f"units need a {column!r} column")
    units = units.reset_index(drop=True)
    if units["unit_id"].duplicated().any():
        raise ValueError("unit_id values must be unique")
    graph = graph or build_graph(units, major_roads=(road_rules or RoadRules()).major(roads))
    assignment = assign_grids(units, graph, rules, seed=seed, edge_factor=edge_factor, runner=runner, memo=memo)
    return AssignedUnits(units, graph, assignment, rules, seed)


def _assemble(units: gpd.GeoDataFrame, graph: UnitGraph, grid_of: np.ndarray, grid_kind: list[str],
              rules: PartitionRules, seed: int) -> PartitionResult:
    """Dissolve grids, compute their statistics, codes, the names and site types of dedicated
    grids (:mod:`gridmap.geo.grid_names`), and the report (the same function as for any stored
    plan: :func:`gridmap.geo.report.plan_report`)."""
    crs = metric_crs_for_frame(units)
    grids = grid_statistics(units, grid_of, crs)
    grids["community_code"] = units.groupby(grid_of)["community_code"].first().to_numpy()
    metric_geoms = np.asarray(grids.to_crs(crs).geometry.values, dtype=object)
    grids["kind"] = [grid_kind[g] for g in grids["_grid"]]
    centroids = shapely.centroid(metric_geoms)
    grids["grid_code"] = rules.code_scheme.assign(grids["community_code"], shapely.get_x(centroids),
                                                  shapely.get_y(centroids))
    code_of = dict(zip(grids["_grid"], grids["grid_code"]))
    out_units = units.copy()
    out_units["grid_code"] = [code_of[g] for g in grid_of]
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    grids[list(NAME_COLUMNS)] = dedicated_grid_names(grids, out_units)  # a dedicated grid: its institution's name
    report = plan_report(out_units, grids, graph, rules.min_households, rules.max_households)
    report["summary"]["seed"] = seed
    flags = pd.DataFrame(report["flags"], columns=["grid_code", "flag", "reason", "reason_zh"])
    columns = ["grid_code", "grid_name", "community_code", "kind", "site_type", "site_type_zh", "name_from",
               "households", *(["population"] if "population" in grids else []), "unit_count", "area_m2", "compactness",
               "parts", "geometry"]
    return PartitionResult(units=out_units, grids=grids[columns], report=report, flags=flags)


__all__ = ["PartitionRules", "PartitionResult", "GridAssignment", "AssignedUnits", "PieceMemo", "partition",
           "assign_units", "with_band", "assign_grids", "STORAGE_EPSG"]
