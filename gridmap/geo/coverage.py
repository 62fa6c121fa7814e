"""Polygonal coverages: polygons that tile an area edge to edge, as the units of a community do.

A coverage is *clean* when neighbours share their common borders vertex for vertex (no
T-junctions), nothing overlaps and nothing is left between them. GEOS's coverage validation checks
exactly that, with no tolerance, and so does :func:`problems` here. A clean coverage is what makes
everything downstream exact: a grid (a union of units) has no hairline holes, its border with the
next grid is the same line seen from both sides, and its shape stays valid in any projection.

:func:`clean` makes one: every polygon's boundary goes into one noded arrangement (each crossing
and touching point becomes a vertex of every line through it), the arrangement is cut into faces,
and each polygon becomes the union of the faces it holds. Faces that belong to no polygon (gaps),
to several (overlaps), or that are crumbs or hairline strips (narrower than ``min_width_m``: the
strip between a road's centre line and a community border drawn a metre apart, or a spike left by
an overlay) go to the neighbour they share the longest border with, inside their own group (a
community). Zero-width spikes disappear in the noding itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from gridmap.geo.graph import boundary_segments, grouped, pair_sums, segment_lengths, shared_segments
from gridmap.geo.shapes import points_in

Projector = Callable[[np.ndarray], np.ndarray]
NOISE_AREA_M2 = 0.01
NODING_GRID_DEG = 1e-10  # snap-rounding grid of the noding (≈ 10 µm): robust where lines nearly coincide
SPIKE_TOLERANCE_DEG = 1e-9  # √(area) of the vertex triangles removed: ≈ 0.1 mm, i.e. 1e-8 m²


def faces_of(geoms: np.ndarray) -> np.ndarray:
    """The faces of the noded arrangement of all boundaries of ``geoms``: every face lies inside
    one polygon, several (where they overlap) or none, and neighbouring faces share vertices
    exactly. The noding is
    given each segment once (:func:`distinct_linework`): neighbours that already share an edge
    would hand it over twice, and the noding's time goes with what it is given."""
    noded = shapely.union_all(distinct_linework(np.asarray(geoms, dtype=object)), grid_size=NODING_GRID_DEG)
    return np.asarray(shapely.get_parts(shapely.polygonize([noded])), dtype=object)


def distinct_linework(geoms: np.ndarray) -> np.ndarray:
    """The rings of the polygons of ``geoms`` as lines holding every segment once: a segment found
    again (the same two ends, either way round: the edge two neighbours share) is left out, and
    what is left of each ring runs on as one line from the ring's first vertex as far as it can
    (a run across the ring's start is two lines). The same linework as the
    boundaries (every point of them is on it), about half of it on a coverage of units, in long
    lines (Reykjavík's clean: 78,906 of 150,831 segments in 11,193 lines; noded in 0.43 s, not
    0.91 s, into the same faces). Zero-length segments are left out too: they add no point."""
    parts = shapely.get_parts(geoms)
    parts = parts[shapely.get_type_id(parts) == 3]
    coords, ring = shapely.get_coordinates(shapely.get_rings(parts), return_index=True)
    start = np.flatnonzero(ring[1:] == ring[:-1])  # segment k runs from coords[start[k]] to the next vertex
    a, b = coords[start], coords[start + 1]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    ends = pd.DataFrame(np.hstack([np.where(flip[:, None], b, a), np.where(flip[:, None], a, b)]))
    kept = start[~ends.duplicated().to_numpy() & (a != b).any(axis=1)]
    if not len(kept):
        return np.empty(0, dtype=object)
    # a line breaks where the next kept segment does not start where this one ends (in its ring)
    new_line = np.r_[True, (kept[1:] != kept[:-1] + 1) | (ring[kept[1:]] != ring[kept[:-1]])]
    line = np.cumsum(new_line) - 1
    last = np.r_[new_line[1:], True]
    points = np.concatenate([coords[kept], coords[kept[last] + 1]])
    of_line = np.concatenate([line, line[last]])
    order = np.argsort(of_line, kind="stable")  # each line's starts in order, then its last end
    return shapely.linestrings(points[order], indices=of_line[order])


