"""Incident figures for maps and dashboards: counts by category, status and month, a per-grid
choropleth (per 1,000 households, overdue rate, median handling time), heat cells, the month play
and clusters. The browser never receives individual incidents in bulk: every answer is bounded by
the number of grids, categories, months or map cells, not by the number of incidents.

The figures are read from the monthly rollups the database keeps (migration 0023:
``incident_grid_months``, ``incident_handling_months``, ``incident_cell_months``), not from the
incidents themselves, so they take the same time with ten thousand incidents or ten million.
Where a date range does not cover whole UTC months, the days at its ends are read from the
incidents of those days (:func:`Filters.parts`) through the view ``incident_facts``, which
defines each incident's share exactly as the rollups do. One figure is read live: open incidents
past their due time (overdue now, not when they were counted), from a partial index of the open
ones.

Definitions (one place each):

* *overdue*: finished (closed or rejected) after the due time, rejected ones not counted, plus
  open ones past their due time now;
* *median handling hours*: of the closed incidents, read off a histogram of handling times whose
  buckets are 10 % wide (``gridmap_handling_bucket``), linearly within the middle bucket;
* *heat cells*: the rollup's cells of 1/1024° (about 110 m north–south) merged into the nearest
  whole multiple of the size asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Protocol
from datetime import datetime, timezone

import sqlalchemy as sa

from gridmap.errors import StateConflict
from gridmap.store.sql import with_subtree

SUBTREE = with_subtree()
CELLS_PER_DEGREE = 1024
"""The rollup's map cells (migration 0023)."""
OPEN = "status NOT IN ('closed', 'rejected')"


def _month_start(moment: datetime, *, up: bool) -> datetime:
    """The first instant of ``moment``'s UTC month, or of the next month when ``up`` and
    ``moment`` is not a month's first instant."""
    moment = moment.astimezone(timezone.utc)
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if up and first != moment:
        first = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first


@dataclass(frozen=True)
class SpanDays:
    """The days of a date range that the rollups do not answer for, read from the incidents once
    and kept as the common table ``name`` of one statement (:meth:`Filters.span_days`): rows of
    (``keys``..., sign, incidents, late, supervised), the incidents of those days grouped by
    ``keys`` and by the sign of their span. The grid counts and the handling histogram of one
    statement both read them (:meth:`Filters.grid_rows`, :meth:`Filters.handling_rows`), so the
    incidents of the cut days are scanned once, not once for each."""

    name: str
    keys: tuple[str, ...]
    sql: str
    params: dict

    def column(self, key: str) -> str:
        """``key`` of these rows, NULL where they do not keep it (no caller groups by it)."""
        return f"d.{key}" if key in self.keys else "NULL"

    def with_clause(self) -> str:
        """``, name AS MATERIALIZED (...)``: to follow a statement's first common table."""
        return f", {self.name} AS MATERIALIZED ({self.sql})"


SPAN_KEYS = ("grid_lineage", "community_id", "street_id", "category_code", "status", "month", "bucket")
"""What :class:`SpanDays` can keep: columns of ``incident_facts``."""


