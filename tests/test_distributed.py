"""Partitions and micro-grids on a real Dask cluster (a ``dask scheduler`` and two ``dask worker``
processes, started here as a user would on several hosts) give the serial answer exactly: the
same grid for every unit, the same micro-grids, the same stored plan."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

import gridmap as gm
from gridmap.distributed import DaskRunner, Placement, runner_for
from gridmap.geo.graph import build_graph, grouped, piece_graphs
from gridmap.geo.microgrids import divide
from gridmap.geo.partition import PartitionRules, assign_grids
from gridmap.geo.synthetic import unit_grid
from gridmap.geo.tasks import BATCHES_PER_WORKER, SERIAL, batches, run_pieces
from test_microgrids import layout

MONACO = "980100"
DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A Dask scheduler and two single-threaded workers, each its own process (the CLI a cluster
    of several hosts runs), on loopback."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s"}
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--dashboard-address", f":{_free_port()}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        procs += [subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-dashboard"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _lumpy_territory() -> tuple:
    """About 3,600 units in 18 communities with a tight band, so pieces need re-cuts, pair splits
    and exact searches (the paths with random streams and tie-breaks), not bisection alone."""
    units = unit_grid(3600, units_per_community=200, seed=11)
    return units, build_graph(units), PartitionRules(min_households=300, max_households=380)


def test_batches_cover_every_piece_once_in_order() -> None:
    sizes = np.array([5, 300, 7, 120, 120, 1, 44, 900, 3, 60] * 5)
    for workers in (1, 2, 3, 8):
        groups = batches(sizes, workers)
        joined = np.concatenate(groups)
        assert sorted(joined.tolist()) == list(range(len(sizes)))
        assert all((np.diff(g) > 0).all() for g in groups)
        assert len(groups) == (1 if workers == 1 else min(len(sizes), workers * BATCHES_PER_WORKER))
    # LPT: no batch holds more than the largest piece above the mean load
    loads = [sizes[g].sum() for g in batches(sizes, 2)]  # 50 pieces in 32 batches
    assert max(loads) - min(loads) <= sizes.max()
    assert run_pieces(SERIAL, lambda batch, add: [x + add for x in batch], [1, 2, 3], np.array([1, 1, 1]),
                      what=("x", "x"), add=10) == [11, 12, 13]


def test_piece_graphs_are_the_pieces_of_the_whole() -> None:
    units, graph, _ = _lumpy_territory()
    labels = graph.components()
    wanted = np.unique(labels)[::3]
    for (members, edges, local), expected in zip(piece_graphs(graph, labels, wanted), grouped(labels, wanted)):
        assert (members == expected).all() and (np.diff(members) > 0).all()
        assert local.n == len(members)
        assert (members[local.left] == graph.left[edges]).all() and (members[local.right] == graph.right[edges]).all()
        inner = np.isin(graph.left, members) & np.isin(graph.right, members)
        assert sorted(np.flatnonzero(inner).tolist()) == sorted(edges.tolist())
        # in the piece's own order, by their two ends (not where the whole graph found them)
        ends = graph.left[edges] * graph.n + graph.right[edges]
        assert (np.diff(ends) > 0).all()
        assert (local.xy == graph.xy[members]).all()


def test_partition_on_a_dask_cluster_is_the_serial_one(scheduler: str) -> None:
    from distributed import Client

    units, graph, rules = _lumpy_territory()
    serial = assign_grids(units, graph, rules, seed=4)
    totals = pd.Series(units["households"].to_numpy()).groupby(serial.grid_of).sum()
    assert (~totals.between(300, 380)).sum() > 0 or len(totals) > 150  # a territory that makes the repairs work
    with Client(scheduler) as client:
        runner = DaskRunner(client)
        assert runner.workers == 2
        spread = assign_grids(units, graph, rules, seed=4, runner=runner)
        again = assign_grids(units, graph, rules, seed=5, runner=runner)
        notebook = gm.partition(units, min_households=300, max_households=380, seed=4, client=client)
    assert (spread.grid_of == serial.grid_of).all() and spread.kinds == serial.kinds
    assert (again.grid_of != serial.grid_of).any()  # the seed matters, so the equality above could fail
    here = gm.partition(units, min_households=300, max_households=380, seed=4)
    assert notebook.units["grid_code"].equals(here.units["grid_code"])  # the notebook's door
    # the grids' outlines were dissolved on the workers too: the same bytes
    assert (shapely.to_wkb(notebook.grids.geometry.values) == shapely.to_wkb(here.grids.geometry.values)).all()


@pytest.mark.timeout(120)  # the old failure could also hang
def test_the_same_batches_again_and_again_on_one_cluster() -> None:
    """Two runs over the same pieces (another seed, a retry) hand the workers equal batches. With
    content-hashed keys the second run's data took the first run's keys, and the first run's
    release, still on its way to the scheduler, took the data from under the second ("lost
    dependencies": CI failed so once; the loop below failed within three rounds, or hung: twelve
    rounds give it four times that)."""
    def scaled(batch: list[int], factor: int) -> list[int]:  # a closure: shipped by value
        return [x * factor for x in batch]

    groups = [list(range(i, i + 50)) for i in range(32)]
    with runner_for(1, local_workers=2) as runner:
        for factor in range(12):
            answers = runner.map(scaled, groups, what=("rounds", "轮"), factor=factor)
            assert answers == [[x * factor for x in g] for g in groups]


def test_the_cluster_holds_a_few_batches_at_once_and_answers_in_order(scheduler: str) -> None:
    """A runner keeps at most two batches a worker on the cluster (the rest wait here), releases
    each batch and its answer there once the answer is fetched, and returns the answers in the
    batches' order however they finish: a city's pieces are not all held by the workers at once."""
    from distributed import Client

    def slow_reversed(batch: list[int]) -> list[int]:  # later batches finish first
        time.sleep(0.02 * (40 - batch[0]) / 40)
        return batch[::-1]

    class Counting:  # the real client, with the batches it has out counted
        def __init__(self, client):
            self.client, self.out, self.most = client, 0, 0

        def __getattr__(self, name):
            return getattr(self.client, name)

        def scatter(self, data, **kwargs):
            self.out += len(data)
            self.most = max(self.most, self.out)
            return self.client.scatter(data, **kwargs)

        def cancel(self, futures):
            self.out -= sum(1 for f in futures if f.key.startswith("list-"))
            return self.client.cancel(futures)

    groups = [list(range(i, i + 5)) for i in range(40)]
    with Client(scheduler) as client:
        counting = Counting(client)
        runner = DaskRunner(counting)
        assert runner.map(slow_reversed, groups, what=("batches", "批")) == [g[::-1] for g in groups]
        assert counting.most == 2 * runner.workers == 4 and counting.out == 0
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
            time.sleep(0.1)  # the releases reach the scheduler a moment later
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


def test_a_failing_batch_raises_and_leaves_nothing_of_the_call_on_the_cluster(scheduler: str) -> None:
    """A task that raises stops the map with its error, and the batches still in flight with it are
    cancelled and released: a notebook's long-lived client keeps no stray work or data."""
    from distributed import Client

    def fails_on_seven(batch: list[int]) -> list[int]:
        if batch[0] == 7:
            raise ValueError("batch seven")
        time.sleep(0.5)  # the others are still running when seven fails
        return batch

    groups = [[i] for i in range(40)]
    with Client(scheduler) as client:
        runner = DaskRunner(client)
        with pytest.raises(ValueError, match="batch seven"):
            runner.map(fails_on_seven, groups[4:] + groups[:4], what=("batches", "批"))  # seven is in the first four
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
        assert runner.map(fails_on_seven, [[1], [2]], what=("batches", "批")) == [[1], [2]]  # the cluster still serves


