"""A region's units divided into connected groups inside a band, or shown to have no such division, as a mixed-integer
programme (HiGHS, through ``scipy.optimize.milp``): the second opinion of the exact search
(:mod:`gridmap.geo.exact`) where that search runs out of steps.

The search enumerates connected sets, and a region with many units of (nearly) no households —
road slivers and courtyards between whole compounds, the connectors of a high-rise district —
has astronomically many of them that differ only by those connectors. On the generated high-rise
district, two regions of 40 units stayed "unknown" after 10 million steps (77 s) of it; the
programme below shows in 2.5–7.7 s that neither has a division in the band.

For each number of groups ``k`` with ``k·lo ≤ total ≤ k·hi``: binary ``x[i,g]`` (unit ``i`` in
group ``g``; every unit in one group), ``lo ≤ Σ h_i x[i,g] ≤ hi``, and each group connected by the
single-commodity flow of Shirabe (2005): one root ``r[i,g]`` per group, flow on an arc only
between two units of the group, every unit of the group other than the root taking in one unit
of flow more than it sends on. The heaviest unit is put in group 0 (the groups are
interchangeable: numbered in the order of their heaviest unit, the j-th heaviest unit can only be in
groups 0..j). No ``k`` feasible: no division exists. Units of no households with one or two
neighbours are taken out first (:func:`gridmap.geo.exact.idle_connectors`: they never decide the answer).
An answer it cannot give is "unknown", never "none". Used by the report's proofs (a time limit per
region: the flags may differ on a slower machine, never the grids) and by the partition's last
repair (:func:`gridmap.geo.repair.exact_regions`, where the search ran out of steps: a division it
finds replaces the grids; a node limit, so that the grids are the same on any machine).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from gridmap.geo.exact import Division, idle_connectors

MILP_MAX_UNITS = 60
"""Regions of at most this many units are given to the programme."""
MILP_SECONDS = 10.0
"""Time for all of a region's group counts together (proofs)."""
MILP_REPAIR_NODES = 1_000
"""Branch-and-bound nodes for each group count (a solve that ends in HiGHS's solve error is
tried once more without presolve, with as many again) where the partition asks the programme for a
division (:func:`gridmap.geo.repair.exact_regions`): a count of nodes, not seconds, so that the
grids do not depend on the machine's speed or load (HiGHS solves a MIP on one thread,
deterministically). Measured (2026-12-06): the generated high-rise district's grid of 38 atoms
(six 单元 of 46 households among 32 villas and houses of 1–3) took 221 nodes, 2.6 s, to a division
of six micro-grids in 50–80 that the search had not found in its steps."""


def band_division_exists(households: np.ndarray, left: np.ndarray, right: np.ndarray, lo: float, hi: float, *,
                         seconds: float = MILP_SECONDS) -> bool | None:
    """Whether the ``n`` units (edges ``left``–``right``, local indices) have a division into
    connected groups of ``lo``–``hi`` households each: True, False (none exists: shown for every
    group count), or None (not decided within ``seconds``)."""
    found = band_division(households, left, right, lo, hi, seconds=seconds)
    return None if not found.complete else found.groups is not None


def band_division(households: np.ndarray, left: np.ndarray, right: np.ndarray, lo: float, hi: float, *,
                  seconds: float | None = None, nodes: int | None = None) -> Division:
    """A division of the ``n`` units (edges ``left``–``right``, local indices) into connected groups
    of ``lo``–``hi`` households each, as :func:`gridmap.geo.exact.band_division` answers: the
    groups (indices into the units), none (``impossible``: shown for every group count) or
    unknown (the ``seconds`` for all counts together, or the ``nodes`` for each, ran out)."""
    h = np.asarray(households, dtype=float)
    if len(h) == 0:
        return Division([], True)
    pairs = {(min(a, b), max(a, b)) for a, b in zip(np.asarray(left).tolist(), np.asarray(right).tolist()) if a != b}
    region = (float(lo), float(hi), h.tobytes(), tuple(sorted(pairs)))
    with _DECIDED_LOCK:
        kept = _DECIDED.get((nodes, region))
        if kept is None and seconds is not None:  # a timed question may take what a node-limited one found
            kept = next((said for (_, r), said in _DECIDED.items() if r == region), None)
    if kept is not None:
        return kept
    found = _divided(h, pairs, lo, hi, seconds, nodes)
    if found.complete and seconds is None:  # a fact, found the same way on any machine
        with _DECIDED_LOCK:
            if len(_DECIDED) >= DECIDED_KEPT:
                _DECIDED.pop(next(iter(_DECIDED)))
            _DECIDED[(nodes, region)] = found
    return found


DECIDED_KEPT = 256
"""Regions whose node-limited answer is kept (the oldest dropped first): the partition's repair
asks about a region, and the report's proofs may ask about the same one again (on the generated
high-rise district, three regions took the programme 2 s in the repair). Only answers found within
a node limit are kept: one found within a time limit could differ on a slower machine, and the
repair, which takes kept answers, must not depend on what an earlier request found. A proof may
take a kept answer: the report of a plan made in this process can then prove a miss that a fresh
process, with the programme's time limit, leaves unproven (the grids never differ)."""
_DECIDED: dict[tuple, Division] = {}
_DECIDED_LOCK = threading.Lock()  # the API's endpoints run in a thread pool


