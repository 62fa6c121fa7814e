"""Emergencies in PostGIS (migration 0021): switching on over a territory or part of it, the grids
inside, check-ins, grid statuses, the event log, the board and the figures of the report."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound, StateConflict
from gridmap.store.db import prepared
from gridmap.store.jsonb import to_json
from gridmap.store.sql import with_subtree


class EmergencyNotFound(NotFound):
    """No emergency of that id."""


class EmergencyOn(StateConflict):
    """The territory is in emergency mode already (one at a time)."""


def start(conn: sa.Connection, territory: str, territory_id: int, plan_id: int, *, kind: str, reason: str,
          scope: dict, started_at: datetime, checkin_due: datetime, actor: str, synthetic: bool) -> int:
    """Switch on: the area is the union of the chosen streets and communities (``scope["territories"]``,
    within ``territory``), the chosen grids of plan ``plan_id`` (``scope["grids"]``) and a drawn
    polygon (``scope["polygon"]``, GeoJSON), or the whole territory when none is chosen; its grids
    are the plan's grids of the territory whose inner point lies in it. The emergency's id."""
    try:
        with conn.begin_nested():
            emergency_id = conn.execute(sa.text(
                with_subtree() + ", chosen AS (SELECT t.geom FROM territories t JOIN sub ON sub.id = t.id "
                "WHERE t.code = ANY(CAST(:codes AS text[])) UNION ALL SELECT g.geom FROM grids g WHERE g.plan_id = :p "
                "AND g.code = ANY(CAST(:grids AS text[])) AND g.community_id IN (SELECT id FROM sub) UNION ALL "
                "SELECT ST_Intersection(ST_SetSRID(ST_GeomFromGeoJSON(:polygon), 4490), t.geom) FROM territories t "
                "WHERE t.code = :territory AND CAST(:polygon AS text) IS NOT NULL), "
                "area AS (SELECT CASE WHEN count(*) = 0 THEN (SELECT geom FROM territories WHERE code = :territory) "
                "ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(geom)), 3)) END AS geom FROM chosen) "
                "INSERT INTO emergencies (territory_id, kind, reason, scope, started_at, started_by, checkin_due, "
                "synthetic, geom) SELECT :t, :kind, :reason, CAST(:scope AS jsonb), :at, :actor, :due, :syn, area.geom "
                "FROM area RETURNING id"),
                {"territory": territory, "t": territory_id, "p": plan_id, "codes": scope.get("territories") or [],
                 "grids": scope.get("grids") or [], "polygon": to_json(scope["polygon"]) if scope.get("polygon") else None,
                 "kind": kind, "reason": reason, "scope": to_json(scope), "at": started_at,
                 "actor": actor, "due": checkin_due, "syn": synthetic}).scalar_one()
    except sa.exc.IntegrityError as exc:
        if "uq_emergencies_one_on" in str(exc.orig):
            raise EmergencyOn(f"territory {territory} is in emergency mode already: end it first",
                              f"辖区 {territory} 已处于应急状态：请先结束") from None
        raise
    conn.execute(sa.text(
        with_subtree() + "INSERT INTO emergency_grids (emergency_id, grid_code, grid_id, community_id) "
        "SELECT e.id, g.code, g.id, g.community_id FROM emergencies e JOIN grids g ON g.plan_id = :p "
        "AND g.community_id IN (SELECT id FROM sub) AND g.geom && e.geom AND ST_Covers(e.geom, ST_PointOnSurface(g.geom)) "
        "WHERE e.id = :e"), {"territory": territory, "p": plan_id, "e": emergency_id})
    return int(emergency_id)


COLUMNS = ("e.id, t.code AS territory, e.kind, e.reason, e.scope, e.started_at, e.started_by, e.checkin_due, "
           "e.ended_at, e.ended_by, e.end_note, e.synthetic")


def get(conn: sa.Connection, emergency_id: int, *, lock: bool = False, share: bool = False) -> dict:
    """An emergency; ``lock``: its row locked for an update (the end), ``share``: for a write that
    must not pass the end (a check-in, a status)."""
    row = conn.execute(sa.text(
        f"SELECT {COLUMNS} FROM emergencies e JOIN territories t ON t.id = e.territory_id WHERE e.id = :e"
        + (" FOR UPDATE OF e" if lock else " FOR SHARE OF e" if share else "")), {"e": emergency_id}).mappings().first()
    if row is None:
        raise EmergencyNotFound(f"no emergency {emergency_id}", f"没有编号为 {emergency_id} 的应急事件")
    return dict(row)


def listing(conn: sa.Connection, territory: str) -> list[dict]:
    """The emergencies of the territory, its tree and above it, newest first."""
    rows = conn.execute(sa.text(
        with_subtree() + f", grids AS (SELECT emergency_id, count(*) AS n FROM emergency_grids GROUP BY emergency_id) "
        f"SELECT {COLUMNS}, COALESCE(grids.n, 0) AS grids FROM emergencies e JOIN territories t ON t.id = e.territory_id "
        "LEFT JOIN grids ON grids.emergency_id = e.id WHERE e.territory_id IN (SELECT id FROM sub) "
        "OR ST_Intersects(e.geom, (SELECT geom FROM territories WHERE code = :territory)) ORDER BY e.started_at DESC"),
        {"territory": territory}).mappings().all()
    return [dict(r) for r in rows]


def on_at(conn: sa.Connection, lon: float, lat: float, at: datetime | None = None) -> int | None:
    """The emergency on at a point at a time (now by default; the latest switched on, when two
    overlap); None where none was."""
    return prepared(conn, (
        "SELECT id FROM emergencies WHERE started_at <= COALESCE(CAST(:at AS timestamptz), now()) "
        "AND (ended_at IS NULL OR ended_at >= COALESCE(CAST(:at AS timestamptz), now())) "
        "AND geom && ST_SetSRID(ST_Point(CAST(:x AS float8), CAST(:y AS float8)), 4490) "
        "AND ST_Covers(geom, ST_SetSRID(ST_Point(:x, :y), 4490)) ORDER BY started_at DESC LIMIT 1"),
        {"x": lon, "y": lat, "at": at}).scalar()


def any_on(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM emergencies WHERE ended_at IS NULL)")).scalar())


def end(conn: sa.Connection, emergency_id: int, *, at: datetime, actor: str, note: str | None) -> None:
    conn.execute(sa.text("UPDATE emergencies SET ended_at = :at, ended_by = :actor, end_note = :note WHERE id = :e"),
                 {"e": emergency_id, "at": at, "actor": actor, "note": note})


def event(conn: sa.Connection, emergency_id: int, *, at: datetime, actor: str, kind: str, grid_code: str | None = None,
          detail: dict | None = None) -> None:
    conn.execute(sa.text(
        "INSERT INTO emergency_events (emergency_id, at, actor, kind, grid_code, detail) "
        "VALUES (:e, :at, :actor, :kind, :grid, CAST(:detail AS jsonb))"),
        {"e": emergency_id, "at": at, "actor": actor, "kind": kind, "grid": grid_code,
         "detail": to_json(detail or {}, lenient=True)})


def grid_codes(conn: sa.Connection, emergency_id: int) -> list[str]:
    return list(conn.execute(sa.text("SELECT grid_code FROM emergency_grids WHERE emergency_id = :e ORDER BY grid_code"),
                             {"e": emergency_id}).scalars())


def grid_communities(conn: sa.Connection, emergency_id: int, codes: list[str]) -> dict[str, str]:
    """The community code of each of ``codes`` among the emergency's grids."""
    rows = conn.execute(sa.text(
        "SELECT eg.grid_code, c.code FROM emergency_grids eg JOIN territories c ON c.id = eg.community_id "
        "WHERE eg.emergency_id = :e AND eg.grid_code = ANY(:g)"), {"e": emergency_id, "g": codes}).all()
    return dict(rows)


