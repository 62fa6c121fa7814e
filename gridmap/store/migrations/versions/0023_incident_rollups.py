"""Incident rollups (issue: beyond one machine, the database at a province's size): the
dashboard's figures read per-month totals kept by the database itself, not the raw incidents.

Three tables, each keyed by the UTC calendar month of report and by where the incidents lie
(0 stands for "none" in a key, as a key column cannot be NULL):

``incident_grid_months``
    per grid lineage, community, street, category and status: how many incidents, how many of
    them finished late (closed or rejected after their due time, rejected ones not counted),
    how many were supervised (escalated at least once). The choropleth, the summary and the
    territory list read it.
``incident_handling_months``
    per grid lineage, community, street and category (``*``: all categories) the closed
    incidents' handling times as a histogram: bucket 0 holds handling under a minute, bucket b ≥ 1
    from 60·1.1^(b-1) to 60·1.1^b seconds. Medians are read off it (within a bucket, linearly),
    so a median is exact to within the bucket's width (10 %), typically far closer.
``incident_cell_months``
    per community, street, category (``*``: all) and status (``*``: all) the incidents counted on
    map cells of 1/1024° (about 110 m north–south), with the sums of their coordinates (so a
    coarser cell's mean position is exact). The heat map and the month play read it.

``incident_facts`` is the view of what each incident adds to them (its month, cell, bucket,
whether it finished late): the days of a date range that do not make a whole month are read
through it.

Statement-level triggers with transition tables keep them: every INSERT, UPDATE and DELETE on
``incidents`` (a report, a transition, an escalation, a publish that re-routes, an archive, a bulk
load of millions of rows) adds what came in and takes away what went out, grouped, in the same
transaction; a TRUNCATE empties them. An UPDATE counts only the incidents whose facts changed.
Each statement writes its rows in one order (the three tables in turn, each in key order), so
two single-statement writes never wait for each other in a cycle; the application keeps its
writes of several incidents to one statement each (the supervision pass escalates all in one
UPDATE).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

HANDLING_BUCKET = """
CREATE FUNCTION gridmap_handling_bucket(seconds float8) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seconds IS NULL THEN NULL WHEN seconds < 60 THEN 0::smallint
                ELSE (1 + floor(ln(seconds / 60) / ln(1.1)))::smallint END $$;
