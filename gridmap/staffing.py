"""The people of the grids as pure logic: staff roles, the rows of a community office's staff
sheet, and the checks of a territory's staffing (docs/domain.md, "Grid staff").

Roles (岗位): 网格长 grid leader, 专职网格员 full-time grid worker, 兼职网格员 part-time grid
worker, 网格指导员 grid supervisor, 楼栋长 building leader, 单元长 stairwell leader, 志愿者
volunteer. A person is assigned to grids (and optionally a micro-grid of one) from a date, until a
date or open-ended.

Checks (:func:`check_staffing`), on the published plan's comprehensive grids:

* ``no_full_time_worker``: a grid without a full-time worker on the day (一格一员; an assignment
  to a grid a re-plan changed does not count);
* ``over_grids`` / ``over_households``: a full-time worker over more grids or households than the
  profile's :class:`StaffRules` allow;
* ``grid_changed``: an assignment made to a grid whose units have changed since (a re-plan), or
  to a code the published plan no longer has; the caller adds where the grid went.

Nothing here touches the database or the web.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from gridmap.errors import Invalid
from gridmap.sheets import parse_date, sheet_records
from gridmap.staff_roles import FULL_TIME, ROLES

SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "name", "人员姓名"),
    "role": ("角色", "岗位", "职务", "role"),
    "phone": ("电话", "手机", "联系电话", "手机号", "phone"),
    "staff_key": ("工号", "人员编号", "编号", "staff_key", "id"),
    "grid_code": ("网格编码", "网格编号", "网格代码", "网格", "grid_code", "grid"),
    "microgrid_code": ("微网格编码", "微网格编号", "微网格", "microgrid_code", "microgrid"),
    "compound": ("小区", "小区名称", "所在小区", "compound"),
    "building": ("楼栋", "楼栋号", "楼号", "所在楼栋", "building"),
    "valid_from": ("起始日期", "开始日期", "任职日期", "valid_from", "from"),
    "valid_to": ("结束日期", "离任日期", "valid_to", "to"),
}
"""What each column of a staff sheet may be called (Chinese headers first; case and spaces ignored)."""
REQUIRED = ("name", "role")
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
LENGTHS = {"name": 100, "staff_key": 64, "grid_code": 32, "microgrid_code": 40, "phone": 40, "compound": 100,
           "building": 100}
"""The longest each column may be (what the database holds)."""


class StaffSheetError(Invalid):
    """A staff sheet with rows that cannot be taken: every problem listed, nothing stored."""


@dataclass(frozen=True)
class StaffRules:
    """The limits of the staffing checks: a full-time worker over more grids or households than
    these is flagged (practice: one grid, one worker, 一格一员)."""

    max_grids_per_worker: int = 1
    max_households_per_worker: int = 500

    def __post_init__(self) -> None:
        if self.max_grids_per_worker < 1 or self.max_households_per_worker < 1:
            raise ValueError("staff limits must be at least 1")


def role_key(text: object) -> str | None:
    """The role key for a role's key, Chinese name or English name (None: no such role)."""
    value = str(text or "").strip()
    for key, (zh, en) in ROLES.items():
        if value in (key, zh) or value.lower() == en:
            return key
    return None


def role_names(key: str) -> dict[str, str]:
    zh, en = ROLES[key]
    return {"role": key, "role_zh": zh, "role_en": en}


SEPARATORS = re.compile(r"[、,，/;；\s]+")


def names_in(text: str | None) -> list[tuple[str, str | None]]:
    """The people a plan's free-text worker or leader field names (``张三、李四``, ``王五 13800000000``):
    (name, phone or None) each, a phone going with the name before it."""
    out: list[tuple[str, str | None]] = []
    joined = re.sub(r"(?<=\d)[ \-]+(?=\d)", "", str(text or "").strip())  # ``138 0000 0000``: one phone
    for token in SEPARATORS.split(joined):
        if not token:
            continue
        if PHONE.match(token) and out and out[-1][1] is None:
            out[-1] = (out[-1][0], token)
        elif not PHONE.match(token):
            out.append((token[:LENGTHS["name"]], None))
    return out


