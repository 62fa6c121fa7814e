"""Partition against PostGIS: units stored once, draft plans written, served as GeoJSON and as a
report page; the CLI writes a plan with progress and an offline report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services.partitioning import BUILDING_GRAIN, PartitionInputError, partition_territory
from samples import signed_in_client

MONACO = "980100"


@pytest.fixture
def planned(monaco: sa.Engine):
    return monaco, partition_territory(monaco, MONACO)


def test_plan_is_stored_consistently(planned) -> None:
    engine, summary = planned
    with engine.connect() as conn:
        # the current units (a community rebuilt at building grain keeps its first units, retired,
        # until its next rebuild: a partition that read them a moment ago can still store its plan)
        units = conn.execute(sa.text("SELECT count(*) FROM units WHERE retired_at IS NULL")).scalar_one()
        assigned = conn.execute(sa.text("SELECT count(*) FROM plan_units WHERE plan_id = :p"),
                                {"p": summary.plan_id}).scalar_one()
        grids = conn.execute(sa.text("SELECT count(*), sum(households) FROM grids WHERE plan_id = :p"),
                             {"p": summary.plan_id}).one()
        unit_households = conn.execute(sa.text("SELECT sum(households) FROM units WHERE retired_at IS NULL")).scalar_one()
        # in PostGIS too: the grids of each community cover it, without overlaps
        coverage = conn.execute(sa.text(
            "SELECT c.code, ST_Area(c.geom) AS a, ST_Area(ST_Union(g.geom)) AS u, sum(ST_Area(g.geom)) AS s "
            "FROM grids g JOIN territories c ON c.id = g.community_id WHERE g.plan_id = :p GROUP BY c.code, c.geom"),
            {"p": summary.plan_id}).all()
        crossing = conn.execute(sa.text(
            "SELECT count(*) FROM plan_units pu JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
            "WHERE pu.plan_id = :p AND u.community_id <> g.community_id"), {"p": summary.plan_id}).scalar_one()
        plan = conn.execute(sa.text("SELECT status, version, origin FROM plans WHERE id = :p"),
                            {"p": summary.plan_id}).one()
    assert units == assigned == summary.result.report["summary"]["units"]
    assert grids[0] == len(summary.result.grids) and grids[1] == unit_households
    assert len(coverage) == 6
    for code, area, union, total in coverage:
        assert abs(union - area) / area < 1e-6, code
        assert (total - union) / area < 1e-6, code
    assert crossing == 0
    assert tuple(plan) == ("draft", 1, "partition")


def test_second_partition_reuses_units_and_adds_a_version(planned) -> None:
    engine, first = planned
    second = partition_territory(engine, MONACO, min_households=200, max_households=400, seed=3)
    # units are reused; another band may only need some communities at building grain
    assert first.units_built and set(second.units_built.reasons) <= {BUILDING_GRAIN}
    assert second.version == 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plans")).scalar_one() == 2
    # a rebuild with plans present retires their units instead of refusing (tests/test_stale_units.py)
    rebuilt = partition_territory(engine, MONACO, rebuild_units=True)
    assert rebuilt.units_built and rebuilt.units_built.retired >= second.result.report["summary"]["units"]


def test_a_territory_above_the_piece_size_is_built_in_pieces_and_stored_as_one_coverage(monaco: sa.Engine,
                                                                                        monkeypatch) -> None:
    """A territory of more buildings than a piece may hold (a city) is built in pieces one after
    the other, memory bounded by the piece; what is stored is still one clean coverage tiling every
    community, every building's households counted once, and it partitions."""
    import numpy as np
    import shapely

    from gridmap.geo import unit_pieces
    from gridmap.services.partitioning import ensure_units
    from gridmap.store import frames

    monkeypatch.setattr(unit_pieces, "MAX_PIECE_BUILDINGS", 300)  # Monaco's 886 buildings: three pieces
    pieces: list[int] = []
    real = unit_pieces.build_units
    monkeypatch.setattr(unit_pieces, "build_units", lambda communities, *a, **k: pieces.append(len(communities))
                        or real(communities, *a, **k))
    units, built = ensure_units(monaco, MONACO)
    with monaco.connect() as conn:
        communities = frames.communities(conn, MONACO)
    assert len(pieces) == 3 and sum(pieces) == len(communities) == len(built.communities)
    geoms = np.asarray(units.geometry.values, dtype=object)
    assert shapely.coverage_is_valid(geoms) and shapely.is_valid(geoms).all()
    for code, outline in zip(communities["code"], communities.geometry.values):  # to the noding's grid, as built whole
        own = geoms[(units["community_code"] == code).to_numpy()]
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(own), outline)) < 1e-6 * shapely.area(outline)
    summary = partition_territory(monaco, MONACO)
    assert not summary.units_built or set(summary.units_built.reasons) == {BUILDING_GRAIN}
    assert summary.result.grids["households"].sum() == units["households"].sum()


