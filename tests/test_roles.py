"""Who may do what: every role × every endpoint that writes or reads non-public data.

Roles: nobody signed in, a viewer, a grid worker bound to one grid, a handler bound to the
department of road repairs, a handler of another department, a planner, an administrator of
Monaco, the administrator of every territory (admin without a territory, as the first user of a
deployment), a planner of another city (Ya'an), and another system calling with an API key that
carries the viewer role. For each endpoint the roles that may call it succeed (on a target made fresh for
them); every other role gets 401 or 403 and the database is exactly as before (a fingerprint of
every table the endpoint could touch, the audit log included)."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.settings import Settings
from gridmap.store.db import engine_for
from gridmap.vault import new_key

from conftest import fresh_database

MONACO = "980100"
ROLES = ["anonymous", "viewer", "worker", "handler", "other_handler", "planner", "admin", "global_admin", "stranger",
         "apikey"]
FINGERPRINT = ("SELECT md5(concat_ws('|', (SELECT string_agg(id || status || lock_version, ',' ORDER BY id) FROM plans), "
               "(SELECT count(*) FROM grids), (SELECT count(*) FROM plan_edits), "
               "(SELECT string_agg(public_id || status, ',' ORDER BY id) FROM incidents), "
               "(SELECT count(*) FROM incident_events), (SELECT string_agg(id || status || name, ',' ORDER BY id) "
               "FROM stations), (SELECT count(*) FROM layers), (SELECT count(*) FROM audit_log), "
               "(SELECT max(escalation_level) FROM incidents), (SELECT string_agg(id || name || role || COALESCE(phone, '-'), ',' "
               "ORDER BY id) FROM staff), (SELECT string_agg(id || grid_code || COALESCE(valid_to::text, '-'), ',' ORDER BY id) "
               "FROM staff_assignments), (SELECT count(*) FROM households), (SELECT count(*) FROM residents), "
               "(SELECT string_agg(id || status, ',' ORDER BY id) FROM needs), "
               "(SELECT string_agg(id || name || active, ',' ORDER BY id) FROM resources), "
               "(SELECT string_agg(id || status, ',' ORDER BY id) FROM projects), (SELECT count(*) FROM registrations), "
               "(SELECT count(*) FROM service_hours), (SELECT count(*) FROM patrols), "
               "(SELECT string_agg(id || COALESCE(ended_at::text, '-'), ',' ORDER BY id) FROM emergencies), "
               "(SELECT string_agg(grid_code || status || COALESCE(checked_in_at::text, '-'), ',' ORDER BY emergency_id, "
               "grid_code) FROM emergency_grids), (SELECT count(*) FROM emergency_checkins), "
               "(SELECT count(*) FROM emergency_events), (SELECT count(*) FROM campaigns), "
               "(SELECT count(*) FROM campaign_visits), (SELECT count(*) FROM whistles), "
               "(SELECT string_agg(whistle_id || COALESCE(acknowledged_at::text, '-') || COALESCE(arrived_at::text, '-'), "
               "',' ORDER BY whistle_id, department_id) FROM whistle_calls)))")
REGISTER_KEY = new_key()


@pytest.fixture(scope="module")
def site_database(server_url: str):
    """A database of this module's own, shared by its tests: building the site takes seconds, and
    every check below makes its own fresh target, so the tests do not depend on each other."""
    with fresh_database(server_url, "gridmap_roles") as url:
        yield url


@pytest.fixture(scope="module")
def site(site_database: str):
    from gridmap.services import incidents, planning
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import users

    database_url = site_database
    monaco = engine_for(database_url)
    load_demo(monaco, ["monaco", "yaan"])
    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    incidents.ensure_categories(monaco)
    with monaco.connect() as conn:
        # the worker's grid: the first comprehensive grid holding a building with a name no other
        # building has (the register's rows name it); the other grid: the first other one
        named = conn.execute(sa.text(
            "SELECT g.code, f.properties->>'name' FROM layer_features f "
            "JOIN layers l ON l.id = f.layer_id AND l.name = 'buildings' "
            "JOIN grids g ON g.kind = 'comprehensive' AND ST_Covers(g.geom, ST_PointOnSurface(f.geom)) "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE f.properties->>'name' IS NOT NULL "
            "AND (SELECT count(*) FROM layer_features o WHERE o.layer_id = f.layer_id "
            "AND lower(o.properties->>'name') = lower(f.properties->>'name')) = 1 ORDER BY g.code, f.id LIMIT 1")).one()
        grids = conn.execute(sa.text(
            "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' WHERE g.kind = 'comprehensive' "
            "ORDER BY g.code <> :mine, g.code LIMIT 2"), {"mine": named[0]}).all()
    (my_grid, *my_point), (other_grid, *other_point) = grids
    building = named[1]  # a building of the worker's grid with a name no other building has
    tokens = {"anonymous": None}
    with monaco.begin() as conn:
        for name, role, territory, extra in [
                ("viewer", "viewer", MONACO, {}), ("worker", "worker", MONACO, {"grid_codes": [my_grid]}),
                ("handler", "handler", MONACO, {"department": "SZ"}),
                ("other_handler", "handler", MONACO, {"department": "HW"}), ("planner", "planner", MONACO, {}),
                ("admin", "admin", MONACO, {}), ("global_admin", "admin", None, {}),
                ("stranger", "planner", "511800", {}),
                ("system", "viewer", MONACO, {})]:
            users.create_user(conn, name, "role matrix password")
            users.grant(conn, name, role, territory, **extra)
        tokens["apikey"] = users.create_api_key(conn, "system", "city dashboard")
    client = TestClient(create_app(database_url=database_url, settings=dataclasses.replace(
        Settings.from_env(), secret_keys=(REGISTER_KEY,))))
    for name in ROLES:
        if name not in tokens:
            answer = client.post("/api/auth/token", data={"username": name, "password": "role matrix password"})
            tokens[name] = answer.json()["access_token"]

    def report(point=my_point, category="0101", contact=None) -> str:
        made = incidents.report(monaco, incidents.Report(category_code=category, lon=point[0], lat=point[1],
                                                         description="matrix", reporter_name="王五",
                                                         reporter_contact=contact or "13800000000"), actor="test")
        return made["public_id"]

    def moved(to: str, **kwargs) -> str:
        public_id = report(**kwargs)
        path = {"filed": ["file"], "dispatched": ["file", "dispatch"], "claimed": ["file", "dispatch", "claim"],
                "handled": ["file", "dispatch", "claim", "handle"]}[to]
        for action in path:
            incidents.transition(monaco, public_id, action, actor="test")
        return public_id

    def station() -> int:
        from gridmap.services import stations

        return stations.create(monaco, MONACO, station_type="pharmacy", name="药房", lon=my_point[0],
                               lat=my_point[1], actor="test")["id"]

    def person() -> int:
        from gridmap.services import staff

        return staff.create(monaco, MONACO, name="钱九", role="专职网格员", phone="13900000000", actor="test")["staff_id"]

    def assignment() -> int:
        from gridmap.services import staff

        return staff.assign(monaco, person(), my_grid, actor="test")["assignment_id"]


    def register_sheet() -> bytes:
        """A one-row register of a new household in that building (a new room each call)."""
        room = next(UPLOADS)
        return f"姓名,楼栋号,房号,联系电话\n王五,{building},{100 + room},13800{room:06d}\n".encode("utf-8")

    def resident() -> tuple[int, int]:
        """A household registered in the worker's grid, and its resident: (household id, resident id)."""
        import tempfile
        from pathlib import Path

        from gridmap.services import households
        from gridmap.vault import Vault

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "r.csv"
            path.write_bytes(register_sheet())
            households.import_sheet(monaco, MONACO, path, vault=Vault([REGISTER_KEY]), actor="test")
        with monaco.connect() as conn:
            row = conn.execute(sa.text("SELECT household_id, id FROM residents ORDER BY id DESC LIMIT 1")).one()
        return int(row[0]), int(row[1])

    def need(point=my_point) -> int:
        from gridmap.services import lists

        return lists.create_need(monaco, MONACO, {"category": "助餐", "description": "送餐", "lon": point[0],
                                                 "lat": point[1]}, actor="test")["id"]

    def resource() -> int:
        from gridmap.services import lists

        return lists.save_resource(monaco, MONACO, {"name": f"食堂 {next(UPLOADS)}", "kind": "venue", "categories": ["助餐"],
                                                    "lon": my_point[0], "lat": my_point[1]}, actor="test")["id"]

    def project() -> int:
        from gridmap.services import lists

        return lists.create_project(monaco, MONACO, {"name": "助餐", "need_ids": [need()]}, actor="test")["project_id"]

    def registration() -> int:
        from gridmap.services import registrations

        name = f"党员 {next(UPLOADS)}"
        registrations.register(monaco, MONACO, {"kind": "党员", "name": name, "lon": my_point[0], "lat": my_point[1]},
                               actor="test")
        with monaco.connect() as conn:
            return conn.execute(sa.text("SELECT id FROM registrations WHERE name = :n"), {"n": name}).scalar_one()

    def emergency() -> int:
        """An emergency on over Monaco (switched on when none is)."""
        from gridmap.services import emergencies

        with monaco.connect() as conn:
            found = conn.execute(sa.text("SELECT max(id) FROM emergencies WHERE ended_at IS NULL")).scalar()
        return found or emergencies.start(monaco, MONACO, kind="防汛", reason="矩阵", actor="test")["id"]

    def quiet() -> None:
        """No emergency on (the next may be switched on)."""
        from gridmap.services import emergencies

        with monaco.connect() as conn:
            on = conn.execute(sa.text("SELECT id FROM emergencies WHERE ended_at IS NULL")).scalars().all()
        for emergency_id in on:
            emergencies.end(monaco, emergency_id, actor="test")

    def campaign() -> int:
        from datetime import datetime, timedelta, timezone

        from gridmap.services import campaigns

        return campaigns.create(monaco, MONACO, name=f"敲门 {next(UPLOADS)}", actor="test",
                                deadline=datetime.now(timezone.utc) + timedelta(days=1))["id"]

    def target() -> int:
        """A household or building of the worker's grid in a new campaign."""
        made = campaign()
        with monaco.connect() as conn:
            return conn.execute(sa.text("SELECT min(id) FROM campaign_targets WHERE campaign_id = :c AND grid_code = :g"),
                                {"c": made, "g": my_grid}).scalar_one()

    def whistle() -> int:
        """A new whistle calling the handler's department (SZ) and the other handler's (HW)."""
        from gridmap.services import whistles

        return whistles.blow(monaco, departments=["SZ", "HW"], actor="test", incident=report())["id"]

    def draft() -> tuple[int, int]:
        plan_id, _ = planning.new_draft(monaco, MONACO, actor="test")
        with monaco.connect() as conn:
            return plan_id, conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": plan_id}).scalar()

    def fresh_tokens() -> dict:
        """New sign-ins for every role (and a new key), for a test that revokes its tokens."""
        from datetime import timedelta

        fresh = {"anonymous": None}
        with monaco.begin() as conn:
            for name in ROLES:
                if name not in ("anonymous", "apikey"):
                    user_id = conn.execute(sa.text("SELECT id FROM users WHERE username = :u"), {"u": name}).scalar()
                    fresh[name] = users.issue_token(conn, user_id, timedelta(hours=1))[0]
            fresh["apikey"] = users.create_api_key(conn, "system", f"key {len(fresh)}-{next(UPLOADS)}")
        return fresh

    return {"engine": monaco, "client": client, "tokens": tokens, "report": report, "moved": moved,
            "station": station, "person": person, "resident": resident, "register_sheet": register_sheet,
            "need": need, "resource": resource, "project": project, "registration": registration,
            "emergency": emergency, "quiet": quiet, "campaign": campaign, "target": target, "whistle": whistle, "assignment": assignment, "draft": draft, "my_grid": my_grid, "my_point": my_point, "other_point": other_point,
            "fresh_tokens": fresh_tokens, "database_url": database_url}


