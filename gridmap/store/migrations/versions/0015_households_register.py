"""The households register (issue: people and lists): households by building, their residents
with personal data encrypted at rest.

``households``: one row per household a territory's office registered: the building it is in
(the feature of the buildings layer it matched, kept as its label and its point too, so a
re-imported buildings layer or a re-plan does not lose it: its grid is the published grid holding
``geom``, its point), its 单元 and 房号, and ``household_key`` (its 户号, else the building's
normalised name|单元|房号, so a re-imported buildings layer keeps it) by
which the next import finds it again.
``residents``: the people of a household. ``name_enc``, ``id_number_enc``, ``phone_enc`` are
Fernet tokens (gridmap.vault; the key is not in the database); ``person_index`` is a keyed hash
(of the ID number, else of name and household) that finds a person again without decrypting, and
``member_index`` the keyed hash of name and household (a row with or without the ID number of a
person stored without or with one is the same person).
Relation, focus tags and birth year are kept in clear: the aggregates per grid count them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="SET NULL")),
        sa.Column("building_feature_id", sa.BigInteger(), sa.ForeignKey("layer_features.id", ondelete="SET NULL")),
        sa.Column("building_label", sa.Text(), nullable=False),
        sa.Column("stairwell", sa.Text()),
        sa.Column("room", sa.Text()),
        sa.Column("household_no", sa.Text()),
        sa.Column("household_key", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("territory_id", "household_key", name="uq_households_territory_key"),
    )
    op.create_index("ix_households_geom", "households", ["geom"], postgresql_using="gist")
    op.create_index("ix_households_building", "households", ["building_feature_id"])
    op.create_table(
        "residents",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), sa.ForeignKey("households.id", ondelete="CASCADE"), nullable=False),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_index", sa.String(64), nullable=False),
        sa.Column("member_index", sa.String(64), nullable=False),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary()),
        sa.Column("phone_enc", sa.LargeBinary()),
        sa.Column("relation", sa.Text()),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("birth_year", sa.SmallInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("territory_id", "person_index", name="uq_residents_territory_person"),
    )
    op.create_index("ix_residents_household_id", "residents", ["household_id"])
    op.create_index("ix_residents_member_index", "residents", ["territory_id", "member_index"])


def downgrade() -> None:
    op.drop_index("ix_residents_member_index", table_name="residents")
    op.drop_index("ix_residents_household_id", table_name="residents")
    op.drop_table("residents")
    op.drop_index("ix_households_building", table_name="households")
    op.drop_index("ix_households_geom", table_name="households")
    op.drop_table("households")
