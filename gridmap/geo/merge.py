"""Merge the grid layers many departments drew on their own into one layer (多网合一).

What a merge delivers (DOMAIN.md, "Merging departmental grids"):

1. **Conflicts**, per department and grid, each with geometry, area and the grids involved:
   overlaps inside a layer, gaps in its coverage, slivers (thin pieces where borders almost but
   not quite agree), grids crossing community boundaries, parts outside the territory, and a
   layer offset as a whole (above all one digitised on a GCJ-02 basemap and never converted),
   with the corrected layer offered.
2. **A unified plan**: every unit of the territory assigned to one grid by the partition rules;
   unit borders where departments' grids change are made expensive to keep inside a grid, so
   the plan follows what departments keep together and splits few departmental grids.
3. **A crosswalk** both ways with area and household shares.
4. **Duties** per unified grid: the union of the duties of the departmental grids that
   substantially cover it, tagged with their department, filtered by the access list.

Assignment of units to departmental grids is by largest overlap (the areal-interpolation step
``maup.assign`` does), computed once for all layers with a spatial index; a unit lying wholly
inside a grid skips the intersection.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.crs import STORAGE_EPSG, gcj02_to_wgs84_geoms, in_china, metric_crs_for_frame
from gridmap.geo.graph import build_graph
from gridmap.geo.partition import PartitionResult, PartitionRules, partition
from gridmap.geo.shapes import polygonal as _polygonal
from gridmap.geo.units import metric_area_fn

M_PER_DEG_LAT = 110_574.0
CONFLICT_KINDS = ("overlap", "gap", "sliver", "crosses_community", "outside", "offset")


@dataclass(frozen=True)
class MergeRules:
    """Thresholds of the merge (all configurable)."""

    min_households: int = 300
    max_households: int = 500
    tolerance_m2: float = 50.0          # conflicts smaller than this are digitising noise
    sliver_width_m: float = 8.0         # pieces thinner than this (mean width) are slivers
    duty_threshold: float = 0.25        # share of a unified grid an old grid must cover to pass its duties
    keep_together_weight: float = 4.0   # how strongly unit borders inside departmental grids are kept
    offset_min_m: float = 25.0          # a whole-layer shift below this is not reported
    fix_offsets: bool = True            # merge with the corrected layer when a layer is offset
    partition: PartitionRules = field(default_factory=PartitionRules)


@dataclass
class MergeResult:
    """The unified plan and everything the merge found on the way."""

    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    crosswalk: pd.DataFrame
    reverse_crosswalk: pd.DataFrame
    conflicts: gpd.GeoDataFrame
    duties: pd.DataFrame
    excluded_duties: pd.DataFrame
    coverage: pd.DataFrame
    corrected_layers: dict[str, gpd.GeoDataFrame]
    partition: PartitionResult
    summary: dict

    def __repr__(self) -> str:
        return f"<MergeResult {self.summary['text']}; {len(self.conflicts)} conflicts>"


# -- input ---------------------------------------------------------------------------------------
def normalise_layers(layers: dict[str, gpd.GeoDataFrame] | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One GeoDataFrame (EPSG:4490) with department, grid_id, name, duties (list), worker."""
    if isinstance(layers, dict):
        frames = []
        for department, frame in layers.items():
            frames.append(frame.to_crs(STORAGE_EPSG).assign(department=str(department)))
        if not frames:
            raise ValueError("no departmental layers given")
        combined = pd.concat(frames, ignore_index=True)
    else:
        if "department" not in layers:
            raise ValueError("a single layer needs a 'department' column")
        combined = layers.to_crs(STORAGE_EPSG).copy()
    combined = gpd.GeoDataFrame(combined, geometry=combined.geometry.name, crs=STORAGE_EPSG)
    if "grid_id" not in combined:
        raise ValueError("departmental grids need a 'grid_id' column")
    combined["grid_id"] = combined["grid_id"].astype(str)
    if combined.duplicated(["department", "grid_id"]).any():
        dup = combined[combined.duplicated(["department", "grid_id"], keep=False)][["department", "grid_id"]]
        raise ValueError(f"grid_id repeats within a department: {dup.drop_duplicates().head(5).values.tolist()}")
    for column in ("name", "worker"):
        if column not in combined:
            combined[column] = None
    if "duties" not in combined:
        combined["duties"] = [[] for _ in range(len(combined))]
    combined["duties"] = [_duty_list(d) for d in combined["duties"]]
    geoms = shapely.make_valid(np.asarray(combined.geometry.values, dtype=object))
    combined = combined.set_geometry(gpd.GeoSeries(_polygonal(geoms), index=combined.index, crs=STORAGE_EPSG))
    combined = combined[~combined.geometry.is_empty]
    return combined[["department", "grid_id", "name", "duties", "worker", "geometry"]].reset_index(drop=True)


