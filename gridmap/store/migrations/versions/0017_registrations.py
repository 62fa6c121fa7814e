"""双报到 (issue: people and lists): party members and units stationed in the area register with
the community of their residence or location; their service hours are logged.

``registrations``: one row per party member (``party_member``) or unit (``unit``) registered with
a community: name, their party branch or organisation, the address and point of their residence
(or the unit's site; its grid is the published grid holding it), the day they registered, whether
the row is synthetic (the demo). ``service_hours``: hours a registration served on a day, what,
and the project or need it served, if any.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False)),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('party_member','unit')", name="ck_registrations_kind"),
        sa.UniqueConstraint("community_id", "kind", "name", "organisation", name="uq_registrations_person",
                            postgresql_nulls_not_distinct=True),
    )
    op.create_index("ix_registrations_territory_id", "registrations", ["territory_id"])
    op.create_index("ix_registrations_community_id", "registrations", ["community_id"])
    op.create_index("ix_registrations_geom", "registrations", ["geom"], postgresql_using="gist")
    op.create_table(
        "service_hours",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("registration_id", sa.Integer(), sa.ForeignKey("registrations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("served_on", sa.Date(), nullable=False),
        sa.Column("hours", sa.Numeric(6, 2), nullable=False),
        sa.Column("activity", sa.Text()),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="SET NULL")),
        sa.Column("need_id", sa.Integer(), sa.ForeignKey("needs.id", ondelete="SET NULL")),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("hours > 0 AND hours <= 24", name="ck_service_hours_hours"),
    )
    op.create_index("ix_service_hours_registration_id", "service_hours", ["registration_id"])


def downgrade() -> None:
    op.drop_index("ix_service_hours_registration_id", table_name="service_hours")
    op.drop_table("service_hours")
    op.drop_index("ix_registrations_geom", table_name="registrations")
    op.drop_index("ix_registrations_community_id", table_name="registrations")
    op.drop_index("ix_registrations_territory_id", table_name="registrations")
    op.drop_table("registrations")
