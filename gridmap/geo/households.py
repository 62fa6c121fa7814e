"""Household estimates for buildings, by a documented and configurable rule.

The rule (``HouseholdRule``), applied per building:

1. A real ``households`` value in the input always wins (any non-null, non-negative number).
2. Non-residential building types (``commercial``, ``school``, ``garage`` ...) get 0.
3. Single-family types (``house``, ``detached``, ``bungalow``, ``farm``...) get
   ``single_family_households`` (default 1) per building.
4. Every other residential type (``apartments``, ``residential``, ``terrace``, ``dormitory``...)
   gets ``round(footprint m² × levels × net_share / dwelling_m2)`` with at least 1, where levels
   come from ``building:levels`` when it parses as a number, else ``default_levels[type]``.
5. ``building=yes`` (type unknown) counts as residential only where the caller says it lies in a
   residential area (``residential_mask``); otherwise 0.

Defaults (net_share 0.8, dwelling 80 m²) are typical urban figures; every number is a field of
``HouseholdRule`` so a city can set its own.

Columns: the type comes from ``building`` (OSM) or ``type`` (a district's 类型/用途, see
:mod:`gridmap.geo.fields`), whose Chinese values are read through ``CHINESE_TYPES`` (住宅 →
residential, 别墅 → house, 商业 → commercial ...); levels from ``levels`` (层数) or
``building:levels``.

**Given counts are checked, never silently replaced** (:func:`complete_households`, used by
``gridmap import`` for buildings layers, and :func:`household_problems`, used when units are
built): a count typed as text (``76户``, ``共计1,200户``) is read as its number, and an empty count
on a non-residential building (商铺, 学校 …) is 0, both counted in the summary; any other value
that is empty, NaN, negative, approximate (``约24``) or not a number is refused with the buildings
named, unless the import asks for ``estimate_missing``: then each such value is replaced by the
estimate above (an approximate count by itself; a building of unknown type counting as
residential, since it stands in a layer that counts households), marked in
``households_estimated`` and counted in the summary.
A point (an address with a household count) has no footprint, so its count can never be
estimated. A layer without any households column is estimated whole, as OSM data is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import Invalid
from gridmap.geo.crs import area_m2
from gridmap.geo.fields import FIELD_ALIASES

SINGLE_FAMILY = ("house", "detached", "semidetached_house", "bungalow", "farm", "cabin", "hut",
                 "static_caravan", "houseboat")
MULTI_FAMILY = ("apartments", "residential", "terrace", "dormitory", "flats", "block")
NON_RESIDENTIAL = (
    "commercial", "industrial", "retail", "office", "warehouse", "school", "university",
    "college", "kindergarten", "hospital", "church", "chapel", "cathedral", "mosque", "temple",
    "public", "civic", "government", "garage", "garages", "shed", "roof", "carport", "parking",
    "service", "transportation", "train_station", "hotel", "supermarket", "sports_hall",
    "stadium", "greenhouse", "barn", "stable", "construction", "ruins", "kiosk", "toilets",
    "hangar", "fire_station", "bunker", "silo", "storage_tank", "water_tower", "boathouse",
)

CHINESE_TYPES = {
    "住宅": "residential", "居住": "residential", "住宅楼": "residential", "商住": "residential",
    "商住楼": "residential", "公寓": "apartments", "宿舍": "dormitory", "别墅": "house", "平房": "house",
    "自建房": "house", "农房": "house", "民房": "house", "商业": "commercial", "商铺": "retail",
    "办公": "office", "写字楼": "office", "工业": "industrial", "厂房": "industrial", "仓库": "warehouse",
    "仓储": "warehouse", "学校": "school", "幼儿园": "kindergarten", "医院": "hospital", "车库": "garage",
    "酒店": "hotel", "宾馆": "hotel", "政府": "government", "机关": "government", "公共": "public",
    "其他": "yes", "未知": "yes",
}
"""Chinese building uses (类型/用途 values) as the OSM types the rule knows."""

TYPE_COLUMNS = ("building", "type")
LEVELS_COLUMNS = ("levels", "building:levels")


@dataclass(frozen=True)
class HouseholdRule:
    """Parameters of the household estimate; see the module docstring."""

    dwelling_m2: float = 80.0
    net_share: float = 0.8
    single_family_households: int = 1
    default_levels: dict[str, float] = field(default_factory=lambda: {
        "apartments": 4.0, "residential": 3.0, "terrace": 2.0, "dormitory": 4.0,
        "flats": 4.0, "block": 4.0, "yes": 2.0,
    })
    fallback_levels: float = 2.0
    max_levels: float = 80.0


def parse_levels(values: pd.Series) -> pd.Series:
    """Parse ``building:levels`` strings such as ``"4"``, ``"3.5"``, ``"4;5"`` (takes the max)."""
    def one(value: object) -> float:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return np.nan
        numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(value))]
        return max(numbers) if numbers else np.nan

    # a layer repeats a few dozen values over many thousand buildings: each is parsed once (by its
    # text, so that 4 and "4" and True and 1 stay apart; lists from JSON properties included)
    text = values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v))
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    first = pd.Series(np.arange(len(values))).groupby(codes).first()
    parsed = np.array([one(values.iat[first[c]]) for c in range(len(uniques))] + [np.nan], dtype=float)
    return pd.Series(parsed[codes], index=values.index, dtype=float)


def _first_present(frame: pd.DataFrame, given: str | None, candidates: tuple[str, ...]) -> str | None:
    if given is not None:
        return given
    return next((c for c in candidates if c in frame.columns), None)


def building_kinds(buildings: pd.DataFrame, type_column: str | None = None) -> pd.Series:
    """Each building's type as the rule knows it (lower case, Chinese uses read through
    :data:`CHINESE_TYPES`; ``yes`` where unknown), from ``type_column`` (default ``building``, else
    ``type``)."""
    column = _first_present(buildings, type_column, TYPE_COLUMNS)
    kind = (buildings[column].astype("string").str.strip().str.lower().fillna("yes")
            if column in buildings else pd.Series(["yes"] * len(buildings), index=buildings.index))
    return kind.replace(CHINESE_TYPES).astype("string")


def estimate_households(
    buildings: gpd.GeoDataFrame,
    rule: HouseholdRule | None = None,
    *,
    type_column: str | None = None,
    levels_column: str | None = None,
    residential_mask: np.ndarray | None = None,
) -> pd.Series:
    """Households per building (integer Series aligned with ``buildings``): the given
    ``households`` where it is a non-negative number, else the rule's estimate. The type column
    defaults to ``building``, else ``type``; the levels column to ``levels``, else
    ``building:levels``.

    Example
    -------
    >>> buildings["households"] = estimate_households(buildings)  # doctest: +SKIP
    """
    rule = rule or HouseholdRule()
    n = len(buildings)
    if n == 0:
        return pd.Series(np.zeros(0, dtype=np.int64), index=buildings.index, name="households")
    levels_column = _first_present(buildings, levels_column, LEVELS_COLUMNS)
    kind = building_kinds(buildings, type_column)
    levels = (parse_levels(buildings[levels_column]) if levels_column in buildings
              else pd.Series(np.nan, index=buildings.index))
    default = kind.map(rule.default_levels).astype(float).fillna(rule.fallback_levels)
    levels = levels.where(levels > 0, default).clip(upper=rule.max_levels)
    footprint = area_m2(buildings)
    multi = np.maximum(1.0, np.round(footprint * levels.to_numpy() * rule.net_share / rule.dwelling_m2))

    is_single = kind.isin(SINGLE_FAMILY).to_numpy()
    is_multi = kind.isin(MULTI_FAMILY).to_numpy()
    is_unknown = (kind == "yes").to_numpy()
    if residential_mask is not None:
        is_multi = is_multi | (is_unknown & np.asarray(residential_mask, dtype=bool))
    estimate = np.where(is_single, float(rule.single_family_households), np.where(is_multi, multi, 0.0))

    if "households" in buildings:
        given = parsed_households(buildings["households"])[0]  # 76户 is 76 here too
        use_given = np.isfinite(given) & (given >= 0)
        estimate = np.where(use_given, given, estimate)
    return pd.Series(np.round(estimate).astype(np.int64), index=buildings.index, name="households")


# -- given counts, checked ---------------------------------------------------------------------------
LABEL_COLUMNS = ("building_name", "name", "id", "code")
MAX_NAMED = 10


@dataclass(frozen=True)
class HouseholdProblems:
    """The rows of a buildings layer whose ``households`` cannot be used: positions and, for each,
    why (``empty``, ``NaN``, ``negative``, ``not a number``) and the value as given."""

    positions: np.ndarray
    reasons: list[str]
    values: list[object]

    def __len__(self) -> int:
        return len(self.positions)


REASONS_ZH = {"empty": "空", "NaN": "NaN（无值）", "negative": "负数", "not a number": "不是数字",
              "infinite": "无穷大", "approximate": "约数"}


COUNT_IN_TEXT = r"^(?:共计|合计|共|计)?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?\s*(?:户|户数)?$"
"""A count written as text in a district's table: ``76户``, ``共 120 户``, ``共计1,200户``, full-width
digits too (read after NFKC). The number is the office's own, so it is taken as given."""
APPROXIMATE_COUNT = r"^(?:约|大约|约计|近)\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?\s*(?:户|户数)?$"
"""An approximate count (``约24``): refused like a missing one, since a plan is only as exact as its
counts; with ``--estimate-missing`` it is the estimate used (the office's guess beats one from the
footprint) and marked as estimated."""


