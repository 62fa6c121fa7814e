"""Plans: their rows and their lifecycle (draft → published → history), the edit log and version
checks, and the stored report. One way to get a plan (:func:`get`, :func:`find`), one error when
there is none (:class:`PlanNotFound`).

A plan's grids and the assignment of units to them live in :mod:`gridmap.store.assignment`; its
GeoDataFrames are read through :mod:`gridmap.store.frames`.

Every function runs inside the caller's transaction. Drafts are locked row-wise (``FOR UPDATE``)
and carry ``lock_version``: a write naming another version raises :class:`VersionConflict` with
the edits the caller has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from gridmap.errors import NotFound, StateConflict
from gridmap.store.jsonb import to_json
from gridmap.store.sql import with_ancestors, with_subtree
from gridmap.store.territories import TerritoryNotFound, exists

STATUS_ZH = {"draft": "草稿", "published": "已发布", "history": "历史"}
ORIGIN_ZH = {"partition": "自动划分", "merge": "多网合一", "copy": "复制", "revert": "恢复"}  # how a plan was made


class PlanNotFound(NotFound):
    """No such plan, or no plan of the kind asked for covers a territory."""

    @classmethod
    def of(cls, plan_id: int) -> "PlanNotFound":
        return cls(f"no plan with id {plan_id}", f"没有编号为 {plan_id} 的方案")


class PlanStateError(StateConflict, ValueError):
    """The plan is not in a state that allows this (editing a published plan, publishing history)."""


@dataclass
class VersionConflict(StateConflict):
    """The caller's version of a draft is stale: someone else saved in between."""

    plan_id: int
    expected: int
    current: int
    changes: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(
            f"plan {self.plan_id} is at version {self.current}, not {self.expected}: {len(self.changes)} edit(s) "
            "were saved since; reload and apply your change again",
            f"方案 {self.plan_id} 的编辑版本已是 {self.current}，而不是 {self.expected}：其间已有 {len(self.changes)} "
            "次修改被保存；请重新载入后再做一次修改")

    def __str__(self) -> str:
        return self.en


@dataclass(frozen=True)
class Plan:
    """A plan's row: which territory, which state, which version and edit version, and how it was made."""

    id: int
    territory_id: int
    territory: str
    territory_name: str
    status: str
    version: int
    lock_version: int
    origin: str | None
    author: str | None
    parameters: dict
    created_at: datetime
    published_at: datetime | None
    valid_from: datetime | None
    valid_to: datetime | None
    parent_plan_id: int | None
    report_version: int | None


COLUMNS = ("p.id, p.territory_id, t.code AS territory, t.name AS territory_name, p.status, p.version, p.lock_version, "
           "p.origin, p.author, p.parameters, p.created_at, p.published_at, p.valid_from, p.valid_to, "
           "p.parent_plan_id, p.report_version")


def row_stamp(conn: sa.Connection, plan_id: int) -> str:
    """The transaction that last wrote the plan's row (PostgreSQL's ``xmin``): different after every
    update of the row, and for a row put back by a restore, which is a new row."""
    return conn.execute(sa.text("SELECT xmin::text FROM plans WHERE id = :p"), {"p": plan_id}).scalar_one()


def get(conn: sa.Connection, plan_id: int, *, lock: bool = False) -> Plan:
    """Plan ``plan_id`` (row-locked with ``lock``); :class:`PlanNotFound` when there is none."""
    row = conn.execute(sa.text(
        f"SELECT {COLUMNS} FROM plans p JOIN territories t ON t.id = p.territory_id WHERE p.id = :id"
        + (" FOR UPDATE OF p" if lock else "")), {"id": plan_id}).first()
    if row is None:
        raise PlanNotFound.of(plan_id)
    return Plan(**row._mapping)


def territory_of(conn: sa.Connection, plan_id: int) -> str | None:
    """The code of a plan's territory (None for an unknown plan): what access checks need, cheaply."""
    return conn.execute(sa.text("SELECT t.code FROM plans p JOIN territories t ON t.id = p.territory_id "
                                "WHERE p.id = :p"), {"p": plan_id}).scalar()


