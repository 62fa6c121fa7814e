"""Editing plans in PostGIS: unit moves, merges, splits, cut units, versions, publish and copy.

A grid is a set of units (``plan_units``); every edit is a change of that assignment, so no edit
can open a gap or an overlap. After an edit only the grids it touched are re-dissolved and
re-summed (:func:`refresh_grids`); nothing else of the territory is recomputed.

Every function runs inside the caller's transaction. Drafts are locked row-wise
(``SELECT ... FOR UPDATE``) and carry ``lock_version``: a write naming another version raises
:class:`VersionConflict` with the edits the caller has not seen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

GRID_CODE = re.compile(r"^[0-9]{1,32}$")


# -- refusals, in English and Chinese -------------------------------------------------------------
# Every refusal an edit can get carries its text in both languages: ``str(exc)`` and ``exc.en`` are
# English (the API's ``detail``, as before), ``exc.zh`` is Chinese; the API adds both as
# ``detail_en`` and ``detail_zh`` and the planner shows the user's language. Raisers pass ``zh``;
# a text raised without it (e.g. a geometry error passed on) gets a Chinese text from
# :data:`CHINESE_FORMS`, or at worst a Chinese sentence quoting the English one.
OPERATION_ZH = {"assign": "分配", "move": "移动", "merge": "合并", "split": "拆分", "cut": "切分单元", "set": "设置"}
STATUS_ZH = {"draft": "草稿", "published": "已发布", "history": "历史"}

CHINESE_FORMS: list[tuple[re.Pattern, str]] = [(re.compile(p), zh) for p, zh in (
    (r"^unit\(s\) (.+) are not in plan (\d+)$", "单元 {0} 不在方案 {1} 中"),
    (r"^unit (\d+) is not in plan (\d+)$", "单元 {0} 不在方案 {1} 中"),
    (r"^'line' is not a GeoJSON LineString: (.*)$", "切线不是 GeoJSON LineString：{0}"),
    (r"^a cut needs a line \(LineString\)$", "切分单元需要一条线（LineString）"),
    (r"^the line does not cross the unit$", "切线没有穿过该单元"),
    (r"^the line does not cut the unit in two: draw it across the unit from edge to edge$",
     "切线没有把单元分成两块：请从单元外一侧画到另一侧，穿过整个单元"),
    (r"^no plan with id (\d+)$", "没有编号为 {0} 的方案"),
    (r"^no territory with code '?([^']*)'?$", "没有编码为 {0} 的辖区"),
)]


def chinese(en: str) -> str:
    """The Chinese text of an English refusal raised without one."""
    for pattern, zh in CHINESE_FORMS:
        match = pattern.match(en)
        if match:
            return zh.format(*match.groups())
    match = re.match(r"^unit (\d+): (.+)$", en)  # a cut refusal passed on with the unit's id
    if match:
        return f"单元 {match.group(1)}：{chinese(match.group(2))}"
    return f"无法执行此修改（{en}）"


def texts(exc: BaseException) -> dict[str, str]:
    """An exception's refusal in both languages: ``{"en": ..., "zh": ...}``."""
    en = getattr(exc, "en", None) or str(exc)
    return {"en": en, "zh": getattr(exc, "zh", None) or chinese(en)}


class EditError(ValueError):
    """An edit that cannot be applied as asked (unknown unit, grid in another community ...).

    ``EditError(english, chinese)``; ``str(exc)`` is the English text."""

    def __init__(self, en: str, zh: str | None = None):
        super().__init__(en)
        self.en = en
        self.zh = zh if zh is not None else chinese(en)


class PlanStateError(EditError):
    """The plan is not in a state that allows this (editing a published plan, publishing history)."""


class NotFound(LookupError):
    """No such plan (or territory); ``str(exc)`` English, ``exc.zh`` Chinese."""

    def __init__(self, en: str, zh: str | None = None):
        super().__init__(en)
        self.en = en
        self.zh = zh if zh is not None else chinese(en)


