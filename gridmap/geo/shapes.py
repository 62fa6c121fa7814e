"""Small geometry helpers shared by the geo modules."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import shapely

M_PER_DEG_LAT = 110_574.0  # metres per degree of latitude (mid-latitudes; 0.1% across China)


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


@dataclass(frozen=True)
class LocalScale:
    """Metres per degree at a territory's latitude: areas and widths of the many small pieces a
    merge produces are measured in this local equirectangular frame (within 0.1% across a city,
    and a plain numpy scaling instead of a projection per piece)."""

    mx: float
    my: float

    @classmethod
    def at(cls, lat: float) -> "LocalScale":
        return cls(111_320.0 * math.cos(math.radians(lat)), M_PER_DEG_LAT)

    def area(self, geoms) -> np.ndarray:
        return shapely.area(np.asarray(geoms, dtype=object)) * self.mx * self.my

    def metric(self, geoms) -> np.ndarray:
        factor = np.array([self.mx, self.my])
        return shapely.transform(np.asarray(geoms, dtype=object), lambda c: c * factor)

    def width(self, geoms) -> np.ndarray:
        """Mean width of pieces (2·area/perimeter), in metres: thin strips have a small one."""
        metric = self.metric(geoms)
        perimeter = shapely.length(metric)
        return np.divide(2 * shapely.area(metric), perimeter, out=np.zeros(len(metric)), where=perimeter > 0)


def layer_fingerprint(geoms: np.ndarray) -> bytes:
    """Identity of a layer's geometry (order included): layers with equal fingerprints give
    equal answers to any geometric question, so work on them can be shared."""
    digest = hashlib.blake2b(digest_size=16)
    for blob in shapely.to_wkb(np.asarray(geoms, dtype=object)):
        digest.update(blob)
    return digest.digest()


def points_in(polygons: np.ndarray, points: np.ndarray, *, on_border: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Which points lie in which polygons: ``(point index, polygon index)`` pairs, sorted by point,
    then polygon (a point in several polygons meets the lowest-numbered first). ``on_border``
    counts a point on a polygon's outline as in it (``intersects``); else it must be inside
    (``within``). The pairs of ``STRtree(polygons).query(points, predicate=...)``, found the other
    way round for valid polygons: a tree of the points queried with each polygon, which GEOS
    prepares once, where a point query tests each candidate polygon unprepared. Reykjavík's
    32,354 building points in its 5,168 units: 0.03 s, not 0.08 s (2026-12-06). An invalid
    polygon (parts that overlap, a ring folded onto itself: a user's own grids or communities)
    is asked the old way: a prepared polygon counts ring crossings, and a point in the overlap of
    two parts would be outside it."""
    points = np.asarray(points, dtype=object)
    polygons = np.asarray(polygons, dtype=object)
    if not len(points) or not len(polygons):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    valid = shapely.is_valid(polygons) | shapely.is_missing(polygons)
    polygon_at, point_at = shapely.STRtree(points).query(np.where(valid, polygons, None),
                                                         predicate="intersects" if on_border else "contains")
    if not valid.all():
        invalid = np.flatnonzero(~valid)
        found_point, found = shapely.STRtree(polygons[invalid]).query(
            points, predicate="intersects" if on_border else "within")
        point_at, polygon_at = np.concatenate([point_at, found_point]), np.concatenate([polygon_at, invalid[found]])
    order = np.lexsort((polygon_at, point_at))
    return point_at[order], polygon_at[order]
