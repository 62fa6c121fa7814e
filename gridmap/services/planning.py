"""The plan lifecycle: drafts, edits, validation, the report, diff, publish, history, revert and
deleting a draft.

Shells (API, CLI, notebook) call these; each write is one transaction. An edit is a list of the
typed operations of :mod:`gridmap.services.edits` (each checks its own rules and applies itself)
and returns the statistics of the grids it touched plus the plan's counts, computed
incrementally in PostGIS (:mod:`gridmap.store.assignment`) by the definitions of
:mod:`gridmap.geo.report`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel

from gridmap.errors import Forbidden, Invalid, Refusal
from gridmap.geo.crs import metric_crs_for
from gridmap.geo.kinds import COMPREHENSIVE
from gridmap.geo.profile import Profile
from gridmap.geo.quality import coverage_problems, split_compounds
from gridmap.services import edits, profiles
from gridmap.services import incidents as incident_service
from gridmap.services import microgrids as microgrid_service
from gridmap.services.edits import EditError
from gridmap.store import assignment, audit, features, frames, plans, territories
from gridmap.store import microgrids as microgrid_store
from gridmap.store.shared_cache import SharedCache
from gridmap.store import notes as notes_store
from gridmap.store.plans import Plan, PlanStateError, VersionConflict


@dataclass
class EditResult:
    """What an edit did: the new version, the touched grids' statistics, and the plan's counts."""

    plan_id: int
    version: int
    dry_run: bool
    grids: list[dict]
    removed: list[str]
    created: list[str]
    units: dict[int, str]
    new_units: dict | None
    summary: dict
    elapsed_ms: float = 0.0
    features: dict | None = None
    replaced_units: dict[int, int] = field(default_factory=dict)  # a cut's revised neighbours: old id → new id
    revisions: dict | None = None  # those revised neighbours (GeoJSON), to draw in place of the old ones
    microgrids: dict | None = None  # the changed grids' micro-grids made again (services.microgrids.Redivision)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["units"] = [{"unit": u, "grid_code": g} for u, g in sorted(self.units.items())]
        out["replaced_units"] = [{"unit": old, "by": new} for old, new in sorted(self.replaced_units.items())]
        return out


@dataclass
class Problem:
    """One finding of :func:`validate`, with text in Chinese and English and where to look."""

    kind: str
    severity: str
    message_zh: str
    message_en: str
    grid_code: str | None = None
    community_code: str | None = None
    bbox: list[float] | None = None
    units: list[int] = field(default_factory=list)


def profile_of(plan: Plan) -> Profile:
    """The rules a plan was made with (stored with it), which its checks and report measure against."""
    return profiles.of_parameters(plan.parameters)


def metric_srid(conn: sa.Connection, territory_id: int) -> int:
    """EPSG code of the metric CRS for a territory (GK3 zone in China, UTM elsewhere)."""
    lon, lat = territories.centre(conn, territory_id)
    return int(metric_crs_for(lon, lat).to_epsg())


# -- drafts --------------------------------------------------------------------------------------
def new_draft(engine: sa.Engine, territory: str, *, source: int | str = "published", actor: str) -> tuple[int, int]:
    """A new draft copied from the published plan (``source="published"``) or from plan ``source``;
    its dedicated grids without a name are named (:func:`gridmap.services.edits.name_grids`)."""
    with engine.begin() as conn:
        territory_id = territories.id_of(conn, territory)
        if source == "published":
            source_id = plans.published_id(conn, territory_id)
            if source_id is None:
                raise PlanStateError(f"territory {territory} has no published plan to copy; "
                                     "partition or merge it to get a first draft",
                                     f"辖区 {territory} 没有可复制的已发布方案；请先划分或合并得到第一个草稿")
        else:
            source_id = int(source)
            if plans.get(conn, source_id).territory_id != territory_id:
                raise EditError(f"plan {source_id} is not a plan of territory {territory}",
                                f"方案 {source_id} 不是辖区 {territory} 的方案")
        plan_id, version = plans.copy(conn, source_id, author=actor, origin="copy")
        # a plan made before dedicated grids were named: its draft names them (names given are kept)
        edits.name_grids(conn, plan_id, assignment.unnamed_dedicated(conn, plan_id))
        audit.record(conn, actor=actor, action="plan.copy", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, "copied_from": source_id})
    return plan_id, version


# -- edits ---------------------------------------------------------------------------------------
class OutOfScope(Forbidden):
    """An edit reaches outside the territories the actor may plan."""


def apply_edits(engine: sa.Engine, plan_id: int, operations: list, *, version: int | None, actor: str,
                dry_run: bool = False, with_geometry: bool = False, scope: list[str] | None = None) -> EditResult:
    """Apply ``operations`` to a draft in one transaction (all or nothing).

    ``operations`` are the typed operations of :mod:`gridmap.services.edits` (plain dicts are
    parsed into them first). ``version`` is the draft version the caller saw; a different current
    version raises :class:`VersionConflict`. With ``dry_run`` everything is computed and rolled
    back: the planner uses it to preview statistics before saving. ``with_geometry`` adds the
    touched grids' new shapes (a FeatureCollection) to the result. ``scope``: territory codes the
    actor may change (a district planner's part of a city plan); an edit touching a grid outside
    them raises :class:`OutOfScope` and changes nothing. None: the whole plan."""
    started = time.perf_counter()
    if not operations:
        raise EditError("no operations given", "没有给出任何修改操作")
    if not all(isinstance(op, BaseModel) for op in operations):
        operations = edits.parse(list(operations))
    logged = edits.as_json(operations)
    with engine.connect() as conn:
        with conn.begin() as tx:
            plan = plans.lock_draft(conn, plan_id, version)
            srid = metric_srid(conn, plan.territory_id)
            grids_before = assignment.snapshot(conn, plan_id)
            named_units = sorted({int(u) for op in operations for u in (getattr(op, "units", None) or [])}
                                 | {int(op.unit) for op in operations if getattr(op, "unit", None) is not None})
            units_before = assignment.unit_grids(conn, plan_id, named_units) if named_units else {}
            lineages = microgrid_store.lineages(conn, plan_id)  # of the grids with micro-grids
            every_lineage = assignment.lineages(conn, plan_id)  # of every grid: which ones an edit reshapes
            edit = edits.EditContext(conn, plan, actor=actor)
            for number, op in enumerate(operations, 1):
                try:
                    op.apply(edit)
                except Refusal as exc:
                    zh_name = edits.OPERATION_ZH.get(op.op, op.op)
                    raise EditError(f"operation {number} ({op.op}): {exc.en}",
                                    f"第 {number} 项操作（{zh_name}）：{exc.zh}") from exc
            if scope is not None:
                _check_scope(conn, edit.touched, scope)
            # micro-grids tile their grid: those of grids whose units changed go, and the grids the
            # edit touched are divided again; a grid only renamed or given a worker keeps its own
            taken = microgrid_service.take_down(
                conn, plan_id, microgrid_store.changed_grids(conn, plan_id, edit.touched, lineages))
            removed = assignment.drop_empty_grids(conn, plan_id, edit.touched)
            edits.name_grids(conn, plan_id, edit.touched)  # a dedicated grid: after the institution it holds now
            stats = assignment.refresh_grids(conn, plan_id, edit.touched, srid, reshaped=edit.reshaped)
            reshaped = set(microgrid_store.changed_grids(conn, plan_id, edit.touched, every_lineage)) | (
                edit.touched - set(every_lineage))  # units changed, or new
            micro = microgrid_service.redivide(conn, plan, taken, reshaped, dry_run=dry_run)
            lo, hi = profile_of(plan).band
            summary = assignment.summary(conn, plan_id, lo, hi)
            new_units = features.units_feature_collection(conn, plan_id, unit_ids=edit.cut_units) if edit.cut_units else None
            revisions = (features.units_feature_collection(conn, plan_id, unit_ids=list(edit.revised_units.values()))
                         if edit.revised_units else None)
            codes = sorted({s["code"] for s in stats} | set(removed))
            shapes = (features.grids_feature_collection(conn, plan_id, [s["code"] for s in stats])
                      if with_geometry else None)
            if dry_run:
                new_version = plan.lock_version
                tx.rollback()
            else:
                new_version = plans.record_edit(conn, plan_id, actor=actor, operations=logged, grids=codes)
                grids_after = assignment.snapshot(conn, plan_id, codes)
                audit.record(conn, actor=actor, action="plan.edit", table="plans", row_key=str(plan_id),
                             before={"version": plan.lock_version, "grids": {c: grids_before.get(c) for c in codes},
                                     "units": units_before},
                             after={"version": new_version, "operations": logged,
                                    "microgrids": asdict(micro) if micro else None,
                                    "grids": {c: grids_after.get(c) for c in codes},
                                    "units": assignment.unit_grids(conn, plan_id, named_units) if named_units else {}})
    return EditResult(plan_id, new_version, dry_run, stats, removed, [c for c in edit.created if c not in removed],
                      edit.moved, new_units, summary, round((time.perf_counter() - started) * 1000, 2), shapes,
                      edit.revised_units, revisions, _micro_outcome(micro))


def _micro_outcome(micro: microgrid_service.Redivision | None) -> dict | None:
    """An edit's micro-grid outcome as the API and the command line give it."""
    if micro is None:
        return None
    en, zh = micro.message()
    return {**asdict(micro), "message": en, "message_zh": zh}


def _check_scope(conn: sa.Connection, grid_ids: set[int], scope: list[str]) -> None:
    allowed = territories.community_ids_under(conn, scope)
    rows = assignment.grid_communities(conn, grid_ids)
    outside = sorted(code for code, community in rows if community not in allowed)
    if outside:
        raise OutOfScope(f"grid(s) {', '.join(outside[:10])} lie outside your planning area "
                         f"({', '.join(scope)}); nothing was changed",
                         f"网格 {'、'.join(outside[:10])} 不在您的规划范围（{'、'.join(scope)}）内；未做任何修改")


@dataclass(frozen=True)
class UnitsDocument:
    """A plan's units as GeoJSON (UTF-8 bytes), and the tag that names exactly these bytes (an
    HTTP ETag)."""

    tag: str
    data: bytes
    fresh: bool = False  # written just now: not yet in the shared cache (:func:`share_units_document`)


class _DocumentCache:
    """The last few documents (UTF-8 bytes), up to ``max_bytes`` in all, the least recently used
    going first (one document larger than that is still kept, alone)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: dict[str, bytes] = {}
        self.size = 0
        self.lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        with self.lock:
            data = self.entries.pop(tag, None)
            if data is not None:
                self.entries[tag] = data  # most recently used last
            return data

    def put(self, tag: str, data: bytes) -> None:
        with self.lock:
            self.size -= len(self.entries.pop(tag, b""))
            self.entries[tag] = data
            self.size += len(data)
            while self.size > self.max_bytes and len(self.entries) > 1:
                self.size -= len(self.entries.pop(next(iter(self.entries))))


_UNITS_CACHE = _DocumentCache(max_bytes=128_000_000)
SIMPLIFY_STEP_M = 0.01
"""Simplification is asked in steps of a centimetre: one document per step, not per float."""


def simplify_step(simplify_m: float) -> float:
    """``simplify_m`` rounded to :data:`SIMPLIFY_STEP_M` (what the query and the tag both use)."""
    return round(round(simplify_m / SIMPLIFY_STEP_M) * SIMPLIFY_STEP_M, 2)


def plan_tag(conn: sa.Connection, plan: Plan, what: str) -> str:
    """A version tag of one of a plan's documents (``what``: grids, report ...): the plan (its id,
    the instant it was made, and the transaction that last wrote its row: every saved edit bumps
    the row's edit version, and a plan put back by ``gridmap db restore`` is a new row, so its old
    edit versions never name another picture), its state and edit version. Served as the ETag,
    so a client that has this version gets 304."""
    written = plans.row_stamp(conn, plan.id)
    made = int(plan.created_at.timestamp() * 1_000_000)
    return f"{what}-{plan.id}-{made}-{written}-{plan.status}-{plan.lock_version}"


def units_tag(conn: sa.Connection, plan: Plan, simplify_m: float, decimals: int) -> str:
    """What a plan's units document depends on: the plan's version (:func:`plan_tag`) and the
    drawing parameters."""
    return f"{plan_tag(conn, plan, 'units')}-{simplify_step(simplify_m):.2f}-{decimals}"


def units_document(conn: sa.Connection, plan: Plan, *, simplify_m: float = 0.0, decimals: int = 7,
                   tag: str | None = None, shared: SharedCache | None = None) -> UnitsDocument:
    """A plan's units with their grid (GeoJSON, UTF-8), for the planner: written by PostgreSQL
    and kept until the plan's row changes (a bounded in-process cache, and ``shared``, the cache
    every server process reads: Redis or PostgreSQL), so the second planner to open a plan, a
    reload, or another server process does not wait for it again (Reykjavík's 7,373 units: 0.2–0.3 s
    to write). ``simplify_m`` is taken in centimetre steps (:func:`simplify_step`); ``tag``: the
    :func:`units_tag` the caller has already read. A document written here comes back ``fresh``:
    the caller hands it to :func:`share_units_document` once it has answered (putting 6 MB into
    PostgreSQL takes 0.14–0.17 s, which the first planner to open a plan need not wait for)."""
    tag = tag or units_tag(conn, plan, simplify_m, decimals)
    data = _UNITS_CACHE.get(tag)
    if data is None and shared is not None:
        data = shared.get(tag)
        if data is not None:
            _UNITS_CACHE.put(tag, data)
    if data is None:
        data = features.units_feature_collection(conn, plan.id, simplify_m=simplify_step(simplify_m),
                                                 decimals=decimals, as_text=True).encode()
        _UNITS_CACHE.put(tag, data)
        return UnitsDocument(tag, data, fresh=True)
    return UnitsDocument(tag, data)


def share_units_document(shared: SharedCache, document: UnitsDocument, territory: str) -> None:
    """Keep a freshly written units document where every server process reads it."""
    shared.put(document.tag, document.data, kind="units_document", territory=territory)


# -- validation ----------------------------------------------------------------------------------
def validate(engine: sa.Engine, plan_id: int) -> dict:
    """Check a plan against the rules: coverage (exact: every unit edge matched by its neighbour,
    no gap or overlap however small), contiguity (one polygon per grid, the same count as the
    plan summary), the household band, compounds kept whole, grids inside one community. Errors
    break a rule; warnings are allowed but flagged."""
    with engine.connect() as conn:
        plan = plans.get(conn, plan_id)
        profile = profile_of(plan)
        lo, hi = profile.band
        units = frames.plan_units(conn, plan_id)
        communities = frames.communities(conn, plan.territory)
        grids = frames.plan_grids(conn, plan_id)
    bounds = dict(zip(grids["grid_code"], np.round(grids.geometry.bounds.to_numpy(), 7).tolist()))
    community_bounds = dict(zip(communities["code"], np.round(communities.geometry.bounds.to_numpy(), 7).tolist()))
    problems: list[Problem] = []
    zh = {"gap": "之间或与社区边界之间有缝隙", "overlap": "边界不完全重合（重叠或错位）", "outside": "超出社区边界",
          "unknown_community": "所属社区不存在"}
    for row in coverage_problems(units, communities, id_column="db_id").itertuples():
        listed = ", ".join(map(str, row.units[:10]))
        box = (units[units["db_id"].isin(row.units)].total_bounds.round(7).tolist() if row.units
               else community_bounds.get(row.community_code))
        problems.append(Problem(
            "coverage", "error", f"社区 {row.community_code} 的单元{zh.get(row.problem, row.problem)}"
            f"（面积占比 {row.relative_area:.2e}{'；单元 ' + listed if listed else ''}）",
            f"units of community {row.community_code}: {row.problem} ({row.relative_area:.2e} of its area"
            f"{'; units ' + listed if listed else ''})", community_code=row.community_code, bbox=box,
            units=[int(u) for u in row.units]))
    for row in grids[grids["parts"] > 1].itertuples():
        problems.append(Problem("not_contiguous", "warning", f"网格 {row.grid_code} 不连续：由 {row.parts} 块互不相连的部分组成",
                                f"grid {row.grid_code} is not contiguous: it is made of {row.parts} separate pieces",
                                grid_code=row.grid_code, bbox=bounds.get(row.grid_code)))
    for row in grids[grids["kind"] == COMPREHENSIVE].itertuples():
        if row.households < lo:
            problems.append(Problem("below_min", "warning", f"网格 {row.grid_code} 仅 {row.households} 户，低于 {lo} 户",
                                    f"grid {row.grid_code} has {row.households} households, below {lo}",
                                    grid_code=row.grid_code, community_code=row.community_code,
                                    bbox=bounds.get(row.grid_code)))
        elif row.households > hi:
            problems.append(Problem("above_max", "warning", f"网格 {row.grid_code} 有 {row.households} 户，超过 {hi} 户",
                                    f"grid {row.grid_code} has {row.households} households, above {hi}",
                                    grid_code=row.grid_code, community_code=row.community_code,
                                    bbox=bounds.get(row.grid_code)))
    for row in split_compounds(units, profile.units.compound_max_households).itertuples():
        ids = units.loc[(units["community_code"] == row.community_code) & (units["compound_id"] == row.compound_id),
                        "db_id"].astype(int).tolist()
        box = units[units["db_id"].isin(ids)].total_bounds.round(7).tolist()
        problems.append(Problem("compound_split", "error", f"小区 {row.compound_id} 被分到 {row.grids} 个网格",
                                f"compound {row.compound_id} is split across {row.grids} grids",
                                community_code=row.community_code, bbox=box, units=ids))
    errors = sum(p.severity == "error" for p in problems)
    return {"plan_id": plan_id, "valid": errors == 0, "errors": errors, "warnings": len(problems) - errors,
            "problems": [asdict(p) for p in problems]}


# -- the report -----------------------------------------------------------------------------------
def report(engine: sa.Engine, plan_id: int) -> dict:
    """A plan's report (summary, flags with their reasons in both languages, proofs, histogram),
    computed from its assignment for any plan and kept with it until the plan is edited again.
    A merge plan keeps its merge sections beside it."""
    with engine.connect() as conn:
        seen = report_in(conn, plan_id)
    keep_report(engine, seen)
    return seen.report


@dataclass(frozen=True)
class ReportSeen:
    """A plan's report as one connection saw the plan: at edit ``version``; ``kept``: it was the
    report kept with the plan (else computed, and not yet kept)."""

    report: dict
    plan_id: int
    version: int
    kept: bool


def report_in(conn: sa.Connection, plan_id: int) -> ReportSeen:
    """The plan's report as ``conn`` sees the plan (an export's snapshot: its flags describe the
    grids read with them, whatever was edited since), computed where none is kept
    (:func:`keep_report` keeps it afterwards, outside the snapshot)."""
    from gridmap.geo.graph import build_graph
    from gridmap.geo.report import plan_report

    plan = plans.get(conn, plan_id)
    stored = plans.stored_report(conn, plan_id)
    if plan.report_version == plan.lock_version and "summary" in stored and "histogram" in stored:
        return ReportSeen(stored, plan_id, plan.lock_version, True)
    units = (frames.plan_units(conn, plan_id).rename(columns={"unit_kind": "kind"})
             .sort_values(["community_code", "unit_id"]).reset_index(drop=True))  # the partition's order
    grids = frames.plan_grids(conn, plan_id)
    profile = profile_of(plan)
    computed = plan_report(units, grids, build_graph(units), *profile.band)
    computed["summary"]["seed"] = (plan.parameters or {}).get("seed")
    computed["profile"] = profile.describe()
    return ReportSeen({**stored, **computed}, plan_id, plan.lock_version, False)


def keep_report(engine: sa.Engine, seen: ReportSeen) -> bool:
    """Keep a computed report with its plan, unless the plan was edited since it was seen (then
    the next reader computes it again); whether it was stored."""
    if seen.kept:
        return False
    with engine.begin() as conn:
        return plans.store_report(conn, seen.plan_id, seen.report, seen.version)


# -- diff, publish, history ----------------------------------------------------------------------
COMPARED_FIGURES = ("grids", "comprehensive", "dedicated", "in_band", "in_band_share", "households_min",
                    "households_median", "households_max", "mean_compactness", "not_contiguous", "units")
"""The figures of each plan a comparison shows side by side (from each plan's report summary)."""


def diff(engine: sa.Engine, plan_id: int, against: int | None = None) -> dict:
    """What changed between plan ``against`` (default: the territory's published plan) and this one:
    grids added, removed and changed (with their shapes), the units moved, the notes new in this
    plan, and the figures of both plans side by side. Plans of different territories are not
    compared (their units differ)."""
    with engine.connect() as conn:
        plan = plans.get(conn, plan_id)
        base = against if against is not None else plans.published_id(conn, plan.territory_id)
        if base is None:
            raise PlanStateError(f"territory {plan.territory} has no published plan to compare with",
                                 f"辖区 {plan.territory} 没有可供对比的已发布方案")
        other = plans.get(conn, base)
        if other.territory_id != plan.territory_id:
            raise Invalid(f"plan {base} is of territory {other.territory}, plan {plan_id} of {plan.territory}: "
                          "only plans of one territory can be compared",
                          f"方案 {base} 属于辖区 {other.territory}，方案 {plan_id} 属于 {plan.territory}：只能对比同一辖区的方案")
        moves = assignment.unit_moves(conn, plan_id, base)
        now = assignment.grid_codes(conn, plan_id)
        before = assignment.grid_codes(conn, base)
        touched = {m["before"] for m in moves if m["before"]} | {m["after"] for m in moves if m["after"]}
        changes = {c: "added" for c in now - before}
        changes |= {c: "removed" for c in before - now}
        changes |= {c: "changed" for c in (touched & now & before)}
        shapes = assignment.grids_with_change(conn, plan_id, base, changes)
        new_notes = notes_store.new_since(conn, plan_id, base)
    figures = {}
    for which, chosen in (("plan", plan), ("against", other)):
        summary = report(engine, chosen.id)["summary"]
        figures[which] = {"id": chosen.id, "version": chosen.version, "status": chosen.status,
                          **{k: summary.get(k) for k in COMPARED_FIGURES}}
    return {"plan_id": plan_id, "against": base, "notes": new_notes, "figures": figures,
            "added": sorted(c for c, k in changes.items() if k == "added"),
            "removed": sorted(c for c, k in changes.items() if k == "removed"),
            "changed": sorted(c for c, k in changes.items() if k == "changed"),
            "units_moved": sum(1 for m in moves if m["before"] and m["after"]), "moves": moves[:2000],
            "features": shapes}


def publish(engine: sa.Engine, plan_id: int, *, version: int | None, actor: str) -> dict:
    """Publish a draft atomically; the previous published plan becomes history (valid-to now).

    In the same transaction, incidents follow the new plan: those in grids whose units changed
    are routed again (each keeps the grid it was reported in as history; see
    ``services.incidents.follow_plan``). The answer says how many were re-routed."""
    with engine.begin() as conn:
        previous = plans.publish(conn, plan_id, version)
        followed = incident_service.follow_plan(conn, plan_id, previous)
        audit.record(conn, actor=actor, action="plan.publish", table="plans", row_key=str(plan_id),
                     before={"published": previous}, after={"published": plan_id, "incidents": followed})
        row = plans.brief(conn, plan_id)
    return {**row, "previous": previous, "incidents": followed}


def revert(engine: sa.Engine, plan_id: int, *, actor: str, publish_now: bool = False) -> dict:
    """Bring back an earlier plan: a new draft copied from it, published at once if asked."""
    with engine.begin() as conn:
        source = plans.get(conn, plan_id)
        if source.status == "draft":
            raise PlanStateError(f"plan {plan_id} is a draft; revert brings back a published or history plan",
                                 f"方案 {plan_id} 是草稿；恢复只针对已发布方案或历史方案")
        new_id, version = plans.copy(conn, plan_id, author=actor, origin="revert")
        audit.record(conn, actor=actor, action="plan.revert", table="plans", row_key=str(new_id),
                     after={"reverted_to": plan_id, "version": version})
    result = {"plan_id": new_id, "version": version, "reverted_to": plan_id, "published": False}
    if publish_now:
        publish(engine, new_id, version=None, actor=actor)
        result["published"] = True
    return result


def delete_draft(engine: sa.Engine, plan_id: int, *, actor: str) -> dict:
    """Delete a draft in one transaction: its grids, assignment, edit log and merge results, and
    the units made for it alone (cut pieces and revisions, and units of a retired generation,
    that no other plan uses); audited. Published and history plans are the record and are
    refused (:class:`PlanStateError`). An edit saved at the same moment either lands before the
    deletion (and goes with the draft) or finds no draft: never half a plan."""
    from gridmap.store import units as unit_store

    with engine.begin() as conn:
        plan = plans.lock_for_delete(conn, plan_id)
        held = plans.contents(conn, plan_id)
        reachable = unit_store.reachable_from_plan(conn, plan_id)
        plans.delete(conn, plan_id)
        units_deleted = unit_store.collect_unused(conn, reachable)
        audit.record(conn, actor=actor, action="plan.delete", table="plans", row_key=str(plan_id),
                     before={"territory": plan.territory, "version": plan.version, "status": plan.status,
                             "origin": plan.origin, "author": plan.author, "edit_version": plan.lock_version, **held},
                     after={"deleted": True, "units_deleted": units_deleted})
    return {"plan_id": plan_id, "territory": plan.territory, "version": plan.version, **held,
            "units_deleted": units_deleted}


def history(engine: sa.Engine, territory: str) -> list[dict]:
    """Every plan of a territory with its validity period, newest first."""
    with engine.connect() as conn:
        return plans.history(conn, territory)


def plan_state(engine: sa.Engine, plan_id: int) -> dict:
    """A plan's version, band and counts (what the planner shows before the first edit)."""
    with engine.connect() as conn:
        plan = plans.get(conn, plan_id)
        lo, hi = profile_of(plan).band
        return {"plan_id": plan_id, "territory": plan.territory, "status": plan.status,
                "version": plan.lock_version, "summary": assignment.summary(conn, plan_id, lo, hi)}


def grid_stats(engine: sa.Engine, plan_id: int) -> list[dict]:
    with engine.connect() as conn:
        return assignment.grid_stats(conn, plan_id)


__all__ = ["report", "OutOfScope", "EditResult", "Problem", "EditError", "PlanStateError", "VersionConflict", "new_draft", "apply_edits",
           "units_document", "share_units_document", "units_tag", "plan_tag", "UnitsDocument", "validate", "diff", "publish", "revert", "delete_draft", "history", "plan_state",
           "grid_stats"]