@dataclass
class VersionConflict(Exception):
    """The caller's version of a draft is stale: someone else saved in between."""

    plan_id: int
    expected: int
    current: int
    changes: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return self.en

    @property
    def en(self) -> str:
        return (f"plan {self.plan_id} is at version {self.current}, not {self.expected}: "
                f"{len(self.changes)} edit(s) were saved since; reload and apply your change again")

    @property
    def zh(self) -> str:
        return (f"方案 {self.plan_id} 的编辑版本已是 {self.current}，而不是 {self.expected}：其间已有 "
                f"{len(self.changes)} 次修改被保存；请重新载入后再做一次修改")


@dataclass(frozen=True)
class PlanRow:
    id: int
    territory_id: int
    territory: str
    status: str
    version: int
    lock_version: int
    parameters: dict


def plan_row(conn: sa.Connection, plan_id: int, *, lock: bool = False) -> PlanRow:
    row = conn.execute(sa.text(
        "SELECT p.id, p.territory_id, t.code AS territory, p.status, p.version, p.lock_version, p.parameters "
        "FROM plans p JOIN territories t ON t.id = p.territory_id WHERE p.id = :id"
        + (" FOR UPDATE OF p" if lock else "")), {"id": plan_id}).first()
    if row is None:
        raise NotFound(f"no plan with id {plan_id}", f"没有编号为 {plan_id} 的方案")
    return PlanRow(**row._mapping)


def plan_territory(conn: sa.Connection, plan_id: int) -> str | None:
    """The code of a plan's territory (None for an unknown plan): what access checks need, cheaply."""
    return conn.execute(sa.text("SELECT t.code FROM plans p JOIN territories t ON t.id = p.territory_id "
                                "WHERE p.id = :p"), {"p": plan_id}).scalar()


def edits_since(conn: sa.Connection, plan_id: int, version: int) -> list[dict]:
    """The saved edits of a plan after ``version``: who, when, which operations, which grids."""
    rows = conn.execute(sa.text(
        "SELECT version, actor, at, operations, grids FROM plan_edits WHERE plan_id = :p AND version > :v "
        "ORDER BY version"), {"p": plan_id, "v": version})
    return [{**r._mapping, "at": r.at.isoformat()} for r in rows]


def lock_draft(conn: sa.Connection, plan_id: int, expected_version: int | None) -> PlanRow:
    """Lock a draft for writing and check the caller's version."""
    plan = plan_row(conn, plan_id, lock=True)
    if plan.status != "draft":
        raise PlanStateError(f"plan {plan_id} is {plan.status}; only drafts can be edited (copy it into a new draft)",
                             f"方案 {plan_id} 是{STATUS_ZH.get(plan.status, plan.status)}方案；只有草稿可以编辑"
                             "（请先把它复制为新草稿）")
    if expected_version is not None and expected_version != plan.lock_version:
        raise VersionConflict(plan_id, expected_version, plan.lock_version,
                              edits_since(conn, plan_id, expected_version))
    return plan


def record_edit(conn: sa.Connection, plan_id: int, *, actor: str, operations: list[dict], grids: list[str]) -> int:
    """Bump the draft's version and log the edit; returns the new version."""
    version = conn.execute(sa.text("UPDATE plans SET lock_version = lock_version + 1 WHERE id = :p "
                                   "RETURNING lock_version"), {"p": plan_id}).scalar_one()
    conn.execute(sa.text(
        "INSERT INTO plan_edits (plan_id, version, actor, operations, grids) "
        "VALUES (:p, :v, :a, CAST(:o AS jsonb), CAST(:g AS jsonb))"),
        {"p": plan_id, "v": version, "a": actor, "o": json.dumps(operations, ensure_ascii=False),
         "g": json.dumps(sorted(grids))})
    return version


# -- the assignment ------------------------------------------------------------------------------
def units_of_plan(conn: sa.Connection, plan_id: int, unit_ids: list[int]) -> dict[int, tuple[int, str, int]]:
    """unit id → (grid id, grid code, community id) for those of ``unit_ids`` in the plan."""
    rows = conn.execute(sa.text(
        "SELECT pu.unit_id, g.id, g.code, u.community_id FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND pu.unit_id = ANY(:u)"),
        {"p": plan_id, "u": unit_ids})
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def grid_by_code(conn: sa.Connection, plan_id: int, code: str) -> sa.Row | None:
    return conn.execute(sa.text("SELECT id, code, community_id, kind FROM grids WHERE plan_id = :p AND code = :c"),
                        {"p": plan_id, "c": code}).first()


