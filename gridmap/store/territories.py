"""Territories (city → district → street → community): writing, finding, listing, GeoJSON, and
the questions asked of the tree (a territory's id, code, centre, outline, the one at a point)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.jsonb import to_json
from gridmap.store.models import TERRITORY_LEVELS
from gridmap.store.sql import ewkb_hex, read_geoframe, with_ancestors, with_subtree


class TerritoryNotFound(NotFound):
    """No territory with that code (``TerritoryNotFound.of(code)`` says so in both languages)."""

    @classmethod
    def of(cls, code: str) -> "TerritoryNotFound":
        return cls(f"no territory with code {code!r}", f"没有编码为 {code} 的辖区")


@dataclass(frozen=True)
class TerritoryRow:
    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    area_m2: float | None
    plans: int = 0


def upsert(conn: sa.Connection, frame: gpd.GeoDataFrame, *, level: str, source: str) -> dict[str, int]:
    """Insert or update territories by code; ``frame`` has code, name, parent_code (or None),
    area_m2 and MultiPolygon geometry in EPSG:4490. Parents must exist already. Returns code → id."""
    if level not in TERRITORY_LEVELS:
        raise ValueError(f"level must be one of {TERRITORY_LEVELS}")
    ids: dict[str, int] = {}
    hexes = ewkb_hex(frame.geometry.values)
    for row, geom in zip(frame.itertuples(index=False), hexes):
        parent_code = getattr(row, "parent_code", None)
        parent_code = None if parent_code is None or pd.isna(parent_code) else str(parent_code)
        parent_id = None
        if parent_code:
            parent_id = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": parent_code}).scalar()
            if parent_id is None:
                raise TerritoryNotFound(f"parent territory {parent_code} of {row.code} does not exist",
                                        f"{row.code} 的上级辖区 {parent_code} 不存在")
        props = getattr(row, "properties", None) or {}
        ids[row.code] = conn.execute(sa.text(
            """INSERT INTO territories (code, name, level, parent_id, area_m2, source, properties, geom)
               VALUES (:code, :name, :level, :parent_id, :area, :source, CAST(:props AS jsonb),
                       ST_Multi(ST_GeomFromEWKB(decode(:geom, 'hex'))))
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
                   parent_id = EXCLUDED.parent_id, area_m2 = EXCLUDED.area_m2, source = EXCLUDED.source,
                   properties = territories.properties || EXCLUDED.properties, geom = EXCLUDED.geom,
                   updated_at = now()
               RETURNING id"""),
            {"code": str(row.code), "name": str(row.name), "level": level, "parent_id": parent_id,
             "area": float(row.area_m2), "source": source, "props": to_json(props),
             "geom": geom},
        ).scalar_one()
    return ids


def get(conn: sa.Connection, code: str) -> TerritoryRow:
    row = conn.execute(sa.text(
        "SELECT t.id, t.code, t.name, t.level, p.code AS parent_code, t.area_m2 FROM territories t "
        "LEFT JOIN territories p ON p.id = t.parent_id WHERE t.code = :c"), {"c": code}).first()
    if row is None:
        raise TerritoryNotFound.of(code)
    return TerritoryRow(*row)


def id_of(conn: sa.Connection, code: str) -> int:
    """A territory's id; :class:`TerritoryNotFound` for an unknown code."""
    found = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": code}).scalar()
    if found is None:
        raise TerritoryNotFound.of(code)
    return int(found)


def exists(conn: sa.Connection, code: str) -> bool:
    return conn.execute(sa.text("SELECT 1 FROM territories WHERE code = :c"), {"c": code}).first() is not None


def code_of(conn: sa.Connection, territory_id: int) -> str:
    return conn.execute(sa.text("SELECT code FROM territories WHERE id = :i"), {"i": territory_id}).scalar_one()


def name_of(conn: sa.Connection, code: str) -> str | None:
    return conn.execute(sa.text("SELECT name FROM territories WHERE code = :c"), {"c": code}).scalar()


def centre(conn: sa.Connection, territory_id: int) -> tuple[float, float]:
    """The centre of a territory's bounding box (lon, lat)."""
    return tuple(conn.execute(sa.text(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Envelope(geom)) c FROM territories WHERE id = :t) s"),
        {"t": territory_id}).one())


def outline_hex(conn: sa.Connection, code: str, *, envelope: bool = False) -> str | None:
    """A territory's boundary (or its bounding box) as hex EWKB, to cut layers to it."""
    shape = "ST_Envelope(geom)" if envelope else "geom"
    return conn.execute(sa.text(f"SELECT encode(ST_AsEWKB({shape}), 'hex') FROM territories WHERE code = :c"),
                        {"c": code}).scalar()


