"""The one rounding rule for shared households (largest remainder), used by units and 单元 alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo.apportion import largest_remainder
from gridmap.geo.stairwells import households_by_stairwell


def test_three_equal_thirds_of_100_are_34_33_33():
    assert largest_remainder(np.array([100]), np.zeros(3, dtype=int), np.ones(3)).tolist() == [34, 33, 33]


def test_the_largest_fractions_take_the_households_left_over():
    # exact shares 2.5, 3.3, 4.2 of 10: floors 2, 3, 4 leave 1, which goes to the .5
    assert largest_remainder(np.array([10]), np.zeros(3, dtype=int), np.array([2.5, 3.3, 4.2])).tolist() == [3, 3, 4]


def test_groups_are_shared_out_independently_in_one_call():
    shares = largest_remainder(np.array([7, 5]), np.array([1, 0, 1, 0]), np.array([1.0, 1.0, 1.0, 3.0]))
    # group 1 (rows 0, 2): 2.5 + 2.5 of 5, the odd one to the first; group 0 (rows 1, 3): 1.75 + 5.25 of 7
    assert shares.tolist() == [3, 2, 2, 5]


def test_weights_that_share_nothing_are_refused():
    with pytest.raises(ValueError, match="weights"):
        largest_remainder(np.array([5]), np.zeros(2, dtype=int), np.zeros(2))
    with pytest.raises(ValueError, match="weights"):
        largest_remainder(np.array([5]), np.zeros(2, dtype=int), np.array([1.0, -1.0]))


def test_stairwells_share_a_building_by_the_same_rule():
    assert households_by_stairwell(10, 3).tolist() == [4, 3, 3]
    assert households_by_stairwell(600, 2, np.array([18.0, 22.0])).tolist() == [270, 330]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.lists(st.floats(0.01, 1e4), min_size=1, max_size=8)),
                min_size=1, max_size=6))
def test_shares_are_whole_conserve_each_total_and_stay_within_one_of_the_exact_share(groups):
    totals = np.array([total for total, _ in groups])
    group = np.concatenate([np.full(len(weights), g) for g, (_, weights) in enumerate(groups)])
    weight = np.concatenate([np.array(weights) for _, weights in groups])
    shares = largest_remainder(totals, group, weight)
    assert np.array_equal(np.bincount(group, weights=shares, minlength=len(totals)).astype(int), totals)
    exact = totals[group] * weight / np.bincount(group, weights=weight)[group]
    assert np.all(shares >= np.floor(exact) - 1e-9) and np.all(shares <= np.ceil(exact) + 1e-9)
    assert np.all(shares >= 0)
