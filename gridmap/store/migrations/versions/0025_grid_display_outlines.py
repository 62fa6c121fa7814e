"""Grids' display outlines (issue: serving under load): each grid keeps its outline simplified
for maps, worked out once when the grid is written instead of on every request.

``grids.geom_display`` is a stored generated column, ``ST_SimplifyPreserveTopology(geom, 2e-5)``
(about 2 m): PostgreSQL keeps it equal to the grid's geometry through every insert and update, so
no writer has to know it exists. The dashboard's choropleth drew every published grid simplified
on each request: for Reykjavík's 377 grids that was 85–125 ms of the database's time a request,
most of a choropleth's cost under load; reading the stored outlines takes about 10 ms.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

DISPLAY_TOLERANCE_DEG = 2e-5
"""The simplification of the display outlines (``gridmap.store.models.DISPLAY_TOLERANCE_DEG``,
repeated here as a migration must not change when the code does)."""


def upgrade() -> None:
    op.execute("ALTER TABLE grids ADD COLUMN geom_display geometry(GEOMETRY, 4490) GENERATED ALWAYS AS "
               f"(ST_SimplifyPreserveTopology(geom, {DISPLAY_TOLERANCE_DEG})) STORED")


def downgrade() -> None:
    op.drop_column("grids", "geom_display")
