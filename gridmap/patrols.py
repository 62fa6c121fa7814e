"""Patrols (巡查) as pure logic: a GPS track from its points (the phone's, or a GPX or GeoJSON
file's), cleaned of what a walker cannot have done, and the week a coverage figure is for.

A track's points are ordered by time (a time without an offset is the city's local time); a
lone bad fix (too fast to reach and to leave), then points at the same time as the last kept or
too fast from it (a GPS jump: faster than :data:`MAX_SPEED_MS`), are dropped and counted. A track
needs two points at least. Coordinates are CGCS2000/WGS84 (a GCJ-02 file is converted by the
caller). Nothing here touches the database or the web.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import shapely

from gridmap.errors import Invalid

MAX_SPEED_MS = 15.0
"""Faster than this between two points (54 km/h) is a GPS jump, not a walk or a ride."""
MAX_POINTS = 50_000
REPORT_GRACE = timedelta(minutes=5)
"""An incident its walker reports up to this long after a patrol's last point was found on it:
the phone sends a walk every few minutes as it goes, and a report is finished after the stop."""


class TrackError(Invalid):
    """Points that make no track (both languages)."""


@dataclass(frozen=True)
class Track:
    line: shapely.LineString
    started_at: datetime
    ended_at: datetime
    points: int
    dropped: int
    times: tuple[datetime, ...] = ()
    """The time of each vertex of ``line`` (UTC), in order."""

    @property
    def length_m(self) -> float:
        coords = list(self.line.coords)
        return sum(metres(a, b) for a, b in zip(coords, coords[1:]))

    @property
    def wkt_m(self) -> str:
        """The line with each vertex's time as its measure (seconds since 1970, UTC): PostGIS
        reads the time at any place on the track from it (``ST_InterpolatePoint``)."""
        coords = ", ".join(f"{x!r} {y!r} {when.timestamp()!r}" for (x, y), when in zip(self.line.coords, self.times))
        return f"LINESTRING M ({coords})"


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance between two lon/lat points (haversine, R = 6,371,008 m)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _utc(value: datetime, zone: tzinfo) -> datetime:
    """A point's time in UTC; one without an offset is the city's local time (what phones and
    Chinese map apps write)."""
    return (value.replace(tzinfo=zone) if value.tzinfo is None else value).astimezone(timezone.utc)


def _isolated_jumps(points: list[tuple[float, float, datetime]]) -> set[int]:
    """Points too fast to reach from the one before and too fast to leave for the one after (a
    lone bad fix, the first and last judged by their one neighbour), so that a bad first fix does
    not make every real point after it look like a jump."""
    def too_fast(a, b) -> bool:
        seconds = (b[2] - a[2]).total_seconds()
        return seconds > 0 and metres(a[:2], b[:2]) / seconds > MAX_SPEED_MS

    out = set()
    for i, point in enumerate(points):
        before = too_fast(points[i - 1], point) if i > 0 else True
        after = too_fast(point, points[i + 1]) if i + 1 < len(points) else True
        if before and after and len(points) > 2:
            out.add(i)
    return out


def track(points: list[tuple[float, float, datetime]], *, zone: tzinfo = timezone.utc) -> Track:
    """The track of ``points`` (lon, lat, time; a time without an offset is in ``zone``), see the
    module docstring."""
    if len(points) > MAX_POINTS:
        raise TrackError(f"{len(points)} points, more than {MAX_POINTS}", f"点数 {len(points)} 超过上限 {MAX_POINTS}")
    for lon, lat, _when in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or math.isnan(lon) or math.isnan(lat):
            raise TrackError(f"a point {lon}, {lat} is not a longitude and latitude", f"点 {lon}、{lat} 不是经纬度")
    ordered = sorted(((lon, lat, _utc(when, zone)) for lon, lat, when in points), key=lambda p: p[2])
    jumps = _isolated_jumps(ordered)
    ordered, dropped = [p for i, p in enumerate(ordered) if i not in jumps], len(jumps)
    kept = []
    for point in ordered:
        if kept:
            last = kept[-1]
            seconds = (point[2] - last[2]).total_seconds()
            if seconds <= 0 or metres(last[:2], point[:2]) / seconds > MAX_SPEED_MS:
                dropped += 1
                continue
        kept.append(point)
    if len(kept) < 2:  # (kept and dropped: every point is one or the other)
        raise TrackError("a track needs at least two points at different times", "轨迹至少需要两个不同时刻的点")
    return Track(shapely.LineString([p[:2] for p in kept]), kept[0][2], kept[-1][2], len(kept), dropped,
                 tuple(p[2] for p in kept))


def week_bounds(text: str | None, zone: tzinfo, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of an ISO week's Monday and of the next, at midnight in ``zone`` (the city's
    week, not UTC's: a walk at 07:00 on a Beijing Monday is that week's); default: this week there."""
    today = (now or datetime.now(timezone.utc)).astimezone(zone).date()
    monday, next_monday = week_of(text, today)
    return (datetime.combine(monday, datetime.min.time(), zone), datetime.combine(next_monday, datetime.min.time(), zone))


def week_of(text: str | None, today: date) -> tuple[date, date]:
    """The Monday and the next Monday of an ISO week (``2026-W49``; default: this week)."""
    if not text:
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    found = re.fullmatch(r"(\d{4})-W(\d{2})", text.strip())
    try:
        monday = date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1) if found else None
    except ValueError:
        monday = None
    if monday is None:
        raise TrackError(f"week {text!r} is not an ISO week (e.g. 2026-W49)", f"周 {text!r} 格式无效（例如 2026-W49）")
    return monday, monday + timedelta(days=7)


__all__ = ["Track", "TrackError", "track", "metres", "week_of", "week_bounds", "MAX_SPEED_MS", "REPORT_GRACE"]
