"""Partition units into grids: dedicated sites first, then balanced, contiguous, compact grids.

The rules (docs/domain.md, "Size rules"): every unit in exactly one grid; no grid crosses a community
boundary; every grid contiguous; every comprehensive grid within [min, max] households wherever
the community's totals and geometry allow it; borders along major roads preferred.

How: inside each community, dedicated sites become grids of their own; every remaining unit
above ``max`` is a grid alone (it cannot be split further here: ``build_units`` already split
compounds by their own structure). Each connected piece of what is left (units joined by shared
borders) gets k grids, the feasible count closest to total / target. The piece is then cut by
**recursive spanning-tree bisection**: a spanning tree of the piece's adjacency graph is cut at
the edge whose two sides best fit the household split (each side's total must allow its own
number of grids inside the band), with compactness (normalised moment of inertia) as the
tie-breaker. Removing one tree edge always leaves two connected sides, so every grid is
contiguous by construction. Trees are minimum spanning trees with edge weights that make
crossing a major road expensive (so cuts fall along major roads) plus seeded jitter; several are
tried per cut. The result is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

from gridmap.geo import band
from gridmap.geo.codes import BEIJING_15, CodeScheme
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import SMALL_GRAPH, UnitGraph, build_graph, is_connected, kruskal_preorder, reachable
from gridmap.geo.report import plan_report, polsby_popper


@dataclass(frozen=True)
class PartitionRules:
    """Everything a city may set differently (see docs/domain.md: sources disagree)."""

    min_households: int = 300
    max_households: int = 500
    target_households: float | None = None  # default: middle of the band
    dedicated_site_types: tuple[str, ...] = (
        "school", "kindergarten", "hospital", "university", "college", "townhall", "government",
        "park", "industrial", "marketplace", "commercial", "retail", "office")
    dedicated_min_area_m2: float = 5000.0
    major_road_classes: tuple[str, ...] = ("motorway", "trunk", "primary", "secondary", "motorway_link",
                                           "trunk_link", "primary_link", "secondary_link")
    road_class_column: str = "highway"
    major_road_penalty: float = 8.0
    trees_per_cut: int = 12
    compactness_weight: float = 0.05
    code_scheme: CodeScheme = field(default_factory=lambda: BEIJING_15)


@dataclass
class PartitionResult:
    """``units`` (with ``grid_code``), ``grids`` (one row per grid) and ``report``."""

    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    report: dict
    flags: pd.DataFrame

    def __repr__(self) -> str:
        s = self.report["summary"]
        return (f"<PartitionResult {s['grids']} grids ({s['comprehensive']} comprehensive, {s['dedicated']} dedicated) "
                f"from {s['units']} units; {s['in_band_share']:.0%} of comprehensive grids in "
                f"[{s['min_households']}, {s['max_households']}]; {len(self.flags)} flags>")


# -- the bisection core (pure numpy/scipy on one connected piece) ------------------------------
@dataclass
class _Piece:
    nodes: np.ndarray            # global unit indices
    rows: np.ndarray             # local edge endpoints
    cols: np.ndarray
    base_weight: np.ndarray      # per local edge


def _subgraph(graph: UnitGraph, nodes: np.ndarray, edge_weight: np.ndarray) -> _Piece:
    local = np.full(graph.n, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    ok = (local[graph.left] >= 0) & (local[graph.right] >= 0)
    return _Piece(nodes, local[graph.left[ok]], local[graph.right[ok]], edge_weight[ok])


def _tree_order(piece: _Piece, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DFS preorder and parent array of a minimum spanning tree of the piece (root: local 0).
    Nodes not reachable from the root are left out of the order (parent -9999, as scipy does)."""
    n = len(piece.nodes)
    if n > SMALL_GRAPH:
        m = sp.csr_matrix((weights, (piece.rows, piece.cols)), shape=(n, n))
        tree = minimum_spanning_tree(m)
        order, parent = depth_first_order(tree, 0, directed=False, return_predecessors=True)
        return order, parent
    return kruskal_preorder(n, piece.rows, piece.cols, weights)


