"""Unit generations: units know what they were built from, and stale units are retired, not deleted.

* ``unit_builds``: one row per community each time its units are built: the input layers used
  (``inputs.layers``: per role the layer's owner, name, id, feature count, import time and a
  digest of its features), the fingerprint of the community's boundary (``inputs.boundary``) and
  of the rules that shape units (``inputs.rules``: the profile's ``units`` and ``roads``
  sections), and why it was built (``reasons``).
* ``units.build_id``: the build a unit comes from (a cut piece or a revision has its parent's).
* ``units.retired_at``: NULL for the current generation; set when the community's units are
  rebuilt. Retired units stay as long as a plan uses them, so published plans and history keep
  their units exactly.
* Indexes for deleting units that no plan uses (a rebuild's leftovers, a deleted draft's own
  units): ``ix_units_parent_id``, ``ix_units_build_id`` and ``ix_plan_units_unit_id`` (what the
  foreign keys check on every deleted row, and "does any plan use this unit").
* Unit keys are unique among current units only (``uq_units_current_key``, a partial index): a
  new generation reuses its predecessor's keys. ``ix_units_community_id`` replaces the index the
  old unique constraint gave ``community_id``.

Units stored before this revision have no build: the next partition of their territory rebuilds
them once (nothing is known of their inputs), retiring the old ones.

Downgrade: retired units no plan uses are deleted; retired units that plans use keep their rows,
and where their key is taken by another unit it gets the suffix ``~r<row id>`` (the old schema
wants keys unique per community). Which generation a unit belonged to is then lost.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=True),
        sa.Column("inputs", JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("reasons", JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("built_by", sa.Text(), nullable=True),
        sa.Column("built_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["territories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["territory_id"], ["territories.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unit_builds_community_id", "unit_builds", ["community_id"])
    op.add_column("units", sa.Column("build_id", sa.Integer(), nullable=True))
    op.create_foreign_key("units_build_id_fkey", "units", "unit_builds", ["build_id"], ["id"], ondelete="SET NULL")
    op.add_column("units", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_units_community_id", "units", ["community_id"])
    op.create_index("ix_units_build_id", "units", ["build_id"])
    op.create_index("ix_units_parent_id", "units", ["parent_id"])
    op.create_index("ix_plan_units_unit_id", "plan_units", ["unit_id"])
    op.drop_constraint("uq_units_community_key", "units", type_="unique")
    op.create_index("uq_units_current_key", "units", ["community_id", "unit_key"], unique=True,
                    postgresql_where=sa.text("retired_at IS NULL"))


def downgrade() -> None:
    op.execute("DELETE FROM units u WHERE u.retired_at IS NOT NULL "
               "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.unit_id = u.id)")
    op.execute("UPDATE units u SET unit_key = left(u.unit_key, 50) || '~r' || u.id WHERE u.retired_at IS NOT NULL "
               "AND EXISTS (SELECT 1 FROM units x WHERE x.community_id = u.community_id AND x.unit_key = u.unit_key "
               "AND x.id <> u.id)")
    op.drop_index("uq_units_current_key", table_name="units")
    op.create_unique_constraint("uq_units_community_key", "units", ["community_id", "unit_key"])
    op.drop_index("ix_plan_units_unit_id", table_name="plan_units")
    op.drop_index("ix_units_parent_id", table_name="units")
    op.drop_index("ix_units_build_id", table_name="units")
    op.drop_index("ix_units_community_id", table_name="units")
    op.drop_column("units", "retired_at")
    op.drop_constraint("units_build_id_fkey", "units", type_="foreignkey")
    op.drop_column("units", "build_id")
    op.drop_index("ix_unit_builds_community_id", table_name="unit_builds")
    op.drop_table("unit_builds")
