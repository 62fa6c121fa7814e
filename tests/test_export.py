"""Exports for government GIS systems, read back by GDAL's own reader (``ogrinfo`` from Debian's
gdal-bin, not the library that wrote them): layer and feature counts, CRS, field types, Chinese
text in UTF-8 and GBK, codes with leading zeros, areas against PostGIS, and the errors."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.geo.export import ExportError, export
from conftest import published_plan_id

OGRINFO = "/usr/bin/ogrinfo"
GRIDMAP = [sys.executable, "-m", "gridmap.cli"]
CHINESE = "雨城区西城街道第一网格"
MONACO = "980100"


def ogrinfo(path: str | Path, *args: str, layer: str | None = None) -> str:
    out = subprocess.run([OGRINFO, "-ro", *args, str(path), *([layer] if layer else [])], capture_output=True,
                         text=True, encoding="utf-8")
    assert out.returncode == 0, out.stderr
    return out.stdout


def summary(path: str | Path, layer: str | None = None) -> dict:
    """Layer names, feature count, EPSG code (or CRS name), field types and features of one layer."""
    listing = ogrinfo(path, "-q")
    layers = re.findall(r"^\d+: (\S+)", listing, flags=re.M)
    text = ogrinfo(path, "-so", *([] if layer else ["-al"]), layer=layer)
    epsg = re.findall(r'^    ID\["EPSG",(\d+)\]\]$', text, flags=re.M)
    name = re.search(r'^(?:PROJCRS|GEOGCRS)\["([^"]+)"', text, flags=re.M)
    fields = dict(re.findall(r"^(\w+): (\w+) \(", text, flags=re.M))
    return {"layers": layers, "count": int(re.search(r"Feature Count: (\d+)", text).group(1)),
            "epsg": int(epsg[-1]) if epsg else None, "crs_name": name.group(1) if name else None, "fields": fields}


def features(path: str | Path, layer: str | None = None, *, sql: str | None = None) -> list[dict[str, str]]:
    """Attribute values of every feature as ogrinfo prints them."""
    if sql is not None:
        text = ogrinfo(path, "-sql", sql)
    else:
        text = ogrinfo(path, *([] if layer else ["-al"]), layer=layer)
    rows = []
    for block in re.split(r"^OGRFeature\(", text, flags=re.M)[1:]:
        rows.append(dict(re.findall(r"^  (\w+) \(\w+\) = (.*)$", block, flags=re.M)))
    return rows


@pytest.fixture(scope="module")
def yaan_grids() -> gpd.GeoDataFrame:
    """Six grids in Ya'an (雅安, 103°E: CGCS2000 3-degree zone 34), codes with leading zeros."""
    boxes = [shapely.box(103.00 + 0.01 * i, 29.98, 103.01 + 0.01 * i, 29.99 + 0.005 * (i % 2)) for i in range(6)]
    return gpd.GeoDataFrame({
        "grid_code": [f"0511802001001{i:03d}" for i in range(6)],
        "grid_name": [CHINESE if i == 0 else f"第{i + 1}网格" for i in range(6)],
        "kind": ["comprehensive"] * 5 + ["dedicated"],
        "community_code": ["051180200100"] * 6, "community_name": ["西城社区"] * 6,
        "households": [300 + 30 * i for i in range(6)], "population": [None, 900, 1000, None, 1200, 1300],
        "worker": ["张三"] * 6, "valid_from": [date(2026, 3, 1)] * 6, "valid_to": [None] * 6,
    }, geometry=boxes, crs=4490)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_shapefile_zip_reads_back_with_chinese_codes_and_gauss_kruger(yaan_grids, tmp_path, encoding) -> None:
    result = export({"grids": yaan_grids}, tmp_path / "grids", format="shp", crs="gk3", encoding=encoding)
    assert result.path.name == "grids.zip"
    with zipfile.ZipFile(result.path) as archive:
        names = set(archive.namelist())
        assert {"grids.shp", "grids.shx", "grids.dbf", "grids.prj", "grids.cpg", "data_dictionary.csv"} <= names
        assert archive.read("grids.cpg").decode() == ("UTF-8" if encoding == "utf-8" else "GBK")
        dbf = archive.read("grids.dbf")
        dictionary = list(csv.DictReader(io.StringIO(archive.read("data_dictionary.csv").decode(
            "utf-8-sig" if encoding == "utf-8" else "gbk"))))
    # the text really is in the asked-for encoding, not just labelled so
    assert CHINESE.encode(encoding) in dbf and (encoding == "utf-8" or CHINESE.encode("utf-8") not in dbf)
    # and the dBASE header says GBK (language driver 0x4D, code page 936) for a reader without the .cpg
    assert dbf[29] == (0x4D if encoding == "gbk" else 0x00)
    if encoding == "gbk":  # GDAL, told nothing but the header, reads the Chinese name from it
        bare = tmp_path / "bare"
        bare.mkdir()
        with zipfile.ZipFile(result.path) as archive:
            for ext in (".shp", ".shx", ".dbf", ".prj"):
                (bare / f"grids{ext}").write_bytes(archive.read(f"grids{ext}"))
        assert features(bare / "grids.shp")[0]["grid_name"] == CHINESE
    shp = f"/vsizip/{result.path}/grids.shp"
    info = summary(shp)
    assert info["count"] == 6 and info["epsg"] == 4522  # zone 34, zone number in the false easting
    assert info["fields"]["grid_code"] == "String" and info["fields"]["households"] == "Integer"
    assert info["fields"]["area_m2"] == "Real" and info["fields"]["valid_from"] == "Date"
    assert all(len(name) <= 10 for name in info["fields"])
    rows = features(shp)
    assert rows[0]["grid_code"] == "0511802001001000" and rows[0]["comm_code"] == "051180200100"
    assert rows[0]["grid_name"] == CHINESE and rows[0]["worker"] == "张三"
    assert rows[0]["valid_from"] == "2026/03/01" and rows[0]["population"] == "(null)"
    # the dictionary names every field of the file, with its full name and meaning
    short = {r["field"]: r for r in dictionary if r["layer"] == "grids"}
    assert set(short) == set(info["fields"])
    assert short["comm_code"]["full_name"] == "community_code" and "前导零" in short["comm_code"]["meaning_zh"]
    # x values carry the zone prefix 34 (34,5xx,xxx m)
    extent = re.search(r"Extent: \(([\d.]+),", ogrinfo(shp, "-al", "-so")).group(1)
    assert 34_000_000 < float(extent) < 35_000_000