def grid_units(conn: sa.Connection, grid_id: int) -> list[int]:
    return [r[0] for r in conn.execute(sa.text("SELECT unit_id FROM plan_units WHERE grid_id = :g ORDER BY unit_id"),
                                       {"g": grid_id})]


def community_code(conn: sa.Connection, community_id: int) -> str:
    return conn.execute(sa.text("SELECT code FROM territories WHERE id = :i"), {"i": community_id}).scalar_one()


def next_grid_code(conn: sa.Connection, plan_id: int, community_id: int) -> str:
    """The next free code of a community in a plan: the largest one + 1, same width."""
    codes = [r[0] for r in conn.execute(sa.text(
        "SELECT code FROM grids WHERE plan_id = :p AND community_id = :c"), {"p": plan_id, "c": community_id})]
    if not codes:
        return community_code(conn, community_id) + "001"
    width = max(len(c) for c in codes)
    candidate = max(int(c) for c in codes if len(c) == width) + 1
    taken = set(codes)
    while f"{candidate:0{width}d}" in taken:
        candidate += 1
    code = f"{candidate:0{width}d}"
    if len(code) > width:
        community = community_code(conn, community_id)
        raise EditError(f"community {community} has no free grid code left", f"社区 {community} 已没有可用的网格编码")
    return code


def create_grid(conn: sa.Connection, plan_id: int, code: str, community_id: int, kind: str = "comprehensive") -> int:
    if not GRID_CODE.match(code):
        raise EditError(f"grid code {code!r} must be 1-32 digits", f"网格编码 {code!r} 须为 1–32 位数字")
    community = community_code(conn, community_id)
    if community not in code:
        raise EditError(f"grid code {code} must contain its community's code {community}",
                        f"网格编码 {code} 须包含所属社区的编码 {community}")
    if kind not in ("comprehensive", "dedicated"):
        raise EditError("grid kind must be 'comprehensive' or 'dedicated'",
                        "网格类型须为 'comprehensive'（综合网格）或 'dedicated'（专属网格）")
    return conn.execute(sa.text(
        "INSERT INTO grids (plan_id, code, community_id, kind, households, area_m2, properties) "
        "VALUES (:p, :c, :cid, :k, 0, 0, '{}'::jsonb) RETURNING id"),
        {"p": plan_id, "c": code, "cid": community_id, "k": kind}).scalar_one()


def assign(conn: sa.Connection, plan_id: int, unit_ids: list[int], code: str, *,
           kind: str | None = None) -> set[int]:
    """Move units into grid ``code`` (created when the plan has no such grid). Returns touched grid ids.

    A grid never crosses a community boundary: every unit must lie in the target grid's community."""
    unit_ids = sorted({int(u) for u in unit_ids})
    if not unit_ids:
        raise EditError("no units given", "没有指定单元")
    found = units_of_plan(conn, plan_id, unit_ids)
    missing = [u for u in unit_ids if u not in found]
    if missing:
        listed = "、".join(map(str, missing[:10]))
        raise EditError(f"unit(s) {', '.join(map(str, missing[:10]))} are not in plan {plan_id}",
                        f"单元 {listed} 不在方案 {plan_id} 中")
    communities = {c for _, _, c in found.values()}
    target = grid_by_code(conn, plan_id, code)
    if target is None:
        if len(communities) > 1:
            raise EditError("the units belong to different communities; a grid never crosses a community boundary",
                            "这些单元分属不同社区；网格不能跨越社区边界")
        target_id = create_grid(conn, plan_id, code, communities.pop(), kind or "comprehensive")
    else:
        foreign = sorted(u for u, (_, _, c) in found.items() if c != target.community_id)
        if foreign:
            community = community_code(conn, target.community_id)
            raise EditError(f"grid {code} lies in community {community}; unit(s) "
                            f"{', '.join(map(str, foreign[:10]))} lie in another community, and a grid never "
                            "crosses a community boundary",
                            f"网格 {code} 属于社区 {community}；单元 {'、'.join(map(str, foreign[:10]))} 属于"
                            "其他社区，网格不能跨越社区边界")
        target_id = target.id
        if kind:
            conn.execute(sa.text("UPDATE grids SET kind = :k WHERE id = :g"), {"k": kind, "g": target_id})
    touched = {g for g, _, _ in found.values()} | {target_id}
    conn.execute(sa.text("UPDATE plan_units SET grid_id = :g WHERE plan_id = :p AND unit_id = ANY(:u)"),
                 {"g": target_id, "p": plan_id, "u": unit_ids})
    changed = {g for g, _, _ in found.values() if g != target_id}
    if changed:
        new_lineage(conn, changed | {target_id})
    return touched


