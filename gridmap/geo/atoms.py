"""Buildings as the atoms of grids: oversize units split into groups of whole buildings.

In Chinese practice the building (楼栋) is the atom of a grid and the stairwell (单元) the atom of a
micro-grid: a grid border never runs through a building. A unit (compound or block) with more
households than a grid may hold is split here, never through a building:

1. along its own internal roads and paths first (any road class: a 小区路 between building rows
   is where a grid worker's round naturally divides);
2. pieces still above the limit are tessellated around their buildings
   (:func:`gridmap.geo.tessellation.building_cells`: each building's cell is the land nearer to it
   than to any other, the cells tiling the piece exactly) and the buildings are shared into a
   number of groups by a recursive balanced bisection (:func:`balanced_groups`); each group's
   cells, dissolved, is one new unit, so the new units tile the piece exactly;
3. a piece holding a single building above the limit (a tower of 600 households) is that
   building's cell; where the data gives the building's 单元 count it is cut into strips across
   the footprint's long axis (:func:`stairwell_strips`), grouped into as many units as the band
   needs; otherwise it stays whole, and the plan's report says why its grid misses the band.

How many pieces: the fewest that bring every piece within the limit, and, when the band is
known, the count that the band's own arithmetic (:func:`gridmap.geo.band.choose_grid_count`) gives,
so a compound of 720 households becomes two of about 360, each a grid of its own.

Pure geometry: no database, no web. Works in lon/lat like :mod:`gridmap.geo.units`, measuring in
a local metric frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from gridmap.geo import coverage
from gridmap.geo.band import choose_grid_count
from gridmap.geo.bisection import subtree_sums
from gridmap.geo.graph import grouped, shared_borders, spanning_preorder
from gridmap.geo.shapes import LocalScale, points_in
from gridmap.geo.tessellation import building_cells, one_piece_each

AreaFn = Callable[[np.ndarray], np.ndarray]


# -- how many pieces ------------------------------------------------------------------------------------
def piece_count(total: float, limit: int, band: tuple[int, int] | None = None) -> int:
    """How many groups a unit of ``total`` households is split into: at least enough for each to
    hold at most ``limit``; with a band, the count its arithmetic prefers when that is more.

    >>> piece_count(720, 500, (300, 500))
    2
    >>> piece_count(1300, 500)
    3
    """
    fewest = max(math.ceil(total / limit), 1)
    if band is None:
        return fewest
    return max(fewest, choose_grid_count(total, *band)[0])


# -- balanced groups of buildings ---------------------------------------------------------------------
def balanced_groups(xy: np.ndarray, households: np.ndarray, k: int,
                    adjacency: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Labels ``0..k-1`` sharing points (buildings, in metres) into ``k`` groups of nearly equal
    households, by recursive bisection: each set is cut where the households on one side come
    nearest the share of the groups it will hold (``k // 2`` of ``k``). Candidate cuts are straight
    sweeps across the set in twelve directions and, with ``adjacency`` (pairs of indices of
    neighbouring buildings, e.g. cells sharing a border), the edges of a few spanning trees of the
    neighbours (a cut edge splits a tree into two connected sides, as in GerryChain's recursive
    tree partition). With adjacency, a cut whose sides are not both connected is taken only when
    no connected one exists.

    Deterministic; every group non-empty when ``k <= len(xy)``.

    >>> balanced_groups(np.array([[0, 0], [10, 0], [20, 0], [30, 0]]), np.array([50, 50, 50, 50]), 2).tolist()
    [0, 0, 1, 1]
    """
    xy = np.asarray(xy, dtype=float)
    households = np.asarray(households, dtype=float)
    n = len(xy)
    labels = np.zeros(n, dtype=np.int64)
    k = int(max(1, min(k, n)))
    graph = _Neighbours.of(n, adjacency) if adjacency is not None else None
    rng = np.random.default_rng(n)
    stack = [(np.arange(n), k, 0)]
    while stack:
        members, groups, first = stack.pop()
        if groups == 1 or len(members) == 1:
            labels[members] = first
            continue
        left_groups = groups // 2
        left = _best_cut(members, xy, households, left_groups, groups - left_groups, graph, rng)
        stack.append((members[~left], groups - left_groups, first + left_groups))
        stack.append((members[left], left_groups, first))
    return labels


