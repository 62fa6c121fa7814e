"""Partition units into grids: dedicated sites first, then balanced, contiguous, compact grids.

The rules (DOMAIN.md, "Size rules"): every unit in exactly one grid; no grid crosses a community
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
from scipy.sparse.csgraph import connected_components, depth_first_order, dijkstra, minimum_spanning_tree

from gridmap.geo.codes import BEIJING_15, CodeScheme
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import UnitGraph, build_graph


@dataclass(frozen=True)
class PartitionRules:
    """Everything a city may set differently (see DOMAIN.md: sources disagree)."""

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


SMALL_GRAPH = 300
"""Up to this many nodes (the measured crossover) spanning trees and connectivity are computed
in plain Python: bisection builds thousands of small trees, and scipy's sparse-matrix set-up costs
more per call (≈0.2 ms) than a Kruskal pass on a few hundred edges."""


def _tree_order(piece: _Piece, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DFS preorder and parent array of a minimum spanning tree of the piece (root: local 0).
    Nodes not reachable from the root are left out of the order (parent -9999, as scipy does)."""
    n = len(piece.nodes)
    if n > SMALL_GRAPH:
        m = sp.csr_matrix((weights, (piece.rows, piece.cols)), shape=(n, n))
        tree = minimum_spanning_tree(m)
        order, parent = depth_first_order(tree, 0, directed=False, return_predecessors=True)
        return order, parent
    return _kruskal_preorder(n, piece.rows, piece.cols, weights)


