"""Alembic migrations: linear history, upgrade and downgrade, and agreement with the models."""

from __future__ import annotations

import sqlalchemy as sa

from gridmap.store import migrate
from gridmap.store.models import Base

from conftest import fresh_database


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    return names - {"spatial_ref_sys"}


def test_history_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://"))
    assert len(script.get_heads()) == 1
    for rev in script.walk_revisions():
        assert not isinstance(rev.down_revision, (tuple, list)), f"{rev.revision} is a merge"


def test_upgrade_downgrade_upgrade(server_url: str) -> None:
    with fresh_database(server_url, "gridmap_mig", revision=None) as url:
        assert migrate.current_revision(url) is None
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        assert set(Base.metadata.tables) <= _tables(url)
        assert migrate.schema_drift(url) == []
        # step down one revision at a time to base, then back up
        for rev in reversed(migrate.revisions()):
            migrate.downgrade(url, "-1")
        assert migrate.current_revision(url) is None
        assert _tables(url) <= {"alembic_version"}
        migrate.upgrade(url)
        assert migrate.schema_drift(url) == []


def test_geometry_columns_use_cgcs2000_and_gist(engine: sa.Engine) -> None:
    """Every geometry column is CGCS2000 with a GiST index; a partition's is the partitioned
    table's index (its copy, attached to it)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT f_table_name, srid, c.relispartition FROM geometry_columns g JOIN pg_class c "
            "ON c.oid = format('%I.%I', g.f_table_schema, g.f_table_name)::regclass "
            "WHERE f_table_schema = 'public'")).all()
        indexes = {r[0] for r in conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'"))}
        attached = dict(conn.execute(sa.text(
            "SELECT t.relname, p.relname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_am am ON am.oid = x.relam AND am.amname = 'gist' "
            "JOIN pg_inherits h ON h.inhrelid = i.indexrelid JOIN pg_class p ON p.oid = h.inhparent "
            "WHERE t.relispartition AND i.indpred IS NULL")).all())
    assert rows and all(srid == 4490 for _, srid, _ in rows)
    partitions = [table for table, _, partition in rows if partition]
    assert partitions  # the incidents' months
    for table, _, partition in rows:
        assert (attached.get(table) == "ix_incidents_geom") if partition else (f"ix_{table}_geom" in indexes)


def test_constraints_reject_bad_rows(engine: sa.Engine) -> None:
    import pytest

    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO territories (code, name, level, geom) VALUES ('12A', 'x', 'community', "
                "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4490))"))
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO territories (code, name, level, geom) VALUES ('123', 'x', 'province', "
                "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4490))"))


def test_partitioning_the_incidents_keeps_them_and_their_references(server_url: str) -> None:
    """0024 on a database with incidents (the data copy, not only the schema): each incident in its
    month's partition with every column, the duplicate's and the events' and whistle's report
    times filled in, the rollups still in step, ids continuing after the largest; and back down
    to 0023 with the same rows in one plain table."""
    from gridmap.store import incident_rollups

    rows = "SELECT id, public_id, reported_at, duplicate_of, status, description FROM incidents ORDER BY id"
    with fresh_database(server_url, "gridmap_mig", revision=None) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(url, "0023")
        with engine.begin() as conn:
            territory = conn.execute(sa.text(
                "INSERT INTO territories (code, name, level, geom) VALUES ('980100', 'x', 'district', "
                "ST_GeomFromText('MULTIPOLYGON(((7.4 43.7,7.5 43.7,7.5 43.8,7.4 43.7)))', 4490)) RETURNING id")).scalar_one()
            ids = conn.execute(sa.text(
                "INSERT INTO incidents (category_code, geom, reported_at, status, description) "
                "SELECT '0103', ST_SetSRID(ST_Point(7.42 + n / 1000.0, 43.73), 4490), t, s, d FROM (VALUES "
                "(1, TIMESTAMPTZ '2025-11-30 23:30+00', 'closed', '月末'), (2, '2026-02-01 03:00+08', 'reported', 'second'), "
                "(3, '2026-02-14 12:00+00', 'rejected', NULL)) v(n, t, s, d) RETURNING id")).scalars().all()
            conn.execute(sa.text("UPDATE incidents SET duplicate_of = :a WHERE id = :c"), {"a": ids[0], "c": ids[2]})
            conn.execute(sa.text("INSERT INTO incident_events (incident_id, to_status, action) "
                                 "SELECT id, 'reported', 'report' FROM incidents"))
            conn.execute(sa.text("INSERT INTO whistles (territory_id, incident_id, blown_by, blown_at, ack_due, "
                                 "arrive_due) VALUES (:t, :i, 'test', now(), now(), now())"), {"t": territory, "i": ids[1]})
            before = conn.execute(sa.text(rows)).all()
        migrate.upgrade(url)
        with engine.begin() as conn:
            assert conn.execute(sa.text(rows)).all() == before
            placed = dict(conn.execute(sa.text("SELECT id, tableoid::regclass::text FROM incidents")).all())
            # 03:00 on 1 February in Beijing is 19:00 on 31 January in UTC: January's month
            assert placed == {ids[0]: "incidents_202511", ids[1]: "incidents_202601", ids[2]: "incidents_202602"}
            assert conn.execute(sa.text(
                "SELECT count(*) FROM incidents d JOIN incidents o ON o.id = d.duplicate_of "
                "WHERE d.duplicate_of_reported_at = o.reported_at")).scalar_one() == 1
            assert conn.execute(sa.text(
                "SELECT count(*) FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
                "AND i.reported_at = e.incident_reported_at")).scalar_one() == 3
            assert conn.execute(sa.text("SELECT incident_reported_at FROM whistles")).scalar_one() == before[1].reported_at
            fresh = conn.execute(sa.text("INSERT INTO incidents (category_code, geom) VALUES ('0103', "
                                         "ST_SetSRID(ST_Point(7.42, 43.73), 4490)) RETURNING id")).scalar_one()
            assert fresh > max(ids)
            conn.execute(sa.text("DELETE FROM incidents WHERE id = :f"), {"f": fresh})
        assert incident_rollups.check(engine) == {t: 0 for t in incident_rollups.TABLES}
        migrate.downgrade(url, "0023")
        with engine.connect() as conn:
            assert conn.execute(sa.text(rows)).all() == before
            assert conn.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = 'incidents'")).scalar_one() == "r"
            assert conn.execute(sa.text("SELECT count(*) FROM incident_events")).scalar_one() == 3
        assert incident_rollups.check(engine) == {t: 0 for t in incident_rollups.TABLES}
        engine.dispose()
