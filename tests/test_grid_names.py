"""Dedicated grids (专属网格) carry their institution's name and site type: from the partition's
assembled grids, through PostGIS, the API, the OGC collection, edits and drafts, to a GBK
Shapefile read back by GDAL's ogrinfo. Comprehensive grids carry no site type, and a name only
when someone gave one."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.geo.fields import map_fields
from gridmap.geo.grid_names import dedicated_grid_names
from gridmap.geo.partition import partition
from gridmap.geo.site_types import site_type_label, site_type_terms
from gridmap.geo.units import build_units

ORIGIN = (103.0, 30.0)
DISTRICT = "511802"


def lonlat(geom):
    """A geometry drawn in metres east and north of ORIGIN, in lon/lat."""
    kx = 111_320.0 * math.cos(math.radians(ORIGIN[1]))
    return shapely.transform(geom, lambda c: np.column_stack([ORIGIN[0] + c[:, 0] / kx, ORIGIN[1] + c[:, 1] / 110_574.0]))


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def homes(x0: float, y0: float, x1: float, y1: float, households: int) -> list[dict]:
    return [{"geometry": lonlat(shapely.box(x, y, x + 12, y + 12)), "户数": households}
            for x in np.arange(x0 + 5, x1 - 17, 30.0) for y in np.arange(y0 + 5, y1 - 17, 30.0)]


# -- the rule, on geometry -------------------------------------------------------------------------
def test_the_assembled_grids_of_two_named_sites_carry_their_names_and_types() -> None:
    """A school and a hospital as a district hands them over (类型, 名称), and a school without a
    name: three dedicated grids, two named after their institutions (no name is made up), typed
    in English and Chinese; the comprehensive grids have neither."""
    community = frame([{"code": "511802001001", "geometry": lonlat(shapely.box(0, 0, 600, 400))}])
    roads = frame([{"highway": "primary", "geometry": lonlat(shapely.LineString([(300, -10), (300, 410)]))}])
    sites, _ = map_fields(frame([
        {"类型": "学校", "名称": "雨城区第一小学", "geometry": lonlat(shapely.box(10, 10, 110, 90))},
        {"类型": "医院", "名称": "雨城区人民医院", "geometry": lonlat(shapely.box(400, 10, 500, 90))},
        {"类型": "学校", "名称": None, "geometry": lonlat(shapely.box(480, 300, 580, 390))},
    ]))
    buildings = frame(homes(0, 100, 300, 400, 14) + homes(300, 100, 470, 300, 9))
    result = partition(build_units(community, roads, buildings, sites=sites), roads=roads)
    grids = result.grids
    dedicated = grids[grids["kind"] == "dedicated"]
    named = {r.grid_name: (r.site_type, r.site_type_zh) for r in dedicated.itertuples()}
    assert named == {"雨城区第一小学": ("school", "学校"), "雨城区人民医院": ("hospital", "医院"),
                     None: ("school", "学校")}  # a school the data do not name: typed, no name made up
    comprehensive = grids[grids["kind"] == "comprehensive"]
    assert len(comprehensive) and comprehensive[["grid_name", "site_type", "site_type_zh"]].isna().all().all()


def grids_of(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["grid_code", "community_code", "kind", "grid_name", "name_from"])


def units_of(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["grid_code", "kind", "name", "site_type", "area_m2"])


def test_several_sites_the_largest_named_one_names_the_grid_and_no_name_is_made_up() -> None:
    grids = grids_of([("1", "c", "dedicated", None, None), ("2", "c", "dedicated", None, None),
                      ("3", "c", "comprehensive", None, None), ("4", "c", "dedicated", None, None)])
    units = units_of([("1", "site", None, "hospital", 9000.0), ("1", "site", "小医院", "卫生院", 3000.0),
                      ("1", "site", "大医院", "医院", 6000.0), ("2", "site", None, "学校", 8000.0),
                      ("3", "block", "人民公园", "公园", 9000.0), ("4", "block", None, None, 100.0)])
    names = dedicated_grid_names(grids, units)
    assert names.loc[0].tolist() == ["大医院", "hospital", "医院", "site"]
    assert names.loc[1].tolist() == [None, "school", "学校", None]  # an unnamed school: typed only
    assert names.loc[2].isna().all()  # a folded park names no comprehensive grid
    assert names.loc[3].isna().all()  # no site, no type


def test_names_given_are_kept_and_made_names_follow_the_kind() -> None:
    grids = grids_of([("1", "c", "dedicated", "卫生服务中心", None), ("2", "c", "comprehensive", "第一中学", "site"),
                      ("3", "c", "comprehensive", "滨江网格", None), ("4", "c", "dedicated", "第二中学", "site")])
    units = units_of([("1", "site", "雨城区医院", "hospital", 1.0), ("2", "site", "第一中学", "学校", 1.0),
                      ("3", "block", None, None, 1.0), ("4", "site", None, "school", 1.0)])
    names = dedicated_grid_names(grids, units)
    assert names.loc[0].tolist() == ["卫生服务中心", "hospital", "医院", None]  # given by someone, typed
    assert names.loc[1].isna().all()  # no longer dedicated: the made name goes
    assert names.loc[2].tolist() == ["滨江网格", None, None, None]
    assert names.loc[3].tolist() == [None, "school", "学校", None]  # its named site left it: the made name goes


def test_the_vocabulary_reads_english_and_chinese_spellings() -> None:
    assert site_type_terms("学校") == site_type_terms("School") == ("school", "学校")
    assert site_type_terms("机关") == ("government", "机关")  # the district's own term stays
    assert site_type_terms("体育馆") == ("other", "体育馆") and site_type_terms("stadium") == ("stadium", None)
    assert site_type_terms("townhall") == site_type_terms("政府") == ("government", "政府")  # one key a type
    assert site_type_terms(None) == site_type_terms(" ") == (None, None)
    assert site_type_label("农贸市场") == "农贸市场 farmers' market" and site_type_label("townhall") == "政府 townhall"


# -- stored, served, edited, exported ---------------------------------------------------------------
def published_plan(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT p.id FROM plans p JOIN territories t ON t.id = p.territory_id "
                                    "WHERE t.code = :c AND p.status = 'published'"), {"c": DISTRICT}).scalar_one()


def stored(engine: sa.Engine, plan_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "SELECT g.code, g.kind, g.name, g.properties->>'site_type' AS site_type, "
            "g.properties->>'site_type_zh' AS site_type_zh, g.properties->>'name_from' AS name_from, "
            "(SELECT string_agg(u.name, ',') FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "WHERE pu.grid_id = g.id AND u.kind = 'site') AS sites FROM grids g WHERE g.plan_id = :p ORDER BY g.code"),
            conn, params={"p": plan_id})


def test_stored_grids_are_named_and_served_by_the_api_and_the_ogc_collection(district: sa.Engine,
                                                                               database_url: str) -> None:
    plan_id = published_plan(district)
    grids = stored(district, plan_id)
    dedicated = grids[grids["kind"] == "dedicated"]
    assert len(dedicated) >= 2
    assert dedicated["name"].notna().all() and dedicated["site_type"].notna().all()
    assert dedicated["site_type_zh"].notna().all()
    named_after_site = dedicated[dedicated["sites"].notna()]
    assert (named_after_site["name"] == named_after_site["sites"]).all()  # one site each: its name
    comprehensive = grids[grids["kind"] == "comprehensive"]
    assert comprehensive[["name", "site_type"]].isna().all().all()
    expected = {r.code: (r.name, r.site_type, r.site_type_zh) for r in dedicated.itertuples()}

    client = TestClient(create_app_for(database_url))
    served = client.get(f"/api/plans/{plan_id}/grids").json()["features"]
    got = {f["properties"]["grid_code"]: (f["properties"]["name"], f["properties"]["site_type"],
                                          f["properties"]["site_type_zh"]) for f in served
           if f["properties"]["kind"] == "dedicated"}
    assert got == expected
    items = client.get("/collections/grids/items", params={"limit": 1000, "kind": "dedicated"}).json()["features"]
    assert {f["id"]: (f["properties"]["name"], f["properties"]["site_type"], f["properties"]["site_type_zh"])
            for f in items} == expected
    schools = client.get("/collections/grids/items", params={"limit": 1000, "site_type": "school"}).json()
    assert schools["features"] and all(f["properties"]["site_type_zh"] == "学校" for f in schools["features"])


def create_app_for(database_url: str):
    from gridmap.api.app import create_app

    return create_app(database_url=database_url)


def test_edits_keep_or_recompute_names_and_a_draft_names_an_older_plans_grids(district: sa.Engine) -> None:
    from gridmap.services import planning

    plan_id = published_plan(district)
    with district.begin() as conn:  # a plan stored before grids were named
        conn.execute(sa.text("UPDATE grids SET name = NULL, properties = properties - 'site_type' - 'site_type_zh' "
                             "- 'name_from' WHERE plan_id = :p"), {"p": plan_id})
    draft, _ = planning.new_draft(district, DISTRICT, actor="test")
    grids = stored(district, draft)
    dedicated = grids[grids["kind"] == "dedicated"]
    assert dedicated["name"].notna().all() and dedicated["site_type"].notna().all()

    with district.connect() as conn:  # two dedicated grids, each with a comprehensive neighbour of its community
        pairs = conn.execute(sa.text(
            "SELECT DISTINCT ON (d.code) d.code, n.code FROM grids d JOIN grids n ON n.plan_id = d.plan_id "
            "AND n.community_id = d.community_id AND n.kind = 'comprehensive' AND ST_Touches(d.geom, n.geom) "
            "WHERE d.plan_id = :p AND d.kind = 'dedicated' ORDER BY d.code, n.code LIMIT 3"), {"p": draft}).all()
    assert len(pairs) >= 2
    (kept, neighbour), (given, _), *rest = pairs
    before = grids.set_index("code")
    planning.apply_edits(district, draft, [
        {"op": "merge", "grids": [kept, neighbour]},                   # the institution's grid takes a neighbour
        {"op": "set", "grid": given, "name": "某某专属网格"},           # a name given by a planner
    ], version=None, actor="test")
    after = stored(district, draft).set_index("code")
    assert after.at[kept, "name"] == before.at[kept, "name"] and after.at[kept, "site_type"] == before.at[kept, "site_type"]
    assert after.at[given, "name"] == "某某专属网格" and pd.isna(after.at[given, "name_from"])
    assert after.at[given, "site_type"] == before.at[given, "site_type"]
    planning.apply_edits(district, draft, [{"op": "set", "grid": kept, "kind": "comprehensive"},
                                           {"op": "set", "grid": given, "worker": "王芳"}], version=None, actor="test")
    after = stored(district, draft).set_index("code")
    assert after.loc[kept, ["name", "site_type", "site_type_zh"]].isna().all()  # no longer an institution's grid
    assert after.at[given, "name"] == "某某专属网格"  # touched again, still the planner's name
    planning.apply_edits(district, draft, [{"op": "set", "grid": kept, "kind": "dedicated"}],
                         version=None, actor="test")
    after = stored(district, draft).set_index("code")
    assert after.at[kept, "name"] == before.at[kept, "name"]  # dedicated again: its institution's name again


def test_a_gbk_shapefile_export_carries_names_and_site_types(district: sa.Engine, tmp_path) -> None:
    from gridmap.services.exporting import ExportRequest, export_territory
    from test_export import features, summary

    out = tmp_path / "雨城区网格.zip"
    export_territory(district, ExportRequest(DISTRICT, format="shp", crs="gk3", encoding="gbk"), out)
    shp = f"/vsizip/{out}/grids.shp"
    fields = summary(shp)["fields"]
    assert fields["grid_name"] == fields["site_type"] == fields["site_zh"] == "String"
    rows = features(shp)
    dedicated = [r for r in rows if r["kind"] == "dedicated"]
    assert dedicated and all(r["grid_name"] and r["site_type"] and r["site_zh"] for r in dedicated)
    expected = stored(district, published_plan(district))
    expected = expected[expected["kind"] == "dedicated"]
    assert {(r["grid_code"], r["grid_name"], r["site_type"], r["site_zh"]) for r in dedicated} == {
        (r.code, r.name, r.site_type, r.site_type_zh) for r in expected.itertuples()}
    assert {r["site_zh"] for r in dedicated} >= {"学校", "医院"}
    assert all(r["site_type"] == "(null)" or r["site_type"] == "" for r in rows if r["kind"] == "comprehensive")
