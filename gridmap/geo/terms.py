"""The words a plan's reasons use for what is grouped and for what it is grouped into.

A reason why a grid misses its household band (:mod:`gridmap.geo.proofs`,
:mod:`gridmap.geo.report`) is the same argument at both levels of a plan: units grouped into
grids, and buildings or their 单元 (stairwells) grouped into micro-grids
(:mod:`gridmap.geo.microgrids`). Said in the grid's words at the micro level, a micro-grid's reason
called itself a 网格 (grid) and its buildings' stairwells 单元 (units), the word it also uses for
a grid's units. Each reason is written once, with the level's :class:`Terms`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Terms:
    """What is grouped (``unit``, ``units``; ``unit_zh``) and what it is grouped into (``grid``,
    ``grids``; ``grid_zh``), in English and Chinese (Chinese has one form for both numbers), and
    what a region of the proofs is made of (``region_units``, ``region_units_zh``); ``indivisible``
    and ``indivisible_zh``: why one of them above the maximum stands alone; ``container``,
    ``container_zh``: what they divide (a community; a grid), which a grid never crosses."""

    unit: str
    units: str
    unit_zh: str
    grid: str
    grids: str
    grid_zh: str
    region_units: str
    region_units_zh: str
    indivisible: str
    indivisible_zh: str
    container: str = "community"
    container_zh: str = "社区"


GRID_TERMS = Terms(
    "unit", "units", "单元", "grid", "grids", "网格", "non-dedicated units", "非专属单元",
    "it is one building, and the data gives no 单元 (stairwell) count to divide it by (add one: a 单元数 column, or "
    "an entrances layer of its stairwell doors)",
    "它是一栋楼，数据中没有可用于再分的单元数（请补充“单元数”字段，或导入单元门图层 entrances）")
"""A plan's comprehensive grids, made of units (compounds, blocks, sites)."""
MICRO_TERMS = Terms(
    "building/stairwell", "buildings/stairwells", "楼栋/单元", "micro-grid", "micro-grids", "微网格",
    "buildings/stairwells", "楼栋/单元",
    "a 单元 (stairwell) is the finest division a micro-grid is made of",
    "单元是微网格最小的划分单位，无法再分", "grid", "网格")
"""Micro-grids, made of buildings and of the 单元 (stairwells) of the buildings cut by them."""

__all__ = ["Terms", "GRID_TERMS", "MICRO_TERMS"]
