"""The exact search (gridmap.geo.exact) against an independent brute force on small graphs: every
set partition of the units, each part checked for its band and its connectivity."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.geo.exact import band_division
from gridmap.geo.graph import UnitGraph

LO, HI = 300, 500


def set_partitions(items: list[int]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in set_partitions(rest):
        for i in range(len(smaller)):
            yield smaller[:i] + [[first] + smaller[i]] + smaller[i + 1:]
        yield [[first]] + smaller


def connected(group: list[int], edges: set[tuple[int, int]]) -> bool:
    seen, stack = {group[0]}, [group[0]]
    while stack:
        v = stack.pop()
        for w in group:
            if w not in seen and ((v, w) in edges or (w, v) in edges):
                seen.add(w)
                stack.append(w)
    return len(seen) == len(group)


def brute_force(households: list[int], edges: set[tuple[int, int]]) -> bool:
    return any(all(LO <= sum(households[i] for i in part) <= HI and connected(part, edges) for part in parts)
               for parts in set_partitions(list(range(len(households)))))


def fewest_misses(households: list[int], edges: set[tuple[int, int]], miss_band: tuple[float, float]) -> float:
    """The fewest parts outside the band over every division into connected parts whose parts
    outside the band stay within ``miss_band`` (inf when there is no such division)."""
    best = float("inf")
    for parts in set_partitions(list(range(len(households)))):
        totals = [sum(households[i] for i in part) for part in parts]
        outside = [t for t in totals if not LO <= t <= HI]
        if all(miss_band[0] <= t <= miss_band[1] for t in outside) and all(connected(p, edges) for p in parts):
            best = min(best, len(outside))
    return best


@st.composite
def small_graphs(draw):
    """Up to 8 units (Bell(8) = 4,140 set partitions), some without households, on a random
    connected or disconnected graph."""
    n = draw(st.integers(1, 8))
    households = draw(st.lists(st.sampled_from([0, 0, 60, 120, 150, 180, 240, 260, 320, 420, 520]),
                               min_size=n, max_size=n))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    return households, edges


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_graphs())
def test_the_search_agrees_with_the_brute_force(graph) -> None:
    households, edges = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    found = band_division(np.array(households, dtype=float), left, right, LO, HI)
    assert found.complete  # tiny graphs never run out of steps
    assert (found.groups is not None) == brute_force(households, set(edges))
    if found.groups is not None:  # and what it returns is such a division
        every = sorted(np.concatenate(found.groups).tolist()) if found.groups else []
        assert every == list(range(len(households)))
        for group in found.groups:
            assert LO <= sum(households[i] for i in group) <= HI
            assert connected(group.tolist(), set(edges))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_graphs(), st.integers(0, 3), st.sampled_from([(0.0, float("inf")), (200.0, 640.0), (250.0, 520.0)]))
def test_a_search_allowing_misses_agrees_with_the_brute_force(graph, misses: int, miss_band) -> None:
    """With ``misses`` allowed (each within ``miss_band``), a division is found exactly when
    the fewest misses of any such division (brute force) is at most that, and the one found has
    that fewest count: so a complete search that finds none proves the fewest is above
    ``misses``."""
    households, edges = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    found = band_division(np.array(households, dtype=float), left, right, LO, HI, misses=misses, miss_band=miss_band)
    fewest = fewest_misses(households, set(edges), miss_band)
    assert found.complete
    assert (found.groups is not None) == (fewest <= misses)
    if found.groups is not None:
        assert sorted(np.concatenate(found.groups).tolist()) == list(range(len(households)))
        assert all(connected(group.tolist(), set(edges)) for group in found.groups)
        outside = [t for t in (sum(households[i] for i in group) for group in found.groups) if not LO <= t <= HI]
        assert len(outside) == fewest and all(miss_band[0] <= t <= miss_band[1] for t in outside)


@st.composite
def planned_graphs(draw):
    """A connected graph of up to 7 units (a path plus random chords) and a plan of it: one of its
    divisions into connected parts."""
    n = draw(st.integers(2, 7))
    households = draw(st.lists(st.sampled_from([0, 40, 120, 180, 240, 260, 280, 320, 420]), min_size=n, max_size=n))
    chords = [(a, b) for a in range(n) for b in range(a + 2, n)]
    edges = {(i, i + 1) for i in range(n - 1)} | set(draw(st.lists(st.sampled_from(chords), unique=True,
                                                                     max_size=len(chords))) if chords else [])
    plans = [parts for parts in set_partitions(list(range(n))) if all(connected(p, edges) for p in parts)]
    return households, edges, plans[draw(st.integers(0, len(plans) - 1))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planned_graphs())
def test_the_repair_takes_a_plan_with_fewer_misses_none_further_out(graph) -> None:
    """exact_regions on a plan of a small piece: the plan it returns has no more misses and no
    worse miss than the plan given, fewer misses whenever (brute force) some division has fewer
    with none further out than the given plan's worst, and every part connected."""
    from gridmap.geo.band import violation
    from gridmap.geo.graph import UnitGraph
    from gridmap.geo.partition import PartitionRules
    from gridmap.geo.repair import exact_regions

    households, edges, plan = graph
    n = len(households)
    left = np.array([a for a, _ in sorted(edges)], dtype=np.int64)
    right = np.array([b for _, b in sorted(edges)], dtype=np.int64)
    unit_graph = UnitGraph(n, left, right, np.full(len(left), 50.0), np.zeros(len(left)), np.zeros((n, 2)),
                           np.ones(n), np.ones(n))
    h = np.array(households, dtype=float)
    before = violation(np.array([h[p].sum() for p in plan]), LO, HI)
    after_parts = exact_regions(unit_graph, [np.array(p) for p in plan], h, PartitionRules(min_households=LO,
                                                                                            max_households=HI))
    after = violation(np.array([h[p].sum() for p in after_parts]), LO, HI)
    assert sorted(np.concatenate(after_parts).tolist()) == list(range(n))
    assert all(connected(p.tolist(), edges) for p in after_parts)
    assert (after > 0).sum() <= (before > 0).sum() and after.max(initial=0) <= before.max(initial=0)
    worst = before.max(initial=0)
    if fewest_misses(households, edges, (LO - worst, HI + worst)) < (before > 0).sum():
        assert (after > 0).sum() < (before > 0).sum()


