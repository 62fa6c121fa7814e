"""The notebook API behind ``import gridmap as gm``: what the service holds, as GeoDataFrames.

    >>> import gridmap as gm                              # doctest: +SKIP
    >>> gm.connect()                                      # the local PostGIS (or GRIDMAP_DATABASE_URL)
    >>> gm.territories().query("level == 'district'")
    >>> plan = gm.plan("990100")                          # the published plan
    >>> plan.grids.explore(column="households")
    >>> gm.incidents("990100", category="CG01", start="2026-01-01")
    >>> plan.export("reykjavik.zip", format="shp", crs="gk3", encoding="utf-8")

Every read runs in one snapshot and returns EPSG:4490 GeoDataFrames (codes as text), through the
same service functions the exports and the API use (:mod:`gridmap.services.reading`). The pure
functions (``gm.build_units``, ``gm.partition``, ``gm.merge_layers``, ``gm.household_coverage``,
``gm.export``) need no database at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.geo.profile import Profile
from gridmap.services import profiles, reading
from gridmap.store.incident_stats import Filters

_ENGINE: sa.Engine | None = None


@dataclass(frozen=True)
class Connection:
    """Where the notebook API reads from (the password is never shown)."""

    engine: sa.Engine = field(repr=False)
    url: str
    postgis: str

    def __repr__(self) -> str:
        return f"<gridmap connection {self.url} (PostGIS {self.postgis})>"


def connect(url: str | None = None) -> Connection:
    """Connect the notebook API to a PostGIS database and make it the default for later calls.

    ``url=None`` uses ``GRIDMAP_DATABASE_URL`` when set, else the private local cluster that
    ``gridmap up`` started. The schema must be migrated (``gridmap migrate``).

    Example
    -------
    >>> gm.connect()  # doctest: +SKIP
    <gridmap connection postgresql+psycopg2://gridmap:***@127.0.0.1:54321/gridmap (PostGIS 3.3.2)>
    """
    from gridmap.store.db import engine_for, normalise_url, postgis_version, resolve_url

    global _ENGINE
    engine = engine_for(normalise_url(url) if url else resolve_url())
    with engine.connect() as conn:
        postgis = postgis_version(conn)
    _ENGINE = engine
    return Connection(engine, engine.url.render_as_string(hide_password=True), postgis)


def _engine() -> sa.Engine:
    return _ENGINE if _ENGINE is not None else connect().engine


def import_territory(communities, *, streets=None, district=None, parent: str | None = None,
                     parent_name: str | None = None, fields: dict[str, str] | None = None, crs=None,
                     encoding: str | None = None, replace: bool = False, dry_run: bool = False, findings_path=None):
    """Create or update territories from a district's boundary files, as ``gridmap territory
    import`` does: checked first (codes, overlaps, gaps, GCJ-02), then stored all together or not
    at all. Returns the summary; ``.findings`` lists what the checks found. ``parent_name``: the
    name of the city above when it is created.

    Example
    -------
    >>> summary = gm.import_territory("社区.shp", streets="街道.gpkg", parent="511800")  # doctest: +SKIP
    >>> [f.en for f in summary.findings]  # doctest: +SKIP
    """
    from gridmap.services.boundaries import import_boundaries

    return import_boundaries(_engine(), communities, streets=streets, district=district, parent=parent,
                             parent_name=parent_name, fields=fields, crs=crs, encoding=encoding, replace=replace, dry_run=dry_run,
                             findings_path=findings_path, actor="notebook")


def _snapshot():
    """A read-only connection that sees one consistent state for all its reads."""
    return reading.snapshot(_engine())


def territories(level: str | None = None) -> pd.DataFrame:
    """All territories as a DataFrame with ``code, name, level, parent_code, area_m2``.

    Example
    -------
    >>> gm.territories(level="district")  # doctest: +SKIP
    """
    with _snapshot() as conn:
        table = reading.territories(conn)
    return table if level is None else table[table["level"] == level].reset_index(drop=True)


def units(territory: str) -> gpd.GeoDataFrame:
    """The units (compounds, blocks, dedicated sites) of a territory's communities.

    Example
    -------
    >>> u = gm.units("990100")  # doctest: +SKIP
    >>> u.groupby("unit_kind")["households"].sum()  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.units(conn, territory)