def test_micro_grids_on_a_dask_cluster_are_the_serial_ones(scheduler: str) -> None:
    from distributed import Client

    rng = np.random.default_rng(7)
    frames = [layout(rng.integers(16, 130, 14).tolist(), rng.integers(0, 4, 14).tolist(), code=f"5118020010010{i:02d}")
              for i in range(6)]
    # six grids side by side, 2 km apart
    grids = pd.concat([g.set_geometry(g.translate(0.02 * i, 0)) for i, (g, _) in enumerate(frames)], ignore_index=True)
    buildings = pd.concat([b.set_geometry(b.translate(0.02 * i, 0)) for i, (_, b) in enumerate(frames)],
                          ignore_index=True)
    serial = divide(grids, buildings, band=(50, 80))
    with Client(scheduler) as client:
        spread = divide(grids, buildings, band=(50, 80), runner=DaskRunner(client))
        notebook = gm.microgrids(grids, buildings, min_households=50, max_households=80, client=client)
    assert notebook.microgrids["microgrid_code"].tolist() == serial.microgrids["microgrid_code"].tolist()
    assert len(serial.microgrids) > 6
    assert serial.microgrids["microgrid_code"].tolist() == spread.microgrids["microgrid_code"].tolist()
    assert serial.microgrids["households"].tolist() == spread.microgrids["households"].tolist()
    assert shapely.equals(serial.microgrids.geometry.values, spread.microgrids.geometry.values).all()