def new_lineage(conn: sa.Connection, grid_ids: set[int]) -> None:
    """Grids whose units changed start a lineage of their own: incidents in them are routed
    again when the plan is published (store.incidents.reroute)."""
    conn.execute(sa.text("UPDATE grids SET lineage = nextval('grid_lineage_seq') WHERE id = ANY(:ids)"),
                 {"ids": sorted(grid_ids)})


def drop_empty_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int]) -> list[str]:
    """Delete those of ``grid_ids`` that have no units left; returns their codes."""
    rows = conn.execute(sa.text(
        "DELETE FROM grids g WHERE g.plan_id = :p AND g.id = ANY(:ids) "
        "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.grid_id = g.id) RETURNING code"),
        {"p": plan_id, "ids": sorted(grid_ids)})
    return sorted(r[0] for r in rows)


def replace_unit(conn: sa.Connection, plan_id: int, parent_id: int, pieces: list[dict]) -> list[int]:
    """Store the pieces of a cut unit (dicts with ``geom_hex``, ``households``, ``area_m2``) as new
    units (children of ``parent_id``) and put them in the parent's place in this plan only.

    Other plans that use the parent (the published one, history) keep it unchanged."""
    parent = conn.execute(sa.text(
        "SELECT u.id, u.community_id, u.unit_key, u.kind, u.name, u.properties, pu.grid_id FROM units u "
        "JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p WHERE u.id = :u"),
        {"p": plan_id, "u": parent_id}).first()
    if parent is None:
        raise EditError(f"unit {parent_id} is not in plan {plan_id}")
    keys = {r[0] for r in conn.execute(sa.text(
        "SELECT unit_key FROM units WHERE community_id = :c AND unit_key LIKE :k"),
        {"c": parent.community_id, "k": parent.unit_key + ".%"})}
    new_ids = []
    serial = 1
    for piece in pieces:
        while f"{parent.unit_key}.{serial}" in keys:
            serial += 1
        key = f"{parent.unit_key}.{serial}"
        keys.add(key)
        props = {**parent.properties, "cut_from": parent.unit_key}
        new_ids.append(conn.execute(sa.text(
            "INSERT INTO units (community_id, unit_key, kind, name, households, area_m2, properties, parent_id, geom) "
            "VALUES (:c, :k, :kind, :name, :h, :a, CAST(:props AS jsonb), :parent, "
            "ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": parent.community_id, "k": key, "kind": parent.kind, "name": parent.name,
             "h": int(piece["households"]), "a": float(piece["area_m2"]), "parent": parent.id,
             "props": json.dumps(props, ensure_ascii=False), "g": piece["geom_hex"]}).scalar_one())
    conn.execute(sa.text("DELETE FROM plan_units WHERE plan_id = :p AND unit_id = :u"), {"p": plan_id, "u": parent.id})
    conn.execute(sa.text("INSERT INTO plan_units (plan_id, unit_id, grid_id) VALUES (:p, :u, :g)"),
                 [{"p": plan_id, "u": u, "g": parent.grid_id} for u in new_ids])
    new_lineage(conn, {parent.grid_id})
    return new_ids


