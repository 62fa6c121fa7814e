"""``gridmap merge``: departmental grid files → conflicts, a unified draft plan, crosswalk, duties."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa

from gridmap.distributed import SERIAL_HERE, Placement
from gridmap.geo.io import read_vector
from gridmap.geo.merge import MergeResult, merge_layers
from gridmap.progress import QUIET, Progress
from gridmap.services import profiles
from gridmap.services.profiles import ProfileSpec
from gridmap.services.partitioning import ensure_units, input_layer
from gridmap.store import assignment, audit, frames, merges, plans
from gridmap.store.territories import get

ID_FIELDS = ("grid_id", "id", "code", "grid_code", "编号", "网格编号", "编码")
DUTY_FIELDS = ("duties", "duty", "职责", "事项")
DEPARTMENT_FIELDS = ("department", "dept", "部门")
CONFLICT_ZH = {"overlap": "重叠", "gap": "空隙", "sliver": "碎片", "crosses_community": "跨社区", "outside": "超出辖区"}


@dataclass
class MergeSummary:
    plan_id: int
    version: int
    territory: str
    result: MergeResult

    def __str__(self) -> str:
        conflicts = ", ".join(f"{k} {v}" for k, v in self.result.summary["conflicts"].items()) or "none"
        offsets = self.result.summary["offset_layers"]
        lines = [f"draft plan {self.version} (id {self.plan_id}) for {self.territory}: {self.result.summary['text']}",
                 f"conflicts: {conflicts}"]
        if offsets:
            lines.append(f"offset layers (corrected before merging): {', '.join(offsets)}")
        return "\n".join(lines)

    def zh(self) -> str:
        """The same in Chinese (the CLI prints both, as for a partition's :class:`PlanSummary`)."""
        s = self.result.summary
        conflicts = "，".join(f"{CONFLICT_ZH.get(k, k)} {v}" for k, v in s["conflicts"].items()) or "无"
        lines = [f"辖区 {self.territory} 的方案草稿 {self.version}（编号 {self.plan_id}）：{s['departments']} 类共 "
                 f"{s['old_grids']} 个网格 → {s['unified_grids']} 个统一网格；每名网格员职责数 {s['duties_min']}/"
                 f"{s['duties_median']:.0f}/{s['duties_max']}（最少/中位/最多）",
                 f"冲突：{conflicts}"]
        if s["offset_layers"]:
            lines.append(f"有偏移的图层（合并前已校正）：{'、'.join(s['offset_layers'])}")
        return "\n".join(lines)


def read_departmental_file(path: str | Path, *, crs=None, id_field: str | None = None,
                           department: str | None = None) -> gpd.GeoDataFrame:
    """One departmental layer file, with department, grid_id and duties columns filled."""
    path = Path(path)
    frame = read_vector(path, crs=crs, expect="polygon").frame
    lower = {c.lower(): c for c in frame.columns}
    id_col = id_field or next((lower[f] for f in ID_FIELDS if f in lower), None)
    if id_col is None or id_col not in frame:
        raise ValueError(f"{path.name}: no grid id column (tried {', '.join(ID_FIELDS)}); name it with --id-field")
    out = frame.rename(columns={id_col: "grid_id"})
    out["grid_id"] = out["grid_id"].astype(str)
    dept_col = next((lower[f] for f in DEPARTMENT_FIELDS if f in lower), None)
    out["department"] = department or (out[dept_col].astype(str) if dept_col else path.stem)
    duty_col = next((lower[f] for f in DUTY_FIELDS if f in lower), None)
    if duty_col and duty_col != "duties":
        out = out.rename(columns={duty_col: "duties"})
    return out


def merge_files(engine: sa.Engine, territory: str, files: list[str | Path], *, crs=None, id_field: str | None = None,
                **kwargs) -> MergeSummary:
    """Read departmental files and merge them over ``territory`` (see :func:`merge_territory`)."""
    layers = pd.concat([read_departmental_file(f, crs=crs, id_field=id_field) for f in files], ignore_index=True)
    return merge_territory(engine, territory, gpd.GeoDataFrame(layers, geometry="geometry", crs=4490), **kwargs)


def merge_territory(engine: sa.Engine, territory: str, layers, *, profile: ProfileSpec = None,
                    min_households: int | None = None, max_households: int | None = None,
                    access_list: set[str] | None = None, seed: int = 0, author: str = "cli",
                    progress: Progress = QUIET, placement: Placement = SERIAL_HERE) -> MergeSummary:
    """Merge departmental layers over the territory's units; store everything as a draft plan.
    The rules are ``profile``'s (default: the territory's), the band overridden when given. The
    unified plan's pieces are cut where ``placement`` says, as a partition's are (default:
    serially, here; the CLI passes the settings' choice); the plan is the same either way."""
    placement.check()
    with engine.connect() as conn:
        rules = profiles.for_run(conn, territory, profile, min_households=min_households,
                                 max_households=max_households)
    units, _ = ensure_units(engine, territory, profile=rules, progress=progress)
    with engine.connect() as conn:
        communities = frames.communities(conn, territory)
        roads = input_layer(conn, territory, "roads", shapely.box(*units.total_bounds))
    with placement.runner(len(units), progress) as runner, progress.step(
            "merging departmental layers (conflicts, unified plan, crosswalk, duties)",
            "合并各部门网格（冲突、统一方案、对照表、职责）"):
        result = merge_layers(layers, units, communities[["code", "name", "geometry"]], access_list=access_list,
                              rules=rules.merge, partition_rules=rules.partition, road_rules=rules.roads,
                              roads=roads, seed=seed, runner=runner)
    with progress.step("writing the draft plan and the merge report", "写入方案草稿与合并报告"), engine.begin() as conn:
        target = get(conn, territory)
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        # the departments' grids as they drew them (an offset layer's correction is in the result)
        merges.store_department_grids(conn, target.id, _normalised(layers))
        result.partition.report["profile"] = rules.describe()
        report = {**result.partition.report,
                  "merge": {k: v for k, v in result.summary.items() if k != "partition"},
                  "coverage": result.coverage.to_dict(orient="records"),
                  "excluded_duties": result.excluded_duties.to_dict(orient="records")}
        params = profiles.parameters_of(rules, seed=seed, departments=sorted(result.coverage["department"]),
                                        access_list=sorted(access_list or []))
        plan_id, version = plans.create(conn, territory_id=target.id, origin="merge", author=author,
                                        parameters=params, report=report)
        assignment.write(conn, plan_id, result.grids, result.units, ids)
        merges.store_results(conn, plan_id, result.crosswalk, result.conflicts, result.duties)
        audit.record(conn, actor=author, action="merge", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, "summary": result.summary["text"]})
    return MergeSummary(plan_id, version, territory, result)


def _normalised(layers):
    from gridmap.geo.merge import normalise_layers

    return normalise_layers(layers)
