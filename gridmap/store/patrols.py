"""Patrols in PostGIS (``patrols``, migration 0018): tracks written and read, and the coverage of
a week per published grid: the share of the grid's street length within 20 m of a track."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.sql import SUBTREE, read_geoframe, with_ancestors, with_subtree

NEAR_M = 20.0
"""A street is walked where a track passed within this many metres of it."""


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
         "src": source, "wkt": track.line.wkt}).first()
    if row is not None:
        return int(row.id), "stored" if row.inserted else "replaced"
    kept = conn.execute(sa.text("SELECT id FROM patrols WHERE user_id = :u AND started_at = :s"),
                        {"u": user_id, "s": track.started_at}).scalar_one()
    return int(kept), "kept"


def tracks(conn: sa.Connection, territory: str, *, start: datetime, end: datetime, user_id: int | None) -> gpd.GeoDataFrame:
    """The territory's tracks started in [start, end) (only ``user_id``'s when given)."""
    return read_geoframe(conn, sa.text(
        with_subtree() + "SELECT p.id AS patrol_id, p.walker, p.started_at, p.ended_at, p.points, p.source, "
        "ST_Length(p.geom::geography) AS length_m, p.geom FROM patrols p WHERE p.territory_id IN (SELECT id FROM sub) "
        "AND p.started_at >= :start AND p.started_at < :end AND (CAST(:u AS int) IS NULL OR p.user_id = :u) "
        "ORDER BY p.started_at"), {"territory": territory, "start": start, "end": end, "u": user_id})


def coverage(conn: sa.Connection, territory: str, plan_id: int, roads: tuple[str, str] | None, *, start: datetime,
             end: datetime) -> pd.DataFrame:
    """Per grid of plan ``plan_id`` in the territory, for tracks started in [start, end) filed in
    the territory's tree: the street length in it (the roads layer clipped to it, overlapping
    roads once), the length within :data:`NEAR_M` of a track, the walkers who passed through
    it, and its staff (with an account) who did not."""
    roads_sql = ("SELECT gs.code, ST_Union(ST_Intersection(f.geom, gs.geom)) AS geom FROM gs "
                 "JOIN layers l ON l.name = :roads_name JOIN territories o ON o.id = l.territory_id AND o.code = :roads_owner "
                 "JOIN layer_features f ON f.layer_id = l.id AND f.geom && gs.geom GROUP BY gs.code"
                 if roads else "SELECT NULL::text AS code, NULL::geometry AS geom WHERE false")
    return pd.read_sql_query(sa.text(
        with_ancestors(SUBTREE) + ", gs AS MATERIALIZED (SELECT g.id, g.code, g.geom FROM grids g WHERE g.plan_id = :p "
        "AND g.community_id IN (SELECT id FROM sub)), "
        # the week's tracks filed anywhere in the territory's tree (a district's walker in a community)
        "week AS MATERIALIZED (SELECT p.* FROM patrols p WHERE (p.territory_id IN (SELECT id FROM sub) "
        "OR p.territory_id IN (SELECT id FROM up)) AND p.started_at >= :start AND p.started_at < :end), "
        # what was walked near each grid: a track passing within 20 m of it counts, across its border too
        "walked AS (SELECT gs.code, ST_SetSRID(ST_Union(ST_Buffer(week.geom::geography, :near)::geometry), 4490) AS geom "
        "FROM gs JOIN week ON week.geom && ST_Expand(gs.geom, 0.001) AND ST_DWithin(week.geom::geography, "
        "gs.geom::geography, :near) GROUP BY gs.code), "
        f"streets AS MATERIALIZED ({roads_sql}), "
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
        "JOIN staff s ON s.id = a.staff_id AND s.role IN ('full_time_worker', 'part_time_worker', 'grid_leader') "
        "LEFT JOIN walkers wk ON wk.code = gs.code GROUP BY gs.code) "
        "SELECT gs.code AS grid_code, COALESCE(lengths.street_m, 0)::float8 AS street_m, "
        "COALESCE(lengths.walked_m, 0)::float8 AS walked_m, COALESCE(walkers.walkers, '{}') AS walkers, "
        "COALESCE(staffed.idle, '{}') AS not_patrolled FROM gs LEFT JOIN lengths ON lengths.code = gs.code "
        "LEFT JOIN walkers ON walkers.code = gs.code LEFT JOIN staffed ON staffed.code = gs.code ORDER BY 1"),
        conn, params={"territory": territory, "p": plan_id, "start": start, "end": end, "near": NEAR_M,
                      "roads_owner": roads[0] if roads else None, "roads_name": roads[1] if roads else None})


__all__ = ["insert", "tracks", "coverage", "NEAR_M"]
