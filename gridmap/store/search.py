"""Search a plan's territory by what a planner types: a grid code, a community's code or name, a
compound's or a site's name (units carry them), a building's name or number, a street address, a
road or a POI name (the layers a partition reads, and the POIs: the territory's own or its nearest
ancestor's, features inside the plan's territory only; no other uploaded layer). Each hit says
where it is (a point) and which grid of the plan holds it, so the planner can zoom and select.

Matching is case-insensitive substring (``ILIKE``), codes by prefix; hits that start with the text
come first, then shorter labels."""

from __future__ import annotations

import sqlalchemy as sa

from gridmap.geo.levels import level_name

SEARCHED_PROPERTIES = ("name", "名称", "building_name", "compound_name", "道路名称", "地址", "address", "addr:street")
"""Feature properties a search reads (as imported: mapped columns under their canonical name, the
others under the source's own). A hit's label is its compound's name, then the first other of
these present, then its house number (``addr:housenumber``, 门牌号)."""

SEARCHED_LAYERS = ("pois",)
"""Layers searched besides those a partition reads (:data:`gridmap.store.layers.ROLES`)."""


def _pattern(text: str) -> str:
    """``text`` as a literal ILIKE substring (its %, _ and \\ escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: sa.Connection, plan_id: int, text: str, limit: int = 20) -> list[dict]:
    """Hits for ``text`` in plan ``plan_id``: dicts with ``kind`` (grid, community, unit, feature),
    ``label``, ``detail`` (the layer, or the community), ``grid_code`` (the grid holding it; None
    outside the plan), ``unit_id``, ``point`` ([lon, lat]) and ``bbox`` (grids and communities)."""
    text = text.strip()
    if not text:
        return []
    params = {"p": plan_id, "pat": _pattern(text), "prefix": _pattern(text)[1:], "lim": int(limit)}
    hits: list[dict] = []
    grid_rows = conn.execute(sa.text(
        "SELECT g.code, c.code AS community, c.name, g.households, ST_X(ST_PointOnSurface(g.geom)) AS x, "
        "ST_Y(ST_PointOnSurface(g.geom)) AS y, ST_XMin(g.geom) AS x0, ST_YMin(g.geom) AS y0, ST_XMax(g.geom) AS x1, "
        "ST_YMax(g.geom) AS y1 FROM grids g JOIN territories c ON c.id = g.community_id "
        "WHERE g.plan_id = :p AND g.code LIKE :prefix ESCAPE '\\' ORDER BY g.code LIMIT :lim"), params)
    for r in grid_rows:
        hits.append({"kind": "grid", "label": r.code, "detail": f"{r.name} ({r.community})", "grid_code": r.code,
                     "unit_id": None, "point": [r.x, r.y], "bbox": [r.x0, r.y0, r.x1, r.y1],
                     "households": r.households})
    community_rows = conn.execute(sa.text(
        "SELECT c.code, c.name, ST_X(ST_PointOnSurface(c.geom)) AS x, ST_Y(ST_PointOnSurface(c.geom)) AS y, "
        "ST_XMin(c.geom) AS x0, ST_YMin(c.geom) AS y0, ST_XMax(c.geom) AS x1, ST_YMax(c.geom) AS y1 "
        "FROM territories c WHERE c.level = 'community' AND c.id IN (SELECT DISTINCT g.community_id FROM grids g "
        "WHERE g.plan_id = :p) AND (c.code LIKE :prefix ESCAPE '\\' OR c.name ILIKE :pat ESCAPE '\\') "
        "ORDER BY (c.name ILIKE :prefix ESCAPE '\\') DESC, c.code LIMIT :lim"), params)
    for r in community_rows:
        hits.append({"kind": "community", "label": f"{r.name} {r.code}", "detail": r.code, "grid_code": None,
                     "unit_id": None, "point": [r.x, r.y], "bbox": [r.x0, r.y0, r.x1, r.y1],
                     "kind_names": list(level_name("community", r.name))})  # 社区 or 村, as its name says
    unit_rows = conn.execute(sa.text(
        "SELECT u.id, u.name, u.kind, g.code AS grid, ST_X(ST_PointOnSurface(u.geom)) AS x, "
        "ST_Y(ST_PointOnSurface(u.geom)) AS y FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
        "JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = :p AND u.name ILIKE :pat ESCAPE '\\' "
        "ORDER BY (u.name ILIKE :prefix ESCAPE '\\') DESC, length(u.name), u.id LIMIT :lim"), params)
    for r in unit_rows:
        hits.append({"kind": "unit", "label": r.name, "detail": r.kind, "grid_code": r.grid, "unit_id": r.id,
                     "point": [r.x, r.y], "bbox": None})
    own_name = "COALESCE(" + ", ".join(f"f.properties->>'{key}'" for key in SEARCHED_PROPERTIES
                                       if key != "compound_name") + ")"
    number = "NULLIF(COALESCE(f.properties->>'addr:housenumber', f.properties->>'门牌号'), '')"
    # a building is known by its compound and its own name ("幸福小区 3栋"), a street address by its number
    label = f"concat_ws(' ', f.properties->>'compound_name', {own_name}, {number})"
    matches = " OR ".join(f"f.properties->>'{key}' ILIKE :pat ESCAPE '\\'" for key in SEARCHED_PROPERTIES)
    from gridmap.store.layers import ROLES, find

    territory = conn.execute(sa.text("SELECT t.code FROM plans p JOIN territories t ON t.id = p.territory_id "
                                     "WHERE p.id = :p"), params).scalar()
    # the layers a partition reads (its own or the nearest ancestor's) and the POIs: never any other
    # uploaded layer, and only their features inside the plan's territory
    searched = {found for names in (*ROLES.values(), SEARCHED_LAYERS) if (found := find(conn, territory, names))}
    if not searched:
        return hits[:limit]
    owners = [owner for owner, _ in sorted(searched)]
    names = [name for _, name in sorted(searched)]
    feature_rows = conn.execute(sa.text(
        "WITH area AS (SELECT t.geom FROM plans p JOIN territories t ON t.id = p.territory_id WHERE p.id = :p), "
        "wanted AS (SELECT l.id FROM layers l JOIN territories t ON t.id = l.territory_id "
        "JOIN unnest(CAST(:owners AS text[]), CAST(:names AS text[])) AS w(owner, name) "
        "ON w.owner = t.code AND w.name = l.name), "
        f"found AS (SELECT l.name AS layer, f.id, {label} AS label, ST_PointOnSurface(f.geom) AS pt "
        "FROM layer_features f JOIN wanted ON wanted.id = f.layer_id JOIN layers l ON l.id = f.layer_id, area "
        f"WHERE ({matches}) AND f.geom && area.geom AND ST_Intersects(f.geom, area.geom) "
        f"ORDER BY ({label} ILIKE :prefix ESCAPE '\\') DESC, length({label}), f.id LIMIT :lim) "
        "SELECT found.layer, found.id, found.label, ST_X(found.pt) AS x, ST_Y(found.pt) AS y, hit.unit_id, hit.grid "
        "FROM found LEFT JOIN LATERAL (SELECT u.id AS unit_id, g.code AS grid FROM plan_units pu "
        "JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
        "WHERE pu.plan_id = :p AND ST_Intersects(u.geom, found.pt) ORDER BY u.id LIMIT 1) hit ON true"),
        {**params, "owners": owners, "names": names})
    for r in feature_rows:
        hits.append({"kind": "feature", "label": r.label, "detail": r.layer, "grid_code": r.grid,
                     "unit_id": r.unit_id, "point": [r.x, r.y], "bbox": None})
    return hits[:limit]


__all__ = ["search", "SEARCHED_PROPERTIES", "SEARCHED_LAYERS"]