def _assignment(engine: sa.Engine, plan_id: int) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pu.unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
                                    "WHERE pu.plan_id = :p"), {"p": plan_id}).all()
    return dict(rows)


def test_gridmap_partition_with_a_scheduler_stores_the_serial_plan(monaco_built: sa.Engine, database_url: str,
                                                                     scheduler: str) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "gridmap.cli", "partition", "--territory", MONACO, "--seed", "3"]
    spread = subprocess.run([*cli, "--scheduler", scheduler], env=env, capture_output=True, text=True)
    assert spread.returncode == 0, spread.stderr
    assert f"the Dask scheduler at {scheduler} (2 workers)" in spread.stderr and "dashboard http" in spread.stderr
    assert "batches done on 2 Dask workers" in spread.stderr and "个 Dask 工作进程已完成" in spread.stderr
    here = subprocess.run([*cli, "--local-workers", "0"], env=env, capture_output=True, text=True)
    assert here.returncode == 0, here.stderr
    assert "Dask" not in here.stderr
    with monaco_built.connect() as conn:
        first, second = conn.execute(sa.text("SELECT id FROM plans ORDER BY id DESC LIMIT 2")).scalars().all()[::-1]
    a, b = _assignment(monaco_built, first), _assignment(monaco_built, second)
    assert len(a) > 300 and a == b


def test_merge_on_a_dask_cluster_is_the_serial_one(scheduler: str) -> None:
    """The merge's unified plan cut on the cluster's workers: the same grid for every unit, the
    same crosswalk and conflicts as serially."""
    from distributed import Client, get_task_stream

    from gridmap.geo.departments import cells
    from gridmap.geo.merge import merge_layers

    units = unit_grid(1200, units_per_community=200, seed=7)
    communities = units.dissolve("community_code").reset_index().rename(columns={"community_code": "code"})
    squares = cells(shapely.union_all(communities.geometry.values), 300.0)
    layers = {"党建": gpd.GeoDataFrame({"grid_id": communities["code"]}, geometry=communities.geometry.values, crs=4490),
              "城管": gpd.GeoDataFrame({"grid_id": [f"C{i}" for i in range(len(squares))]}, geometry=squares, crs=4490)}
    serial = merge_layers(layers, units, communities, seed=2)
    with Client(scheduler) as client:
        with get_task_stream(client) as tasks:
            spread = merge_layers(layers, units, communities, seed=2, runner=DaskRunner(client))
        other = merge_layers(layers, units, communities, seed=9, runner=DaskRunner(client))
    assert {t["worker"] for t in tasks.data} and len(tasks.data) >= 2  # the pieces were cut on the workers
    assert spread.units["grid_code"].equals(serial.units["grid_code"])
    assert spread.crosswalk.equals(serial.crosswalk) and spread.conflicts["kind"].equals(serial.conflicts["kind"])
    assert not other.units["grid_code"].equals(serial.units["grid_code"])  # the seed matters: the equality could fail


