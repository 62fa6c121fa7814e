"""The plan lifecycle: drafts, edits, validation, diff, publish, history and revert.

Shells (API, CLI, notebook) call these; each write is one transaction, and an edit returns the
statistics of the grids it touched plus the plan's counts, computed incrementally.

Edit operations are plain dicts (the API validates their shape first):

* ``{"op": "assign", "units": [ids], "grid": code}`` - move units into a grid (``move`` is an alias);
  a code the plan does not have yet creates that grid.
* ``{"op": "merge", "grids": [a, b, ...], "into": a}`` - all units of the others into ``into``.
* ``{"op": "split", "grid": code, "units": [ids], "new_code": optional}`` - those units into a new grid.
* ``{"op": "cut", "unit": id, "line": GeoJSON LineString}`` - cut a unit into new units.
* ``{"op": "set", "grid": code, "name"/"worker"/"kind": ...}`` - a grid's attributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import shape

from gridmap.geo.crs import metric_crs_for
from gridmap.geo.cut import CutError, cut_unit, share_households
from gridmap.services import incidents as incident_service
from gridmap.geo.quality import coverage_problems, split_compounds
from gridmap.store import audit, editing, plans
from gridmap.store.editing import EditError, PlanStateError, VersionConflict
from gridmap.store.territories import ewkb_hex

OPERATIONS = ("assign", "move", "merge", "split", "cut", "set")


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


def band_of(plan: editing.PlanRow) -> tuple[int, int]:
    return band_of_parameters(plan.parameters)


def band_of_parameters(parameters: dict | None) -> tuple[int, int]:
    """The household band a plan was made with (its stored parameters)."""
    p = parameters or {}
    return int(p.get("min_households", 300)), int(p.get("max_households", 500))


def metric_srid(conn: sa.Connection, territory_id: int) -> int:
    """EPSG code of the metric CRS for a territory (GK3 zone in China, UTM elsewhere)."""
    lon, lat = editing.territory_centre(conn, territory_id)
    return int(metric_crs_for(lon, lat).to_epsg())


# -- drafts --------------------------------------------------------------------------------------
def new_draft(engine: sa.Engine, territory: str, *, source: int | str = "published", actor: str) -> tuple[int, int]:
    """A new draft copied from the published plan (``source="published"``) or from plan ``source``."""
    with engine.begin() as conn:
        territory_id = editing.territory_id(conn, territory)
        if territory_id is None:
            raise editing.NotFound(f"no territory with code {territory!r}", f"没有编码为 {territory} 的辖区")
        if source == "published":
            source_id = editing.published_plan_id(conn, territory_id)
            if source_id is None:
                raise PlanStateError(f"territory {territory} has no published plan to copy; "
                                     "partition or merge it to get a first draft",
                                     f"辖区 {territory} 没有可复制的已发布方案；请先划分或合并得到第一个草稿")
        else:
            source_id = int(source)
            if editing.plan_row(conn, source_id).territory_id != territory_id:
                raise EditError(f"plan {source_id} is not a plan of territory {territory}",
                                f"方案 {source_id} 不是辖区 {territory} 的方案")
        plan_id, version = editing.copy_plan(conn, source_id, author=actor, origin="copy")
        audit.record(conn, actor=actor, action="plan.copy", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, "copied_from": source_id})
    return plan_id, version


# -- edits ---------------------------------------------------------------------------------------
def _units(op: dict) -> list[int]:
    units = op.get("units")
    if not isinstance(units, list) or not units or not all(isinstance(u, int) for u in units):
        raise EditError("'units' must be a non-empty list of unit ids", "'units' 须为非空的单元编号列表")
    return units


def _grid(conn: sa.Connection, plan_id: int, code: Any) -> sa.Row:
    if not isinstance(code, str):
        raise EditError("a grid is named by its code (a string)", "网格须以其编码（字符串）指定")
    grid = editing.grid_by_code(conn, plan_id, code)
    if grid is None:
        raise EditError(f"plan {plan_id} has no grid {code}", f"方案 {plan_id} 中没有网格 {code}")
    return grid


CUT_REFUSALS_ZH = {
    "a cut needs a line (LineString)": "切分需要一条线（LineString）",
    "the line does not cross the unit": "这条线没有穿过该单元",
    "the line does not cut the unit in two: draw it across the unit from edge to edge":
        "这条线没有把单元分成两块：请从单元一侧边界画到另一侧边界",
}


def _cut(conn: sa.Connection, plan: editing.PlanRow, op: dict) -> tuple[set[int], list[int], dict[int, int]]:
    """Cut a unit of the draft: its pieces replace it, and the neighbours whose shared edge the
    line crosses are replaced by revisions with the crossing vertex, in this plan only (so the
    coverage stays exact). Returns (touched grids, new unit ids, {old neighbour id: revision id})."""
    unit = editing.unit_for_cut(conn, plan.id, int(op.get("unit", -1)))
    try:
        line = shape(op.get("line") or {})
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise EditError(f"'line' is not a GeoJSON LineString: {exc}", f"'line' 不是 GeoJSON LineString：{exc}") from exc
    polygon = shapely.from_wkb(bytes.fromhex(unit.geom_hex))
    neighbours = editing.neighbours_for_cut(conn, plan.id, unit.id)
    try:
        cut = cut_unit(polygon, line, [shapely.from_wkb(bytes.fromhex(n.geom_hex)) for n in neighbours])
    except CutError as exc:
        raise EditError(f"unit {unit.id}: {exc}", f"单元 {unit.id}：{CUT_REFUSALS_ZH.get(str(exc), str(exc))}") from exc
    pieces = cut.pieces
    frame = gpd.GeoDataFrame(geometry=pieces, crs=4490)
    metric = frame.to_crs(metric_crs_for(*polygon.centroid.coords[0]))
    area = metric.area.to_numpy()
    area = area * (unit.area_m2 / area.sum()) if area.sum() > 0 else area
    points, households = _buildings_in(conn, plan.territory, polygon)
    shares = share_households(pieces, int(unit.households), building_points=points, building_households=households)
    new_ids = editing.replace_unit(conn, plan.id, unit.id, [
        {"geom_hex": g, "households": h, "area_m2": a} for g, h, a in zip(ewkb_hex(np.array(pieces)), shares, area)])
    revised = {neighbours[i].id: hex_ for i, hex_ in zip(cut.revised, ewkb_hex(np.array(list(cut.revised.values()),
                                                                                        dtype=object)))}
    replaced = editing.revise_units(conn, plan.id, revised) if revised else {}
    touched = {unit.grid_id} | {n.grid_id for n in neighbours if n.id in replaced}
    if len(touched) > 1:
        editing.new_lineage(conn, touched)
    return touched, new_ids, replaced


def _buildings_in(conn: sa.Connection, territory: str, polygon) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Representative points and households of the buildings inside a unit (None if unknown)."""
    found = plans.find_layer(conn, territory, ("buildings",))
    if not found:
        return None, None
    buildings = plans.layer_in_area(conn, found[0], found[1], ewkb_hex(np.array([polygon]))[0])
    if buildings.empty or "households" not in buildings:
        return None, None
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
    inside = shapely.contains(polygon, points)
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy()
    return points[inside], hh[inside]