def at_point(conn: sa.Connection, territory: str, lon: float, lat: float) -> int | None:
    """The smallest territory at or below ``territory`` that contains the point (its community,
    normally), or None when the point is outside ``territory``."""
    return conn.execute(sa.text(
        with_subtree() + "SELECT t.id FROM sub JOIN territories t ON t.id = sub.id "
        "WHERE ST_Intersects(t.geom, ST_SetSRID(ST_Point(:x, :y), 4490)) "
        "ORDER BY array_position(ARRAY['community','street','district','city']::text[], CAST(t.level AS text)) LIMIT 1"),
        {"territory": territory, "x": lon, "y": lat}).scalar()


def meets(conn: sa.Connection, code: str, wkt: str) -> bool:
    """Whether a geometry (WKT, CGCS2000) meets the territory's outline."""
    return bool(conn.execute(sa.text("SELECT ST_Intersects(geom, ST_GeomFromText(:w, 4490)) FROM territories "
                                     "WHERE code = :c"), {"w": wkt, "c": code}).scalar())


def community_ids_under(conn: sa.Connection, codes: list[str]) -> set[int]:
    """Ids of the communities at or below any of ``codes``."""
    rows = conn.execute(sa.text(
        "WITH RECURSIVE below AS (SELECT id, level FROM territories WHERE code = ANY(:codes) "
        "UNION SELECT c.id, c.level FROM territories c JOIN below ON c.parent_id = below.id) "
        "SELECT id FROM below WHERE level = 'community'"), {"codes": codes})
    return {r[0] for r in rows}


def root_codes(conn: sa.Connection) -> list[str]:
    """Codes of the territories at the top of the tree (no parent)."""
    return [r[0] for r in conn.execute(sa.text("SELECT code FROM territories WHERE parent_id IS NULL ORDER BY code"))]


def list_all(conn: sa.Connection) -> list[TerritoryRow]:
    """Every territory, parents before children, ordered by code."""
    rows = conn.execute(sa.text(
        "SELECT t.id, t.code, t.name, t.level, p.code, t.area_m2, "
        "(SELECT count(*) FROM plans pl WHERE pl.territory_id = t.id AND pl.status <> 'history') "
        "FROM territories t LEFT JOIN territories p ON p.id = t.parent_id "
        "ORDER BY array_position(ARRAY['city','district','street','community']::text[], t.level), t.code"))
    return [TerritoryRow(*r) for r in rows]


