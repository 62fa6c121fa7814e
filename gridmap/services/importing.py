"""``gridmap import``: load a GIS file as a named layer of a territory, in one transaction.

What a district hands over is checked before anything is stored, and a refused import stores
nothing:

1. **Reading** (:func:`gridmap.geo.io.read_vector`): format, a damaged shapefile (a part cut off,
   a .dbf that is no dBASE table or belongs to another shapefile: refused naming the part, see
   :mod:`gridmap.geo.shapefile_parts`), text encoding (GBK detected, a wrong
   ``.cpg`` or ``--encoding`` refused with the fix), the coordinate system against the numbers
   and against where the territory is (projected numbers labelled as degrees, swapped axes, a
   label that contradicts the coordinates: refused naming the likely ``--crs``), geometries.
2. **Field names** (:mod:`gridmap.geo.fields`): 户数, 楼栋号, 层数 ... renamed to gridmap's own
   (``--fields`` overrides); every rename is in the summary.
3. **The territory** (:mod:`gridmap.geo.crs_checks`): a layer in China that looks like GCJ-02
   left unconverted (compared with the territory's outline, its communities' borders and its
   roads layer) is refused with ``--crs gcj02`` as the fix; a layer with more than half of
   its features outside the territory's outline is refused with both bounding boxes; one with
   more than 5 % outside (by count or by area/length) is imported with a warning.
4. **Buildings** (``--kind buildings`` or a layer the partition reads as buildings, see
   ``layers.ROLES``): households that are empty, NaN, negative or not a number are refused with
   the buildings named, unless ``estimate_missing``; then they are estimated, marked and
   counted (:func:`gridmap.geo.households.complete_households`). A layer without a households
   column is estimated whole when units are built, and the summary says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.geo.crs import in_china
from gridmap.geo.crs_checks import gcj02_suspect, placement
from gridmap.geo.fields import map_fields, parse_overrides
from gridmap.geo.households import complete_households
from gridmap.geo.io import ReadLimits, note_zh, read_vector
from gridmap.progress import QUIET, Progress
from gridmap.store import audit, frames, layers, territories

MOSTLY_OUTSIDE = 0.5   # more than this share of the features outside the territory: refused
PARTLY_OUTSIDE = 0.05  # more than this (by count or by area/length): imported with a warning


@dataclass
class ImportSummary:
    """What an import did: readable by people (``str``) and programs (fields). ``fields`` lists
    the columns renamed (``户数 → households``); ``warnings`` are ``{"en", "zh"}`` pairs;
    ``households`` says, for a buildings layer, how many counts were given and estimated."""

    territory: str
    layer: str
    features: int
    source_crs: str
    geometry_types: list[str]
    encoding: str | None = None
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replaced: int | None = None
    fields: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    households: dict | None = None
    outside: dict | None = None

    @property
    def estimated(self) -> int:
        """Households values estimated at import (``estimate_missing``)."""
        if not self.households or self.households.get("estimated_all"):
            return 0
        return int(self.households.get("estimated", 0))

    def __str__(self) -> str:
        """Each line in English, then (indented) in Chinese, as :class:`BoundarySummary` prints."""
        types = ", ".join(self.geometry_types)
        lines = [f"imported {self.features} features into layer '{self.layer}' of territory {self.territory} "
                 f"(from {self.source_crs}; {types})",
                 f"  已导入 {self.features} 个要素到辖区 {self.territory} 的图层“{self.layer}”（源坐标系 {self.source_crs}；"
                 f"{types}）"]
        if self.replaced is not None:
            lines.append(f"replaced the previous layer ({self.replaced} features)")
            lines.append(f"  已替换原图层（{self.replaced} 个要素）")
        if self.fields:
            lines.append(f"fields: {', '.join(self.fields)}")
            lines.append(f"  字段：{'，'.join(self.fields)}")
        if self.households and self.households.get("said"):
            lines.append(f"households: {self.households['said']['en']}")
            lines.append(f"  户数：{self.households['said']['zh']}")
        for note in self.notes:
            lines.append(f"note: {note}")
            lines.append(f"  说明：{note_zh(note)}")
        for warning in self.warnings:
            lines.append(f"warning: {warning['en']}")
            lines.append(f"  警告：{warning['zh']}")
        if self.repaired:
            lines.append(f"repaired {len(self.repaired)} invalid geometries / 已修复 {len(self.repaired)} 个无效几何:")
            lines += [f"  {r}" for r in self.repaired[:20]]
            if len(self.repaired) > 20:
                lines.append(f"  ... and {len(self.repaired) - 20} more / 另有 {len(self.repaired) - 20} 个")
        return "\n".join(lines)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_buildings_layer(kind: str | None, name: str) -> bool:
    """A layer is checked as buildings when imported with ``kind="buildings"`` or under a name the
    partition reads buildings from (``layers.ROLES["buildings"]``: buildings, 楼栋)."""

    names = {n.casefold() for n in layers.ROLES["buildings"]}
    return (kind or "").strip().casefold() == "buildings" or name.strip().casefold() in names


def _territory_checks(engine: sa.Engine, row, outline, geoms: np.ndarray, *, name: str, source_crs: str,
                      gcj02: bool) -> tuple[dict, list[dict[str, str]]]:
    """GCJ-02 left unconverted (refused), a layer mostly outside the territory (refused) or partly
    (a warning); returns the placement figures and the warnings."""
    territory = f"{row.code} {row.name}"
    centre = shapely.get_coordinates(shapely.centroid(outline))
    if not gcj02 and in_china(centre[:, 0], centre[:, 1]).all():
    
        near = shapely.box(*shapely.total_bounds(geoms)).buffer(0.02)  # what lies within ~2 km of the layer
        with engine.connect() as conn:
            communities = frames.communities(conn, row.code)
            found = layers.find(conn, row.code, layers.ROLES["roads"])
            roads = frames.layer_in_area(conn, found[0], found[1], near) if found else None
        borders = shapely.boundary(np.asarray(communities.geometry.values, dtype=object))
        evidence = gcj02_suspect(geoms, outline, borders,
                                 None if roads is None else np.asarray(roads.geometry.values, dtype=object))
        if evidence is not None:
            raise Invalid(*evidence.said(name))
    where = placement(geoms, outline)
    figures = {"features": where.features, "outside": where.outside, "outside_share": round(where.outside_share, 4),
               "measure": where.measure, "outside_measure_share": round(where.outside_measure, 4)}
    share_en, share_zh = where.describe()
    bounds_en, bounds_zh = where.where()
    if where.outside_share > MOSTLY_OUTSIDE:
        raise Invalid(f"{name}: {share_en} lie outside territory {territory}: {bounds_en}. Is it the right territory, "
                      f"and the right coordinate system ({source_crs})? Nothing was imported",
                      f"{name}：{share_zh}位于辖区 {territory} 之外：{bounds_zh}。请检查辖区与坐标系（{source_crs}）"
                      "是否正确；未导入任何内容")
    warnings = []
    if where.outside_share > PARTLY_OUTSIDE or where.outside_measure > PARTLY_OUTSIDE:
        warnings.append({"en": f"{share_en} lie outside territory {territory} ({bounds_en}); imported all the same",
                         "zh": f"{share_zh}位于辖区 {territory} 之外（{bounds_zh}）；仍已导入"})
    return figures, warnings


def _unread_by_role(name: str, kind: str) -> list[dict[str, str]]:
    """A warning when ``kind`` is an input role of units and partitions (roads, buildings ...) but
    the layer's name is not one the role is read from (:data:`gridmap.store.layers.ROLES`): a
    second roads file imported as ``小区道路 --kind roads`` is stored and never used, and the user
    who imported it must hear so."""
    names = layers.ROLES.get(kind)
    if not names or name in names:
        return []
    read = " or ".join(f"'{n}'" for n in names)
    read_zh = "或".join(f"“{n}”" for n in names)
    return [{"en": f"layer '{name}' (kind {kind}) is stored, but units and partitions read {kind} only from the "
                   f"layer named {read}: import it as layer '{names[0]}' (--layer {names[0]}; merged with any "
                   f"{kind} you have there) for it to count",
             "zh": f"图层“{name}”（类型 {kind}）已存储，但构建单元和划分网格只读取名为{read_zh}的图层：请以图层名"
                   f"“{names[0]}”（--layer {names[0]}）导入（如已有该图层，请先合并）才会生效"}]


def import_file(
    engine: sa.Engine,
    path: str | Path,
    *,
    territory: str,
    layer: str | None = None,
    crs: object | None = None,
    encoding: str | None = None,
    source_layer: str | None = None,
    kind: str = "imported",
    expect: str | None = None,
    replace: bool = False,
    actor: str = "cli",
    progress: Progress = QUIET,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
    fields: dict[str, str] | str | None = None,
    estimate_missing: bool = False,
) -> ImportSummary:
    """Read, check and store ``path`` as layer ``layer`` (default: the file's stem) of ``territory``.

    ``fields`` overrides the field table (``"households=户数,name=楼栋号"`` or a dict);
    ``estimate_missing`` replaces missing or invalid households of a buildings layer by the
    estimate (marked ``households_estimated``) instead of refusing them. Everything happens in
    one transaction after every check: if anything fails, the database is exactly as before.
    """
    path = Path(path)
    shown = source_name or path.name  # an upload is stored under a temporary name
    name = layer or Path(shown).stem
    overrides = parse_overrides(fields)
    buildings = is_buildings_layer(kind, name)
    if estimate_missing and not buildings:
        raise Invalid(f"--estimate-missing applies to buildings layers; import '{name}' with --kind buildings "
                      "(or as layer buildings) to check and estimate its households",
                      f"--estimate-missing 只适用于楼栋图层；请加 --kind buildings（或以 buildings 为图层名）导入 "
                      f"'{name}'，以检查并估算户数")
    if limits is None:
        from gridmap.settings import Settings

        limits = Settings.from_env().read_limits()
    with engine.connect() as conn:
        row = territories.get(conn, territory)
        outline = shapely.from_wkb(bytes.fromhex(territories.outline_hex(conn, territory)))
        rule = None
        if buildings:
            from gridmap.services import profiles

            rule = profiles.of_territory(conn, territory).units.household_rule
    with progress.step(f"reading {shown}", f"读取 {shown}"):
        result = read_vector(path, crs=crs, layer=source_layer, encoding=encoding, expect=expect, limits=limits,
                             reference_bounds=tuple(shapely.bounds(outline)))
    frame, mapping = map_fields(result.frame, overrides)
    with progress.step(f"checking {len(frame)} features against territory {territory}",
                       f"对照辖区 {territory} 检查 {len(frame)} 个要素"):
        outside, warnings = _territory_checks(engine, row, outline, np.asarray(frame.geometry.values, dtype=object),
                                              name=shown, source_crs=result.source_crs,
                                              gcj02=result.source_crs == "GCJ-02")
    warnings += _unread_by_role(name, kind)
    households, estimated = None, 0
    if buildings:
        labels = {target: source for source, target in mapping.renamed.items()}
        frame, report = complete_households(frame, rule, estimate_missing=estimate_missing, name=shown, labels=labels)
        said = report.said()
        households = {**asdict(report), "said": {"en": said[0], "zh": said[1]} if said else None}
        estimated = 0 if report.estimated_all else report.estimated
    types = sorted(set(frame.geom_type))
    with progress.step(f"storing {len(frame)} features as layer '{name}' of {territory}",
                       f"将 {len(frame)} 个要素存为辖区 {territory} 的图层「{name}」"):
        with engine.begin() as conn:
            target = territories.get(conn, territory)
            report = {"repaired": result.repaired, "notes": result.notes, "fields": mapping.lines(),
                      "warnings": warnings, "households": households, "outside": outside}
            layer_id, replaced = layers.create(
                conn, territory_id=target.id, name=name, kind=kind,
                geometry_type=types[0] if len(types) == 1 else "GEOMETRY", source_file=shown,
                source_crs=result.source_crs, encoding=result.encoding, checksum=file_checksum(path),
                report=report, actor=actor, replace=replace)
            count = layers.copy_features(conn, layer_id, frame)
            audit.record(conn, actor=actor, action="import", table="layers", row_key=f"{territory}/{name}",
                         before=None if replaced is None else {"features": replaced},
                         after={"features": count, "file": shown, "crs": result.source_crs,
                                "repaired": len(result.repaired), "fields": mapping.lines(),
                                "households_estimated": estimated, "warnings": len(warnings)})
    return ImportSummary(territory=territory, layer=name, features=count, source_crs=result.source_crs,
                         geometry_types=types, encoding=result.encoding, repaired=result.repaired,
                         notes=result.notes, replaced=replaced, fields=mapping.lines(), warnings=warnings,
                         households=households, outside=outside)
