"""The three lists of a community (需求清单、资源清单、项目清单) as pure logic: what a need, a
resource and a project are, the words an office's sheet uses for them, how a need's status moves,
and how the resources that could meet a need are ranked.

* A **need** (需求) is raised by a resident or a worker: a category (the profile's
  ``[lists] need_categories``: 养老服务, 助餐, 托育 …), a description, where (a point, or the
  community), an urgency and a status: ``open`` → ``matched`` (resources found for it) →
  ``in_project`` (a project took it) → ``met``; or ``closed`` without being met (with a reason),
  or ``referred`` (it became an incident of the incident loop).
* A **resource** (资源) is what the area offers: a unit stationed there (驻区单位), a venue, a
  volunteer team, a fund; the categories of need it serves, where it is, its capacity and hours.
* A **project** (项目) matches needs to resources: owner, budget, dates, status (``planned`` →
  ``active`` → ``done``, or ``cancelled``) and the outcome.

Matching (:func:`rank_matches`): the active resources serving the need's category, those within
the distance asked or in the need's community, nearest first (a resource without a place, serving
the whole community, after those with one), larger capacity first at equal distance.

Nothing here touches the database or the web.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

from gridmap.errors import Invalid
from gridmap.sheets import sheet_records

DEFAULT_NEED_CATEGORIES = ("养老服务", "助餐", "助医", "托育", "就业", "法律援助", "矛盾调解", "环境卫生", "设施维修",
                           "文体活动", "心理关爱", "其他")
CATEGORY_EN = {"养老服务": "elderly care", "助餐": "meals", "助医": "medical help", "托育": "childcare",
               "就业": "employment", "法律援助": "legal aid", "矛盾调解": "mediation", "环境卫生": "sanitation",
               "设施维修": "repairs", "文体活动": "culture and sports", "心理关爱": "counselling", "其他": "other"}

URGENCY: dict[str, tuple[str, str]] = {"low": ("一般", "low"), "normal": ("较急", "normal"), "high": ("紧急", "high"),
                                       "urgent": ("特急", "urgent")}
NEED_STATUS: dict[str, tuple[str, str]] = {
    "open": ("待办", "open"), "matched": ("已匹配", "matched"), "in_project": ("已立项", "in a project"),
    "met": ("已解决", "met"), "closed": ("已关闭", "closed"), "referred": ("已转事件", "referred to an incident")}
NEED_MOVES: dict[str, tuple[str, ...]] = {
    "open": ("matched", "in_project", "met", "closed", "referred"), "matched": ("open", "in_project", "met", "closed", "referred"),
    "in_project": (), "met": (), "closed": ("open",), "referred": ()}
"""Where a need may go from each status: reopening a closed one is allowed; met and referred are
final; a need in a project moves only with its project (done: met; cancelled: open again)."""
RESOURCE_KINDS: dict[str, tuple[str, str]] = {"unit": ("驻区单位", "unit stationed here"), "venue": ("场地", "venue"),
                                              "volunteers": ("志愿队伍", "volunteer team"), "fund": ("资金", "fund"),
                                              "service": ("服务机构", "service provider")}
PROJECT_STATUS: dict[str, tuple[str, str]] = {"planned": ("计划中", "planned"), "active": ("实施中", "active"),
                                              "done": ("已完成", "done"), "cancelled": ("已取消", "cancelled")}
PROJECT_MOVES: dict[str, tuple[str, ...]] = {"planned": ("active", "cancelled"), "active": ("done", "cancelled"),
                                             "done": (), "cancelled": ()}


class ListError(Invalid):
    """A need, resource or project that cannot be taken as given (both languages)."""


@dataclass(frozen=True)
class ListRules:
    """The categories of need a city's lists use (profile ``[lists] need_categories``) and how far
    a resource may be from a need to be offered for it by default (metres)."""

    need_categories: tuple[str, ...] = DEFAULT_NEED_CATEGORIES
    match_within_m: float = 1500.0

    def __post_init__(self) -> None:
        if not self.need_categories or len(set(self.need_categories)) != len(self.need_categories):
            raise ValueError("need categories must be given, each once")
        if self.match_within_m <= 0:
            raise ValueError("match_within_m must be positive")

    def category_of(self, text: object) -> str | None:
        """The configured category a word names (Chinese, or the English of a shipped one)."""
        word = unicodedata.normalize("NFKC", str(text or "")).strip()
        return next((c for c in self.need_categories if word == c or word.lower() == CATEGORY_EN.get(c, "\0")), None)

    def names(self) -> list[dict[str, str]]:
        return [{"category": c, "category_zh": c, "category_en": CATEGORY_EN.get(c, c)} for c in self.need_categories]


def key_of(table: dict[str, tuple[str, str]], text: object) -> str | None:
    """The key of a table (urgency, kind, status) named by its key, Chinese or English name."""
    word = unicodedata.normalize("NFKC", str(text or "")).strip()
    return next((k for k, (zh, en) in table.items() if word in (k, zh) or word.lower() == en), None)


def check_move(table: dict[str, tuple[str, ...]], names: dict[str, tuple[str, str]], current: str, wanted: str) -> None:
    """Refuse a status change the table does not allow, naming those it does."""
    if wanted not in names:
        raise ListError(f"unknown status {wanted!r} (one of {', '.join(names)})",
                        f"未知状态 {wanted!r}（可用：{'、'.join(v[0] for v in names.values())}）")
    if wanted == current:
        raise ListError(f"the item is {current} already", f"已是“{names[current][0]}”状态")
    if wanted not in table[current]:
        allowed = table[current]
        raise ListError(f"a {current} item cannot become {wanted} (it may become: {', '.join(allowed) or 'nothing'})",
                        f"“{names[current][0]}”不能改为“{names[wanted][0]}”（可改为："
                        f"{'、'.join(names[a][0] for a in allowed) or '无'}）")


def rank_matches(need: dict, resources: pd.DataFrame, *, within_m: float) -> pd.DataFrame:
    """The resources that could meet ``need`` (``category``, ``community_id``), best first: active,
    serving its category, within ``within_m`` metres (``distance_m``; NaN: the resource or the
    need has no point) or in the need's community; nearest first, those without a distance after,
    larger capacity first at equal distance. ``resources`` has ``resource_id, categories, active,
    community_id, distance_m, capacity``."""
    if resources.empty:
        return resources.assign(reason=pd.Series(dtype=object))
    serves = resources["categories"].map(lambda c: need["category"] in (c or []))
    near = resources["distance_m"].le(within_m)
    same_community = resources["community_id"].eq(need.get("community_id")) & resources["community_id"].notna()
    found = resources[resources["active"].astype(bool) & serves & (near | same_community)].copy()
    found["reason"] = [("within" if d <= within_m else "community") if pd.notna(d) else "community"
                       for d in found["distance_m"]]
    found["_no_distance"] = found["distance_m"].isna()
    found = found.sort_values(["_no_distance", "distance_m", "capacity"], ascending=[True, True, False],
                              na_position="last", kind="stable")
    return found.drop(columns="_no_distance").reset_index(drop=True)


# -- sheets ------------------------------------------------------------------------------------------
NEED_COLUMNS: dict[str, tuple[str, ...]] = {
    "category": ("类别", "需求类别", "category"), "description": ("描述", "需求描述", "内容", "description"),
    "urgency": ("紧急程度", "urgency"), "address": ("地址", "address"), "lon": ("经度", "lon", "longitude"),
    "lat": ("纬度", "lat", "latitude"), "community_code": ("社区代码", "社区编码", "community_code"),
    "source": ("来源", "source"), "reported_by": ("提出人", "上报人", "reported_by")}
RESOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "资源名称", "单位名称", "name"), "kind": ("类型", "资源类型", "kind"),
    "categories": ("服务类别", "可服务类别", "categories"), "description": ("描述", "说明", "description"),
    "capacity": ("容量", "可服务人数", "capacity"), "hours": ("服务时间", "开放时间", "hours"),
    "contact": ("联系人", "联系方式", "联系电话", "contact"), "address": ("地址", "address"),
    "lon": ("经度", "lon", "longitude"), "lat": ("纬度", "lat", "latitude"),
    "community_code": ("社区代码", "社区编码", "community_code")}
SPLIT = re.compile(r"[、,，;；/\s]+")


def check_place(row: dict, number: int, problems: list[dict]) -> None:
    """A sheet row's place: longitude and latitude as numbers (both or neither, in range), or an
    address, or a community code; a row with none of them is a problem."""
    _coordinates(row, number, problems)
    if row.get("lon") is None and not row.get("address") and not row.get("community_code"):
        problems.append({"row": number, "en": "no place: give 经度/纬度, 地址 or 社区代码",
                         "zh": "没有位置：请填写经纬度、地址或社区代码"})


def _coordinates(row: dict, number: int, problems: list[dict]) -> None:
    lon, lat = row.get("lon"), row.get("lat")
    if (lon is None) != (lat is None):
        problems.append({"row": number, "en": "a longitude without a latitude (or the reverse)", "zh": "经度与纬度须同时填写"})
        row["lon"] = row["lat"] = None
        return
    if lon is None:
        return
    try:
        row["lon"], row["lat"] = float(lon), float(lat)
    except ValueError:
        problems.append({"row": number, "en": f"longitude/latitude {lon!r}, {lat!r} are not numbers",
                         "zh": f"经纬度 {lon!r}、{lat!r} 不是数字"})
        row["lon"] = row["lat"] = None
        return
    if not (-180 <= row["lon"] <= 180 and -90 <= row["lat"] <= 90):
        problems.append({"row": number, "en": f"longitude/latitude {lon}, {lat} are out of range",
                         "zh": f"经纬度 {lon}、{lat} 超出范围"})
        row["lon"] = row["lat"] = None


def need_rows(frame: pd.DataFrame, rules: ListRules) -> tuple[list[dict], list[dict]]:
    """The needs of a sheet (category and description required; a place by 经度/纬度, 地址 or
    社区代码) and every problem (``row, en, zh``)."""
    rows, problems = [], []
    for number, row in sheet_records(frame, NEED_COLUMNS, ("需求表", "needs sheet"), ("category", "description")):
        category = rules.category_of(row["category"])
        if category is None:
            problems.append({"row": number, "en": f"unknown category {row['category']!r} (one of "
                             f"{', '.join(rules.need_categories)})", "zh": f"未知类别 {row['category']!r}（可用："
                             f"{'、'.join(rules.need_categories)}）"})
        if not row["description"]:
            problems.append({"row": number, "en": "no description", "zh": "缺少描述"})
        urgency = key_of(URGENCY, row["urgency"]) if row["urgency"] else "normal"
        if urgency is None:
            problems.append({"row": number, "en": f"unknown urgency {row['urgency']!r}",
                             "zh": f"未知紧急程度 {row['urgency']!r}（可用：{'、'.join(v[0] for v in URGENCY.values())}）"})
        check_place(row, number, problems)
        rows.append({**row, "row": number, "category": category, "urgency": urgency})
    return rows, problems


def resource_rows(frame: pd.DataFrame, rules: ListRules) -> tuple[list[dict], list[dict]]:
    """The resources of a sheet (name, kind and the categories served required) and every problem."""
    rows, problems = [], []
    for number, row in sheet_records(frame, RESOURCE_COLUMNS, ("资源表", "resources sheet"), ("name", "kind", "categories")):
        kind = key_of(RESOURCE_KINDS, row["kind"])
        if kind is None:
            problems.append({"row": number, "en": f"unknown kind {row['kind']!r}",
                             "zh": f"未知资源类型 {row['kind']!r}（可用：{'、'.join(v[0] for v in RESOURCE_KINDS.values())}）"})
        categories = []
        for word in SPLIT.split(row["categories"] or ""):
            if word:
                category = rules.category_of(word)
                if category is None:
                    problems.append({"row": number, "en": f"unknown category {word!r}", "zh": f"未知类别 {word!r}"})
                elif category not in categories:
                    categories.append(category)
        if not SPLIT.sub("", row["categories"] or ""):
            problems.append({"row": number, "en": "no category served", "zh": "没有可服务的类别"})
        capacity = None
        if row["capacity"]:
            try:
                capacity = int(float(row["capacity"]))
                if capacity < 0:
                    raise ValueError
            except (ValueError, OverflowError):
                problems.append({"row": number, "en": f"capacity {row['capacity']!r} is not a whole number",
                                 "zh": f"容量 {row['capacity']!r} 不是非负整数"})
                capacity = None
        check_place(row, number, problems)
        rows.append({**row, "row": number, "kind": kind, "categories": categories, "capacity": capacity})
    return rows, problems


__all__ = ["ListRules", "ListError", "DEFAULT_NEED_CATEGORIES", "CATEGORY_EN", "URGENCY", "NEED_STATUS", "NEED_MOVES",
           "RESOURCE_KINDS", "PROJECT_STATUS", "PROJECT_MOVES", "key_of", "check_move", "rank_matches",
           "NEED_COLUMNS", "RESOURCE_COLUMNS", "need_rows", "resource_rows"]