def apply_edits(engine: sa.Engine, plan_id: int, operations: list[dict], *, version: int | None, actor: str,
                dry_run: bool = False, with_geometry: bool = False, scope: list[str] | None = None) -> EditResult:
    """Apply ``operations`` to a draft in one transaction (all or nothing).

    ``version`` is the draft version the caller saw; a different current version raises
    :class:`VersionConflict`. With ``dry_run`` everything is computed and rolled back: the planner
    uses it to preview statistics before saving. ``with_geometry`` adds the touched grids' new
    shapes (a FeatureCollection) to the result. ``scope``: territory codes the actor may change
    (a district planner's part of a city plan); an edit touching a grid outside them raises
    :class:`OutOfScope` and changes nothing. None: the whole plan."""
    import time

    started = time.perf_counter()
    if not operations:
        raise EditError("no operations given", "没有给出任何修改操作")
    with engine.connect() as conn:
        with conn.begin() as tx:
            plan = editing.lock_draft(conn, plan_id, version)
            srid = metric_srid(conn, plan.territory_id)
            grids_before = editing.grid_snapshot(conn, plan_id)
            named_units = sorted({int(u) for op in operations for u in (op.get("units") or [])}
                                 | {int(op["unit"]) for op in operations if op.get("unit") is not None})
            units_before = editing.unit_grids(conn, plan_id, named_units) if named_units else {}
            touched: set[int] = set()
            created: list[str] = []
            moved: dict[int, str] = {}
            cut_units: list[int] = []
            revised_units: dict[int, int] = {}
            for number, op in enumerate(operations, 1):
                try:
                    _apply_one(conn, plan, op, touched, created, moved, cut_units, revised_units)
                except EditError as exc:
                    name = op.get("op")
                    zh = f"第 {number} 项操作（{editing.OPERATION_ZH.get(name, name)}）：{editing.texts(exc)['zh']}"
                    raise EditError(f"operation {number} ({name}): {exc}", zh) from exc
            if scope is not None:
                _check_scope(conn, touched, scope)
            removed = editing.drop_empty_grids(conn, plan_id, touched)
            stats = editing.refresh_grids(conn, plan_id, touched, srid)
            lo, hi = band_of(plan)
            summary = editing.plan_summary(conn, plan_id, lo, hi)
            new_units = _unit_features(conn, plan_id, cut_units) if cut_units else None
            revisions = _unit_features(conn, plan_id, list(revised_units.values())) if revised_units else None
            codes = sorted({s["code"] for s in stats} | set(removed))
            shapes = plans.grids_feature_collection(conn, plan_id, [s["code"] for s in stats]) if with_geometry else None
            if dry_run:
                new_version = plan.lock_version
                tx.rollback()
            else:
                new_version = editing.record_edit(conn, plan_id, actor=actor, operations=operations, grids=codes)
                grids_after = editing.grid_snapshot(conn, plan_id, codes)
                audit.record(conn, actor=actor, action="plan.edit", table="plans", row_key=str(plan_id),
                             before={"version": plan.lock_version, "grids": {c: grids_before.get(c) for c in codes},
                                     "units": units_before},
                             after={"version": new_version, "operations": operations,
                                    "grids": {c: grids_after.get(c) for c in codes},
                                    "units": editing.unit_grids(conn, plan_id, named_units) if named_units else {}})
    return EditResult(plan_id, new_version, dry_run, stats, removed, [c for c in created if c not in removed],
                      moved, new_units, summary, round((time.perf_counter() - started) * 1000, 2), shapes,
                      revised_units, revisions)


