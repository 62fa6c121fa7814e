"""Whole layers read from PostGIS as GeoDataFrames (EPSG:4490), for exports and the notebook API.

Each read names its places the way a government register does: every grid, unit, station and
incident carries its community, street and district codes and names, and codes stay text.
A territory below the plan's own territory (a street of a city plan, say) gets the plan's rows
inside its subtree only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.incident_stats import Filters
from gridmap.store.incidents import CURRENT_GRID_JOIN

SUBTREE = ("WITH RECURSIVE sub AS (SELECT id FROM territories WHERE code = :territory UNION ALL "
           "SELECT c.id FROM territories c JOIN sub ON c.parent_id = sub.id), "
           "up AS (SELECT id, parent_id, 0 AS depth FROM territories WHERE code = :territory UNION ALL "
           "SELECT t.id, t.parent_id, up.depth + 1 FROM territories t JOIN up ON t.id = up.parent_id) ")
PLACE_COLUMNS = (
    "c.code AS community_code, c.name AS community_name, s.code AS street_code, s.name AS street_name, "
    "d.code AS district_code, d.name AS district_name")
PLACE_JOINS = (
    "LEFT JOIN territories s ON s.id = c.parent_id AND s.level = 'street' "
    "LEFT JOIN territories d ON d.id = COALESCE(s.parent_id, c.parent_id) AND d.level = 'district' ")


class PlanNotFound(LookupError):
    """No plan of the kind asked for covers the territory."""


@dataclass(frozen=True)
class PlanRef:
    """Which plan an export or a notebook read uses."""

    id: int
    territory: str
    territory_name: str
    status: str
    version: int
    valid_from: datetime | None
    valid_to: datetime | None
    published_at: datetime | None


def territories(conn: sa.Connection) -> pd.DataFrame:
    """Every territory: code, name, level, parent_code, area_m2 (sorted by code)."""
    return pd.read_sql(sa.text(
        "SELECT t.code, t.name, t.level, p.code AS parent_code, t.area_m2 FROM territories t "
        "LEFT JOIN territories p ON p.id = t.parent_id ORDER BY t.code"), conn)


def find_plan(conn: sa.Connection, territory: str, which: str | int = "published") -> PlanRef:
    """The plan for ``territory``: ``"published"``, the newest ``"draft"``, or a version number.

    The territory's own plans come first, then those of its nearest ancestor (a district of a city
    plan is exported from the city's plan). Raises PlanNotFound (or LookupError for an unknown code).
    """
    exists = conn.execute(sa.text("SELECT 1 FROM territories WHERE code = :c"), {"c": territory}).first()
    if exists is None:
        raise LookupError(f"no territory with code {territory!r}")
    text = str(which).strip().lower()
    if text.isdigit():
        condition, order, params = "p.version = :v", "", {"v": int(text)}
    elif text in ("published", "draft"):
        condition, order, params = "p.status = :s", ", p.version DESC", {"s": text}
    else:
        raise PlanNotFound(f"plan must be 'published', 'draft' or a version number, not {which!r}")
    row = conn.execute(sa.text(
        SUBTREE + "SELECT p.id, t.code, t.name, p.status, p.version, p.valid_from, p.valid_to, p.published_at "
        "FROM up JOIN plans p ON p.territory_id = up.id JOIN territories t ON t.id = up.id "
        f"WHERE {condition} ORDER BY up.depth{order} LIMIT 1"), {"territory": territory, **params}).first()
    if row is None:
        raise PlanNotFound(f"territory {territory} has no {'version ' + text if text.isdigit() else text} plan "
                           "(nor has any territory above it)")
    return PlanRef(*row)


def plan_grids(conn: sa.Connection, plan: PlanRef, territory: str) -> gpd.GeoDataFrame:
    """The plan's grids inside ``territory`` with their places, figures and validity dates."""
    frame = gpd.read_postgis(sa.text(
        SUBTREE + f"SELECT g.code AS grid_code, g.name AS grid_name, g.kind, {PLACE_COLUMNS}, g.area_m2, "
        "g.households, g.population, g.worker, p.version AS plan_version, p.valid_from, p.valid_to, "
        "(g.properties->>'compactness')::float AS compactness, (g.properties->>'unit_count')::int AS unit_count, "
        "g.geom FROM grids g JOIN plans p ON p.id = g.plan_id JOIN territories c ON c.id = g.community_id "
        f"{PLACE_JOINS} WHERE g.plan_id = :plan AND g.community_id IN (SELECT id FROM sub) ORDER BY g.code"),
        conn, geom_col="geom", params={"territory": territory, "plan": plan.id})
    return frame.rename_geometry("geometry")


def plan_units(conn: sa.Connection, plan: PlanRef, territory: str) -> gpd.GeoDataFrame:
    """The plan's units inside ``territory`` with the grid each belongs to."""
    frame = gpd.read_postgis(sa.text(
        SUBTREE + f"SELECT u.unit_key AS unit_id, u.kind AS unit_kind, u.name AS unit_name, g.code AS grid_code, "
        f"{PLACE_COLUMNS}, u.area_m2, u.households, u.population, u.geom FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id "
        f"{PLACE_JOINS} WHERE pu.plan_id = :plan AND u.community_id IN (SELECT id FROM sub) ORDER BY g.code, u.unit_key"),
        conn, geom_col="geom", params={"territory": territory, "plan": plan.id})
    return frame.rename_geometry("geometry")


