"""Micro-grids (微网格): the level below a plan's grids, made of buildings and their 单元.

* ``microgrids``: one row per micro-grid of a plan: its grid (``grid_id``, the micro-grid lies
  inside it and is deleted with it), its code (the grid's code + the code scheme's micro digits,
  unique in the plan), households, building count, area, the flag and reason when it misses the
  micro band (``flag``, ``properties.reason`` / ``reason_zh``), its leader (楼栋长/单元长:
  ``leader_name``, ``leader_phone``; personal data, never served publicly) and its polygon.
* ``microgrid_buildings``: the buildings of each micro-grid, one row per building or per 单元 of
  a building cut by its stairwells (``part`` 1…``parts``; 0 = the whole building), with the
  building's feature in the buildings layer (``feature_id``; NULL once that layer is re-imported:
  the row keeps the building's name, households and cell), its leader and its cell.

Both belong to a plan (``plan_id``, cascading): a draft's micro-grids are remade per grid; those
of a published plan or history stay as they were.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "microgrids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("building_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("flag", sa.String(length=32), nullable=True),
        sa.Column("properties", JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("leader_name", sa.Text(), nullable=True),
        sa.Column("leader_phone", sa.Text(), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4490, spatial_index=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "code", name="uq_microgrids_plan_code"),
    )
    op.create_index("ix_microgrids_grid_id", "microgrids", ["grid_id"])
    op.create_index("ix_microgrids_geom", "microgrids", ["geom"], postgresql_using="gist")
    op.create_table(
        "microgrid_buildings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("microgrid_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.BigInteger(), nullable=True),
        sa.Column("building_name", sa.Text(), nullable=True),
        sa.Column("part", sa.Integer(), server_default="0", nullable=False),
        sa.Column("parts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("leader_name", sa.Text(), nullable=True),
        sa.Column("leader_phone", sa.Text(), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4490, spatial_index=False), nullable=False),
        sa.ForeignKeyConstraint(["microgrid_id"], ["microgrids.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["feature_id"], ["layer_features.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_microgrid_buildings_microgrid_id", "microgrid_buildings", ["microgrid_id"])
    op.create_index("ix_microgrid_buildings_feature_id", "microgrid_buildings", ["feature_id"])
    op.create_index("ix_microgrid_buildings_geom", "microgrid_buildings", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("ix_microgrid_buildings_geom", table_name="microgrid_buildings")
    op.drop_index("ix_microgrid_buildings_feature_id", table_name="microgrid_buildings")
    op.drop_index("ix_microgrid_buildings_microgrid_id", table_name="microgrid_buildings")
    op.drop_table("microgrid_buildings")
    op.drop_index("ix_microgrids_geom", table_name="microgrids")
    op.drop_index("ix_microgrids_grid_id", table_name="microgrids")
    op.drop_table("microgrids")
