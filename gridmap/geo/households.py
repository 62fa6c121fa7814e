"""Household estimates for buildings, by a documented and configurable rule.

The rule (``HouseholdRule``), applied per building:

1. A real ``households`` value in the input always wins (any non-null, non-negative number).
2. Non-residential building types (``commercial``, ``school``, ``garage`` ...) get 0.
3. Single-family types (``house``, ``detached``, ``bungalow``, ``farm``...) get
   ``single_family_households`` (default 1) per building.
4. Every other residential type (``apartments``, ``residential``, ``terrace``, ``dormitory``...)
   gets ``round(footprint m² × levels × net_share / dwelling_m2)`` with at least 1, where levels
   come from ``building:levels`` when it parses as a number, else ``default_levels[type]``.
5. ``building=yes`` (type unknown) counts as residential only where the caller says it lies in a
   residential area (``residential_mask``); otherwise 0.

Defaults (net_share 0.8, dwelling 80 m²) are typical urban figures; every number is a field of
``HouseholdRule`` so a city can set its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.geo.crs import area_m2

SINGLE_FAMILY = ("house", "detached", "semidetached_house", "bungalow", "farm", "cabin", "hut",
                 "static_caravan", "houseboat")
MULTI_FAMILY = ("apartments", "residential", "terrace", "dormitory", "flats", "block")
NON_RESIDENTIAL = (
    "commercial", "industrial", "retail", "office", "warehouse", "school", "university",
    "college", "kindergarten", "hospital", "church", "chapel", "cathedral", "mosque", "temple",
    "public", "civic", "government", "garage", "garages", "shed", "roof", "carport", "parking",
    "service", "transportation", "train_station", "hotel", "supermarket", "sports_hall",
    "stadium", "greenhouse", "barn", "stable", "construction", "ruins", "kiosk", "toilets",
    "hangar", "fire_station", "bunker", "silo", "storage_tank", "water_tower", "boathouse",
)


@dataclass(frozen=True)
class HouseholdRule:
    """Parameters of the household estimate; see the module docstring."""

    dwelling_m2: float = 80.0
    net_share: float = 0.8
    single_family_households: int = 1
    default_levels: dict[str, float] = field(default_factory=lambda: {
        "apartments": 4.0, "residential": 3.0, "terrace": 2.0, "dormitory": 4.0,
        "flats": 4.0, "block": 4.0, "yes": 2.0,
    })
    fallback_levels: float = 2.0
    max_levels: float = 80.0


def parse_levels(values: pd.Series) -> pd.Series:
    """Parse ``building:levels`` strings such as ``"4"``, ``"3.5"``, ``"4;5"`` (takes the max)."""
    def one(value: object) -> float:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return np.nan
        numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(value))]
        return max(numbers) if numbers else np.nan

    return values.map(one).astype(float)


def estimate_households(
    buildings: gpd.GeoDataFrame,
    rule: HouseholdRule | None = None,
    *,
    type_column: str = "building",
    levels_column: str = "building:levels",
    residential_mask: np.ndarray | None = None,
) -> pd.Series:
    """Households per building (integer Series aligned with ``buildings``).

    Example
    -------
    >>> buildings["households"] = estimate_households(buildings)  # doctest: +SKIP
    """
    rule = rule or HouseholdRule()
    n = len(buildings)
    if n == 0:
        return pd.Series(np.zeros(0, dtype=np.int64), index=buildings.index, name="households")
    kind = (buildings[type_column].astype("string").str.strip().str.lower().fillna("yes")
            if type_column in buildings else pd.Series(["yes"] * n, index=buildings.index))
    levels = (parse_levels(buildings[levels_column]) if levels_column in buildings
              else pd.Series(np.nan, index=buildings.index))
    default = kind.map(rule.default_levels).astype(float).fillna(rule.fallback_levels)
    levels = levels.where(levels > 0, default).clip(upper=rule.max_levels)
    footprint = area_m2(buildings)
    multi = np.maximum(1.0, np.round(footprint * levels.to_numpy() * rule.net_share / rule.dwelling_m2))

    is_single = kind.isin(SINGLE_FAMILY).to_numpy()
    is_multi = kind.isin(MULTI_FAMILY).to_numpy()
    is_unknown = (kind == "yes").to_numpy()
    if residential_mask is not None:
        is_multi = is_multi | (is_unknown & np.asarray(residential_mask, dtype=bool))
    estimate = np.where(is_single, float(rule.single_family_households), np.where(is_multi, multi, 0.0))

    if "households" in buildings:
        given = pd.to_numeric(buildings["households"], errors="coerce").to_numpy(dtype=float)
        use_given = np.isfinite(given) & (given >= 0)
        estimate = np.where(use_given, given, estimate)
    return pd.Series(estimate.astype(np.int64), index=buildings.index, name="households")