def communities(territory: str) -> gpd.GeoDataFrame:
    """The communities at or below a territory (``code, name``, street, district, geometry): the
    ``communities`` argument of ``gm.merge_layers`` and ``gm.build_units``.

    Example
    -------
    >>> gm.communities("990102").plot()  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.communities(conn, territory)


def layer(territory: str, name: str) -> gpd.GeoDataFrame:
    """An imported layer (``roads``, ``buildings``, ``sites`` ...) of a territory or the nearest
    territory above it that has one, cut to the territory's bounding box.

    Example
    -------
    >>> roads = gm.layer("990102", "roads")  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.layer(conn, territory, name)


@dataclass(frozen=True)
class PlanReport:
    """A plan's partition or merge report: the summary figures and one row per flagged grid."""

    summary: dict
    flags: pd.DataFrame

    def __repr__(self) -> str:
        s = self.summary
        figures = ", ".join(f"{k}={v}" for k, v in s.items() if not isinstance(v, (dict, list)))
        counts = self.flags["flag"].value_counts().to_dict() if len(self.flags) else {}
        return f"<PlanReport {figures}; flags {counts or 'none'}>"


@dataclass(repr=False)
class Plan:
    """One plan of a territory: its grids (and, on first use, its units) and its report."""

    territory: str
    territory_name: str
    status: str
    version: int
    id: int
    published_at: datetime | None
    grids: gpd.GeoDataFrame
    report: PlanReport
    profile: Profile  # the rules the plan was made with (its band, codes, road classes ...)
    _units: gpd.GeoDataFrame | None = None
    _microgrids: gpd.GeoDataFrame | None = None

    @property
    def microgrids(self) -> gpd.GeoDataFrame:
        """The plan's micro-grids (微网格: 50–80 households of buildings or 单元, coded below their
        grid) with their grid, places, households, building count, flag and leader's name (read
        once, then kept); empty until ``gridmap partition --micro --plan ID`` made them.

        Example
        -------
        >>> gm.plan("511802", "draft").microgrids.explore(column="households")  # doctest: +SKIP
        """
        if self._microgrids is None:
            with _snapshot() as conn:
                self._microgrids = reading.plan_microgrids(conn, reading.plan(conn, self.territory, self.version),
                                                           self.territory)
        return self._microgrids

    @property
    def units(self) -> gpd.GeoDataFrame:
        """The plan's units with the grid each belongs to (read once, then kept)."""
        if self._units is None:
            with _snapshot() as conn:
                self._units = reading.plan_units(conn, reading.plan(conn, self.territory, self.version), self.territory)
        return self._units

    def explore(self, column: str = "households", **kwargs: Any):
        """An interactive map of the grids (geopandas ``explore``; folium underneath), coloured by
        ``column``, with code, community and households in the tooltip."""
        kwargs.setdefault("tooltip", ["grid_code", "community_name", "households", "kind"])
        kwargs.setdefault("cmap", "YlOrRd")
        kwargs.setdefault("tiles", None)
        return self.grids.explore(column=column, **kwargs)

    def export(self, path, *, format: str | None = None, crs: object = "4490", encoding: str = "utf-8",
               layers: tuple[str, ...] = ("grids",)):
        """Write this plan for a government system; see :func:`gridmap.export`."""
        from gridmap.geo.export import export as _export

        chosen = {"grids": lambda: self.grids, "units": lambda: self.units, "microgrids": lambda: self.microgrids}
        unknown = [name for name in layers if name not in chosen]
        if unknown:
            raise ValueError(f"a Plan exports grids, units and microgrids; use gm.export for {', '.join(unknown)}")
        return _export({name: chosen[name]() for name in layers}, path, format=format, crs=crs, encoding=encoding)

    def __repr__(self) -> str:
        hh = self.grids["households"]
        figures = (f"{len(self.grids)} grids, {int(hh.sum()):,} households "
                   f"(min {int(hh.min())} / median {float(hh.median()):g} / max {int(hh.max())})") if len(hh) else "no grids"
        return f"<Plan {self.territory} {self.territory_name} v{self.version} {self.status}: {figures}>"


