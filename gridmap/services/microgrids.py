"""Micro-grids of a plan (``gridmap partition --micro``, ``POST /api/plans/{id}/microgrids``,
``plan.microgrids``): divide a draft's comprehensive grids into micro-grids of the profile's
micro band from the buildings layer, store them as the plan's level below its grids, record
their leaders (楼栋长/单元长).

A re-run on a grid replaces that grid's micro-grids in one transaction, audited, carrying over
the leaders of micro-grids and buildings found again. Only drafts change: the micro-grids of a
published plan or of history are read-only, as its grids are (make a draft: they are copied with
it). An edit that changes a grid's units divides the grids it touched again, in the edit's own
transaction, the leaders carried over (:func:`take_down`, :func:`redivide`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
import sqlalchemy as sa

import geopandas as gpd

from gridmap.distributed import SERIAL_HERE, Placement
from gridmap.errors import Invalid, NotFound
from gridmap.geo import microgrid_edits, stairwells
from gridmap.geo.microgrids import MicroResult, divide
from gridmap.geo.tasks import SERIAL
from gridmap.progress import QUIET, Progress
from gridmap.services import profiles
from gridmap.services.partitioning import input_layer, with_stairwells
from gridmap.store import audit, frames, layers, plans
from gridmap.store import microgrids as store


def dropped_leaders_line(names: list[str | None]) -> tuple[str, str] | None:
    """The micro-grid leaders a new division could not carry over, said in English and Chinese
    (None when there are none): no new micro-grid holds half of their buildings and 单元, or the
    one that does went to a leader with more of theirs there."""
    if not names:
        return None
    en = ", ".join(n or "(no name)" for n in names)
    zh = "、".join(n or "（无姓名）" for n in names)
    count = len(names)
    return (f"{count} micro-grid leader{'s' if count > 1 else ''} not carried over (their buildings are spread over "
            f"several new micro-grids, or the one holding most of them went to another leader): record "
            f"{'them' if count > 1 else 'it'} again: {en}",
            f"{count} 位微网格负责人未能保留（其楼栋已分散到多个新微网格，或多数楼栋所在的微网格已归另一位负责人）："
            f"请重新记录：{zh}")


@dataclass
class MicroSummary:
    plan_id: int
    version: int
    grids: list[str]
    result: MicroResult
    replaced: int
    edit_version: int
    leaders_dropped: list[str | None] = field(default_factory=list)
    """Names (None: a phone only) of the micro-grid leaders of the division replaced that no new
    micro-grid took (:func:`gridmap.store.microgrids.carried_microgrid_leaders`)."""

    def leaders_line(self) -> tuple[str, str] | None:
        """What happened to the micro-grid leaders that could not be carried over (English, Chinese)."""
        return dropped_leaders_line(self.leaders_dropped)

    def __str__(self) -> str:
        s = self.result.report["summary"]
        return (f"plan {self.version} (id {self.plan_id}): {s['microgrids']} micro-grids in {s['grids']} grids from "
                f"{s['buildings']} buildings ({s['split_buildings']} cut by their 单元); {s['in_band']}/"
                f"{s['microgrids']} ({s['in_band_share']:.1%}) in [{s['min_households']}, {s['max_households']}] "
                f"households; {len(self.result.flags)} flags"
                + (f"; {self.replaced} earlier micro-grids replaced" if self.replaced else "")
                + f"\n方案 {self.version}（编号 {self.plan_id}）：{s['grids']} 个网格划出 {s['microgrids']} 个微网格，"
                f"涉及 {s['buildings']} 栋楼（{s['split_buildings']} 栋按单元拆分）；{s['in_band']}/{s['microgrids']} 个"
                f"（{s['in_band_share']:.1%}）在 {s['min_households']}–{s['max_households']} 户之间；"
                f"{len(self.result.flags)} 条标记"
                + (f"；替换此前的 {self.replaced} 个微网格" if self.replaced else "")
                + ("".join(f"\n{line}" for line in self.leaders_line()) if self.leaders_line() else ""))


def divide_plan(engine: sa.Engine, plan_id: int, *, grid: str | None = None, seed: int = 0, actor: str = "cli",
                version: int | None = None, progress: Progress = QUIET,
                placement: Placement = SERIAL_HERE) -> MicroSummary:
    """Divide the comprehensive grids of draft ``plan_id`` (or only ``grid``) into micro-grids and
    store them, replacing those grids' earlier micro-grids (one transaction, audited). The grids
    are divided where ``placement`` says (default: serially, in this process, as a web request
    does; the CLI passes the settings' choice, by the number of buildings: :mod:`gridmap.distributed`).

    ``version``: the draft's edit version the caller saw (the planner's; a conflict when the draft
    is at another). Whether given or not, an edit stored while the grids were being divided (they
    were read before it) is a conflict and nothing is stored: the micro-grids would be of grids
    that are no longer there."""
    placement.check()
    with engine.connect() as conn:
        plan = plans.get(conn, plan_id)
        _draft_only(plan)
        if version is not None and version != plan.lock_version:
            plans.lock_draft(conn, plan_id, version)  # the conflict, with the edits since the caller's version
        seen = plan.lock_version
        profile = profiles.of_parameters(plan.parameters)
        grids = frames.plan_grids(conn, plan_id)
        if grid is not None:
            grids = grids[grids["grid_code"] == grid]
            if grids.empty:
                raise NotFound(f"plan {plan_id} has no grid {grid}", f"方案 {plan_id} 没有网格 {grid}")
            if (grids["kind"] == "dedicated").all():
                raise Invalid(f"grid {grid} is a dedicated grid: micro-grids divide comprehensive grids",
                              f"网格 {grid} 是专属网格：只有综合网格划分微网格")
        grids = grids[grids["kind"] != "dedicated"]
        if grids.empty:
            raise Invalid(f"plan {plan_id} has no comprehensive grids to divide", f"方案 {plan_id} 没有可划分的综合网格")
        with progress.step(f"reading the buildings of {len(grids)} grids", f"读取 {len(grids)} 个网格的楼栋"):
            buildings = _buildings(conn, plan, grids, progress)
    lo, hi = profile.micro_band
    with placement.runner(len(buildings), progress) as runner, \
            progress.step(f"dividing {len(grids)} grids into micro-grids of {lo}-{hi} households",
                          f"将 {len(grids)} 个网格划分为每格 {lo}–{hi} 户的微网格"):
        result = _divide(grids, buildings, profile, seed, runner)
    codes = sorted(grids["grid_code"])
    with progress.step(f"storing {len(result.microgrids)} micro-grids", f"存储 {len(result.microgrids)} 个微网格"), engine.begin() as conn:
        plan = plans.lock_draft(conn, plan_id, seen)
        grid_ids = store.plan_grid_ids(conn, plan_id, codes)
        if set(grid_ids) != set(codes):  # an edit removed a grid meanwhile
            raise plans.PlanStateError(f"plan {plan_id} changed while its micro-grids were made; run again",
                                       f"方案 {plan_id} 在划分微网格期间被修改；请重新运行")
        leaders = store.leaders_of(conn, plan_id, list(grid_ids.values()))
        before = store.rows(conn, plan_id, grid=grid)
        replaced = store.delete_for_grids(conn, plan_id, list(grid_ids.values()))
        written = store.write(conn, plan_id, grid_ids, result.microgrids, result.buildings, leaders)
        version = plans.record_edit(conn, plan_id, actor=actor,
                                    operations=[{"op": "microgrids", "grids": codes if grid else "all", "seed": seed}],
                                    grids=[])
        audit.record(conn, actor=actor, action="plan.microgrids", table="microgrids", row_key=str(plan_id),
                     before={"microgrids": len(before), "codes": [r["microgrid_code"] for r in before][:2000]},
                     after={"grids": codes if grid else "all", "version": version, **result.report["summary"]})
    return MicroSummary(plan_id, plan.version, codes, result, len(replaced), version, written.leaders_dropped)


def _buildings(conn: sa.Connection, plan: plans.Plan, grids, progress: Progress = QUIET) -> gpd.GeoDataFrame:
    """The buildings within reach of ``grids`` (their bounding box), from the buildings layer of
    the plan's territory or its nearest ancestor, with the 单元 its entrances layer gives
    (:func:`gridmap.services.partitioning.with_stairwells`); :class:`Invalid` when there is none."""
    found = layers.find(conn, plan.territory, layers.ROLES["buildings"])
    if found is None:
        raise Invalid(f"territory {plan.territory} (and its ancestors) has no buildings layer: micro-grids are "
                      "made of buildings; import one with `gridmap import ... --kind buildings`",
                      f"辖区 {plan.territory}（及其上级）没有楼栋图层：微网格由楼栋组成；请先用 "
                      "`gridmap import ... --kind buildings` 导入")
    # a little beyond the grids: doors and the buildings they may belong to count as in a whole read
    area = shapely.box(*grids.total_bounds).buffer(stairwells.READ_MARGIN_DEG, join_style="mitre")
    buildings = store.buildings_in_area(conn, found[0], found[1], area)
    return with_stairwells(buildings, input_layer(conn, plan.territory, "entrances", area), progress=progress)


def _divide(grids, buildings: gpd.GeoDataFrame, profile, seed: int, runner=SERIAL) -> MicroResult:
    """The micro-grids of ``grids`` by the plan's profile (its micro band, code scheme and rules)."""
    return divide(grids[["grid_code", "kind", "geometry"]], buildings, band=profile.micro_band,
                  code_scheme=profile.partition.code_scheme, rules=profile.micro_rules(), seed=seed, runner=runner)


