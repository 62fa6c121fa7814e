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


def test_an_islet_already_apart_from_its_grid_stays_when_a_strip_leaves() -> None:
    # grid 0: compound 0, the strip 2 (round compound 1 of grid 1), and 3, an uninhabited islet
    # joined to grid 0 before (its own piece): the strip goes, the islet does not go with it
    graph = graph_of(4, [(0, 2, 10.0), (1, 2, 400.0), (0, 1, 50.0)])
    households = np.array([400.0, 420.0, 0.0, 0.0])
    grid_of = np.array([0, 1, 0, 0])
    settle(graph, grid_of, np.array([True, True]), households)
    assert grid_of.tolist() == [0, 1, 1, 0]


def test_a_strip_follows_the_strip_it_lies_against_in_a_later_round() -> None:
    # 2 lies against compound 1 (grid 1) and moves first; 3 touches only strips, most of all 2, and
    # follows it in the next round; 4 stays with compound 0, which it touches
    graph = graph_of(5, [(0, 1, 50.0), (0, 2, 10.0), (1, 2, 400.0), (2, 3, 420.0), (3, 4, 100.0), (0, 4, 5.0)])
    households = np.array([400.0, 420.0, 0.0, 0.0, 0.0])
    grid_of = np.array([0, 1, 0, 0, 0])
    assert settle(graph, grid_of, np.array([True, True]), households) == 2
    assert grid_of.tolist() == [0, 1, 1, 1, 0]


def test_no_move_across_a_community_border_nor_of_unknown_households_nor_emptying_a_grid() -> None:
    graph = graph_of(3, [(0, 2, 10.0), (1, 2, 400.0)])
    grid_of = np.array([0, 1, 0])
    assert settle(graph, grid_of, np.array([True, True]), np.array([400.0, 420.0, 0.0]),
                  community=np.array(["a", "b", "a"])) == 0  # grid 1 is another community's
    assert settle(graph, grid_of, np.array([True, True]), np.array([400.0, 420.0, np.nan])) == 0  # unknown: stays
    alone = np.array([0, 1, 2])  # the strip is a grid of its own (an uninhabited community's): kept
    assert settle(graph, alone, np.array([True, True, True]), np.array([400.0, 420.0, 0.0])) == 0


def test_the_partition_settles_its_uninhabited_units_after_the_cut(monkeypatch) -> None:
    """:func:`gridmap.geo.partition.partition` runs :func:`settle` on its comprehensive grids, its
    sites fixed, within communities, and keeps what it moved (a strip round compound B, handed to
    A's grid by the cut as the spanning tree may, ends in B's)."""
    import geopandas as gpd
    import shapely

    from gridmap.geo import partition as partition_module
    from gridmap.geo import uninhabited

    a, b = shapely.box(0, 0, 0.001, 0.001), shapely.box(0.0012, 0.0002, 0.0022, 0.0012)
    strip = shapely.difference(shapely.box(0.001, 0.0, 0.0024, 0.0014), b)
    units = gpd.GeoDataFrame({"unit_id": ["a", "b", "s"], "community_code": ["110101001001"] * 3,
                              "kind": ["compound", "compound", "block"], "households": [400, 420, 0]},
                             geometry=[a, b, strip], crs=4490)
    calls = []

    def as_the_tree_might(graph, grid_of, movable, households, fixed=None, community=None):
        grid_of[2] = grid_of[0]  # the strip cut to A's side
        calls.append((movable.tolist(), fixed.tolist(), list(community)))
        return settle(graph, grid_of, movable, households, fixed=fixed, community=community)

    monkeypatch.setattr(uninhabited, "settle", as_the_tree_might)
    result = partition_module.partition(units, seed=0, min_households=300, max_households=500)
    grid = result.units.set_index("unit_id")["grid_code"]
    assert grid["s"] == grid["b"] != grid["a"]
    assert calls == [([True, True], [False, False, False], ["110101001001"] * 3)]