def feature_collection(conn: sa.Connection, *, level: str | None = None, root: str | None = None,
                       tolerance_deg: float = 0.0) -> dict:
    """Territories as an RFC 7946 FeatureCollection (lon/lat), optionally simplified for display."""
    where = []
    params: dict = {"tol": tolerance_deg}
    if level:
        where.append("t.level = :level")
        params["level"] = level
    if root:
        where.append(f"t.id IN ({with_subtree()}SELECT id FROM sub)")
        params["territory"] = root
    sql = (
        "SELECT json_build_object('type','FeatureCollection','features', COALESCE(json_agg(json_build_object("
        "'type','Feature','id',t.code,"
        "'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0 THEN ST_SimplifyPreserveTopology(t.geom, :tol) ELSE t.geom END, 7, 0)::json,"
        "'properties', json_build_object('code',t.code,'name',t.name,'level',t.level,'parent_code',p.code,"
        "'area_m2',round(t.area_m2::numeric,1))) ORDER BY t.code), '[]'::json)) "
        "FROM territories t LEFT JOIN territories p ON p.id = t.parent_id"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    return conn.execute(sa.text(sql), params).scalar_one()


def property_of(conn: sa.Connection, code: str, key: str) -> str | None:
    """One of a territory's stored properties (as text; None when absent)."""
    return conn.execute(sa.text("SELECT properties->>:k FROM territories WHERE code = :c"), {"c": code, "k": key}).scalar()


def set_property(conn: sa.Connection, code: str, key: str, value: str) -> None:
    conn.execute(sa.text("UPDATE territories SET properties = properties || jsonb_build_object(CAST(:k AS text), "
                         "CAST(:v AS text)) WHERE code = :c"), {"k": key, "v": value, "c": code})


def outlines(conn: sa.Connection, codes: list[str]) -> gpd.GeoDataFrame:
    """The stored outlines of ``codes`` (code, name, level, geometry in EPSG:4490)."""
    return read_geoframe(conn, sa.text("SELECT code, name, level, geom FROM territories WHERE code = ANY(:codes) "
                                       "ORDER BY code"), {"codes": list(codes)})


def codes_below(conn: sa.Connection, code: str, level: str) -> list[str]:
    """The codes of the territories of ``level`` at or below ``code``."""
    return [r[0] for r in conn.execute(sa.text(
        with_subtree() + "SELECT t.code FROM sub JOIN territories t ON t.id = sub.id WHERE t.level = :level "
        "ORDER BY t.code"), {"territory": code, "level": level})]


def codes_within(conn: sa.Connection, code: str, codes: list[str]) -> list[str]:
    """Those of ``codes`` that are territories below ``code`` (its streets, communities ...)."""
    if not codes:
        return []
    return list(conn.execute(sa.text(
        with_subtree() + "SELECT t.code FROM territories t JOIN sub ON sub.id = t.id WHERE t.code = ANY(:c) "
        "AND t.code <> :territory"), {"territory": code, "c": list(codes)}).scalars())


def references(conn: sa.Connection, codes: list[str]) -> dict[str, dict[str, int]]:
    """What refers to each of ``codes`` (units, grids, incidents, layers, stations, plans, roles): a
    territory that any of them uses cannot be removed without destroying history (deleting a
    territory cascades to its units and grids). Codes nothing refers to are left out."""
    rows = conn.execute(sa.text(
        "SELECT t.code, "
        "(SELECT count(*) FROM units u WHERE u.community_id = t.id) AS units, "
        "(SELECT count(*) FROM grids g WHERE g.community_id = t.id) AS grids, "
        "(SELECT count(*) FROM incidents i WHERE i.community_id = t.id OR i.street_id = t.id) AS incidents, "
        "(SELECT count(*) FROM layers l WHERE l.territory_id = t.id) AS layers, "
        "(SELECT count(*) FROM stations s WHERE s.territory_id = t.id) AS stations, "
        "(SELECT count(*) FROM plans p WHERE p.territory_id = t.id) AS plans, "
        "(SELECT count(*) FROM user_roles r WHERE r.territory_id = t.id) AS roles "
        "FROM territories t WHERE t.code = ANY(:codes)"), {"codes": list(codes)})
    found = {}
    for row in rows:
        uses = {k: int(v) for k, v in row._mapping.items() if k != "code" and v}
        if uses:
            found[row.code] = uses
    return found


def delete(conn: sa.Connection, codes: list[str]) -> int:
    """Delete territories (and, by cascade, what hangs below them): check :func:`references` first."""
    return conn.execute(sa.text("DELETE FROM territories WHERE code = ANY(:codes)"), {"codes": list(codes)}).rowcount


def profile_of(conn: sa.Connection, code: str) -> tuple[str | None, dict | None]:
    """The stored profile a territory follows: its own, else its nearest ancestor's, as
    (the code of the territory that holds it, the profile's data); (None, None) when none has one."""
    row = conn.execute(sa.text(with_ancestors() + "SELECT t.code, t.profile FROM up JOIN territories t ON t.id = up.id "
                               "WHERE t.profile IS NOT NULL ORDER BY up.depth LIMIT 1"), {"territory": code}).first()
    return (row.code, row.profile) if row else (None, None)


def own_profiles_below(conn: sa.Connection, code: str) -> list[tuple[str, str | None, dict]]:
    """The territories below ``code`` (not itself) that have a stored profile of their own, as
    (code, name, the profile's data), in code order."""
    rows = conn.execute(sa.text(
        with_subtree() + "SELECT t.code, t.name, t.profile FROM sub JOIN territories t ON t.id = sub.id "
        "WHERE t.profile IS NOT NULL AND t.code <> :territory ORDER BY t.code"), {"territory": code})
    return [(r.code, r.name, r.profile) for r in rows]


def set_profile(conn: sa.Connection, code: str, profile: dict | None) -> None:
    """Store ``profile`` (``Profile.to_dict()``) as territory ``code``'s own; None: inherit again."""
    conn.execute(sa.text("UPDATE territories SET profile = CAST(:p AS jsonb), updated_at = now() WHERE code = :c"),
                 {"p": None if profile is None else to_json(profile), "c": code})


__all__ = ["meets", "codes_within", "TerritoryNotFound", "TerritoryRow", "upsert", "get", "id_of", "exists", "code_of", "name_of", "centre",
           "outline_hex", "at_point", "community_ids_under", "root_codes", "list_all", "feature_collection",
           "property_of", "set_property", "profile_of", "own_profiles_below", "set_profile", "outlines", "codes_below", "references", "delete"]