class OutOfScope(PermissionError):
    """An edit reaches outside the territories the actor may plan (``str(exc)`` English, ``exc.zh``)."""

    def __init__(self, en: str, zh: str):
        super().__init__(en)
        self.en, self.zh = en, zh


def _check_scope(conn: sa.Connection, grid_ids: set[int], scope: list[str]) -> None:
    from gridmap.store.users import community_ids_under

    allowed = community_ids_under(conn, scope)
    rows = editing.grid_communities(conn, grid_ids)
    outside = sorted(code for code, community in rows if community not in allowed)
    if outside:
        raise OutOfScope(f"grid(s) {', '.join(outside[:10])} lie outside your planning area "
                         f"({', '.join(scope)}); nothing was changed",
                         f"网格 {'、'.join(outside[:10])} 不在您的规划范围（{'、'.join(scope)}）内；未做任何修改")


def _apply_one(conn: sa.Connection, plan: editing.PlanRow, op: dict, touched: set[int], created: list[str],
               moved: dict[int, str], cut_units: list[int], revised_units: dict[int, int]) -> None:
    kind = op.get("op") if isinstance(op, dict) else None
    if kind not in OPERATIONS:
        raise EditError(f"unknown operation; use one of {', '.join(OPERATIONS)}",
                        f"未知的操作；可用的操作：{'、'.join(OPERATIONS)}")
    if kind in ("assign", "move"):
        code = op.get("grid")
        if not isinstance(code, str):
            raise EditError("'grid' (the target grid's code) is required", "须给出 'grid'（目标网格的编码）")
        exists = editing.grid_by_code(conn, plan.id, code) is not None
        units = _units(op)
        touched |= editing.assign(conn, plan.id, units, code, kind=op.get("kind"))
        moved.update({u: code for u in units})
        if not exists:
            created.append(code)
    elif kind == "merge":
        codes = op.get("grids")
        if not isinstance(codes, list) or len(set(codes)) < 2:
            raise EditError("'grids' must list at least two different grid codes", "'grids' 须列出至少两个不同的网格编码")
        into = op.get("into", codes[0])
        target = _grid(conn, plan.id, into)
        for code in codes:
            if code == into:
                continue
            other = _grid(conn, plan.id, code)
            if other.community_id != target.community_id:
                raise EditError(f"grids {into} and {code} lie in different communities and cannot be merged",
                                f"网格 {into} 与 {code} 属于不同社区，不能合并")
            units = editing.grid_units(conn, other.id)
            touched |= editing.assign(conn, plan.id, units, into)
            moved.update({u: into for u in units})
    elif kind == "split":
        grid = _grid(conn, plan.id, op.get("grid"))
        units = _units(op)
        members = set(editing.grid_units(conn, grid.id))
        outside = sorted(set(units) - members)
        if outside:
            raise EditError(f"unit(s) {', '.join(map(str, outside[:10]))} are not in grid {grid.code}",
                            f"单元 {'、'.join(map(str, outside[:10]))} 不在网格 {grid.code} 中")
        if set(units) == members:
            raise EditError(f"choose some but not all units of grid {grid.code} to split it in two",
                            f"拆分网格 {grid.code} 时请选出其部分（而非全部）单元")
        code = op.get("new_code") or editing.next_grid_code(conn, plan.id, grid.community_id)
        if editing.grid_by_code(conn, plan.id, code) is not None:
            raise EditError(f"grid code {code} is already used in this plan", f"网格编码 {code} 在本方案中已被使用")
        touched |= editing.assign(conn, plan.id, units, code, kind=grid.kind)
        moved.update({u: code for u in units})
        created.append(code)
    elif kind == "cut":
        grids, new_ids, replaced = _cut(conn, plan, op)
        touched |= grids
        cut_units.extend(new_ids)
        revised_units.update(replaced)
    elif kind == "set":
        grid = _grid(conn, plan.id, op.get("grid"))
        if "kind" in op and op["kind"] not in ("comprehensive", "dedicated"):
            raise EditError("kind must be 'comprehensive' or 'dedicated'",
                            "类型须为 'comprehensive'（综合网格）或 'dedicated'（专属网格）")
        for column in editing.GRID_ATTRIBUTES:
            if column in op:
                editing.set_grid_attribute(conn, grid.id, column, op[column])
        touched.add(grid.id)