def find(conn: sa.Connection, territory: str, which: str | int = "published") -> Plan:
    """The plan for ``territory``: ``"published"``, the newest ``"draft"``, or a version number.

    The territory's own plans come first, then those of its nearest ancestor (a district of a city
    plan is read from the city's plan). :class:`PlanNotFound` when none fits;
    :class:`TerritoryNotFound` for an unknown code."""
    if not exists(conn, territory):
        raise TerritoryNotFound.of(territory)
    text = str(which).strip().lower()
    if text.isdigit():
        condition, order, params = "p.version = :v", "", {"v": int(text)}
    elif text in ("published", "draft"):
        condition, order, params = "p.status = :s", ", p.version DESC", {"s": text}
    else:
        raise PlanNotFound(f"plan must be 'published', 'draft' or a version number, not {which!r}",
                           f"方案须为 published（已发布）、draft（草稿）或版本号，而不是 {which!r}")
    row = conn.execute(sa.text(
        with_ancestors() + f"SELECT {COLUMNS} FROM up JOIN plans p ON p.territory_id = up.id "
        f"JOIN territories t ON t.id = up.id WHERE {condition} ORDER BY up.depth{order} LIMIT 1"),
        {"territory": territory, **params}).first()
    if row is None:
        kind = f"version {text}" if text.isdigit() else text
        kind_zh = f"版本 {text}" if text.isdigit() else STATUS_ZH.get(text, text)
        hint, hint_zh = "", ""
        if text == "published":  # what to do about it: publish a draft, or read the draft itself
            hint = (f": publish a draft (`gridmap plan publish ID`; `gridmap plan history {territory}` lists the "
                    "plans) or ask for the draft (--plan draft)")
            hint_zh = (f"：请先发布一个草稿（`gridmap plan publish 编号`；`gridmap plan history {territory}` 列出方案），"
                       "或改用草稿（--plan draft）")
        elif text == "draft":
            hint = f": make one (`gridmap partition --territory {territory}` or `gridmap plan draft {territory}`)"
            hint_zh = f"：请先生成（`gridmap partition --territory {territory}` 或 `gridmap plan draft {territory}`）"
        raise PlanNotFound(f"territory {territory} has no {kind} plan (nor has any territory above it){hint}",
                           f"辖区 {territory}（及其上级）没有{kind_zh}方案{hint_zh}")
    return Plan(**row._mapping)


def published_above(conn: sa.Connection, territory: str) -> tuple[str, int] | None:
    """The nearest published plan covering ``territory``: its own, else its nearest ancestor's
    (a community's grids are in its street's or district's plan): (owner code, plan id)."""
    row = conn.execute(sa.text(
        with_ancestors() + "SELECT t.code, p.id FROM up JOIN territories t ON t.id = up.id "
        "JOIN plans p ON p.territory_id = up.id AND p.status = 'published' ORDER BY up.depth LIMIT 1"),
        {"territory": territory}).first()
    return (row[0], int(row[1])) if row else None


def grids_within(conn: sa.Connection, plan_id: int, territory: str, codes: list[str]) -> set[str]:
    """Those of ``codes`` that are grids of plan ``plan_id`` in ``territory`` (or below it)."""
    return set(conn.execute(sa.text(
        with_subtree() + "SELECT g.code FROM grids g WHERE g.plan_id = :p AND g.code = ANY(:c) "
        "AND g.community_id IN (SELECT id FROM sub)"), {"territory": territory, "p": plan_id, "c": codes}).scalars())


def published_id(conn: sa.Connection, territory_id: int) -> int | None:
    return conn.execute(sa.text("SELECT id FROM plans WHERE territory_id = :t AND status = 'published'"),
                        {"t": territory_id}).scalar()


def count_for(conn: sa.Connection, code: str) -> int | None:
    """How many plans a territory has (None when there is no such territory)."""
    row = conn.execute(sa.text(
        "SELECT (SELECT count(*) FROM plans p WHERE p.territory_id = t.id) FROM territories t WHERE t.code = :c"),
        {"c": code}).first()
    return None if row is None else int(row[0])


def list_for(conn: sa.Connection, territory_code: str) -> list[dict]:
    """A territory's plans, oldest first, with their grid count and (when current) report summary."""
    rows = conn.execute(sa.text(
        "SELECT p.id, p.version, p.status, p.origin, p.author, p.created_at, p.published_at, "
        "(SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS grids, "
        "CASE WHEN p.report_version = p.lock_version THEN p.report->'summary' END AS summary "
        "FROM plans p JOIN territories t ON t.id = p.territory_id WHERE t.code = :c ORDER BY p.version"),
        {"c": territory_code})
    return [dict(r._mapping) for r in rows]


def history(conn: sa.Connection, territory: str) -> list[dict]:
    """Every plan of a territory with its validity period, newest first."""
    rows = conn.execute(sa.text(
        "SELECT p.id, p.version, p.status, p.origin, p.author, p.created_at, p.published_at, p.valid_from, "
        "p.valid_to, p.lock_version, p.parent_plan_id, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) "
        "AS grids FROM plans p JOIN territories t ON t.id = p.territory_id WHERE t.code = :c "
        "ORDER BY p.version DESC"), {"c": territory})
    return [dict(r._mapping) for r in rows]


