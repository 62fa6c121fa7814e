"""Is a layer where it says it is? Coordinate-system sanity checks shared by every import.

A district's files often carry a wrong or missing label: metres labelled as degrees, latitude
first, a Gauss-Krüger zone for the neighbouring meridian, coordinates digitised on Amap or
Tencent (GCJ-02) but labelled CGCS2000, or a layer meant for another territory. The functions
here look at the numbers, compare them with where the layer should be, and say what is wrong
and the likely fix. Pure: arrays and frames in, findings out; the import services raise them.

* :func:`crs_label` — a short name for messages (``EPSG:4490 CGCS2000``, ``GCJ-02``), never
  WKT or PROJJSON.
* :func:`crs_problems` — the coordinates against their label, before any conversion: projected
  numbers labelled geographic (|x| > 180), swapped axes (latitudes beyond ±90, or a layer that
  lands far from ``reference_bounds`` while swapping puts it there), degrees labelled projected,
  and a projected label that puts the layer far from ``reference_bounds`` (or outside the CRS's
  own area of use) while another common CRS puts it there. Each :class:`CRSProblem` names the fix
  (``--crs EPSG:3857`` ...).
* :func:`placement` — the share of a layer's features (by count, and by area, length or count)
  outside a territory's outline, with both bounding boxes for the message.
* :func:`gcj02_suspect` — a layer in China that sits a few hundred metres off in the GCJ-02
  pattern: converted with ``gcj02_to_wgs84``, it fits the territory (its outline, its
  communities' borders, its roads) as only real data do, and as labelled it does not.

All run on samples of the layer, vectorised: well under a second for 10,000 buildings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from gridmap.geo.crs import GCJ02, STORAGE_EPSG, gcj02_to_wgs84, gcj02_to_wgs84_geoms, in_china
from gridmap.geo.offsets import sample_segments, segment_ends
from gridmap.geo.shapes import M_PER_DEG_LAT, LocalScale

SHORT_NAMES = {4490: "CGCS2000", 4326: "WGS 84", 4214: "Beijing 1954", 4610: "Xian 1980"}
"""Short names for the geographic CRSs that pyproj names at length."""

Bounds = tuple[float, float, float, float]


# -- labels -----------------------------------------------------------------------------------------
def crs_label(crs: object) -> str:
    """A short name for messages: ``EPSG:4490 CGCS2000``, ``EPSG:3857 WGS 84 / Pseudo-Mercator``,
    ``GCJ-02``; a CRS without an EPSG code by its name. Never WKT or PROJJSON."""
    if crs is None:
        return "(no CRS)"
    if isinstance(crs, str) and crs.strip().lower().replace("-", "").replace("_", "") in ("gcj02", "gcj", "mars"):
        return "GCJ-02"
    try:
        parsed = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - a label for a message must never fail
        return str(crs)[:60]
    epsg = parsed.to_epsg()
    if epsg:
        return f"EPSG:{epsg} {SHORT_NAMES.get(epsg, parsed.name)}"
    if parsed.name and parsed.name != "unknown":
        return parsed.name
    with warnings.catch_warnings():  # "you will lose information": a label is all it is for
        warnings.simplefilter("ignore")
        return f"custom CRS ({parsed.to_proj4()[:80]})"


# -- the coordinates against their label ---------------------------------------------------------------
@dataclass(frozen=True)
class CRSProblem:
    """One thing wrong with a layer's coordinate system: ``kind`` (``projected_as_degrees``,
    ``swapped_axes``, ``degrees_as_projected``, ``label_contradicts``), the message in English
    and Chinese, and the fix (``--crs EPSG:3857``; ``None`` when the file itself must change)."""

    kind: str
    en: str
    zh: str
    fix: str | None = None


def _sample_coordinates(geoms: np.ndarray, limit: int) -> np.ndarray:
    """Finite coordinates of up to ``limit`` geometries spread over the layer (vertices of each)."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) > limit:
        geoms = geoms[np.linspace(0, len(geoms) - 1, limit).astype(int)]
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    coords = shapely.get_coordinates(geoms)
    if len(coords) > 20 * limit:
        coords = coords[np.linspace(0, len(coords) - 1, 20 * limit).astype(int)]
    return coords[np.all(np.isfinite(coords), axis=1)]


