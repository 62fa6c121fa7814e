"""What users read of the store as GeoDataFrames (the notebook API, exports, downloads): a
territory's plan with its grids and units, its communities, units, layers, stations, incidents
and merge crosswalk, each in one consistent snapshot and with the columns users are given
(the store's internal row ids left out).

One read path: every reader goes through :mod:`gridmap.store.frames`; this module decides what
of it is public and how a plan is chosen (``"published"``, ``"draft"`` or a version number).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from collections.abc import Iterator

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store import frames, plans
from gridmap.store.incident_stats import Filters
from gridmap.store.plans import Plan

INTERNAL = {
    "grids": ("parts",),
    "units": ("db_id", "site_type", "compound_id"),
    "current_units": ("db_id",),
    "communities": ("id",),
}
"""Columns the store reads for its own use (row ids, what validation needs) that users are not given."""


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only connection that sees one consistent state for all its reads."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        yield conn


def _public(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    return frame.drop(columns=[c for c in INTERNAL.get(kind, ()) if c in frame.columns])


def territories(conn: sa.Connection) -> pd.DataFrame:
    return frames.territories(conn)


def territory_name(conn: sa.Connection, territory: str) -> str | None:
    from gridmap.store.territories import name_of

    return name_of(conn, territory)


def communities(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    return _public(frames.communities(conn, territory), "communities")


def units(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The current units of the territory's communities (the columns ``build_units`` returns)."""
    return _public(frames.current_units(conn, territory), "current_units")


def layer(conn: sa.Connection, territory: str, name: str) -> gpd.GeoDataFrame:
    return frames.layer(conn, territory, name)


def plan(conn: sa.Connection, territory: str, which: str | int = "published") -> Plan:
    """The plan a reader means (see :func:`gridmap.store.plans.find`)."""
    return plans.find(conn, territory, which)


def plan_grids(conn: sa.Connection, chosen: Plan, territory: str) -> gpd.GeoDataFrame:
    return _public(frames.plan_grids(conn, chosen.id, territory), "grids")


def plan_units(conn: sa.Connection, chosen: Plan, territory: str) -> gpd.GeoDataFrame:
    return _public(frames.plan_units(conn, chosen.id, territory), "units")


def plan_microgrids(conn: sa.Connection, chosen: Plan, territory: str) -> gpd.GeoDataFrame:
    """The plan's micro-grids inside ``territory`` with their grid, places, households, building
    count, flag and leader's name (never the phone)."""
    from gridmap.store import microgrids

    return microgrids.frame(conn, chosen.id, territory)


def stations(conn: sa.Connection, territory: str, *, station_type: str | None = None,
             status: str | None = "open") -> gpd.GeoDataFrame:
    return frames.stations(conn, territory, station_type=station_type, status=status)


def staff(conn: sa.Connection, territory: str, *, on: date | None = None) -> gpd.GeoDataFrame:
    """The grid staff's assignments active on ``on`` (today), each with its published grid's
    households and outline, and the role's Chinese name; no phones."""
    from gridmap import staffing
    from gridmap.store import staff as staff_store
    from gridmap.store import territories

    row = territories.get(conn, territory)
    frame = staff_store.assignment_grids(conn, row.id, plans.published_id(conn, row.id), on or date.today())
    frame.insert(frame.columns.get_loc("role") + 1, "role_zh", [staffing.ROLES[r][0] for r in frame["role"]])
    return frame


def households(conn: sa.Connection, territory: str, *, on: date | None = None) -> gpd.GeoDataFrame:
    """The households register per grid of the published plan: outline, households, residents,
    elderly and one column per focus tag; counts only, nobody in them (and no key needed)."""
    from gridmap.services.households import counts

    found = counts(conn, territory, today=on)
    grids = frames.plan_grids(conn, plan(conn, territory).id, territory)[["grid_code", "grid_name", "kind",
                                                                          "community_code", "community_name", "geometry"]]
    tags = [t["tag"] for t in found["focus_tags"]]
    table = pd.DataFrame([{"grid_code": g["grid_code"], "households_registered": g["households"],
                           "residents": g["residents"], "elderly": g["elderly"], **{t: g["tags"].get(t, 0) for t in tags}}
                          for g in found["grids"]], columns=["grid_code", "households_registered", "residents", "elderly", *tags])
    out = grids.merge(table, on="grid_code", how="left")
    counted = ["households_registered", "residents", "elderly", *tags]
    out[counted] = out[counted].fillna(0).astype("int64")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=grids.crs)


def needs(conn: sa.Connection, territory: str, *, status: list[str] | None = None) -> gpd.GeoDataFrame:
    """The needs list with community and published grid (points in EPSG:4490; none where only the
    community is known)."""
    from gridmap.store import lists

    found = plans.published_above(conn, territory)
    return lists.needs(conn, territory, found[1] if found else None, status=status)


def resources(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The resources list with community and published grid; no contacts."""
    from gridmap.store import lists

    found = plans.published_above(conn, territory)
    return lists.resources(conn, territory, found[1] if found else None)


def projects(conn: sa.Connection, territory: str) -> pd.DataFrame:
    """The projects list with the ids of their needs and resources."""
    from gridmap.store import lists

    return lists.projects(conn, territory)


def registrations(conn: sa.Connection, territory: str, *, on: date | None = None) -> gpd.GeoDataFrame:
    """双报到: every registration with its kind, community, grid and hours served this year; no names."""
    from gridmap.services.registrations import listing

    return listing(conn, territory, names=False, on=on).drop(columns=["name", "organisation"])


def patrols(conn: sa.Connection, territory: str, *, week: str | None = None, on: date | None = None) -> gpd.GeoDataFrame:
    """The patrols' tracks started in an ISO week (default: the week of ``on``, today)."""
    from gridmap import patrols as rules
    from gridmap.services.patrols import city_zone
    from gridmap.store import patrols as store

    zone = city_zone()
    now = datetime.combine(on, datetime.min.time(), zone) if on else None
    start, end = rules.week_bounds(week, zone, now=now)
    return store.tracks(conn, territory, start=start, end=end, user_ids=None)


def incidents(conn: sa.Connection, territory: str, filters: Filters = Filters(), *,
              limit: int | None = None) -> gpd.GeoDataFrame:
    return frames.incidents(conn, territory, filters, limit=limit)


def crosswalk(conn: sa.Connection, chosen: Plan) -> pd.DataFrame:
    return frames.crosswalk(conn, chosen.id)


__all__ = ["snapshot", "territories", "territory_name", "communities", "units", "layer", "plan", "plan_grids", "plan_units",
           "plan_microgrids",
           "stations", "staff", "households", "needs", "resources", "projects", "registrations", "patrols", "incidents", "crosswalk", "INTERNAL"]