def brief(conn: sa.Connection, plan_id: int) -> dict:
    row = conn.execute(sa.text("SELECT id, version, status, published_at, valid_from FROM plans WHERE id = :p"),
                       {"p": plan_id}).first()
    return dict(row._mapping)


# -- making plans ---------------------------------------------------------------------------------
def create(conn: sa.Connection, *, territory_id: int, origin: str, author: str, parameters: dict,
           report: dict) -> tuple[int, int]:
    """A new draft plan with the next version number; returns (plan id, version). A report given
    here is the plan's report at edit version 1."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": territory_id})  # serialise versions
    version = conn.execute(sa.text("SELECT COALESCE(max(version), 0) + 1 FROM plans WHERE territory_id = :t"),
                           {"t": territory_id}).scalar_one()
    plan_id = conn.execute(sa.text(
        "INSERT INTO plans (territory_id, status, version, origin, author, parameters, report, report_version) "
        "VALUES (:t, 'draft', :v, :o, :a, CAST(:p AS jsonb), CAST(:r AS jsonb), "
        "CASE WHEN CAST(:r AS jsonb) ? 'summary' THEN 1 END) RETURNING id"),
        {"t": territory_id, "v": version, "o": origin, "a": author,
         "p": to_json(parameters), "r": to_json(report, lenient=True)},
    ).scalar_one()
    return plan_id, version


def copy(conn: sa.Connection, source_id: int, *, author: str, origin: str) -> tuple[int, int]:
    """A new draft with the same grids (and their lineages) and assignment as plan ``source_id``.

    The source is share-locked until the caller's transaction ends: a draft being deleted
    meanwhile is either copied whole first or not found, never copied half."""
    conn.execute(sa.text("SELECT 1 FROM plans WHERE id = :s FOR SHARE"), {"s": source_id})
    source = get(conn, source_id)
    plan_id, version = create(conn, territory_id=source.territory_id, origin=origin, author=author,
                              parameters={**source.parameters, "copied_from": source_id}, report={})
    conn.execute(sa.text("UPDATE plans SET parent_plan_id = :s WHERE id = :p"), {"s": source_id, "p": plan_id})
    conn.execute(sa.text(
        "INSERT INTO grids (plan_id, code, name, community_id, kind, households, population, area_m2, worker, "
        "properties, geom, lineage, locked) SELECT :p, code, name, community_id, kind, households, population, area_m2, "
        "worker, properties, geom, lineage, locked FROM grids WHERE plan_id = :s"), {"p": plan_id, "s": source_id})
    conn.execute(sa.text(
        "INSERT INTO plan_units (plan_id, unit_id, grid_id) SELECT :p, pu.unit_id, ng.id FROM plan_units pu "
        "JOIN grids og ON og.id = pu.grid_id JOIN grids ng ON ng.plan_id = :p AND ng.code = og.code "
        "WHERE pu.plan_id = :s"), {"p": plan_id, "s": source_id})
    from gridmap.store import microgrids

    microgrids.copy(conn, source_id, plan_id)  # the micro-grids (and their leaders) come along
    from gridmap.store import notes

    notes.copy(conn, source_id, plan_id)  # and the notes on its grids and units
    return plan_id, version


# -- editing a draft ------------------------------------------------------------------------------
def edits_since(conn: sa.Connection, plan_id: int, version: int) -> list[dict]:
    """The saved edits of a plan after ``version``: who, when, which operations, which grids."""
    rows = conn.execute(sa.text(
        "SELECT version, actor, at, operations, grids FROM plan_edits WHERE plan_id = :p AND version > :v "
        "ORDER BY version"), {"p": plan_id, "v": version})
    return [{**r._mapping, "at": r.at.isoformat()} for r in rows]


def lock_draft(conn: sa.Connection, plan_id: int, expected_version: int | None) -> Plan:
    """Lock a draft for writing and check the caller's version."""
    plan = get(conn, plan_id, lock=True)
    if plan.status != "draft":
        raise PlanStateError(
            f"plan {plan_id} is {plan.status}; only drafts can be edited (copy it into a new draft)",
            f"方案 {plan_id} 是{STATUS_ZH.get(plan.status, plan.status)}方案；只有草稿可以编辑（请先复制为新草稿）")
    if expected_version is not None and expected_version != plan.lock_version:
        raise VersionConflict(plan_id, expected_version, plan.lock_version, edits_since(conn, plan_id, expected_version))
    return plan


def record_edit(conn: sa.Connection, plan_id: int, *, actor: str, operations: list[dict], grids: list[str]) -> int:
    """Bump the draft's edit version and log the edit; returns the new version."""
    version = conn.execute(sa.text("UPDATE plans SET lock_version = lock_version + 1 WHERE id = :p "
                                   "RETURNING lock_version"), {"p": plan_id}).scalar_one()
    conn.execute(sa.text(
        "INSERT INTO plan_edits (plan_id, version, actor, operations, grids) "
        "VALUES (:p, :v, :a, CAST(:o AS jsonb), CAST(:g AS jsonb))"),
        {"p": plan_id, "v": version, "a": actor, "o": to_json(operations),
         "g": to_json(sorted(grids))})
    return version


