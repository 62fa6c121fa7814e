"""The households register (住户登记) as pure logic: the rows of the sheet a community office keeps,
where each row's building is, the focus tags, and how personal data is shown masked.

A row is one resident: name, ID number (公民身份号码), phone, relation to the head of household,
focus tags (独居老人, 留守儿童 …: the profile's ``[households] focus_tags``), and where they live:
the building by 小区 + 楼栋号, or by an address (``锦绣花园3栋2单元301``), then 单元 and 房号. A
household is the residents of one room (or of one 户号 when the sheet has one).

Buildings are matched by keys both sides share after :func:`normalise` (full-width to half-width,
spaces dropped, ``3号楼``/``3幢``/``3座`` read as ``3栋``): ``小区|楼栋``, the concatenation
``小区楼栋`` (what an address starts with) and a building's own address. A row without a 小区 is
matched by ``|楼栋``: a building outside any compound, or the territory's one building of that
name. A row matching no building, or several, is a problem (nothing is guessed).

Nothing here touches the database, the web or a key: the caller encrypts (:mod:`gridmap.vault`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import pandas as pd

from gridmap.errors import Invalid
from gridmap.sheets import SheetProblems, header_key, sheet_records

DEFAULT_FOCUS_TAGS = ("独居老人", "空巢老人", "留守儿童", "残疾人", "低保户", "特困人员", "重点关注", "退役军人", "孕产妇")
FOCUS_TAG_EN = {
    "独居老人": "elderly living alone", "空巢老人": "empty-nest elderly", "留守儿童": "left-behind child",
    "残疾人": "person with a disability", "低保户": "minimum-living-allowance household",
    "特困人员": "person in extreme poverty", "重点关注": "special attention", "退役军人": "veteran",
    "孕产妇": "pregnant or postpartum woman",
}
"""English names of the shipped tags (a city's own tags are shown by their Chinese name)."""


@dataclass(frozen=True)
class RegisterRules:
    """What a city keeps in its register: the focus tags a resident may carry (profile
    ``[households] focus_tags``; order is the order reports show them in)."""

    focus_tags: tuple[str, ...] = DEFAULT_FOCUS_TAGS

    def __post_init__(self) -> None:
        if not self.focus_tags or any(not t.strip() or len(t) > 20 for t in self.focus_tags):
            raise ValueError("focus tags must be 1 to 20 characters, at least one")
        if len(set(self.focus_tags)) != len(self.focus_tags):
            raise ValueError("a focus tag is listed twice")

    def tag_of(self, text: str) -> str | None:
        """The configured tag a cell's word names (its Chinese name, or the English of a shipped tag)."""
        word = text.strip()
        for tag in self.focus_tags:
            if word == tag or word.lower() == FOCUS_TAG_EN.get(tag, "\0"):
                return tag
        return None

    def names(self) -> list[dict[str, str]]:
        return [{"tag": t, "tag_zh": t, "tag_en": FOCUS_TAG_EN.get(t, t)} for t in self.focus_tags]


SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "居民姓名", "人员姓名", "name"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "证件号码", "id_number"),
    "phone": ("联系电话", "电话", "手机", "手机号", "phone"),
    "relation": ("与户主关系", "关系", "relation"),
    "tags": ("标签", "关注类型", "人员类别", "重点人群", "特殊人群", "tags"),
    "compound_name": ("小区", "小区名称", "compound"),
    "building_name": ("楼栋", "楼栋号", "楼号", "楼栋名称", "building"),
    "address": ("地址", "住址", "现住址", "门牌地址", "详细地址", "address"),
    "stairwell": ("单元", "单元号", "stairwell"),
    "room": ("房号", "房间号", "室号", "门牌号", "room"),
    "household_no": ("户号", "户编号", "household_no"),
}
"""What each column of a register sheet may be called (Chinese first; case and spaces ignored)."""
LENGTHS = {"name": 100, "id_number": 18, "phone": 40, "relation": 20, "compound_name": 100, "building_name": 100,
           "address": 200, "stairwell": 20, "room": 40, "household_no": 40}
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
TAG_SPLIT = re.compile(r"[、,，;；/\s]+")
BUILDING_SUFFIX = re.compile(r"(\d+)(?:号楼|号栋|栋|幢|座|号)$")
ADDRESS_TAIL = re.compile(r"^(?P<building>.*?\d+栋)(?:(?P<stairwell>\d+)单元)?(?:(?P<room>\d+)(?:室|号)?)?$")


