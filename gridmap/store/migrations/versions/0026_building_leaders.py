"""A building's leader (楼栋长) apart from its 单元's (单元长).

A micro-grid's buildings are stored one row per building, or one row per 单元 where the division
cut a building by its stairwells. Each row had one leader: for a whole building its 楼栋长, for a
单元 its 单元长, so a building cut into 单元 had nowhere to keep its 楼栋长 (recording one on a
单元 overwrote that 单元's leader, and only in one micro-grid). ``building_leader_name`` and
``building_leader_phone`` hold the 楼栋长 on every row of the building (all its 单元, in whichever
micro-grids they lie); ``leader_name``/``leader_phone`` are now the 单元长 of a 单元 row only.
The leaders recorded on whole buildings move to the new columns.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("microgrid_buildings", sa.Column("building_leader_name", sa.Text(), nullable=True))
    op.add_column("microgrid_buildings", sa.Column("building_leader_phone", sa.Text(), nullable=True))
    op.execute("UPDATE microgrid_buildings SET building_leader_name = leader_name, building_leader_phone = leader_phone, "
               "leader_name = NULL, leader_phone = NULL WHERE parts <= 1 "
               "AND (leader_name IS NOT NULL OR leader_phone IS NOT NULL)")


def downgrade() -> None:
    # one leader a row again: a whole building's 楼栋长; on a 单元's row its 单元长, else its building's
    # 楼栋长 (where a 单元 has a 单元长 of its own, the 楼栋长 cannot be kept: revision 0025 has no place for both)
    op.execute("UPDATE microgrid_buildings SET leader_name = building_leader_name, leader_phone = building_leader_phone "
               "WHERE parts <= 1 OR (leader_name IS NULL AND leader_phone IS NULL)")
    op.drop_column("microgrid_buildings", "building_leader_phone")
    op.drop_column("microgrid_buildings", "building_leader_name")