def territory_units(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The current units (leaves) of the territory's communities, whatever plan uses them, with
    the columns ``build_units`` returns, so they go straight into ``partition`` or ``merge_layers``."""
    frame = gpd.read_postgis(sa.text(
        SUBTREE + "SELECT u.unit_key AS unit_id, c.code AS community_code, u.kind, u.name, u.households, "
        "u.population, u.area_m2, u.properties->>'site_type' AS site_type, u.properties->>'compound_id' AS compound_id, "
        "(u.properties->>'compound_part')::float AS compound_part, c.name AS community_name, s.code AS street_code, "
        "s.name AS street_name, d.code AS district_code, d.name AS district_name, u.geom FROM units u "
        f"JOIN territories c ON c.id = u.community_id {PLACE_JOINS} WHERE u.community_id IN (SELECT id FROM sub) "
        "AND NOT EXISTS (SELECT 1 FROM units x WHERE x.parent_id = u.id) ORDER BY c.code, u.unit_key"),
        conn, geom_col="geom", params={"territory": territory})
    return frame.rename_geometry("geometry")


def communities(conn: sa.Connection, territory: str) -> gpd.GeoDataFrame:
    """The communities at or below the territory: code, name, street and district, geometry."""
    frame = gpd.read_postgis(sa.text(
        SUBTREE + "SELECT c.code, c.name, s.code AS street_code, s.name AS street_name, d.code AS district_code, "
        f"d.name AS district_name, c.area_m2, c.geom FROM territories c {PLACE_JOINS} "
        "WHERE c.level = 'community' AND c.id IN (SELECT id FROM sub) ORDER BY c.code"),
        conn, geom_col="geom", params={"territory": territory})
    return frame.rename_geometry("geometry")


def layer(conn: sa.Connection, territory: str, name: str) -> gpd.GeoDataFrame:
    """An imported layer (roads, buildings, ...) of the territory or its nearest ancestor, cut to
    the territory's bounding box, attributes as columns."""
    from gridmap.store.plans import find_layer, layer_in_area

    found = find_layer(conn, territory, (name,))
    if found is None:
        raise LookupError(f"no layer {name!r} on territory {territory} or above it")
    box = conn.execute(sa.text("SELECT encode(ST_AsEWKB(ST_Envelope(geom)), 'hex') FROM territories WHERE code = :c"),
                       {"c": territory}).scalar()
    return layer_in_area(conn, found[0], found[1], box)


def stations(conn: sa.Connection, territory: str, *, station_type: str | None = None,
             status: str | None = "open") -> gpd.GeoDataFrame:
    """Stations at or below the territory, with the published grid and community they stand in."""
    frame = gpd.read_postgis(sa.text(
        SUBTREE + "SELECT s.id AS station_id, s.station_type, s.name, s.address, s.opening_hours, s.status, "
        "s.services, g.code AS grid_code, c.code AS community_code, c.name AS community_name, s.geom FROM stations s "
        "LEFT JOIN LATERAL (SELECT g.code, g.community_id FROM grids g JOIN plans p ON p.id = g.plan_id "
        "AND p.status = 'published' WHERE ST_Intersects(g.geom, s.geom) LIMIT 1) g ON true "
        "LEFT JOIN territories c ON c.id = g.community_id "
        "WHERE s.territory_id IN (SELECT id FROM sub) AND (CAST(:ty AS text) IS NULL OR s.station_type = :ty) "
        "AND (CAST(:st AS text) IS NULL OR s.status = :st) ORDER BY s.id"),
        conn, geom_col="geom", params={"territory": territory, "ty": station_type, "st": status})
    return frame.rename_geometry("geometry")


def incidents(conn: sa.Connection, territory: str, filters: Filters = Filters(), *,
              limit: int | None = None) -> gpd.GeoDataFrame:
    """Incidents routed into the territory, filtered as on the dashboard: ``grid_code`` is the grid
    of the published plan holding each now, ``reported_grid_code`` the one it was reported in.
    Never reporter details: an export or a notebook is not the place for who reported what."""
    where, params = filters.where()
    frame = gpd.read_postgis(sa.text(
        SUBTREE + "SELECT i.public_id AS incident_id, i.category_code, cat.name_zh AS category_name, i.status, "
        "dep.name AS department, g.code AS grid_code, rg.code AS reported_grid_code, c.code AS community_code, "
        "c.name AS community_name, "
        "s.code AS street_code, s.name AS street_name, i.reported_at, i.due_at, i.closed_at, i.escalation_level, "
        "i.synthetic, (COALESCE(i.closed_at, now()) > i.due_at) AS overdue, i.geom FROM incidents i "
        "LEFT JOIN incident_categories cat ON cat.code = i.category_code "
        "LEFT JOIN departments dep ON dep.id = i.department_id " + CURRENT_GRID_JOIN + "LEFT JOIN grids rg ON rg.id = i.grid_id "
        "LEFT JOIN territories c ON c.id = i.community_id LEFT JOIN territories s ON s.id = i.street_id "
        f"WHERE {where} ORDER BY i.reported_at, i.id" + (" LIMIT :limit" if limit else "")),
        conn, geom_col="geom", params={"territory": territory, **params, **({"limit": limit} if limit else {})})
    return frame.rename_geometry("geometry")


def crosswalk(conn: sa.Connection, plan: PlanRef) -> pd.DataFrame:
    """The merge crosswalk of a plan made by a merge (empty for other plans)."""
    return pd.read_sql(sa.text(
        "SELECT department, grid_ref AS grid_id, grid_code, area_share, household_share, area_m2, households "
        "FROM merge_crosswalk WHERE plan_id = :p ORDER BY department, grid_ref, grid_code"), conn, params={"p": plan.id})


__all__ = ["PlanRef", "PlanNotFound", "territories", "find_plan", "plan_grids", "plan_units", "territory_units", "communities", "layer",
           "stations", "incidents", "crosswalk"]