def _text_counts(text: pd.Series, rows: np.ndarray, pattern: str) -> np.ndarray:
    """The numbers ``pattern`` finds in ``text`` at ``rows`` (NaN elsewhere and where it finds none)."""
    out = np.full(len(text), np.nan)
    if rows.any():
        found = text[rows].str.normalize("NFKC").str.extract(pattern, expand=False).str.replace(",", "")
        out[rows] = pd.to_numeric(found, errors="coerce").astype(float).to_numpy()
    return out


def parsed_households(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The households column as numbers (NaN where unusable), per row why it is unusable (``""``
    where it is fine), which rows were read from text (:data:`COUNT_IN_TEXT`), and the number of
    each approximate count (:data:`APPROXIMATE_COUNT`; NaN elsewhere). Vectorised over the column."""
    raw = pd.Series(values).reset_index(drop=True)
    text = raw.astype("string").str.strip()
    number = pd.to_numeric(text, errors="coerce").astype(float).to_numpy(copy=True)
    worded = np.isnan(number) & text.notna().to_numpy()
    number[worded] = _text_counts(text, worded, COUNT_IN_TEXT)[worded]
    from_text = worded & ~np.isnan(number)
    approximate = _text_counts(text, worded & ~from_text, APPROXIMATE_COUNT)
    # a blank cell reads as None or NaN whatever the format: empty; the text "NaN" is said as such
    empty = raw.isna().to_numpy() | (text.fillna("") == "").to_numpy()
    nan = text.str.lower().isin(["nan", "null", "none", "n/a", "na"]).fillna(False).to_numpy(dtype=bool) & ~empty
    why = np.full(len(raw), "", dtype=object)
    why[np.isnan(number)] = "not a number"
    why[~np.isnan(approximate)] = "approximate"
    why[np.isinf(number)] = "infinite"
    why[number < 0] = "negative"
    why[nan] = "NaN"
    why[empty & ~nan] = "empty"
    number = np.where(why == "", number, np.nan)
    return number, why, from_text & (why == ""), approximate


def checked_households(buildings: pd.DataFrame, column: str = "households"
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`parsed_households` of the buildings' ``column``, with one rule more that needs the
    building's type: a non-residential building's (商铺, 学校 … :data:`NON_RESIDENTIAL`) empty
    count means none, so it is 0, not a problem; returns also which rows that made 0."""
    number, why, from_text, approximate = parsed_households(buildings[column])
    not_home = np.isin(why, ("empty", "NaN")) & building_kinds(buildings).isin(NON_RESIDENTIAL).to_numpy()
    number[not_home], why[not_home] = 0.0, ""
    return number, why, from_text, approximate, not_home


def household_problems(buildings: pd.DataFrame, column: str = "households") -> HouseholdProblems:
    """The rows whose ``column`` is empty, NaN, negative or not a number (none when the layer has
    no such column)."""
    if column not in buildings:
        return HouseholdProblems(np.zeros(0, dtype=np.int64), [], [])
    _, why, _, _, _ = checked_households(buildings, column)
    positions = np.flatnonzero(why != "")
    values = buildings[column].to_numpy(dtype=object)[positions].tolist()
    return HouseholdProblems(positions, [str(why[p]) for p in positions], values)


def _row_label(frame: pd.DataFrame, position: int, labels: dict[str, str], zh: bool) -> str:
    for column in LABEL_COLUMNS:
        if column in frame.columns:
            value = frame.iloc[position][column]
            if value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value).strip():
                shown = labels.get(column, column)
                return f"第 {position + 1} 个要素（{shown}={value}）" if zh else f"feature #{position + 1} ({shown}={value})"
    return f"第 {position + 1} 个要素" if zh else f"feature #{position + 1}"


