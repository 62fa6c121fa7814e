"""The questions an incident category asks its reporter: Open311 GeoReport v2 service attributes.

A category may ask for more than a point and a description: which state a manhole cover is in,
how many stalls block the pavement, which fire hazards were seen. Each question is a
:class:`ServiceAttribute` with a GeoReport datatype (``string``, ``number``, ``datetime``,
``text``, ``singlevaluelist``, ``multivaluelist``), whether it is required, and for the lists the
values offered (a key with Chinese and English names). The shipped questions are in
``gridmap/data/incident_category_attributes.csv``; :func:`check_answers` is the one place the
answers of a report are checked and normalised, whichever door the report came through (the
report page, ``POST /api/incidents``, Open311's ``attribute[code]`` form fields).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from gridmap.errors import Invalid

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
MAX_CHARS = {"string": 200, "text": 2000}
"""Longest answer of a free-text question, in characters."""


@dataclass(frozen=True)
class AttributeValue:
    """One choice of a list question: its key (what clients send) and its names."""

    key: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class ServiceAttribute:
    """One question of a category (a GeoReport v2 ``attribute``)."""

    code: str
    datatype: str
    required: bool
    order: int
    description_zh: str
    description_en: str
    values: tuple[AttributeValue, ...] = ()

    def georeport(self) -> dict:
        """The attribute as a GeoReport v2 service definition lists it (names in both languages)."""
        return {"variable": True, "code": self.code, "datatype": self.datatype, "required": self.required,
                "datatype_description": _datatype_description(self), "order": self.order,
                "description": f"{self.description_zh} {self.description_en}",
                "values": [{"key": v.key, "name": f"{v.name_zh} {v.name_en}"} for v in self.values]}

    def as_dict(self) -> dict:
        """For the JSON API and the database: every field, values as key/name_zh/name_en."""
        return {"code": self.code, "datatype": self.datatype, "required": self.required, "order": self.order,
                "description_zh": self.description_zh, "description_en": self.description_en,
                "values": [{"key": v.key, "name_zh": v.name_zh, "name_en": v.name_en} for v in self.values]}

    @classmethod
    def from_dict(cls, data: dict) -> ServiceAttribute:
        return cls(code=str(data["code"]), datatype=str(data["datatype"]), required=bool(data["required"]),
                   order=int(data["order"]), description_zh=str(data["description_zh"]),
                   description_en=str(data["description_en"]),
                   values=tuple(AttributeValue(str(v["key"]), str(v["name_zh"]), str(v["name_en"]))
                                for v in data.get("values", ())))


def _datatype_description(attribute: ServiceAttribute) -> str | None:
    if attribute.datatype == "number":
        return "a number 一个数"
    if attribute.datatype == "datetime":
        return "ISO 8601, e.g. 2026-12-03T09:30:00+08:00"
    if attribute.datatype in MAX_CHARS:
        return f"at most {MAX_CHARS[attribute.datatype]} characters 不超过 {MAX_CHARS[attribute.datatype]} 字"
    return None


def parse_values(text: str) -> tuple[AttributeValue, ...]:
    """``key=中文/English;key2=…`` (the CSV's ``values`` column) as the choices of a list question."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, _, names = part.partition("=")
        zh, _, en = names.partition("/")
        if not key.strip() or not zh.strip():
            raise ValueError(f"attribute value {part!r} is not key=中文/English")
        out.append(AttributeValue(key.strip(), zh.strip(), (en or zh).strip()))
    return tuple(out)


def read_attribute_table(text: str) -> dict[str, tuple[ServiceAttribute, ...]]:
    """The questions of each category from the CSV text (``#`` lines are comments); a row with an
    unknown datatype, or a list question without values, is a mistake in the table: ValueError."""
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    found: dict[str, list[ServiceAttribute]] = {}
    for row in rows:
        datatype = row["datatype"].strip()
        if datatype not in DATATYPES:
            raise ValueError(f"attribute {row['code']!r} of {row['category_code']!r}: datatype {datatype!r} is not "
                             f"one of {', '.join(DATATYPES)}")
        values = parse_values(row.get("values") or "")
        if datatype.endswith("valuelist") != bool(values):
            raise ValueError(f"attribute {row['code']!r} of {row['category_code']!r}: list questions need values, "
                             "others have none")
        found.setdefault(row["category_code"].strip(), []).append(ServiceAttribute(
            code=row["code"].strip(), datatype=datatype, required=row["required"].strip().lower() == "true",
            order=int(row["order"]), description_zh=row["description_zh"].strip(),
            description_en=row["description_en"].strip(), values=values))
    return {code: tuple(sorted(attrs, key=lambda a: a.order)) for code, attrs in found.items()}


def default_attributes() -> dict[str, tuple[ServiceAttribute, ...]]:
    """The questions shipped with gridmap (``gridmap/data/incident_category_attributes.csv``)."""
    text = resources.files("gridmap").joinpath("data/incident_category_attributes.csv").read_text(encoding="utf-8")
    return read_attribute_table(text)


def check_answers(category_code: str, attributes: tuple[ServiceAttribute, ...], answers: dict) -> dict:
    """The answers of a report, checked against its category's questions and normalised (numbers
    as numbers, a multi-value answer as a list, text trimmed). Unknown questions, missing required
    ones, values not offered and malformed numbers or times are refused, all at once, in both
    languages."""
    by_code = {a.code: a for a in attributes}
    problems_en: list[str] = []
    problems_zh: list[str] = []
    unknown = sorted(str(code) for code in answers if code not in by_code)
    if unknown:
        problems_en.append(f"category {category_code} asks no question {', '.join(unknown)}"
                           + (f" (it asks {', '.join(by_code)})" if by_code else ""))
        problems_zh.append(f"类别 {category_code} 没有问题 {'、'.join(unknown)}"
                           + (f"（它的问题是 {'、'.join(by_code)}）" if by_code else ""))
    out: dict = {}
    for attribute in attributes:
        raw = answers.get(attribute.code)
        given = [] if raw is None else [raw] if not isinstance(raw, (list, tuple)) else list(raw)
        given = [str(g).strip() for g in given if str(g).strip()]
        if not given:
            if attribute.required:
                problems_en.append(f"{attribute.code} ({attribute.description_en}) is required")
                problems_zh.append(f"{attribute.code}（{attribute.description_zh}）必须填写")
            continue
        value, wrong = _answer(attribute, given)
        if wrong is not None:
            problems_en.append(f"{attribute.code} ({attribute.description_en}): {wrong[0]}")
            problems_zh.append(f"{attribute.code}（{attribute.description_zh}）：{wrong[1]}")
        else:
            out[attribute.code] = value
    if problems_en:
        raise Invalid("; ".join(problems_en), "；".join(problems_zh))
    return out


def _answer(attribute: ServiceAttribute, given: list[str]) -> tuple[object, tuple[str, str] | None]:
    """One answer normalised, or the reason (en, zh) it cannot be."""
    keys = [v.key for v in attribute.values]
    if attribute.datatype == "multivaluelist":
        bad = [g for g in given if g not in keys]
        if bad:
            return None, (f"{', '.join(bad)} not among {', '.join(keys)}", f"{'、'.join(bad)} 不在可选值 {'、'.join(keys)} 中")
        return list(dict.fromkeys(given)), None
    if len(given) > 1:
        return None, ("give one value", "只能填一个值")
    value = given[0]
    if attribute.datatype == "singlevaluelist":
        if value not in keys:
            return None, (f"{value} not among {', '.join(keys)}", f"{value} 不在可选值 {'、'.join(keys)} 中")
        return value, None
    if attribute.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return None, (f"{value!r} is not a number", f"{value!r} 不是数字")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number, None
    if attribute.datatype == "datetime":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat(), None
        except ValueError:
            return None, (f"{value!r} is not an ISO 8601 time", f"{value!r} 不是 ISO 8601 时间")
    most = MAX_CHARS[attribute.datatype]
    if len(value) > most:
        return None, (f"longer than {most} characters", f"超过 {most} 个字")
    return value, None


__all__ = ["DATATYPES", "AttributeValue", "ServiceAttribute", "read_attribute_table", "default_attributes",
           "check_answers", "parse_values"]
