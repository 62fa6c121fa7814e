"""Merge results: the crosswalk of departmental grids, the conflicts found, and grid duties.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merge_crosswalk",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("grid_ref", sa.String(length=64), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.Column("area_share", sa.Float(), nullable=False),
        sa.Column("household_share", sa.Float(), nullable=True),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("households", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_merge_crosswalk_plan_id", "merge_crosswalk", ["plan_id"], unique=False)
    op.create_table(
        "plan_conflicts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("grids", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("geom", geoalchemy2.types.Geometry(srid=4490, dimension=2, spatial_index=False,
                                                     from_text="ST_GeomFromEWKT", name="geometry", nullable=False),
                  nullable=False),
        sa.CheckConstraint("kind IN ('overlap','gap','sliver','crosses_community','outside','offset')",
                           name="ck_plan_conflicts_kind"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plan_conflicts_plan_id", "plan_conflicts", ["plan_id"], unique=False)
    op.create_index("ix_plan_conflicts_geom", "plan_conflicts", ["geom"], unique=False, postgresql_using="gist")
    op.create_table(
        "grid_duties",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("duty", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("plan_id", "grid_code", "department", "duty"),
    )


def downgrade() -> None:
    op.drop_table("grid_duties")
    op.drop_index("ix_plan_conflicts_geom", table_name="plan_conflicts", postgresql_using="gist")
    op.drop_index("ix_plan_conflicts_plan_id", table_name="plan_conflicts")
    op.drop_table("plan_conflicts")
    op.drop_index("ix_merge_crosswalk_plan_id", table_name="merge_crosswalk")
    op.drop_table("merge_crosswalk")
