"""双报到 as pure logic: party members and units stationed in the area register with the community
where they live or stand (在职党员到居住地社区报到，驻区单位到所在社区报到), are counted in the
grid that holds their residence or site, and log the hours they serve.

The sheet an office keeps: ``姓名``/``单位名称`` (name), ``类型`` (党员 or 单位), ``所在党组织``/
``工作单位`` (organisation), where (``经度``/``纬度``, ``地址``: a building of the territory, or
``社区代码``), ``报到日期``. :func:`synthetic` makes a demo's registrations: members placed at
buildings in proportion to their households, units at sites. Nothing here touches the database.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from gridmap.lists import check_place
from gridmap.sheets import parse_date, sheet_records

KINDS: dict[str, tuple[str, str]] = {"party_member": ("党员", "party member"), "unit": ("单位", "unit")}
SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "单位名称", "名称", "name"), "kind": ("类型", "报到类型", "kind"),
    "organisation": ("所在党组织", "工作单位", "党组织", "organisation"), "address": ("地址", "居住地址", "address"),
    "lon": ("经度", "lon"), "lat": ("纬度", "lat"), "community_code": ("社区代码", "社区编码", "community_code"),
    "registered_on": ("报到日期", "registered_on"),
}


def kind_of(text: object) -> str | None:
    """``party_member`` or ``unit`` from the key, the Chinese name (党员, 在职党员, 单位, 驻区单位) or English."""
    word = str(text or "").strip()
    if word in ("party_member", "党员", "在职党员") or word.lower() == "party member":
        return "party_member"
    if word in ("unit", "单位", "驻区单位") or word.lower() == "unit":
        return "unit"
    return None


def sheet_rows(frame: pd.DataFrame, *, today: date) -> tuple[list[dict], list[dict]]:
    """The registrations of a sheet and every problem (``row, en, zh``)."""
    rows, problems = [], []
    for number, row in sheet_records(frame, SHEET_COLUMNS, ("报到表", "registrations sheet"), ("name", "kind")):
        kind = kind_of(row["kind"])
        if kind is None:
            problems.append({"row": number, "en": f"unknown kind {row['kind']!r} (党员 or 单位)",
                             "zh": f"未知类型 {row['kind']!r}（党员或单位）"})
        if not row["name"]:
            problems.append({"row": number, "en": "no name", "zh": "缺少姓名或单位名称"})
        try:
            day = parse_date(row["registered_on"]) or today
        except ValueError:
            problems.append({"row": number, "en": f"registered_on {row['registered_on']!r} is not a date",
                             "zh": f"报到日期 {row['registered_on']!r} 不是日期"})
            day = today
        if day > today:
            problems.append({"row": number, "en": "registered in the future", "zh": "报到日期晚于今天"})
        check_place(row, number, problems)
        rows.append({**row, "row": number, "kind": kind, "registered_on": day})
    return rows, problems


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂建华国庆志红玉文斌海燕晓云鹏飞"
BRANCHES = ("区教育局党委", "区卫健局党支部", "区税务局党支部", "区人民医院党委", "第一中学党支部", "区城管局党支部",
            "区供电公司党委", "区邮政分公司党支部", "区农商银行党支部", "区市场监管局党支部")


def synthetic(buildings: pd.DataFrame, sites: pd.DataFrame, *, members: int, units: int, seed: int,
              today: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A demo's registrations (``kind, name, organisation, lon, lat, community_id,
    registered_on``): ``members`` party members at buildings drawn in proportion to their
    households (a jitter of a few metres, so that points of one building do not coincide),
    ``units`` units at sites (or buildings when there are too few), registered over the last three
    years; and their service this year (``row``: the registration's position, ``served_on``,
    ``hours``): a few sessions of one to four hours each."""
    rng = np.random.default_rng(seed)
    weights = buildings["households"].clip(lower=1).to_numpy(dtype=float)
    at = rng.choice(len(buildings), size=members, p=weights / weights.sum())
    people = buildings.iloc[at].reset_index(drop=True)
    names = [SURNAMES[i] + GIVEN[j] + (GIVEN[k] if k % 3 else "") for i, j, k in
             zip(rng.integers(0, len(SURNAMES), members), rng.integers(0, len(GIVEN), members),
                 rng.integers(0, len(GIVEN), members))]
    frame = pd.DataFrame({"kind": "party_member", "name": names,
                          "organisation": [BRANCHES[i] for i in rng.integers(0, len(BRANCHES), members)],
                          "lon": people["lon"].to_numpy() + rng.normal(0, 2e-5, members),
                          "lat": people["lat"].to_numpy() + rng.normal(0, 2e-5, members),
                          "community_id": people["community_id"].to_numpy()})
    pool = sites if len(sites) >= units else buildings
    places = pool.iloc[rng.choice(len(pool), size=units, replace=len(pool) < units)].reset_index(drop=True)
    unit_frame = pd.DataFrame({"kind": "unit", "name": [f"驻区单位{i + 1:04d}" for i in range(units)],
                               "organisation": None, "lon": places["lon"].to_numpy(), "lat": places["lat"].to_numpy(),
                               "community_id": places["community_id"].to_numpy()})
    out = pd.concat([frame, unit_frame], ignore_index=True)
    out["registered_on"] = [today - timedelta(days=int(d)) for d in rng.integers(0, 3 * 365, len(out))]
    out = out.drop_duplicates(subset=["community_id", "kind", "name", "organisation"]).reset_index(drop=True)
    return out, synthetic_hours(list(out["registered_on"]), rng=rng, today=today)


def synthetic_hours(registered_on: list[date], *, rng: np.random.Generator, today: date) -> pd.DataFrame:
    """Demo service this year for registrations made on ``registered_on`` (``row``: the position in
    that list, ``served_on``, ``hours``): a few sessions of one to four hours each, from the 1st of
    January (or the day of registration) to ``today``."""
    sessions = rng.poisson(4, len(registered_on))
    rows = np.repeat(np.arange(len(registered_on)), sessions)
    start = date(today.year, 1, 1)
    first = [max(start, registered_on[int(r)]) for r in rows]  # not before they registered
    days = [int(rng.integers(0, (today - d).days + 1)) for d in first]
    return pd.DataFrame({"row": rows, "served_on": [d + timedelta(days=n) for d, n in zip(first, days)],
                         "hours": np.round(rng.uniform(1, 4, len(rows)) * 2) / 2})


__all__ = ["KINDS", "SHEET_COLUMNS", "kind_of", "sheet_rows", "synthetic", "synthetic_hours"]