SWEEP_DIRECTIONS = 12  # straight cuts tried per bisection, every 15°
SPANNING_TREES = 6     # random spanning trees of the neighbours tried per bisection
CONNECTED_TRIES = 64   # candidate cuts, nearest the share first, checked for two connected sides


@dataclass(frozen=True)
class _Neighbours:
    """The neighbour pairs of ``n`` points as adjacency lists in one array (CSR: the neighbours of
    point i are ``others[start[i]:start[i + 1]]``, in the order the pairs were given)."""

    start: np.ndarray
    others: np.ndarray

    @staticmethod
    def of(n: int, adjacency: tuple[np.ndarray, np.ndarray]) -> "_Neighbours":
        a, b = (np.asarray(x, dtype=np.int64) for x in adjacency)
        ends, others = np.concatenate([a, b]), np.concatenate([b, a])
        order = np.argsort(ends, kind="stable")
        return _Neighbours(np.searchsorted(ends[order], np.arange(n + 1)), others[order])

    def among(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour pairs among ``members``, as positions (i < j) into ``members``: ordered by i,
        then as in i's adjacency list (the order the random trees' edge costs are drawn in)."""
        position = np.full(len(self.start) - 1, -1, dtype=np.int64)
        position[members] = np.arange(len(members))
        counts = self.start[members + 1] - self.start[members]
        i = np.repeat(np.arange(len(members)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        j = position[self.others[np.repeat(self.start[members], counts) + offsets]]
        keep = j > i
        return i[keep], j[keep]


class _Cuts:
    """Candidate cuts of one bisection, kept as their misses and how to draw each side, so that
    only the few that are examined become masks (a mask per candidate cost O(members²))."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.miss: list[np.ndarray] = []
        self.makers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, miss: np.ndarray, order: np.ndarray, start: np.ndarray, stop: np.ndarray,
            inside: np.ndarray) -> None:
        """Candidates whose left side is ``order[start:stop]`` (``inside``) or all but it (not)."""
        self.miss.append(np.asarray(miss, dtype=float))
        self.makers.append((order, np.asarray(start), np.asarray(stop), np.asarray(inside)))

    def nearest_first(self):
        """The candidates' left masks, the smallest miss first (ties: in the order added)."""
        if not self.miss:
            return
        miss = np.concatenate(self.miss)
        which = np.concatenate([np.full(len(m), i) for i, m in enumerate(self.miss)])
        at = np.concatenate([np.arange(len(m)) for m in self.miss])
        for c in np.argsort(miss, kind="stable"):
            order, start, stop, inside = self.makers[which[c]]
            mask = np.zeros(self.count, dtype=bool)
            mask[order[start[at[c]]:stop[at[c]]]] = True
            yield mask if inside[at[c]] else ~mask


def _best_cut(members: np.ndarray, xy: np.ndarray, weights: np.ndarray, left_groups: int, right_groups: int,
              graph: _Neighbours | None, rng: np.random.Generator) -> np.ndarray:
    """The side (a mask over ``members``) that is to hold ``left_groups`` of the groups: the
    candidate cut nearest the balanced share, connected cuts first when neighbours are known."""
    w = weights[members]
    total = float(w.sum())
    target = total * left_groups / (left_groups + right_groups)
    count = len(members)
    cuts = _Cuts(count)
    pts = xy[members] - xy[members].mean(axis=0)
    sizes = np.arange(max(left_groups, 1), count - right_groups + 1)  # members on the left
    for angle in np.arange(SWEEP_DIRECTIONS) * np.pi / SWEEP_DIRECTIONS:
        direction = np.array([np.cos(angle), np.sin(angle)])
        order = np.lexsort((pts @ np.array([-direction[1], direction[0]]), pts @ direction))
        cum = np.cumsum(w[order])
        cuts.add(np.abs(cum[sizes - 1] - target), order, np.zeros(len(sizes), dtype=np.int64), sizes,
                 np.ones(len(sizes), dtype=bool))
    if graph is None:
        return next(cuts.nearest_first())
    a, b = graph.among(members)
    _tree_cuts(cuts, a, b, pts, w, target, left_groups, right_groups, rng)
    first = None
    for tried, mask in enumerate(cuts.nearest_first()):
        if tried == CONNECTED_TRIES:
            break
        first = mask if first is None else first
        if _connected(mask, a, b) and _connected(~mask, a, b):
            return mask
    return first