def _subtree_sums(order: np.ndarray, parent: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (n × c) over each node's subtree; the last column returned is the
    subtree size.

    In DFS preorder a subtree is a contiguous run starting at its root, so once subtree sizes are
    known (one pass over the tree, children before parents) every sum is a difference of prefix
    sums. Cheaper than any sparse solve for the many small trees bisection builds.
    """
    n = len(order)
    size = [1] * n
    par = parent.tolist()
    for v in reversed(order.tolist()[1:]):
        size[par[v]] += size[v]
    size_arr = np.asarray(size, dtype=np.int64)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    prefix = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order].astype(float), axis=0)])
    sums = prefix[position + size_arr] - prefix[position]
    return np.column_stack([sums, size_arr])


def _inertia(sums: np.ndarray) -> np.ndarray:
    """Normalised moment of inertia from sums of (a, a·x, a·y, a·(x²+y²)); 1 for a disc."""
    a, ax, ay, axx = sums[..., 0], sums[..., 1], sums[..., 2], sums[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        moment = axx - (ax * ax + ay * ay) / a
        return np.where(a > 0, moment / (a * a / (2 * math.pi)), 1.0)


@dataclass
class _Cutter:
    households: np.ndarray
    geo: np.ndarray              # per unit: a, a·x, a·y, a·(x²+y²)
    rules: PartitionRules
    rng: np.random.Generator

    def band_range(self, total: float, k_side: int, k_other: int) -> tuple[float, float]:
        lo = max(k_side * self.rules.min_households, total - k_other * self.rules.max_households)
        hi = min(k_side * self.rules.max_households, total - k_other * self.rules.min_households)
        return lo, hi

    def split(self, piece: _Piece, k: int) -> list[np.ndarray]:
        if k <= 1 or len(piece.nodes) <= 1:
            return [piece.nodes]
        k1 = k // 2
        k2 = k - k1
        h = self.households[piece.nodes]
        total = float(h.sum())
        values = np.column_stack([h, self.geo[piece.nodes]])
        best = None
        for attempt in range(self.rules.trees_per_cut):
            jitter = 1.0 + (self.rng.random(len(piece.base_weight)) if attempt else 0.0)
            order, parent = _tree_order(piece, piece.base_weight * jitter)
            if len(order) < len(piece.nodes):
                break  # not connected (cannot happen for a component); keep what we have
            sums = _subtree_sums(order, parent, values)
            candidates = order[1:]
            s_h = sums[candidates, 0]
            s_geo = sums[candidates, 1:5]
            rest_geo = sums[order[0], 1:5] - s_geo
            compact = _inertia(s_geo) + _inertia(rest_geo)
            for k_sub, k_rest in ((k1, k2), (k2, k1)) if k1 != k2 else ((k1, k2),):
                lo, hi = self.band_range(total, k_sub, k_rest)
                target = total * k_sub / k
                violation = np.maximum(lo - s_h, 0) + np.maximum(s_h - hi, 0)
                imbalance = np.abs(s_h - target) / max(target, 1.0)
                score = violation * 1e3 + imbalance + self.rules.compactness_weight * compact
                i = int(np.argmin(score))
                if best is None or score[i] < best[0]:
                    best = (score[i], candidates[i], order, sums[:, -1], k_sub, k_rest, violation[i])
            if best is not None and best[6] == 0 and attempt >= 1:
                break
        _, cut, order, size, k_sub, k_rest, _ = best
        start = int(np.flatnonzero(order == cut)[0])
        mask = np.zeros(len(piece.nodes), dtype=bool)
        mask[order[start:start + int(round(size[cut]))]] = True  # a subtree is contiguous in preorder
        return (self.split(self._restrict(piece, mask), k_sub) +
                self.split(self._restrict(piece, ~mask), k_rest))

    @staticmethod
    def _restrict(piece: _Piece, mask: np.ndarray) -> _Piece:
        local = np.full(len(piece.nodes), -1, dtype=np.int64)
        local[mask] = np.arange(mask.sum())
        ok = mask[piece.rows] & mask[piece.cols]
        return _Piece(piece.nodes[mask], local[piece.rows[ok]], local[piece.cols[ok]], piece.base_weight[ok])


def _refine(graph: UnitGraph, members: np.ndarray, parts: list[np.ndarray], households: np.ndarray,
            rules: PartitionRules, max_moves: int = 2000) -> list[np.ndarray]:
    """Move single boundary units between neighbouring grids of one piece while that reduces the
    total band violation and keeps both grids contiguous (a local search after bisection)."""
    if len(parts) < 2:
        return parts
    lo, hi = rules.min_households, rules.max_households
    part_of = np.full(graph.n, -1, dtype=np.int64)
    for p, nodes in enumerate(parts):
        part_of[nodes] = p
    in_piece = part_of >= 0
    edges = in_piece[graph.left] & in_piece[graph.right]
    left, right = graph.left[edges], graph.right[edges]
    totals = np.array([households[nodes].sum() for nodes in parts], dtype=float)
    tried: set[tuple[int, int]] = set()
    for _ in range(max_moves):
        if band.violation(totals, lo, hi).sum() == 0:
            break
        pl, pr = part_of[left], part_of[right]
        cross = pl != pr
        # each boundary edge offers two moves: left unit → right part, right unit → left part
        unit = np.concatenate([left[cross], right[cross]])
        src = np.concatenate([pl[cross], pr[cross]])
        dst = np.concatenate([pr[cross], pl[cross]])
        h = households[unit]
        delta = (band.violation(totals[src] - h, lo, hi) + band.violation(totals[dst] + h, lo, hi)
                 - band.violation(totals[src], lo, hi) - band.violation(totals[dst], lo, hi))
        # merging two neighbouring grids is a move too (a piece may need fewer grids than planned)
        pairs = np.unique(np.sort(np.column_stack([pl[cross], pr[cross]]), axis=1), axis=0)
        if len(pairs):
            merge_delta = (band.violation(totals[pairs[:, 0]] + totals[pairs[:, 1]], lo, hi)
                           - band.violation(totals[pairs[:, 0]], lo, hi) - band.violation(totals[pairs[:, 1]], lo, hi))
            best_merge = int(np.argmin(merge_delta))
            if merge_delta[best_merge] < 0 and merge_delta[best_merge] < delta.min(initial=0.0):
                a, b = int(pairs[best_merge, 0]), int(pairs[best_merge, 1])
                part_of[part_of == b] = a
                totals[a] += totals[b]
                totals[b] = 0.0
                continue
        order = np.argsort(delta, kind="stable")
        moved = False
        for i in order:
            if delta[i] >= 0:
                break
            u, a, b = int(unit[i]), int(src[i]), int(dst[i])
            if (u, b) in tried:
                continue
            tried.add((u, b))
            remaining = np.flatnonzero(part_of == a)
            remaining = remaining[remaining != u]
            if len(remaining) == 0 or not is_connected(graph, remaining):
                continue
            part_of[u] = b
            totals[a] -= households[u]
            totals[b] += households[u]
            moved = True
            break
        if not moved:
            break
    return [np.flatnonzero(part_of == p) for p in range(len(parts)) if (part_of == p).any()]


EXACT_PAIR_MAX_INHABITED = 12
"""A grid outside the band and one neighbour are re-split exhaustively when together they hold
at most this many inhabited units (2^11 = 2,048 ways to share them)."""


def _exact_pairs(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray,
                 rules: PartitionRules) -> list[np.ndarray]:
    """For each grid outside the band, try every way of sharing the inhabited units of it and one
    neighbouring grid between two grids (when there are few), realising each way with the empty
    connector units given to one side or the other; keep a split that lowers the band violation
    and leaves both grids contiguous. Catches the cases bisection and single moves miss, where
    the only fix moves a unit across an empty connector."""
    lo, hi = rules.min_households, rules.max_households
    for _ in range(len(parts)):
        totals = np.array([households[nodes].sum() for nodes in parts], dtype=float)
        bad = np.flatnonzero(band.violation(totals, lo, hi) > 0)
        part_of = np.full(graph.n, -1, dtype=np.int64)
        for i, nodes in enumerate(parts):
            part_of[nodes] = i
        changed = False
        for p in bad:
            mine = np.zeros(graph.n, dtype=bool)
            mine[parts[p]] = True
            touch = mine[graph.left] ^ mine[graph.right]
            for q in sorted({int(x) for x in np.concatenate([part_of[graph.left[touch]], part_of[graph.right[touch]]])
                             if x >= 0 and x != p}):
                pool = np.concatenate([parts[p], parts[q]])
                inhabited = pool[households[pool] > 0]
                if len(inhabited) > EXACT_PAIR_MAX_INHABITED or len(inhabited) < 2:
                    continue
                before = float(band.violation(totals[[p, q]], lo, hi).sum())
                found = _best_pair_split(graph, pool, inhabited, households, lo, hi, before)
                if found is not None:
                    parts[p], parts[q] = found
                    changed = True
                    break
            if changed:
                break
        if not changed:
            break
    return parts


def _best_pair_split(graph: UnitGraph, pool: np.ndarray, inhabited: np.ndarray, households: np.ndarray,
                     lo: float, hi: float, before: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The contiguous split of ``pool`` into two grids with the lowest band violation below
    ``before``, over every sharing of ``inhabited`` (the first one always on side A)."""
    h = households[inhabited]
    total = float(households[pool].sum())
    n = len(inhabited)
    masks = np.arange(2 ** (n - 1), dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(n - 1)) & 1).astype(bool)
    side_a = np.column_stack([np.ones(len(masks), dtype=bool), bits])
    sums = side_a @ h
    scores = band.violation(sums, lo, hi) + band.violation(total - sums, lo, hi)
    in_pool = np.zeros(graph.n, dtype=bool)
    in_pool[pool] = True
    inner = in_pool[graph.left] & in_pool[graph.right]
    left, right = graph.left[inner], graph.right[inner]
    empty = in_pool & (households <= 0)
    for i in np.argsort(scores, kind="stable"):
        if scores[i] >= before:
            break
        a_units, b_units = inhabited[side_a[i]], inhabited[~side_a[i]]
        for grow_a in (True, False):
            seeds, others = (a_units, b_units) if grow_a else (b_units, a_units)
            allowed = empty.copy()
            allowed[seeds] = True
            grown = reachable(left, right, allowed, int(seeds[0]))
            if not np.isin(seeds, grown).all():
                break  # these units cannot be joined through empty units at all
            rest = pool[~np.isin(pool, grown)]
            if not len(rest) or not np.isin(others, rest).all():
                continue
            rest_mask = np.zeros(graph.n, dtype=bool)
            rest_mask[rest] = True
            if len(reachable(left, right, rest_mask, int(rest[0]))) == len(rest):
                return (grown, rest) if grow_a else (rest, grown)
    return None


