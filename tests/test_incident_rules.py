"""The incident workflow and working-time rules, without a database: every state × action pair,
random action sequences (hypothesis), and due dates across weekends, lunch breaks, holidays and
the weekend days worked in exchange (调休)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridmap.incident_rules import (
    ACTION_ROLES,
    FINAL_STATES,
    STATES,
    TRANSITIONS,
    CalendarNotCovered,
    TransitionError,
    WorkCalendar,
    allowed_actions,
    default_categories,
    next_state,
    open311_status,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_every_state_and_action(state: str, action: str) -> None:
    sources, target = TRANSITIONS[action]
    if state in sources:
        assert next_state(state, action) == target
    else:
        with pytest.raises(TransitionError) as err:
            next_state(state, action)
        assert state in str(err.value)  # the reason names where the incident is


def test_the_happy_path_and_the_way_back() -> None:
    state = "reported"
    for action in ("file", "dispatch", "claim", "handle", "verify", "close"):
        state = next_state(state, action)
    assert state == "closed" and allowed_actions(state) == []
    assert next_state("handled", "send_back") == "claimed" and next_state("dispatched", "return") == "filed"
    assert next_state("claimed", "reassign") == "dispatched"
    assert set(ACTION_ROLES) == set(TRANSITIONS)


@given(st.lists(st.sampled_from(sorted(TRANSITIONS)), max_size=30))
def test_random_sequences_follow_the_table(actions: list[str]) -> None:
    state = "reported"
    for action in actions:
        sources, target = TRANSITIONS[action]
        if state in sources:
            state = next_state(state, action)
            assert state == target
        else:
            with pytest.raises(TransitionError):
                next_state(state, action)
        if state in FINAL_STATES:
            assert allowed_actions(state) == []  # final states absorb
        assert open311_status(state) == ("closed" if state in FINAL_STATES else "open")


def reachable(start: str) -> set[str]:
    """Every state the workflow can lead to from ``start`` (itself included)."""
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for action in allowed_actions(state):
            nxt = next_state(state, action)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_is_reachable_and_every_open_state_can_end() -> None:
    assert reachable("reported") == set(STATES)
    for state in set(STATES) - set(FINAL_STATES):  # no dead end: from any open state a case can close
        assert "closed" in reachable(state), state


def test_working_hours_skip_lunch_evenings_and_weekends() -> None:
    cal = WorkCalendar()
    assert cal.hours_per_day == 8
    assert cal.add_working_hours(at(2026, 11, 18, 10), 4) == at(2026, 11, 18, 15)  # Wed: 10-12, 13-15
    assert cal.add_working_hours(at(2026, 11, 20, 16), 4) == at(2026, 11, 23, 11)  # Fri 16:00 -> Mon 11:00
    assert cal.add_working_hours(at(2026, 11, 21, 20), 2) == at(2026, 11, 23, 11)  # Saturday night -> Mon
    assert cal.add_working_hours(at(2026, 11, 18, 12, 30), 1) == at(2026, 11, 18, 14)  # lunch does not count
    utc = datetime(2026, 11, 18, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, answered in UTC
    assert cal.add_working_hours(utc, 4) == datetime(2026, 11, 18, 7, 0, tzinfo=timezone.utc)


def test_holidays_and_exchanged_workdays() -> None:
    # National Day week 2026: 1-7 October off, Saturday 10 October worked in exchange
    cal = WorkCalendar(holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
                       extra_workdays=frozenset({date(2026, 10, 10)}))
    assert cal.add_working_days(at(2026, 9, 30, 10), 1) == at(2026, 10, 8, 10)
    assert cal.add_working_days(at(2026, 10, 9, 10), 1) == at(2026, 10, 10, 10)  # the exchanged Saturday
    assert cal.add_working_days(at(2026, 10, 9, 10), 2) == at(2026, 10, 12, 10)
    assert cal.add_working_hours(at(2026, 9, 30, 17), 2) == at(2026, 10, 8, 10)
    # reported outside working time: the clock starts with the next working period
    assert cal.add_working_days(at(2026, 10, 3, 15), 1) == at(2026, 10, 9, 9)
    assert cal.add_working_days(at(2026, 11, 18, 7), 0.5) == at(2026, 11, 18, 14)  # half a day from 09:00


def test_calendar_from_settings_and_category_limits() -> None:
    cal = WorkCalendar.from_dict({"timezone": "Atlantic/Reykjavik", "weekdays": [0, 1, 2, 3],
                                  "periods": [["08:00", "16:00"]], "holidays": ["2026-12-24"]})
    assert cal.periods == ((time(8), time(16)),) and cal.is_workday(date(2026, 12, 23))
    assert not cal.is_workday(date(2026, 12, 24)) and not cal.is_workday(date(2026, 11, 20))  # Friday off
    categories = {c.code: c for c in default_categories()}
    assert len(categories) >= 12 and all(len(code) == 4 and code.isdigit() for code in categories)
    reported = at(2026, 11, 20, 17)  # Friday 17:00
    assert categories["0201"].due(reported, WorkCalendar()) == at(2026, 11, 23, 12)  # 4 working hours
    assert categories["0502"].due(reported, WorkCalendar()) == reported + timedelta(hours=2)  # calendar hours
    assert categories["0203"].due(reported, WorkCalendar()) == at(2026, 11, 27, 17)  # 5 working days
    assert categories["0201"].department_zh == "环卫" and categories["0101"].name_zh == "道路破损"


def test_china_default_calendar_knows_2025_and_2026_holidays_and_exchanged_workdays(tmp_path) -> None:
    """The default calendar (GRIDMAP_HOLIDAYS unset: China, from chinesecalendar) against the State
    Council's published schedules, written out here (not read from the library under test)."""
    from gridmap.services.incidents import calendar_from_env

    cal = calendar_from_env({})
    assert cal.source.startswith("chinesecalendar")
    # 2025: 春节 28 Jan - 4 Feb off, Sun 26 Jan and Sat 8 Feb worked; 国庆 1-8 Oct off, Sun 28 Sep, Sat 11 Oct worked
    assert cal.add_working_days(at(2025, 1, 27, 10), 1) == at(2025, 2, 5, 10)
    assert cal.add_working_days(at(2025, 1, 24, 10), 1) == at(2025, 1, 26, 10)  # Friday -> the exchanged Sunday
    assert cal.add_working_days(at(2025, 2, 7, 10), 1) == at(2025, 2, 8, 10)  # Friday -> the exchanged Saturday
    assert cal.add_working_days(at(2025, 9, 30, 10), 1) == at(2025, 10, 9, 10)
    assert cal.add_working_days(at(2025, 10, 10, 10), 1) == at(2025, 10, 11, 10)
    # 2026: 春节 15-23 Feb off, Sat 14 Feb and Sat 28 Feb worked; 国庆 1-7 Oct off, Sun 20 Sep and Sat 10 Oct worked
    assert cal.add_working_days(at(2026, 2, 13, 10), 1) == at(2026, 2, 14, 10)
    assert cal.add_working_days(at(2026, 2, 14, 10), 1) == at(2026, 2, 24, 10)
    assert cal.add_working_hours(at(2026, 2, 14, 17), 2) == at(2026, 2, 24, 10)  # across the whole festival
    assert cal.add_working_days(at(2026, 2, 27, 10), 1) == at(2026, 2, 28, 10)
    assert cal.add_working_days(at(2026, 9, 18, 10), 1) == at(2026, 9, 20, 10)
    assert cal.add_working_days(at(2026, 9, 30, 10), 2) == at(2026, 10, 9, 10)
    assert cal.add_working_days(at(2026, 10, 9, 10), 1) == at(2026, 10, 10, 10)
    plain = WorkCalendar()  # what the time limits were before: the festival counted as working days
    assert plain.add_working_days(at(2026, 9, 30, 10), 2) == at(2026, 10, 2, 10)
    # a year the data lacks is refused in both languages, not guessed; the file can add it
    missing = max(cal.covered_years) + 1  # the first year the installed data lacks (2027 with 1.11.0)
    with pytest.raises(CalendarNotCovered) as refused:
        cal.add_working_days(at(missing - 1, 12, 30, 10), 5)
    assert refused.value.year == missing and str(missing) in refused.value.en and f"{missing} 年" in refused.value.zh
    extra = tmp_path / "calendar.json"
    extra.write_text(f'{{"years": [{missing}], "holidays": ["{missing}-01-01"]}}', encoding="utf-8")
    extended = calendar_from_env({"GRIDMAP_CALENDAR": str(extra)})
    start = at(missing - 1, 12, 30, 10)
    assert extended.add_working_days(start, 5).date().year == missing
    assert date(missing, 1, 1) not in {extended.add_working_days(start, n).date() for n in range(1, 6)}
    assert extended.add_working_days(at(2026, 2, 13, 10), 1) == at(2026, 2, 14, 10)  # the data kept underneath


