"""Answers kept for every server process (issue: beyond one machine): what takes seconds to work
out and depends only on stored data, such as a station type's walking service areas, kept under a
key that names the data it was made from. Several ``gridmap serve`` processes, and a restarted
one, find it here instead of working it out again.

``answer_cache``: the key (a digest of what the answer depends on), its kind, the territory it
belongs to (it goes with it), the answer's bytes and when it was made.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_answer_cache_kind_territory", "answer_cache", ["kind", "territory_id", "made_at"])


def downgrade() -> None:
    op.drop_index("ix_answer_cache_kind_territory", table_name="answer_cache")
    op.drop_table("answer_cache")
