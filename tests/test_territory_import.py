"""A district's own boundary files become territories: the files as they are handed over (GBK
shapefiles with Chinese field names, GeoPackages, GCJ-02), every check with a clear message in
both languages, and nothing stored when anything is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gridmap.geo import coverage
from gridmap.geo.boundaries import build_hierarchy, code_text, significant_prefix
from gridmap.geo.crs import wgs84_to_gcj02_geoms
from gridmap.services.boundaries import BoundariesRefused, import_boundaries
from gridmap.services.demo import load_demo

GRIDMAP = [sys.executable, "-m", "gridmap.cli"]
LON0, LAT0 = 103.0, 29.98  # Ya'an
STEP_LON, STEP_LAT = 500 / (111_320 * np.cos(np.radians(LAT0))), 500 / 110_574


def grid_communities(columns: int = 4, rows: int = 3, district: str = "511802") -> gpd.GeoDataFrame:
    """Square communities of 500 m, two streets (west and east half), Chinese names."""
    records = []
    for i in range(columns):
        for j in range(rows):
            street = 1 + i * 2 // columns
            number = j + rows * (i % (columns // 2)) + 1
            code = f"{district}{street:03d}{number:03d}"
            x0, y0 = LON0 + i * STEP_LON, LAT0 + j * STEP_LAT
            records.append({"社区代码": code, "社区名称": f"第{number}社区", "街道名称": ["东城街道", "西城街道"][street - 1],
                            "geometry": shapely.box(x0, y0, x0 + STEP_LON, y0 + STEP_LAT)})
    return gpd.GeoDataFrame(records, crs=4490)


def write_gbk_shapefile(frame: gpd.GeoDataFrame, path: Path, *, cpg: bool = False) -> Path:
    frame.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="GBK")
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def stored(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT level, count(*) FROM territories GROUP BY level")).all())


# -- pure checks ------------------------------------------------------------------------------------------
def test_codes_stay_text_and_prefixes_follow_gb2260() -> None:
    import pandas as pd

    assert code_text(pd.Series([511802001001.0, " 011802001001 ", 511802001002, None])).tolist() == [
        "511802001001", "011802001001", "511802001002", ""]
    assert significant_prefix("511800") == "5118" and significant_prefix("511802") == "511802"
    assert significant_prefix("510000") == "51"


def test_small_overlaps_and_gaps_are_snapped_into_a_clean_coverage() -> None:
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name", "街道名称": "street_name"})
    metre = 1 / 111_000
    frame.loc[4, "geometry"] = frame.loc[4, "geometry"].buffer(1.5 * metre, join_style="mitre")  # overlaps all round
    frame.loc[7, "geometry"] = frame.loc[7, "geometry"].buffer(-1.0 * metre, join_style="mitre")  # a gap all round
    tree = build_hierarchy(frame)
    assert not tree.refused
    snapped = [f for f in tree.findings if f.check == "snapped"]
    assert len(snapped) == 1 and snapped[0].severity == "repaired" and "并入" in snapped[0].zh
    assert len(coverage.problems(tree.communities.geometry.values)) == 0
    union = shapely.union_all(tree.communities.geometry.values)
    assert shapely.get_num_interior_rings(union) == 0  # the 1 m gap is closed
    assert list(tree.streets["name"]) == ["东城街道", "西城街道"] and list(tree.districts["code"]) == ["511802"]
    assert tree.districts["parent_code"].iloc[0] == "511800"


def test_a_wide_gap_is_reported_and_kept() -> None:
    frame = grid_communities().rename(columns={"社区代码": "code"})
    frame = frame.drop(index=4).reset_index(drop=True)  # a hole of one community's size in the middle
    tree = build_hierarchy(frame)
    gaps = [f for f in tree.findings if f.check == "gap"]
    assert len(gaps) == 1 and gaps[0].severity == "reported" and 240_000 < gaps[0].area_m2 < 260_000
    assert "不属于任何社区" in gaps[0].zh


# -- the service, with files as handed over --------------------------------------------------------------
def test_a_gbk_shapefile_with_chinese_fields_becomes_the_tree(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_gbk_shapefile(grid_communities().assign(市名称="雅安市"), tmp_path / "社区.shp")  # no .cpg: GBK detected
    summary = import_boundaries(engine, path)
    assert summary.counts == {"district": 1, "street": 2, "community": 12}
    assert summary.columns == ["社区代码 → code", "社区名称 → name", "街道名称 → street_name", "市名称 → city_name"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT t.code, t.name, t.level, p.code FROM territories t "
                                    "LEFT JOIN territories p ON p.id = t.parent_id ORDER BY t.code")).all()
    by_code = {r[0]: r for r in rows}
    assert by_code["511800"][2] == "city" and by_code["511800"][1] == "雅安市" and by_code["511802"][3] == "511800"
    assert by_code["511802001"][1] == "东城街道" and by_code["511802001"][3] == "511802"
    assert by_code["511802001001"][1] == "第1社区" and by_code["511802001001"][3] == "511802001"
    assert stored(engine) == {"city": 1, "district": 1, "street": 2, "community": 12}


def test_streets_from_their_own_file_and_a_dry_run(engine: sa.Engine, tmp_path: Path) -> None:
    communities = grid_communities()
    communities.to_file(tmp_path / "communities.gpkg", driver="GPKG")
    streets = communities.assign(街道代码=communities["社区代码"].str[:9]).dissolve("街道代码", as_index=False)
    streets[["街道代码", "街道名称", "geometry"]].to_file(tmp_path / "streets.gpkg", driver="GPKG")
    dry = import_boundaries(engine, tmp_path / "communities.gpkg", streets=tmp_path / "streets.gpkg", dry_run=True)
    assert dry.dry_run and dry.counts["street"] == 2 and "nothing was stored" in str(dry)
    assert stored(engine) == {}
    done = import_boundaries(engine, tmp_path / "communities.gpkg", streets=tmp_path / "streets.gpkg")
    assert done.created == {"district": 1, "street": 2, "community": 12}
    # again without --replace: refused, with the fix; with it: updated in place
    with pytest.raises(ValueError, match="--replace updates them") as refused:
        import_boundaries(engine, tmp_path / "communities.gpkg")
    assert "加 --replace" in refused.value.zh
    again = import_boundaries(engine, tmp_path / "communities.gpkg", replace=True)
    assert again.created == {"district": 0, "street": 0, "community": 0}


@pytest.mark.parametrize("spoil, en, zh", [
    (lambda f: f.assign(社区代码=f["社区代码"].where(f.index != 3, f["社区代码"].iloc[2])), "used more than once",
     "社区代码重复"),
    (lambda f: f.assign(社区代码=f["社区代码"].where(f.index != 3, "5118020010")), "is not 12 digits",
     "不是 12 位数字"),
    (lambda f: f.set_geometry(f.geometry.where(f.index != 0, f.geometry.iloc[0].buffer(0.0015))), "overlap by",
     "重叠"),
])
def test_bad_boundaries_are_refused_and_nothing_is_stored(engine: sa.Engine, tmp_path: Path, spoil, en, zh) -> None:
    path = write_gbk_shapefile(spoil(grid_communities()), tmp_path / "社区.shp", cpg=True)
    with pytest.raises(BoundariesRefused) as refused:
        import_boundaries(engine, path, findings_path=tmp_path / "findings.gpkg")
    assert en in refused.value.en and zh in refused.value.zh and "nothing was stored" in refused.value.en
    assert stored(engine) == {}
    if "overlap" in en:  # the places, to open beside the map
        places = gpd.read_file(refused.value.findings_path)
        assert len(places) >= 1 and set(places["check"]) == {"overlap"} and (places["area_m2"] > 100).all()


def test_a_parent_whose_prefix_disagrees_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    load_demo(engine, ["yaan"])
    path = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    before = stored(engine)
    with pytest.raises(BoundariesRefused, match="do not start with 511803"):
        import_boundaries(engine, path, parent="511803")
    assert stored(engine) == before


def _district_in_pieces(engine: sa.Engine) -> gpd.GeoDataFrame:
    """The stored 雨城区 outline cut into four communities of one street."""
    with engine.connect() as conn:
        outline = gpd.read_postgis(sa.text("SELECT geom FROM territories WHERE code = '511802'"), conn,
                                   geom_col="geom").geometry.iloc[0]
    cx, cy = shapely.get_x(outline.centroid), shapely.get_y(outline.centroid)
    x0, y0, x1, y1 = outline.bounds
    quarters = [shapely.box(x0, y0, cx, cy), shapely.box(cx, y0, x1, cy), shapely.box(x0, cy, cx, y1),
                shapely.box(cx, cy, x1, y1)]
    pieces = [shapely.intersection(outline, q) for q in quarters]
    return gpd.GeoDataFrame({"社区代码": [f"511802001{i + 1:03d}" for i in range(4)],
                             "社区名称": ["东", "南", "西", "北"]}, geometry=pieces, crs=4490)


def test_gcj02_boundaries_are_detected_with_the_fix(engine: sa.Engine, tmp_path: Path) -> None:
    load_demo(engine, ["yaan"])
    pieces = _district_in_pieces(engine)
    shifted = pieces.set_geometry(wgs84_to_gcj02_geoms(np.asarray(pieces.geometry.values, dtype=object)))
    path = write_gbk_shapefile(shifted, tmp_path / "社区.shp", cpg=True)  # labelled CGCS2000, drawn in GCJ-02
    before = stored(engine)
    with pytest.raises(ValueError, match="--crs gcj02") as refused:
        import_boundaries(engine, path)
    assert "GCJ-02" in refused.value.en and "--crs gcj02" in refused.value.zh
    assert stored(engine) == before
    summary = import_boundaries(engine, path, crs="gcj02")
    assert summary.counts["community"] == 4 and not [f for f in summary.findings if f.check == "gap"]
    with engine.connect() as conn:  # the stored district outline was kept, and the pieces fill it
        covered = conn.execute(sa.text(
            "SELECT ST_Area(ST_SymDifference(d.geom, ST_Union(c.geom))) / ST_Area(d.geom) FROM territories d "
            "JOIN territories c ON c.level = 'community' WHERE d.code = '511802' GROUP BY d.geom")).scalar_one()
    assert covered < 1e-6


def test_replace_keeps_what_history_uses(engine: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services.importing import import_file

    path = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    import_boundaries(engine, path)
    roads = gpd.GeoDataFrame({"name": ["路"]}, geometry=[shapely.LineString(
        [(LON0 + 0.1 * STEP_LON, LAT0 + 0.5 * STEP_LAT), (LON0 + 0.9 * STEP_LON, LAT0 + 0.5 * STEP_LAT)])], crs=4490)
    roads.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    import_file(engine, tmp_path / "roads.gpkg", territory="511802001001", layer="roads")
    fewer = grid_communities().iloc[1:]  # 511802001001 (which has a layer) is gone
    fewer_path = write_gbk_shapefile(fewer, tmp_path / "fewer.shp")
    with pytest.raises(ValueError, match="in use: 511802001001 \\(1 layers\\)"):
        import_boundaries(engine, fewer_path, replace=True)
    assert stored(engine)["community"] == 12
    unused = write_gbk_shapefile(grid_communities().drop(index=5), tmp_path / "unused.shp")
    summary = import_boundaries(engine, unused, replace=True)
    assert summary.removed == ["511802001006"] and stored(engine)["community"] == 11


def test_cli_territory_import(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    good = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    done = subprocess.run([*GRIDMAP, "territory", "import", str(good), "--dry-run"], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "would store 1 district (1 new), 2 streets (2 new), 12 communities (12 new)" in done.stdout
    assert "社区代码 → code" in done.stdout and stored(engine) == {}
    bad = write_gbk_shapefile(grid_communities().assign(社区代码="51180200100"), tmp_path / "bad.shp")
    refused = subprocess.run([*GRIDMAP, "territory", "import", str(bad)], env=env, capture_output=True, text=True,
                             cwd=tmp_path)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("gridmap: error:")]
    assert refused.returncode == 1 and len(errors) == 1 and refused.stderr.strip().splitlines()[-1] == errors[0]
    assert "not 12 digits" in refused.stderr and "nothing was stored" in refused.stderr
    named = subprocess.run([*GRIDMAP, "territory", "import", str(good), "--fields", "code=社区名称"], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert named.returncode == 1 and "not 12 digits" in named.stderr
    stored_now = subprocess.run([*GRIDMAP, "territory", "import", str(good)], env=env, capture_output=True, text=True,
                                cwd=tmp_path)
    assert stored_now.returncode == 0, stored_now.stderr
    assert stored(engine)["community"] == 12


def _zipped(shp: Path) -> Path:
    import zipfile

    target = shp.with_suffix(".zip")
    with zipfile.ZipFile(target, "w") as z:
        for part in shp.parent.glob(shp.stem + ".*"):
            if part.suffix != ".zip":
                z.write(part, part.name)
    return target


def test_api_creates_territories_for_an_administrator(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    from samples import signed_in_client

    load_demo(engine, ["yaan"])
    archive = _zipped(write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp"))
    planner = signed_in_client(engine, database_url, "planner", "planner", "511800")
    with open(archive, "rb") as fh:
        refused = planner.post("/api/territories", files={"communities": ("社区.zip", fh, "application/zip")},
                               data={"parent": "511800"})
    assert refused.status_code == 403 and "导入辖区" in refused.json()["detail_zh"]
    district_admin = signed_in_client(engine, database_url, "city-admin", "admin", "511800")
    with open(archive, "rb") as fh:  # without a parent, only an administrator of everything may
        assert district_admin.post("/api/territories", files={"communities": ("社区.zip", fh)}).status_code == 403
    with open(archive, "rb") as fh:
        dry = district_admin.post("/api/territories", files={"communities": ("社区.zip", fh)},
                                  data={"parent": "511800", "dry_run": "true"})
    assert dry.status_code == 201 and dry.json()["dry_run"] and dry.json()["counts"]["community"] == 12
    assert stored(engine).get("community", 0) == 0
    with open(archive, "rb") as fh:
        done = district_admin.post("/api/territories", files={"communities": ("社区.zip", fh)},
                                   data={"parent": "511800", "fields": "code=社区代码,name=社区名称"})
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["created"] == {"district": 0, "street": 2, "community": 12} and body["city"] == "511800"
    assert "社区代码 → code" in body["columns"]
    spoiled = grid_communities()
    spoiled.loc[0, "geometry"] = spoiled.loc[0, "geometry"].buffer(0.002)
    bad = _zipped(write_gbk_shapefile(spoiled, tmp_path / "bad.shp"))
    with open(bad, "rb") as fh:
        overlap = district_admin.post("/api/territories", files={"communities": ("bad.zip", fh)},
                                      data={"parent": "511800", "replace": "true"})
    assert overlap.status_code == 422
    answer = overlap.json()
    assert "重叠" in answer["detail_zh"] and {f["check"] for f in answer["findings"]} == {"overlap"}
    assert all(f["message_zh"] and f["message_en"] for f in answer["findings"])
    with open(tmp_path / "社区.dbf", "rb") as fh:
        wrong = district_admin.post("/api/territories", files={"communities": ("社区.dbf", fh)},
                                    data={"parent": "511800"})
    assert wrong.status_code == 422 and ".zip" in wrong.json()["detail"]


def test_notebook_import_territory(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    import gridmap as gm

    gm.connect(database_url)
    path = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    summary = gm.import_territory(path, dry_run=True)
    assert summary.counts["community"] == 12 and stored(engine) == {}
    gm.import_territory(path)
    assert set(gm.territories()["code"]) >= {"511800", "511802", "511802001", "511802001001"}


def test_a_community_outside_its_street_and_a_missing_street_are_named() -> None:
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name", "街道名称": "street_name"})
    streets = frame.assign(code=frame["code"].str[:9]).dissolve("code", as_index=False)[["code", "geometry"]]
    streets.loc[0, "geometry"] = streets.loc[0, "geometry"].buffer(-0.001)  # street 001 drawn ~100 m short
    tree = build_hierarchy(frame, streets=streets)
    outside = [f for f in tree.findings if f.check == "outside_parent"]
    assert outside and all(f.severity == "reported" and f.codes[1] == "511802001" for f in outside)
    assert "在所属街道 511802001 之外" in outside[0].zh
    refused = build_hierarchy(frame, streets=streets.iloc[1:])
    assert [f.check for f in refused.refused] == ["no_street"]
    assert "511802001" in refused.refused[0].en and "街道文件中没有街道" in refused.refused[0].zh


@pytest.mark.parametrize("spoil, en", [
    (lambda f: f.to_crs(3857).set_crs(4326, allow_override=True), "--crs EPSG:3857"),  # metres labelled degrees
    (lambda f: f.set_geometry(shapely.transform(np.asarray(f.geometry.values), lambda c: c[:, ::-1])), "swapped"),
])
def test_boundaries_in_the_wrong_crs_are_refused_with_the_fix(engine: sa.Engine, tmp_path: Path, spoil, en) -> None:
    load_demo(engine, ["yaan"])
    path = tmp_path / "communities.gpkg"
    spoil(grid_communities()).to_file(path, driver="GPKG")
    before = stored(engine)
    with pytest.raises(ValueError) as refused:
        import_boundaries(engine, path, parent="511800")  # stored: the reference the fix is found against
    assert en in str(refused.value) and stored(engine) == before
    assert getattr(refused.value, "zh", "")  # said in Chinese too


def test_the_summary_names_the_crs_not_its_definition(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    text = str(import_boundaries(engine, path, dry_run=True))
    assert "EPSG:4490 CGCS2000" in text and "PROJCRS" not in text and "{" not in text
