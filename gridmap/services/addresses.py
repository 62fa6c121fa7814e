"""Where a row of an office's sheet is: a building of the territory, found by 小区 + 楼栋号 or by an
address (``书香锦城3栋2单元301室``), with the keys of :mod:`gridmap.register` (full-width digits,
``3号楼``/``3幢`` as ``3栋`` ...). The households register places its residents so; the needs and
resources lists place a row that has an address and no coordinates so. A row matching no
building, or several, is a problem: nothing is guessed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from gridmap import register
from gridmap.errors import Invalid
from gridmap.store import households as store
from gridmap.store import layers


class NoBuildings(Invalid):
    """Rows are placed by buildings; the territory has no buildings layer."""


@dataclass
class BuildingIndex:
    """The territory's buildings (``building_id, compound_name, building_name, address, name, lon,
    lat, community_id``) and each key → the buildings answering to it."""

    buildings: pd.DataFrame
    keys: dict[str, set[int]]

    def find(self, row: int, compound: str | None, building: str | None,
             address: str | None) -> tuple[int | None, str | None, str | None, dict | None]:
        """A row's building, and the 单元 and 房号 its address carries; or a problem (``row, en, zh``)."""
        keys, stairwell, room = register.row_keys(compound, building, address)
        place = address or " ".join(p for p in (compound, building) if p)
        for key in keys:
            ids = self.keys.get(key, set())
            if len(ids) == 1:
                return next(iter(ids)), stairwell, room, None
            if len(ids) > 1:
                return None, stairwell, room, {"row": row, "en": f"{place!r} matches {len(ids)} buildings: add the 小区",
                                               "zh": f"“{place}”对应 {len(ids)} 栋楼：请填写小区名称"}
        return None, stairwell, room, {"row": row, "en": f"{place!r} matches no building of the territory",
                                       "zh": f"“{place}”在本辖区找不到对应的楼栋"}


def building_index(conn: sa.Connection, territory: str) -> BuildingIndex:
    """The buildings of the territory's buildings layer (its own or an ancestor's), indexed."""
    found = layers.find(conn, territory, layers.ROLES["buildings"])
    if found is None:
        raise NoBuildings(f"territory {territory} (and its ancestors) has no buildings layer: rows are placed by "
                          "buildings; import one with `gridmap import ... --kind buildings`",
                          f"辖区 {territory}（及其上级）没有楼栋图层：按楼栋定位；请先用 "
                          "`gridmap import ... --kind buildings` 导入")
    buildings = store.buildings(conn, territory, *found)
    keys: dict[str, set[int]] = defaultdict(set)
    for b in buildings.itertuples():
        for key in register.building_keys(b.compound_name, b.building_name or b.name, b.address):
            keys[key].add(int(b.building_id))
    return BuildingIndex(buildings, dict(keys))


def place_by_address(conn: sa.Connection, territory: str, rows: list[dict], problems: list[dict]) -> list[dict]:
    """The rows with a point: those that came with ``lon``/``lat``, and those with an ``address``
    placed at its building's inner point; a row whose address matches no building, or several,
    becomes a problem (``row, en, zh``) and is left out. The buildings are read once, when some
    row needs them."""
    index = None
    out = []
    for row in rows:
        if row.get("lon") is None and row.get("address"):
            index = index or building_index(conn, territory)
            found, _stairwell, _room, problem = index.find(row["row"], None, None, row["address"])
            if problem:
                problems.append(problem)
                continue
            building = index.buildings.set_index("building_id").loc[found]
            row = {**row, "lon": float(building["lon"]), "lat": float(building["lat"])}
        out.append(row)
    return out


__all__ = ["NoBuildings", "BuildingIndex", "building_index", "place_by_address"]
