"""The three lists of a community (issue: people and lists): needs, resources, projects.

``needs``: what residents or workers asked for (category from the profile, description, urgency,
status, where: a point and the community it is in), who raised it, and what became of it (the
project that took it, the incident it was referred to). ``resources``: what the area offers (a
unit stationed there, a venue, volunteers, a fund, a service), the categories of need it serves,
capacity, hours, contact, where. ``projects``: needs matched to resources (``project_needs``,
``project_resources``), owner, budget, dates, status, outcome. Every row belongs to the territory
it was entered under; its grid is the published grid holding its point.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NEED_STATUS = ("open", "matched", "in_project", "met", "closed", "referred")
URGENCY = ("low", "normal", "high", "urgent")
KINDS = ("unit", "venue", "volunteers", "fund", "service")
PROJECT_STATUS = ("planned", "active", "done", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text()),
        sa.Column("budget", sa.Numeric(14, 2)),
        sa.Column("start_date", sa.Date()),
        sa.Column("end_date", sa.Date()),
        sa.Column("status", sa.String(16), nullable=False, server_default="planned"),
        sa.Column("outcome", sa.Text()),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(_in("status", PROJECT_STATUS), name="ck_projects_status"),
        sa.CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="ck_projects_dates"),
        sa.CheckConstraint("budget IS NULL OR budget >= 0", name="ck_projects_budget"),
    )
    op.create_index("ix_projects_territory_id", "projects", ["territory_id"])
    op.create_table(
        "needs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="SET NULL")),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("urgency", sa.String(8), nullable=False, server_default="normal"),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("source", sa.Text()),
        sa.Column("reported_by", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("status_note", sa.Text()),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="SET NULL")),
        sa.Column("incident_public_id", sa.Text()),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False)),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(_in("status", NEED_STATUS), name="ck_needs_status"),
        sa.CheckConstraint(_in("urgency", URGENCY), name="ck_needs_urgency"),
        sa.CheckConstraint("geom IS NOT NULL OR community_id IS NOT NULL", name="ck_needs_place"),
    )
    op.create_index("ix_needs_territory_id", "needs", ["territory_id"])
    op.create_index("ix_needs_geom", "needs", ["geom"], postgresql_using="gist")
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="SET NULL")),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("capacity", sa.Integer()),
        sa.Column("hours", sa.Text()),
        sa.Column("contact", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False)),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(_in("kind", KINDS), name="ck_resources_kind"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_resources_capacity"),
        sa.UniqueConstraint("territory_id", "name", name="uq_resources_territory_name"),
    )
    op.create_index("ix_resources_territory_id", "resources", ["territory_id"])
    op.create_index("ix_resources_geom", "resources", ["geom"], postgresql_using="gist")
    op.create_table(
        "project_needs",
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("need_id", sa.Integer(), sa.ForeignKey("needs.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "project_resources",
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("resource_id", sa.Integer(), sa.ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("project_resources")
    op.drop_table("project_needs")
    op.drop_index("ix_resources_geom", table_name="resources")
    op.drop_index("ix_resources_territory_id", table_name="resources")
    op.drop_table("resources")
    op.drop_index("ix_needs_geom", table_name="needs")
    op.drop_index("ix_needs_territory_id", table_name="needs")
    op.drop_table("needs")
    op.drop_index("ix_projects_territory_id", table_name="projects")
    op.drop_table("projects")