def assigned_grids(conn: sa.Connection, emergency_id: int, user_id: int, on: date) -> list[str]:
    """The emergency's grids the account's staff hold on the day (the city's day: their own grids
    to check in for)."""
    return list(conn.execute(sa.text(
        "SELECT DISTINCT eg.grid_code FROM emergency_grids eg JOIN staff_assignments a ON a.grid_code = eg.grid_code "
        "JOIN staff s ON s.id = a.staff_id AND s.user_id = :u WHERE eg.emergency_id = :e AND a.valid_from <= :on "
        "AND (a.valid_to IS NULL OR a.valid_to >= :on) ORDER BY 1"),
        {"e": emergency_id, "u": user_id, "on": on}).scalars())


def grid_at(conn: sa.Connection, emergency_id: int, lon: float, lat: float) -> str | None:
    """The emergency's grid at a point."""
    return conn.execute(sa.text(
        "SELECT eg.grid_code FROM emergency_grids eg JOIN grids g ON g.id = eg.grid_id WHERE eg.emergency_id = :e "
        "AND g.geom && ST_SetSRID(ST_Point(:x, :y), 4490) AND ST_Covers(g.geom, ST_SetSRID(ST_Point(:x, :y), 4490)) "
        "ORDER BY 1 LIMIT 1"), {"e": emergency_id, "x": lon, "y": lat}).scalar()