@dataclass
class Redivision:
    """What an edit of a plan's grids did to their micro-grids: ``removed``, the codes of those of
    the grids it changed (they no longer tile them); ``grids``, the grids divided again (the
    changed ones, a split's new grid, a grid that took units), and the micro-grids they have now.
    ``dry_run``: a preview, which divides nothing (the save will). ``error`` (English, Chinese)
    when they could not be divided again (no buildings layer any more): then the changed grids
    are left without micro-grids."""

    removed: list[str]
    grids: list[str]
    microgrids: int = 0
    in_band: int = 0
    dry_run: bool = False
    error: tuple[str, str] | None = None
    leaders_dropped: list[str | None] = field(default_factory=list)  # as MicroSummary's

    def message(self) -> tuple[str, str]:
        """One line in English and in Chinese, for the command line and the planner."""
        gone = len(self.removed)
        if self.error:
            return (f"{gone} micro-grids of the changed grids were removed and could not be made again: "
                    f"{self.error[0]}", f"已删除被修改网格的 {gone} 个微网格，未能重新划分：{self.error[1]}")
        if not self.grids:
            return (f"{gone} micro-grids of the changed grids were removed (no comprehensive grid of theirs is left)",
                    f"已删除被修改网格的 {gone} 个微网格（这些网格已不存在或不是综合网格）")
        grids_en, grids_zh = ", ".join(self.grids), "、".join(self.grids)
        if self.dry_run:
            return (f"On saving, the {gone} micro-grids of the changed grids are removed and grids {grids_en} are "
                    "divided into micro-grids again (building and stairwell leaders kept with their buildings, "
                    "micro-grid leaders with most of theirs)",
                    f"保存后，被修改网格的 {gone} 个微网格将删除，网格 {grids_zh} 将重新划分微网格（楼栋长、单元长随其楼栋保留，"
                    "微网格负责人随其多数楼栋保留）")
        dropped = dropped_leaders_line(self.leaders_dropped)
        return (f"Micro-grids made again for grids {grids_en}: {self.microgrids} ({self.in_band} in the band); the "
                f"changed grids had {gone}; building and stairwell leaders kept with their buildings, micro-grid "
                f"leaders with most of theirs" + (f"; {dropped[0]}" if dropped else ""),
                f"网格 {grids_zh} 的微网格已重新划分：{self.microgrids} 个（{self.in_band} 个户数在区间内）；"
                f"被修改的网格原有 {gone} 个；楼栋长、单元长随其楼栋保留，微网格负责人随其多数楼栋保留"
                + (f"；{dropped[1]}" if dropped else ""))