def _unit_features(conn: sa.Connection, plan_id: int, unit_ids: list[int]) -> dict:
    return editing.units_feature_collection(conn, plan_id, unit_ids=unit_ids)


units_feature_collection = editing.units_feature_collection


# -- validation ----------------------------------------------------------------------------------
def validate(engine: sa.Engine, plan_id: int) -> dict:
    """Check a plan against the rules: coverage (exact: every unit edge matched by its neighbour,
    no gap or overlap however small), contiguity (one polygon per grid, the same count as the
    plan summary), the household band, compounds kept whole, grids inside one community. Errors
    break a rule; warnings are allowed but flagged."""
    with engine.connect() as conn:
        plan = editing.plan_row(conn, plan_id)
        lo, hi = band_of(plan)
        units = editing.plan_units_frame(conn, plan_id)
        communities = plans.communities_of(conn, plan.territory)
        grids = editing.plan_grids_frame(conn, plan_id)
    bounds = dict(zip(grids["grid_code"], np.round(grids.geometry.bounds.to_numpy(), 7).tolist()))
    community_bounds = dict(zip(communities["code"], np.round(communities.geometry.bounds.to_numpy(), 7).tolist()))
    problems: list[Problem] = []
    zh = {"gap": "之间或与社区边界之间有缝隙", "overlap": "边界不完全重合（重叠或错位）", "outside": "超出社区边界",
          "unknown_community": "所属社区不存在"}
    for row in coverage_problems(units, communities).itertuples():
        listed = ", ".join(map(str, row.units[:10]))
        box = (units[units["unit_id"].isin(row.units)].total_bounds.round(7).tolist() if row.units
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
    for row in grids[grids["kind"] == "comprehensive"].itertuples():
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
    for row in split_compounds(units, hi).itertuples():
        ids = units.loc[(units["community_code"] == row.community_code) & (units["compound_id"] == row.compound_id),
                        "unit_id"].astype(int).tolist()
        box = units[units["unit_id"].isin(ids)].total_bounds.round(7).tolist()
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
    from gridmap.geo.graph import build_graph
    from gridmap.geo.report import plan_report

    with engine.connect() as conn:
        units, grids, plan = plans.report_inputs(conn, plan_id)
    stored = plan["report"] or {}
    if plan["report_version"] == plan["lock_version"] and "summary" in stored and "histogram" in stored:
        return stored
    lo, hi = band_of_parameters(plan["parameters"])
    computed = plan_report(units, grids, build_graph(units), lo, hi)
    computed["summary"]["seed"] = (plan["parameters"] or {}).get("seed")
    result = {**stored, **computed}
    with engine.begin() as conn:
        plans.store_report(conn, plan_id, result, plan["lock_version"])
    return result


# -- diff, publish, history ----------------------------------------------------------------------
def diff(engine: sa.Engine, plan_id: int, against: int | None = None) -> dict:
    """What changed between plan ``against`` (default: the territory's published plan) and this one."""
    with engine.connect() as conn:
        plan = editing.plan_row(conn, plan_id)
        base = against if against is not None else editing.published_plan_id(conn, plan.territory_id)
        if base is None:
            raise PlanStateError(f"territory {plan.territory} has no published plan to compare with",
                                 f"辖区 {plan.territory} 没有可供对比的已发布方案")
        moves = editing.unit_moves(conn, plan_id, base)
        now = editing.grid_codes(conn, plan_id)
        before = editing.grid_codes(conn, base)
        touched = {m["before"] for m in moves if m["before"]} | {m["after"] for m in moves if m["after"]}
        changes = {c: "added" for c in now - before}
        changes |= {c: "removed" for c in before - now}
        changes |= {c: "changed" for c in (touched & now & before)}
        features = editing.grids_with_change(conn, plan_id, base, changes)
    return {"plan_id": plan_id, "against": base,
            "added": sorted(c for c, k in changes.items() if k == "added"),
            "removed": sorted(c for c, k in changes.items() if k == "removed"),
            "changed": sorted(c for c, k in changes.items() if k == "changed"),
            "units_moved": sum(1 for m in moves if m["before"] and m["after"]), "moves": moves[:2000],
            "features": features}


def publish(engine: sa.Engine, plan_id: int, *, version: int | None, actor: str) -> dict:
    """Publish a draft atomically; the previous published plan becomes history (valid-to now).

    In the same transaction, incidents follow the new plan: those in grids whose units changed
    are routed again (each keeps the grid it was reported in as history; see
    ``services.incidents.follow_plan``). The answer says how many were re-routed."""
    with engine.begin() as conn:
        previous = editing.publish(conn, plan_id, version)
        followed = incident_service.follow_plan(conn, plan_id, previous)
        audit.record(conn, actor=actor, action="plan.publish", table="plans", row_key=str(plan_id),
                     before={"published": previous}, after={"published": plan_id, "incidents": followed})
        row = editing.plan_brief(conn, plan_id)
    return {**row, "previous": previous, "incidents": followed}


def revert(engine: sa.Engine, plan_id: int, *, actor: str, publish_now: bool = False) -> dict:
    """Bring back an earlier plan: a new draft copied from it, published at once if asked."""
    with engine.begin() as conn:
        source = editing.plan_row(conn, plan_id)
        if source.status == "draft":
            raise PlanStateError(f"plan {plan_id} is a draft; revert brings back a published or history plan",
                                 f"方案 {plan_id} 是草稿；恢复只针对已发布方案或历史方案")
        new_id, version = editing.copy_plan(conn, plan_id, author=actor, origin="revert")
        audit.record(conn, actor=actor, action="plan.revert", table="plans", row_key=str(new_id),
                     after={"reverted_to": plan_id, "version": version})
    result = {"plan_id": new_id, "version": version, "reverted_to": plan_id, "published": False}
    if publish_now:
        publish(engine, new_id, version=None, actor=actor)
        result["published"] = True
    return result


def history(engine: sa.Engine, territory: str) -> list[dict]:
    """Every plan of a territory with its validity period, newest first."""
    with engine.connect() as conn:
        return editing.history(conn, territory)


def plan_state(engine: sa.Engine, plan_id: int) -> dict:
    """A plan's version, band and counts (what the planner shows before the first edit)."""
    with engine.connect() as conn:
        plan = editing.plan_row(conn, plan_id)
        lo, hi = band_of(plan)
        return {"plan_id": plan_id, "territory": plan.territory, "status": plan.status,
                "version": plan.lock_version, "summary": editing.plan_summary(conn, plan_id, lo, hi)}


def grid_stats(engine: sa.Engine, plan_id: int) -> list[dict]:
    with engine.connect() as conn:
        return editing.grid_stats(conn, plan_id)


__all__ = ["report", "OutOfScope", "EditResult", "Problem", "EditError", "PlanStateError", "VersionConflict", "new_draft", "apply_edits",
           "units_feature_collection", "validate", "diff", "publish", "revert", "history", "plan_state", "grid_stats"]
