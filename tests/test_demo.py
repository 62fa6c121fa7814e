"""The demo data: the committed files are consistent, and `gridmap demo` loads them idempotently."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa

from gridmap.geo.crs import area_m2
from gridmap.services.demo import available, demo_dir, load_demo

YAAN_DISTRICTS = {"511802": "雨城区", "511803": "名山区", "511822": "荥经县", "511823": "汉源县",
                  "511824": "石棉县", "511825": "天全县", "511826": "芦山县", "511827": "宝兴县"}


def _layer(name: str, layer: str) -> gpd.GeoDataFrame:
    return gpd.read_parquet(demo_dir() / name / f"{layer}.parquet")


def test_all_three_demos_are_committed() -> None:
    assert set(available()) == {"reykjavik", "monaco", "yaan"}
    attribution = (demo_dir() / "ATTRIBUTION.md").read_text()
    assert "OpenStreetMap contributors" in attribution and "ODbL" in attribution


@pytest.mark.parametrize(("name", "communities"), [("reykjavik", 72), ("monaco", 6)])
def test_osm_demo_hierarchy_and_codes(name: str, communities: int) -> None:
    comm = _layer(name, "communities")
    streets = _layer(name, "streets")
    districts = _layer(name, "districts")
    assert len(comm) == communities
    assert comm["code"].str.fullmatch(r"\d{12}").all()
    assert streets["code"].str.fullmatch(r"\d{9}").all()
    assert districts["code"].str.fullmatch(r"\d{6}").all()
    assert comm["code"].is_unique
    # every code extends its parent's code
    assert (comm["code"].str[:9] == comm["parent_code"]).all()
    assert set(comm["parent_code"]) <= set(streets["code"])
    assert (streets["code"].str[:6] == streets["parent_code"]).all()
    # communities do not overlap (shared area below 1e-7 of the total: floating-point noise only)
    metric = comm.to_crs(comm.estimate_utm_crs())
    union_area = shapely.union_all(metric.geometry.values).area
    assert (metric.area.sum() - union_area) / union_area < 1e-7


@pytest.mark.parametrize("name", ["reykjavik", "monaco"])
def test_buildings_have_household_estimates(name: str) -> None:
    buildings = _layer(name, "buildings")
    assert buildings["households"].dtype.kind == "i"
    assert (buildings["households"] >= 0).all()
    residential = buildings["building"].isin(["apartments", "house", "residential", "detached", "terrace"])
    assert (buildings.loc[residential, "households"] >= 1).all()
    assert (buildings.loc[buildings["building"].isin(["school", "commercial"]), "households"] == 0).all()
    for layer in ("roads", "pois", "residential_areas", "waterways", "sites"):
        assert len(_layer(name, layer)) > 0, layer


def test_yaan_keeps_real_codes_and_is_converted_from_gcj02() -> None:
    districts = _layer("yaan", "districts")
    assert dict(zip(districts["code"], districts["name"])) == YAAN_DISTRICTS
    city = _layer("yaan", "cities")
    assert list(city["code"]) == ["511800"] and list(city["name"]) == ["雅安市"]
    # districts tile the city (Amap draws them from one topology)
    metric = districts.to_crs(4543)
    assert abs(metric.area.sum() / city.to_crs(4543).area.sum() - 1) < 0.01
    manifest = json.loads((demo_dir() / "yaan" / "manifest.json").read_text())
    assert "GCJ-02" in manifest["notes"]
    # Ya'an's area is about 15,046 km² (official figure)
    assert area_m2(city)[0] / 1e6 == pytest.approx(15046, rel=0.03)


def test_demo_load_is_idempotent(engine: sa.Engine) -> None:
    first = load_demo(engine, ["monaco", "yaan"])
    assert all(r.loaded for r in first)
    with engine.connect() as conn:
        before = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM territories), (SELECT count(*) FROM layer_features), "
            "(SELECT count(*) FROM audit_log), (SELECT array_agg(id ORDER BY id) FROM layers)")).one()
    second = load_demo(engine, ["monaco", "yaan"])
    assert not any(r.loaded for r in second)
    with engine.connect() as conn:
        after = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM territories), (SELECT count(*) FROM layer_features), "
            "(SELECT count(*) FROM audit_log), (SELECT array_agg(id ORDER BY id) FROM layers)")).one()
    assert before == after
    assert before[0] == 9 + 9  # Monaco: city, district, street, 6 quarters; Ya'an: city + 8 districts
    forced = load_demo(engine, ["monaco"], force=True)
    assert forced[0].loaded
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM territories")).scalar_one() == before[0]


def test_reykjavik_loads_with_its_72_communities(engine: sa.Engine) -> None:
    (result,) = load_demo(engine, ["reykjavik"])
    with engine.connect() as conn:
        levels = dict(conn.execute(sa.text("SELECT level, count(*) FROM territories GROUP BY level")).all())
        buildings = conn.execute(sa.text(
            "SELECT count(*), sum((properties->>'households')::int) FROM layer_features f "
            "JOIN layers l ON l.id = f.layer_id WHERE l.name = 'buildings'")).one()
        outside = conn.execute(sa.text(
            "SELECT count(*) FROM territories c JOIN territories s ON s.id = c.parent_id "
            "WHERE c.level = 'community' AND NOT ST_Covers(ST_Buffer(s.geom, 0.0001), c.geom)")).scalar_one()
    assert levels == {"city": 1, "district": 2, "street": 8, "community": 72}
    assert buildings[0] == result.layers["buildings"] > 20000
    assert 40_000 < buildings[1] < 200_000  # the capital area has ~100k dwellings; estimate in range
    assert outside == 0
