"""The kinds of grid and of unit, defined once.

Grids: a comprehensive grid (综合网格) holds residents and is sized to the household band; a
dedicated grid (专属网格) is one institution (a school, a hospital, a government compound, an
industrial park, a large enterprise, a market, an office tower ...), carved out first and outside
the band.

Units: a residential compound (小区), a block between barriers, or a dedicated site: a unit of
kind ``site`` is always a dedicated grid of its own. Which sites are dedicated is the unit rules'
site policy (:class:`gridmap.geo.units.UnitRules`: types, area and staff thresholds); a site that
is not (a park, a kindergarten, a small shop) is *folded*: a ``block`` that keeps its ``name`` and
``site_type``, part of the comprehensive grid around it."""

from __future__ import annotations

from typing import Literal

COMPREHENSIVE = "comprehensive"
DEDICATED = "dedicated"
GRID_KINDS = (COMPREHENSIVE, DEDICATED)
GridKind = Literal["comprehensive", "dedicated"]
"""The same two, as a type (pydantic models and signatures)."""
GRID_KIND_NAMES = {COMPREHENSIVE: ("综合网格", "comprehensive"), DEDICATED: ("专属网格", "dedicated")}
"""What maps and reports call them: (Chinese, English)."""

COMPOUND = "compound"
BLOCK = "block"
SITE = "site"
UNIT_KINDS = (COMPOUND, BLOCK, SITE)
"""The kinds of unit (the units table's check constraint holds the same three)."""

__all__ = ["COMPREHENSIVE", "DEDICATED", "GRID_KINDS", "GridKind", "GRID_KIND_NAMES", "COMPOUND", "BLOCK", "SITE", "UNIT_KINDS"]
