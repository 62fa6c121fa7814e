"""The incident loop as pure logic: the workflow state machine, who may take each step, the
working-time calendar, due times, and the category table (docs/domain.md, "The incident loop").

Nothing here touches the database or the web; the store and the API apply it.

Workflow (发现上报 → 立案 → 派遣 → 领办 → 处置 → 核查 → 结案)::

    reported ──file──▶ filed ──dispatch──▶ dispatched ──claim──▶ claimed ──handle──▶ handled
       │                 ▲                   │    ▲                │   ▲                │
       └─reject─▶ rejected   └──return (退回)──┘    └─reassign (改派)─┘   └──send_back (返工)─┘
                                                                                    │
                                                            closed ◀──close── verified ◀──verify

``reassign`` moves a dispatched or claimed case to another department (it stays dispatched);
``return`` is a department refusing a case (back to the centre, filed); ``send_back`` is a
verification that failed (back to the handler, claimed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

from gridmap.errors import Refusal, StateConflict
from gridmap.service_attributes import ServiceAttribute, default_attributes

STATES = ("reported", "filed", "rejected", "dispatched", "claimed", "handled", "verified", "closed")
FINAL_STATES = ("rejected", "closed")
OPEN_STATES = tuple(s for s in STATES if s not in FINAL_STATES)

# action -> (states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "file": (("reported",), "filed"),
    "reject": (("reported",), "rejected"),
    "dispatch": (("filed",), "dispatched"),
    "return": (("dispatched",), "filed"),
    "reassign": (("dispatched", "claimed"), "dispatched"),
    "claim": (("dispatched",), "claimed"),
    "handle": (("claimed",), "handled"),
    "send_back": (("handled",), "claimed"),
    "verify": (("handled",), "verified"),
    "close": (("verified",), "closed"),
}
# who may take each action (admin may take all): the grid centre files, dispatches, closes;
# departments claim, handle and return; grid workers verify on site.
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "file": ("admin",), "reject": ("admin",), "dispatch": ("admin",), "reassign": ("admin",),
    "close": ("admin",), "return": ("handler",), "claim": ("handler",), "handle": ("handler",),
    "verify": ("worker",), "send_back": ("worker",),
}
ACTION_NAMES = {
    "file": ("立案", "file"), "reject": ("不予立案", "reject"), "dispatch": ("派遣", "dispatch"),
    "return": ("退回", "return"), "reassign": ("改派", "reassign"), "claim": ("领办", "claim"),
    "handle": ("处置", "handle"), "send_back": ("返工", "send back"), "verify": ("核查", "verify"),
    "close": ("结案", "close"),
}
STATE_NAMES = {
    "reported": ("上报", "reported"), "filed": ("立案", "filed"), "rejected": ("不予立案", "rejected"),
    "dispatched": ("已派遣", "dispatched"), "claimed": ("已领办", "claimed"), "handled": ("已处置", "handled"),
    "verified": ("已核查", "verified"), "closed": ("已结案", "closed"),
}


class TransitionError(StateConflict, ValueError):
    """An action the workflow does not allow from the incident's current state (409, both languages)."""


