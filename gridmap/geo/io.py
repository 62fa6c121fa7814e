"""Reading GIS files into checked GeoDataFrames in EPSG:4490.

Formats: GeoPackage, Shapefile (``.shp`` or a ``.zip`` holding one; UTF-8 or GBK attributes),
GeoJSON, KML, CSV with lon/lat columns or a WKT column, GeoParquet.

What happens to every file (so an import never stores something it did not check):
1. The CRS comes from the file, or from ``crs=`` (required when the file has none), including
   ``crs="gcj02"`` for data digitised on Amap/Tencent basemaps, converted to CGCS2000 here.
2. Invalid geometries are repaired with ``make_valid`` and each repair is reported.
3. Empty geometries, geometries of the wrong type (``expect="polygon"`` etc.) and coordinates out
   of range (|lon| > 180, |lat| > 90 after conversion) are rejected: the error names the features.
4. A coordinate system that contradicts the numbers (metres labelled as degrees, swapped axes,
   degrees labelled as metres; with ``reference_bounds`` also a label that puts the layer far from
   where it belongs) is refused with the likely fix (:func:`gridmap.geo.crs_checks.crs_problems`).

Text encodings: a shapefile's attributes (field names included) are decoded as its ``.cpg``
says, or, without one, as UTF-8 or GBK, whichever they are; a ``.cpg`` or an ``encoding=`` that
contradicts the bytes, and any other text that is not what it should be (CSV, GeoJSON, KML,
GeoPackage), is refused saying what it looks like ("looks like GBK: add --encoding gbk"), never
with a bare codec error, and never naming as the fix the encoding it was read with (text that is
that encoding but cannot be decoded is said to be damaged or in another encoding).

Damaged shapefiles: before GDAL reads one, its parts are checked against their headers and each
other (:func:`gridmap.geo.shapefile_parts.shapefile_problem`): a .shp, .shx or .dbf cut off, a
.dbf that is not a dBASE table, a .dbf and .shp of different shapefiles are refused naming the
file and what is wrong (GDAL reads them as empty geometries, missing attributes or encoding
errors). Every refusal is a :class:`VectorReadError` in English and Chinese.
"""

from __future__ import annotations

import codecs
import re
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

from gridmap.errors import Invalid
from gridmap.geo.crs import GCJ02, STORAGE_EPSG, CRSError, gcj02_to_wgs84_geoms, parse_crs
from gridmap.geo.crs_checks import crs_label, crs_problems, fitting_crs
from gridmap.geo.shapefile_parts import shapefile_problem
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


class VectorReadError(Invalid):
    """The file cannot be imported as it is; the message says what and where, in English (``en``,
    ``str(exc)``) and Chinese (``zh``). A ``ValueError``, and a refusal (HTTP 422)."""

    def __init__(self, en: str, zh: str | None = None):
        super().__init__(en, en if zh is None else zh)


# what GEOS says is wrong with a geometry (is_valid_reason, before its "[x y]"), in Chinese
INVALID_ZH = {
    "Self-intersection": "自相交",
    "Ring Self-intersection": "环自相交",
    "Hole lies outside shell": "内环在外环之外",
    "Holes are nested": "内环相互嵌套",
    "Interior is disconnected": "内部不连通",
    "Nested shells": "外环相互嵌套",
    "Duplicate Rings": "环重复",
    "Too few distinct points in geometry component": "组成部分的不同点太少",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
    "GeometryCollection reduced to its polygons": "几何集合（只保留其中的面）",
}
REASON = re.compile(r"^(?P<kind>[^\[]*?)\s*(?:\[(?P<x>\S+) (?P<y>\S+)\])?\s*$")


@dataclass(frozen=True)
class Repair:
    """One feature repaired on reading: its row in the layer (0-based) and what was wrong, as GEOS
    says it (``Self-intersection[103.0012 29.9871]``: the kind, then where, in EPSG:4490) or
    ``GeometryCollection reduced to its polygons``. Kept apart from the text so that a caller can
    name the feature by its own columns (a community by its code)."""

    position: int
    reason: str

    def said(self) -> tuple[str, str, object | None]:
        """What was wrong in English and Chinese (``Self-intersection at 103.392351, 29.907516`` /
        ``自相交，位于 103.392351, 29.907516``) and where (a point in EPSG:4490; None when GEOS
        does not say)."""
        found = REASON.match(self.reason.strip())
        kind = found["kind"] if found else self.reason.strip()
        kind_zh = INVALID_ZH.get(kind, kind)
        if found and found["x"] is not None:
            try:
                x, y = float(found["x"]), float(found["y"])
            except ValueError:
                pass
            else:
                return (f"{kind} at {x:.6f}, {y:.6f}", f"{kind_zh}，位于 {x:.6f}, {y:.6f}", shapely.Point(x, y))
        return kind, kind_zh, None


