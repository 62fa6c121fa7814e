"""The names and site types of dedicated grids (专属网格), defined once.

A dedicated grid is one institution, and a district's register names it after that institution:
the school, the hospital. Its units keep their site's name and type (:mod:`gridmap.geo.units`), so:

* its **site** is its unit of kind ``site`` (else any unit with a ``site_type``: a grid made
  dedicated by hand around a folded site) with a name, the largest by area; failing a named one,
  the largest site;
* its **name** is that site's name; where no site has one, it has none (a name is data: gridmap
  makes none up, and a map or an export shows the site type instead); a name someone gave the
  grid (an edit's ``set``) is kept;
* its **site type** is that site's type: the English key and the Chinese term of
  :mod:`gridmap.geo.site_types` (``school``, ``学校``).

Comprehensive grids carry no site type, and keep a name only when someone gave it (a name the
rule made for a grid that was dedicated goes with its kind). ``name_from`` says where a name came
from: ``site`` (its institution), None (given by someone, or no name); an edit recomputes only
names the rule made.

The same function names the grids of a new partition (:func:`gridmap.geo.partition.partition`)
and the grids an edit touched (:mod:`gridmap.services.planning`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridmap.geo.kinds import DEDICATED, SITE
from gridmap.geo.site_types import site_type_terms

NAMED_FROM_SITE = "site"
NAME_COLUMNS = ("grid_name", "site_type", "site_type_zh", "name_from")
"""What :func:`dedicated_grid_names` gives every grid."""


def _text(value) -> str | None:
    """A name or type as text, None for a missing or blank one."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _site_of(units: pd.DataFrame) -> tuple[str | None, object]:
    """(name, raw site type) of a grid's site (see the module docstring), from its units' ``kind,
    name, site_type, area_m2``; (None, None) when it holds no site."""
    kind = units["kind"].astype(object).to_numpy() if "kind" in units else np.full(len(units), None)
    types = [_text(t) for t in (units["site_type"] if "site_type" in units else [None] * len(units))]
    names = [_text(n) for n in (units["name"] if "name" in units else [None] * len(units))]
    area = pd.to_numeric(units["area_m2"], errors="coerce").fillna(0).to_numpy(dtype=float) \
        if "area_m2" in units else np.zeros(len(units))
    sites = [i for i in range(len(units)) if kind[i] == SITE] or [i for i in range(len(units)) if types[i]]
    if not sites:
        return None, None
    largest_first = sorted(sites, key=lambda i: -area[i])  # stable: ties in the units' order
    named = [i for i in largest_first if names[i]]
    chosen = named[0] if named else largest_first[0]
    return names[chosen], types[chosen]


def dedicated_grid_names(grids: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """``grid_name, site_type, site_type_zh, name_from`` of every grid of ``grids`` (same index).

    ``grids``: ``grid_code, kind`` and, for grids that exist already (an edit), their current
    ``grid_name`` and ``name_from``; ``units``: the grids' units with ``grid_code, kind, name,
    site_type, area_m2``."""
    dedicated = grids.loc[grids["kind"] == DEDICATED, "grid_code"]
    units = units[units["grid_code"].isin(dedicated)] if len(units) else units  # only theirs are looked at
    by_grid = {code: group for code, group in units.groupby("grid_code", sort=False)} if len(units) else {}
    current = grids["grid_name"] if "grid_name" in grids else pd.Series(None, index=grids.index, dtype=object)
    source = grids["name_from"] if "name_from" in grids else pd.Series(None, index=grids.index, dtype=object)
    rows = []
    for i in grids.index:
        name, src = _text(current[i]), _text(source[i])
        given = name if src is None else None  # a name someone gave stays; one the rule made is made again
        if grids.at[i, "kind"] != DEDICATED:
            rows.append((given, None, None, None))
            continue
        site_name, raw_type = _site_of(by_grid.get(grids.at[i, "grid_code"], units.iloc[0:0]))
        key, zh = site_type_terms(raw_type)
        if given:
            rows.append((given, key, zh, None))
        else:
            rows.append((site_name, key, zh, NAMED_FROM_SITE if site_name else None))
    return pd.DataFrame(rows, index=grids.index, columns=list(NAME_COLUMNS), dtype=object)


__all__ = ["NAME_COLUMNS", "NAMED_FROM_SITE", "dedicated_grid_names"]
