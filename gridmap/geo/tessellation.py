"""Building cells: an area (a unit, a grid) tiled with one cell per building, each cell the land
nearer to its building than to any other, so that buildings become the atoms a grid or a
micro-grid is made of (in Chinese practice the 楼栋 is the atom of a grid, the 单元 of a micro-grid).

The method is the enclosed tessellation of urban morphology (momepy's ``enclosed_tessellation``):
points sampled along each footprint's outline, shrunk a little so that touching buildings stay
apart, a Voronoi diagram of each area's points, the Voronoi cells dissolved per building and
clipped to the area. An address point (a building given as a point) samples itself. The cells of
an area share borders vertex for vertex (cut from one diagram, checked per area, and cleaned with
:func:`gridmap.geo.coverage.clean` where the check fails): a group of cells unions into a polygon
without slivers, and the groups of an area tile it exactly. Across the border of two areas the
cells are not matched (each area's cells have the points where its own cells' borders meet the
area's outline): a caller that needs one clean coverage of all of them cleans the layer it makes
of them (:func:`gridmap.geo.coverage.clean`), as units and micro-grids do.

Work is done in a local metric frame (metres east and north of the area, an affine scaling of
lon/lat), the result is in lon/lat like the input. Pure geometry: no database, no web.
"""

from __future__ import annotations

import numpy as np
import shapely

from gridmap.geo import coverage
from gridmap.geo.shapes import LocalScale, polygonal

SAMPLE_STEP_M = 5.0   # points every this many metres along a footprint's outline (finer changes no cell measurably)
SHRINK_M = 0.4        # footprints shrunk by this before sampling: touching buildings stay apart
JITTER_M = 1e-3       # sample points moved by up to this (deterministically): no cocircular points


def building_cells(areas: np.ndarray, footprints: np.ndarray, area_of: np.ndarray, *, step_m: float = SAMPLE_STEP_M,
                   shrink_m: float = SHRINK_M, exact: bool = True, smooth_m: float = 0.0) -> np.ndarray:
    """One cell per footprint (polygons, lines or points, lon/lat), the cells of each area's footprints
    together tiling that area exactly. ``area_of`` gives each footprint's area (an index into
    ``areas``, e.g. the unit holding its representative point). All areas are done at once (one
    vectorised call for their Voronoi diagrams); an invalid area is repaired first.

    An area with one footprint is that footprint's cell; an area with none is not covered.
    ``exact=False``: the cells as the diagram cuts them, neither checked to tile their area vertex
    for vertex (and repaired where not) nor made one piece each, for a caller that cleans what it
    makes of them anyway (the unit build's land along walls, :mod:`gridmap.geo.strips`).
    ``smooth_m``: the borders between cells simplified within this many metres (a coverage
    simplification of each area's cells before they are cut to the area, which keeps them
    matched and leaves the area's outline as it is): the borders of a Voronoi diagram of points
    every ``step_m`` zigzag, each zig a vertex for whatever nodes them next.

    Example
    -------
    >>> cells = building_cells(units.geometry.values, buildings.geometry.values, unit_of_building)  # doctest: +SKIP
    >>> shapely.coverage_union_all(cells[unit_of_building == 0])  # doctest: +SKIP  (unit 0, whole)
    """
    areas = np.asarray(areas, dtype=object).copy()
    footprints = np.asarray(footprints, dtype=object)
    area_of = np.asarray(area_of, dtype=np.int64)
    cells = np.empty(len(footprints), dtype=object)
    if len(footprints) == 0:
        return cells
    broken = ~shapely.is_valid(areas)
    areas[broken] = polygonal(shapely.make_valid(areas[broken]))
    counts = np.bincount(area_of, minlength=len(areas))
    alone = counts[area_of] == 1
    cells[alone] = areas[area_of[alone]]
    shared = np.flatnonzero(~alone)
    if len(shared):
        cells[shared] = _tessellate(areas, footprints[shared], area_of[shared], step_m, shrink_m, exact, smooth_m)
    return cells


