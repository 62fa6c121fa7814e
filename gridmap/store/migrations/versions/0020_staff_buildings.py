"""Staff assigned to a building (楼栋长, 单元长 of a building; issue: people and lists).

``staff_assignments.building_id``: the building (a feature of the territory's buildings layer) an
assignment is for, within its grid (and micro-grid); ``building_label``: the building as the
office named it (小区 and 楼栋), kept when the buildings layer is imported again.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("staff_assignments", sa.Column("building_id", sa.BigInteger(),
                                                 sa.ForeignKey("layer_features.id", ondelete="SET NULL"), nullable=True))
    op.add_column("staff_assignments", sa.Column("building_label", sa.Text(), nullable=True))
    op.create_index("ix_staff_assignments_building_id", "staff_assignments", ["building_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_assignments_building_id", table_name="staff_assignments")
    op.drop_column("staff_assignments", "building_label")
    op.drop_column("staff_assignments", "building_id")