def publish(conn: sa.Connection, plan_id: int, expected_version: int | None) -> int | None:
    """Make a draft the published plan; the previous published plan becomes history with its
    valid-to time. Returns the id of that previous plan. Atomic with the caller's transaction."""
    plan = lock_draft(conn, plan_id, expected_version)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": plan.territory_id})
    empty = conn.execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM grids WHERE plan_id = :p)"), {"p": plan_id}).scalar()
    if empty:
        raise PlanStateError(f"plan {plan_id} has no grids", f"方案 {plan_id} 没有网格")
    previous = conn.execute(sa.text(
        "UPDATE plans SET status = 'history', valid_to = now() WHERE territory_id = :t AND status = 'published' "
        "RETURNING id"), {"t": plan.territory_id}).scalar()
    conn.execute(sa.text("UPDATE plans SET status = 'published', published_at = now(), valid_from = now() "
                         "WHERE id = :p"), {"p": plan_id})
    return previous


# -- deleting a draft -----------------------------------------------------------------------------
def lock_for_delete(conn: sa.Connection, plan_id: int) -> Plan:
    """Lock a plan that is to be deleted: drafts only. Published and history plans are the record
    of what was in force, and are kept (:class:`PlanStateError`). An edit or publish of the draft
    under way finishes first; one that comes later finds no plan."""
    plan = get(conn, plan_id, lock=True)
    if plan.status != "draft":
        raise PlanStateError(
            f"plan {plan_id} is {plan.status}: only drafts can be deleted; published and history plans are the "
            "record of what was in force and are kept (make a new draft, or revert to an earlier plan, instead)",
            f"方案 {plan_id} 是{STATUS_ZH.get(plan.status, plan.status)}方案：只能删除草稿；已发布方案和历史方案是"
            "曾经生效的记录，须保留（可另建草稿，或恢复到更早的方案）")
    return plan


def contents(conn: sa.Connection, plan_id: int) -> dict:
    """How much hangs from a plan: grids, assigned units, saved edits, merge results."""
    row = conn.execute(sa.text(
        "SELECT (SELECT count(*) FROM grids WHERE plan_id = :p) AS grids, "
        "(SELECT count(*) FROM plan_units WHERE plan_id = :p) AS units, "
        "(SELECT count(*) FROM plan_edits WHERE plan_id = :p) AS edits, "
        "(SELECT count(*) FROM merge_crosswalk WHERE plan_id = :p) + (SELECT count(*) FROM plan_conflicts "
        "WHERE plan_id = :p) + (SELECT count(*) FROM grid_duties WHERE plan_id = :p) AS merge_rows"),
        {"p": plan_id}).one()
    return dict(row._mapping)


def delete(conn: sa.Connection, plan_id: int) -> None:
    """Delete a plan row locked by :func:`lock_for_delete`. Its grids, assignment, edit log and
    merge results (crosswalk, conflicts, duties) go with it (their foreign keys cascade); plans
    copied from it keep their rows and lose only the link (``parent_plan_id`` set to NULL)."""
    conn.execute(sa.text("DELETE FROM plans WHERE id = :p AND status = 'draft'"), {"p": plan_id})


# -- the report -----------------------------------------------------------------------------------
def stored_report(conn: sa.Connection, plan_id: int) -> dict:
    """The report kept with a plan (``{}`` when none was made yet)."""
    return conn.execute(sa.text("SELECT report FROM plans WHERE id = :p"), {"p": plan_id}).scalar() or {}


def store_report(conn: sa.Connection, plan_id: int, report: dict, version: int) -> bool:
    """Keep a plan's report, computed at edit version ``version``; nothing is stored (False) when
    the plan was edited meanwhile (the next reader computes it again)."""
    return conn.execute(sa.text(
        "UPDATE plans SET report = CAST(:r AS jsonb), report_version = :v WHERE id = :p AND lock_version = :v"),
        {"p": plan_id, "v": version, "r": to_json(report, lenient=True)}).rowcount == 1


__all__ = ["Plan", "PlanNotFound", "grids_within", "PlanStateError", "VersionConflict", "STATUS_ZH", "ORIGIN_ZH", "get", "row_stamp", "territory_of", "find",
           "published_id", "count_for", "list_for", "history", "brief", "create", "copy", "edits_since", "lock_draft",
           "record_edit", "publish", "lock_for_delete", "contents", "delete", "stored_report", "store_report"]
