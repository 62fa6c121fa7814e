"""Which grid holds each point, for many points at once.

The rule is the one PostGIS applies to a single report (``store.incidents.route``): a point lies
in a grid when it intersects it, so a point on a border shared by two grids lies in both, and the
grid with the smaller code takes it. Vectorised with a spatial index over prepared polygons:
a million points against a city's grids in a few seconds, several times faster than a lateral
``ST_Intersects`` join per point.
"""

from __future__ import annotations

import numpy as np
import shapely


def containing(x: np.ndarray, y: np.ndarray, polygons: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Index into ``polygons`` of the polygon holding each point (x, y), -1 where none does.

    Where several hold a point (a shared border, or overlapping inputs), the one with the
    smallest ``codes`` value wins.

    Example
    -------
    >>> import shapely
    >>> squares = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> containing(np.array([0.5, 1.0, 5.0]), np.array([0.5, 0.5, 5.0]), squares, np.array(["002", "001"])).tolist()
    [0, 1, -1]
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    polygons = np.asarray(polygons, dtype=object)
    result = np.full(len(x), -1, dtype=np.int64)
    if len(x) == 0 or len(polygons) == 0:
        return result
    shapely.prepare(polygons)
    tree = shapely.STRtree(polygons)
    point_index, polygon_index = tree.query(shapely.points(x, y), predicate="intersects")
    if len(point_index) == 0:
        return result
    rank = np.argsort(np.argsort(np.asarray(codes), kind="stable"), kind="stable")  # code order as integers
    order = np.lexsort((rank[polygon_index], point_index))
    point_index, polygon_index = point_index[order], polygon_index[order]
    first = np.r_[True, point_index[1:] != point_index[:-1]]
    result[point_index[first]] = polygon_index[first]
    return result


__all__ = ["containing"]