def _repair(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules,
            cutter: "_Cutter", edge_weight: np.ndarray, rounds: int = 4) -> list[np.ndarray]:
    """Re-cut neighbourhoods around grids that miss the band: a grid and its neighbours are
    pooled, their grid count re-chosen, re-split and refined; kept only if the band violation
    drops. Escapes the local optima single-unit moves get stuck in (a unit reachable only
    through an empty connector block, say)."""
    lo, hi = rules.min_households, rules.max_households
    for _ in range(rounds):
        improved = False
        part_of = np.full(graph.n, -1, dtype=np.int64)
        for i, nodes in enumerate(parts):
            part_of[nodes] = i
        totals = np.array([households[nodes].sum() for nodes in parts], dtype=float)
        bad = np.flatnonzero(band.violation(totals, lo, hi) > 0)
        done: set[int] = set()
        for p in bad[np.argsort(-band.violation(totals[bad], lo, hi))]:
            if p in done:
                continue
            mine = np.zeros(graph.n, dtype=bool)
            mine[parts[p]] = True
            touch = mine[graph.left] ^ mine[graph.right]
            neighbours = set(part_of[graph.left[touch]]) | set(part_of[graph.right[touch]])
            neighbours = {q for q in neighbours if q >= 0 and q not in done} | {p}
            group = sorted(neighbours)
            region = np.concatenate([parts[q] for q in group])
            before = float(band.violation(totals[group], lo, hi).sum())
            k, _, _ = band.choose_grid_count(households[region].sum(), rules.min_households, rules.max_households, rules.target_households)
            best = None
            for k_try in dict.fromkeys([k, *band.candidate_counts(households[region].sum(), rules.min_households, rules.max_households, k)]):
                trial = _refine(graph, region, cutter.split(_subgraph(graph, region, edge_weight), k_try), households, rules)
                score = _band_violation_of(trial, households, rules)
                if best is None or score < best[0]:
                    best = (score, trial)
            if best[0] < before:
                for q in group:
                    parts[q] = np.empty(0, dtype=np.int64)
                parts.extend(best[1])
                done.update(group)
                improved = True
        parts = [nodes for nodes in parts if len(nodes)]
        if not improved:
            break
    return parts


