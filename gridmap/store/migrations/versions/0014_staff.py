"""The staff of the grids (issue: people and lists): who works in which grid, from when to when.

``staff``: one row per person a territory's office keeps (``territory_id``): name, phone, role
(网格长, 专职网格员, 兼职网格员, 网格指导员, 楼栋长, 单元长, 志愿者 as keys), the office's own key
(工号, unique in the territory when given) and optionally the user account they sign in with.
``staff_assignments``: a person on a grid (by its code; optionally a micro-grid of it) from
``valid_from`` to ``valid_to`` (open when null), with the published grid row it was made on
(``grid_id``, ``grid_lineage``): a re-plan that changes that grid shows the assignment as changed
and where the grid went.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROLES = ("grid_leader", "full_time_worker", "part_time_worker", "supervisor", "building_leader",
         "stairwell_leader", "volunteer")


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_key", sa.Text()),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text()),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("role IN (" + ",".join(f"'{r}'" for r in ROLES) + ")", name="ck_staff_role"),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name="ck_staff_name"),
    )
    op.create_index("ix_staff_territory_id", "staff", ["territory_id"])
    op.create_index("uq_staff_territory_key", "staff", ["territory_id", "staff_key"], unique=True,
                    postgresql_where=sa.text("staff_key IS NOT NULL"))
    op.create_table(
        "staff_assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("microgrid_code", sa.String(40)),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("grid_lineage", sa.BigInteger()),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_staff_assignments_dates"),
    )
    op.create_index("ix_staff_assignments_staff_id", "staff_assignments", ["staff_id"])
    op.create_index("ix_staff_assignments_grid_code", "staff_assignments", ["grid_code"])


def downgrade() -> None:
    op.drop_index("ix_staff_assignments_grid_code", table_name="staff_assignments")
    op.drop_index("ix_staff_assignments_staff_id", table_name="staff_assignments")
    op.drop_table("staff_assignments")
    op.drop_index("uq_staff_territory_key", table_name="staff")
    op.drop_index("ix_staff_territory_id", table_name="staff")
    op.drop_table("staff")
