"""Incidents in PostGIS: the category table, routing by the published grids, storing reports,
duplicate candidates, transitions with their events, the overdue scan, and re-routing when a
plan is published.

Where an incident belongs, across plans: ``grid_id`` is the grid row the report was routed to
when it arrived, kept for history and accountability (``reported_grid_code`` in answers);
``grid_lineage`` names the grid that holds it in the *published* plan (``grid_code``), which every
map, count, export and Open311 answer follows. Grids of different plans that hold the same units
share a lineage, so a publish re-routes only the incidents of grids whose units changed
(``services.incidents.follow_plan``).

Every function runs in the caller's transaction. Reporter contact details are returned only when
the caller asks for them (``with_contact``); public views never do.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.incident_rules import Category
from gridmap.service_attributes import ServiceAttribute
from gridmap.store import incident_partitions as partitions
from gridmap.store.db import prepared
from gridmap.store.jsonb import to_json
from gridmap.store.patrols import PATROL_OF_REPORT

PUBLIC_COLUMNS = (
    "i.id, i.public_id, i.category_code, cat.name_zh AS category_zh, cat.name_en AS category_en, i.description, "
    "i.status, i.reporter_role, i.photo_urls, i.attributes, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.address, i.source, "
    "g.code AS grid_code, rg.code AS reported_grid_code, c.code AS community_code, c.name AS community, s.code AS street_code, s.name AS street, "
    "d.code AS department_code, d.name AS department, d.name_en AS department_en, i.escalation_level, "
    "i.reported_at, i.due_at, i.closed_at, i.supervised_at, i.escalated_at, i.updated_at, "
    "dup.public_id AS duplicate_of, i.synthetic")
CURRENT_GRID_JOIN = (
    "LEFT JOIN (grids g JOIN plans gp ON gp.id = g.plan_id AND gp.status = 'published') ON g.lineage = i.grid_lineage ")
"""``g``: the grid of the published plan holding incident ``i`` now (one at most: a lineage lives in
the plans of one territory, and a territory has one published plan)."""
_JOINS = (
    "incidents i LEFT JOIN incident_categories cat ON cat.code = i.category_code " + CURRENT_GRID_JOIN +
    "LEFT JOIN grids rg ON rg.id = i.grid_id LEFT JOIN territories c ON c.id = i.community_id "
    "LEFT JOIN territories s ON s.id = i.street_id LEFT JOIN departments d ON d.id = i.department_id ")
FROM = _JOINS + "LEFT JOIN incidents dup ON dup.id = i.duplicate_of AND dup.reported_at = i.duplicate_of_reported_at"
"""The incidents ``i`` with what PUBLIC_COLUMNS names of them."""
_FROM_ONE = _JOINS + "LEFT JOIN incidents dup ON dup.id = :dup AND dup.reported_at = :dup_at"
"""FROM for one incident whose duplicate's key is given (:dup, :dup_at): every month but its
original's is left out when the statement runs (the prepared statement's partitions are pruned
as it starts, :func:`_shown`)."""


class IncidentNotFound(NotFound):
    """No incident with that number."""


@dataclass(frozen=True)
class Route:
    """Where a point belongs: the published grid containing it, its community and street."""

    grid_id: int
    grid_code: str
    community_id: int
    street_id: int | None
    lineage: int
    community_code: str


def sync_categories(conn: sa.Connection, categories: list[Category]) -> None:
    """Create or update departments and categories from the table (idempotent)."""
    for cat in categories:
        department = conn.execute(sa.text(
            "INSERT INTO departments (code, name, name_en) VALUES (:c, :n, :e) ON CONFLICT (code) DO UPDATE "
            "SET name = EXCLUDED.name, name_en = EXCLUDED.name_en RETURNING id"),
            {"c": cat.department_code, "n": cat.department_zh, "e": cat.department_en}).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO incident_categories (code, name_zh, name_en, group_name, department_id, time_limit, time_unit, "
            "description, attributes) VALUES (:code, :zh, :en, :g, :d, :l, :u, :desc, CAST(:attrs AS jsonb)) "
            "ON CONFLICT (code) DO UPDATE SET "
            "name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, group_name = EXCLUDED.group_name, "
            "department_id = EXCLUDED.department_id, time_limit = EXCLUDED.time_limit, time_unit = EXCLUDED.time_unit, "
            "description = EXCLUDED.description, attributes = EXCLUDED.attributes"),
            {"code": cat.code, "zh": cat.name_zh, "en": cat.name_en, "g": cat.group, "d": department,
             "l": cat.time_limit, "u": cat.time_unit, "desc": cat.description,
             "attrs": to_json([a.as_dict() for a in cat.attributes])})


def category_codes(conn: sa.Connection) -> set[str]:
    """Every category code stored, active or not."""
    return set(conn.execute(sa.text("SELECT code FROM incident_categories")).scalars())


_CATEGORIES = (
    "SELECT c.code, c.name_zh, c.name_en, c.group_name, d.code AS dc, d.name AS dz, COALESCE(d.name_en, d.name) AS de, "
    "c.time_limit, c.time_unit, COALESCE(c.description, ''), c.attributes FROM incident_categories c "
    "JOIN departments d ON d.id = c.department_id WHERE c.active")


def _category(row) -> Category:
    return Category(*row[:-1], attributes=tuple(ServiceAttribute.from_dict(a) for a in row[-1]))


def categories(conn: sa.Connection) -> list[Category]:
    """Every active category, by code."""
    return [_category(r) for r in prepared(conn, _CATEGORIES + " ORDER BY c.code")]


def category(conn: sa.Connection, code: str) -> Category | None:
    """The active category ``code`` (None: no such category, or retired). Every report reads its
    own: reading them all took 1.2 ms of a report's 8 ms in Python's profiler (40 rows, each with
    its questions parsed)."""
    row = prepared(conn, _CATEGORIES + " AND c.code = CAST(:code AS text)", {"code": code}).first()
    return _category(row) if row else None


def route(conn: sa.Connection, lon: float, lat: float) -> Route | None:
    """The published grid containing the point. On a border shared by two grids the point is in
    both; the grid with the smaller code takes it, so routing is deterministic."""
    row = prepared(conn, (
        "SELECT g.id, g.code, g.community_id, c.parent_id, g.lineage, c.code FROM grids g JOIN plans p ON p.id = g.plan_id "
        "AND p.status = 'published' JOIN territories c ON c.id = g.community_id "
        "WHERE ST_Intersects(g.geom, ST_SetSRID(ST_Point(CAST(:x AS float8), CAST(:y AS float8)), 4490)) "
        "ORDER BY p.published_at DESC, g.code LIMIT 1"), {"x": lon, "y": lat}).first()
    return Route(*row) if row else None


def insert(conn: sa.Connection, *, category_code: str, description: str | None, lon: float, lat: float,
           route_: Route, reported_at: datetime, due_at: datetime, reporter_name: str | None,
           reporter_contact: str | None, reporter_role: str | None, photo_urls: list[str], address: str | None,
           source: str, actor: str, synthetic: bool = False, attributes: dict | None = None,
           emergency_id: int | None = None,
           patrol_grace: timedelta | None = None) -> tuple[int, str, datetime, int | None]:
    """Store a new report, routed to its category's department, and its first event, in one
    statement; returns (id, public number, report time: with the id, the incident's key, which
    lets a later statement on it read its month alone; the patrol it was linked to). With
    ``patrol_grace``, the report is linked to the patrol its reporter ``actor`` was on
    (:data:`gridmap.store.patrols.PATROL_OF_REPORT`)."""
    patrol = PATROL_OF_REPORT.format(walker=":actor", at="CAST(:at AS timestamptz)", grace=":grace") \
        if patrol_grace is not None else "NULL::int"
    row = conn.execute(sa.text(
        "WITH i AS (INSERT INTO incidents (category_code, description, status, reporter_name, reporter_contact, "
        "reporter_role, photo_urls, geom, grid_id, grid_lineage, community_id, street_id, department_id, reported_at, "
        "due_at, address, source, updated_at, synthetic, attributes, emergency_id, patrol_id) SELECT :cat, :desc, "
        "'reported', :rn, :rc, :rr, CAST(:photos AS jsonb), ST_SetSRID(ST_Point(:x, :y), 4490), :grid, :lineage, "
        ":community, :street, c.department_id, :at, :due, :addr, :source, :at, :syn, CAST(:answers AS jsonb), "
        f":emergency, {patrol} FROM incident_categories c WHERE c.code = :cat "
        "RETURNING id, public_id, reported_at, patrol_id), "
        "e AS (INSERT INTO incident_events (incident_id, incident_reported_at, from_status, to_status, action, actor, "
        "detail, at) SELECT i.id, i.reported_at, NULL, 'reported', 'report', :actor, CAST(:detail AS jsonb), now() "
        "FROM i) SELECT id, public_id, reported_at, patrol_id FROM i"),
        {"cat": category_code, "desc": description, "rn": reporter_name, "rc": reporter_contact, "rr": reporter_role,
         "photos": to_json(photo_urls), "x": lon, "y": lat, "grid": route_.grid_id, "lineage": route_.lineage,
         "community": route_.community_id, "street": route_.street_id, "at": reported_at, "due": due_at,
         "addr": address, "source": source, "syn": synthetic, "answers": to_json(attributes or {}),
         "emergency": emergency_id, "actor": actor, "detail": to_json({"source": source}),
         "grace": patrol_grace}).one()
    return row.id, row.public_id, row.reported_at, row.patrol_id


def add_event(conn: sa.Connection, incident_id: int, from_status: str | None, to_status: str, action: str,
              actor: str, note: str | None, detail: dict | None = None, at: datetime | None = None, *,
              incident_reported_at: datetime | None = None) -> None:
    """One step of incident ``incident_id`` in its history. ``incident_reported_at`` (its report
    time, where the caller has it) spares the database looking it up in every month."""
    conn.execute(sa.text(
        "INSERT INTO incident_events (incident_id, incident_reported_at, from_status, to_status, action, actor, note, "
        "detail, at) VALUES (:i, :ia, :f, :t, :a, :actor, :n, CAST(:d AS jsonb), COALESCE(:at, now()))"),
        {"i": incident_id, "ia": incident_reported_at, "f": from_status, "t": to_status, "a": action, "actor": actor,
         "n": note, "d": to_json(detail or {}), "at": at})


def nearby_open(conn: sa.Connection, category_code: str, lon: float, lat: float, radius_m: float,
                exclude: int | None = None, limit: int = 10) -> list[dict]:
    """Open incidents of the same category within ``radius_m`` metres (on the spheroid), nearest first."""
    # the geometry index narrows to a box first; the distance is then taken on the spheroid
    degrees = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01)) * 1.1
    # the open incidents in the box first, from their own partial index (ix_incidents_open_geom), then
    # the category: with ten million incidents the planner otherwise also read the category's
    # index (2.4 million entries) to AND it with the box (0.2 s a report)
    rows = prepared(conn, (
        "WITH box AS MATERIALIZED (SELECT i.id, i.public_id, i.status, i.description, i.reported_at, i.category_code, "
        "i.geom FROM incidents i WHERE i.status NOT IN ('closed', 'rejected') "
        "AND i.geom && ST_Expand(ST_SetSRID(ST_Point(CAST(:x AS float8), CAST(:y AS float8)), 4490), "
        "CAST(:deg AS float8))) "
        "SELECT i.public_id, i.status, i.description, i.reported_at, round(ST_Distance(i.geom::geography, "
        "ST_SetSRID(ST_Point(:x, :y), 4490)::geography)::numeric, 1)::float8 AS distance_m FROM box i "
        "WHERE i.category_code = :c AND (CAST(:ex AS bigint) IS NULL OR i.id <> :ex) "
        "AND ST_DWithin(i.geom::geography, ST_SetSRID(ST_Point(:x, :y), 4490)::geography, CAST(:r AS float8)) "
        "ORDER BY distance_m LIMIT CAST(:n AS bigint)"),
        {"c": category_code, "x": lon, "y": lat, "r": radius_m, "ex": exclude, "n": limit, "deg": degrees})
    return [dict(r._mapping) for r in rows]


def get(conn: sa.Connection, public_id: str, *, with_contact: bool = False, lock: bool = False) -> dict:
    """The incident numbered ``public_id`` as the API shows it (``lock``: locked for an update).

    Its id and month are found first, so the joins read its month's partition alone (the others
    pruned as the statement starts, :func:`_shown`): looked up by public number in one query over
    every month, it took 30 ms with a year of months (8 ms of it planning, and the planner chose
    parallel workers for the twelve index probes; 1.5 ms so)."""
    key = conn.execute(sa.text("SELECT id, reported_at, duplicate_of, duplicate_of_reported_at FROM incidents "
                               "WHERE public_id = :p" + (" FOR UPDATE" if lock else "")), {"p": public_id}).first()
    if key is None:
        raise IncidentNotFound(f"no incident {public_id!r}", f"没有编号为 {public_id!r} 的事件")
    return _shown(conn, key.id, key.reported_at, key.duplicate_of, key.duplicate_of_reported_at,
                  with_contact=with_contact, lock=lock)


def get_new(conn: sa.Connection, incident_id: int, reported_at: datetime) -> dict:
    """An incident just stored by :func:`insert` (by its key: it is no duplicate yet), as :func:`get` shows it."""
    return _shown(conn, incident_id, reported_at, None, None)


def _shown(conn: sa.Connection, incident_id: int, reported_at: datetime, duplicate_of: int | None,
           duplicate_of_reported_at: datetime | None, *, with_contact: bool = False, lock: bool = False) -> dict:
    contact = ", i.reporter_name, i.reporter_contact, i.patrol_id" if with_contact else ""
    # prepared: nine tables joined take 1.1 ms to plan and 0.06 ms to run (gridmap.store.db.prepared).
    # Its generic plan holds every month's partition, pruned to the incident's as it starts; on
    # PostgreSQL 15 each run still locks all of them first (17 months measured: 0.33 ms a call
    # against 1.5 ms planned each time); archiving old months (gridmap incidents archive) bounds them
    row = prepared(conn, f"SELECT {PUBLIC_COLUMNS}{contact} FROM {_FROM_ONE} WHERE i.id = CAST(:i AS bigint) "
                         "AND i.reported_at = CAST(:at AS timestamptz)" + (" FOR UPDATE OF i" if lock else ""),
                   {"i": incident_id, "at": reported_at, "dup": duplicate_of, "dup_at": duplicate_of_reported_at}).first()
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id}", f"没有编号为 {incident_id} 的事件")
    return dict(row._mapping)


def events(conn: sa.Connection, incident_id: int) -> list[dict]:
    rows = conn.execute(sa.text(
        "SELECT at, action, from_status, to_status, actor, note, detail FROM incident_events WHERE incident_id = :i "
        "ORDER BY at, id"), {"i": incident_id})
    return [dict(r._mapping) for r in rows]


def set_status(conn: sa.Connection, incident_id: int, status: str, *, department: int | None = None,
               duplicate_of: int | None = None, at: datetime | None = None,
               reported_at: datetime | None = None) -> None:
    """Incident ``incident_id`` (of report time ``reported_at``, where the caller has it: then
    only its month is read) moved to ``status``."""
    month = " AND reported_at = :rat" if reported_at is not None else ""
    conn.execute(sa.text(
        "UPDATE incidents SET status = :s, updated_at = COALESCE(:at, now()), "
        "department_id = COALESCE(:d, department_id), duplicate_of = COALESCE(:dup, duplicate_of), "
        "closed_at = CASE WHEN :s IN ('closed', 'rejected') THEN COALESCE(:at, now()) ELSE closed_at END "
        f"WHERE id = :i{month}"),
        {"s": status, "d": department, "dup": duplicate_of, "i": incident_id, "at": at, "rat": reported_at})


def department_by_code(conn: sa.Connection, code: str) -> int | None:
    return conn.execute(sa.text("SELECT id FROM departments WHERE code = :c"), {"c": code}).scalar()


def id_of(conn: sa.Connection, public_id: str) -> int | None:
    return conn.execute(sa.text("SELECT id FROM incidents WHERE public_id = :p"), {"p": public_id}).scalar()


def search(conn: sa.Connection, *, public_ids: list[str] | None = None, category: str | None = None,
           statuses: list[str] | None = None, start: datetime | None = None, end: datetime | None = None,
           community: str | None = None, street: str | None = None, grid: str | None = None,
           overdue: bool | None = None, near: tuple[float, float, float] | None = None, limit: int = 1000,
           offset: int = 0, with_contact: bool = False) -> list[dict]:
    """Incidents matching every given filter, newest first (bound parameters only). ``near``:
    (lon, lat, radius in metres), measured on the spheroid."""
    where, params = [], {"limit": limit, "offset": offset}
    if near is not None:
        where.append("ST_DWithin(i.geom::geography, ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4490)::geography, "
                     ":near_m)")
        params.update(near_lon=near[0], near_lat=near[1], near_m=near[2])
    for clause, key, value in (
        ("i.public_id = ANY(:ids)", "ids", public_ids), ("i.category_code = :cat", "cat", category),
        ("i.status = ANY(:st)", "st", statuses), ("i.reported_at >= :t0", "t0", start),
        ("i.reported_at <= :t1", "t1", end), ("c.code = :comm", "comm", community),
        ("s.code = :street", "street", street), ("g.code = :grid", "grid", grid),
    ):
        if value is not None:
            where.append(clause)
            params[key] = value
    if overdue is not None:
        where.append(("" if overdue else "NOT ") + "(i.status NOT IN ('closed','rejected') AND i.due_at < now())")
    contact = ", i.reporter_name, i.reporter_contact, i.patrol_id" if with_contact else ""
    rows = conn.execute(sa.text(
        f"SELECT {PUBLIC_COLUMNS}{contact} FROM {FROM}" + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit OFFSET :offset"), params)
    return [dict(r._mapping) for r in rows]


def synthetic_count(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM incidents WHERE synthetic")).scalar_one()


def overdue_open(conn: sa.Connection, now: datetime) -> list[sa.Row]:
    """Open incidents past their due time, locked for the escalation pass (others skip them)."""
    return conn.execute(sa.text(
        "SELECT i.id, i.reported_at, i.public_id, i.status, i.escalation_level, i.due_at, i.supervised_at, i.escalated_at, c.time_unit "
        "FROM incidents i LEFT JOIN incident_categories c ON c.code = i.category_code "
        "WHERE i.status NOT IN ('closed', 'rejected') AND i.due_at < :now ORDER BY i.due_at FOR UPDATE OF i SKIP LOCKED"),
        {"now": now}).all()


def escalate(conn: sa.Connection, levels: dict[tuple[int, datetime], int], now: datetime) -> None:
    """Set each incident's escalation level (``levels``: {(incident id, its report time): level}:
    the time names the incident's month, so each row is looked up in its own partition, not in
    every month's), flagged as supervised now where it was not yet. One statement, so the monthly
    rollups' rows it touches are locked in one order (see migration 0023), never one incident at
    a time."""
    if not levels:
        return
    conn.execute(sa.text(
        "UPDATE incidents i SET escalation_level = v.level, escalated_at = :now, updated_at = :now, "
        "supervised_at = CASE WHEN i.escalation_level = 0 THEN :now ELSE i.supervised_at END "
        "FROM unnest(CAST(:ids AS int[]), CAST(:times AS timestamptz[]), CAST(:levels AS int[])) "
        "AS v(id, reported_at, level) WHERE i.id = v.id AND i.reported_at = v.reported_at"),
        {"ids": [key[0] for key in levels], "times": [key[1] for key in levels], "levels": list(levels.values()),
         "now": now})


STEPS = (("filed", "file"), ("dispatched", "dispatch"), ("claimed", "claim"), ("handled", "handle"),
         ("verified", "verify"), ("closed", "close"))
BULK_COLUMNS = ("n", "grid_id", "category_code", "description", "lon", "lat", "reported_at", "due_at", "status",
                *(f"{state}_at" for state, _ in STEPS))


REBUILD_MIN_ROWS = 100_000
"""A bulk load at least this large, and at least as large as the table already is, rebuilds the
incidents table's secondary indexes and foreign keys once at the end instead of row by row."""