def _tessellate(areas: np.ndarray, footprints: np.ndarray, area_of: np.ndarray, step_m: float,
                shrink_m: float, exact: bool = True, smooth_m: float = 0.0) -> np.ndarray:
    """The cells of footprints that share their area with others (see :func:`building_cells`):
    one Voronoi diagram per area, of its own buildings' sample points (as momepy's enclosed
    tessellation does per enclosure), so every part of an area is nearer one of its own buildings
    than any other of them; the diagrams of many areas in one vectorised call, areas taken in
    batches of about :data:`BATCH_POINTS` sample points (:func:`_tessellate_batch`)."""
    frames = _Frames(areas, np.unique(area_of))
    points, owner = _samples(footprints, area_of, frames, step_m, shrink_m)
    order = np.argsort(area_of[owner], kind="stable")  # the points area by area
    points, owner = points[order], owner[order]
    cells = np.empty(len(footprints), dtype=object)
    for batch in _batches(area_of[owner], BATCH_POINTS):
        mine = np.unique(owner[batch])  # the footprints of the batch's areas, all of them
        cells[mine] = _tessellate_batch(areas, points[batch], np.searchsorted(mine, owner[batch]), footprints[mine],
                                        area_of[mine], frames, exact, smooth_m)
    return cells


class _Frames:
    """A local metric frame per area: metres east and north of the centre of the area's own
    bounds, scaled at its latitude. Each area's own, not one for all the areas of a call: the
    cells of an area are then the same whichever other areas are tiled with it (a grid divided
    into micro-grids alone or with the whole plan: with one frame for all, its cells moved by a
    hair, and so did its micro-grids, and the leaders recorded on them were lost)."""

    def __init__(self, areas: np.ndarray, used: np.ndarray):
        bounds = shapely.bounds(areas[used])
        self.origin = np.full((len(areas), 2), np.nan)
        self.origin[used] = (bounds[:, :2] + bounds[:, 2:]) / 2
        self.factor = np.full((len(areas), 2), np.nan)
        self.factor[used, 0] = LocalScale.at(0.0).mx * np.cos(np.radians(self.origin[used, 1]))  # LocalScale.at's, vectorised
        self.factor[used, 1] = LocalScale.at(0.0).my

    def to_m(self, geoms: np.ndarray, area: np.ndarray) -> np.ndarray:
        """``geoms`` (lon/lat) in the frames of their ``area`` s (one index each)."""
        return self._moved(geoms, area, lambda xy, a: (xy - self.origin[a]) * self.factor[a])

    def to_lonlat(self, geoms: np.ndarray, area: np.ndarray) -> np.ndarray:
        return self._moved(geoms, area, lambda xy, a: xy / self.factor[a] + self.origin[a])

    def projector(self, area: int):
        """The frame of one area as a coordinate function (for :func:`gridmap.geo.coverage.clean`)."""
        return lambda xy: (xy - self.origin[area]) * self.factor[area]

    @staticmethod
    def _moved(geoms: np.ndarray, area: np.ndarray, move) -> np.ndarray:
        geoms = np.asarray(geoms, dtype=object)
        coords, index = shapely.get_coordinates(geoms, return_index=True)
        return shapely.set_coordinates(geoms.copy(), move(coords, np.asarray(area)[index]))


BATCH_POINTS = 50_000
"""Sample points whose areas' diagrams are made in one call. All at once, a generated district of
16,384 communities (267,000 units, 1.6 million buildings) held 23 GB when the system stopped it:
the diagrams' cells take about 0.8 kB a point (280,000 points: 230 MB). In batches the diagrams
take a batch's memory, and the calls are still few (one per 50,000 points)."""
SAMPLE_CHUNK = 20_000
"""Footprints shrunk and sampled in one call (100,000 at once took about 300 MB)."""


def _batches(point_area: np.ndarray, size: int) -> list[slice]:
    """Runs of points (sorted by area) of about ``size`` points each, every area in one run."""
    starts = np.flatnonzero(np.r_[True, point_area[1:] != point_area[:-1]])  # where each area begins
    runs, begin = [], 0
    for at in starts[1:].tolist():
        if at - begin >= size:
            runs.append(slice(begin, at))
            begin = at
    return runs + [slice(begin, len(point_area))] if len(point_area) else runs


