"""Scoped roles and API keys: a handler bound to a department, a grid worker to grids, and
long-lived keys for system-to-system integration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user_roles", sa.Column("department_id", sa.Integer(), nullable=True))
    op.create_foreign_key("user_roles_department_id_fkey", "user_roles", "departments", ["department_id"], ["id"],
                          ondelete="CASCADE")
    op.add_column("user_roles", sa.Column("grid_codes", postgresql.ARRAY(sa.String(length=32)), nullable=True))
    op.add_column("auth_tokens", sa.Column("kind", sa.String(length=16), server_default="session", nullable=False))
    op.add_column("auth_tokens", sa.Column("name", sa.Text(), nullable=True))
    op.add_column("auth_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("auth_tokens", "expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    op.create_check_constraint("ck_auth_tokens_kind", "auth_tokens", "kind IN ('session','api_key')")


def downgrade() -> None:
    op.execute("DELETE FROM auth_tokens WHERE expires_at IS NULL")
    op.drop_constraint("ck_auth_tokens_kind", "auth_tokens", type_="check")
    op.alter_column("auth_tokens", "expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.drop_column("auth_tokens", "last_used_at")
    op.drop_column("auth_tokens", "name")
    op.drop_column("auth_tokens", "kind")
    op.drop_column("user_roles", "grid_codes")
    op.drop_constraint("user_roles_department_id_fkey", "user_roles", type_="foreignkey")
    op.drop_column("user_roles", "department_id")
