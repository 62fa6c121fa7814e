"""Broken shapefiles handed over for ``gridmap import``: a part cut off halfway, random bytes in
place of the .dbf, a .dbf of another shapefile. Each is refused naming the file and what is wrong
in English and Chinese (not as empty geometries or an encoding problem), and nothing is stored;
a layer already there is left as it was. Also: an encoding message never names as the fix the
encoding the file was read with. On copies of the Ya'an district's 楼栋.shp (GBK, no .cpg),
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

import pyogrio
import pytest
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.geo.io import VectorReadError, read_vector
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


# -- an encoding message never contradicts itself ---------------------------------------------------------
def test_a_failure_that_is_not_the_text_is_not_said_to_be_the_text(yucheng: sa.Engine, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL failing on a GBK shapefile read as GBK (detected or given) was said to be "not gbk ...
    it looks like GBK: add --encoding gbk"."""
    shp = buildings(tmp_path / "in")
    before = stored(yucheng)

    def fails(*args, **kwargs):
        raise pyogrio.errors.DataSourceError("fread(51) failed on DBF file.")

    monkeypatch.setattr(pyogrio, "read_dataframe", fails)
    for options in ({}, {"encoding": "gbk"}):
        with pytest.raises(Invalid) as refused:
            import_file(yucheng, shp, territory=YUCHENG, layer="buildings", **options)
        assert "cannot be read as a GIS file: fread(51) failed on DBF file" in refused.value.en, options
        assert "无法作为 GIS 文件读取" in refused.value.zh
        assert "looks like GBK" not in refused.value.en and "GBK 编码" not in refused.value.zh, options

    def undecodable(*args, **kwargs):
        raise UnicodeDecodeError("gbk", b"\x81\x20", 0, 2, "illegal multibyte sequence")

    monkeypatch.setattr(pyogrio, "read_dataframe", undecodable)
    for options, claim in (({}, "gbk (the encoding it was read with)"),
                           ({"encoding": "gbk"}, "gbk (as --encoding gbk says)")):
        with pytest.raises(Invalid) as refused:
            import_file(yucheng, shp, territory=YUCHENG, layer="buildings", **options)
        assert f"some of the text cannot be decoded as {claim} (illegal multibyte sequence)" in refused.value.en
        assert "the file may be damaged, or in another encoding" in refused.value.en
        assert "部分文本无法按 gbk 编码" in refused.value.zh and "文件可能已损坏" in refused.value.zh
        assert "add --encoding gbk" not in refused.value.en and "请加 --encoding gbk" not in refused.value.zh
        assert "not gbk" not in refused.value.en
    assert stored(yucheng) == before


def test_text_that_is_not_the_gbk_given_is_not_said_to_be_not_gbk(yucheng: sa.Engine, tmp_path: Path) -> None:
    """``--encoding gbk`` on text that is neither GBK nor UTF-8 said "neither gbk ... nor GBK"."""
    path = tmp_path / "站点.csv"
    path.write_bytes(b"lon,lat,name\n103.01,30.0,\xff\xfe\xff\n")
    before = stored(yucheng)
    with pytest.raises(VectorReadError) as refused:
        import_file(yucheng, path, territory=YUCHENG, crs="EPSG:4490", encoding="gbk")
    assert "the text is neither gbk (as --encoding gbk says) nor UTF-8" in refused.value.en
    assert "文本既不是 gbk 编码（--encoding gbk）也不是 UTF-8 编码" in refused.value.zh
    assert "nor GBK" not in refused.value.en
    assert stored(yucheng) == before


@pytest.mark.parametrize("claimed", ["utf-8", "UTF8", "gbk", "GB18030", "cp936"])
def test_no_encoding_message_names_the_encoding_read_with_as_the_fix(claimed: str, tmp_path: Path) -> None:
    """Whatever the text looks like (UTF-8, GBK, neither), a refusal of text read as ``claimed``
    never says it is not ``claimed`` but looks like it, nor that it is neither ``claimed`` nor GBK
    when ``claimed`` is GBK."""
    from gridmap.geo.io import _is_gbk_label, _wrong_text

    gbk = _is_gbk_label(claimed)
    for found in ("utf-8", "gbk", None):
        said = _wrong_text("x.shp", f"{claimed} (as its .cpg says)", f" {claimed} 编码", found, claimed=claimed)
        assert said.zh != said.en
        if found is not None and (found == "gbk") == gbk:  # the text is what it was read as
            assert "--encoding utf-8" not in said.en and "--encoding gbk" not in said.en, said.en
            assert "cannot be decoded as" in said.en and "无法按" in said.zh, said.en
        elif found is None:
            assert ("nor UTF-8" if gbk else "nor GBK") in said.en, said.en
        else:
            assert f"--encoding {found}" in said.en, said.en
    shp = buildings(tmp_path / claimed)  # GBK text
    shp.with_suffix(".cpg").write_text(claimed)
    if gbk:
        assert read_vector(shp).encoding == "gbk"  # the .cpg is right
    else:
        with pytest.raises(VectorReadError) as refused:
            read_vector(shp)
        assert f"not {claimed} (as its .cpg says)" in refused.value.en and "add --encoding gbk" in refused.value.en