def _owners(faces: np.ndarray, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each face, the polygon holding its interior point (-1: none) and how many hold it."""
    face_index, geom_index = points_in(geoms, shapely.point_on_surface(faces))
    owner = np.full(len(faces), -1, dtype=np.int64)
    count = np.bincount(face_index, minlength=len(faces))
    owner[face_index[::-1]] = geom_index[::-1]  # the first (lowest index) holder
    return owner, count


def clean(geoms: np.ndarray, groups: np.ndarray, *, project: Projector, min_width_m: float = 0.0,
          min_area_m2: float = NOISE_AREA_M2, territory: np.ndarray | None = None,
          territory_groups: np.ndarray | None = None, barriers: np.ndarray | None = None) -> np.ndarray:
    """The polygons ``geoms`` (lon/lat) rebuilt as a clean coverage; one geometry per input (empty
    where a polygon lost everything to its neighbours).

    ``groups`` (e.g. community codes) keeps faces inside their group. ``territory`` (the group
    outlines, with ``territory_groups``) adds their boundaries to the noding and assigns faces
    no polygon holds to the group that contains them, so the result fills each outline exactly.
    ``project`` maps lon/lat coordinates to metres (for widths and areas); faces narrower than
    ``min_width_m`` (mean width, 2·area/perimeter) or smaller than ``min_area_m2`` join a neighbour.
    ``barriers`` (lines: roads, rivers, railways) are borders a face would rather not be moved
    across: a strip between a compound wall and a road joins the compound, not the block across
    the road. Only where every neighbour lies across a barrier does the longest border win.
    """
    geoms = np.asarray(geoms, dtype=object)
    groups = np.asarray(groups, dtype=object)
    lines = [geoms] if territory is None else [geoms, np.asarray(territory, dtype=object)]
    faces = faces_of(np.concatenate(lines))
    owner, holders = _owners(faces, geoms)
    face_group = np.where(owner >= 0, groups[np.maximum(owner, 0)], None)
    if territory is not None:
        t_owner, _ = _owners(faces, np.asarray(territory, dtype=object))
        inside = t_owner >= 0
        face_group[inside] = np.asarray(territory_groups, dtype=object)[t_owner[inside]]
        keep = inside
        faces, owner, holders, face_group = faces[keep], owner[keep], holders[keep], face_group[keep]
        owner[owner >= 0] = np.where(groups[owner[owner >= 0]] == face_group[owner >= 0], owner[owner >= 0], -1)
    else:
        keep = owner >= 0
        faces, owner, holders, face_group = faces[keep], owner[keep], holders[keep], face_group[keep]
    metric = shapely.transform(faces, project)
    area = shapely.area(metric)
    perimeter = shapely.length(metric)
    width = np.divide(2 * area, perimeter, out=np.zeros(len(faces)), where=perimeter > 0)
    loose = (owner < 0) | (holders > 1) | (area < min_area_m2) | (width < min_width_m)
    owner = _give_to_neighbours(faces, owner, loose, face_group.astype(str), project, barriers)
    out = np.empty(len(geoms), dtype=object)
    out[:] = shapely.Polygon()
    held = np.flatnonzero(owner >= 0)
    held = held[np.argsort(owner[held], kind="stable")]
    units, starts, sizes = np.unique(owner[held], return_index=True, return_counts=True)
    single = sizes == 1
    out[units[single]] = faces[held[starts[single]]]
    for unit, start, size in zip(units[~single], starts[~single], sizes[~single]):
        out[unit] = shapely.coverage_union_all(faces[held[start:start + size]])
    present = ~shapely.is_empty(out)
    # crumbs merged into a neighbour may leave a vertex that doubles back along an edge (a spike
    # of no width, harmless in lon/lat and a self-intersection once projected): remove vertices
    # whose triangle is below a square micrometre, the same on both sides of every shared edge
    out[present] = _fill_crumb_holes(shapely.coverage_simplify(out[present], SPIKE_TOLERANCE_DEG), project,
                                     min_area_m2)
    # faces come out of polygonize turning either way: exteriors counter-clockwise, holes
    # clockwise (RFC 7946's rule), so that signed-area readers (pyproj's Geod) measure them right
    out[present] = shapely.orient_polygons(out[present], exterior_cw=False)
    return out


def _fill_crumb_holes(geoms: np.ndarray, project: Projector, min_area_m2: float) -> np.ndarray:
    """Polygons without holes smaller than ``min_area_m2`` (a crumb of no width left between two
    nearly coincident lines, which no neighbour occupies: filling it closes a gap)."""
    geoms = geoms.copy()
    for i in np.flatnonzero(shapely.get_num_interior_rings(geoms) > 0):
        polygon = geoms[i]
        holes = [ring for ring in polygon.interiors
                 if shapely.area(shapely.transform(shapely.Polygon(ring), project)) >= min_area_m2]
        if len(holes) < len(polygon.interiors):
            geoms[i] = shapely.Polygon(polygon.exterior, holes)
    return geoms


def on_barriers(seg: np.ndarray, barriers: np.ndarray | None) -> np.ndarray:
    """Whether each segment (k × 4) runs along a barrier line: its midpoint lies on one (within
    1e-8°; the segment and the barrier are the same line up to the noding's snap rounding)."""
    on = np.zeros(len(seg), dtype=bool)
    if barriers is None or len(barriers) == 0 or len(seg) == 0:
        return on
    middle = shapely.points((seg[:, :2] + seg[:, 2:]) / 2)
    hit, _ = shapely.STRtree(barriers).query(middle, predicate="dwithin", distance=1e-8)
    on[hit] = True
    return on


def _give_to_neighbours(faces: np.ndarray, owner: np.ndarray, loose: np.ndarray, group: np.ndarray,
                        project: Projector, barriers: np.ndarray | None = None) -> np.ndarray:
    """Owners for the loose faces: the owner of the neighbouring settled face (same group) with
    the longest shared border not along a barrier (then the longest border), repeated until
    nothing changes (a gap may only touch other gaps). A loose face with no settled neighbour
    keeps its owner (or none)."""
    owner = owner.copy()
    if not loose.any():
        return owner
    # faces of one noded arrangement share their borders segment for segment: found by sorting
    a, b, seg = shared_segments(faces)
    keep = (group[a] == group[b]) & (loose[a] | loose[b])
    a, b, seg = a[keep], b[keep], seg[keep]
    seg_length = segment_lengths(seg, project)
    seg_free = np.where(on_barriers(seg, barriers), 0.0, seg_length)
    left, right, (length, free) = pair_sums(a, b, len(faces), seg_length, seg_free)
    src = np.concatenate([left, right])
    dst = np.concatenate([right, left])
    size = np.concatenate([length, length])
    free = np.concatenate([free, free])
    loose = loose.copy()
    for settled_only in (True, False):  # first from settled faces; then from any face with an owner
        for _ in range(len(faces)):
            settled = ~loose if settled_only else owner >= 0
            candidates = loose[src] & settled[dst] & (owner[dst] >= 0) & (size > 0)
            if not candidates.any():
                break
            table = pd.DataFrame({"face": src[candidates], "owner": owner[dst[candidates]], "len": size[candidates],
                                  "free": free[candidates]})
            best = table.groupby(["face", "owner"])[["free", "len"]].sum().reset_index().sort_values(
                ["face", "free", "len", "owner"], ascending=[True, False, False, True]).drop_duplicates("face")
            owner[best["face"].to_numpy()] = best["owner"].to_numpy()
            loose[best["face"].to_numpy()] = False
    return owner


ON_BORDER_DEG = NODING_GRID_DEG
"""A vertex this close to another unit's edge lies on it: the snap-rounding grid of the noding
that made the units (:func:`faces_of`)."""
STITCH_ON_BORDER_DEG = 2 * NODING_GRID_DEG
"""A vertex of one build this close to an edge of another build lies on it (the stitching's
reach, :func:`stitch_borders`). Each build snap-rounds its own vertices, each by up to 0.7 of a
grid step: a border crossing one build found and the two ends of the other build's edge can be
about 1.4 steps off one line. On a generated city of a million units built in 66 pieces, three
such crossings lay 1.002–1.019e-10° from the other side's edge, just beyond
:data:`ON_BORDER_DEG`: their edges stayed unmatched and the build failed."""


def with_vertices(polygon, points: np.ndarray, tolerance: float = ON_BORDER_DEG):
    """``polygon`` with those of ``points`` (k × 2) that lie on its edges (within ``tolerance``,
    between the two ends) inserted into them, in order along each edge, each point into one edge
    of a ring (the nearest).
    Existing vertices are never moved, so the neighbour's edge, which has them, still matches."""
    def ring(coords: np.ndarray) -> np.ndarray:
        a, d = coords[:-1], coords[1:] - coords[:-1]
        length2 = (d ** 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((points[None, :, 0] - a[:, None, 0]) * d[:, None, 0]
                 + (points[None, :, 1] - a[:, None, 1]) * d[:, None, 1]) / length2[:, None]
        off = np.hypot(a[:, None, 0] + t * d[:, None, 0] - points[None, :, 0],
                       a[:, None, 1] + t * d[:, None, 1] - points[None, :, 1])
        on = (length2[:, None] > 0) & (t > 0) & (t < 1) & (off <= tolerance)
        if not on.any():
            return coords
        # a point near a vertex can be within reach of both edges there: it goes on the nearer
        # only (inserted on both, the ring would go to it and back)
        nearest = np.argmin(np.where(on, off, np.inf), axis=0)
        on &= np.arange(len(a))[:, None] == nearest[None, :]
        # after the first vertex, each edge's points in order along it, then the edge's end
        edge, hit = np.nonzero(on)
        where = np.concatenate([edge, np.arange(len(a))])
        then = np.concatenate([np.zeros(len(edge)), np.ones(len(a))])
        along = np.concatenate([t[edge, hit], np.zeros(len(a))])
        order = np.lexsort((along, then, where))
        return np.concatenate([coords[:1], np.concatenate([points[hit], coords[1:]])[order]])

    parts = [shapely.Polygon(ring(np.asarray(part.exterior.coords)),
                             [ring(np.asarray(r.coords)) for r in part.interiors])
             for part in shapely.get_parts(polygon)]
    return parts[0] if polygon.geom_type == "Polygon" else shapely.MultiPolygon(parts)


SAME_POINT_DEG = 4 * NODING_GRID_DEG
"""Two vertices this close (≈ 40 µm, a few steps of the noding's grid) from two builds are one
point computed twice: a border crossing found from each side, snap-rounded to neighbouring grid
points (seen 1e-10° apart on 雨城区 and Reykjavík)."""


def _snapped_to(geoms: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``geoms`` with every vertex of their outer edges within :data:`SAME_POINT_DEG` of one of
    ``anchors`` (k × 2) moved onto the nearest, the same way in every polygon that has it, so they
    keep matching each other. Inserted beside each other, the two would make a fold (a ring going
    to one point and back, or edges that match on neither side). A vertex whose move would make a
    polygon invalid (two vertices of one ring brought onto one point: a notch narrower than the
    snap) stays where it is, in every polygon, and the stitching inserts the neighbour's point
    into the edges instead."""
    xy = _outer_vertices(geoms)  # inner vertices are on no border with the anchors' side
    if not len(xy) or not len(anchors):
        return geoms
    gap, nearest = cKDTree(anchors).query(xy, distance_upper_bound=SAME_POINT_DEG)
    moved = np.flatnonzero(np.isfinite(gap) & (gap > 0))
    out = geoms
    for _ in range(3):
        if not len(moved):
            return geoms
        point_of, touched = shapely.STRtree(geoms).query(shapely.points(xy[moved]), predicate="dwithin",
                                                         distance=SAME_POINT_DEG)
        touched = np.unique(touched)
        tree, targets = cKDTree(xy[moved]), anchors[nearest[moved]]

        def snap(coords: np.ndarray) -> np.ndarray:
            gap, which = tree.query(coords, distance_upper_bound=1e-14)
            hit = gap == 0  # this very vertex
            coords = coords.copy()
            coords[hit] = targets[which[hit]]
            return coords

        out = geoms.copy()
        out[touched] = shapely.remove_repeated_points(shapely.transform(geoms[touched], snap), 0.0)
        broken = touched[~shapely.is_valid(out[touched])]
        if not len(broken):
            return out
        own = np.unique(shapely.get_coordinates(geoms[broken]), axis=0)
        keep = ~(xy[moved][:, None, :] == own[None, :, :]).all(axis=2).any(axis=1)
        moved = moved[keep]
    return geoms


def _outer_vertices(geoms: np.ndarray) -> np.ndarray:
    """The vertices (k × 2) of the outer edges of a set of polygons that tile without overlap:
    the ends of every segment that one polygon alone has. Only these can lie on a border with
    another set; a vertex of an inner edge that merely comes within a hair of that border (the end
    of a short edge between two units, 1e-10° from it, seen on 雨城区) is not on it."""
    seg, _ = boundary_segments(geoms)
    distinct, count = np.unique(seg, axis=0, return_counts=True)
    once = distinct[count == 1]
    return np.unique(np.concatenate([once[:, :2], once[:, 2:]]), axis=0)


def stitch_borders(new: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, dict[int, object]]:
    """Units rebuilt for some communities (``new``) next to the stored units of the others
    (``kept``), made to match across the community borders vertex for vertex, as one build would
    have made them: each side gets the other's vertices that lie on its edges. Returns the new
    units so completed and the kept units that gained vertices ({index in ``kept``: geometry})."""
    new = np.asarray(new, dtype=object).copy()
    kept = np.asarray(kept, dtype=object)
    revised: dict[int, object] = {}
    if not len(new) or not len(kept):
        return new, revised
    new = _snapped_to(new, _outer_vertices(kept))
    for source, targets, into in ((kept, new, None), (new, kept, revised)):
        xy = _outer_vertices(source)
        found, point = shapely.STRtree(shapely.points(xy)).query(shapely.boundary(targets), predicate="dwithin",
                                                                  distance=STITCH_ON_BORDER_DEG)
        hit = np.unique(found)
        for target, at in zip(hit, grouped(found, hit)):  # one sort, not a scan per target
            own = np.unique(shapely.get_coordinates(targets[target]), axis=0)
            candidates = xy[point[at]]
            fresh = candidates[~(candidates[:, None, :] == own[None, :, :]).all(axis=2).any(axis=1)]
            if not len(fresh):
                continue
            stitched = with_vertices(targets[target], fresh, STITCH_ON_BORDER_DEG)
            if into is None:
                new[target] = stitched
            else:
                into[int(target)] = stitched
    return new, revised


def union(geoms: np.ndarray):
    """The union of polygons that tile without overlapping (units of a grid, cells of a unit): an
    exact coverage union (no overlay, every vertex kept: ten times faster than ``union_all`` on a
    grid's units), checked, and the general overlay where the check fails (input that overlaps or
    whose shared edges do not match vertex for vertex): the result is valid either way. The overlay
    is GEOS's union of disjoint subsets, which unions each group of polygons that touch on its own:
    0.36 s against ``union_all``'s 0.51 s on a jittered department layer of 410 grids."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 1:
        return geoms[0]
    try:
        out = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.disjoint_subset_union_all(geoms)
    area = float(shapely.area(geoms).sum())
    if shapely.is_valid(out) and abs(shapely.area(out) - area) <= 1e-9 * max(area, 1e-30):
        return out
    return shapely.disjoint_subset_union_all(geoms)


def dissolve(geoms: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`union` of ``geoms`` per key: the sorted distinct keys and one geometry each."""
    geoms = np.asarray(geoms, dtype=object)
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    distinct, starts = np.unique(keys[order], return_index=True)
    stops = np.r_[starts[1:], len(keys)]
    out = np.empty(len(distinct), dtype=object)
    out[:] = [union(geoms[order[a:b]]) for a, b in zip(starts, stops)]
    return distinct, out


def problems(geoms: np.ndarray) -> np.ndarray:
    """Indices of polygons whose edges do not match their neighbours exactly (an overlap, a
    T-junction, a border that almost but not quite coincides): GEOS's coverage validation, no
    tolerance. Empty for a clean coverage."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = shapely.coverage_invalid_edges(geoms)
    return np.flatnonzero(~shapely.is_empty(edges))


__all__ = ["clean", "dissolve", "faces_of", "on_barriers", "problems", "union", "stitch_borders", "with_vertices",
           "NOISE_AREA_M2", "ON_BORDER_DEG", "STITCH_ON_BORDER_DEG"]