def _divided(h: np.ndarray, pairs: set[tuple[int, int]], lo: float, hi: float, seconds: float | None,
             nodes: int | None) -> Division:
    """:func:`band_division` of a region not asked about before."""
    reduced = idle_connectors(h, pairs, between=lo > 0)
    kept_h = h[reduced.kept]
    total = float(kept_h.sum())
    arcs = np.array(reduced.pairs + [(b, a) for a, b in reduced.pairs], dtype=np.int64).reshape(-1, 2)
    counts = [k for k in range(1, len(kept_h) + 1) if k * lo <= total <= k * hi]
    deadline = None if seconds is None else time.monotonic() + seconds
    for k in counts:
        left_s = None if deadline is None else deadline - time.monotonic()
        if left_s is not None and left_s <= 0:
            return Division(None, False)
        answer = _solve(kept_h, arcs, k, lo, hi, left_s, nodes)
        if answer is None:
            return Division(None, False)
        if answer is not False:
            return Division(reduced.groups(answer, len(h)), True)
    return Division(None, True)


def _solve(h: np.ndarray, arcs: np.ndarray, k: int, lo: float, hi: float, seconds: float | None,
           nodes: int | None) -> list[np.ndarray] | bool | None:
    """One group count ``k``: the ``k`` groups (positions in ``h``), False (none exists) or None
    (undecided within ``seconds`` or ``nodes``)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    n, m = len(h), len(arcs)
    nx = n * k
    x = np.arange(nx).reshape(n, k)            # unit i in group g
    r = nx + np.arange(nx).reshape(n, k)        # unit i the root of group g
    f = 2 * nx + np.arange(m * k).reshape(m, k)  # flow on arc a within group g
    size = 2 * nx + m * k
    rows, cols, vals, lower, upper = [], [], [], [], []
    row = 0

    def add(columns, values, lo_, hi_):
        nonlocal row
        rows.extend([row] * len(columns))
        cols.extend(columns)
        vals.extend(values)
        lower.append(lo_)
        upper.append(hi_)
        row += 1

    for i in range(n):
        add(x[i].tolist(), [1.0] * k, 1.0, 1.0)  # in one group
    for g in range(k):
        add(x[:, g].tolist(), h.tolist(), lo, hi)  # the band
        add(r[:, g].tolist(), [1.0] * n, 1.0, 1.0)  # one root
    for i in range(n):
        for g in range(k):
            add([r[i, g], x[i, g]], [1.0, -1.0], -np.inf, 0.0)  # the root is in its group
    for a, (s, t) in enumerate(arcs.tolist()):
        for g in range(k):  # flow only between two units of the group
            add([f[a, g], x[s, g]], [1.0, -float(n)], -np.inf, 0.0)
            add([f[a, g], x[t, g]], [1.0, -float(n)], -np.inf, 0.0)
    into = [[] for _ in range(n)]
    out = [[] for _ in range(n)]
    for a, (s, t) in enumerate(arcs.tolist()):
        out[s].append(a)
        into[t].append(a)
    for i in range(n):
        for g in range(k):  # inflow - outflow >= x - n·r: each non-root unit of the group is reached
            columns = [f[a, g] for a in into[i]] + [f[a, g] for a in out[i]] + [x[i, g], r[i, g]]
            values = [1.0] * len(into[i]) + [-1.0] * len(out[i]) + [-1.0, float(n)]
            add(columns, values, 0.0, np.inf)
    matrix = coo_matrix((vals, (rows, cols)), shape=(row, size)).tocsr()
    integrality = np.zeros(size)
    integrality[:2 * nx] = 1
    lower_b, upper_b = np.zeros(size), np.full(size, np.inf)
    upper_b[:2 * nx] = 1.0
    # the groups are interchangeable: numbered in the order of their first unit (units heaviest
    # first), unit j can only be in groups 0..j, and the heaviest unit is in group 0
    rank = np.argsort(-h, kind="stable")
    for position, i in enumerate(rank[:k - 1].tolist()):
        upper_b[x[i, position + 1:]] = 0.0
        upper_b[r[i, position + 1:]] = 0.0
    # the heaviest units no two of which fit in one group (six 单元 of 46 in a band of 50-80) are
    # in groups of their own: the j-th of them in group j
    apart = 1
    while apart < min(k, n) and h[rank[apart]] + h[rank[apart - 1]] > hi:
        apart += 1
    if apart > 1:
        for position, i in enumerate(rank[:apart].tolist()):
            lower_b[x[i, position]] = 1.0
    deadline = None if seconds is None else time.monotonic() + seconds
    # with HiGHS's presolve first, then without it where that ends in a "solve error" (status 4:
    # met with the bounds above on a star of 4 units). Without presolve first was tried: 2–3×
    # sooner on the high-rise district's regions, 2× slower (14 s, past the limit) on one of 雨城区's
    # micro-grid regions
    for presolve in (True, False):
        options: dict = {"disp": False, "presolve": presolve}
        if deadline is not None:
            options["time_limit"] = max(deadline - time.monotonic(), 0.1)
        if nodes is not None:
            options["node_limit"] = nodes
        result = milp(np.zeros(size), constraints=LinearConstraint(matrix, lower, upper), integrality=integrality,
                      bounds=Bounds(lower_b, upper_b), options=options)
        if result.status == 0:
            member = np.asarray(result.x[:nx]).reshape(n, k) > 0.5
            return [np.flatnonzero(member[:, g]) for g in range(k)]
        if result.status == 2:  # infeasible
            return False
        if result.status != 4 or "limit" in str(result.message).lower():
            return None  # out of time, or of nodes (HiGHS's "solution limit", status 4 in SciPy): undecided
    return None


__all__ = ["MILP_MAX_UNITS", "MILP_REPAIR_NODES", "MILP_SECONDS", "band_division", "band_division_exists"]
