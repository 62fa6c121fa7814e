"""`gridmap merge` against PostGIS: departmental files in, a draft plan with its crosswalk,
conflicts and duties out; downloads read back by GDAL's own ogrinfo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqlalchemy as sa

from conftest import restore_snapshot, save_snapshot
from samples import signed_in_client

MONACO = "980100"


def _gridmap(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridmap.cli", *args], env=env, capture_output=True, text=True)


_MERGED: dict[str, subprocess.CompletedProcess] = {}  # the CLI's answer of the first build, per worker


@pytest.fixture
def merged(engine: sa.Engine, database_url: str, tmp_path: Path):
    """Monaco merged from seven generated departmental layers by the real ``gridmap departments`` and
    ``gridmap merge`` (with an access list), built once per session and copied back from a
    snapshot of the tables for the next test (as ``monaco_built`` is)."""
    if "done" in _MERGED and restore_snapshot(engine, "monaco_merged"):
        return engine, _MERGED["done"], tmp_path
    from gridmap.services.demo import load_demo

    load_demo(engine, ["monaco"])
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    out = tmp_path / "departments"
    made = _gridmap(env, "departments", "--territory", MONACO, "--out", str(out), "--count", "7")
    assert made.returncode == 0, made.stderr
    files = sorted(out.glob("*.gpkg"))
    assert len(files) == 7
    access = tmp_path / "access.txt"
    access.write_text("# 准入事项清单\nZONGZHI-01\nZONGZHI-02\nCHENGGUAN-01\n", encoding="utf-8")
    done = _gridmap(env, "merge", "--territory", MONACO, "--access-list", str(access), *map(str, files))
    assert done.returncode == 0, done.stderr
    save_snapshot(engine, "monaco_merged")
    _MERGED["done"] = done
    return engine, done, tmp_path


def test_cli_merge_reports_in_the_seed_cities_terms(merged) -> None:
    engine, done, _ = merged
    assert "grids of 7 kinds →" in done.stdout and "duties per grid worker" in done.stdout
    assert "offset layers (corrected before merging): 应急" in done.stdout
    assert "merging departmental layers" in done.stderr  # progress
    with engine.connect() as conn:
        plan = conn.execute(sa.text("SELECT id, origin, status FROM plans ORDER BY id DESC LIMIT 1")).one()
        kinds = dict(conn.execute(sa.text("SELECT kind, count(*) FROM plan_conflicts WHERE plan_id = :p GROUP BY kind"),
                                  {"p": plan.id}).all())
        depts = conn.execute(sa.text("SELECT count(DISTINCT department_id), count(*) FROM department_grids")).one()
        duties = set(conn.execute(sa.text("SELECT DISTINCT duty FROM grid_duties WHERE plan_id = :p"),
                                  {"p": plan.id}).scalars())
        shares = conn.execute(sa.text(
            "SELECT max(abs(s - 1)) FROM (SELECT sum(area_share) AS s FROM merge_crosswalk WHERE plan_id = :p "
            "GROUP BY department, grid_ref) x"), {"p": plan.id}).scalar_one()
    assert plan.origin == "merge" and plan.status == "draft"
    assert kinds.get("offset") == 1 and kinds.get("sliver", 0) > 0 and kinds.get("crosses_community", 0) > 0
    assert depts[0] == 7 and depts[1] > 100
    assert duties == {"ZONGZHI-01", "ZONGZHI-02", "CHENGGUAN-01"}  # the access list holds
    assert shares < 1e-9


def test_downloads_read_back_by_ogrinfo(merged, database_url: str) -> None:
    engine, _, tmp_path = merged
    with engine.connect() as conn:
        plan_id = conn.execute(sa.text("SELECT max(id) FROM plans")).scalar_one()
        n_conflicts = conn.execute(sa.text("SELECT count(*) FROM plan_conflicts WHERE plan_id = :p"),
                                   {"p": plan_id}).scalar_one()
    client = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    gpkg = tmp_path / "conflicts.gpkg"
    gpkg.write_bytes(client.get(f"/api/plans/{plan_id}/conflicts", params={"format": "gpkg"}).content)
    info = subprocess.run(["ogrinfo", "-so", "-al", str(gpkg)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert f"Feature Count: {n_conflicts}" in info.stdout
    assert "department: String" in info.stdout and "kind: String" in info.stdout
    assert "4490" in info.stdout or "China Geodetic Coordinate System 2000" in info.stdout
    crosswalk_csv = client.get(f"/api/plans/{plan_id}/crosswalk", params={"format": "csv"})
    assert crosswalk_csv.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel shows the Chinese names
    text = crosswalk_csv.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "department,grid_id,grid_code,area_share,household_share,area_m2,households"
    assert "综治" in text
    cw = tmp_path / "crosswalk.gpkg"
    cw.write_bytes(client.get(f"/api/plans/{plan_id}/crosswalk", params={"format": "gpkg"}).content)
    info = subprocess.run(["ogrinfo", "-so", "-al", str(cw)], capture_output=True, text=True)
    assert "area_share: Real" in info.stdout and "grid_code: String" in info.stdout
    duties = client.get(f"/api/plans/{plan_id}/duties").json()
    assert duties and all(d["duty"] in {"ZONGZHI-01", "ZONGZHI-02", "CHENGGUAN-01"} for v in duties.values() for d in v)
    assert client.get(f"/api/plans/{plan_id}/conflicts", params={"format": "shp"}).status_code == 422


def test_merge_of_a_broken_file_changes_nothing(monaco: sa.Engine, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    bad = tmp_path / "城管.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
                   '"geometry": {"type": "Polygon", "coordinates": [[[7.41, 43.73], [7.42, 43.73], [7.42, 43.74], '
                   '[7.41, 43.73]]]}}]}', encoding="utf-8")
    done = _gridmap(env, "merge", "--territory", MONACO, str(bad))
    assert done.returncode == 1 and "no grid id column" in done.stderr
    with monaco.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plans")).scalar_one() == 0


def test_export_of_a_merge_draft_carries_the_crosswalk(merged) -> None:
    """`gridmap export --plan draft --layers grids,crosswalk`: the crosswalk travels as a table
    (a lone .dbf in the Shapefile zip, a table in the GeoPackage), every row of it."""
    engine, _, tmp_path = merged
    with engine.connect() as conn:
        plan_id = conn.execute(sa.text("SELECT max(id) FROM plans")).scalar()
        rows = conn.execute(sa.text("SELECT count(*) FROM merge_crosswalk WHERE plan_id = :p"), {"p": plan_id}).scalar()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": str(engine.url.render_as_string(hide_password=False))}
    for fmt, target, source in (("shp", "merge.zip", "/vsizip/{}/crosswalk.dbf"), ("gpkg", "merge.gpkg", "{}")):
        out = tmp_path / target
        done = _gridmap(env, "export", "--territory", MONACO, "--plan", "draft", "--format", fmt,
                        "--layers", "grids,crosswalk", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert f"crosswalk {rows}" in done.stdout
        info = subprocess.run(["ogrinfo", "-ro", "-so", source.format(out), "crosswalk"], capture_output=True,
                              text=True).stdout
        assert f"Feature Count: {rows}" in info and "Geometry: None" in info
        assert ("old_grid: String" if fmt == "shp" else "grid_id: String") in info