def test_gridmap_merge_with_a_scheduler_stores_the_serial_plan(monaco_built: sa.Engine, database_url: str,
                                                                 scheduler: str, tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    gridmap = [sys.executable, "-m", "gridmap.cli"]
    made = subprocess.run([*gridmap, "departments", "--territory", MONACO, "--out", str(tmp_path), "--count", "4"],
                          env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    files = sorted(str(p) for p in tmp_path.glob("*.gpkg"))
    cli = [*gridmap, "merge", "--territory", MONACO, *files, "--seed", "3"]
    spread = subprocess.run([*cli, "--scheduler", scheduler], env=env, capture_output=True, text=True)
    assert spread.returncode == 0, spread.stderr
    assert f"the Dask scheduler at {scheduler} (2 workers)" in spread.stderr
    assert "batches done on 2 Dask workers" in spread.stderr
    here = subprocess.run([*cli, "--local-workers", "0"], env=env, capture_output=True, text=True)
    assert here.returncode == 0, here.stderr
    assert "Dask" not in here.stderr
    with monaco_built.connect() as conn:
        first, second = conn.execute(sa.text("SELECT id FROM plans WHERE origin = 'merge' ORDER BY id DESC LIMIT 2")
                                     ).scalars().all()[::-1]
    a, b = _assignment(monaco_built, first), _assignment(monaco_built, second)
    assert len(a) > 300 and a == b


def test_an_unreachable_scheduler_is_refused_before_any_work(monaco_built: sa.Engine, database_url: str) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "partition", "--territory", MONACO,
                           "--scheduler", address], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and time.monotonic() - started < 30
    assert f"cannot reach the Dask scheduler at {address}" in done.stderr and "无法连接 Dask 调度器" in done.stderr
    with monaco_built.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plans")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 0


def test_small_territories_stay_serial_and_large_ones_get_a_local_cluster() -> None:
    with runner_for(10_000, min_units=50_000) as runner:
        assert runner is SERIAL
    with Placement(local_workers=0, scheduler="tcp://127.0.0.1:1").runner(10**7) as runner:
        assert runner is SERIAL  # --local-workers 0: here, whatever the size or the settings
    with runner_for(60_000, min_units=50_000) as runner:
        if (os.cpu_count() or 1) < 2:  # one core: nothing to run beside, serial is faster
            assert runner is SERIAL
        else:
            assert isinstance(runner, DaskRunner) and runner.workers == os.cpu_count()
            assert runner.client.cluster is not None  # a LocalCluster, closed on leaving


def test_units_built_in_pieces_on_a_dask_cluster(scheduler: str) -> None:
    """A generated territory of 16 communities (borders on road centre lines, buildings in rows)
    built in pieces on the cluster's two workers: the pieces tile every community as the single
    build does (the same units by id, each building's households in one unit, the seams matched
    vertex for vertex so the whole is one clean coverage), and the communities of each piece lie
    together."""
    from distributed import Client

    from gridmap.geo.synthetic import centreline_layout
    from gridmap.geo.unit_pieces import _owners, neighbouring_groups

    layout = centreline_layout(3, nx=4, ny=4)
    whole = gm.build_units(layout.communities, layout.roads, layout.buildings)
    groups = neighbouring_groups(layout.communities, _owners(layout.communities, layout.buildings), 4)
    assert sorted(np.concatenate(groups)) == list(range(16)) and len(groups) == 4
    for group in groups:  # each piece's communities make one connected area
        outline = shapely.union_all(layout.communities.geometry.values[group])
        assert shapely.get_num_geometries(outline) == 1
    with Client(scheduler) as client:  # the notebook's door
        pieces = gm.build_units(layout.communities, layout.roads, layout.buildings, client=client)
    assert list(pieces["unit_id"]) == list(whole.sort_values("unit_id")["unit_id"])
    assert pieces["households"].sum() == whole["households"].sum() == pieces.attrs["households_in_buildings"]
    assert shapely.coverage_is_valid(pieces.geometry.values) and shapely.is_valid(pieces.geometry.values).all()
    by_community = pieces.groupby("community_code").households.sum()
    assert by_community.equals(whole.groupby("community_code").households.sum())
    # every community exactly tiled: its units' union is its outline
    for code, outline in zip(layout.communities["code"], layout.communities.geometry.values):
        own = pieces[pieces["community_code"] == code].geometry.values
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(own), outline)) < 1e-12