def next_state(state: str, action: str) -> str:
    """The state ``action`` leads to from ``state``; :class:`TransitionError` with the reason if not allowed.

    >>> next_state("reported", "file")
    'filed'
    """
    if state not in STATES:
        raise TransitionError(f"unknown state {state!r}", f"未知的状态 {state!r}")
    if action not in TRANSITIONS:
        raise TransitionError(f"unknown action {action!r}; actions are {', '.join(TRANSITIONS)}",
                              f"未知的操作 {action!r}：可用操作为 {'、'.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    if state not in sources:
        if state in FINAL_STATES:
            raise TransitionError(f"the incident is {state}; nothing can follow",
                                  f"该事件为“{STATE_NAMES[state][0]}”，不能再办理")
        allowed = sorted(a for a, (src, _) in TRANSITIONS.items() if state in src)
        raise TransitionError(f"cannot {action} an incident that is {state}; from {state} the next steps are "
                              f"{', '.join(allowed)}",
                              f"事件处于“{STATE_NAMES[state][0]}”，不能{ACTION_NAMES[action][0]}；此时可以"
                              f"{'、'.join(ACTION_NAMES[a][0] for a in allowed)}")
    return target


def allowed_actions(state: str) -> list[str]:
    return sorted(a for a, (sources, _) in TRANSITIONS.items() if state in sources)


def open311_status(state: str) -> str:
    """GeoReport v2 knows two statuses: open and closed (a rejected report is closed too)."""
    return "closed" if state in FINAL_STATES else "open"


# -- working time --------------------------------------------------------------------------------
class CalendarNotCovered(Refusal):
    """A working-time calculation reached a year for which the calendar has no holiday data: the
    answer would be a guess (a 调休 Saturday taken for a rest day, 春节 for working days), so it is
    refused until the operator updates the data (HTTP 503: the server, not the request, lacks it)."""

    def __init__(self, year: int, source: str):
        super().__init__(
            f"the working calendar ({source}) has no public holidays for {year}, so a time limit running "
            f"into {year} cannot be computed; upgrade it (pip install -U chinesecalendar holidays) or list "
            f"{year}'s holidays and exchanged workdays in the GRIDMAP_CALENDAR file with \"years\": [{year}]",
            f"工作日历（{source}）没有 {year} 年的节假日数据，无法计算跨入 {year} 年的办理时限；请升级"
            f"（pip install -U chinesecalendar holidays），或在 GRIDMAP_CALENDAR 文件中列出 {year} 年的节假日和"
            f"调休上班日并写明 \"years\": [{year}]")
        self.year = year


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and hours in a time zone, with public holidays and the weekend days worked in
    exchange (调休) that Chinese calendars have.

    Without holiday data (``covered_years`` None) every year is Monday-Friday; a calendar built from
    an official schedule (:func:`public_holiday_calendar`) knows which years its data covers and
    refuses (:class:`CalendarNotCovered`) to count working time in any other.

    Default: Monday-Friday, 09:00-12:00 and 13:00-18:00 (8 hours), Asia/Shanghai.
    """

    timezone: str = "Asia/Shanghai"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    periods: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13), time(18)))
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)
    covered_years: frozenset[int] | None = None
    source: str = "Monday-Friday"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def hours_per_day(self) -> float:
        return sum((datetime.combine(date.min, b) - datetime.combine(date.min, a)).seconds
                   for a, b in self.periods) / 3600

    def for_synthetic_history(self) -> "WorkCalendar":
        """This calendar counting Monday-Friday in years its data lacks: only for generated demo
        histories, which may run past the data and must not stop a demo load."""
        return replace(self, covered_years=None)

    def covers(self, day: date) -> bool:
        return self.covered_years is None or day.year in self.covered_years

    def is_workday(self, day: date) -> bool:
        if not self.covers(day):
            raise CalendarNotCovered(day.year, self.source)
        if day in self.extra_workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``start`` (aware datetime; result in the same zone)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        local = start.astimezone(self.zone)
        remaining = timedelta(hours=hours)
        day = local.date()
        cursor = local
        for _ in range(3660):  # ten years of days at most
            if self.is_workday(day):
                for a, b in self.periods:
                    begin = datetime.combine(day, a, self.zone)
                    end = datetime.combine(day, b, self.zone)
                    if cursor >= end:
                        continue
                    begin = max(begin, cursor)
                    if begin + remaining <= end:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= end - begin
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), self.zone)
        raise ValueError("no working time in ten years: check the calendar")

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """``days`` working days after ``start``: the same time of day on the n-th next working day
        (a report outside working hours counts from the next working period's start)."""
        whole = int(math.floor(days))
        local = start.astimezone(self.zone)
        opening = self.periods[0][0]
        closing = self.periods[-1][1]
        if not self.is_workday(local.date()) or local.time() >= closing:
            local = datetime.combine(self._next_workday(local.date()), opening, self.zone)
        elif local.time() < opening:
            local = datetime.combine(local.date(), opening, self.zone)
        day = local.date()
        for _ in range(whole):
            day = self._next_workday(day)
        result = datetime.combine(day, local.time(), self.zone)
        if days > whole:
            result = self.add_working_hours(result, (days - whole) * self.hours_per_day)
        return result.astimezone(start.tzinfo)

    def _next_workday(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    @classmethod
    def from_dict(cls, data: dict, base: "WorkCalendar | None" = None) -> "WorkCalendar":
        """From JSON-like settings over ``base`` (default: Monday-Friday, no holidays):
        ``{"timezone": ..., "weekdays": [0..6], "periods": [["09:00","12:00"], ...],
        "holidays": ["2026-10-01", ...], "extra_workdays": [...], "years": [2027]}`` (every key
        optional). Holidays and workdays are added to the base's; ``years`` adds years the file's own
        lists cover completely, for a base whose data stops before them."""
        def hm(text: str) -> time:
            return time.fromisoformat(text)

        base = base or cls()
        holidays = frozenset(date.fromisoformat(d) for d in data.get("holidays", []))
        workdays = frozenset(date.fromisoformat(d) for d in data.get("extra_workdays", []))
        covered = base.covered_years
        if covered is not None:
            covered = covered | frozenset(int(y) for y in data.get("years", []))
        return cls(
            timezone=data.get("timezone", base.timezone),
            weekdays=tuple(data.get("weekdays", base.weekdays)),
            periods=tuple((hm(a), hm(b)) for a, b in data["periods"]) if "periods" in data else base.periods,
            holidays=(base.holidays - workdays) | holidays,
            extra_workdays=(base.extra_workdays - holidays) | workdays,
            covered_years=covered,
            source=base.source + (" + GRIDMAP_CALENDAR" if set(data) - {"timezone"} else ""),
        )


def public_holiday_calendar(country: str | None, timezone: str = "Asia/Shanghai") -> WorkCalendar:
    """The working calendar of ``country`` (ISO 3166 code) from maintained holiday data: China from
    ``chinesecalendar`` (the State Council's schedule, 调休 workdays included, for the years it
    has), other countries from ``holidays`` (computed for ten years either side of today), no
    holidays at all for ``None``/"none"."""
    if not country or country.lower() == "none":
        return WorkCalendar(timezone=timezone)
    if country.upper() == "CN":
        import chinese_calendar

        years = frozenset(d.year for d in chinese_calendar.holidays)
        return WorkCalendar(timezone=timezone, holidays=frozenset(chinese_calendar.holidays),
                            extra_workdays=frozenset(chinese_calendar.workdays), covered_years=years,
                            source=f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".strip())
    import holidays as holiday_data

    this_year = date.today().year
    years = frozenset(range(this_year - 10, this_year + 11))
    try:
        days = holiday_data.country_holidays(country.upper(), years=sorted(years))
    except NotImplementedError as exc:
        raise ValueError(f"no public holiday data for country {country!r} (GRIDMAP_HOLIDAYS)") from exc
    return WorkCalendar(timezone=timezone, holidays=frozenset(days), covered_years=years,
                        source=f"holidays {holiday_data.__version__} {country.upper()}")


# -- categories ----------------------------------------------------------------------------------
TIME_UNITS = ("working_hours", "working_days", "hours", "days", "minutes")
EMERGENCY_UNIT = "minutes"
"""A category whose limit is counted in minutes is an emergency category: it opens only where an
emergency is on (平战结合), and a case of it overdue goes up a level every minute."""


@dataclass(frozen=True)
class Category:
    """An incident category (an Open311 service): its code, names, department and time limit."""

    code: str
    name_zh: str
    name_en: str
    group: str
    department_code: str
    department_zh: str
    department_en: str
    time_limit: float
    time_unit: str
    description: str = ""
    attributes: tuple[ServiceAttribute, ...] = ()
    """The questions the category asks its reporter (Open311 service attributes), in order."""

    @property
    def emergency(self) -> bool:
        """Open only where an emergency is on (its limit is counted in minutes)."""
        return self.time_unit == EMERGENCY_UNIT

    def due(self, reported: datetime, calendar: WorkCalendar) -> datetime:
        """When a case reported at ``reported`` must be closed."""
        if self.time_unit == "working_hours":
            return calendar.add_working_hours(reported, self.time_limit)
        if self.time_unit == "working_days":
            return calendar.add_working_days(reported, self.time_limit)
        if self.time_unit == "hours":
            return reported + timedelta(hours=self.time_limit)
        if self.time_unit == "days":
            return reported + timedelta(days=self.time_limit)
        if self.time_unit == EMERGENCY_UNIT:
            return reported + timedelta(minutes=self.time_limit)
        raise ValueError(f"unknown time unit {self.time_unit!r}")


def default_categories() -> list[Category]:
    """The category table shipped with gridmap (``gridmap/data/incident_categories.csv``), each
    with its questions (``incident_category_attributes.csv``)."""
    text = resources.files("gridmap").joinpath("data/incident_categories.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    questions = default_attributes()
    return [Category(code=r["code"], name_zh=r["name_zh"], name_en=r["name_en"], group=r["group"],
                     department_code=r["department_code"], department_zh=r["department_zh"],
                     department_en=r["department_en"], time_limit=float(r["time_limit"]),
                     time_unit=r["time_unit"], description=r["description"],
                     attributes=questions.get(r["code"], ())) for r in rows]


__all__ = ["STATES", "FINAL_STATES", "OPEN_STATES", "TRANSITIONS", "ACTION_ROLES", "ACTION_NAMES", "STATE_NAMES",
           "TransitionError", "next_state", "allowed_actions", "open311_status", "WorkCalendar", "CalendarNotCovered",
           "public_holiday_calendar", "Category",
           "TIME_UNITS", "EMERGENCY_UNIT", "default_categories"]