def sheet_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """The rows of a staff sheet (any of :data:`SHEET_COLUMNS`' headers, cells read as text) as
    ``name, role, phone, staff_key, grid_code, microgrid_code, compound, building, valid_from,
    valid_to`` (missing
    dates stay None), with ``row`` the sheet's row number (the header is row 1), and every problem
    of every row (row, English, Chinese): the caller adds its own (grid codes) and raises them
    together (:func:`raise_problems`). A sheet without a name or role column, or with two columns
    that mean the same, is refused at once."""
    try:
        # cells as typed: people are found again by their exact name, phone and 工号
        records = sheet_records(frame, SHEET_COLUMNS, ("人员表", "staff sheet"), REQUIRED, normalise=False)
    except Invalid as exc:
        raise StaffSheetError(exc.en, exc.zh) from None
    rows, problems = [], []
    for number, cell in records:
        row = {"row": number, **{k: cell.get(k) for k in SHEET_COLUMNS}}
        if not row["name"]:
            problems.append((number, "no name", "缺少姓名"))
        key = role_key(row["role"])
        if key is None:
            problems.append((number, f"unknown role {row['role']!r} (one of {', '.join(v[0] for v in ROLES.values())})",
                             f"未知角色 {row['role']!r}（可用：{'、'.join(v[0] for v in ROLES.values())}）"))
        row["role"] = key
        for column, limit in LENGTHS.items():
            if row[column] and len(row[column]) > limit:
                problems.append((number, f"{column} is longer than {limit} characters",
                                 f"{SHEET_COLUMNS[column][0]}超过 {limit} 个字符"))
        if row["phone"] and not PHONE.match(row["phone"]):
            problems.append((number, f"phone {row['phone']!r} is not a phone number", f"电话 {row['phone']!r} 不是电话号码"))
        for column, zh in (("valid_from", "起始日期"), ("valid_to", "结束日期")):
            try:
                row[column] = parse_date(row[column])
            except ValueError:
                problems.append((number, f"{column} {row[column]!r} is not a date (YYYY-MM-DD)",
                                 f"{zh} {row[column]!r} 不是日期（年-月-日）"))
                row[column] = None
        if row["valid_to"] and row["valid_from"] and row["valid_to"] < row["valid_from"]:
            problems.append((number, "valid_to is before valid_from", "结束日期早于起始日期"))
        if row["microgrid_code"] and not row["grid_code"]:
            problems.append((number, "a micro-grid without its grid", "填写了微网格但没有填写网格"))
        if row["compound"] and not row["building"]:
            problems.append((number, "a 小区 without its 楼栋: staff are assigned to a grid, micro-grid or building",
                             "填写了小区但没有填写楼栋：人员分配到网格、微网格或楼栋"))
        rows.append(row)
    out = pd.DataFrame(rows, columns=["row", *SHEET_COLUMNS]).astype(object)
    out = out.where(out.notna(), None)  # missing cells are None, never NaN
    keyed = out.dropna(subset=["staff_key"])
    for staff_key, group in keyed.groupby("staff_key"):
        names = [str(n) for n in group["name"].dropna().unique()]
        if len(names) > 1:
            problems.append((int(group["row"].iloc[1]), f"staff key {staff_key} names two people ({', '.join(names)})",
                             f"工号 {staff_key} 对应两个人（{'、'.join(names)}）"))
    # one role a person: by 工号, else by name and phone
    person = out["staff_key"].where(out["staff_key"].notna(), out["name"].astype(str) + "|" + out["phone"].astype(str))
    for who, group in out.dropna(subset=["role"]).groupby(person):
        roles = list(dict.fromkeys(group["role"]))
        if len(roles) > 1:
            shown = "、".join(ROLES[r][0] for r in roles)
            problems.append((int(group["row"].iloc[1]), f"{group['name'].iloc[0]} has two roles ({', '.join(roles)}): "
                             "a person holds one role", f"{group['name'].iloc[0]} 有两个角色（{shown}）：每人只能有一个角色"))
    return out, problems


