"""`gridmap db dump` / `gridmap db restore`: a territory with its plans (published, draft with
edits, history), layers, units, stations and incidents with their history round-trips exactly,
into a fresh database and in place; a damaged or conflicting dump changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
import sqlalchemy as sa

from gridmap.store import incident_partitions as partitions
from gridmap.store.db import engine_for

from conftest import fresh_database

MONACO = "980100"
GRIDMAP = [sys.executable, "-m", "gridmap.cli"]
FINGERPRINTS = {
    "territories": "SELECT md5(string_agg(code || name || level || md5(ST_AsEWKB(geom)::text), ',' ORDER BY code)) "
                   "FROM territories WHERE code LIKE '98%'",
    "plans": "SELECT md5(string_agg(version || status || COALESCE(valid_to::text, '') || lock_version, ',' "
             "ORDER BY version)) FROM plans",
    "grids": "SELECT md5(string_agg(p.version || g.code || g.households || COALESCE(g.name, '') || "
             "md5(ST_AsEWKB(g.geom)::text), ',' ORDER BY p.version, g.code)) FROM grids g JOIN plans p ON p.id = g.plan_id",
    "assignment": "SELECT md5(string_agg(p.version || u.unit_key || g.code, ',' ORDER BY p.version, u.unit_key)) "
                  "FROM plan_units pu JOIN plans p ON p.id = pu.plan_id JOIN units u ON u.id = pu.unit_id "
                  "JOIN grids g ON g.id = pu.grid_id",
    "edits": "SELECT count(*) || md5(string_agg(operations::text, ',' ORDER BY id)) FROM plan_edits",
    "incidents": "SELECT md5(string_agg(public_id || status || COALESCE(description, '') || "
                 "COALESCE(reporter_contact, '') || escalation_level || ST_AsText(geom), ',' ORDER BY public_id)) "
                 "FROM incidents",
    "events": "SELECT count(*) || md5(string_agg(i.public_id || e.to_status || e.actor, ',' ORDER BY e.id)) "
              "FROM incident_events e JOIN incidents i ON i.id = e.incident_id",
    "stations": "SELECT md5(string_agg(name || station_type || ST_AsText(geom), ',' ORDER BY id)) FROM stations",
    "layers": "SELECT md5(string_agg(l.name || (SELECT count(*) FROM layer_features f WHERE f.layer_id = l.id), ',' "
              "ORDER BY l.name)) FROM layers l",
    "microgrids": "SELECT count(*) || md5(string_agg(m.code || m.households || COALESCE(m.flag, '') || "
                  "COALESCE(m.leader_name, '') || COALESCE(m.leader_phone, '') || m.properties::text || "
                  "md5(ST_AsEWKB(m.geom)::text), ',' ORDER BY m.code)) FROM microgrids m",
    "microgrid_buildings": "SELECT count(*) || md5(string_agg(m.code || COALESCE(b.feature_id::text, '-') || b.part || "
                           "b.households || COALESCE(b.leader_name, '') || COALESCE(b.building_leader_name, '') || "
                           "md5(ST_AsEWKB(b.geom)::text), ',' "
                           "ORDER BY b.id)) FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id",
    "staff": "SELECT count(*) || md5(string_agg(s.name || s.role || a.grid_code || a.valid_from || "
             "COALESCE(a.grid_id::text, '-'), ',' ORDER BY a.id)) FROM staff s JOIN staff_assignments a ON a.staff_id = s.id",
    "lists": "SELECT (SELECT count(*) || md5(string_agg(category || status || COALESCE(project_id::text, '-'), ',' ORDER BY id)) "
             "FROM needs) || (SELECT count(*) || md5(string_agg(name || array_to_string(categories, '、'), ',' ORDER BY id)) "
             "FROM resources) || (SELECT count(*) FROM project_needs) || (SELECT count(*) FROM project_resources)",
    "registrations": "SELECT count(*) || md5(string_agg(r.name || r.kind || COALESCE(s.hours::text, '-'), ',' ORDER BY r.id, "
                     "s.id)) FROM registrations r LEFT JOIN service_hours s ON s.registration_id = r.id",
    "patrols": "SELECT count(*) || md5(string_agg(walker || started_at || md5(ST_AsEWKB(geom)::text), ',' ORDER BY id)) "
               "FROM patrols",
    "patrol_links": "SELECT count(*) || md5(string_agg(i.public_id || p.walker, ',' ORDER BY i.id)) FROM incidents i "
                    "JOIN patrols p ON p.id = i.patrol_id",
    "building_staff": "SELECT count(*) || md5(string_agg(a.building_label || a.building_id, ',' ORDER BY a.id)) "
                      "FROM staff_assignments a WHERE a.building_id IS NOT NULL",
    "emergencies": "SELECT (SELECT count(*) || md5(string_agg(kind || reason || md5(ST_AsEWKB(geom)::text), ',' ORDER BY id)) "
                   "FROM emergencies) || (SELECT count(*) || md5(string_agg(grid_code || status || COALESCE(checked_in_by, '-'), "
                   "',' ORDER BY grid_code)) FROM emergency_grids) || (SELECT count(*) FROM emergency_checkins) || "
                   "(SELECT count(*) || md5(string_agg(kind || detail::text, ',' ORDER BY id)) FROM emergency_events)",
    "campaigns": "SELECT (SELECT count(*) || md5(string_agg(label || grid_code, ',' ORDER BY id)) FROM campaign_targets) || "
                 "(SELECT count(*) || md5(string_agg(outcome || visitor, ',' ORDER BY id)) FROM campaign_visits)",
    "whistles": "SELECT count(*) || md5(string_agg(d.code || COALESCE(c.arrived_by, '-'), ',' ORDER BY c.whistle_id, d.code)) "
                "FROM whistle_calls c JOIN departments d ON d.id = c.department_id",
    "register": "SELECT count(*) || md5(string_agg(h.household_key || h.building_label || md5(r.name_enc) || "
                "md5(COALESCE(r.phone_enc, '')) || r.person_index || array_to_string(r.tags, '、') || "
                "md5(ST_AsEWKB(h.geom)::text), ',' ORDER BY r.id)) FROM residents r JOIN households h ON h.id = r.household_id",
}


def fingerprint(engine: sa.Engine) -> dict:
    with engine.connect() as conn:
        return {name: conn.execute(sa.text(sql)).scalar() for name, sql in FINGERPRINTS.items()}


@pytest.fixture
def history(monaco_published: sa.Engine, tmp_path):
    """Monaco: v1 published then v2 published (v1 history), a v3 draft with a saved edit and
    micro-grids (one with a leader), a station, incidents moved along the workflow, a grid worker
    on a grid and a household in the register."""
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    from gridmap.services import incidents, microgrids, planning, stations

    second, _ = planning.new_draft(monaco, MONACO, actor="test")
    planning.publish(monaco, second, version=None, actor="test")
    draft, _ = planning.new_draft(monaco, MONACO, actor="test")
    with monaco.connect() as conn:
        lock, grid = conn.execute(sa.text("SELECT p.lock_version, min(g.code) FROM plans p JOIN grids g ON "
                                          "g.plan_id = p.id WHERE p.id = :p GROUP BY 1"), {"p": draft}).one()
    planning.apply_edits(monaco, draft, version=lock, operations=[{"op": "set", "grid": grid, "name": "第一网格"}],
                         actor="test")
    microgrids.divide_plan(monaco, draft, actor="test")  # the draft's micro-grids, a leader on one of them
    with monaco.connect() as conn:
        code = conn.execute(sa.text("SELECT min(code) FROM microgrids WHERE plan_id = :p"), {"p": draft}).scalar()
    microgrids.set_leader(monaco, draft, code, name="王芳", phone="13800000000", actor="test")
    stations.create(monaco, MONACO, station_type="pharmacy", name="药房", lon=7.4236, lat=43.7306, actor="test")
    incidents.ensure_categories(monaco)
    incidents.load_demo_incidents(monaco, MONACO, count=300, seed=5)
    from gridmap.services import households, staff
    from gridmap.vault import Vault, new_key

    person = staff.create(monaco, MONACO, name="钱九", role="专职网格员", phone=None, staff_key=None, actor="test")
    staff.assign(monaco, person["staff_id"], grid, actor="test")
    with monaco.connect() as conn:  # a named building of Monaco for a one-household register
        building = conn.execute(sa.text(
            "SELECT f.properties->>'name' FROM layer_features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.name = 'buildings' AND f.properties->>'name' IS NOT NULL AND (SELECT count(*) FROM layer_features o "
            "WHERE o.layer_id = f.layer_id AND lower(o.properties->>'name') = lower(f.properties->>'name')) = 1 "
            "ORDER BY f.id LIMIT 1")).scalar_one()
    register = tmp_path / "r.csv"
    register.write_text(f"姓名,楼栋号,房号,联系电话,标签\n王五,{building},101,13800000001,独居老人\n", encoding="utf-8")
    households.import_sheet(monaco, MONACO, register, vault=Vault([new_key()]), actor="test")
    from gridmap.services import lists, registrations

    point = {"lon": 7.4236, "lat": 43.7306}
    need = lists.create_need(monaco, MONACO, {"category": "助餐", "description": "送餐", **point}, actor="test")
    resource = lists.save_resource(monaco, MONACO, {"name": "食堂", "kind": "场地", "categories": ["助餐"], **point},
                                   actor="test")
    lists.create_project(monaco, MONACO, {"name": "助餐", "need_ids": [need["id"]], "resource_ids": [resource["id"]]},
                         actor="test")
    registrations.ensure_demo(monaco, MONACO, count=200)
    from datetime import datetime, timedelta, timezone

    from gridmap.services import patrols

    walked = datetime(2026, 6, 1, 8, tzinfo=timezone.utc)
    done = patrols.record(monaco, MONACO, [(7.4236, 43.7306, walked), (7.4240, 43.7306, walked + timedelta(seconds=30))],
                          user_id=None, walker="王网格")
    with monaco.begin() as conn:  # an incident found on that patrol
        conn.execute(sa.text("UPDATE incidents SET patrol_id = :p WHERE id = (SELECT min(id) FROM incidents)"),
                     {"p": done["patrol_id"]})
    staff.assign(monaco, person["staff_id"], None, building=building, actor="test")  # and 钱九 on a building
    from gridmap.services import campaigns, emergencies, whistles

    on = emergencies.start(monaco, MONACO, kind="防汛", reason="演练", actor="test",
                           at=datetime.now(timezone.utc) - timedelta(minutes=40))
    emergencies.check_in(monaco, on["id"], user_id=None, walker="钱九", client_id="c1", grid_code=on["grids"][0])
    emergencies.set_status(monaco, on["id"], on["grids"][0], "affected", actor="钱九")
    campaign = campaigns.create(monaco, MONACO, name="敲门", deadline=datetime.now(timezone.utc) + timedelta(days=1),
                                actor="test", emergency_id=on["id"])
    with monaco.connect() as conn:
        target = conn.execute(sa.text("SELECT min(id) FROM campaign_targets WHERE campaign_id = :c"),
                              {"c": campaign["id"]}).scalar_one()
    campaigns.knock(monaco, target, "visited", visitor="钱九", user_id=None, client_id="k1")
    with monaco.connect() as conn:
        public_id = conn.execute(sa.text("SELECT min(public_id) FROM incidents")).scalar_one()
    whistle = whistles.blow(monaco, departments=["YJ", "MZ"], actor="test", incident=public_id)
    whistles.answer(monaco, whistle["id"], "YJ", "arrive", actor="test")
    emergencies.end(monaco, on["id"], actor="test")
    return monaco


def test_dump_restore_round_trip(history: sa.Engine, database_url: str, server_url: str, tmp_path) -> None:
    before = fingerprint(history)
    assert before["edits"].startswith("2") and all(before.values())  # the name, and the micro-grids
    assert not before["microgrids"].startswith("0") and not before["microgrid_buildings"].startswith("0")
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    dump = tmp_path / "monaco.zip"
    done = subprocess.run([*GRIDMAP, "db", "dump", "--territory", MONACO, "--out", str(dump)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "plans 3" in done.stdout and "incidents" in done.stdout
    with zipfile.ZipFile(dump) as archive:
        assert "manifest.json" in archive.namelist() and any("incident_events" in n for n in archive.namelist())

    with fresh_database(server_url, "gridmap_restore") as fresh:
        restored = subprocess.run([*GRIDMAP, "db", "restore", str(dump)], env={**env, "GRIDMAP_DATABASE_URL": fresh},
                                  capture_output=True, text=True)
        assert restored.returncode == 0, restored.stderr
        engine = engine_for(fresh)
        assert fingerprint(engine) == before
        with engine.connect() as conn:  # each restored incident in its month's partition, made by the restore
            placed = conn.execute(sa.text(
                "SELECT count(DISTINCT tableoid), count(*) FILTER (WHERE tableoid::regclass::text <> "
                "'incidents_' || to_char(reported_at AT TIME ZONE 'UTC', 'YYYYMM')) FROM incidents")).one()
        assert placed[0] > 4 and placed[1] == 0, placed
        # the restored database keeps working: ids continue after the restored ones
        from gridmap.services import incidents

        point = (7.4236, 43.7306)
        made = incidents.report(engine, incidents.Report(category_code="0101", lon=point[0], lat=point[1],
                                                         description="after restore"), actor="test")
        assert made["public_id"] not in before["incidents"]

    # in place: refused without --replace, exact with it
    again = subprocess.run([*GRIDMAP, "db", "restore", str(dump)], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "--replace" in again.stderr
    with history.begin() as conn:  # change things, then put the dump back in their place
        conn.execute(sa.text("UPDATE grids SET households = households + 1"))
        conn.execute(sa.text("DELETE FROM incident_events WHERE id IN (SELECT min(id) FROM incident_events)"))
        conn.execute(sa.text("DELETE FROM microgrids WHERE id IN (SELECT min(id) FROM microgrids)"))
    assert fingerprint(history) != before
    replaced = subprocess.run([*GRIDMAP, "db", "restore", str(dump), "--replace"], env=env, capture_output=True,
                              text=True)
    assert replaced.returncode == 0, replaced.stderr
    assert fingerprint(history) == before


def test_damaged_dump_changes_nothing(history: sa.Engine, tmp_path) -> None:
    from gridmap.store import backup

    dump = tmp_path / "monaco.zip"
    backup.dump(history, MONACO, dump)
    before = fingerprint(history)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(dump) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if "_grids" in item.filename:
                data = data.replace(b"comprehensive", b"comprehensivX", 1)
            target.writestr(item, data)
    with pytest.raises(backup.BackupError, match="damaged"):
        backup.restore(history, damaged, replace=True)
    assert fingerprint(history) == before
    with pytest.raises(backup.BackupError, match="not a gridmap dump"):
        backup.restore(history, tmp_path / "missing.zip")
    with pytest.raises(backup.BackupError, match="no territory"):
        backup.dump(history, "990100", tmp_path / "x.zip")


def test_a_duplicate_of_an_incident_outside_the_dump_restores_unlinked(history: sa.Engine, server_url: str,
                                                                       tmp_path) -> None:
    """A Monaco incident marked a duplicate of one outside the territory: the dump clears the link
    (both its columns: the two-column key takes both or neither) and a fresh database takes it;
    a dump whose incident ids are taken already is refused, saying so."""
    from gridmap.store import backup

    with history.begin() as conn:
        outside = conn.execute(sa.text(
            "INSERT INTO incidents (category_code, geom, reported_at) VALUES ('0103', ST_SetSRID(ST_Point(2.35, 48.85), "
            "4490), '2026-01-05T10:00Z') RETURNING id")).scalar_one()
        linked = conn.execute(sa.text(
            "UPDATE incidents SET duplicate_of = :o WHERE id = (SELECT min(id) FROM incidents WHERE community_id IS NOT NULL) "
            "RETURNING public_id"), {"o": outside}).scalar_one()
    dump = tmp_path / "monaco.zip"
    backup.dump(history, MONACO, dump)
    with fresh_database(server_url, "gridmap_restore") as fresh:
        engine = engine_for(fresh)
        backup.restore(engine, dump)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT duplicate_of, duplicate_of_reported_at FROM incidents WHERE public_id = :p"),
                                {"p": linked}).one() == (None, None)
        with engine.begin() as conn:  # the territory gone, its incidents stay (unplaced): their ids are taken
            conn.execute(sa.text("DELETE FROM territories WHERE code = :c"), {"c": MONACO})
        with pytest.raises(backup.BackupError, match="ids of incidents already here"):
            backup.restore(engine, dump)
    # a database with one of the dump's ids taken, in none of its months: the refused restore
    # leaves no month behind (it made them all, then dropped them, empty)
    with fresh_database(server_url, "gridmap_restore") as fresh:
        engine = engine_for(fresh)
        with history.connect() as conn:
            taken = conn.execute(sa.text("SELECT min(id) FROM incidents WHERE community_id IS NOT NULL")).scalar_one()
            wanted = {f"incidents_{m:%Y%m}" for (m,) in conn.execute(sa.text(
                "SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'UTC') FROM incidents "
                "WHERE community_id IS NOT NULL"))}
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO incidents (id, category_code, geom, reported_at) VALUES (:i, '0103', "
                "ST_SetSRID(ST_Point(7.42, 43.73), 4490), '2019-03-01T10:00Z')"), {"i": taken})
            months = sorted(p.name for p in partitions.listing(conn, counted=False))
        assert wanted - set(months)  # the restore has months to make
        with pytest.raises(backup.BackupError, match="ids of incidents already here"):
            backup.restore(engine, dump)
        with engine.connect() as conn:
            assert sorted(p.name for p in partitions.listing(conn, counted=False)) == months
