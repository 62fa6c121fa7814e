"""The households register in PostGIS (``households``, ``residents``, migration 0015): buildings a
register is matched to, households and residents written and read (personal columns as the
tokens :mod:`gridmap.vault` made: this module never sees a key), the grids a user may read, and
the counts per grid that maps and notebooks see."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound
from gridmap.store.sql import with_subtree


class HouseholdNotFound(NotFound):
    """No household or resident with that id."""


PERSONAL = ("name_enc", "id_number_enc", "phone_enc")


def buildings(conn: sa.Connection, territory: str, owner: str, layer: str) -> pd.DataFrame:
    """The buildings of layer ``layer`` (of territory ``owner``) whose inner point lies in
    ``territory``: ``building_id, compound_name, building_name, address, name, lon, lat,
    community_id`` (the community holding the point, if any), ``households`` (when it has them)."""
    return pd.read_sql_query(sa.text(
        "SELECT f.id AS building_id, f.properties->>'compound_name' AS compound_name, "
        "f.properties->>'building_name' AS building_name, "
        "COALESCE(f.properties->>'address', f.properties->>'地址') AS address, "
        "COALESCE(f.properties->>'name', f.properties->>'名称') AS name, "
        "ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat, c.id AS community_id, "
        "CASE WHEN jsonb_typeof(f.properties->'households') = 'number' THEN (f.properties->>'households')::float8 END "
        "AS households "
        "FROM layer_features f JOIN layers l ON l.id = f.layer_id JOIN territories o ON o.id = l.territory_id "
        "JOIN territories t ON t.code = :territory "
        "CROSS JOIN LATERAL (SELECT ST_PointOnSurface(f.geom) AS pt) p "
        "LEFT JOIN LATERAL (SELECT c.id FROM territories c WHERE c.level = 'community' AND c.geom && p.pt "
        "AND ST_Covers(c.geom, p.pt) ORDER BY c.id LIMIT 1) c ON true "
        "WHERE o.code = :owner AND l.name = :layer AND f.geom && t.geom AND ST_Covers(t.geom, p.pt) "
        "ORDER BY f.id"), conn, params={"territory": territory, "owner": owner, "layer": layer})


def upsert_households(conn: sa.Connection, territory_id: int, rows: pd.DataFrame) -> pd.DataFrame:
    """Make or bring up to date the households of ``rows`` (``household_key, building_id, label,
    stairwell, room, household_no, lon, lat, community_id``; one row a key) in one statement;
    returns ``household_key, household_id, inserted``."""
    def column(name: str) -> list:
        return [None if pd.isna(v) else v for v in rows[name]]

    found = conn.execute(sa.text(
        "INSERT INTO households (territory_id, community_id, building_feature_id, building_label, stairwell, room, "
        "household_no, household_key, geom) SELECT :t, c, b, label, s, r, no, key, ST_SetSRID(ST_MakePoint(x, y), 4490) "
        "FROM unnest(CAST(:c AS int[]), CAST(:b AS bigint[]), CAST(:label AS text[]), CAST(:s AS text[]), "
        "CAST(:r AS text[]), CAST(:no AS text[]), CAST(:key AS text[]), CAST(:x AS float8[]), CAST(:y AS float8[])) "
        "AS v(c, b, label, s, r, no, key, x, y) "
        "ON CONFLICT (territory_id, household_key) DO UPDATE SET community_id = EXCLUDED.community_id, "
        "building_feature_id = EXCLUDED.building_feature_id, building_label = EXCLUDED.building_label, "
        "stairwell = EXCLUDED.stairwell, room = EXCLUDED.room, household_no = EXCLUDED.household_no, "
        "geom = EXCLUDED.geom, updated_at = now() RETURNING household_key, id, (xmax = 0) AS inserted"),
        {"t": territory_id, "c": [None if v is None else int(v) for v in column("community_id")],
         "b": [int(v) for v in rows["building_id"]], "label": column("label"), "s": column("stairwell"),
         "r": column("room"), "no": column("household_no"), "key": list(rows["household_key"]),
         "x": [float(v) for v in rows["lon"]], "y": [float(v) for v in rows["lat"]]}).all()
    return pd.DataFrame(found, columns=["household_key", "household_id", "inserted"])


def residents_matching(conn: sa.Connection, territory_id: int, person: list[str], member: list[str]) -> pd.DataFrame:
    """The stored residents carrying one of the ``person`` hashes (of an ID number, or of a name in
    a household for those without one) or one of the ``member`` hashes (always of the name in the
    household): ``resident_id, person_index, member_index``."""
    return pd.read_sql_query(sa.text(
        "SELECT id AS resident_id, person_index, member_index FROM residents WHERE territory_id = :t "
        "AND (person_index = ANY(:p) OR member_index = ANY(:m))"), conn, params={"t": territory_id, "p": person, "m": member})


TAG_SEPARATOR = "\x1f"  # tags travel joined (arrays of arrays must be rectangular)


def _resident_arrays(rows: list[dict]) -> dict:
    return {"h": [r["household_id"] for r in rows], "pi": [r["person_index"] for r in rows],
            "mi": [r["member_index"] for r in rows],
            "n": [r["name_enc"] for r in rows], "i": [r["id_number_enc"] for r in rows],
            "p": [r["phone_enc"] for r in rows], "rel": [r["relation"] for r in rows],
            "tags": [TAG_SEPARATOR.join(r["tags"]) for r in rows], "by": [r["birth_year"] for r in rows]}


RESIDENT_ROWS = ("FROM unnest(CAST(:h AS bigint[]), CAST(:pi AS text[]), CAST(:mi AS text[]), CAST(:n AS bytea[]), "
                 "CAST(:i AS bytea[]), CAST(:p AS bytea[]), CAST(:rel AS text[]), CAST(:tags AS text[]), "
                 "CAST(:by AS smallint[])) AS v(h, pi, mi, n, i, p, rel, tags, by)")


def insert_residents(conn: sa.Connection, territory_id: int, rows: list[dict]) -> list[int]:
    """Insert residents (``household_id, person_index, member_index, name_enc, id_number_enc,
    phone_enc, relation, tags, birth_year``) in one statement; their ids in the same order."""
    if not rows:
        return []
    found = conn.execute(sa.text(
        "INSERT INTO residents (household_id, territory_id, person_index, member_index, name_enc, id_number_enc, "
        "phone_enc, relation, tags, birth_year) SELECT h, :t, pi, mi, n, i, p, rel, CASE WHEN tags = '' THEN '{}' ELSE string_to_array(tags, :sep) "
        f"END, by {RESIDENT_ROWS} RETURNING id, person_index"),
        {"t": territory_id, "sep": TAG_SEPARATOR, **_resident_arrays(rows)}).all()
    ids = {r[1]: int(r[0]) for r in found}
    return [ids[r["person_index"]] for r in rows]


def update_residents(conn: sa.Connection, rows: list[dict]) -> None:
    """Bring stored residents (``resident_id`` and the fields of :func:`insert_residents`) up to
    date in one statement; an ID number, phone or birth year the sheet left blank is kept."""
    if not rows:
        return
    conn.execute(sa.text(
        "UPDATE residents r SET household_id = v.h, person_index = v.pi, member_index = v.mi, name_enc = v.n, "
        "id_number_enc = COALESCE(v.i, r.id_number_enc), phone_enc = COALESCE(v.p, r.phone_enc), relation = v.rel, "
        "tags = CASE WHEN v.tags = '' THEN '{}' ELSE string_to_array(v.tags, :sep) END, "
        "birth_year = COALESCE(v.by, r.birth_year), updated_at = now() "
        "FROM unnest(CAST(:id AS bigint[]), CAST(:h AS bigint[]), CAST(:pi AS text[]), CAST(:mi AS text[]), "
        "CAST(:n AS bytea[]), CAST(:i AS bytea[]), CAST(:p AS bytea[]), CAST(:rel AS text[]), CAST(:tags AS text[]), "
        "CAST(:by AS smallint[])) AS v(id, h, pi, mi, n, i, p, rel, tags, by) WHERE r.id = v.id"),
        {"id": [r["resident_id"] for r in rows], "sep": TAG_SEPARATOR, **_resident_arrays(rows)})


def residents_of(conn: sa.Connection, plan_id: int | None, *, territory: str | None = None,
                 grid_code: str | None = None, household_id: int | None = None,
                 resident_id: int | None = None) -> pd.DataFrame:
    """Residents with their household, tokens and the grid of plan ``plan_id`` they live in: those
    registered in ``territory`` or below it, those of one grid, of one household, or one resident.
    Ordered by building, 单元, 房号."""
    return pd.read_sql_query(sa.text(
        with_subtree() + "SELECT r.id AS resident_id, h.id AS household_id, h.building_feature_id AS building_id, "
        "h.building_label, h.stairwell, h.room, h.household_no, c.code AS community_code, g.code AS grid_code, "
        "r.relation, r.tags, r.birth_year, r.name_enc, r.id_number_enc, r.phone_enc "
        "FROM residents r JOIN households h ON h.id = r.household_id LEFT JOIN territories c ON c.id = h.community_id "
        "LEFT JOIN LATERAL (SELECT g.code FROM grids g WHERE g.plan_id = :p AND g.geom && h.geom "
        "AND ST_Covers(g.geom, h.geom) ORDER BY g.code LIMIT 1) g ON true "
        "WHERE (CAST(:territory AS text) IS NULL OR r.territory_id IN (SELECT id FROM sub)) "
        "AND (CAST(:h AS bigint) IS NULL OR h.id = :h) AND (CAST(:r AS bigint) IS NULL OR r.id = :r) "
        "AND (CAST(:grid AS text) IS NULL OR g.code = :grid) "
        "ORDER BY h.building_label, h.stairwell NULLS FIRST, h.room NULLS FIRST, r.id"),
        conn, params={"territory": territory, "p": plan_id, "grid": grid_code, "h": household_id, "r": resident_id})


def resident_territory(conn: sa.Connection, resident_id: int) -> tuple[str, int]:
    """The code of the territory a resident was registered under, and its household."""
    row = conn.execute(sa.text("SELECT t.code, r.household_id FROM residents r JOIN territories t ON t.id = r.territory_id "
                               "WHERE r.id = :i"), {"i": resident_id}).first()
    if row is None:
        raise HouseholdNotFound(f"no resident {resident_id}", f"没有编号为 {resident_id} 的居民")
    return row[0], int(row[1])


def household_territory(conn: sa.Connection, household_id: int) -> str:
    code = conn.execute(sa.text("SELECT t.code FROM households h JOIN territories t ON t.id = h.territory_id "
                                "WHERE h.id = :i"), {"i": household_id}).scalar()
    if code is None:
        raise HouseholdNotFound(f"no household {household_id}", f"没有编号为 {household_id} 的住户")
    return code


def delete_resident(conn: sa.Connection, resident_id: int) -> None:
    """Remove a resident, and their household when it is left empty."""
    household = conn.execute(sa.text("DELETE FROM residents WHERE id = :i RETURNING household_id"),
                             {"i": resident_id}).scalar()
    if household is not None:
        conn.execute(sa.text("DELETE FROM households h WHERE h.id = :h AND NOT EXISTS "
                             "(SELECT 1 FROM residents r WHERE r.household_id = h.id)"), {"h": household})


def delete_residents_except(conn: sa.Connection, territory_id: int, keep: list[int]) -> int:
    """Remove the territory's residents not in ``keep`` (a full register replacing the last), and
    the households left empty; returns how many residents went."""
    gone = conn.execute(sa.text("DELETE FROM residents WHERE territory_id = :t AND NOT (id = ANY(:k))"),
                        {"t": territory_id, "k": keep}).rowcount
    conn.execute(sa.text("DELETE FROM households h WHERE h.territory_id = :t AND NOT EXISTS "
                         "(SELECT 1 FROM residents r WHERE r.household_id = h.id)"), {"t": territory_id})
    return gone


def tokens(conn: sa.Connection, after_id: int, limit: int) -> pd.DataFrame:
    """Every resident's tokens in id order, a page at a time (what ``rekey`` reads)."""
    return pd.read_sql_query(sa.text(
        "SELECT r.id AS resident_id, r.household_id, r.name_enc, r.id_number_enc, r.phone_enc FROM residents r "
        "WHERE r.id > :a ORDER BY r.id LIMIT :n"), conn, params={"a": after_id, "n": limit})