def _connected(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the members selected by ``mask`` form one connected set (``a``, ``b``: the pairs of
    neighbours), by labels spread along the pairs until they settle."""
    chosen = np.flatnonzero(mask)
    if len(chosen) <= 1:
        return True
    keep = mask[a] & mask[b]
    a, b = a[keep], b[keep]
    label = np.arange(len(mask))
    while True:
        low = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]  # jump to the label's own label (a few dozen rounds on cells' neighbour graphs)
        if np.array_equal(label, before):
            return bool((label[chosen] == label[chosen[0]]).all())


def _tree_cuts(cuts: _Cuts, a: np.ndarray, b: np.ndarray, pts: np.ndarray, w: np.ndarray, target: float,
               left_groups: int, right_groups: int, rng: np.random.Generator) -> None:
    """Cuts along edges of random spanning trees of the neighbour graph (when it is connected):
    each tree edge splits the tree into a subtree and the rest, both connected."""
    count = len(w)
    if len(a) == 0 or not _connected(np.ones(count, dtype=bool), a, b):
        return
    length = np.hypot(*(pts[a] - pts[b]).T) + 1e-3
    whole = w.sum()
    for _ in range(SPANNING_TREES):
        cost = length * rng.uniform(0.5, 1.5, len(a))
        order, parent = spanning_preorder(count, a, b, cost)  # preorder: a subtree is a run
        if len(order) < count:
            return  # not connected (checked above; cannot happen): the sweeps' cuts stand alone
        subtree = subtree_sums(order, parent, w[:, None])
        sums, size = subtree[:, 0], subtree[:, 1].astype(np.int64)
        position = np.empty(count, dtype=np.int64)
        position[order] = np.arange(count)
        v = order[1:]
        start, stop = position[v], position[v] + size[v]
        # per tree edge, the subtree on the left, then the rest on the left (the order tried)
        inside = np.tile([True, False], len(v))
        left_sum = np.stack([sums[v], whole - sums[v]], axis=1).ravel()
        left_size = np.stack([size[v], count - size[v]], axis=1).ravel()
        ok = (left_size >= left_groups) & (count - left_size >= right_groups)
        cuts.add(np.abs(left_sum - target)[ok], order, np.repeat(start, 2)[ok], np.repeat(stop, 2)[ok], inside[ok])


# -- stairwells -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FootprintAxis:
    """A footprint's long axis, the line its 单元 (stairwells) follow one after another: the
    longer side of its minimum rotated rectangle, in a local metric frame centred on the footprint
    (an affine scaling of lon/lat, so straight lines stay straight in both). ``start`` and ``end``
    are where the footprint begins and ends along the axis, in metres; ``depth`` is its extent
    across it."""

    origin: np.ndarray
    factor: np.ndarray
    axis: np.ndarray
    start: float
    end: float
    depth: float

    @classmethod
    def of(cls, footprint) -> "FootprintAxis | None":
        """The axis of a footprint with area (None for a point or an empty footprint)."""
        if shapely.is_empty(footprint) or shapely.area(footprint) <= 0:
            return None
        scale = LocalScale.at(float(shapely.get_y(shapely.centroid(footprint))))
        factor = np.array([scale.mx, scale.my])
        origin = np.asarray(shapely.get_coordinates(shapely.centroid(footprint)))[0]
        foot_m = shapely.transform(footprint, lambda c: (c - origin) * factor)
        rect = np.asarray(shapely.get_coordinates(shapely.minimum_rotated_rectangle(foot_m)))[:4]
        edges = np.diff(np.vstack([rect, rect[:1]]), axis=0)
        long_edge = edges[int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))]
        axis = long_edge / np.hypot(*long_edge)
        coords = shapely.get_coordinates(foot_m)
        along = coords @ axis
        across = coords @ np.array([-axis[1], axis[0]])
        return cls(origin, factor, axis, float(along.min()), float(along.max()), float(np.ptp(across)))

    def along(self, coords: np.ndarray) -> np.ndarray:
        """How far along the axis each lon/lat point (k × 2) lies, in metres (its projection)."""
        return ((np.asarray(coords, dtype=float) - self.origin) * self.factor) @ self.axis

    def fraction(self, metres: np.ndarray) -> np.ndarray:
        """Positions along the axis (metres) as fractions of the footprint's length, in [0, 1]."""
        length = max(self.end - self.start, 1e-9)
        return np.clip((np.asarray(metres, dtype=float) - self.start) / length, 0.0, 1.0)


def stairwell_strips(cell, footprint, count: int, cuts: tuple[float, ...] | None = None) -> list:
    """A building's ``cell`` (lon/lat) cut into ``count`` strips across its footprint's long axis
    (:class:`FootprintAxis`), one per 单元 (stairwell). The cuts lie at ``cuts`` (``count - 1``
    fractions of the footprint's length, increasing: the middles between its stairwells' doors,
    from an entrances layer, :mod:`gridmap.geo.stairwells`), else evenly along the footprint, so
    that each strip holds an equal share of it. The strips tile the cell exactly (each is the
    cell cut by the same lines). ``count`` below 2, or a footprint without area, gives the cell
    whole."""
    frame = FootprintAxis.of(footprint) if count >= 2 else None
    if frame is None:
        return [cell]
    axis = frame.axis
    normal = np.array([-axis[1], axis[0]])
    to_m = lambda c: (c - frame.origin) * frame.factor  # noqa: E731
    to_deg = lambda c: c / frame.factor + frame.origin  # noqa: E731
    cell_m = shapely.transform(cell, to_m)
    start, end = frame.start, frame.end
    reach = (float(np.hypot(*np.ptp(shapely.get_coordinates(cell_m), axis=0))) + max(abs(start), abs(end)) + 10.0)
    given = np.asarray(cuts if cuts is not None else [], dtype=float)
    if len(given) == count - 1 and np.all(np.diff(np.r_[0.0, given, 1.0]) > 0):  # else evenly
        inner = start + (end - start) * given
    else:
        inner = start + (end - start) * np.arange(1, count) / count
    cuts_m = np.concatenate([[-reach * 4], inner, [reach * 4]])
    strips, anchors = [], []
    for a, b in zip(cuts_m[:-1], cuts_m[1:]):
        band_m = shapely.Polygon([a * axis - reach * 4 * normal, b * axis - reach * 4 * normal,
                                  b * axis + reach * 4 * normal, a * axis + reach * 4 * normal])
        # the band goes to lon/lat (the local scale is affine: its sides stay straight) and cuts the
        # cell there, so a strip keeps the cell's own vertices and the cells around it still match it
        band = shapely.transform(band_m, to_deg)
        piece = shapely.intersection(cell, band)
        if not shapely.is_empty(piece) and shapely.area(piece) > 0:
            strips.append(piece)
            own = shapely.intersection(footprint, band)
            anchors.append(shapely.point_on_surface(own if not shapely.is_empty(own) else piece))
    # a concave cell cut across gives a strip in two pieces: the piece away from its 单元 joins the next strip
    return list(one_piece_each(np.array(strips, dtype=object), np.array(anchors, dtype=object),
                               np.zeros(len(strips), dtype=np.int64)))


# -- splitting oversize units -------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """One new unit: its geometry and, for a tower left whole because the data has no 单元 count
    for it, its households (else None)."""

    geometry: object
    lone_tower_households: int | None = None


def split_by_buildings(areas: np.ndarray, building_points: np.ndarray, footprints: np.ndarray,
                       households: np.ndarray, entrances: np.ndarray | None, limit: int,
                       band: tuple[int, int] | None, area_fn: AreaFn, *, each_building: bool = False,
                       cuts: np.ndarray | None = None) -> list[list[Piece]]:
    """Each area (lon/lat polygons above ``limit`` households) as pieces of whole buildings
    (steps 2 and 3 of the module docstring), the pieces of each area tiling it exactly. Buildings
    belong to the area holding their representative point; ``entrances`` gives each building's 单元
    count (0 or missing: unknown), ``cuts`` where its strips are cut (``entrance_cuts`` of
    :mod:`gridmap.geo.stairwells`; None: evenly). With ``each_building`` every building's cell is a
    piece of its own (the finest grain a grid can be drawn at), a tower above ``limit`` cut by its
    单元 as anywhere. All areas are tessellated at once."""
    areas = np.asarray(areas, dtype=object)
    result: list[list[Piece]] = [[] for _ in range(len(areas))]
    if len(areas) == 0:
        return result
    b_idx, a_idx = points_in(areas, building_points)
    first = np.unique(b_idx, return_index=True)[1]
    b_idx, a_idx = b_idx[first], a_idx[first]
    project = area_fn.project  # type: ignore[attr-defined]
    cells = building_cells(areas, footprints[b_idx], a_idx)
    for area_index, mine in enumerate(grouped(a_idx, np.arange(len(areas)))):  # one sort, not a scan per area
        if len(mine) == 0:
            result[area_index] = [Piece(areas[area_index])]
            continue
        b = b_idx[mine]
        total = float(households[b].sum())
        if len(mine) == 1:
            result[area_index] = _tower(areas[area_index], footprints[b[0]], int(households[b[0]]),
                                        int(entrances[b[0]]) if entrances is not None else 0, limit, band,
                                        cuts[b[0]] if cuts is not None else None)
            continue
        if each_building:  # a cell each; a tower above the limit cut by its 单元 (or marked) as always
            result[area_index] = [piece for cell, i in zip(cells[mine], b) for piece in (
                _tower(cell, footprints[i], int(households[i]), int(entrances[i]) if entrances is not None else 0,
                       limit, band, cuts[i] if cuts is not None else None)
                if households[i] > limit else [Piece(cell)])]
            continue
        xy = project(shapely.get_coordinates(building_points[b]))
        adjacency = _cell_adjacency(cells[mine])
        # lumpy buildings can leave a group above the limit: one group more until none is
        for k in range(min(piece_count(total, limit, band), len(mine)), len(mine) + 1):
            labels = balanced_groups(xy, households[b], k, adjacency=adjacency)
            sums = np.bincount(labels, weights=households[b], minlength=k)
            sizes = np.bincount(labels, minlength=k)
            if ((sums <= limit) | (sizes == 1)).all():
                break
        pieces: list[Piece] = []
        for g in range(k):
            members = np.flatnonzero(labels == g)
            if len(members) == 1 and households[b[members[0]]] > limit:  # a tower: by its 单元
                only = b[members[0]]
                pieces += _tower(cells[mine][members[0]], footprints[only], int(households[only]),
                                 int(entrances[only]) if entrances is not None else 0, limit, band,
                                 cuts[only] if cuts is not None else None)
            elif len(members):
                pieces.append(Piece(_dissolve(cells[mine][members])))
        result[area_index] = pieces
    return result


def _tower(cell, footprint, households: int, entrances: int, limit: int, band: tuple[int, int] | None,
           cuts: tuple[float, ...] | None = None) -> list[Piece]:
    """A piece with one building: cut by its 单元 when their count is known and the building is
    above ``limit`` (strips grouped into as many units as the band needs), else whole."""
    if households <= limit:
        return [Piece(cell)]
    if entrances < 2:
        return [Piece(cell, lone_tower_households=households)]
    k = min(piece_count(households, limit, band), entrances)
    strips = stairwell_strips(cell, footprint, entrances, cuts)
    if len(strips) != entrances:
        return [Piece(cell, lone_tower_households=households)]
    share = np.repeat(np.arange(k), np.diff(np.round(np.linspace(0, entrances, k + 1)).astype(int)))
    return [Piece(_dissolve(np.asarray(strips, dtype=object)[share == g])) for g in range(k)]


def _cell_adjacency(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j, sorted) of cells sharing a border of positive length. The cells of an area
    are a clean coverage (:func:`gridmap.geo.tessellation.building_cells` checks it, and cleans an
    area whose cells are not), so a shared border is the segments both hold, found by sorting
    segments (:func:`gridmap.geo.graph.shared_borders`) rather than by intersecting the outlines
    of every pair of cells that touch."""
    a, b, _length = shared_borders(cells)
    return a, b


def _dissolve(cells: np.ndarray):
    """The union of cells of one clean coverage (:func:`gridmap.geo.coverage.union`)."""
    return coverage.union(cells)


__all__ = ["piece_count", "balanced_groups", "stairwell_strips", "split_by_buildings", "Piece"]
