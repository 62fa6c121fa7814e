"""The README's "Your own district", run as written: its commands, in order, on files this test
writes the way a district office hands them over (GBK shapefiles with Chinese field names, some
without a .cpg, GeoPackages, compounds digitised in GCJ-02 under a CGCS2000 label). The commands
run through the command line's own ``main()`` in this process, in the files' folder (eleven
processes cost 20 s of imports; the installed ``gridmap`` entry point is run in test_cli)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import pytest
import sqlalchemy as sa

from gridmap.geo import synthetic_district as sd
from gridmap.services.demo import load_demo
from samples import run_cli

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The ``gridmap`` lines of the first sh block of the README's "Your own district"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own district", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("gridmap ")]


@pytest.fixture(scope="module")
def district_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic district inside the real 雨城区 outline, written as the demo's files."""
    folder = tmp_path_factory.mktemp("yucheng")
    district = sd.generate(sd.load_boundary(), sd.Config.small())
    sd.write_files(district, folder)
    shutil.copy(ROOT / "data" / "districts" / "yucheng" / "规则.toml", folder / "规则.toml")
    return folder


def test_the_readme_section_runs_as_written(engine: sa.Engine, database_url: str, district_files: Path,
                                            capsys, monkeypatch) -> None:
    load_demo(engine, ["yaan"])  # the city and the real district outline, as the quickstart has them
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["db", "migrate", "territory", "territory", "profile", "import",
                                                "import", "import", "import", "import", "partition", "partition",
                                                "plan", "export"]
    assert "PLAN_ID" in commands[11] and "PLAN_ID" in commands[12]
    commands = commands[1:]  # the suite's database runs already (`db start` is the quickstart's own test's)
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.chdir(district_files)
    outputs: list[str] = []
    for command in commands:
        if "PLAN_ID" in command:  # the id the partition printed
            plan_id = re.search(r"\(id (\d+)\)", next(o for o in outputs if "draft plan" in o)).group(1)
            command = command.replace("PLAN_ID", plan_id)
        status, out, err = run_cli(capsys, *shlex.split(command)[1:])
        assert status == 0, f"{command}\n{err}"
        outputs.append(out)
        if command.endswith("--dry-run"):  # the check stored nothing
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM territories WHERE level = 'community'")).scalar() == 0
    with engine.connect() as conn:
        communities = conn.execute(sa.text("SELECT count(*) FROM territories WHERE level = 'community' "
                                           "AND code LIKE '511802%'")).scalar_one()
        published = conn.execute(sa.text("SELECT count(*) FROM plans p JOIN territories t ON t.id = p.territory_id "
                                         "WHERE t.code = '511802' AND p.status = 'published'")).scalar_one()
        households = conn.execute(sa.text(
            "SELECT sum(g.households) FROM grids g JOIN plans p ON p.id = g.plan_id AND p.status = 'published'")
        ).scalar_one()
    written = gpd.read_file(district_files / "楼栋.shp", encoding="gbk")
    assert communities == len(gpd.read_file(district_files / "社区.shp")) and published == 1
    assert households == written["户数"].sum()  # every household of the files, none estimated or lost
    report = (district_files / "雨城区.html").read_text(encoding="utf-8")
    assert 'id="profile"' in report and "雨城区网格规则" in report  # the report names the rules it used
    with engine.connect() as conn:  # the GCJ-02 compounds, converted, lie inside the district
        outside = conn.execute(sa.text(
            "SELECT count(*) FROM layer_features f JOIN layers l ON l.id = f.layer_id AND l.name = 'compounds' "
            "JOIN territories d ON d.code = '511802' WHERE NOT ST_Within(f.geom, d.geom)")).scalar_one()
    assert outside == 0
    export = district_files / "雨城区网格.zip"
    info = subprocess.run(["ogrinfo", "-ro", "-al", "-so", f"/vsizip/{export}"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "CGCS2000" in info.stdout and "Gauss" in info.stdout
    grids = gpd.read_file(f"zip://{export}", layer="grids", encoding="gbk")
    micro = gpd.read_file(f"zip://{export}", layer="microgrids", encoding="gbk")
    assert len(micro) > len(grids) and micro["micro_code"].astype(str).str.startswith("511802").all()
    assert grids["grid_code"].astype(str).str.fullmatch(r"511802\d{9}").all()
