"""Field names as a district hands them over, mapped to gridmap's own.

A Chinese district's files name their columns in Chinese (户数, 楼栋号, 社区代码 ...), an OSM
extract in English. gridmap reads one set of **canonical** column names; this table says which
source columns stand for each. Matching ignores case and surrounding whitespace.

=================  =====================================================================
canonical          source columns recognised (any case, whitespace trimmed)
=================  =====================================================================
``households``     户数, 住户数, 户数量, households, hh
``population``     人口, 常住人口, 人口数, population
``code``           社区代码, 社区编码, 区划代码, 行政区划代码, code
``name``           社区名称, 名称, name
``levels``         地上层数, 层数, 楼层数, 总层数, 楼层, levels, building:levels (the first the file has
                   wins: levels only feed an estimate of households)
``building_name``  楼栋名称, 楼栋名, 建筑物名称, 建筑名称, 楼栋号, 楼号 (a label: the first of these
                   the file has wins, the others keep their own names)
``compound_name``  小区名称, 小区名
``type``           类型, 用途, type
``staff``          职工人数, 职工数, 员工数, 员工人数, 从业人数, 从业人员数, 在职人数, staff, employees
                   (a site's staff: one test of whether it gets a dedicated grid)
``entrances``      单元数, 单元, 梯数, entrances (a building's stairwells, 单元: micro-grids split by them)
=================  =====================================================================

Rules (:func:`map_fields`):

* a column already carrying its canonical name is kept as it is; an alias is renamed to it;
* overrides (``--fields households=住户总数,name=楼名`` on the command line, ``fields=`` in an
  upload, a dict in Python) win over the table; a target need not be in the table;
* two source columns claiming one canonical name is refused, naming both (except for the labels
  of :data:`RANKED_COLUMNS`: the first in the table's order wins), unless an override picks one (the other keeps its own name; a column literally named like the canonical one that
  is not picked becomes ``<name>_unused``);
* an override naming a column the file lacks is refused, listing the file's columns.

Every rename is reported (``户数 → households``) so the import summary shows what was applied.

Boundary files (``gridmap territory import``) have a table per level (:data:`BOUNDARY_ALIASES`):
communities ``code`` (社区代码, 社区编码, 村（居）代码, 区划代码, 行政区划代码, 统计代码), ``name``
(社区名称, 村（居）名称, 名称), ``street_name`` (街道名称, 乡镇街道, 乡镇名称, 街道, 乡镇),
``district_name`` (区县名称, 区县), ``city_name`` (市名称, 地级市: names a city created above);
streets ``code`` (街道代码, 街道编码, 乡镇代码, 区划代码 …) and
``name`` (街道名称, 乡镇名称, 名称); districts ``code`` (区县代码, 区划代码 …) and ``name``.
Pure: frames in, frames out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from gridmap.errors import Invalid

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "households": ("户数", "住户数", "户数量", "households", "hh"),
    "population": ("人口", "常住人口", "人口数", "population"),
    "code": ("社区代码", "社区编码", "区划代码", "行政区划代码", "code"),
    "name": ("社区名称", "名称", "name"),
    "levels": ("地上层数", "层数", "楼层数", "总层数", "楼层", "levels", "building:levels"),
    "building_name": ("楼栋名称", "楼栋名", "建筑物名称", "建筑名称", "楼栋号", "楼号"),
    "compound_name": ("小区名称", "小区名"),
    "type": ("类型", "用途", "type"),
    "staff": ("职工人数", "职工数", "员工数", "员工人数", "从业人数", "从业人员数", "在职人数", "staff", "employees"),
    "entrances": ("单元数", "单元", "梯数", "entrances"),
}
"""Canonical column → the source column names that stand for it (the table above)."""
RANKED_COLUMNS = frozenset({"building_name", "compound_name", "levels"})
"""Canonical columns where a file with several of their source columns has the first in the
table's order taken, not refused as ambiguous: labels (a building's 楼栋号 "3" and its 楼栋名称
"锦绣花园3栋" side by side, as district files often do) and levels (地上层数 beside 总层数: they only
feed an estimate of households where none is given). A count (households ...) never is, since
taking the wrong one would change the plan."""

_DIVISION_CODES = ("区划代码", "行政区划代码", "统计代码", "统计用区划代码", "code")
BOUNDARY_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "community": {"code": ("社区代码", "社区编码", "村（居）代码", "村居代码", *_DIVISION_CODES),
                  "name": ("社区名称", "村（居）名称", "村居名称", "名称", "name"),
                  "street_name": ("街道名称", "乡镇街道", "乡镇名称", "街道", "乡镇", "street_name", "street"),
                  "district_name": ("区县名称", "区县", "district_name", "district"),
                  "city_name": ("市名称", "地级市", "城市名称", "city_name", "city")},
    "street": {"code": ("街道代码", "街道编码", "乡镇代码", "乡镇街道代码", *_DIVISION_CODES),
               "name": ("街道名称", "乡镇名称", "乡镇街道", "名称", "name")},
    "district": {"code": ("区县代码", "区县编码", *_DIVISION_CODES), "name": ("区县名称", "名称", "name")},
}
"""The boundary files' tables, per level (see the module docstring)."""