def check_in(conn: sa.Connection, emergency_id: int, grids: list[str], *, user_id: int | None, walker: str,
             at: datetime, on_duty: bool, note: str | None, client_id: str, lon: float | None,
             lat: float | None) -> list[dict]:
    """Record a check-in for each of ``grids`` (the same ``client_id`` again: kept once) and, on
    duty, each grid's first check-in; per grid whether it was new and the grid's first check-in."""
    new = set(conn.execute(sa.text(
        "INSERT INTO emergency_checkins (emergency_id, grid_code, user_id, walker, at, on_duty, note, client_id, geom) "
        "SELECT :e, g, :u, :w, :at, :duty, :note, :client, CASE WHEN CAST(:x AS float8) IS NULL THEN NULL "
        "ELSE ST_SetSRID(ST_Point(:x, :y), 4490) END FROM unnest(CAST(:grids AS text[])) AS g "
        "ON CONFLICT ON CONSTRAINT uq_emergency_checkins_client DO NOTHING RETURNING grid_code"),
        {"e": emergency_id, "grids": grids, "u": user_id, "w": walker, "at": at, "duty": on_duty, "note": note,
         "client": client_id, "x": lon, "y": lat}).scalars())
    rows = conn.execute(sa.text(
        # the grid's first check-in on duty: a check-in made earlier, kept on a phone while offline,
        # takes the place of one that reached the server first
        "UPDATE emergency_grids SET checked_in_by = CASE WHEN :duty AND (checked_in_at IS NULL OR checked_in_at > :at) "
        "THEN :w ELSE checked_in_by END, checked_in_at = CASE WHEN :duty AND (checked_in_at IS NULL OR checked_in_at > :at) "
        "THEN :at ELSE checked_in_at END WHERE emergency_id = :e AND grid_code = ANY(:grids) RETURNING grid_code, checked_in_at"),
        {"e": emergency_id, "grids": sorted(new), "duty": on_duty, "at": at, "w": walker}).all() if new else []
    first = dict(rows)
    if set(grids) - new:
        first.update(conn.execute(sa.text(
            "SELECT grid_code, checked_in_at FROM emergency_grids WHERE emergency_id = :e AND grid_code = ANY(:g)"),
            {"e": emergency_id, "g": sorted(set(grids) - new)}).all())
    return [{"grid_code": g, "stored": g in new, "first_check_in": first.get(g)} for g in grids]


def set_status(conn: sa.Connection, emergency_id: int, grid_code: str, *, status: str, at: datetime, actor: str,
               note: str | None) -> str:
    """Set a grid's status; the status it had."""
    row = conn.execute(sa.text(
        "UPDATE emergency_grids eg SET status = :s, status_at = :at, status_by = :actor, status_note = :note "
        "FROM (SELECT status FROM emergency_grids WHERE emergency_id = :e AND grid_code = :g FOR UPDATE) old "
        "WHERE eg.emergency_id = :e AND eg.grid_code = :g RETURNING old.status"),
        {"e": emergency_id, "g": grid_code, "s": status, "at": at, "actor": actor, "note": note}).first()
    if row is None:
        raise NotFound(f"grid {grid_code} is not in emergency {emergency_id}", f"网格 {grid_code} 不在应急事件 {emergency_id} 范围内")
    return row[0]


def missing_checkins(conn: sa.Connection, now: datetime) -> pd.DataFrame:
    """The grids of emergencies on whose check-in deadline has passed without one (or came late
    and was not yet escalated as far), locked for the sweep: ``emergency_id, grid_code,
    checkin_due, checked_in_at, escalation_level, community_code, street_code``."""
    return pd.read_sql_query(sa.text(
        "SELECT eg.emergency_id, eg.grid_code, e.checkin_due, eg.checked_in_at, eg.escalation_level, "
        "c.code AS community_code, s.code AS street_code FROM emergency_grids eg JOIN emergencies e ON e.id = eg.emergency_id "
        "LEFT JOIN territories c ON c.id = eg.community_id LEFT JOIN territories s ON s.id = c.parent_id "
        "WHERE e.ended_at IS NULL AND e.checkin_due < :now AND (eg.checked_in_at IS NULL OR eg.checked_in_at > e.checkin_due) "
        "AND eg.escalation_level < 2 ORDER BY eg.emergency_id, eg.grid_code FOR UPDATE OF eg SKIP LOCKED"),
        conn, params={"now": now})


