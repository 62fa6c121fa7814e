"""The household estimate rule."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.households import HouseholdRule, estimate_households, parse_levels


def _square(side_m: float, x0: float = 0.0):
    # metres → degrees near the equator-ish test location (UTM handles it exactly)
    d = side_m / 111_320.0
    return shapely.box(x0, 0.0, x0 + d, d)


def _frame(**cols):
    n = len(next(iter(cols.values())))
    geoms = [_square(20.0, i * 0.01) for i in range(n)]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=4326)


def test_levels_parse() -> None:
    out = parse_levels(pd.Series(["4", "3.5", "4;5", None, "abc"]))
    assert out.iloc[:3].tolist() == [4.0, 3.5, 5.0]
    assert out.iloc[3:].isna().all()
    # values as JSON properties hold them, each parsed once per distinct value, in their order
    mixed = pd.Series([4, "4", [4, 5], None, np.nan, 1, True, "12层", 4, [4, 5]], index=list("abcdefghij"), dtype=object)
    assert parse_levels(mixed).tolist()[:3] == [4.0, 4.0, 5.0] and parse_levels(mixed).index.tolist() == list("abcdefghij")
    assert parse_levels(mixed).iloc[3:5].isna().all() and parse_levels(mixed).iloc[5:].tolist()[:1] == [1.0]
    assert np.isnan(parse_levels(mixed).iloc[6]) and parse_levels(mixed).iloc[7:].tolist() == [12.0, 4.0, 5.0]


def test_rule_by_type() -> None:
    frame = _frame(building=["apartments", "house", "commercial", "yes", "residential"],
                   **{"building:levels": ["5", None, "10", None, None]})
    hh = estimate_households(frame)
    # 400 m² × 5 levels × 0.8 / 80 m² = 20
    assert hh.iloc[0] == 20
    assert hh.iloc[1] == 1
    assert hh.iloc[2] == 0
    assert hh.iloc[3] == 0  # unknown type outside a residential area
    # residential default 3 levels: 400 × 3 × 0.8 / 80 = 12
    assert hh.iloc[4] == 12


def test_unknown_type_counts_inside_residential_areas() -> None:
    frame = _frame(building=["yes", "yes"])
    hh = estimate_households(frame, residential_mask=np.array([True, False]))
    assert hh.tolist() == [8, 0]  # 400 m² × 2 levels (default) × 0.8 / 80 m²


def test_real_households_win_and_rule_is_configurable() -> None:
    frame = _frame(building=["apartments", "apartments"], households=[7, None])
    frame["building:levels"] = ["5", "5"]
    hh = estimate_households(frame, HouseholdRule(dwelling_m2=100.0, net_share=1.0))
    assert hh.tolist() == [7, 20]


def test_empty_frame() -> None:
    empty = gpd.GeoDataFrame({"building": []}, geometry=[], crs=4326)
    assert len(estimate_households(empty)) == 0
