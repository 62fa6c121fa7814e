"""Service stations and the 15-minute circle: station types, create/edit/close, the demo's
stations from OpenStreetMap points, and walking coverage per grid and community with the
underserved grids and suggested new sites (see gridmap.geo.walking for the routing choice)."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gridmap.errors import Invalid, StateConflict
from gridmap.geo import walking
from gridmap.store import answers, audit, frames, layers, territories
from gridmap.store import stations as store


class StationError(Invalid):
    """A station request that cannot be honoured (unknown type, point outside the territory ...),
    said in English and Chinese (422)."""


class StationClosed(StateConflict, StationError):
    """The station is closed: it cannot be edited or closed again (409)."""


def _outline(conn: sa.Connection, territory: str, *, envelope: bool = False):
    """A territory's outline (or bounding box) as a shapely geometry."""
    return shapely.from_wkb(bytes.fromhex(territories.outline_hex(conn, territory, envelope=envelope)))


def station_types() -> list[dict]:
    """The station types with Chinese and English names and the demo's OpenStreetMap mapping."""
    text = resources.files("gridmap").joinpath("data/station_types.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


TYPE_CODES = tuple(t["code"] for t in station_types())


def _check(station_type: str | None, name: str | None) -> None:
    if station_type is not None and station_type not in TYPE_CODES:
        raise StationError(f"unknown station type {station_type!r}; types are {', '.join(TYPE_CODES)}",
                           f"未知的站点类型 {station_type!r}；可用类型为 {'、'.join(TYPE_CODES)}")
    if name is not None and not name.strip():
        raise StationError("a station needs a name", "站点需要名称")


def create(engine: sa.Engine, territory: str, *, station_type: str, name: str, lon: float, lat: float,
           actor: str, address: str | None = None, opening_hours: str | None = None,
           services: list[str] | None = None) -> dict:
    _check(station_type, name)
    with engine.begin() as conn:
        territory_id = territories.at_point(conn, territory, lon, lat)
        if territory_id is None:
            raise StationError(f"lon {lon:.6f}, lat {lat:.6f} is outside territory {territory}",
                               f"经度 {lon:.6f}、纬度 {lat:.6f} 不在辖区 {territory} 内")
        station_id = store.insert(conn, territory_id=territory_id, station_type=station_type, name=name.strip(),
                                  lon=lon, lat=lat, address=address, opening_hours=opening_hours, services=services)
        audit.record(conn, actor=actor, action="station.create", table="stations", row_key=str(station_id),
                     after={"type": station_type, "name": name, "territory": territory})
        return store.get(conn, station_id)


def edit(engine: sa.Engine, station_id: int, changes: dict, *, actor: str) -> dict:
    _check(changes.get("station_type"), changes.get("name"))
    with engine.begin() as conn:
        before = store.get(conn, station_id, lock=True)
        if before["status"] == "closed":
            raise StationClosed(f"station {station_id} is closed", f"站点 {station_id} 已关闭")
        if "lon" in changes and territories.at_point(conn, before["territory"], changes["lon"], changes["lat"]) is None:
            raise StationError(f"the new location is outside territory {before['territory']}",
                               f"新位置不在辖区 {before['territory']} 内")
        store.update(conn, station_id, changes)
        after = store.get(conn, station_id)
        audit.record(conn, actor=actor, action="station.edit", table="stations", row_key=str(station_id),
                     before={k: before[k] for k in changes if k in before},
                     after={k: after[k] for k in changes if k in after})
        return after


def close(engine: sa.Engine, station_id: int, *, actor: str) -> dict:
    with engine.begin() as conn:
        before = store.get(conn, station_id, lock=True)
        if before["status"] == "closed":
            raise StationClosed(f"station {station_id} is already closed", f"站点 {station_id} 已经关闭")
        store.close(conn, station_id)
        audit.record(conn, actor=actor, action="station.close", table="stations", row_key=str(station_id),
                     before={"status": "open"}, after={"status": "closed"})
        return store.get(conn, station_id)


def load_demo_stations(engine: sa.Engine, territory: str = "990100") -> int:
    """The demo's stations: OpenStreetMap amenity points mapped onto station types by the
    documented table (gridmap/data/station_types.csv). Idempotent; returns how many there are."""
    mapping = {amenity: t["code"] for t in station_types() for amenity in t["demo_osm_amenity"].split(";") if amenity}
    with engine.begin() as conn:
        if not territories.exists(conn, territory):
            return 0
        root = territories.id_of(conn, territory)
        have = store.count(conn, root, "demo:osm/")
        if have:
            return have
        found = layers.find(conn, territory, ("pois",))
        if not found:
            return 0
        pois = frames.layer_in_area(conn, found[0], found[1], _outline(conn, territory))
        pois = pois[pois["amenity"].isin(mapping)]
        streets = pois["addr:street"] if "addr:street" in pois else [None] * len(pois)
        hours = pois["opening_hours"] if "opening_hours" in pois else [None] * len(pois)
        for osm_id, amenity, name, street, opening, point in zip(pois["id"], pois["amenity"], pois["name"], streets,
                                                                 hours, pois.geometry):
            store.insert(conn, territory_id=territories.at_point(conn, territory, point.x, point.y) or root,
                         station_type=mapping[amenity],
                         name=name if isinstance(name, str) and name else f"{amenity} {osm_id}",
                         lon=point.x, lat=point.y, address=street if isinstance(street, str) else None,
                         opening_hours=opening if isinstance(opening, str) else None, source_ref=f"demo:osm/{osm_id}")
        return len(pois)


# -- the 15-minute circle ------------------------------------------------------------------------
@dataclass
class Context:
    """What coverage needs of a territory: its walking network and where its households are."""

    network: walking.WalkNetwork
    demand: walking.Demand


_CACHE: dict[tuple, Context] = {}
_LOCK = threading.Lock()


def context(engine: sa.Engine, territory: str) -> Context:
    """The network and demand of a territory, built once per process and per version of the
    roads and buildings layers."""
    with engine.connect() as conn:
        roads_at = layers.find(conn, territory, ("roads",))
        buildings_at = layers.find(conn, territory, ("buildings",))
        if not roads_at or not buildings_at:
            raise StationError(f"territory {territory} (and its ancestors) needs 'roads' and 'buildings' layers",
                               f"辖区 {territory}（及其上级）需要 roads 和 buildings 图层")
        key = (str(engine.url), territory, layers.stamp(conn, [roads_at, buildings_at]))
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        area = _outline(conn, territory, envelope=True)
        roads = frames.layer_in_area(conn, roads_at[0], roads_at[1], area)
        buildings = frames.layer_in_area(conn, buildings_at[0], buildings_at[1], area)
    network = walking.build_network(roads)
    built = Context(network, walking.demand_from_buildings(network, buildings))
    with _LOCK:
        _CACHE[key] = built
    return built


def coverage(engine: sa.Engine, territory: str, *, types: list[str] | None = None,
             minutes: float = walking.DEFAULT_MINUTES, speed_m_per_min: float = walking.DEFAULT_SPEED_M_PER_MIN,
             threshold: float = 0.8) -> dict:
    """Share of households within ``minutes`` of walking of each station type, for the territory,
    per published grid and per community; grids below ``threshold`` are underserved."""
    types = types or list(TYPE_CODES)
    limit = minutes * speed_m_per_min
    ctx = context(engine, territory)
    with engine.connect() as conn:
        stations = frames.stations(conn, territory, places=False)
        grids = frames.published_grids(conn, territory)
    communities = grids[["community_code", "community", "geometry"]].dissolve(by="community_code", as_index=False)
    per_grid = grids[["grid_code", "community_code"]].copy()
    per_community = communities[["community_code", "community"]].copy()
    totals, underserved = {}, []
    for station_type in types:
        mine = stations[stations["station_type"] == station_type]
        ok = walking.covered(ctx.network, ctx.demand, mine, limit)
        total = float(ctx.demand.households.sum())
        reached = float((ctx.demand.households * ok).sum())
        totals[station_type] = {"stations": int(len(mine)), "households": total, "covered": reached,
                                "share": reached / total if total else None}
        g = walking.coverage_by_area(ctx.demand, ok, grids, "grid_code")
        per_grid[station_type] = g["share"].to_numpy()
        c = walking.coverage_by_area(ctx.demand, ok, communities, "community_code")
        per_community[station_type] = c["share"].to_numpy()
        if "households" not in per_grid:
            per_grid["households"] = g["households"].to_numpy()
            per_community["households"] = c["households"].to_numpy()
        for code, share, hh in zip(g["grid_code"], g["share"], g["households"]):
            if hh > 0 and share < threshold:
                underserved.append({"grid_code": code, "station_type": station_type, "share": round(float(share), 4),
                                    "households": float(hh)})
    return {"territory": territory, "minutes": minutes, "speed_m_per_min": speed_m_per_min, "threshold": threshold,
            "walk_m": limit, "types": totals, "grids": per_grid.round(4).replace({np.nan: None}).to_dict("records"),
            "communities": per_community.round(4).replace({np.nan: None}).to_dict("records"),
            "underserved": underserved}


MAX_AREAS_PER_REQUEST = 80


def service_areas(engine: sa.Engine, territory: str, station_type: str | None = None, *,
                  minutes: float = walking.DEFAULT_MINUTES,
                  speed_m_per_min: float = walking.DEFAULT_SPEED_M_PER_MIN) -> gpd.GeoDataFrame:
    """Each open station's walking service area (streets reachable in time, widened for drawing).

    Drawing one takes tens of milliseconds (after the territory's walking network, which takes
    seconds), so a request is limited to ``MAX_AREAS_PER_REQUEST`` stations (ask per type). The
    answer is kept in PostgreSQL under a key naming the roads and buildings layers and the
    stations it was made from: every server process, and a restarted one, reads it from there
    until one of them changes, without building the network."""
    with engine.connect() as conn:
        stations, key = _areas_key(conn, territory, station_type, minutes, speed_m_per_min)
        if stations.empty:
            return gpd.GeoDataFrame(stations, geometry="geometry", crs=4490)
        kept = answers.get(conn, key) if key else None
    if kept is not None:
        return gpd.read_parquet(io.BytesIO(kept))
    ctx = context(engine, territory)
    areas = walking.service_areas(ctx.network, stations, minutes * speed_m_per_min)
    body = io.BytesIO()
    areas.to_parquet(body)
    with engine.begin() as conn:
        answers.put(conn, key, kind="service_areas", territory=territory, body=body.getvalue())
    return areas


def _areas_key(conn: sa.Connection, territory: str, station_type: str | None, minutes: float,
               speed_m_per_min: float) -> tuple[gpd.GeoDataFrame, str | None]:
    """The open stations of a service-areas request and the key its answer is kept under (None
    without roads and buildings: nothing to key it by); refuses more than
    ``MAX_AREAS_PER_REQUEST`` stations."""
    stations = frames.stations(conn, territory, station_type=station_type, places=False)
    if stations.empty:
        return stations, None
    if len(stations) > MAX_AREAS_PER_REQUEST:
        raise StationError(f"{len(stations)} stations: draw at most {MAX_AREAS_PER_REQUEST} service areas at once; "
                           "choose a station type",
                           f"共 {len(stations)} 个站点：一次最多绘制 {MAX_AREAS_PER_REQUEST} 个服务范围；请选择站点类型")
    sources = [layers.find(conn, territory, ("roads",)), layers.find(conn, territory, ("buildings",))]
    if not all(sources):
        return stations, None
    made_from = layers.stamp(conn, [s for s in sources if s])
    stamp = hashlib.sha256(b"".join(shapely.to_wkb(stations.geometry.values)) +
                           repr(list(zip(stations["station_id"], stations["name"]))).encode()).hexdigest()
    return stations, answers.key_of("service_areas", territory, station_type, float(minutes), float(speed_m_per_min),
                                    made_from, stamp)


def warm(engine: sa.Engine, territories: list[str] | None = None) -> list[dict]:
    """Work out and keep the walking service areas of every station type of every territory with a
    published plan and open stations (or of ``territories``), at the stations map's default walk, where
    they are not kept already: so the first stations map of a type after an import, a station
    edit or a new road layer is read, not computed (the server does this in the background:
    :func:`gridmap.api.app.background_lifespan`). Returns what it did, one row per territory and
    type: ``{"territory", "type", "made"}`` (False: it was kept already, or too many stations
    to draw, or no roads and buildings)."""
    with engine.connect() as conn:
        wanted = store.open_types_by_territory(conn)
    done = []
    for territory, types in wanted.items():
        if territories is not None and territory not in territories:
            continue
        for station_type in types:
            try:
                with engine.connect() as conn:
                    _, key = _areas_key(conn, territory, station_type, walking.DEFAULT_MINUTES, walking.DEFAULT_SPEED_M_PER_MIN)
                    kept = key is None or answers.has(conn, key)
                if not kept:
                    service_areas(engine, territory, station_type, minutes=walking.DEFAULT_MINUTES)
            except StationError:  # more stations of the type than a map draws
                kept = True
            except Exception:  # noqa: BLE001 - a bad layer of one territory must not stop the others
                logging.getLogger("gridmap").exception("service areas of %s/%s could not be worked out",
                                                       territory, station_type)
                done.append({"territory": territory, "type": station_type, "made": False, "failed": True})
                continue
            done.append({"territory": territory, "type": station_type, "made": not kept})
    return done


def warm_quietly(database_url: str, answer) -> None:
    """:func:`warm` as the server's background pass runs it: in a child process of its own (the
    server holds the advisory lock meanwhile), at the lowest CPU priority (``nice 19``), with its
    own engine; what it did goes back through ``answer`` (the sending end of a pipe). In the
    server's own process the pass held the GIL and a core while the first planner opened after a
    start: Reykjavík's draft took 1.31–1.85 s to open on a newly loaded database, 1.12–1.24 s since
    (benchmarks/README.md)."""
    import os
    import signal

    from gridmap.store.db import engine_for

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server: the server ends this process
    os.nice(19 - os.nice(0))
    engine = engine_for(database_url)
    try:
        answer.send(warm(engine))
    finally:
        engine.dispose()
        answer.close()


def suggest(engine: sa.Engine, territory: str, station_type: str, k: int = 5, *,
            minutes: float = walking.DEFAULT_MINUTES, speed_m_per_min: float = walking.DEFAULT_SPEED_M_PER_MIN,
            candidates: int = 300, seed: int = 0) -> dict:
    """Sites for ``k`` new stations of a type that reach the most households not yet reached
    (greedy maximum coverage over candidate street nodes near the unreached households)."""
    if station_type not in TYPE_CODES:
        raise StationError(f"unknown station type {station_type!r}", f"未知的站点类型 {station_type!r}")
    limit = minutes * speed_m_per_min
    ctx = context(engine, territory)
    with engine.connect() as conn:
        stations = frames.stations(conn, territory, station_type=station_type, places=False)
    ok = walking.covered(ctx.network, ctx.demand, stations, limit)
    unreached = ~ok
    nodes = walking.candidate_nodes(ctx.network, ctx.demand, unreached, candidates, seed)
    matrix = walking.candidate_coverage(ctx.network, ctx.demand, nodes, limit, unreached)
    picks = walking.greedy_sites(matrix, ctx.demand.households * unreached, k)
    xy = ctx.network.xy[nodes[[r for r, _ in picks]]] if picks else np.zeros((0, 2))
    points = gpd.GeoSeries(shapely.points(xy), crs=ctx.network.crs).to_crs(4490)
    total = float(ctx.demand.households.sum())
    before = float((ctx.demand.households * ok).sum())
    added = [gain for _, gain in picks]
    return {"station_type": station_type, "k": k, "candidates": int(len(nodes)), "walk_m": limit,
            "share_before": before / total if total else None,
            "share_after": (before + sum(added)) / total if total else None,
            "sites": [{"rank": i + 1, "lon": round(p.x, 7), "lat": round(p.y, 7), "households_added": g}
                      for i, (p, g) in enumerate(zip(points, added))]}




def import_stations(engine: sa.Engine, territory: str, frame: gpd.GeoDataFrame, *, type_column: str = "station_type",
                    name_column: str = "name", actor: str = "import", default_type: str | None = None) -> int:
    """Import point stations from a GeoDataFrame (any CRS) in one transaction: all or nothing.

    Every row needs a known type (``type_column`` or ``default_type``), a name and a point inside
    the territory; the error names the first rows that do not."""
    points = frame.to_crs(4490)
    if not points.geom_type.isin(["Point"]).all():
        raise StationError("stations must be points", "站点必须是点")
    types = points[type_column] if type_column in points else pd.Series(default_type, index=points.index)
    bad_type = points.index[~types.isin(TYPE_CODES)]
    if len(bad_type):
        raise StationError(f"rows {list(bad_type[:5])}: unknown station type; types are {', '.join(TYPE_CODES)}",
                           f"第 {list(bad_type[:5])} 行：未知的站点类型；可用类型为 {'、'.join(TYPE_CODES)}")
    if name_column not in points or points[name_column].isna().any():
        raise StationError(f"every station needs a name in column {name_column!r}", f"每个站点都需要在 {name_column!r} 列中有名称")
    with engine.begin() as conn:
        inserted = 0
        for row_id, kind, name, point in zip(points.index, types, points[name_column], points.geometry):
            territory_id = territories.at_point(conn, territory, point.x, point.y)
            if territory_id is None:
                raise StationError(f"row {row_id} ({name}) lies outside territory {territory}; nothing was imported",
                                   f"第 {row_id} 行（{name}）不在辖区 {territory} 内；未导入任何站点")
            store.insert(conn, territory_id=territory_id, station_type=kind, name=str(name), lon=point.x, lat=point.y,
                         address=_text(points, "address", row_id), opening_hours=_text(points, "opening_hours", row_id),
                         source_ref=f"import:{row_id}")
            inserted += 1
        audit.record(conn, actor=actor, action="station.import", table="stations", row_key=territory,
                     after={"stations": inserted})
    return inserted


def _text(frame: gpd.GeoDataFrame, column: str, row_id) -> str | None:
    if column not in frame:
        return None
    value = frame.at[row_id, column]
    return value if isinstance(value, str) and value else None


__all__ = ["StationError", "station_types", "TYPE_CODES", "create", "edit", "close", "import_stations",
           "load_demo_stations", "context",
           "coverage", "service_areas", "suggest"]