def _band_violation_of(parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules) -> float:
    totals = np.array([households[p].sum() for p in parts], dtype=float)
    return float(band.violation(totals, rules.min_households, rules.max_households).sum())


# -- public API -----------------------------------------------------------------------------------
@dataclass
class GridAssignment:
    """The core answer of a partition, before any geometry is dissolved: the grid index of every
    unit and each grid's kind. Why a grid misses the band is the report's business
    (:mod:`gridmap.geo.report`), derived from the assignment, as for any other plan."""

    grid_of: np.ndarray
    kinds: list[str]


def assign_grids(units: gpd.GeoDataFrame, graph: UnitGraph, rules: PartitionRules, *, seed: int = 0,
                 edge_factor: np.ndarray | None = None) -> GridAssignment:
    """Which grid each unit goes to (dedicated sites, oversize units, then balanced bisection of
    every connected piece with repair), on a prepared unit graph. ``partition`` is this plus the
    dissolved grids, their statistics, codes and the report; the benchmark times it on its own
    beside METIS, which also returns labels only."""
    households = units["households"].to_numpy(dtype=float)
    kind = units["kind"].to_numpy() if "kind" in units else np.full(len(units), "block", dtype=object)
    site_type = (units["site_type"].astype("string").str.lower().fillna("").to_numpy()
                 if "site_type" in units else np.full(len(units), "", dtype=object))
    x, y = graph.xy[:, 0], graph.xy[:, 1]
    a = graph.area_m2
    geo = np.column_stack([a, a * x, a * y, a * (x * x + y * y)])
    distance = np.hypot(*(graph.xy[graph.left] - graph.xy[graph.right]).T)
    edge_weight = (distance + 1.0) / (graph.length_m + 1.0) * (1.0 + rules.major_road_penalty * graph.major_share)
    if edge_factor is not None:
        if len(edge_factor) != len(graph.left):
            raise ValueError("edge_factor needs one value per graph edge")
        edge_weight = edge_weight * np.asarray(edge_factor, dtype=float)

    dedicated = (kind == "site") & np.isin(site_type, rules.dedicated_site_types) & (a >= rules.dedicated_min_area_m2)
    alone = ~dedicated & (households > rules.max_households)
    grid_of = np.full(len(units), -1, dtype=np.int64)
    grid_kind: list[str] = []

    def new_grid(members: np.ndarray, gkind: str) -> None:
        grid_of[members] = len(grid_kind)
        grid_kind.append(gkind)

    for i in np.flatnonzero(dedicated):
        new_grid(np.array([i]), "dedicated")
    for i in np.flatnonzero(alone):
        new_grid(np.array([i]), "comprehensive")

    rest = grid_of < 0
    labels = graph.components(rest)
    community = units["community_code"].to_numpy()
    island_count = pd.Series(labels[rest]).groupby(community[rest]).nunique()
    zero_pieces: list[np.ndarray] = []
    for piece_label in np.unique(labels[rest]):
        members = np.flatnonzero(labels == piece_label)
        total = households[members].sum()
        if total == 0 and (island_count.get(community[members[0]], 1) > 1 or (grid_of[community == community[members[0]]] >= 0).any()):
            zero_pieces.append(members)  # no residents: joins a neighbouring grid afterwards
            continue
        k, _, _ = band.choose_grid_count(total, rules.min_households, rules.max_households, rules.target_households)
        parts = None
        # the count closest to the target first; its neighbours when lumpy units defeat it
        for k_try in dict.fromkeys([k, *band.candidate_counts(total, rules.min_households, rules.max_households, k)]):
            piece_seed = np.random.SeedSequence([seed, int(members.min()), k_try])
            cutter = _Cutter(households, geo, rules, np.random.default_rng(piece_seed))
            attempt = _refine(graph, members, cutter.split(_subgraph(graph, members, edge_weight), k_try),
                              households, rules)
            attempt = _repair(graph, attempt, households, rules, cutter, edge_weight)
            attempt = _exact_pairs(graph, attempt, households, rules)
            if parts is None or _band_violation_of(attempt, households, rules) < _band_violation_of(parts, households, rules):
                parts = attempt
            if _band_violation_of(parts, households, rules) == 0:
                break
        for part in parts:
            new_grid(part, "comprehensive")

    # pieces without residents join the neighbouring grid they share the longest border with
    for members in zero_pieces:
        mask = np.zeros(graph.n, dtype=bool)
        mask[members] = True
        touching = (mask[graph.left] ^ mask[graph.right])
        edges = np.flatnonzero(touching)
        other = np.where(mask[graph.left[edges]], graph.right[edges], graph.left[edges])
        assigned = grid_of[other] >= 0
        if assigned.any():
            lengths = pd.Series(graph.length_m[edges][assigned]).groupby(grid_of[other][assigned]).sum()
            grid_of[members] = int(lengths.idxmax())
            continue
        # an uninhabited island: it joins the nearest grid of its community (which is then made
        # of separate pieces, the one allowed exception to contiguity, and flagged as such)
        same = np.flatnonzero((community == community[members[0]]) & (grid_of >= 0))
        if len(same):
            centre = graph.xy[members].mean(axis=0)
            nearest = same[np.argmin(np.hypot(*(graph.xy[same] - centre).T))]
            grid_of[members] = grid_of[nearest]
        else:
            new_grid(members, "comprehensive")  # an uninhabited community of its own

    return GridAssignment(grid_of, grid_kind)