@dataclass
class TakenDown:
    """The micro-grids an edit took down (their codes) and the leaders they had, to carry over."""

    removed: list[str]
    leaders: store.Leaders


def take_down(conn: sa.Connection, plan_id: int, changed: list[int]) -> TakenDown | None:
    """Inside an edit's transaction, before emptied grids go: delete the micro-grids of the grids
    the edit ``changed`` (row ids, :func:`gridmap.store.microgrids.changed_grids`; they no longer
    tile them), keeping their leaders. None when there were none."""
    if not changed:
        return None
    leaders = store.leaders_of(conn, plan_id, changed)
    return TakenDown(store.delete_for_grids(conn, plan_id, changed), leaders)


def redivide(conn: sa.Connection, plan: plans.Plan, taken: TakenDown | None, reshaped: set[int], *,
             dry_run: bool = False) -> Redivision | None:
    """Inside an edit's transaction, after the grids were refreshed: when the edit took micro-grids
    down (:func:`take_down`), the grids whose units it changed (``reshaped``, row ids: those whose
    micro-grids went, a split's new grid, a grid that took units) that still stand, are
    comprehensive and have no micro-grids are divided again from their buildings (seed 0), the
    leaders carried over: 楼栋长 and 单元长 with their building or 单元, a micro-grid's leader to
    the micro-grid holding most of its cells (:func:`gridmap.store.microgrids.write`). A grid the edit only named keeps its micro-grids.
    ``dry_run`` (the planner's preview) says what the save will do and divides nothing."""
    if taken is None:
        return None
    keep = set(store.lineages(conn, plan.id))  # grids that still have micro-grids
    standing = {code for code, grid_id in store.plan_grid_ids(conn, plan.id).items()
                if grid_id in reshaped and grid_id not in keep}
    grids = frames.plan_grids(conn, plan.id)
    grids = grids[grids["grid_code"].isin(standing) & (grids["kind"] != "dedicated")]
    codes = sorted(grids["grid_code"])
    if dry_run or grids.empty:
        return Redivision(taken.removed, codes, dry_run=dry_run)
    try:
        buildings = _buildings(conn, plan, grids)
    except Invalid as exc:
        return Redivision(taken.removed, [], error=(exc.en, exc.zh))
    result = _divide(grids, buildings, profiles.of_parameters(plan.parameters), 0)
    written = store.write(conn, plan.id, store.plan_grid_ids(conn, plan.id, codes), result.microgrids,
                          result.buildings, taken.leaders)
    return Redivision(taken.removed, codes, len(result.microgrids), int(result.report["summary"]["in_band"]),
                      leaders_dropped=written.leaders_dropped)