class RegisterSheetError(SheetProblems):
    """A register sheet with rows that cannot be taken: every problem listed (``problems``), nothing stored."""


# -- text ------------------------------------------------------------------------------------------
def normalise(text: object) -> str:
    """A name as both sides can compare it: NFKC (full-width digits and letters to half-width),
    no spaces, lower case, a building's number suffix read as 栋 (3号楼, 3幢, 3座 → 3栋)."""
    value = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).lower()
    value = re.sub(r"(\d+)(?:号楼|号栋|幢|座)", r"\1栋", value)
    return value


def _building(name: object) -> str:
    """A 楼栋号 as keys hold it: ``3号``/``3号楼``/``3幢`` and a bare ``3`` all read as ``3栋``."""
    b = normalise(name)
    return b + "栋" if b.isdigit() else BUILDING_SUFFIX.sub(r"\1栋", b)


def building_keys(compound: object, building: object, address: object = None) -> list[str]:
    """The keys a building answers to (see the module docstring); empty parts give none."""
    c, b, a = normalise(compound), _building(building), normalise(address)
    keys = []
    if b:
        keys += [f"{c}|{b}", f"{c}{b}", f"|{b}"]
    if b and c and b.startswith(c) and len(b) > len(c):  # a 楼栋名称 naming its compound: 锦绣花园3栋 is 3栋 there
        keys.append(f"{c}|{b[len(c):]}")
    if a:
        keys.append(a)
    return keys


def row_keys(compound: str | None, building: str | None, address: str | None) -> tuple[list[str], str | None, str | None]:
    """The keys to look a row's building up by, best first, and the 单元 and 房号 its address
    carries (``锦绣花园3栋2单元301`` → building ``锦绣花园3栋``, 单元 2, 房号 301)."""
    stairwell = room = None
    if building:
        b, c = _building(building), normalise(compound)
        # no compound: ``|b``, a building outside compounds or the one building of that name
        return ([f"{c}|{b}", f"{c}{b}"] if c else [f"|{b}"]), None, None
    a = normalise(address)
    keys = [a, _building(a)] if _building(a) != a else [a]
    found = ADDRESS_TAIL.match(a)
    if found and found.group("building") != a:
        keys.append(found.group("building"))
        stairwell, room = found.group("stairwell"), found.group("room")
    return keys, stairwell, room


def id_number_problem(value: str) -> tuple[str, str] | None:
    """Why a 公民身份号码 is not one (GB 11643: 17 digits and a check character; the old 15-digit
    numbers are taken as they are), or None."""
    if re.fullmatch(r"\d{15}", value):
        return None
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return ("is not an ID number (18 characters: 17 digits and a digit or X)", "不是身份证号（18 位：17 位数字加一位数字或 X）")
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS))
    if ID_CHECK[total % 11] != value[17]:
        return ("has a wrong check digit", "校验位不正确")
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return ("holds no valid birth date", "出生日期无效")
    return None


def birth_year(id_number: str | None) -> int | None:
    """The birth year an ID number holds (None without one)."""
    if not id_number:
        return None
    return int(id_number[6:10]) if len(id_number) == 18 else 1900 + int(id_number[6:8])


# -- masks -----------------------------------------------------------------------------------------
def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***: the family name only."""
    return None if not name else name[0] + "*" * (len(name) - 1)


def mask_id_number(value: str | None) -> str | None:
    """The region code and the last four: 511802********123X; anything that is not shaped like an
    ID number (a name or a phone in the wrong column) is all stars."""
    if not value:
        return None
    if not re.fullmatch(r"\d{15}|\d{17}[\dXx]", value):
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """138****5678."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 else "*" * len(digits)


