"""The questions of each incident category (Open311 service attributes) and a report's answers.

``incident_categories.attributes``: the category's questions, a JSON list (code, datatype,
required, order, descriptions in both languages, the values of a list question).
``incidents.attributes``: the answers of a report, a JSON object keyed by question code.
Categories still as shipped (same code and Chinese name) get the shipped questions.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incident_categories", sa.Column("attributes", JSONB(), nullable=False,
                                                   server_default=sa.text("'[]'::jsonb")))
    op.add_column("incidents", sa.Column("attributes", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")))
    from gridmap.incident_rules import default_categories

    conn = op.get_bind()
    for category in default_categories():
        if category.attributes:
            conn.execute(sa.text("UPDATE incident_categories SET attributes = CAST(:a AS jsonb) "
                                 "WHERE code = :c AND name_zh = :zh"),
                         {"a": json.dumps([a.as_dict() for a in category.attributes], ensure_ascii=False),
                          "c": category.code, "zh": category.name_zh})


def downgrade() -> None:
    op.drop_column("incidents", "attributes")
    op.drop_column("incident_categories", "attributes")