def call(site, role: str, method: str, url: str, tokens: dict | None = None, **kwargs):
    token = (tokens or site["tokens"])[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return site["client"].request(method, url, headers=headers, **kwargs)


def fingerprint(site) -> str:
    with site["engine"].connect() as conn:
        return conn.execute(sa.text(FINGERPRINT)).scalar()


# endpoint → (roles allowed, a function making a fresh request for one call)
PLANNERS = {"planner", "admin"}
UPLOADS = itertools.count()
ENDPOINTS = {
    "create draft": (PLANNERS, lambda s: ("POST", f"/api/territories/{MONACO}/drafts", {"json": {}})),
    "edit draft": (PLANNERS, lambda s: (lambda d: ("POST", f"/api/plans/{d[0]}/edits", {"json": {
        "version": d[1], "operations": [{"op": "set", "grid": s["my_grid"], "worker": "赵六"}]}}))(s["draft"]())),
    "publish": (PLANNERS, lambda s: (lambda d: ("POST", f"/api/plans/{d[0]}/publish", {"json": {"version": d[1]}}))(
        s["draft"]())),
    "revert": (PLANNERS, lambda s: ("POST", "/api/plans/1/revert", {"json": {}})),  # plan 1: the published one
    "read a draft": (PLANNERS | {"viewer", "worker", "handler", "other_handler", "apikey"},
                     lambda s: ("GET", f"/api/plans/{s['draft']()[0]}/grids", {})),
    "export a draft": (PLANNERS | {"viewer", "worker", "handler", "other_handler", "apikey"},
                       lambda s: (s["draft"](), ("GET", f"/api/territories/{MONACO}/export",
                                                 {"params": {"plan": "draft", "format": "geojson"}}))[1]),
    "create station": (PLANNERS, lambda s: ("POST", f"/api/territories/{MONACO}/stations", {"json": {
        "station_type": "clinic", "name": "诊所", "lon": s["my_point"][0], "lat": s["my_point"][1]}})),
    "edit station": (PLANNERS, lambda s: ("PATCH", f"/api/stations/{s['station']()}", {"json": {"name": "新药房"}})),
    "close station": (PLANNERS, lambda s: ("POST", f"/api/stations/{s['station']()}/close", {})),
    "upload layer": (PLANNERS, lambda s: ("POST", f"/api/territories/{MONACO}/layers", {"files": {"file": (
        "x.geojson", json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                 "geometry": {"type": "Point", "coordinates": list(s["my_point"])}}]}))},
        "data": {"name": f"upload{next(UPLOADS)}"}})),
    "report in my grid": ({"worker", "handler", "other_handler", "planner", "admin"}, lambda s: (
        "POST", "/api/incidents", {"json": {"category_code": "0101", "lon": s["my_point"][0],
                                            "lat": s["my_point"][1]}})),
    "report elsewhere": ({"handler", "other_handler", "planner", "admin"}, lambda s: (
        "POST", "/api/incidents", {"json": {"category_code": "0101", "lon": s["other_point"][0],
                                            "lat": s["other_point"][1]}})),
    "file (centre)": ({"admin"}, lambda s: ("POST", f"/api/incidents/{s['report']()}/transitions",
                                           {"json": {"action": "file"}})),
    "claim (department)": ({"handler", "admin"}, lambda s: (
        "POST", f"/api/incidents/{s['moved']('dispatched')}/transitions", {"json": {"action": "claim"}})),
    "verify (grid worker)": ({"worker", "admin"}, lambda s: (
        "POST", f"/api/incidents/{s['moved']('handled')}/transitions", {"json": {"action": "verify"}})),
    "verify elsewhere": ({"admin"}, lambda s: (
        "POST", f"/api/incidents/{s['moved']('handled', point=s['other_point'])}/transitions",
        {"json": {"action": "verify"}})),
    "open311 request": ({"worker", "handler", "other_handler", "planner", "admin"}, lambda s: (
        "POST", "/open311/v2/requests.json", {"data": {"service_code": "0101", "lat": str(s["my_point"][1]),
                                                        "long": str(s["my_point"][0]), "description": "坑"}})),
    "supervision pass": ({"admin"}, lambda s: ("POST", "/api/incidents/escalate", {})),
    "read an incident": ({"viewer", "worker", "handler", "planner", "admin", "apikey"}, lambda s: (
        "GET", f"/api/incidents/{s['report']()}", {})),
    "who am I": (set(ROLES) - {"anonymous"}, lambda s: ("GET", "/api/auth/me", {})),
    "list incidents": (set(ROLES) - {"anonymous"}, lambda s: ("GET", "/api/incidents", {})),
    "sign out": (set(ROLES) - {"anonymous"}, lambda s: ("POST", "/api/auth/logout", {})),
    "published data": (set(ROLES), lambda s: ("GET", "/collections/grids/items", {"params": {"limit": 5}})),
    "published plan": (set(ROLES), lambda s: ("GET", "/api/plans/1/grids", {})),
    "plan list": (set(ROLES), lambda s: ("GET", f"/api/territories/{MONACO}/plans", {})),
    "plan history": (set(ROLES), lambda s: ("GET", f"/api/territories/{MONACO}/history", {})),
    "dashboard": (set(ROLES), lambda s: ("GET", f"/api/territories/{MONACO}/incidents/summary", {})),
    "coverage": (set(ROLES), lambda s: ("GET", f"/api/territories/{MONACO}/coverage", {"params": {"types": "pharmacy"}})),
    # grid staff: names and phones are read with a role in the territory, written by its administrators
    "read staff": ({"viewer", "worker", "handler", "other_handler", "planner", "admin", "apikey"},
                   lambda s: ("GET", f"/api/territories/{MONACO}/staff", {})),
    "staffing checks": ({"viewer", "worker", "handler", "other_handler", "planner", "admin", "apikey"},
                        lambda s: ("GET", f"/api/territories/{MONACO}/staffing", {})),
    "add staff": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/staff", {"json": {
        "name": "孙七", "role": "网格长"}})),
    "adopt the plan's people": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/staff/adopt", {})),
    "edit staff": ({"admin"}, lambda s: ("PATCH", f"/api/staff/{s['person']()}", {"json": {"phone": "13900000001"}})),
    "remove staff": ({"admin"}, lambda s: ("DELETE", f"/api/staff/{s['person']()}", {})),
    "assign staff": ({"admin"}, lambda s: ("POST", f"/api/staff/{s['person']()}/assignments", {"json": {
        "grid_code": s["my_grid"]}})),
    "end an assignment": ({"admin"}, lambda s: ("POST", f"/api/staff-assignments/{s['assignment']()}/end", {"json": {
        "valid_to": "2099-12-31"}})),
}
# the households register: counts for the territory's roles; people for the grid's own staff and the
# administrators (the worker is bound to the grid the household is in); the rest for administrators
ENDPOINTS.update({
    "households per grid": ({"viewer", "worker", "handler", "other_handler", "planner", "admin", "apikey"},
                            lambda s: ("GET", f"/api/territories/{MONACO}/households/summary", {})),
    "a grid's households": ({"worker", "admin"}, lambda s: (
        s["resident"](), ("GET", f"/api/territories/{MONACO}/grids/{s['my_grid']}/households", {}))[1]),
    "a household": ({"worker", "admin"}, lambda s: ("GET", f"/api/households/{s['resident']()[0]}", {})),
    "import households": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/households/import", {
        "files": {"file": ("住户登记.csv", s["register_sheet"](), "text/csv")}})),
    "export households (masked)": ({"admin"}, lambda s: ("GET", f"/api/territories/{MONACO}/households/export", {})),
    "export households (full)": ({"admin"}, lambda s: (
        "GET", f"/api/territories/{MONACO}/households/export", {"params": {"full": "true"}})),
    "remove a resident": ({"admin"}, lambda s: ("DELETE", f"/api/residents/{s['resident']()[1]}", {})),
    "my grids": (set(ROLES) - {"anonymous"}, lambda s: ("GET", f"/api/territories/{MONACO}/my-grids", {})),
})
# the three lists: read with a role in the territory; needs recorded and moved by grid workers,
# handlers and administrators; resources and projects are the administrators'
LIST_READERS = {"viewer", "worker", "handler", "other_handler", "planner", "admin", "apikey"}
LIST_ACTORS = {"worker", "handler", "other_handler", "admin"}
ENDPOINTS.update({
    "needs list": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/needs", {})),
    "record a need": (LIST_ACTORS, lambda s: ("POST", f"/api/territories/{MONACO}/needs", {"json": {
        "category": "助餐", "description": "送餐", "lon": s["my_point"][0], "lat": s["my_point"][1]}})),
    "a need": (LIST_READERS, lambda s: ("GET", f"/api/needs/{s['need']()}", {})),
    "move a need": (LIST_ACTORS, lambda s: ("POST", f"/api/needs/{s['need']()}/status", {"json": {"status": "matched"}})),
    "need matches": (LIST_READERS, lambda s: ("GET", f"/api/needs/{s['need']()}/matches", {})),
    "refer a need": (LIST_ACTORS, lambda s: ("POST", f"/api/needs/{s['need']()}/incident",
                                            {"json": {"category_code": "0101"}})),
    "refer a need elsewhere": ({"handler", "other_handler", "admin"}, lambda s: (
        "POST", f"/api/needs/{s['need'](s['other_point'])}/incident", {"json": {"category_code": "0101"}})),
    "resources list": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/resources", {})),
    "save a resource": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/resources", {"json": {
        "name": f"活动室 {next(UPLOADS)}", "kind": "场地", "categories": ["文体活动"], "lon": s["my_point"][0],
        "lat": s["my_point"][1]}})),
    "take a resource off": ({"admin"}, lambda s: ("POST", f"/api/resources/{s['resource']()}/active",
                                                  {"json": {"active": False}})),
    "projects list": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/projects", {})),
    "make a project": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/projects", {"json": {
        "name": "助餐", "need_ids": [s["need"]()], "resource_ids": [s["resource"]()]}})),
    "change a project": ({"admin"}, lambda s: ("PATCH", f"/api/projects/{s['project']()}", {"json": {"status": "active"}})),
    "lists per grid": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/lists/summary", {})),
    "import a list sheet": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/lists/import", {
        "data": {"kind": "resources"}, "files": {"file": ("资源.csv", (
            f"名称,类型,服务类别,经度,纬度\n食堂 {next(UPLOADS)},场地,助餐,{s['my_point'][0]},{s['my_point'][1]}\n"
        ).encode("utf-8"), "text/csv")}})),
    # 双报到: counts and the list (names for administrators) with a role; hours logged by workers and handlers
    "registrations per grid": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/registrations/summary", {})),
    "registrations": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/registrations", {})),
    "register a party member": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/registrations", {"json": {
        "kind": "党员", "name": f"党员 {next(UPLOADS)}", "lon": s["my_point"][0], "lat": s["my_point"][1]}})),
    "log service hours": (LIST_ACTORS, lambda s: ("POST", f"/api/registrations/{s['registration']()}/hours",
                                                  {"json": {"hours": 2}})),
    # patrols: tracks recorded by workers, handlers, administrators; the coverage for every role
    "record a patrol": (LIST_ACTORS, lambda s: ("POST", f"/api/territories/{MONACO}/patrols", {"json": {"points": [
        {"lon": s["my_point"][0], "lat": s["my_point"][1], "time": f"2026-06-01T08:{next(UPLOADS) % 60:02d}:00Z"},
        {"lon": s["my_point"][0] + 0.0002, "lat": s["my_point"][1], "time": f"2026-06-01T09:{next(UPLOADS) % 60:02d}:00Z"}]}})),
    "patrol tracks": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/patrols", {})),
    "patrol coverage": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/patrols/coverage", {})),
    "building visits": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/grids/{s['my_grid']}/visits", {})),
    "upload a patrol": (LIST_ACTORS, lambda s: ("POST", f"/api/territories/{MONACO}/patrols/upload", {"files": {"file": (
        "t.gpx", ('<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
                  f'<trkpt lat="{s["my_point"][1]}" lon="{s["my_point"][0]}"><time>2026-07-01T08:{next(UPLOADS) % 60:02d}:00Z</time></trkpt>'
                  f'<trkpt lat="{s["my_point"][1]}" lon="{s["my_point"][0] + 0.0002}"><time>2026-07-01T09:00:00Z</time></trkpt>'
                  "</trkseg></trk></gpx>").encode("utf-8"), "application/gpx+xml")}})),
    # emergencies: switched on and off by administrators; check-ins and statuses by workers and
    # handlers where their roles reach; the board, map and report for every role of the territory
    "start an emergency": ({"admin"}, lambda s: (s["quiet"](), ("POST", f"/api/territories/{MONACO}/emergencies", {
        "json": {"kind": "防汛", "reason": "矩阵"}}))[1]),
    "emergencies": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/emergencies", {})),
    "an emergency": (LIST_READERS, lambda s: ("GET", f"/api/emergencies/{s['emergency']()}", {})),
    "end an emergency": ({"admin"}, lambda s: ("POST", f"/api/emergencies/{s['emergency']()}/end", {"json": {}})),
    "check in": (LIST_ACTORS, lambda s: ("POST", f"/api/emergencies/{s['emergency']()}/checkins", {"json": {
        "client_id": f"c{next(UPLOADS)}", "grid_code": s["my_grid"]}})),
    "set a grid's status": (LIST_ACTORS, lambda s: ("POST", f"/api/emergencies/{s['emergency']()}/grids/{s['my_grid']}/status",
                                                    {"json": {"status": "affected", "note": f"n{next(UPLOADS)}"}})),
    "emergency board": (LIST_READERS, lambda s: ("GET", f"/api/emergencies/{s['emergency']()}/board", {})),
    "resources near a grid": (LIST_READERS, lambda s: ("GET", f"/api/emergencies/{s['emergency']()}/grids/{s['my_grid']}/"
                                                       "resources", {})),
    "emergency map": (LIST_READERS, lambda s: ("GET", f"/api/emergencies/{s['emergency']()}/map", {})),
    "emergency report": (LIST_READERS, lambda s: ("GET", f"/api/emergencies/{s['emergency']()}/report", {})),
    "start a campaign": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/campaigns", {"json": {
        "name": f"敲门 {next(UPLOADS)}", "deadline": "2099-01-01T00:00:00Z"}})),
    "campaigns": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/campaigns", {})),
    "campaign progress": (LIST_READERS, lambda s: ("GET", f"/api/campaigns/{s['campaign']()}/progress", {})),
    "campaign targets": (LIST_READERS, lambda s: ("GET", f"/api/campaigns/{s['campaign']()}/grids/{s['my_grid']}/targets",
                                                  {})),
    "knock on a door": (LIST_ACTORS, lambda s: ("POST", f"/api/campaign-targets/{s['target']()}/knocks", {"json": {
        "outcome": "visited", "client_id": f"k{next(UPLOADS)}"}})),
    "blow the whistle": ({"admin"}, lambda s: ("POST", "/api/whistles", {"json": {
        "incident": s["report"](), "departments": ["SZ"]}})),
    "a whistle": (LIST_READERS, lambda s: ("GET", f"/api/whistles/{s['whistle']()}", {})),
    "a department answers a whistle": ({"handler", "admin"}, lambda s: (
        "POST", f"/api/whistles/{s['whistle']()}/departments/SZ/acknowledge", {})),
    "whistle scorecard": (LIST_READERS, lambda s: ("GET", f"/api/territories/{MONACO}/whistles/scorecard", {})),
    "import a 双报到 sheet": ({"admin"}, lambda s: ("POST", f"/api/territories/{MONACO}/registrations/import", {
        "files": {"file": ("r.csv", (f"姓名,类型,经度,纬度\n党员 {next(UPLOADS)},党员,{s['my_point'][0]},{s['my_point'][1]}\n"
                                     ).encode("utf-8"), "text/csv")}})),
})
DRAFT_READERS = PLANNERS | {"viewer", "worker", "handler", "other_handler", "apikey"}
for _tail in ("", "/state", "/units", "/grid-stats", "/edits", "/validate", "/diff", "/report", "/duties"):
    ENDPOINTS[f"draft {_tail or 'metadata'}"] = (
        DRAFT_READERS, lambda s, tail=_tail: ("GET", f"/api/plans/{s['draft']()[0]}{tail}", {}))
