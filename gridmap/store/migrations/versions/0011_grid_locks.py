"""Locked grids: a finished grid's units stay where they are until it is unlocked.

``grids.locked`` (false by default) belongs to the plan's grid, so a draft keeps its own locks
(copied from the plan it was made from); every edit that would move a unit into or out of a locked
grid, or cut one of its units, is refused (:mod:`gridmap.services.edits`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grids", sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("grids", "locked")
