"""Reading GIS files into checked GeoDataFrames in EPSG:4490.

Formats: GeoPackage, Shapefile (``.shp`` or a ``.zip`` holding one; UTF-8 or GBK attributes),
GeoJSON, KML, CSV with lon/lat columns or a WKT column, GeoParquet.

What happens to every file (so an import never stores something it did not check):
1. The CRS comes from the file, or from ``crs=`` (required when the file has none), including
   ``crs="gcj02"`` for data digitised on Amap/Tencent basemaps, converted to CGCS2000 here.
2. Invalid geometries are repaired with ``make_valid`` and each repair is reported.
3. Empty geometries, geometries of the wrong type (``expect="polygon"`` etc.) and coordinates out
   of range (|lon| > 180, |lat| > 90 after conversion) are rejected: the error names the features.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from gridmap.geo.crs import GCJ02, STORAGE_EPSG, gcj02_to_wgs84_geoms, parse_crs
from gridmap.geo.shapes import polygonal

SUPPORTED_SUFFIXES = {".gpkg", ".shp", ".zip", ".geojson", ".json", ".kml", ".csv", ".parquet"}
EXPECT_TYPES = {
    "polygon": {"Polygon", "MultiPolygon"},
    "line": {"LineString", "MultiLineString"},
    "point": {"Point", "MultiPoint"},
}
LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")
MAX_LISTED = 10


@dataclass(frozen=True)
class ReadLimits:
    """How much one file may hold: a guard against mistakes and hostile uploads.

    ``unpacked_bytes``: what a zip may unpack to; ``ratio``: how many times larger than its
    compressed size a member may unpack to (a zip bomb is thousands of times); ``features`` per
    layer; ``vertices`` per geometry."""

    unpacked_bytes: int = 2 * 1024**3
    ratio: float = 200.0
    features: int = 5_000_000
    vertices: int = 1_000_000


DEFAULT_LIMITS = ReadLimits()


class VectorReadError(ValueError):
    """The file cannot be imported as it is; the message says what and where."""


@dataclass
class ReadResult:
    """A checked layer: the frame (EPSG:4490) plus what was done to get it."""

    frame: gpd.GeoDataFrame
    source_crs: str
    encoding: str | None = None
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _feature_label(frame: pd.DataFrame, position: int) -> str:
    """Name a feature for an error message: its id/name column when it has one, and its number."""
    for column in ("id", "code", "grid_id", "name", "名称", "编码"):
        if column in frame.columns:
            value = frame.iloc[position][column]
            if value is not None and not (isinstance(value, float) and np.isnan(value)):
                return f"feature #{position + 1} ({column}={value})"
    return f"feature #{position + 1}"


def _listed(frame: pd.DataFrame, positions: np.ndarray) -> str:
    names = [_feature_label(frame, int(p)) for p in positions[:MAX_LISTED]]
    more = len(positions) - MAX_LISTED
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _is_utf8_dbf(dbf: Path) -> bool:
    """True when the .dbf's text decodes as UTF-8 (so no GBK fallback is needed)."""
    data = dbf.read_bytes()
    try:
        header_len = int.from_bytes(data[8:10], "little")
        data[header_len:].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _shapefile_encoding(shp: Path, encoding: str | None, notes: list[str]) -> str | None:
    if encoding:
        return encoding
    cpg = shp.with_suffix(".cpg")
    if not cpg.exists():
        cpg = shp.with_suffix(".CPG")
    if cpg.exists():
        declared = cpg.read_text(errors="replace").strip()
        return "gbk" if declared.upper() in ("GBK", "CP936", "936", "GB2312", "GB18030") else None
    dbf = shp.with_suffix(".dbf")
    if dbf.exists() and not _is_utf8_dbf(dbf):
        notes.append("attributes are not UTF-8 and the shapefile has no .cpg: decoded as GBK")
        return "gbk"
    return "utf-8" if dbf.exists() else None