@dataclass(frozen=True)
class Filters:
    """What the dashboard filters by; None means any."""

    category: str | None = None
    statuses: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    street: str | None = None
    community: str | None = None

    def __post_init__(self) -> None:
        # a time without a zone is UTC (the API sends UTC; a notebook may not say), never the
        # zone of the process or of the database session
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=timezone.utc))

    def where(self, *, scoped: bool = True) -> tuple[str, dict]:
        """SQL conditions on incidents ``i``; ``scoped`` adds "in the territory subtree" by the
        community reported in (callers that join the subtree's grids by lineage leave it out: an
        incident counts in the grid that holds it now)."""
        clauses, params = self._kinds("i", scoped=scoped)
        if self.start:
            clauses.append("i.reported_at >= :start")
            params["start"] = self.start
        if self.end:
            clauses.append("i.reported_at < :end")
            params["end"] = self.end
        return " AND ".join(clauses), params

    def _kinds(self, alias: str, *, scoped: bool = True) -> tuple[list[str], dict]:
        """Conditions on incidents ``alias`` for the places (:meth:`_places`), the category and the
        statuses asked for."""
        clauses, params = self._places(alias, scoped=scoped)
        if self.category:
            clauses.append(f"{alias}.category_code = :category")
            params["category"] = self.category
        if self.statuses:
            clauses.append(f"{alias}.status = ANY(:statuses)")
            params["statuses"] = list(self.statuses)
        return clauses, params

    def _places(self, alias: str, *, scoped: bool = True) -> tuple[list[str], dict]:
        """Conditions on ``alias``'s community and street columns: in the territory subtree (by the
        community an incident was reported in; ``scoped`` false: anywhere, for callers that join
        the subtree's grids by lineage, so an incident counts in the grid holding it now), the
        street and the community asked for."""
        clauses = [f"{alias}.community_id IN (SELECT id FROM sub)" if scoped else "true"]
        params: dict = {}
        if self.street:
            clauses.append(f"{alias}.street_id = (SELECT id FROM territories WHERE code = :street)")
            params["street"] = self.street
        if self.community:
            clauses.append(f"{alias}.community_id = (SELECT id FROM territories WHERE code = :community)")
            params["community"] = self.community
        return clauses, params

    def parts(self) -> tuple[tuple[datetime | None, datetime | None] | None,
                             list[tuple[datetime | None, datetime | None, int]]]:
        """The date range as the whole UTC months the rollups answer for ([first, past the last),
        None at an open end; None for no whole month) and signed spans within a month that the
        incidents of those days answer for: +1, their incidents added; -1, taken away from a
        month the rollups count whole. A month the range cuts is read the cheaper way: its days
        in the range, or the whole month less the days out of it (at most half a month of
        incidents read either way)."""
        if self.start is not None and self.end is not None and self.start >= self.end:
            return None, [(self.start, self.end, 1)]  # an empty range: no incident
        low = None if self.start is None else _month_start(self.start, up=True)
        high = None if self.end is None else _month_start(self.end, up=False)
        if low is not None and high is not None and low > high:  # both ends in one month
            first, past = high, low
            if self.end - self.start <= (self.start - first) + (past - self.end):
                return None, [(self.start, self.end, 1)]
            return (first, past), [(a, b, -1) for a, b in ((first, self.start), (self.end, past)) if a < b]
        spans = []
        if self.start is not None and self.start < low:
            month = _month_start(self.start, up=False)
            if low - self.start <= self.start - month:
                spans.append((self.start, low, 1))
            else:
                low = month
                spans.append((month, self.start, -1))
        if self.end is not None and high < self.end:
            past = _month_start(self.end, up=True)
            if self.end - high <= past - self.end:
                spans.append((high, self.end, 1))
            else:
                high = past
                spans.append((self.end, past, -1))
        if low is not None and high is not None and low >= high:
            return None, spans
        return (low, high), spans

    def _sources(self, rollup: str, facts: str, *, category: bool, status: bool, scoped: bool = True,
                 days: str | None = None) -> tuple[str, dict]:
        """``rollup`` (a SELECT on a rollup ``r`` ending in its WHERE) for the whole months and
        ``facts`` (a SELECT on ``incident_facts r``, same columns, its counts and sums multiplied
        by ``{sign}``) for the spans of days, each under the filters, as one UNION ALL.
        ``category``/``status``: the rollup has those columns (else the caller has chosen its
        rows for them); ``scoped``: as in :meth:`where`. ``days``: a SELECT of the same columns
        from a :class:`SpanDays` of these filters, read for the spans instead of ``facts``."""
        months, spans = self.parts()
        places, params = self._places("r", scoped=scoped)
        selects = []
        if months is not None:
            clauses = list(places)
            if category and self.category:
                clauses.append("r.category_code = :category")
            if status and self.statuses:
                clauses.append("r.status = ANY(:statuses)")
            if months[0] is not None:
                clauses.append("r.month >= CAST(:month_low AS date)")
                params["month_low"] = months[0].date()
            if months[1] is not None:
                clauses.append("r.month < CAST(:month_high AS date)")
                params["month_high"] = months[1].date()
            selects.append(f"{rollup} {' AND '.join(clauses)}")
        if days is not None and spans:
            selects.append(days)
        for sign in (1, -1):
            signed = [(low, high) for low, high, s in spans if s == sign]
            if not signed or days is not None:
                continue
            clauses = list(places)
            if self.category:
                clauses.append("r.category_code = :category")
            if self.statuses:
                clauses.append("r.status = ANY(:statuses)")
            clauses.append(self._within(signed, params))
            selects.append(f"{facts.replace('{sign}', str(sign))} {' AND '.join(clauses)}")
        if self.category:
            params["category"] = self.category
        if self.statuses:
            params["statuses"] = list(self.statuses)
        return " UNION ALL ".join(selects), params

    @staticmethod
    def _within(spans: list[tuple[datetime | None, datetime | None]], params: dict) -> str:
        """SQL: incidents ``r`` reported within any of ``spans`` (their bounds added to ``params``)."""
        ranges = []
        for low, high in spans:
            n = len(params)
            span = []
            if low is not None:
                span.append(f"r.reported_at >= :span_low{n}")
                params[f"span_low{n}"] = low
            if high is not None:
                span.append(f"r.reported_at < :span_high{n}")
                params[f"span_high{n}"] = high
            ranges.append("(" + " AND ".join(span) + ")")
        return "(" + " OR ".join(ranges) + ")"

    def span_days(self, keys: tuple[str, ...], *, scoped: bool = True, name: str = "days") -> SpanDays | None:
        """The incidents of this range's spans of days (:meth:`parts`) under the filters, read
        once (one index range scan a sign) and grouped by ``keys`` (of :data:`SPAN_KEYS`) and
        sign, as a :class:`SpanDays`; None when the range has no such days. Grouping before the
        rollups' rows join them keeps the hundreds of thousands of a cut month's incidents out of
        every later step. Over ten million incidents (``benchmarks/incidents.py
        --maps-of-loaded``), a 40-day range's choropleth with all three measures read them twice
        (its counts, then its handling times) in 0.59–0.64 s and reads them once in 0.51–0.58 s;
        the summary, two statements then and one now, 0.64–0.67 s and 0.49–0.59 s (three runs)."""
        spans = self.parts()[1]
        if not spans:
            return None
        unknown = set(keys) - set(SPAN_KEYS)
        if unknown or not keys or len(set(keys)) < len(keys):
            raise ValueError(f"span_days keeps distinct keys among {SPAN_KEYS}, not {list(keys)}")
        clauses, params = self._kinds("r", scoped=scoped)
        columns = ", ".join(f"r.{key}" for key in keys)
        # one SELECT a sign, each on its own days: an index range scan of the months they fall in
        # (one condition on both signs' days made a bitmap scan of each month and a sign per row)
        selects = []
        for sign in (1, -1):
            signed = [(low, high) for low, high, s in spans if s == sign]
            if signed:
                selects.append(f"SELECT {columns}, {sign} AS sign, r.late, r.supervised FROM incident_facts r "
                               f"WHERE {' AND '.join([*clauses, self._within(signed, params)])}")
        groups = ", ".join(str(n) for n in range(1, len(keys) + 2))
        sql = (f"SELECT {', '.join(keys)}, sign, count(*) AS incidents, sum(late) AS late, sum(supervised) AS supervised "
               f"FROM ({' UNION ALL '.join(selects)}) r GROUP BY {groups}")
        return SpanDays(name, tuple(keys), sql, params)

    def grid_rows(self, *, scoped: bool = True, days: SpanDays | None = None) -> tuple[str, dict]:
        """Counts under the filters: rows of (grid_lineage, community_id, street_id,
        category_code, status, month, incidents, late, supervised); the spans of days from
        ``days`` when given (NULL in the columns it does not keep)."""
        columns = "r.grid_lineage, r.community_id, r.street_id, r.category_code, r.status, r.month"
        from_days = None
        if days is not None:
            keys = ", ".join(days.column(key) for key in SPAN_KEYS[:6])
            from_days = (f"SELECT {keys}, (d.sign * d.incidents)::int, (d.sign * d.late)::int, "
                         f"(d.sign * d.supervised)::int FROM {days.name} d")
        return self._sources(f"SELECT {columns}, r.incidents, r.late, r.supervised FROM incident_grid_months r WHERE",
                             f"SELECT {columns}, {{sign}}, {{sign}} * r.late, {{sign}} * r.supervised FROM incident_facts r WHERE",
                             category=True, status=True, scoped=scoped, days=from_days)

    def counts_closed(self) -> bool:
        """Whether the statuses asked for include closed incidents (any status when none is
        asked for): only then is there a handling time to take a median of."""
        return not self.statuses or "closed" in self.statuses

    def handling_rows(self, *, scoped: bool = True, days: SpanDays | None = None) -> tuple[str, dict] | None:
        """The closed incidents' handling-time histogram under the filters: rows of
        (grid_lineage, bucket, incidents); None when the statuses leave out 'closed'. A closed
        incident has a bucket exactly when it has a closing time: the days are filtered on that
        column, as a filter on the bucket worked the bucket out twice for every incident (0.06 s
        of a 40-day range's 0.68 s with ten million incidents; read from ``days``, keeping
        ``bucket``, as in :meth:`grid_rows`, they are filtered on the bucket, which the table
        worked out once)."""
        if not self.counts_closed():
            return None
        from_days = None
        if days is not None:
            if "bucket" not in days.keys:
                raise ValueError("the handling histogram needs span days that keep the bucket")
            from_days = (f"SELECT {days.column('grid_lineage')}, d.bucket, (d.sign * d.incidents)::int "
                         f"FROM {days.name} d WHERE d.bucket IS NOT NULL")
        sql, params = self._sources(
            "SELECT r.grid_lineage, r.bucket, r.incidents FROM incident_handling_months r WHERE "
            "r.category_code = :handling_category AND",
            "SELECT r.grid_lineage, r.bucket, {sign} FROM incident_facts r WHERE r.status = 'closed' AND r.closed_at IS NOT NULL AND",
            category=False, status=False, scoped=scoped, days=from_days)
        return sql, {**params, "handling_category": self.category or "*"}

    def cell_rows(self) -> tuple[str, dict]:
        """Map cells under the filters: rows of (month, cell_x, cell_y, incidents, sum_lon, sum_lat)."""
        sql, params = self._sources(
            "SELECT r.month, r.cell_x, r.cell_y, r.incidents, r.sum_lon, r.sum_lat FROM incident_cell_months r WHERE "
            "r.category_code = :cell_category AND r.status = ANY(:cell_statuses) AND",
            "SELECT r.month, r.cell_x, r.cell_y, {sign}, {sign} * r.lon, {sign} * r.lat FROM incident_facts r WHERE",
            category=False, status=False)
        return sql, {**params, "cell_category": self.category or "*", "cell_statuses": list(self.statuses or ("*",))}

    def cell_status_rows(self) -> tuple[str, dict]:
        """Map cells under the filters, status by status: rows of (month, cell_x, cell_y, status,
        incidents, sum_lon, sum_lat)."""
        sql, params = self._sources(
            "SELECT r.month, r.cell_x, r.cell_y, r.status, r.incidents, r.sum_lon, r.sum_lat FROM incident_cell_months r "
            "WHERE r.category_code = :cell_category AND r.status <> '*' AND",
            "SELECT r.month, r.cell_x, r.cell_y, r.status, {sign}, {sign} * r.lon, {sign} * r.lat FROM incident_facts r WHERE",
            category=False, status=True)
        return sql, {**params, "cell_category": self.category or "*"}

    def overdue_open(self, key: str, *, scoped: bool = True) -> tuple[str, dict]:
        """Open incidents past their due time now, under the filters, counted per ``key`` (an
        expression on incidents ``i``): rows of (key, overdue). Read live from the open ones."""
        where, params = self.where(scoped=scoped)
        return (f"SELECT {key} AS key, count(*) AS overdue FROM incidents i WHERE i.closed_at IS NULL "
                f"AND now() > i.due_at AND i.status <> 'rejected' AND {where} GROUP BY 1"), params