# the administrator of every territory may do whatever Monaco's administrator may
for _name, (_allowed, _make) in list(ENDPOINTS.items()):
    if "admin" in _allowed:
        ENDPOINTS[_name] = (_allowed | {"global_admin"}, _make)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_role_matrix(site, endpoint: str) -> None:
    allowed, make = ENDPOINTS[endpoint]
    tokens = site["fresh_tokens"]() if endpoint == "sign out" else None  # keep the shared ones alive
    for role in sorted(ROLES, key=lambda r: r in allowed):  # the refusals first, on an untouched database
        method, url, kwargs = make(site)
        before = fingerprint(site)
        with site["engine"].connect() as conn:
            last_audit = conn.execute(sa.text("SELECT COALESCE(max(id), 0) FROM audit_log")).scalar()
        answer = call(site, role, method, url, tokens=tokens, **kwargs)
        if role in allowed:
            assert 200 <= answer.status_code < 300, (endpoint, role, answer.status_code, answer.text[:300])
            if method != "GET" and endpoint != "supervision pass":  # every write is in the audit log
                with site["engine"].connect() as conn:
                    rows = conn.execute(sa.text("SELECT actor, before, after FROM audit_log WHERE id > :i"),
                                        {"i": last_audit}).all()
                actor = "system" if role == "apikey" else role
                assert any(r.actor == actor and r.after for r in rows), (endpoint, role, rows)
                if endpoint == "edit draft":
                    entry = next(r for r in rows if r.actor == actor)
                    code = site["my_grid"]
                    assert entry.after["grids"][code]["worker"] == "赵六" and entry.before["grids"][code]["worker"] != "赵六"
        else:
            expected = 401 if role == "anonymous" else 403
            assert answer.status_code == expected, (endpoint, role, answer.status_code, answer.text[:300])
            assert fingerprint(site) == before, (endpoint, role, "changed the database")


