"""The integer programme that proves "no division in the band" where the exact search runs out of
steps (gridmap.geo.band_milp): it agrees with the exact search wherever that search finishes, and
a proof resting on it says so."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo import proofs
from gridmap.geo.band_milp import MILP_REPAIR_NODES, band_division_exists
from gridmap.geo.band_milp import band_division as milp_division
from gridmap.geo.exact import Division, band_division, idle_connectors


@st.composite
def regions(draw):
    """A connected graph of 2–9 units (a random spanning tree plus some chords), 0–250 households each."""
    n = draw(st.integers(2, 9))
    parents = [draw(st.integers(0, i - 1)) for i in range(1, n)]
    edges = [(p, i) for i, p in enumerate(parents, start=1)]
    chords = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n))
    edges += [(a, b) for a, b in chords if a != b]
    households = np.array(draw(st.lists(st.integers(0, 250), min_size=n, max_size=n)), dtype=float)
    return households, np.array([a for a, _ in edges]), np.array([b for _, b in edges])


@settings(max_examples=60, deadline=None)
@given(regions(), st.sampled_from([(100, 200), (150, 300), (200, 260)]))
def test_the_programme_agrees_with_the_exact_search(region, band) -> None:
    households, left, right = region
    exact = band_division(households, left, right, *band)
    assert exact.complete  # small: the search finishes
    assert band_division_exists(households, left, right, *band, seconds=30) == (exact.groups is not None)
    found = milp_division(households, left, right, *band, nodes=MILP_REPAIR_NODES)
    assert found.complete and (found.groups is None) == (exact.groups is None)
    if found.groups is not None:  # its groups: every unit in one, each connected and in the band
        assert sorted(np.concatenate(found.groups).tolist()) == list(range(len(households)))
        for group in found.groups:
            assert band[0] <= households[group].sum() <= band[1]
            assert _connected(group, left, right)


def _connected(group: np.ndarray, left: np.ndarray, right: np.ndarray) -> bool:
    members = set(group.tolist())
    reached, todo = {int(group[0])}, [int(group[0])]
    while todo:
        v = todo.pop()
        for a, b in zip(left.tolist(), right.tolist()):
            for x, y in ((a, b), (b, a)):
                if x == v and y in members and y not in reached:
                    reached.add(y)
                    todo.append(y)
    return reached == members


def _path(households: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(households)
    return np.array(households, dtype=float), np.arange(n - 1), np.arange(1, n)


def test_a_proof_rests_on_the_programme_where_the_search_gives_up(monkeypatch) -> None:
    """With the exact search made to give up ("unknown"), a region that has no division in the band
    still gets its proof from the programme, and one that has a division gets none."""
    monkeypatch.setattr(proofs, "region_division", lambda *a, **k: Division(None, False))
    # a row of units 260 | 0 | x | 260 | 0 | 90: with x = 0 (610 households, two grids of 300-400) every
    # cut leaves 260 or 520 on the left: no division; with x = 60 the cut after it gives 320 and 350
    for middle, expected in ((0.0, "programme"), (60.0, None)):
        households, left, right = _path([260.0, 0.0, middle, 260.0, 0.0, 90.0])
        region = np.arange(len(households))
        how = proofs._no_division(region, left, right, households, 300, 400, 1, 100.0)
        assert how == expected, (middle, how)
    households, left, right = _path([260.0, 0.0, 0.0, 260.0, 0.0, 90.0])
    assert band_division(households, left, right, 300, 400).impossible  # the search, allowed to finish, agrees


def test_the_tries_go_from_cheap_to_dear(monkeypatch) -> None:
    """Where the first search runs out of steps: the search with three times the steps, the
    programme, the search with ten times the steps; the first to decide answers. Recorded on a row
    with no division in the band, each try made to give up until the one under test; on a row
    with one, the first search that finds it ends the tries."""
    from gridmap.geo.band_milp import MILP_SECONDS
    from gridmap.geo.exact import EXACT_BUDGET

    real_search, real_programme = proofs.region_division, proofs.band_division_exists
    households, left, right = _path([260.0, 0.0, 0.0, 260.0, 0.0, 90.0])
    region = np.arange(len(households))
    order = [("search", EXACT_BUDGET), ("search", 3 * EXACT_BUDGET), ("programme", MILP_SECONDS),
             ("search", 10 * EXACT_BUDGET)]
    for deciding in range(len(order) + 1):
        calls: list[tuple[str, float]] = []

        def search(*a, budget, **k):
            calls.append(("search", budget))
            return real_search(*a, budget=budget, **k) if len(calls) - 1 == deciding else Division(None, False)

        def programme(*a, seconds, **k):
            calls.append(("programme", seconds))
            return real_programme(*a, seconds=seconds, **k) if len(calls) - 1 == deciding else None

        monkeypatch.setattr(proofs, "region_division", search)
        monkeypatch.setattr(proofs, "band_division_exists", programme)
        how = proofs._no_division(region, left, right, households, 300, 400, 1, 100.0)
        assert calls == order[:deciding + 1]
        assert how == (None if deciding == len(order) else order[deciding][0])
    monkeypatch.setattr(proofs, "region_division", real_search)
    monkeypatch.setattr(proofs, "band_division_exists", lambda *a, **k: pytest.fail("the programme was asked"))
    households, left, right = _path([260.0, 0.0, 60.0, 260.0, 0.0, 90.0])  # 320 | 350: a division
    assert proofs._no_division(region, left, right, households, 300, 400, 1, 100.0) is None


@st.composite
def regions_with_connectors(draw):
    """Like :func:`regions`, with most units empty (the connectors of a high-rise district)."""
    households, left, right = draw(regions())
    empty = np.array(draw(st.lists(st.booleans(), min_size=len(households), max_size=len(households))))
    households[empty] = 0.0
    return households, left, right


@settings(max_examples=80, deadline=None)
@given(regions_with_connectors(), st.sampled_from([(100, 200), (150, 300), (200, 260)]))
def test_the_programme_agrees_with_the_search_on_regions_of_empty_connectors(region, band) -> None:
    """Both take out the empty units of one or two neighbours first (gridmap.geo.exact.idle_connectors,
    itself checked against a brute force over every set partition in tests/test_exact.py); they
    still agree."""
    households, left, right = region
    exact = band_division(households, left, right, *band)
    assert exact.complete
    assert band_division_exists(households, left, right, *band, seconds=30) == (exact.groups is not None)


def test_empty_units_between_two_neighbours_are_taken_out() -> None:
    households, left, right = _path([260.0, 0.0, 0.0, 260.0, 0.0, 90.0])
    reduced = idle_connectors(households, set(zip(left.tolist(), right.tolist())))
    assert households[reduced.kept].tolist() == [260.0, 260.0, 90.0] and reduced.pairs == [(0, 1), (1, 2)]
    assert sorted(unit for unit, _ in reduced.removed) == [1, 2, 4]
    found = band_division(households, left, right, 300, 400)
    assert found.impossible  # 610 households, every cut leaves 260 or 520 on the left
    found = band_division(households, left, right, 250, 400)  # 260 | 0 0 260 0 90: the empty ones go with a side
    assert found.groups is not None and sorted(np.concatenate(found.groups).tolist()) == list(range(6))
    # an empty unit where three ways meet is left in place (what it joins is not a pair)
    star = np.array([0.0, 100.0, 100.0, 100.0])
    reduced = idle_connectors(star, {(0, 1), (0, 2), (0, 3)})
    assert reduced.kept.tolist() == [0, 1, 2, 3] and reduced.pairs == [(0, 1), (0, 2), (0, 3)]
    # and where four meet, joining its neighbours pairwise instead would make a division appear:
    # each neighbour of 100 needs another, and only the empty centre joins them, once
    star = np.array([0.0, 100.0, 100.0, 100.0, 100.0])
    left, right = np.zeros(4, dtype=np.int64), np.arange(1, 5)
    assert band_division(star, left, right, 200, 200).impossible
    assert band_division_exists(star, left, right, 200, 200, seconds=30) is False
    isolated = band_division(np.array([0.0, 150.0, 150.0]), np.array([1]), np.array([2]), 100, 300)
    assert isolated.impossible  # an empty unit on its own can be no group; it is not taken out
    assert band_division_exists(np.array([0.0, 150.0, 150.0]), np.array([1]), np.array([2]), 100, 300,
                                seconds=30) is False


def test_a_region_highs_presolve_erred_on_is_decided() -> None:
    """A star of 8 units (found by hypothesis): with the groups' order fixed by bounds, HiGHS's
    presolve ends in "solve error"; the programme then solves it without presolve, and decides it
    as the exact search does (it said "unknown")."""
    households = np.array([142.0, 200.0, 0.0, 0.0, 0.0, 0.0, 119.0, 201.0])
    left, right = np.zeros(7, dtype=np.int64), np.arange(1, 8)
    assert band_division(households, left, right, 200, 260).impossible
    assert band_division_exists(households, left, right, 200, 260, seconds=30) is False


def _stairwells_among_villas() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid of the generated high-rise district, drawn as a graph: six 单元 of 46 households
    (two buildings of three, side by side; the middle 单元 of each touch one villa) in front of a
    4 × 8 lattice of villas of 2 households. 340 households: six micro-grids of 50-80, each one
    单元 and at least two villas, exist; the search over connected sets drowns in the villas."""
    stairwells, rows, cols = 6, 4, 8
    households = np.array([46.0] * stairwells + [2.0] * (rows * cols))
    villa = lambda r, c: stairwells + r * cols + c  # noqa: E731
    edges = [(j, j + 1) for j in range(stairwells - 1)]
    touches = {0: [0, 1], 1: [1], 2: [1, 2, 3], 3: [3, 4], 4: [4], 5: [4, 5]}
    edges += [(j, villa(0, c)) for j, cs in touches.items() for c in cs]
    edges += [(villa(r, c), villa(r, c + 1)) for r in range(rows) for c in range(cols - 1)]
    edges += [(villa(r, c), villa(r + 1, c)) for r in range(rows - 1) for c in range(cols)]
    return households, np.array([a for a, _ in edges]), np.array([b for _, b in edges])


