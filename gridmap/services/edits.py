"""Edit operations on a draft plan: each a typed object that knows its own rules and how to apply
itself, parsed once (by the API from the request, by the CLI and the notebook from JSON with
:func:`parse`) and applied by :func:`gridmap.services.planning.apply_edits`.

A grid is a set of units, so every operation changes the assignment of units to grids (the store
persists; :mod:`gridmap.store.assignment`) and none can open a gap or an overlap. The rules live
here, once:

* ``assign`` (alias ``move``): units into a grid; a code the plan lacks creates that grid. A grid
  never crosses a community boundary.
* ``merge``: all units of the other grids into ``into`` (same community).
* ``split``: some (not all) units of a grid into a new grid (the community's next free code).
* ``cut``: a unit cut by a line into pieces (the one edit that changes geometry, in this draft only).
* ``set``: a grid's name, worker or kind, or its lock (``locked``: a locked grid's units stay
  where they are: no unit moves into or out of it and none of its units is cut until it is
  unlocked).
* ``note``: a note on a grid or a unit (why it was drawn so), or ``remove`` one; kept with the
  draft, copied into drafts made from it, listed by the diff.

After the operations, every grid they touched is named again (:func:`name_grids`): a dedicated
grid after the institution it now holds, with its site type (a merge keeps the largest named
site's name, a split names the new grid after its own site, if it has a name); a name set by
``set`` stays.

Every refusal is an :class:`EditError`, in Chinese and English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from shapely.geometry import shape

from gridmap.errors import Invalid
from gridmap.geo.crs import metric_crs_for
from gridmap.geo.cut import CutError, cut_unit, share_households
from gridmap.geo.grid_names import dedicated_grid_names
from gridmap.geo.kinds import COMPREHENSIVE, GridKind
from gridmap.store import assignment, frames, layers, notes, territories
from gridmap.store import units as unit_store
from gridmap.store.plans import Plan
from gridmap.store.sql import ewkb_hex

GRID_CODE = re.compile(r"^[0-9]{1,32}$")
LOCKED_ZH = {"move units into or out of it": "移入或移出单元", "cut its units": "切分其单元"}
OPERATION_ZH = {"assign": "分配", "move": "移动", "merge": "合并", "split": "拆分", "cut": "切分单元", "set": "设置",
                "note": "备注"}


class EditError(Invalid):
    """An edit that cannot be applied as asked (unknown unit, grid in another community ...)."""


@dataclass
class EditContext:
    """What an edit in progress needs and what it has done so far (one per transaction)."""

    conn: sa.Connection
    plan: Plan
    actor: str | None = None                                # who edits (a note's author)
    touched: set[int] = field(default_factory=set)          # grids whose units or attributes changed
    reshaped: set[int] = field(default_factory=set)         # those of them whose units changed (shapes to redo)
    created: list[str] = field(default_factory=list)        # grid codes created
    moved: dict[int, str] = field(default_factory=dict)     # unit id → the grid code it went to
    cut_units: list[int] = field(default_factory=list)      # pieces of cut units
    revised_units: dict[int, int] = field(default_factory=dict)  # a cut's neighbours: old id → revision id

    # -- the rules shared by several operations -------------------------------------------------
    def grid(self, code: str) -> sa.Row:
        found = assignment.grid_by_code(self.conn, self.plan.id, code)
        if found is None:
            raise EditError(f"plan {self.plan.id} has no grid {code}", f"方案 {self.plan.id} 中没有网格 {code}")
        return found

    def units_here(self, unit_rows: list[int]) -> dict[int, tuple[int, str, int]]:
        """unit row id → (grid id, grid code, community id); every unit must be in the plan."""
        found = assignment.units_in_plan(self.conn, self.plan.id, unit_rows)
        missing = [u for u in unit_rows if u not in found]
        if missing:
            listed = missing[:10]
            raise EditError(f"unit(s) {', '.join(map(str, listed))} are not in plan {self.plan.id}",
                            f"单元 {'、'.join(map(str, listed))} 不在方案 {self.plan.id} 中")
        return found

    def new_grid(self, code: str, community_id: int, kind: str) -> int:
        """Create grid ``code`` in a community: digits only, containing the community's code."""
        community = territories.code_of(self.conn, community_id)
        if not GRID_CODE.match(code):
            raise EditError(f"grid code {code!r} must be 1-32 digits", f"网格编码 {code!r} 须为 1–32 位数字")
        if community not in code:
            raise EditError(f"grid code {code} must contain its community's code {community}",
                            f"网格编码 {code} 须包含所属社区的编码 {community}")
        self.created.append(code)
        return assignment.create_grid(self.conn, self.plan.id, code, community_id, kind)

    def next_code(self, community_id: int) -> str:
        """The next free code of a community in the plan: the largest one + 1, same width."""
        codes = assignment.grid_codes(self.conn, self.plan.id, community_id)
        community = territories.code_of(self.conn, community_id)
        if not codes:
            return community + "001"
        width = max(len(c) for c in codes)
        candidate = max(int(c) for c in codes if len(c) == width) + 1
        while f"{candidate:0{width}d}" in codes:
            candidate += 1
        code = f"{candidate:0{width}d}"
        if len(code) > width:
            raise EditError(f"community {community} has no free grid code left", f"社区 {community} 已没有可用的网格编码")
        return code

    def refuse_locked(self, grid_ids: set[int], doing: str) -> None:
        """An :class:`EditError` when one of ``grid_ids`` is locked (unlock it first: ``set`` with
        ``locked: false``)."""
        locked = assignment.locked_grids(self.conn, grid_ids) if grid_ids else []
        if locked:
            raise EditError(f"grid {', '.join(locked)} is locked: unlock it to {doing}",
                            f"网格 {'、'.join(locked)} 已锁定：解锁后才能{LOCKED_ZH.get(doing, doing)}")

    def move(self, unit_rows: list[int], code: str, *, kind: str | None = None) -> None:
        """Move units (row ids) into grid ``code`` (created when the plan has no such grid), never
        across a community boundary."""
        unit_rows = sorted(set(unit_rows))
        found = self.units_here(unit_rows)
        communities = {c for _, _, c in found.values()}
        target = assignment.grid_by_code(self.conn, self.plan.id, code)
        if target is None:
            if len(communities) > 1:
                raise EditError("the units belong to different communities; a grid never crosses a community boundary",
                                "这些单元分属不同社区；网格不能跨越社区边界")
            target_id = self.new_grid(code, communities.pop(), kind or COMPREHENSIVE)
        else:
            foreign = sorted(u for u, (_, _, c) in found.items() if c != target.community_id)
            if foreign:
                community = territories.code_of(self.conn, target.community_id)
                listed = foreign[:10]
                raise EditError(f"grid {code} lies in community {community}; unit(s) {', '.join(map(str, listed))} "
                                "lie in another community, and a grid never crosses a community boundary",
                                f"网格 {code} 属于社区 {community}；单元 {'、'.join(map(str, listed))} 属于其他社区，"
                                "网格不能跨越社区边界")
            target_id = target.id
            if kind:
                assignment.set_grid_attribute(self.conn, target_id, "kind", kind)
        sources = {g for g, _, _ in found.values()}
        if sources != {target_id}:  # something moves: no locked grid may gain or lose a unit
            self.refuse_locked(sources | {target_id}, "move units into or out of it")
        assignment.move_units(self.conn, self.plan.id, unit_rows, target_id)
        changed = sources - {target_id}
        if changed:
            assignment.new_lineage(self.conn, changed | {target_id})
        self.touched |= sources | {target_id}
        self.reshaped |= sources | {target_id}
        self.moved.update({u: code for u in unit_rows})


