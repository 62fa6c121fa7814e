"""GIS layers of a territory: one row in ``layers`` plus its features, written with COPY."""

from __future__ import annotations

import csv
import io
import json

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from gridmap.store.territories import ewkb_hex


class LayerExists(ValueError):
    """A layer of that name exists and replacing it was not asked for."""


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
            raise LayerExists(f"layer {name!r} exists already; use replace (--replace) to overwrite it")
        conn.execute(sa.text("DELETE FROM layers WHERE id = :id"), {"id": old.id})
        replaced = old.feature_count
    layer_id = conn.execute(sa.text(
        """INSERT INTO layers (territory_id, name, kind, geometry_type, source_file, source_crs, encoding,
                               checksum, report, imported_by)
           VALUES (:t, :n, :k, :g, :f, :c, :e, :s, CAST(:r AS jsonb), :a) RETURNING id"""),
        {"t": territory_id, "n": name, "k": kind, "g": geometry_type, "f": source_file, "c": source_crs,
         "e": encoding, "s": checksum, "r": json.dumps(report, ensure_ascii=False), "a": actor},
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


def read(conn: sa.Connection, territory_code: str, name: str) -> gpd.GeoDataFrame:
    """A stored layer as a GeoDataFrame (EPSG:4490), attributes expanded into columns."""
    sql = sa.text(
        "SELECT f.feature_index, f.properties, f.geom FROM layer_features f JOIN layers l ON l.id = f.layer_id "
        "JOIN territories t ON t.id = l.territory_id WHERE t.code = :c AND l.name = :n ORDER BY f.feature_index")
    raw = gpd.read_postgis(sql, conn, geom_col="geom", params={"c": territory_code, "n": name})
    if raw.empty:
        exists = conn.execute(sa.text("SELECT 1 FROM layers l JOIN territories t ON t.id = l.territory_id "
                                      "WHERE t.code = :c AND l.name = :n"), {"c": territory_code, "n": name}).first()
        if exists is None:
            raise LookupError(f"territory {territory_code} has no layer {name!r}")
    attrs = pd.DataFrame(list(raw["properties"]), index=raw.index)
    return gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(raw["geom"].values, index=raw.index), crs=4490)
