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


def test_a_narrow_slit_open_to_the_districts_edge_is_closed_and_said() -> None:
    """Two villages on the district's edge drawn 1.5 m apart along their whole shared border (the
    strip open onto the outside, so no face of the borders encloses it): the strip is given to
    one of them, they share that border, the outline has no slit, and the finding names them.
    The tip of a V-shaped inlet between two communities is not such a strip."""
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name", "街道名称": "street_name"})
    metre_lon = 1 / (111_320 * np.cos(np.radians(LAT0)))
    # the column of communities x = 0 (west edge) pulls its east side back 1.5 m in the top row only:
    # a slit between 511802001003 (x=0, top) and 511802001006 (x=1, top), open to the north edge
    top_west = frame.index[frame["code"] == "511802001003"][0]
    x0, y0, x1, y1 = frame.loc[top_west, "geometry"].bounds
    frame.loc[top_west, "geometry"] = shapely.box(x0, y0 + 10 * STEP_LAT / 500, x1 - 1.5 * metre_lon, y1)
    frame.loc[frame["code"] == "511802001002", "geometry"] = frame.loc[
        frame["code"] == "511802001002", "geometry"].union(shapely.box(x0, y0, x1, y0 + 10 * STEP_LAT / 500))
    tree = build_hierarchy(frame)
    assert not tree.refused
    snapped = [f for f in tree.findings if f.check == "snapped"]
    assert len(snapped) == 1 and "0 overlaps and 1 gap along" in snapped[0].en and "1 处缝隙" in snapped[0].zh
    assert {"511802001003", "511802001006"} <= set(snapped[0].codes)
    assert 600 < snapped[0].area_m2 < 800  # 1.5 m × about 490 m
    communities = tree.communities.set_index("code").geometry
    shared = shapely.intersection(communities["511802001003"], communities["511802001006"])
    assert shapely.length(shared) * 110_574 > 480  # they share the border the slit ran along
    assert len(coverage.problems(tree.communities.geometry.values)) == 0
    union = shapely.union_all(tree.communities.geometry.values)
    left_m2 = (shapely.area(shapely.box(*union.bounds)) - shapely.area(union)) * (500 / STEP_LAT) * (500 / STEP_LON)
    assert left_m2 < 1.0, left_m2  # of the ~700 m² strip, under a square metre left at its mouth (the closing's arcs)
    # a V-shaped inlet between two communities, 40 m wide at the district's edge and 100 m deep
    # (a stream's mouth, land of no community): the closing fills its last few metres, narrower
    # than 3 m, but that tip runs along each community for under 10 m: not a strip, nothing repaired
    inlet = grid_communities().rename(columns={"社区代码": "code"})
    east = inlet.index[inlet["code"] == "511802001006"][0]
    x = inlet.loc[east, "geometry"].bounds[2]  # the border between 511802001006 and 511802002003
    top = inlet.loc[east, "geometry"].bounds[3]
    m_lon, m_lat = STEP_LON / 500, STEP_LAT / 500
    v = shapely.Polygon([(x - 20 * m_lon, top), (x + 20 * m_lon, top), (x, top - 100 * m_lat)])
    inlet["geometry"] = inlet.geometry.difference(v)
    assert not [f for f in build_hierarchy(inlet).findings if f.check == "snapped"]


def test_a_wide_gap_is_reported_and_kept() -> None:
    frame = grid_communities().rename(columns={"社区代码": "code"})
    frame = frame.drop(index=4).reset_index(drop=True)  # a hole of one community's size in the middle
    tree = build_hierarchy(frame)
    gaps = [f for f in tree.findings if f.check == "gap"]
    assert len(gaps) == 1 and gaps[0].severity == "reported" and 240_000 < gaps[0].area_m2 < 260_000
    assert "不属于任何社区" in gaps[0].zh
    # named by the four communities around it (not the two at its corners)
    assert gaps[0].codes == ["511802001002", "511802001004", "511802001006", "511802002002"], gaps[0].codes


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
    assert not summary.city_unnamed and "市名称 (city_name)" not in str(summary)


