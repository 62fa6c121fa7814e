"""The unit adjacency graph: which units share a border, how long, and along what.

Two units are adjacent when they share a border of positive length (touching at a corner is not
enough: a grid joined only at a point is not contiguous). Lengths are in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, depth_first_order, minimum_spanning_tree

from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame


@dataclass
class UnitGraph:
    """Adjacency of ``n`` units: edge arrays (i < j), shared length (m) and major-road share."""

    n: int
    left: np.ndarray
    right: np.ndarray
    length_m: np.ndarray
    major_share: np.ndarray
    xy: np.ndarray          # unit centroids in the metric CRS
    area_m2: np.ndarray
    perimeter_m: np.ndarray

    def matrix(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """Symmetric sparse adjacency matrix (weights default to 1)."""
        w = np.ones(len(self.left)) if weights is None else weights
        m = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([self.left, self.right]),
                                                     np.concatenate([self.right, self.left]))), shape=(self.n, self.n))
        return m.tocsr()

    def components(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Connected-component label per unit (units outside ``mask`` get -1)."""
        keep = np.ones(self.n, dtype=bool) if mask is None else mask
        edge_ok = keep[self.left] & keep[self.right]
        sub = sp.coo_matrix((np.ones(edge_ok.sum()), (self.left[edge_ok], self.right[edge_ok])),
                            shape=(self.n, self.n))
        _, labels = connected_components(sub, directed=False)
        labels = labels.astype(np.int64)
        labels[~keep] = -1
        return labels

    def restricted(self, nodes: np.ndarray, edges: np.ndarray) -> UnitGraph:
        """The graph of ``nodes`` alone (sorted global indices, renumbered 0..len-1 in the same
        order), keeping the ``edges`` (global edge indices, both ends among ``nodes``) in the
        order given: what a task on one piece needs, without the rest of the territory."""
        local = np.searchsorted(nodes, self.left[edges]), np.searchsorted(nodes, self.right[edges])
        return UnitGraph(n=len(nodes), left=local[0].astype(np.int64), right=local[1].astype(np.int64),
                         length_m=self.length_m[edges], major_share=self.major_share[edges], xy=self.xy[nodes],
                         area_m2=self.area_m2[nodes], perimeter_m=self.perimeter_m[nodes])

    def reordered(self, order: np.ndarray) -> tuple[UnitGraph, np.ndarray]:
        """The same graph with its nodes renumbered (new node i is old node ``order[i]``) and its
        edges (i < j) sorted by their two ends; and, for each new edge, its old index."""
        rank = np.empty(self.n, dtype=np.int64)
        rank[order] = np.arange(self.n)
        a, b = rank[self.left], rank[self.right]
        low, high = np.minimum(a, b), np.maximum(a, b)
        edges = np.lexsort((high, low))
        return UnitGraph(n=self.n, left=low[edges], right=high[edges], length_m=self.length_m[edges],
                         major_share=self.major_share[edges], xy=self.xy[order], area_m2=self.area_m2[order],
                         perimeter_m=self.perimeter_m[order]), edges