def _tessellate_batch(areas: np.ndarray, points: np.ndarray, owner: np.ndarray, footprints: np.ndarray,
                      area_of: np.ndarray, frames: _Frames, exact: bool = True, smooth_m: float = 0.0) -> np.ndarray:
    """The cells of ``footprints`` (whole areas' worth, ``area_of`` each) from their sample
    ``points`` (metric, sorted by area; ``owner``: the footprint of each, an index into
    ``footprints``); not ``exact``: as the diagram cuts them (:func:`building_cells`)."""
    groups, group_of, per_group = np.unique(area_of[owner], return_inverse=True, return_counts=True)
    sites = shapely.multipoints(points, indices=group_of)
    reach = shapely.bounds(shapely.envelope(shapely.union(shapely.envelope(frames.to_m(areas[groups], groups)),
                                                           shapely.envelope(sites))))
    boxes = shapely.box(reach[:, 0] - 10.0, reach[:, 1] - 10.0, reach[:, 2] + 10.0, reach[:, 3] + 10.0)
    diagrams = shapely.voronoi_polygons(sites, extend_to=boxes, ordered=True)
    lone = per_group == 1  # one point: its diagram is empty, its cell the whole box
    diagrams[lone] = boxes[lone]
    voronoi, of_group = shapely.get_parts(diagrams, return_index=True)
    if not np.array_equal(np.bincount(of_group, minlength=len(groups)), per_group):
        raise ValueError("a Voronoi diagram of building samples lost points: cells cannot be matched to buildings")
    voronoi = polygonal(voronoi)  # a cell may come as a collection holding its polygon
    invalid = ~shapely.is_valid(voronoi)
    voronoi[invalid] = polygonal(shapely.make_valid(voronoi[invalid]))
    zones = _dissolve(voronoi, owner, len(footprints))
    if smooth_m > 0:
        zones = _smoothed(zones, area_of, smooth_m)
    zones = frames.to_lonlat(zones, area_of)
    if not exact:
        return shapely.intersection(zones, areas[area_of])
    cells = _clipped(zones, areas, area_of, frames)
    return one_piece_each(cells, _anchors(footprints), area_of)