def _near(lon: np.ndarray, lat: np.ndarray, bounds: Bounds) -> float:
    """Share of the points within ``bounds`` widened by a quarter of its size (and 0.02°)."""
    minx, miny, maxx, maxy = bounds
    mx = 0.25 * (maxx - minx) + 0.02
    my = 0.25 * (maxy - miny) + 0.02
    inside = (lon >= minx - mx) & (lon <= maxx + mx) & (lat >= miny - my) & (lat <= maxy + my)
    return float(np.mean(inside)) if len(lon) else 0.0


def _to_lonlat(crs: CRS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        lon, lat = Transformer.from_crs(crs, STORAGE_EPSG, always_xy=True).transform(x, y, errcheck=False)
    except Exception:  # noqa: BLE001 - an impossible transformation places nothing
        return np.full(len(x), np.nan), np.full(len(y), np.nan)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    lon[bad], lat[bad] = np.nan, np.nan
    return lon, lat


def _gk_zone_epsg(x_median: float) -> int | None:
    """The CGCS2000 Gauss-Krüger CRS whose zone number prefixes eastings like ``x_median``:
    3-degree zones 25-45 (EPSG:4513-4533), 6-degree zones 13-23 (EPSG:4491-4501)."""
    zone = int(x_median // 1_000_000)
    if 25 <= zone <= 45 and 0 <= x_median - zone * 1_000_000 <= 1_000_000:
        return 4513 + zone - 25
    if 13 <= zone <= 23:
        return 4491 + zone - 13
    return None


def _candidates(x: np.ndarray, y: np.ndarray, reference: Bounds | None) -> list[int]:
    """EPSG codes that projected numbers like these are commonly in, most specific first."""
    found = []
    prefixed = _gk_zone_epsg(float(np.median(x)))
    if prefixed:
        found.append(prefixed)
    if reference is not None:
        lon = (reference[0] + reference[2]) / 2
        lat = (reference[1] + reference[3]) / 2
        if 73.5 <= lon <= 136.5:
            central = min(max(int(round(lon / 3.0) * 3), 75), 135)
            found.append(4534 + (central - 75) // 3)  # CGCS2000 3-degree GK, no zone prefix
        found.append(3857)
        found.append((32600 if lat >= 0 else 32700) + int((lon + 180) // 6) % 60 + 1)  # UTM
        if 72 <= lon <= 138:
            found.append(4502 + min(max(int(round((lon - 75) / 6.0)), 0), 10))  # CGCS2000 6-degree GK, CM
    else:
        found.append(3857)
    return list(dict.fromkeys(found))


def _fitting(x: np.ndarray, y: np.ndarray, reference: Bounds, candidates: list[int]) -> int | None:
    """The first candidate EPSG code that puts most of the points near ``reference``."""
    for epsg in candidates:
        lon, lat = _to_lonlat(CRS.from_epsg(epsg), x, y)
        if _near(lon, lat, reference) >= 0.5:
            return epsg
    return None


def fitting_crs(geoms, reference: Bounds | None, sample: int = 2000) -> int | None:
    """The EPSG code the coordinates of a file that does not say its own (no ``.prj``) most
    likely are in, judged by where they must lie (``reference``, lon/lat): 4490 for degrees that
    lie there, else the first usual projected CRS (a Gauss-Krüger zone with or without its prefix,
    Web Mercator) that puts them there; None when none does or there is nothing to compare with."""
    xy = _sample_coordinates(np.asarray(geoms, dtype=object), sample)
    if reference is None or not len(xy):
        return None
    x, y = xy[:, 0], xy[:, 1]
    if np.mean((np.abs(x) <= 180) & (np.abs(y) <= 90)) >= 0.5:
        return STORAGE_EPSG if _near(x, y, reference) >= 0.5 else None
    return _fitting(x, y, reference, _candidates(x, y, reference))


def _span(values: np.ndarray, digits: int) -> str:
    return f"{np.nanmin(values):,.{digits}f}..{np.nanmax(values):,.{digits}f}"


def _where(lon: np.ndarray, lat: np.ndarray) -> tuple[str, str]:
    return (f"lon {_span(lon, 3)}, lat {_span(lat, 3)}", f"经度 {_span(lon, 3)}，纬度 {_span(lat, 3)}")


def _bounds_text(bounds: Bounds) -> tuple[str, str]:
    minx, miny, maxx, maxy = bounds
    return (f"lon {minx:.3f}..{maxx:.3f}, lat {miny:.3f}..{maxy:.3f}",
            f"经度 {minx:.3f}..{maxx:.3f}，纬度 {miny:.3f}..{maxy:.3f}")


def _swapped(name: str, reason_en: str, reason_zh: str) -> CRSProblem:
    return CRSProblem(
        "swapped_axes",
        f"{name}: the coordinates look swapped (latitude first): {reason_en}; write them as longitude, latitude "
        "(in a CSV, swap the lon/lat column names) and import again",
        f"{name}：坐标的经纬度似乎颠倒了（纬度在前）：{reason_zh}；请按“经度、纬度”的顺序写入"
        "（CSV 中交换经纬度两列的列名）后重新导入")


def crs_problems(frame, declared: object = None, reference_bounds: Bounds | None = None, *,
                 name: str = "layer", sample: int = 2000) -> list[CRSProblem]:
    """What is wrong with the coordinate system of ``frame`` (its coordinates as in the file,
    before any conversion), said as :class:`CRSProblem` s with the likely fix; empty when nothing
    is. ``declared`` is the CRS the coordinates are said to be in (``"gcj02"``, an EPSG code, a
    pyproj CRS; default: the frame's own); ``reference_bounds`` (lon/lat, EPSG:4490) is where the
    layer should lie, e.g. the territory's bounding box, which enables the checks that need a
    place to compare with.

    Only the layer as a whole is judged (at least half of a sample of its coordinates): a few
    broken features are the feature checks' business, named one by one there.

    Example
    -------
    >>> crs_problems(roads, "EPSG:4326", territory.bounds)  # doctest: +SKIP
    [CRSProblem(kind='projected_as_degrees', ..., fix='--crs EPSG:3857')]
    """
    if declared is None:
        declared = getattr(frame, "crs", None)
    if declared is None:
        return []
    gcj = isinstance(declared, str) and crs_label(declared) == "GCJ-02"
    crs = None if gcj else (declared if isinstance(declared, CRS) else CRS.from_user_input(declared))
    label = "GCJ-02" if gcj else crs_label(crs)
    geoms = np.asarray(frame.geometry.values if hasattr(frame, "geometry") else frame, dtype=object)
    xy = _sample_coordinates(geoms, sample)
    if len(xy) == 0:
        return []
    x, y = xy[:, 0], xy[:, 1]
    ref = reference_bounds
    degrees_like = (np.abs(x) <= 180) & (np.abs(y) <= 90)
    if gcj or crs.is_geographic:
        if np.mean(degrees_like) < 0.5:
            if np.mean((np.abs(x) <= 90) & (np.abs(y) <= 180)) >= 0.5:
                return [_swapped(name, f"latitudes reach {np.max(np.abs(y)):.1f}, beyond ±90, while longitudes stay "
                                       "within ±90",
                                 f"纬度达到 {np.max(np.abs(y)):.1f}，超出 ±90，而经度都在 ±90 以内")]
            return [_projected_as_degrees(name, label, x, y, ref)]
        if ref is not None and _near(x, y, ref) < 0.5 and _near(y, x, ref) >= 0.5:
            here_en, here_zh = _where(x, y)
            return [_swapped(name, f"as given the layer lies at {here_en}, far from where it belongs "
                                   f"({_bounds_text(ref)[0]}); swapped, it lies there",
                             f"按原样图层位于{here_zh}，远离应在的位置（{_bounds_text(ref)[1]}）；交换后正好落在该处")]
        return []
    if np.mean(degrees_like) >= 0.5 and np.max(np.abs(x)) <= 180:
        problem = CRSProblem(
            "degrees_as_projected",
            f"{name}: the coordinates look like longitude/latitude in degrees (x {_span(x, 4)}, y {_span(y, 4)}), "
            f"but the layer is labelled {label}, a projected CRS in metres: import it with --crs EPSG:4490",
            f"{name}：坐标看起来是以度为单位的经纬度（x {_span(x, 4)}，y {_span(y, 4)}），但图层标注为投影坐标系 "
            f"{label}（单位：米）：请加 --crs EPSG:4490 导入", "--crs EPSG:4490")
        return [problem]
    lon, lat = _to_lonlat(crs, x, y)
    placed = np.isfinite(lon)
    if ref is not None:
        if placed.any() and _near(lon[placed], lat[placed], ref) >= 0.5:
            return []
        better = _fitting(x, y, ref, [c for c in _candidates(x, y, ref) if c != crs.to_epsg()])
        if better is None:
            return []  # elsewhere whatever the label: the territory check says where
        right = crs_label(CRS.from_epsg(better))
        landed_en, landed_zh = (_where(lon[placed], lat[placed]) if placed.any()
                                else ("nowhere on Earth", "地球以外"))
        ref_en, ref_zh = _bounds_text(ref)
        return [CRSProblem(
            "label_contradicts",
            f"{name}: labelled {label}, the layer lands at {landed_en}, far from where it belongs ({ref_en}); "
            f"read as {right} it lies there: import it with --crs EPSG:{better}",
            f"{name}：按标注的 {label}，图层落在{landed_zh}，远离应在的位置（{ref_zh}）；按 {right} 读取则正好落在该处："
            f"请加 --crs EPSG:{better} 导入", f"--crs EPSG:{better}")]
    area = crs.area_of_use
    if area is not None and placed.any():
        west, south, east, north = area.bounds
        cx, cy = float(np.nanmedian(lon)), float(np.nanmedian(lat))
        if not (west - 2 <= cx <= east + 2 and south - 2 <= cy <= north + 2):
            guesses = [c for c in _candidates(x, y, None) if c != crs.to_epsg()]
            hint_en = f"; perhaps --crs EPSG:{guesses[0]}" if guesses else ""
            hint_zh = f"；可能应为 --crs EPSG:{guesses[0]}" if guesses else ""
            return [CRSProblem(
                "label_contradicts",
                f"{name}: labelled {label}, the layer lands at lon {cx:.3f}, lat {cy:.3f}, outside the area that CRS "
                f"is made for (lon {west:.1f}..{east:.1f}, lat {south:.1f}..{north:.1f}): the label contradicts the "
                f"coordinates; give the right one with --crs{hint_en}",
                f"{name}：按标注的 {label}，图层落在经度 {cx:.3f}、纬度 {cy:.3f}，超出该坐标系的适用范围"
                f"（经度 {west:.1f}..{east:.1f}，纬度 {south:.1f}..{north:.1f}）：标注与坐标不符，请用 --crs 指定正确的坐标系{hint_zh}",
                f"--crs EPSG:{guesses[0]}" if guesses else None)]
    return []


def _projected_as_degrees(name: str, label: str, x: np.ndarray, y: np.ndarray, ref: Bounds | None) -> CRSProblem:
    """Numbers far beyond ±180/±90 in a layer labelled geographic: metres of a projected CRS."""
    spans = f"x {_span(x, 0)}, y {_span(y, 0)}"
    head_en = (f"{name}: coordinates out of range for {label} (longitude -180..180, latitude -90..90): {spans} look "
               "like metres of a projected CRS")
    head_zh = f"{name}：坐标超出 {label} 的范围（经度 -180..180，纬度 -90..90）：{spans} 像是投影坐标（米）"
    if ref is not None:
        epsg = _fitting(x, y, ref, _candidates(x, y, ref))
        if epsg is not None:
            right = crs_label(CRS.from_epsg(epsg))
            return CRSProblem("projected_as_degrees",
                              f"{head_en}, which put the layer where it belongs when read as {right}: "
                              f"import it with --crs EPSG:{epsg}",
                              f"{head_zh}，按 {right} 读取正好落在应在的位置：请加 --crs EPSG:{epsg} 导入",
                              f"--crs EPSG:{epsg}")
    else:
        epsg = _gk_zone_epsg(float(np.median(x)))
        if epsg is not None:
            right = crs_label(CRS.from_epsg(epsg))
            return CRSProblem("projected_as_degrees",
                              f"{head_en}, probably {right} (the zone number leads the eastings): "
                              f"import it with --crs EPSG:{epsg}",
                              f"{head_zh}，很可能是 {right}（东坐标以带号开头）：请加 --crs EPSG:{epsg} 导入",
                              f"--crs EPSG:{epsg}")
    return CRSProblem("projected_as_degrees",
                      f"{head_en}; give it with --crs EPSG:xxxx (CGCS2000 3-degree Gauss-Krüger zones are "
                      "EPSG:4534-4554, or 4513-4533 with the zone number leading x; Web Mercator is EPSG:3857)",
                      f"{head_zh}；请用 --crs EPSG:xxxx 指定（CGCS2000 三度带高斯-克吕格为 EPSG:4534-4554，"
                      "东坐标带带号的为 4513-4533；Web 墨卡托为 EPSG:3857）")


# -- the layer against the territory ------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where a layer lies against a territory's outline: features entirely outside it, and the
    share of the layer's ``measure`` (``area``, ``length`` or ``count``) outside it."""

    features: int
    outside: int
    measure: str
    outside_measure: float
    layer_bounds: Bounds
    territory_bounds: Bounds
    furthest_m: float = 0.0  # how far the feature outside furthest from the territory lies from it

    @property
    def outside_share(self) -> float:
        return self.outside / self.features if self.features else 0.0

    def describe(self) -> tuple[str, str]:
        """``"96% of its features (48 of 50; 97% of their area)"`` in English and Chinese."""
        what_en = {"area": "area", "length": "length", "count": "count"}[self.measure]
        what_zh = {"area": "面积", "length": "长度", "count": "数量"}[self.measure]
        share = f"{self.outside_share:.0%}"
        return (f"{share} of its features ({self.outside:,} of {self.features:,}; {self.outside_measure:.0%} of "
                f"their {what_en})",
                f"{self.features:,} 个要素中有 {self.outside:,} 个（{share}，{what_zh}的 {self.outside_measure:.0%}）")

    def where(self) -> tuple[str, str]:
        """Where the features outside lie: along the territory's border when all are within
        :data:`ALONG_BORDER_M` of it (roads along a district's outer border, drawn a little beyond
        it: both bounding boxes would be the same and say nothing), else both bounding boxes."""
        if self.outside and self.furthest_m <= ALONG_BORDER_M:
            return (f"all just beyond its border, the furthest {self.furthest_m:,.0f} m from it",
                    f"都在辖区边界外侧附近，最远 {self.furthest_m:,.0f} 米")
        layer_en, layer_zh = _bounds_text(self.layer_bounds)
        ter_en, ter_zh = _bounds_text(self.territory_bounds)
        return (f"the layer spans {layer_en}, the territory {ter_en}", f"图层范围为{layer_zh}，辖区范围为{ter_zh}")


ALONG_BORDER_M = 200.0
"""Features outside a territory all within this of it lie along its border (a road along the
district's outer edge), not somewhere else altogether."""


def placement(geoms: np.ndarray, outline) -> Placement:
    """How much of a layer (EPSG:4490 geometries) lies outside ``outline`` (the territory, EPSG:4490).

    A feature is outside when it does not touch the outline at all. The measure is the layer's
    highest dimension: area for polygons, length for lines, count for points; only features
    crossing the outline are intersected, so a layer inside (or outside) costs a prepared
    containment test per feature."""
    geoms = np.asarray(geoms, dtype=object)
    shapely.prepare(outline)
    touching = shapely.intersects(outline, geoms)
    within = shapely.contains(outline, geoms)
    dims = shapely.get_dimensions(geoms)
    top = int(dims.max()) if len(dims) else 0
    scale = LocalScale.at(float(np.mean(shapely.bounds(outline)[[1, 3]])))
    crossing = np.flatnonzero(touching & ~within & (dims == top))
    if top == 2:
        measure, total = "area", shapely.area(geoms) * (dims == 2)
        inside = np.where(within & (dims == 2), total, 0.0)
        inside[crossing] = shapely.area(shapely.intersection(geoms[crossing], outline))
    elif top == 1:
        measure = "length"
        total = shapely.length(scale.metric(geoms)) * (dims == 1)
        inside = np.where(within & (dims == 1), total, 0.0)
        inside[crossing] = shapely.length(scale.metric(shapely.intersection(geoms[crossing], outline)))
    else:
        measure, total = "count", np.ones(len(geoms))
        inside = touching.astype(float)
    whole = float(total.sum())
    outside_measure = 1.0 - float(inside.sum()) / whole if whole > 0 else 0.0
    away = geoms[~touching]
    furthest = 0.0
    if 0 < len(away) <= 10_000:  # the furthest vertex outside from the territory, in metres (a few features)
        boundary = scale.metric(np.array([shapely.boundary(outline)], dtype=object))[0]
        furthest = float(shapely.distance(scale.metric(shapely.points(shapely.get_coordinates(away))), boundary).max())
    elif len(away):
        furthest = float("inf")
    return Placement(features=len(geoms), outside=int((~touching).sum()), measure=measure,
                     outside_measure=max(0.0, outside_measure), layer_bounds=tuple(shapely.total_bounds(geoms)),
                     territory_bounds=tuple(shapely.bounds(outline)), furthest_m=furthest)


# -- GCJ-02 left unconverted ------------------------------------------------------------------------
@dataclass(frozen=True)
class Gcj02Evidence:
    """Why a layer looks like GCJ-02: the shift the conversion makes (m) and, for each test that
    found it (``found``: ``outside``, ``borders``, ``edges``, ``roads``), the figure as labelled
    and once converted: the share of features outside the territory, the median distance (m) of
    the layer's borders to the territory's borders and roads, the share of them within 6 m of
    those, the length (m) of roads running through the layer's polygons."""

    shift_m: float
    found: tuple[str, ...]
    outside_before: float
    outside_after: float
    border_before_m: float | None = None
    border_after_m: float | None = None
    edges_before: float | None = None
    edges_after: float | None = None
    roads_before_m: float | None = None
    roads_after_m: float | None = None

    def said(self, name: str) -> tuple[str, str]:
        """The refusal, with the fix, in English and Chinese."""
        facts_en, facts_zh = [], []
        if "outside" in self.found:
            facts_en.append(f"{self.outside_before:.0%} of its features lie outside the territory as labelled, "
                            f"{self.outside_after:.0%} once converted from GCJ-02")
            facts_zh.append(f"按标注有 {self.outside_before:.0%} 的要素在辖区之外，按 GCJ-02 转换后为 "
                            f"{self.outside_after:.0%}")
        if "borders" in self.found:
            facts_en.append(f"its borders lie a median {self.border_before_m:.0f} m from the territory's borders and "
                            f"roads as labelled, {self.border_after_m:.0f} m once converted")
            facts_zh.append(f"其边界与辖区边界及道路的距离中位数按标注为 {self.border_before_m:.0f} 米，转换后为 "
                            f"{self.border_after_m:.0f} 米")
        if "edges" in self.found:
            facts_en.append(f"{self.edges_before:.0%} of its edges follow the territory's borders or roads (within "
                            f"6 m) as labelled, {self.edges_after:.0%} once converted")
            facts_zh.append(f"其边界与辖区边界或道路重合（6 米以内）的比例按标注为 {self.edges_before:.0%}，转换后为 "
                            f"{self.edges_after:.0%}")
        if "roads" in self.found:
            facts_en.append(f"roads run through {self.roads_before_m:,.0f} m of its features as labelled, "
                            f"{self.roads_after_m:,.0f} m once converted, unlike any other shift of that size")
            facts_zh.append(f"道路穿过其要素的长度按标注为 {self.roads_before_m:,.0f} 米，转换后为 "
                            f"{self.roads_after_m:,.0f} 米，与同等距离的其他平移明显不同")
        return (f"{name}: this layer looks like GCJ-02 (Amap/Tencent coordinates, ~{self.shift_m:.0f} m off): "
                f"{'; '.join(facts_en)}; import it with --crs gcj02",
                f"{name}：该图层疑似 GCJ-02 坐标（高德/腾讯地图坐标，偏移约 {self.shift_m:.0f} 米）："
                f"{'；'.join(facts_zh)}；请加 --crs gcj02 导入")


DISTANCE_CAP_M = 150.0
ON_LINE_M = 6.0       # a border sample this close to a reference line follows it (samples every 8 m)
SHIFTS = 8             # other shifts of the conversion's size each configuration is compared with
DECISIVE_Z = 5.0       # how far (robust z) the converted layer must stand out from its shifted copies
MIN_FEATURES = 5       # fewer features than this give no evidence by shifts
ON_BORDERS_M = 25.0    # ... and, to count, its borders must lie this close to the lines (median)
FOLLOWING = 0.05       # ... or this share of them follow the lines
DOMINANCE = 2.5        # ... and how much farther than the layer as labelled does from its own


def _robust_z(value: float, others: np.ndarray, floor: float) -> float:
    """How unusual ``value`` is among ``others`` (median and scaled MAD; the spread is at least
    ``floor`` and a tenth of the median, so a flat neighbourhood cannot make noise decisive)."""
    centre = float(np.median(others))
    spread = max(1.4826 * float(np.median(np.abs(others - centre))), 0.1 * abs(centre), floor)
    return (value - centre) / spread


def _line_samples(geoms: np.ndarray, factor: np.ndarray, spacing_m: float, limit: int) -> np.ndarray:
    """Points every ``spacing_m`` along the borders of polygons and along lines (the points
    themselves for points), in lon/lat."""
    dims = shapely.get_dimensions(geoms)
    own = np.concatenate([shapely.boundary(geoms[dims == 2]), geoms[dims == 1]])
    xy = np.empty((0, 2))
    if len(own):
        starts, ends = segment_ends(shapely.get_parts(own))
        if len(starts):
            xy = sample_segments(starts * factor, ends * factor, spacing_m)[0] / factor
    xy = np.vstack([xy, shapely.get_coordinates(geoms[dims == 0])])
    if len(xy) > limit:
        xy = xy[np.linspace(0, len(xy) - 1, limit).astype(int)]
    return xy


def gcj02_suspect(geoms: np.ndarray, outline, borders: np.ndarray | None = None, roads: np.ndarray | None = None,
                  *, sample: int = 2000) -> Gcj02Evidence | None:
    """Evidence that a layer (EPSG:4490 as labelled) is really GCJ-02, or None.

    Only inside China, where GCJ-02 differs from WGS84. Real data fit their territory as no
    shifted copy of them does; so the layer as labelled and as converted by ``gcj02_to_wgs84``
    (a shift of a few hundred metres) are each compared with copies of themselves shifted as far
    in eight other directions, on what the territory offers:

    * ``borders``: the median distance of the layer's borders (lines, points) to the territory's
      borders and roads (``outline``, ``borders`` such as its communities', ``roads``), and
      ``edges``: the share of them within 6 m (the layer's edges that follow those lines);
    * ``roads``: the length of ``roads`` running through the layer's polygons (roads pass around
      buildings and sites, and along a compound's own lanes; either way real data stand out);
    * ``outside``: the features outside the territory (at least 3 and 1 %) that the conversion
      brings inside it (all but a fifth of them).

    The layer is GCJ-02 when the converted layer stands out decisively (a robust z of 5, and
    2.5 times more than the layer as labelled does from its copies, with at least 5 features, and
    for ``borders`` lying within a median 25 m of the lines, for ``edges`` 5 % of them following
    the lines) in one of the first two, or the third finds it, and no test finds the layer as
    labelled to be the real one. A layer that merely lies elsewhere stands out in neither: the
    territory check speaks for it.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return None
    if len(geoms) > sample:
        geoms = geoms[np.linspace(0, len(geoms) - 1, sample).astype(int)]
    centre = shapely.get_coordinates(shapely.centroid(outline))
    if not in_china(centre[:, 0], centre[:, 1]).all():
        return None
    points = shapely.get_coordinates(shapely.point_on_surface(geoms))
    if np.mean(in_china(points[:, 0], points[:, 1])) < 0.5:
        return None
    factor = np.array([LocalScale.at(float(centre[0, 1])).mx, M_PER_DEG_LAT])
    moved = np.column_stack(gcj02_to_wgs84(points[:, 0], points[:, 1]))
    step = np.median(moved - points, axis=0)  # the conversion here, as one shift (degrees)
    shift_m = float(np.hypot(*(step * factor)))
    angles = np.arctan2(*(step * factor)[::-1]) + np.pi / SHIFTS + np.arange(SHIFTS) * 2 * np.pi / SHIFTS
    offsets = np.column_stack([np.cos(angles), np.sin(angles)]) * shift_m / factor  # other shifts, same size
    zero = np.zeros(2)
    tests = []  # (name, statistic of the labelled layer shifted by d, of the converted one, floor, better)

    lines = [shapely.boundary(outline)]
    for extra in (borders, roads):
        if extra is not None and len(extra):
            lines += list(np.asarray(extra, dtype=object))
    reach = 3 * shift_m / factor  # only the reference lines near the layer: a city's roads cost nothing
    lines = shapely.clip_by_rect(np.asarray(lines, dtype=object), *(shapely.total_bounds(geoms)
                                                                    + np.r_[-reach, reach]))
    starts, ends = segment_ends(shapely.get_parts(lines[~shapely.is_empty(lines)]))
    if len(starts):
        tree = cKDTree(sample_segments(starts * factor, ends * factor, 8.0)[0])
        own = _line_samples(geoms, factor, 20.0, 8_000)
        own_moved = np.column_stack(gcj02_to_wgs84(own[:, 0], own[:, 1]))
        cache: dict[tuple, np.ndarray] = {}

        def distances(xy: np.ndarray, key: tuple) -> np.ndarray:
            if key not in cache:
                cache[key] = np.minimum(tree.query(xy * factor, distance_upper_bound=DISTANCE_CAP_M)[0],
                                        DISTANCE_CAP_M)
            return cache[key]

        def statistic(fn, base: np.ndarray, which: str):
            return lambda d: fn(distances(base + d, (which, *np.round(d, 12))))

        median = lambda found: float(np.median(found))  # noqa: E731 - statistics side by side
        near = lambda found: float(np.mean(found <= ON_LINE_M))  # noqa: E731
        tests.append(("borders", statistic(median, own, "l"), statistic(median, own_moved, "c"), 2.0, "lower"))
        tests.append(("edges", statistic(near, own, "l"), statistic(near, own_moved, "c"),
                      max(3 / len(own), 0.005), "higher"))
    polygons = geoms[shapely.get_dimensions(geoms) == 2]
    if roads is not None and len(roads) and len(polygons) >= 10:
        polygons = polygons[np.linspace(0, len(polygons) - 1, min(len(polygons), 500)).astype(int)]
        polygons_moved = gcj02_to_wgs84_geoms(polygons)
        road_geoms = np.asarray(roads, dtype=object)
        road_tree = shapely.STRtree(road_geoms)

        def through(polys: np.ndarray):
            def run(d: np.ndarray) -> float:
                shifted = shapely.transform(polys, lambda c: c + d)
                p, r = road_tree.query(shifted, predicate="intersects")
                return float(shapely.length(shapely.intersection(road_geoms[r], shifted[p])).sum() * factor[0])
            return run

        tests.append(("roads", through(polygons), through(polygons_moved), 20.0, "either"))

    found, against, figures = [], [], {}
    for name, labelled, converted, floor, better in (tests if len(geoms) >= MIN_FEATURES else []):
        before, after = labelled(zero), converted(zero)
        figures.setdefault(name, (before, after))
        around_labelled = np.array([labelled(d) for d in offsets])
        around_converted = np.array([converted(d) for d in offsets])
        if name == "borders" and min(np.median(around_labelled), np.median(around_converted)) >= DISTANCE_CAP_M:
            continue  # nothing near either way: a distance says nothing here
        z_labelled = _robust_z(before, around_labelled, floor)
        z_converted = _robust_z(after, around_converted, floor)
        sign = {"lower": -1.0, "higher": 1.0, "either": 0.0}[better]
        for z, other, into, fits in ((z_converted, z_labelled, found, after), (z_labelled, z_converted, against, before)):
            if sign and z * sign <= 0:
                continue
            if name == "borders" and fits > ON_BORDERS_M or name == "edges" and fits < FOLLOWING:
                continue  # standing out is not fitting: real data lie on the borders and roads they follow
            if abs(z) >= DECISIVE_Z and abs(z) >= DOMINANCE * abs(other):
                into.append(name)

    shapely.prepare(outline)

    def outside(xy: np.ndarray) -> np.ndarray:
        return ~shapely.intersects_xy(outline, xy[:, 0], xy[:, 1])

    out_before, out_after = outside(points), outside(moved)
    share_before, share_after = float(out_before.mean()), float(out_after.mean())
    labelled_best = share_before <= min(float(outside(points + d).mean()) for d in offsets)
    if (out_before.sum() >= 3 and share_before >= 0.01 and share_after <= share_before / 5 and not labelled_best):
        found.append("outside")
    if against or not found:
        return None
    border, edges, through_roads = (figures.get(name, (None, None)) for name in ("borders", "edges", "roads"))
    return Gcj02Evidence(shift_m, tuple(dict.fromkeys(found)), share_before, share_after, *border, *edges,
                         *through_roads)


__all__ = ["CRSProblem", "Placement", "Gcj02Evidence", "crs_label", "crs_problems", "placement", "gcj02_suspect",
           "GCJ02"]
