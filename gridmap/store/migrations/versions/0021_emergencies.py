"""平战结合 (issue: emergency mode): emergencies, their grids and check-ins, door-knocking campaigns,
and the whistle (吹哨报到).

``emergencies``: one switch into emergency mode over a territory or part of it (``scope``: the
streets, communities or grids chosen; ``geom``: their union), of a kind, with reason, start, the
check-in deadline, and end. At most one is on at a time in a territory. ``emergency_grids``: the
published grids inside it, each with its status (set by its worker), its first check-in and how
far a missed check-in has gone. ``emergency_checkins``: every check-in (on duty, position), kept
once per phone retry (``client_id``). ``emergency_events``: everything that happened, in order:
the emergency's timeline and report.

``campaigns`` (敲门行动): a door-knocking drive over a territory with a purpose, start, deadline and
questions, inside an emergency or not; ``campaign_targets``: every registered household, and every
building with none registered, with its grid; ``campaign_visits``: each knock (outcome, answers,
the need or incident it raised), kept once per phone retry.

Incident categories may count their limit in ``minutes``: emergency categories, open only where
an emergency is on. ``incidents.emergency_id``: the emergency an incident was reported in.

``whistles`` (吹哨): the community calls departments to an incident or a need by deadlines;
``whistle_calls``: each department's acknowledgement and arrival (报到), and escalation when late.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

GRID_STATUS = ("normal", "affected", "needs_support", "cleared")
OUTCOMES = ("visited", "nobody_home", "refused", "issue_found")


def upgrade() -> None:
    # incident categories counted in minutes: emergency categories, open only where one is on
    op.drop_constraint("ck_incident_categories_unit", "incident_categories", type_="check")
    op.create_check_constraint("ck_incident_categories_unit", "incident_categories",
                               "time_unit IN ('working_hours','working_days','hours','days','minutes')")
    op.create_table(
        "emergencies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scope", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.Text(), nullable=False),
        sa.Column("checkin_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_by", sa.Text()),
        sa.Column("end_note", sa.Text()),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4490, spatial_index=False), nullable=False),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ck_emergencies_times"),
    )
    op.create_index("uq_emergencies_one_on", "emergencies", ["territory_id"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"))
    op.create_index("ix_emergencies_geom", "emergencies", ["geom"], postgresql_using="gist")
    op.create_table(
        "emergency_grids",
        sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("grid_code", sa.String(32), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False, server_default="normal"),
        sa.Column("status_at", sa.DateTime(timezone=True)),
        sa.Column("status_by", sa.Text()),
        sa.Column("status_note", sa.Text()),
        sa.Column("checked_in_at", sa.DateTime(timezone=True)),
        sa.Column("checked_in_by", sa.Text()),
        sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN (" + ",".join(f"'{s}'" for s in GRID_STATUS) + ")",
                           name="ck_emergency_grids_status"),
    )
    op.create_table(
        "emergency_checkins",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("walker", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("note", sa.Text()),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False)),
        sa.UniqueConstraint("emergency_id", "walker", "client_id", "grid_code", name="uq_emergency_checkins_client"),
    )
    op.create_index("ix_emergency_checkins_emergency", "emergency_checkins", ["emergency_id", "grid_code"])
    op.create_index("ix_emergency_checkins_geom", "emergency_checkins", ["geom"], postgresql_using="gist")
    op.create_table(
        "emergency_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("grid_code", sa.String(32)),
        sa.Column("detail", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_emergency_events_emergency", "emergency_events", ["emergency_id", "at"])
    # the emergency an incident was reported in (its report counts these)
    op.add_column("incidents", sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="SET NULL"),
                                         nullable=True))
    op.create_index("ix_incidents_emergency_id", "incidents", ["emergency_id"])

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="SET NULL")),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text()),
        sa.Column("questions", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.CheckConstraint("deadline > starts_at", name="ck_campaigns_deadline"),
    )
    op.create_index("ix_campaigns_territory_id", "campaigns", ["territory_id"])
    op.create_table(
        "campaign_targets",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("household_id", sa.BigInteger(), sa.ForeignKey("households.id", ondelete="SET NULL")),
        sa.Column("building_id", sa.BigInteger(), sa.ForeignKey("layer_features.id", ondelete="SET NULL")),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        # the latest knock, kept with the target (progress and the board count these, not the knocks)
        sa.Column("last_outcome", sa.String(16)),
        sa.Column("last_visited_at", sa.DateTime(timezone=True)),
        sa.Column("last_visitor", sa.Text()),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False), nullable=False),
    )
    op.create_index("ix_campaign_targets_grid", "campaign_targets", ["campaign_id", "grid_code"])
    op.create_index("ix_campaign_targets_geom", "campaign_targets", ["geom"], postgresql_using="gist")
    op.create_table(
        "campaign_visits",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.BigInteger(), sa.ForeignKey("campaign_targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("answers", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("note", sa.Text()),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visitor", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("need_id", sa.Integer(), sa.ForeignKey("needs.id", ondelete="SET NULL")),
        sa.Column("incident_public_id", sa.Text()),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.CheckConstraint("outcome IN (" + ",".join(f"'{o}'" for o in OUTCOMES) + ")", name="ck_campaign_visits_outcome"),
        sa.UniqueConstraint("campaign_id", "visitor", "client_id", name="uq_campaign_visits_client"),
    )
    op.create_index("ix_campaign_visits_target", "campaign_visits", ["target_id", "visited_at"])
    op.create_index("ix_campaign_visits_campaign", "campaign_visits", ["campaign_id"])

    op.create_table(
        "whistles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("territory_id", sa.Integer(), sa.ForeignKey("territories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("emergency_id", sa.Integer(), sa.ForeignKey("emergencies.id", ondelete="SET NULL")),
        # a whistle goes with the incident or need it was blown on
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE")),
        sa.Column("need_id", sa.Integer(), sa.ForeignKey("needs.id", ondelete="CASCADE")),
        sa.Column("note", sa.Text()),
        sa.Column("blown_by", sa.Text(), nullable=False),
        sa.Column("blown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrive_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.CheckConstraint("incident_id IS NOT NULL OR need_id IS NOT NULL", name="ck_whistles_subject"),
    )
    op.create_index("ix_whistles_territory_id", "whistles", ["territory_id"])
    op.create_table(
        "whistle_calls",
        sa.Column("whistle_id", sa.Integer(), sa.ForeignKey("whistles.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.Text()),
        sa.Column("arrived_at", sa.DateTime(timezone=True)),
        sa.Column("arrived_by", sa.Text()),
        sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for table in ("whistle_calls", "whistles", "campaign_visits", "campaign_targets", "campaigns", "emergency_events",
                  "emergency_checkins", "emergency_grids"):
        op.drop_table(table)
    op.drop_index("ix_incidents_emergency_id", table_name="incidents")
    op.drop_column("incidents", "emergency_id")
    op.drop_index("ix_emergencies_geom", table_name="emergencies")
    op.drop_index("uq_emergencies_one_on", table_name="emergencies")
    op.drop_table("emergencies")
    op.execute("DELETE FROM incident_categories WHERE time_unit = 'minutes' AND NOT EXISTS "
               "(SELECT 1 FROM incidents i WHERE i.category_code = incident_categories.code)")
    op.execute("UPDATE incident_categories SET time_unit = 'hours', time_limit = time_limit / 60.0 "
               "WHERE time_unit = 'minutes'")
    op.drop_constraint("ck_incident_categories_unit", "incident_categories", type_="check")
    op.create_check_constraint("ck_incident_categories_unit", "incident_categories",
                               "time_unit IN ('working_hours','working_days','hours','days')")
