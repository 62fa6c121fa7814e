"""Patrols keep their times along the track, and incidents found on a patrol link to it (issue:
people and lists).

``patrols.geom`` becomes a LINESTRINGM whose measure is each point's time (seconds since 1970,
UTC), so the time a walker passed any building is read from the track (``ST_InterpolatePoint``);
tracks stored before keep their start and end and have the times between spread along their
length. ``incidents.patrol_id``: the patrol during which its reporter reported it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE patrols ALTER COLUMN geom TYPE geometry(LINESTRINGM, 4490) USING "
               "ST_AddMeasure(geom, extract(epoch FROM started_at), extract(epoch FROM ended_at))")
    op.add_column("incidents", sa.Column("patrol_id", sa.Integer(), sa.ForeignKey("patrols.id", ondelete="SET NULL"),
                                         nullable=True))
    op.create_index("ix_incidents_patrol_id", "incidents", ["patrol_id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_patrol_id", table_name="incidents")
    op.drop_column("incidents", "patrol_id")
    op.execute("ALTER TABLE patrols ALTER COLUMN geom TYPE geometry(LINESTRING, 4490) USING ST_Force2D(geom)")