def test_a_territory_above_the_piece_size_is_built_in_pieces_on_one_worker(monkeypatch) -> None:
    """A territory of more buildings than a piece may hold is built in pieces even serially
    (memory bounded by the piece, not the city), and the pieces make the whole build's units: the
    same ids and households per community, one clean coverage, every community tiled."""
    from gridmap.geo import unit_pieces
    from gridmap.geo.synthetic import centreline_layout

    layout = centreline_layout(5, nx=4, ny=4)
    whole = gm.build_units(layout.communities, layout.roads, layout.buildings)
    assert unit_pieces.piece_count(len(layout.buildings), 1) == 1  # as shipped: built whole
    monkeypatch.setattr(unit_pieces, "MAX_PIECE_BUILDINGS", len(layout.buildings) // 6 + 1)
    assert unit_pieces.piece_count(len(layout.buildings), 1) == 6
    built: list[int] = []
    real = unit_pieces.build_units
    monkeypatch.setattr(unit_pieces, "build_units", lambda communities, *a, **k: built.append(len(communities))
                        or real(communities, *a, **k))
    pieces = unit_pieces.build_units_in_pieces(layout.communities, layout.roads, layout.buildings)
    assert len(built) == 6 and sum(built) == 16  # six pieces, one after the other, each community once
    assert list(pieces["unit_id"]) == list(whole.sort_values("unit_id")["unit_id"])
    assert pieces.groupby("community_code").households.sum().equals(whole.groupby("community_code").households.sum())
    assert shapely.coverage_is_valid(pieces.geometry.values) and shapely.is_valid(pieces.geometry.values).all()
    for code, outline in zip(layout.communities["code"], layout.communities.geometry.values):
        own = pieces[pieces["community_code"] == code].geometry.values
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(own), outline)) < 1e-12


def _pieces_built(layout, count: int) -> list:
    """``layout``'s units built as ``count`` pieces, not yet joined."""
    from gridmap.geo import unit_pieces
    from gridmap.geo.crs import metric_crs_for_frame

    layers = {"roads": layout.roads, "buildings": layout.buildings, "waterways": None, "railways": None,
              "compounds": None, "sites": None}
    owner = unit_pieces._owners(layout.communities, layout.buildings)
    pieces = unit_pieces._pieces(layout.communities, layers, owner,
                                 unit_pieces.neighbouring_groups(layout.communities, owner, count))
    return unit_pieces._build_batch(pieces, code_column="code", options={},
                                    metric_crs=metric_crs_for_frame(layout.communities).to_string())


