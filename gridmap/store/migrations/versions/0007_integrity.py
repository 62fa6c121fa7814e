"""Integrity fixes: incidents follow the published plan; a plan's report is cached by edit
version; an administrator of the whole deployment holds a role without a territory.

* ``grids.lineage``: grids of different plans that hold the same units share a lineage. A copy of
  a plan copies its grids' lineages; an edit that changes which units a grid holds gives it a new
  one. ``incidents.grid_lineage`` names the lineage of the grid that holds an incident in the
  published plan, so a publish re-routes only the incidents of grids whose units changed.
  ``incidents.grid_id`` keeps the grid row the report was routed to when it arrived (history,
  accountability). Existing incidents get the lineage of their grid when that grid is published,
  else of the published grid containing them.
* ``plans.report_version``: the ``lock_version`` the stored ``report`` was computed at; a report
  is recomputed when the plan has been edited since.
* ``user_roles.territory_id`` may be NULL for ``admin``: administrator of every territory,
  present and future (the first user of a deployment).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HANDLING = ("CREATE INDEX ix_incidents_handling ON incidents ({column}, (date_part('epoch', closed_at - reported_at))) "
            "INCLUDE (closed_at, reported_at, category_code, community_id, street_id) WHERE status = 'closed'")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE grid_lineage_seq")
    op.add_column("grids", sa.Column("lineage", sa.BigInteger(), server_default=sa.text("nextval('grid_lineage_seq')"),
                                     nullable=False))
    op.create_index("ix_grids_lineage", "grids", ["lineage"])
    op.add_column("incidents", sa.Column("grid_lineage", sa.BigInteger(), nullable=True))
    op.execute("UPDATE incidents i SET grid_lineage = g.lineage FROM grids g JOIN plans p ON p.id = g.plan_id "
               "AND p.status = 'published' WHERE g.id = i.grid_id")
    op.execute("UPDATE incidents i SET grid_lineage = (SELECT g.lineage FROM grids g JOIN plans p ON p.id = g.plan_id "
               "AND p.status = 'published' WHERE ST_Intersects(g.geom, i.geom) ORDER BY p.published_at DESC, g.code "
               "LIMIT 1) WHERE i.grid_lineage IS NULL")
    op.create_index("ix_incidents_grid_lineage", "incidents", ["grid_lineage"])
    op.execute("DROP INDEX ix_incidents_handling")
    op.execute(HANDLING.format(column="grid_lineage"))
    op.add_column("plans", sa.Column("report_version", sa.Integer(), nullable=True))
    op.execute("UPDATE plans SET report_version = lock_version WHERE report ? 'summary'")
    op.alter_column("user_roles", "territory_id", existing_type=sa.Integer(), nullable=True)
    op.create_check_constraint("ck_user_roles_territory", "user_roles", "territory_id IS NOT NULL OR role = 'admin'")
    op.create_index("uq_user_roles_everywhere", "user_roles", ["user_id", "role"], unique=True,
                    postgresql_where=sa.text("territory_id IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_user_roles_everywhere", table_name="user_roles")
    op.drop_constraint("ck_user_roles_territory", "user_roles", type_="check")
    op.execute("DELETE FROM user_roles WHERE territory_id IS NULL")
    op.alter_column("user_roles", "territory_id", existing_type=sa.Integer(), nullable=False)
    op.drop_column("plans", "report_version")
    op.execute("DROP INDEX ix_incidents_handling")
    op.execute(HANDLING.format(column="grid_id"))
    op.drop_index("ix_incidents_grid_lineage", table_name="incidents")
    op.drop_column("incidents", "grid_lineage")
    op.drop_index("ix_grids_lineage", table_name="grids")
    op.drop_column("grids", "lineage")
    op.execute("DROP SEQUENCE grid_lineage_seq")
