"""Cutting a unit by a line: the only edit that changes geometry (docs/design.md).

A planner who finds a unit too coarse draws a line across it; the unit becomes two or more
units that tile it exactly (they keep its vertices), its neighbours take the new vertices where
the line crosses their shared borders, and its households are shared among the pieces by the
buildings inside each (or by area where no buildings are known) so that totals are conserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.geo.graph import border_pairs

class CutError(ValueError):
    """The line does not cut the unit into pieces (it misses it, or only touches it)."""


@dataclass
class Cut:
    """The pieces of a cut unit, and the neighbours that must take the new vertices where the
    line crosses their shared border (index into the neighbours given → revised geometry)."""

    pieces: list[BaseGeometry]
    revised: dict[int, BaseGeometry]


ON_LINE_DEG = 1e-11  # a vertex this close to a border lies on it (floating point of the noding)


def cut_unit(polygon: BaseGeometry, line: BaseGeometry, neighbours=(), *, min_piece_ratio: float = 1e-4) -> Cut:
    """Cut ``polygon`` by ``line`` into pieces that tile it exactly (both in the same CRS).

    The polygon's boundary and the line are noded together and cut into faces: the pieces are
    those faces, so they keep every vertex of the polygon and gain only the points where the
    line crosses its boundary. Nothing is dropped: a crumb the line leaves where it wiggles
    across the boundary (under ``min_piece_ratio`` of the area) joins the piece it shares the
    longest border with. The ``neighbours`` that share a crossed edge get the crossing points
    inserted in that edge (``revised``), so the pieces and their neighbours still share every
    vertex and the coverage stays exact.

    Raises :class:`CutError` when the line does not cut the polygon in two.

    >>> from shapely.geometry import box, LineString
    >>> cut = cut_unit(box(0, 0, 2, 1), LineString([(1, -1), (1, 2)]), [box(2, 0, 3, 1), box(0, 1, 2, 2)])
    >>> [round(p.area, 2) for p in cut.pieces], sorted(cut.revised)
    ([1.0, 1.0], [1])
    """
    if line.geom_type not in ("LineString", "MultiLineString") or line.is_empty:
        raise CutError("a cut needs a line (LineString)")
    if not line.intersects(polygon):
        raise CutError("the line does not cross the unit")
    faces = np.asarray(shapely.get_parts(shapely.polygonize([shapely.union_all([polygon.boundary, line])])),
                       dtype=object)
    faces = faces[shapely.within(shapely.point_on_surface(faces), polygon)] if len(faces) else faces
    big = shapely.area(faces) >= min_piece_ratio * polygon.area if len(faces) else np.zeros(0, dtype=bool)
    if big.sum() <= len(shapely.get_parts(polygon)):
        raise CutError("the line does not cut the unit in two: draw it across the unit from edge to edge")
    owner = np.where(big, np.arange(len(faces)), -1)
    left, right, borders = border_pairs(faces, None, 0.0)
    length = shapely.length(borders)
    for _ in range(len(faces)):  # crumbs join the neighbouring piece with the longest border
        loose = np.flatnonzero(owner < 0)
        if not len(loose):
            break
        src = np.concatenate([left, right])
        dst = np.concatenate([right, left])
        size = np.concatenate([length, length])
        ok = (owner[src] < 0) & (owner[dst] >= 0)
        if not ok.any():
            owner[loose] = int(np.flatnonzero(big)[0])  # isolated crumbs: the largest piece keeps them
            break
        best = {}
        for a, b, n in zip(src[ok], dst[ok], size[ok]):
            if n > best.get(a, (None, -1.0))[1]:
                best[a] = (owner[b], n)
        for a, (o, _) in best.items():
            owner[a] = o
    pieces = [faces[owner == o][0] if (owner == o).sum() == 1 else shapely.coverage_union_all(faces[owner == o])
              for o in np.flatnonzero(big)]
    pieces = list(shapely.orient_polygons(np.asarray(pieces, dtype=object), exterior_cw=False))
    return Cut(sorted(pieces, key=lambda p: (-p.area, p.centroid.x)), _revise(polygon, pieces, neighbours))


def _revise(polygon: BaseGeometry, pieces: list[BaseGeometry], neighbours) -> dict[int, BaseGeometry]:
    """Neighbours with the cut's crossing points inserted into the edges they share with
    ``polygon`` (only those that have such an edge)."""
    old = {tuple(xy) for xy in shapely.get_coordinates(polygon).tolist()}
    new = [xy for xy in {tuple(xy) for piece in pieces for xy in shapely.get_coordinates(piece).tolist()} - old]
    points = shapely.points(np.array(new)) if new else np.empty(0, dtype=object)
    points = points[shapely.dwithin(points, polygon.boundary, ON_LINE_DEG)] if len(points) else points
    revised: dict[int, BaseGeometry] = {}
    if not len(points):
        return revised
    for i, neighbour in enumerate(neighbours):
        touching = points[shapely.dwithin(points, neighbour.boundary, ON_LINE_DEG)]
        if len(touching):
            revised[i] = shapely.snap(neighbour, shapely.multipoints(touching), ON_LINE_DEG * 10)
    return revised


def cut_polygon(polygon: BaseGeometry, line: BaseGeometry, *, min_piece_ratio: float = 1e-4) -> list[BaseGeometry]:
    """The pieces of ``polygon`` on either side of ``line`` (see :func:`cut_unit`, which also
    revises the neighbours).

    >>> from shapely.geometry import box, LineString
    >>> [round(p.area, 2) for p in cut_polygon(box(0, 0, 2, 1), LineString([(1, -1), (1, 2)]))]
    [1.0, 1.0]
    """
    return cut_unit(polygon, line, min_piece_ratio=min_piece_ratio).pieces


def share_households(pieces: list[BaseGeometry], total: int, *, building_points: np.ndarray | None = None,
                     building_households: np.ndarray | None = None) -> list[int]:
    """Integer households per piece, summing to ``total``.

    Weights are the households of the buildings whose representative point falls in each piece;
    where none do (or none are given), the pieces' areas. Largest-remainder rounding keeps the sum.

    >>> from shapely.geometry import box
    >>> share_households([box(0, 0, 3, 1), box(3, 0, 4, 1)], 10)
    [8, 2]
    """
    areas = np.array([p.area for p in pieces], dtype=float)
    weights = areas
    if building_points is not None and len(building_points):
        hh = np.asarray(building_households, dtype=float)
        inside = np.array([shapely.contains_xy(p, shapely.get_x(building_points), shapely.get_y(building_points))
                           for p in pieces])
        by_piece = (inside * hh[None, :]).sum(axis=1)
        if by_piece.sum() > 0:
            weights = by_piece
    if total <= 0 or weights.sum() <= 0:
        return [0] * len(pieces)
    exact = weights / weights.sum() * total
    shares = np.floor(exact).astype(int)
    remainder = total - int(shares.sum())
    for i in np.argsort(-(exact - shares), kind="stable")[:remainder]:
        shares[i] += 1
    return [int(s) for s in shares]


__all__ = ["Cut", "CutError", "cut_unit", "cut_polygon", "share_households"]
