"""Local repair of a bisected piece: where the household band is still missed after
:mod:`gridmap.geo.bisection`, move units between neighbouring grids, merge grids, re-cut small
neighbourhoods and re-share pairs of grids exhaustively.

Bisection cuts one tree edge at a time and cannot undo a cut, so a piece can end with grids just
outside the band that a small local change would fix. Three repairs, each kept only when it lowers
the total band violation and leaves every grid contiguous, run in this order on every piece:

1. :func:`refine`: single boundary units move to a neighbouring grid, or two neighbouring grids
   merge (a piece may need fewer grids than planned);
2. :func:`recut_neighbourhoods`: a grid outside the band and its neighbours are pooled and cut
   again with a re-chosen grid count (escapes the local optima single moves get stuck in);
3. :func:`exact_pairs`: a grid outside the band and one neighbour are re-shared in every possible
   way when together they hold few inhabited units (:func:`best_pair_split`), which catches a unit
   that can only move across an empty connector unit;
4. :func:`exact_regions`: a grid still outside the band, with the grids around it, is divided
   again by the exact search of :mod:`gridmap.geo.exact` when they hold few units (first it and
   its neighbours, then the whole piece), or where that search runs out of steps by an integer
   programme (:mod:`gridmap.geo.band_milp`): where a division in the band exists, it is found.

A plan here is a list of ``parts``: arrays of global unit indices, one per grid.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gridmap.geo import band
from gridmap.geo.bisection import Cutter, subgraph
from gridmap.geo.band_milp import MILP_MAX_UNITS, MILP_REPAIR_NODES
from gridmap.geo.band_milp import band_division as milp_division
from gridmap.geo.exact import EXACT_MAX_UNITS, Division, local_edges, region_division
from gridmap.geo.graph import UnitGraph, is_connected, reachable

if TYPE_CHECKING:  # partition imports this module; the rules are only read here
    from gridmap.geo.partition import PartitionRules

REPAIR_SEARCH_STEPS = 30_000
"""The exact search's step budget inside the partition (the report's proofs get the full one)."""
PIECE_MAX_UNITS = 120
"""A whole piece (a community's part) is searched exactly, as the last step, up to this many units."""
PIECE_SEARCH_STEPS = 100_000
"""The step budget of that whole-piece search (about 1 s): on 雨城区 a piece of 66 units whose
miss bisection and local repair could not mend needed 30,000–100,000 steps."""
MISSES_STEPS_SHARE = 3
"""A search for a division with fewer misses (:func:`fewer_misses`) gets 1 / this of a region's
steps: allowing misses multiplies the divisions to try, and on the two generated Chinese-pattern
districts (1,722 such searches in their grids and micro-grids, 2026-12-05) every one that found a
division found it within a third of the steps, while the three that ran out of them took 2.3 of
the 3.2 s all of them took; on Reykjavík's largest piece one such search was half the labels'
time."""

EXACT_PAIR_MAX_INHABITED = 12
"""A grid outside the band and one neighbour are re-split exhaustively when together they hold
at most this many inhabited units (2^11 = 2,048 ways to share them)."""


# -- shared steps -----------------------------------------------------------------------------------
def part_labels(n: int, parts: list[np.ndarray]) -> np.ndarray:
    """The index of its part for each of the ``n`` units (-1 for units in no part)."""
    part_of = np.full(n, -1, dtype=np.int64)
    for p, nodes in enumerate(parts):
        part_of[nodes] = p
    return part_of


def part_totals(parts: list[np.ndarray], households: np.ndarray) -> np.ndarray:
    """Households per part."""
    return np.array([households[nodes].sum() for nodes in parts], dtype=float)


def band_violation_of(parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules) -> float:
    """Total households by which the parts miss the band: the one measure every repair lowers."""
    totals = np.array([households[p].sum() for p in parts], dtype=float)
    return float(band.violation(totals, rules.min_households, rules.max_households).sum())


def touching_parts(graph: UnitGraph, part_of: np.ndarray, nodes: np.ndarray) -> set[int]:
    """Parts on either end of the edges that leave ``nodes``: their own part(s) and every part
    sharing a border with them."""
    mine = np.zeros(graph.n, dtype=bool)
    mine[nodes] = True
    touch = mine[graph.left] ^ mine[graph.right]
    ends = np.concatenate([part_of[graph.left[touch]], part_of[graph.right[touch]]])
    return {int(x) for x in ends if x >= 0}


# -- 1. single moves and merges -------------------------------------------------------------------
def refine(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules,
           max_moves: int = 2000) -> list[np.ndarray]:
    """Move single boundary units between neighbouring grids of one piece while that reduces the
    total band violation and keeps both grids contiguous (a local search after bisection). Each
    round takes the best merge of two neighbouring grids when it beats every single move, else the
    best single move that is new and leaves its grid contiguous; it stops in the band, when no
    move helps, or after ``max_moves`` rounds."""
    if len(parts) < 2:
        return parts
    lo, hi = rules.min_households, rules.max_households
    part_of = part_labels(graph.n, parts)
    in_piece = part_of >= 0
    edges = in_piece[graph.left] & in_piece[graph.right]
    left, right = graph.left[edges], graph.right[edges]
    totals = part_totals(parts, households)
    tried: set[tuple[int, int]] = set()
    for _ in range(max_moves):
        if band.violation(totals, lo, hi).sum() == 0:
            break
        unit, src, dst, delta = boundary_moves(part_of, left, right, totals, households, lo, hi)
        merge = best_merge(part_of, left, right, totals, lo, hi)
        if merge is not None and merge[0] < 0 and merge[0] < delta.min(initial=0.0):
            _, a, b = merge
            part_of[part_of == b] = a
            totals[a] += totals[b]
            totals[b] = 0.0
            continue
        move = first_contiguous_move(graph, part_of, unit, src, dst, delta, tried)
        if move is None:
            break
        u, a, b = move
        part_of[u] = b
        totals[a] -= households[u]
        totals[b] += households[u]
    return [np.flatnonzero(part_of == p) for p in range(len(parts)) if (part_of == p).any()]


def boundary_moves(part_of: np.ndarray, left: np.ndarray, right: np.ndarray, totals: np.ndarray,
                   households: np.ndarray, lo: float, hi: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every single-unit move across a border between parts (each such edge offers two: the left
    unit to the right part and the right unit to the left part): the unit, its part, the part it
    would join, and the change in band violation (negative = better)."""
    pl, pr = part_of[left], part_of[right]
    cross = pl != pr
    unit = np.concatenate([left[cross], right[cross]])
    src = np.concatenate([pl[cross], pr[cross]])
    dst = np.concatenate([pr[cross], pl[cross]])
    h = households[unit]
    delta = (band.violation(totals[src] - h, lo, hi) + band.violation(totals[dst] + h, lo, hi)
             - band.violation(totals[src], lo, hi) - band.violation(totals[dst], lo, hi))
    return unit, src, dst, delta


def best_merge(part_of: np.ndarray, left: np.ndarray, right: np.ndarray, totals: np.ndarray, lo: float,
               hi: float) -> tuple[float, int, int] | None:
    """The merge of two neighbouring parts that lowers the band violation most: ``(change, kept
    part, merged part)``, or None when no two parts touch."""
    pl, pr = part_of[left], part_of[right]
    cross = pl != pr
    pairs = np.unique(np.sort(np.column_stack([pl[cross], pr[cross]]), axis=1), axis=0)
    if not len(pairs):
        return None
    merge_delta = (band.violation(totals[pairs[:, 0]] + totals[pairs[:, 1]], lo, hi)
                   - band.violation(totals[pairs[:, 0]], lo, hi) - band.violation(totals[pairs[:, 1]], lo, hi))
    i = int(np.argmin(merge_delta))
    return merge_delta[i], int(pairs[i, 0]), int(pairs[i, 1])


def first_contiguous_move(graph: UnitGraph, part_of: np.ndarray, unit: np.ndarray, src: np.ndarray,
                          dst: np.ndarray, delta: np.ndarray, tried: set[tuple[int, int]]
                          ) -> tuple[int, int, int] | None:
    """The improving move (best first) not tried before whose unit's part stays non-empty and
    contiguous without it: ``(unit, from part, to part)``, or None. Every move examined is added
    to ``tried``, so a unit is never offered to the same part twice."""
    for i in np.argsort(delta, kind="stable"):
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
        return u, a, b
    return None


# -- 2. re-cutting neighbourhoods ------------------------------------------------------------------
def recut_neighbourhoods(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules,
                         cutter: Cutter, edge_weight: np.ndarray, rounds: int = 4) -> list[np.ndarray]:
    """Re-cut neighbourhoods around grids that miss the band: a grid and its neighbours are
    pooled, their grid count re-chosen, re-split and refined; kept only if the band violation
    drops. Escapes the local optima single-unit moves get stuck in (a unit reachable only
    through an empty connector block, say). Worst grids first; a grid takes part in one re-cut
    per round; up to ``rounds`` rounds, while any re-cut helps."""
    lo, hi = rules.min_households, rules.max_households
    tried: set[tuple[int, ...]] = set()  # each region (its units) is re-cut at most once
    for _ in range(rounds):
        improved = False
        part_of = part_labels(graph.n, parts)
        totals = part_totals(parts, households)
        bad = np.flatnonzero(band.violation(totals, lo, hi) > 0)
        done: set[int] = set()
        for p in bad[np.argsort(-band.violation(totals[bad], lo, hi))]:
            if p in done:
                continue
            group = sorted({q for q in touching_parts(graph, part_of, parts[p]) if q not in done} | {p})
            before = float(band.violation(totals[group], lo, hi).sum())
            region = np.sort(np.concatenate([parts[q] for q in group]))
            key = tuple(region.tolist())
            if key in tried or before <= least_violation(households[region], lo, hi):
                continue  # cut before, or no cut of it can do better
            tried.add(key)
            score, recut = recut_region(graph, region, households, rules, cutter, edge_weight)
            if score < before:
                for q in group:
                    parts[q] = np.empty(0, dtype=np.int64)
                parts.extend(recut)
                done.update(group)
                improved = True
        parts = [nodes for nodes in parts if len(nodes)]
        if not improved:
            break
    return parts


def least_violation(households: np.ndarray, lo: float, hi: float) -> float:
    """A lower bound of the band violation of any division of units with these ``households`` into
    grids: each unit above ``hi`` misses by its excess in whatever grid holds it, and ``k`` grids
    holding ``total`` households miss by at least ``k·lo − total`` or ``total − k·hi`` (the best
    ``k``). A re-cut cannot beat a region already at this bound, so it is not tried: on districts
    whose units are nearly grid-sized (high-rise compounds), most grids outside the band are
    there for one of these two reasons, and re-cutting them again and again took most of the
    partition's time.

    >>> least_violation(np.array([620.0, 100.0]), 300, 500)
    120.0
    >>> least_violation(np.array([350.0, 350.0]), 300, 500)
    0.0
    """
    households = np.asarray(households, dtype=float)
    total = float(households.sum())
    intrinsic = float(np.maximum(households - hi, 0).sum())
    k_low = max(math.floor(total / hi), 1)
    by_count = min(max(k * lo - total, total - k * hi, 0.0) for k in (k_low, k_low + 1))
    return max(intrinsic, by_count)


def recut_region(graph: UnitGraph, region: np.ndarray, households: np.ndarray, rules: PartitionRules,
                 cutter: Cutter, edge_weight: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The best cut of ``region`` (bisection then :func:`refine`) over the grid count closest to
    the target and its feasible neighbours: ``(band violation, parts)``."""
    total = households[region].sum()
    k, _, _ = band.choose_grid_count(total, rules.min_households, rules.max_households, rules.target_households)
    best = None
    for k_try in dict.fromkeys([k, *band.candidate_counts(total, rules.min_households, rules.max_households, k)]):
        trial = refine(graph, cutter.split(subgraph(graph, region, edge_weight), k_try), households, rules)
        score = band_violation_of(trial, households, rules)
        if best is None or score < best[0]:
            best = (score, trial)
    return best


# -- 3. exhaustive pair splits -----------------------------------------------------------------------
def exact_pairs(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray,
                rules: PartitionRules) -> list[np.ndarray]:
    """For each grid outside the band, try every way of sharing the inhabited units of it and one
    neighbouring grid between two grids (when there are few), realising each way with the empty
    connector units given to one side or the other; keep a split that lowers the band violation
    and leaves both grids contiguous. Catches the cases bisection and single moves miss, where
    the only fix moves a unit across an empty connector. One pair changes per pass; passes repeat
    (at most once per grid) while a pair changes."""
    lo, hi = rules.min_households, rules.max_households
    for _ in range(len(parts)):
        totals = part_totals(parts, households)
        bad = np.flatnonzero(band.violation(totals, lo, hi) > 0)
        part_of = part_labels(graph.n, parts)
        changed = False
        for p in bad:
            for q in sorted(touching_parts(graph, part_of, parts[p]) - {int(p)}):
                pool = np.concatenate([parts[p], parts[q]])
                inhabited = pool[households[pool] > 0]
                if len(inhabited) > EXACT_PAIR_MAX_INHABITED or len(inhabited) < 2:
                    continue
                before = float(band.violation(totals[[p, q]], lo, hi).sum())
                found = best_pair_split(graph, pool, inhabited, households, lo, hi, before)
                if found is not None:
                    parts[p], parts[q] = found
                    changed = True
                    break
            if changed:
                break
        if not changed:
            break
    return parts


def exact_regions(graph: UnitGraph, parts: list[np.ndarray], households: np.ndarray, rules: PartitionRules,
                  max_units: int = EXACT_MAX_UNITS, piece_max_units: int = PIECE_MAX_UNITS) -> list[np.ndarray]:
    """For each grid outside the band (worst first), the smallest region around it that the exact
    search divides in the band: the grid and its neighbouring grids (at most ``max_units`` units,
    ``REPAIR_SEARCH_STEPS``), then the whole piece (at most ``piece_max_units``, with the larger
    ``PIECE_SEARCH_STEPS``: lumpy pieces where bisection and local repair fail are divisible more
    often than not); a region divided replaces its grids (every new grid in the band,
    contiguous). Where the search runs out of steps on a region of at most
    :data:`~gridmap.geo.band_milp.MILP_MAX_UNITS` units, the integer programme is asked
    (:func:`programme_division`). Where no division in the band exists, one with fewer grids
    outside it (none further out than the worst before) replaces them (:func:`fewer_misses`).
    Each region is searched once."""
    lo, hi = rules.min_households, rules.max_households
    attempted: set[tuple[int, ...]] = set()
    while True:
        totals = part_totals(parts, households)
        bad = np.flatnonzero(band.violation(totals, lo, hi) > 0)
        part_of = part_labels(graph.n, parts)
        replaced = False
        for p in bad[np.argsort(-band.violation(totals[bad], lo, hi))]:
            for group, limit, steps in ((sorted(touching_parts(graph, part_of, parts[p]) | {int(p)}), max_units,
                                         REPAIR_SEARCH_STEPS),
                                        (list(range(len(parts))), max(max_units, piece_max_units), PIECE_SEARCH_STEPS)):
                region = np.sort(np.concatenate([parts[q] for q in group]))
                key = tuple(region.tolist())
                if len(region) > limit or key in attempted:
                    continue
                attempted.add(key)
                found = region_division(region, graph.left, graph.right, households, lo, hi, budget=steps)
                if not found.complete and len(region) <= MILP_MAX_UNITS:  # the search ran out of steps
                    found = programme_division(graph, region, households, lo, hi)
                if found.impossible:
                    found = fewer_misses(graph, region, totals[group], households, lo, hi, steps)
                if found.groups is not None:
                    kept = [parts[q] for q in range(len(parts)) if q not in set(group)]
                    parts = kept + found.groups
                    replaced = True
                    break
            if replaced:
                break
        if not replaced:
            return parts


def programme_division(graph: UnitGraph, region: np.ndarray, households: np.ndarray, lo: float, hi: float
                       ) -> Division:
    """The integer programme's division of ``region`` in the band (:func:`gridmap.geo.band_milp.band_division`,
    :data:`~gridmap.geo.band_milp.MILP_REPAIR_NODES` nodes per group count), its groups as global
    unit indices, each checked connected and in the band (else "unknown"). Asked where the exact
    search ran out of steps: many small units (villas of 2 households beside 单元 of 46) make
    astronomically many connected sets for the search, and few constraints for the programme."""
    region, local_left, local_right = local_edges(region, graph.left, graph.right, graph.n)
    found = milp_division(households[region], local_left, local_right, lo, hi, nodes=MILP_REPAIR_NODES)
    if found.groups is None:
        return found
    groups = [region[g] for g in found.groups]
    for group in groups:
        if not lo <= households[group].sum() <= hi or not is_connected(graph, group):
            return Division(None, False)
    return Division(groups, True)


def fewer_misses(graph: UnitGraph, region: np.ndarray, totals: np.ndarray, households: np.ndarray,
                 lo: float, hi: float, steps: int) -> Division:
    """A division of ``region`` (now grids of ``totals`` households, none in the band possible)
    with fewer grids outside the band than now and none further outside it than the worst now, or
    no groups when the search finds none (or there is nothing to gain: one miss). The search gets
    ``steps // MISSES_STEPS_SHARE`` steps."""
    violations = band.violation(np.asarray(totals, dtype=float), lo, hi)
    misses = int((violations > 0).sum())
    if misses < 2:
        return Division(None, True)
    worst = float(violations.max())
    return region_division(region, graph.left, graph.right, households, lo, hi, budget=steps // MISSES_STEPS_SHARE,
                           misses=misses - 1, miss_band=(lo - worst, hi + worst))


def best_pair_split(graph: UnitGraph, pool: np.ndarray, inhabited: np.ndarray, households: np.ndarray,
                    lo: float, hi: float, before: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The contiguous split of ``pool`` into two grids with the lowest band violation below
    ``before``, over every sharing of ``inhabited`` (the first one always on side A)."""
    side_a, scores = pair_sharings(households[inhabited], float(households[pool].sum()), lo, hi)
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


def pair_sharings(h: np.ndarray, total: float, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Every way of sharing units with households ``h`` between sides A and B, the first unit
    always on side A (2^(n-1) rows of a boolean matrix, True = side A), and the band violation of
    each way for a pool of ``total`` households (the rest going to B)."""
    n = len(h)
    masks = np.arange(2 ** (n - 1), dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(n - 1)) & 1).astype(bool)
    side_a = np.column_stack([np.ones(len(masks), dtype=bool), bits])
    sums = side_a @ h
    scores = band.violation(sums, lo, hi) + band.violation(total - sums, lo, hi)
    return side_a, scores


__all__ = ["refine", "recut_neighbourhoods", "recut_region", "exact_pairs", "best_pair_split", "pair_sharings",
           "band_violation_of", "part_labels", "part_totals", "touching_parts", "boundary_moves", "best_merge",
           "first_contiguous_move", "EXACT_PAIR_MAX_INHABITED"]
