"""Door-knocking campaigns (敲门行动) in PostGIS (migration 0021): a campaign and its targets (every
registered household, and every building with none registered, each with its grid), the knocks,
and the progress per grid and per worker."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.jsonb import to_json
from gridmap.store.sql import with_subtree


class CampaignNotFound(NotFound):
    """No campaign (or target) of that id."""


def create(conn: sa.Connection, territory: str, territory_id: int, plan_id: int, buildings: tuple[str, str] | None, *,
           name: str, purpose: str | None, questions: list[dict], starts_at: datetime, deadline: datetime,
           emergency_id: int | None, actor: str, synthetic: bool) -> tuple[int, int]:
    """A campaign over the territory (inside the emergency's area when one is given): its targets
    are the registered households and the buildings of layer ``buildings`` (owner, name) that have
    none, each in the plan's grid holding it. (id, number of targets)."""
    campaign_id = conn.execute(sa.text(
        "INSERT INTO campaigns (territory_id, emergency_id, name, purpose, questions, starts_at, deadline, created_by, "
        "synthetic) VALUES (:t, :e, :name, :purpose, CAST(:q AS jsonb), :start, :deadline, :by, :syn) RETURNING id"),
        {"t": territory_id, "e": emergency_id, "name": name, "purpose": purpose,
         "q": to_json(questions), "start": starts_at, "deadline": deadline, "by": actor,
         "syn": synthetic}).scalar_one()
    params = {"territory": territory, "p": plan_id, "c": campaign_id, "e": emergency_id,
              "owner": buildings[0] if buildings else None, "layer": buildings[1] if buildings else None}
    area = ("area AS MATERIALIZED (SELECT geom FROM emergencies WHERE id = :e UNION ALL SELECT geom FROM territories "
            "WHERE code = :territory AND CAST(:e AS int) IS NULL), "
            "gs AS MATERIALIZED (SELECT g.code, g.geom FROM grids g, area WHERE g.plan_id = :p AND g.community_id IN "
            "(SELECT id FROM sub) AND g.geom && area.geom AND ST_Covers(area.geom, ST_PointOnSurface(g.geom))) ")
    households = conn.execute(sa.text(
        with_subtree(area) + "INSERT INTO campaign_targets (campaign_id, household_id, building_id, label, grid_code, geom) "
        "SELECT :c, h.id, h.building_feature_id, concat_ws(' ', h.building_label, h.stairwell || '单元', h.room), "
        "gs.code, h.geom FROM households h JOIN LATERAL (SELECT gs.code FROM gs WHERE gs.geom && h.geom AND "
        "ST_Covers(gs.geom, h.geom) ORDER BY gs.code LIMIT 1) gs ON true WHERE h.territory_id IN (SELECT id FROM sub) "
        "ORDER BY h.id"), params).rowcount
    empty = 0
    if buildings:
        empty = conn.execute(sa.text(
            with_subtree(area) + "INSERT INTO campaign_targets (campaign_id, building_id, label, grid_code, geom) "
            "SELECT :c, f.id, COALESCE(NULLIF(concat_ws(' ', f.properties->>'compound_name', "
            "COALESCE(f.properties->>'building_name', f.properties->>'name')), ''), '#' || f.id), gs.code, p.pt "
            "FROM layer_features f JOIN layers l ON l.id = f.layer_id AND l.name = :layer JOIN territories o "
            "ON o.id = l.territory_id AND o.code = :owner CROSS JOIN LATERAL (SELECT ST_PointOnSurface(f.geom) AS pt) p "
            "JOIN LATERAL (SELECT gs.code FROM gs WHERE gs.geom && p.pt AND ST_Covers(gs.geom, p.pt) ORDER BY gs.code "
            "LIMIT 1) gs ON true WHERE NOT EXISTS (SELECT 1 FROM households h WHERE h.building_feature_id = f.id) "
            "ORDER BY f.id"), params).rowcount
    return int(campaign_id), int(households + empty)


def get(conn: sa.Connection, campaign_id: int) -> dict:
    row = conn.execute(sa.text(
        "SELECT c.id, t.code AS territory, c.emergency_id, c.name, c.purpose, c.questions, c.starts_at, c.deadline, "
        "c.created_by, c.closed_at, c.synthetic, (SELECT count(*) FROM campaign_targets x WHERE x.campaign_id = c.id) "
        "AS targets FROM campaigns c JOIN territories t ON t.id = c.territory_id WHERE c.id = :c"),
        {"c": campaign_id}).mappings().first()
    if row is None:
        raise CampaignNotFound(f"no campaign {campaign_id}", f"没有编号为 {campaign_id} 的敲门行动")
    return dict(row)


def listing(conn: sa.Connection, territory: str) -> list[dict]:
    rows = conn.execute(sa.text(
        with_subtree() + "SELECT c.id, t.code AS territory, c.emergency_id, c.name, c.purpose, c.starts_at, c.deadline, "
        "c.closed_at, c.synthetic FROM campaigns c JOIN territories t ON t.id = c.territory_id "
        "WHERE c.territory_id IN (SELECT id FROM sub) ORDER BY c.starts_at DESC, c.id DESC"),
        {"territory": territory}).mappings().all()
    return [dict(r) for r in rows]


def target(conn: sa.Connection, target_id: int) -> dict:
    """A target with its campaign, grid, community and point."""
    row = conn.execute(sa.text(
        "SELECT x.id, x.campaign_id, x.household_id, x.building_id, x.label, x.grid_code, c.code AS community_code, "
        "ST_X(x.geom) AS lon, ST_Y(x.geom) AS lat FROM campaign_targets x LEFT JOIN LATERAL (SELECT t.code FROM grids g "
        "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories t ON t.id = g.community_id "
        "WHERE g.code = x.grid_code LIMIT 1) c ON true WHERE x.id = :x"),
        {"x": target_id}).mappings().first()
    if row is None:
        raise CampaignNotFound(f"no campaign target {target_id}", f"没有编号为 {target_id} 的敲门对象")
    return dict(row)


def visit(conn: sa.Connection, campaign_id: int, target_id: int, *, outcome: str, answers: dict, note: str | None,
          at: datetime, visitor: str, user_id: int | None, client_id: str, need_id: int | None,
          incident_public_id: str | None) -> tuple[int, bool]:
    """Record a knock; the same ``client_id`` from the same visitor again: kept once. (id, new)."""
    row = conn.execute(sa.text(
        "INSERT INTO campaign_visits (campaign_id, target_id, outcome, answers, note, visited_at, visitor, user_id, "
        "client_id, need_id, incident_public_id) VALUES (:c, :x, :o, CAST(:a AS jsonb), :note, :at, :v, :u, :client, "
        ":need, :inc) ON CONFLICT ON CONSTRAINT uq_campaign_visits_client DO NOTHING RETURNING id"),
        {"c": campaign_id, "x": target_id, "o": outcome, "a": to_json(answers), "note": note,
         "at": at, "v": visitor, "u": user_id, "client": client_id, "need": need_id, "inc": incident_public_id}).scalar()
    if row is not None:
        conn.execute(sa.text(  # the target's latest knock (a knock entered late does not displace a newer one)
            "UPDATE campaign_targets SET last_outcome = :o, last_visited_at = :at, last_visitor = :v WHERE id = :x "
            "AND (last_visited_at IS NULL OR last_visited_at <= :at)"), {"x": target_id, "o": outcome, "at": at, "v": visitor})
        return int(row), True
    return int(conn.execute(sa.text("SELECT id FROM campaign_visits WHERE campaign_id = :c AND visitor = :v "
                                    "AND client_id = :client"),
                            {"c": campaign_id, "v": visitor, "client": client_id}).scalar_one()), False


def link(conn: sa.Connection, visit_id: int, *, need_id: int | None, incident_public_id: str | None) -> None:
    conn.execute(sa.text("UPDATE campaign_visits SET need_id = COALESCE(:n, need_id), incident_public_id = "
                         "COALESCE(:i, incident_public_id) WHERE id = :v"),
                 {"v": visit_id, "n": need_id, "i": incident_public_id})


def refresh_latest(conn: sa.Connection, campaign_id: int) -> int:
    """Set each target's latest knock from the knocks stored (after knocks written in bulk); how
    many targets have one."""
    return conn.execute(sa.text(
        "UPDATE campaign_targets t SET last_outcome = l.outcome, last_visited_at = l.visited_at, last_visitor = l.visitor "
        "FROM (SELECT DISTINCT ON (target_id) target_id, outcome, visited_at, visitor FROM campaign_visits "
        "WHERE campaign_id = :c ORDER BY target_id, visited_at DESC, id DESC) l WHERE t.id = l.target_id"),
        {"c": campaign_id}).rowcount


def progress(conn: sa.Connection, campaign_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per grid: targets, households among them, the latest outcome of each counted (reached,
    nobody home, refused, issue found, not visited); per visitor: knocks, targets knocked and
    targets whose latest knock was theirs and reached them."""
    grids = pd.read_sql_query(sa.text(
        "SELECT grid_code, count(*) AS targets, count(household_id) AS households, "
        "count(*) FILTER (WHERE last_outcome IN ('visited', 'refused', 'issue_found')) AS reached, "
        "count(*) FILTER (WHERE last_outcome = 'nobody_home') AS nobody_home, "
        "count(*) FILTER (WHERE last_outcome = 'refused') AS refused, "
        "count(*) FILTER (WHERE last_outcome = 'issue_found') AS issue_found, "
        "count(*) FILTER (WHERE last_outcome IS NULL) AS not_visited FROM campaign_targets "
        "WHERE campaign_id = :c GROUP BY grid_code ORDER BY grid_code"), conn, params={"c": campaign_id})
    workers = pd.read_sql_query(sa.text(
        "WITH reached AS (SELECT last_visitor, count(*) AS n FROM campaign_targets WHERE campaign_id = :c "
        "AND last_outcome IN ('visited', 'refused', 'issue_found') GROUP BY last_visitor) "
        "SELECT v.visitor, count(*) AS knocks, count(DISTINCT v.target_id) AS targets, "
        "COALESCE(max(r.n), 0) AS reached, max(v.visited_at) AS last_knock FROM campaign_visits v "
        "LEFT JOIN reached r ON r.last_visitor = v.visitor WHERE v.campaign_id = :c GROUP BY v.visitor ORDER BY v.visitor"),
        conn, params={"c": campaign_id})
    return grids, workers


def targets(conn: sa.Connection, campaign_id: int, grid_code: str) -> pd.DataFrame:
    """A grid's targets with their latest knock (what a worker walks through on the phone)."""
    return pd.read_sql_query(sa.text(
        "SELECT id AS target_id, label, household_id IS NOT NULL AS household, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
        "last_outcome AS outcome, last_visitor AS visitor, last_visited_at AS visited_at FROM campaign_targets "
        "WHERE campaign_id = :c AND grid_code = :g ORDER BY label, id"), conn, params={"c": campaign_id, "g": grid_code})


def close(conn: sa.Connection, campaign_id: int, at: datetime) -> None:
    conn.execute(sa.text("UPDATE campaigns SET closed_at = :at WHERE id = :c"), {"c": campaign_id, "at": at})


__all__ = ["CampaignNotFound", "create", "get", "listing", "target", "visit", "link", "refresh_latest", "progress",
           "targets", "close"]