PARALLEL_GUCS = ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_index_scan_size",
                 "min_parallel_table_scan_size")
PARALLEL_SPANS = ("SET LOCAL parallel_setup_cost = 10; SET LOCAL parallel_tuple_cost = 0.001; "
                  "SET LOCAL min_parallel_index_scan_size = 0; SET LOCAL min_parallel_table_scan_size = 0")
"""Parallel scans for a date range that reads days from the incidents themselves (a month it
cuts: :meth:`Filters.parts`). PostgreSQL's default costs keep a scan of a few hundred thousand
rows in one process; a dashboard waits for it, so it is shared with two parallel workers
(``max_parallel_workers_per_gather``). With ten million incidents over Reykjavík, a 40-day
range's two summary statements (as they were before :class:`SpanDays` made them one) ran, under
EXPLAIN ANALYZE, in 0.70 and 0.74 s in one process and in 0.56 and 0.43 s with workers
(2026-12-05, the database of ``benchmarks/incidents.py``). Not for the
choropleth, which took longer with workers (0.53–0.55 s against 0.49–0.50 s, its cut days read
once: :class:`SpanDays`), so it keeps its one core. Ranges of whole months read the rollups
alone and are left as they were."""
SERIAL_SCANS = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in PARALLEL_GUCS)
"""The server's own parallel costs again, for a statement that should not use :data:`PARALLEL_SPANS`
after one that did, in the same transaction."""