def escalate_checkin(conn: sa.Connection, emergency_id: int, grid_code: str, level: int, at: datetime) -> None:
    conn.execute(sa.text("UPDATE emergency_grids SET escalation_level = :l, escalated_at = :at "
                         "WHERE emergency_id = :e AND grid_code = :g"),
                 {"e": emergency_id, "g": grid_code, "l": level, "at": at})


def board(conn: sa.Connection, emergency_id: int, *, focus_tags: list[str], near_m: float) -> pd.DataFrame:
    """Per grid of the emergency: its status, first check-in (and by whom), escalation, the last
    position checked in from, the incidents reported in it during the emergency (open, overdue,
    and those of emergency categories), households with a focus tag (counts only), active resources within
    ``near_m`` of it, and the latest door-knock campaign's targets and households reached."""
    return pd.read_sql_query(sa.text(
        "WITH e AS MATERIALIZED (SELECT id, started_at, ended_at, checkin_due FROM emergencies WHERE id = :e), "
        "eg AS MATERIALIZED (SELECT eg.*, g.geom, g.lineage, g.households AS plan_households FROM emergency_grids eg "
        "LEFT JOIN grids g ON g.id = eg.grid_id WHERE eg.emergency_id = :e), "
        "pos AS (SELECT DISTINCT ON (grid_code) grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, at FROM emergency_checkins "
        "WHERE emergency_id = :e AND geom IS NOT NULL ORDER BY grid_code, at DESC), "
        "inc AS (SELECT i.grid_lineage, count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected')) AS open_incidents, "
        "count(*) FILTER (WHERE c.time_unit = 'minutes') AS emergency_incidents, count(*) FILTER (WHERE i.status NOT IN "
        "('closed', 'rejected') AND i.due_at < now()) AS overdue_incidents FROM incidents i JOIN incident_categories c ON "
        "c.code = i.category_code WHERE i.emergency_id = :e GROUP BY i.grid_lineage), "
        "focus AS (SELECT eg.grid_code, count(DISTINCT h.id) AS focus_households FROM eg JOIN households h ON "
        "h.geom && eg.geom AND ST_Covers(eg.geom, h.geom) JOIN residents r ON r.household_id = h.id "
        "AND r.tags && CAST(:tags AS text[]) GROUP BY eg.grid_code), "
        "res AS (SELECT eg.grid_code, count(r.id) AS resources FROM eg JOIN resources r ON r.active AND r.geom IS NOT NULL "
        "AND r.geom && ST_Expand(eg.geom, :deg) AND ST_DWithin(r.geom::geography, eg.geom::geography, :near) "
        "GROUP BY eg.grid_code), "
        "camp AS (SELECT id FROM campaigns WHERE emergency_id = :e ORDER BY id DESC LIMIT 1), "
        "knock AS (SELECT t.grid_code, count(*) AS targets, count(*) FILTER (WHERE t.last_outcome IN "
        "('visited', 'refused', 'issue_found')) AS reached FROM campaign_targets t "
        "WHERE t.campaign_id = (SELECT id FROM camp) GROUP BY t.grid_code) "
        "SELECT eg.grid_code, c.code AS community_code, c.name AS community, eg.status, eg.status_at, eg.status_by, "
        "eg.status_note, eg.checked_in_at, eg.checked_in_by, eg.escalation_level, e.checkin_due, pos.lon, pos.lat, "
        "COALESCE(inc.open_incidents, 0) AS open_incidents, COALESCE(inc.emergency_incidents, 0) AS emergency_incidents, "
        "COALESCE(inc.overdue_incidents, 0) AS overdue_incidents, COALESCE(focus.focus_households, 0) AS focus_households, "
        "COALESCE(res.resources, 0) AS resources, knock.targets, knock.reached, eg.plan_households AS households "
        "FROM eg CROSS JOIN e LEFT JOIN territories c ON c.id = eg.community_id LEFT JOIN pos ON pos.grid_code = eg.grid_code "
        "LEFT JOIN inc ON inc.grid_lineage = eg.lineage LEFT JOIN focus ON focus.grid_code = eg.grid_code "
        "LEFT JOIN res ON res.grid_code = eg.grid_code LEFT JOIN knock ON knock.grid_code = eg.grid_code "
        "ORDER BY eg.grid_code"),
        conn, params={"e": emergency_id, "tags": focus_tags, "near": near_m, "deg": near_m / 80_000})