def test_territory_without_buildings_is_explained(engine: sa.Engine) -> None:
    from gridmap.services.demo import load_demo

    load_demo(engine, ["yaan"])
    with pytest.raises(PartitionInputError, match="no communities"):
        partition_territory(engine, "511800")


def test_api_serves_plan_grids_and_report(planned, database_url: str) -> None:
    engine, summary = planned
    anonymous = TestClient(create_app(database_url=database_url))
    assert anonymous.get(f"/api/plans/{summary.plan_id}/grids").status_code == 401  # drafts are not public
    client = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    plans = client.get(f"/api/territories/{MONACO}/plans").json()
    assert [p["version"] for p in plans] == [1] and plans[0]["grids"] == len(summary.result.grids)
    fc = client.get(f"/api/plans/{summary.plan_id}/grids").json()
    assert len(fc["features"]) == len(summary.result.grids)
    props = fc["features"][0]["properties"]
    assert re.fullmatch(r"\d{15}", props["grid_code"]) and props["community"]
    report = client.get(f"/api/plans/{summary.plan_id}/report").json()
    assert report["summary"]["grids"] == len(summary.result.grids)
    assert len(report["flags"]) == len(summary.result.flags)
    page = client.get(f"/plans/{summary.plan_id}/report").text
    assert "<svg" in page and "<iframe" in page and "户数分布" in page
    assert "cdn" not in page.lower()
    assert client.get("/api/plans/99999").status_code == 404


def test_cli_partition_with_report(monaco: sa.Engine, database_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "partition", "--territory", MONACO,
                           "--min", "250", "--max", "450", "--report", str(report)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "draft plan 1" in done.stdout and "[250, 450]" in done.stdout
    assert re.search(r"方案草稿 1（编号 \d+）：\d+ 个网格.*户数在 \[250, 450\] 内", done.stdout)  # the summary in Chinese
    assert "单元：为 " in done.stdout and "个社区构建" in done.stdout
    assert "building units" in done.stderr and "partitioning" in done.stderr  # progress
    assert "构建单元" in done.stderr and "完成" in done.stderr  # in Chinese as well
    text = report.read_text(encoding="utf-8")
    assert "data:text/javascript;base64," in text  # Leaflet inlined: the file works offline
    assert not re.search(r'src="https?://', text)


def test_the_partition_reads_exactly_the_major_roads(monaco: sa.Engine) -> None:
    """The partition loads only the roads it uses (the major ones, by the profile's road rules),
    filtered in PostGIS: the same roads, feature for feature, as the rule picks from the whole
    layer, and none when the profile's class column is not in the layer (no road is major)."""
    import shapely

    from gridmap.geo.roads import RoadRules
    from gridmap.services.partitioning import input_layer

    rules = RoadRules()
    with monaco.connect() as conn:
        area = shapely.box(7.38, 43.71, 7.45, 43.76)
        whole = input_layer(conn, MONACO, "roads", area)
        major = input_layer(conn, MONACO, "roads", area, (rules.class_column, rules.major_classes))
        unknown = input_layer(conn, MONACO, "roads", area, ("道路等级", rules.major_classes))
    expected = rules.major(whole)
    assert expected is not None and 0 < len(major) < len(whole)
    assert shapely.equals_exact(major.geometry.values, expected.geometry.values).all()
    assert list(major[rules.class_column]) == list(expected[rules.class_column])
    assert len(unknown) == 0 and RoadRules(class_column="道路等级").major(whole) is None



def test_partition_territory_asks_for_the_major_roads_only(monaco: sa.Engine, monkeypatch) -> None:
    """partition_territory hands the profile's major classes to the roads query (the filter above
    is what it gets) and its plan is the one the whole layer gives."""
    from gridmap.services import partitioning
    from gridmap.store import frames

    seen = []
    original = frames.layer_in_area

    def spy(conn, owner, name, area, where_in=None):
        seen.append((name, where_in))
        return original(conn, owner, name, area, where_in)

    monkeypatch.setattr(frames, "layer_in_area", spy)
    filtered = partition_territory(monaco, MONACO)
    # units are built from every road; the partition's own read is the filtered one
    assert any(w is not None and "primary" in w[1] for name, w in seen if name == "roads")
    whole_layer = partitioning.input_layer
    monkeypatch.setattr(partitioning, "input_layer",
                        lambda conn, territory, role, area, where_in=None: whole_layer(conn, territory, role, area))
    whole = partition_territory(monaco, MONACO)
    with monaco.connect() as conn:
        def assignment(plan_id):
            return sorted(conn.execute(sa.text(
                "SELECT u.unit_key, g.code FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
                "JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = :p"), {"p": plan_id}).all())
        assert assignment(filtered.plan_id) == assignment(whole.plan_id)