def test_my_grids_are_the_workers_grids(site) -> None:
    mine = {role: call(site, role, "GET", f"/api/territories/{MONACO}/my-grids").json()
            for role in ("worker", "viewer", "admin", "global_admin", "stranger")}
    assert mine["worker"] == {"territory": MONACO, "grids": [site["my_grid"]], "administrator": False}
    assert mine["viewer"]["grids"] == mine["stranger"]["grids"] == [] and not mine["viewer"]["administrator"]
    assert mine["admin"]["administrator"] and mine["global_admin"]["administrator"]


def test_contacts_only_for_admins_and_the_routed_department(site) -> None:
    public_id = site["report"](contact="13912345678")
    seen = {}
    for role in ("viewer", "worker", "handler", "planner", "admin", "global_admin", "apikey"):
        answer = call(site, role, "GET", f"/api/incidents/{public_id}")
        assert answer.status_code == 200, (role, answer.text)
        seen[role] = answer.json().get("reporter_contact")
        listed = call(site, role, "GET", "/api/incidents").json()
        assert public_id in [i["public_id"] for i in listed]
        assert ("13912345678" in json.dumps(listed)) == (role in ("handler", "admin", "global_admin")), role
    assert seen == {"viewer": None, "worker": None, "handler": "13912345678", "planner": None,
                    "admin": "13912345678", "global_admin": "13912345678", "apikey": None}
    # the other department's handler does not even see it; public endpoints never show contacts
    assert call(site, "other_handler", "GET", f"/api/incidents/{public_id}").status_code == 403
    assert public_id not in json.dumps(call(site, "other_handler", "GET", "/api/incidents").json())
    for url in ("/collections/incidents/items", f"/open311/v2/requests/{public_id}.json"):
        assert "13912345678" not in call(site, "anonymous", "GET", url).text


