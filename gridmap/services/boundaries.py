"""``gridmap territory import``: a district's boundary files become territories, checked first
and stored all together or not at all.

The files are read like any layer (any format, ``crs``, ``encoding``: gridmap.geo.io; each
feature whose invalid geometry was repaired on reading becomes a finding, named by its code),
their columns named by the field table (gridmap.geo.fields, with ``fields`` overriding it),
checked and built into district → street → community by gridmap.geo.boundaries, and checked
against what is stored: codes that exist already (refused unless ``replace``), communities that
``replace`` would remove while plans, units or incidents use them (refused: history is kept), and
an outline that sits a few hundred metres off the stored district in the GCJ-02 pattern (refused,
with the fix). The city above is reused or created. ``dry_run`` checks and reports, and stores
nothing. The summary (``str``), the API answer and a refusal's details carry every finding in
English and Chinese; a refusal's details also carry the findings' places as GeoJSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.geo.boundaries import (DISTRICT_DIGITS, BoundaryRules, Finding, Hierarchy, build_hierarchy,
                                    findings_geojson, repaired_features)
from gridmap.geo.crs import STORAGE_EPSG, area_m2
from gridmap.geo.fields import BOUNDARY_ALIASES, map_fields
from gridmap.geo.io import ReadResult, read_vector
from gridmap.geo.offsets import BorderReference, detect_offset
from gridmap.geo.shapes import LocalScale
from gridmap.progress import QUIET, Progress
from gridmap.store import audit, territories
from gridmap.geo.export import GPKG_DATASET_OPTIONS

LEVELS = ("district", "street", "community")
ROLES = {"community": ("community", "社区"), "street": ("street", "街道"), "district": ("district", "区县")}
SEVERITY_ZH = {"refused": "拒绝", "repaired": "已修复", "reported": "提示"}


class BoundariesRefused(Invalid):
    """The boundary files cannot be stored as they are; every refusal is listed (both languages).
    ``places``: the findings with a place (what the GeoPackage of findings holds), which an API
    answer carries as a GeoJSON FeatureCollection."""

    def __init__(self, findings: list[Finding], findings_path: Path | None = None,
                 places: list[Finding] | None = None):
        where_en = f" (the places are in {findings_path})" if findings_path else ""
        where_zh = f"（位置见 {findings_path}）" if findings_path else ""
        super().__init__(
            "the boundary files were refused, nothing was stored" + where_en + ": "
            + "; ".join(f.en for f in findings),
            "边界文件未通过检查，未保存任何内容" + where_zh + "：" + "；".join(f.zh for f in findings))
        self.findings = findings
        self.findings_path = findings_path
        self.places = list(places or [])

    def details(self) -> dict:
        return {"findings": [f.as_dict() for f in self.findings], "places": findings_geojson(self.places)}


@dataclass
class BoundaryImport:
    """What a territory import did (or, in a dry run, would do); ``str`` says it in English and
    Chinese, each finding with its features named."""

    counts: dict[str, int]
    created: dict[str, int]
    updated: dict[str, int]
    removed: list[str]
    findings: list[Finding]
    city: str
    dry_run: bool
    columns: list[str] = field(default_factory=list)  # the renames applied: "社区代码 → code"
    findings_path: Path | None = None
    source_crs: str = ""
    city_unnamed: bool = False  # the city above was created with its code for a name (no 市名称 column)

    def __str__(self) -> str:
        verb = "would store" if self.dry_run else "stored"
        plural = {"district": "districts", "street": "streets", "community": "communities"}
        levels = ", ".join(f"{self.counts.get(level, 0)} {level if self.counts.get(level, 0) == 1 else plural[level]} "
                           f"({self.created.get(level, 0)} new)" for level in LEVELS)
        levels_zh = "、".join(f"{self.counts.get(level, 0)} 个{ROLES[level][1]}（新增 {self.created.get(level, 0)}）"
                             for level in LEVELS)
        lines = [f"{verb} {levels} under city {self.city} (from {self.source_crs})",
                 f"  {'将存储' if self.dry_run else '已存储'} {levels_zh}，上级城市 {self.city}（源坐标系 {self.source_crs}）"]
        if self.city_unnamed:
            lines.append(f"city {self.city} {'would be' if self.dry_run else 'was'} created named '市 {self.city}': "
                         "--parent-name NAME, or a 市名称 (city_name) column in the communities file, names it")
            lines.append(f"  上级城市 {self.city} {'将' if self.dry_run else '已'}以“市 {self.city}”为名创建："
                         "用 --parent-name 名称，或在社区文件中加一列 市名称（city_name），即可为其命名")
        if self.columns:
            lines.append("columns / 字段: " + ", ".join(self.columns))
        if self.removed:
            shown = self.removed[:20]
            lines.append(f"removed {len(self.removed)} territories no longer in the files: {', '.join(shown)}")
            lines.append(f"  已删除文件中不再有的 {len(self.removed)} 个辖区：{'、'.join(shown)}")
        for f in self.findings:
            lines += [f"{f.severity}: {f.en}", f"  {SEVERITY_ZH.get(f.severity, f.severity)}：{f.zh}"]
        if self.findings_path:
            lines.append(f"the places of these findings / 问题位置: {self.findings_path}")
        if self.dry_run:
            lines.append("dry run: nothing was stored / 试运行：未保存任何内容")
        return "\n".join(lines)


def _read(path: str | Path, role: str, *, crs, encoding, overrides: dict[str, str] | str | None,
          reference_bounds: tuple[float, float, float, float] | None
          ) -> tuple[gpd.GeoDataFrame, list[str], ReadResult, list[Finding]]:
    """One boundary file read (EPSG:4490, repaired) with its columns given canonical names, the
    renames, the read itself and a finding per feature whose invalid geometry was repaired (named
    by its code); ``reference_bounds`` (the parent's, when stored) lets a wrong CRS label be named
    with its fix."""
    result = read_vector(Path(path), crs=crs, encoding=encoding, expect="polygon", reference_bounds=reference_bounds)
    frame, mapping = map_fields(result.frame, overrides, BOUNDARY_ALIASES[role])
    if "code" not in frame:
        tried = ", ".join(BOUNDARY_ALIASES[role]["code"])
        raise Invalid(f"{Path(path).name} has no code column (tried {tried}); name it with --fields code=COLUMN "
                      f"(its columns: {', '.join(map(str, result.frame.columns))})",
                      f"{Path(path).name} 没有代码字段（已尝试 {tried}）；请用 --fields code=字段名 指定"
                      f"（文件字段：{'、'.join(map(str, result.frame.columns))}）")
    return frame, mapping.lines(), result, repaired_features(frame, result.repairs, *ROLES[role])


def import_boundaries(
    engine: sa.Engine,
    communities: str | Path,
    *,
    streets: str | Path | None = None,
    district: str | Path | None = None,
    parent: str | None = None,
    parent_name: str | None = None,
    fields: dict[str, str] | str | None = None,
    crs: object | None = None,
    encoding: str | None = None,
    replace: bool = False,
    dry_run: bool = False,
    findings_path: str | Path | None = None,
    rules: BoundaryRules | None = None,
    actor: str = "cli",
    progress: Progress = QUIET,
) -> BoundaryImport:
    """Check the boundary files and store the territories they describe; see the module docstring.

    ``findings_path``: where to write a GeoPackage of the findings that have a place (overlaps,
    gaps, repairs) when there are any (default: beside nothing, not written). ``parent_name``:
    the name of the city above when it is created (default: a 市名称 column, else its code)."""
    with engine.connect() as conn:
        known = territories.outlines(conn, [parent]) if parent else None
    bounds = tuple(known.total_bounds) if known is not None and len(known) else None
    with progress.step(f"reading {Path(communities).name}", f"读取 {Path(communities).name}"):
        comm, columns, read, repaired = _read(communities, "community", crs=crs, encoding=encoding,
                                              overrides=fields, reference_bounds=bounds)
        street_frame = district_frame = None
        if streets:
            street_frame, _, _, street_repairs = _read(streets, "street", crs=crs, encoding=encoding, overrides=None,
                                                       reference_bounds=bounds)
            repaired += street_repairs
        if district:
            district_frame, _, _, district_repairs = _read(district, "district", crs=crs, encoding=encoding,
                                                           overrides=None, reference_bounds=bounds)
            repaired += district_repairs
    with engine.connect() as conn:
        stored = _stored_districts(conn, comm, district_frame)
    with progress.step(f"checking {len(comm)} communities", f"检查 {len(comm)} 个社区"):
        offset = _gcj02_offset(comm, stored)
        if offset is not None:
            raise offset
        hierarchy = build_hierarchy(comm, streets=street_frame, districts=district_frame if district_frame is not None
                                    else stored, parent=parent, rules=rules)
        hierarchy = dataclasses.replace(hierarchy, findings=repaired + hierarchy.findings)
    path = _write_findings(hierarchy, findings_path)
    if hierarchy.refused:
        raise BoundariesRefused(hierarchy.refused, path, hierarchy.placed)
    summary = BoundaryImport(counts={"district": len(hierarchy.districts), "street": len(hierarchy.streets),
                                     "community": len(hierarchy.communities)},
                             created={}, updated={}, removed=[], findings=hierarchy.findings,
                             city=str(hierarchy.districts["parent_code"].iloc[0]), dry_run=dry_run, columns=columns,
                             findings_path=path, source_crs=read.source_crs)
    with progress.step(*(("storing the territories", "存储辖区") if not dry_run
                             else ("checking against what is stored", "与已存储的数据核对"))):
        with engine.begin() as conn:
            _store(conn, hierarchy, summary, replace=replace, actor=actor, source=Path(communities).name,
                   city_name=(parent_name or "").strip() or _first_name(comm, "city_name"))
            if dry_run:
                conn.rollback()
    return summary


def _stored_districts(conn: sa.Connection, comm: gpd.GeoDataFrame, given: gpd.GeoDataFrame | None
                      ) -> gpd.GeoDataFrame | None:
    """The districts already stored that the communities' codes name (their outlines are kept)."""
    if given is not None:
        return None
    codes = sorted({str(c)[:DISTRICT_DIGITS] for c in comm["code"].astype(str)})
    found = territories.outlines(conn, codes)
    return found if len(found) else None


def _gcj02_offset(comm: gpd.GeoDataFrame, stored: gpd.GeoDataFrame | None) -> Invalid | None:
    """A refusal when the communities' outer outline sits off the stored district's in the
    GCJ-02 pattern (files digitised on Amap/Tencent and labelled CGCS2000)."""
    if stored is None or not len(stored):
        return None
    outline = shapely.union_all(np.asarray(comm.to_crs(STORAGE_EPSG).geometry.values, dtype=object), grid_size=1e-9)
    scale = LocalScale.at(float(shapely.get_y(shapely.centroid(outline))))
    reference = BorderReference(shapely.boundary(np.asarray(stored.geometry.values, dtype=object)), scale.mx)
    found = detect_offset(gpd.GeoDataFrame(geometry=[outline], crs=STORAGE_EPSG), reference, department="communities",
                          min_shift_m=50.0)
    if found is None or not found.gcj02:
        return None
    return Invalid(f"the communities sit {found.shift_m:.0f} m off the stored district outline in the GCJ-02 pattern "
                   "(digitised on an Amap/Tencent basemap and labelled CGCS2000): import them with --crs gcj02",
                   f"社区边界与已存的区县边界相差 {found.shift_m:.0f} 米，符合 GCJ-02 偏移规律（在高德/腾讯底图上采集却标为 "
                   "CGCS2000）：请加 --crs gcj02 重新导入")


def _write_findings(hierarchy: Hierarchy, path: str | Path | None) -> Path | None:
    placed = hierarchy.findings_frame()
    if path is None or not len(placed):
        return None
    path = Path(path)
    placed.to_file(path, driver="GPKG", layer="findings", engine="pyogrio", dataset_options=GPKG_DATASET_OPTIONS)
    return path


def _first_name(frame: gpd.GeoDataFrame, column: str) -> str | None:
    """The first non-blank value of ``column`` (a name the files give once per row)."""
    if column not in frame:
        return None
    names = frame[column].dropna().astype(str).str.strip()
    names = names[names != ""]
    return names.iloc[0] if len(names) else None


def _store(conn: sa.Connection, hierarchy: Hierarchy, summary: BoundaryImport, *, replace: bool, actor: str,
           source: str, city_name: str | None) -> None:
    """Write the tree (city, districts, streets, communities) in the caller's transaction."""
    levels = {"district": hierarchy.districts, "street": hierarchy.streets, "community": hierarchy.communities}
    existing = {level: {c for d in hierarchy.districts["code"] for c in territories.codes_below(conn, d, level)}
                for level in LEVELS}
    clashes = sorted(existing["community"] & set(hierarchy.communities["code"]))
    if clashes and not replace:
        raise Invalid(f"{len(clashes)} of these communities are stored already ({', '.join(clashes[:10])}…): "
                      "--replace updates them (plans keep their history)",
                      f"其中 {len(clashes)} 个社区已存在（{'、'.join(clashes[:10])}…）：加 --replace 更新（方案历史保留）")
    removed = sorted((existing["community"] - set(hierarchy.communities["code"]))
                     | (existing["street"] - set(hierarchy.streets["code"]))) if replace else []
    used = territories.references(conn, removed) if removed else {}
    if used:
        listed = "; ".join(f"{code} ({', '.join(f'{n} {what}' for what, n in uses.items())})"
                           for code, uses in list(used.items())[:10])
        raise Invalid(f"--replace would remove territories that are in use: {listed}. Keep them in the files "
                      "(history refers to them), or delete what uses them first",
                      f"--replace 将删除仍在使用的辖区：{listed}。请在文件中保留它们（历史记录引用它们），或先删除引用它们的内容")
    city = str(hierarchy.districts["parent_code"].iloc[0])
    summary.city_unnamed = _ensure_city(conn, city, city_name or f"市 {city}", hierarchy.districts, source) \
        and not city_name
    for level in LEVELS:
        frame = levels[level].copy()
        summary.created[level] = int((~frame["code"].isin(existing[level])).sum()) if level != "district" else int(
            sum(not territories.exists(conn, c) for c in frame["code"]))
        summary.updated[level] = len(frame) - summary.created[level]
        frame["area_m2"] = area_m2(frame)
        territories.upsert(conn, frame, level=level, source=f"import:{source}")
    if removed:
        territories.delete(conn, removed)
        summary.removed = removed
    audit.record(conn, actor=actor, action="territory.import", table="territories", row_key=city,
                 after={"file": source, **summary.counts, "created": summary.created, "removed": removed,
                        "findings": [f"{f.severity}: {f.en}" for f in summary.findings]})


def _ensure_city(conn: sa.Connection, city: str, name: str, districts: gpd.GeoDataFrame, source: str) -> bool:
    """The city above the districts: reused when stored, else created with their outline (and
    ``name``: from a 市名称 column, else its code). Whether it was created."""
    if territories.exists(conn, city):
        return False
    outline = shapely.union_all(np.asarray(districts.geometry.values, dtype=object))
    frame = gpd.GeoDataFrame({"code": [city], "name": [name], "parent_code": [None]},
                             geometry=[outline], crs=STORAGE_EPSG)
    frame["area_m2"] = area_m2(frame)
    territories.upsert(conn, frame, level="city", source=f"import:{source}")
    return True


__all__ = ["BoundariesRefused", "BoundaryImport", "import_boundaries"]
