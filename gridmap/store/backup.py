"""``gridmap db dump`` / ``gridmap db restore``: one territory with everything hanging from it.

A dump is a zip: ``manifest.json`` (gridmap version, schema revision, territory, row counts,
SHA-256 of every member) and one CSV per table, written by PostgreSQL's COPY (geometries as
hex EWKB, JSON as text: exact, nothing lost in translation). It holds the territory and its
subtree, the ancestors it hangs from, its layers and their features, units (every generation, with
the builds that record what each was made from), every plan (draft,
published, history) with grids, assignments, edits, micro-grids (with their buildings and
leaders) and merge results, departmental grids,
stations, incidents with their full history, the grid staff and their assignments, the needs,
resources and projects lists, 双报到 with its service hours, patrols' tracks, emergencies (their
grids, check-ins and log), door-knocking campaigns and whistles, the households
register (its personal columns as they are stored: encrypted, so a restore needs the same
``GRIDMAP_SECRET_KEY`` to read them), and the shared tables those refer to (departments, incident
categories). Users and the audit log belong to the deployment and are not included (a staff
member's account link is kept where the account exists).

A restore runs in one transaction and keeps the rows' ids: into the database the dump came from
(``replace=True`` first removes the territory's current rows) or into a fresh one. Any conflict,
a different schema revision or a damaged member stops it with nothing changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from gridmap.store import incident_partitions as partitions
from gridmap.store.sql import ANCESTORS, with_subtree
from gridmap.version import __version__

# COPY takes no bind parameters: the (digits-only, checked) territory code is written into the text
SCOPE = with_subtree(ANCESTORS).replace(":territory", "'{code}'")
PLANS = "(SELECT id FROM plans WHERE territory_id IN (SELECT id FROM sub))"
LAYERS = "(SELECT id FROM layers WHERE territory_id IN (SELECT id FROM sub))"
INCIDENTS = "(SELECT id FROM incidents WHERE community_id IN (SELECT id FROM sub))"
GRIDS = f"(SELECT id FROM grids WHERE plan_id IN {PLANS})"
MICROGRIDS = f"(SELECT id FROM microgrids WHERE plan_id IN {PLANS})"
STAFF = "(SELECT id FROM staff WHERE territory_id IN (SELECT id FROM sub))"
PROJECTS = "(SELECT id FROM projects WHERE territory_id IN (SELECT id FROM sub))"
NEEDS = "(SELECT id FROM needs WHERE territory_id IN (SELECT id FROM sub))"
REGISTRATIONS = "(SELECT id FROM registrations WHERE community_id IN (SELECT id FROM sub))"
PATROLS = "(SELECT id FROM patrols WHERE territory_id IN (SELECT id FROM sub))"
HOUSEHOLDS = "(SELECT id FROM households WHERE territory_id IN (SELECT id FROM sub))"
EMERGENCIES = "(SELECT id FROM emergencies WHERE territory_id IN (SELECT id FROM sub))"
CAMPAIGNS = "(SELECT id FROM campaigns WHERE territory_id IN (SELECT id FROM sub))"
WHISTLES = "(SELECT id FROM whistles WHERE territory_id IN (SELECT id FROM sub))"

# (table, SELECT list, WHERE, shared) in restore order; shared rows may already exist.
TABLES: list[tuple[str, str, str, bool]] = [
    ("territories", "*", "id IN (SELECT id FROM up) AND id NOT IN (SELECT id FROM sub)", True),
    ("territories", "*", "id IN (SELECT id FROM sub)", False),
    ("departments", "*", "true", True),
    ("incident_categories", "*", "true", True),
    ("layers", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("layer_features", "*", f"layer_id IN {LAYERS}", False),
    ("unit_builds", "*", "community_id IN (SELECT id FROM sub)", False),
    ("units", "*", "community_id IN (SELECT id FROM sub)", False),
    ("plans", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("grids", "*", f"plan_id IN {PLANS}", False),
    ("plan_units", "*", f"plan_id IN {PLANS}", False),
    ("plan_edits", "*", f"plan_id IN {PLANS}", False),
    ("plan_notes", "*", f"plan_id IN {PLANS}", False),
    ("merge_crosswalk", "*", f"plan_id IN {PLANS}", False),
    ("plan_conflicts", "*", f"plan_id IN {PLANS}", False),
    ("grid_duties", "*", f"plan_id IN {PLANS}", False),
    ("microgrids", "*", f"plan_id IN {PLANS}", False),
    ("microgrid_buildings", "*", f"microgrid_id IN {MICROGRIDS}", False),
    ("department_grids", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("stations", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("patrols", "*", "territory_id IN (SELECT id FROM sub)", False),  # (before the incidents found on them ...)
    ("emergencies", "*", "territory_id IN (SELECT id FROM sub)", False),  # (... and reported in them)
    ("incidents", "*", "community_id IN (SELECT id FROM sub)", False),
    ("incident_events", "*", f"incident_id IN {INCIDENTS}", False),
    ("staff", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("staff_assignments", "*", f"staff_id IN {STAFF}", False),
    ("households", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("residents", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("projects", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("needs", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("resources", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("project_needs", "*", f"project_id IN {PROJECTS}", False),
    ("project_resources", "*", f"project_id IN {PROJECTS}", False),
    ("registrations", "*", "community_id IN (SELECT id FROM sub)", False),
    ("service_hours", "*", f"registration_id IN {REGISTRATIONS}", False),
    ("emergency_grids", "*", f"emergency_id IN {EMERGENCIES}", False),
    ("emergency_checkins", "*", f"emergency_id IN {EMERGENCIES}", False),
    ("emergency_events", "*", f"emergency_id IN {EMERGENCIES}", False),
    ("campaigns", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("campaign_targets", "*", f"campaign_id IN {CAMPAIGNS}", False),
    ("campaign_visits", "*", f"campaign_id IN {CAMPAIGNS}", False),
    ("whistles", "*", "territory_id IN (SELECT id FROM sub)", False),
    ("whistle_calls", "*", f"whistle_id IN {WHISTLES}", False),
]
# references that may point outside the dump are cleared in it (the database would do the same
# with ON DELETE SET NULL)
CLEARED = {
    "plans": {"parent_plan_id": f"CASE WHEN parent_plan_id IN {PLANS} THEN parent_plan_id END"},
    "incidents": {"grid_id": f"CASE WHEN grid_id IN {GRIDS} THEN grid_id END",
                  "duplicate_of": f"CASE WHEN duplicate_of IN {INCIDENTS} THEN duplicate_of END",
                  "duplicate_of_reported_at": f"CASE WHEN duplicate_of IN {INCIDENTS} THEN duplicate_of_reported_at END",
                  "patrol_id": f"CASE WHEN patrol_id IN {PATROLS} THEN patrol_id END",
                  "emergency_id": f"CASE WHEN emergency_id IN {EMERGENCIES} THEN emergency_id END"},
    "department_grids": {"layer_id": f"CASE WHEN layer_id IN {LAYERS} THEN layer_id END"},
    "staff_assignments": {"grid_id": f"CASE WHEN grid_id IN {GRIDS} THEN grid_id END"},
    "needs": {"project_id": f"CASE WHEN project_id IN {PROJECTS} THEN project_id END",
              # a need in a project the dump does not hold is open again (its project went with another territory)
              "status": f"CASE WHEN status = 'in_project' AND project_id NOT IN {PROJECTS} THEN 'open' ELSE status END"},
    "service_hours": {"project_id": f"CASE WHEN project_id IN {PROJECTS} THEN project_id END",
                      "need_id": f"CASE WHEN need_id IN {NEEDS} THEN need_id END"},
    "campaigns": {"emergency_id": f"CASE WHEN emergency_id IN {EMERGENCIES} THEN emergency_id END"},
    "campaign_targets": {"household_id": f"CASE WHEN household_id IN {HOUSEHOLDS} THEN household_id END"},
    "campaign_visits": {"need_id": f"CASE WHEN need_id IN {NEEDS} THEN need_id END"},
    "whistles": {"emergency_id": f"CASE WHEN emergency_id IN {EMERGENCIES} THEN emergency_id END"},
}

# references kept in the dump that may point outside it: cleared on restore where the row they
# name is not in the database (a micro-grid's building in a buildings layer of a territory above
# the dumped one: there when restoring in place, absent in a fresh database)
DANGLING = {"microgrid_buildings": {"feature_id": "layer_features"}, "staff": {"user_id": "users"},
            "households": {"building_feature_id": "layer_features", "community_id": "territories"},
            "needs": {"community_id": "territories"}, "resources": {"community_id": "territories"},
            "patrols": {"user_id": "users"}, "staff_assignments": {"building_id": "layer_features"},
            "emergency_grids": {"community_id": "territories", "grid_id": "grids"}, "emergency_checkins": {"user_id": "users"},
            "campaign_targets": {"building_id": "layer_features"}, "campaign_visits": {"user_id": "users"},
            "project_needs": {}, "project_resources": {}}


class BackupError(ValueError):
    """A dump or restore that cannot be done; nothing was changed. The message says it in English,
    then in Chinese after " / " (what ``gridmap db dump`` and ``restore`` print)."""


TABLES_ZH = {"territories": "辖区", "plans": "方案", "grids": "网格", "units": "单元", "incidents": "事件",
             "incident_events": "事件记录", "stations": "站点"}  # the counts a dump's summary names


@dataclass
class BackupSummary:
    territory: str
    path: Path
    rows: dict[str, int]

    def __str__(self) -> str:
        main = self._main()
        return f"territory {self.territory} ({self.path.name}): " + ", ".join(f"{k} {v}" for k, v in main.items())

    def zh(self) -> str:
        """The same in Chinese (the CLI prints both)."""
        return f"辖区 {self.territory}（{self.path.name}）：" + "，".join(
            f"{TABLES_ZH.get(k, k)} {v}" for k, v in self._main().items())

    def _main(self) -> dict[str, int]:
        """The counts worth a line: the tables people know, those with rows."""
        return {k: v for k, v in self.rows.items() if v and k in TABLES_ZH}


def _columns(conn: sa.Connection, table: str) -> list[str]:
    """The table's columns a dump holds: all but the generated ones (the database makes those)."""
    return list(conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :t "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position"), {"t": table}).scalars())


