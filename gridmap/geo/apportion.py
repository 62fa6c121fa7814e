"""Sharing whole numbers out in proportion: the one rounding rule gridmap uses for households.

A building that straddles two units, or a building cut into its 单元 (stairwells), has its
households shared by footprint. The shares must be whole households and must add up to the
building's count, so a plain ``round`` will not do (three equal thirds of 100 round to 99).
gridmap uses the largest-remainder (Hamilton) method everywhere: each part takes the floor of its
exact share, and the households left over go one each to the parts with the largest fractions,
ties to the earlier part. Keeping it here, once, means a unit's total and its stairwells' totals
can never disagree about the same building.
"""

from __future__ import annotations

import numpy as np


def largest_remainder(totals: np.ndarray, group: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Whole-number shares of ``totals`` (one per group) among rows (``group``: each row's group,
    an index into ``totals``; ``weight``: each row's weight, not negative, the weights of a group
    adding up to more than 0), in proportion to the weights, by largest remainder. The shares of
    each group sum to its total; ties go to the row that comes first, so equal weights give the
    first rows the odd households. Vectorised: one call shares out any number of groups."""
    totals = np.asarray(totals, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    weight_sum = np.bincount(group, weights=weight, minlength=len(totals))
    if np.any(weight < 0) or not np.all(np.isfinite(weight)) or np.any(weight_sum[group] <= 0):
        raise ValueError("largest_remainder: weights must be finite, not negative, and add up to "
                         "more than 0 in each group")
    exact = totals[group] * (weight / weight_sum[group])
    base = np.floor(exact).astype(np.int64)
    left = totals - np.bincount(group, weights=base, minlength=len(totals)).astype(np.int64)
    order = np.lexsort((-(exact - base), group))  # by group, then largest fraction first (stable)
    sorted_group = group[order]
    first_of_group = np.searchsorted(sorted_group, sorted_group, side="left")
    rank = np.arange(len(order)) - first_of_group
    shares = base.copy()
    shares[order] += (rank < left[sorted_group]).astype(np.int64)
    return shares