def _settings(conn: sa.Connection, *, nested_loops: bool = True, filters: Filters | None = None) -> None:
    """For the rest of the transaction (or until reset): sorts and hashes in memory (the engine's
    connections do not JIT-compile: ``gridmap.store.db.engine_for``); without ``nested_loops``,
    joins by hashing or merging only; parallel scans when ``filters`` read days from the
    incidents (:data:`PARALLEL_SPANS`), the server's own costs otherwise (:data:`SERIAL_SCANS`):
    each statement runs with the settings it asked for, whatever ran before it in the
    transaction."""
    statements = ["SET LOCAL work_mem = '64MB'"]
    if not nested_loops:
        statements.append("SET LOCAL enable_nestloop = off")
    statements.append(PARALLEL_SPANS if filters is not None and filters.parts()[1] else SERIAL_SCANS)
    conn.execute(sa.text("; ".join(statements)))


def _median_hours(handling: str, key: str) -> str:
    """Per ``key`` (a column of the ``handling`` rows: grid_lineage, or a constant) the median
    handling hours read off the histogram as ``percentile_cont(0.5)`` reads sorted values: the
    mean of the middle two cases (ranks ⌊(n-1)/2⌋ and ⌈(n-1)/2⌉), each placed within its bucket
    as if the bucket's cases were spread evenly across it. Rows: (key, median_h).

    Each bucket's rows say which of the two ranks fall in it (both may): only those buckets are
    kept and summed, with no join; counts are integers, so the running sums are too (integer
    division gives the two ranks). In numeric, with a join of the ranks to every bucket, the
    medians took 27 ms of a Reykjavík choropleth's 60."""
    def placed(rank: str) -> str:  # the rank's place in hours, where it falls in this bucket; else 0
        return (f"CASE WHEN {rank} >= upto - n AND {rank} < upto THEN gridmap_handling_bucket_start(bucket) + "
                f"(gridmap_handling_bucket_end(bucket) - gridmap_handling_bucket_start(bucket)) * "
                f"(({rank} - (upto - n) + 0.5::float8) / n) ELSE 0 END")

    return (
        f"SELECT key, sum({placed('lo')} + {placed('hi')}) / 2 / 3600 AS median_h FROM ("
        "SELECT key, bucket, n, upto, (total - 1) / 2 AS lo, total / 2 AS hi FROM ("
        "SELECT key, bucket, n, sum(n) OVER (PARTITION BY key ORDER BY bucket) AS upto, "
        "sum(n) OVER (PARTITION BY key) AS total FROM ("
        f"SELECT {key} AS key, h.bucket, sum(h.incidents)::int AS n FROM ({handling}) h(grid_lineage, bucket, incidents) "
        "GROUP BY 1, 2 HAVING sum(h.incidents) > 0) b) c) d "
        "WHERE (lo >= upto - n AND lo < upto) OR (hi >= upto - n AND hi < upto) GROUP BY key")


