"""Patrols (巡查) as pure logic: a GPS track from its points (the phone's, or a GPX or GeoJSON
file's), cleaned of what a walker cannot have done, and the week a coverage figure is for.

A track's points are ordered by time; points at the same time, or that would mean moving faster
than :data:`MAX_SPEED_MS` from the last point kept (a GPS jump), are dropped and counted. A track
needs two points at least. Coordinates are CGCS2000/WGS84 (a GCJ-02 file is converted by the
caller). Nothing here touches the database or the web.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import shapely

from gridmap.errors import Invalid

MAX_SPEED_MS = 15.0
"""Faster than this between two points (54 km/h) is a GPS jump, not a walk or a ride."""
MAX_POINTS = 50_000


class TrackError(Invalid):
    """Points that make no track (both languages)."""


@dataclass(frozen=True)
class Track:
    line: shapely.LineString
    started_at: datetime
    ended_at: datetime
    points: int
    dropped: int

    @property
    def length_m(self) -> float:
        coords = list(self.line.coords)
        return sum(metres(a, b) for a, b in zip(coords, coords[1:]))


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance between two lon/lat points (haversine, R = 6,371,008 m)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def track(points: list[tuple[float, float, datetime]]) -> Track:
    """The track of ``points`` (lon, lat, time), see the module docstring."""
    if len(points) > MAX_POINTS:
        raise TrackError(f"{len(points)} points, more than {MAX_POINTS}", f"点数 {len(points)} 超过上限 {MAX_POINTS}")
    for lon, lat, _when in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or math.isnan(lon) or math.isnan(lat):
            raise TrackError(f"a point {lon}, {lat} is not a longitude and latitude", f"点 {lon}、{lat} 不是经纬度")
    ordered = sorted(((lon, lat, _utc(when)) for lon, lat, when in points), key=lambda p: p[2])
    kept, dropped = [], 0
    for point in ordered:
        if kept:
            last = kept[-1]
            seconds = (point[2] - last[2]).total_seconds()
            if seconds <= 0 or metres(last[:2], point[:2]) / seconds > MAX_SPEED_MS:
                dropped += 1
                continue
        kept.append(point)
    if len(kept) < 2:
        raise TrackError("a track needs at least two points at different times", "轨迹至少需要两个不同时刻的点")
    return Track(shapely.LineString([p[:2] for p in kept]), kept[0][2], kept[-1][2], len(kept), dropped)


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


__all__ = ["Track", "TrackError", "track", "metres", "week_of", "MAX_SPEED_MS"]