def grouped(labels: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """For each label of ``wanted``, the indices holding it, ascending: one stable sort for all
    (a scan per label costs n per label: quadratic over a province's thousands of pieces)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, wanted, side="left")
    ends = np.searchsorted(sorted_labels, wanted, side="right")
    return [order[a:b] for a, b in zip(starts, ends)]


def piece_graphs(graph: UnitGraph, labels: np.ndarray, wanted: np.ndarray
                 ) -> list[tuple[np.ndarray, np.ndarray, UnitGraph]]:
    """For each label of ``wanted`` (pieces: connected sets of units, label per unit, -1 for
    none), its units, its inner edges (global indices, ordered by their two ends) and its own graph
    (:meth:`UnitGraph.restricted`). The edges' order is the piece's own: in the whole graph it
    follows where the shared borders were found among all units, so the ties of a piece's cut
    would fall with the rest of the territory."""
    members = grouped(labels, wanted)
    edge_label = np.where(labels[graph.left] == labels[graph.right], labels[graph.left], -1)
    by_ends = np.lexsort((graph.right, graph.left))
    edges = [by_ends[at] for at in grouped(edge_label[by_ends], wanted)]
    return [(m, e, graph.restricted(m, e)) for m, e in zip(members, edges)]


def border_pairs(geoms: np.ndarray, groups: np.ndarray | None, min_length: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of polygons sharing a border longer than ``min_length`` (in the geometries'
    own units), restricted to equal ``groups`` when given; returns the pairs (sorted by i, then j)
    and the borders.

    Where two polygons share their border segment for segment (a clean coverage: units, faces of
    one noding) the border is those common segments, found by sorting every segment
    (:func:`shared_segments`' way). A polygon with a segment that no other polygon, or more than
    one other, holds (the coverage's outer edge; borders that do not match vertex for vertex, as
    units drawn by hand or a department's layer have; overlapping input) is measured by
    intersecting its boundary with each polygon it touches, as for arbitrary polygons. For
    polygons that do not overlap this gives what intersecting every touching pair gives (checked
    on random layouts with T-junctions); overlapping polygons whose every segment another one
    holds exactly (one layer drawn twice) are not measured against each other, as before. On
    Reykjavík's 5,160 units: the same 12,566 pairs as intersecting every touching pair, lengths
    equal to 1e-12 m, 0.15–0.19 s against 0.45–0.49 s; on input whose borders match nowhere (every
    other unit's edges split every 10 m) it costs about what intersecting every pair does (0.93 s
    against 0.80 s). The pairs come sorted by (i, j); before they came in the order of a spatial
    index."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    seg, owner = boundary_segments(geoms)
    order = np.lexsort((owner, seg[:, 3], seg[:, 2], seg[:, 1], seg[:, 0]))
    seg, owner = seg[order], owner[order]
    # a segment is matched when exactly two different polygons hold it; one held once, by one
    # polygon twice, or by three or more (overlapping or duplicated input) is loose
    starts = np.flatnonzero(np.r_[True, ~(seg[1:] == seg[:-1]).all(axis=1)])
    runs = np.diff(np.r_[starts, len(seg)])
    pairs = starts[runs == 2]
    twin = pairs[owner[pairs] != owner[pairs + 1]]
    matched = np.zeros(len(seg), dtype=bool)
    matched[twin] = matched[twin + 1] = True
    # the pairs measured by intersection: each polygon with a loose segment, with every polygon
    # it touches (one query per such polygon, as for arbitrary polygons)
    holders = np.unique(owner[~matched])
    touched, touching = shapely.STRtree(geoms).query(geoms[holders], predicate="intersects")
    holder = holders[touched]
    other = touching != holder
    exact = np.unique(np.minimum(holder[other], touching[other]) * n + np.maximum(holder[other], touching[other]))
    keys = np.minimum(owner[twin], owner[twin + 1]) * n + np.maximum(owner[twin], owner[twin + 1])
    by_segments = ~np.isin(keys, exact)
    keys, common = keys[by_segments], seg[twin[by_segments]]
    pair_keys, pair_of = np.unique(keys, return_inverse=True)
    grouped_at = np.argsort(pair_of, kind="stable")
    segment_borders = shapely.multilinestrings(shapely.linestrings(common[grouped_at].reshape(-1, 2, 2)),
                                               indices=pair_of[grouped_at])
    left = np.concatenate([pair_keys // n, exact // n]).astype(np.int64)
    right = np.concatenate([pair_keys % n, exact % n]).astype(np.int64)
    borders = np.concatenate([np.asarray(segment_borders, dtype=object).reshape(-1),
                              shapely.intersection(shapely.boundary(geoms[exact // n]),
                                                   shapely.boundary(geoms[exact % n]))])
    keep = shapely.length(borders) > min_length
    if groups is not None:
        keep &= np.asarray(groups)[left] == np.asarray(groups)[right]
    left, right, borders = left[keep], right[keep], borders[keep]
    ordered = np.lexsort((right, left))
    return left[ordered], right[ordered], borders[ordered]


def boundary_segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every segment of the rings of the polygons of ``geoms`` (k × 4: x0, y0, x1, y1, each with
    its lower end first, so a segment two polygons share reads the same from both) and the index
    of the polygon that has it. Parts that are not polygons are left out."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    polygons = shapely.get_type_id(parts) == 3
    parts, part_of = parts[polygons], part_of[polygons]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    same = coord_of[1:] == coord_of[:-1]
    seg = np.concatenate([coords[:-1][same], coords[1:][same]], axis=1)
    owner = part_of[ring_of[coord_of[:-1][same]]]
    flip = (seg[:, 0] > seg[:, 2]) | ((seg[:, 0] == seg[:, 2]) & (seg[:, 1] > seg[:, 3]))
    seg[flip] = seg[flip][:, [2, 3, 0, 1]]
    return seg, owner.astype(np.int64)


def shared_segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every boundary segment that two different polygons of ``geoms`` both have, vertex for
    vertex: owners ``(a, b)`` with a < b and the segment's end points (k × 4: x0, y0, x1, y1).

    In a clean coverage (and among the faces of one noded arrangement) neighbours share their
    borders exactly, so these are all the shared borders, found by sorting segments instead of by
    intersecting geometries (milliseconds for thousands of polygons). A segment held three times
    or more (overlapping input) pairs each holder with the next.

    >>> a, b, xy = shared_segments(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]))
    >>> a.tolist(), b.tolist(), xy.tolist()
    ([0], [1], [[1.0, 0.0, 1.0, 1.0]])
    """
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 4)))
    seg, owner = boundary_segments(geoms)
    if len(seg) == 0:
        return empty
    order = np.lexsort((owner, seg[:, 3], seg[:, 2], seg[:, 1], seg[:, 0]))
    seg, owner = seg[order], owner[order]
    twin = (seg[1:] == seg[:-1]).all(axis=1) & (owner[1:] != owner[:-1])
    if not twin.any():
        return empty
    first, second = np.flatnonzero(twin), np.flatnonzero(twin) + 1
    a, b = np.minimum(owner[first], owner[second]), np.maximum(owner[first], owner[second])
    return a.astype(np.int64), b.astype(np.int64), seg[first]


