"""GIS layers of a territory: one row in ``layers`` plus its features, written with COPY; which
layer serves a territory (its own or its nearest ancestor's), when one last changed and a digest
of its content (what units record of their inputs). Layers are read as GeoDataFrames through
:mod:`gridmap.store.frames`."""

from __future__ import annotations

import csv
import io
import threading

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.errors import NotFound, StateConflict
from gridmap.store.jsonb import to_json
from gridmap.store.sql import ewkb_hex, with_ancestors


class LayerExists(StateConflict, ValueError):
    """A layer of that name exists and replacing it was not asked for."""


class NoSuchLayer(NotFound):
    """No layer of that name on the territory (or above it)."""

    @classmethod
    def of(cls, name: str, territory: str) -> "NoSuchLayer":
        return cls(f"no layer {name!r} on territory {territory} or above it",
                   f"辖区 {territory} 及其上级都没有图层 {name!r}")


def create(conn: sa.Connection, *, territory_id: int, name: str, kind: str, geometry_type: str | None,
           source_file: str | None, source_crs: str | None, encoding: str | None, checksum: str | None,
           report: dict, actor: str, replace: bool) -> tuple[int, int | None]:
    """Create the layer row; with ``replace`` an existing layer of that name is deleted first.
    Returns (new layer id, number of features the replaced layer had or None)."""
    old = conn.execute(sa.text("SELECT id, feature_count FROM layers WHERE territory_id = :t AND name = :n "
                               "FOR UPDATE"), {"t": territory_id, "n": name}).first()
    replaced = None
    if old is not None:
        if not replace:
            raise LayerExists(f"layer {name!r} exists already; use replace (--replace) to overwrite it",
                              f"图层 {name!r} 已存在；要覆盖请用 replace（--replace）")
        conn.execute(sa.text("DELETE FROM layers WHERE id = :id"), {"id": old.id})
        replaced = old.feature_count
    layer_id = conn.execute(sa.text(
        """INSERT INTO layers (territory_id, name, kind, geometry_type, source_file, source_crs, encoding,
                               checksum, report, imported_by)
           VALUES (:t, :n, :k, :g, :f, :c, :e, :s, CAST(:r AS jsonb), :a) RETURNING id"""),
        {"t": territory_id, "n": name, "k": kind, "g": geometry_type, "f": source_file, "c": source_crs,
         "e": encoding, "s": checksum, "r": to_json(report), "a": actor},
    ).scalar_one()
    return layer_id, replaced


def properties_json(frame: gpd.GeoDataFrame) -> list[str]:
    """Attribute rows as JSON text: NaN → null, dates ISO 8601, Chinese kept as is."""
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if attrs.shape[1] == 0:
        return ["{}"] * len(frame)
    # One JSON object per line; JSON escapes newlines inside strings, so splitting on "\n" is safe.
    text = attrs.to_json(orient="records", lines=True, date_format="iso", force_ascii=False,
                         default_handler=str)
    return text.rstrip("\n").split("\n")


def copy_features(conn: sa.Connection, layer_id: int, frame: gpd.GeoDataFrame) -> int:
    """Bulk-load features with COPY inside the caller's transaction; returns the count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, (props, geom) in enumerate(zip(properties_json(frame), ewkb_hex(frame.geometry.values))):
        writer.writerow((layer_id, index, props, geom))
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.copy_expert("COPY layer_features (layer_id, feature_index, properties, geom) FROM STDIN WITH (FORMAT csv)",
                       buffer)
    conn.execute(sa.text("UPDATE layers SET feature_count = :n WHERE id = :id"), {"n": len(frame), "id": layer_id})
    return len(frame)


def list_for(conn: sa.Connection, territory_code: str) -> list[dict]:
    rows = conn.execute(sa.text(
        "SELECT l.name, l.kind, l.geometry_type, l.feature_count, l.source_file, l.source_crs, l.encoding, "
        "l.imported_at FROM layers l JOIN territories t ON t.id = l.territory_id WHERE t.code = :c ORDER BY l.name"),
        {"c": territory_code})
    return [dict(r._mapping) for r in rows]


ROLES: dict[str, tuple[str, ...]] = {
    "roads": ("roads",), "buildings": ("buildings", "楼栋"), "waterways": ("waterways",),
    "railways": ("railways",), "compounds": ("compounds", "residential_areas"), "sites": ("sites",),
    "entrances": ("entrances", "单元门"),
}
"""The layer names that serve each input role of units and partitions (the first found, nearest
the territory, wins: see :func:`find`)."""


def find(conn: sa.Connection, territory: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The nearest layer called one of ``names`` on the territory or one of its ancestors:
    (owner territory code, layer name); the demo keeps its layers on the city, for example."""
    row = conn.execute(sa.text(
        with_ancestors() + "SELECT t.code, l.name FROM up JOIN territories t ON t.id = up.id "
        "JOIN layers l ON l.territory_id = t.id WHERE l.name = ANY(:names) "
        "ORDER BY up.depth, array_position(CAST(:names AS text[]), CAST(l.name AS text)) LIMIT 1"),
        {"territory": territory, "names": list(names)}).first()
    return (row[0], row[1]) if row else None