def name_grids(conn: sa.Connection, plan_id: int, grid_ids: set[int]) -> None:
    """Name grids ``grid_ids`` of a plan again by the rule of :mod:`gridmap.geo.grid_names` (a
    dedicated grid after its institution, with its site type), after an edit changed their units
    or kind, or in a draft copied from a plan made before grids were named. A name someone gave a
    grid is kept; grids that no longer exist are skipped."""
    if not grid_ids:
        return
    grids, units = assignment.naming_inputs(conn, plan_id, grid_ids)
    if grids.empty:
        return
    assignment.set_naming(conn, grids["grid_id"].tolist(), dedicated_grid_names(grids, units))


# -- the operations -------------------------------------------------------------------------------
class AssignOp(BaseModel):
    op: Literal["assign", "move"]
    units: list[int] = Field(min_length=1, max_length=20_000, description="unit ids (the `unit_id` of /units)")
    grid: str = Field(max_length=32, description="target grid code; a new code creates the grid")
    kind: GridKind | None = None

    def apply(self, edit: EditContext) -> None:
        edit.move(self.units, self.grid, kind=self.kind)


class MergeOp(BaseModel):
    op: Literal["merge"]
    grids: list[str] = Field(min_length=2, max_length=100)
    into: str | None = Field(None, description="the code that survives (default: the first)")

    def apply(self, edit: EditContext) -> None:
        if len(set(self.grids)) < 2:
            raise EditError("'grids' must list at least two different grid codes", "'grids' 须列出至少两个不同的网格编码")
        into = self.into or self.grids[0]
        target = edit.grid(into)
        for code in self.grids:
            if code == into:
                continue
            other = edit.grid(code)
            if other.community_id != target.community_id:
                raise EditError(f"grids {into} and {code} lie in different communities and cannot be merged",
                                f"网格 {into} 与 {code} 属于不同社区，不能合并")
            edit.move(assignment.grid_units(edit.conn, other.id), into)


