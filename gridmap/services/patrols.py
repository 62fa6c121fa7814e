"""Patrols (巡查): a grid worker's track recorded on the phone or uploaded as a GPX or GeoJSON file,
stored once (the same track sent twice is kept once), read back by its walker and the
administrators, and the week's coverage per grid: the share of its streets walked, who walked it,
and which of its staff did not. Each write is one transaction with its audit entry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gridmap import patrols
from gridmap.errors import Invalid, NotFound
from gridmap.store import audit, layers, plans, territories
from gridmap.store import patrols as store


VISITS_LOOK_BACK = timedelta(days=90)
"""How far back the last visit of a building is looked for."""


def city_zone() -> tzinfo:
    """The city's time zone: ``GRIDMAP_TIMEZONE``, as the incident loop's working calendar has it."""
    from gridmap.services.incidents import calendar_from_env

    return calendar_from_env().zone


def record(engine: sa.Engine, territory: str, points: list[tuple[float, float, datetime]], *, user_id: int | None,
           walker: str, source: str = "phone", zone: tzinfo | None = None) -> dict:
    """Store a track of ``points`` (lon, lat, time; without an offset, a time is in ``zone``, the
    city's) walked by ``walker``; it must pass through the territory. Sent again (the phone
    retrying after the network came back), it is kept once; sent again longer (the whole walk
    after a part of it), the longer one replaces it."""
    track = patrols.track(points, zone=zone or city_zone())
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        if not territories.meets(conn, territory, track.line.wkt):
            raise Invalid(f"the track does not pass through territory {territory}", f"轨迹没有经过辖区 {territory}")
        patrol_id, state = store.insert(conn, row.id, user_id=user_id, walker=walker, track=track, source=source)
        found = store.link_incidents(conn, patrol_id, patrols.REPORT_GRACE) if state != "kept" else []
        if state != "kept":
            audit.record(conn, actor=walker, action=f"patrol.{state}", table="patrols", row_key=str(patrol_id),
                         after={"points": track.points, "dropped": track.dropped, "source": source,
                                "started_at": track.started_at.isoformat(), "ended_at": track.ended_at.isoformat()})
    return {"patrol_id": patrol_id, "stored": state != "kept", "state": state, "points": track.points,
            "dropped": track.dropped, "incidents_linked": found,
            "length_m": round(track.length_m, 1), "started_at": track.started_at.isoformat(),
            "ended_at": track.ended_at.isoformat()}


def read_points(path: str | Path, *, crs: str | None = None) -> tuple[list[tuple[float, float, datetime]], str]:
    """The timed points of a GPX file (its track points) or a GeoJSON file (Points with a ``time``
    property), and the source kind; GCJ-02 coordinates converted with ``crs="gcj02"``."""
    import pyogrio

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".gpx":
            frame, source = pyogrio.read_dataframe(path, layer="track_points"), "gpx"
        elif suffix in (".geojson", ".json"):
            frame, source = pyogrio.read_dataframe(path), "geojson"
        else:
            raise Invalid(f"{path.name}: a track is a .gpx or .geojson file", f"{path.name}：轨迹须为 .gpx 或 .geojson 文件")
    except Invalid:
        raise
    except Exception as exc:  # a damaged file: say what it looks like, whatever GDAL raised
        raise Invalid(f"{path.name}: not a readable track ({type(exc).__name__})", f"{path.name}：无法读取的轨迹文件") from None
    if frame.empty or "time" not in frame or not (frame.geometry.geom_type == "Point").all():
        raise Invalid(f"{path.name}: the track needs timed points (GPX track points, or GeoJSON Points with a time)",
                      f"{path.name}：轨迹须为带时间的点（GPX 轨迹点，或带 time 属性的 GeoJSON 点）")
    times = pd.to_datetime(frame["time"], utc=True, errors="coerce")
    if times.isna().any():
        raise Invalid(f"{path.name}: {int(times.isna().sum())} points have no readable time",
                      f"{path.name}：有 {int(times.isna().sum())} 个点的时间无法读取")
    lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    if crs and crs.lower().replace("-", "") == "gcj02":
        from gridmap.geo.crs import gcj02_to_wgs84

        lon, lat = gcj02_to_wgs84(np.asarray(lon), np.asarray(lat))
    return [(float(x), float(y), t.to_pydatetime()) for x, y, t in zip(lon, lat, times)], source


def tracks(engine: sa.Engine, territory: str, *, week: str | None, user_ids: list[int] | None,
           zone: tzinfo | None = None) -> dict:
    """The tracks started in a week of the city (its time zone) as GeoJSON, each with the incidents
    reported on it (only the tracks of ``user_ids`` when given)."""
    start, end = patrols.week_bounds(week, zone or city_zone())
    with engine.connect() as conn:
        territories.get(conn, territory)
        frame = store.tracks(conn, territory, start=start, end=end, user_ids=user_ids)
    features = [{"type": "Feature", "id": int(r.patrol_id), "geometry": json.loads(json.dumps(r.geometry.__geo_interface__)),
                 "properties": {"patrol_id": int(r.patrol_id), "walker": r.walker, "started_at": r.started_at.isoformat(),
                                "ended_at": r.ended_at.isoformat(), "points": int(r.points), "source": r.source,
                                "length_m": round(float(r.length_m), 1), "incidents": list(r.incidents)}}
                for r in frame.itertuples()]
    return {"type": "FeatureCollection", "week": [start.date().isoformat(), end.date().isoformat()], "features": features}


def coverage(engine: sa.Engine, territory: str, *, week: str | None, zone: tzinfo | None = None) -> dict:
    """Per published grid, for the city's week: street length, length walked (within 20 m of a
    track), the share, who walked it, and its staff with an account who did not; with the totals
    (summed over the grids: a street on a border between two counts in both)."""
    start, end = patrols.week_bounds(week, zone or city_zone())
    with engine.connect() as conn:
        territories.get(conn, territory)
        found = plans.published_above(conn, territory)
        if found is None:
            raise Invalid(f"territory {territory} has no published plan", f"辖区 {territory} 尚无已发布方案")
        roads = layers.find(conn, territory, layers.ROLES["roads"])
        buildings = layers.find(conn, territory, layers.ROLES["buildings"])
        frame = store.coverage(conn, territory, found[1], roads, buildings, start=start, end=end)
    grids = [{"grid_code": r.grid_code, "street_m": round(r.street_m, 1), "walked_m": round(r.walked_m, 1),
              "share": round(r.walked_m / r.street_m, 3) if r.street_m else None, "walkers": list(r.walkers),
              "not_patrolled": list(r.not_patrolled), "buildings": int(r.buildings),
              "buildings_visited": int(r.buildings_visited)} for r in frame.itertuples()]
    street, walked = sum(g["street_m"] for g in grids), sum(g["walked_m"] for g in grids)
    return {"territory": territory, "week": [start.date().isoformat(), end.date().isoformat()], "near_m": store.NEAR_M,
            "roads_layer": None if roads is None else f"{roads[0]}/{roads[1]}",
            "totals": {"street_m": round(street, 1), "walked_m": round(walked, 1),
                       "share": round(walked / street, 3) if street else None,
                       "grids_patrolled": sum(bool(g["walkers"]) for g in grids), "grids": len(grids),
                       "buildings": sum(g["buildings"] for g in grids),
                       "buildings_visited": sum(g["buildings_visited"] for g in grids)},
            "grids": grids}


def visits(engine: sa.Engine, territory: str, grid_code: str, *, week: str | None, user_ids: list[int] | None,
           zone: tzinfo | None = None) -> dict:
    """The buildings of a published grid as GeoJSON, each with whether a track of the city's
    ``week`` (this week by default; any walker's, as the coverage counts) passed within 20 m of
    it, and the last time in the 90 days to the week's end a track of ``user_ids`` (every
    walker's when None) did, and who walked it."""
    start, end = patrols.week_bounds(week, zone or city_zone())
    with engine.connect() as conn:
        territories.get(conn, territory)
        found = plans.published_above(conn, territory)
        if found is None:
            raise Invalid(f"territory {territory} has no published plan", f"辖区 {territory} 尚无已发布方案")
        if grid_code not in plans.grids_within(conn, found[1], territory, [grid_code]):
            raise NotFound(f"grid {grid_code} is not a published grid of territory {territory}",
                           f"网格 {grid_code} 不是辖区 {territory} 已发布的网格")
        buildings = layers.find(conn, territory, layers.ROLES["buildings"])
        if buildings is None:
            raise Invalid(f"territory {territory} (and its ancestors) has no buildings layer",
                          f"辖区 {territory}（及其上级）没有楼栋图层")
        frame = store.building_visits(conn, territory, found[1], grid_code, buildings, start=start, end=end,
                                      since=start - VISITS_LOOK_BACK, user_ids=user_ids)
    features = []
    for r in frame.itertuples():
        seen = None if pd.isna(r.last_visit) else pd.Timestamp(r.last_visit).to_pydatetime()
        features.append({"type": "Feature", "id": int(r.building_id),
                         "geometry": json.loads(json.dumps(r.geometry.__geo_interface__)),
                         "properties": {"building_id": int(r.building_id), "building_name": _text(r.building_name),
                                        "compound_name": _text(r.compound_name),
                                        "last_visit": seen.isoformat() if seen else None,
                                        "walker": r.walker if seen else None,
                                        "in_week": bool(r.in_week)}})
    visited = sum(f["properties"]["in_week"] for f in features)
    return {"type": "FeatureCollection", "grid_code": grid_code, "week": [start.date().isoformat(), end.date().isoformat()],
            "near_m": store.NEAR_M, "buildings": len(features), "visited_in_week": visited, "features": features}


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def readable_walkers(engine: sa.Engine, user_id: int, *, zone: tzinfo | None = None) -> list[int]:
    """The accounts whose tracks and visits ``user_id`` may read (not an administrator): their
    own, and as a grid leader or supervisor, those of the staff of their grids today."""
    today = datetime.now(zone or city_zone()).date()
    with engine.connect() as conn:
        return store.led_walkers(conn, user_id, today)


__all__ = ["record", "read_points", "tracks", "coverage", "visits", "readable_walkers"]