def _revision(conn: sa.Connection) -> str:
    return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())


def dump(engine: sa.Engine, territory: str, path: str | Path) -> BackupSummary:
    """Write the territory and everything hanging from it to ``path`` (a zip), from one snapshot."""
    if not territory.isdigit():
        raise BackupError(f"a territory code is digits only, not {territory!r} / 辖区代码只能是数字，而不是 {territory}")
    path = Path(path)
    rows: dict[str, int] = {}
    digests: dict[str, str] = {}
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        if conn.execute(sa.text("SELECT 1 FROM territories WHERE code = :c"), {"c": territory}).first() is None:
            raise BackupError(f"no territory with code {territory!r} / 没有编码为 {territory} 的辖区")
        revision = _revision(conn)
        cursor = conn.connection.cursor()
        tmp = path.with_suffix(path.suffix + ".part")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for index, (table, _, where, shared) in enumerate(TABLES):
                columns = _columns(conn, table)
                select = ", ".join(CLEARED.get(table, {}).get(c, c) + f" AS {c}" if c in CLEARED.get(table, {})
                                   else c for c in columns)
                order = ("ORDER BY array_position(ARRAY['city','district','street','community']::text[], "
                         "level::text), id") if table == "territories" else ("ORDER BY id" if "id" in columns else "")
                sql = (SCOPE.format(code=territory) + f"SELECT {select} FROM {table} t WHERE {where} {order}")
                buffer = io.BytesIO()
                cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
                data = buffer.getvalue()
                member = f"{index:02d}_{table}{'_shared' if shared else ''}.csv"
                archive.writestr(member, data)
                digests[member] = hashlib.sha256(data).hexdigest()
                rows[table] = rows.get(table, 0) + int(conn.execute(sa.text(
                    SCOPE.format(code=territory) + f"SELECT count(*) FROM {table} t WHERE {where}")).scalar())
            manifest = {"format": "gridmap-territory-dump/1", "gridmap": __version__, "schema": revision,
                        "territory": territory, "created_at": datetime.now(timezone.utc).isoformat(),
                        "rows": rows, "sha256": digests}
            archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        tmp.replace(path)
    return BackupSummary(territory, path, rows)