def test_api_keys_last_until_revoked(site) -> None:
    import os
    import subprocess
    import sys

    from gridmap.store import users

    env = {**os.environ, "GRIDMAP_DATABASE_URL": site["database_url"]}
    with site["engine"].begin() as conn:
        key = users.create_api_key(conn, "system", "hotline")
    site = {**site, "tokens": {**site["tokens"], "apikey": key}}
    listed = subprocess.run([sys.executable, "-m", "gridmap.cli", "apikey", "list"], env=env, capture_output=True,
                            text=True)
    assert "hotline" in listed.stdout and "no expiry" in listed.stdout
    assert call(site, "apikey", "GET", "/api/auth/me").json()["username"] == "system"
    with site["engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT last_used_at IS NOT NULL FROM auth_tokens WHERE name = 'hotline'")
                            ).scalar()
    revoked = subprocess.run([sys.executable, "-m", "gridmap.cli", "apikey", "revoke", "hotline"], env=env,
                             capture_output=True, text=True)
    assert revoked.returncode == 0, revoked.stderr
    assert call(site, "apikey", "GET", "/api/auth/me").status_code == 401


OPEN_EVEN_WHEN_CLOSED = {"/", "/tileMatrixSets", "/tileMatrixSets/{tms_id}", "/api/health", "/api/incident-categories", "/api/station-types", "/conformance",
                         "/open311/v2/discovery.{fmt}", "/open311/v2/services.{fmt}", "/open311/v2/services/{code}.{fmt}"}