def revise_units(conn: sa.Connection, plan_id: int, revisions: dict[int, str]) -> dict[int, int]:
    """Put revised copies of units (``{unit id: EWKB hex}``: the same area with the vertices a
    cut added to a shared edge) in their place in this plan only; returns {old id: new id}.

    A revision is a child of the unit it revises (key ``<key>~N``), with the same households and
    properties, and remembers the unit it stands for (``revision_of_id``), so a diff does not
    count it as a move. Other plans keep the original unchanged."""
    replaced: dict[int, int] = {}
    for unit_id, geom_hex in revisions.items():
        row = conn.execute(sa.text(
            "SELECT u.id, u.community_id, u.unit_key, u.kind, u.name, u.households, u.population, u.area_m2, "
            "u.properties, pu.grid_id FROM units u JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p "
            "WHERE u.id = :u"), {"p": plan_id, "u": unit_id}).first()
        if row is None:
            raise EditError(f"unit {unit_id} is not in plan {plan_id}", f"单元 {unit_id} 不在方案 {plan_id} 中")
        base = row.properties.get("revision_of", row.unit_key)
        taken = {r[0] for r in conn.execute(sa.text(
            "SELECT unit_key FROM units WHERE community_id = :c AND unit_key LIKE :k"),
            {"c": row.community_id, "k": base + "~%"})}
        serial = 1
        while f"{base}~{serial}" in taken:
            serial += 1
        props = {**row.properties, "revision_of": base, "revision_of_id": row.properties.get("revision_of_id", row.id)}
        new_id = conn.execute(sa.text(
            "INSERT INTO units (community_id, unit_key, kind, name, households, population, area_m2, properties, "
            "parent_id, geom) VALUES (:c, :k, :kind, :name, :h, :pop, :a, CAST(:props AS jsonb), :parent, "
            "ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex')))) RETURNING id"),
            {"c": row.community_id, "k": f"{base}~{serial}", "kind": row.kind, "name": row.name, "h": row.households,
             "pop": row.population, "a": row.area_m2, "props": json.dumps(props, ensure_ascii=False),
             "parent": row.id, "g": geom_hex}).scalar_one()
        conn.execute(sa.text("UPDATE plan_units SET unit_id = :n WHERE plan_id = :p AND unit_id = :u"),
                     {"n": new_id, "p": plan_id, "u": row.id})
        replaced[row.id] = new_id
    return replaced


def neighbours_for_cut(conn: sa.Connection, plan_id: int, unit_id: int) -> list[sa.Row]:
    """The units of the plan that touch a unit (id, grid id, EWKB hex): those a cut may revise."""
    return conn.execute(sa.text(
        "SELECT n.id, pn.grid_id, encode(ST_AsEWKB(n.geom), 'hex') AS geom_hex FROM units u "
        "JOIN plan_units pn ON pn.plan_id = :p JOIN units n ON n.id = pn.unit_id "
        "WHERE u.id = :u AND n.id <> u.id AND ST_Intersects(n.geom, u.geom) ORDER BY n.id"),
        {"p": plan_id, "u": unit_id}).all()


def unit_for_cut(conn: sa.Connection, plan_id: int, unit_id: int) -> sa.Row:
    """A unit of the plan with its geometry (EWKB hex), households and grid, for cutting."""
    row = conn.execute(sa.text(
        "SELECT u.id, u.households, u.area_m2, encode(ST_AsEWKB(u.geom), 'hex') AS geom_hex, g.id AS grid_id "
        "FROM units u JOIN plan_units pu ON pu.unit_id = u.id AND pu.plan_id = :p "
        "JOIN grids g ON g.id = pu.grid_id WHERE u.id = :u"), {"p": plan_id, "u": unit_id}).first()
    if row is None:
        raise EditError(f"unit {unit_id} is not in plan {plan_id}")
    return row


# -- statistics, incrementally -------------------------------------------------------------------
GRID_STATS_SQL = (
    "SELECT g.id, g.code, c.code AS community_code, g.kind, g.households, g.population, g.area_m2, "
    "(g.properties->>'unit_count')::int AS unit_count, (g.properties->>'compactness')::float AS compactness, "
    "COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)) AS parts "
    "FROM grids g JOIN territories c ON c.id = g.community_id ")


