"""A city's rules in one object: the profile.

Cities set their own rules (docs/domain.md, "Bands" and "Codes"): the household band of a
comprehensive grid and of a micro-grid, the grid-code layout, which road classes are block
borders and which are major, which sites get dedicated grids and from what size, the compound
size limit, the sliver area, the household estimate, the merge tolerances, the staffing limits,
the register's focus tags, the lists' categories of need, the emergency settings. A
:class:`Profile` holds all of them, composed of the rule objects the algorithms read
(:class:`RoadRules`, :class:`UnitRules`, :class:`PartitionRules`, :class:`MergeRules`,
:class:`~gridmap.staffing.StaffRules`, :class:`~gridmap.register.RegisterRules`,
:class:`~gridmap.lists.ListRules`, :class:`~gridmap.emergency.EmergencyRules`), whose defaults
are the only
defaults: the profile adds none of its own, and nothing downstream re-defaults a rule.

Profiles are written in TOML; every key is optional and overrides the profile named by ``base``
(``default`` when absent)::

    name = "yucheng"
    title_zh = "雨城区网格规则"
    base = "db11-2157"
    micro_band = [50, 80]

    [partition]
    min_households = 300
    max_households = 500
    code_scheme = "beijing-15"     # or "cjt-20", or a table with the scheme's fields

    [roads]
    class_column = "highway"
    major_classes = ["primary", "secondary"]

    [units]
    compound_max_households = 500
    min_unit_area_m2 = 400             # slivers: no unit is smaller (an island excepted)
    share_land_along_walls = true      # a block's land nearer a compound's wall than its own houses joins the compound
    site_types = ["学校", "医院", "公园"]  # sites kept whole as units, with their name and type
    dedicated_site_types = ["学校", "医院"]  # which of them get a dedicated grid (专属网格) ...
    dedicated_min_area_m2 = 5000       # ... from this area
    dedicated_min_staff = 300          # ... or this staff (职工人数, when the sites layer has it)

    [units.dedicated_min_area_by_type]
    "医院" = 3000

    [units.household_rule]
    dwelling_m2 = 90

    [staff]
    max_grids_per_worker = 1           # 一格一员: a full-time worker over more grids is flagged
    max_households_per_worker = 500

    [households]
    focus_tags = ["独居老人", "留守儿童", "残疾人", "低保户", "重点关注"]  # the register's tags (关注标签)

    [lists]
    need_categories = ["养老服务", "助餐", "托育", "就业", "其他"]  # the needs list's categories
    match_within_m = 1500              # resources offered for a need: this near, or in its community

    [emergency]
    kinds = ["防汛", "防火", "防疫", "防地震", "保安全"]  # the kinds of emergency (平战结合)
    checkin_minutes = 30               # grid workers check in this long after the switch ...
    street_after_minutes = 15          # ... a missed check-in goes to the community, then the street
    whistle_ack_minutes = 15           # departments acknowledge a whistle (吹哨) in this time ...
    whistle_arrive_minutes = 60        # ... and report arrival (报到) in this
    behind_schedule_margin = 0.1       # a campaign's grid this far behind an even pace is flagged

A plan stores the profile it was made with (:meth:`Profile.to_dict`), so its report and its
checks measure against the rules it was made under, whatever the territory's profile is today.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from gridmap.errors import Invalid
from gridmap.geo.codes import BEIJING_15, CJT_20, SCHEMES, CodeScheme
from gridmap.geo.merge import MergeRules
from gridmap.geo.partition import PartitionRules, with_band
from gridmap.geo.roads import RoadRules
from gridmap.geo.units import UnitRules
from gridmap.emergency import EmergencyRules
from gridmap.lists import ListRules
from gridmap.register import RegisterRules
from gridmap.staffing import StaffRules


class ProfileError(Invalid):
    """A profile that cannot be read: an unknown key, a value of the wrong type, a band that is not one."""


@dataclass(frozen=True)
class Profile:
    """Every rule a city sets; see the module docstring."""

    name: str = "default"
    title_zh: str = "默认规则"
    title_en: str = "default rules"
    partition: PartitionRules = field(default_factory=PartitionRules)
    micro_band: tuple[int, int] = (50, 80)
    roads: RoadRules = field(default_factory=RoadRules)
    units: UnitRules = field(default_factory=UnitRules)
    merge: MergeRules = field(default_factory=MergeRules)
    staff: StaffRules = field(default_factory=StaffRules)
    households: RegisterRules = field(default_factory=RegisterRules)
    lists: ListRules = field(default_factory=ListRules)
    emergency: EmergencyRules = field(default_factory=EmergencyRules)

    def __post_init__(self) -> None:
        self.with_band()  # raises for a band that is not one
        lo, hi = self.micro_band
        if not 0 < lo <= hi:
            raise ProfileError(f"the micro-grid band {lo}–{hi} is not a band",
                               f"微网格户数区间 {lo}–{hi} 无效：下限须为正数且不大于上限")

    @property
    def band(self) -> tuple[int, int]:
        """The household band of a comprehensive grid."""
        return self.partition.min_households, self.partition.max_households

    def with_band(self, min_households: int | None = None, max_households: int | None = None) -> "Profile":
        """This profile with the band overridden where a bound is given (``--min``/``--max``)."""
        try:
            rules = with_band(self.partition, min_households, max_households)
        except ValueError as exc:
            lo = self.band[0] if min_households is None else min_households
            hi = self.band[1] if max_households is None else max_households
            raise ProfileError(str(exc), f"户数区间 {lo}–{hi} 无效：下限须为正数且不大于上限") from None
        return self if rules is self.partition else dataclasses.replace(self, partition=rules)

    def micro_rules(self) -> PartitionRules:
        """The partition rules one level down: the same rules with the micro-grid band."""
        return with_band(self.partition, *self.micro_band)

    def describe(self) -> dict[str, Any]:
        """What a report shows of the profile: its name, titles, bands and code layout."""
        return {"name": self.name, "title_zh": self.title_zh, "title_en": self.title_en,
                "band": list(self.band), "micro_band": list(self.micro_band),
                "code_scheme": self.partition.code_scheme.name}

    # -- reading and writing ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The whole profile as plain JSON/TOML values (a preset code scheme by its name)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "profile") -> "Profile":
        """A profile from :meth:`to_dict`'s shape; keys absent keep the ``base`` profile's values."""
        data = dict(data)
        # a profile's own titles: one given stands for both, else its name (never the base's "default rules")
        for title in ("title_en", "title_zh", "name"):
            if title in data and not data[title]:
                del data[title]  # a blank title says nothing
        for title, other in (("title_en", "title_zh"), ("title_zh", "title_en")):
            stand_in = data.get(other) or data.get("name")
            if not data.get(title) and stand_in:
                data[title] = stand_in
        base_name = data.pop("base", "default")
        if base_name not in PRESETS:
            raise ProfileError(f"{source}: unknown base profile {base_name!r} (presets: {', '.join(PRESETS)})",
                               f"{source}：没有名为 {base_name!r} 的预设规则（可用：{'、'.join(PRESETS)}）")
        return _merged(PRESETS[base_name], _moved_keys(data, source), source, "")

    def to_toml(self) -> str:
        """The profile as a TOML document (what ``gridmap profile show --toml`` prints)."""
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: str = "profile") -> "Profile":
        """A profile from a TOML document (see the module docstring)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{source} is not valid TOML: {exc}", f"{source} 不是有效的 TOML：{exc}") from None
        return cls.from_dict(data, source=source)