def _read_csv(path: Path, encoding: str | None) -> tuple[gpd.GeoDataFrame, bool]:
    """CSV with lon/lat or WKT columns; returns the frame and whether it had a CRS (never)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VectorReadError(f"{path.name}: not valid {encoding or 'UTF-8'} text ({exc.reason}); "
                              "pass encoding='gbk' if it is GBK") from exc
    except pd.errors.ParserError as exc:
        raise VectorReadError(f"{path.name}: broken CSV: {exc}") from exc
    lower = {c.lower().strip(): c for c in df.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    wkt = next((lower[n] for n in WKT_NAMES if n in lower), None)
    if lon and lat:
        x = pd.to_numeric(df[lon].str.strip(), errors="coerce").to_numpy()
        y = pd.to_numeric(df[lat].str.strip(), errors="coerce").to_numpy()
        bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
        if len(bad):
            raise VectorReadError(f"{path.name}: {lon}/{lat} are not numbers in {_listed(df, bad)}")
        geoms = shapely.points(x, y)
        df = df.drop(columns=[lon, lat])
    elif wkt:
        texts = df[wkt].to_numpy(dtype=object)
        geoms = shapely.from_wkt(texts, on_invalid="ignore")
        bad = np.flatnonzero(shapely.is_missing(geoms) & (df[wkt].str.strip() != "").to_numpy())
        if len(bad):
            raise VectorReadError(f"{path.name}: unreadable WKT in {_listed(df, bad)}")
        df = df.drop(columns=[wkt])
    else:
        raise VectorReadError(
            f"{path.name}: no geometry columns: expected lon/lat (or lng, longitude, x/y, 经度/纬度) "
            f"or a WKT column (wkt, geometry, geom); found {', '.join(df.columns)}")
    return gpd.GeoDataFrame(df, geometry=geoms, crs=None), False


def _read_with_gdal(path: Path, layer: str | None, encoding: str | None) -> gpd.GeoDataFrame:
    kwargs = {}
    if encoding:
        kwargs["encoding"] = encoding
    try:
        layers = pyogrio.list_layers(path)
        if layer is None and len(layers) > 1 and path.suffix.lower() != ".kml":
            names = [str(n) for n in layers[:, 0]]
            raise VectorReadError(f"{path.name} has {len(names)} layers ({', '.join(names)}); choose one with layer=")
        if path.suffix.lower() == ".kml" and layer is None and len(layers) > 1:
            frames = [pyogrio.read_dataframe(path, layer=str(n)) for n in layers[:, 0]]
            return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        return pyogrio.read_dataframe(path, layer=layer, **kwargs)
    except VectorReadError:
        raise
    except UnicodeDecodeError as exc:
        raise VectorReadError(f"{path.name}: text is not {encoding}: {exc.reason}") from exc
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, GDAL errors
        raise VectorReadError(f"{path.name}: cannot be read as a GIS file: {exc}") from exc


def _unzip_shapefile(path: Path, workdir: Path, limits: ReadLimits = DEFAULT_LIMITS) -> Path:
    """Unpack a zipped shapefile, refusing zip bombs before writing a byte: the declared sizes are
    checked (total and per-member ratio), and members are copied in chunks that stop at the
    declared size (Python's zipfile enforces it), so a lying header cannot exhaust the disk."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            total = sum(m.file_size for m in members)
            if total > limits.unpacked_bytes:
                raise VectorReadError(f"{path.name}: unpacks to {total / 1e6:,.0f} MB, more than the "
                                      f"{limits.unpacked_bytes / 1e6:,.0f} MB allowed; refusing")
            for member in members:
                if member.file_size > 1_000_000 and member.file_size > limits.ratio * max(member.compress_size, 1):
                    raise VectorReadError(
                        f"{path.name}: {member.filename} would unpack {member.file_size / max(member.compress_size, 1):,.0f}"
                        f" times its packed size (a zip bomb?); refusing")
            for member in members:
                name = Path(member.filename).name  # never a path: no writing outside workdir
                if not name or name.startswith("."):
                    continue
                with zf.open(member) as src, open(workdir / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise VectorReadError(f"{path.name}: not a valid zip file") from exc
    shps = sorted(workdir.glob("*.shp"))
    if len(shps) != 1:
        raise VectorReadError(f"{path.name}: expected exactly one .shp inside, found {len(shps)}")
    return shps[0]


def read_vector(
    path: str | Path,
    *,
    crs: object | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    expect: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Read and check one layer of a GIS file; return it in EPSG:4490.

    ``crs`` overrides the file's CRS (and is required when the file has none); ``"gcj02"``
    converts Amap/Tencent coordinates. ``expect`` is ``"polygon"``, ``"line"`` or ``"point"``.

    Example
    -------
    >>> result = read_vector("grids.geojson", crs="gcj02", expect="polygon")  # doctest: +SKIP
    >>> result.frame.crs.to_epsg()  # doctest: +SKIP
    4490
    """
    path = Path(path)
    if not path.exists():
        raise VectorReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise VectorReadError(f"{path.name}: unsupported format {suffix or '(no extension)'}; "
                              f"use one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    if expect is not None and expect not in EXPECT_TYPES:
        raise ValueError(f"expect must be one of {sorted(EXPECT_TYPES)}")
    notes: list[str] = []
    used_encoding = encoding
    with tempfile.TemporaryDirectory() as tmp:
        source = path
        if suffix == ".zip":
            source = _unzip_shapefile(path, Path(tmp), limits)
        if source.suffix.lower() == ".shp":
            for needed in (".shx", ".dbf"):
                if not (source.with_suffix(needed).exists() or source.with_suffix(needed.upper()).exists()):
                    raise VectorReadError(f"{source.name}: the shapefile's {needed} file is missing")
            used_encoding = _shapefile_encoding(source, encoding, notes)
        if suffix == ".csv":
            frame, _ = _read_csv(source, encoding)
        elif suffix == ".parquet":
            try:
                frame = gpd.read_parquet(source)
            except Exception as exc:
                raise VectorReadError(f"{path.name}: cannot be read as GeoParquet: {exc}") from exc
        else:
            frame = _read_with_gdal(source, layer, used_encoding)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise VectorReadError(f"{path.name}: the layer has no geometry")
    return check_frame(frame, crs=crs, expect=expect, name=path.name, encoding=used_encoding, notes=notes,
                       limits=limits)


def check_frame(
    frame: gpd.GeoDataFrame,
    *,
    crs: object | None = None,
    expect: str | None = None,
    name: str = "layer",
    encoding: str | None = None,
    notes: list[str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Apply the CRS, repair and rejection rules of :func:`read_vector` to an in-memory frame.

    The checks run in this order, each raising :class:`VectorReadError` naming the features:
    feature count, the coordinate system, empty and overweight geometries, geometry types (after
    reducing collections to their polygons), reprojection to EPSG:4490, coordinate range; then
    GCJ-02 conversion and the repair of invalid geometries."""
    notes = list(notes or [])
    _check_feature_count(frame, name, limits)
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame, source_crs, gcj = _declared_crs(frame, crs, name)
    # a view of the frame's geometries: the reductions made in it are carried by the reprojection
    geoms = np.asarray(frame.geometry.values, dtype=object)
    _check_empty_and_size(frame, geoms, name, limits)
    collected = _reduce_collections(frame, geoms, expect)
    _check_types(frame, geoms, name, expect)
    frame, geoms = _to_storage_crs(frame, geoms, name, source_crs)
    _check_coordinates(frame, geoms, name, source_crs)
    if gcj:
        geoms = gcj02_to_wgs84_geoms(geoms)
        notes.append("converted from GCJ-02 to CGCS2000")
    geoms, repaired = _repair_invalid(frame, geoms, name, expect)
    target = CRS.from_epsg(STORAGE_EPSG)
    frame[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=target)
    frame = frame.set_crs(target, allow_override=True)
    return ReadResult(frame=frame, source_crs=source_crs, encoding=encoding, repaired=collected + repaired, notes=notes)


def _check_feature_count(frame: gpd.GeoDataFrame, name: str, limits: ReadLimits) -> None:
    """Refuse a layer without features or with more than ``limits.features``."""
    if len(frame) == 0:
        raise VectorReadError(f"{name}: the layer has no features")
    if len(frame) > limits.features:
        raise VectorReadError(f"{name}: {len(frame):,} features, more than the {limits.features:,} allowed per import")


def _declared_crs(frame: gpd.GeoDataFrame, crs: object | None, name: str) -> tuple[gpd.GeoDataFrame, str, bool]:
    """The frame with its coordinate system set: ``crs`` when given (overriding the file's; GCJ-02
    is set as EPSG:4490 and converted later), else the file's own, required. Returns the frame,
    the source CRS as text for messages, and whether the coordinates are GCJ-02."""
    if crs is not None:
        parsed = parse_crs(crs)
        if parsed == GCJ02:
            return frame.set_crs(STORAGE_EPSG, allow_override=True), "GCJ-02", True
        return frame.set_crs(parsed, allow_override=True), parsed.to_string(), False
    if frame.crs is None:
        raise VectorReadError(f"{name}: the file does not say its coordinate system; give one "
                              "(e.g. crs='EPSG:4490', 'EPSG:4326' or 'gcj02')")
    return frame, frame.crs.to_string(), False


def _check_empty_and_size(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, limits: ReadLimits) -> None:
    """Refuse missing or empty geometries and geometries of more than ``limits.vertices`` vertices."""
    empty = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if len(empty):
        raise VectorReadError(f"{name}: empty geometry in {_listed(frame, empty)}")
    heavy = np.flatnonzero(shapely.get_num_coordinates(geoms) > limits.vertices)
    if len(heavy):
        raise VectorReadError(f"{name}: more than {limits.vertices:,} vertices in one geometry in "
                              f"{_listed(frame, heavy)}; simplify or split it first")


def _reduce_collections(frame: gpd.GeoDataFrame, geoms: np.ndarray, expect: str | None) -> list[str]:
    """Where polygons are expected, geometry collections holding polygons (common after other
    tools' repairs) are reduced to their polygons, in ``geoms`` itself; returns one note per
    feature reduced."""
    collected: list[str] = []
    if expect == "polygon":
        mixed = np.flatnonzero(shapely.get_type_id(geoms) == 7)
        for i in mixed:
            polys = polygonal([geoms[i]])[0]
            if not polys.is_empty:
                geoms[i] = polys
                collected.append(f"{_feature_label(frame, int(i))}: GeometryCollection reduced to its polygons")
    return collected


def _check_types(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, expect: str | None) -> None:
    """Refuse geometries other than the ``expect``-ed kind (single or multi), naming the types found."""
    if expect is None:
        return
    types = shapely.get_type_id(geoms)
    wanted = {"polygon": (3, 6), "line": (1, 5), "point": (0, 4)}[expect]
    wrong = np.flatnonzero(~np.isin(types, wanted))
    if len(wrong):
        found = sorted({g.geom_type for g in geoms[wrong[:MAX_LISTED]]})
        raise VectorReadError(f"{name}: expected {expect} geometries, found {'/'.join(found)} in "
                              f"{_listed(frame, wrong)}")


def _to_storage_crs(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, source_crs: str
                    ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The frame reprojected to EPSG:4490 when it is in another CRS (GCJ-02 is already labelled
    4490), with its geometries; unchanged otherwise."""
    target = CRS.from_epsg(STORAGE_EPSG)
    if frame.crs is not None and not frame.crs.equals(target):
        try:
            frame = frame.to_crs(target)
        except Exception as exc:
            raise VectorReadError(f"{name}: cannot convert from {source_crs} to EPSG:4490: {exc}") from exc
        geoms = np.asarray(frame.geometry.values, dtype=object)
    return frame, geoms


def _check_coordinates(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, source_crs: str) -> None:
    """Refuse coordinates that are not finite, or outside longitude -180..180 and latitude
    -90..90 (projected data read as degrees)."""
    coords = shapely.get_coordinates(geoms)
    if not np.all(np.isfinite(coords)):
        bounds = shapely.bounds(geoms)
        bad = np.flatnonzero(~np.all(np.isfinite(bounds), axis=1))
        raise VectorReadError(f"{name}: coordinates are not finite numbers in {_listed(frame, bad)} "
                              f"(is the CRS {source_crs} right?)")
    bounds = shapely.bounds(geoms)
    out = np.flatnonzero((bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90))
    if len(out):
        raise VectorReadError(f"{name}: coordinates out of range (longitude -180..180, latitude -90..90) in "
                              f"{_listed(frame, out)}; the data are probably projected: give its crs")


def _repair_invalid(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, expect: str | None
                    ) -> tuple[np.ndarray, list[str]]:
    """Invalid geometries repaired with ``make_valid`` (kept to their polygons where polygons are
    expected), in ``geoms`` itself; returns the geometries and one note per repair with GEOS's
    reason. A geometry that collapses to nothing is refused."""
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    repaired: list[str] = []
    if len(invalid):
        reasons = shapely.is_valid_reason(geoms[invalid])
        fixed = shapely.make_valid(geoms[invalid])
        if expect == "polygon":
            fixed = polygonal(fixed)
        geoms[invalid] = fixed
        repaired = [f"{_feature_label(frame, int(i))}: {reason}" for i, reason in zip(invalid, reasons)]
        still_empty = invalid[shapely.is_empty(fixed)]
        if len(still_empty):
            raise VectorReadError(f"{name}: geometry collapses to nothing when repaired in {_listed(frame, still_empty)}")
    return geoms, repaired
