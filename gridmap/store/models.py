"""The schema as SQLAlchemy 2 models. Tables are created only by Alembic migrations
(``gridmap/store/migrations``); a test checks that the migrations and these models agree.

Geometry is stored in EPSG:4490 (CGCS2000) with an explicit GiST index per geometry column.
Codes are strings (leading zeros matter). A grid is a set of units (``plan_units``); its polygon
and sums are derived from them and cached on ``grids``.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gridmap.geo.kinds import COMPREHENSIVE, GRID_KINDS
from gridmap.staff_roles import ROLES as STAFF_ROLE_NAMES

SRID = 4490
DISPLAY_TOLERANCE_DEG = 2e-5
"""How far (about 2 m) a grid's display outline (``grids.geom_display``) may stray from its geometry."""
TERRITORY_LEVELS = ("city", "district", "street", "community")


def geometry(kind: str) -> Geometry:
    """A geometry column type in the storage SRID; the index is declared explicitly per table."""
    return Geometry(kind, srid=SRID, spatial_index=False)


def gist(table: str) -> Index:
    return Index(f"ix_{table}_geom", "geom", postgresql_using="gist")


def incident_key(table: str) -> ForeignKeyConstraint:
    """A reference to an incident: its id and its report time (the partition key of
    ``incidents``, 0024), both or neither; a row trigger fills the time from the id."""
    return ForeignKeyConstraint(["incident_id", "incident_reported_at"], ["incidents.id", "incidents.reported_at"],
                                name=f"{table}_incident_id_fkey", match="FULL", ondelete="CASCADE", onupdate="CASCADE")


class Base(DeclarativeBase):
    pass