MAX_COLUMNS_SHOWN = 40


def _key(name: object) -> str:
    return str(name).strip().casefold()


def column_for(columns, canonical: str) -> str | None:
    """The column of ``columns`` that stands for ``canonical`` by the table's rule (its own name
    first, then an alias; case and surrounding whitespace ignored), None when there is none: for
    a reader that takes a frame whose fields may not have been named by :func:`map_fields`."""
    keys = [_key(canonical)] + [_key(a) for a in FIELD_ALIASES.get(canonical, ())]
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(_key(column), column)
    return next((by_key[k] for k in keys if k in by_key), None)


@dataclass
class FieldMapping:
    """What :func:`map_fields` did: ``renamed`` source → canonical (only real renames, in the
    file's column order), and ``set_aside`` columns moved out of the way of a picked column."""

    renamed: dict[str, str] = field(default_factory=dict)
    set_aside: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """``户数 → households`` for every rename (and set-aside column)."""
        return [f"{source} → {target}" for source, target in {**self.set_aside, **self.renamed}.items()]

    def source_of(self, canonical: str) -> str:
        """The name the file gave the column now called ``canonical`` (itself when not renamed)."""
        return next((s for s, t in self.renamed.items() if t == canonical), canonical)


def parse_overrides(text: str | dict[str, str] | None) -> dict[str, str]:
    """``"households=户数,name=楼名"`` → ``{"households": "户数", "name": "楼名"}`` (a dict passes
    through). Refused (:class:`Invalid`) when a pair is not ``NAME=COLUMN`` or a name repeats."""
    if text is None:
        return {}
    if isinstance(text, dict):
        pairs = {str(k).strip(): str(v).strip() for k, v in text.items()}
    else:
        pairs = {}
        for item in (part for part in str(text).split(",") if part.strip()):
            name, sep, column = item.partition("=")
            name, column = name.strip(), column.strip()
            if not sep or not name or not column:
                raise Invalid(f"--fields {text!r}: write canonical=COLUMN pairs separated by commas, "
                              "e.g. households=户数,name=楼栋号",
                              f"--fields {text!r}：请写成“规范字段=源字段”并以逗号分隔，例如 households=户数,name=楼栋号")
            if name in pairs:
                raise Invalid(f"--fields names {name!r} twice", f"--fields 中 {name!r} 出现了两次")
            pairs[name] = column
    for name, column in pairs.items():
        if not name or not column:
            raise Invalid(f"--fields: empty name in {name!r}={column!r}", f"--fields：{name!r}={column!r} 中有空名称")
    return pairs


def _columns_text(columns: list[str], sep: str) -> str:
    shown = [str(c) for c in columns[:MAX_COLUMNS_SHOWN]]
    more = len(columns) - len(shown)
    return sep.join(shown) + (f" (+{more})" if more > 0 else "")


