"""Patrols (巡查, issue: people and lists): a grid worker's walk as a GPS track with its times.

``patrols``: one row per track: who walked it (the account, and its name as it was), when it
started and ended, how many points it had, where it came from (the phone, a GPX or GeoJSON
file), and the track as a line in CGCS2000. Its grids are those it passes through.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrols",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("walker", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("geom", Geometry("LINESTRING", srid=4490, spatial_index=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("ended_at >= started_at", name="ck_patrols_times"),
        sa.CheckConstraint("source IN ('phone','gpx','geojson')", name="ck_patrols_source"),
        sa.UniqueConstraint("user_id", "started_at", name="uq_patrols_walker_start"),
    )
    op.create_index("ix_patrols_territory_id", "patrols", ["territory_id"])
    op.create_index("ix_patrols_geom", "patrols", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("ix_patrols_geom", table_name="patrols")
    op.drop_index("ix_patrols_territory_id", table_name="patrols")
    op.drop_table("patrols")