def test_other_countries_use_the_holidays_package_and_none_means_weekdays(tmp_path) -> None:
    from gridmap.services.incidents import calendar_from_env

    iceland = calendar_from_env({"GRIDMAP_HOLIDAYS": "IS", "GRIDMAP_TIMEZONE": "Atlantic/Reykjavik"})
    assert iceland.timezone == "Atlantic/Reykjavik" and not iceland.is_workday(date(2026, 6, 17))  # National Day
    assert not iceland.is_workday(date(2026, 12, 25)) and iceland.is_workday(date(2026, 12, 23))
    weekdays = calendar_from_env({"GRIDMAP_HOLIDAYS": "none"})
    assert weekdays.covered_years is None and weekdays.is_workday(date(2040, 10, 1))
    with pytest.raises(ValueError, match="GRIDMAP_HOLIDAYS"):
        calendar_from_env({"GRIDMAP_HOLIDAYS": "XX"})


def test_health_warns_before_the_holiday_data_runs_out() -> None:
    from gridmap.api.health import calendar_health
    from gridmap.services.incidents import calendar_from_env

    cal = calendar_from_env({})
    last = max(cal.covered_years)
    early = calendar_health(cal, today=date(last, 3, 1))
    assert early["covered_until"] == f"{last}-12-31" and "warning_en" not in early
    late = calendar_health(cal, today=date(last, 12, 3))
    assert str(last) in late["warning_en"] and "chinesecalendar" in late["warning_zh"]
    assert calendar_health(WorkCalendar()) == {"source": "Monday-Friday", "covered_until": None}
    gap = WorkCalendar(covered_years=frozenset({2025, 2026, 2028}))  # a year without data between two with
    assert calendar_health(gap, today=date(2027, 5, 1))["covered_until"] is None
    assert "warning_en" in calendar_health(gap, today=date(2027, 5, 1))
