"""Where the units without residents go once the grids are cut.

A unit without households (the strip between a compound's wall and the road centre line, a
green, a car park, a square) adds nothing to a grid's count, so the spanning-tree bisection
places it wherever its tree happened to run. On a district office's own files every compound
sits a few metres inside the roads around it, and the strips around several compounds all went
to one grid, which then wrapped round its neighbours' compounds as a ring (a new user's district:
a grid of 430 households over 12.5 ha, six of its units empty, compactness 0.027, and nothing
flagged). Since then such land goes to the compounds (and sites, and houses) along it when the
units are built (:mod:`gridmap.geo.strips`, ``UnitRules.share_land_along_walls``); what is left
here is land no unit fronts (a traffic island between barriers) and named places (a park).

:func:`settle` moves each such unit to the comprehensive grid it shares the longest border with,
where that border is longer than the one with its own grid and the inhabited rest of its own grid
stays in one piece without it (uninhabited units reached only through it go with it), and repeats while units move (a strip may follow one that moved before it), at most
:data:`MAX_PASSES` times. A unit that touches inhabited units is weighed by its borders with them
alone: the strip inside a compound's wall goes with the compound's buildings, not with the
strip outside the wall that went elsewhere. Households, and so the band, never change.
"""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gridmap.geo.graph import UnitGraph

MAX_PASSES = 8
"""Rounds of moves at most: a strip may only become movable once its neighbour has moved."""


def settle(graph: UnitGraph, grid_of: np.ndarray, movable_grid: np.ndarray, households: np.ndarray,
           fixed: np.ndarray | None = None, community: np.ndarray | None = None) -> int:
    """Move the uninhabited units (``households`` 0; NaN counts as inhabited; not ``fixed``: a
    dedicated site) of grids that ``movable_grid`` allows (one flag per grid: comprehensive ones)
    to the allowed neighbouring grid they share the longest border with, in their own
    ``community`` (module docstring); ``grid_of`` is changed in place. Returns how many moves
    were made. Each check walks the unit's own grid only, and a refused unit is not checked
    again until its grid changes."""
    inhabited = ~(households == 0)
    empty = ~inhabited & (grid_of >= 0)
    if fixed is not None:
        empty &= ~fixed
    if not empty.any() or not len(graph.left):
        return 0
    empty[empty] = movable_grid[grid_of[empty]]
    adjacency = _scoring(graph.matrix(graph.length_m), inhabited)
    neighbours = graph.matrix()
    members = _Members(grid_of)
    changed: dict[int, int] = defaultdict(int)  # how often each grid has changed: a refusal holds until it does
    refused: dict[int, tuple[int, int]] = {}
    moves = 0
    for _ in range(MAX_PASSES):
        moved = 0
        for unit, target in _candidates(adjacency, grid_of, movable_grid, np.flatnonzero(empty), community):
            own = int(grid_of[unit])
            if own == target or not _better(adjacency, grid_of, unit, target):  # an earlier move changed it
                continue
            if refused.get(unit) == (own, changed[own]):
                continue
            carried = _carried_along(neighbours, members.of(own), unit, inhabited)
            if carried is None:
                refused[unit] = (own, changed[own])
                continue
            going = [unit, *carried]
            grid_of[going] = target
            members.of(target).update(going)
            members.of(own).difference_update(going)
            changed[own] += 1
            changed[target] += 1
            moved += 1
        moves += moved
        if not moved:
            break
    return moves


class _Members:
    """The units of each grid, as sets made when a grid is first looked at (a territory of a
    million units builds the few it needs, not all), from ``grid_of`` as it was at the start; a
    grid a move touches is looked at before the move, so every set made later is still right."""

    def __init__(self, grid_of: np.ndarray):
        self._order = np.argsort(grid_of, kind="stable")
        self._sorted = grid_of[self._order]
        self._sets: dict[int, set[int]] = {}

    def of(self, grid: int) -> set[int]:
        if grid not in self._sets:
            lo, hi = np.searchsorted(self._sorted, [grid, grid + 1])
            self._sets[grid] = set(self._order[lo:hi].tolist())
        return self._sets[grid]