def write_tokens(conn: sa.Connection, rows: list[dict]) -> None:
    """Store re-encrypted tokens and new keyed hashes (``resident_id, name_enc, id_number_enc,
    phone_enc, person_index, member_index``)."""
    if rows:
        conn.execute(sa.text(
            "UPDATE residents SET name_enc = :name_enc, id_number_enc = :id_number_enc, phone_enc = :phone_enc, "
            "person_index = :person_index, member_index = :member_index WHERE id = :resident_id"), rows)


def household_keys(conn: sa.Connection, household_ids: list[int]) -> dict[int, str]:
    rows = conn.execute(sa.text("SELECT id, household_key FROM households WHERE id = ANY(:h)"), {"h": household_ids})
    return {int(r[0]): r[1] for r in rows}


def grid_counts(conn: sa.Connection, territory: str, plan_id: int, *, elderly_born_by: int) -> pd.DataFrame:
    """Per grid of plan ``plan_id`` in the territory (whoever registered the households in it):
    ``grid_code, households, residents, elderly`` (born in or
    before ``elderly_born_by``) and one row per (grid, tag) in ``tag``/``tagged`` (long form): the
    register as maps and notebooks see it, no person in it."""
    return pd.read_sql_query(sa.text(
        with_subtree() + "SELECT g.code AS grid_code, count(DISTINCT h.id) AS households, count(r.id) AS residents, "
        "count(r.id) FILTER (WHERE r.birth_year <= :old) AS elderly, NULL::text AS tag, 0 AS tagged "
        "FROM grids g JOIN households h ON h.geom && g.geom AND ST_Covers(g.geom, h.geom) "
        "JOIN residents r ON r.household_id = h.id "
        "WHERE g.plan_id = :p AND g.community_id IN (SELECT id FROM sub) GROUP BY g.code "
        "UNION ALL SELECT g.code, 0, 0, 0, tag, count(*) FROM grids g "
        "JOIN households h ON h.geom && g.geom AND ST_Covers(g.geom, h.geom) JOIN residents r ON r.household_id = h.id "
        "CROSS JOIN LATERAL unnest(r.tags) AS tag WHERE g.plan_id = :p AND g.community_id IN (SELECT id FROM sub) "
        "GROUP BY g.code, tag ORDER BY 1, 5 NULLS FIRST"),
        conn, params={"territory": territory, "p": plan_id, "old": elderly_born_by})