@dataclass
class ReadResult:
    """A checked layer: the frame (EPSG:4490) plus what was done to get it. ``repaired`` says
    each repair for people (``feature #3 (code=007): Self-intersection[...]``), ``repairs`` the
    same for programs."""

    frame: gpd.GeoDataFrame
    source_crs: str  # a short label: "EPSG:4490 CGCS2000", "GCJ-02" (never WKT)
    encoding: str | None = None
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)


# What reading did to a layer, said in ``ReadResult.notes`` (English: the API's ``notes`` have
# always been English text); ``note_zh`` gives each one's Chinese, for the CLI's summaries.
GBK_GUESSED = "attributes are not UTF-8 and the shapefile has no .cpg: decoded as GBK"
GCJ02_CONVERTED = "converted from GCJ-02 to CGCS2000"
NOTES_ZH = {
    GBK_GUESSED: "属性不是 UTF-8 且 shapefile 没有 .cpg：已按 GBK 解码",
    GCJ02_CONVERTED: "已从 GCJ-02 转换为 CGCS2000",
}


def note_zh(note: str) -> str:
    """The Chinese of a reading note (the note itself when it has none: nothing is dropped)."""
    return NOTES_ZH.get(note, note)


LABEL_COLUMNS = ("id", "code", "grid_id", "name", "名称", "编码", "building_name", "楼栋号", "楼栋名称", "建筑名称",
                 "建筑物名称", "社区代码", "社区名称", "小区名称", "道路名称", "网格编码", "网格名称")


def _repair_line(frame: pd.DataFrame, repair: Repair) -> str:
    """One repaired feature, named by its own columns, in both languages:
    ``feature #1 (建筑名称=正街1号): Self-intersection at … / 第 1 个要素（建筑名称=正街1号）：自相交，位于 …``."""
    en, zh, _ = repair.said()
    return (f"{_feature_label(frame, repair.position)}: {en} / "
            f"{_feature_label(frame, repair.position, zh=True)}：{zh}")


def _feature_label(frame: pd.DataFrame, position: int, zh: bool = False) -> str:
    """Name a feature for an error message: its id/name column when it has one, and its number."""
    for column in LABEL_COLUMNS:
        if column in frame.columns:
            value = frame.iloc[position][column]
            if value is not None and not (isinstance(value, float) and np.isnan(value)):
                return f"第 {position + 1} 个要素（{column}={value}）" if zh else f"feature #{position + 1} ({column}={value})"
    return f"第 {position + 1} 个要素" if zh else f"feature #{position + 1}"


def _listed(frame: pd.DataFrame, positions: np.ndarray, zh: bool = False) -> str:
    names = [_feature_label(frame, int(p), zh) for p in positions[:MAX_LISTED]]
    more = len(positions) - MAX_LISTED
    if zh:
        return "、".join(names) + (f" 等 {len(positions)} 个" if more > 0 else "")
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _refuse(name: str, en: str, zh: str, frame: pd.DataFrame | None = None,
            positions: np.ndarray | None = None) -> VectorReadError:
    """A refusal ``name: en`` / ``name：zh``, with the features at ``positions`` listed after each."""
    if frame is not None and positions is not None:
        return VectorReadError(f"{name}: {en} in {_listed(frame, positions)}",
                               f"{name}：{_listed(frame, positions, zh=True)}{zh}")
    return VectorReadError(f"{name}: {en}", f"{name}：{zh}")


# -- text encodings ----------------------------------------------------------------------------------
GBK_LABELS = {"gbk", "cp936", "936", "gb2312", "gb18030", "euc-cn", "gb_2312-80", "ansi 936", "cp-936"}
UTF8_LABELS = {"utf-8", "utf8", "65001", "utf_8", "cp65001"}
TEXT_SUFFIXES = {".csv", ".geojson", ".json", ".kml"}


def _codec_name(label: str) -> str | None:
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        return None


def _is_gbk_label(label: str) -> bool:
    return label.strip().lower() in GBK_LABELS or _codec_name(label) in ("gbk", "gb2312", "gb18030")


def _is_utf8_label(label: str) -> bool:
    return label.strip().lower() in UTF8_LABELS or _codec_name(label) in ("utf-8", "utf-8-sig")


def _decode_errors(data: bytes, encoding: str) -> int:
    try:
        data.decode(encoding)
        return 0
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace").count("\ufffd")