def _scoring(adjacency: sp.csr_matrix, inhabited: np.ndarray) -> sp.csr_matrix:
    """The border lengths a unit is weighed by: its borders with inhabited units where it has any
    (a strip inside a compound's wall belongs with the buildings it lies against, whichever grid
    the other strips went to), else all its borders (a strip along the road, between the wall strip
    and the road centre line, follows the strip it lies against)."""
    to_inhabited = (adjacency @ sp.diags(inhabited.astype(float))).tocsr()
    anchored = np.asarray(to_inhabited.sum(axis=1)).ravel() > 0
    scoring = (sp.diags(anchored.astype(float)) @ to_inhabited + sp.diags((~anchored).astype(float)) @ adjacency).tocsr()
    scoring.eliminate_zeros()
    return scoring


def _candidates(adjacency: sp.csr_matrix, grid_of: np.ndarray, movable_grid: np.ndarray, units: np.ndarray,
                community: np.ndarray | None) -> list[tuple[int, int]]:
    """(unit, grid) for each of ``units`` whose longest border (as :func:`_scoring` weighs them) with
    an allowed grid of its own community is longer than its border with its own grid, the largest
    gain first."""
    rows = adjacency[units].tocoo()
    unit, other = units[rows.row], rows.col
    frame = pd.DataFrame({"unit": unit, "grid": grid_of[other], "length": rows.data})
    keep = (frame["grid"].to_numpy() >= 0) & movable_grid[np.maximum(frame["grid"].to_numpy(), 0)]
    if community is not None:
        keep &= community[unit] == community[other]
    frame = frame[keep]
    border = frame.groupby(["unit", "grid"], sort=False)["length"].sum().reset_index()
    own = border[border["grid"].to_numpy() == grid_of[border["unit"].to_numpy()]].set_index("unit")["length"]
    other_grids = border[border["grid"].to_numpy() != grid_of[border["unit"].to_numpy()]]
    best = other_grids.sort_values(["unit", "length", "grid"], ascending=[True, False, True]).drop_duplicates("unit")
    gain = best["length"].to_numpy() - own.reindex(best["unit"]).fillna(0.0).to_numpy()
    best = best.assign(gain=gain)[gain > 1e-6].sort_values(["gain", "unit"], ascending=[False, True])
    return list(zip(best["unit"].astype(int).tolist(), best["grid"].astype(int).tolist()))


def _better(adjacency: sp.csr_matrix, grid_of: np.ndarray, unit: int, target: int) -> bool:
    """Whether ``unit`` shares more border with grid ``target`` than with its own, as things are now."""
    start, end = adjacency.indptr[unit], adjacency.indptr[unit + 1]
    grids, lengths = grid_of[adjacency.indices[start:end]], adjacency.data[start:end]
    return lengths[grids == target].sum() > lengths[grids == grid_of[unit]].sum() + 1e-6


def _carried_along(neighbours: sp.csr_matrix, members: set[int], unit: int, inhabited: np.ndarray
                   ) -> set[int] | None:
    """What goes with ``unit`` when it leaves the grid of ``members``. Only the pieces of the grid
    that held together through ``unit`` (those holding one of its neighbours) can change: when
    they stay one piece, nothing; when one of them holds inhabited units and the others none, those
    others (a strip along the next road, reached only through this one); ``None`` (it stays) when
    two would hold inhabited units, or when the grid would be left empty. A grid that was in
    pieces before (an uninhabited islet joined to it) keeps its other pieces."""
    rest = members - {unit}
    if not rest:
        return None
    start, end = neighbours.indptr[unit], neighbours.indptr[unit + 1]
    near = [n for n in neighbours.indices[start:end].tolist() if n in rest]
    pieces: list[set[int]] = []
    for first in near:
        if any(first in piece for piece in pieces):
            continue
        seen, queue = {first}, deque([first])
        while queue:
            at = queue.popleft()
            for nxt in neighbours.indices[neighbours.indptr[at]:neighbours.indptr[at + 1]].tolist():
                if nxt in rest and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        pieces.append(seen)
        if len(seen) + 1 == len(members):  # everything else in one piece: nothing is cut off
            return set()
    lived_in = [piece for piece in pieces if any(inhabited[i] for i in piece)]
    if len(lived_in) > 1:
        return None
    carried = set().union(*(piece for piece in pieces if not lived_in or piece is not lived_in[0]))
    return None if len(carried) + 1 == len(members) else carried  # never the whole grid