def _kruskal_preorder(n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal's minimum spanning tree (union-find) and an iterative DFS preorder from node 0."""
    order_of_edges = np.argsort(weights, kind="stable")
    left = rows[order_of_edges].tolist()
    right = cols[order_of_edges].tolist()
    root = list(range(n))
    adjacency: list[list[int]] = [[] for _ in range(n)]
    needed = n - 1
    for a, b in zip(left, right):
        ra = a
        while root[ra] != ra:
            root[ra] = root[root[ra]]
            ra = root[ra]
        rb = b
        while root[rb] != rb:
            root[rb] = root[root[rb]]
            rb = root[rb]
        if ra == rb:
            continue
        root[ra] = rb
        adjacency[a].append(b)
        adjacency[b].append(a)
        needed -= 1
        if needed == 0:
            break
    parent = [-9999] * n
    seen = [False] * n
    seen[0] = True
    order = []
    stack = [0]
    while stack:
        v = stack.pop()
        order.append(v)
        for w in adjacency[v]:
            if not seen[w]:
                seen[w] = True
                parent[w] = v
                stack.append(w)
    return np.asarray(order, dtype=np.int64), np.asarray(parent, dtype=np.int64)


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


def _violation(total: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.maximum(lo - total, 0) + np.maximum(total - hi, 0)


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
        if _violation(totals, lo, hi).sum() == 0:
            break
        pl, pr = part_of[left], part_of[right]
        cross = pl != pr
        # each boundary edge offers two moves: left unit → right part, right unit → left part
        unit = np.concatenate([left[cross], right[cross]])
        src = np.concatenate([pl[cross], pr[cross]])
        dst = np.concatenate([pr[cross], pl[cross]])
        h = households[unit]
        delta = (_violation(totals[src] - h, lo, hi) + _violation(totals[dst] + h, lo, hi)
                 - _violation(totals[src], lo, hi) - _violation(totals[dst], lo, hi))
        # merging two neighbouring grids is a move too (a piece may need fewer grids than planned)
        pairs = np.unique(np.sort(np.column_stack([pl[cross], pr[cross]]), axis=1), axis=0)
        if len(pairs):
            merge_delta = (_violation(totals[pairs[:, 0]] + totals[pairs[:, 1]], lo, hi)
                           - _violation(totals[pairs[:, 0]], lo, hi) - _violation(totals[pairs[:, 1]], lo, hi))
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
            if len(remaining) == 0 or not _connected(graph, remaining):
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


def _component(left: np.ndarray, right: np.ndarray, allowed: np.ndarray, start: int) -> np.ndarray:
    """Units reachable from ``start`` along the edges (left, right) through units ``allowed``."""
    ok = allowed[left] & allowed[right]
    adjacency: dict[int, list[int]] = {}
    for a, b in zip(left[ok].tolist(), right[ok].tolist()):
        adjacency.setdefault(a, []).append(b)
        adjacency.setdefault(b, []).append(a)
    seen = {start}
    stack = [start]
    while stack:
        for w in adjacency.get(stack.pop(), ()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return np.fromiter(seen, dtype=np.int64, count=len(seen))


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
        bad = np.flatnonzero(_violation(totals, lo, hi) > 0)
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
                before = float(_violation(totals[[p, q]], lo, hi).sum())
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
    scores = _violation(sums, lo, hi) + _violation(total - sums, lo, hi)
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
            grown = _component(left, right, allowed, int(seeds[0]))
            if not np.isin(seeds, grown).all():
                break  # these units cannot be joined through empty units at all
            rest = pool[~np.isin(pool, grown)]
            if not len(rest) or not np.isin(others, rest).all():
                continue
            rest_mask = np.zeros(graph.n, dtype=bool)
            rest_mask[rest] = True
            if len(_component(left, right, rest_mask, int(rest[0]))) == len(rest):
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
        bad = np.flatnonzero(_violation(totals, lo, hi) > 0)
        done: set[int] = set()
        for p in bad[np.argsort(-_violation(totals[bad], lo, hi))]:
            if p in done:
                continue
            mine = np.zeros(graph.n, dtype=bool)
            mine[parts[p]] = True
            touch = mine[graph.left] ^ mine[graph.right]
            neighbours = set(part_of[graph.left[touch]]) | set(part_of[graph.right[touch]])
            neighbours = {q for q in neighbours if q >= 0 and q not in done} | {p}
            group = sorted(neighbours)
            region = np.concatenate([parts[q] for q in group])
            before = float(_violation(totals[group], lo, hi).sum())
            k, _ = choose_grid_count(households[region].sum(), rules)
            best = None
            for k_try in dict.fromkeys([k, *candidate_counts(households[region].sum(), rules, k)]):
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
    return float(_violation(totals, rules.min_households, rules.max_households).sum())


def _connected(graph: UnitGraph, nodes: np.ndarray) -> bool:
    """Whether the units ``nodes`` are one piece along the graph (scipy for big sets, a walk otherwise)."""
    if len(nodes) <= 1:
        return True
    mask = np.zeros(graph.n, dtype=bool)
    mask[nodes] = True
    ok = mask[graph.left] & mask[graph.right]
    local = np.full(graph.n, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    if len(nodes) > SMALL_GRAPH:
        m = sp.coo_matrix((np.ones(ok.sum()), (local[graph.left[ok]], local[graph.right[ok]])),
                          shape=(len(nodes), len(nodes)))
        count, _ = connected_components(m, directed=False)
        return count == 1
    return len(_component(graph.left[ok], graph.right[ok], mask, int(nodes[0]))) == len(nodes)


def candidate_counts(total: float, rules: PartitionRules, k: int) -> list[int]:
    """Other grid counts worth trying for a piece: the feasible range around ``k``."""
    k_min = max(math.ceil(total / rules.max_households), 1)
    k_max = max(math.floor(total / rules.min_households), 1)
    return [c for c in (k - 1, k + 1, k - 2, k + 2) if k_min <= c <= k_max]


def choose_grid_count(total: float, rules: PartitionRules) -> tuple[int, str | None]:
    """Number of grids for a connected piece with ``total`` households, and why it misses the
    band when it must (None when the band can be met)."""
    lo, hi = rules.min_households, rules.max_households
    target = rules.target_households or (lo + hi) / 2
    if total < lo:
        return 1, f"total households {total:.0f} below the minimum {lo}"
    k_min = math.ceil(total / hi)
    k_max = math.floor(total / lo)
    if k_min <= k_max:
        return int(min(max(round(total / target), k_min), k_max)), None
    # no k puts every grid in the band: take the one with the smallest total violation
    def violation(k: int) -> float:
        share = total / k
        return k * (max(lo - share, 0) + max(share - hi, 0))

    k = min((k_max, k_min), key=lambda kk: (violation(kk), kk)) if k_max >= 1 else k_min
    return max(int(k), 1), (f"total households {total:.0f} cannot be divided into grids of {lo}–{hi} "
                            f"(k={k_max} gives {total / max(k_max, 1):.0f} each, k={k_min} gives {total / k_min:.0f})")


# -- public API -----------------------------------------------------------------------------------
@dataclass
class GridAssignment:
    """The core answer of a partition, before any geometry is dissolved: the grid index of every
    unit, and each grid's kind and flags (reason, text)."""

    grid_of: np.ndarray
    kinds: list[str]
    flags: list[list[tuple[str, str]]]


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
    grid_flags: list[list[tuple[str, str]]] = []

    def new_grid(members: np.ndarray, gkind: str, flags: list[tuple[str, str]]) -> None:
        grid_of[members] = len(grid_kind)
        grid_kind.append(gkind)
        grid_flags.append(flags)

    for i in np.flatnonzero(dedicated):
        new_grid(np.array([i]), "dedicated", [])
    for i in np.flatnonzero(alone):
        new_grid(np.array([i]), "comprehensive", [(
            "above_max", f"unit {units.at[i, 'unit_id']} alone has {households[i]:.0f} households "
            f"(> {rules.max_households}) and no internal structure to split it by")])

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
        k, reason = choose_grid_count(total, rules)
        parts = None
        # the count closest to the target first; its neighbours when lumpy units defeat it
        for k_try in dict.fromkeys([k, *candidate_counts(total, rules, k)]):
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
            flags = [("infeasible_band", reason)] if reason else []
            new_grid(part, "comprehensive", flags)

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
            new_grid(members, "comprehensive", [("island", "a piece without residents and no grid to join")])

    return GridAssignment(grid_of, grid_kind, grid_flags)


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
    return _assemble(units, graph, assignment.grid_of, assignment.kinds, assignment.flags, rules, seed)


def _below_min_proof(graph: UnitGraph, units: gpd.GeoDataFrame, grid_of: np.ndarray, grid: int,
                     grid_kind: list[str], rules: PartitionRules) -> str | None:
    """Why a grid below the minimum cannot be brought into the band, when that can be shown
    from one of its units ``u`` alone: any grid holding ``u`` with at least ``min`` households
    needs another inhabited unit ``w``, hence a connected path from ``u`` to ``w``; if even the
    lightest such path (households summed over its units, dedicated sites excluded) pushes the
    total above ``max``, no grid holding ``u`` is in the band. Returns the reason, or None."""
    households = units["households"].to_numpy(dtype=float)
    usable = np.array([grid_kind[g] != "dedicated" for g in grid_of])
    edges = usable[graph.left] & usable[graph.right]
    left, right = graph.left[edges], graph.right[edges]
    # entering a unit costs its households (+ a hair, since sparse graphs drop zero weights)
    rows = np.concatenate([left, right])
    cols = np.concatenate([right, left])
    directed = sp.csr_matrix((households[cols] + 1e-6, (rows, cols)), shape=(graph.n, graph.n))
    for u in np.flatnonzero(grid_of == grid):
        h_u = households[u]
        if h_u >= rules.min_households:
            continue
        reach = dijkstra(directed, indices=int(u), limit=rules.max_households - h_u + 1e-3)
        inhabited = np.isfinite(reach) & (households > 0)
        inhabited[u] = False
        if not inhabited.any():
            unit_id = units.at[int(u), "unit_id"]
            return (f"unit {unit_id} has {h_u:.0f} households (< {rules.min_households}) and every connected "
                    f"addition of another inhabited unit brings its grid above {rules.max_households}: "
                    "no grid holding it can be in the band")
    return None


def _hub_leaf_proofs(graph: UnitGraph, units: gpd.GeoDataFrame, grid_of: np.ndarray, grid_kind: list[str],
                     rules: PartitionRules) -> dict[int, str]:
    """Grids that are one small unit hanging on a connector unit, shown to be unavoidable.

    A unit below the minimum whose only usable neighbour is a hub ``a`` can reach the band only
    in the grid that holds ``a``, and one grid holds ``a``. That grid can take at most ``m`` of
    the hub's small leaves (the lightest ones, within the maximum), so at least ``leaves - m``
    of them stay alone below the band. When the plan leaves exactly that many alone, each of
    them is explained. Returns {grid index: reason}."""
    households = units["households"].to_numpy(dtype=float)
    usable = np.array([grid_kind[g] != "dedicated" for g in grid_of])
    edges = usable[graph.left] & usable[graph.right]
    ends = np.concatenate([graph.left[edges], graph.right[edges]])
    other = np.concatenate([graph.right[edges], graph.left[edges]])
    degree = np.bincount(ends, minlength=graph.n)
    grid_size = np.bincount(grid_of, minlength=len(grid_kind))
    leaf = usable & (degree == 1) & (households < rules.min_households)
    hub_of = np.full(graph.n, -1, dtype=np.int64)
    hub_of[ends[leaf[ends]]] = other[leaf[ends]]
    proofs: dict[int, str] = {}
    for hub in np.unique(hub_of[leaf]):
        leaves = np.flatnonzero(leaf & (hub_of == hub))
        if len(leaves) < 2:
            continue
        room = rules.max_households - households[hub]
        fits = int((np.cumsum(np.sort(households[leaves])) <= room).sum())
        alone = [u for u in leaves if grid_of[u] != grid_of[hub] and grid_size[grid_of[u]] == 1]
        if len(alone) != len(leaves) - fits or not alone:
            continue
        hub_id = units.at[int(hub), "unit_id"]
        for u in alone:
            proofs[int(grid_of[u])] = (
                f"unit {units.at[int(u), 'unit_id']} ({households[u]:.0f} households) hangs, with {len(leaves) - 1} "
                f"other small units, on connector unit {hub_id}: one grid holds the connector and at most {fits} of "
                f"them within {rules.max_households}, so {len(leaves) - fits} must stay alone below {rules.min_households}")
    return proofs


BAND_SPLIT_MAX_UNITS = 16
"""Regions with at most this many inhabited units get the exact 'no grouping in the band' check."""


def band_grouping_exists(households: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the inhabited units' households can be shared into groups each within [lo, hi]
    (contiguity ignored: when even this fails, no plan puts every grid in the band).

    Depth-first over the feasible grid counts, heaviest unit first, each unit into an open group
    with room (groups of equal sum are interchangeable, so only one of them is tried)."""
    values = sorted((float(v) for v in households if v > 0), reverse=True)
    total = sum(values)
    if not values:
        return True
    if values[0] > hi:
        return False
    suffix = np.cumsum(values[::-1])[::-1].tolist() + [0.0]
    for k in range(max(math.ceil(total / hi), 1), math.floor(total / lo) + 1):
        failed: set[tuple[int, tuple[float, ...]]] = set()  # states known to lead nowhere

        def place(i: int, sums: tuple[float, ...]) -> bool:
            if i == len(values):
                return all(v >= lo for v in sums)
            # the units left must be able to lift every group to the minimum
            if sum(max(lo - v, 0.0) for v in sums) > suffix[i] or (i, sums) in failed:
                return False
            for g in range(k):  # sums are kept in descending order
                if sums[g] + values[i] > hi or (g and sums[g] in sums[:g]):
                    continue  # no room, or a group of the same sum was already tried
                grown = list(sums)
                grown[g] += values[i]
                if place(i + 1, tuple(sorted(grown, reverse=True))):
                    return True
            failed.add((i, sums))
            return False

        if place(0, (0.0,) * k):
            return True
    return False


def _region_proofs(graph: UnitGraph, units: gpd.GeoDataFrame, grid_of: np.ndarray, grid_kind: list[str],
                   rules: PartitionRules, targets: list[int]) -> dict[int, str]:
    """Proofs for comprehensive grids outside the band that no local argument explains.

    The region is the connected set of non-dedicated units holding the grid (within one
    community, as the graph's edges are). Two arguments, each valid for any plan:

    * **no grouping**: the region's inhabited units cannot even be grouped (contiguity ignored)
      into groups each within the band, so some grid of the region misses it;
    * **competing for one connector**: two small units ``a`` and ``b`` cannot share a grid
      (together above the maximum), and each reaches the minimum only through the same unit
      ``c`` (without ``c``, everything ``a`` can be grouped with stays below the minimum, and
      likewise for ``b``); one grid holds ``c``, so the grid of ``a`` or of ``b`` misses the band.

    A grid is explained when the plan has exactly one grid outside the band among those the
    argument speaks of. Returns {grid index: reason}.
    """
    lo, hi = rules.min_households, rules.max_households
    households = units["households"].to_numpy(dtype=float)
    usable = np.array([grid_kind[g] != "dedicated" for g in grid_of])
    edges = usable[graph.left] & usable[graph.right]
    left, right = graph.left[edges], graph.right[edges]
    totals = np.bincount(grid_of, weights=households, minlength=len(grid_kind))
    outside = np.array([kind == "comprehensive" and not lo <= t <= hi for kind, t in zip(grid_kind, totals)])
    unit_id = units["unit_id"].to_numpy()

    def reach(start: int, allowed: np.ndarray) -> np.ndarray:
        return _component(left, right, allowed, start)

    def gates(a: int, region: np.ndarray) -> set[int]:
        """Units without which nothing grouped with ``a`` reaches the minimum."""
        allowed = np.zeros(graph.n, dtype=bool)
        allowed[region] = True
        allowed &= households + households[a] <= hi
        allowed[a] = True
        around = reach(a, allowed)
        if households[around].sum() < lo:
            return {-1}  # a can never be in the band at all
        found = set()
        for c in around:
            if c == a:
                continue
            allowed[c] = False
            if households[reach(a, allowed)].sum() < lo:
                found.add(int(c))
            allowed[c] = True
        return found

    proofs: dict[int, str] = {}
    for g in targets:
        members = np.flatnonzero(grid_of == g)
        allowed = usable.copy()
        region = reach(int(members[0]), allowed)
        grids_here = np.unique(grid_of[region])
        bad_here = [int(x) for x in grids_here if outside[x]]
        inhabited = region[households[region] > 0]
        if len(bad_here) == 1 and len(inhabited) <= BAND_SPLIT_MAX_UNITS \
                and not band_grouping_exists(households[inhabited], lo, hi):
            proofs[g] = (f"the {len(inhabited)} inhabited units of its region (the non-dedicated units joined to it) "
                         f"({', '.join(f'{v:.0f}' for v in sorted(households[inhabited], reverse=True))} households) "
                         f"cannot be grouped into grids of {lo}–{hi} households in any way: one grid must miss the band")
            continue
        small = [int(a) for a in members if 0 < households[a] < lo]
        cache: dict[int, set[int]] = {}
        for a in small:
            gates_a = cache.setdefault(a, gates(a, region))
            if gates_a == {-1}:
                proofs[g] = (f"unit {unit_id[a]} ({households[a]:.0f} households) can never be grouped to "
                             f"{lo} households without passing {hi}: no grid holding it can be in the band")
                break
            if not gates_a:
                continue
            for b in inhabited:
                b = int(b)
                if b == a or households[b] >= lo or households[a] + households[b] <= hi:
                    continue
                gates_b = cache.setdefault(b, gates(b, region))
                shared = sorted(gates_a & gates_b - {-1})
                if shared and {x for x in (grid_of[a], grid_of[b]) if outside[x]} == {g}:
                    proofs[g] = (f"units {unit_id[a]} ({households[a]:.0f} households) and {unit_id[b]} "
                                 f"({households[b]:.0f}) cannot share a grid (together above {hi}), and each "
                                 f"reaches {lo} only through unit {unit_id[shared[0]]}, which one grid holds: "
                                 "the grid of one of them must miss the band")
                    break
            if g in proofs:
                break
    return proofs


def _assemble(units: gpd.GeoDataFrame, graph: UnitGraph, grid_of: np.ndarray, grid_kind: list[str],
              grid_flags: list[list[tuple[str, str]]], rules: PartitionRules, seed: int) -> PartitionResult:
    """Dissolve grids, compute their statistics, codes, flags and the report."""
    crs = metric_crs_for_frame(units)
    frame = units.copy()
    frame["_grid"] = grid_of
    agg = {"households": "sum", "unit_id": "count"}
    if "population" in frame:
        agg["population"] = "sum"
    stats = frame.groupby("_grid").agg(agg).rename(columns={"unit_id": "unit_count"})
    stats["area_m2"] = pd.Series(graph.area_m2).groupby(grid_of).sum()
    stats["community_code"] = frame.groupby("_grid")["community_code"].first()
    geoms = frame.dissolve(by="_grid")["geometry"]
    stats["geometry"] = geoms
    grids = gpd.GeoDataFrame(stats.reset_index(), geometry="geometry", crs=units.crs)
    metric = grids.to_crs(crs)
    perimeter = shapely.length(np.asarray(metric.geometry.values, dtype=object))
    grids["compactness"] = np.where(perimeter > 0, 4 * math.pi * grids["area_m2"] / perimeter ** 2, 0.0)
    grids["kind"] = [grid_kind[g] for g in grids["_grid"]]
    centroids = shapely.centroid(np.asarray(metric.geometry.values, dtype=object))
    grids["_x"] = shapely.get_x(centroids)
    grids["_y"] = shapely.get_y(centroids)
    grids["grid_code"] = rules.code_scheme.assign(grids["community_code"], grids["_x"], grids["_y"])

    # contiguity and band flags, from the result itself (not from intentions)
    hub_proofs = _hub_leaf_proofs(graph, units, grid_of, grid_kind, rules)
    flag_rows = []
    inner = grid_of[graph.left] == grid_of[graph.right]
    links = sp.coo_matrix((np.ones(inner.sum()), (graph.left[inner], graph.right[inner])), shape=(graph.n, graph.n))
    _, piece = connected_components(links, directed=False)
    pieces_per_grid = pd.Series(piece).groupby(grid_of).nunique()
    # why a comprehensive grid misses the band: local proofs first, then the region's
    proofs: dict[int, str | None] = {}
    for g, gkind, hh in zip(grids["_grid"], grids["kind"], grids["households"]):
        given = {flag for flag, _ in grid_flags[g]}
        if gkind == "comprehensive" and not given & {"infeasible_band", "above_max"} \
                and not rules.min_households <= hh <= rules.max_households:
            proofs[int(g)] = (hub_proofs.get(g) or _below_min_proof(graph, units, grid_of, g, grid_kind, rules)
                              if hh < rules.min_households else None)
    proofs.update(_region_proofs(graph, units, grid_of, grid_kind, rules,
                                 [g for g, proof in proofs.items() if proof is None]))
    for g, code, gkind, hh in zip(grids["_grid"], grids["grid_code"], grids["kind"], grids["households"]):
        given = {flag for flag, _ in grid_flags[g]}
        flag_rows += [(code, flag, reason) for flag, reason in grid_flags[g]]
        if gkind == "comprehensive" and not given & {"infeasible_band", "above_max"}:
            proof = proofs.get(int(g))
            if proof:
                flag_rows.append((code, "infeasible_band", proof))
            elif hh < rules.min_households:
                flag_rows.append((code, "below_min", f"{hh} households < {rules.min_households}: no contiguous "
                                  "rearrangement with its neighbouring grids met the band (units too lumpy "
                                  "or joined through empty connector units)"))
            elif hh > rules.max_households:
                flag_rows.append((code, "above_max", f"{hh} households > {rules.max_households}: no contiguous "
                                  "rearrangement with its neighbouring grids met the band"))
        if pieces_per_grid[g] > 1:
            flag_rows.append((code, "not_contiguous", "made of separate pieces: its community has islands or "
                              "enclaves that join the nearest grid"))
    flags = pd.DataFrame(flag_rows, columns=["grid_code", "flag", "reason"])

    code_of = dict(zip(grids["_grid"], grids["grid_code"]))
    out_units = units.copy()
    out_units["grid_code"] = [code_of[g] for g in grid_of]
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    columns = ["grid_code", "community_code", "kind", "households", *(["population"] if "population" in grids else []),
               "unit_count", "area_m2", "compactness", "geometry"]
    grids = grids[columns]
    comp = grids[grids["kind"] == "comprehensive"]
    in_band = comp["households"].between(rules.min_households, rules.max_households)
    summary = {
        "units": int(len(units)), "grids": int(len(grids)), "comprehensive": int(len(comp)),
        "dedicated": int((grids["kind"] == "dedicated").sum()),
        "min_households": rules.min_households, "max_households": rules.max_households,
        "in_band": int(in_band.sum()), "in_band_share": float(in_band.mean()) if len(comp) else 1.0,
        "households_min": int(comp["households"].min()) if len(comp) else 0,
        "households_median": float(comp["households"].median()) if len(comp) else 0.0,
        "households_max": int(comp["households"].max()) if len(comp) else 0,
        "mean_compactness": float(grids["compactness"].mean()) if len(grids) else 0.0,
        "seed": seed, "flags": flags["flag"].value_counts().to_dict(),
    }
    report = {"summary": summary, "flags": flags.to_dict(orient="records")}
    return PartitionResult(units=out_units, grids=grids, report=report, flags=flags)


__all__ = ["PartitionRules", "PartitionResult", "GridAssignment", "partition", "assign_grids", "choose_grid_count", "STORAGE_EPSG"]
