"""Incident figures aggregated in PostGIS for maps and dashboards: counts by category, status and
month, a per-grid choropleth (per 1,000 households, overdue rate, median handling time), heat
cells and clusters. The browser never receives individual incidents in bulk: every answer is
bounded by the number of grids, categories, months or map cells, not by the number of incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from gridmap.store.sql import with_subtree

SUBTREE = with_subtree()
OVERDUE = "(COALESCE(i.closed_at, now()) > i.due_at)"


@dataclass(frozen=True)
class Filters:
    """What the dashboard filters by; None means any."""

    category: str | None = None
    statuses: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    street: str | None = None
    community: str | None = None

    def where(self, *, scoped: bool = True) -> tuple[str, dict]:
        """SQL conditions on incidents ``i``; ``scoped`` adds "in the territory subtree" (callers that
        join grids of the subtree anyway can leave it out: an incident's grid fixes its community)."""
        clauses = ["i.community_id IN (SELECT id FROM sub)"] if scoped else ["true"]
        params: dict = {}
        if self.category:
            clauses.append("i.category_code = :category")
            params["category"] = self.category
        if self.statuses:
            clauses.append("i.status = ANY(:statuses)")
            params["statuses"] = list(self.statuses)
        if self.start:
            clauses.append("i.reported_at >= :start")
            params["start"] = self.start
        if self.end:
            clauses.append("i.reported_at < :end")
            params["end"] = self.end
        if self.street:
            clauses.append("i.street_id = (SELECT id FROM territories WHERE code = :street)")
            params["street"] = self.street
        if self.community:
            clauses.append("i.community_id = (SELECT id FROM territories WHERE code = :community)")
            params["community"] = self.community
        return " AND ".join(clauses), params


def summary(conn: sa.Connection, territory: str, filters: Filters) -> dict:
    """Counts by category, status and calendar month, overdue and median handling hours. Months
    are grouped in UTC, as the date filters (instants; the dashboard sends UTC day boundaries) are,
    so a month listed here is exactly the month the dashboard then asks for, whatever the
    server's time zone."""
    conn.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
    where, params = filters.where()
    params["territory"] = territory
    totals = conn.execute(sa.text(
        SUBTREE + "SELECT count(*) AS total, count(*) FILTER (WHERE i.status NOT IN ('closed','rejected')) AS open, "
        "count(*) FILTER (WHERE i.status = 'closed') AS closed, count(*) FILTER (WHERE i.status = 'rejected') AS rejected, "
        f"count(*) FILTER (WHERE {OVERDUE} AND i.status <> 'rejected') AS overdue, "
        "count(*) FILTER (WHERE i.escalation_level > 0) AS supervised, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', i.closed_at - i.reported_at) / 3600) "
        f"FILTER (WHERE i.status = 'closed') AS median_hours FROM incidents i WHERE {where}"), params).one()
    by_category = conn.execute(sa.text(
        SUBTREE + "SELECT i.category_code AS code, cat.name_zh, cat.name_en, count(*) AS count, "
        "count(*) FILTER (WHERE i.status NOT IN ('closed','rejected')) AS open, "
        f"count(*) FILTER (WHERE {OVERDUE} AND i.status <> 'rejected') AS overdue FROM incidents i "
        f"JOIN incident_categories cat ON cat.code = i.category_code WHERE {where} "
        "GROUP BY 1, 2, 3 ORDER BY count DESC"), params).all()
    by_status = conn.execute(sa.text(
        SUBTREE + f"SELECT i.status, count(*) FROM incidents i WHERE {where} GROUP BY 1 ORDER BY 2 DESC"), params).all()
    by_month = conn.execute(sa.text(
        SUBTREE + "SELECT to_char(date_trunc('month', i.reported_at), 'YYYY-MM') AS month, count(*) AS count, "
        f"count(*) FILTER (WHERE {OVERDUE} AND i.status <> 'rejected') AS overdue FROM incidents i WHERE {where} "
        "GROUP BY 1 ORDER BY 1"), params).all()
    return {**totals._mapping, "by_category": [dict(r._mapping) for r in by_category],
            "by_status": {s: n for s, n in by_status}, "by_month": [dict(r._mapping) for r in by_month]}


METRICS = ("per_1000_households", "overdue_rate", "median_hours")


def choropleth(conn: sa.Connection, territory: str, filters: Filters, *, simplify_deg: float = 0.0,
               metrics: tuple[str, ...] = METRICS) -> dict:
    """Published grids (GeoJSON) with incidents, incidents per 1,000 households, overdue rate
    and median handling hours under the filters. Incidents count in the grid that holds them in
    the published plan (by lineage; see store.incidents), not the one they were reported in. Only the ``metrics`` asked for are computed.
    The medians read ``ix_incidents_handling`` alone where the visibility map allows it: right
    after a bulk load, before (auto)vacuum has run, they fall back to heap reads and are slower."""
    where, params = filters.where(scoped=False)
    params.update(territory=territory, tol=simplify_deg)
    late = (f"count(*) FILTER (WHERE {OVERDUE} AND i.status <> 'rejected')" if "overdue_rate" in metrics
            else "NULL::bigint")
    counts = (f"SELECT i.grid_lineage AS lineage, count(*) AS n, {late} AS late FROM incidents i WHERE {where} "
              "GROUP BY i.grid_lineage")
    if "median_hours" in metrics:
        # closed incidents come presorted by (grid, handling seconds) from ix_incidents_handling
        # (index only), so each grid's median needs no sort of its own
        medians = ("SELECT lineage, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) / 3600 AS median_h FROM ("
                   "SELECT i.grid_lineage AS lineage, date_part('epoch', i.closed_at - i.reported_at) AS s FROM incidents i "
                   f"WHERE {where} AND i.status = 'closed' ORDER BY 1, 2) closed GROUP BY lineage")
        agg = f"SELECT c.*, m.median_h FROM ({counts}) c LEFT JOIN ({medians}) m USING (lineage)"
    else:
        agg = f"SELECT c.*, NULL::float8 AS median_h FROM ({counts}) c"
    conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))  # per-grid sorts in memory, not on disk
    return conn.execute(sa.text(
        SUBTREE + f", agg AS MATERIALIZED ({agg}) "  # computed once, whatever the join order
        "SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object("
        "'type', 'Feature', 'id', g.code, 'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0 THEN "
        "ST_SimplifyPreserveTopology(g.geom, :tol) ELSE g.geom END, 6, 0)::json, 'properties', json_build_object("
        "'grid_code', g.code, 'community', c.name, 'households', g.households, 'incidents', COALESCE(a.n, 0), "
        "'per_1000_households', CASE WHEN g.households > 0 THEN round((1000.0 * COALESCE(a.n, 0) / g.households)::numeric, 1) END, "
        "'overdue_rate', CASE WHEN a.n > 0 THEN round((a.late::numeric / a.n), 3) END, "
        "'median_hours', round(a.median_h::numeric, 1))) ORDER BY g.code), '[]'::json)) "
        "FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories c ON c.id = g.community_id "
        "LEFT JOIN agg a ON a.lineage = g.lineage WHERE g.community_id IN (SELECT id FROM sub)"), params).scalar_one()