def summary(conn: sa.Connection, territory: str, filters: Filters) -> dict:
    """Counts by category, status and calendar month, overdue and median handling hours. Months
    are UTC months, as the date filters (instants; the dashboard sends UTC day boundaries) are,
    so a month listed here is exactly the month the dashboard then asks for, whatever the
    server's time zone."""
    # the counts and the median in one statement, so that the days a range cuts are read once for both
    with_median = filters.counts_closed()
    days = filters.span_days(("month", "category_code", "status") + (("bucket",) if with_median else ()))
    rows, params = filters.grid_rows(days=days)
    params["territory"] = territory
    late_now, late_params = filters.overdue_open("to_char(date_trunc('month', i.reported_at AT TIME ZONE 'UTC'), "
                                                 "'YYYY-MM') || '|' || i.category_code")
    params.update(late_params)
    handling = filters.handling_rows(days=days) if with_median else None
    median = "NULL::float8"
    extra = days.with_clause() if days is not None else ""
    if days is not None:
        params.update(days.params)
    if handling is not None:
        params.update(handling[1])
        extra += f", m AS ({_median_hours(handling[0], '0')})"
        median = "(SELECT m.median_h FROM m)"
    _settings(conn, filters=filters)
    grouped = conn.execute(sa.text(
        # grouped by the month itself, named once a group: naming each of the 550,000 incidents of a
        # 40-day range's cut days (ten million loaded) took its counts from 0.43 s to 0.59 s, when
        # they were a statement of their own
        SUBTREE + extra + ", g AS MATERIALIZED (SELECT s.month, s.category_code, s.status, "
        "sum(s.incidents)::bigint AS n, sum(s.late)::bigint AS late, sum(s.supervised)::bigint AS supervised "
        f"FROM ({rows}) s(grid_lineage, community_id, street_id, category_code, status, month, incidents, late, supervised) "
        f"GROUP BY 1, 2, 3), o AS ({late_now}) "
        f"SELECT u.*, {median} AS median FROM ("
        "SELECT to_char(g.month, 'YYYY-MM') AS month, g.category_code, g.status, g.n, g.late, g.supervised, "
        "0::bigint AS late_now FROM g WHERE g.n <> 0 "
        "UNION ALL SELECT split_part(o.key, '|', 1), split_part(o.key, '|', 2), NULL, 0, 0, 0, o.overdue FROM o) u"),
        params).all()
    names = {r.code: r for r in conn.execute(sa.text("SELECT code, name_zh, name_en FROM incident_categories"))}
    totals = {"total": 0, "open": 0, "closed": 0, "rejected": 0, "overdue": 0, "supervised": 0}
    by_category: dict[str, dict] = {}
    by_status: dict[str, int] = {}
    by_month: dict[str, dict] = {}
    for r in grouped:
        n, overdue = int(r.n), int(r.late) + int(r.late_now)
        is_open = r.status is not None and r.status not in ("closed", "rejected")
        totals["total"] += n
        totals["open"] += n if is_open else 0
        totals["closed"] += n if r.status == "closed" else 0
        totals["rejected"] += n if r.status == "rejected" else 0
        totals["overdue"] += overdue
        totals["supervised"] += int(r.supervised)
        category = by_category.setdefault(r.category_code, {"count": 0, "open": 0, "overdue": 0})
        category["count"] += n
        category["open"] += n if is_open else 0
        category["overdue"] += overdue
        if r.status is not None:
            by_status[r.status] = by_status.get(r.status, 0) + n
        month = by_month.setdefault(r.month, {"month": r.month, "count": 0, "overdue": 0})
        month["count"] += n
        month["overdue"] += overdue
    # (no row: no incident in the range, so no closed one to take a median of)
    median = grouped[0].median if grouped else None
    categories = [{"code": code, "name_zh": names[code].name_zh if code in names else None,
                   "name_en": names[code].name_en if code in names else None, **figures}
                  for code, figures in by_category.items() if figures["count"]]
    categories.sort(key=lambda c: (-c["count"], c["code"]))
    return {**totals, "median_hours": median, "by_category": categories,
            "by_status": dict(sorted(((s, n) for s, n in by_status.items() if n), key=lambda sn: -sn[1])),
            "by_month": [m for _, m in sorted(by_month.items()) if m["count"]]}


METRICS = ("per_1000_households", "overdue_rate", "median_hours")


def choropleth(conn: sa.Connection, territory: str, filters: Filters, *, display: bool = False,
               metrics: tuple[str, ...] = METRICS) -> dict:
    """:func:`choropleth_text`, parsed."""
    return json.loads(choropleth_text(conn, territory, filters, display=display, metrics=metrics))


