"""Whole-layer offsets: a departmental layer that sits shifted against the territory as a whole.

The usual cause in China is a layer digitised on a GCJ-02 basemap (Amap, Tencent) and never
converted: a shift of a few hundred metres that varies smoothly with position. Elsewhere it is a
misregistered basemap or a wrong datum: a constant shift. Detection compares border points of
the layer with the territory's own borders (units and communities): the GCJ-02 conversion is
tried first inside China, then every shift within a search radius is scored at once by an FFT
cross-correlation of border rasters and refined by iterative closest point.

Pure geometry (lon/lat, EPSG:4490); no database, no web.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from gridmap.geo.crs import STORAGE_EPSG, gcj02_to_wgs84_geoms, in_china
from gridmap.geo.shapes import M_PER_DEG_LAT, layer_fingerprint

@dataclass
class Offset:
    department: str
    shift_m: float
    dx_deg: float
    dy_deg: float
    before_m: float
    after_m: float
    gcj02: bool

    @property
    def detail(self) -> str:
        cause = ("the GCJ-02 pattern: digitised on an Amap/Tencent basemap and never converted"
                 if self.gcj02 else "a constant shift (misregistered basemap or wrong datum)")
        return (f"layer offset by {self.shift_m:.0f} m as a whole ({cause}); median distance of its borders "
                f"to the territory's borders {self.before_m:.1f} m → {self.after_m:.1f} m once corrected")


def _boundary_samples(geoms: np.ndarray, spacing_deg: float, limit: int = 4000) -> np.ndarray:
    boundaries = shapely.boundary(geoms)
    lengths = shapely.length(boundaries)
    counts = np.clip((lengths / spacing_deg).astype(int), 1, 200)
    if counts.sum() > limit:
        counts = np.maximum((counts * limit / counts.sum()).astype(int), 1)
    idx = np.repeat(np.arange(len(geoms)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return shapely.line_interpolate_point(boundaries[idx], (step + 0.5) / counts[idx], normalized=True)


def segment_ends(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every line cut into its two-point segments, as arrays of start and end coordinates
    (zero-length segments dropped)."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same = index[1:] == index[:-1]
    starts, ends = coords[:-1][same], coords[1:][same]
    distinct = np.any(starts != ends, axis=1)
    return starts[distinct], ends[distinct]


def sample_segments(starts: np.ndarray, ends: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of points every ``spacing`` along each segment (both ends included), and
    the segment each point lies on."""
    counts = np.maximum(np.ceil(np.hypot(*(ends - starts).T) / spacing).astype(int), 1) + 1
    index = np.repeat(np.arange(len(starts)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t = (step / np.repeat(counts - 1, counts))[:, None]
    return starts[index] + t * (ends[index] - starts[index]), index


def nearest_on_segments(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each point (coordinates), the closest point of the matching segment, in numpy."""
    direction = ends - starts
    length2 = np.einsum("ij,ij->i", direction, direction)
    t = np.clip(np.einsum("ij,ij->i", points - starts, direction) / np.where(length2 > 0, length2, 1), 0, 1)
    return starts + t[:, None] * direction


class BorderReference:
    """The territory's own borders (units and communities), prepared once per merge: short
    segments in a spatial index for distances, and their FFT raster for shift searches."""

    def __init__(self, lines: np.ndarray, metres_per_degree: float, search_m: float = 800.0, cell_m: float = 10.0):
        self.mpd = metres_per_degree
        self.factor = np.array([metres_per_degree, M_PER_DEG_LAT])  # degrees → local metres
        starts, ends = segment_ends(lines)
        self.starts, self.ends = starts * self.factor, ends * self.factor
        # nearest-border queries: a k-d tree of points every few metres along the borders, each
        # remembering its segment; the answer is the exact projection on the nearest candidates
        self.spacing_m = 4.0
        dense, self.owner = sample_segments(self.starts, self.ends, self.spacing_m)
        self.kdtree = cKDTree(dense)
        self.search_m = search_m
        points = sample_segments(starts, ends, cell_m / metres_per_degree)[0]
        margin = search_m / metres_per_degree
        self.lo = points.min(axis=0) - margin
        hi = points.max(axis=0) + margin
        self.res = cell_m / metres_per_degree
        shape = np.ceil((hi - self.lo) / self.res).astype(int) + 1
        if shape.prod() > 16_000_000:  # bounded memory on very large territories
            self.res *= math.sqrt(shape.prod() / 16_000_000)
            shape = np.ceil((hi - self.lo) / self.res).astype(int) + 1
        self.shape = shape
        fy = np.fft.fftfreq(shape[1])[:, None]
        fx = np.fft.rfftfreq(shape[0])[None, :]
        blur = np.exp(-2 * (math.pi ** 2) * (1.5 ** 2) * (fx ** 2 + fy ** 2))  # tolerate jittered borders
        self.spectrum = np.fft.rfft2(self.image(points)) * blur

    def nearest(self, xy: np.ndarray, cap_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance (m, at most ``cap_m``) from each point (lon/lat coordinates) to the nearest
        border, and the displacement (m) to the closest border point (NaN beyond the cap).

        Exact projections on the segments of the 8 nearest border samples: exact unless 8 samples
        of other borders crowd closer than the nearest border's own, and then off by at most
        half the sample spacing — far below what an offset of tens of metres needs.
        """
        here = xy * self.factor
        _, index = self.kdtree.query(here, k=8, distance_upper_bound=cap_m + self.spacing_m)
        found = index < len(self.owner)
        best = np.full(len(xy), np.inf)
        move = np.full((len(xy), 2), np.nan)
        for column in range(index.shape[1]):
            rows = np.flatnonzero(found[:, column])
            segment = self.owner[index[rows, column]]
            closest = nearest_on_segments(here[rows], self.starts[segment], self.ends[segment])
            distance = np.hypot(*(closest - here[rows]).T)
            better = distance < best[rows]
            best[rows[better]] = distance[better]
            move[rows[better]] = closest[better] - here[rows[better]]
        far = best > cap_m
        best[far] = cap_m
        move[far] = np.nan
        return best, move

    def image(self, xy: np.ndarray) -> np.ndarray:
        img = np.zeros(self.shape[::-1], dtype=np.float32)
        ij = ((xy - self.lo) / self.res).astype(int)
        ok = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < self.shape[0]) & (ij[:, 1] < self.shape[1])
        img[ij[ok, 1], ij[ok, 0]] = 1.0
        return img

    def coarse_shift(self, samples: np.ndarray) -> np.ndarray:
        """Whole-layer shift (degrees) by cross-correlating border rasters with FFTs: every
        candidate shift within ``search_m`` is scored at once, so a dense fabric of borders
        (where the nearest border is rarely the right one) cannot mislead it."""
        layer = np.fft.rfft2(self.image(shapely.get_coordinates(samples)))
        corr = np.fft.irfft2(self.spectrum * np.conj(layer), s=self.shape[::-1])
        reach = int(self.search_m / self.mpd / self.res)
        iy = np.r_[0:reach + 1, self.shape[1] - reach:self.shape[1]]
        ix = np.r_[0:reach + 1, self.shape[0] - reach:self.shape[0]]
        window = corr[np.ix_(iy, ix)]
        py, px = np.unravel_index(np.argmax(window), window.shape)
        dy, dx = int(iy[py]), int(ix[px])
        dy = dy - self.shape[1] if dy > self.shape[1] // 2 else dy
        dx = dx - self.shape[0] if dx > self.shape[0] // 2 else dx
        return np.array([dx * self.res, dy * self.res])


def detect_offset(layer: gpd.GeoDataFrame, reference: BorderReference, *, department: str,
                  min_shift_m: float) -> Offset | None:
    """Does the layer as a whole sit shifted against the territory's borders?

    Border points of the layer are compared with the territory's own borders. Aligned layers
    sit on them (median distance ≈ 0). Otherwise the GCJ-02 conversion is tried first (inside
    China), then an FFT cross-correlation over all shifts up to the search radius, refined by
    iterative closest point. A shift that brings the borders much closer is an offset.
    """
    geoms = np.asarray(layer.geometry.values, dtype=object)
    if len(geoms) == 0:
        return None
    mpd = reference.mpd
    samples = _boundary_samples(geoms, 20.0 / mpd)
    coords = shapely.get_coordinates(samples)
    cap = 100.0
    before = float(np.median(reference.nearest(coords, cap)[0]))
    if before < min_shift_m / 5:
        return None  # already on the territory's borders
    if np.mean(in_china(coords[:, 0], coords[:, 1])) > 0.5:
        converted = shapely.get_coordinates(gcj02_to_wgs84_geoms(samples))
        gcj_after = float(np.median(reference.nearest(converted, cap)[0]))
        if gcj_after < before / 3:
            delta = converted.mean(axis=0) - coords.mean(axis=0)
            return Offset(department, float(np.hypot(*(delta * reference.factor))), float(delta[0]), float(delta[1]),
                          before, gcj_after, True)
    shift = reference.coarse_shift(samples)
    shift = _icp(coords, reference, shift, 40.0)
    shift = _icp(coords, reference, shift, 2.0)  # fine pass
    after = float(np.median(reference.nearest(coords + shift, cap)[0]))
    shift_m = float(np.hypot(*(shift * reference.factor)))
    if shift_m < min_shift_m or after > before / 3:
        return None
    return Offset(department, shift_m, float(shift[0]), float(shift[1]), before, after, False)


def _icp(xy: np.ndarray, reference: BorderReference, shift: np.ndarray, step_m: float) -> np.ndarray:
    """Refine a shift (degrees): move by the median displacement to the nearest border, a few times."""
    for _ in range(10):
        _, move = reference.nearest(xy + shift, step_m)
        near = ~np.isnan(move[:, 0])
        if not near.any():
            break
        update = np.median(move[near], axis=0)
        shift = shift + update / reference.factor
        if np.hypot(*update) < 0.01:
            break
    return shift


def corrected(layer: gpd.GeoDataFrame, offset: Offset) -> gpd.GeoDataFrame:
    """The layer with its offset removed (GCJ-02 converted, or translated back)."""
    geoms = np.asarray(layer.geometry.values, dtype=object)
    if offset.gcj02:
        fixed = gcj02_to_wgs84_geoms(geoms)
    else:
        fixed = shapely.transform(geoms, lambda c: c + np.array([offset.dx_deg, offset.dy_deg]))
    return layer.set_geometry(gpd.GeoSeries(fixed, index=layer.index, crs=STORAGE_EPSG))


def find_offsets(layers: list[tuple[str, np.ndarray]], reference: BorderReference, *, min_shift_m: float,
                 workers: int = 1) -> dict[str, Offset]:
    """``detect_offset`` for many layers ``(department, geometries)`` on ``workers`` threads.

    Layers of identical geometry (departments that adopted another department's grids) are
    examined once and share the answer, so their corrected layers are identical too.
    """
    prints = [layer_fingerprint(geoms) for _, geoms in layers]
    distinct = {fp: (department, geoms) for fp, (department, geoms) in zip(prints, layers)}

    def examine(item: tuple[str, np.ndarray]) -> Offset | None:
        department, geoms = item
        return detect_offset(gpd.GeoDataFrame(geometry=geoms, crs=STORAGE_EPSG), reference,
                             department=department, min_shift_m=min_shift_m)

    with ThreadPoolExecutor(max(1, min(workers, len(distinct)))) as pool:
        found = dict(zip(distinct, pool.map(examine, distinct.values())))
    return {department: replace(found[fp], department=department)
            for (department, _), fp in zip(layers, prints) if found[fp] is not None}
