"""The field table: a district's column names (户数, 楼栋号 ...) read as gridmap's own."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridmap.errors import Invalid
from gridmap.geo.fields import FIELD_ALIASES, map_fields, parse_overrides, resolve

EVERY_ALIAS = [(alias, canonical) for canonical, aliases in FIELD_ALIASES.items() for alias in aliases]


@pytest.mark.parametrize(("alias", "canonical"), EVERY_ALIAS)
def test_every_alias_becomes_its_canonical_name(alias: str, canonical: str) -> None:
    mapping = resolve([alias, "other"])
    if alias == canonical:
        assert mapping.renamed == {}
    else:
        assert mapping.renamed == {alias: canonical}
        assert mapping.lines() == [f"{alias} → {canonical}"]


def test_the_table_is_the_issues() -> None:
    assert FIELD_ALIASES["households"] == ("户数", "住户数", "户数量", "households", "hh")
    assert FIELD_ALIASES["population"] == ("人口", "常住人口", "人口数", "population")
    assert FIELD_ALIASES["code"] == ("社区代码", "社区编码", "区划代码", "行政区划代码", "code")
    assert FIELD_ALIASES["name"] == ("社区名称", "名称", "name")
    # the issue's 层数 and 楼层数, and what a county's 楼栋 layers call them too (地上层数 first: it wins)
    assert FIELD_ALIASES["levels"] == ("地上层数", "层数", "楼层数", "总层数", "楼层", "levels", "building:levels")
    # the issue's three, and the names district offices' files were found to use (楼栋名称 first: the label)
    assert FIELD_ALIASES["building_name"] == ("楼栋名称", "楼栋名", "建筑物名称", "建筑名称", "楼栋号", "楼号")
    assert FIELD_ALIASES["compound_name"] == ("小区名称", "小区名")
    assert FIELD_ALIASES["type"] == ("类型", "用途", "type")


def test_a_building_named_and_numbered_takes_its_name_and_keeps_its_number() -> None:
    """A district's 楼栋 file often has both: 楼栋号 "3" and 楼栋名称 "锦绣花园3栋". A label is not
    refused as ambiguous (a count is): the name wins, the number keeps its own column."""
    mapping = resolve(["楼栋号", "户数", "楼栋名称", "小区名", "小区名称"])
    assert mapping.renamed == {"楼栋名称": "building_name", "户数": "households", "小区名称": "compound_name"}
    assert resolve(["楼号", "楼栋号"]).renamed == {"楼栋号": "building_name"}
    assert resolve(["楼栋号", "楼栋名称"], {"building_name": "楼栋号"}).renamed == {"楼栋号": "building_name"}
    with pytest.raises(Invalid):  # a count stays refused
        resolve(["户数", "住户数"])


def test_matching_ignores_case_and_surrounding_spaces() -> None:
    mapping = resolve([" HouseHolds ", "Building:Levels", "NAME"])
    assert mapping.renamed == {" HouseHolds ": "households", "Building:Levels": "levels", "NAME": "name"}
    assert resolve(["  户数  "]).renamed == {"  户数  ": "households"}
    assert resolve(["HH"]).renamed == {"HH": "households"}


def test_two_columns_claiming_one_name_are_refused_naming_both() -> None:
    with pytest.raises(Invalid) as refused:
        resolve(["户数", "住户数", "楼栋号"])
    assert "'户数'" in refused.value.en and "'住户数'" in refused.value.en
    assert "households" in refused.value.en and "--fields households=户数" in refused.value.en
    assert "'户数'" in refused.value.zh and "'住户数'" in refused.value.zh and "--fields" in refused.value.zh
    # --fields picks one; the other keeps its own name
    mapping = resolve(["户数", "住户数", "楼栋号"], {"households": "住户数"})
    assert mapping.renamed == {"住户数": "households", "楼栋号": "building_name"}
    # a column literally called like the canonical one counts as a claim too
    with pytest.raises(Invalid, match="could each be households"):
        resolve(["households", "户数"])
    picked = resolve(["households", "户数"], {"households": "户数"})
    assert picked.renamed == {"户数": "households"} and picked.set_aside == {"households": "households_unused"}
    assert picked.lines() == ["households → households_unused", "户数 → households"]


def test_an_override_naming_a_missing_column_lists_the_files_columns() -> None:
    with pytest.raises(Invalid) as refused:
        resolve(["楼栋号", "户数", "层数"], {"households": "住户总数"})
    assert "has no column '住户总数'" in refused.value.en and "楼栋号, 户数, 层数" in refused.value.en
    assert "没有字段 '住户总数'" in refused.value.zh and "楼栋号、户数、层数" in refused.value.zh
    # overrides match like the table does (case, spaces), and may name any target
    assert resolve(["Road Class"], {"highway": "road class "}).renamed == {"Road Class": "highway"}


def test_an_override_wins_over_the_table_for_its_column() -> None:
    mapping = resolve(["楼栋号", "名称"], {"name": "楼栋号"})
    assert mapping.renamed == {"楼栋号": "name"}  # 名称 is left alone: name is taken
    with pytest.raises(Invalid, match="to both"):
        resolve(["楼栋号"], {"name": "楼栋号", "building_name": "楼栋号"})


def test_parse_overrides() -> None:
    assert parse_overrides("households=户数, name = 楼栋号") == {"households": "户数", "name": "楼栋号"}
    assert parse_overrides(None) == {} and parse_overrides({"a": "b"}) == {"a": "b"}
    for bad in ("households", "households=", "=户数", "a=b,a=c"):
        with pytest.raises(Invalid) as refused:
            parse_overrides(bad)
        assert refused.value.zh and refused.value.en.startswith("--fields")


def test_map_fields_renames_columns_not_the_geometry() -> None:
    frame = gpd.GeoDataFrame({"户数": [30], "楼栋号": ["1号楼"], "类型": ["住宅"]},
                             geometry=[shapely.box(0, 0, 1, 1)], crs=4490)
    out, mapping = map_fields(frame)
    assert list(out.columns) == ["households", "building_name", "type", "geometry"]
    assert out.geometry.name == "geometry" and out.crs == frame.crs
    assert mapping.source_of("households") == "户数" and mapping.source_of("code") == "code"
    plain = pd.DataFrame({"a": [1]})
    same, nothing = map_fields(plain)
    assert same is plain and nothing.lines() == []