def partition(
    units: gpd.GeoDataFrame,
    *,
    min_households: int = 300,
    max_households: int = 500,
    seed: int = 0,
    roads: gpd.GeoDataFrame | None = None,
    rules: PartitionRules | None = None,
    graph: UnitGraph | None = None,
    edge_factor: np.ndarray | None = None,
) -> PartitionResult:
    """Assign every unit to a grid; see the module docstring for the method.

    ``units`` needs ``unit_id, community_code, kind, households, geometry`` (as made by
    :func:`gridmap.geo.units.build_units`); ``site_type`` marks dedicated sites. Pass ``roads``
    (with a ``highway`` column) to prefer borders along major roads. ``graph`` and
    ``edge_factor`` (one multiplier per graph edge, > 1 = rather draw a grid border here) let callers
    such as the merge add their own preferences.

    Example
    -------
    >>> result = partition(units, min_households=300, max_households=500, seed=0)  # doctest: +SKIP
    >>> result.grids[["grid_code", "households", "compactness"]]  # doctest: +SKIP
    >>> micro = partition(units_of_one_grid, min_households=50, max_households=80)  # doctest: +SKIP
    """
    if rules is None or (min_households, max_households) != (300, 500):
        rules = dataclasses.replace(rules or PartitionRules(), min_households=min_households,
                                    max_households=max_households)
    if rules.min_households > rules.max_households:
        raise ValueError("min_households must not exceed max_households")
    for column in ("unit_id", "community_code", "households"):
        if column not in units:
            raise ValueError(f"units need a {column!r} column")
    units = units.reset_index(drop=True)
    if units["unit_id"].duplicated().any():
        raise ValueError("unit_id values must be unique")
    graph = graph or build_graph(units, roads=roads, major_classes=rules.major_road_classes,
                                 road_class_column=rules.road_class_column)
    assignment = assign_grids(units, graph, rules, seed=seed, edge_factor=edge_factor)
    return _assemble(units, graph, assignment.grid_of, assignment.kinds, rules, seed)