def set_leader(engine: sa.Engine, plan_id: int, code: str, *, name: str | None, phone: str | None,
               building: str | None = None, part: int | None = None, actor: str = "cli") -> dict:
    """Record a micro-grid's leader (微网格负责人), or a building's (楼栋长) or a 单元's (单元长) in it; drafts
    only, like every change to a plan; audited without the phone number in clear.

    ``name`` and ``phone`` change only what is given: None keeps what is recorded, an empty text
    clears it (a new phone alone keeps the name). The answer says what is recorded now: the name,
    and whether a phone is (``has_phone``; the number itself is not repeated)."""
    if phone is not None and phone.strip() and not all(ch.isdigit() or ch in "+- ()" for ch in phone.strip()):
        raise Invalid(f"phone {phone!r} is not a phone number (digits, +, -, spaces, brackets)",
                      f"电话 {phone!r} 不是电话号码（只能包含数字、+、-、空格、括号）")
    name = None if name is None else name.strip()
    phone = None if phone is None else phone.strip()
    with engine.begin() as conn:
        plan = plans.get(conn, plan_id, lock=True)
        _draft_only(plan)
        done = store.set_leader(conn, plan_id, code, name=name, phone=phone, building=building, part=part)
        audit.record(conn, actor=actor, action="microgrid.leader", table="microgrids", row_key=f"{plan_id}/{code}",
                     after={**done, "phone_changed": phone is not None})
    return done