def _smoothed(zones: np.ndarray, area_of: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Each area's zones (metric, a coverage of a box round the area) with their shared borders
    simplified within ``tolerance_m``, the box's outline kept; an area whose zones GEOS will not
    take as a coverage is left as it is."""
    zones = zones.copy()
    order = np.argsort(area_of, kind="stable")
    bounds = np.flatnonzero(np.r_[True, area_of[order][1:] != area_of[order][:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):
        members = order[start:stop]
        if len(members) > 1:
            try:
                zones[members] = shapely.coverage_simplify(zones[members], tolerance_m, simplify_boundary=False)
            except shapely.errors.GEOSException:
                pass
    return zones


def _anchors(footprints: np.ndarray) -> np.ndarray:
    """A point of each footprint that its own piece of a cut cell holds: a point inside it, or
    for a line its middle (a line's representative point may be an end it shares with the next
    line, where a sliver of the cell is cut off). For several lines (a MultiLineString) the middle
    of their length may be the end of one of them."""
    anchors = shapely.point_on_surface(footprints)
    lineal = np.isin(shapely.get_type_id(footprints), (1, 2, 5))
    anchors[lineal] = shapely.line_interpolate_point(footprints[lineal], 0.5, normalized=True)
    return anchors


def _clipped(zones: np.ndarray, areas: np.ndarray, area_of: np.ndarray, frames: _Frames) -> np.ndarray:
    """Each building's zone cut to its area. An area's zones are the cells of its own Voronoi
    diagram dissolved (a coverage of a box around the area), so the cuts of two neighbouring zones
    by the area's outline meet at the same computed point: the cells tile the area and match each
    other vertex for vertex. An area where they do not (or where a cell came out empty or not
    polygonal) is rebuilt by a full clean of its zones (:func:`gridmap.geo.coverage.clean`), one
    area at a time (two neighbouring areas' zones overlap: cleaned together, faces held by both
    went to neither, and most cells of both came out empty), as every area was before: on a
    generated district of 576 areas and 6,490 buildings the cut took 0.14 s where that clean
    took 1.8 s."""
    cells = shapely.intersection(zones, areas[area_of])
    order = np.argsort(area_of, kind="stable")
    bounds = np.searchsorted(area_of[order], np.arange(len(areas) + 1))
    redo = [members for members in (order[bounds[a]:bounds[a + 1]] for a in np.unique(area_of))
            if not _tiles(cells[members], areas[area_of[members[0]]])]
    for members in redo:  # one area at a time: the zones of neighbouring areas overlap each other's
        area = area_of[members[0]]
        cells[members] = coverage.clean(zones[members], area_of[members].astype(object), project=frames.projector(area),
                                        territory=areas[[area]], territory_groups=np.array([area], dtype=object))
    cells[~shapely.is_empty(cells)] = shapely.orient_polygons(cells[~shapely.is_empty(cells)], exterior_cw=False)
    return cells


def _tiles(cells: np.ndarray, area) -> bool:
    """Whether ``cells`` tile ``area``: each a non-empty polygon, together its area (to 1e-9 of
    it), neighbours matching vertex for vertex (GEOS's coverage validation: no overlap, no
    unmatched edge)."""
    if not (np.isin(shapely.get_type_id(cells), (3, 6)) & ~shapely.is_empty(cells)).all():
        return False
    whole = float(shapely.area(area))
    return abs(float(shapely.area(cells).sum()) - whole) <= 1e-9 * whole and bool(shapely.coverage_is_valid(cells))


def one_piece_each(cells: np.ndarray, anchors: np.ndarray, area_of: np.ndarray) -> np.ndarray:
    """Cells in one piece: where the area's outline cuts a building's Voronoi cell in two (a
    concave area), the piece away from the building (the one holding its ``anchors`` point) goes
    to the neighbouring cell of the same area (``area_of``) that shares the longest border with
    it. A cell is an atom, and a group of atoms is contiguous only if each atom is. The cells stay
    a coverage: the piece and its new cell share the border's vertices already. A piece touching
    no other cell along a border stays where it is."""
    cells = cells.copy()
    for _ in range(4):  # a piece that borders only another detached piece moves on the next pass
        multi = np.flatnonzero(shapely.get_num_geometries(cells) > 1)
        if not len(multi):
            break
        tree = shapely.STRtree(cells)
        moved = False
        for i in multi:
            pieces = shapely.get_parts(cells[i])
            home = np.flatnonzero(shapely.intersects(pieces, anchors[i]))
            home = int(home[0]) if len(home) else int(np.argmax(shapely.area(pieces)))
            kept = [pieces[home]]
            for k, piece in enumerate(pieces):
                if k == home:
                    continue
                near = tree.query(piece, predicate="intersects")
                near = near[(near != i) & (area_of[near] == area_of[i])]
                shared = shapely.length(shapely.intersection(cells[near], piece)) if len(near) else np.zeros(0)
                if not len(near) or shared.max() <= 0:
                    kept.append(piece)  # touches no other cell of its area along a border: it stays
                    continue
                j = int(near[np.argmax(shared)])
                cells[j] = _union(np.array([cells[j], piece], dtype=object))
                moved = True
            cells[i] = kept[0] if len(kept) == 1 else shapely.multipolygons(kept)
        if not moved:
            break
    return cells


def _samples(footprints: np.ndarray, area_of: np.ndarray, frames: _Frames, step_m: float, shrink_m: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Points (metric, in the frame of the footprint's area) along each footprint's (shrunk) outline, every
    ``step_m``, and the footprint each belongs to; a line (a frontage, :mod:`gridmap.geo.strips`)
    is sampled along itself; a point footprint, or one too small to shrink, samples its
    representative point. Footprints are shrunk and sampled :data:`SAMPLE_CHUNK` at a
    time (their projected, shrunk and densified outlines are the memory; the points are not), in
    the order one pass over them all gives: outlines' points first, then the single points."""
    outline_xy, outline_owner, point_xy, point_owner = [], [], [], []
    for start in range(0, len(footprints), SAMPLE_CHUNK):
        metric = frames.to_m(footprints[start:start + SAMPLE_CHUNK], area_of[start:start + SAMPLE_CHUNK])
        shrunk = shapely.buffer(metric, -shrink_m, join_style="mitre")
        polygonal = np.isin(shapely.get_type_id(metric), (3, 6)) & ~shapely.is_empty(shrunk)
        dense = shapely.segmentize(shapely.boundary(shrunk[polygonal]), step_m)
        coords, index = shapely.get_coordinates(dense, return_index=True)
        outline_xy.append(coords)
        outline_owner.append(start + np.flatnonzero(polygonal)[index])
        lineal = np.isin(shapely.get_type_id(metric), (1, 2, 5)) & ~shapely.is_empty(metric)
        dense = shapely.segmentize(metric[lineal], step_m)
        coords, index = shapely.get_coordinates(dense, return_index=True)
        outline_xy.append(coords)
        outline_owner.append(start + np.flatnonzero(lineal)[index])
        lone = np.flatnonzero(~polygonal & ~lineal)
        point_xy.append(shapely.get_coordinates(shapely.point_on_surface(metric[lone])))
        point_owner.append(start + lone)
    coords = np.concatenate(outline_xy + point_xy) if len(footprints) else np.zeros((0, 2))
    owner = np.concatenate(outline_owner + point_owner) if len(footprints) else np.zeros(0, dtype=np.int64)
    # a point repeated within one footprint is kept once; the same point in two footprints (two
    # address points at one spot, two outlines drawn over each other) is kept for each, the
    # jitter below setting them a millimetre apart: each building keeps a cell
    _, first = np.unique(np.column_stack([owner, np.round(coords, 6)]), axis=0, return_index=True)
    first.sort()
    coords, owner = coords[first], owner[first]
    # a millimetre of fixed jitter: regular layouts put four points on a circle, where Voronoi
    # cells degenerate into self-touching shapes; the cells move by far less than the noding grid.
    # Each point's own (a hash of where it is in its area's frame), not drawn from one stream for
    # the call: an area's points then move alike whichever areas share the call
    return coords + _jitter(coords), owner


def _jitter(coords: np.ndarray) -> np.ndarray:
    """Up to :data:`JITTER_M` each way, a fixed function of each point (to the tenth of a
    millimetre) and of how many points at that spot came before it (two address points at one
    spot are moved apart)."""
    key = np.round(coords * 1e4).astype(np.int64).view(np.uint64)
    order = np.lexsort((np.arange(len(key)), key[:, 1], key[:, 0]))
    same = np.r_[False, np.all(key[order][1:] == key[order][:-1], axis=1)]
    run_start = np.maximum.accumulate(np.where(same, 0, np.arange(len(key))))
    rank = np.empty(len(key), dtype=np.uint64)
    rank[order] = (np.arange(len(key)) - run_start).astype(np.uint64)
    mixed = (key[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ key[:, 1] * np.uint64(0xC2B2AE3D27D4EB4F)
             ^ rank * np.uint64(0x27D4EB2F165667C5))
    halves = np.stack([mixed >> np.uint64(11), (mixed * np.uint64(0x165667B19E3779F9)) >> np.uint64(11)], axis=1)
    return (halves.astype(np.float64) / float(1 << 53) * 2.0 - 1.0) * JITTER_M


def _dissolve(cells: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """The Voronoi cells dissolved per owner (cells of a Voronoi diagram form a coverage)."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(count + 1))
    out = np.empty(count, dtype=object)
    for i in range(count):
        members = cells[order[bounds[i]:bounds[i + 1]]]
        members = members[~shapely.is_empty(members)]
        out[i] = (shapely.Polygon() if len(members) == 0 else members[0] if len(members) == 1 else _union(members))
    return out



def _union(members: np.ndarray):
    """The union of Voronoi cells: a coverage union, unless floating point left two cells' shared
    edge not quite noded (then the general overlay)."""
    try:
        return shapely.coverage_union_all(members)
    except shapely.errors.GEOSException:
        return shapely.union_all(members)


__all__ = ["building_cells", "one_piece_each", "SAMPLE_STEP_M", "SHRINK_M"]