def test_every_crs_choice_is_declared_and_positions_agree(yaan_grids, tmp_path) -> None:
    centroid = yaan_grids.geometry.iloc[0].centroid
    expected_epsg = {"4490": 4490, "4326": 4326, "gk3": 4522, "gk3-cm": 4543, "gcj02": 4326}
    for choice, epsg in expected_epsg.items():
        out = export(yaan_grids, tmp_path / f"g_{choice}.gpkg", crs=choice).path
        assert summary(out, "grids")["epsg"] == epsg, choice
        back = gpd.read_file(out, layer="grids")
        first = back.geometry.iloc[0].centroid
        if choice == "gcj02":  # the published GCJ-02 offset, a few hundred metres here
            glon, glat = wgs84_to_gcj02(np.array([centroid.x]), np.array([centroid.y]))
            assert abs(first.x - glon[0]) < 1e-7 and abs(first.y - glat[0]) < 1e-7
            assert 100 < abs(first.x - centroid.x) * 96_000 + abs(first.y - centroid.y) * 111_000 < 1000
        elif choice in ("gk3", "gk3-cm"):
            lonlat = gpd.GeoSeries([first], crs=back.crs).to_crs(4490).iloc[0]
            assert lonlat.distance(centroid) < 1e-7
            assert (first.x > 34e6) == (choice == "gk3")
        else:
            assert first.distance(centroid) < 1e-9


def test_geojson_kml_csv_read_back(yaan_grids, tmp_path) -> None:
    gj = export(yaan_grids, tmp_path / "g.geojson").path
    info = summary(gj)
    assert info["count"] == 6 and info["epsg"] == 4326 and info["fields"]["grid_code"] == "String"
    assert features(gj)[0]["grid_name"] == CHINESE
    assert '"crs"' not in gj.read_text(encoding="utf-8")  # RFC 7946: no crs member, WGS84 implied

    kml = export(yaan_grids, tmp_path / "g.kml", format="kml").path
    assert summary(kml)["count"] == 6
    placemarks = kml.read_text(encoding="utf-8")
    assert f"<name>{CHINESE}</name>" in placemarks and "0511802001001000" in placemarks

    for encoding in ("utf-8", "gbk"):
        out = export(yaan_grids, tmp_path / f"g_{encoding}.csv", crs="gk3-cm", encoding=encoding).path
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8")  # a BOM so Excel reads UTF-8
        text = raw.decode("utf-8-sig" if encoding == "utf-8" else "gbk")
        assert CHINESE in text and '"0511802001001000"' in text
        if encoding == "utf-8":
            info = summary(out)
            assert info["count"] == 6 and info["fields"]["grid_code"] == "String"  # via the .csvt
            assert features(out)[0]["grid_code"] == "0511802001001000"