def _epoch_us(column):
    """Timestamps as a nullable Arrow array of integer microseconds since 1970: exact (see
    ``_from_epoch``) and far cheaper to write than formatted dates."""
    import pandas as pd
    import pyarrow as pa

    values = pd.to_datetime(column, utc=True).dt.as_unit("us")
    missing = values.isna().to_numpy()
    filled = values.fillna(pd.Timestamp(0, tz="UTC")) if missing.any() else values
    return pa.array(filled.astype("int64").to_numpy(), mask=missing)


def _from_epoch(column: str) -> str:
    return f"('epoch'::timestamptz + b.{column} * interval '1 microsecond')"


def _serialise(frame) -> io.BytesIO:
    """The frame as the CSV that ``COPY bulk_incidents`` reads, columns in ``BULK_COLUMNS`` order,
    written by Arrow's multi-threaded CSV writer (a million rows in about 2 s; pandas' to_csv
    takes 10). Missing values are empty unquoted fields, which COPY reads as NULL."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as arrow_csv

    columns = {"n": pa.array(np.arange(len(frame), dtype=np.int64))}
    for column in BULK_COLUMNS[1:]:
        if column not in frame:
            columns[column] = pa.nulls(len(frame), pa.int64() if column.endswith("_at") else pa.string())
        elif column.endswith("_at"):
            columns[column] = _epoch_us(frame[column])
        elif column == "grid_id":
            columns[column] = pa.array(frame[column], type=pa.int64(), from_pandas=True)
        elif column in ("lon", "lat"):
            columns[column] = pa.array(frame[column], type=pa.float64(), from_pandas=True)
        else:
            columns[column] = pa.array(frame[column], type=pa.string(), from_pandas=True)
    sink = pa.BufferOutputStream()
    arrow_csv.write_csv(pa.table(columns), sink, arrow_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return io.BytesIO(sink.getvalue().to_pybytes())


def _detach_indexes(conn: sa.Connection) -> list[str]:
    """Drop the incidents table's secondary indexes and foreign keys (not the primary key nor
    unique constraints) and return the statements that recreate them exactly as they were."""
    constraints = conn.execute(sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'incidents'::regclass "
        "AND contype = 'f' AND conparentid = 0 ORDER BY conname")).all()  # (not the copies kept for each month)
    indexes = conn.execute(sa.text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'incidents'::regclass AND NOT i.indisprimary AND NOT i.indisunique ORDER BY c.relname")).all()
    for name, _ in constraints:
        conn.execute(sa.text(f'ALTER TABLE incidents DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    # (a partitioned table's index reads "ON ONLY incidents": made so, it would not reach the months)
    return [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in indexes] + [
        f'ALTER TABLE incidents ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]


def routing_grids(conn: sa.Connection) -> list[sa.Row]:
    """Every published grid (id, WKB) in the order ``route`` prefers them on a shared border
    (newest plan first, then the smaller code), for routing many points at once. The published
    plans are locked against a concurrent publish until the caller's transaction ends, so the
    grids a bulk load was routed by are still the published ones when it is stored."""
    conn.execute(sa.text("SELECT id FROM plans WHERE status = 'published' FOR SHARE"))
    return conn.execute(sa.text(
        "SELECT g.id, ST_AsBinary(g.geom) AS wkb FROM grids g JOIN plans p ON p.id = g.plan_id "
        "AND p.status = 'published' ORDER BY p.published_at DESC, g.code")).all()


def _copy_to_scratch(conn: sa.Connection, frame) -> None:
    """COPY the incidents into the scratch table ``bulk_incidents`` (dropped at commit)."""
    buffer = _serialise(frame)
    conn.execute(sa.text(
        "CREATE TEMP TABLE bulk_incidents (n int, grid_id int, category_code text, description text, lon float8, lat float8, "
        "reported_at bigint, due_at bigint, status text, filed_at bigint, dispatched_at bigint, claimed_at bigint, "
        "handled_at bigint, verified_at bigint, closed_at bigint) ON COMMIT DROP"))
    raw = conn.connection.driver_connection.cursor()
    raw.copy_expert(f"COPY bulk_incidents ({', '.join(BULK_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)


def _insert_from_scratch(conn: sa.Connection, *, source: str, synthetic: bool) -> tuple[str, int]:
    """One INSERT ... SELECT of the scratch rows that lie in a published grid, with each grid's
    community and street and each category's department; returns the public-id tag of the
    batch and the rows stored."""
    tag = conn.execute(sa.text("SELECT 'B' || to_char(now(), 'YYMMDDHH24MISS') || substr(md5(random()::text), 1, 4) "
                               "|| '-'")).scalar_one()
    times = ", ".join(f"{_from_epoch(c)} AS {c}" for c in BULK_COLUMNS if c.endswith("_at"))
    stored = conn.execute(sa.text(
        "INSERT INTO incidents (public_id, category_code, description, status, reporter_role, geom, grid_id, "
        "grid_lineage, community_id, street_id, department_id, reported_at, due_at, closed_at, source, synthetic, updated_at, "
        "escalation_level, supervised_at, escalated_at) "
        "SELECT :tag || b.n, b.category_code, b.description, b.status, 'grid_worker', ST_SetSRID(ST_Point(b.lon, b.lat), 4490), "
        "r.id, r.lineage, r.community_id, r.street_id, cat.department_id, b.reported_at, b.due_at, b.closed_at, :source, :syn, "
        "COALESCE(b.closed_at, b.verified_at, b.handled_at, b.claimed_at, b.dispatched_at, b.filed_at, b.reported_at), "
        "CASE WHEN COALESCE(b.closed_at, now()) > b.due_at THEN LEAST(4, 1 + floor(extract(epoch FROM "
        "(COALESCE(b.closed_at, now()) - b.due_at)) / 86400)::int) ELSE 0 END, "
        "CASE WHEN COALESCE(b.closed_at, now()) > b.due_at THEN b.due_at END, "
        "CASE WHEN COALESCE(b.closed_at, now()) > b.due_at THEN b.due_at + (LEAST(3, floor(extract(epoch FROM "
        "(COALESCE(b.closed_at, now()) - b.due_at)) / 86400)::int)) * interval '1 day' END "
        f"FROM (SELECT b.n, b.grid_id, b.category_code, b.description, b.lon, b.lat, b.status, {times} "
        "FROM bulk_incidents b WHERE b.grid_id IS NOT NULL) b "
        "JOIN incident_categories cat ON cat.code = b.category_code "
        "JOIN (SELECT g.id, g.lineage, g.community_id, c.parent_id AS street_id FROM grids g JOIN plans p ON p.id = g.plan_id "
        "AND p.status = 'published' JOIN territories c ON c.id = g.community_id) r ON r.id = b.grid_id"),
        {"tag": tag, "source": source, "syn": synthetic}).rowcount
    return tag, stored


def _insert_events(conn: sa.Connection, tag: str) -> None:
    """The steps of each incident of batch ``tag`` as events (the report, then each step reached)."""
    steps = " UNION ALL ".join(
        f"SELECT i.id, i.reported_at, '{prev}', '{state}', '{action}', {_from_epoch(state + '_at')} FROM bulk_incidents b "
        f"JOIN incidents i ON i.public_id = :tag || b.n WHERE b.{state}_at IS NOT NULL "
        f"AND NOT (b.status = 'rejected' AND '{state}' <> 'filed')"
        for (prev, _), (state, action) in zip((("reported", None),) + STEPS[:-1], STEPS))
    conn.execute(sa.text(
        "INSERT INTO incident_events (incident_id, incident_reported_at, from_status, to_status, action, at, actor) "
        "SELECT i.id, i.reported_at, NULL, 'reported', 'report', i.reported_at, 'demo' FROM incidents i "
        "WHERE i.public_id LIKE :tag || '%' "
        f"UNION ALL SELECT s.*, 'demo' FROM ({steps}) s"), {"tag": tag})
    conn.execute(sa.text(
        "UPDATE incident_events e SET to_status = 'rejected', action = 'reject' FROM incidents i "
        "WHERE e.incident_id = i.id AND i.public_id LIKE :tag || '%' AND i.status = 'rejected' "
        "AND e.action = 'file'"), {"tag": tag})


def bulk_insert(conn: sa.Connection, frame, *, source: str, synthetic: bool, with_events: bool = True) -> tuple[int, int]:
    """Load many incidents at once, already routed: COPY into a scratch table, then one
    INSERT ... SELECT that adds each grid's community and street and each category's department,
    and (optionally) each incident's steps as events. Rows without a ``grid_id`` (outside every
    published grid) are left out.

    A load of at least ``REBUILD_MIN_ROWS`` rows that is at least as large as the table drops the
    secondary indexes and foreign keys first and rebuilds them after the INSERT (one sorted build
    and one validating join instead of a million index inserts and trigger calls; what pg_restore
    does). It holds the table's exclusive lock until the transaction ends, so readers wait for it:
    meant for history imports and demos, not for a table under live traffic.

    ``frame`` has grid_id (from ``routing_grids``), category_code, description, lon, lat,
    reported_at, due_at, status and, for synthetic histories, filed_at ... closed_at (NaT where not
    reached). Returns (stored, left out)."""
    _copy_to_scratch(conn, frame)
    existing = partitions.estimated_rows(conn)
    rebuild = len(frame) >= REBUILD_MIN_ROWS and len(frame) >= existing
    restore = _detach_indexes(conn) if rebuild else []
    tag, stored = _insert_from_scratch(conn, source=source, synthetic=synthetic)
    for statement in restore:
        conn.execute(sa.text(statement))
    if with_events:
        _insert_events(conn, tag)
    return stored, len(frame) - stored


def adopt_lineages(conn: sa.Connection, plan_id: int, previous_id: int) -> int:
    """Grids of plan ``plan_id`` that hold exactly the units of a grid of plan ``previous_id`` take
    that grid's lineage (a re-partition that keeps a grid keeps its incidents); returns how many."""
    return int(conn.execute(sa.text(
        "WITH sets AS (SELECT pu.plan_id, pu.grid_id AS id, md5(string_agg(pu.unit_id::text, ',' ORDER BY pu.unit_id)) AS h "
        "FROM plan_units pu WHERE pu.plan_id IN (:p, :q) GROUP BY pu.plan_id, pu.grid_id) "
        "UPDATE grids g SET lineage = o.lineage FROM sets n JOIN sets s ON s.h = n.h AND s.plan_id = :q "
        "JOIN grids o ON o.id = s.id WHERE n.plan_id = :p AND g.id = n.id AND g.lineage <> o.lineage"),
        {"p": plan_id, "q": previous_id}).rowcount)


