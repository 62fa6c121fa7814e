"""The incident loop: the category table (duty list), incident routing and supervision columns,
event actions, and the public incident number.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PUBLIC_ID = ("'GM' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || "
             "lpad(nextval('incident_public_seq')::text, 7, '0')")


def upgrade() -> None:
    op.add_column("departments", sa.Column("name_en", sa.Text(), nullable=True))
    op.create_table(
        "incident_categories",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("time_limit", sa.Float(), nullable=False),
        sa.Column("time_unit", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint("time_unit IN ('working_hours','working_days','hours','days')",
                           name="ck_incident_categories_unit"),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("code"),
    )
    op.execute("CREATE SEQUENCE incident_public_seq")
    op.alter_column("incidents", "public_id", server_default=sa.text(PUBLIC_ID))
    for column in (
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="api", nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("supervised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("synthetic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    ):
        op.add_column("incidents", column)
    op.create_foreign_key("incidents_duplicate_of_fkey", "incidents", "incidents", ["duplicate_of"], ["id"],
                          ondelete="SET NULL")
    op.create_check_constraint("ck_incidents_status", "incidents",
                               "status IN ('reported','filed','rejected','dispatched','claimed','handled','verified',"
                               "'closed')")
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"], unique=False)
    op.create_index("ix_incidents_category_status", "incidents", ["category_code", "status"], unique=False)
    op.add_column("incident_events", sa.Column("action", sa.String(length=16), nullable=True))
    op.add_column("incident_events", sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()),
                                               server_default=sa.text("'{}'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column("incident_events", "detail")
    op.drop_column("incident_events", "action")
    op.drop_index("ix_incidents_category_status", table_name="incidents")
    op.drop_index("ix_incidents_reported_at", table_name="incidents")
    op.drop_constraint("ck_incidents_status", "incidents", type_="check")
    op.drop_constraint("incidents_duplicate_of_fkey", "incidents", type_="foreignkey")
    for name in ("synthetic", "updated_at", "escalated_at", "supervised_at", "duplicate_of", "source", "address"):
        op.drop_column("incidents", name)
    op.alter_column("incidents", "public_id", server_default=None)
    op.execute("DROP SEQUENCE incident_public_seq")
    op.drop_table("incident_categories")
    op.drop_column("departments", "name_en")