def _value_text(value: object, reason: str, zh: bool) -> str:
    if reason == "empty":
        return "空" if zh else "empty"
    why = REASONS_ZH.get(reason, reason) if zh else reason
    return f"{value!r}（{why}）" if zh else f"{value!r} ({why})"


def named_rows(frame: pd.DataFrame, positions: np.ndarray, details: list[str] | None = None, *,
               labels: dict[str, str] | None = None, zh: bool = False) -> str:
    """Up to ten rows named by number and 楼栋号/name (``labels`` gives the file's own column
    names), each followed by its detail."""
    labels = labels or {}
    shown = []
    for k, position in enumerate(positions[:MAX_NAMED]):
        item = _row_label(frame, int(position), labels, zh)
        if details is not None:
            item += ("：" if zh else ": ") + details[k]
        shown.append(item)
    more = len(positions) - MAX_NAMED
    if zh:
        return "；".join(shown) + (f"；等共 {len(positions)} 个" if more > 0 else "")
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


@dataclass
class HouseholdReport:
    """What :func:`complete_households` found and did for a buildings layer."""

    buildings: int
    column: bool                 # the layer has a households column
    estimated: int = 0           # values estimated (all buildings when there is no column)
    estimated_all: bool = False  # no column: every building will be estimated when units are built
    from_text: int = 0           # counts read from text such as 76户 (COUNT_IN_TEXT)
    from_text_examples: list[str] = field(default_factory=list)
    not_homes: int = 0           # non-residential buildings (商铺, 学校 …) whose empty count was taken as 0
    levels: bool = True          # the layer has a levels column (层数); else each type's default levels

    def said(self) -> tuple[str, str] | None:
        """The summary line in English and Chinese (None when every count was given as a number)."""
        parts = [p for p in (self._read_from_text(), self._not_homes(), self._estimates()) if p is not None]
        if not parts:
            return None
        return "; ".join(p[0] for p in parts), "；".join(p[1] for p in parts)

    def _not_homes(self) -> tuple[str, str] | None:
        if not self.not_homes:
            return None
        return (f"{self.not_homes:,} non-residential buildings (shops, schools, offices …, by their type) with no "
                "households count counted as 0",
                f"{self.not_homes:,} 栋非住宅楼（按类型：商铺、学校、办公等）户数为空，按 0 户计")

    def _read_from_text(self) -> tuple[str, str] | None:
        if not self.from_text:
            return None
        examples = ", ".join(self.from_text_examples)
        return (f"{self.from_text:,} households counts read from text (e.g. {examples})",
                f"{self.from_text:,} 个户数从文字中读出（如 {'，'.join(self.from_text_examples)}）")

    def _estimates(self) -> tuple[str, str] | None:
        chinese = [a for a in FIELD_ALIASES["levels"] if not a.isascii()]  # the names a levels column goes by
        how_en, how_zh = (("levels and footprint", "层数和占地面积") if self.levels else
                          (f"footprint and each building type's default levels (the layer has no levels column: "
                           f"{', '.join(chinese)})", f"占地面积和各类建筑的默认层数（该图层没有层数字段：{'、'.join(chinese)}）"))
        if self.estimated_all:
            return (f"no households column: households will be estimated from {how_en} for all "
                    f"{self.buildings:,} buildings",
                    f"没有户数字段：将按{how_zh}估算全部 {self.buildings:,} 栋楼的户数")
        if self.estimated:
            return (f"households estimated from {how_en} for {self.estimated:,} of {self.buildings:,} "
                    "buildings whose value was missing or invalid (--estimate-missing; marked in households_estimated)",
                    f"{self.buildings:,} 栋楼中有 {self.estimated:,} 栋的户数缺失或无效，已按{how_zh}估算"
                    "（--estimate-missing；已在 households_estimated 字段中标记）")
        return None


