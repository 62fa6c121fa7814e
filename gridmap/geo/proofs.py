"""Proofs that a comprehensive grid cannot be in the household band: arguments that hold for
*any* plan of the same units, so a grid outside the band that carries one is not a failure of the
plan but a fact of the territory (at the grain of its units).

Each function looks at a plan (``grid_of``: the grid index of every unit, ``kinds``: each grid's
kind) on the unit graph and returns ``{grid index: Reason}`` for the grids it explains:

* :func:`below_min_proofs`: a unit that no connected addition brings into the band;
* :func:`hub_leaf_proofs`: small units hanging on one connector unit, more than one grid can take;
* :func:`region_proofs`: a region whose units cannot be grouped in the band at all, two small
  units that need the same connector, units above half the maximum with too few neighbours to go
  round, or a small region the exact search
  (:mod:`gridmap.geo.exact`) shows has no division into contiguous grids with fewer grids outside
  the band than the plan has there, none of them further outside it than the plan's worst.

Dedicated grids are outside every argument (their units are not available to the others).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra, maximum_bipartite_matching

from gridmap.geo.band import band_grouping_exists, violation
from gridmap.geo.band_milp import MILP_MAX_UNITS, MILP_SECONDS, band_division_exists
from gridmap.geo.exact import EXACT_BUDGET, EXACT_MAX_UNITS, local_edges, region_division
from gridmap.geo.graph import UnitGraph, grouped, reachable
from gridmap.geo.terms import GRID_TERMS, Terms

BAND_SPLIT_MAX_UNITS = 16
"""Regions with at most this many inhabited units get the exact 'no grouping in the band' check."""


@dataclass(frozen=True)
class Reason:
    """Why a grid misses the band, in English and Chinese."""

    en: str
    zh: str


def _usable_edges(graph: UnitGraph, grid_of: np.ndarray, kinds: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    usable = np.array([kinds[g] != "dedicated" for g in grid_of], dtype=bool)
    edges = usable[graph.left] & usable[graph.right]
    return usable, graph.left[edges], graph.right[edges]


@dataclass(frozen=True, eq=False)
class Regions:
    """The connected pieces of non-dedicated units (the regions of :func:`region_proofs`; a piece
    never crosses a community, as the graph's edges do not), found once for every grid a report
    explains, each with its units and its edges. Walked from each grid over every edge of the
    territory, as before, the report grew with the square of the units: on the generated
    centre-line layouts it took 0.8 s of 4,178 units' partition and 13.6 s of 16,696's."""

    usable: np.ndarray     # per unit: not in a dedicated grid
    label: np.ndarray      # per unit, its piece (-1: a dedicated grid's unit)
    left: np.ndarray       # the edges between usable units, in the graph's order
    right: np.ndarray
    node_order: np.ndarray  # units by piece, ascending within each
    node_bounds: np.ndarray
    edge_order: np.ndarray  # edges by piece, in the graph's order within each
    edge_bounds: np.ndarray

    @classmethod
    def of(cls, graph: UnitGraph, grid_of: np.ndarray, kinds: list[str]) -> Regions:
        usable, left, right = _usable_edges(graph, grid_of, kinds)
        label = graph.components(usable)
        count = int(label.max()) + 1 if len(label) else 0
        node_order = np.argsort(label, kind="stable")
        edge_order = np.argsort(label[left], kind="stable")
        return cls(usable, label, left, right, node_order,
                   np.searchsorted(label[node_order], np.arange(-1, count + 1)),
                   edge_order, np.searchsorted(label[left][edge_order], np.arange(-1, count + 1)))

    def region(self, unit: int) -> np.ndarray:
        """The units of ``unit``'s piece, ascending (``unit`` alone for a dedicated grid's)."""
        at = int(self.label[unit]) + 1
        return self.node_order[self.node_bounds[at]:self.node_bounds[at + 1]] if at else np.array([unit])

    def edges(self, unit: int) -> tuple[np.ndarray, np.ndarray]:
        """The edges of ``unit``'s piece (global indices), in the graph's order."""
        at = int(self.label[unit]) + 1
        chosen = self.edge_order[self.edge_bounds[at]:self.edge_bounds[at + 1]] if at else np.zeros(0, dtype=np.int64)
        return self.left[chosen], self.right[chosen]


def below_min_proofs(graph: UnitGraph, unit_ids: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                     grids: list[int], kinds: list[str], lo: float, hi: float,
                     regions: Regions | None = None, terms: Terms = GRID_TERMS) -> dict[int, Reason]:
    """Why each of ``grids`` (below the minimum) cannot be brought into the band, where that can
    be shown from one of its units ``u`` alone: any grid holding ``u`` with at least ``lo``
    households needs another inhabited unit ``w``, hence a connected path from ``u`` to ``w``; if
    even the lightest such path (households summed over its units, dedicated sites excluded)
    pushes the total above ``hi``, no grid holding ``u`` is in the band. The paths are searched
    in ``u``'s piece of the graph alone (no path leaves it), each piece's graph built once."""
    regions = regions or Regions.of(graph, grid_of, kinds)
    matrices: dict[int, tuple[np.ndarray, sp.csr_matrix]] = {}

    def piece_graph(u: int) -> tuple[np.ndarray, sp.csr_matrix]:
        """The units of ``u``'s piece and its directed graph: entering a unit costs its households
        (+ a hair, since sparse graphs drop zero weights)."""
        key = int(regions.label[u]) if regions.label[u] >= 0 else -1 - u
        if key not in matrices:
            nodes = regions.region(u)
            left, right = regions.edges(u)
            rows = np.searchsorted(nodes, np.concatenate([left, right]))
            cols = np.searchsorted(nodes, np.concatenate([right, left]))
            matrices[key] = nodes, sp.csr_matrix((households[nodes][cols] + 1e-6, (rows, cols)),
                                                 shape=(len(nodes), len(nodes)))
        return matrices[key]

    proofs: dict[int, Reason] = {}
    for grid, members in zip(grids, grouped(grid_of, np.asarray(grids, dtype=np.int64))):
        for u in members.tolist():
            h_u = households[u]
            if h_u >= lo:
                continue
            nodes, directed = piece_graph(u)
            at = int(np.searchsorted(nodes, u))
            reach = dijkstra(directed, indices=at, limit=hi - h_u + 1e-3)
            inhabited = np.isfinite(reach) & (households[nodes] > 0)
            inhabited[at] = False
            if not inhabited.any():
                t = terms
                proofs[int(grid)] = Reason(
                    f"{t.unit} {unit_ids[u]} has {h_u:.0f} households (< {lo}) and every connected addition of "
                    f"another inhabited {t.unit} brings its {t.grid} above {hi}: no {t.grid} holding it can be in "
                    "the band",
                    f"{t.unit_zh} {unit_ids[u]} 有 {h_u:.0f} 户（少于 {lo} 户），与任何相连的有人{t.unit_zh}合并都会超过 "
                    f"{hi} 户：含它的{t.grid_zh}都不可能落在户数区间内")
                break
    return proofs


def hub_leaf_proofs(graph: UnitGraph, unit_ids: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                    kinds: list[str], lo: float, hi: float, terms: Terms = GRID_TERMS) -> dict[int, Reason]:
    """Grids that are one small unit hanging on a connector unit, shown to be unavoidable.

    A unit below the minimum whose only usable neighbour is a hub ``a`` can reach the band only
    in the grid that holds ``a``, and one grid holds ``a``. That grid can take at most ``m`` of
    the hub's small leaves (the lightest ones, within the maximum), so at least ``leaves - m``
    of them stay alone below the band. When the plan leaves exactly that many alone, each of
    them is explained."""
    usable, left, right = _usable_edges(graph, grid_of, kinds)
    ends = np.concatenate([left, right])
    other = np.concatenate([right, left])
    degree = np.bincount(ends, minlength=graph.n)
    grid_size = np.bincount(grid_of, minlength=len(kinds))
    leaf = usable & (degree == 1) & (households < lo)
    hub_of = np.full(graph.n, -1, dtype=np.int64)
    hub_of[ends[leaf[ends]]] = other[leaf[ends]]
    proofs: dict[int, Reason] = {}
    for hub in np.unique(hub_of[leaf]):
        leaves = np.flatnonzero(leaf & (hub_of == hub))
        if len(leaves) < 2:
            continue
        room = hi - households[hub]
        fits = int((np.cumsum(np.sort(households[leaves])) <= room).sum())
        alone = [u for u in leaves if grid_of[u] != grid_of[hub] and grid_size[grid_of[u]] == 1]
        if len(alone) != len(leaves) - fits or not alone:
            continue
        t = terms
        for u in alone:
            proofs[int(grid_of[u])] = Reason(
                f"{t.unit} {unit_ids[u]} ({households[u]:.0f} households) hangs, with {len(leaves) - 1} other small "
                f"{t.units}, on connector {t.unit} {unit_ids[hub]}: one {t.grid} holds the connector and at most "
                f"{fits} of them within {hi}, so {len(leaves) - fits} must stay alone below {lo}",
                f"{t.unit_zh} {unit_ids[u]}（{households[u]:.0f} 户）与另外 {len(leaves) - 1} 个小{t.unit_zh}都只连着"
                f"{t.unit_zh} {unit_ids[hub]}：含 {unit_ids[hub]} 的{t.grid_zh}在 {hi} 户以内最多容纳其中 {fits} 个，所以有 "
                f"{len(leaves) - fits} 个只能单独成为{t.grid_zh}、低于 {lo} 户")
    return proofs


def region_proofs(graph: UnitGraph, unit_ids: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                  kinds: list[str], lo: float, hi: float, targets: list[int],
                  regions: Regions | None = None, terms: Terms = GRID_TERMS) -> dict[int, Reason]:
    """Proofs for comprehensive grids outside the band that no local argument explains.

    The region is the connected set of non-dedicated units holding the grid (within one
    community, as the graph's edges are). The arguments, each valid for any plan:

    * **no grouping** (:func:`_no_grouping_proof`): the region's inhabited units cannot even be
      grouped (contiguity ignored) into groups each within the band, so some grid of the region
      misses it;
    * **competing for one connector** (:func:`_connector_proof`): two small units ``a`` and ``b``
      cannot share a grid (together above the maximum), and each reaches the minimum only through
      the same unit ``c`` (without ``c``, everything ``a`` can be grouped with stays below the
      minimum, and likewise for ``b``); one grid holds ``c``, so the grid of ``a`` or of ``b``
      misses the band;
    * **too few neighbours** (:func:`_neighbours_proof`): small units each above half the maximum
      (no two in one grid in the band) each need a neighbour of their own outside them to reach the
      band, and some of them have fewer such neighbours between them than members: one of their
      grids misses;
    * **exhaustive search** (:func:`_exhaustive_proof`): the region has at most
      ``EXACT_MAX_UNITS`` units, none above the maximum, and the exact search ran to its end
      without finding a division of them into contiguous grids with fewer grids outside the band
      than the plan has there (none in the band, when the plan has one miss) and none further
      outside it than the plan's worst; for one miss, where the search runs out of steps (regions
      of many near-empty connector units), or the region has up to ``MILP_MAX_UNITS`` units, an
      integer programme (:mod:`gridmap.geo.band_milp`) shows there is no division in the band.

    For the first three, a grid is explained when the plan has exactly one grid outside the band
    among those the argument speaks of; for the search, when the plan has no more misses in the
    region than every division of it must have without a grid further outside the band."""
    regions = regions or Regions.of(graph, grid_of, kinds)
    totals = np.bincount(grid_of, weights=households, minlength=len(kinds))
    grid_units = np.bincount(grid_of, minlength=len(kinds))
    outside = np.array([kind == "comprehensive" and not lo <= t <= hi for kind, t in zip(kinds, totals)])
    proofs: dict[int, Reason] = {}
    searched: dict[tuple[int, ...], bool] = {}
    for g, members in zip(targets, grouped(grid_of, np.asarray(targets, dtype=np.int64))):
        region = regions.region(int(members[0]))
        left, right = regions.edges(int(members[0]))
        inhabited = region[households[region] > 0]
        proof = (_no_grouping_proof(region, inhabited, households, grid_of, outside, lo, hi, terms)
                 or _connector_proof(g, members, region, inhabited, left, right, unit_ids, households, grid_of,
                                     outside, graph.n, lo, hi, terms)
                 or _neighbours_proof(g, region, left, right, unit_ids, households, grid_of, outside, lo, hi, terms)
                 or _exhaustive_proof(region, left, right, households, grid_of, totals, grid_units, outside, lo, hi,
                                      searched, terms))
        if proof is not None:
            proofs[g] = proof
    return proofs


def _neighbours_proof(g: int, region: np.ndarray, left: np.ndarray, right: np.ndarray, unit_ids: np.ndarray,
                      households: np.ndarray, grid_of: np.ndarray, outside: np.ndarray, lo: float,
                      hi: float, terms: Terms = GRID_TERMS) -> Reason | None:
    """The 'too few neighbours' argument (Hall's theorem on the units' neighbours). Take the
    region's units ``S`` of more than half the maximum and less than the minimum: none is in the
    band alone, and a grid holding two of them is above the maximum. A grid in the band holding
    ``a`` of ``S`` holds another unit, hence (being connected, and holding no other of ``S``) a
    neighbour ``w`` of ``a`` outside ``S``, with ``a`` and ``w`` within the maximum together; the
    grids are disjoint, so the members of ``S`` in grids in the band have neighbours of their own:
    a matching. A set ``T`` of them with fewer such neighbours between them than members (found
    from a largest matching: those reached from a member it leaves out, along alternating paths)
    has a member in a grid outside the band, in any plan (several may share that grid, so no more
    is claimed). It explains ``g`` when ``g`` is the only grid outside the band holding a member
    of such a ``T``. Seen on a 雨城区 grid of 34 atoms: three of 46 households (band 50–80) reach
    the rest through two atoms; the integer programme took 4.8 s to show what this shows at once."""
    for members, neighbours in _neighbour_shortfalls(region, left, right, households, lo, hi):
        if {int(x) for x in grid_of[members] if outside[x]} != {g}:
            continue
        names = ", ".join(f"{unit_ids[u]} ({households[u]:.0f})" for u in members)
        near = ", ".join(str(unit_ids[u]) for u in neighbours) or "none"
        t = terms
        return Reason(
            f"{t.units} {names} are each above half of {hi} households and below {lo}: a {t.grid} in the band holds "
            f"at most one of them, with a neighbour of it outside them that fits with it within {hi}, and no other "
            f"{t.grid} can hold that neighbour; they have {len(neighbours)} such neighbours between them ({near}) "
            f"for {len(members)} {t.units}, so one of their {t.grids} must miss the band",
            f"{t.unit_zh} {names} 各自超过 {hi} 户的一半且不足 {lo} 户：在户数区间内的{t.grid_zh}至多含其中一个，并且必须含"
            f"它在这组之外、与它合计不超过 {hi} 户的一个相邻{t.unit_zh}，而该{t.unit_zh}不能再属于别的{t.grid_zh}；"
            f"它们这样的相邻{t.unit_zh}共 {len(neighbours)} 个（{near}），不够 {len(members)} 个{t.unit_zh}各得一个，"
            f"所以其中必有一个{t.grid_zh}落在区间外")
    return None


def _neighbour_shortfalls(region: np.ndarray, left: np.ndarray, right: np.ndarray, households: np.ndarray,
                          lo: float, hi: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """For :func:`_neighbours_proof`: sets ``T`` of the region's units of more than half the
    maximum and less than the minimum, each with its neighbours outside them that fit with one of
    them under the maximum, fewer than its members (Hall's condition fails there). One set per
    member a largest matching of them to such neighbours leaves out: the members and neighbours
    reached from it along alternating paths (by König's argument, every neighbour reached is
    matched to a member reached, so there is one neighbour fewer than members)."""
    h = households[region]  # all in the region's own numbering (region is sorted), nothing territory-sized
    is_small = (h > hi / 2) & (h < lo)
    small = region[is_small]
    if len(small) < 2:
        return []
    rank = np.full(len(region), -1, dtype=np.int64)
    rank[is_small] = np.arange(len(small))
    within = np.isin(left, region) & np.isin(right, region)
    a = np.searchsorted(region, np.concatenate([left[within], right[within]]))
    w = np.searchsorted(region, np.concatenate([right[within], left[within]]))
    edge = (rank[a] >= 0) & ~is_small[w]  # the neighbours that count: in the region, not of the small units
    edge[edge] = h[a[edge]] + h[w[edge]] <= hi
    targets, column = np.unique(region[w[edge]], return_inverse=True)
    adjacent: list[list[int]] = [[] for _ in range(len(small))]
    for row, col in zip(rank[a[edge]].tolist(), column.tolist()):
        adjacent[row].append(col)
    pairs = sp.csr_matrix((np.ones(int(edge.sum())), (rank[a[edge]], column)), shape=(len(small), len(targets)))
    matching = maximum_bipartite_matching(pairs, perm_type="column")  # per member: its neighbour, or -1
    holder = np.full(len(targets), -1, dtype=np.int64)
    holder[matching[matching >= 0]] = np.flatnonzero(matching >= 0)
    found = []
    for root in np.flatnonzero(matching < 0).tolist():
        rows, cols, stack = {root}, set(), [root]
        while stack:
            for col in adjacent[stack.pop()]:
                if col not in cols:
                    cols.add(col)
                    if holder[col] >= 0 and holder[col] not in rows:
                        rows.add(int(holder[col]))
                        stack.append(int(holder[col]))
        found.append((small[sorted(rows)], targets[sorted(cols)]))
    return found


def _no_grouping_proof(region: np.ndarray, inhabited: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                       outside: np.ndarray, lo: float, hi: float, terms: Terms = GRID_TERMS) -> Reason | None:
    """The 'no grouping' argument, when the region has exactly one grid outside the band and at
    most ``BAND_SPLIT_MAX_UNITS`` inhabited units (the exact check is exponential)."""
    bad_here = [int(x) for x in np.unique(grid_of[region]) if outside[x]]
    if len(bad_here) == 1 and len(inhabited) <= BAND_SPLIT_MAX_UNITS \
            and not band_grouping_exists(households[inhabited], lo, hi):
        listed = ", ".join(f"{v:.0f}" for v in sorted(households[inhabited], reverse=True))
        t = terms
        return Reason(
            f"the {len(inhabited)} inhabited {t.units} of its region (the {t.region_units} joined to it) ({listed} "
            f"households) cannot be grouped into {t.grids} of {lo}–{hi} households in any way: one {t.grid} must "
            "miss the band",
            f"它所在区域（与它相连的{t.region_units_zh}）的 {len(inhabited)} 个有人{t.unit_zh}（{listed} 户）无论怎样组合都"
            f"分不成每个 {lo}–{hi} 户的{t.grid_zh}：必有一个{t.grid_zh}落在区间外")
    return None


def _exhaustive_proof(region: np.ndarray, left: np.ndarray, right: np.ndarray, households: np.ndarray,
                      grid_of: np.ndarray, totals: np.ndarray, grid_units: np.ndarray, outside: np.ndarray, lo: float,
                      hi: float, searched: dict[tuple[int, ...], bool], terms: Terms = GRID_TERMS) -> Reason | None:
    """The 'exhaustive search' argument. The region's grids lie wholly inside it, ``m`` of them
    outside the band, the worst ``w`` households from it; the exact search shows that no division
    of the region into contiguous grids has fewer than ``m`` outside the band unless one of them
    lies more than ``w`` from it (for ``m = 1``: none is in the band at all). Any connected
    region is one grid with one miss, so for ``m ≥ 2`` the bound on the misses is what makes the
    claim. ``searched`` keeps each region's answer, asked once for its ``m`` grids."""
    grids_here = np.unique(grid_of[region])
    bad_here = [int(x) for x in grids_here if outside[x]]
    m = len(bad_here)
    limit = EXACT_MAX_UNITS if m > 1 else max(EXACT_MAX_UNITS, MILP_MAX_UNITS)
    if not bad_here or len(region) > limit or (households[region] > hi).any() \
            or grid_units[grids_here].sum() != len(region):  # a grid reaches beyond the region
        return None
    worst = float(violation(totals[bad_here], lo, hi).max())
    key = tuple(region.tolist())
    if key not in searched:
        searched[key] = _no_division(region, left, right, households, lo, hi, m, worst)
    how = searched[key]
    if not how:
        return None
    total = households[region].sum()
    t = terms
    if m == 1:
        by = ("every way was tried (exhaustive search)", "已穷举所有划分方式") if how == "search" else (
            f"shown for every number of {t.grids} by an integer programme (HiGHS)",
            f"已用整数规划（HiGHS）对每种{t.grid_zh}数逐一证明")
        return Reason(
            f"its region (the {len(region)} {t.region_units} joined to it, {total:.0f} households) has no division "
            f"into contiguous {t.grids} of {lo}–{hi} households: {by[0]}",
            f"它所在区域（与它相连的 {len(region)} 个{t.region_units_zh}，共 {total:.0f} 户）不存在每个{t.grid_zh} "
            f"{lo}–{hi} 户且连片的划分：{by[1]}")
    return Reason(
        f"its region (the {len(region)} {t.region_units} joined to it, {total:.0f} households) has no division "
        f"into contiguous {t.grids} with fewer than {m} {t.grids} outside {lo}–{hi} households unless a {t.grid} lies "
        f"more than {worst:.0f} households outside it, as none of this plan's {m} does: every way was tried "
        "(exhaustive search)",
        f"它所在区域（与它相连的 {len(region)} 个{t.region_units_zh}，共 {total:.0f} 户）的任何连片划分，要么至少有 {m} 个"
        f"{t.grid_zh}户数不在 {lo}–{hi} 户之间，要么有{t.grid_zh}偏离该区间超过 {worst:.0f} 户（本方案的 {m} 个都未超过）："
        "已穷举所有划分方式")


def _no_division(region: np.ndarray, left: np.ndarray, right: np.ndarray, households: np.ndarray, lo: float,
                 hi: float, m: int, worst: float) -> str | None:
    """How it is shown that the region (its plan's grids wholly inside it) has no division with fewer than
    ``m`` grids outside the band (none further out than ``worst``): "search" (the exact search ran to
    its end), "programme" (for ``m = 1``, where the search ran out of steps: the integer programme of
    :mod:`gridmap.geo.band_milp` found no division in the band for any number of grids), or None.
    For ``m = 1``, where the search runs out of steps, it runs once more with three times them,
    then the programme is asked (for :data:`~gridmap.geo.band_milp.MILP_SECONDS`), then the search
    runs with ten times the steps. Measured on the
    generated districts (2026-12-05): of the regions the first search leaves, the high-rise
    district's three (34–40 units) took the programme 0.9 s, 2.7 s and its whole 10 s undecided,
    where the longer search proves the third in 1.0 s; a 雨城区 grid's 34 atoms took the
    programme 4.8 s, the longer search 2.6 s undecided before it. Not for ``m ≥ 2``: allowing
    misses multiplies the divisions to try, and the one such second search on the two generated
    districts (a grid of 38 atoms with 4 micro-grids outside 50–80, 2026-12-05) ran out of its
    steps after 11.6 s."""
    searchable = len(region) <= EXACT_MAX_UNITS

    def search(budget: int) -> str | None:  # "search" (none exists), "found" (one exists) or None (out of steps)
        found = region_division(region, left, right, households, lo, hi, misses=m - 1,
                                miss_band=(lo - worst, hi + worst), budget=budget)
        return "search" if found.impossible else "found" if found.complete else None

    def programme(seconds: float) -> str | None:  # "programme" (none exists), "found" or None (out of time)
        local, local_left, local_right = local_edges(region, left, right, len(households))
        answer = band_division_exists(households[local], local_left, local_right, lo, hi, seconds=seconds)
        return None if answer is None else "found" if answer else "programme"

    tries = [lambda: search(EXACT_BUDGET)] if searchable else []
    if m == 1 and len(region) <= MILP_MAX_UNITS:
        if searchable:
            tries.append(lambda: search(3 * EXACT_BUDGET))
        tries.append(lambda: programme(MILP_SECONDS))
        if searchable:  # a region the programme cannot decide in its time may yet be searched to the end
            tries.append(lambda: search(10 * EXACT_BUDGET))
    for attempt in tries:
        answer = attempt()
        if answer is not None:
            return None if answer == "found" else answer
    return None


def _connector_proof(g: int, members: np.ndarray, region: np.ndarray, inhabited: np.ndarray, left: np.ndarray,
                     right: np.ndarray, unit_ids: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                     outside: np.ndarray, n: int, lo: float, hi: float, terms: Terms = GRID_TERMS) -> Reason | None:
    """The first 'competing for one connector' argument for grid ``g`` (or, on the way, a small
    unit of ``g`` that can never reach the minimum without passing the maximum)."""
    cache: dict[int, set[int]] = {}
    t = terms
    for a in [int(a) for a in members if 0 < households[a] < lo]:
        gates_a = cache.setdefault(a, _gates(a, region, left, right, households, n, lo, hi))
        if gates_a == {-1}:
            return Reason(
                f"{t.unit} {unit_ids[a]} ({households[a]:.0f} households) can never be grouped to {lo} households "
                f"without passing {hi}: no {t.grid} holding it can be in the band",
                f"{t.unit_zh} {unit_ids[a]}（{households[a]:.0f} 户）无论与谁合并，都无法在不超过 {hi} 户的情况下达到 "
                f"{lo} 户：含它的{t.grid_zh}都不可能落在区间内")
        if not gates_a:
            continue
        for b in inhabited:
            b = int(b)
            if b == a or households[b] >= lo or households[a] + households[b] <= hi:
                continue
            gates_b = cache.setdefault(b, _gates(b, region, left, right, households, n, lo, hi))
            shared = sorted(gates_a & gates_b - {-1})
            if shared and {x for x in (grid_of[a], grid_of[b]) if outside[x]} == {g}:
                return Reason(
                    f"{t.units} {unit_ids[a]} ({households[a]:.0f} households) and {unit_ids[b]} "
                    f"({households[b]:.0f}) cannot share a {t.grid} (together above {hi}), and each reaches {lo} only "
                    f"through {t.unit} {unit_ids[shared[0]]}, which one {t.grid} holds: the {t.grid} of one of them "
                    "must miss the band",
                    f"{t.unit_zh} {unit_ids[a]}（{households[a]:.0f} 户）与 {unit_ids[b]}（{households[b]:.0f} 户）合计超过 "
                    f"{hi} 户、不能同在一个{t.grid_zh}，而二者都只有经过{t.unit_zh} {unit_ids[shared[0]]} 才能达到 {lo} 户，"
                    f"它只能属于一个{t.grid_zh}：其中一个的{t.grid_zh}必然落在区间外")
    return None


def _gates(a: int, region: np.ndarray, left: np.ndarray, right: np.ndarray, households: np.ndarray, n: int,
           lo: float, hi: float) -> set[int]:
    """Units of ``region`` without which nothing grouped with ``a`` reaches the minimum (only
    units that fit with ``a`` under the maximum count); ``{-1}`` when ``a`` can never reach it."""
    allowed = np.zeros(n, dtype=bool)
    allowed[region] = True
    allowed &= households + households[a] <= hi
    allowed[a] = True
    around = reachable(left, right, allowed, a)
    if households[around].sum() < lo:
        return {-1}  # a can never be in the band at all
    found = set()
    for c in around:
        if c == a:
            continue
        allowed[c] = False
        if households[reachable(left, right, allowed, a)].sum() < lo:
            found.add(int(c))
        allowed[c] = True
    return found


__all__ = ["Reason", "Regions", "below_min_proofs", "hub_leaf_proofs", "region_proofs", "BAND_SPLIT_MAX_UNITS"]
