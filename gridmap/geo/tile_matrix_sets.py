"""The two tile matrix sets gridmap serves its vector tiles in (OGC 17-083r4, Two Dimensional Tile
Matrix Set, annex D): ``WebMercatorQuad`` (what web maps draw) and ``WorldCRS84Quad`` (longitude and
latitude, two tiles wide at level 0: what GDAL's OGCAPI driver picks first, and the natural tiling
for CGCS2000 data, whose longitudes and latitudes it keeps).

Each set knows its matrices (size, cell size, origin), the bounds of a tile and its JSON document,
written in the TMS 2.0 encoding with the TMS 1.0 keys beside it (GDAL before 3.7 reads only 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

WEB_MERCATOR_HALF = 20037508.3427892
"""Metres from the origin of Web Mercator to the edge of its square world."""
STANDARD_PIXEL_M = 0.00028
"""The standard rendering pixel (0.28 mm) that turns cell sizes into scale denominators."""
METRES_PER_DEGREE = 6378137 * 3.141592653589793 / 180
MAX_LEVEL = 22


@dataclass(frozen=True)
class TileMatrixSet:
    """A quadtree tile matrix set: ``width0`` × 1 tiles of 256 px at level 0, doubling each level."""

    id: str
    title: str
    crs: str
    ordered_axes: tuple[str, str]
    well_known_scale_set: str
    origin: tuple[float, float]  # top-left corner, in the CRS's (x, y) = ordered_axes order
    cell_size0: float  # CRS units per pixel at level 0
    metres_per_unit: float
    width0: int  # tiles across at level 0 (height is 1)

    @property
    def uri(self) -> str:
        return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{self.id}"

    def matrix_size(self, level: int) -> tuple[int, int]:
        """(columns, rows) of the matrix at ``level``."""
        return self.width0 * 2**level, 2**level

    def contains(self, level: int, row: int, col: int) -> bool:
        columns, rows = self.matrix_size(level)
        return 0 <= level <= MAX_LEVEL and 0 <= col < columns and 0 <= row < rows

    def tile_bounds(self, level: int, row: int, col: int) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a tile in the set's CRS."""
        span = self.cell_size0 / 2**level * 256
        x0, y1 = self.origin[0] + col * span, self.origin[1] - row * span
        return x0, y1 - span, x0 + span, y1

    def document(self) -> dict:
        """The set as OGC publishes it (TMS 2.0), with the TMS 1.0 keys beside it."""
        matrices, matrices_v1 = [], []
        for level in range(MAX_LEVEL + 1):
            cell = self.cell_size0 / 2**level
            columns, rows = self.matrix_size(level)
            size = {"scaleDenominator": cell * self.metres_per_unit / STANDARD_PIXEL_M, "tileWidth": 256,
                    "tileHeight": 256, "matrixWidth": columns, "matrixHeight": rows}
            matrices.append({"id": str(level), **size, "cellSize": cell, "cornerOfOrigin": "topLeft",
                             "pointOfOrigin": list(self.origin)})
            matrices_v1.append({"type": "TileMatrixType", "identifier": str(level), **size,
                                "topLeftCorner": list(self.origin)})
        return {"id": self.id, "title": self.title, "uri": self.uri, "crs": self.crs,
                "orderedAxes": list(self.ordered_axes), "wellKnownScaleSet": self.well_known_scale_set,
                "tileMatrices": matrices,
                "type": "TileMatrixSetType", "identifier": self.id, "supportedCRS": self.crs,
                "tileMatrix": matrices_v1}


WEB_MERCATOR_QUAD = TileMatrixSet(
    id="WebMercatorQuad", title="Google Maps Compatible for the World",
    crs="http://www.opengis.net/def/crs/EPSG/0/3857", ordered_axes=("X", "Y"),
    well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
    origin=(-WEB_MERCATOR_HALF, WEB_MERCATOR_HALF), cell_size0=2 * WEB_MERCATOR_HALF / 256, metres_per_unit=1.0,
    width0=1)
WORLD_CRS84_QUAD = TileMatrixSet(
    id="WorldCRS84Quad", title="CRS84 for the World", crs="http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    ordered_axes=("Lon", "Lat"), well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleCRS84Quad",
    origin=(-180.0, 90.0), cell_size0=180 / 256, metres_per_unit=METRES_PER_DEGREE, width0=2)
TILE_MATRIX_SETS = {tms.id: tms for tms in (WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD)}

__all__ = ["TileMatrixSet", "WEB_MERCATOR_QUAD", "WORLD_CRS84_QUAD", "TILE_MATRIX_SETS", "MAX_LEVEL"]