def households_refusal(buildings: pd.DataFrame, problems: HouseholdProblems, *, name: str = "buildings",
                       labels: dict[str, str] | None = None, reimport: bool = False) -> Invalid:
    """The refusal of a layer with unusable households, the rows named with their values, in
    English and Chinese; the fix is ``--estimate-missing`` (on a re-import when ``reimport``)."""
    labels = labels or {}
    column = labels.get("households", "households")
    n, k = len(buildings), len(problems)
    details_en = [_value_text(v, r, False) for v, r in zip(problems.values, problems.reasons)]
    details_zh = [_value_text(v, r, True) for v, r in zip(problems.values, problems.reasons)]
    fix_en = "re-import the layer with" if reimport else "import with"
    fix_zh = "重新导入时加" if reimport else "加"
    return Invalid(
        f"{name}: households ({column}) missing or invalid in {k:,} of {n:,} buildings (correct them, or {fix_en} "
        f"--estimate-missing to estimate them from levels and footprint): "
        f"{named_rows(buildings, problems.positions, details_en, labels=labels)}",
        f"{name}：{n:,} 栋楼中有 {k:,} 栋的户数（{column}）缺失或无效（请修正，或{fix_zh} --estimate-missing "
        f"按层数和占地面积估算）：{named_rows(buildings, problems.positions, details_zh, labels=labels, zh=True)}")