CREATE FUNCTION gridmap_handling_bucket_start(bucket smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN bucket = 0 THEN 0 ELSE 60 * power(1.1, bucket - 1) END $$;
CREATE FUNCTION gridmap_handling_bucket_end(bucket smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 60 * power(1.1, bucket) $$;
"""

CELLS_PER_DEGREE = 1024

FACTS = (
    "SELECT (date_trunc('month', r.reported_at AT TIME ZONE 'UTC'))::date AS month, "
    "COALESCE(r.grid_lineage, 0) AS grid_lineage, COALESCE(r.community_id, 0) AS community_id, "
    "COALESCE(r.street_id, 0) AS street_id, r.category_code, r.status, "
    "COALESCE(r.closed_at > r.due_at AND r.status <> 'rejected', false)::int AS late, "
    "(r.escalation_level > 0)::int AS supervised, "
    "CASE WHEN r.status = 'closed' THEN gridmap_handling_bucket(date_part('epoch', r.closed_at - r.reported_at)) "
    "END AS bucket, "
    f"floor(ST_X(r.geom) * {CELLS_PER_DEGREE})::int AS cell_x, floor(ST_Y(r.geom) * {CELLS_PER_DEGREE})::int AS cell_y, "
    "ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, {sign} AS sign FROM {rows} r")

GRID_KEY = "month, grid_lineage, community_id, street_id, category_code, status"
HANDLING_KEY = "category_code, month, grid_lineage, community_id, street_id, bucket"
CELL_KEY = "category_code, status, month, community_id, street_id, cell_x, cell_y"
ROLLUPS = ("incident_grid_months", "incident_handling_months", "incident_cell_months")


def _apply(facts: str, into: str = "") -> str:
    """One statement that adds the signed ``facts`` (rows shaped by FACTS) to the three rollups
    (``into``: a prefix of their names, for copies): the facts are worked out once (a
    materialised CTE) and each rollup is an upsert of their grouped sums, in key order."""
    return (
        f"WITH f AS MATERIALIZED ({facts}), "
        f"grids AS (INSERT INTO {into}incident_grid_months AS t ({GRID_KEY}, incidents, late, supervised) "
        f"SELECT {GRID_KEY}, sum(sign), sum(sign * late), sum(sign * supervised) FROM f "
        f"GROUP BY {GRID_KEY} HAVING sum(sign) <> 0 OR sum(sign * late) <> 0 OR sum(sign * supervised) <> 0 "
        f"ORDER BY {GRID_KEY} "
        f"ON CONFLICT ({GRID_KEY}) DO UPDATE SET incidents = t.incidents + EXCLUDED.incidents, "
        "late = t.late + EXCLUDED.late, supervised = t.supervised + EXCLUDED.supervised RETURNING 1), "
        f"handling AS (INSERT INTO {into}incident_handling_months AS t ({HANDLING_KEY}, incidents) "
        "SELECT k.category_code, f.month, f.grid_lineage, f.community_id, f.street_id, f.bucket, sum(f.sign) "
        "FROM f CROSS JOIN LATERAL (VALUES (f.category_code), ('*')) k(category_code) "
        "WHERE f.bucket IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(f.sign) <> 0 ORDER BY 1, 2, 3, 4, 5, 6 "
        f"ON CONFLICT ({HANDLING_KEY}) DO UPDATE SET incidents = t.incidents + EXCLUDED.incidents RETURNING 1) "
        f"INSERT INTO {into}incident_cell_months AS t ({CELL_KEY}, incidents, sum_lon, sum_lat) "
        "SELECT k.category_code, k.status, f.month, f.community_id, f.street_id, f.cell_x, f.cell_y, sum(f.sign), "
        "sum(f.sign * f.lon), sum(f.sign * f.lat) FROM f CROSS JOIN LATERAL (VALUES "
        "(f.category_code, f.status), (f.category_code, '*'), ('*', f.status), ('*', '*')) k(category_code, status) "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(f.sign) <> 0 OR sum(f.sign * f.lon) <> 0 OR sum(f.sign * f.lat) <> 0 "
        "ORDER BY 1, 2, 3, 4, 5, 6, 7 "
        f"ON CONFLICT ({CELL_KEY}) DO UPDATE SET incidents = t.incidents + EXCLUDED.incidents, "
        "sum_lon = t.sum_lon + EXCLUDED.sum_lon, sum_lat = t.sum_lat + EXCLUDED.sum_lat")


def _trigger_function(name: str, facts: str) -> str:
    # sorts and hashes of a bulk load's millions of rows in memory, not on disk
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET work_mem = '256MB' AS $$ BEGIN\n"
            f"{_apply(facts)};\nRETURN NULL; END $$;")


ADDED = FACTS.format(sign=1, rows="new_rows")
REMOVED = FACTS.format(sign=-1, rows="old_rows")
# an UPDATE counts only the incidents whose facts changed: one that changes a description, a
# patrol link or an escalation above level 1 touches (and locks) no rollup row
FACT_COLUMNS = ("{a}.reported_at", "{a}.grid_lineage", "{a}.community_id", "{a}.street_id", "{a}.category_code",
                "{a}.status", "{a}.closed_at", "{a}.due_at", "{a}.escalation_level > 0", "ST_X({a}.geom)", "ST_Y({a}.geom)")
"""What an incident's facts depend on, for an incident ``a``."""
CHANGED = " IS DISTINCT FROM ".join("(" + ", ".join(c.format(a=a) for c in FACT_COLUMNS) + ")" for a in ("o", "n"))
TRIGGERS = {
    "incident_rollups_insert": ("INSERT", "NEW TABLE AS new_rows", ADDED),
    "incident_rollups_update": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                                FACTS.format(sign=-1, rows=f"(SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
                                                           f"WHERE {CHANGED})") + " UNION ALL " +
                                FACTS.format(sign=1, rows=f"(SELECT n.* FROM new_rows n JOIN old_rows o ON o.id = n.id "
                                                          f"WHERE {CHANGED})")),
    "incident_rollups_delete": ("DELETE", "OLD TABLE AS old_rows", REMOVED),
}


def _tables() -> None:
    def ids() -> list[sa.Column]:
        return [sa.Column("grid_lineage", sa.BigInteger(), nullable=False),
                sa.Column("community_id", sa.Integer(), nullable=False), sa.Column("street_id", sa.Integer(), nullable=False)]

    op.create_table(
        "incident_grid_months",
        sa.Column("month", sa.Date(), nullable=False), *ids(),
        sa.Column("category_code", sa.String(32), nullable=False), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False), sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("supervised", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*GRID_KEY.split(", ")))
    op.create_table(
        "incident_handling_months",
        sa.Column("category_code", sa.String(32), nullable=False), sa.Column("month", sa.Date(), nullable=False),
        *ids(), sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*HANDLING_KEY.split(", ")))
    op.create_table(
        "incident_cell_months",
        sa.Column("category_code", sa.String(32), nullable=False), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False), sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer(), nullable=False), sa.Column("cell_x", sa.Integer(), nullable=False),
        sa.Column("cell_y", sa.Integer(), nullable=False), sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("sum_lon", sa.Float(), nullable=False), sa.Column("sum_lat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*CELL_KEY.split(", ")))


def upgrade() -> None:
    op.execute(HANDLING_BUCKET)
    _tables()
    for name, (event, transition, facts) in TRIGGERS.items():
        op.execute(_trigger_function(name, facts))
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON incidents REFERENCING {transition} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    # (a TRUNCATE that names the rollups too has them open: they are emptied row by row then)
    op.execute("CREATE FUNCTION incident_rollups_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "TRUNCATE incident_grid_months, incident_handling_months, incident_cell_months; RETURN NULL; "
               "EXCEPTION WHEN object_in_use THEN DELETE FROM incident_grid_months; DELETE FROM incident_handling_months; "
               "DELETE FROM incident_cell_months; RETURN NULL; END $$;")
    op.execute("CREATE TRIGGER incident_rollups_truncate AFTER TRUNCATE ON incidents "
               "FOR EACH STATEMENT EXECUTE FUNCTION incident_rollups_truncate()")
    # all three worked out again from the incidents (``gridmap incidents rollups --rebuild``; the
    # check compares them with this); first for the incidents already stored
    op.execute("CREATE FUNCTION gridmap_incident_rollups_rebuild() RETURNS void LANGUAGE plpgsql "
               "SET work_mem = '256MB' AS $$ BEGIN "
               "TRUNCATE incident_grid_months, incident_handling_months, incident_cell_months;\n"
               f"{_apply(FACTS.format(sign=1, rows='incidents'))}; END $$;")
    op.execute("SELECT gridmap_incident_rollups_rebuild()")
    # the same worked out into copies of this transaction (``fresh_…``), for the check: it
    # compares without locking the rollups, in one snapshot with what it compares
    copies = "".join(f"CREATE TEMP TABLE fresh_{t} (LIKE {t} INCLUDING ALL) ON COMMIT DROP;\n" for t in ROLLUPS)
    op.execute("CREATE FUNCTION gridmap_incident_rollups_fresh() RETURNS void LANGUAGE plpgsql "
               f"SET work_mem = '256MB' AS $$ BEGIN {copies}"
               f"{_apply(FACTS.format(sign=1, rows='incidents'), into='fresh_')}; END $$;")
    # the same facts of single incidents, for the days of a date range that are not a whole
    # month (read from ``incidents`` by their report time) and for checks
    op.execute(f"CREATE VIEW incident_facts AS SELECT r.id, r.reported_at, r.due_at, r.closed_at, "
               f"{FACTS.format(sign=1, rows='incidents').removeprefix('SELECT ')}")
    # medians are read off the histogram now: the covering index they read before only slows loads
    op.execute("DROP INDEX ix_incidents_handling")
    # the open incidents' overdue count is the one figure read live (it changes with the clock)
    op.create_index("ix_incidents_open_lineage", "incidents", ["grid_lineage", "due_at"],
                    postgresql_where=sa.text("closed_at IS NULL"))
    # a report's possible duplicates are open incidents nearby: with ten million incidents the
    # whole-table index found every closed one in the box first (1 s a report; 10 ms with this)
    op.create_index("ix_incidents_open_geom", "incidents", ["geom"], postgresql_using="gist",
                    postgresql_where=sa.text("status <> 'closed' AND status <> 'rejected'"))


def downgrade() -> None:
    op.drop_index("ix_incidents_open_lineage", table_name="incidents")
    op.drop_index("ix_incidents_open_geom", table_name="incidents")
    op.execute("CREATE INDEX ix_incidents_handling ON incidents (grid_lineage, (date_part('epoch', closed_at - "
               "reported_at))) INCLUDE (closed_at, reported_at, category_code, community_id, street_id) "
               "WHERE status = 'closed'")
    op.execute("DROP VIEW incident_facts")
    for name in [*TRIGGERS, "incident_rollups_truncate"]:
        op.execute(f"DROP TRIGGER {name} ON incidents")
        op.execute(f"DROP FUNCTION {name}()")
    for table in ("incident_cell_months", "incident_handling_months", "incident_grid_months"):
        op.drop_table(table)
    for name in ("gridmap_incident_rollups_fresh()", "gridmap_incident_rollups_rebuild()", "gridmap_handling_bucket(float8)", "gridmap_handling_bucket_start(smallint)",
                 "gridmap_handling_bucket_end(smallint)"):
        op.execute(f"DROP FUNCTION {name}")
