"""Incidents in monthly partitions (issue: beyond one machine, the database at a province's size).

``incidents`` becomes a table partitioned by range of ``reported_at``: one partition a UTC
calendar month (``incidents_YYYYMM``, the same months the rollups of 0023 count by) and a default
partition (``incidents_default``) for reports of a month that has none (a back-dated import, an
offline report from long ago). A month of incidents is then one table: its indexes stay the size
of a month, a date range reads only its months, and a month emptied by the archive is dropped
whole instead of leaving a hole in one huge table.

A partitioned table's unique keys must hold its partition key, so:

* the primary key is ``(id, reported_at)``; ``id`` stays unique (one sequence gives it) and
  every lookup by ``id`` still finds one row;
* ``public_id`` is unique with ``reported_at`` (it is made from the report day and a sequence);
* what refers to an incident names its report time too: ``incident_events.incident_reported_at``,
  ``whistles.incident_reported_at`` and ``incidents.duplicate_of_reported_at``, each with a
  two-column foreign key (MATCH FULL: both or neither). Row triggers fill them from the incident
  when a writer names only the id, so every writer stays as it was; a writer of many rows (a bulk
  load) names them itself and the triggers do nothing (their WHEN clause is checked without a
  call).

``gridmap_incident_partitions_ensure(first, last)`` makes the missing months between two dates:
each as a table of its own, then attached (one maker at a time: an advisory lock). Attaching an
empty month holds writes to ``incidents`` and to the tables it refers to for a moment and locks
the default partition (which it scans: keep that small); the callers give up after a second
where a long transaction holds those. A month whose reports are already in the default partition
is left to it. The server makes the months ahead in its supervision pass; this migration makes
those of the incidents stored and the next three.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

REFERRING = ("incident_events", "whistles")
"""The tables whose ``incident_id`` refers to an incident (ON DELETE CASCADE)."""

ENSURE = """
CREATE FUNCTION gridmap_incident_partitions_ensure(first_day date, last_day date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    month date; name text; low text; high text; made int := 0;
BEGIN
    -- one maker at a time (the server's pass, cron, a bulk load, a restore): no two make one month
    PERFORM pg_advisory_xact_lock(hashtext('gridmap-incident-partitions'));
    FOR month IN SELECT generate_series(date_trunc('month', first_day), date_trunc('month', last_day),
                                        interval '1 month')::date LOOP
        name := 'incidents_' || to_char(month, 'YYYYMM');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        -- the attach locks the default partition as strongly; taken first, the check below is no
        -- weaker lock that the attach would have to raise (two such makers would deadlock)
        LOCK TABLE incidents_default IN ACCESS EXCLUSIVE MODE;
        -- UTC month starts, written out (not by the session's TimeZone and DateStyle)
        low := to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00';
        high := to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
        -- the default partition holds reports of this month already: they stay there
        CONTINUE WHEN EXISTS (SELECT 1 FROM incidents_default
                              WHERE reported_at >= low::timestamptz AND reported_at < high::timestamptz);
        EXECUTE format('CREATE TABLE %I (LIKE incidents INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
        EXECUTE format('ALTER TABLE incidents ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, low, high);
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;
"""

# the report time of the incident a row names, when the writer named only its id (the foreign
# key refuses a row whose incident does not exist, as before)
FILL_INCIDENT_TIME = """
CREATE FUNCTION gridmap_fill_incident_reported_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.incident_reported_at := (SELECT reported_at FROM incidents WHERE id = NEW.incident_id);
    RETURN NEW;
END $$;
CREATE FUNCTION gridmap_fill_duplicate_of_reported_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.duplicate_of_reported_at := (SELECT reported_at FROM incidents WHERE id = NEW.duplicate_of);
    RETURN NEW;
END $$;
"""


FILLED = (("incident_events", "incident_id", "incident_reported_at", "gridmap_fill_incident_reported_at"),
          ("whistles", "incident_id", "incident_reported_at", "gridmap_fill_incident_reported_at"),
          ("incidents", "duplicate_of", "duplicate_of_reported_at", "gridmap_fill_duplicate_of_reported_at"))
"""Each reference to an incident: its table, the id column, the time column, the function filling it."""


def _fill_triggers(table: str, column: str, time: str, function: str) -> None:
    """Two row triggers on ``table`` that fill ``time`` from ``column``: on an INSERT that names
    no time, and on an UPDATE that changes the id but not the time."""
    op.execute(f"CREATE TRIGGER {table}_{column}_time_insert BEFORE INSERT ON {table} FOR EACH ROW "
               f"WHEN (NEW.{column} IS NOT NULL AND NEW.{time} IS NULL) EXECUTE FUNCTION {function}()")
    op.execute(f"CREATE TRIGGER {table}_{column}_time_update BEFORE UPDATE OF {column} ON {table} FOR EACH ROW "
               f"WHEN (NEW.{column} IS DISTINCT FROM OLD.{column} AND NEW.{time} IS NOT DISTINCT FROM OLD.{time}) "
               f"EXECUTE FUNCTION {function}()")


def _definitions() -> tuple[list[str], list[str], str, list[str]]:
    """What the incidents table has besides its columns, as statements that make it again: its
    indexes (all but the primary key and the unique public id), its foreign keys to other tables,
    the view ``incident_facts`` over it, and its statement triggers (the rollups')."""
    conn = op.get_bind()
    indexes = list(conn.execute(sa.text(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'incidents'::regclass AND NOT i.indisprimary AND NOT i.indisunique "
        "ORDER BY c.relname")).scalars())
    keys = [f'ALTER TABLE incidents ADD CONSTRAINT "{name}" {definition}' for name, definition in conn.execute(sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'incidents'::regclass "
        "AND contype = 'f' AND conparentid = 0 AND confrelid <> 'incidents'::regclass ORDER BY conname"))]
    view = conn.execute(sa.text("SELECT pg_get_viewdef('incident_facts'::regclass)")).scalar_one()
    triggers = list(conn.execute(sa.text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'incidents'::regclass AND NOT tgisinternal "
        "AND tgname LIKE 'incident_rollups_%' ORDER BY tgname")).scalars())
    return indexes, keys, f"CREATE VIEW incident_facts AS {view}", triggers


def _swap(partitioned: bool) -> None:
    """Make ``incidents`` again, partitioned or not, with the same rows, indexes, keys, view and
    triggers (the rollups count the same rows: their triggers come back after the copy)."""
    indexes, keys, view, triggers = _definitions()
    op.execute("DROP VIEW incident_facts")
    for table in REFERRING:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_incident_id_fkey")
    op.execute("ALTER TABLE incidents DROP CONSTRAINT incidents_duplicate_of_fkey")
    op.execute("ALTER SEQUENCE incidents_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE incidents RENAME TO incidents_old")
    layout = "PARTITION BY RANGE (reported_at)" if partitioned else ""
    op.execute("CREATE TABLE incidents (LIKE incidents_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) "
               f"{layout}")
    if partitioned:
        op.execute("ALTER TABLE incidents ADD COLUMN duplicate_of_reported_at timestamptz")
        op.execute("CREATE TABLE incidents_default PARTITION OF incidents DEFAULT")
        op.execute(ENSURE)
        op.execute("SELECT gridmap_incident_partitions_ensure((LEAST((SELECT min(reported_at) FROM incidents_old), now()) "
                   "AT TIME ZONE 'UTC')::date, (GREATEST((SELECT max(reported_at) FROM incidents_old), "
                   "now() + interval '3 months') AT TIME ZONE 'UTC')::date)")
    else:
        op.execute("ALTER TABLE incidents DROP COLUMN duplicate_of_reported_at")
    columns = ", ".join(op.get_bind().execute(sa.text(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = 'incidents'::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname <> 'duplicate_of_reported_at' ORDER BY attnum")).scalars())
    if partitioned:
        op.execute(f"INSERT INTO incidents ({columns}, duplicate_of_reported_at) SELECT o.{columns.replace(', ', ', o.')}, "
                   "d.reported_at FROM incidents_old o LEFT JOIN incidents_old d ON d.id = o.duplicate_of")
    else:
        op.execute(f"INSERT INTO incidents ({columns}) SELECT {columns} FROM incidents_old")
    op.execute("DROP TABLE incidents_old")
    op.execute("ALTER SEQUENCE incidents_id_seq OWNED BY incidents.id")
    key = "id, reported_at" if partitioned else "id"
    op.execute(f"ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY ({key})")
    unique = "public_id, reported_at" if partitioned else "public_id"
    op.execute(f"ALTER TABLE incidents ADD CONSTRAINT incidents_public_id_key UNIQUE ({unique})")
    for statement in indexes + keys + [view] + triggers:
        op.execute(statement)
    if partitioned:
        op.execute("ALTER TABLE incidents ADD CONSTRAINT incidents_duplicate_of_fkey FOREIGN KEY "
                   "(duplicate_of, duplicate_of_reported_at) REFERENCES incidents (id, reported_at) MATCH FULL "
                   "ON DELETE SET NULL ON UPDATE CASCADE")
    else:
        op.execute("ALTER TABLE incidents ADD CONSTRAINT incidents_duplicate_of_fkey FOREIGN KEY (duplicate_of) "
                   "REFERENCES incidents (id) ON DELETE SET NULL")
    for table in REFERRING:
        if partitioned:
            op.execute(f"ALTER TABLE {table} ADD COLUMN incident_reported_at timestamptz")
            op.execute(f"UPDATE {table} t SET incident_reported_at = i.reported_at FROM incidents i WHERE i.id = t.incident_id")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_incident_id_fkey FOREIGN KEY "
                       "(incident_id, incident_reported_at) REFERENCES incidents (id, reported_at) MATCH FULL "
                       "ON DELETE CASCADE ON UPDATE CASCADE")
        else:
            op.execute(f"ALTER TABLE {table} DROP COLUMN incident_reported_at")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_incident_id_fkey FOREIGN KEY (incident_id) "
                       "REFERENCES incidents (id) ON DELETE CASCADE")


def upgrade() -> None:
    op.execute(FILL_INCIDENT_TIME)
    _swap(partitioned=True)
    for filled in FILLED:
        _fill_triggers(*filled)
    # autovacuum analyses each month but never the partitioned table as a whole, whose
    # statistics the planner uses for joins over all months
    op.execute("ANALYZE incidents")


def downgrade() -> None:
    for table, column, _, _ in FILLED:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_{column}_time_{event} ON {table}")
    _swap(partitioned=False)
    op.execute("DROP FUNCTION gridmap_incident_partitions_ensure(date, date)")
    op.execute("DROP FUNCTION gridmap_fill_incident_reported_at()")
    op.execute("DROP FUNCTION gridmap_fill_duplicate_of_reported_at()")