VANISHED = ("WITH vanished AS (SELECT lineage FROM grids WHERE plan_id = :q "
            "EXCEPT SELECT lineage FROM grids WHERE plan_id = :p) ")


def vanished_count(conn: sa.Connection, plan_id: int, previous_id: int) -> int:
    """How many incidents lie in grids of ``previous_id`` whose lineage plan ``plan_id`` lacks."""
    return int(conn.execute(sa.text(
        VANISHED + "SELECT count(*) FROM incidents WHERE grid_lineage IN (SELECT lineage FROM vanished)"),
        {"p": plan_id, "q": previous_id}).scalar_one())


def reroute_in_place(conn: sa.Connection, plan_id: int, previous_id: int) -> tuple[int, int]:
    """Route again, one ``ST_Intersects`` lookup each, the incidents whose lineage vanished (the
    rule of a single report: the smaller code on a shared border). Returns (routed, outside)."""
    rows = conn.execute(sa.text(
        VANISHED + "UPDATE incidents i SET grid_lineage = (SELECT g.lineage FROM grids g WHERE g.plan_id = :p "
        "AND ST_Intersects(g.geom, i.geom) ORDER BY g.code LIMIT 1) "
        "WHERE i.grid_lineage IN (SELECT lineage FROM vanished) RETURNING i.grid_lineage"),
        {"p": plan_id, "q": previous_id}).all()
    outside = sum(1 for (lineage,) in rows if lineage is None)
    return len(rows) - outside, outside


