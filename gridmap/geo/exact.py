"""Exact search for a division of a small region into contiguous groups inside a band.

Bisection and local repair (:mod:`gridmap.geo.bisection`, :mod:`gridmap.geo.repair`) are
heuristics: on lumpy units (towers of 70–260 households, whole compounds of 300) they can leave a
grid outside the band where a division inside it exists, and the local proofs
(:mod:`gridmap.geo.proofs`) cannot always show when none does. For a region of a few dozen units
both questions have an exact answer, and :func:`band_division` finds it: a division of the
region's units into connected groups each holding ``lo``–``hi`` households, or the certainty that
there is none (the search ran to its end), or "unknown" when the step budget ran out.

The search (bit sets over the region's units, so each step is a few integer operations):

* units of no households that only connect (one neighbour, or, for a band above 0, two) are
  taken out first and put back in a neighbour's group at the end (:func:`idle_connectors`): they
  never decide whether a division exists, and a region with many of them (road slivers and
  courtyards between compounds) has astronomically many connected sets that differ only by them;
* a region splits into its connected components, each divided on its own;
* a component is feasible only if some group count ``k`` has ``k·lo ≤ total ≤ k·hi`` (a part
  with no households, or too few, can never be a group; this prunes most branches);
* otherwise its heaviest unit must be in some group: every connected set holding it and at most
  ``hi`` households is enumerated once (include/exclude branching on the frontier), and for each
  one inside the band the rest is divided recursively; regions known to fail are remembered.

With ``misses = m`` up to ``m`` groups may lie outside the band (within ``miss_band``): a
connected set holding the heaviest unit may then also close as a miss, and each component is
first searched with the fewest misses it needs, so the division found has the fewest misses
there are (among divisions whose misses lie within ``miss_band``), unless the steps ran out and
the division came from the blobs of :func:`coarse_division` (within ``m`` misses, no proof). A
complete search with none found shows that every division of the region whose misses lie within
``miss_band`` has more than ``m`` grids outside the band: the proof the report gives a plan with
``m + 1`` misses there, none further out than the band it searched with.

Used by the partition (a piece whose grids still miss the band after repair is re-divided around
its misses, then whole, and where no division is in the band, by one with fewer misses, none worse
than the worst it replaces) and by the report (the misses of a region the search shows has no
division with fewer carry that proof). Micro-grids use it the same way on buildings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_MAX_UNITS = 40
"""Regions of at most this many units are searched exactly."""
WORD_TABLES_ABOVE = 16
"""Searches over more units than this look their bit sets up 16 units at a time, not 8, once they
have taken :data:`WORD_TABLES_AFTER_STEPS` steps."""
WORD_TABLES_AFTER_STEPS = 2_000
"""About 12 ms of search: building the wider tables costs 6–11 ms for 17–40 units."""
EXACT_BUDGET = 100_000
"""Steps (connected sets examined) before a search gives up (and tries the blobs of
:func:`coarse_division` with a quarter of them, then answers 'unknown')."""


@dataclass(frozen=True)
class Division:
    """The answer of :func:`band_division`: ``groups`` (arrays of the region's local indices) when
    a division in the band exists (``complete`` is then True, whichever search found it); without
    groups, ``complete`` says whether the search ran to its end (no groups and complete: no such
    division exists; not complete: unknown)."""

    groups: list[np.ndarray] | None
    complete: bool

    @property
    def impossible(self) -> bool:
        return self.groups is None and self.complete


class _OutOfSteps(Exception):
    pass


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _byte_tables(h: list[float], neighbours: list[int]) -> tuple[list[list[float]], list[list[int]]]:
    """Per byte of a bit set over the units: for each of its 256 values, the households of the
    units it names and the union of their neighbours. Built once per search (about 256 entries per
    8 units), they turn the two operations every step needs into a lookup per byte."""
    sums, reach = [], []
    for c in range((len(h) + 7) // 8):
        s, r = [0.0] * 256, [0] * 256
        for byte in range(1, 256):
            low = byte & -byte
            i = c * 8 + low.bit_length() - 1
            rest = byte ^ low
            s[byte], r[byte] = (s[rest] + h[i], r[rest] | neighbours[i]) if i < len(h) else (s[rest], r[rest])
        sums.append(s)
        reach.append(r)
    return sums, reach


def _word_tables(sums8: list[list[float]], reach8: list[list[int]]) -> tuple[list[list[float]], list[list[int]]]:
    """The byte tables joined in pairs: per 16 units, 65,536 entries each (half the lookups per
    step, for searches long enough to pay the 6–40 ms of building them)."""
    sums, reach = [], []
    wide = len(sums8) * 8 > 63  # masks beyond int64: Python integers
    for c in range(0, len(sums8), 2):
        s_lo, r_lo = np.asarray(sums8[c]), np.asarray(reach8[c], dtype=object if wide else np.int64)
        if c + 1 < len(sums8):
            s_hi, r_hi = np.asarray(sums8[c + 1]), np.asarray(reach8[c + 1], dtype=object if wide else np.int64)
        else:
            s_hi, r_hi = np.zeros(256), np.zeros(256, dtype=object if wide else np.int64)
        sums.append(np.add.outer(s_hi, s_lo).ravel().tolist())
        reach.append([int(x) for x in np.bitwise_or.outer(r_hi, r_lo).ravel()] if wide else
                     np.bitwise_or.outer(r_hi, r_lo).ravel().tolist())
    return sums, reach


def band_division(households: np.ndarray, left: np.ndarray, right: np.ndarray, lo: float, hi: float, *,
                  budget: int = EXACT_BUDGET, misses: int = 0,
                  miss_band: tuple[float, float] = (0.0, float("inf"))) -> Division:
    """A division of the ``n = len(households)`` units (edges ``left``–``right``, local indices)
    into connected groups of ``lo``–``hi`` households each, all but at most ``misses`` of them,
    whose households stay within ``miss_band`` (by default anything). The division returned has
    the fewest misses possible: complete and none found means every division has more than
    ``misses``. Where the steps run out, the search is made once more on blobs of small units
    (:func:`coarse_division`): a division found there is returned (within ``misses``, not
    necessarily the fewest), else "unknown". See the module docstring."""
    miss_lo, miss_hi = miss_band
    n = len(households)
    if n == 0:
        return Division([], True)
    pairs = {(min(a, b), max(a, b)) for a, b in zip(np.asarray(left).tolist(), np.asarray(right).tolist()) if a != b}
    # units without households that only connect go where a neighbour goes (module docstring)
    reduced = idle_connectors(np.asarray(households, dtype=float), pairs, between=lo > 0)
    kept = reduced.kept.tolist()
    h = [float(households[i]) for i in kept]
    neighbours = [0] * len(kept)
    for a, b in reduced.pairs:
        neighbours[a] |= 1 << b
        neighbours[b] |= 1 << a

    steps = [0]
    last_parts: list = [None, [], []]  # the rest doomed() last found divisible, its parts and their households
    failed: dict[int, int] = {}  # region (bit set) -> the most misses with which it has no division
    sums, reach = _byte_tables(h, neighbours)
    # the units heaviest first (the lower index first among equals), each with its bit: a part's
    # heaviest unit is the first of these it holds (a scan, not a list of its bits and a max over them)
    heaviest_first = [(1 << i, i) for i in sorted(range(len(h)), key=lambda i: (-h[i], i))]
    SHIFT, CHUNK = 8, 0xFF

    def widen() -> None:
        """Look bit sets up 16 units at a time from here on (same answers, half the lookups): for a
        search that has run long enough to pay the tables' 6–40 ms, not for the many that end at once."""
        nonlocal sums, reach, SHIFT, CHUNK
        sums, reach = _word_tables(sums, reach)
        SHIFT, CHUNK = 16, 0xFFFF

    def total(mask: int) -> float:
        """Households of a bit set: one table lookup per byte (or word) of the mask."""
        t, c = 0.0, 0
        while mask:
            t += sums[c][mask & CHUNK]
            mask >>= SHIFT
            c += 1
        return t

    def expand(frontier: int) -> int:
        """The neighbours of every unit of a bit set: one table lookup per byte (or word)."""
        out, c = 0, 0
        while frontier:
            byte = frontier & CHUNK
            if byte:
                out |= reach[c][byte]
            frontier >>= SHIFT
            c += 1
        return out

    def feasible_total(t: float) -> bool:
        """Some group count k has k·lo <= t <= k·hi."""
        return t >= lo and math.ceil(t / hi - 1e-9) * lo <= t + 1e-9

    def components(mask: int) -> list[int]:
        out = []
        while mask:
            comp = frontier = mask & -mask
            while frontier:
                frontier = expand(frontier) & mask & ~comp
                comp |= frontier
            out.append(comp)
            mask &= ~comp
        return out

    def doomed(rest: int, free: int, room: float, spare: int) -> bool:
        """Whatever the group takes from here on (units of ``free`` and beyond, at most ``room``
        more households), the rest cannot be divided with ``spare`` misses: the parts of ``rest``
        that no unit of ``free`` reaches stay as they are, and each without a feasible total holds
        a miss; a part the group reaches keeps at least its total less ``room``, and with no
        misses to spare that remainder must be able to hold grids in the band (or be nothing)."""
        # the hot loop of the search: expand() and total() written out (a third of its time was calls)
        needed = 0
        whole, parts, weights = rest, [], []
        last_parts[0] = None  # kept only when this rest turns out divisible (below)
        while rest:
            part = frontier = rest & -rest
            while frontier:
                out, c = 0, 0
                while frontier:
                    byte = frontier & CHUNK
                    if byte:
                        out |= reach[c][byte]
                    frontier >>= SHIFT
                    c += 1
                frontier = out & rest & ~part
                part |= frontier
            rest &= ~part
            w, c, bits = 0.0, 0, part
            while bits:
                w += sums[c][bits & CHUNK]
                bits >>= SHIFT
                c += 1
            parts.append(part)
            weights.append(w)
            if part & free:
                if not spare and not can_remain(w, room):
                    return True
            elif not feasible_total(w):
                needed += 1
                if needed > spare:
                    return True
        last_parts[:] = [whole, parts, weights]  # what divide() of the same rest needs next
        return False

    def can_remain(w: float, room: float) -> bool:
        """Some remainder of a part of ``w`` households, after a group took at most ``room`` of
        them, is 0 or a feasible total (the feasible totals are the union over k of [k·lo, k·hi])."""
        least = w - room
        if least <= 0:
            return True
        k = math.ceil(least / hi - 1e-9)  # the first interval [k·lo, k·hi] reaching ``least``
        return k * lo <= w + 1e-9

    def divide(mask: int, weight: float, spare: int) -> list[int] | None:
        """Groups of ``mask`` with at most ``spare`` of them outside the band, or None."""
        if mask == 0:
            return []
        if failed.get(mask, -1) >= spare or (spare == 0 and not feasible_total(weight)):
            return None
        if last_parts[0] == mask:  # doomed() has just split it, in the same order: components(mask)
            parts, weights = last_parts[1], last_parts[2]
        else:
            parts = components(mask)
            weights = [total(c) for c in parts] if len(parts) > 1 else []
        if len(parts) == 1:
            weights = [weight]
        needed = [0 if feasible_total(w) else 1 for w in weights]  # a part of no feasible total holds a miss
        if sum(needed) > spare:
            failed[mask] = max(failed.get(mask, -1), spare)
            return None
        out: list[int] = []
        left_over = spare - sum(needed)
        for comp, w, need in sorted(zip(parts, weights, needed), key=lambda cw: cw[0].bit_count()):
            start = next(i for bit, i in heaviest_first if comp & bit)
            groups = None
            for extra in range(left_over + 1):  # the fewest misses first: parts are independent
                if failed.get(comp, -1) >= need + extra:
                    continue
                groups = grow(comp, w, 1 << start, h[start], neighbours[start] & comp, 0, need + extra)
                if groups is not None:
                    left_over -= extra
                    break
                failed[comp] = max(failed.get(comp, -1), need + extra)
            if groups is None:
                failed[mask] = max(failed.get(mask, -1), spare)
                return None
            out.extend(groups)
        return out

    def grow(mask: int, mask_weight: float, group: int, weight: float, frontier: int, banned: int, spare: int
             ) -> list[int] | None:
        steps[0] += 1
        if steps[0] > budget:
            raise _OutOfSteps
        if steps[0] == WORD_TABLES_AFTER_STEPS and len(h) > WORD_TABLES_ABOVE:
            widen()
        if doomed(mask & ~group, frontier & ~banned, (max(hi, miss_hi) if spare else hi) - weight, spare):
            return None
        if lo <= weight <= hi:
            rest = divide(mask & ~group, mask_weight - weight, spare)
            if rest is not None:
                return [group, *rest]
        elif spare and miss_lo <= weight <= miss_hi:  # the group closed as one of the misses allowed
            rest = divide(mask & ~group, mask_weight - weight, spare - 1)
            if rest is not None:
                return [group, *rest]
        frontier &= ~banned
        while frontier:
            low = frontier & -frontier
            v = low.bit_length() - 1
            frontier ^= low
            if weight + h[v] <= (max(hi, miss_hi) if spare else hi):
                found = grow(mask, mask_weight, group | low, weight + h[v],
                             (frontier | (neighbours[v] & mask)) & ~group & ~low, banned, spare)
                if found is not None:
                    return found
            banned |= low  # the sets holding v were all enumerated above
        return None

    try:
        groups = divide((1 << len(kept)) - 1, float(sum(h)), misses)
    except _OutOfSteps:
        return coarse_division(np.asarray(households, dtype=float), np.asarray(left), np.asarray(right), lo, hi,
                               budget=budget, misses=misses, miss_band=miss_band)
    if groups is None:
        return Division(None, True)
    return Division(reduced.groups([np.array(_bits(mask), dtype=np.int64) for mask in groups], n), True)


COARSE_SHARE_OF_SLACK = 0.5
"""Neighbouring units are joined into blobs of at most this share of the band's width (hi − lo)
for :func:`coarse_division` (a unit heavier than that stays a blob of its own)."""
COARSE_BUDGET_SHARE = 4
"""The blobs' search gets the budget divided by this: a search that ran out of steps costs at
most a quarter more (the blobs are few; on 雨城区's grid of villas it took no measurable time)."""


def coarse_division(households: np.ndarray, left: np.ndarray, right: np.ndarray, lo: float, hi: float, *,
                    budget: int = EXACT_BUDGET, misses: int = 0,
                    miss_band: tuple[float, float] = (0.0, float("inf"))) -> Division:
    """A division found where :func:`band_division` ran out of steps: neighbouring small units
    joined into blobs of at most :data:`COARSE_SHARE_OF_SLACK` of the band's width (edge by edge,
    the edges sorted by their lower end, then their higher), and the blobs searched with
    ``budget // COARSE_BUDGET_SHARE`` steps. A region of many small units (a grid of villas of 2
    households beside towers whose 单元 hold 38–46) has astronomically many connected sets that
    differ only by a villa; of blobs, few. Any division of the blobs is one of the units (a blob is
    connected); none found proves nothing, so the answer is then "unknown" (``complete`` False),
    and a division found need not have the fewest misses there are. Measured on 雨城区's grid of
    38 atoms with 4 micro-grids outside 50–80 (2026-12-06): the search on the atoms, allowed 3
    misses, was still looking after 1,000,000 steps (11 s); on its 17 blobs it found a division
    with 3 in no time."""
    n = len(households)
    root = list(range(n))
    weight = [float(x) for x in households]

    def find(a: int) -> int:
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    cap = (hi - lo) * COARSE_SHARE_OF_SLACK
    low, high = np.minimum(left, right), np.maximum(left, right)
    for e in np.lexsort((high, low)).tolist():
        a, b = find(int(left[e])), find(int(right[e]))
        if a != b and weight[a] + weight[b] <= cap:
            root[b] = a
            weight[a] += weight[b]
    _, blob = np.unique([find(i) for i in range(n)], return_inverse=True)
    blob = blob.astype(np.int64)
    count = int(blob.max()) + 1 if n else 0
    if count == n:
        return Division(None, False)  # nothing joined: the same search, already out of steps
    across = blob[left] != blob[right]
    found = band_division(np.bincount(blob, weights=households, minlength=count), blob[left][across],
                          blob[right][across], lo, hi, budget=max(budget // COARSE_BUDGET_SHARE, 1), misses=misses,
                          miss_band=miss_band)
    if found.groups is None:
        return Division(None, False)
    return Division([np.flatnonzero(np.isin(blob, group)) for group in found.groups], True)


def local_edges(region: np.ndarray, left: np.ndarray, right: np.ndarray, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``region`` (indices into a graph of ``n`` units whose edges are ``left``–``right``), sorted,
    and the edges with both ends in it, as positions in the sorted region: what a search or the
    integer programme is given."""
    region = np.sort(np.asarray(region))
    inside = np.zeros(n, dtype=bool)
    inside[region] = True
    edges = inside[left] & inside[right]
    return region, np.searchsorted(region, left[edges]), np.searchsorted(region, right[edges])


def region_division(region: np.ndarray, left: np.ndarray, right: np.ndarray, households: np.ndarray,
                    lo: float, hi: float, *, budget: int = EXACT_BUDGET, misses: int = 0,
                    miss_band: tuple[float, float] = (0.0, float("inf"))) -> Division:
    """:func:`band_division` of ``region`` (indices into a whole graph whose edges are
    ``left``–``right`` and whose units hold ``households``): the edges inside the region, in its
    local indices. The groups come back as indices into the whole graph."""
    region, local_left, local_right = local_edges(region, left, right, len(households))
    found = band_division(households[region], local_left, local_right, lo, hi, budget=budget, misses=misses,
                          miss_band=miss_band)
    if found.groups is None:
        return found
    return Division([region[g] for g in found.groups], found.complete)


@dataclass(frozen=True)
class Reduced:
    """A region less the units that cannot decide whether it has a division (:func:`idle_connectors`):
    ``kept`` (the units left, as indices into the region, in order), ``pairs`` (their neighbour
    pairs, as positions in ``kept``, i < j) and ``removed`` (each unit taken out and the unit whose
    group it joins, in the order taken out: put back in reverse, each host is placed first)."""

    kept: np.ndarray
    pairs: list[tuple[int, int]]
    removed: list[tuple[int, int]]

    def groups(self, kept_groups: list[np.ndarray], n: int) -> list[np.ndarray]:
        """Groups of the whole region (indices into it, ``n`` units) from groups of ``kept``
        (positions in it): each unit taken out joins its host's group."""
        of_unit = np.full(n, -1, dtype=np.int64)
        for g, members in enumerate(kept_groups):
            of_unit[self.kept[members]] = g
        for unit, host in reversed(self.removed):  # the last taken out first: its host is placed
            of_unit[unit] = of_unit[host]
        return [np.flatnonzero(of_unit == g) for g in range(len(kept_groups))]


def idle_connectors(households: np.ndarray, pairs: set[tuple[int, int]], *, between: bool = True) -> Reduced:
    """The region less its units of no households with one neighbour and, when ``between`` (a band
    whose minimum is above 0), those with two (repeatedly; a unit between ``a`` and ``b`` leaves
    the pair ``a``–``b`` in its place). Neither decides whether a division into connected groups
    exists, with or without misses: a unit hanging on ``a`` goes wherever ``a`` goes; a unit
    between ``a`` and ``b`` goes with ``a`` (with both, where the pair joins them), connected to
    it, adding nothing; and a division of the region loses it the other way, its group holding an
    inhabited unit beside it (or, all empty, being a miss that only drops out). A unit with no
    neighbour stays (a region of one empty unit has no division)."""
    n = len(households)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    alive = np.ones(n, dtype=bool)
    removed: list[tuple[int, int]] = []
    most = 2 if between else 1
    queue = [v for v in range(n) if households[v] == 0]
    while queue:
        v = queue.pop()
        if not alive[v] or not 1 <= len(neighbours[v]) <= most:
            continue
        around = sorted(neighbours[v])
        for u in around:
            neighbours[u].discard(v)
        if len(around) == 2:
            a, b = around
            neighbours[a].add(b)
            neighbours[b].add(a)
        neighbours[v] = set()
        alive[v] = False
        removed.append((v, around[0]))
        queue += [u for u in around if households[u] == 0]
    kept = np.flatnonzero(alive)
    position = np.full(n, -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    kept_pairs = sorted({(int(min(position[a], position[b])), int(max(position[a], position[b])))
                         for a in kept.tolist() for b in neighbours[a]})
    return Reduced(kept, kept_pairs, removed)


__all__ = ["EXACT_MAX_UNITS", "EXACT_BUDGET", "COARSE_SHARE_OF_SLACK", "COARSE_BUDGET_SHARE", "Division", "Reduced",
           "band_division", "coarse_division", "idle_connectors", "local_edges", "region_division"]