def resources_near(conn: sa.Connection, emergency_id: int, grid_code: str, near_m: float) -> list[dict]:
    """The active resources within ``near_m`` of one of the emergency's grids, nearest first (0 m:
    inside it): what command can send there."""
    rows = conn.execute(sa.text(
        "WITH g AS (SELECT g.geom FROM emergency_grids eg JOIN grids g ON g.id = eg.grid_id WHERE eg.emergency_id = :e "
        "AND eg.grid_code = :grid) SELECT r.id AS resource_id, r.name, r.kind, r.categories, r.capacity, r.hours, "
        "r.address, round(ST_Distance(r.geom::geography, g.geom::geography)::numeric, 0)::float8 AS distance_m, "
        "ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat FROM resources r, g WHERE r.active AND r.geom IS NOT NULL "
        "AND r.geom && ST_Expand(g.geom, :deg) AND ST_DWithin(r.geom::geography, g.geom::geography, :near) "
        "ORDER BY distance_m, r.capacity DESC NULLS LAST, r.name"),
        {"e": emergency_id, "grid": grid_code, "near": near_m, "deg": near_m / 80_000}).mappings().all()
    return [dict(r) for r in rows]


def grid_geometries(conn: sa.Connection, emergency_id: int, simplify: float = 0.00002):
    """The emergency's grids as (grid_code, GeoJSON geometry text), and its area."""
    grids = conn.execute(sa.text(
        "SELECT eg.grid_code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, :s), 6) FROM emergency_grids eg "
        "JOIN grids g ON g.id = eg.grid_id WHERE eg.emergency_id = :e ORDER BY 1"), {"e": emergency_id, "s": simplify}).all()
    area = conn.execute(sa.text("SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :s), 6) FROM emergencies "
                                "WHERE id = :e"), {"e": emergency_id, "s": simplify}).scalar()
    return grids, area


def events(conn: sa.Connection, emergency_id: int) -> pd.DataFrame:
    return pd.read_sql_query(sa.text(
        "SELECT at, actor, kind, grid_code, detail FROM emergency_events WHERE emergency_id = :e ORDER BY at, id"),
        conn, params={"e": emergency_id})


def grid_rows(conn: sa.Connection, emergency_id: int) -> pd.DataFrame:
    return pd.read_sql_query(sa.text(
        "SELECT eg.grid_code, c.code AS community_code, eg.status, eg.checked_in_at, eg.checked_in_by, "
        "eg.escalation_level FROM emergency_grids eg LEFT JOIN territories c ON c.id = eg.community_id "
        "WHERE eg.emergency_id = :e ORDER BY 1"), conn, params={"e": emergency_id})


def incidents_in(conn: sa.Connection, emergency_id: int) -> pd.DataFrame:
    """The incidents reported in the emergency (inside its area while it was on): category (and
    whether an emergency one), department, reported, the first step taken on it after the report
    (its response) and closed."""
    return pd.read_sql_query(sa.text(
        "SELECT i.public_id, i.category_code, c.time_unit = 'minutes' AS emergency_category, d.code AS department_code, "
        "d.name AS department, COALESCE(d.name_en, d.name) AS department_en, i.reported_at, i.closed_at, i.status, "
        "(SELECT min(ev.at) FROM incident_events ev WHERE ev.incident_id = i.id AND ev.action NOT IN ('report', 'escalate') "
        "AND ev.at >= i.reported_at) AS responded_at FROM incidents i JOIN incident_categories c ON "
        "c.code = i.category_code LEFT JOIN departments d ON d.id = i.department_id WHERE i.emergency_id = :e "
        "ORDER BY i.reported_at"),
        conn, params={"e": emergency_id})