def heat(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float) -> list[list[float]]:
    """Incidents counted on a grid of ``cell_deg`` cells: [[lat, lon, count], ...]."""
    where, params = filters.where()
    params.update(territory=territory, cell=cell_deg)
    rows = conn.execute(sa.text(
        SUBTREE + "SELECT ST_Y(c), ST_X(c), n FROM (SELECT ST_SnapToGrid(i.geom, :cell) AS c, count(*) AS n "
        f"FROM incidents i WHERE {where} GROUP BY 1) s"), params)
    return [[round(y, 6), round(x, 6), int(n)] for y, x, n in rows]


def clusters(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float,
             bbox: tuple[float, float, float, float] | None = None) -> list[dict]:
    """Incidents grouped into map cells: the mean position, the count and the open count of each."""
    where, params = filters.where()
    params.update(territory=territory, cell=cell_deg)
    if bbox:
        where += " AND i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    rows = conn.execute(sa.text(
        SUBTREE + "SELECT avg(ST_Y(i.geom)) AS lat, avg(ST_X(i.geom)) AS lon, count(*) AS n, "
        "count(*) FILTER (WHERE i.status NOT IN ('closed','rejected')) AS open, min(i.public_id) AS sample "
        f"FROM incidents i WHERE {where} GROUP BY ST_SnapToGrid(i.geom, :cell)"), params)
    return [{"lat": round(r.lat, 6), "lon": round(r.lon, 6), "count": int(r.n), "open": int(r.open),
             "incident": r.sample if r.n == 1 else None} for r in rows]


def monthly_clusters(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float) -> dict[str, list[dict]]:
    """Clusters per month of report (for the time animation): {"2026-03": [{lat, lon, count}, ...], ...}."""
    where, params = filters.where()
    params.update(territory=territory, cell=cell_deg)
    rows = conn.execute(sa.text(
        SUBTREE + "SELECT to_char(date_trunc('month', i.reported_at), 'YYYY-MM') AS month, avg(ST_Y(i.geom)) AS lat, "
        f"avg(ST_X(i.geom)) AS lon, count(*) AS n FROM incidents i WHERE {where} "
        "GROUP BY 1, ST_SnapToGrid(i.geom, :cell) ORDER BY 1"), params)
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r.month, []).append({"lat": round(r.lat, 6), "lon": round(r.lon, 6), "count": int(r.n)})
    return out


TERRITORY_COUNTS = (
    "WITH RECURSIVE up AS (SELECT id AS below, id AS above FROM territories UNION ALL "
    "SELECT up.below, t.parent_id FROM up JOIN territories t ON t.id = up.above WHERE t.parent_id IS NOT NULL), "
    "per AS (SELECT community_id, count(*) AS n FROM incidents WHERE community_id IS NOT NULL GROUP BY 1) "
    "SELECT t.code, t.name, t.level, COALESCE(sum(per.n), 0)::bigint AS incidents FROM territories t "
    "JOIN up ON up.above = t.id LEFT JOIN per ON per.community_id = up.below "
    "GROUP BY t.id, t.code, t.name, t.level ORDER BY incidents DESC, t.code")


def territory_counts(conn: sa.Connection) -> list[dict]:
    """Every territory with the incidents routed into its whole subtree (as the summary counts
    them: by community), busiest first, from one GROUP BY rolled up the territory tree."""
    return [dict(r._mapping) for r in conn.execute(sa.text(TERRITORY_COUNTS))]


__all__ = ["territory_counts", "monthly_clusters", "Filters", "METRICS", "summary", "choropleth", "heat", "clusters"]
