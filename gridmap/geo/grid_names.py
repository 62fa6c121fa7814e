"""The names and site types of dedicated grids (专属网格), defined once.

A dedicated grid is one institution, and a district's register names it after that institution:
the school, the hospital. Its units keep their site's name and type (:mod:`gridmap.geo.units`), so:

* its **site** is its unit of kind ``site`` (else any unit with a ``site_type``: a grid made
  dedicated by hand around a folded site) with a name, the largest by area; failing a named one,
  the largest site;
* its **name** is that site's name; where no site has one, the site type's Chinese term and a
  number, the smallest not yet used in the community (``学校专属网格1``; ``专属网格1`` without
  a type); a name someone gave the grid (an edit's ``set``) is kept;
* its **site type** is that site's type: the English key and the Chinese term of
  :mod:`gridmap.geo.site_types` (``school``, ``学校``).

Comprehensive grids carry no site type, and keep a name only when someone gave it (a name the
rule made for a grid that was dedicated goes with its kind). ``name_from`` says where a name came
from: ``site`` (its institution), ``number`` (numbered), None (given by someone, or no name); an
edit recomputes only names the rule made.

The same function names the grids of a new partition (:func:`gridmap.geo.partition.partition`)
and the grids an edit touched (:mod:`gridmap.services.planning`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gridmap.geo.kinds import DEDICATED, SITE
from gridmap.geo.site_types import site_type_terms

NAMED_FROM_SITE = "site"
NAMED_BY_NUMBER = "number"
NAME_COLUMNS = ("grid_name", "site_type", "site_type_zh", "name_from")
"""What :func:`dedicated_grid_names` gives every grid."""

NUMBERED_SUFFIX = "专属网格"


def numbered_name(site_type_zh: str | None, number: int) -> str:
    """The name of a dedicated grid whose institution has none: ``学校专属网格1``."""
    return f"{site_type_zh or ''}{NUMBERED_SUFFIX}{number}"


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


def dedicated_grid_names(grids: pd.DataFrame, units: pd.DataFrame, *,
                         taken: Mapping[str, set[str]] | None = None) -> pd.DataFrame:
    """``grid_name, site_type, site_type_zh, name_from`` of every grid of ``grids`` (same index).

    ``grids``: ``grid_code, community_code, kind`` and, for grids that exist already (an edit),
    their current ``grid_name`` and ``name_from``; ``units``: the grids' units with ``grid_code,
    kind, name, site_type, area_m2``. ``taken``: per community code, the names of its other grids
    (a numbered name is never one of them). Grids are numbered in code order, and a grid keeps its
    own number while that number is still free and of its type."""
    used: dict[str, set[str]] = {c: set(names) for c, names in (taken or {}).items()}
    by_grid = {code: group for code, group in units.groupby("grid_code", sort=False)} if len(units) else {}
    current = grids["grid_name"] if "grid_name" in grids else pd.Series(None, index=grids.index, dtype=object)
    source = grids["name_from"] if "name_from" in grids else pd.Series(None, index=grids.index, dtype=object)
    rows: dict[object, tuple] = {}
    # the grids whose name stays come first, so a numbered name never takes one of theirs
    order = sorted(grids.index, key=lambda i: str(grids.at[i, "grid_code"]))
    for i in order:
        name, src = _text(current[i]), _text(source[i])
        if name and (src is None or grids.at[i, "kind"] != DEDICATED):
            used.setdefault(str(grids.at[i, "community_code"]), set()).add(name)
    for i in order:
        code, community = grids.at[i, "grid_code"], str(grids.at[i, "community_code"])
        name, src = _text(current[i]), _text(source[i])
        if grids.at[i, "kind"] != DEDICATED:
            rows[i] = (name if src is None else None, None, None, None)
            continue
        site_name, raw_type = _site_of(by_grid.get(code, units.iloc[0:0]))
        key, zh = site_type_terms(raw_type)
        here = used.setdefault(community, set())
        if name and src is None:  # given by someone: kept
            rows[i] = (name, key, zh, None)
        elif site_name:
            rows[i] = (site_name, key, zh, NAMED_FROM_SITE)
        else:
            number = _own_number(name, src, zh, here)
            if number is None:
                number = 1
                while numbered_name(zh, number) in here:
                    number += 1
            rows[i] = (numbered_name(zh, number), key, zh, NAMED_BY_NUMBER)
        here.add(rows[i][0])
    return pd.DataFrame([rows[i] for i in grids.index], index=grids.index, columns=list(NAME_COLUMNS), dtype=object)


def _own_number(name: str | None, source: str | None, site_type_zh: str | None, used: set[str]) -> int | None:
    """The number of a grid's numbered name when it still fits its type and no other grid of the
    community has that name, else None (a new number is chosen)."""
    if source != NAMED_BY_NUMBER or not name or name in used:
        return None
    prefix = f"{site_type_zh or ''}{NUMBERED_SUFFIX}"
    tail = name[len(prefix):] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


__all__ = ["NAME_COLUMNS", "NAMED_FROM_SITE", "NAMED_BY_NUMBER", "NUMBERED_SUFFIX", "numbered_name",
           "dedicated_grid_names"]
