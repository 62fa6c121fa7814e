"""Small geometry helpers shared by the geo modules."""

from __future__ import annotations

import numpy as np
import shapely


def polygonal(geoms) -> np.ndarray:
    """Only the polygonal parts of each geometry, vectorised.

    Intersections, differences and ``make_valid`` return lines, points or collections besides
    polygons; none of those are areas. Polygons and multipolygons pass through; a collection
    keeps its polygons (as one multipolygon, dissolved where its parts share an edge); anything
    else becomes an empty polygon.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.empty(len(geoms), dtype=object)
    out[:] = shapely.Polygon()
    if len(geoms) == 0:
        return out
    types = shapely.get_type_id(geoms)
    simple = np.isin(types, (3, 6))
    out[simple] = geoms[simple]
    mixed = np.flatnonzero(types == 7)
    if len(mixed):
        members, owner = shapely.get_parts(geoms[mixed], return_index=True)
        parts, inner = shapely.get_parts(members, return_index=True)  # multipolygons inside, too
        index = owner[inner]
        polys = shapely.get_type_id(parts) == 3
        if polys.any():
            present, dense = np.unique(index[polys], return_inverse=True)
            built = shapely.multipolygons(parts[polys], indices=dense)
            invalid = ~shapely.is_valid(built)  # parts sharing an edge: dissolve them
            built[invalid] = [shapely.union_all(shapely.get_parts(b)) for b in built[invalid]]
            out[mixed[present]] = built
    return out