def test_file_geodatabase_reads_back_with_chinese_names_codes_and_the_zone(yaan_grids, tmp_path) -> None:
    """--format gdb: a zipped Esri File Geodatabase (GDAL's OpenFileGDB driver) that GDAL's own
    ogrinfo opens through /vsizip/: the grids in the Gauss-Krüger zone with Chinese names, codes
    with their leading zeros, dates as dates, and the data dictionary as a table."""
    crosswalk = pd.DataFrame({"department": ["综治", "城管"], "grid_code": ["0511802001001000", "0511802001001001"],
                              "area_share": [1.0, 0.5]})
    result = export({"grids": yaan_grids, "crosswalk": crosswalk}, tmp_path / "yucheng", format="gdb", crs="gk3")
    assert result.path.name == "yucheng.zip" and "yucheng.gdb/gdb" in result.files
    with zipfile.ZipFile(result.path) as archive:
        assert all(name.startswith("yucheng.gdb/") for name in archive.namelist())
    gdb = f"/vsizip/{result.path}/yucheng.gdb"
    assert set(re.findall(r"^Layer: (\w+)", ogrinfo(gdb, "-q"), flags=re.M)) == {"grids", "crosswalk",
                                                                               "data_dictionary"}
    info = summary(gdb, "grids")
    assert info["count"] == 6 and info["epsg"] == 4522  # CGCS2000 3-degree zone 34 (Ya'an)
    assert info["fields"]["grid_code"] == "String" and info["fields"]["valid_from"] in ("Date", "DateTime")
    rows = features(gdb, "grids")
    assert rows[0]["grid_name"] == CHINESE and rows[0]["grid_code"] == "0511802001001000"
    assert [r["department"] for r in features(gdb, "crosswalk")] == ["综治", "城管"]
    with pytest.raises(ExportError, match="UTF-8 by definition"):
        export(yaan_grids, tmp_path / "x", format="gdb", encoding="gbk")


def test_geoparquet_reads_back_with_its_crs_codes_and_types(yaan_grids, tmp_path) -> None:
    """--format parquet: GeoParquet read back by pyarrow (the ``geo`` metadata, the column types) and
    GeoPandas (geometry, CRS); several layers: a zip with the data dictionary."""
    import json

    import pyarrow.parquet as pq

    result = export(yaan_grids, tmp_path / "grids", format="parquet", crs="gk3")
    assert result.path.name == "grids.parquet"
    table = pq.read_table(result.path)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["crs"]["id"]["code"] == 4522  # CGCS2000 3-degree zone 34
    assert str(table.schema.field("grid_code").type) in ("string", "large_string")
    assert str(table.schema.field("valid_from").type) == "date32[day]"
    back = gpd.read_parquet(result.path)
    assert back.crs.to_epsg() == 4522 and back["grid_code"].tolist()[0] == "0511802001001000"
    assert back["grid_name"].tolist()[0] == CHINESE and len(back) == 6
    expected = yaan_grids.to_crs(4522).geometry.values
    assert all(a.equals_exact(b, 1e-3) for a, b in zip(back.geometry.values, expected))
    crosswalk = pd.DataFrame({"department": ["综治"], "grid_code": ["0511802001001000"], "area_share": [1.0]})
    both = export({"grids": yaan_grids, "crosswalk": crosswalk}, tmp_path / "both", format="parquet")
    with zipfile.ZipFile(both.path) as archive:
        assert sorted(archive.namelist()) == ["crosswalk.parquet", "data_dictionary.parquet", "grids.parquet"]


def test_bad_requests_are_clear_and_leave_nothing(yaan_grids, tmp_path) -> None:
    icelandic = yaan_grids.assign(community_name="Staðir")
    with pytest.raises(ExportError, match=r"cannot be written in GBK.*Staðir.*'ð'"):
        export(icelandic, tmp_path / "x.zip", format="shp", encoding="gbk")
    with pytest.raises(ExportError, match="always WGS84"):
        export(yaan_grids, tmp_path / "x.geojson", crs="gk3")
    with pytest.raises(ExportError, match="UTF-8 by definition"):
        export(yaan_grids, tmp_path / "x.gpkg", encoding="gbk")
    with pytest.raises(ExportError, match="unknown export format"):
        export(yaan_grids, tmp_path / "x.dxf")
    with pytest.raises(ExportError, match="no CRS"):
        export(gpd.GeoDataFrame(yaan_grids.drop(columns="geometry"), geometry=list(yaan_grids.geometry)),
               tmp_path / "x.gpkg")
    assert list(tmp_path.iterdir()) == []