def plan(territory: str, status: str | int = "published") -> Plan:
    """A territory's plan: ``"published"`` (default), the newest ``"draft"``, or a version number.

    A territory inside a larger plan (a district of a city plan) gets that plan's grids inside it.

    Example
    -------
    >>> p = gm.plan("990100")  # doctest: +SKIP
    >>> p.grids.plot(column="households")  # doctest: +SKIP
    >>> p.report.flags.head()  # doctest: +SKIP
    """
    from gridmap.services.planning import report as plan_report

    with _snapshot() as conn:
        chosen = reading.plan(conn, territory, status)
        grids = reading.plan_grids(conn, chosen, territory)
    report = plan_report(_engine(), chosen.id)
    flags = pd.DataFrame(report.get("flags") or [])
    if len(flags) and "grid_code" in flags:
        flags = flags[flags["grid_code"].isin(set(grids["grid_code"]))].reset_index(drop=True)
    name = chosen.territory_name if chosen.territory == territory else None
    if name is None:
        with _snapshot() as conn:
            name = reading.territory_name(conn, territory)
    return Plan(territory, name or chosen.territory_name, chosen.status, chosen.version, chosen.id,
                chosen.published_at, grids, PlanReport(dict(report.get("summary") or {}), flags),
                profiles.of_parameters(chosen.parameters))