def refresh_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int], metric_srid: int) -> list[dict]:
    """Re-dissolve and re-sum only ``grid_ids`` from their units; returns their statistics.

    Compactness is Polsby-Popper (4πA/P²) with the perimeter in the territory's metric CRS, as in
    the partition; ``parts`` > 1 means the grid is not contiguous."""
    ids = sorted(grid_ids)
    if not ids:
        return []
    conn.execute(sa.text(
        "UPDATE grids g SET geom = s.geom, households = s.households, population = s.population, area_m2 = s.area, "
        "properties = g.properties || jsonb_build_object('unit_count', s.n, 'parts', ST_NumGeometries(s.geom), "
        "'compactness', CASE WHEN s.perimeter > 0 THEN round((4 * pi() * s.area / s.perimeter ^ 2)::numeric, 4) "
        "ELSE 0 END) "
        "FROM (SELECT d.*, ST_Perimeter(ST_Transform(d.geom, :srid)) AS perimeter FROM ("
        "SELECT pu.grid_id, ST_Multi(ST_Union(u.geom)) AS geom, sum(u.households) AS households, "
        "sum(u.population) AS population, sum(u.area_m2) AS area, count(*) AS n FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND pu.grid_id = ANY(:ids) GROUP BY pu.grid_id) d) s "
        "WHERE g.id = s.grid_id"), {"p": plan_id, "ids": ids, "srid": metric_srid})
    rows = conn.execute(sa.text(GRID_STATS_SQL + "WHERE g.id = ANY(:ids) ORDER BY g.code"), {"ids": ids})
    return [dict(r._mapping) for r in rows]


def plan_summary(conn: sa.Connection, plan_id: int, min_households: int, max_households: int) -> dict:
    """Counts over the plan's grids (cached sums; one pass over the grids table, no geometry)."""
    row = conn.execute(sa.text(
        "SELECT count(*) AS grids, count(*) FILTER (WHERE kind = 'comprehensive') AS comprehensive, "
        "count(*) FILTER (WHERE kind = 'dedicated') AS dedicated, "
        "count(*) FILTER (WHERE kind = 'comprehensive' AND households BETWEEN :lo AND :hi) AS in_band, "
        "count(*) FILTER (WHERE kind = 'comprehensive' AND households < :lo) AS below_min, "
        "count(*) FILTER (WHERE kind = 'comprehensive' AND households > :hi) AS above_max, "
        "count(*) FILTER (WHERE COALESCE((properties->>'parts')::int, ST_NumGeometries(geom)) > 1) AS not_contiguous, "
        "COALESCE(sum(households), 0) AS households, "
        "(SELECT count(*) FROM plan_units WHERE plan_id = :p) AS units FROM grids WHERE plan_id = :p"),
        {"p": plan_id, "lo": min_households, "hi": max_households}).first()
    return {**row._mapping, "min_households": min_households, "max_households": max_households}


# -- lifecycle -----------------------------------------------------------------------------------
def copy_plan(conn: sa.Connection, source_id: int, *, author: str, origin: str) -> tuple[int, int]:
    """A new draft with the same grids and assignment as plan ``source_id``; (plan id, version)."""
    from gridmap.store.plans import create_plan

    source = plan_row(conn, source_id)
    plan_id, version = create_plan(conn, territory_id=source.territory_id, origin=origin, author=author,
                                   parameters={**source.parameters, "copied_from": source_id}, report={})
    conn.execute(sa.text("UPDATE plans SET parent_plan_id = :s WHERE id = :p"), {"s": source_id, "p": plan_id})
    conn.execute(sa.text(
        "INSERT INTO grids (plan_id, code, name, community_id, kind, households, population, area_m2, worker, "
        "properties, geom, lineage) SELECT :p, code, name, community_id, kind, households, population, area_m2, worker, "
        "properties, geom, lineage FROM grids WHERE plan_id = :s"), {"p": plan_id, "s": source_id})
    conn.execute(sa.text(
        "INSERT INTO plan_units (plan_id, unit_id, grid_id) SELECT :p, pu.unit_id, ng.id FROM plan_units pu "
        "JOIN grids og ON og.id = pu.grid_id JOIN grids ng ON ng.plan_id = :p AND ng.code = og.code "
        "WHERE pu.plan_id = :s"), {"p": plan_id, "s": source_id})
    return plan_id, version


def published_plan_id(conn: sa.Connection, territory_id: int) -> int | None:
    return conn.execute(sa.text("SELECT id FROM plans WHERE territory_id = :t AND status = 'published'"),
                        {"t": territory_id}).scalar()


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


