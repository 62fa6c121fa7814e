"""Hand edits of micro-grids: buildings (or 单元) painted from one micro-grid to another of the
same grid, and the micro-grids they leave and join stated again.

A micro-grid is the union of its buildings' cells (:mod:`gridmap.geo.tessellation`: the cells
tile the grid), so an edit moves cells and every statistic follows from them by the one
definition the partition uses (:func:`gridmap.geo.report.grid_statistics`). The rules of an
edit, each refused in English and Chinese before anything is stored:

* cells move only between micro-grids of one grid (a micro-grid never crosses its grid);
* a micro-grid stays in one piece (a move that would cut the one it leaves, or leave the one it
  joins in pieces, is refused, naming which);
* a micro-grid that loses every cell is removed (its code is not reused).

A micro-grid outside the micro band after an edit is flagged ``below_min`` / ``above_max`` with
the plain reason "set by hand"; the proofs of the partition's report are not claimed for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import Invalid
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.report import grid_statistics

CELL_COLUMNS = ["cell_id", "microgrid_code", "grid_code", "building_key", "households", "geometry"]


@dataclass(frozen=True)
class Restated:
    """The micro-grids an edit touched, stated again (``microgrids``: code, households,
    building_count, area_m2, compactness, parts, flag, reason, reason_zh, geometry), and the
    codes left without a cell (``removed``)."""

    microgrids: gpd.GeoDataFrame
    removed: list[str]


def move_cells(cells: gpd.GeoDataFrame, moving: list[int], to_code: str, grid: str | None = None) -> gpd.GeoDataFrame:
    """``cells`` (:data:`CELL_COLUMNS`: every cell of the micro-grids concerned) with the cells
    ``moving`` (their ``cell_id``) given to micro-grid ``to_code``; refuses cells that are not
    there and cells of another grid. ``grid``: the grid of ``to_code`` when it has no cell yet (a
    micro-grid made again)."""
    known = set(cells["cell_id"].astype(int))
    missing = sorted(set(moving) - known)
    if missing:
        raise Invalid(f"no building cell {', '.join(map(str, missing[:10]))} in this plan's micro-grids",
                      f"本方案的微网格中没有楼栋单元格 {', '.join(map(str, missing[:10]))}")
    target = cells.loc[cells["microgrid_code"] == to_code, "grid_code"]
    if target.empty and grid is None:
        raise Invalid(f"no micro-grid {to_code} in this plan", f"本方案没有微网格 {to_code}")
    grid = target.iat[0] if len(target) else grid
    chosen = cells["cell_id"].isin(moving).to_numpy()
    elsewhere = sorted(set(cells.loc[chosen & (cells["grid_code"] != grid).to_numpy(), "microgrid_code"]))
    if elsewhere:
        raise Invalid(f"micro-grid {to_code} belongs to grid {grid}; buildings of micro-grids "
                      f"{', '.join(elsewhere)} lie in other grids: a micro-grid never crosses its grid",
                      f"微网格 {to_code} 属于网格 {grid}；微网格 {'、'.join(elsewhere)} 的楼栋在其他网格内："
                      "微网格不能跨越所属网格")
    out = cells.copy()
    out.loc[chosen, "microgrid_code"] = to_code
    return out


def pieces(cells: gpd.GeoDataFrame) -> dict[str, int]:
    """How many pieces each micro-grid of ``cells`` makes (the union of its cells), measured the
    way :func:`restate` measures them after an edit."""
    if cells.empty:
        return {}
    union = cells.groupby("microgrid_code")["geometry"].agg(lambda g: shapely.union_all(np.asarray(g, dtype=object)))
    return {str(code): int(shapely.get_num_geometries(geom)) for code, geom in union.items()}


def restate(cells: gpd.GeoDataFrame, codes: list[str], band: tuple[int, int],
            parts_before: dict[str, int]) -> Restated:
    """The micro-grids ``codes`` stated again from ``cells`` (after :func:`move_cells`): refuses a
    micro-grid that would have more pieces than it had (``parts_before``, :func:`pieces` of the
    cells before the edit)."""
    lo, hi = band
    cells = gpd.GeoDataFrame(cells, geometry="geometry", crs=STORAGE_EPSG)
    mine = cells[cells["microgrid_code"].isin(codes)].reset_index(drop=True)
    removed = sorted(set(codes) - set(mine["microgrid_code"]))
    if mine.empty:
        return Restated(gpd.GeoDataFrame({"microgrid_code": []}, geometry=[], crs=STORAGE_EPSG), removed)
    label, order = pd.factorize(mine["microgrid_code"])
    stats = grid_statistics(mine[["households", "geometry"]], label, metric_crs_for_frame(mine))
    stats["microgrid_code"] = np.asarray(order, dtype=object)[stats["_grid"].to_numpy()]
    stats["building_count"] = mine.groupby(label)["building_key"].nunique().to_numpy()
    torn = stats[stats["parts"] > stats["microgrid_code"].map(parts_before).fillna(1)]
    if len(torn):
        listed = ", ".join(f"{c} ({p})" for c, p in zip(torn["microgrid_code"], torn["parts"]))
        raise Invalid(f"after this move micro-grid {listed} would be in pieces: a micro-grid's buildings must "
                      "be contiguous; move the buildings between them too, or choose a neighbouring micro-grid",
                      f"这样移动后微网格 {listed.replace(', ', '、')} 会被分成几块：微网格的楼栋必须连片；"
                      "请一并移动其间的楼栋，或改选相邻的微网格")
    households = stats["households"].to_numpy()
    below, above = households < lo, households > hi
    stats["flag"] = np.where(below, "below_min", np.where(above, "above_max", None))
    # object columns: pandas 3 would infer a string column and turn the None of a micro-grid in the
    # band into NaN, which is no JSON (the move stored them as "reason": NaN and PostgreSQL refused it)
    stats["reason"] = pd.Series([
        (f"{h:.0f} households, {'below the minimum ' + str(lo) if b else 'above the maximum ' + str(hi)}: "
         "set by hand in the planner") if b or a else None for h, b, a in zip(households, below, above)],
        index=stats.index, dtype=object)
    stats["reason_zh"] = pd.Series([
        (f"{h:.0f} 户，{'低于下限 ' + str(lo) if b else '超过上限 ' + str(hi)} 户：规划人员手工调整")
        if b or a else None for h, b, a in zip(households, below, above)], index=stats.index, dtype=object)
    columns = ["microgrid_code", "households", "building_count", "area_m2", "compactness", "parts", "flag", "reason",
               "reason_zh", "geometry"]
    return Restated(gpd.GeoDataFrame(stats[columns], geometry="geometry", crs=STORAGE_EPSG), removed)


__all__ = ["CELL_COLUMNS", "Restated", "move_cells", "pieces", "restate"]