@dataclass(frozen=True)
class GridOutlines:
    """What a choropleth shows of the published grids that only a publish changes: per grid id,
    the beginning of its GeoJSON feature (its code as id and its outline, up to the properties),
    as of publish stamp ``stamp`` (:data:`gridmap.store.features.PUBLISHED_STAMP`). A server keeps
    them per territory and stamp (:func:`choropleth_text`'s ``kept``): writing 377 outlines as
    GeoJSON took half of a Reykjavík choropleth's 11 ms. Names and households are not in them:
    they come with the figures, so a community renamed without a publish shows its new name."""

    stamp: str
    features: dict[int, str]

    def __len__(self) -> int:
        """Its size in characters (what a size-bounded keeper counts; a character takes one or two
        bytes in memory here)."""
        return sum(len(text) for text in self.features.values())


class OutlineKeeper(Protocol):
    """Where a server keeps :class:`GridOutlines` (``gridmap.api.tiles.KeptTiles``), under keys
    whose second element is the stamp."""

    def get(self, key: tuple) -> GridOutlines | None: ...

    def put(self, key: tuple, data: GridOutlines) -> None: ...


_PUBLISHED_GRIDS_BELOW = (
    # (the published plans' ids first: their grids are then read through the plan's index, as a join
    # would have, without a nested loop however many plans history holds)
    "FROM grids g JOIN territories c ON c.id = g.community_id "
    "WHERE g.plan_id = ANY(ARRAY(SELECT id FROM plans WHERE status = 'published')) "
    "AND g.community_id IN (SELECT id FROM sub)")


def grid_outlines(conn: sa.Connection, territory: str, *, display: bool = False) -> GridOutlines:
    """The published grids of ``territory`` as :class:`GridOutlines`, read with their stamp in one
    statement. ``display``: the grids' display outlines (simplified to about 2 m, stored with each
    grid: ``grids.geom_display``) instead of their exact geometry."""
    from gridmap.store.features import PUBLISHED_STAMP

    outline = "g.geom_display" if display else "g.geom"
    rows = conn.execute(sa.text(
        SUBTREE + ", grid AS (SELECT g.id, '{\"type\": \"Feature\", \"id\": ' || to_json(g.code)::text "
        "|| ', \"geometry\": ' || COALESCE(ST_AsGeoJSON(" + outline + ", 6, 0), 'null') || ', \"properties\": ' "
        f"AS head {_PUBLISHED_GRIDS_BELOW}) "
        f"SELECT grid.id, grid.head, ({PUBLISHED_STAMP}) AS stamp FROM (SELECT 1) one LEFT JOIN grid ON true"),
        {"territory": territory}).all()
    return GridOutlines(rows[0].stamp, {r.id: r.head for r in rows if r.id is not None})


def choropleth_text(conn: sa.Connection, territory: str, filters: Filters, *, display: bool = False,
                    metrics: tuple[str, ...] = METRICS, kept: OutlineKeeper | None = None) -> str:
    """Published grids (GeoJSON text, as the database writes it: a server passes it on without
    parsing it) with incidents, incidents per 1,000 households, overdue rate and median handling
    hours under the filters. Incidents count in the grid that holds them in the published plan
    (by lineage; see store.incidents), not the one they were reported in, so they are counted by
    lineage alone, not by the community they were reported in. Only the ``metrics`` asked for
    are computed. ``display``: the grids' display outlines (:func:`grid_outlines`).

    The figures (with each grid's code, community and households) are read with the publish stamp
    in one statement; the outlines come from ``kept`` when it holds them for that stamp and for
    every one of those grids (else they are read, and kept): outlines and figures are of the same
    grids, also after a community moved to another street without a publish."""
    from gridmap.store.features import PUBLISHED_STAMP

    # the days a range cuts are read once for the counts and the handling histogram
    days = filters.span_days(("grid_lineage", "bucket") if "median_hours" in metrics else ("grid_lineage",),
                             scoped=False)
    rows, params = filters.grid_rows(scoped=False, days=days)
    params.update(territory=territory, **(days.params if days is not None else {}))
    counts = (f"SELECT s.grid_lineage AS lineage, sum(s.incidents) AS n, sum(s.late) AS late FROM ({rows}) "
              "s(grid_lineage, community_id, street_id, category_code, status, month, incidents, late, supervised) "
              "GROUP BY 1")
    if "overdue_rate" in metrics:
        late_now, late_params = filters.overdue_open("i.grid_lineage", scoped=False)
        params.update(late_params)
        counts = (f"SELECT c.lineage, c.n, c.late + COALESCE(o.overdue, 0) AS late FROM ({counts}) c "
                  f"LEFT JOIN ({late_now}) o ON o.key = c.lineage")
    handling = filters.handling_rows(scoped=False, days=days) if "median_hours" in metrics else None
    if handling is not None:
        params.update(handling[1])
        agg = (f"SELECT c.*, m.median_h FROM ({counts}) c LEFT JOIN ({_median_hours(handling[0], 'h.grid_lineage')}) m "
               "ON m.key = c.lineage")
    else:
        agg = f"SELECT c.*, NULL::float8 AS median_h FROM ({counts}) c"
    statement = sa.text(
        SUBTREE + (days.with_clause() if days is not None else "")
        + f", agg AS MATERIALIZED ({agg}), "  # computed once, whatever the join order
        "figures AS (SELECT g.id, g.code, json_build_object('grid_code', g.code, 'community', c.name, "
        "'households', g.households, 'incidents', COALESCE(a.n, 0), "
        "'per_1000_households', CASE WHEN g.households > 0 THEN round((1000.0 * COALESCE(a.n, 0) / g.households)::numeric, 1) END, "
        "'overdue_rate', CASE WHEN a.n > 0 AND :late THEN round((a.late::numeric / a.n), 3) END, "
        "'median_hours', round(a.median_h::numeric, 1))::text AS figures "
        f"{_PUBLISHED_GRIDS_BELOW.replace('WHERE', 'LEFT JOIN agg a ON a.lineage = g.lineage WHERE', 1)}) "
        f"SELECT figures.id, figures.figures, ({PUBLISHED_STAMP}) AS stamp "
        "FROM (SELECT 1) one LEFT JOIN figures ON true ORDER BY figures.code, figures.id")
    for _ in range(3):  # again only if a publish lands between the figures and the outlines
        # the grids and their figures joined by hashing: PostgreSQL's estimate of the figures' rows
        # made it rescan them for every grid (377 × 359 comparisons on Reykjavík, 10 ms); only this
        # statement plans so
        _settings(conn, nested_loops=False)
        figures = conn.execute(statement, {**params, "late": "overdue_rate" in metrics}).all()
        conn.execute(sa.text("RESET enable_nestloop"))  # (for what the caller reads next in this transaction)
        stamp = figures[0].stamp
        figures = [r for r in figures if r.id is not None]
        key = ("choropleth", stamp, territory, display)
        outlines = kept.get(key) if kept is not None else None
        if outlines is None or any(r.id not in outlines.features for r in figures):
            outlines = grid_outlines(conn, territory, display=display)
            if kept is not None:
                kept.put(("choropleth", outlines.stamp, territory, display), outlines)
        if outlines.stamp == stamp and all(r.id in outlines.features for r in figures):
            # each feature: its kept beginning, the properties, "}"
            return ('{"type": "FeatureCollection", "features": ['
                    + ", ".join(f"{outlines.features[r.id]}{r.figures}}}" for r in figures) + "]}")
    raise StateConflict(f"the published grids of {territory} changed three times while their choropleth was read; "
                        "ask again", f"读取 {territory} 的分级统计图时已发布网格变更了三次；请重试")


