"""The merge's parts on their own: conflict detection (shared work between identical layers,
community crossings measured beyond slivers) and the nearest-border queries of offset detection."""

from __future__ import annotations

import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo.conflicts import find_conflicts
from gridmap.geo.offsets import BorderReference, detect_offset
from gridmap.geo.shapes import LocalScale

SCALE = LocalScale.at(30.0)
M = 1 / SCALE.mx  # one metre east–west in degrees at 30°N
N = 1 / SCALE.my  # one metre north–south


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres from (120°E, 30°N)."""
    return shapely.box(120 + x0 * M, 30 + y0 * N, 120 + x1 * M, 30 + y1 * N)


def _communities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["330102001001", "330102001002"]},
                            geometry=[_box(0, 0, 200, 200), _box(200, 0, 400, 200)], crs=4490)


def _layer(department: str, ids: list[str], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"department": department, "grid_id": ids}, geometry=geoms, crs=4490)


def _conflicts(grids: gpd.GeoDataFrame, workers: int = 2) -> tuple[pd.DataFrame, dict]:
    communities = _communities()
    territory = shapely.union_all(communities.geometry.values)
    rows, uncovered = find_conflicts(grids, communities, territory, SCALE, tolerance_m2=50.0, sliver_width_m=8.0,
                                     workers=workers)
    return pd.DataFrame(rows), uncovered


def test_identical_layers_report_the_same_conflicts_under_their_own_names() -> None:
    """Departments sharing one layer's geometry are examined once, yet each gets its own rows,
    with its own grid ids and name — the same rows as examining it alone."""
    shapes = [_box(0, 0, 150, 200), _box(140, 0, 320, 200), _box(320, 0, 380, 200), _box(350, 150, 450, 200)]
    a = _layer("城管", ["A1", "A2", "A3", "A4"], shapes)
    b = _layer("民政", ["b-01", "b-02", "b-03", "b-04"], shapes)
    together, uncovered = _conflicts(pd.concat([a, b], ignore_index=True))
    alone, _ = _conflicts(b, workers=1)
    mine = together[together["department"] == "民政"].drop(columns="geometry").reset_index(drop=True)
    assert mine.astype(str).equals(alone.drop(columns="geometry").astype(str))
    theirs = together[together["department"] == "城管"]
    assert len(theirs) == len(mine) > 0
    assert set(theirs["kind"]) == {"overlap", "gap", "outside", "crosses_community"}
    assert all(g.startswith("A") for grids in theirs["grids"] for g in grids)
    assert all("城管" in d or "communities" in d for d in theirs["detail"] if "slivers" not in d)
    overlaps = {tuple(g): a for g, a in zip(theirs[theirs["kind"] == "overlap"]["grids"],
                                            theirs[theirs["kind"] == "overlap"]["area_m2"])}
    assert set(overlaps) == {("A1", "A2"), ("A3", "A4")}
    assert abs(overlaps[("A1", "A2")] - 10 * 200) < 5 and abs(overlaps[("A3", "A4")] - 30 * 50) < 5
    gap = theirs[theirs["kind"] == "gap"]  # 380–400 m east, below A4
    assert len(gap) == 1 and abs(gap.iloc[0]["area_m2"] - 20 * 150) < 5
    assert abs(uncovered["城管"] - gap.iloc[0]["area_m2"]) < 1e-6
    outside = theirs[theirs["kind"] == "outside"]
    assert len(outside) == 1 and abs(outside.iloc[0]["area_m2"] - 50 * 50) < 5 and outside.iloc[0]["grids"] == ["A4"]
    crossing = theirs[theirs["kind"] == "crosses_community"]
    assert list(crossing["grids"]) == [["A2"]] and "330102001001 33%, 330102001002 67%" in crossing.iloc[0]["detail"]


def test_a_grid_crosses_a_community_only_where_it_reaches_beyond_a_sliver() -> None:
    """A grid spilling 5 m into the next community (a digitising slip, thinner than the 8 m sliver
    width) does not cross it; one reaching 30 m into it does, with the share on each side."""
    thin = _layer("党建", ["T"], [_box(0, 0, 205, 200)])
    wide = _layer("综治", ["W"], [_box(0, 0, 230, 200)])
    found, _ = _conflicts(pd.concat([thin, wide], ignore_index=True))
    crossing = found[found["kind"] == "crosses_community"]
    assert list(crossing["grids"]) == [["W"]]
    assert "330102001001 87%" in crossing.iloc[0]["detail"] and "330102001002 13%" in crossing.iloc[0]["detail"]
    assert (found[found["department"] == "党建"]["kind"] != "crosses_community").all()


def test_every_pair_of_grids_whose_interiors_meet_is_an_overlap() -> None:
    """A grid inside another that touches its border, and a grid drawn twice, are overlaps as much
    as two grids that cross (the ``overlaps`` and ``contains_properly`` queries used before found
    neither); grids that only share a border are not."""
    layer = _layer("综治", ["Z1", "Z2", "Z3", "Z4"],
                   [_box(0, 0, 200, 200), _box(0, 0, 100, 100), _box(200, 0, 400, 200), _box(200, 0, 400, 200)])
    found, _ = _conflicts(layer)
    overlaps = {tuple(g): a for g, a in zip(found[found["kind"] == "overlap"]["grids"],
                                            found[found["kind"] == "overlap"]["area_m2"])}
    assert set(overlaps) == {("Z1", "Z2"), ("Z3", "Z4")}
    assert abs(overlaps[("Z1", "Z2")] - 100 * 100) < 5 and abs(overlaps[("Z3", "Z4")] - 200 * 200) < 5


def test_conflicts_started_in_the_background_are_the_same_and_raise_what_a_layer_raised(monkeypatch) -> None:
    """``start_conflicts`` with background threads or none gives the rows ``find_conflicts`` gives
    on one thread, layer by layer in the input order; an error in a layer examined on a background
    thread is raised by ``result()``, not lost."""
    from gridmap.geo import conflicts

    layers = pd.concat([_layer(f"部门{k}", [f"{k}-{i}" for i in range(3)],
                               [_box(0, 0, 150 + 10 * k, 200), _box(140, 0, 320, 200), _box(320, 0, 380 + k, 200)])
                        for k in range(5)], ignore_index=True)
    communities = _communities()
    territory = shapely.union_all(communities.geometry.values)
    alone, _ = _conflicts(layers, workers=1)

    def started(background: int):
        return conflicts.start_conflicts(layers, communities, territory, SCALE, tolerance_m2=50.0, sliver_width_m=8.0,
                                         background=background).result()

    for background in (0, 1, 3):
        rows, _ = started(background)
        assert pd.DataFrame(rows).drop(columns="geometry").astype(str).equals(
            alone.drop(columns="geometry").astype(str))
    real = conflicts.layer_conflicts

    failed_on: list[str] = []

    def failing(geoms, where, scale, limits):
        if len(geoms) and abs(shapely.bounds(geoms[2])[2] - (120 + 384 * M)) < 1e-9:  # 部门4's layer alone
            failed_on.append(threading.current_thread().name)
            raise RuntimeError("layer 部门4 failed")
        return real(geoms, where, scale, limits)

    monkeypatch.setattr(conflicts, "layer_conflicts", failing)
    search = conflicts.start_conflicts(layers, communities, territory, SCALE, tolerance_m2=50.0, sliver_width_m=8.0,
                                       background=5)
    for _ in range(500):  # until the background threads have taken every layer
        if search._waiting.empty():
            break
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="部门4"):
        search.result()
    assert failed_on and failed_on[0] != threading.main_thread().name


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_overlaps_are_the_pairs_a_pairwise_overlay_finds(seed: int) -> None:
    """On a tiling of boxes with some moved, cut or repeated, the overlaps reported are exactly
    the pairs whose intersection has an area above the tolerance, each with that area (the
    pairwise overlay, done the slow way)."""
    rng = np.random.default_rng(seed)
    geoms = [_box(x, y, x + 100, y + 100) for x in range(0, 400, 100) for y in range(0, 200, 100)]
    for i in rng.choice(len(geoms), 3, replace=False):
        dx, dy = rng.integers(-40, 41, 2)
        geoms[i] = shapely.affinity.translate(geoms[i], dx * M, dy * N)
    geoms.append(geoms[int(rng.integers(len(geoms)))])  # one grid twice
    geoms.append(_box(*(int(v) for v in rng.integers(0, 300, 2)), 380, 190))  # one large grid over several
    ids = [f"G{i:02d}" for i in range(len(geoms))]
    found, _ = _conflicts(_layer("城管", ids, geoms), workers=1)
    reported = {tuple(g): a for g, a in zip(found[found["kind"] == "overlap"]["grids"],
                                            found[found["kind"] == "overlap"]["area_m2"])}
    expected = {}
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            area = float(SCALE.area([shapely.intersection(geoms[i], geoms[j])])[0])
            width = float(SCALE.width([shapely.intersection(geoms[i], geoms[j])])[0]) if area > 0 else 0.0
            if area >= 50.0 and width >= 8.0:
                expected[(ids[i], ids[j])] = area
    assert set(reported) == set(expected)
    assert all(abs(reported[k] - expected[k]) < 1e-6 * expected[k] + 1e-3 for k in expected)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_nearest_border_matches_shapely_distances(seed: int) -> None:
    """The k-d tree answer equals the exact distance to the nearest border segment (capped)."""
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0, 300, size=(40, 2))
    ends = starts + rng.normal(0, 40, size=(40, 2))
    lines = shapely.linestrings(np.stack([np.c_[120 + starts[:, 0] * M, 30 + starts[:, 1] * N],
                                          np.c_[120 + ends[:, 0] * M, 30 + ends[:, 1] * N]], axis=1))
    reference = BorderReference(lines, SCALE.mx)
    points = rng.uniform(-50, 350, size=(200, 2))
    xy = np.c_[120 + points[:, 0] * M, 30 + points[:, 1] * N]
    distance, move = reference.nearest(xy, cap_m=60.0)
    metric_points = SCALE.metric(shapely.points(xy))
    exact = np.min([shapely.distance(metric_points, line) for line in SCALE.metric(lines)], axis=0)
    assert np.allclose(distance, np.minimum(exact, 60.0), atol=1e-6)
    within = exact < 60.0
    assert np.allclose(np.hypot(*move[within].T), exact[within], atol=1e-6)
    assert np.isnan(move[~within]).all()


def test_a_shifted_layer_is_found_with_its_shift() -> None:
    """Irregular blocks moved 120 m east and 45 m north as a whole: the shift is recovered to the
    decimetre and the borders land back on the territory's; the unmoved layer is no offset."""
    rng = np.random.default_rng(7)
    xs, ys = np.cumsum(rng.uniform(60, 130, 12)), np.cumsum(rng.uniform(50, 110, 10))
    blocks = [_box(x0, y0, x1, y1) for x0, x1 in zip(xs[:-1], xs[1:]) for y0, y1 in zip(ys[:-1], ys[1:])]
    reference = BorderReference(shapely.boundary(np.array(blocks)), SCALE.mx)
    moved = shapely.transform(np.array(blocks), lambda c: c + np.array([120 * M, 45 * N]))
    offset = detect_offset(gpd.GeoDataFrame(geometry=moved, crs=4490), reference, department="d", min_shift_m=25)
    assert offset is not None and not offset.gcj02
    assert abs(offset.dx_deg / M + 120) < 0.1 and abs(offset.dy_deg / N + 45) < 0.1
    assert offset.after_m < 0.05 and offset.before_m > 10
    aligned = detect_offset(gpd.GeoDataFrame(geometry=np.array(blocks), crs=4490), reference, department="d",
                            min_shift_m=25)
    assert aligned is None