def raise_problems(problems: list[tuple[int, str, str]]) -> None:
    """One error naming every bad row (row number, what is wrong), in both languages."""
    problems = sorted(problems)
    shown = problems[:20]
    more = len(problems) - len(shown)
    raise StaffSheetError(
        f"{len(problems)} problem(s) in the staff sheet, nothing was stored: "
        + "; ".join(f"row {n}: {en}" for n, en, _ in shown) + (f"; and {more} more" if more else ""),
        f"人员表有 {len(problems)} 处问题，未存储任何内容：" + "；".join(f"第 {n} 行：{zh}" for n, _, zh in shown)
        + (f"；另有 {more} 处" if more else ""))


def check_staffing(grids: pd.DataFrame, assignments: pd.DataFrame, incidents: pd.DataFrame,
                   rules: StaffRules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per grid and per worker, with their flags.

    ``grids``: the published plan's grids (``grid_code, kind, households, community_code``, and
    ``buildings``, ``duties`` when known);
    ``assignments``: the assignments active on the day (``staff_id, name, role, grid_code,
    grid_changed``); ``incidents``: per grid ``grid_code, open, overdue``. Returns ``(per_grid,
    per_worker)``: per comprehensive grid its staff by role and ``flags``; per person with an
    active assignment their grids, households (buildings and merge duties when known), open and
    overdue incidents in them, and ``flags``."""
    comprehensive = grids[grids["kind"] == "comprehensive"].set_index("grid_code")
    open_by_grid = incidents.set_index("grid_code")[["open", "overdue"]] if len(incidents) else \
        pd.DataFrame(columns=["open", "overdue"])
    per_grid = []
    standing = assignments[~assignments["grid_changed"].astype(bool)] if len(assignments) else assignments
    for code, grid in comprehensive.sort_index().iterrows():
        here = standing[standing["grid_code"] == code]
        staff = {key: sorted(set(here.loc[here["role"] == key, "name"])) for key in ROLES}
        flags = [] if staff[FULL_TIME] else ["no_full_time_worker"]
        per_grid.append({"grid_code": code, "community_code": grid.get("community_code"),
                         "households": int(grid["households"]), **{k: v for k, v in staff.items()},
                         "staff_count": int(here["staff_id"].nunique()), "flags": flags})
    per_worker = []
    by_code = grids.set_index("grid_code")
    households = by_code["households"]
    for staff_id, own in assignments.groupby("staff_id", sort=True):
        codes = sorted(set(own["grid_code"]))
        role = own["role"].iloc[0]
        total = int(households.reindex(codes).fillna(0).sum())
        extra = {column: int(by_code[column].reindex(codes).fillna(0).sum())
                 for column in ("buildings", "duties") if column in by_code}
        counts = open_by_grid.reindex(codes).fillna(0)
        flags = []
        if role == FULL_TIME and len(codes) > rules.max_grids_per_worker:
            flags.append("over_grids")
        if role == FULL_TIME and total > rules.max_households_per_worker:
            flags.append("over_households")
        if own["grid_changed"].any():
            flags.append("grid_changed")
        per_worker.append({"staff_id": int(staff_id), "name": own["name"].iloc[0], **role_names(role),
                           "grids": codes, "grid_count": len(codes), "households": total, **extra,
                           "open_incidents": int(counts["open"].sum()), "overdue_incidents": int(counts["overdue"].sum()),
                           "flags": flags})
    return pd.DataFrame(per_grid), pd.DataFrame(per_worker)


FLAG_TEXT = {
    "no_full_time_worker": ("no full-time grid worker (one grid, one worker)", "没有专职网格员（一格一员）"),
    "over_grids": ("a full-time worker over more grids than the profile allows", "专职网格员负责的网格数超过规则上限"),
    "over_households": ("a full-time worker over more households than the profile allows", "专职网格员负责的户数超过规则上限"),
    "grid_changed": ("assigned to a grid that has changed since (a re-plan): see where it went",
                     "所分配的网格已在重新划分中改变：请查看其去向"),
}
"""What each flag means, in English and Chinese."""


__all__ = ["ROLES", "FULL_TIME", "SHEET_COLUMNS", "names_in", "StaffRules", "StaffSheetError", "role_key", "role_names",
           "sheet_rows", "check_staffing", "raise_problems", "FLAG_TEXT"]
