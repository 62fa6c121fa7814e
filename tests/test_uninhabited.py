"""Units without residents go to the grid they border most, never splitting a grid's inhabited units."""

from __future__ import annotations

import numpy as np

from gridmap.geo.graph import UnitGraph
from gridmap.geo.uninhabited import settle


def graph_of(n: int, edges: list[tuple[int, int, float]]) -> UnitGraph:
    left, right, length = (np.array(v) for v in zip(*edges))
    return UnitGraph(n=n, left=left.astype(np.int64), right=right.astype(np.int64), length_m=length.astype(float),
                     major_share=np.zeros(len(edges)), xy=np.zeros((n, 2)), area_m2=np.ones(n), perimeter_m=np.ones(n))


def test_a_strip_round_a_compound_goes_to_the_compounds_grid_and_takes_the_strip_beyond_it() -> None:
    # 0: compound A (grid 0), 1: compound B (grid 1); 2: the strip inside B's wall, put in grid 0 by the
    # cut (it touches A for 10 m, B all round, 400 m); 3: the strip along the road outside it, reached
    # from grid 0 only through 2 (the bisection's tree ran that way)
    graph = graph_of(4, [(0, 1, 50.0), (0, 2, 10.0), (1, 2, 400.0), (2, 3, 420.0)])
    households = np.array([400.0, 420.0, 0.0, 0.0])
    grid_of = np.array([0, 1, 0, 0])
    assert settle(graph, grid_of, np.array([True, True]), households) >= 1
    assert grid_of.tolist() == [0, 1, 1, 1]


def test_a_strip_that_holds_a_grid_together_stays() -> None:
    # grid 0 is A (0) and C (3), joined only by the empty strip 2, which borders B (grid 1) most
    graph = graph_of(4, [(0, 2, 20.0), (2, 3, 20.0), (1, 2, 300.0), (0, 1, 30.0), (1, 3, 30.0)])
    households = np.array([200.0, 420.0, 0.0, 200.0])
    grid_of = np.array([0, 1, 0, 0])
    assert settle(graph, grid_of, np.array([True, True]), households) == 0
    assert grid_of.tolist() == [0, 1, 0, 0]


def test_dedicated_grids_and_sites_neither_give_nor_take() -> None:
    graph = graph_of(3, [(0, 2, 10.0), (1, 2, 400.0), (0, 1, 40.0)])
    households = np.array([400.0, 0.0, 0.0])
    grid_of = np.array([0, 1, 0])  # grid 1: a dedicated school, which the strip borders most
    assert settle(graph, grid_of, np.array([True, False]), households) == 0
    fixed = np.array([False, False, True])  # and a site unit itself never moves
    assert settle(graph, grid_of, np.array([True, True]), households, fixed=fixed) == 0
    assert grid_of.tolist() == [0, 1, 0]