def unit_moves(conn: sa.Connection, plan_id: int, base_id: int) -> list[dict]:
    """Units whose grid differs between ``base_id`` and ``plan_id`` (None where a unit is absent,
    as for the parent and the pieces of a cut unit). A revision of a unit (the neighbour of a cut,
    with one more vertex) stands for the unit it revises: it is not a move."""
    same = "COALESCE((u.properties->>'revision_of_id')::int, u.id)"
    rows = conn.execute(sa.text(
        f"WITH a AS (SELECT {same} AS unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p), "
        f"b AS (SELECT {same} AS unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
        "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :b) "
        "SELECT COALESCE(a.unit_id, b.unit_id) AS unit, b.code AS before, a.code AS after FROM a FULL JOIN b "
        "ON a.unit_id = b.unit_id WHERE a.code IS DISTINCT FROM b.code ORDER BY 1"), {"p": plan_id, "b": base_id})
    return [dict(r._mapping) for r in rows]


def grids_with_change(conn: sa.Connection, plan_id: int, base_id: int, codes: dict[str, str]) -> dict:
    """A FeatureCollection of the changed grids: current shape for added/changed, the old one for removed."""
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id', g.code, 'geometry', ST_AsGeoJSON(g.geom, 7)::json, 'properties', json_build_object("
        "'grid_code', g.code, 'change', c.change, 'households', g.households, 'plan_id', g.plan_id))), '[]'::json)) "
        "FROM jsonb_each_text(CAST(:codes AS jsonb)) c(code, change) JOIN grids g ON g.code = c.code AND "
        "g.plan_id = CASE WHEN c.change = 'removed' THEN :b ELSE :p END"),
        {"p": plan_id, "b": base_id, "codes": json.dumps(codes)}).scalar_one()


def units_feature_collection(conn: sa.Connection, plan_id: int, *, unit_ids: list[int] | None = None,
                             simplify_m: float = 0.0) -> dict:
    """A plan's units (all, or ``unit_ids``) with their grid, as an RFC 7946 FeatureCollection.

    ``simplify_m`` > 0 simplifies outlines for display (about that many metres)."""
    tolerance = simplify_m / 111_000.0
    return conn.execute(sa.text(
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id', u.id, 'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0 THEN "
        "ST_SimplifyPreserveTopology(u.geom, :tol) ELSE u.geom END, 7)::json, 'properties', json_build_object("
        "'unit_id', u.id, 'unit_key', u.unit_key, 'grid_code', g.code, 'community_code', c.code, 'kind', u.kind, "
        "'name', u.name, 'households', u.households, 'area_m2', round(u.area_m2::numeric, 1), "
        "'compound_id', u.properties->>'compound_id', 'label', ST_AsGeoJSON(ST_PointOnSurface(u.geom), 7)::json))"
        " ORDER BY u.id), '[]'::json)) FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id "
        "WHERE pu.plan_id = :p AND (CAST(:ids AS int[]) IS NULL OR u.id = ANY(CAST(:ids AS int[])))"),
        {"p": plan_id, "ids": unit_ids, "tol": tolerance}).scalar_one()


def territory_centre(conn: sa.Connection, territory_id: int) -> tuple[float, float]:
    """The centre of a territory's bounding box (lon, lat)."""
    return tuple(conn.execute(sa.text(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Envelope(geom)) c FROM territories WHERE id = :t) s"),
        {"t": territory_id}).one())


def territory_id(conn: sa.Connection, code: str) -> int | None:
    return conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": code}).scalar()


def grid_communities(conn: sa.Connection, grid_ids: set[int]) -> list[tuple[str, int]]:
    """(grid code, community id) of each grid."""
    return [tuple(r) for r in conn.execute(sa.text("SELECT code, community_id FROM grids WHERE id = ANY(:ids)"),
                                           {"ids": sorted(grid_ids)})]


GRID_ATTRIBUTES = ("name", "worker", "kind")


def set_grid_attribute(conn: sa.Connection, grid_id: int, column: str, value) -> None:
    if column not in GRID_ATTRIBUTES:
        raise EditError(f"a grid's {column} cannot be set; settable: {', '.join(GRID_ATTRIBUTES)}",
                        f"网格的 {column} 不能设置；可设置：{'、'.join(GRID_ATTRIBUTES)}")
    conn.execute(sa.text(f"UPDATE grids SET {column} = :v WHERE id = :g"), {"v": value, "g": grid_id})


def plan_units_frame(conn: sa.Connection, plan_id: int):
    """A plan's units with community, grid, households and compound (GeoDataFrame, EPSG:4490)."""
    import geopandas as gpd

    return gpd.read_postgis(sa.text(
        "SELECT u.id AS unit_id, c.code AS community_code, g.code AS grid_code, u.households, "
        "u.properties->>'compound_id' AS compound_id, u.geom FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id JOIN territories c ON c.id = u.community_id WHERE pu.plan_id = :p"),
        conn, geom_col="geom", params={"p": plan_id}).rename_geometry("geometry")