def move_buildings(engine: sa.Engine, plan_id: int, to_code: str, cells: list[int], *,
                   version: int | None = None, actor: str = "cli", recreate: bool = False) -> dict:
    """Paint building cells (``cells``: their ids, as :func:`gridmap.store.microgrids.cell_collection`
    gives them) into micro-grid ``to_code`` of the same grid: the micro-grids they leave and join
    are stated again (households, buildings, area, compactness, flag; one left empty is removed),
    refused when a micro-grid would cross its grid or fall into pieces
    (:mod:`gridmap.geo.microgrid_edits`). Drafts only; ``version``, when given, must be the
    draft's edit version (a concurrent edit answers a conflict). One transaction, audited.
    Returns the new edit version and the micro-grids as now stored; ``removed_leaders``: the leaders
    recorded for micro-grids the move emptied (removed with them: the planner says so).
    ``recreate``: when the plan has no micro-grid ``to_code`` (a move emptied it and removed it),
    make it again in the grid of ``cells`` (an undo of that move; its leaders are not restored);
    ``restored`` says whether it did."""
    moving = sorted({int(c) for c in cells})
    if not moving:
        raise Invalid("no building cells to move", "没有要移动的楼栋单元格")
    with engine.begin() as conn:
        plan = plans.get(conn, plan_id, lock=True)
        _draft_only(plan)
        plans.lock_draft(conn, plan_id, version)
        band = profiles.of_parameters(plan.parameters).micro_band
        restored = recreate and not store.exists(conn, plan_id, to_code)
        made_in = store.recreate(conn, plan_id, to_code, moving) if restored else None
        if restored and made_in is None:
            raise Invalid(f"micro-grid {to_code} cannot be made again: only one an edit of this plan emptied is, with "
                          "buildings that all lie in one grid whose code it begins with (as many digits as that grid's "
                          "other micro-grids)",
                          f"无法重建微网格 {to_code}：只能重建本方案某次修改移空的微网格，且这些楼栋须同在一个网格内，"
                          "该编码以该网格编码开头、位数与其他微网格相同")
        found = store.cells_for_move(conn, plan_id, to_code, moving)
        moved = microgrid_edits.move_cells(found, moving, to_code, made_in)
        parts_before = microgrid_edits.pieces(found)
        sources = sorted(set(found.loc[found["cell_id"].isin(moving), "microgrid_code"]) - {to_code})
        if not sources:
            return {"plan_id": plan_id, "version": plan.lock_version, "moved": 0, "microgrids": [], "removed": []}
        restated = microgrid_edits.restate(moved, sources + [to_code], band, parts_before)
        gone_leaders = store.leaders_of_microgrids(conn, plan_id, restated.removed)  # they go with their micro-grid
        store.apply_move(conn, plan_id, moving, to_code, restated.microgrids, restated.removed)
        grid = made_in or str(found.loc[found["microgrid_code"] == to_code, "grid_code"].iat[0])
        new_version = plans.record_edit(conn, plan_id, actor=actor, operations=[
            {"op": "microgrid_assign", "to": to_code, "cells": moving, "from": sources,
             **({"recreated": True} if restored else {})}], grids=[])
        audit.record(conn, actor=actor, action="microgrid.assign", table="microgrid_buildings",
                     row_key=f"{plan_id}/{to_code}",
                     before={"cells": moving, "from": sources},
                     after={"to": to_code, "version": new_version, "removed": restated.removed,
                            "removed_leaders": {code: name or None for code, name in gone_leaders.items()}})
        rows = [r for r in store.rows(conn, plan_id, grid=grid) if r["microgrid_code"] in set(sources + [to_code])]
    return {"plan_id": plan_id, "version": new_version, "moved": len(moving), "grid": grid, "microgrids": rows,
            "removed": restated.removed, "restored": restored,
            "removed_leaders": [{"microgrid": code, "leader_name": name} for code, name in sorted(gone_leaders.items())]}


def _draft_only(plan: plans.Plan) -> None:
    if plan.status != "draft":
        status_zh = plans.STATUS_ZH.get(plan.status, plan.status)
        raise plans.PlanStateError(
            f"plan {plan.id} is {plan.status}: its micro-grids are read-only like its grids; make a draft "
            f"(`gridmap plan draft {plan.territory}`: its micro-grids are copied with it) and change that",
            f"方案 {plan.id} 是{status_zh}方案：其微网格与网格一样只读；请先新建草稿（`gridmap plan draft "
            f"{plan.territory}`，微网格随之复制）再修改")


__all__ = ["MicroSummary", "Redivision", "TakenDown", "divide_plan", "take_down", "redivide", "set_leader", "move_buildings"]
