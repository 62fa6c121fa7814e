"""``import gridmap as gm`` against a real PostGIS: every call returns what the service holds, in
GeoDataFrames with codes as text, and agrees with the pure functions on the same data."""

from __future__ import annotations

import inspect

import folium
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import gridmap as gm
from gridmap.store.plans import PlanNotFound

MONACO = "980100"


@pytest.fixture
def published(monaco_built: sa.Engine, database_url: str):
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import planning
    from gridmap.services.incidents import load_demo_incidents
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    load_demo_incidents(monaco, MONACO, count=400, seed=3)
    connection = gm.connect(database_url)
    return monaco, summary, connection


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_every_public_function_documents_an_example() -> None:
    for name in gm.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(gm, name)
        doc = inspect.getdoc(obj) or ""
        assert doc, f"gm.{name} has no docstring"
        if inspect.isfunction(obj):
            assert "Example" in doc, f"gm.{name} has no example"


def test_connect_territories_units(published) -> None:
    engine, _, connection = published
    assert "***" in repr(connection) and "PostGIS" in repr(connection)
    table = gm.territories()
    assert list(table.columns[:4]) == ["code", "name", "level", "parent_code"]
    quarters = gm.territories(level="community")
    assert len(quarters) == 6 and quarters["code"].str.startswith("98").all() and quarters["code"].str.len().eq(12).all()
    units = gm.units(MONACO)
    assert units.crs.to_epsg() == 4490 and len(units) == scalar(engine, "SELECT count(*) FROM units")
    assert units["households"].sum() == scalar(engine, "SELECT sum(households) FROM units")
    # straight into the pure partition: the same units, roads, seed and band give the published plan again
    again = gm.partition(units, roads=gm.layer(MONACO, "roads"))
    plan = gm.plan(MONACO)
    assert sorted(again.grids["grid_code"]) == sorted(plan.grids["grid_code"])
    assert len(gm.communities(MONACO)) == 6 and len(gm.layer(MONACO, "roads")) > 100


def test_plan_grids_units_report_and_map(published) -> None:
    engine, summary, _ = published
    plan = gm.plan(MONACO)
    assert plan.status == "published" and plan.version == summary.version
    assert len(plan.grids) == scalar(engine, "SELECT count(*) FROM grids WHERE plan_id = :p", p=summary.plan_id)
    assert plan.grids["grid_code"].str.len().eq(15).all() and (plan.grids["district_code"] == "980101").all()
    assert len(plan.units) == scalar(engine, "SELECT count(*) FROM plan_units WHERE plan_id = :p", p=summary.plan_id)
    assert set(plan.units["grid_code"]) == set(plan.grids["grid_code"])
    assert f"{len(plan.grids)} grids" in repr(plan) and "published" in repr(plan)
    assert plan.report.summary["grids"] == len(plan.grids) and "flags" in repr(plan.report)
    assert isinstance(plan.explore(), folium.Map)
    # a community inside the city plan gets the plan's grids in it; a missing draft is a clear error
    community = plan.grids["community_code"].iloc[0]
    part = gm.plan(community)
    assert len(part.grids) == (plan.grids["community_code"] == community).sum() and part.version == plan.version
    with pytest.raises(PlanNotFound, match="no draft plan"):
        gm.plan(MONACO, "draft")
    assert gm.plan(MONACO, summary.version).id == summary.plan_id


def test_stations_incidents_and_coverage(published) -> None:
    engine, _, _ = published
    from gridmap.services import stations

    plan = gm.plan(MONACO)
    inside = plan.grids.geometry.iloc[3].representative_point()
    made = stations.create(engine, MONACO, station_type="family_doctor", name="家庭医生工作室", lon=inside.x,
                           lat=inside.y, actor="test")
    found = gm.stations(MONACO)
    assert list(found["name"]) == ["家庭医生工作室"] and found["grid_code"].iloc[0] == plan.grids["grid_code"].iloc[3]
    assert made["id"] == found["station_id"].iloc[0]

    everything = gm.incidents(MONACO)
    assert len(everything) == scalar(engine, "SELECT count(*) FROM incidents")
    assert not {"reporter_name", "reporter_contact", "description"} & set(everything.columns)
    category = everything["category_code"].value_counts().index[0]
    start = pd.Timestamp(everything["reported_at"].median())
    chosen = gm.incidents(MONACO, category=category, status=["closed"], start=start)
    assert len(chosen) == scalar(engine, "SELECT count(*) FROM incidents WHERE category_code = :c AND status = 'closed' "
                                         "AND reported_at >= :s", c=category, s=start.to_pydatetime())
    assert len(gm.incidents(MONACO, limit=5)) == 5

    # the 15-minute circle from the service and from the pure function agree grid by grid
    service = gm.station_coverage(MONACO, types=["family_doctor"])
    pure = gm.household_coverage(gm.layer(MONACO, "roads"), gm.layer(MONACO, "buildings"), found, plan.grids)
    merged = service["grids"].merge(pure, on="grid_code", suffixes=("_service", "_pure"))
    assert len(merged) == len(plan.grids)
    np.testing.assert_allclose(merged["family_doctor_service"].astype(float), merged["family_doctor_pure"], atol=1e-4)
    assert 0 < service["types"]["share"].iloc[0] < 1


def test_export_from_the_notebook_api(published, tmp_path) -> None:
    plan = gm.plan(MONACO)
    result = gm.export(plan, tmp_path / "monaco.gpkg", layers=("grids", "units"))
    assert result.layers == {"grids": len(plan.grids), "units": len(plan.units)}
    assert "grids" in repr(result)
    one = gm.export(plan.grids.head(3), tmp_path / "three.geojson")
    assert one.layers == {"grids": 3}
    with pytest.raises(ValueError, match="use gm.export"):
        plan.export(tmp_path / "x.gpkg", layers=("stations",))