PRESETS: dict[str, Profile] = {
    "default": Profile(),
    "db11-2157": Profile(name="db11-2157", title_zh="北京 DB11/T 2157-2023（15 位网格编码）",
                         title_en="Beijing DB11/T 2157-2023 (15-digit grid codes)",
                         partition=PartitionRules(code_scheme=BEIJING_15)),
    "cjt-349": Profile(name="cjt-349", title_zh="CJ/T 349-2010 数字化社区管理（20 位网格编码）",
                       title_en="CJ/T 349-2010 digital community management (20-digit grid codes)",
                       partition=PartitionRules(code_scheme=CJT_20)),
}
"""The profiles gridmap ships: ``default`` (300–500 households, 50–80 per micro-grid, the
15-digit code) and the two published code layouts."""


def load(spec: str | Path | None) -> Profile:
    """A preset by name, or a TOML file by path; ``None`` is the default profile."""
    if spec is None:
        return PRESETS["default"]
    if str(spec) in PRESETS:
        return PRESETS[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise ProfileError(f"no profile {str(spec)!r}: neither a preset ({', '.join(PRESETS)}) nor a TOML file",
                           f"没有规则 {str(spec)!r}：既不是预设（{'、'.join(PRESETS)}），也不是 TOML 文件")
    return Profile.from_toml(path.read_text(encoding="utf-8"), source=path.name)


# -- the generic reader and writer ---------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """``value`` as TOML-able data: dataclasses as tables, tuples as lists, None left out."""
    if isinstance(value, CodeScheme) and SCHEMES.get(value.name) == value:
        return value.name
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _merged(base: Any, data: Any, source: str, where: str) -> Any:
    """``base`` (a rule object) with the keys of ``data`` replaced, each checked against the type
    of the value it replaces; errors name the key (``partition.min_households``)."""
    if not isinstance(data, dict):
        raise _wrong(source, where, "a table", data)
    known = {f.name for f in dataclasses.fields(base)}
    changes = {}
    for key, value in data.items():
        path = f"{where}{key}"
        if key not in known:
            raise ProfileError(f"{source}: unknown key {path!r} (known here: {', '.join(sorted(known))})",
                               f"{source}：未知的键 {path!r}（此处可用：{'、'.join(sorted(known))}）")
        changes[key] = _checked(getattr(base, key), value, source, path, _annotation(base, key))
    try:
        return dataclasses.replace(base, **changes)
    except ProfileError:
        raise
    except ValueError as exc:
        raise ProfileError(f"{source}: {exc}", f"{source}：取值无效（{exc}）") from None


LEGACY_KEYS = {("partition", "dedicated_site_types"): ("units", "dedicated_site_types"),
               ("partition", "dedicated_min_area_m2"): ("units", "dedicated_min_area_m2")}
"""Keys that moved: which sites get a dedicated grid is decided when units are built (the site
policy of :class:`UnitRules`, so changing it makes units stale), no longer by the partition.
Profiles written before (files, and every plan's stored profile) are read with them moved."""


def _moved_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with the :data:`LEGACY_KEYS` moved to where they live now (and, as such a profile
    knew no per-type thresholds, ``units.dedicated_min_area_by_type`` empty unless given, so it
    keeps its meaning); a key given in both places is refused."""
    data = dict(data)
    old_policy = any(isinstance(data.get(section), dict) and key in data[section] for section, key in LEGACY_KEYS)
    for (old_section, key), (new_section, new_key) in LEGACY_KEYS.items():
        old, new = data.get(old_section), data.get(new_section, {})
        if not isinstance(old, dict) or key not in old or not isinstance(new, dict):
            continue  # nothing to move (or a section of the wrong type, which the reader refuses)
        if new_key in new:
            raise ProfileError(f"{source}: {old_section}.{key} and {new_section}.{new_key} are the same rule; "
                               f"give it once, as {new_section}.{new_key}",
                               f"{source}：{old_section}.{key} 与 {new_section}.{new_key} 是同一条规则，"
                               f"请只写一次（{new_section}.{new_key}）")
        data[new_section] = {**new, new_key: old[key]}
        data[old_section] = {k: v for k, v in old.items() if k != key}
    if old_policy and isinstance(data.get("units"), dict):
        data["units"] = {"dedicated_min_area_by_type": {}, **data["units"]}
    return data


def _annotation(base: Any, key: str) -> str:
    return str(next(f.type for f in dataclasses.fields(base) if f.name == key))


def _checked(current: Any, value: Any, source: str, path: str, annotation: str) -> Any:
    """``value`` converted to the type of ``current`` (the value it replaces), or a ProfileError."""
    if isinstance(current, CodeScheme):
        if isinstance(value, str):
            if value not in SCHEMES:
                raise ProfileError(f"{source}: unknown code scheme {value!r} at {path!r} (known: {', '.join(SCHEMES)})",
                                   f"{source}：{path!r} 的编码规则 {value!r} 未知（可用：{'、'.join(SCHEMES)}）")
            return SCHEMES[value]
        return _merged(CodeScheme(name=str(value.get("name", "custom")) if isinstance(value, dict) else "custom"),
                       value, source, path + ".")
    if dataclasses.is_dataclass(current):
        return _merged(current, value, source, path + ".")
    if current is None:  # optional numbers (a target, a threshold): TOML has no null, so absent = None
        expected = float if "float" in annotation else int
        return _number(value, expected, source, path)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise _wrong(source, path, "true or false", value)
        return value
    if isinstance(current, (int, float)):
        return _number(value, type(current), source, path)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise _wrong(source, path, "text", value)
        return value
    if isinstance(current, tuple):
        if not isinstance(value, list):
            raise _wrong(source, path, "a list", value)
        sample = current[0] if current else ""
        if len(current) == 2 and not isinstance(sample, str) and len(value) != 2:
            raise _wrong(source, path, "a pair [min, max]", value)
        return tuple(_checked(sample, v, source, f"{path}[{i}]", annotation) for i, v in enumerate(value))
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise _wrong(source, path, "a table", value)
        sample = next(iter(current.values()), 0 if annotation.endswith("int]") else 0.0)
        return {str(k): _checked(sample, v, source, f"{path}.{k}", annotation) for k, v in value.items()}
    raise _wrong(source, path, type(current).__name__, value)


def _number(value: Any, expected: type, source: str, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(source, path, "a number", value)
    if expected is int:
        if float(value) != int(value):
            raise _wrong(source, path, "a whole number", value)
        return int(value)
    return float(value)


def _wrong(source: str, path: str, expected: str, value: Any) -> ProfileError:
    zh = {"a table": "表", "true or false": "true 或 false", "a number": "数字", "a whole number": "整数",
          "text": "文本", "a list": "列表", "a pair [min, max]": "区间 [下限, 上限]"}.get(expected, expected)
    return ProfileError(f"{source}: {path!r} must be {expected}, not {value!r}",
                        f"{source}：{path!r} 应为{zh}，而不是 {value!r}")


__all__ = ["Profile", "ProfileError", "PRESETS", "load"]