def vanished_points(conn: sa.Connection, plan_id: int, previous_id: int) -> tuple[list[int], list[float], list[float]]:
    """Ids and positions of the incidents whose lineage vanished (for routing them in bulk)."""
    rows = conn.execute(sa.text(
        VANISHED + "SELECT id, ST_X(geom), ST_Y(geom) FROM incidents WHERE grid_lineage IN (SELECT lineage FROM vanished)"),
        {"p": plan_id, "q": previous_id}).all()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def plan_grid_shapes(conn: sa.Connection, plan_id: int) -> list[sa.Row]:
    """A plan's grids (lineage, code, WKB) for routing many points at once."""
    return conn.execute(sa.text("SELECT lineage, code, ST_AsBinary(geom) AS wkb FROM grids WHERE plan_id = :p "
                                "ORDER BY code"), {"p": plan_id}).all()


def set_lineages(conn: sa.Connection, incident_ids, lineages) -> int:
    """Store each incident's current grid lineage (None: outside every grid), in one UPDATE from
    a COPY'd scratch table."""
    buffer = io.StringIO("".join(f"{i}\t{'' if lineage is None else lineage}\n"
                                 for i, lineage in zip(incident_ids, lineages)))
    conn.execute(sa.text("CREATE TEMP TABLE rerouted (id int, lineage bigint) ON COMMIT DROP"))
    conn.connection.driver_connection.cursor().copy_expert("COPY rerouted FROM STDIN WITH (NULL '')", buffer)
    return int(conn.execute(sa.text(
        "UPDATE incidents i SET grid_lineage = r.lineage FROM rerouted r WHERE r.id = i.id")).rowcount)


def vacuum_analyze(engine: sa.Engine) -> None:
    """VACUUM ANALYZE incidents after a bulk load (outside any transaction): fresh planner
    statistics, and a visibility map that lets the handling-time index answer on its own."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE) incidents"))


__all__ = ["Route", "IncidentNotFound", "sync_categories", "category_codes", "categories", "category", "route", "insert", "get_new",
           "add_event", "nearby_open", "get", "events", "set_status", "department_by_code", "id_of", "search",
           "overdue_open", "escalate", "routing_grids", "bulk_insert", "synthetic_count", "vacuum_analyze", "adopt_lineages",
           "vanished_count", "reroute_in_place", "vanished_points", "plan_grid_shapes", "set_lineages",
           "CURRENT_GRID_JOIN"]
