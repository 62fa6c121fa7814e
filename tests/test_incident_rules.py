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