class SplitOp(BaseModel):
    op: Literal["split"]
    grid: str = Field(max_length=32)
    units: list[int] = Field(min_length=1, max_length=20_000, description="units that go to the new grid")
    new_code: str | None = Field(None, max_length=32, description="default: the community's next free code")

    def apply(self, edit: EditContext) -> None:
        grid = edit.grid(self.grid)
        members = set(assignment.grid_units(edit.conn, grid.id))
        outside = sorted(set(self.units) - members)
        if outside:
            listed = outside[:10]
            raise EditError(f"unit(s) {', '.join(map(str, listed))} are not in grid {grid.code}",
                            f"单元 {'、'.join(map(str, listed))} 不在网格 {grid.code} 中")
        if set(self.units) == members:
            raise EditError(f"choose some but not all units of grid {grid.code} to split it in two",
                            f"拆分网格 {grid.code} 时请选出其部分（而非全部）单元")
        code = self.new_code or edit.next_code(grid.community_id)
        if assignment.grid_by_code(edit.conn, edit.plan.id, code) is not None:
            raise EditError(f"grid code {code} is already used in this plan", f"网格编码 {code} 在本方案中已被使用")
        edit.move(self.units, code, kind=grid.kind)


Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class LineString(BaseModel):
    type: Literal["LineString"]
    coordinates: list[tuple[Longitude, Latitude]] = Field(min_length=2, max_length=10_000)


CUT_REFUSALS_ZH = {
    "a cut needs a line (LineString)": "切分需要一条线（LineString）",
    "the line does not cross the unit": "这条线没有穿过该单元",
    "the line does not cut the unit in two: draw it across the unit from edge to edge":
        "这条线没有把单元分成两块：请从单元一侧边界画到另一侧边界",
}


class CutOp(BaseModel):
    op: Literal["cut"]
    unit: int
    line: LineString

    def apply(self, edit: EditContext) -> None:
        """Its pieces replace the unit, and the neighbours whose shared edge the line crosses are
        replaced by revisions with the crossing vertex, in this plan only (so the coverage stays
        exact); households are shared by the buildings in each piece."""
        conn, plan = edit.conn, edit.plan
        unit = unit_store.for_cut(conn, plan.id, self.unit)
        edit.refuse_locked({unit.grid_id}, "cut its units")
        polygon = shapely.from_wkb(bytes.fromhex(unit.geom_hex))
        neighbours = unit_store.neighbours(conn, plan.id, unit.id)
        try:
            cut = cut_unit(polygon, shape(self.line.model_dump()),
                           [shapely.from_wkb(bytes.fromhex(n.geom_hex)) for n in neighbours])
        except CutError as exc:
            raise EditError(f"unit {unit.id}: {exc}", f"单元 {unit.id}：{CUT_REFUSALS_ZH.get(str(exc), str(exc))}") from exc
        # a neighbour that takes the line's crossing point is replaced by a revision: its grid changes too
        edit.refuse_locked({neighbours[i].grid_id for i in cut.revised}, "cut its units")
        pieces = np.asarray(cut.pieces, dtype=object)
        metric = shapely.area(shapely.transform(pieces, _projector(polygon)))
        area = metric * (unit.area_m2 / metric.sum()) if metric.sum() > 0 else metric
        points, households = _buildings_in(conn, plan.territory, polygon)
        shares = share_households(list(pieces), int(unit.households), building_points=points,
                                  building_households=households)
        new_ids = unit_store.replace_by_pieces(conn, plan.id, unit.id, [
            {"geom_hex": g, "households": h, "area_m2": a} for g, h, a in zip(ewkb_hex(pieces), shares, area)])
        revised = dict(zip([neighbours[i].id for i in cut.revised],
                           ewkb_hex(np.array(list(cut.revised.values()), dtype=object)))) if cut.revised else {}
        replaced = unit_store.revise(conn, plan.id, revised) if revised else {}
        touched = {unit.grid_id} | {n.grid_id for n in neighbours if n.id in replaced}
        assignment.new_lineage(conn, touched)
        edit.touched |= touched
        edit.reshaped |= touched
        edit.cut_units.extend(new_ids)
        edit.revised_units.update(replaced)


