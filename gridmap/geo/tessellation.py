"""Building cells: an area (a unit, a grid) tiled with one cell per building, each cell the land
nearer to its building than to any other, so that buildings become the atoms a grid or a
micro-grid is made of (in Chinese practice the 楼栋 is the atom of a grid, the 单元 of a micro-grid).

The method is the enclosed tessellation of urban morphology (momepy's ``enclosed_tessellation``):
points sampled along each footprint's outline, shrunk a little so that touching buildings stay
apart, a Voronoi diagram of all the points, the Voronoi cells dissolved per building and clipped
to the area. An address point (a building given as a point) samples itself. The cells are then
made a clean coverage of the area with :func:`gridmap.geo.coverage.clean`, so they share borders
vertex for vertex with each other and with the area's own outline: a group of cells unions into a
polygon without slivers, and the groups of an area tile it exactly.

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
                   shrink_m: float = SHRINK_M) -> np.ndarray:
    """One cell per footprint (polygons or points, lon/lat), the cells of each area's footprints
    together tiling that area exactly. ``area_of`` gives each footprint's area (an index into
    ``areas``, e.g. the unit holding its representative point). All areas are done at once: one
    Voronoi diagram, one noding.

    An area with one footprint is that footprint's cell; an area with none is not covered.

    Example
    -------
    >>> cells = building_cells(units.geometry.values, buildings.geometry.values, unit_of_building)  # doctest: +SKIP
    >>> shapely.coverage_union_all(cells[unit_of_building == 0])  # doctest: +SKIP  (unit 0, whole)
    """
    areas = np.asarray(areas, dtype=object)
    footprints = np.asarray(footprints, dtype=object)
    area_of = np.asarray(area_of, dtype=np.int64)
    cells = np.empty(len(footprints), dtype=object)
    if len(footprints) == 0:
        return cells
    counts = np.bincount(area_of, minlength=len(areas))
    alone = counts[area_of] == 1
    cells[alone] = areas[area_of[alone]]
    shared = np.flatnonzero(~alone)
    if len(shared):
        cells[shared] = _tessellate(areas, footprints[shared], area_of[shared], step_m, shrink_m)
    return cells


def _tessellate(areas: np.ndarray, footprints: np.ndarray, area_of: np.ndarray, step_m: float,
                shrink_m: float) -> np.ndarray:
    """The cells of footprints that share their area with others (see :func:`building_cells`)."""
    used = np.unique(area_of)
    outline = areas[used]
    scale = LocalScale.at(float(np.mean(shapely.get_y(shapely.centroid(outline)))))
    factor = np.array([scale.mx, scale.my])
    origin = np.asarray(shapely.get_coordinates(shapely.centroid(shapely.envelope(shapely.union_all(outline)))))[0]

    def to_m(coords: np.ndarray) -> np.ndarray:
        return (coords - origin) * factor

    points, owner = _samples(shapely.transform(footprints, to_m), step_m, shrink_m)
    box = shapely.envelope(shapely.union_all([shapely.transform(shapely.envelope(shapely.union_all(outline)), to_m),
                                              shapely.multipoints(points)]))
    voronoi = polygonal(shapely.get_parts(  # a cell may come as a collection holding its polygon
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=shapely.buffer(box, 10.0), ordered=True)))
    invalid = ~shapely.is_valid(voronoi)
    voronoi[invalid] = polygonal(shapely.make_valid(voronoi[invalid]))
    zones = shapely.transform(_dissolve(voronoi, owner, len(footprints)), lambda c: c / factor + origin)
    cells = coverage.clean(zones, area_of.astype(object), project=to_m, territory=outline,
                           territory_groups=used.astype(object))
    return one_piece_each(cells, shapely.point_on_surface(footprints), area_of)


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


def _samples(metric: np.ndarray, step_m: float, shrink_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along each footprint's (shrunk) outline, every ``step_m``, and the footprint each
    belongs to; a point footprint, or one too small to shrink, samples its representative point.
    A point shared by two footprints is kept once (the first)."""
    shrunk = shapely.buffer(metric, -shrink_m, join_style="mitre")
    polygonal = np.isin(shapely.get_type_id(metric), (3, 6)) & ~shapely.is_empty(shrunk)
    outlines = np.where(polygonal, shapely.boundary(shrunk), None)
    dense = shapely.segmentize(outlines[polygonal], step_m)
    coords, index = shapely.get_coordinates(dense, return_index=True)
    owner = np.flatnonzero(polygonal)[index]
    lone = np.flatnonzero(~polygonal)
    if len(lone):
        coords = np.concatenate([coords, shapely.get_coordinates(shapely.point_on_surface(metric[lone]))])
        owner = np.concatenate([owner, lone])
    _, first = np.unique(np.round(coords, 6), axis=0, return_index=True)
    first.sort()
    coords, owner = coords[first], owner[first]
    # a millimetre of fixed jitter: regular layouts put four points on a circle, where Voronoi
    # cells degenerate into self-touching shapes; the cells move by far less than the noding grid
    jitter = np.random.default_rng(len(coords)).uniform(-JITTER_M, JITTER_M, coords.shape)
    return coords + jitter, owner


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