def restore(engine: sa.Engine, path: str | Path, *, replace: bool = False) -> BackupSummary:
    """Load a dump in one transaction (see the module docstring); returns what was restored."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
        manifest = json.loads(archive.read("manifest.json"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise BackupError(f"{path.name}: not a gridmap dump ({exc}) / {path.name} 不是 gridmap 备份文件") from exc
    if manifest.get("format") != "gridmap-territory-dump/1":
        raise BackupError(f"{path.name}: unknown dump format {manifest.get('format')!r} / "
                          f"{path.name}：无法识别的备份格式 {manifest.get('format')}")
    territory = str(manifest["territory"])
    if not territory.isdigit():
        raise BackupError(f"{path.name}: the manifest names no valid territory code / "
                          f"{path.name}：备份清单中没有有效的辖区代码")
    members = sorted(n for n in archive.namelist() if n.endswith(".csv"))
    for member in members:
        if hashlib.sha256(archive.read(member)).hexdigest() != manifest["sha256"].get(member):
            raise BackupError(f"{path.name}: {member} is damaged (checksum mismatch); nothing restored / "
                              f"{path.name}：{member} 已损坏（校验和不符），未恢复任何数据")
    made = _make_months(engine, archive, members, manifest["schema"])
    try:
        with engine.begin() as conn:
            revision = _revision(conn)
            if revision != manifest["schema"]:
                raise BackupError(f"the dump has schema {manifest['schema']}, this database {revision}: migrate "
                                  f"to the same revision first (gridmap migrate) / 备份的数据库结构版本为 "
                                  f"{manifest['schema']}，本数据库为 {revision}：请先迁移到相同版本（gridmap migrate）")
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('gridmap-restore'))"))
            exists = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": territory}).scalar()
            if exists is not None:
                if not replace:
                    raise BackupError(f"territory {territory} is already in this database: restore with --replace "
                                      f"to put the dump in its place / 本数据库中已有辖区 {territory}：如需以备份替换，"
                                      "请加 --replace 恢复")
                conn.execute(sa.text(SCOPE.format(code=territory) + f"DELETE FROM incidents WHERE id IN {INCIDENTS}"))
                conn.execute(sa.text("DELETE FROM territories WHERE code = :c"), {"c": territory})
            cursor = conn.connection.cursor()
            for member in members:
                table = member[3:-4].removesuffix("_shared")
                shared = member.endswith("_shared.csv")
                data = archive.read(member)
                if not data.strip():
                    continue
                header = data.split(b"\n", 1)[0].decode()
                conn.execute(sa.text(f'CREATE TEMP TABLE "restore_{table}" (LIKE "{table}") ON COMMIT DROP'))
                cursor.copy_expert(f'COPY "restore_{table}" ({header}) FROM STDIN WITH (FORMAT csv, HEADER true)',
                                   io.BytesIO(data))
                for column, target in DANGLING.get(table, {}).items():
                    conn.execute(sa.text(f'UPDATE "restore_{table}" r SET "{column}" = NULL WHERE r."{column}" IS NOT NULL '
                                         f'AND NOT EXISTS (SELECT 1 FROM "{target}" t WHERE t.id = r."{column}")'))
                if table == "incidents" and conn.execute(sa.text(
                        'SELECT EXISTS (SELECT FROM "restore_incidents" r JOIN incidents i ON i.id = r.id)')).scalar_one():
                    # (the key is the id with the month: the database would take the same id twice)
                    raise BackupError(f"{path.name}: incidents of the dump have the ids of incidents already here: restore "
                                      "into the database it came from with --replace, or into a fresh database. Nothing "
                                      "was restored / 转储中的事件编号与库中已有事件重复：请用 --replace 还原到原数据库，"
                                      "或还原到新数据库；未还原任何数据")
                conflict = "ON CONFLICT DO NOTHING" if shared else ""
                conn.execute(sa.text(f'INSERT INTO "{table}" ({header}) SELECT {header} FROM "restore_{table}" '
                                     f'{conflict}'))
                conn.execute(sa.text(f'DROP TABLE "restore_{table}"'))
            _advance_sequences(conn)
    except sa.exc.IntegrityError as exc:
        _forget_months(engine, made)
        raise BackupError(f"{path.name}: rows of the dump collide with rows already here "
                          f"({str(exc.orig).splitlines()[0]}); restore into the database it came from with "
                          "--replace, or into a fresh database. Nothing was restored / 备份中的数据与库中已有数据冲突："
                          "请用 --replace 恢复到原数据库，或恢复到新数据库；未恢复任何数据") from exc
    except BaseException:  # refused, or a broken file, or interrupted: nothing restored, no month left made
        _forget_months(engine, made)
        raise
    return BackupSummary(territory, path, dict(manifest["rows"]))


def _make_months(engine: sa.Engine, archive: zipfile.ZipFile, members: list[str], schema: str) -> list[str]:
    """The monthly partitions of the dump's incidents (else they would all go to the default
    partition), made before the restore in a transaction of their own: the locks of making a
    month are held until its transaction ends, and the restore's is long. Returns the names of
    the months made (a refused restore drops them again, :func:`_forget_months`). Nothing when
    the database is at another revision (the restore then refuses, saying so)."""
    member = next((m for m in members if m[3:-4] == "incidents"), None)
    with engine.connect() as conn:
        if member is None or _revision(conn) != schema:
            return []
    reader = csv.DictReader(io.StringIO(archive.read(member).decode("utf-8")))
    times = [row["reported_at"] for row in reader if row.get("reported_at")]
    if not times:
        return []
    try:
        with engine.begin() as conn:
            first, last = conn.execute(sa.text(
                "SELECT (min(t::timestamptz) AT TIME ZONE 'UTC')::date, (max(t::timestamptz) AT TIME ZONE 'UTC')::date "
                "FROM unnest(CAST(:times AS text[])) t"), {"times": times}).one()
            return partitions.ensure_listing_made(conn, first, last)
    except partitions.PartitionsBusy as busy:
        raise BackupError(f"{busy.en} / {busy.zh}") from busy


def _forget_months(engine: sa.Engine, made: list[str]) -> None:
    """The months a failed restore made, dropped again where still empty (each in a transaction
    of its own). A month another writer has filled meanwhile, or one gone already, or a busy
    table, or any error here leaves it as it is: an empty month is harmless, and the restore's
    own error is the one to report."""
    for name in made:
        try:
            with engine.begin() as conn:
                if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": f'"{name}"'}).scalar() is not None:
                    partitions.drop_if_empty(conn, name)
        except sa.exc.SQLAlchemyError:
            continue


def _advance_sequences(conn: sa.Connection) -> None:
    """Every id sequence past the largest id now stored (restored rows kept their ids)."""
    owned = conn.execute(sa.text(
        "SELECT s.relname, t.relname, a.attname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
        "WHERE s.relkind = 'S' AND d.deptype = 'a'")).all()
    for sequence, table, column in owned:
        conn.execute(sa.text(f'SELECT setval(\'"{sequence}"\', GREATEST((SELECT max("{column}") FROM "{table}"), 1))'))
    conn.execute(sa.text(
        "SELECT setval('incident_public_seq', GREATEST((SELECT max(right(public_id, 7)::bigint) FROM incidents "
        "WHERE public_id ~ '^GM[0-9]{15}$'), (SELECT last_value FROM incident_public_seq), 1))"))
    conn.execute(sa.text(
        "SELECT setval('grid_lineage_seq', GREATEST((SELECT max(lineage) FROM grids), "
        "(SELECT last_value FROM grid_lineage_seq), 1))"))


__all__ = ["dump", "restore", "BackupError", "BackupSummary", "TABLES"]