def _assemble(units: gpd.GeoDataFrame, graph: UnitGraph, grid_of: np.ndarray, grid_kind: list[str],
              rules: PartitionRules, seed: int) -> PartitionResult:
    """Dissolve grids, compute their statistics and codes, and the report (the same function as
    for any stored plan: :func:`gridmap.geo.report.plan_report`)."""
    crs = metric_crs_for_frame(units)
    frame = units.copy()
    frame["_grid"] = grid_of
    agg = {"households": "sum", "unit_id": "count"}
    if "population" in frame:
        agg["population"] = "sum"
    stats = frame.groupby("_grid").agg(agg).rename(columns={"unit_id": "unit_count"})
    stats["area_m2"] = pd.Series(graph.area_m2).groupby(grid_of).sum()
    stats["community_code"] = frame.groupby("_grid")["community_code"].first()
    stats["geometry"] = frame.dissolve(by="_grid")["geometry"]
    grids = gpd.GeoDataFrame(stats.reset_index(), geometry="geometry", crs=units.crs)
    metric = grids.to_crs(crs)
    metric_geoms = np.asarray(metric.geometry.values, dtype=object)
    grids["compactness"] = np.round(polsby_popper(grids["area_m2"], shapely.length(metric_geoms)), 4)  # as stored
    grids["parts"] = shapely.get_num_geometries(np.asarray(grids.geometry.values, dtype=object))
    grids["kind"] = [grid_kind[g] for g in grids["_grid"]]
    centroids = shapely.centroid(metric_geoms)
    grids["grid_code"] = rules.code_scheme.assign(grids["community_code"], shapely.get_x(centroids),
                                                  shapely.get_y(centroids))
    code_of = dict(zip(grids["_grid"], grids["grid_code"]))
    out_units = units.copy()
    out_units["grid_code"] = [code_of[g] for g in grid_of]
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    report = plan_report(out_units, grids, graph, rules.min_households, rules.max_households)
    report["summary"]["seed"] = seed
    flags = pd.DataFrame(report["flags"], columns=["grid_code", "flag", "reason", "reason_zh"])
    columns = ["grid_code", "community_code", "kind", "households", *(["population"] if "population" in grids else []),
               "unit_count", "area_m2", "compactness", "parts", "geometry"]
    return PartitionResult(units=out_units, grids=grids[columns], report=report, flags=flags)


__all__ = ["PartitionRules", "PartitionResult", "GridAssignment", "partition", "assign_grids", "STORAGE_EPSG"]
