"""Notes on a plan's grids and units: why a grid was drawn so, kept with the draft.

``plan_notes``: one row per note of a plan (``plan_id``, cascading): on a grid (``grid_code``) or
on a unit (``unit_id``), its text (``body``), who wrote it and when. A new draft copies the notes
of the plan it comes from; the diff against the published plan lists the notes that are new.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_code", sa.String(32)),
        sa.Column("unit_id", sa.Integer()),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("grid_code IS NOT NULL OR unit_id IS NOT NULL", name="ck_plan_notes_target"),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 2000", name="ck_plan_notes_body"),
    )
    op.create_index("ix_plan_notes_plan_id", "plan_notes", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_plan_notes_plan_id", table_name="plan_notes")
    op.drop_table("plan_notes")
