"""Alembic migrations: linear history, upgrade and downgrade, and agreement with the models."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gridmap.store import migrate
from gridmap.store.databases import drop_database, ensure_postgis_database
from gridmap.store.models import Base


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
    url = make_url(server_url).set(database=f"gridmap_mig_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    ensure_postgis_database(url)
    try:
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
    finally:
        drop_database(url)


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