def any_registered(conn: sa.Connection, territory: str) -> bool:
    """Whether a household was ever registered in ``territory`` or below it (registered under it,
    or in one of its communities): the register was imported there."""
    return bool(conn.execute(sa.text(
        with_subtree() + "SELECT EXISTS (SELECT 1 FROM households h WHERE h.territory_id IN (SELECT id FROM sub) "
        "OR h.community_id IN (SELECT id FROM sub))"), {"territory": territory}).scalar())


def readable_grids(conn: sa.Connection, user_id: int, plan_id: int, on: date) -> set[str]:
    """The grids of plan ``plan_id`` whose register a user may read as their staff: those a worker
    role binds them to, where the role's territory holds the grid (a role granted on a community
    reaches no grid outside it, whatever codes it names), and those their staff records are
    assigned to on ``on`` (an assignment made on that plan's grid row: one made on another plan's
    grid of the same code, or before a re-plan changed the grid, gives nothing)."""
    bound = conn.execute(sa.text(
        "WITH RECURSIVE above AS (SELECT g.code, t.id, t.parent_id FROM grids g JOIN territories t "
        "ON t.id = g.community_id WHERE g.plan_id = :p UNION ALL SELECT above.code, t.id, t.parent_id FROM above "
        "JOIN territories t ON t.id = above.parent_id) "
        "SELECT DISTINCT above.code FROM above JOIN user_roles r ON r.user_id = :u AND r.role = 'worker' "
        "AND r.grid_codes IS NOT NULL AND above.code = ANY(r.grid_codes) "
        "AND (r.territory_id = above.id OR r.territory_id IS NULL)"), {"p": plan_id, "u": user_id}).scalars()
    assigned = conn.execute(sa.text(
        "SELECT DISTINCT g.code FROM staff s JOIN staff_assignments a ON a.staff_id = s.id "
        "JOIN grids g ON g.id = a.grid_id AND g.plan_id = :p AND g.code = a.grid_code "
        "WHERE s.user_id = :u AND a.valid_from <= :on AND (a.valid_to IS NULL OR a.valid_to >= :on)"),
        {"p": plan_id, "u": user_id, "on": on}).scalars()
    return set(bound) | set(assigned)


__all__ = ["HouseholdNotFound", "PERSONAL", "buildings", "upsert_households", "residents_matching", "insert_residents",
           "update_residents",
           "residents_of", "resident_territory", "household_territory", "delete_resident", "delete_residents_except",
           "tokens", "write_tokens", "household_keys", "grid_counts", "readable_grids"]