def test_every_read_endpoint_follows_public_read(site) -> None:
    """With GRIDMAP_PUBLIC_READ=false every GET in the OpenAPI document needs a sign-in, except
    service metadata; with the default, published data is open and drafts still are not."""
    import dataclasses
    import re

    from gridmap.settings import Settings

    database_url = site["database_url"]
    closed = create_app(database_url=database_url, settings=dataclasses.replace(Settings.from_env(), public_read=False))
    anonymous = TestClient(closed)
    values = {"code": MONACO, "plan_id": "1", "collection_id": "grids", "feature_id": site["my_grid"], "z": "14",
              "x": "8529", "y": "5975", "public_id": site["report"](), "station_id": "1", "request_id": "x",
              "fmt": "json", "territory": MONACO, "tms_id": "WebMercatorQuad", "tile_matrix": "14",
              "tile_row": "5975", "tile_col": "8529", "name": "0" * 64 + ".png", "grid_code": site["my_grid"],
              "need_id": str(site["need"]()),
              "household_id": str(site["resident"]()[0]), "emergency_id": str(site["emergency"]()),
              "campaign_id": str(site["campaign"]()), "whistle_id": str(site["whistle"]())}
    paths = [p for p, ops in closed.openapi()["paths"].items() if "get" in ops]
    assert len(paths) > 40
    for path in paths:
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path.replace("services/{code}", "services/0101"))
        status = anonymous.get(url).status_code
        if path in OPEN_EVEN_WHEN_CLOSED:
            assert status == 200, (path, status)
        else:
            assert status == 401, (path, status)
    landing = anonymous.get("/", headers={"Accept": "text/html"})  # the page a browser gets lists no territory
    assert landing.status_code == 200 and "Fontvieille" not in landing.text and "登录后才能查看辖区" in landing.text
    assert "Fontvieille" in TestClient(create_app(database_url=database_url)).get(
        "/", headers={"Accept": "text/html"}).text
    # a signed-in viewer reads again; the default deployment serves published data to anyone
    viewer = TestClient(closed, headers={"Authorization": f"Bearer {site['tokens']['viewer']}"})
    assert viewer.get("/collections/grids/items").status_code == 200
    assert viewer.get(f"/open311/v2/requests/{values['public_id']}.json").status_code == 200
    assert anonymous.get(f"/open311/v2/requests/{values['public_id']}.json",
                         params={"api_key": site["tokens"]["apikey"]}).status_code == 200
    public = TestClient(create_app(database_url=database_url))
    assert public.get("/collections/grids/items").status_code == 200
    assert public.get("/api/territories").status_code == 200


