"""A covering index for handling-time medians: closed incidents ordered by grid and handling
seconds, carrying the columns the dashboard filters on, so a per-grid median is an index-only
scan of presorted values instead of a sort of every closed incident.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_incidents_handling ON incidents (grid_id, (date_part('epoch', closed_at - reported_at))) "
        "INCLUDE (closed_at, reported_at, category_code, community_id, street_id) WHERE status = 'closed'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_incidents_handling")