def _cell_size(cell_deg: float) -> int:
    """How many of the rollup's cells make a side of a cell of about ``cell_deg`` degrees."""
    return max(1, round(cell_deg * CELLS_PER_DEGREE))


def heat(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float) -> list[list[float]]:
    """Incidents counted on a grid of cells about ``cell_deg`` wide (a whole number of the
    rollup's cells, at least one): [[lat, lon, count], ...] at each cell's centre."""
    rows, params = filters.cell_rows()
    k = _cell_size(cell_deg)
    params.update(territory=territory, k=k)
    _settings(conn, filters=filters)
    found = conn.execute(sa.text(
        SUBTREE + "SELECT floor(s.cell_y::float8 / :k) AS y, floor(s.cell_x::float8 / :k) AS x, sum(s.incidents) AS n "
        f"FROM ({rows}) s(month, cell_x, cell_y, incidents, sum_lon, sum_lat) GROUP BY 1, 2 HAVING sum(s.incidents) > 0"),
        params)
    size = k / CELLS_PER_DEGREE
    return [[round((y + 0.5) * size, 6), round((x + 0.5) * size, 6), int(n)] for y, x, n in found]


SINGLE_MATCH_DEG = 1e-7
"""How near (about 1 cm) a cell's mean position from the rollups must be to an incident's for a
cell of one to be that incident (the sums kept step by step differ in their last bits)."""