def marked_synthetic(conn: sa.Connection, territory: str) -> bool:
    """Whether the territory is demo data: loaded by ``gridmap demo`` (its source ``demo:…``), or
    its buildings layer marked ``来源 = 合成数据(synthetic)`` (the Chinese demo district's files)."""
    return bool(conn.execute(sa.text(
        with_ancestors() + "SELECT EXISTS (SELECT 1 FROM territories WHERE code = :territory AND source LIKE 'demo:%') "
        "OR EXISTS (SELECT 1 FROM layers l JOIN layer_features f ON f.layer_id = l.id WHERE l.territory_id IN "
        "(SELECT id FROM up) AND l.name = ANY(:names) AND f.properties->>'来源' LIKE '%synthetic%')"),
        {"territory": territory, "names": list(ROLES["buildings"])}).scalar())


def serving(conn: sa.Connection, territory: str, names: tuple[str, ...]) -> dict | None:
    """The layer :func:`find` picks for ``territory`` with what identifies its content: owner
    territory code, layer name, row id, feature count and import time (ISO 8601); None when
    there is none. A layer's features never change after its import (a re-import makes a new
    row), so the id names the content; :func:`digest` tells two imports of the same content apart."""
    row = conn.execute(sa.text(
        with_ancestors() + "SELECT t.code, l.name, l.id, l.feature_count, l.imported_at FROM up "
        "JOIN territories t ON t.id = up.id JOIN layers l ON l.territory_id = t.id WHERE l.name = ANY(:names) "
        "ORDER BY up.depth, array_position(CAST(:names AS text[]), CAST(l.name AS text)) LIMIT 1"),
        {"territory": territory, "names": list(names)}).first()
    if row is None:
        return None
    return {"territory": row[0], "name": row[1], "id": int(row[2]), "features": int(row[3]),
            "imported_at": row[4].isoformat()}


_digests: dict[tuple[str, int, str, int], str] = {}
_digests_lock = threading.Lock()


def digest(conn: sa.Connection, layer_id: int) -> str:
    """An MD5 of a layer's features (attributes and geometry, in feature order): equal for two
    imports of the same content, whatever file, name or time they came from.

    Computed once per import in a process: a layer's features are written once, when it is
    imported (a re-import is a new layer), so the digest of one import (its database, id, import
    time and feature count) never changes. Reykjavík's six input layers take 0.2 s to digest,
    which a partition that refines its units at building grain paid twice."""
    row = conn.execute(sa.text("SELECT imported_at, feature_count FROM layers WHERE id = :l"), {"l": layer_id}).first()
    key = (conn.engine.url.render_as_string(hide_password=True), layer_id,
           "" if row is None else row[0].isoformat(), -1 if row is None else int(row[1]))
    with _digests_lock:
        known = _digests.get(key)
    if known is not None:
        return known
    found = conn.execute(sa.text(
        "SELECT md5(COALESCE(string_agg(md5(properties::text) || md5(ST_AsEWKB(geom)), '' ORDER BY feature_index), "
        "'')) FROM layer_features WHERE layer_id = :l"), {"l": layer_id}).scalar_one()
    if row is not None:
        with _digests_lock:
            _digests[key] = found
    return found


def stamp(conn: sa.Connection, layers: list[tuple[str, str]]) -> str:
    """A string that changes whenever one of the (territory code, layer name) layers is re-imported."""
    parts = []
    for code, name in layers:
        parts.append(str(conn.execute(sa.text(
            "SELECT l.id || ':' || l.feature_count || ':' || l.imported_at FROM layers l JOIN territories t "
            "ON t.id = l.territory_id WHERE t.code = :c AND l.name = :n"), {"c": code, "n": name}).scalar()))
    return ",".join(parts)


__all__ = ["LayerExists", "NoSuchLayer", "create", "properties_json", "copy_features", "list_for", "find", "serving",
           "digest", "stamp"]