# -- from the database: the CLI and the API ---------------------------------------------------
@pytest.fixture
def published_monaco(monaco_published: sa.Engine):
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    from gridmap.services.incidents import load_demo_incidents

    plan_id = published_plan_id(monaco)
    with monaco.begin() as conn:  # a Chinese name to carry through every format
        conn.execute(sa.text("UPDATE grids SET name = :n, worker = '李四' WHERE plan_id = :p AND code = ("
                             "SELECT min(code) FROM grids WHERE plan_id = :p)"), {"n": CHINESE, "p": plan_id})
    load_demo_incidents(monaco, MONACO, count=300, seed=2)
    return monaco, plan_id


def test_cli_exports_a_published_plan_with_postgis_areas(published_monaco, database_url, tmp_path) -> None:
    engine, plan_id = published_monaco
    with engine.connect() as conn:
        areas = dict(conn.execute(sa.text("SELECT code, ST_Area(geom::geography) FROM grids WHERE plan_id = :p"),
                                  {"p": plan_id}).all())
        first = conn.execute(sa.text("SELECT min(code) FROM grids WHERE plan_id = :p"), {"p": plan_id}).scalar()
        counts = conn.execute(sa.text("SELECT (SELECT count(*) FROM plan_units WHERE plan_id = :p), "
                                      "(SELECT count(*) FROM incidents)"), {"p": plan_id}).one()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    out = tmp_path / "monaco.zip"
    run = subprocess.run([*GRIDMAP, "export", "--territory", MONACO, "--format", "shp", "--crs", "gk3",
                          "--layers", "grids,units,incidents", "--out", str(out)], env=env, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert f"grids {len(areas)}, units {counts[0]}, incidents {counts[1]}" in run.stdout
    shp = f"/vsizip/{out}/grids.shp"
    info = summary(shp)
    assert info["count"] == len(areas) and "Gauss-Kruger" in info["crs_name"] and "6E" in info["crs_name"]
    assert summary(f"/vsizip/{out}/units.shp")["count"] == counts[0]
    assert summary(f"/vsizip/{out}/incidents.shp")["count"] == counts[1]
    assert "reporter" not in " ".join(summary(f"/vsizip/{out}/incidents.shp")["fields"])
    rows = {r["grid_code"]: r for r in features(shp)}
    assert rows[first]["grid_name"] == CHINESE and rows[first]["worker"] == "李四"
    # each grid's flags and their reasons, as the plan's report gives them (Monaco has grids outside the band)
    from gridmap.services.planning import report
    flags = report(engine, plan_id)["flags"]
    assert flags
    for said in flags:
        row = rows[said["grid_code"]]
        assert said["flag"] in row["flag"].split(",")
        assert said["reason_zh"][:30] in row["reason_zh"] and said["reason"][:40] in row["reason_en"]
    unflagged = set(rows) - {f["grid_code"] for f in flags}
    assert unflagged and all(rows[c].get("flag", "(null)") in ("(null)", "") for c in unflagged)
    assert rows[first]["comm_code"].startswith("98") and rows[first]["dist_code"] == "980101"
    # areas: the attribute, and the projected geometry measured by GDAL itself, within 0.1% of PostGIS
    measured = {r["grid_code"]: float(r["OGR_GEOM_AREA"]) for r in features(
        shp, sql="SELECT grid_code, OGR_GEOM_AREA FROM grids")}
    for code, reference in areas.items():
        assert abs(float(rows[code]["area_m2"]) - reference) <= 1e-3 * reference, code
        assert abs(measured[code] - reference) <= 1e-3 * reference, code

    # every other format from the same command, each read back
    for fmt, crs, encoding, suffix in (("gpkg", "4490", "utf-8", ".gpkg"), ("geojson", "4326", "utf-8", ".geojson"),
                                       ("kml", "gcj02", "utf-8", ".kml"), ("csv", "4490", "utf-8", ".csv")):
        target = tmp_path / f"monaco{suffix}"
        run = subprocess.run([*GRIDMAP, "export", "--territory", MONACO, "--format", fmt, "--crs", crs,
                              "--encoding", encoding, "--out", str(target)], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        info = summary(target, "grids" if fmt in ("gpkg", "kml") else None)
        assert info["count"] == len(areas), fmt
        if fmt == "gpkg":
            assert info["layers"] == ["grids", "data_dictionary"] and info["epsg"] == 4490
            assert info["fields"]["valid_from"] == "Date" and info["fields"]["plan_version"] == "Integer"
        assert CHINESE in target.read_text(encoding="utf-8-sig") if fmt != "gpkg" else True


def test_cli_and_api_refusals(published_monaco, database_url, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from samples import signed_in_client

    engine, _ = published_monaco
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    no_draft = subprocess.run([*GRIDMAP, "export", "--territory", MONACO, "--format", "gpkg", "--plan", "draft",
                               "--out", str(tmp_path / "d.gpkg")], env=env, capture_output=True, text=True)
    assert no_draft.returncode == 1 and "has no draft plan" in no_draft.stderr
    assert f"gridmap partition --territory {MONACO}" in no_draft.stderr  # and what to do about it
    assert not (tmp_path / "d.gpkg").exists()

    client = TestClient(create_app(database_url=database_url))
    ok = client.get(f"/api/territories/{MONACO}/export", params={"format": "shp", "crs": "gk3-cm"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/zip"
    assert 'filename="gridmap-980100-v1-grids.zip"' in ok.headers["content-disposition"]
    path = tmp_path / "api.zip"
    path.write_bytes(ok.content)
    assert summary(f"/vsizip/{path}/grids.shp")["count"] > 0
    assert client.get(f"/api/territories/{MONACO}/export", params={"format": "kml", "crs": "gk3"}).status_code == 422
    assert client.get("/api/territories/000000/export").status_code == 404
    assert client.get(f"/api/territories/{MONACO}/export", params={"layers": "secrets"}).status_code == 422
    # a draft is not public; a viewer of the territory may download it
    from gridmap.services import planning

    planning.new_draft(engine, MONACO, actor="test")
    assert client.get(f"/api/territories/{MONACO}/export", params={"plan": "draft"}).status_code == 401
    viewer = signed_in_client(engine, database_url, "viewer1", "viewer", MONACO)
    draft = viewer.get(f"/api/territories/{MONACO}/export", params={"plan": "draft", "format": "geojson"})
    assert draft.status_code == 200 and draft.headers["content-type"] == "application/geo+json"
    assert draft.json()["type"] == "FeatureCollection" and draft.json()["features"][0]["properties"]["plan_version"] == 2


def test_unknown_or_empty_crs_is_an_export_error(yaan_grids, tmp_path) -> None:
    for bad in ("", "EPSG:999999", "mars-2"):
        with pytest.raises(ExportError, match="choose 4490"):
            export(yaan_grids, tmp_path / "x.gpkg", crs=bad)
    assert list(tmp_path.iterdir()) == []


LONG_ZH = ("单元 康乐华府7栋 1单元 (48), 康乐华府7栋 2单元 (48) 各自超过 80 户的一半且不足 50 户："
           + "在户数区间内的网格至多含其中一个，并且必须含它在这组之外的一个相邻单元，" * 4 + "所以必有一个网格落在区间外")
LONG_EN = ("its region (the 16 non-dedicated units joined to it, 397 households) has no division into contiguous "
           "grids with fewer than 4 grids outside 50–80 households " * 3 + "(exhaustive search)")


def long_text_microgrids() -> gpd.GeoDataFrame:
    """Three micro-grids in Ya'an: one whose reasons are longer than a Shapefile field holds, one
    short, one without a reason."""
    boxes = [shapely.box(103.00 + 0.001 * i, 29.98, 103.001 + 0.001 * i, 29.981) for i in range(3)]
    return gpd.GeoDataFrame({
        "microgrid_code": [f"511802003011008{i:03d}" for i in range(3)], "grid_code": ["511802003011008"] * 3,
        "households": [40, 60, 90], "flag": ["band_infeasible", None, "above_max"],
        "reason_zh": [LONG_ZH, None, "超过 80 户"], "reason": [LONG_EN, None, "above 80"],
    }, geometry=boxes, crs=4490)


def raw_field(path: str, field: str) -> list[bytes]:
    """The bytes of a Shapefile text field as stored, read by ogrinfo told not to recode them."""
    out = subprocess.run([OGRINFO, "-ro", "-al", "--config", "SHAPE_ENCODING", "", path], capture_output=True)
    assert out.returncode == 0, out.stderr
    found = re.findall(rb"^  " + field.encode() + rb" \(String\) = (.*)$", out.stdout, flags=re.M)
    return [value for value in found if value != b"(null)"]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_long_text_is_cut_cleanly_in_a_shapefile_and_kept_whole_beside_it(tmp_path, encoding) -> None:
    """A Shapefile text field holds 254 bytes: GDAL used to cut reason_en with a raw RuntimeWarning
    and reason_zh silently mid-sentence. Now it is cut at a character, ends in "…", the full text is
    in the zip (microgrids_fulltext.csv), the dictionary and one bilingual note say so, no warning."""
    import warnings

    frame = long_text_microgrids()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export({"microgrids": frame}, tmp_path / "m.zip", format="shp", crs="gk3", encoding=encoding)
    assert not [w for w in caught if "truncated" in str(w.message)], [str(w.message) for w in caught]
    shp = f"/vsizip/{result.path}/microgrids.shp"
    for field, full in (("reason_zh", LONG_ZH), ("reason_en", LONG_EN)):
        stored = raw_field(shp, field)
        assert len(stored) == 2 and len(stored[0]) <= 254, (field, stored)
        cut = stored[0].decode(encoding)  # strict: a character cut in half would not decode
        assert cut.endswith("…") and full.startswith(cut[:-1].rstrip()) and len(cut) < len(full), cut
        assert stored[1].decode(encoding) == frame.iloc[2][field if field == "reason_zh" else "reason"]
    assert [r["reason_zh"] for r in features(shp)][0] == raw_field(shp, "reason_zh")[0].decode(encoding)
    codec = "utf-8-sig" if encoding == "utf-8" else "gbk"
    with zipfile.ZipFile(result.path) as archive:
        full_rows = list(csv.DictReader(io.StringIO(archive.read("microgrids_fulltext.csv").decode(codec))))
        dictionary = {r["field"]: r for r in csv.DictReader(io.StringIO(
            archive.read("data_dictionary.csv").decode(codec)))}
    assert full_rows == [{"fid": "0", "micro_code": "511802003011008000", "reason_zh": LONG_ZH, "reason_en": LONG_EN}]
    for field in ("reason_zh", "reason_en"):
        assert "microgrids_fulltext.csv" in dictionary[field]["meaning_zh"] and "截断" in dictionary[field]["meaning_zh"]
        assert "microgrids_fulltext.csv" in dictionary[field]["meaning_en"] and "cut" in dictionary[field]["meaning_en"]
    assert "microgrids_fulltext.csv" not in dictionary["flag"]["meaning_en"]
    [note] = result.notes
    assert "microgrids.reason_zh 1" in note["en"] and "microgrids_fulltext.csv" in note["en"]
    assert "已截断" in note["zh"] and "microgrids_fulltext.csv" in note["zh"]


def test_long_text_is_whole_in_geopackage_and_geojson(tmp_path) -> None:
    frame = long_text_microgrids()
    for fmt in ("gpkg", "geojson"):
        result = export({"microgrids": frame}, tmp_path / f"m.{fmt}", format=fmt, crs="4326")
        assert result.notes == []
        row = features(result.path, "microgrids" if fmt == "gpkg" else None)[0]
        assert row["reason_zh"] == LONG_ZH and row["reason"] == LONG_EN, fmt


def test_cli_export_says_once_in_both_languages_what_was_cut(published_monaco, database_url, tmp_path,
                                                            monkeypatch, capsys) -> None:
    """The note reaches the user on stderr, once, in English and Chinese (the export itself is
    the long-text frame above: Monaco's own reasons fit)."""
    from gridmap import cli
    from gridmap.services import exporting

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setattr(exporting, "export_territory", lambda engine, request, out: export(
        {"microgrids": long_text_microgrids()}, out, format=request.format, crs=request.crs,
        encoding=request.encoding))
    out = tmp_path / "m.zip"
    capsys.readouterr()
    assert cli.main(["export", "--territory", MONACO, "--format", "shp", "--encoding", "gbk", "--layers",
                     "microgrids", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "microgrids 3" in captured.out and "微网格 3" in captured.out
    assert captured.err.count("microgrids_fulltext.csv") == 2, captured.err  # once in each language
    assert "longer values were cut" in captured.err and "已截断" in captured.err
    assert "RuntimeWarning" not in captured.err