def test_the_repair_takes_the_programmes_division_where_the_search_runs_out_of_steps(monkeypatch) -> None:
    """The partition's last repair (exact_regions) on one grid of all 38 units: the search, with
    the repair's steps and the whole piece's, runs out of them (villas make astronomically many
    connected sets); the programme divides the grid into six micro-grids in 50-80, each connected,
    and the same six on a second run (a node limit, not a time limit: no machine's speed decides)."""
    from gridmap.geo import band_milp, repair
    from gridmap.geo.graph import UnitGraph, is_connected
    from gridmap.geo.partition import PartitionRules
    from gridmap.geo.repair import PIECE_SEARCH_STEPS, exact_regions

    households, left, right = _stairwells_among_villas()
    n = len(households)
    assert not band_division(households, left, right, 50, 80, budget=PIECE_SEARCH_STEPS).complete
    graph = UnitGraph(n, left, right, np.full(len(left), 10.0), np.zeros(len(left)), np.zeros((n, 2)),
                      np.ones(n), np.ones(n))
    rules = PartitionRules(min_households=50, max_households=80)
    solved: list[int] = []
    real = repair.milp_division

    def programme(*a, **k):
        solved.append(k["nodes"])
        return real(*a, **k)

    monkeypatch.setattr(repair, "milp_division", programme)
    runs = []
    for _ in range(2):  # each run solves the programme afresh: nothing kept from the run before
        monkeypatch.setattr(band_milp, "_DECIDED", {})
        runs.append(exact_regions(graph, [np.arange(n)], households, rules))
    assert solved == [band_milp.MILP_REPAIR_NODES] * 2
    for parts in runs:
        assert len(parts) == 6 and sorted(np.concatenate(parts).tolist()) == list(range(n))
        assert all(50 <= households[p].sum() <= 80 for p in parts)
        assert all(is_connected(graph, p) for p in parts)
        assert all((p < 6).sum() == 1 for p in parts)  # one 单元 each: two would be 92
    assert [sorted(p.tolist()) for p in runs[0]] == [sorted(p.tolist()) for p in runs[1]]
