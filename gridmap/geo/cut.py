"""Cutting a unit by a line: the only edit that changes geometry (ARCHITECTURE.md).

A planner who finds a unit too coarse draws a line across it; the unit becomes two or more
units that tile it exactly, and its households are shared among them by the buildings inside
each piece (or by area where no buildings are known) so that totals are conserved.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import split



class CutError(ValueError):
    """The line does not cut the unit into pieces (it misses it, or only touches it)."""


def cut_polygon(polygon: BaseGeometry, line: BaseGeometry, *, min_piece_ratio: float = 1e-4) -> list[BaseGeometry]:
    """The pieces of ``polygon`` on either side of ``line`` (both in the same CRS).

    Raises :class:`CutError` when the line does not cross the polygon from edge to edge, so that
    it leaves fewer than two pieces of at least ``min_piece_ratio`` of the area.

    >>> from shapely.geometry import box, LineString
    >>> [round(p.area, 2) for p in cut_polygon(box(0, 0, 2, 1), LineString([(1, -1), (1, 2)]))]
    [1.0, 1.0]
    """
    if line.geom_type not in ("LineString", "MultiLineString") or line.is_empty:
        raise CutError("a cut needs a line (LineString)")
    if not line.intersects(polygon):
        raise CutError("the line does not cross the unit")
    parts = len(shapely.get_parts(polygon))
    pieces = [p for p in split(polygon, line).geoms if p.area >= min_piece_ratio * polygon.area]
    if len(pieces) <= parts:
        raise CutError("the line does not cut the unit in two: draw it across the unit from edge to edge")
    return sorted(pieces, key=lambda p: (-p.area, p.centroid.x))


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


__all__ = ["CutError", "cut_polygon", "share_households"]