def test_a_leaf_without_households_goes_with_its_neighbour_and_a_hub_region_is_proven_impossible() -> None:
    # 0 - 1 - 2 - 3 with a household-less leaf 4 on 2: {0,1} = 400, {2,3,4} = 400
    households = np.array([200, 200, 250, 150, 0], dtype=float)
    found = band_division(households, np.array([0, 1, 2, 2]), np.array([1, 2, 3, 4]), LO, HI)
    assert found.groups is not None and sorted(sorted(g.tolist()) for g in found.groups) == [[0, 1], [2, 3, 4]]
    # a star: three leaves of 250 on a hub of 10: one grid takes the hub and one leaf, the others are alone
    star = band_division(np.array([10, 250, 250, 250], dtype=float), np.array([0, 0, 0]), np.array([1, 2, 3]), LO, HI)
    assert star.impossible


def test_a_search_that_runs_out_of_steps_says_unknown() -> None:
    rng = np.random.default_rng(3)
    side = 8  # an 8 x 8 lattice of units of 40-160 households
    n = side * side
    households = rng.integers(40, 160, n).astype(float)
    left, right = [], []
    for i in range(n):
        if i % side < side - 1:
            left.append(i), right.append(i + 1)
        if i + side < n:
            left.append(i), right.append(i + side)
    found = band_division(households, np.array(left), np.array(right), LO, HI, budget=50)
    assert not found.complete and found.groups is None and not found.impossible
    assert band_division(households, np.array(left), np.array(right), LO, HI, budget=1000).groups is not None


def lattice(rows: int, cols: int) -> UnitGraph:
    """A rows × cols lattice of units as a unit graph (4-neighbour adjacency)."""

    index = np.arange(rows * cols).reshape(rows, cols)
    left = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    right = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    n = rows * cols
    xy = np.stack([np.tile(np.arange(cols), rows), np.repeat(np.arange(rows), cols)], axis=1) * 50.0
    return UnitGraph(n, left, right, np.full(len(left), 50.0), np.zeros(len(left)), xy.astype(float),
                     np.full(n, 2500.0), np.full(n, 200.0))


