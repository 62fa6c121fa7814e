"""Schema migrations through Alembic, driven from code (``gridmap migrate``) and tests.

The migration scripts ship inside the package (``gridmap/store/migrations``), so an installed
gridmap can migrate any database it is pointed at; history is linear.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import sqlalchemy as sa

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` removes every gridmap table)."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def revisions() -> list[str]:
    """All revisions, oldest first."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


POSTGIS_TABLES = {"spatial_ref_sys", "topology", "layer"}
"""PostGIS owns these tables; they are not ours to create or drop."""


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What the models describe: not PostGIS's tables, nor the incidents' monthly partitions (made
    by ``gridmap_incident_partitions_ensure``, each a table to the catalogue) and the copies of the
    foreign keys to ``incidents`` that PostgreSQL keeps for each of them."""
    from gridmap.store.incident_partitions import PARTITION

    if type_ == "table":
        return not (name in POSTGIS_TABLES or PARTITION.fullmatch(name or ""))
    if type_ == "foreign_key_constraint":
        return not PARTITION.fullmatch(obj.referred_table.name)
    return True


def schema_drift(url: str) -> list:
    """Differences between the migrated database and the models (empty when they agree).

    PostGIS's own tables and the incidents' partitions are ignored (``include_object``), as in the
    migration environment.
    """
    from alembic.autogenerate import compare_metadata

    from gridmap.store.models import Base

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_object": include_object,
                "compare_type": True,
            })
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
