"""Broken shapefiles handed over for ``gridmap import``: a part cut off halfway, random bytes in
place of the .dbf, a .dbf of another shapefile. Each is refused naming the file and what is wrong
in English and Chinese (not as empty geometries or an encoding problem), and nothing is stored;
a layer already there is left as it was. On copies of the Ya'an district's 楼栋.shp (GBK, no .cpg),
through the service, the command line and a real PostGIS."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap.geo.io import VectorReadError
from gridmap.geo.shapefile_parts import shapefile_problem
from gridmap.services.demo import load_demo
from gridmap.services.importing import import_file

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = ROOT / "data" / "districts" / "yucheng"
YUCHENG = "511802"
FIX_EN = "copy the shapefile again, all its parts (.shp, .shx, .dbf), from where it came from"
FIX_ZH = "请从原处重新复制该 Shapefile 的全部文件（.shp、.shx、.dbf）"


def buildings(folder: Path) -> Path:
    """A copy of the district's buildings shapefile (楼栋.shp/.shx/.dbf/.prj) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in DISTRICT.glob("楼栋.*"):
        shutil.copy(part, folder / part.name)
    return folder / "楼栋.shp"


def halved(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def random_bytes(path: Path, seed: int = 0) -> None:
    """``path`` replaced by as many random bytes (seed 0: GDAL reads them as a table without fields)."""
    path.write_bytes(random.Random(seed).randbytes(path.stat().st_size))


def stored(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                     for table in ("layers", "layer_features", "audit_log"))


@pytest.fixture
def yucheng(engine: sa.Engine) -> sa.Engine:
    load_demo(engine, ["yaan"])
    return engine


# each case: how to break the copy, the options, what the English and Chinese must say, what they must not
Case = tuple[Callable[[Path], None], dict, list[str], list[str], list[str]]
CASES: dict[str, Case] = {
    ".dbf cut off halfway": (
        lambda shp: halved(shp.with_suffix(".dbf")), {},
        ["楼栋.dbf is truncated: its header says 7,924 records, the file holds 3,959", FIX_EN],
        ["楼栋.dbf 不完整：文件头记载 7,924 条记录，文件中只有 3,959 条", FIX_ZH],
        ["encoding", "GBK"]),
    ".shp cut off halfway": (
        halved, {},
        ["楼栋.shp is truncated: its header says 1,077,764 bytes, the file holds 538,882 "
         "(the first 3,961 of its 7,924 shapes)"],
        ["楼栋.shp 不完整：文件头记载 1,077,764 字节，文件只有 538,882 字节（7,924 个图形中只有前 3,961 个）"],
        ["empty geometry", "feature #"]),
    ".shx cut off halfway": (
        lambda shp: halved(shp.with_suffix(".shx")), {},
        ["楼栋.shx is truncated: its header says 7,924 shapes, the file holds 3,955"],
        ["楼栋.shx 不完整：文件头记载 7,924 个图形，文件中只有 3,955 个"], ["encoding"]),
    "random bytes for the .dbf": (
        lambda shp: random_bytes(shp.with_suffix(".dbf")), {},
        ["楼栋.dbf is not a dBASE table (a shapefile's attributes)", FIX_EN],
        ["楼栋.dbf 不是 dBASE 表（Shapefile 的属性表）", FIX_ZH], ["encoding", "UTF-8", "GBK"]),
    "random bytes for the .dbf, read as latin-1 (imported without attributes before)": (
        lambda shp: random_bytes(shp.with_suffix(".dbf")), {"encoding": "latin-1"},
        ["楼栋.dbf is not a dBASE table"], ["楼栋.dbf 不是 dBASE 表"], ["GBK"]),
    "another shapefile's .dbf": (
        lambda shp: shutil.copy(DISTRICT / "社区.dbf", shp.with_suffix(".dbf")), {},
        ["楼栋.dbf does not match 楼栋.shp: the .dbf has", "records, the .shp 7,924 shapes",
         "are they parts of the same shapefile?"],
        ["楼栋.dbf 与 楼栋.shp 不匹配", ".shp 有 7,924 个图形", "它们是否属于同一个 Shapefile？"], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_shapefile_is_refused_saying_what_is_wrong(case: str, yucheng: sa.Engine, tmp_path: Path) -> None:
    breaks, options, en_parts, zh_parts, not_said = CASES[case]
    shp = buildings(tmp_path / "in")
    breaks(shp)
    before = stored(yucheng)
    with pytest.raises(VectorReadError) as refused:
        import_file(yucheng, shp, territory=YUCHENG, layer="buildings", kind="buildings", **options)
    for part in en_parts:
        assert part in refused.value.en, (part, refused.value.en)
    for part in zh_parts:
        assert part in refused.value.zh, (part, refused.value.zh)
    for part in not_said:
        assert part not in refused.value.en, (part, refused.value.en)
    assert stored(yucheng) == before


def test_a_broken_shapefile_leaves_the_layer_there_as_it_was(yucheng: sa.Engine, tmp_path: Path) -> None:
    good = buildings(tmp_path / "good")
    assert shapefile_problem(good, good.with_suffix(".shx"), good.with_suffix(".dbf")) is None
    summary = import_file(yucheng, good, territory=YUCHENG, layer="buildings", kind="buildings")
    assert summary.features == 7924 and summary.estimated == 0
    with yucheng.connect() as conn:
        checksum = conn.execute(sa.text("SELECT checksum FROM layers WHERE name = 'buildings'")).scalar_one()
    before = stored(yucheng)
    for case, (breaks, options, en_parts, _, _) in CASES.items():
        shp = buildings(tmp_path / str(len(os.listdir(tmp_path))))
        breaks(shp)
        with pytest.raises(VectorReadError) as refused:
            import_file(yucheng, shp, territory=YUCHENG, layer="buildings", kind="buildings", replace=True,
                        estimate_missing=True, **options)
        assert en_parts[0] in refused.value.en, case
        assert stored(yucheng) == before, case
    with yucheng.connect() as conn:
        assert conn.execute(sa.text("SELECT checksum FROM layers WHERE name = 'buildings'")).scalar_one() == checksum


def test_a_zipped_broken_shapefile_names_the_part(yucheng: sa.Engine, tmp_path: Path) -> None:
    shp = buildings(tmp_path / "in")
    halved(shp.with_suffix(".dbf"))
    archive = tmp_path / "楼栋.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp.parent.iterdir():
            zf.write(part, arcname=part.name)
    before = stored(yucheng)
    with pytest.raises(VectorReadError) as refused:
        import_file(yucheng, archive, territory=YUCHENG, layer="buildings")
    assert "楼栋.dbf is truncated: its header says 7,924 records" in refused.value.en
    assert "楼栋.dbf 不完整" in refused.value.zh and str(tmp_path) not in refused.value.en
    assert stored(yucheng) == before


def test_the_command_line_says_it_in_one_line(yucheng: sa.Engine, database_url: str, tmp_path: Path) -> None:
    shp = buildings(tmp_path / "in")
    halved(shp.with_suffix(".dbf"))
    before = stored(yucheng)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "import", str(shp), "--territory", YUCHENG,
                           "--layer", "buildings", "--kind", "buildings"], env=env, capture_output=True, text=True)
    errors = [line for line in done.stderr.splitlines() if line.startswith("gridmap: error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr
    assert "楼栋.dbf is truncated: its header says 7,924 records, the file holds 3,959" in errors[0]
    assert " / 楼栋.dbf 不完整：" in errors[0] and "--encoding" not in errors[0]
    assert "Traceback" not in done.stderr
    assert stored(yucheng) == before