def _duty_list(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace("；", ";").replace(",", ";").split(";") if v.strip()]
    return [str(v) for v in value]


# -- offsets ---------------------------------------------------------------------------------------
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
    frac = np.concatenate([(np.arange(c) + 0.5) / c for c in counts])
    return shapely.line_interpolate_point(boundaries[idx], frac, normalized=True)


def segments_of(lines: np.ndarray) -> np.ndarray:
    """Every line cut into its two-point segments: nearest-border queries against short
    segments are far faster than against whole ring boundaries."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same = index[1:] == index[:-1]
    starts, ends = coords[:-1][same], coords[1:][same]
    distinct = np.any(starts != ends, axis=1)
    return shapely.linestrings(np.stack([starts[distinct], ends[distinct]], axis=1))


def sample_lines(lines: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` along each line (both ends included), vectorised."""
    counts = np.clip(np.ceil(shapely.length(lines) / spacing).astype(int), 1, None) + 1
    index = np.repeat(np.arange(len(lines)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return shapely.line_interpolate_point(lines[index], offsets / np.repeat(counts - 1, counts), normalized=True)


def _median_distance(points: np.ndarray, tree: shapely.STRtree, cap: float) -> float:
    """Median distance from points to the nearest border (distances beyond ``cap`` count as ``cap``)."""
    idx, dist = tree.query_nearest(points, return_distance=True, all_matches=False, max_distance=cap)
    nearest = np.full(len(points), cap)
    nearest[idx[0]] = dist
    return float(np.median(nearest))


class BorderReference:
    """The territory's own borders (units and communities), prepared once per merge: short
    segments in a spatial index for distances, and their FFT raster for shift searches."""

    def __init__(self, lines: np.ndarray, metres_per_degree: float, search_m: float = 800.0, cell_m: float = 10.0):
        self.segments = segments_of(lines)
        self.tree = shapely.STRtree(self.segments)
        self.mpd = metres_per_degree
        self.search_m = search_m
        points = shapely.get_coordinates(sample_lines(self.segments, cell_m / metres_per_degree))
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
    cap = 100.0 / mpd
    before = _median_distance(samples, reference.tree, cap)
    if before * mpd < min_shift_m / 5:
        return None  # already on the territory's borders
    coords = shapely.get_coordinates(samples)
    if np.mean(in_china(coords[:, 0], coords[:, 1])) > 0.5:
        converted = gcj02_to_wgs84_geoms(samples)
        gcj_after = _median_distance(converted, reference.tree, cap)
        if gcj_after < before / 3:
            delta = shapely.get_coordinates(converted).mean(axis=0) - coords.mean(axis=0)
            return Offset(department, float(np.hypot(delta[0] * mpd, delta[1] * M_PER_DEG_LAT)), float(delta[0]), float(delta[1]),
                          before * mpd, gcj_after * mpd, True)
    shift = reference.coarse_shift(samples)
    shift = _icp(samples, reference.tree, reference.segments, shift, 40.0 / mpd, mpd)
    shift = _icp(samples, reference.tree, reference.segments, shift, 2.0 / mpd, mpd)  # fine pass
    after = _median_distance(shapely.transform(samples, lambda c: c + shift), reference.tree, cap)
    shift_m = float(np.hypot(shift[0] * mpd, shift[1] * M_PER_DEG_LAT))
    if shift_m < min_shift_m or after > before / 3:
        return None
    return Offset(department, shift_m, float(shift[0]), float(shift[1]), before * mpd, after * mpd, False)


def _icp(samples: np.ndarray, tree: shapely.STRtree, lines: np.ndarray, shift: np.ndarray, step: float,
         metres_per_degree: float) -> np.ndarray:
    """Refine a shift: move by the median displacement to the nearest border, a few times."""
    for _ in range(10):
        moved = shapely.transform(samples, lambda c: c + shift)
        idx = tree.query_nearest(moved, all_matches=False, max_distance=step)
        segments = shapely.shortest_line(moved[idx[0]], lines[idx[1]])
        residual = shapely.get_coordinates(shapely.get_point(segments, 1)) - shapely.get_coordinates(moved[idx[0]])
        near = np.hypot(*residual.T) < step
        if not near.any():
            break
        update = np.median(residual[near], axis=0)
        shift = shift + update
        if np.hypot(*update) * metres_per_degree < 0.01:
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


# -- conflicts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalScale:
    """Metres per degree at the territory's latitude: areas and widths of the many small pieces a
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


def find_conflicts(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, territory, scale: LocalScale,
                   rules: MergeRules, code_column: str = "code") -> tuple[list[dict], dict[str, object]]:
    """Overlaps, gaps, slivers, community crossings and parts outside, for every department.

    Returns the conflict rows and each department's union (for the coverage figures). Slivers
    are gathered per department and grids involved: a jittered border gives one sliver row per
    pair of grids, not hundreds of crumbs.
    """
    rows: list[dict] = []
    unions: dict[str, object] = {}
    # this runs in threads, one per department: each gets its own copies of the community shapes,
    # because a prepared GEOS geometry builds its indexes lazily and must not be shared between
    # threads (sharing one crashed the interpreter now and then)
    comm_geoms = shapely.from_wkb(shapely.to_wkb(np.asarray(communities.geometry.values, dtype=object)))
    comm_codes = communities[code_column].astype(str).to_numpy()
    comm_tree = shapely.STRtree(comm_geoms)
    shapely.prepare(comm_geoms)

    def add(department, kind, pieces, involved, detail):
        if len(pieces) == 0:
            return
        pieces = np.asarray(pieces, dtype=object)
        areas = scale.area(pieces)
        keep = areas >= rules.tolerance_m2
        widths = scale.width(pieces)
        thin = widths < rules.sliver_width_m
        slivers = pd.DataFrame({"i": np.flatnonzero(thin & (areas > 0))})
        for i in np.flatnonzero(keep & ~thin):
            rows.append({"department": department, "kind": kind, "grids": list(involved[i]), "area_m2": float(areas[i]),
                         "detail": detail[i], "geometry": pieces[i]})
        if len(slivers):
            slivers["key"] = [tuple(sorted(involved[i])) for i in slivers["i"]]
            slivers["area"] = areas[slivers["i"].to_numpy()]
            slivers["width"] = widths[slivers["i"].to_numpy()]
            slivers["group"] = slivers.groupby("key", sort=False).ngroup()
            slivers = slivers.sort_values("group", kind="stable")
            polys = shapely.get_parts(pieces[slivers["i"].to_numpy()], return_index=True)
            shapes = shapely.multipolygons(polys[0], indices=slivers["group"].to_numpy()[polys[1]])
            summary = slivers.groupby("group", sort=True).agg(key=("key", "first"), area=("area", "sum"),
                                                              n=("i", "size"), width=("width", "mean"))
            for (group, row), shape in zip(summary.iterrows(), shapes):
                if row["area"] < rules.tolerance_m2:
                    continue
                what = f"between grids {', '.join(row['key'])}" if row["key"] else "along the edge of the layer"
                rows.append({"department": department, "kind": "sliver", "grids": list(row["key"]),
                             "area_m2": float(row["area"]),
                             "detail": f"thin slivers {what} ({int(row['n'])} pieces, {row['width']:.1f} m wide on "
                                       "average): borders that almost but not quite agree",
                             "geometry": shape})

    for department, layer in grids.groupby("department", sort=False):
        geoms = np.asarray(layer.geometry.values, dtype=object)
        ids = layer["grid_id"].to_numpy()
        tree = shapely.STRtree(geoms)
        # pairs whose interiors meet (grids that merely share a border do not count)
        left, right = tree.query(geoms, predicate="overlaps")
        keep = left < right
        left, right = left[keep], right[keep]
        inner, outer = tree.query(geoms, predicate="contains_properly")
        distinct = inner != outer
        left = np.concatenate([left, inner[distinct]])
        right = np.concatenate([right, outer[distinct]])
        inter = _polygonal(shapely.intersection(geoms[left], geoms[right]))
        nonempty = ~shapely.is_empty(inter)
        parts, which = shapely.get_parts(inter[nonempty], return_index=True)
        pairs = np.column_stack([ids[left[nonempty]], ids[right[nonempty]]])[which] if len(parts) else np.empty((0, 2))
        add(department, "overlap", parts, [tuple(p) for p in pairs],
            [f"grids {a} and {b} of {department} overlap" for a, b in pairs])
        union = shapely.union_all(geoms)
        unions[department] = union
        gaps = shapely.get_parts(_polygonal(np.array([shapely.difference(territory, union)]))[0])
        if len(gaps):
            g_idx, n_idx = tree.query(gaps, predicate="dwithin", distance=1e-7)  # the grids around each gap
            around = [tuple(ids[n_idx[g_idx == i]]) for i in range(len(gaps))]
        else:
            around = []
        add(department, "gap", gaps, around, [f"part of the territory no grid of {department} covers"] * len(gaps))
        outside = shapely.get_parts(_polygonal(np.array([shapely.difference(union, territory)]))[0])
        if len(outside):
            o_idx, n_idx = tree.query(outside, predicate="intersects")
            near = [tuple(ids[n_idx[o_idx == i]]) for i in range(len(outside))]
        else:
            near = []
        add(department, "outside", outside, near, [f"{department} grids reach outside the territory"] * len(outside))
        # grids across communities, with the share in each: only grids no community holds whole
        gi, ci = comm_tree.query(geoms, predicate="intersects")
        held = shapely.contains_properly(comm_geoms[ci], geoms[gi])
        whole = np.zeros(len(geoms), dtype=bool)
        whole[gi[held]] = True
        todo = ~whole[gi]
        gi, ci = gi[todo], ci[todo]
        if len(gi):
            pieces = _polygonal(shapely.intersection(geoms[gi], comm_geoms[ci]))
            frame = pd.DataFrame({"g": gi, "c": comm_codes[ci], "a": scale.area(pieces), "w": scale.width(pieces)})
            real = frame[(frame["a"] >= rules.tolerance_m2) & (frame["w"] >= rules.sliver_width_m)]
            for g, sub in real.groupby("g"):
                if len(sub) < 2:
                    continue
                total = sub["a"].sum()
                shares = ", ".join(f"{c} {a / total:.0%}" for c, a in zip(sub["c"], sub["a"]))
                rows.append({"department": department, "kind": "crosses_community", "grids": [ids[g]],
                             "area_m2": float(total), "detail": f"grid {ids[g]} lies in {len(sub)} communities: {shares}",
                             "geometry": geoms[g]})
    return rows, unions


# -- assignment, crosswalk, duties -----------------------------------------------------------------
WORKERS = max(os.cpu_count() or 1, 1)


def parallel_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise intersection on all cores: shapely releases the GIL inside its array
    functions, so threads over chunks scale with the machine."""
    if len(a) < 2000 or WORKERS == 1:
        return shapely.intersection(a, b)
    bounds = np.linspace(0, len(a), WORKERS + 1).astype(int)
    with ThreadPoolExecutor(WORKERS) as pool:
        parts = pool.map(lambda ij: shapely.intersection(a[ij[0]:ij[1]], b[ij[0]:ij[1]]), zip(bounds[:-1], bounds[1:]))
        return np.concatenate(list(parts))


def overlay_units(units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, unit_area_m2: np.ndarray) -> pd.DataFrame:
    """Area (m²) of every unit × departmental grid overlap, and the share of the unit it covers.

    A unit lying wholly inside a grid skips the intersection; shares are ratios of lon/lat areas
    (exact for a ratio at this scale) and metres come from the unit's own metric area. Grids of
    identical shape (departments that adopted the same lattice or another department's grids:
    common in practice) are overlaid once and the rows repeated for each of them.
    """
    u_geoms = np.asarray(units.geometry.values, dtype=object)
    shapes, first, which = np.unique(shapely.to_wkb(np.asarray(grids.geometry.values, dtype=object)),
                                      return_index=True, return_inverse=True)
    distinct = _overlay_distinct(u_geoms, np.asarray(grids.geometry.values, dtype=object)[first], unit_area_m2)
    owners = pd.DataFrame({"grid": np.arange(len(grids)), "shape": which.ravel()})
    frame = distinct.rename(columns={"grid": "shape"}).merge(owners, on="shape", how="inner")
    return frame[["unit", "grid", "fraction", "area_m2"]].sort_values(["grid", "unit"], kind="stable").reset_index(drop=True)


def _overlay_distinct(u_geoms: np.ndarray, g_geoms: np.ndarray, unit_area_m2: np.ndarray) -> pd.DataFrame:
    """``overlay_units`` on distinct grid shapes."""
    tree = shapely.STRtree(u_geoms)
    gi, ui = tree.query(g_geoms, predicate="intersects")
    shapely.prepare(g_geoms)
    inside = shapely.covers(g_geoms[gi], u_geoms[ui])
    fraction = np.ones(len(gi))
    shapely.prepare(u_geoms)
    holds = ~inside & shapely.covers(u_geoms[ui], g_geoms[gi])  # a small grid inside a unit
    fraction[holds] = shapely.area(g_geoms[gi[holds]]) / shapely.area(u_geoms[ui[holds]])
    partial = np.flatnonzero(~inside & ~holds)
    touching = shapely.touches(g_geoms[gi[partial]], u_geoms[ui[partial]])  # a shared border, no area
    fraction[partial[touching]] = 0.0
    partial = partial[~touching]
    if len(partial):
        fraction[partial] = (shapely.area(parallel_intersection(g_geoms[gi[partial]], u_geoms[ui[partial]]))
                             / shapely.area(u_geoms[ui[partial]]))
    frame = pd.DataFrame({"unit": ui, "grid": gi, "fraction": np.clip(fraction, 0.0, 1.0)})
    frame = frame[frame["fraction"] > 0]
    frame["area_m2"] = frame["fraction"] * unit_area_m2[frame["unit"].to_numpy()]
    return frame


def merge_layers(
    layers: dict[str, gpd.GeoDataFrame] | gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    *,
    min_households: int = 300,
    max_households: int = 500,
    access_list: set[str] | list[str] | None = None,
    tolerance_m2: float | None = None,
    rules: MergeRules | None = None,
    roads: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    code_column: str = "code",
) -> MergeResult:
    """Merge departmental grid layers over ``units`` into one plan; see the module docstring.

    Example
    -------
    >>> result = merge_layers({"综治": zz, "城管": cg, "党建": dj}, units, communities)  # doctest: +SKIP
    >>> result.summary["text"]  # doctest: +SKIP
    '213 grids of 19 kinds → 44 unified grids; 34 duties per grid worker (median)'
    >>> result.conflicts.explore(column="kind")  # doctest: +SKIP
    """
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now

    rules = rules or MergeRules()
    if tolerance_m2 is not None:
        rules = MergeRules(**{**rules.__dict__, "tolerance_m2": tolerance_m2})
    grids = normalise_layers(layers)
    units = units.to_crs(STORAGE_EPSG).reset_index(drop=True)
    communities = communities.to_crs(STORAGE_EPSG)
    area_fn = metric_area_fn(metric_crs_for_frame(communities))
    territory = shapely.union_all(np.asarray(communities.geometry.values, dtype=object))
    scale = LocalScale.at(float(shapely.get_y(shapely.centroid(territory))))
    metres_per_degree = scale.mx

    # 1. whole-layer offsets first: every later step should see the corrected layer
    reference = BorderReference(np.concatenate([
        shapely.boundary(np.asarray(units.geometry.values, dtype=object)),
        shapely.boundary(np.asarray(communities.geometry.values, dtype=object))]), metres_per_degree)
    conflict_rows: list[dict] = []
    corrected_layers: dict[str, gpd.GeoDataFrame] = {}
    fixed_parts = []
    by_department = list(grids.groupby("department", sort=False))
    with ThreadPoolExecutor(WORKERS) as pool:
        offsets = list(pool.map(lambda item: detect_offset(item[1], reference, department=item[0],
                                                           min_shift_m=rules.offset_min_m), by_department))
    for (department, layer), offset in zip(by_department, offsets):
        if offset is None:
            fixed_parts.append(layer)
            continue
        repaired = corrected(layer, offset)
        corrected_layers[department] = repaired
        outline = shapely.union_all(layer.geometry.values)
        conflict_rows.append({"department": department, "kind": "offset", "grids": list(layer["grid_id"]),
                              "area_m2": float(scale.area([outline])[0]), "detail": offset.detail, "geometry": outline})
        fixed_parts.append(repaired if rules.fix_offsets else layer)
    grids = gpd.GeoDataFrame(pd.concat(fixed_parts, ignore_index=True), geometry="geometry", crs=STORAGE_EPSG)
    lap("offsets")

    # 2. conflicts inside each layer
    groups = [layer for _, layer in grids.groupby("department", sort=False)]
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda layer: find_conflicts(layer, communities, territory, scale, rules, code_column),
                                 groups))
    unions = {}
    for found, union in outcomes:
        conflict_rows += found
        unions.update(union)
    lap("conflicts")
    conflicts = gpd.GeoDataFrame(conflict_rows or {"department": [], "kind": [], "grids": [], "area_m2": [],
                                                   "detail": [], "geometry": []},
                                 geometry="geometry", crs=STORAGE_EPSG)

    # 3. which departmental grid holds each unit (largest overlap)
    over = overlay_units(units, grids, area_fn(np.asarray(units.geometry.values, dtype=object)))
    over["department"] = grids["department"].to_numpy()[over["grid"].to_numpy()]
    best = over.sort_values("area_m2", ascending=False).drop_duplicates(["unit", "department"])
    departments = list(dict.fromkeys(grids["department"]))
    signature = np.full((len(units), len(departments)), -1, dtype=np.int64)
    dep_index = {d: i for i, d in enumerate(departments)}
    signature[best["unit"].to_numpy(), best["department"].map(dep_index).to_numpy()] = best["grid"].to_numpy()
    lap("assignment")

    # 4. the unified plan: unit borders where departmental grids change cost more to keep inside
    prules = PartitionRules(**{**rules.partition.__dict__, "min_households": min_households,
                               "max_households": max_households})
    graph = build_graph(units, roads=roads, major_classes=prules.major_road_classes,
                        road_class_column=prules.road_class_column)
    differing = (signature[graph.left] != signature[graph.right]).mean(axis=1) if len(departments) else 0.0
    edge_factor = 1.0 + rules.keep_together_weight * differing
    plan = partition(units, min_households=min_households, max_households=max_households, seed=seed,
                     rules=prules, graph=graph, edge_factor=edge_factor)
    grid_code = plan.units["grid_code"].to_numpy()
    lap("partition")

    # 5. crosswalk both ways
    households = units["households"].to_numpy(dtype=float)
    over["grid_code"] = grid_code[over["unit"].to_numpy()]
    over["households"] = households[over["unit"].to_numpy()] * over["fraction"]
    over["grid_id"] = grids["grid_id"].to_numpy()[over["grid"].to_numpy()]
    pairs = over.groupby(["department", "grid_id", "grid_code"], sort=False)[["area_m2", "households"]].sum().reset_index()
    totals = pairs.groupby(["department", "grid_id"])[["area_m2", "households"]].transform("sum")
    pairs["area_share"] = pairs["area_m2"] / totals["area_m2"]
    pairs["household_share"] = np.where(totals["households"] > 0, pairs["households"] / totals["households"].where(totals["households"] > 0, 1), np.nan)
    crosswalk = pairs[["department", "grid_id", "grid_code", "area_share", "household_share", "area_m2", "households"]]
    unified_area = plan.grids.set_index("grid_code")["area_m2"]
    reverse = pairs[["grid_code", "department", "grid_id", "area_m2", "households"]].copy()
    reverse["share_of_unified"] = reverse["area_m2"] / reverse["grid_code"].map(unified_area)

    # 6. duties of the grids that substantially cover each unified grid
    duties_of = dict(zip(zip(grids["department"], grids["grid_id"]), grids["duties"]))
    duty_rows = []
    for row in reverse[reverse["share_of_unified"] >= rules.duty_threshold].itertuples():
        for duty in duties_of.get((row.department, row.grid_id), []):
            duty_rows.append((row.grid_code, row.department, duty))
    all_duties = pd.DataFrame(duty_rows, columns=["grid_code", "department", "duty"]).drop_duplicates()
    if access_list is not None:
        allowed = set(access_list)
        excluded = all_duties[~all_duties["duty"].isin(allowed)].assign(reason="not on the access list (准入事项清单)")
        duties = all_duties[all_duties["duty"].isin(allowed)]
    else:
        excluded = all_duties.iloc[0:0].assign(reason=pd.Series(dtype=str))
        duties = all_duties
    duties = duties.sort_values(["grid_code", "department", "duty"]).reset_index(drop=True)

    # coverage share of each department over the territory
    territory_area = float(scale.area([territory])[0])
    coverage = pd.DataFrame([
        {"department": d, "grids": int((grids["department"] == d).sum()),
         "coverage_share": float(scale.area([shapely.intersection(unions[d], territory)])[0]) / territory_area}
        for d in departments])

    lap("crosswalk_duties")
    per_grid = duties.groupby("grid_code").size().reindex(plan.grids["grid_code"], fill_value=0)
    split_old = crosswalk.groupby(["department", "grid_id"])["grid_code"].nunique()
    summary = {
        "old_grids": int(len(grids)), "departments": len(departments), "unified_grids": int(len(plan.grids)),
        "duties_min": int(per_grid.min()) if len(per_grid) else 0,
        "duties_median": float(per_grid.median()) if len(per_grid) else 0.0,
        "duties_max": int(per_grid.max()) if len(per_grid) else 0,
        "distinct_duties": int(duties["duty"].nunique()), "excluded_duties": int(excluded["duty"].nunique()),
        "old_grids_split": int((split_old > 1).sum()),
        "conflicts": conflicts["kind"].value_counts().to_dict() if len(conflicts) else {},
        "offset_layers": sorted(corrected_layers),
        "partition": plan.report["summary"],
        "timings_s": timings,
    }
    summary["text"] = (f"{summary['old_grids']} grids of {summary['departments']} kinds → {summary['unified_grids']} "
                       f"unified grids; {summary['duties_min']}/{summary['duties_median']:.0f}/{summary['duties_max']} "
                       f"duties per grid worker (min/median/max)")
    return MergeResult(units=plan.units, grids=plan.grids, crosswalk=crosswalk.reset_index(drop=True),
                       reverse_crosswalk=reverse.reset_index(drop=True), conflicts=conflicts, duties=duties,
                       excluded_duties=excluded.reset_index(drop=True), coverage=coverage,
                       corrected_layers=corrected_layers, partition=plan, summary=summary)
