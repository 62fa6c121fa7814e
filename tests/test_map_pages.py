"""The folium map pages' empty states and legends (gridmap.web.maps), without a database: a
territory with no incidents or no stations says so, and the choropleth's classes never repeat."""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
import shapely

from gridmap.web.maps import incidents_map, stations_map


def grids(incidents: list[int]) -> gpd.GeoDataFrame:
    households = [100 + 10 * i for i in range(len(incidents))]
    return gpd.GeoDataFrame({"grid_code": [f"51180200100100{i}" for i in range(len(incidents))],
                             "households": households, "incidents": incidents,
                             "per_1000_households": [1000.0 * n / h for n, h in zip(incidents, households)]},
                            geometry=[shapely.box(i, 0, i + 1, 1) for i in range(len(incidents))], crs=4326)


def legend(html: str) -> list[str]:
    block = re.search(r'class="gridmap-legend".*?</div></div>', html, re.S).group(0)
    return re.findall(r"</span>([^<]+)</div>", block)


def test_a_territory_without_incidents_says_so() -> None:
    html = incidents_map(grids([0, 0, 0]).__geo_interface__, [], [], metric="per_1000_households").get_root().render()
    assert legend(html) == ["无事件 No incidents"]


def test_the_choropleth_classes_never_repeat() -> None:
    html = incidents_map(grids([0] * 8 + [3, 5]).__geo_interface__, [], [], metric="per_1000_households"
                         ).get_root().render()
    rows = legend(html)
    assert len(rows) == len(set(rows)) >= 2 and rows[0].startswith("≤ ")


def test_a_stations_map_without_stations_says_how_to_add_them() -> None:
    empty = gpd.GeoDataFrame({"station_type": [], "name": []}, geometry=[], crs=4326)
    html = stations_map(grids([0, 1]), empty).get_root().render()
    assert legend(html) == ["无站点：用 gridmap stations import 导入 None: import them with gridmap stations import"]


@pytest.mark.filterwarnings("error")  # a plan without flags drew a pandas warning that is to become an error
def test_a_chinese_districts_site_types_show_in_both_languages_in_the_report() -> None:
    import pandas as pd

    from gridmap.web.reports import partition_report_html

    g = grids([0, 1]).assign(kind=["comprehensive", "dedicated"], households=[384, 20], community_code="511802001001",
                             compactness=0.5)
    summary = {"min_households": 300, "max_households": 500, "dedicated_by_type": {"学校": 14, "农贸市场": 7},
               "households_median": 384.0, "in_band_share": 0.905}
    page = partition_report_html(g, {"summary": summary}, pd.DataFrame(columns=["grid_code", "flag", "reason"]),
                                 title="511802 雨城区 · 方案 1（已发布） plan 1 (published)")
    assert 'data-zh="学校: 14, 农贸市场: 7" data-en="school: 14, farmers&#x27; market: 7"' in page  # one language at a time
    assert ">384<" in page and ">0.905<" in page
    # the file the command writes works alone: the language switch's script inlined, nothing from /static
    alone = partition_report_html(g, {"summary": summary}, pd.DataFrame(columns=["grid_code", "flag", "reason"]),
                                  title=("雨城区 · 方案草稿 1", "Yucheng · draft plan 1"), standalone=True)
    assert "window.gridmapApplyLang" in alone and 'src="/static' not in alone and 'id="to-planner"' not in alone
