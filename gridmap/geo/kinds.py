"""The kinds of grid, defined once: a comprehensive grid (综合网格) holds residents and is sized to
the household band; a dedicated grid (专属网格) is one institution or site (a school, a hospital,
a park ...), carved out first and outside the band."""

from __future__ import annotations

from typing import Literal

COMPREHENSIVE = "comprehensive"
DEDICATED = "dedicated"
GRID_KINDS = (COMPREHENSIVE, DEDICATED)
GridKind = Literal["comprehensive", "dedicated"]
"""The same two, as a type (pydantic models and signatures)."""

__all__ = ["COMPREHENSIVE", "DEDICATED", "GRID_KINDS", "GridKind"]
