"""The attributes an exported layer carries, with the short names a Shapefile needs.

A government GIS system (see "Codes" in docs/domain.md) expects each grid's code as text with its
leading zeros, its name (a dedicated grid's: its institution's) and site type, community, street and district, area in m², households, population,
grid worker and validity dates. dBASE limits field names to 10 characters, so every field has a
full name (GeoPackage, GeoJSON, KML, CSV) and a short one (Shapefile); the data dictionary that
travels with every Shapefile export maps one to the other and says what the field means.

Columns a frame has that no schema names are kept, after the known ones, with a short name
derived from the full one (truncated, made unique with a digit).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DBF_NAME_LIMIT = 10


@dataclass(frozen=True)
class Field:
    """One exported attribute: full name, Shapefile name, type, and its meaning in Chinese and English."""

    name: str
    short: str
    type: str  # "str" | "int" | "float" | "date" | "datetime"
    zh: str
    en: str


def _f(name: str, short: str, type_: str, zh: str, en: str) -> Field:
    return Field(name, short, type_, zh, en)


_PLACE = (
    _f("community_code", "comm_code", "str", "社区代码（12位，含前导零）", "community code (12 digits, leading zeros kept)"),
    _f("community_name", "comm_name", "str", "社区名称", "community name"),
    _f("street_code", "street_cd", "str", "街道（乡镇）代码", "street (township) code"),
    _f("street_name", "street_nm", "str", "街道（乡镇）名称", "street (township) name"),
    _f("district_code", "dist_code", "str", "区县代码", "district (county) code"),
    _f("district_name", "dist_name", "str", "区县名称", "district (county) name"),
)

SCHEMAS: dict[str, tuple[Field, ...]] = {
    "grids": (
        _f("grid_code", "grid_code", "str", "网格编码（文本，保留前导零）", "grid code (text, leading zeros kept)"),
        _f("grid_name", "grid_name", "str", "网格名称（专属网格：所在单位名称）",
           "grid name (a dedicated grid: its institution's name)"),
        _f("kind", "kind", "str", "网格类型：comprehensive 综合网格 / dedicated 专属网格",
           "grid kind: comprehensive or dedicated"),
        _f("site_type", "site_type", "str", "专属网格的场所类型（英文代码，如 school 学校、hospital 医院；综合网格为空）",
           "a dedicated grid's site type (English key, e.g. school, hospital; empty for comprehensive grids)"),
        _f("site_type_zh", "site_zh", "str", "专属网格的场所类型（中文，如 学校、医院；综合网格为空）",
           "a dedicated grid's site type in Chinese (e.g. 学校, 医院; empty for comprehensive grids)"),
        *_PLACE,
        _f("area_m2", "area_m2", "float", "面积（平方米，在投影坐标系中计算）", "area in square metres, computed in a projected CRS"),
        _f("households", "households", "int", "户数", "households"),
        _f("population", "population", "int", "人口", "population"),
        _f("flag", "flag", "str", "标记代码（如超出户数区间的原因；多个以逗号分隔）",
           "flag codes (why it is outside the band, and others; several separated by commas)"),
        _f("reason_zh", "reason_zh", "str", "标记原因（中文）", "the flags' reasons (Chinese)"),
        _f("reason", "reason_en", "str", "标记原因（英文）", "the flags' reasons (English)"),
        _f("worker", "worker", "str", "网格员", "grid worker"),
        _f("plan_version", "plan_ver", "int", "方案版本号", "plan version"),
        _f("valid_from", "valid_from", "date", "生效日期", "valid from (date the plan was published)"),
        _f("valid_to", "valid_to", "date", "失效日期（空 = 现行）", "valid to (empty = in force)"),
    ),
    "units": (
        _f("unit_id", "unit_id", "str", "单元编号", "unit id"),
        _f("unit_kind", "unit_kind", "str", "单元类型：compound 小区 / block 街块 / site 专属单位",
           "unit kind: compound, block or dedicated site"),
        _f("unit_name", "unit_name", "str", "单元名称", "unit name"),
        _f("grid_code", "grid_code", "str", "所属网格编码", "grid the unit belongs to in this plan"),
        *_PLACE,
        _f("area_m2", "area_m2", "float", "面积（平方米，在投影坐标系中计算）", "area in square metres, computed in a projected CRS"),
        _f("households", "households", "int", "户数", "households"),
        _f("population", "population", "int", "人口", "population"),
    ),
    "microgrids": (
        _f("microgrid_code", "micro_code", "str", "微网格编码（所属网格编码 + 序号，文本）",
           "micro-grid code (its grid's code + a sequence number, text)"),
        _f("grid_code", "grid_code", "str", "所属网格编码", "grid the micro-grid belongs to"),
        *_PLACE,
        _f("area_m2", "area_m2", "float", "面积（平方米，在投影坐标系中计算）", "area in square metres, computed in a projected CRS"),
        _f("households", "households", "int", "户数", "households"),
        _f("building_count", "buildings", "int", "楼栋数", "buildings (a building cut by its 单元 counts in each part)"),
        _f("flag", "flag", "str", "超出户数区间的原因代码", "why it is outside the micro band (code)"),
        _f("reason_zh", "reason_zh", "str", "原因（中文）", "reason (Chinese)"),
        _f("reason", "reason_en", "str", "原因（英文）", "reason (English)"),
        _f("leader_name", "leader", "str", "微网格负责人姓名",
           "micro-grid leader (微网格负责人; 楼栋长 and 单元长 are recorded per building and 单元)"),
        _f("plan_version", "plan_ver", "int", "方案版本号", "plan version"),
        _f("valid_from", "valid_from", "date", "生效日期", "valid from (date the plan was published)"),
        _f("valid_to", "valid_to", "date", "失效日期（空 = 现行）", "valid to (empty = in force)"),
    ),
    "stations": (
        _f("station_id", "station_id", "int", "站点编号", "station id"),
        _f("station_type", "stype", "str", "站点类型代码", "station type code"),
        _f("type_name", "type_name", "str", "站点类型名称", "station type name"),
        _f("name", "name", "str", "站点名称", "station name"),
        _f("address", "address", "str", "地址", "address"),
        _f("opening_hours", "open_hours", "str", "开放时间", "opening hours"),
        _f("status", "status", "str", "状态：open 开放 / closed 关闭", "status: open or closed"),
        _f("grid_code", "grid_code", "str", "所在网格编码（现行方案）", "grid it stands in (published plan)"),
        *_PLACE[:2],
    ),
    "incidents": (
        _f("incident_id", "inc_id", "str", "事件编号", "incident id (public)"),
        _f("category_code", "cat_code", "str", "事项类别代码", "category code"),
        _f("category_name", "cat_name", "str", "事项类别名称", "category name"),
        _f("status", "status", "str", "办理状态", "workflow state"),
        _f("department", "dept", "str", "责任部门", "responsible department"),
        _f("grid_code", "grid_code", "str", "所在网格编码（现行方案）", "grid holding it in the published plan"),
        _f("reported_grid_code", "rep_grid", "str", "上报时所在网格编码", "grid it was reported in (history)"),
        *_PLACE[:4],
        _f("reported_at", "reported", "datetime", "上报时间", "reported at"),
        _f("due_at", "due_at", "datetime", "办理时限", "due at"),
        _f("closed_at", "closed_at", "datetime", "结案时间", "closed at"),
        _f("escalation_level", "esc_level", "int", "督办升级级别", "escalation level"),
        _f("synthetic", "synthetic", "int", "1 = 合成演示数据", "1 = labelled synthetic demo data"),
    ),
    "crosswalk": (
        _f("department", "dept", "str", "原部门", "department that drew the old grid"),
        _f("grid_id", "old_grid", "str", "原部门网格编号", "the department's own grid id"),
        _f("grid_code", "grid_code", "str", "统一网格编码", "unified grid code"),
        _f("area_share", "area_share", "float", "原网格面积落入该统一网格的比例", "share of the old grid's area in it"),
        _f("household_share", "hh_share", "float", "原网格户数落入该统一网格的比例",
           "share of the old grid's households in it"),
        _f("area_m2", "area_m2", "float", "重叠面积（平方米）", "overlap area in square metres"),
        _f("households", "households", "float", "重叠户数", "households in the overlap"),
    ),
}


def fields_for(layer: str, columns: list[str]) -> list[Field]:
    """The fields to write for a frame with ``columns``: the layer's known fields that are present,
    in schema order, then every other column with a derived short name (unique, ≤ 10 characters)."""
    known = [f for f in SCHEMAS.get(layer, ()) if f.name in columns]
    taken = {f.short.lower() for f in known}
    extra = []
    for column in columns:
        if any(f.name == column for f in known):
            continue
        short = _short_name(column, taken)
        taken.add(short.lower())
        extra.append(Field(column, short, "auto", "", ""))
    return known + extra


def _short_name(name: str, taken: set[str]) -> str:
    """``name`` cut to fit a dBASE field (10 bytes; a Chinese character takes 3 in UTF-8), unique."""
    base = name
    while len(base.encode("utf-8")) > DBF_NAME_LIMIT:
        base = base[:-1]
    candidate, n = base, 1
    while candidate.lower() in taken:
        suffix = str(n)
        stem = base
        while len((stem + suffix).encode("utf-8")) > DBF_NAME_LIMIT:
            stem = stem[:-1]
        candidate, n = stem + suffix, n + 1
    return candidate


def dictionary(layers: dict[str, list[Field]], crs_label: str, encoding: str) -> pd.DataFrame:
    """The data dictionary (数据字典): one row per field of every layer."""
    rows = [{"layer": layer, "field": f.short, "full_name": f.name, "type": f.type, "meaning_zh": f.zh,
             "meaning_en": f.en, "crs": crs_label, "encoding": encoding}
            for layer, fields in layers.items() for f in fields]
    return pd.DataFrame(rows, columns=["layer", "field", "full_name", "type", "meaning_zh", "meaning_en", "crs",
                                       "encoding"])


__all__ = ["Field", "SCHEMAS", "DBF_NAME_LIMIT", "fields_for", "dictionary"]