def test_a_city_created_without_a_name_says_how_to_name_it(engine: sa.Engine, tmp_path: Path) -> None:
    summary = import_boundaries(engine, write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp"))
    assert summary.city_unnamed
    assert "city 511800 was created named '市 511800': --parent-name NAME, or a 市名称 (city_name) column" in str(summary)
    assert "上级城市 511800 已以“市 511800”为名创建" in str(summary)


def test_the_command_line_names_the_city_it_creates(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    path = write_gbk_shapefile(grid_communities(), tmp_path / "社区.shp")
    run = subprocess.run([*GRIDMAP, "territory", "import", str(path), "--parent", "511800", "--parent-name", "雅安市"],
                         env={**os.environ, "GRIDMAP_DATABASE_URL": database_url}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "created named" not in run.stdout
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM territories WHERE code = '511800'")).scalar_one() == "雅安市"


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
    (lambda f: f.assign(社区代码=f["社区代码"].where(f.index != 3, f["社区代码"].iloc[2])),
     "used more than once: 511802001003 (第3社区/第4社区); give each community its own 12-digit code",
     "社区代码重复：511802001003 (第3社区/第4社区)；请在文件中为每个社区填写各自的 12 位代码"),
    (lambda f: f.assign(社区代码=f["社区代码"].where(f.index != 3, "5118020010")),
     "is not 12 digits: 5118020010 (a code read as a number loses its leading zeros", "不是 12 位数字：5118020010（代码若被当作数字"),
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
    if "more than once" in en:  # both communities that share the code, where they are
        places = gpd.read_file(refused.value.findings_path)
        assert list(places["check"]) == ["duplicate_code"]
        assert places.geometry.iloc[0].area == pytest.approx(2 * grid_communities().geometry.iloc[0].area)


def test_a_refused_code_does_not_hide_the_outlines_findings() -> None:
    """All that is wrong with the files in one answer: a duplicate code and an overlap together,
    not the overlap only once the codes are fixed."""
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name"})
    frame.loc[3, "code"] = frame.loc[2, "code"]
    frame.loc[0, "geometry"] = frame.loc[0, "geometry"].buffer(0.0015)
    found = build_hierarchy(frame[["code", "name", "geometry"]])
    assert {f.check for f in found.refused} == {"duplicate_code", "overlap"}
    assert not len(found.communities)  # and nothing built


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


# -- invalid geometry, streets, places, messages, the options through the CLI ------------------------------
def bow_tie(frame: gpd.GeoDataFrame, index: int) -> gpd.GeoDataFrame:
    """``frame`` with community ``index`` drawn as a bow-tie: its square's corners in the wrong
    order, the ring crossing itself at the centre."""
    spoiled = frame.copy()
    x0, y0, x1, y1 = spoiled.geometry.iloc[index].bounds
    spoiled.loc[index, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    return spoiled


def test_a_bow_tie_community_is_repaired_and_listed_in_every_report(engine: sa.Engine, database_url: str,
                                                                     tmp_path: Path) -> None:
    import gridmap as gm
    from samples import signed_in_client

    path = tmp_path / "communities.gpkg"
    bow_tie(grid_communities(), 0).to_file(path, driver="GPKG")
    centre = (LON0 + STEP_LON / 2, LAT0 + STEP_LAT / 2)

    def listed(findings) -> list:
        return [f for f in findings if f.check == "invalid_geometry"]

    summary = import_boundaries(engine, path, dry_run=True, findings_path=tmp_path / "findings.gpkg")
    [repaired] = listed(summary.findings)
    assert repaired.severity == "repaired" and repaired.codes == ["511802001001"]
    assert "community 511802001001 (第1社区)" in repaired.en and "Self-intersection at" in repaired.en
    assert "社区 511802001001（第1社区）的几何无效（自相交" in repaired.zh and "已修复" in repaired.zh
    assert shapely.distance(repaired.geometry, shapely.Point(centre)) < 1e-6  # where the ring crosses itself
    assert repaired.en in str(summary) and repaired.zh in str(summary)  # the summary the CLI prints
    places = gpd.read_file(tmp_path / "findings.gpkg")
    point = places[places["check"] == "invalid_geometry"]
    assert list(point["codes"]) == ["511802001001"] and list(point.geom_type) == ["Point"]
    # a GeoPackage the system's GDAL (Debian 12: 3.6) opens without "may only be partially supported"
    info = subprocess.run(["ogrinfo", "-ro", "-so", str(tmp_path / "findings.gpkg"), "findings"], capture_output=True,
                          text=True)
    assert info.returncode == 0 and "Feature Count" in info.stdout and "partially supported" not in info.stderr, \
        info.stderr
    # the CLI, the API and the notebook say the same
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    cli = subprocess.run([*GRIDMAP, "territory", "import", str(path), "--dry-run"], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert repaired.en in cli.stdout and repaired.zh in cli.stdout
    admin = signed_in_client(engine, database_url, "admin", "admin", None)
    with open(path, "rb") as fh:
        answer = admin.post("/api/territories", files={"communities": ("communities.gpkg", fh)},
                            data={"dry_run": "true"})
    assert answer.status_code == 201, answer.text
    assert [(f["codes"], f["severity"], f["message_en"], f["message_zh"]) for f in answer.json()["findings"]
            if f["check"] == "invalid_geometry"] == [(["511802001001"], "repaired", repaired.en, repaired.zh)]
    gm.connect(database_url)
    [said] = listed(gm.import_territory(path, dry_run=True).findings)
    assert (said.en, said.zh) == (repaired.en, repaired.zh)
    assert stored(engine) == {}
    # stored for real: the repaired (valid) geometry
    import_boundaries(engine, path)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT bool_and(ST_IsValid(geom)) FROM territories")).scalar_one()


def test_invalid_geometry_given_directly_is_listed_too() -> None:
    """build_hierarchy on frames that no reader repaired: it repairs (make_valid) and says so."""
    frame = bow_tie(grid_communities(), 4).rename(columns={"社区代码": "code", "社区名称": "name"})
    streets = grid_communities().rename(columns={"社区代码": "code"})
    streets = bow_tie(streets.assign(code=streets["code"].str[:9]).dissolve("code", as_index=False)[["code", "geometry"]], 1)
    tree = build_hierarchy(frame)
    assert [(f.codes, f.severity) for f in tree.findings if f.check == "invalid_geometry"] == [
        (["511802001005"], "repaired")]
    assert tree.communities.is_valid.all()
    listed = [f for f in build_hierarchy(frame, streets=streets).findings if f.check == "invalid_geometry"]
    assert [f.codes for f in listed] == [["511802001005"], ["511802002"]]
    assert listed[1].en.startswith("street 511802002: invalid geometry (Self-intersection at")
    assert listed[1].zh.startswith("街道 511802002的几何无效（自相交，位于")


def streets_of(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The streets dissolved from ``grid_communities()``, with 街道代码 and 街道名称."""
    streets = frame.assign(街道代码=frame["社区代码"].str[:9]).dissolve("街道代码", as_index=False)
    return streets[["街道代码", "街道名称", "geometry"]]


def test_a_street_its_communities_do_not_fill_is_reported(engine: sa.Engine, tmp_path: Path) -> None:
    communities = grid_communities()
    communities.to_file(tmp_path / "communities.gpkg", driver="GPKG")
    streets = streets_of(communities)
    west = shapely.box(LON0 - 0.4 * STEP_LON, LAT0, LON0, LAT0 + 3 * STEP_LAT)  # 200 m × 1.5 km of no community
    streets.loc[0, "geometry"] = shapely.union_all([streets.geometry.iloc[0], west])
    streets.to_file(tmp_path / "streets.gpkg", driver="GPKG")
    summary = import_boundaries(engine, tmp_path / "communities.gpkg", streets=tmp_path / "streets.gpkg",
                                findings_path=tmp_path / "findings.gpkg")
    [gap] = [f for f in summary.findings if f.check == "gap"]
    assert gap.severity == "reported" and gap.codes == ["511802001"] and 290_000 < gap.area_m2 < 310_000
    assert "the communities cover 83% of street 511802001" in gap.en and "lie under no community" in gap.en
    assert "社区只覆盖街道 511802001 的 83%" in gap.zh and "不属于任何社区" in gap.zh
    assert shapely.symmetric_difference(gap.geometry, west).area < 1e-3 * west.area  # the place: the empty strip
    assert "gap" in set(gpd.read_file(tmp_path / "findings.gpkg")["check"])
    assert stored(engine)["street"] == 2  # reported, and stored as drawn


def test_streets_that_overlap_are_refused_beyond_the_community_tolerance(engine: sa.Engine, tmp_path: Path) -> None:
    communities = grid_communities()
    communities.to_file(tmp_path / "communities.gpkg", driver="GPKG")
    metre = 1 / 111_000
    for reach_m in (2, 100):  # into the east street: digitising noise (accepted), then a real overlap
        streets = streets_of(communities)
        streets.loc[0, "geometry"] = streets.geometry.iloc[0].buffer(reach_m * metre, join_style="mitre")
        streets.to_file(tmp_path / f"streets{reach_m}.gpkg", driver="GPKG")
    noise = import_boundaries(engine, tmp_path / "communities.gpkg", streets=tmp_path / "streets2.gpkg", dry_run=True)
    assert not [f for f in noise.findings if f.severity == "refused"]
    with pytest.raises(BoundariesRefused) as refused:
        import_boundaries(engine, tmp_path / "communities.gpkg", streets=tmp_path / "streets100.gpkg",
                          findings_path=tmp_path / "findings.gpkg")
    assert "streets 511802001 and 511802002 overlap by" in refused.value.en and "nothing was stored" in refused.value.en
    assert "街道 511802001与511802002 重叠" in refused.value.zh
    overlaps = [f for f in refused.value.findings if f.check == "overlap"]
    assert overlaps and all(f.codes == ["511802001", "511802002"] and f.area_m2 > 100 for f in overlaps)
    # about 100 m × 1.5 km in all (the strip may be cut in pieces where the street outlines have vertices)
    assert 130_000 < sum(f.area_m2 for f in overlaps) < 170_000
    assert set(gpd.read_file(tmp_path / "findings.gpkg")["check"]) == {"overlap"}
    assert stored(engine) == {}


def test_api_refusal_carries_the_overlap_places_as_geojson(engine: sa.Engine, database_url: str,
                                                          tmp_path: Path) -> None:
    """The 422 answer holds the places the CLI writes to its GeoPackage, as an RFC 7946
    FeatureCollection: lon/lat, counter-clockwise outer rings, no crs member."""
    from samples import signed_in_client

    spoiled = grid_communities()
    spoiled.loc[0, "geometry"] = spoiled.loc[0, "geometry"].buffer(0.002)
    path = tmp_path / "overlap.gpkg"
    spoiled.to_file(path, driver="GPKG")
    with pytest.raises(BoundariesRefused):
        import_boundaries(engine, path, findings_path=tmp_path / "cli.gpkg")
    written = gpd.read_file(tmp_path / "cli.gpkg")
    written = written.assign(area=written["area_m2"].round(), x=shapely.get_x(shapely.centroid(written.geometry.values)))
    written = written.sort_values(["area", "x"], ignore_index=True)  # in the order the features are put in below
    admin = signed_in_client(engine, database_url, "admin", "admin", None)
    with open(path, "rb") as fh:
        answer = admin.post("/api/territories", files={"communities": ("overlap.gpkg", fh)})
    assert answer.status_code == 422
    places = answer.json()["places"]
    assert places["type"] == "FeatureCollection" and "crs" not in places
    features = sorted(places["features"], key=lambda f: (round(f["properties"]["area_m2"]),
                                                         shapely.geometry.shape(f["geometry"]).centroid.x))
    assert len(features) == len(written) >= 3 and {f["properties"]["check"] for f in features} == {"overlap"}
    for feature, row in zip(features, written.itertuples()):
        shape = shapely.geometry.shape(feature["geometry"])
        assert feature["type"] == "Feature" and shape.geom_type in ("Polygon", "MultiPolygon")
        assert all(shapely.is_ccw(shapely.get_exterior_ring(part)) for part in shapely.get_parts(shape))
        x0, y0, x1, y1 = shape.bounds
        assert 102.9 < x0 < x1 < 103.1 and 29.9 < y0 < y1 < 30.1  # longitude first
        assert shapely.hausdorff_distance(shape, row.geometry) < 1e-7  # the same place, to 7 decimals (1 cm)
        assert ",".join(feature["properties"]["codes"]) == row.codes
        assert feature["properties"]["area_m2"] == pytest.approx(row.area_m2, abs=0.1)
        assert feature["properties"]["message_zh"] == row.message_zh
    assert stored(engine) == {}


def test_messages_name_territory_import_as_the_way_to_create_one(engine: sa.Engine, database_url: str,
                                                                 tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    listed = subprocess.run([*GRIDMAP, "territories"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "no territories yet" in listed.stdout and "`gridmap territory import COMMUNITIES`" in listed.stdout
    assert "还没有辖区：用 `gridmap territory import 社区文件` 从边界文件创建" in listed.stdout
    layer = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"name": ["路"]}, geometry=[shapely.LineString([(LON0, LAT0), (LON0 + 0.001, LAT0)])],
                     crs=4490).to_file(layer, driver="GPKG")
    refused = subprocess.run([*GRIDMAP, "import", str(layer), "--territory", "123456"], env=env,
                             capture_output=True, text=True)
    error = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and error.startswith("gridmap: error: no territory with code '123456'")
    assert "create one from your boundary files with `gridmap territory import COMMUNITIES`" in error
    assert "没有编码为 123456 的辖区" in error and "用 `gridmap territory import 社区文件` 从边界文件创建" in error


def test_a_district_its_communities_cover_in_part_is_reported() -> None:
    frame = grid_communities().rename(columns={"社区代码": "code"})
    outline = shapely.box(LON0, LAT0, LON0 + 5 * STEP_LON, LAT0 + 3 * STEP_LAT)  # one column more than they fill
    district = gpd.GeoDataFrame({"code": ["511802"], "name": ["雨城区"]}, geometry=[outline], crs=4490)
    tree = build_hierarchy(frame, districts=district)
    [gap] = [f for f in tree.findings if f.check == "gap"]
    assert gap.severity == "reported" and gap.codes == ["511802"] and 740_000 < gap.area_m2 < 760_000
    assert "the communities cover 80% of district 511802" in gap.en and "社区只覆盖区县 511802 的 80%" in gap.zh
    assert tree.districts["name"].iloc[0] == "雨城区" and tree.districts.geometry.iloc[0].equals(outline)
    assert not [f for f in build_hierarchy(frame).findings if f.check == "gap"]  # dissolved: nothing to fill


def test_cli_district_from_its_own_file(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    communities = grid_communities()
    communities.to_file(tmp_path / "communities.gpkg", driver="GPKG")
    outline = shapely.box(LON0, LAT0, LON0 + 5 * STEP_LON, LAT0 + 3 * STEP_LAT)
    gpd.GeoDataFrame({"区县代码": ["511802"], "区县名称": ["雨城区"]}, geometry=[outline],
                     crs=4490).to_file(tmp_path / "district.gpkg", driver="GPKG")
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    done = subprocess.run([*GRIDMAP, "territory", "import", str(tmp_path / "communities.gpkg"), "--district",
                           str(tmp_path / "district.gpkg")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the communities cover 80% of district 511802" in done.stdout and "社区只覆盖区县 511802 的 80%" in done.stdout
    assert "gap" in set(gpd.read_file(tmp_path / "communities-findings.gpkg")["check"])
    with engine.connect() as conn:
        name, geom = conn.execute(sa.text(
            "SELECT name, ST_AsBinary(geom) FROM territories WHERE code = '511802'")).one()
    assert name == "雨城区"
    assert shapely.symmetric_difference(shapely.from_wkb(bytes(geom)), outline).area < 1e-9 * outline.area  # its own


def test_cli_encoding_crs_and_replace(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    """A GBK shapefile without .cpg and without .prj, in Gauss-Krüger metres: --crs says which,
    --encoding gbk how its text is written (utf-8 is refused for what it is); --replace updates."""
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    original = grid_communities()
    path = write_gbk_shapefile(original.to_crs(4543), tmp_path / "社区.shp")  # CGCS2000 3-degree GK CM 102E
    path.with_suffix(".prj").unlink()

    def territory_import(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*GRIDMAP, "territory", "import", str(path), *args], env=env, capture_output=True,
                              text=True, cwd=tmp_path)

    no_crs = territory_import("--encoding", "gbk")
    assert no_crs.returncode == 1 and "does not say its coordinate system" in no_crs.stderr
    wrong = territory_import("--crs", "EPSG:4543", "--encoding", "utf-8")
    assert wrong.returncode == 1 and "--encoding gbk" in wrong.stderr
    assert stored(engine) == {}
    done = territory_import("--crs", "EPSG:4543", "--encoding", "gbk")
    assert done.returncode == 0, done.stderr
    assert "12 communities (12 new)" in done.stdout and "EPSG:4543" in done.stdout
    with engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(sa.text(
            "SELECT code, name, ST_AsBinary(geom) AS geom FROM territories WHERE level IN ('street', 'community')"))}
    assert rows["511802001001"].name == "第1社区" and rows["511802002"].name == "西城街道"
    first = original.geometry.iloc[0]
    assert shapely.symmetric_difference(shapely.from_wkb(bytes(rows["511802001001"].geom)), first).area < 1e-4 * first.area

    renamed = original.assign(社区名称=original["社区名称"].radd("新"))
    write_gbk_shapefile(renamed.to_crs(4543), path).with_suffix(".prj").unlink()
    again = territory_import("--crs", "EPSG:4543", "--encoding", "gbk")
    assert again.returncode == 1 and "--replace updates them" in again.stderr
    replaced = territory_import("--crs", "EPSG:4543", "--encoding", "gbk", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "12 communities (0 new)" in replaced.stdout
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT code, name FROM territories WHERE level = 'community'")).all())
    assert names["511802001001"] == "新第1社区" and len(names) == 12


def _history_rows(engine: sa.Engine, plan_ids: list[int]) -> dict[str, list]:
    """Every stored row of these plans: the plans, their grids, their units (assignment and the
    units themselves, geometry as WKB), as the database holds them."""
    queries = {
        "plans": "SELECT * FROM plans WHERE id = ANY(:p) ORDER BY id",
        "grids": "SELECT *, ST_AsEWKB(geom) AS wkb FROM grids WHERE plan_id = ANY(:p) ORDER BY id",
        "plan_units": "SELECT * FROM plan_units WHERE plan_id = ANY(:p) ORDER BY plan_id, unit_id",
        "units": "SELECT *, ST_AsEWKB(geom) AS wkb FROM units WHERE id IN "
                 "(SELECT unit_id FROM plan_units WHERE plan_id = ANY(:p)) ORDER BY id",
    }
    with engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(sa.text(sql), {"p": plan_ids})]
                for name, sql in queries.items()}


def test_replace_of_a_territory_with_plans_keeps_their_units_and_history(monaco: sa.Engine, tmp_path: Path) -> None:
    from gridmap.services import planning
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import frames

    first = partition_territory(monaco, "980100").plan_id
    planning.publish(monaco, first, version=None, actor="test")
    second, _ = planning.new_draft(monaco, "980100", actor="test")
    planning.publish(monaco, second, version=None, actor="test")  # the first is history now
    draft, _ = planning.new_draft(monaco, "980100", actor="test")
    plans = [first, second, draft]
    with monaco.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT id, status FROM plans WHERE id = ANY(:p)"), {"p": plans}).all())
        communities = frames.communities(conn, "980100")
    assert statuses == {first: "history", second: "published", draft: "draft"}
    before = _history_rows(monaco, plans)
    assert before["units"] and before["grids"]

    # the district's new files: every name changed, one community drawn 10 m smaller all round
    code = communities["code"].iloc[0]
    shapes = communities.geometry.to_crs(32632)
    shapes = shapes.where(communities["code"] != code, shapes.buffer(-10)).to_crs(4490)
    changed = gpd.GeoDataFrame({"code": communities["code"], "name": communities["name"] + " (new)"},
                               geometry=shapes.values, crs=4490)
    changed.to_file(tmp_path / "communities.gpkg", driver="GPKG")
    summary = import_boundaries(monaco, tmp_path / "communities.gpkg", replace=True)
    assert summary.updated["community"] == 6 and summary.created["community"] == 0 and not summary.removed

    with monaco.connect() as conn:
        now = dict(conn.execute(sa.text("SELECT code, name FROM territories WHERE level = 'community'")).all())
        area = conn.execute(sa.text("SELECT ST_Area(geom::geography) FROM territories WHERE code = :c"),
                            {"c": code}).scalar_one()
    assert all(name.endswith(" (new)") for name in now.values())
    old_area = float(communities.set_index("code").loc[code, "area_m2"])
    assert area < old_area - 1_000  # the boundary changed ...
    after = _history_rows(monaco, plans)
    for table in before:  # ... and the plans' units and history are exactly as they were
        assert after[table] == before[table], table


def test_a_crumb_a_repair_cuts_off_is_left_out_and_said() -> None:
    """A ring that crosses itself near a corner repairs into the community and a lobe of a few m²
    (a new user's 芳草社区: 475,192 m² and 16.2 m², the crumb outside the district): kept, it made
    the community two pieces and its grids "islands". It is left out, and said in both languages."""
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name"})
    x0, y0, x1, y1 = frame.geometry.iloc[0].bounds
    d = 4 / 111_000  # the top edge runs 4 m past the corner and the west edge comes back through it: a ~7 m² lobe
    frame.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0 - d, y1), (x0, y1 + d)])
    assert not frame.geometry.iloc[0].is_valid
    tree = build_hierarchy(frame)
    crumbs = [f for f in tree.findings if f.check == "crumb_removed"]
    assert [(f.codes, f.severity) for f in crumbs] == [(["511802001001"], "repaired")]
    assert "1 part(s) of" in crumbs[0].en and "m² apart from the rest left out" in crumbs[0].en
    assert "碎块" in crumbs[0].zh and "第1社区" in crumbs[0].zh and 0 < crumbs[0].area_m2 < 100
    community = tree.communities.set_index("code").geometry.loc["511802001001"]
    assert shapely.get_num_geometries(community) == 1 and community.is_valid


def test_a_mistyped_county_code_is_refused_by_the_district_name() -> None:
    """One community's code typed 511820… for 511802… (both real-looking county codes under the
    city 511800): its 区县名称 says 雨城区 like the other eleven, so it is a slip, not a new district."""
    frame = grid_communities().rename(columns={"社区代码": "code", "社区名称": "name"})
    frame["district_name"] = "雨城区"
    frame.loc[2, "code"] = "511820" + frame.loc[2, "code"][6:]
    tree = build_hierarchy(frame, parent="511800")
    [slip] = [f for f in tree.findings if f.check == "district_code_slip"]
    assert slip.severity == "refused" and slip.codes == [frame.loc[2, "code"]]
    assert "county code 511820, but 区县名称 雨城区 is that of 511802 (11 communities)" in slip.en
    assert "区县代码为 511820" in slip.zh and tree.communities.empty
    # two districts of one name, each with many communities (a merged county's files): not a slip
    frame.loc[:5, "code"] = ["511820" + c[6:] for c in frame.loc[:5, "code"]]
    assert not [f for f in build_hierarchy(frame, parent="511800").findings if f.check == "district_code_slip"]
