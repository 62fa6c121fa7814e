"""Patrols in PostGIS (``patrols``, migrations 0018–0019): tracks written (each point's time as the
line's measure) and read, the incidents their walker reported on them, the coverage of a week per
published grid (the share of the grid's street length within 20 m of a track, its buildings
passed), the last time each building of a grid was passed, and whose tracks a reader may see."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.sql import SUBTREE, read_geoframe, with_ancestors, with_subtree

NEAR_M = 20.0
"""A street is walked, and a building visited, where a track passed within this many metres of it."""
LEADER_ROLES = ("grid_leader", "supervisor")
"""Staff who see the tracks of the other staff of their grids (网格长, 网格指导员)."""
WALKER_ROLES = ("full_time_worker", "part_time_worker", "grid_leader")
"""Staff expected to patrol their grids every week."""


def insert(conn: sa.Connection, territory_id: int, *, user_id: int | None, walker: str, track,
           source: str) -> tuple[int, str]:
    """Store a track: (its id, ``stored``); the walker's track starting at that moment already
    kept (``kept``: sent twice), or replaced by this one when this has more points (``replaced``:
    the whole walk after a part of it)."""
    row = conn.execute(sa.text(
        "INSERT INTO patrols (territory_id, user_id, walker, started_at, ended_at, points, source, geom) "
        "VALUES (:t, :u, :w, :s, :e, :n, :src, ST_GeomFromText(:wkt, 4490)) "
        "ON CONFLICT ON CONSTRAINT uq_patrols_walker_start DO UPDATE SET ended_at = EXCLUDED.ended_at, "
        "points = EXCLUDED.points, source = EXCLUDED.source, geom = EXCLUDED.geom WHERE EXCLUDED.points > patrols.points "
        "RETURNING id, (xmax = 0) AS inserted"),
        {"t": territory_id, "u": user_id, "w": walker, "s": track.started_at, "e": track.ended_at, "n": track.points,
         "src": source, "wkt": track.wkt_m}).first()
    if row is not None:
        return int(row.id), "stored" if row.inserted else "replaced"
    kept = conn.execute(sa.text("SELECT id FROM patrols WHERE user_id = :u AND started_at = :s"),
                        {"u": user_id, "s": track.started_at}).scalar_one()
    return int(kept), "kept"


def link_incidents(conn: sa.Connection, patrol_id: int, grace: timedelta) -> list[str]:
    """Link to patrol ``patrol_id`` the incidents its walker reported while on it (from its start
    to ``grace`` after its end) that no patrol holds yet; their public numbers."""
    return list(conn.execute(sa.text(
        "UPDATE incidents i SET patrol_id = p.id FROM patrols p JOIN users u ON u.id = p.user_id "
        "WHERE p.id = :p AND i.patrol_id IS NULL AND i.source = 'api' AND i.reported_at >= p.started_at "
        "AND i.reported_at <= p.ended_at + :grace AND EXISTS (SELECT 1 FROM incident_events e WHERE "
        "e.incident_id = i.id AND e.action = 'report' AND e.actor = u.username) RETURNING i.public_id"),
        {"p": patrol_id, "grace": grace}).scalars())


PATROL_OF_REPORT = ("(SELECT p.id FROM patrols p JOIN users u ON u.id = p.user_id WHERE u.username = {walker} "
                    "AND p.started_at <= {at} AND p.ended_at + {grace} >= {at} ORDER BY p.started_at DESC LIMIT 1)")
"""The patrol a report belongs to, as an SQL expression of the reporter's user name, the report
time and the grace (parameters named in the braces): the walk its reporter was on when reporting
(started before, ended at most ``grace`` before: the phone sends a walk as it goes), the latest
such. :func:`gridmap.store.incidents.insert` links a new report with it as it stores it."""


def tracks(conn: sa.Connection, territory: str, *, start: datetime, end: datetime,
           user_ids: list[int] | None) -> gpd.GeoDataFrame:
    """The territory's tracks started in [start, end) (only those of ``user_ids`` when given), with
    the incidents reported on each."""
    return read_geoframe(conn, sa.text(
        with_subtree() + "SELECT p.id AS patrol_id, p.walker, p.started_at, p.ended_at, p.points, p.source, "
        "ST_Length(ST_Force2D(p.geom)::geography) AS length_m, COALESCE((SELECT array_agg(i.public_id ORDER BY "
        "i.reported_at) FROM incidents i WHERE i.patrol_id = p.id), '{}') AS incidents, ST_Force2D(p.geom) AS geom "
        "FROM patrols p WHERE p.territory_id IN (SELECT id FROM sub) "
        "AND p.started_at >= :start AND p.started_at < :end "
        "AND (CAST(:all AS boolean) OR p.user_id = ANY(CAST(:users AS int[]))) "
        "ORDER BY p.started_at"), {"territory": territory, "start": start, "end": end, "all": user_ids is None,
                                   "users": list(user_ids or [])})


def led_walkers(conn: sa.Connection, user_id: int, on: date) -> list[int]:
    """The accounts whose tracks ``user_id`` may read: their own, and, when they are a grid leader
    or supervisor (:data:`LEADER_ROLES`) assigned to grids on ``on``, those of the staff assigned
    to the same grids that day."""
    return sorted({user_id, *conn.execute(sa.text(
        "WITH mine AS (SELECT a.grid_code FROM staff s JOIN staff_assignments a ON a.staff_id = s.id "
        "WHERE s.user_id = :u AND s.role = ANY(:leaders) AND a.valid_from <= :on "
        "AND (a.valid_to IS NULL OR a.valid_to >= :on)) "
        "SELECT DISTINCT s.user_id FROM staff_assignments a JOIN staff s ON s.id = a.staff_id "
        "WHERE a.grid_code IN (SELECT grid_code FROM mine) AND s.user_id IS NOT NULL AND a.valid_from <= :on "
        "AND (a.valid_to IS NULL OR a.valid_to >= :on)"),
        {"u": user_id, "leaders": list(LEADER_ROLES), "on": on}).scalars()})


def building_visits(conn: sa.Connection, territory: str, plan_id: int, grid_code: str, buildings: tuple[str, str], *,
                    start: datetime, end: datetime, since: datetime, user_ids: list[int] | None) -> gpd.GeoDataFrame:
    """The buildings of grid ``grid_code`` (of plan ``plan_id``; those of layer ``buildings``,
    (owner, name), whose inner point it holds), each with whether a track started in [start, end)
    passed within :data:`NEAR_M` of it (any walker's: what the coverage counts), and the last time
    in [since, end) a track of ``user_ids`` (every walker's when None) did, with its walker: the
    time read from the track where it came closest. Only tracks filed in the territory's tree or
    above it count."""
    return read_geoframe(conn, sa.text(
        with_ancestors(SUBTREE) + ", g AS MATERIALIZED (SELECT geom FROM grids WHERE plan_id = :p AND code = :grid), "
        "b AS MATERIALIZED (SELECT f.id, f.properties, f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id "
        "JOIN territories o ON o.id = l.territory_id AND o.code = :owner, g WHERE l.name = :layer AND f.geom && g.geom "
        "AND ST_Covers(g.geom, ST_PointOnSurface(f.geom))), "
        "t AS MATERIALIZED (SELECT p.walker, p.user_id, p.started_at, p.geom FROM patrols p, g "
        "WHERE p.geom && ST_Expand(g.geom, 0.001) AND p.started_at >= :since AND p.started_at < :end "
        "AND (p.territory_id IN (SELECT id FROM sub) OR p.territory_id IN (SELECT id FROM up))) "
        "SELECT b.id AS building_id, COALESCE(b.properties->>'building_name', b.properties->>'name', "
        "b.properties->>'名称') AS building_name, b.properties->>'compound_name' AS compound_name, "
        "EXISTS (SELECT 1 FROM t WHERE t.started_at >= :start AND t.geom && ST_Expand(b.geom, 0.001) "
        "AND ST_DWithin(ST_Force2D(t.geom)::geography, b.geom::geography, :near)) AS in_week, "
        "v.at AS last_visit, v.walker, b.geom FROM b LEFT JOIN LATERAL (SELECT t.walker, "
        "to_timestamp(ST_InterpolatePoint(t.geom, ST_ClosestPoint(ST_Force2D(t.geom), b.geom))) AS at FROM t "
        "WHERE (CAST(:all AS boolean) OR t.user_id = ANY(CAST(:users AS int[]))) AND t.geom && ST_Expand(b.geom, 0.001) "
        "AND ST_DWithin(ST_Force2D(t.geom)::geography, b.geom::geography, :near) ORDER BY 2 DESC LIMIT 1) v ON true "
        "ORDER BY b.id"),
        {"territory": territory, "p": plan_id, "grid": grid_code, "owner": buildings[0], "layer": buildings[1],
         "start": start, "end": end, "since": since, "all": user_ids is None, "users": list(user_ids or []),
         "near": NEAR_M})


def coverage(conn: sa.Connection, territory: str, plan_id: int, roads: tuple[str, str] | None,
             buildings: tuple[str, str] | None, *, start: datetime, end: datetime) -> pd.DataFrame:
    """Per grid of plan ``plan_id`` in the territory, for tracks started in [start, end) filed in
    the territory's tree: the street length in it (the roads layer clipped to it, overlapping
    roads once), the length within :data:`NEAR_M` of a track, its buildings (those of the
    buildings layer whose inner point it holds) and how many a track passed within
    :data:`NEAR_M` of, the walkers who passed through it, and its staff (with an account) who did
    not."""
    buildings_sql = ("SELECT gs.code, count(*) AS buildings, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM patrols p "
                     "WHERE p.geom && ST_Expand(f.geom, 0.0005) AND p.started_at >= :start AND p.started_at < :end "
                     "AND (p.territory_id IN (SELECT id FROM sub) OR p.territory_id IN (SELECT id FROM up)) "
                     "AND ST_DWithin(ST_Force2D(p.geom)::geography, f.geom::geography, :near))) AS visited FROM gs "
                     "JOIN layers l ON l.name = :b_name JOIN territories o ON o.id = l.territory_id AND o.code = :b_owner "
                     "JOIN layer_features f ON f.layer_id = l.id AND f.geom && gs.geom "
                     "AND ST_Covers(gs.geom, ST_PointOnSurface(f.geom)) GROUP BY gs.code"
                     if buildings else "SELECT NULL::text AS code, 0 AS buildings, 0 AS visited WHERE false")
    roads_sql = ("SELECT gs.code, ST_Union(ST_Intersection(f.geom, gs.geom)) AS geom FROM gs "
                 "JOIN layers l ON l.name = :roads_name JOIN territories o ON o.id = l.territory_id AND o.code = :roads_owner "
                 "JOIN layer_features f ON f.layer_id = l.id AND f.geom && gs.geom GROUP BY gs.code"
                 if roads else "SELECT NULL::text AS code, NULL::geometry AS geom WHERE false")
    return pd.read_sql_query(sa.text(
        with_ancestors(SUBTREE) + ", gs AS MATERIALIZED (SELECT g.id, g.code, g.geom FROM grids g WHERE g.plan_id = :p "
        "AND g.community_id IN (SELECT id FROM sub)), "
        # the week's tracks filed anywhere in the territory's tree (a district's walker in a community)
        "week AS MATERIALIZED (SELECT p.id, p.user_id, p.walker, ST_Force2D(p.geom) AS geom FROM patrols p WHERE (p.territory_id IN (SELECT id FROM sub) "
        "OR p.territory_id IN (SELECT id FROM up)) AND p.started_at >= :start AND p.started_at < :end), "
        # what was walked near each grid: a track passing within 20 m of it counts, across its border too
        "walked AS (SELECT gs.code, ST_SetSRID(ST_Union(ST_Buffer(week.geom::geography, :near)::geometry), 4490) AS geom "
        "FROM gs JOIN week ON week.geom && ST_Expand(gs.geom, 0.001) AND ST_DWithin(week.geom::geography, "
        "gs.geom::geography, :near) GROUP BY gs.code), "
        f"streets AS MATERIALIZED ({roads_sql}), "
        f"blds AS ({buildings_sql}), "
        "lengths AS (SELECT s.code, ST_Length(s.geom::geography) AS street_m, CASE WHEN w.geom IS NULL THEN 0 "
        "ELSE ST_Length(ST_Intersection(s.geom, w.geom)::geography) END AS walked_m FROM streets s "
        "LEFT JOIN walked w ON w.code = s.code), "
        "walkers AS (SELECT gs.code, array_agg(DISTINCT week.walker ORDER BY week.walker) AS walkers, "
        "array_agg(DISTINCT week.user_id) FILTER (WHERE week.user_id IS NOT NULL) AS users FROM gs "
        "JOIN week ON week.geom && gs.geom AND ST_Intersects(week.geom, gs.geom) GROUP BY gs.code), "
        "staffed AS (SELECT gs.code, array_agg(DISTINCT s.name ORDER BY s.name) FILTER (WHERE s.user_id IS NOT NULL "
        "AND NOT (s.user_id = ANY(COALESCE(wk.users, '{}')))) AS idle FROM gs "
        "JOIN staff_assignments a ON a.grid_id = gs.id AND a.valid_from < CAST(:end AS date) "
        "AND (a.valid_to IS NULL OR a.valid_to >= CAST(:start AS date)) "
        "JOIN staff s ON s.id = a.staff_id AND s.role = ANY(:walker_roles) "
        "LEFT JOIN walkers wk ON wk.code = gs.code GROUP BY gs.code) "
        "SELECT gs.code AS grid_code, COALESCE(lengths.street_m, 0)::float8 AS street_m, "
        "COALESCE(lengths.walked_m, 0)::float8 AS walked_m, COALESCE(walkers.walkers, '{}') AS walkers, "
        "COALESCE(staffed.idle, '{}') AS not_patrolled, COALESCE(blds.buildings, 0)::int AS buildings, "
        "COALESCE(blds.visited, 0)::int AS buildings_visited FROM gs LEFT JOIN lengths ON lengths.code = gs.code "
        "LEFT JOIN blds ON blds.code = gs.code "
        "LEFT JOIN walkers ON walkers.code = gs.code LEFT JOIN staffed ON staffed.code = gs.code ORDER BY 1"),
        conn, params={"territory": territory, "p": plan_id, "start": start, "end": end, "near": NEAR_M,
                      "roads_owner": roads[0] if roads else None, "roads_name": roads[1] if roads else None,
                      "b_owner": buildings[0] if buildings else None, "b_name": buildings[1] if buildings else None,
                      "walker_roles": list(WALKER_ROLES)})


__all__ = ["insert", "link_incidents", "PATROL_OF_REPORT", "tracks", "led_walkers", "building_visits", "coverage",
           "NEAR_M", "LEADER_ROLES", "WALKER_ROLES"]
