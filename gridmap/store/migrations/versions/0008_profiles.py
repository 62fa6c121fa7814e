"""City profiles: the rules a territory follows (gridmap.geo.profile), stored with it.

* ``territories.profile``: the profile (``Profile.to_dict()``) of this territory and of every
  territory under it that has none of its own; NULL inherits the parent's, and a root without
  one follows the ``default`` profile. Plans keep their own copy in ``parameters.profile``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("territories", sa.Column("profile", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("territories", "profile")
