"""Write layers for government GIS systems: Shapefile (zip), GeoPackage, GeoJSON, KML, CSV with WKT.

Pure: GeoDataFrames in, files out. What each format needs is decided here, once:

* **Shapefile**: one zip holding ``<layer>.shp/.shx/.dbf/.prj/.cpg`` per layer (a table without
  geometry is a lone ``.dbf``), field names cut to 10 characters by the schema, attributes in
  UTF-8 or GBK (the ``.cpg`` says which), and ``data_dictionary.csv`` mapping short names to full
  names and meanings. Datetimes become ISO text (dBASE has dates only). A text value longer than a
  dBASE field holds (254 bytes in the file's encoding) is cut here at a character boundary and
  ends in "…" (never cut mid-character by GDAL, never a raw library warning); its full text goes
  to ``<layer>_fulltext.csv`` in the zip, the dictionary says so for the field, and the result's
  ``notes`` say so once in English and Chinese. Other formats keep the full text.
* **GeoPackage**: one file, one layer per input plus the ``data_dictionary`` table; written as
  GeoPackage 1.2 so older readers (GDAL 3.6, ArcGIS 10.x) open it without warnings.
* **GeoJSON**: RFC 7946, WGS84 longitude/latitude only; several layers go into one zip.
* **KML**: WGS84 only; each layer is a folder, the grid's code/name is the placemark name.
* **CSV**: a ``WKT`` column (GDAL reads it back as geometry) and a ``.csvt`` with the column
  types, so codes stay text; UTF-8 with a byte-order mark (Excel shows Chinese correctly) or GBK.

Every export is written to a temporary folder first and moved into place at the end, so a failed
export never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio

from pyproj import CRS

from gridmap.errors import Invalid
from gridmap.geo.crs import STORAGE_EPSG, CRSError, OutputCRS, output_crs, wgs84_to_gcj02_frame
from gridmap.geo.export_schema import Field, dictionary, fields_for

FORMATS = ("shp", "gpkg", "gdb", "geojson", "kml", "csv", "parquet")
ENCODINGS = ("utf-8", "gbk")
SUFFIX_FORMAT = {".shp": "shp", ".zip": "shp", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson",
                 ".kml": "kml", ".csv": "csv", ".gdb": "gdb",
                 ".parquet": "parquet"}
WGS84_ONLY = ("geojson", "kml")
MAX_LISTED = 5
AREA_LAYERS = ("grids", "units", "microgrids")
TEXT = pd.ArrowDtype(pa.string())
DBF_TEXT_LIMIT = 254  # bytes a dBASE text field holds: GDAL's Shapefile driver cuts anything longer
ELLIPSIS = "…"  # ends a value cut to fit (two bytes in GBK, three in UTF-8)
KML_LABELS = ("grid_name", "name", "unit_name", "grid_code", "unit_id", "incident_id", "station_id")
DATE = pd.ArrowDtype(pa.date32())


class ExportError(Invalid):
    """The export cannot be written as asked; the message (in English and Chinese) says why and what
    to ask instead."""


@dataclass
class ExportResult:
    """What was written: the file, its format, CRS and encoding, and the features per layer."""

    path: Path
    format: str
    crs: str
    encoding: str
    layers: dict[str, int]
    files: list[str] = field(default_factory=list)
    dictionary: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: list[dict[str, str]] = field(default_factory=list)  # {"en", "zh"}: what the format could not hold


@dataclass(frozen=True)
class TextCut:
    """Values of one text field cut to fit a Shapefile: the layer, the field (its short and full
    name), how many values were cut, and the file in the zip holding their full text."""

    layer: str
    short: str
    name: str
    count: int
    full_text_file: str

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}: {n}" for name, n in self.layers.items())
        return f"<ExportResult {self.format} {self.path.name} — {counts}; {self.crs}; {self.encoding}>"


def export(layers: Mapping[str, pd.DataFrame] | gpd.GeoDataFrame, path: str | Path, *, format: str | None = None,
           crs: object = "4490", encoding: str = "utf-8") -> ExportResult:
    """Write ``layers`` (a name → frame mapping, or one GeoDataFrame) to ``path``.

    ``format`` is one of ``shp gpkg gdb geojson kml csv parquet`` (default: from the suffix; ``gdb``
    is an Esri File Geodatabase written by GDAL's OpenFileGDB driver, for ArcGIS; ``parquet`` is
    GeoParquet, for analysts: pandas, DuckDB, QGIS); ``crs`` one of
    ``4490 4326 gk3 gk3-cm gcj02`` or any EPSG code; ``encoding`` ``utf-8`` or ``gbk`` (Shapefile
    and CSV only). A Shapefile or File Geodatabase export, and a GeoJSON, CSV or GeoParquet export
    of several layers, is a zip (a File Geodatabase is a folder: the zip holds ``<name>.gdb/``).

    Example
    -------
    >>> export({"grids": grids}, "grids.zip", format="shp", crs="gk3", encoding="gbk")  # doctest: +SKIP
    <ExportResult shp grids.zip — grids: 212; EPSG:4522 CGCS2000 / 3-degree Gauss-Kruger zone 34; gbk>
    """
    frames = _named_frames(layers, Path(path))
    fmt = _format(format, Path(path))
    enc = _encoding(encoding, fmt)
    centre = _centre(frames)
    try:
        target_crs = output_crs(crs, *centre)
    except CRSError as exc:
        raise ExportError(f"{exc}; choose 4490, 4326, gk3, gk3-cm, gcj02 or an EPSG code",
                          f"{exc}；请选择 4490、4326、gk3、gk3-cm、gcj02 或一个 EPSG 代码") from exc
    area_crs = output_crs("gk3-cm", *centre).crs
    if fmt in WGS84_ONLY and not target_crs.geographic:
        raise ExportError(f"{fmt} is always WGS84 longitude/latitude (RFC 7946 / KML 2.2); "
                          f"choose crs 4326, 4490 or gcj02, or write gpkg/shp/csv for {target_crs.label}",
                          f"{fmt} 只能是 WGS84 经纬度（RFC 7946 / KML 2.2）：请选择坐标系 4326、4490 或 gcj02，"
                          f"或以 gpkg/shp/csv 导出 {target_crs.label}")
    if fmt == "kml" and any(not isinstance(f, gpd.GeoDataFrame) for f in frames.values()):
        raise ExportError("KML holds map features only; leave tables such as the crosswalk out, or choose gpkg",
                          "KML 只能存放地图要素：请去掉对照表等表格，或选择 gpkg")
    prepared: dict[str, tuple[pd.DataFrame, list[Field]]] = {}
    full_texts: dict[str, pd.DataFrame] = {}  # per layer: the full text of the values cut to fit a Shapefile
    cuts: list[TextCut] = []
    for name, frame in frames.items():
        out, fields = _prepare(name, frame, target_crs, fmt, area_crs)
        if enc == "gbk":
            _check_gbk(name, out)
        if fmt == "shp":
            out, full, layer_cuts = _fit_dbf_text(name, out, fields, enc)
            if layer_cuts:
                full_texts[name], cuts = full, cuts + layer_cuts
        prepared[name] = (out, fields)
    fields_by_layer = {name: fields for name, (_, fields) in prepared.items()}
    data_dictionary = _mark_cuts(dictionary(fields_by_layer, target_crs.label, enc), cuts)
    final = _final_path(Path(path), fmt, len(prepared))
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridmap-export-") as tmp:
        work = Path(tmp)
        written = WRITERS[fmt](prepared, work, final.stem, enc, data_dictionary)
        written += [_full_text_csv(frame, work / f"{name}_fulltext.csv", enc) for name, frame in full_texts.items()]
        if final.suffix == ".zip":
            produced = work / final.name
            _zip(written, produced, work)
            files = [str(p.relative_to(work)) for p in written]
        else:
            produced = written[0]
            files = [p.name for p in written]
            for sidecar in written[1:]:  # e.g. the .csvt next to a CSV
                shutil.move(str(sidecar), final.with_suffix(sidecar.suffix))
        shutil.move(str(produced), final)
    counts = {name: len(out) for name, (out, _) in prepared.items()}
    notes = [cut_note(cuts, enc)] if cuts else []
    return ExportResult(final, fmt, target_crs.label, enc, counts, files, data_dictionary, notes)


def _named_frames(layers, path: Path) -> dict[str, pd.DataFrame]:
    if isinstance(layers, pd.DataFrame):
        name = "grids" if "grid_code" in layers.columns and "unit_id" not in layers.columns else path.stem
        layers = {name: layers}
    frames = {str(k): v for k, v in dict(layers).items() if v is not None}
    if not frames:
        raise ExportError("nothing to export: no layers given", "没有可导出的内容：未给出图层")
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise ExportError(f"layer {name!r} is a {type(frame).__name__}, not a (Geo)DataFrame",
                              f"图层 {name!r} 是 {type(frame).__name__}，不是 (Geo)DataFrame")
        if isinstance(frame, gpd.GeoDataFrame) and frame.crs is None:
            raise ExportError(f"layer {name!r} has no CRS; set one with .set_crs(...) before exporting",
                              f"图层 {name!r} 没有坐标系：导出前请用 .set_crs(...) 设定")
    return frames


def _format(format: str | None, path: Path) -> str:
    fmt = (format or SUFFIX_FORMAT.get(path.suffix.lower(), "")).lower().lstrip(".")
    fmt = {"shapefile": "shp", "json": "geojson", "geopackage": "gpkg", "filegdb": "gdb",
           "geoparquet": "parquet"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {format or path.suffix!r}; choose one of {', '.join(FORMATS)}",
                          f"未知的导出格式 {format or path.suffix!r}：可选 {'、'.join(FORMATS)}")
    return fmt


def _encoding(encoding: str, fmt: str) -> str:
    enc = str(encoding).strip().lower().replace("_", "-")
    enc = {"utf8": "utf-8", "cp936": "gbk", "936": "gbk", "gb2312": "gbk"}.get(enc, enc)
    if enc not in ENCODINGS:
        raise ExportError(f"unknown encoding {encoding!r}; choose utf-8 or gbk", f"未知的编码 {encoding!r}：可选 utf-8 或 gbk")
    if enc == "gbk" and fmt not in ("shp", "csv"):
        raise ExportError(f"{fmt} is UTF-8 by definition; GBK is offered for shp and csv",
                          f"{fmt} 规定为 UTF-8；GBK 仅用于 shp 和 csv")
    return enc


def _centre(frames: dict[str, pd.DataFrame]) -> tuple[float, float]:
    bounds = [f.to_crs(STORAGE_EPSG).total_bounds for f in frames.values()
              if isinstance(f, gpd.GeoDataFrame) and len(f) and not f.geometry.is_empty.all()]
    if not bounds:
        return 0.0, 0.0
    b = np.vstack(bounds)
    return float((b[:, 0].min() + b[:, 2].max()) / 2), float((b[:, 1].min() + b[:, 3].max()) / 2)


def _prepare(name: str, frame: pd.DataFrame, target: OutputCRS, fmt: str,
             area_crs: CRS) -> tuple[pd.DataFrame, list[Field]]:
    """Columns in schema order with export types, areas recomputed, geometry in the target CRS.

    Areas are measured in the data's CGCS2000 3-degree Gauss-Krüger zone (scale 1 on the central
    meridian, within 1e-4 of the ellipsoidal area across the zone): the figure a Chinese GIS
    computes from a ``gk3`` export, and the same whatever CRS the file itself is written in."""
    is_spatial = isinstance(frame, gpd.GeoDataFrame)
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name) if is_spatial else frame).reset_index(drop=True)
    if is_spatial and name in AREA_LAYERS and len(frame):
        attrs["area_m2"] = np.round(frame.to_crs(area_crs).geometry.area.to_numpy(), 2)
    fields = fields_for(name, list(attrs.columns))
    out = pd.DataFrame({f.name: _typed(attrs[f.name], f, fmt) for f in fields})
    if fmt == "shp":
        out.columns = [f.short for f in fields]
    if not is_spatial:
        return out, fields
    geo = frame.to_crs(STORAGE_EPSG).reset_index(drop=True)
    if target.gcj02:
        geo = wgs84_to_gcj02_frame(geo).set_crs(4326, allow_override=True)
    elif not target.crs.equals(geo.crs):
        geo = geo.to_crs(target.crs)
    return gpd.GeoDataFrame(out, geometry=geo.geometry.values, crs=target.crs), fields


def _typed(values: pd.Series, f: Field, fmt: str) -> pd.Series:
    """A column converted to what the file should hold: codes text, counts 32-bit integers, dates
    as dates, datetimes as datetimes (ISO text where the format has no datetime), lists as JSON."""
    kind = f.type if f.type != "auto" else _infer(values)
    if kind == "str":  # Arrow types so that an all-empty column still has a type the writer knows
        return pd.Series([None if _missing(v) else _text(v) for v in values], dtype=TEXT)
    if kind == "int":
        return pd.to_numeric(values, errors="coerce").round().astype("Int32")
    if kind == "float":
        return pd.to_numeric(values, errors="coerce").astype(float)
    if kind == "date":
        return pd.Series([None if _missing(v) else pd.Timestamp(v).date() for v in values], dtype=DATE)
    if kind == "datetime":
        stamps = pd.to_datetime(values, utc=True, errors="coerce")
        if fmt in ("shp", "kml", "csv"):
            return pd.Series([None if pd.isna(v) else v.isoformat(timespec="seconds") for v in stamps], dtype=TEXT)
        return stamps
    return values


def _infer(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_float_dtype(values):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    sample = values.dropna()
    if len(sample) and all(isinstance(v, date) and not isinstance(v, datetime) for v in sample.iloc[:50]):
        return "date"
    return "str"


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return False
    return bool(pd.isna(value))


def _text(value) -> str:
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return json.dumps(list(value) if isinstance(value, np.ndarray) else value, ensure_ascii=False, default=str)
    return str(value)


def _check_gbk(layer: str, frame: pd.DataFrame) -> None:
    """Refuse GBK when a text value has characters GBK cannot hold (Icelandic ð/þ, emoji, ...),
    naming them, rather than writing question marks into a government register."""
    bad: list[str] = []
    for column in frame.columns:
        if frame[column].dtype != TEXT:
            continue
        for row, value in frame[column].items():
            if isinstance(value, str):
                try:
                    value.encode("gbk")
                except UnicodeEncodeError as exc:
                    bad.append(f"{layer}.{column} row {row + 1}: {value!r} ({value[exc.start:exc.end]!r})")
                    if len(bad) > MAX_LISTED:
                        break
    if bad:
        listed = "; ".join(bad[:MAX_LISTED]) + (" ..." if len(bad) > MAX_LISTED else "")
        raise ExportError(f"these values cannot be written in GBK: {listed}. Export in utf-8, or rename them",
                          f"以下值无法以 GBK 写出：{listed}。请以 utf-8 导出，或修改这些名称")


def cut_to_bytes(text: str, encoding: str, limit: int = DBF_TEXT_LIMIT) -> str:
    """``text`` as it fits ``limit`` bytes in ``encoding``: unchanged when it fits, else cut at a
    character boundary (never mid-character: a GBK reader would show a broken last character)
    and ended with "…" so a reader sees it was cut."""
    if len(text.encode(encoding)) <= limit:
        return text
    budget = limit - len(ELLIPSIS.encode(encoding))
    # a multi-byte character split at the budget is incomplete at the end: decoding drops it
    head = text.encode(encoding)[:budget].decode(encoding, errors="ignore")
    return head.rstrip() + ELLIPSIS


def _fit_dbf_text(layer: str, frame: pd.DataFrame, fields: list[Field],
                  enc: str) -> tuple[pd.DataFrame, pd.DataFrame, list[TextCut]]:
    """Text values cut to what a dBASE field holds (see :func:`cut_to_bytes`); returns the frame to
    write, the full text of the rows cut (``fid``: the feature's number in the file as GDAL counts
    it, the layer's first field, then each cut field under its short name) and the cuts."""
    codec = "gbk" if enc == "gbk" else "utf-8"
    out = frame.copy()
    full_file = f"{layer}_fulltext.csv"
    cut_rows = pd.Series(False, index=frame.index)
    cuts: list[TextCut] = []
    for f in fields:
        column = f.short
        if out[column].dtype != TEXT:
            continue
        fitted = pd.Series([v if not isinstance(v, str) else cut_to_bytes(v, codec) for v in out[column]],
                           index=out.index, dtype=TEXT)
        changed = (fitted != out[column]).fillna(False).astype(bool)
        if changed.any():
            cuts.append(TextCut(layer, column, f.name, int(changed.sum()), full_file))
            cut_rows |= changed
            out[column] = fitted
    if not cuts:
        return frame, pd.DataFrame(), []
    key = fields[0].short
    full = pd.DataFrame({"fid": frame.index[cut_rows], key: frame.loc[cut_rows, key]})
    for cut in cuts:
        full[cut.short] = frame.loc[cut_rows, cut.short]
    return out, full.reset_index(drop=True), cuts


def cut_note(cuts: list[TextCut], enc: str) -> dict[str, str]:
    """The one note, in English and Chinese, saying how many values of which fields were cut and
    which files in the zip hold their full text."""
    total = sum(c.count for c in cuts)
    fields = ", ".join(f"{c.layer}.{c.short} {c.count}" for c in cuts)
    files = ", ".join(dict.fromkeys(c.full_text_file for c in cuts))
    return {"en": f"a Shapefile text field holds {DBF_TEXT_LIMIT} bytes ({enc}): {total} longer values were cut, "
                  f"ending in \"{ELLIPSIS}\" ({fields}); their full text is in {files} in the zip "
                  "(GeoPackage and GeoJSON exports keep it whole)",
            "zh": f"Shapefile 文本字段最多 {DBF_TEXT_LIMIT} 字节（{enc}）：{total} 个更长的值已截断，以“{ELLIPSIS}”结尾"
                  f"（{fields.replace(', ', '，')}）；全文见压缩包内的 {files.replace(', ', '、')}"
                  "（GeoPackage 和 GeoJSON 导出保留全文）"}


def _mark_cuts(data_dictionary: pd.DataFrame, cuts: list[TextCut]) -> pd.DataFrame:
    """The dictionary's meaning of each cut field says, in both languages, that long values are cut
    and where their full text is."""
    for c in cuts:
        row = (data_dictionary["layer"] == c.layer) & (data_dictionary["field"] == c.short)
        data_dictionary.loc[row, "meaning_zh"] += (f"（超过 {DBF_TEXT_LIMIT} 字节的值已截断，以“{ELLIPSIS}”结尾；"
                                                   f"全文见 {c.full_text_file}）")
        data_dictionary.loc[row, "meaning_en"] += (f" (values longer than {DBF_TEXT_LIMIT} bytes are cut, ending in "
                                                   f"\"{ELLIPSIS}\"; full text in {c.full_text_file})")
    return data_dictionary


def _full_text_csv(full: pd.DataFrame, out: Path, enc: str) -> Path:
    """The full text of the values cut to fit a Shapefile, encoded as the data dictionary is."""
    full.to_csv(out, index=False, encoding="utf-8-sig" if enc == "utf-8" else "gbk")
    return out


def _final_path(path: Path, fmt: str, layer_count: int) -> Path:
    if fmt in ("shp", "gdb") or (fmt in ("geojson", "csv", "parquet") and
                                 (layer_count > 1 or path.suffix.lower() == ".zip")):
        return path if path.suffix.lower() == ".zip" else path.with_suffix(".zip")
    wanted = {"gpkg": ".gpkg", "geojson": path.suffix.lower() if path.suffix.lower() in (".geojson", ".json")
              else ".geojson", "kml": ".kml", "csv": ".csv", "parquet": ".parquet"}[fmt]
    return path.with_suffix(wanted)


GPKG_DATASET_OPTIONS = {"VERSION": "1.2"}
"""Every GeoPackage gridmap writes is version 1.2: the GDAL the wheels bring writes 1.4 by
default, which Debian 12's GDAL 3.6 (ogrinfo, QGIS) opens with a warning that it "may only be
partially supported", as older desktop GIS may."""


def _write(frame: pd.DataFrame, path: Path, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*created as String field.*")
        pyogrio.write_dataframe(frame, path, use_arrow=True, **kwargs)


DBF_LANGUAGE_DRIVER_GBK = 0x4D
"""The dBASE header's language driver id (byte 29) for code page 936, GBK: what a reader that
ignores the ``.cpg`` file (older ArcGIS, some provincial platforms) decodes the names by. GDAL
writes the ``.cpg`` and leaves the byte 0."""


def _write_shp(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    written: list[Path] = []
    gdal_encoding = "GBK" if enc == "gbk" else "UTF-8"
    for name, (frame, _) in prepared.items():
        if isinstance(frame, gpd.GeoDataFrame):
            _write(frame, work / f"{name}.shp", driver="ESRI Shapefile", encoding=gdal_encoding)
            written += [work / f"{name}{ext}" for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
        else:
            _write(frame, work / f"{name}.dbf", driver="ESRI Shapefile", encoding=gdal_encoding)
            written += [work / f"{name}{ext}" for ext in (".dbf", ".cpg")]
        if enc == "gbk":
            with open(work / f"{name}.dbf", "r+b") as dbf:
                dbf.seek(29)
                dbf.write(bytes([DBF_LANGUAGE_DRIVER_GBK]))
    written.append(_dictionary_csv(data_dictionary, work, enc))
    return [p for p in written if p.exists()]


def _write_gpkg(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    out = work / f"{stem}.gpkg"
    for name, (frame, _) in prepared.items():
        _write(frame, out, driver="GPKG", layer=name, dataset_options=GPKG_DATASET_OPTIONS)
    _write(data_dictionary, out, driver="GPKG", layer="data_dictionary")
    return [out]


def _write_gdb(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    """An Esri File Geodatabase (GDAL's OpenFileGDB driver): one feature class or table per layer,
    the data dictionary as a table; every file of the ``.gdb`` folder, for the zip."""
    out = work / f"{stem}.gdb"
    for name, (frame, _) in prepared.items():
        with warnings.catch_warnings():  # dates are written as DateTime: what every ArcGIS before Pro 3.2 reads
            warnings.filterwarnings("ignore", message=".*will be written as a DateTime.*")
            _write(frame, out, driver="OpenFileGDB", layer=name)
    _write(data_dictionary, out, driver="OpenFileGDB", layer="data_dictionary")
    return sorted(p for p in out.rglob("*") if p.is_file())


def _write_parquet(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    """GeoParquet (geometry as WKB with the ``geo`` metadata: CRS as PROJJSON), one file per layer;
    tables as plain Parquet; the data dictionary beside several layers."""
    written = []
    single = len(prepared) == 1
    for name, (frame, _) in prepared.items():
        out = work / f"{stem if single else name}.parquet"
        frame.to_parquet(out, index=False)
        written.append(out)
    if not single:
        out = work / "data_dictionary.parquet"
        data_dictionary.to_parquet(out, index=False)
        written.append(out)
    return written


def _write_geojson(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    written = []
    single = len(prepared) == 1
    for name, (frame, _) in prepared.items():
        out = work / f"{stem if single else name}.geojson"
        if isinstance(frame, gpd.GeoDataFrame):
            _write(frame if frame.crs.equals(4326) else frame.to_crs(4326), out, driver="GeoJSON",
                   layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"})
        else:
            out = work / f"{name}.json"
            out.write_text(frame.to_json(orient="records", force_ascii=False), encoding="utf-8")
        written.append(out)
    return written


def _write_kml(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    """One folder per layer; each placemark is named by its name where it has one, else its code
    (GDAL's KML ``Name`` field), and keeps every attribute in ExtendedData."""
    out = work / f"{stem}.kml"
    for name, (frame, _) in prepared.items():
        label = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        for column in KML_LABELS:
            if column in frame:
                label = label.where(label.notna(), frame[column].astype(object).where(frame[column].notna(), None))
        labelled = frame.assign(Name=pd.Series(label.tolist(), index=frame.index, dtype=TEXT))
        labelled = labelled[["Name", *[c for c in frame.columns if c != "Name"]]]
        _write(labelled.set_crs(4326, allow_override=True), out, driver="KML", layer=name)
    return [out]


def _write_csv(prepared, work: Path, stem: str, enc: str, data_dictionary: pd.DataFrame) -> list[Path]:
    written = []
    single = len(prepared) == 1
    for name, (frame, _) in prepared.items():
        out = work / f"{stem if single else name}.csv"
        options = {"CREATE_CSVT": "YES", "WRITE_BOM": "YES" if enc == "utf-8" else "NO"}
        if isinstance(frame, gpd.GeoDataFrame):
            options["GEOMETRY"] = "AS_WKT"
        _write(frame, out, driver="CSV", layer_options=options)
        if enc == "gbk":
            out.write_bytes(out.read_bytes().decode("utf-8").encode("gbk"))
        written += [p for p in (out, out.with_suffix(".csvt"), out.with_suffix(".prj")) if p.exists()]
    if not single:
        written.append(_dictionary_csv(data_dictionary, work, enc))
    return written


def _dictionary_csv(data_dictionary: pd.DataFrame, work: Path, enc: str) -> Path:
    out = work / "data_dictionary.csv"
    data_dictionary.to_csv(out, index=False, encoding="utf-8-sig" if enc == "utf-8" else "gbk")
    return out


def _zip(files: list[Path], target: Path, root: Path) -> None:
    """The files in a zip, each under its path below ``root`` (a File Geodatabase keeps its folder)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=str(path.relative_to(root)))


WRITERS = {"shp": _write_shp, "gpkg": _write_gpkg, "gdb": _write_gdb, "parquet": _write_parquet, "geojson": _write_geojson, "kml": _write_kml, "csv": _write_csv}

__all__ = ["export", "ExportResult", "ExportError", "TextCut", "FORMATS", "ENCODINGS", "DBF_TEXT_LIMIT", "cut_to_bytes",
           "cut_note"]
