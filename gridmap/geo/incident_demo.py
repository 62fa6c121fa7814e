"""Labelled-synthetic incidents for the demo and the benchmarks: a year of reports over real
buildings and roads, each category with its own places, seasons and hours, realistic handling
times, and a share that runs late.

Nothing here is real: every generated incident is marked ``synthetic`` and its description says
so. The patterns are plausible assumptions, written down in ``PATTERNS`` (where, which months,
how fast departments usually are), not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.incident_rules import Category, WorkCalendar

# where: "homes" (weighted by households), "roads" (along major roads), "paths" (footpaths and
# residential streets), "parks" (park and green sites), "buildings" (any building, unweighted).
# months: relative rate January..December (Reykjavík: dark, snowy winters; busy summers).
# speed: usual handling time as a share of the time limit (lognormal median); late: share overdue.
PATTERNS: dict[str, dict] = {
    "0101": {"where": "roads", "rate": 1.0, "months": [3, 3, 2.5, 2, 1, .8, .7, .7, .8, 1, 1.5, 2.5], "speed": .5, "late": .15},
    "0102": {"where": "roads", "rate": .2, "months": [1] * 12, "speed": .4, "late": .08},
    "0103": {"where": "paths", "rate": .9, "months": [2.5, 2, 1.5, 1, .5, .2, .2, .4, 1, 1.8, 2.5, 3], "speed": .6, "late": .2},
    "0201": {"where": "homes", "rate": 2.5, "months": [.8, .8, .9, 1, 1.2, 1.4, 1.5, 1.4, 1.1, 1, .9, 1.2], "speed": .5, "late": .1},
    "0202": {"where": "paths", "rate": 1.2, "months": [2.5, 2.5, 2, 1.2, .8, .6, .6, .6, .7, 1, 1.5, 2.2], "speed": .6, "late": .18},
    "0203": {"where": "parks", "rate": .4, "months": [.3, .3, .5, 1, 1.6, 1.8, 1.8, 1.6, 1.2, .8, .4, .3], "speed": .6, "late": .12},
    "0204": {"where": "parks", "rate": .25, "months": [2, 2, 1.5, .8, .4, .3, .3, .4, 1, 1.8, 2, 2.2], "speed": .5, "late": .1},
    "0301": {"where": "buildings", "rate": .3, "months": [.6, .6, .8, 1, 1.3, 1.4, 1.4, 1.3, 1.1, .9, .7, .6], "speed": .7, "late": .3},
    "0302": {"where": "roads", "rate": .6, "months": [.5, .5, .7, .9, 1.2, 1.6, 1.8, 1.6, 1.1, .8, .6, 1.2], "speed": .5, "late": .12},
    "0303": {"where": "roads", "rate": 1.5, "months": [1.3, 1.2, 1.1, 1, 1, .9, .8, .9, 1, 1, 1.1, 1.3], "speed": .4, "late": .08},
    "0401": {"where": "homes", "rate": 1.1, "months": [.7, .7, .8, 1, 1.2, 1.5, 1.6, 1.4, 1, .9, .8, 1.1], "speed": .6, "late": .15},
    "0402": {"where": "homes", "rate": .6, "months": [1.1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2], "speed": .7, "late": .25},
    "0501": {"where": "buildings", "rate": .3, "months": [1.4, 1.3, 1.1, 1, .9, .8, .8, .8, .9, 1, 1.2, 1.5], "speed": .4, "late": .1},
    "0502": {"where": "buildings", "rate": .08, "months": [1.5, 1.4, 1.2, 1, .8, .6, .6, .6, .8, 1, 1.3, 1.6], "speed": .3, "late": .05},
    "0601": {"where": "homes", "rate": .5, "months": [1.6, 1.5, 1.2, 1, .8, .7, .7, .7, .8, 1, 1.2, 1.5], "speed": .5, "late": .12},
    "0602": {"where": "homes", "rate": .4, "months": [1.4, 1.3, 1.1, 1, .9, .8, .8, .8, .9, 1, 1.2, 1.4], "speed": .6, "late": .1},
}
HOURS = np.array([.2, .1, .1, .1, .2, .4, 1, 2, 3, 3.5, 3.5, 3, 2.5, 3, 3.2, 3, 2.8, 2.5, 2, 1.6, 1.2, .9, .6, .4])
MAJOR = ("primary", "secondary", "tertiary", "trunk", "primary_link", "secondary_link")
MINOR = ("residential", "footway", "path", "living_street", "pedestrian", "service")


@dataclass
class Places:
    """Candidate points (lon/lat) and their weights for each kind of place."""

    points: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]


def places(buildings: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, sites: gpd.GeoDataFrame | None,
           area: shapely.Geometry | None = None, *, seed: int = 0) -> Places:
    """Where each kind of incident can happen, from the demo layers (inside ``area`` if given)."""
    rng = np.random.default_rng(seed)
    b = buildings.to_crs(4326)
    pts = shapely.get_coordinates(np.asarray(b.geometry.representative_point().values, dtype=object))
    hh = pd.to_numeric(b.get("households", 0), errors="coerce").fillna(0).to_numpy(float)
    out_p, out_w = {"homes": pts, "buildings": pts}, {"homes": hh, "buildings": np.ones(len(pts))}
    r = roads.to_crs(4326)
    for name, classes in (("roads", MAJOR), ("paths", MINOR)):
        # OSM's classes where the layer has them; a district's own road layer (道路等级 …) has
        # other classes: its roads then serve as both
        chosen = r["highway"].isin(classes) if "highway" in r else pd.Series(True, index=r.index)
        lines = np.asarray(r[chosen.to_numpy(dtype=bool)].geometry.values, dtype=object)
        lengths = shapely.length(lines)
        pick = rng.choice(len(lines), size=min(20000, 20 * len(lines)), p=lengths / lengths.sum())
        points = shapely.line_interpolate_point(lines[pick], rng.random(len(pick)), normalized=True)
        out_p[name], out_w[name] = shapely.get_coordinates(points), np.ones(len(pick))
    parks = None
    if sites is not None and len(sites):
        kind = sites.get("site_type", sites.get("type", pd.Series("", index=sites.index))).astype(str)
        parks = sites[kind.str.contains("park|garden|green|grass", case=False, regex=True)].to_crs(4326)
    if parks is not None and len(parks):
        samples = parks.geometry.sample_points(size=np.maximum(5, (parks.to_crs(3857).area / 2000).astype(int)))
        coords = shapely.get_coordinates(np.asarray(samples.values, dtype=object))
        out_p["parks"], out_w["parks"] = coords, np.ones(len(coords))
    else:
        out_p["parks"], out_w["parks"] = out_p["paths"], out_w["paths"]
    if area is not None:
        for key in out_p:
            inside = shapely.contains_xy(area, out_p[key][:, 0], out_p[key][:, 1])
            out_p[key], out_w[key] = out_p[key][inside], out_w[key][inside]
    return Places(out_p, out_w)


def generate(where: Places, categories: list[Category], *, count: int, start: datetime, days: int = 365,
             seed: int = 0, calendar: WorkCalendar | None = None, now: datetime | None = None) -> pd.DataFrame:
    """``count`` incidents over ``days`` days from ``start`` with their whole life up to ``now``
    (the timestamps of each step; steps after ``now`` have not happened yet).

    Columns: category_code, lon, lat, reported_at, filed_at, dispatched_at, claimed_at, handled_at,
    verified_at, closed_at (NaT while open), status, due_at, rejected, description."""
    rng = np.random.default_rng(seed)
    calendar = calendar or WorkCalendar()
    by_code = {c.code: c for c in categories if c.code in PATTERNS}
    codes = sorted(by_code)
    rates = np.array([PATTERNS[c]["rate"] for c in codes])
    chosen = rng.choice(len(codes), size=count, p=rates / rates.sum())
    frame = pd.DataFrame({"category_code": np.array(codes)[chosen]})
    start = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day_of_year = np.empty(count, dtype=int)
    lon, lat = np.empty(count), np.empty(count)
    month_of_day = np.array([(start + timedelta(days=d)).month - 1 for d in range(days)])
    for code, rows in frame.groupby("category_code").groups.items():
        rows = np.asarray(rows)
        p = np.array(PATTERNS[code]["months"])[month_of_day]
        day_of_year[rows] = rng.choice(days, size=len(rows), p=p / p.sum())
        kind = PATTERNS[code]["where"]
        pts, w = where.points[kind], where.weights[kind]
        pick = rng.choice(len(pts), size=len(rows), p=w / w.sum())
        jitter = rng.normal(0, 0.00008, size=(len(rows), 2))  # a few metres
        lon[rows], lat[rows] = pts[pick, 0] + jitter[:, 0], pts[pick, 1] + jitter[:, 1]
    hours = rng.choice(24, size=count, p=HOURS / HOURS.sum())
    reported = [start + timedelta(days=int(d), hours=int(h), minutes=int(m))
                for d, h, m in zip(day_of_year, hours, rng.integers(0, 60, count))]
    frame["lon"], frame["lat"], frame["reported_at"] = lon, lat, pd.to_datetime(reported, utc=True)
    frame["due_at"] = pd.to_datetime([by_code[c].due(t.to_pydatetime(), calendar)
                                      for c, t in zip(frame["category_code"], frame["reported_at"])], utc=True)
    limit = (frame["due_at"] - frame["reported_at"]).dt.total_seconds().to_numpy()
    speed = np.array([PATTERNS[c]["speed"] for c in frame["category_code"]])
    late = rng.random(count) < np.array([PATTERNS[c]["late"] for c in frame["category_code"]])
    share = np.where(late, 1 + rng.lognormal(-1.0, 0.8, count), np.minimum(speed * rng.lognormal(0, 0.4, count), 0.98))
    total = limit * share
    # the steps take fixed fractions of the total handling time, with noise
    fractions = np.cumsum(rng.dirichlet([1, 1, 2, 6, 1, 1], size=count), axis=1)
    base = frame["reported_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    stamps = base[:, None] + (fractions * total[:, None] * 1e9).astype("timedelta64[ns]")
    now = pd.Timestamp(now or datetime.now(timezone.utc)).tz_convert("UTC").tz_localize(None).to_datetime64()
    rejected = rng.random(count) < 0.04
    states = ["filed", "dispatched", "claimed", "handled", "verified", "closed"]
    for i, name in enumerate(states):
        column = np.where(stamps[:, i] <= now, stamps[:, i], np.datetime64("NaT"))
        if name != "filed":
            column = np.where(rejected, np.datetime64("NaT"), column)
        frame[f"{name}_at"] = pd.to_datetime(column, utc=True)
    frame["rejected"] = rejected & frame["filed_at"].notna()
    reached = np.array([frame[f"{s}_at"].notna().to_numpy() for s in states]).T
    index = reached.sum(axis=1)
    frame["status"] = np.where(frame["rejected"], "rejected", np.array(["reported"] + states)[index])
    frame.loc[frame["rejected"], "closed_at"] = frame.loc[frame["rejected"], "filed_at"]
    names = {c.code: c.name_en for c in categories}
    frame["description"] = [f"[synthetic demo] {names[c]}" for c in frame["category_code"]]
    return frame.sort_values("reported_at", kind="stable").reset_index(drop=True)


__all__ = ["PATTERNS", "Places", "places", "generate"]