def test_first_admin_administers_territories_loaded_later(engine: sa.Engine, database_url: str, tmp_path) -> None:
    """``gridmap up``'s admin is the deployment's administrator: a territory loaded after it was
    created is administrable; an administrator of one territory only is still refused elsewhere."""
    from gridmap.services import planning
    from gridmap.services.bootstrap import ensure_admin
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import users
    from samples import signed_in_client

    load_demo(engine, ["yaan"])  # the deployment as first started
    password = ensure_admin(engine, tmp_path)
    assert password and ensure_admin(engine, tmp_path) is None  # once only
    load_demo(engine, ["monaco"])  # a territory loaded later
    summary = partition_territory(engine, MONACO)
    planning.publish(engine, summary.plan_id, version=None, actor="test")
    others = planning.new_draft(engine, MONACO, actor="someone")[0]  # someone else's draft, for reading

    client = TestClient(create_app(database_url=database_url))
    signed = client.post("/api/auth/token", data={"username": "admin", "password": password})
    assert signed.status_code == 200, signed.text
    client.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
    made = client.post(f"/api/territories/{MONACO}/drafts", json={})
    assert made.status_code == 201, made.text
    draft = made.json()["plan_id"]
    for plan_id in (draft, others):
        for tail in ("", "/grids", "/state"):
            answer = client.get(f"/api/plans/{plan_id}{tail}")
            assert answer.status_code == 200, (plan_id, tail, answer.text[:200])
    assert "draft" in {p["status"] for p in client.get(f"/api/territories/{MONACO}/history").json()}
    version = client.get(f"/api/plans/{draft}/state").json()["version"]
    assert client.post(f"/api/plans/{draft}/publish", json={"version": version}).status_code == 200
    assert client.get("/api/auth/me").json()["roles"] == [{"role": "admin", "territory": None, "everywhere": True}]
    with engine.connect() as conn:
        admin = users.user_for_token(conn, client.headers["Authorization"].split()[1])
        assert admin.roles == (("admin", None),)
        assert users.has_role(conn, admin, ("planner",), "980101") and not users.has_role(conn, admin, (), "123")
        children = set(conn.execute(sa.text("SELECT c.code FROM territories c JOIN territories p "
                                            "ON p.id = c.parent_id WHERE p.code = :c"), {"c": MONACO}).scalars())
        assert set(users.scopes_within(conn, admin, ("planner",), MONACO)) == children
        assert all(s.covers("980101001", None) for s in users.incident_scopes(conn, admin, ("viewer",)))

    # an administrator of Ya'an only: refused in Monaco, as before
    yaan_admin = signed_in_client(engine, database_url, "yaan_admin", "admin", "511800")
    assert yaan_admin.post(f"/api/territories/{MONACO}/drafts", json={}).status_code == 403
    assert yaan_admin.get(f"/api/plans/{others}/grids").status_code == 403
    assert yaan_admin.get(f"/api/plans/{others}").status_code == 403
    # an admin made by older versions (admin on the roots of that time) keeps its territories
    old_style = signed_in_client(engine, database_url, "old_admin", "admin", MONACO)
    assert old_style.get(f"/api/plans/{others}/grids").status_code == 200