def plan_grids_frame(conn: sa.Connection, plan_id: int):
    import geopandas as gpd

    return gpd.read_postgis(sa.text(
        "SELECT g.code AS grid_code, c.code AS community_code, g.kind, g.households, "
        "COALESCE((g.properties->>'parts')::int, ST_NumGeometries(g.geom)) AS parts, g.geom FROM grids g "
        "JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p ORDER BY g.code"),
        conn, geom_col="geom", params={"p": plan_id})


def grid_codes(conn: sa.Connection, plan_id: int) -> set[str]:
    return {r[0] for r in conn.execute(sa.text("SELECT code FROM grids WHERE plan_id = :p"), {"p": plan_id})}


def plan_brief(conn: sa.Connection, plan_id: int) -> dict:
    row = conn.execute(sa.text("SELECT id, version, status, published_at, valid_from FROM plans WHERE id = :p"),
                       {"p": plan_id}).first()
    return dict(row._mapping)


def history(conn: sa.Connection, territory: str) -> list[dict]:
    """Every plan of a territory with its validity period, newest first."""
    rows = conn.execute(sa.text(
        "SELECT p.id, p.version, p.status, p.origin, p.author, p.created_at, p.published_at, p.valid_from, "
        "p.valid_to, p.lock_version, p.parent_plan_id, (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) "
        "AS grids FROM plans p JOIN territories t ON t.id = p.territory_id WHERE t.code = :c "
        "ORDER BY p.version DESC"), {"c": territory})
    return [dict(r._mapping) for r in rows]


def grid_snapshot(conn: sa.Connection, plan_id: int, codes: list[str] | None = None) -> dict[str, dict]:
    """What the audit log keeps of grids: households, unit count, name, worker, kind (no shapes)."""
    rows = conn.execute(sa.text(
        "SELECT g.code, g.households, g.name, g.worker, g.kind, count(pu.unit_id) AS units FROM grids g "
        "LEFT JOIN plan_units pu ON pu.grid_id = g.id WHERE g.plan_id = :p "
        "AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(CAST(:codes AS text[]))) GROUP BY g.id ORDER BY g.code"),
        {"p": plan_id, "codes": codes})
    return {r.code: {"households": r.households, "units": r.units, "name": r.name, "worker": r.worker,
                     "kind": r.kind} for r in rows}


def unit_grids(conn: sa.Connection, plan_id: int, unit_ids: list[int]) -> dict[int, str]:
    """The grid code each of ``unit_ids`` is in (for the audit log's before/after of a move)."""
    rows = conn.execute(sa.text("SELECT pu.unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
                                "WHERE pu.plan_id = :p AND pu.unit_id = ANY(:ids)"), {"p": plan_id, "ids": unit_ids})
    return {int(u): c for u, c in rows}


def grid_stats(conn: sa.Connection, plan_id: int) -> list[dict]:
    rows = conn.execute(sa.text(GRID_STATS_SQL + "WHERE g.plan_id = :p ORDER BY g.code"), {"p": plan_id})
    return [dict(r._mapping) for r in rows]


__all__ = ["grid_snapshot", "unit_grids", "EditError", "PlanStateError", "NotFound", "VersionConflict", "chinese",
           "texts", "OPERATION_ZH", "STATUS_ZH", "PlanRow", "plan_row", "plan_territory", "edits_since", "lock_draft",
           "record_edit", "units_of_plan", "grid_by_code", "grid_units", "next_grid_code", "create_grid", "assign",
           "drop_empty_grids", "replace_unit", "new_lineage", "revise_units", "neighbours_for_cut", "unit_for_cut", "refresh_grids", "plan_summary", "copy_plan",
           "published_plan_id", "publish", "unit_moves", "grids_with_change", "units_feature_collection",
           "territory_centre", "territory_id", "grid_communities", "set_grid_attribute", "plan_units_frame",
           "plan_grids_frame", "grid_codes", "plan_brief", "history", "grid_stats", "GRID_ATTRIBUTES"]