def _projector(polygon):
    """Lon/lat → metres in the metric CRS at the polygon (for the pieces' areas)."""
    from pyproj import Transformer

    to_metric = Transformer.from_crs(4490, metric_crs_for(*polygon.centroid.coords[0]), always_xy=True)
    return lambda c: np.column_stack(to_metric.transform(c[:, 0], c[:, 1]))


def _buildings_in(conn: sa.Connection, territory: str, polygon) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Representative points and households of the buildings inside a unit (None if unknown)."""
    found = layers.find(conn, territory, layers.ROLES["buildings"])
    if not found:
        return None, None
    buildings = frames.layer_in_area(conn, found[0], found[1], polygon)
    if buildings.empty or "households" not in buildings:
        return None, None
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
    inside = shapely.contains(polygon, points)
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy()
    return points[inside], hh[inside]


class SetOp(BaseModel):
    op: Literal["set"]
    grid: str = Field(max_length=32)
    name: str | None = Field(None, max_length=200)
    worker: str | None = Field(None, max_length=200)
    kind: GridKind | None = None
    locked: bool | None = Field(None, description="lock (true) or unlock (false) the grid's units")

    def apply(self, edit: EditContext) -> None:
        grid = edit.grid(self.grid)
        for column in assignment.GRID_ATTRIBUTES:
            value = getattr(self, column)
            if value is not None:
                assignment.set_grid_attribute(edit.conn, grid.id, column, value)
        edit.touched.add(grid.id)


class NoteOp(BaseModel):
    op: Literal["note"]
    grid: str | None = Field(None, max_length=32, description="the grid the note is about")
    unit: int | None = Field(None, description="or the unit it is about")
    text: str | None = Field(None, min_length=1, max_length=2000, description="the note (why it was drawn so)")
    remove: int | None = Field(None, description="the id of a note of this plan to delete instead")

    def apply(self, edit: EditContext) -> None:
        if self.remove is not None:
            if not notes.remove(edit.conn, edit.plan.id, self.remove):
                raise EditError(f"plan {edit.plan.id} has no note {self.remove}", f"方案 {edit.plan.id} 中没有备注 {self.remove}")
            return
        if not self.text or not self.text.strip():
            raise EditError("a note needs text", "备注不能为空")
        if (self.grid is None) == (self.unit is None):
            raise EditError("a note is about one grid or one unit: give grid or unit", "备注须针对一个网格或一个单元：请给出 grid 或 unit")
        if self.grid is not None:
            edit.grid(self.grid)
        else:
            edit.units_here([self.unit])
        notes.add(edit.conn, edit.plan.id, self.text.strip(), grid_code=self.grid, unit_id=self.unit, author=edit.actor)


Operation = Annotated[AssignOp | MergeOp | SplitOp | CutOp | SetOp | NoteOp, Field(discriminator="op")]
_OPERATIONS = TypeAdapter(list[Operation])


def parse(raw: list[dict]) -> list[AssignOp | MergeOp | SplitOp | CutOp | SetOp | NoteOp]:
    """Operations from plain JSON (a CLI file, a notebook): the same typed objects the API builds,
    or an :class:`EditError` naming the first problem."""
    if not isinstance(raw, list) or not raw:
        raise EditError("no operations given", "没有给出任何操作")
    try:
        return _OPERATIONS.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise EditError(f"operation {where}: {first.get('msg')}", f"操作 {where}：{first.get('msg')}") from exc


def as_json(operations) -> list[dict]:
    """The operations as stored in the edit log and the audit log (what was asked, as sent)."""
    return [op.model_dump(exclude_none=True) for op in operations]


__all__ = ["EditError", "EditContext", "name_grids", "AssignOp", "MergeOp", "SplitOp", "CutOp", "SetOp", "LineString", "Operation",
           "parse", "as_json", "OPERATION_ZH"]