def sniff_encoding(data: bytes) -> str | None:
    """What text bytes are: ``"ascii"`` (fits any encoding), ``"utf-8"``, ``"gbk"``, or None
    when neither decodes. A handful of bad sequences (a field cut in the middle of a character by
    the program that wrote it) is tolerated: at most one per 500 non-ASCII bytes."""
    if data.isascii():
        return "ascii"
    utf8 = _decode_errors(data, "utf-8")
    if utf8 == 0:
        return "utf-8"
    gbk = _decode_errors(data, "gbk")
    if gbk == 0:
        return "gbk"
    allowed = max(2, int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80)) // 500)
    if utf8 <= allowed and utf8 <= gbk:
        return "utf-8"
    if gbk <= allowed:
        return "gbk"
    return None


def _dbf_text(dbf: Path) -> bytes:
    """The text of a .dbf: its field names and the values of its character fields (what an
    encoding applies to; numbers, dates and the binary header are left out)."""
    data = dbf.read_bytes()
    if len(data) < 32:
        return b""
    count = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    record_len = int.from_bytes(data[10:12], "little")
    names, fields, offset, pos = [], [], 1, 32
    while pos + 32 <= min(header_len, len(data)) and data[pos] != 0x0D:
        desc = data[pos:pos + 32]
        names.append(desc[:11].split(b"\0", 1)[0])
        length = desc[16]
        if desc[11:12] == b"C":
            length += desc[17] << 8  # character fields longer than 255 keep the high byte there
            fields.append((offset, length))
        offset += length
        pos += 32
    parts = [b"\n".join(names)]
    usable = min(count, max(0, (len(data) - header_len) // record_len)) if record_len else 0
    if fields and usable:
        records = np.frombuffer(data, dtype=np.uint8, count=usable * record_len, offset=header_len)
        records = records.reshape(usable, record_len)
        parts += [records[:, start:start + length].tobytes() for start, length in fields if start < record_len]
    return b"\n".join(parts)


def _same_codec(a: str, b: str) -> bool:
    """Whether two encoding labels name the same text encoding (GBK, GB2312 and GB18030 count as one)."""
    if _is_gbk_label(a) or _is_gbk_label(b):
        return _is_gbk_label(a) and _is_gbk_label(b)
    if _is_utf8_label(a) or _is_utf8_label(b):
        return _is_utf8_label(a) and _is_utf8_label(b)
    return _codec_name(a) is not None and _codec_name(a) == _codec_name(b)


def _undecodable(name: str, claim_en: str, claim_zh: str, reason: str = "") -> VectorReadError:
    """Some text cannot be decoded as ``claim`` although the file is mostly that: said without
    claiming another encoding (the bytes may be damaged, or in one the sniffer does not know)."""
    why_en, why_zh = (f" ({reason})", f"（{reason}）") if reason else ("", "")
    return VectorReadError(f"{name}: some of the text cannot be decoded as {claim_en}{why_en}: the file may be "
                           "damaged, or in another encoding: give it with --encoding (e.g. gb18030, big5, latin-1), "
                           "or export the file again",
                           f"{name}：部分文本无法按{claim_zh}解码{why_zh}：文件可能已损坏，或是其他编码：请用 --encoding "
                           "指定其编码（如 gb18030、big5、latin-1），或重新导出该文件")


def _wrong_text(name: str, claim_en: str, claim_zh: str, found: str | None, reason: str = "", *,
                claimed: str = "utf-8") -> VectorReadError:
    """The text is not what ``claim`` says (the encoding ``claimed``); say what it looks like and
    the fix. Never contradicts itself: when what the text looks like is ``claimed`` after all, it
    says that some text cannot be decoded instead (:func:`_undecodable`)."""
    why_en, why_zh = (f" ({reason})", f"（{reason}）") if reason else ("", "")
    if found is not None and _same_codec(found, claimed):
        return _undecodable(name, claim_en, claim_zh, reason)
    if found is None and _is_gbk_label(claimed):
        return VectorReadError(f"{name}: the text is neither {claim_en} nor UTF-8{why_en}: give its encoding with "
                               "--encoding (e.g. big5, latin-1)",
                               f"{name}：文本既不是{claim_zh}也不是 UTF-8 编码{why_zh}：请用 --encoding 指定其编码"
                               "（如 big5、latin-1）")
    if found == "gbk":
        return VectorReadError(f"{name}: the text is not {claim_en}{why_en}: it looks like GBK: add --encoding gbk",
                               f"{name}：文本不是{claim_zh}{why_zh}：看起来是 GBK 编码：请加 --encoding gbk")
    if found == "utf-8":
        return VectorReadError(f"{name}: the text is not {claim_en}: it is UTF-8: import it with --encoding utf-8",
                               f"{name}：文本不是{claim_zh}：它是 UTF-8 编码：请用 --encoding utf-8 导入")
    return VectorReadError(f"{name}: the text is neither {claim_en} nor GBK{why_en}: give its encoding with "
                           "--encoding (e.g. gb18030, big5, latin-1)",
                           f"{name}：文本既不是{claim_zh}也不是 GBK 编码{why_zh}：请用 --encoding 指定其编码"
                           "（如 gb18030、big5、latin-1）")


def _check_given_encoding(name: str, encoding: str, found: str | None) -> None:
    """An ``encoding=`` that contradicts the bytes is refused (GBK read as UTF-8 fails; UTF-8 read
    as GBK silently turns Chinese into nonsense)."""
    claim_en, claim_zh = f"{encoding} (as --encoding {encoding} says)", f" {encoding} 编码（--encoding {encoding}）"
    if _is_utf8_label(encoding) and found == "gbk":
        raise VectorReadError(f"{name}: the text is not {claim_en}: it looks like GBK: add --encoding gbk "
                              f"(instead of --encoding {encoding})",
                              f"{name}：文本不是{claim_zh}：看起来是 GBK 编码：请加 --encoding gbk（代替 --encoding {encoding}）")
    if _is_gbk_label(encoding) and found == "utf-8":
        raise _wrong_text(name, claim_en, claim_zh, "utf-8", claimed=encoding)
    if found is None and (_is_utf8_label(encoding) or _is_gbk_label(encoding)):
        raise _wrong_text(name, claim_en, claim_zh, None, claimed=encoding)


def _sibling(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def _shapefile_encoding(shp: Path, encoding: str | None, notes: list[str]) -> str | None:
    """The encoding to read a shapefile's attributes with: ``encoding`` when given, else its
    .cpg's, else UTF-8 or GBK as the .dbf's text is. A .cpg or ``encoding`` that contradicts the
    text is refused with the fix."""
    dbf = _sibling(shp, ".dbf")
    found = sniff_encoding(_dbf_text(dbf)) if dbf is not None else "ascii"
    if encoding:
        _check_given_encoding(shp.name, encoding, found)
        return encoding
    cpg = _sibling(shp, ".cpg")
    if cpg is not None:
        declared = cpg.read_text(errors="replace").strip()
        claim_en, claim_zh = f"{declared} (as its .cpg says)", f" {declared} 编码（.cpg 文件所声明的）"
        if _is_gbk_label(declared):
            if found == "utf-8":
                raise _wrong_text(shp.name, claim_en, claim_zh, "utf-8", claimed="gbk")
            return "gbk"
        if _is_utf8_label(declared) or not declared:
            if found in ("gbk", None):
                raise _wrong_text(shp.name, claim_en if declared else "UTF-8", claim_zh if declared else " UTF-8 编码",
                                  found)
            return "utf-8"
        return None  # another code page: GDAL applies the .cpg
    if found == "gbk":
        notes.append(GBK_GUESSED)
        return "gbk"
    if found is None:
        raise _wrong_text(shp.name, "UTF-8 (the shapefile has no .cpg)", " UTF-8 编码（该 Shapefile 没有 .cpg 文件）", None)
    return "utf-8" if dbf is not None else None


def _claim(encoding: str | None, given: bool) -> tuple[str, str]:
    """How to name the encoding a file was read with, in English and Chinese: the one given
    (``--encoding``), the one chosen for it (its .cpg, or what its text is), or UTF-8."""
    if encoding and given:
        return f"{encoding} (as --encoding {encoding} says)", f" {encoding} 编码（--encoding {encoding}）"
    if encoding:
        return f"{encoding} (the encoding it was read with)", f" {encoding} 编码（读取时所用的编码）"
    return "UTF-8", " UTF-8 编码"


def _diagnose_text(path: Path, encoding: str | None, exc: Exception, reader=None, *,
                   given: bool = True) -> VectorReadError | None:
    """When reading failed on text that is not what it should be: the refusal saying what the
    text looks like (None when the text is not the problem: it is ASCII, or it is the encoding it
    was read with). ``reader(encoding)`` re-reads a binary format (GeoPackage) to tell whether GBK
    would do. ``given``: ``encoding`` is the user's (``--encoding``), not one chosen for them."""
    reason = exc.reason if isinstance(exc, UnicodeDecodeError) else ""
    claim = encoding or "UTF-8"
    claim_en, claim_zh = _claim(encoding, given)
    if path.suffix.lower() == ".shp":
        dbf = _sibling(path, ".dbf")
        found = sniff_encoding(_dbf_text(dbf)) if dbf is not None else None
    elif path.suffix.lower() in TEXT_SUFFIXES:
        found = sniff_encoding(path.read_bytes())
        if found in ("ascii", "utf-8") and not encoding:
            return None  # the text is fine: the problem is elsewhere
    else:
        if not isinstance(exc, UnicodeDecodeError):
            return None
        found = None
        other = "utf-8" if _is_gbk_label(claim) else "gbk"  # the other of the two a district's files are in
        if reader is not None:
            try:
                reader(other)
                found = other
            except Exception:  # noqa: BLE001 - the other does not do either
                found = None
    if found == "ascii" or (found is not None and _same_codec(found, claim)):
        return None  # the text is what it was read as: the problem is elsewhere
    return _wrong_text(path.name, claim_en, claim_zh, found, reason, claimed=claim)


def _read_csv(path: Path, encoding: str | None) -> tuple[gpd.GeoDataFrame, bool]:
    """CSV with lon/lat or WKT columns; returns the frame and whether it had a CRS (never)."""
    found = sniff_encoding(path.read_bytes())
    if encoding:
        _check_given_encoding(path.name, encoding, found)
    elif found not in ("ascii", "utf-8"):
        raise _wrong_text(path.name, "UTF-8", " UTF-8 编码", found, "a CSV is read as UTF-8 unless told otherwise")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _undecodable(path.name, *_claim(encoding, True), exc.reason) from None
    except pd.errors.ParserError as exc:
        raise _refuse(path.name, f"broken CSV: {exc}", f"CSV 格式有误：{exc}") from exc
    lower = {c.lower().strip(): c for c in df.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    wkt = next((lower[n] for n in WKT_NAMES if n in lower), None)
    if lon and lat:
        x = pd.to_numeric(df[lon].str.strip(), errors="coerce").to_numpy()
        y = pd.to_numeric(df[lat].str.strip(), errors="coerce").to_numpy()
        bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
        if len(bad):
            raise _refuse(path.name, f"{lon}/{lat} are not numbers", f"的 {lon}/{lat} 不是数字", df, bad)
        geoms = shapely.points(x, y)
        df = df.drop(columns=[lon, lat])
    elif wkt:
        texts = df[wkt].to_numpy(dtype=object)
        geoms = shapely.from_wkt(texts, on_invalid="ignore")
        bad = np.flatnonzero(shapely.is_missing(geoms) & (df[wkt].str.strip() != "").to_numpy())
        if len(bad):
            raise _refuse(path.name, "unreadable WKT", "的 WKT 无法解析", df, bad)
        df = df.drop(columns=[wkt])
    else:
        raise _refuse(path.name,
                      "no geometry columns: expected lon/lat (or lng, longitude, x/y, 经度/纬度) or a WKT column "
                      f"(wkt, geometry, geom); found {', '.join(df.columns)}",
                      "没有几何字段：需要经纬度字段（lon/lat、lng、longitude、x/y、经度/纬度）或 WKT 字段"
                      f"（wkt、geometry、geom）；文件中的字段为 {'、'.join(df.columns)}")
    return gpd.GeoDataFrame(df, geometry=geoms, crs=None), False


def _transcoded_kml(path: Path, encoding: str, workdir: Path) -> Path:
    """A KML in another encoding rewritten as UTF-8 (GDAL's KML reader reads UTF-8 only)."""
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        raise _wrong_text(path.name, f"{encoding} (as --encoding {encoding} says)", f" {encoding} 编码",
                          sniff_encoding(path.read_bytes()), exc.reason, claimed=encoding) from None
    text = re.sub(r'(<\?xml[^>]*encoding=")[^"]*(")', r"\1UTF-8\2", text, count=1)
    target = workdir / f"utf8-{path.name}"
    target.write_text(text, encoding="utf-8")
    return target


def _read_with_gdal(path: Path, layer: str | None, encoding: str | None, workdir: Path, *,
                    given: bool = True) -> gpd.GeoDataFrame:
    """One layer read by GDAL with ``encoding`` (``given``: the user's ``--encoding``, else the
    one chosen for a shapefile); a failure is refused saying why, the text's encoding when it is
    the cause (:func:`_diagnose_text`)."""
    kwargs = {}
    source = path
    if path.suffix.lower() == ".kml" and encoding and not _is_utf8_label(encoding):
        source = _transcoded_kml(path, encoding, workdir)
    elif encoding:
        kwargs["encoding"] = encoding
    try:
        layers = pyogrio.list_layers(source)
        if layer is None and len(layers) > 1 and path.suffix.lower() != ".kml":
            names = [str(n) for n in layers[:, 0]]
            raise _refuse(path.name, f"has {len(names)} layers ({', '.join(names)}); choose one with layer=",
                          f"有 {len(names)} 个图层（{'、'.join(names)}）；请指定其中之一（--source-layer）")
        if path.suffix.lower() == ".kml" and layer is None and len(layers) > 1:
            frames = [pyogrio.read_dataframe(source, layer=str(n)) for n in layers[:, 0]]
            return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        return pyogrio.read_dataframe(source, layer=layer, **kwargs)
    except VectorReadError:
        raise
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, GDAL errors, UnicodeDecodeError
        diagnosis = _diagnose_text(path, encoding, exc, lambda enc: pyogrio.read_dataframe(source, layer=layer,
                                                                                          encoding=enc), given=given)
        if diagnosis is not None:
            raise diagnosis from None
        if isinstance(exc, UnicodeDecodeError):
            raise _undecodable(path.name, *_claim(encoding, given), exc.reason) from None
        detail = str(exc).replace(str(workdir), "").replace(str(path.parent), "")
        raise _refuse(path.name, f"cannot be read as a GIS file: {detail}", f"无法作为 GIS 文件读取：{detail}") from exc


def _unzip_shapefile(path: Path, workdir: Path, limits: ReadLimits = DEFAULT_LIMITS) -> Path:
    """Unpack a zipped shapefile, refusing zip bombs before writing a byte: the declared sizes are
    checked (total and per-member ratio), and members are copied in chunks that stop at the
    declared size (Python's zipfile enforces it), so a lying header cannot exhaust the disk."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            total = sum(m.file_size for m in members)
            if total > limits.unpacked_bytes:
                raise _refuse(path.name, f"unpacks to {total / 1e6:,.0f} MB, more than the "
                                         f"{limits.unpacked_bytes / 1e6:,.0f} MB allowed; refusing",
                              f"解压后有 {total / 1e6:,.0f} MB，超过允许的 {limits.unpacked_bytes / 1e6:,.0f} MB，拒绝导入")
            for member in members:
                if member.file_size > 1_000_000 and member.file_size > limits.ratio * max(member.compress_size, 1):
                    ratio = member.file_size / max(member.compress_size, 1)
                    raise _refuse(path.name, f"{member.filename} would unpack {ratio:,.0f} times its packed size "
                                             "(a zip bomb?); refusing",
                                  f"{member.filename} 解压后是压缩大小的 {ratio:,.0f} 倍（zip bomb 压缩炸弹？），拒绝导入")
            for member in members:
                name = Path(member.filename).name  # never a path: no writing outside workdir
                if not name or name.startswith("."):
                    continue
                with zf.open(member) as src, open(workdir / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise _refuse(path.name, "not a valid zip file", "不是有效的 zip 文件") from exc
    shps = sorted(workdir.glob("*.shp"))
    if len(shps) != 1:
        raise _refuse(path.name, f"expected exactly one .shp inside, found {len(shps)}",
                      f"压缩包内应恰好有一个 .shp 文件，实际有 {len(shps)} 个")
    return shps[0]


def read_vector(
    path: str | Path,
    *,
    crs: object | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    expect: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    reference_bounds: tuple[float, float, float, float] | None = None,
) -> ReadResult:
    """Read and check one layer of a GIS file; return it in EPSG:4490.

    ``crs`` overrides the file's CRS (and is required when the file has none); ``"gcj02"``
    converts Amap/Tencent coordinates. ``expect`` is ``"polygon"``, ``"line"`` or ``"point"``.
    ``reference_bounds`` (lon/lat) is where the layer should lie, e.g. its territory's bounding
    box: a CRS label that puts it far from there while another puts it there is refused.

    Example
    -------
    >>> result = read_vector("grids.geojson", crs="gcj02", expect="polygon")  # doctest: +SKIP
    >>> result.frame.crs.to_epsg()  # doctest: +SKIP
    4490
    """
    path = Path(path)
    if not path.exists():
        raise VectorReadError(f"{path}: no such file", f"{path}：文件不存在")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no extension)"
        raise _refuse(path.name, f"unsupported format {shown}; use one of {', '.join(sorted(SUPPORTED_SUFFIXES))}",
                      f"不支持的格式 {shown}；请使用 {'、'.join(sorted(SUPPORTED_SUFFIXES))} 之一")
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
                if _sibling(source, needed) is None:
                    raise _refuse(source.name, f"the shapefile's {needed} file is missing",
                                  f"缺少该 Shapefile 的 {needed} 文件")
            broken = shapefile_problem(source, _sibling(source, ".shx"), _sibling(source, ".dbf"))
            if broken is not None:
                raise VectorReadError(broken.en, broken.zh)
            used_encoding = _shapefile_encoding(source, encoding, notes)
        if suffix == ".csv":
            frame, _ = _read_csv(source, encoding)
        elif suffix == ".parquet":
            try:
                frame = gpd.read_parquet(source)
            except Exception as exc:
                raise _refuse(path.name, f"cannot be read as GeoParquet: {exc}", f"无法作为 GeoParquet 读取：{exc}") from exc
        else:
            frame = _read_with_gdal(source, layer, used_encoding, Path(tmp), given=encoding is not None)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise _refuse(path.name, "the layer has no geometry", "该图层没有几何")
    return check_frame(frame, crs=crs, expect=expect, name=path.name, encoding=used_encoding, notes=notes,
                       limits=limits, reference_bounds=reference_bounds)


def check_frame(
    frame: gpd.GeoDataFrame,
    *,
    crs: object | None = None,
    expect: str | None = None,
    name: str = "layer",
    encoding: str | None = None,
    notes: list[str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    reference_bounds: tuple[float, float, float, float] | None = None,
) -> ReadResult:
    """Apply the CRS, repair and rejection rules of :func:`read_vector` to an in-memory frame.

    The checks run in this order, each raising :class:`VectorReadError` naming the features:
    feature count, the coordinate system, empty and overweight geometries, the coordinates against
    their label (:func:`gridmap.geo.crs_checks.crs_problems`, with ``reference_bounds`` when
    given), geometry types (after reducing collections to their polygons), reprojection to
    EPSG:4490, coordinate range; then GCJ-02 conversion and the repair of invalid geometries."""
    notes = list(notes or [])
    _check_feature_count(frame, name, limits)
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame, source_crs, gcj = _declared_crs(frame, crs, name, reference_bounds)
    # a view of the frame's geometries: the reductions made in it are carried by the reprojection
    geoms = np.asarray(frame.geometry.values, dtype=object)
    _check_empty_and_size(frame, geoms, name, limits)
    problems = crs_problems(geoms, GCJ02 if gcj else frame.crs, reference_bounds, name=name)
    if problems:
        raise VectorReadError(problems[0].en, problems[0].zh)
    collected = _reduce_collections(frame, geoms, expect)
    _check_types(frame, geoms, name, expect)
    frame, geoms = _to_storage_crs(frame, geoms, name, source_crs)
    _check_coordinates(frame, geoms, name, source_crs)
    if gcj:
        geoms = gcj02_to_wgs84_geoms(geoms)
        notes.append(GCJ02_CONVERTED)
    geoms, repaired = _repair_invalid(frame, geoms, name, expect)
    target = CRS.from_epsg(STORAGE_EPSG)
    frame[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=target)
    frame = frame.set_crs(target, allow_override=True)
    repairs = collected + repaired
    return ReadResult(frame=frame, source_crs=source_crs, encoding=encoding, notes=notes, repairs=repairs,
                      repaired=[_repair_line(frame, r) for r in repairs])


def _check_feature_count(frame: gpd.GeoDataFrame, name: str, limits: ReadLimits) -> None:
    """Refuse a layer without features or with more than ``limits.features``."""
    if len(frame) == 0:
        raise _refuse(name, "the layer has no features", "该图层没有任何要素")
    if len(frame) > limits.features:
        raise _refuse(name, f"{len(frame):,} features, more than the {limits.features:,} allowed per import",
                      f"共 {len(frame):,} 个要素，超过每次导入允许的 {limits.features:,} 个")


def _declared_crs(frame: gpd.GeoDataFrame, crs: object | None, name: str,
                  reference_bounds: tuple[float, float, float, float] | None = None
                  ) -> tuple[gpd.GeoDataFrame, str, bool]:
    """The frame with its coordinate system set: ``crs`` when given (overriding the file's; GCJ-02
    is set as EPSG:4490 and converted later), else the file's own, required. Returns the frame,
    the source CRS as a short label for messages (:func:`crs_label`), and whether the coordinates
    are GCJ-02."""
    if crs is not None:
        try:
            parsed = parse_crs(crs)
        except CRSError:
            raise _refuse(name, f"unknown coordinate system {crs!r}: give an EPSG code such as 4490 or 4326, WKT, "
                                "or gcj02",
                          f"无法识别的坐标系 {crs!r}：请给出 EPSG 代码（如 4490、4326）、WKT 或 gcj02") from None
        if parsed == GCJ02:
            return frame.set_crs(STORAGE_EPSG, allow_override=True), "GCJ-02", True
        return frame.set_crs(parsed, allow_override=True), crs_label(parsed), False
    if frame.crs is None:
        shapefile = str(name).lower().endswith((".shp", ".zip"))
        prj_en, prj_zh = (" (no .prj)", "（缺少 .prj）") if shapefile else ("", "")
        likely = fitting_crs(frame.geometry.values, reference_bounds)
        if likely is not None:  # where the territory lies, the coordinates fit one CRS: name it
            label = crs_label(CRS.from_epsg(likely))
            raise _refuse(name, f"the file does not say its coordinate system{prj_en}; its coordinates lie where "
                                f"they belong in {label}: give --crs EPSG:{likely} (crs= in Python)",
                          f"文件没有说明其坐标系{prj_zh}；按 {label} 解读时坐标正好落在应在的位置："
                          f"请加 --crs EPSG:{likely}（Python 中用 crs=）")
        raise _refuse(name, f"the file does not say its coordinate system{prj_en}; give one: --crs EPSG:4490, "
                            "EPSG:4326, gcj02, or a Gauss-Krüger zone such as EPSG:4544 for metres "
                            "(crs= in Python)",
                      f"文件没有说明其坐标系{prj_zh}；请指定：--crs EPSG:4490、EPSG:4326、gcj02，坐标以米为单位时给出"
                      "高斯-克吕格分带如 EPSG:4544（Python 中用 crs=）")
    return frame, crs_label(frame.crs), False


def _check_empty_and_size(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, limits: ReadLimits) -> None:
    """Refuse missing or empty geometries and geometries of more than ``limits.vertices`` vertices."""
    empty = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if len(empty):
        raise _refuse(name, "empty geometry", "的几何为空", frame, empty)
    heavy = np.flatnonzero(shapely.get_num_coordinates(geoms) > limits.vertices)
    if len(heavy):
        raise VectorReadError(f"{name}: more than {limits.vertices:,} vertices in one geometry in "
                              f"{_listed(frame, heavy)}; simplify or split it first",
                              f"{name}：{_listed(frame, heavy, zh=True)}的单个几何超过 {limits.vertices:,} 个顶点；"
                              "请先简化或拆分")


def _reduce_collections(frame: gpd.GeoDataFrame, geoms: np.ndarray, expect: str | None) -> list[Repair]:
    """Where polygons are expected, geometry collections holding polygons (common after other
    tools' repairs) are reduced to their polygons, in ``geoms`` itself; returns one repair per
    feature reduced."""
    collected: list[Repair] = []
    if expect == "polygon":
        mixed = np.flatnonzero(shapely.get_type_id(geoms) == 7)
        for i in mixed:
            polys = polygonal([geoms[i]])[0]
            if not polys.is_empty:
                geoms[i] = polys
                collected.append(Repair(int(i), "GeometryCollection reduced to its polygons"))
    return collected


def _check_types(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, expect: str | None) -> None:
    """Refuse geometries other than the ``expect``-ed kind (single or multi), naming the types found."""
    if expect is None:
        return
    types = shapely.get_type_id(geoms)
    wanted = {"polygon": (3, 6), "line": (1, 5), "point": (0, 4)}[expect]
    wrong = np.flatnonzero(~np.isin(types, wanted))
    if len(wrong):
        found = "/".join(sorted({g.geom_type for g in geoms[wrong[:MAX_LISTED]]}))
        expect_zh = {"polygon": "面", "line": "线", "point": "点"}[expect]
        raise VectorReadError(f"{name}: expected {expect} geometries, found {found} in {_listed(frame, wrong)}",
                              f"{name}：应为{expect_zh}几何，{_listed(frame, wrong, zh=True)}却是 {found}")


def _to_storage_crs(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, source_crs: str
                    ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The frame reprojected to EPSG:4490 when it is in another CRS (GCJ-02 is already labelled
    4490), with its geometries; unchanged otherwise."""
    target = CRS.from_epsg(STORAGE_EPSG)
    if frame.crs is not None and not frame.crs.equals(target):
        try:
            frame = frame.to_crs(target)
        except Exception as exc:
            raise _refuse(name, f"cannot convert from {source_crs} to EPSG:4490: {exc}",
                          f"无法从 {source_crs} 转换到 EPSG:4490：{exc}") from exc
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
                              f"(is the CRS {source_crs} right?)",
                              f"{name}：{_listed(frame, bad, zh=True)}的坐标不是有限数值（坐标系 {source_crs} 是否正确？）")
    bounds = shapely.bounds(geoms)
    out = np.flatnonzero((bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90))
    if len(out):
        raise VectorReadError(f"{name}: coordinates out of range (longitude -180..180, latitude -90..90) in "
                              f"{_listed(frame, out)}; the data are probably projected: give its crs",
                              f"{name}：{_listed(frame, out, zh=True)}的坐标超出范围（经度 -180..180，纬度 -90..90）；"
                              "数据可能是投影坐标：请用 --crs 指定其坐标系")


def _repair_invalid(frame: gpd.GeoDataFrame, geoms: np.ndarray, name: str, expect: str | None
                    ) -> tuple[np.ndarray, list[Repair]]:
    """Invalid geometries repaired with ``make_valid`` (kept to their polygons where polygons are
    expected), in ``geoms`` itself; returns the geometries and one repair per feature with GEOS's
    reason. A geometry that collapses to nothing is refused."""
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    repaired: list[Repair] = []
    if len(invalid):
        reasons = shapely.is_valid_reason(geoms[invalid])
        fixed = shapely.make_valid(geoms[invalid])
        if expect == "polygon":
            fixed = polygonal(fixed)
        geoms[invalid] = fixed
        repaired = [Repair(int(i), str(reason)) for i, reason in zip(invalid, reasons)]
        still_empty = invalid[shapely.is_empty(fixed)]
        if len(still_empty):
            raise _refuse(name, "geometry collapses to nothing when repaired", "的几何在修复后为空", frame, still_empty)
    return geoms, repaired