class Territory(Base):
    """A node of the hierarchy city → district → street → community, with its boundary."""

    __tablename__ = "territories"
    __table_args__ = (
        CheckConstraint("level IN ('city','district','street','community')", name="ck_territories_level"),
        CheckConstraint("code ~ '^[0-9]+$'", name="ck_territories_code_digits"),
        Index("ix_territories_parent_id", "parent_id"),
        gist("territories"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    area_m2: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # the rules of this territory and those under it (gridmap.geo.profile); NULL: the parent's
    profile: Mapped[dict | None] = mapped_column(JSONB)
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Layer(Base):
    """A named GIS layer of a territory (roads, buildings, an imported file ...)."""

    __tablename__ = "layers"
    __table_args__ = (UniqueConstraint("territory_id", "name", name="uq_layers_territory_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32), server_default="imported")
    geometry_type: Mapped[str | None] = mapped_column(String(32))
    feature_count: Mapped[int] = mapped_column(Integer, server_default="0")
    source_file: Mapped[str | None] = mapped_column(Text)
    source_crs: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(32))
    checksum: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    imported_by: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LayerFeature(Base):
    """One feature of a layer: its attributes as JSON, its geometry in EPSG:4490."""

    __tablename__ = "layer_features"
    __table_args__ = (Index("ix_layer_features_layer_id", "layer_id"), gist("layer_features"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    feature_index: Mapped[int] = mapped_column(Integer)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    geom = mapped_column(geometry("GEOMETRY"), nullable=False)


class UnitBuild(Base):
    """One build of a community's units: what it was built from (``inputs``: the input layers'
    stamps, the boundary's fingerprint, the unit rules' fingerprint) and why (``reasons``), so
    units whose inputs changed since are known to be stale (migration 0009)."""

    __tablename__ = "unit_builds"
    __table_args__ = (Index("ix_unit_builds_community_id", "community_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    # the territory whose partition (or merge) built them
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    inputs: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    reasons: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    built_by: Mapped[str | None] = mapped_column(Text)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Unit(Base):
    """A relatively independent area (compound, block or dedicated site) inside one community.

    Units of a community are rebuilt when their inputs change: the old generation is retired
    (``retired_at``), never changed, and stays while plans use it; keys are unique among the
    current units (migration 0009)."""

    __tablename__ = "units"
    __table_args__ = (
        CheckConstraint("kind IN ('compound','block','site')", name="ck_units_kind"),
        Index("uq_units_current_key", "community_id", "unit_key", unique=True,
              postgresql_where=text("retired_at IS NULL")),
        Index("ix_units_community_id", "community_id"),
        Index("ix_units_build_id", "build_id"),
        Index("ix_units_parent_id", "parent_id"),
        gist("units"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    unit_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    population: Mapped[int | None] = mapped_column(Integer)
    area_m2: Mapped[float] = mapped_column(Float)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    build_id: Mapped[int | None] = mapped_column(ForeignKey("unit_builds.id", ondelete="SET NULL"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)


class Plan(Base):
    """An assignment of a territory's units to grids: a draft, the published plan, or history."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("status IN ('draft','published','history')", name="ck_plans_status"),
        UniqueConstraint("territory_id", "version", name="uq_plans_territory_version"),
        Index("uq_plans_one_published", "territory_id", unique=True,
              postgresql_where=text("status = 'published'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    version: Mapped[int] = mapped_column(Integer)
    lock_version: Mapped[int] = mapped_column(Integer, server_default="1")
    origin: Mapped[str | None] = mapped_column(String(32))
    parent_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    report: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # the lock_version ``report`` was computed at (migration 0007): older means recompute
    report_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Grid(Base):
    """A grid of a plan; geometry and sums are derived from its units."""

    __tablename__ = "grids"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in GRID_KINDS)})".replace(", ", ","), name="ck_grids_kind"),
        UniqueConstraint("plan_id", "code", name="uq_grids_plan_code"),
        Index("ix_grids_lineage", "lineage"),
        gist("grids"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    community_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), server_default=COMPREHENSIVE)
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    population: Mapped[int | None] = mapped_column(Integer)
    area_m2: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    geom = mapped_column(geometry("MULTIPOLYGON"))
    # the outline maps draw (migration 0025): simplified once, by the database, whenever geom is written
    geom_display = mapped_column(geometry("GEOMETRY"), Computed(
        f"ST_SimplifyPreserveTopology(geom, {DISPLAY_TOLERANCE_DEG})", persisted=True))
    # shared by the grids of different plans that hold the same units (migration 0007): incidents
    # name the lineage of their grid, so a publish re-routes only those in grids that changed
    lineage: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('grid_lineage_seq')"))
    # a locked grid keeps its units: no edit moves one into or out of it (migration 0011)
    locked: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class PlanUnit(Base):
    """The assignment: in plan P, unit U belongs to grid G (each unit exactly once per plan)."""

    __tablename__ = "plan_units"
    __table_args__ = (Index("ix_plan_units_grid_id", "grid_id"), Index("ix_plan_units_unit_id", "unit_id"))

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))


class Microgrid(Base):
    """A micro-grid (微网格) of a plan: buildings (or their 单元) of one grid, coded below it, with
    its leader (楼栋长/单元长; the phone is personal data, never served publicly; migration 0010)."""

    __tablename__ = "microgrids"
    __table_args__ = (
        UniqueConstraint("plan_id", "code", name="uq_microgrids_plan_code"),
        Index("ix_microgrids_grid_id", "grid_id"),
        gist("microgrids"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    building_count: Mapped[int] = mapped_column(Integer, server_default="0")
    area_m2: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[str | None] = mapped_column(String(32))
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    leader_name: Mapped[str | None] = mapped_column(Text)
    leader_phone: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MicrogridBuilding(Base):
    """A building of a micro-grid, or one 单元 of a building cut by its stairwells (``part``
    1..``parts``; 0 = whole), with its cell; its 单元's leader (单元长, on a 单元's row: migration
    0010) and its building's leader (楼栋长, on every row of the building: migration 0026)."""

    __tablename__ = "microgrid_buildings"
    __table_args__ = (
        Index("ix_microgrid_buildings_microgrid_id", "microgrid_id"),
        Index("ix_microgrid_buildings_feature_id", "feature_id"),
        gist("microgrid_buildings"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    microgrid_id: Mapped[int] = mapped_column(ForeignKey("microgrids.id", ondelete="CASCADE"))
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("layer_features.id", ondelete="SET NULL"))
    building_name: Mapped[str | None] = mapped_column(Text)
    part: Mapped[int] = mapped_column(Integer, server_default="0")
    parts: Mapped[int] = mapped_column(Integer, server_default="1")
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    leader_name: Mapped[str | None] = mapped_column(Text)
    leader_phone: Mapped[str | None] = mapped_column(Text)
    building_leader_name: Mapped[str | None] = mapped_column(Text)
    building_leader_phone: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)


class Department(Base):
    """A functional department (综治, 城管, 应急 ...)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)


class IncidentCategory(Base):
    """An incident category (an Open311 service) with its department and time limit: the duty list."""

    __tablename__ = "incident_categories"
    __table_args__ = (
        # minutes: an emergency category, open only where an emergency is on (0021)
        CheckConstraint("time_unit IN ('working_hours','working_days','hours','days','minutes')",
                        name="ck_incident_categories_unit"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    group_name: Mapped[str | None] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"))
    time_limit: Mapped[float] = mapped_column(Float)
    time_unit: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    attributes: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))


class DepartmentGrid(Base):
    """A grid a department drew on its own, before merging (多网合一)."""

    __tablename__ = "department_grids"
    __table_args__ = (
        UniqueConstraint("department_id", "territory_id", "grid_ref", name="uq_department_grids_ref"),
        gist("department_grids"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    layer_id: Mapped[int | None] = mapped_column(ForeignKey("layers.id", ondelete="SET NULL"))
    grid_ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    duties: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    worker: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)


class Station(Base):
    """A service station (党群服务站, family-doctor station ...)."""

    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint("status IN ('open','closed')", name="ck_stations_status"),
        gist("stations"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    station_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    services: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    source_ref: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("POINT"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Incident(Base):
    """A reported incident and where it was routed. Partitioned by the month of report (0024):
    the partitions (``incidents_YYYYMM``, ``incidents_default``) are made by
    ``gridmap_incident_partitions_ensure``, not by the models."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("public_id", "reported_at", name="incidents_public_id_key"),
        ForeignKeyConstraint(["duplicate_of", "duplicate_of_reported_at"], ["incidents.id", "incidents.reported_at"],
                             name="incidents_duplicate_of_fkey", match="FULL", ondelete="SET NULL", onupdate="CASCADE"),
        Index("ix_incidents_status", "status"),
        Index("ix_incidents_grid_id", "grid_id"),
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_category_status", "category_code", "status"),
        Index("ix_incidents_grid_lineage", "grid_lineage"),
        Index("ix_incidents_patrol_id", "patrol_id"),
        Index("ix_incidents_emergency_id", "emergency_id"),
        # the open incidents' overdue count, the one dashboard figure read live (0023)
        Index("ix_incidents_open_lineage", "grid_lineage", "due_at", postgresql_where=text("closed_at IS NULL")),
        # a report's possible duplicates: open incidents nearby (0023)
        Index("ix_incidents_open_geom", "geom", postgresql_using="gist",
              postgresql_where=text("status <> 'closed' AND status <> 'rejected'")),
        CheckConstraint("status IN ('reported','filed','rejected','dispatched','claimed','handled','verified',"
                        "'closed')", name="ck_incidents_status"),
        gist("incidents"),
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), server_default=text(
        "'GM' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || lpad(nextval('incident_public_seq')::text, 7, '0')"))
    category_code: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="reported")
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_contact: Mapped[str | None] = mapped_column(Text)
    reporter_role: Mapped[str | None] = mapped_column(String(32))
    photo_urls: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    attributes: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    geom = mapped_column(geometry("POINT"), nullable=False)
    # the grid row the report was routed to when it arrived: kept for history and accountability
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    # the lineage of the grid that holds it in the published plan (re-routed by a publish, 0007)
    grid_lineage: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    # the partition key, so part of the primary key (the id alone is unique all the same)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, server_default=func.now())
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    address: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), server_default="api")
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    duplicate_of_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # filled by a trigger
    supervised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrols.id", ondelete="SET NULL"))  # found on it (0019)
    emergency_id: Mapped[int | None] = mapped_column(ForeignKey("emergencies.id", ondelete="SET NULL"))  # (0021)


class IncidentEvent(Base):
    """One transition of an incident: who, when, from which state to which, and a note."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident_id", "incident_id"), incident_key("incident_events"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer)
    incident_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # filled by a trigger
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    action: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEntry(Base):
    """Every write: who, when, what, and the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)


class MergeCrosswalk(Base):
    """Where each departmental grid went in a merged plan: shares of its area and households."""

    __tablename__ = "merge_crosswalk"
    __table_args__ = (Index("ix_merge_crosswalk_plan_id", "plan_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(Text)
    grid_ref: Mapped[str] = mapped_column(String(64))
    grid_code: Mapped[str] = mapped_column(String(32))
    area_share: Mapped[float] = mapped_column(Float)
    household_share: Mapped[float | None] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    households: Mapped[float] = mapped_column(Float)


class PlanConflict(Base):
    """A conflict a merge found: overlap, gap, sliver, crosses_community, outside or offset."""

    __tablename__ = "plan_conflicts"
    __table_args__ = (
        CheckConstraint("kind IN ('overlap','gap','sliver','crosses_community','outside','offset')",
                        name="ck_plan_conflicts_kind"),
        Index("ix_plan_conflicts_plan_id", "plan_id"),
        gist("plan_conflicts"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    grids: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    area_m2: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text)
    geom = mapped_column(geometry("GEOMETRY"), nullable=False)


class GridDuty(Base):
    """A duty of a grid worker in a merged plan, with the department it comes from."""

    __tablename__ = "grid_duties"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(Text, primary_key=True)
    duty: Mapped[str] = mapped_column(String(64), primary_key=True)


class PlanEdit(Base):
    """One saved edit of a draft: the operations, who made them, and the version they produced.

    The log is what a client with a stale version is shown in a 409, and the draft's history."""

    __tablename__ = "plan_edits"
    __table_args__ = (UniqueConstraint("plan_id", "version", name="uq_plan_edits_plan_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    operations: Mapped[list] = mapped_column(JSONB)
    grids: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))


class PlanNote(Base):
    """A note on a grid or a unit of a plan: why it was drawn so (migration 0012)."""

    __tablename__ = "plan_notes"
    __table_args__ = (
        CheckConstraint("grid_code IS NOT NULL OR unit_id IS NOT NULL", name="ck_plan_notes_target"),
        CheckConstraint("length(body) BETWEEN 1 AND 2000", name="ck_plan_notes_body"),
        Index("ix_plan_notes_plan_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """A person (or system) who signs in. The password is stored only as an argon2id hash (older ones: scrypt, replaced at the next sign-in)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserRole(Base):
    """A role a user holds over a territory and everything below it."""

    __tablename__ = "user_roles"
    __table_args__ = (
        CheckConstraint("role IN ('admin','planner','handler','worker','viewer')", name="ck_user_roles_role"),
        UniqueConstraint("user_id", "role", "territory_id", name="uq_user_roles"),
        # an administrator of the whole deployment holds admin with no territory (migration 0007)
        CheckConstraint("territory_id IS NOT NULL OR role = 'admin'", name="ck_user_roles_territory"),
        Index("uq_user_roles_everywhere", "user_id", "role", unique=True,
              postgresql_where=text("territory_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    # a handler bound to one department sees and works only that department's incidents;
    # a grid worker bound to grids reports and follows up only there
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    grid_codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))


class AuthToken(Base):
    """A bearer token: only its SHA-256 is stored; it can be revoked. A sign-in (``session``)
    expires; an ``api_key`` for another system has a name and may have no expiry."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("ix_auth_tokens_user_id", "user_id"),
                      CheckConstraint("kind IN ('session','api_key')", name="ck_auth_tokens_kind"))

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16), server_default="session")
    name: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


STAFF_ROLES = tuple(STAFF_ROLE_NAMES)
"""The staff roles' keys (:data:`gridmap.staff_roles.ROLES`; migration 0014)."""


class Staff(Base):
    """A person of a territory's grid staff: name, phone, role, the office's key (工号) and the
    user account they sign in with, if any (migration 0014)."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("role IN (" + ",".join(f"'{r}'" for r in STAFF_ROLES) + ")", name="ck_staff_role"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="ck_staff_name"),
        Index("ix_staff_territory_id", "territory_id"),
        Index("uq_staff_territory_key", "territory_id", "staff_key", unique=True,
              postgresql_where=text("staff_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    staff_key: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StaffAssignment(Base):
    """A person on a grid (and optionally one of its micro-grids, and a building) from a date to a
    date (open when none), with the published grid row it was made on (migrations 0014, 0020)."""

    __tablename__ = "staff_assignments"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_staff_assignments_dates"),
        Index("ix_staff_assignments_staff_id", "staff_id"),
        Index("ix_staff_assignments_grid_code", "grid_code"),
        Index("ix_staff_assignments_building_id", "building_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    grid_code: Mapped[str] = mapped_column(String(32))
    microgrid_code: Mapped[str | None] = mapped_column(String(40))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    grid_lineage: Mapped[int | None] = mapped_column(BigInteger)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    building_id: Mapped[int | None] = mapped_column(ForeignKey("layer_features.id", ondelete="SET NULL"))
    building_label: Mapped[str | None] = mapped_column(Text)


class Household(Base):
    """A household of the register: its building (the matched feature, its label and point: its
    grid is the published grid holding ``geom``), 单元, 房号, and the key the next import finds it
    by (migration 0015)."""

    __tablename__ = "households"
    __table_args__ = (
        UniqueConstraint("territory_id", "household_key", name="uq_households_territory_key"),
        Index("ix_households_building", "building_feature_id"),
        gist("households"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    building_feature_id: Mapped[int | None] = mapped_column(ForeignKey("layer_features.id", ondelete="SET NULL"))
    building_label: Mapped[str] = mapped_column(Text)
    stairwell: Mapped[str | None] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(Text)
    household_no: Mapped[str | None] = mapped_column(Text)
    household_key: Mapped[str] = mapped_column(Text)
    geom = mapped_column(geometry("POINT"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Resident(Base):
    """A person of a household: name, ID number and phone as Fernet tokens (gridmap.vault), a keyed
    hash that finds them again, relation, focus tags and birth year in clear (migration 0015)."""

    __tablename__ = "residents"
    __table_args__ = (
        UniqueConstraint("territory_id", "person_index", name="uq_residents_territory_person"),
        Index("ix_residents_household_id", "household_id"),
        Index("ix_residents_member_index", "territory_id", "member_index"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    person_index: Mapped[str] = mapped_column(String(64))
    member_index: Mapped[str] = mapped_column(String(64))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    relation: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _one_of(column: str, values) -> str:
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


class Project(Base):
    """A project of the lists: needs matched to resources, owner, budget, dates, status, outcome (migration 0016)."""

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint(_one_of("status", ("planned", "active", "done", "cancelled")), name="ck_projects_status"),
        CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="ck_projects_dates"),
        CheckConstraint("budget IS NULL OR budget >= 0", name="ck_projects_budget"),
        Index("ix_projects_territory_id", "territory_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    budget = mapped_column(Numeric(14, 2))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="planned")
    outcome: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Need(Base):
    """A need of the lists: category, description, urgency, status, where, and what became of it (migration 0016)."""

    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint(_one_of("status", ("open", "matched", "in_project", "met", "closed", "referred")),
                        name="ck_needs_status"),
        CheckConstraint(_one_of("urgency", ("low", "normal", "high", "urgent")), name="ck_needs_urgency"),
        CheckConstraint("geom IS NOT NULL OR community_id IS NOT NULL", name="ck_needs_place"),
        Index("ix_needs_territory_id", "territory_id"),
        gist("needs"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    urgency: Mapped[str] = mapped_column(String(8), server_default="normal")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    source: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    status_note: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    incident_public_id: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("POINT"))
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Resource(Base):
    """A resource of the lists: a unit stationed here, a venue, volunteers, a fund, a service (migration 0016)."""

    __tablename__ = "resources"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ("unit", "venue", "volunteers", "fund", "service")), name="ck_resources_kind"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_resources_capacity"),
        UniqueConstraint("territory_id", "name", name="uq_resources_territory_name"),
        Index("ix_resources_territory_id", "territory_id"),
        gist("resources"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text))
    description: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None] = mapped_column(Integer)
    hours: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    geom = mapped_column(geometry("POINT"))
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectNeed(Base):
    """A need a project takes on (migration 0016)."""

    __tablename__ = "project_needs"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), primary_key=True)


class ProjectResource(Base):
    """A resource a project uses (migration 0016)."""

    __tablename__ = "project_resources"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)


class Registration(Base):
    """双报到: a party member or a unit registered with a community (migration 0017)."""

    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint("kind IN ('party_member','unit')", name="ck_registrations_kind"),
        UniqueConstraint("community_id", "kind", "name", "organisation", name="uq_registrations_person",
                         postgresql_nulls_not_distinct=True),
        Index("ix_registrations_territory_id", "territory_id"),
        Index("ix_registrations_community_id", "community_id"),
        gist("registrations"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    registered_on: Mapped[date] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    geom = mapped_column(geometry("POINT"))
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ServiceHours(Base):
    """Hours a registration served on a day (migration 0017)."""

    __tablename__ = "service_hours"
    __table_args__ = (
        CheckConstraint("hours > 0 AND hours <= 24", name="ck_service_hours_hours"),
        Index("ix_service_hours_registration_id", "registration_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    served_on: Mapped[date] = mapped_column(Date)
    hours = mapped_column(Numeric(6, 2), nullable=False)
    activity: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id", ondelete="SET NULL"))
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Patrol(Base):
    """A grid worker's walk: a GPS track with its times (migration 0018)."""

    __tablename__ = "patrols"
    __table_args__ = (
        CheckConstraint("ended_at >= started_at", name="ck_patrols_times"),
        CheckConstraint("source IN ('phone','gpx','geojson')", name="ck_patrols_source"),
        UniqueConstraint("user_id", "started_at", name="uq_patrols_walker_start"),
        Index("ix_patrols_territory_id", "territory_id"),
        gist("patrols"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    walker: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    points: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    geom = mapped_column(geometry("LINESTRINGM"), nullable=False)  # measure: each point's time, epoch s (0019)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


EMERGENCY_GRID_STATUS = ("normal", "affected", "needs_support", "cleared")
VISIT_OUTCOMES = ("visited", "nobody_home", "refused", "issue_found")


class Emergency(Base):
    """A switch into emergency mode over a territory or part of it (migration 0021)."""

    __tablename__ = "emergencies"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ck_emergencies_times"),
        Index("uq_emergencies_one_on", "territory_id", unique=True, postgresql_where=text("ended_at IS NULL")),
        gist("emergencies"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    scope: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_by: Mapped[str] = mapped_column(Text)
    checkin_due: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(Text)
    end_note: Mapped[str | None] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)


class EmergencyGrid(Base):
    """A published grid inside an emergency: its status, first check-in and escalation."""

    __tablename__ = "emergency_grids"
    __table_args__ = (
        CheckConstraint("status IN (" + ",".join(f"'{s}'" for s in EMERGENCY_GRID_STATUS) + ")",
                        name="ck_emergency_grids_status"),
    )

    emergency_id: Mapped[int] = mapped_column(ForeignKey("emergencies.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), server_default="normal")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_by: Mapped[str | None] = mapped_column(Text)
    status_note: Mapped[str | None] = mapped_column(Text)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_by: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmergencyCheckin(Base):
    """A grid worker's check-in during an emergency (on duty, position), once per phone retry."""

    __tablename__ = "emergency_checkins"
    __table_args__ = (
        UniqueConstraint("emergency_id", "walker", "client_id", "grid_code", name="uq_emergency_checkins_client"),
        Index("ix_emergency_checkins_emergency", "emergency_id", "grid_code"),
        gist("emergency_checkins"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    emergency_id: Mapped[int] = mapped_column(ForeignKey("emergencies.id", ondelete="CASCADE"))
    grid_code: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    walker: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    on_duty: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    note: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(64))
    geom = mapped_column(geometry("POINT"), nullable=True)


class EmergencyEvent(Base):
    """What happened during an emergency, in order: its timeline."""

    __tablename__ = "emergency_events"
    __table_args__ = (Index("ix_emergency_events_emergency", "emergency_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    emergency_id: Mapped[int] = mapped_column(ForeignKey("emergencies.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class Campaign(Base):
    """A door-knocking campaign (敲门行动) over a territory, in an emergency or not."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("deadline > starts_at", name="ck_campaigns_deadline"),
        Index("ix_campaigns_territory_id", "territory_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    emergency_id: Mapped[int | None] = mapped_column(ForeignKey("emergencies.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str | None] = mapped_column(Text)
    questions: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class CampaignTarget(Base):
    """A household (or a building with none registered) a campaign must reach, with its grid."""

    __tablename__ = "campaign_targets"
    __table_args__ = (Index("ix_campaign_targets_grid", "campaign_id", "grid_code"), gist("campaign_targets"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id", ondelete="SET NULL"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("layer_features.id", ondelete="SET NULL"))
    label: Mapped[str] = mapped_column(Text)
    grid_code: Mapped[str] = mapped_column(String(32))
    last_outcome: Mapped[str | None] = mapped_column(String(16))  # the latest knock (progress counts these)
    last_visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_visitor: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(geometry("POINT"), nullable=False)


class CampaignVisit(Base):
    """A knock on a target's door: its outcome, answers and what it raised."""

    __tablename__ = "campaign_visits"
    __table_args__ = (
        CheckConstraint("outcome IN (" + ",".join(f"'{o}'" for o in VISIT_OUTCOMES) + ")",
                        name="ck_campaign_visits_outcome"),
        UniqueConstraint("campaign_id", "visitor", "client_id", name="uq_campaign_visits_client"),
        Index("ix_campaign_visits_target", "target_id", "visited_at"),
        Index("ix_campaign_visits_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    note: Mapped[str | None] = mapped_column(Text)
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    visitor: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id", ondelete="SET NULL"))
    incident_public_id: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(64))


class Whistle(Base):
    """The community's whistle (吹哨) on an incident or a need: departments called by deadlines."""

    __tablename__ = "whistles"
    __table_args__ = (
        CheckConstraint("incident_id IS NOT NULL OR need_id IS NOT NULL", name="ck_whistles_subject"),
        Index("ix_whistles_territory_id", "territory_id"),
        incident_key("whistles"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    emergency_id: Mapped[int | None] = mapped_column(ForeignKey("emergencies.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(Integer)
    incident_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # filled by a trigger
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    note: Mapped[str | None] = mapped_column(Text)
    blown_by: Mapped[str] = mapped_column(Text)
    blown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ack_due: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    arrive_due: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class WhistleCall(Base):
    """A department called by a whistle: its acknowledgement, arrival (报到) and escalation."""

    __tablename__ = "whistle_calls"

    whistle_id: Mapped[int] = mapped_column(ForeignKey("whistles.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_by: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AnswerCache(Base):
    """An answer kept for every server process under a key naming what it was made from (0022)."""

    __tablename__ = "answer_cache"
    __table_args__ = (Index("ix_answer_cache_kind_territory", "kind", "territory_id", "made_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id", ondelete="CASCADE"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IncidentGridMonth(Base):
    """Incidents of a UTC month per grid lineage, community, street, category and status, kept
    by triggers on ``incidents`` (0023; 0 in a key: none)."""

    __tablename__ = "incident_grid_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_lineage: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    community_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    street_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)
    supervised: Mapped[int] = mapped_column(Integer)


class IncidentHandlingMonth(Base):
    """Closed incidents of a UTC month per grid lineage, community, street and category ('*': all),
    counted per handling-time bucket (0023)."""

    __tablename__ = "incident_handling_months"

    category_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_lineage: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    community_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    street_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer)


class IncidentCellMonth(Base):
    """Incidents of a UTC month on map cells of 1/1024 degree per community, street, category
    ('*': all) and status ('*': all), with the sums of their coordinates (0023)."""

    __tablename__ = "incident_cell_months"

    category_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    community_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    street_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_x: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_y: Mapped[int] = mapped_column(Integer, primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer)
    sum_lon: Mapped[float] = mapped_column(Float)
    sum_lat: Mapped[float] = mapped_column(Float)