def shared_borders(geoms: np.ndarray, groups: np.ndarray | None = None, project=None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of polygons of a clean coverage sharing a border of positive length, and that
    length (in metres through ``project``, lon/lat → metres, else in the geometries' own units),
    restricted to equal ``groups`` when given (:func:`shared_segments`)."""
    a, b, seg = shared_segments(geoms)
    if groups is not None:
        same = np.asarray(groups)[a] == np.asarray(groups)[b]
        a, b, seg = a[same], b[same], seg[same]
    left, right, (total,) = pair_sums(a, b, len(geoms), segment_lengths(seg, project))
    positive = total > 0
    return left[positive], right[positive], total[positive]


def pair_sums(a: np.ndarray, b: np.ndarray, n: int, *values: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The distinct pairs among ``(a[i], b[i])`` (indices below ``n``, as :func:`shared_segments`
    gives them: one row per common segment) and, for each of ``values`` (one number a row: a
    segment's length, its length off the barriers ...), its sum over each pair's rows.

    >>> left, right, (length,) = pair_sums(np.array([0, 1, 0]), np.array([1, 2, 1]), 3, np.array([1.0, 2.0, 3.0]))
    >>> left.tolist(), right.tolist(), length.tolist()
    ([0, 1], [1, 2], [4.0, 2.0])
    """
    key, inverse = np.unique(np.asarray(a, dtype=np.int64) * n + np.asarray(b, dtype=np.int64), return_inverse=True)
    sums = [np.bincount(inverse, weights=v, minlength=len(key)) for v in values]
    return key // n, key % n, sums


def segment_lengths(seg: np.ndarray, project=None) -> np.ndarray:
    """Lengths of segments (k × 4), in metres through ``project`` (an (m × 2) → (m × 2) map)."""
    if len(seg) == 0:
        return np.zeros(0)
    ends = np.concatenate([seg[:, :2], seg[:, 2:]])
    if project is not None:
        ends = project(ends)
    start, stop = ends[:len(seg)], ends[len(seg):]
    return np.hypot(stop[:, 0] - start[:, 0], stop[:, 1] - start[:, 1])


def build_graph(units: gpd.GeoDataFrame, *, major_roads: gpd.GeoDataFrame | None = None,
                group_column: str | None = "community_code", road_buffer_m: float = 15.0) -> UnitGraph:
    """Adjacency graph of ``units`` (restricted to the same ``group_column`` value when given).

    With ``major_roads`` (see :meth:`gridmap.geo.roads.RoadRules.major`), each edge also gets the
    share of its shared border that lies within ``road_buffer_m`` of one: grids prefer to be
    separated there.
    """
    crs = metric_crs_for_frame(units)
    metric = units.to_crs(crs)
    geoms = np.asarray(metric.geometry.values, dtype=object)
    groups = units[group_column].to_numpy() if group_column and group_column in units else None
    # borders found in the units' own CRS: a vertex one side has on the other's straight edge (a
    # T-junction, as a stitched or hand-snapped layer has it) is on it there, and no longer once
    # projected (a straight lon/lat edge is a curve in metres), where the two would share only
    # points; then measured in metres. A vertex merely near the edge shares only points either way
    left, right, borders = border_pairs(np.asarray(units.geometry.values, dtype=object), groups, 0.0)
    borders = np.asarray(gpd.GeoSeries(borders, crs=units.crs).to_crs(crs).values, dtype=object)
    border_length = shapely.length(borders)
    kept = border_length > 1e-3  # a millimetre: corners and float noise are not borders
    left, right, borders, length = left[kept], right[kept], borders[kept], border_length[kept]
    major = np.zeros(len(left))
    if major_roads is not None and len(major_roads) and len(left):
        # share of each border near a major road, sampled at 5 points along it (cheap and
        # robust; an exact buffer overlay costs seconds per thousand borders)
        fractions = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
        # along the border in a canonical order (its parts sorted and each run one way round), so
        # that the samples depend on the border alone, not on how it was found
        lines = shapely.normalize(shapely.line_merge(borders))
        samples = shapely.line_interpolate_point(np.repeat(lines, len(fractions)),
                                                 np.tile(fractions, len(borders)), normalized=True)
        road_tree = shapely.STRtree(np.asarray(major_roads.to_crs(crs).geometry.values, dtype=object))
        hit, _ = road_tree.query(samples, predicate="dwithin", distance=road_buffer_m)
        near = np.zeros(len(samples), dtype=bool)
        near[hit] = True
        major = near.reshape(len(borders), len(fractions)).mean(axis=1)
    centroids = shapely.centroid(geoms)
    xy = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    return UnitGraph(n=len(units), left=left.astype(np.int64), right=right.astype(np.int64), length_m=length,
                     major_share=major, xy=xy, area_m2=shapely.area(geoms), perimeter_m=shapely.length(geoms))


SMALL_GRAPH = 300
"""Up to this many nodes (the measured crossover) spanning trees and connectivity are computed
in plain Python: bisection builds thousands of small trees, and scipy's sparse-matrix set-up costs
more per call (≈0.2 ms) than a Kruskal pass on a few hundred edges."""


def reachable(left: np.ndarray, right: np.ndarray, allowed: np.ndarray, start: int) -> np.ndarray:
    """Nodes reachable from ``start`` along the edges (left, right) through nodes ``allowed``.

    >>> reachable(np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([True, True, False, True]), 0).tolist()
    [0, 1]
    """
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
    return np.fromiter(sorted(seen), dtype=np.int64, count=len(seen))


def is_connected(graph: UnitGraph, nodes: np.ndarray) -> bool:
    """Whether the units ``nodes`` form one piece along the graph (scipy for big sets, a walk
    otherwise): the contiguity rule on the unit graph."""
    nodes = np.asarray(nodes, dtype=np.int64)
    if len(nodes) <= 1:
        return True
    mask = np.zeros(graph.n, dtype=bool)
    mask[nodes] = True
    ok = mask[graph.left] & mask[graph.right]
    if len(nodes) > SMALL_GRAPH:
        local = np.full(graph.n, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        m = sp.coo_matrix((np.ones(ok.sum()), (local[graph.left[ok]], local[graph.right[ok]])),
                          shape=(len(nodes), len(nodes)))
        count, _ = connected_components(m, directed=False)
        return count == 1
    return len(reachable(graph.left[ok], graph.right[ok], mask, int(nodes[0]))) == len(nodes)


def spanning_preorder(n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DFS preorder and parent array of a minimum spanning tree of nodes 0..n-1 along the edges
    (rows, cols) weighted ``weights`` (root: node 0; nodes it does not reach are left out of the
    order, parent -9999). Graphs up to :data:`SMALL_GRAPH` nodes use the plain-Python
    :func:`kruskal_preorder`, larger ones scipy; both give a minimum tree and a preorder in which
    every subtree is a contiguous run (the tree may differ where weights tie). The two agree only
    on positive weights and on each pair of nodes joined once: scipy takes a weight of 0 for no
    edge and adds up the weights of an edge given twice (bisection's and the buildings' trees
    meet both conditions)."""
    if n > SMALL_GRAPH:
        m = sp.csr_matrix((weights, (rows, cols)), shape=(n, n))
        return depth_first_order(minimum_spanning_tree(m), 0, directed=False, return_predecessors=True)
    return kruskal_preorder(n, rows, cols, weights)


def kruskal_preorder(n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal's minimum spanning tree (union-find) of nodes 0..n-1 and an iterative DFS preorder
    from node 0 with each node's parent (-9999 for the root and unreachable nodes, as scipy does;
    unreachable nodes are left out of the order)."""
    order_of_edges = np.argsort(weights, kind="stable")
    left = rows[order_of_edges].tolist()
    right = cols[order_of_edges].tolist()
    if len(left) == n - 1:  # as many edges as a tree: if they connect every node, they are the tree
        order, parent = _preorder(n, _adjacency(n, left, right))
        if len(order) == n:
            return order, parent
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
    return _preorder(n, adjacency)


def _adjacency(n: int, left: list[int], right: list[int]) -> list[list[int]]:
    """Each node's neighbours along the edges, in the edges' order (as Kruskal adds them)."""
    adjacency: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(left, right):
        adjacency[a].append(b)
        adjacency[b].append(a)
    return adjacency


def _preorder(n: int, adjacency: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The iterative DFS preorder from node 0 of a tree given as adjacency lists, and each node's
    parent (-9999 for the root and for nodes it does not reach, which the order leaves out)."""
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


__all__ = ["UnitGraph", "build_graph", "border_pairs", "boundary_segments", "reachable", "is_connected", "kruskal_preorder",
           "pair_sums", "shared_borders", "spanning_preorder", "SMALL_GRAPH", "STORAGE_EPSG"]