def resolve(columns: list[str], overrides: dict[str, str] | None = None,
            table: dict[str, tuple[str, ...]] | None = None) -> FieldMapping:
    """Which source column becomes which canonical one, for a file with ``columns`` (see the
    module docstring for the rules); raises :class:`Invalid` for ambiguities and overrides that
    name a missing column."""
    table = FIELD_ALIASES if table is None else table
    overrides = dict(overrides or {})
    columns = [str(c) for c in columns]
    by_key: dict[str, list[str]] = {}
    for column in columns:
        by_key.setdefault(_key(column), []).append(column)
    mapping = FieldMapping()
    chosen: dict[str, str] = {}  # canonical → source column
    for target, source in overrides.items():
        if source in columns:
            found = source
        else:
            candidates = by_key.get(_key(source), [])
            if len(candidates) != 1:
                listed_en, listed_zh = _columns_text(columns, ", "), _columns_text(columns, "、")
                raise Invalid(f"--fields {target}={source}: the file has no column {source!r} "
                              f"(its columns: {listed_en})",
                              f"--fields {target}={source}：文件中没有字段 {source!r}（文件的字段：{listed_zh}）")
            found = candidates[0]
        if found in chosen.values():
            other = next(t for t, s in chosen.items() if s == found)
            raise Invalid(f"--fields gives column {found!r} to both {other} and {target}",
                          f"--fields 把字段 {found!r} 同时指定给了 {other} 和 {target}")
        chosen[target] = found
    taken = set(chosen.values())
    for target, aliases in table.items():
        if target in chosen:
            continue
        keys = {_key(a) for a in (target, *aliases)}
        claims = [c for c in columns if _key(c) in keys and c not in taken]
        if len(claims) > 1 and target in RANKED_COLUMNS:
            rank = (target, *aliases)
            claims.sort(key=lambda c: next(i for i, a in enumerate(rank) if _key(a) == _key(c)))
        elif len(claims) > 1:
            pairs = ", ".join(f"{target}={c}" for c in claims)
            raise Invalid(f"columns {', '.join(repr(c) for c in claims)} could each be {target}: choose one with "
                          f"--fields (e.g. --fields {target}={claims[0]}; options: {pairs})",
                          f"字段 {'、'.join(repr(c) for c in claims)} 都可以作为 {target}：请用 --fields 指定其一"
                          f"（例如 --fields {target}={claims[0]}）")
        if claims:
            chosen[target] = claims[0]
            taken.add(claims[0])
    for target, source in chosen.items():
        if source != target:
            mapping.renamed[source] = target
    # a column literally named like a canonical one that another column now takes is set aside
    targets = set(mapping.renamed.values())
    for column in columns:
        if column in targets and column not in mapping.renamed:
            aside = f"{column}_unused"
            while aside in columns:
                aside += "_"
            mapping.set_aside[column] = aside
    return mapping


def map_fields(frame: pd.DataFrame, overrides: dict[str, str] | str | None = None,
               table: dict[str, tuple[str, ...]] | None = None) -> tuple[pd.DataFrame, FieldMapping]:
    """``frame`` with its columns renamed to the canonical names (see the module docstring), and
    what was renamed. The geometry column is never renamed.

    Example
    -------
    >>> frame, mapping = map_fields(buildings, "households=住户总数")  # doctest: +SKIP
    >>> mapping.lines()  # doctest: +SKIP
    ['住户总数 → households', '楼栋号 → building_name']
    """
    geometry = getattr(frame, "_geometry_column_name", None)
    columns = [c for c in frame.columns if c != geometry]
    mapping = resolve(columns, parse_overrides(overrides), table)
    if not mapping.renamed and not mapping.set_aside:
        return frame, mapping
    return frame.rename(columns={**mapping.set_aside, **mapping.renamed}), mapping


__all__ = ["column_for", "FIELD_ALIASES", "BOUNDARY_ALIASES", "FieldMapping", "parse_overrides", "resolve", "map_fields"]