def test_the_whole_piece_is_searched_when_its_neighbourhoods_cannot_be() -> None:
    """A 6 × 10 piece cut into vertical strips, the first outside the band (504 households):
    with neighbourhoods too large to search, only the whole-piece search (more units than the
    neighbourhood limit, its own budget) mends them, and it leaves every grid in the band,
    contiguous, and every unit in exactly one grid."""
    from gridmap.geo.graph import is_connected
    from gridmap.geo.partition import PartitionRules
    from gridmap.geo.repair import exact_regions

    rows, cols = 6, 10
    graph = lattice(rows, cols)
    column = np.tile(np.arange(cols), rows)
    households = np.where(column < 2, 42.0, np.where(column >= 8, 38.0, 40.0))  # strips of 504, 480 ×3, 456
    strips = [np.flatnonzero(np.tile(np.arange(cols) // 2 == s, rows)) for s in range(cols // 2)]
    rules = PartitionRules(min_households=300, max_households=500)
    too_small = exact_regions(graph, [s.copy() for s in strips], households, rules, max_units=5, piece_max_units=40)
    assert any(not 300 <= households[p].sum() <= 500 for p in too_small)  # nothing it may search
    mended = exact_regions(graph, [s.copy() for s in strips], households, rules, max_units=5, piece_max_units=120)
    assert all(300 <= households[p].sum() <= 500 for p in mended)
    assert all(is_connected(graph, p) for p in mended)
    assert sorted(np.concatenate(mended).tolist()) == list(range(rows * cols))


@st.composite
def graphs_of_connectors(draw):
    """Up to 8 units, most of them empty, on a random graph: chains, stars and cycles of empty units
    between inhabited ones (what the search takes out first, gridmap.geo.exact.idle_connectors)."""
    n = draw(st.integers(1, 8))
    households = draw(st.lists(st.sampled_from([0, 0, 0, 0, 60, 120, 180, 240, 320]), min_size=n, max_size=n))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    return households, edges


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs_of_connectors(), st.integers(0, 2), st.sampled_from([(0.0, float("inf")), (-100.0, 640.0), (200.0, 640.0)]))
def test_empty_connectors_never_change_the_answer(graph, misses: int, miss_band) -> None:
    """With empty units taken out and put back, the search still finds a division exactly when one
    exists (brute force, misses allowed or not), with the fewest misses, and what it returns is
    one: every unit in one group, every group connected."""
    households, edges = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    found = band_division(np.array(households, dtype=float), left, right, LO, HI, misses=misses, miss_band=miss_band)
    fewest = fewest_misses(households, set(edges), miss_band)
    assert found.complete and (found.groups is not None) == (fewest <= misses)
    if found.groups is not None:
        assert sorted(np.concatenate(found.groups).tolist()) == list(range(len(households)))
        assert all(connected(group.tolist(), set(edges)) for group in found.groups)
        outside = [t for t in (sum(households[i] for i in group) for group in found.groups) if not LO <= t <= HI]
        assert len(outside) == fewest and all(miss_band[0] <= t <= miss_band[1] for t in outside)


@st.composite
def larger_graphs(draw):
    """Connected graphs of 17–80 units (a random tree plus chords), 0–160 households each: looked
    up 16 units at a time, and above 63 units with masks beyond 64 bits. With the bands below,
    about two thirds of the searches finish within the test's budget (a division or none) and
    the rest run out of steps."""
    n = draw(st.integers(17, 80))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    left = [int(rng.integers(0, i)) for i in range(1, n)]
    right = list(range(1, n))
    for _ in range(int(rng.integers(0, n))):
        a, b = (int(x) for x in rng.integers(0, n, 2))
        if a != b:
            left.append(a)
            right.append(b)
    return rng.integers(0, 160, n).astype(float), np.array(left), np.array(right)


@given(larger_graphs(), st.sampled_from([(300, 500), (150, 260)]), st.integers(0, 2))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_word_tables_search_as_the_byte_tables_do(graph, band, misses: int) -> None:
    """A long search over more than 16 units looks its bit sets up 16 units at a time: the same
    division and the same answer as a byte at a time, within the same budget of steps."""
    from gridmap.geo import exact

    households, left, right = graph
    answers = []
    for after in (1, 10 ** 9):  # widened at the first step, or never
        saved, exact.WORD_TABLES_AFTER_STEPS = exact.WORD_TABLES_AFTER_STEPS, after
        try:
            found = band_division(households, left, right, *band, budget=3_000, misses=misses)
        finally:
            exact.WORD_TABLES_AFTER_STEPS = saved
        answers.append((found.complete, None if found.groups is None else [g.tolist() for g in found.groups]))
    assert answers[0] == answers[1]


# a grid of 雨城区 (generated): 25 villas of 2 households, four 单元 of 12, and the 单元 (38–46
# households) of four towers; micro-grid band 50–80. Atoms in order, and their neighbour pairs.
VILLAS_AND_TOWERS = [12, 12, 12, 12] + [2] * 25 + [42, 42, 42, 44, 44, 38, 38, 46, 46]
VILLA_EDGES = [
    (0, 1), (0, 2), (0, 3), (0, 7), (0, 9), (0, 10), (0, 11), (0, 33), (1, 2), (2, 3), (2, 12), (2, 28), (2, 37),
    (3, 11), (3, 12), (4, 5), (4, 13), (5, 6), (5, 13), (5, 14), (6, 7), (6, 14), (6, 15), (7, 8), (7, 9), (7, 15),
    (7, 16), (8, 9), (8, 16), (8, 17), (9, 10), (9, 17), (9, 18), (10, 11), (10, 18), (10, 19), (11, 12), (11, 19),
    (11, 20), (12, 20), (12, 28), (13, 14), (13, 21), (14, 15), (14, 21), (14, 22), (15, 16), (15, 22), (15, 23),
    (16, 17), (16, 23), (16, 24), (17, 18), (17, 24), (17, 25), (18, 19), (18, 25), (18, 26), (19, 20), (19, 26),
    (19, 27), (20, 27), (20, 28), (21, 22), (22, 23), (23, 24), (23, 31), (24, 25), (24, 31), (25, 26), (25, 31),
    (26, 27), (26, 31), (27, 28), (27, 29), (27, 30), (27, 31), (28, 29), (28, 37), (29, 30), (30, 31), (32, 33),
    (32, 34), (32, 35), (33, 35), (34, 35), (34, 36), (35, 36), (35, 37), (36, 37)]


def test_where_the_search_runs_out_of_steps_the_blobs_of_small_units_find_a_division(monkeypatch) -> None:
    """On many small units the search can run out of steps where a division exists; it then
    searches blobs of neighbouring small units, and a division it finds there is a division of
    the units (every group connected, every unit in one, the misses allowed and within their
    band). The plan's heuristics left 4 micro-grids of this grid outside 50–80; on the units alone
    the search allowed 3 is still looking when its steps run out."""
    from gridmap.geo import exact

    households = np.array(VILLAS_AND_TOWERS, dtype=float)
    left, right = (np.array(side) for side in zip(*VILLA_EDGES))
    ask = dict(budget=20_000, misses=3, miss_band=(46.0, 84.0))
    with monkeypatch.context() as patch:  # the search on the units alone
        patch.setattr(exact, "coarse_division", lambda *a, **k: exact.Division(None, False))
        assert not band_division(households, left, right, 50, 80, **ask).complete
    found = band_division(households, left, right, 50, 80, **ask)
    assert found.groups is not None
    assert sorted(np.concatenate(found.groups).tolist()) == list(range(len(households)))
    sums = np.array([households[g].sum() for g in found.groups])
    outside = (sums < 50) | (sums > 80)
    assert outside.sum() <= 3 and ((sums >= 46) & (sums <= 84)).all()
    neighbours = {i: set() for i in range(len(households))}
    for a, b in VILLA_EDGES:
        neighbours[a].add(b), neighbours[b].add(a)
    for group in found.groups:  # each group connected
        members, seen, todo = set(group.tolist()), {int(group[0])}, [int(group[0])]
        while todo:
            for v in neighbours[todo.pop()] & members - seen:
                seen.add(v), todo.append(v)
        assert seen == members
    # blobs that find nothing prove nothing: the answer stays "unknown"
    assert not exact.coarse_division(households, left, right, 50, 80, budget=20_000, misses=0).complete