def test_pieces_join_around_a_piece_without_units_and_measure_in_the_crs_given(monkeypatch) -> None:
    """A piece whose communities made no units (degenerate outlines) is passed over by the join,
    not an error; and a metric CRS given to a build in pieces is the one every piece measures in
    (it used to reach build_units twice and fail once a territory was large enough to be cut)."""
    from gridmap.geo import unit_pieces
    from gridmap.geo.synthetic import centreline_layout

    layout = centreline_layout(3, nx=4, ny=4)
    built = _pieces_built(layout, 3)
    joined = unit_pieces._joined([built[0], built[1].iloc[:0], built[1], built[2]])
    assert len(joined) == sum(len(b) for b in built) and shapely.coverage_is_valid(joined.geometry.values)
    monkeypatch.setattr(unit_pieces, "MAX_PIECE_BUILDINGS", len(layout.buildings) // 3 + 1)
    utm = "EPSG:32648"  # not the territory's own (a Gauss-Krüger zone): areas differ measurably
    given = unit_pieces.build_units_in_pieces(layout.communities, layout.roads, layout.buildings, metric_crs=utm)
    own = unit_pieces.build_units_in_pieces(layout.communities, layout.roads, layout.buildings)
    assert given.attrs["metric_crs"] == utm != own.attrs["metric_crs"]
    assert list(given["unit_id"]) == list(own["unit_id"]) and not np.allclose(given["area_m2"], own["area_m2"], rtol=1e-6)


def test_the_seams_between_pieces_need_their_stitching() -> None:
    """The pieces as built, side by side, do not match along their seams (each side noded its
    border alone); joined, they do: the stitching is what makes them one coverage."""
    from gridmap.geo import unit_pieces
    from gridmap.geo.synthetic import centreline_layout

    layout = centreline_layout(3, nx=4, ny=4)
    built = _pieces_built(layout, 4)
    assert not shapely.coverage_is_valid(np.concatenate([b.geometry.values for b in built]))
    assert shapely.coverage_is_valid(unit_pieces._joined(built).geometry.values)


def test_an_edge_the_stitching_left_unmatched_is_matched_or_refused(monkeypatch) -> None:
    """Two units whose shared edge has a vertex on one side only (what the stitching left on a
    generated district of 576 communities) are made to match, every unit away from it untouched;
    an edge that cannot be matched is refused, never returned."""
    from gridmap.geo.unit_pieces import _matched

    left = shapely.Polygon([(0, 0), (1, 0), (1, 0.5), (1, 1), (0, 1)])
    right = shapely.Polygon([(1, 0), (2, 0), (2, 1), (1, 1)])
    far = shapely.box(5, 5, 6, 6)
    geoms = np.array([left, right, far], dtype=object)
    assert not shapely.coverage_is_valid(geoms)
    fixed = _matched(geoms)
    assert shapely.coverage_is_valid(fixed) and fixed[2] is far  # the far unit untouched
    assert abs(shapely.area(fixed[:2]).sum() - 2.0) < 1e-9 and [1.0, 0.5] in shapely.get_coordinates(fixed[1]).tolist()
    # a cleaner that could not match them: the units are refused, not returned half-matched
    monkeypatch.setattr(shapely, "coverage_clean", lambda geoms, **_: geoms)
    with pytest.raises(ValueError, match="could not be matched"):
        _matched(geoms)


def test_a_compound_keeps_the_whole_builds_id_when_the_territory_is_built_in_pieces(monkeypatch) -> None:
    """build_units numbers compounds by their place in the layer it is given; a piece is given
    part of the layer, so its compounds are renumbered to their place in the whole: the units of
    a build in pieces carry the whole build's ``compound_id``, and two compounds never share one."""
    from gridmap.geo import synthetic_district as sd
    from gridmap.geo import unit_pieces
    from gridmap.geo.fields import map_fields

    district = sd.generate(sd.load_boundary(), sd.Config.small())
    layers = {name: map_fields(frame)[0] for name, frame in district.layers().items()}
    args = (layers["communities"], layers["roads"], layers["buildings"])
    whole = unit_pieces.build_units_in_pieces(*args, compounds=layers["compounds"])
    monkeypatch.setattr(unit_pieces, "MAX_PIECE_BUILDINGS", len(layers["buildings"]) // 6 + 1)
    monkeypatch.setattr(unit_pieces, "MARGIN_DEG", 0.001)  # ~100 m: a piece sees only the compounds near it
    seen: list[int] = []
    real = unit_pieces.build_units
    monkeypatch.setattr(unit_pieces, "build_units", lambda *a, compounds=None, **k: seen.append(len(compounds))
                        or real(*a, compounds=compounds, **k))
    pieces = unit_pieces.build_units_in_pieces(*args, compounds=layers["compounds"])
    assert len(seen) == 6 and min(seen) < len(layers["compounds"])  # pieces given part of the layer
    mine = pieces.set_index("unit_id")["compound_id"]
    theirs = whole.set_index("unit_id")["compound_id"]
    assert mine.notna().sum() > 50  # compounds in every piece: the test can fail
    assert mine.sort_index().equals(theirs.sort_index())
    # each compound's id names one compound: its units lie in one community, as in the whole build
    assert (pieces.dropna(subset=["compound_id"]).groupby("compound_id")["community_code"].nunique() == 1).all()