def test_cli_grants_admin_everywhere(engine: sa.Engine, database_url: str, monkeypatch, capsys) -> None:
    import io
    import sys

    from gridmap import cli
    from gridmap.services.demo import load_demo
    from gridmap.store import users

    load_demo(engine, ["yaan"])
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)

    def gridmap(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    def everywhere() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT u.username FROM user_roles r JOIN users u ON u.id = r.user_id "
                                             "WHERE r.territory_id IS NULL AND r.role = 'admin' ORDER BY 1")).scalars())

    added = gridmap("user", "add", "root", "--role", "admin", "--everywhere", "--password-stdin",
                    stdin="long enough password\n")
    assert added[0] == 0, added[2]
    assert gridmap("user", "add", "ana", "--password-stdin", stdin="long enough password\n")[0] == 0
    for refused, expected in ((("user", "grant", "ana", "--role", "planner", "--everywhere"), "admin only"),
                              (("user", "grant", "ana", "--role", "admin", "--everywhere", "--territory", "511800"),
                               "not both"),
                              (("user", "add", "bo", "--everywhere", "--password-stdin"), "need --role")):
        status, _, err = gridmap(*refused)
        assert status == 1 and expected in err and len(err.strip().splitlines()) == 1, (refused, err)
    assert everywhere() == ["root"]
    assert gridmap("user", "grant", "ana", "--role", "admin", "--everywhere")[0] == 0
    assert gridmap("user", "grant", "ana", "--role", "admin", "--everywhere")[0] == 0  # again: no change
    assert everywhere() == ["ana", "root"]
    listed = {line.split()[0]: line for line in gridmap("user", "list")[1].splitlines()}
    assert "admin@everywhere/全部" in listed["root"] and "admin@everywhere/全部" in listed["ana"]
    with engine.begin() as conn:
        with pytest.raises(users.UserError, match="only admin"):
            users.grant(conn, "ana", "planner", None)