def stations(territory: str, *, station_type: str | None = None, status: str | None = "open") -> gpd.GeoDataFrame:
    """Service stations at or below a territory, with the published grid each stands in.

    Example
    -------
    >>> gm.stations("990100", station_type="family_doctor")  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.stations(conn, territory, station_type=station_type, status=status)


def staff(territory: str, *, on: str | date | None = None) -> gpd.GeoDataFrame:
    """The grid staff of a territory on a day (today): one row per active assignment with the
    person, their role (key and Chinese name), the grid's code, households and outline (EPSG:4490,
    none where the published plan no longer has that code). Phones are left out.

    Example
    -------
    >>> gm.staff("511802").plot(column="role_zh")  # doctest: +SKIP
    """
    day = date.fromisoformat(on) if isinstance(on, str) else on
    with _snapshot() as conn:
        return reading.staff(conn, territory, on=day)


def households(territory: str, *, on: str | date | None = None) -> gpd.GeoDataFrame:
    """The households register per grid of the published plan (EPSG:4490 outlines): households
    registered, residents, elderly (60 and over on ``on``, default today) and one column per
    focus tag (独居老人, 留守儿童 …, the territory's profile). Counts only: no person's data
    reaches a notebook, so no key is needed.

    Example
    -------
    >>> gm.households("511802").plot(column="独居老人", legend=True)  # doctest: +SKIP
    """
    day = date.fromisoformat(on) if isinstance(on, str) else on
    with _snapshot() as conn:
        return reading.households(conn, territory, on=day)


def needs(territory: str, *, status: str | list[str] | None = None) -> gpd.GeoDataFrame:
    """The needs list (需求清单) of a territory: category, description, urgency, status, community
    and published grid, points in EPSG:4490 (empty where only the community is known).

    Example
    -------
    >>> gm.needs("511802", status="open").groupby("grid_code").size()  # doctest: +SKIP
    """
    statuses = [status] if isinstance(status, str) else list(status) if status else None
    with _snapshot() as conn:
        return reading.needs(conn, territory, status=statuses)


def resources(territory: str) -> gpd.GeoDataFrame:
    """The resources list (资源清单): name, kind, categories served, capacity, hours, community and
    grid (no contacts).

    Example
    -------
    >>> gm.resources("511802").explode("categories").groupby("categories").size()  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.resources(conn, territory)


def projects(territory: str) -> pd.DataFrame:
    """The projects list (项目清单): name, owner, budget, dates, status, outcome, and the ids of
    the needs and resources of each.

    Example
    -------
    >>> gm.projects("511802").groupby("status")["budget"].sum()  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.projects(conn, territory)


def registrations(territory: str, *, on: str | date | None = None) -> gpd.GeoDataFrame:
    """双报到: the party members and units registered in a territory, each with its kind, community,
    published grid, day of registration and hours served this year (up to ``on``'s year); points in
    EPSG:4490, no names.

    Example
    -------
    >>> gm.registrations("511802").groupby("grid_code")["hours"].sum().nlargest(10)  # doctest: +SKIP
    """
    day = date.fromisoformat(on) if isinstance(on, str) else on
    with _snapshot() as conn:
        return reading.registrations(conn, territory, on=day)


def patrols(territory: str, *, week: str | None = None) -> gpd.GeoDataFrame:
    """The patrols' tracks (巡查) of an ISO week (``"2026-W49"``; default this week): walker,
    start, end, points, length in metres, the line in EPSG:4490. A notebook reads the database
    directly, as an administrator would: tracks are personal data, keep them so.

    Example
    -------
    >>> gm.patrols("511802", week="2026-W49").groupby("walker")["length_m"].sum()  # doctest: +SKIP
    """
    with _snapshot() as conn:
        return reading.patrols(conn, territory, week=week)


def emergency_board(emergency_id: int) -> gpd.GeoDataFrame:
    """An emergency's board (平战结合) as a GeoDataFrame: each grid of it with its status, check-in
    (on time, late, missing, waiting), how far a miss went, incidents, focus households (counts),
    resources near it and door-knock progress, and the grid's polygon in EPSG:4490. The report of
    an ended one: ``gm.emergency_report(id)``.

    Example
    -------
    >>> board = gm.emergency_board(1)  # doctest: +SKIP
    >>> board.explore(column="status")  # doctest: +SKIP
    """
    import pandas as pd
    import shapely

    from gridmap.services import emergencies

    engine = _engine()
    board = emergencies.board(engine, emergency_id)
    shapes = {f["properties"]["grid_code"]: shapely.geometry.shape(f["geometry"])
              for f in emergencies.map_of(engine, emergency_id)["features"]}
    frame = pd.DataFrame(board["grids"]).drop(columns=["position"])
    return gpd.GeoDataFrame(frame, geometry=[shapes.get(code) for code in frame["grid_code"]], crs=4490)


def emergency_report(emergency_id: int) -> dict:
    """An emergency's report (timeline, check-ins, incidents by department, grids by status over
    time, households reached, whistles), as the API gives it."""
    from gridmap.services import emergencies

    return emergencies.report(_engine(), emergency_id)


def incidents(territory: str, *, category: str | None = None, status: str | list[str] | None = None,
              start: str | datetime | None = None, end: str | datetime | None = None, street: str | None = None,
              community: str | None = None, limit: int | None = None) -> gpd.GeoDataFrame:
    """Incidents routed into a territory, filtered as on the dashboard (category, status, reported
    between ``start`` and ``end``, street, community). No reporter details.

    Example
    -------
    >>> inc = gm.incidents("990100", start="2026-01-01", status=["dispatched", "claimed"])  # doctest: +SKIP
    >>> inc.groupby("grid_code")["overdue"].mean().sort_values().tail()  # doctest: +SKIP
    """
    statuses = (status,) if isinstance(status, str) else tuple(status) if status else None
    filters = Filters(category=category, statuses=statuses, start=_when(start), end=_when(end), street=street,
                      community=community)
    with _snapshot() as conn:
        return reading.incidents(conn, territory, filters, limit=limit)


def _when(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def station_coverage(territory: str, *, types: list[str] | None = None, minutes: float = 15.0,
                     threshold: float = 0.8) -> dict[str, pd.DataFrame]:
    """The 15-minute circle from the database: per station type the share of households within
    walking reach, per grid and per community, and the underserved grids (share < ``threshold``).

    Returns DataFrames ``types``, ``grids``, ``communities`` and ``underserved``.

    Example
    -------
    >>> cov = gm.station_coverage("990100", minutes=15)  # doctest: +SKIP
    >>> cov["underserved"].query("station_type == 'elderly_university'")  # doctest: +SKIP
    """
    from gridmap.services.stations import coverage

    result = coverage(_engine(), territory, types=types, minutes=minutes, threshold=threshold)
    return {"types": pd.DataFrame(result["types"]).T.rename_axis("station_type").reset_index(),
            "grids": pd.DataFrame(result["grids"]), "communities": pd.DataFrame(result["communities"]),
            "underserved": pd.DataFrame(result["underserved"], columns=["grid_code", "station_type", "share",
                                                                         "households"])}


__all__ = ["Connection", "connect", "territories", "units", "communities", "layer", "Plan", "PlanReport", "plan", "stations", "incidents",
           "station_coverage", "staff", "households", "needs", "resources", "projects",
           "registrations", "patrols", "emergency_board", "emergency_report"]