def households_reached(conn: sa.Connection, emergency_id: int) -> dict:
    """Of the emergency's campaigns: targets, and those reached (a knock with an outcome other than
    nobody home) while it was on."""
    row = conn.execute(sa.text(
        "WITH e AS (SELECT started_at, COALESCE(ended_at, now()) AS ended_at FROM emergencies WHERE id = :e), "
        "t AS (SELECT t.id, t.household_id FROM campaign_targets t JOIN campaigns c ON c.id = t.campaign_id "
        "WHERE c.emergency_id = :e) SELECT count(*), count(*) FILTER (WHERE t.household_id IS NOT NULL), "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM campaign_visits v CROSS JOIN e WHERE v.target_id = t.id AND "
        "v.outcome IN ('visited', 'refused', 'issue_found') AND v.visited_at BETWEEN e.started_at AND e.ended_at)), "
        "count(*) FILTER (WHERE t.household_id IS NOT NULL AND EXISTS (SELECT 1 FROM campaign_visits v CROSS JOIN e "
        "WHERE v.target_id = t.id AND v.outcome IN ('visited', 'refused', 'issue_found') AND v.visited_at BETWEEN "
        "e.started_at AND e.ended_at)) FROM t"), {"e": emergency_id}).one()
    return {"targets": int(row[0]), "households": int(row[1]), "reached": int(row[2]), "households_reached": int(row[3])}


def grids_near(conn: sa.Connection, territory: str, plan_id: int, layer: tuple[str, str], *, within_m: float,
               limit: int) -> pd.DataFrame:
    """The plan's comprehensive grids of the territory within ``within_m`` of a feature of
    ``layer`` (owner, name), nearest first: ``grid_code, community_code, lon, lat`` (a point inside)."""
    return pd.read_sql_query(sa.text(
        with_subtree() + ", gs AS MATERIALIZED (SELECT g.code, g.geom, g.community_id FROM grids g WHERE g.plan_id = :p "
        "AND g.kind = 'comprehensive' AND g.community_id IN (SELECT id FROM sub)), "
        "f AS MATERIALIZED (SELECT f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id AND l.name = :layer "
        "JOIN territories o ON o.id = l.territory_id AND o.code = :owner) "
        "SELECT gs.code AS grid_code, c.code AS community_code, ST_X(ST_PointOnSurface(gs.geom)) AS lon, "
        "ST_Y(ST_PointOnSurface(gs.geom)) AS lat, d.m AS distance_m FROM gs JOIN territories c ON c.id = gs.community_id "
        "CROSS JOIN LATERAL (SELECT min(ST_Distance(f.geom::geography, gs.geom::geography)) AS m FROM f "
        "WHERE f.geom && ST_Expand(gs.geom, :deg)) d WHERE d.m <= :within ORDER BY d.m, gs.code LIMIT :n"),
        conn, params={"territory": territory, "p": plan_id, "owner": layer[0], "layer": layer[1], "within": within_m,
                      "deg": within_m / 50_000, "n": limit})


def mark_synthetic(conn: sa.Connection, emergency_id: int, actors: list[str]) -> dict[str, int]:
    """Label a drill's records synthetic (the emergency, its campaigns and whistles, and the
    incidents ``actors`` reported in its grids while it was on), so the figures of real work can
    leave them out."""
    counts = {"emergencies": conn.execute(sa.text("UPDATE emergencies SET synthetic = true WHERE id = :e"),
                                          {"e": emergency_id}).rowcount,
              "campaigns": conn.execute(sa.text("UPDATE campaigns SET synthetic = true WHERE emergency_id = :e"),
                                        {"e": emergency_id}).rowcount,
              "whistles": conn.execute(sa.text("UPDATE whistles SET synthetic = true WHERE emergency_id = :e"),
                                       {"e": emergency_id}).rowcount}
    counts["incidents"] = conn.execute(sa.text(
        "UPDATE incidents i SET synthetic = true WHERE i.emergency_id = :e AND EXISTS (SELECT 1 FROM incident_events ev "
        "WHERE ev.incident_id = i.id AND ev.action = 'report' AND ev.actor = ANY(:actors))"),
        {"e": emergency_id, "actors": actors}).rowcount
    return counts


__all__ = ["resources_near", "grids_near", "mark_synthetic", "EmergencyNotFound", "EmergencyOn", "start", "get", "listing", "on_at", "any_on", "end", "event",
           "grid_codes", "grid_communities", "assigned_grids", "grid_at", "check_in", "set_status", "missing_checkins",
           "escalate_checkin", "board", "grid_geometries", "events", "grid_rows", "incidents_in", "households_reached"]