def _points_refusal(name: str, frame: pd.DataFrame, positions: np.ndarray, labels: dict[str, str],
                    why_en: str, why_zh: str) -> Invalid:
    return Invalid(f"{name}: {why_en}, but {len(positions):,} buildings are points, which have no footprint to "
                   f"estimate households from: {named_rows(frame, positions, labels=labels)}; give their households",
                   f"{name}：{why_zh}，但有 {len(positions):,} 栋楼是点，没有占地面积可供估算户数："
                   f"{named_rows(frame, positions, labels=labels, zh=True)}；请填写其户数")


def complete_households(buildings: gpd.GeoDataFrame, rule: HouseholdRule | None = None, *,
                        estimate_missing: bool = False, name: str = "buildings",
                        labels: dict[str, str] | None = None) -> tuple[gpd.GeoDataFrame, HouseholdReport]:
    """Check a buildings layer's ``households`` (columns already canonical: see
    :mod:`gridmap.geo.fields`) and return it with the column as numbers, and what was done.

    * empty, NaN, negative or non-numeric values are refused (:class:`Invalid`, the rows named
      by number and 楼栋号/name in both languages), unless ``estimate_missing``: then each is
      replaced by the rule's estimate and marked ``households_estimated``;
    * without a households column the layer is returned as it is, to be estimated whole when
      units are built (and said so in the report);
    * points (addresses) can never be estimated: a point needing an estimate is refused.

    ``labels`` maps canonical columns to the file's own names, for the messages.
    """
    labels = labels or {}
    n = len(buildings)
    points = np.flatnonzero(shapely.get_dimensions(np.asarray(buildings.geometry.values, dtype=object)) == 0)
    if "households" not in buildings:
        if len(points):
            raise _points_refusal(name, buildings, points, labels, "the layer has no households column",
                                  "该图层没有户数字段")
        return buildings, HouseholdReport(n, column=False, estimated=n, estimated_all=True,
                                          levels=any(c in buildings for c in LEVELS_COLUMNS))
    number, why, from_text, approximate, not_home = checked_households(buildings)
    bad = np.flatnonzero(why != "")
    out = buildings.copy()
    if len(bad) and not estimate_missing:
        raise households_refusal(buildings, household_problems(buildings), name=name, labels=labels)
    if len(bad):
        needing = np.intersect1d(bad, points)
        if len(needing):
            raise _points_refusal(name, buildings, needing, labels, "households are missing or invalid",
                                  "户数缺失或无效")
        subset = buildings.iloc[bad].drop(columns=["households"])
        estimate = estimate_households(subset, rule, residential_mask=np.ones(len(bad), dtype=bool)).to_numpy()
        number[bad] = np.where(np.isnan(approximate[bad]), estimate, approximate[bad])  # 约24: the office's guess
    values = np.round(number).astype(np.int64) if np.all(number == np.round(number)) else number
    out["households"] = values
    if estimate_missing:
        flag = np.zeros(n, dtype=bool)
        flag[bad] = True
        out["households_estimated"] = flag
    return out, HouseholdReport(n, column=True, estimated=len(bad), from_text=int(from_text.sum()),
                                not_homes=int(not_home.sum()), levels=any(c in buildings for c in LEVELS_COLUMNS),
                                from_text_examples=[f"{str(v).strip()} → {int(x)}" for v, x in zip(
                                    buildings["households"].to_numpy(dtype=object)[from_text][:3], number[from_text][:3])])