def clusters(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float,
             bbox: tuple[float, float, float, float] | None = None) -> list[dict]:
    """Incidents grouped into map cells about ``cell_deg`` wide: the mean position, the count and
    the open count of each, and the incident's number where a cell holds one; the map asks for
    the cells in its view (``bbox``: the rollup cells it touches). From the rollups' map cells
    (a whole number of them a side) where the cells asked for are at least that large, so a
    city-wide view reads per-cell totals, not every incident; closer in (zoom 17 and up, a
    street or two in view) from the incidents themselves. The number of a cell of one is looked
    up at its position."""
    if cell_deg * CELLS_PER_DEGREE < 1:
        return _clusters_of_incidents(conn, territory, filters, cell_deg=cell_deg, bbox=bbox)
    rows, params = filters.cell_status_rows()
    params.update(territory=territory, k=_cell_size(cell_deg))
    inside = ""
    if bbox:
        inside = "WHERE s.cell_x BETWEEN :cx0 AND :cx1 AND s.cell_y BETWEEN :cy0 AND :cy1 "
        params.update(cx0=math.floor(bbox[0] * CELLS_PER_DEGREE), cy0=math.floor(bbox[1] * CELLS_PER_DEGREE),
                      cx1=math.floor(bbox[2] * CELLS_PER_DEGREE), cy1=math.floor(bbox[3] * CELLS_PER_DEGREE))
    _settings(conn, filters=filters)
    found = conn.execute(sa.text(
        SUBTREE + "SELECT sum(s.sum_lat) / sum(s.incidents) AS lat, sum(s.sum_lon) / sum(s.incidents) AS lon, "
        f"sum(s.incidents) AS n, COALESCE(sum(s.incidents) FILTER (WHERE s.{OPEN}), 0) AS open "
        f"FROM ({rows}) s(month, cell_x, cell_y, status, incidents, sum_lon, sum_lat) {inside}"
        "GROUP BY floor(s.cell_x::float8 / :k), floor(s.cell_y::float8 / :k) HAVING sum(s.incidents) > 0"), params).all()
    out = [{"lat": round(r.lat, 6), "lon": round(r.lon, 6), "count": int(r.n), "open": int(r.open), "incident": None}
           for r in found]
    singles = [(r.lon, r.lat, c) for r, c in zip(found, out) if c["count"] == 1]
    if singles:
        where, params = filters.where()
        params.update(territory=territory, lons=[s[0] for s in singles], lats=[s[1] for s in singles],
                      near=SINGLE_MATCH_DEG)
        numbers = conn.execute(sa.text(
            SUBTREE + "SELECT v.n, (SELECT min(i.public_id) FROM incidents i WHERE "
            "i.geom && ST_Expand(ST_SetSRID(ST_Point(v.lon, v.lat), 4490), :near) "
            f"AND {where}) FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY v(lon, lat, n)"),
            params).all()
        for n, number in numbers:
            singles[n - 1][2]["incident"] = number
    return out


def _clusters_of_incidents(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float,
                           bbox: tuple[float, float, float, float] | None) -> list[dict]:
    """``clusters`` read from the incidents themselves, on cells of exactly ``cell_deg``."""
    where, params = filters.where()
    params.update(territory=territory, cell=cell_deg)
    if bbox:
        where += " AND i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    rows = conn.execute(sa.text(
        SUBTREE + "SELECT avg(ST_Y(i.geom)) AS lat, avg(ST_X(i.geom)) AS lon, count(*) AS n, "
        f"count(*) FILTER (WHERE i.{OPEN}) AS open, min(i.public_id) AS sample "
        f"FROM incidents i WHERE {where} GROUP BY ST_SnapToGrid(i.geom, :cell)"), params)
    return [{"lat": round(r.lat, 6), "lon": round(r.lon, 6), "count": int(r.n), "open": int(r.open),
             "incident": r.sample if r.n == 1 else None} for r in rows]


def monthly_clusters(conn: sa.Connection, territory: str, filters: Filters, *, cell_deg: float) -> dict[str, list[dict]]:
    """Clusters per UTC month of report (for the month play), on cells about ``cell_deg`` wide:
    {"2026-03": [{lat, lon, count}, ...], ...} with each cluster's mean position."""
    rows, params = filters.cell_rows()
    params.update(territory=territory, k=_cell_size(cell_deg))
    _settings(conn, filters=filters)
    found = conn.execute(sa.text(
        SUBTREE + "SELECT to_char(s.month, 'YYYY-MM') AS month, sum(s.sum_lat) / sum(s.incidents) AS lat, "
        "sum(s.sum_lon) / sum(s.incidents) AS lon, sum(s.incidents) AS n "
        f"FROM ({rows}) s(month, cell_x, cell_y, incidents, sum_lon, sum_lat) "
        # grouped by the month itself, named once a group (naming every row took a fifth of the time)
        "GROUP BY s.month, floor(s.cell_x::float8 / :k), floor(s.cell_y::float8 / :k) HAVING sum(s.incidents) > 0 "
        "ORDER BY s.month"),
        params)
    out: dict[str, list[dict]] = {}
    for r in found:
        out.setdefault(r.month, []).append({"lat": round(r.lat, 6), "lon": round(r.lon, 6), "count": int(r.n)})
    return out


TERRITORY_COUNTS = (
    "WITH RECURSIVE up AS (SELECT id AS below, id AS above FROM territories UNION ALL "
    "SELECT up.below, t.parent_id FROM up JOIN territories t ON t.id = up.above WHERE t.parent_id IS NOT NULL), "
    "per AS (SELECT community_id, sum(incidents) AS n FROM incident_grid_months WHERE community_id <> 0 GROUP BY 1) "
    "SELECT t.code, t.name, t.level, COALESCE(sum(per.n), 0)::bigint AS incidents FROM territories t "
    "JOIN up ON up.above = t.id LEFT JOIN per ON per.community_id = up.below "
    "GROUP BY t.id, t.code, t.name, t.level ORDER BY incidents DESC, t.code")


def territory_counts(conn: sa.Connection) -> list[dict]:
    """Every territory with the incidents routed into its whole subtree (as the summary counts
    them: by community), busiest first, from the monthly rollup rolled up the territory tree."""
    return [dict(r._mapping) for r in conn.execute(sa.text(TERRITORY_COUNTS))]


__all__ = ["territory_counts", "monthly_clusters", "Filters", "METRICS", "summary", "choropleth", "heat", "clusters"]
