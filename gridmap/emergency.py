"""平战结合 as pure rules: the kinds of emergency a city switches into, how long grid workers have
to check in and when a missed check-in goes up (community, then street), the statuses a grid
reports, the outcomes of a door-knock (敲门行动) and a campaign's schedule, the whistle's (吹哨报到)
deadlines, and the figures of an emergency's report. Nothing here touches the database or the web.

An emergency is switched on over a territory or part of it (streets, communities, or grids drawn
on the map); while it is on, the incident categories whose limit is counted in minutes open
there, every grid in it must check in by a deadline, and each grid carries a status set by its
worker. It ends the same way it began, and what happened in between is its report.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from gridmap.errors import Invalid

DEFAULT_KINDS = ("防汛", "防火", "防疫", "防地震", "保安全")
KIND_EN = {"防汛": "flood", "防火": "fire", "防疫": "epidemic", "防地震": "earthquake", "保安全": "public safety"}
"""The kinds practice names (五防两保, in part) and their English names; a profile may add others."""

GRID_STATUS = {"normal": ("正常", "normal"), "affected": ("受影响", "affected"),
               "needs_support": ("需要支援", "needs support"), "cleared": ("已解除", "cleared")}
"""What a grid's worker says of their grid while the emergency is on."""

CHECKIN_LEVELS = {0: ("", ""), 1: ("社区", "community"), 2: ("街道", "street")}
"""Where a missed check-in has gone: the community at the deadline, the street later."""

VISIT_OUTCOMES = {"visited": ("已入户", "visited"), "nobody_home": ("无人在家（待回访）", "nobody home (revisit)"),
                  "refused": ("拒绝", "refused"), "issue_found": ("发现问题", "issue found")}
"""The outcome of a door-knock; a household or building is reached by any but ``nobody_home``."""
REACHED = ("visited", "refused", "issue_found")


class EmergencyError(Invalid):
    """A request the emergency rules refuse (both languages)."""


@dataclass(frozen=True)
class EmergencyRules:
    """A city's emergency settings (profile ``[emergency]``): the kinds it switches into, the
    minutes grid workers have to check in after a switch, the minutes after that deadline a
    missed check-in goes from the community to the street, the minutes a department has to
    acknowledge a whistle, and how far a grid may fall behind a campaign's even pace before it
    is flagged."""

    kinds: tuple[str, ...] = DEFAULT_KINDS
    checkin_minutes: int = 30
    street_after_minutes: int = 15
    whistle_ack_minutes: int = 15
    whistle_arrive_minutes: int = 60
    behind_schedule_margin: float = 0.1

    def __post_init__(self) -> None:
        if not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise ValueError("emergency kinds must be given, each once")
        if min(self.checkin_minutes, self.street_after_minutes, self.whistle_ack_minutes,
               self.whistle_arrive_minutes) <= 0:
            raise ValueError("emergency minutes must be positive")
        if not 0 <= self.behind_schedule_margin < 1:
            raise ValueError("behind_schedule_margin is a share between 0 and 1")

    def kind_of(self, text: object) -> str:
        """The configured kind a word names (Chinese, or the English of a shipped one)."""
        word = unicodedata.normalize("NFKC", str(text or "")).strip()
        found = next((k for k in self.kinds if word == k or word.lower() == KIND_EN.get(k, "\0")), None)
        if found is None:
            raise EmergencyError(f"unknown kind of emergency {text!r} (one of {', '.join(self.kinds)})",
                                 f"未知的应急类型 {text!r}（可用：{'、'.join(self.kinds)}）")
        return found

    def names(self) -> list[dict[str, str]]:
        return [{"kind": k, "kind_zh": k, "kind_en": KIND_EN.get(k, k)} for k in self.kinds]


def key_of(table: dict[str, tuple[str, str]], text: object, what: tuple[str, str]) -> str:
    """The key of a table (grid status, visit outcome) named by its key, Chinese or English name."""
    word = unicodedata.normalize("NFKC", str(text or "")).strip()
    found = next((k for k, (zh, en) in table.items() if word in (k, zh) or word.lower() == en), None)
    if found is None:
        raise EmergencyError(f"unknown {what[1]} {text!r} (one of {', '.join(table)})",
                             f"未知的{what[0]} {text!r}（可用：{'、'.join(zh for zh, _ in table.values())}）")
    return found


def checkin_level(due: datetime, checked_in: datetime | None, now: datetime, rules: EmergencyRules) -> int:
    """Where a grid's check-in stands at ``now``: 0 in time (or not yet due), 1 missed at the
    deadline (the community is told), 2 still missing ``street_after_minutes`` later (the street)."""
    if checked_in is not None and checked_in <= due:
        return 0
    if checked_in is not None:  # late, but in: it went up as far as it had got when it came
        now = checked_in
    if now <= due:
        return 0
    return 2 if now - due >= timedelta(minutes=rules.street_after_minutes) else 1


def expected_share(start: datetime, deadline: datetime, now: datetime) -> float:
    """The share of a campaign's targets an even pace has reached by ``now``."""
    if now <= start:
        return 0.0
    if now >= deadline or deadline <= start:
        return 1.0
    return (now - start) / (deadline - start)


def behind(reached: int, targets: int, expected: float, rules: EmergencyRules) -> bool:
    """A grid with targets whose reached share is below the even pace by more than the margin."""
    return targets > 0 and reached / targets < expected - rules.behind_schedule_margin


def minutes_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Minutes from ``start`` to ``end`` (NaN where either is missing)."""
    return (pd.to_datetime(end, utc=True) - pd.to_datetime(start, utc=True)).dt.total_seconds() / 60


def status_timeline(changes: pd.DataFrame, grids: list[str], start: datetime, end: datetime,
                    step: timedelta) -> list[dict]:
    """How many grids were in each status at ``start``, every ``step`` after and at ``end``: every
    grid ``normal`` until its first change (``changes``: ``grid_code, status, at`` in time order)."""
    ticks = []
    at = start
    while at < end:
        ticks.append(at)
        at += step
    ticks.append(end)
    ordered = changes.sort_values("at") if len(changes) else changes
    out = []
    for tick in ticks:
        current = dict.fromkeys(grids, "normal")
        if len(ordered):
            for row in ordered[pd.to_datetime(ordered["at"], utc=True) <= pd.Timestamp(tick)].itertuples():
                if row.grid_code in current:
                    current[row.grid_code] = row.status
        counts = {status: 0 for status in GRID_STATUS}
        for status in current.values():
            counts[status] += 1
        out.append({"at": tick.isoformat(), **counts})
    return out


__all__ = ["DEFAULT_KINDS", "KIND_EN", "GRID_STATUS", "CHECKIN_LEVELS", "VISIT_OUTCOMES", "REACHED", "EmergencyError",
           "EmergencyRules", "key_of", "checkin_level", "expected_share", "behind", "minutes_between", "status_timeline"]