# -- the sheet -------------------------------------------------------------------------------------
def sheet_rows(frame: pd.DataFrame, rules: RegisterRules) -> tuple[pd.DataFrame, list[dict]]:
    """The rows of a register sheet as ``row`` (the sheet's row number, header = 1) and the
    :data:`SHEET_COLUMNS` keys (``tags`` a list of configured tags, ``birth_year`` from the ID),
    with every problem of every row (``{"row", "en", "zh"}``); the caller adds the building
    matches' and raises them together (:func:`raise_problems`). A sheet without a name column or
    without any place column (楼栋 or 地址), or with two columns of one meaning, is refused at once."""
    try:
        records = sheet_records(frame, SHEET_COLUMNS, ("住户表", "households register"), ("name",))
    except Invalid as exc:
        raise RegisterSheetError(exc.en, exc.zh) from None
    if not {"building_name", "address"} & {header_key(SHEET_COLUMNS, c) for c in frame.columns}:
        raise RegisterSheetError(
            "the register needs a building (楼栋号) or address (地址) column; "
            f"its columns: {', '.join(map(str, frame.columns))}",
            f"住户表须有楼栋号或地址列；现有列：{'、'.join(map(str, frame.columns))}")
    rows, problems = [], []

    def problem(number: int, en: str, zh: str) -> None:
        problems.append({"row": number, "en": en, "zh": zh})

    for number, cell in records:
        row = {"row": number, **cell}
        if not row["name"]:
            problem(number, "no name", "缺少姓名")
        if not row["building_name"] and not row["address"]:
            problem(number, "no building (楼栋号) and no address (地址)", "没有楼栋号也没有地址")
        for column, limit in LENGTHS.items():
            if row[column] and len(row[column]) > limit:
                problem(number, f"{column} is longer than {limit} characters", f"{SHEET_COLUMNS[column][0]}超过 {limit} 个字符")
        if row["id_number"]:
            row["id_number"] = row["id_number"].upper()
            wrong = id_number_problem(row["id_number"])
            if wrong:
                problem(number, f"ID number {mask_id_number(row['id_number'])} {wrong[0]}",
                        f"身份证号 {mask_id_number(row['id_number'])} {wrong[1]}")
        if row["phone"] and not PHONE.match(row["phone"]):
            shown = "*" * len(row["phone"])  # whatever is there (a name in the wrong column?) is not shown
            problem(number, f"phone {shown} ({len(row['phone'])} characters) is not a phone number",
                    f"电话 {shown}（{len(row['phone'])} 个字符）不是电话号码")
        tags = []
        for word in TAG_SPLIT.split(row["tags"] or ""):
            if not word:
                continue
            tag = rules.tag_of(word)
            if tag is None:
                problem(number, f"unknown focus tag {word!r} (one of {', '.join(rules.focus_tags)})",
                        f"未知的关注标签 {word!r}（可用：{'、'.join(rules.focus_tags)}）")
            elif tag not in tags:
                tags.append(tag)
        row["tags"] = tags
        wrong_id = row["id_number"] and id_number_problem(row["id_number"])
        row["birth_year"] = None if wrong_id else birth_year(row["id_number"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=["row", *SHEET_COLUMNS, "birth_year"]).astype(object)
    out = out.where(out.notna(), None)
    for id_number, group in out.dropna(subset=["id_number"]).groupby("id_number"):
        if len(group) > 1:
            rows_named = ", ".join(str(r) for r in group["row"])
            problem(int(group["row"].iloc[1]), f"ID number {mask_id_number(str(id_number))} is on rows {rows_named}",
                    f"身份证号 {mask_id_number(str(id_number))} 重复出现在第 {rows_named} 行")
    return out, problems


def raise_problems(problems: list[dict]) -> None:
    """One error naming every bad row (the first 20 in its text, all in ``problems``), in both languages."""
    raise RegisterSheetError.of(problems, ("住户表", "households register"))


def building_ref(compound: object, building: object, address: object, feature_id: int) -> str:
    """What a building is known by in household keys: its first key (小区|楼栋, or its address),
    which a re-imported buildings layer keeps; its feature id only when it has no name at all."""
    keys = building_keys(compound, building, address)
    return keys[0] if keys else f"#{feature_id}"


def household_key(building: str, stairwell: str | None, room: str | None, household_no: str | None) -> str:
    """What one household is known by again on the next import: its 户号 when the sheet has one,
    else its building (:func:`building_ref`), 单元 and 房号."""
    if household_no:
        return f"no:{normalise(household_no)}"
    return f"b:{building}|{normalise(stairwell)}|{normalise(room)}"


__all__ = ["RegisterRules", "DEFAULT_FOCUS_TAGS", "FOCUS_TAG_EN", "SHEET_COLUMNS", "RegisterSheetError", "normalise",
           "building_keys", "row_keys", "id_number_problem", "birth_year", "mask_name", "mask_id_number", "mask_phone",
           "sheet_rows", "raise_problems", "household_key", "building_ref"]
