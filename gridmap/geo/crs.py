"""Coordinate systems: the storage CRS, metric CRSs for areas, and GCJ-02 conversion.

* Storage: CGCS2000 geographic, EPSG:4490 (numerically WGS84 at map scale). GeoDataFrames use
  the traditional GIS axis order (x = longitude, y = latitude) whatever EPSG's authority says.
* Areas and distances: the CGCS2000 3-degree Gauss-Krüger zone (EPSG:4534-4554, no zone prefix)
  inside China, the local WGS84 UTM zone elsewhere.
* GCJ-02 ("Mars coordinates", Amap/Tencent basemaps) is not an EPSG CRS: it is WGS84 plus an
  obfuscating offset of a few hundred metres applied inside mainland China. We convert on the
  way in (``gcj02_to_wgs84``, iterated to millimetre agreement) and on the way out, never inside.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import CRS

if TYPE_CHECKING:
    import geopandas as gpd

STORAGE_EPSG = 4490
GCJ02 = "gcj02"

# Krasovsky 1940 ellipsoid parameters used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323


class CRSError(ValueError):
    """A CRS could not be understood or does not fit the data."""


def parse_crs(value: object) -> CRS | str:
    """Turn user input (``4490``, ``"EPSG:4326"``, ``"gcj02"``, WKT, a pyproj CRS) into a CRS.

    Returns the string ``"gcj02"`` for GCJ-02, which has no EPSG code.
    """
    if isinstance(value, CRS):
        return value
    text = str(value).strip()
    if not text:
        raise CRSError("no coordinate system given")
    if text.lower().replace("-", "").replace("_", "") in ("gcj02", "gcj", "mars"):
        return GCJ02
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except Exception as exc:  # pyproj raises its own CRSError subclasses
        raise CRSError(f"unknown coordinate system {value!r}: {exc}") from exc


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Rough mainland-China box inside which GCJ-02 applies (outside, GCJ-02 equals WGS84)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (degrees) at WGS84 positions, vectorised."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * math.pi) + 320 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * math.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward transform (exact by definition of GCJ-02)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray, *, tol_deg: float = 1e-9,
                   max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Inverse transform by fixed-point iteration: agreement to ~0.1 mm, not just metres."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon -= elon
        wlat -= elat
        if np.all(np.abs(elon) < tol_deg) and np.all(np.abs(elat) < tol_deg):
            break
    return wlon, wlat


def _transform_geoms(geoms: np.ndarray, fn) -> np.ndarray:
    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)


def gcj02_to_wgs84_geoms(geoms: np.ndarray) -> np.ndarray:
    """Convert an array of shapely geometries from GCJ-02 to WGS84 (one vectorised pass)."""
    return _transform_geoms(geoms, gcj02_to_wgs84)


def wgs84_to_gcj02_geoms(geoms: np.ndarray) -> np.ndarray:
    """Convert an array of shapely geometries from WGS84/CGCS2000 to GCJ-02."""
    return _transform_geoms(geoms, wgs84_to_gcj02)


def gcj02_to_wgs84_frame(gdf: "gpd.GeoDataFrame") -> "gpd.GeoDataFrame":
    """A copy of ``gdf`` (coordinates in GCJ-02) in EPSG:4490."""
    out = gdf.copy()
    out.geometry.values[:] = gcj02_to_wgs84_geoms(np.asarray(gdf.geometry.values))
    return out.set_crs(STORAGE_EPSG, allow_override=True)


def wgs84_to_gcj02_frame(gdf: "gpd.GeoDataFrame") -> "gpd.GeoDataFrame":
    """A copy of ``gdf`` converted to GCJ-02 (its CRS label stays EPSG:4490: GCJ-02 has none)."""
    src = gdf.to_crs(STORAGE_EPSG) if gdf.crs is not None else gdf
    out = src.copy()
    out.geometry.values[:] = wgs84_to_gcj02_geoms(np.asarray(src.geometry.values))
    return out


def metric_crs_for(lon: float, lat: float) -> CRS:
    """The metric CRS gridmap computes areas in for data centred at (lon, lat).

    China (73°E-135°E, 3°N-54°N): the CGCS2000 3-degree Gauss-Krüger zone without zone prefix,
    EPSG:4534 (75°E) ... EPSG:4554 (135°E), central meridian the nearest multiple of 3°.
    Elsewhere: the WGS84 UTM zone (EPSG:326xx north, 327xx south).
    """
    if 73.5 <= lon <= 136.5 and 3.0 <= lat <= 54.0:
        central = int(round(lon / 3.0) * 3)
        central = min(max(central, 75), 135)
        return CRS.from_epsg(4534 + (central - 75) // 3)
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def gk3_zone_crs(lon: float, *, with_zone_prefix: bool = False) -> CRS:
    """CGCS2000 3° Gauss-Krüger zone for a longitude: EPSG:4513-4533 (zone number in the false
    easting) when ``with_zone_prefix``, else EPSG:4534-4554. Raises outside 73.5°E-136.5°E."""
    if not 73.5 <= lon <= 136.5:
        raise CRSError(f"longitude {lon:.3f} is outside the CGCS2000 3-degree zones (75°E-135°E)")
    central = min(max(int(round(lon / 3.0) * 3), 75), 135)
    zone = central // 3
    if with_zone_prefix:
        return CRS.from_epsg(4513 + zone - 25)
    return CRS.from_epsg(4534 + (central - 75) // 3)


@dataclass(frozen=True)
class OutputCRS:
    """The coordinate system an export is written in.

    ``crs`` is what the file declares; ``gcj02`` says the coordinates were shifted to GCJ-02 first
    (GCJ-02 has no EPSG code: files for Amap/Tencent systems declare WGS84 and carry the shift).
    """

    crs: CRS
    label: str
    gcj02: bool = False

    @property
    def geographic(self) -> bool:
        return self.crs.is_geographic


def output_crs(spec: object, lon: float, lat: float) -> OutputCRS:
    """Resolve an export CRS for data centred at (lon, lat).

    ``4490`` CGCS2000 geographic; ``4326`` WGS84; ``gk3`` the CGCS2000 3-degree Gauss-Krüger zone
    of the data's longitude with the zone number in the false easting (EPSG:4513-4533); ``gk3-cm``
    the same zone without it (EPSG:4534-4554); ``gcj02`` coordinates shifted to GCJ-02, declared as
    WGS84; any other EPSG code or CRS text as given. Outside 75°E-135°E, where no EPSG zone exists,
    ``gk3``/``gk3-cm`` build the same Gauss-Krüger definition (CGCS2000, k = 1, 500 km false
    easting) on the nearest 3° meridian, named as such, so the demo territories abroad export too.
    """
    text = str(spec).strip().lower()
    if text in ("gk3", "gk3-cm", "gk3-nozone", "gk3-noprefix"):
        prefixed = text == "gk3"
        try:
            zone_crs = gk3_zone_crs(lon, with_zone_prefix=prefixed)
            return OutputCRS(zone_crs, f"EPSG:{zone_crs.to_epsg()} {zone_crs.name}")
        except CRSError:
            return OutputCRS(*_custom_gk3(lon, prefixed))
    parsed = parse_crs(spec)
    if parsed == GCJ02:
        return OutputCRS(CRS.from_epsg(4326), "GCJ-02 (Amap/Tencent; declared as EPSG:4326)", gcj02=True)
    epsg = parsed.to_epsg()
    return OutputCRS(parsed, f"EPSG:{epsg} {parsed.name}" if epsg else parsed.name)


def _custom_gk3(lon: float, prefixed: bool) -> tuple[CRS, str]:
    from pyproj.crs import ProjectedCRS
    from pyproj.crs.coordinate_operation import TransverseMercatorConversion

    central = int(round(lon / 3.0) * 3)
    zone = central // 3 if central > 0 else (central + 360) // 3
    hemisphere = "E" if central >= 0 else "W"
    name = f"CGCS2000 / 3-degree Gauss-Kruger {'zone ' + str(zone) if prefixed else 'CM'} {abs(central)}{hemisphere}"
    conversion = TransverseMercatorConversion(
        latitude_natural_origin=0, longitude_natural_origin=central, false_easting=(zone * 1_000_000 if prefixed else 0)
        + 500_000, false_northing=0, scale_factor_natural_origin=1.0)
    crs = ProjectedCRS(conversion=conversion, geodetic_crs=CRS.from_epsg(STORAGE_EPSG), name=name)
    return crs, f"{name} (no EPSG code: outside China's zones)"


def crs_name_zh(name: str) -> str:
    """A coordinate system's name as a Chinese map sheet says it: the CGCS2000 Gauss-Krüger zones,
    UTM zones and the geographic systems gridmap uses in Chinese words
    (``CGCS2000 / 3-degree Gauss-Kruger CM 105E`` → ``CGCS2000 / 3度带高斯-克吕格投影 中央经线 105°E``);
    any other name as it is."""
    found = re.fullmatch(r"(CGCS2000) / (3|6)-degree Gauss-Kruger (?:zone (\d+)|CM (\d+)([EW]))", name.strip())
    if found:
        system, width, zone, central, side = found.groups()
        where = f"第 {zone} 带" if zone else f"中央经线 {central}°{side}"
        return f"{system} / {width}度带高斯-克吕格投影 {where}"
    found = re.fullmatch(r"(.+) / UTM zone (\d+)([NS])", name.strip())
    if found:
        return f"{found[1]} / UTM 投影 第 {found[2]} 带（{'北' if found[3] == 'N' else '南'}半球）"
    return {"China Geodetic Coordinate System 2000": "CGCS2000 地理坐标系", "WGS 84": "WGS 84 地理坐标系"}.get(
        name.strip(), name)


def metric_crs_for_frame(gdf: "gpd.GeoDataFrame") -> CRS:
    """Metric CRS for a GeoDataFrame, from the centre of its bounds in geographic coordinates."""
    geo = gdf.to_crs(STORAGE_EPSG) if gdf.crs is not None and not gdf.crs.equals(CRS.from_epsg(STORAGE_EPSG)) else gdf
    minx, miny, maxx, maxy = geo.total_bounds
    return metric_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def area_m2(gdf: "gpd.GeoDataFrame") -> np.ndarray:
    """Areas in square metres, computed in the frame's metric CRS."""
    if len(gdf) == 0:
        return np.zeros(0)
    return gdf.to_crs(metric_crs_for_frame(gdf)).geometry.area.to_numpy()
