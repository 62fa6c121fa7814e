"""平战结合 on real PostGIS with the small synthetic 雨城区: an administrator switches one community
into flood mode; the emergency category opens there (and only there); grid workers check in
(a retry kept once), a grid without a check-in goes to the community at the deadline and to the
street later; statuses, the board, a door-knocking campaign with a need raised at a door, the
whistle with a late department, the end, and the report's figures against what was done."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import DISTRICT
from gridmap import emergency
from gridmap.emergency import EmergencyRules

PASSWORD = "emergency test password"


def test_check_in_levels_schedule_and_timeline_rules() -> None:
    rules = EmergencyRules(checkin_minutes=30, street_after_minutes=15)
    due = datetime(2026, 12, 4, 8, 30, tzinfo=timezone.utc)
    minute = timedelta(minutes=1)
    assert emergency.checkin_level(due, None, due - minute, rules) == 0  # not yet due
    assert emergency.checkin_level(due, due - minute, due + 60 * minute, rules) == 0  # in time
    assert emergency.checkin_level(due, None, due + minute, rules) == 1  # missed: the community
    assert emergency.checkin_level(due, None, due + 15 * minute, rules) == 2  # still missing: the street
    assert emergency.checkin_level(due, due + 5 * minute, due + 60 * minute, rules) == 1  # late, came at level 1
    start = due - 30 * minute
    assert emergency.expected_share(start, start + 100 * minute, start + 25 * minute) == 0.25
    assert emergency.behind(10, 100, 0.25, rules) and not emergency.behind(16, 100, 0.25, rules)
    assert EmergencyRules().kind_of("flood") == "防汛"
    with pytest.raises(emergency.EmergencyError, match="unknown kind"):
        EmergencyRules().kind_of("台风")
    import pandas as pd

    changes = pd.DataFrame({"grid_code": ["A", "A", "B"], "status": ["affected", "cleared", "needs_support"],
                            "at": [start + 10 * minute, start + 50 * minute, start + 20 * minute]})
    line = emergency.status_timeline(changes, ["A", "B", "C"], start, start + 60 * minute, timedelta(minutes=30))
    assert [(t["normal"], t["affected"], t["needs_support"], t["cleared"]) for t in line] == \
        [(3, 0, 0, 0), (1, 1, 1, 0), (1, 0, 1, 1)]


def grids_of_a_community(engine: sa.Engine) -> dict:
    """A community of the district with at least two published comprehensive grids (and a point
    in each), and a point in a grid of another community."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.code, g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' JOIN territories c ON c.id = g.community_id "
            "WHERE g.kind = 'comprehensive' ORDER BY c.code, g.code")).all()
    by_community: dict[str, list] = {}
    for community, grid, lon, lat in rows:
        by_community.setdefault(community, []).append((grid, lon, lat))
    community = next(c for c, grids in by_community.items() if len(grids) >= 2)
    other = next(c for c in by_community if c != community)
    return {"community": community, "grids": by_community[community], "outside": by_community[other][0]}


@pytest.fixture
def site(district: sa.Engine, database_url: str):
    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services import incidents, staff
    from gridmap.store import users

    incidents.ensure_categories(district)
    place = grids_of_a_community(district)
    (grid_a, *_), (grid_b, *_) = place["grids"][:2]
    with district.begin() as conn:
        for name, role, extra in (("admin", "admin", {}), ("wang", "worker", {}), ("li", "worker", {}),
                                  ("viewer", "viewer", {}), ("yj", "handler", {"department": "YJ"}),
                                  ("mz", "handler", {"department": "MZ"})):
            users.create_user(conn, name, PASSWORD)
            users.grant(conn, name, role, DISTRICT, **extra)
        users.create_user(conn, "cw", PASSWORD)  # a worker whose role is on the community
        users.grant(conn, "cw", "worker", place["community"])
    for name, account, grid in (("王网格", "wang", grid_a), ("李网格", "li", grid_b)):
        person = staff.create(district, DISTRICT, actor="test", name=name, role="专职网格员", phone=None, staff_key=None)
        staff.assign(district, person["staff_id"], grid, actor="test", valid_from=date(2026, 1, 1))
        staff.update(district, person["staff_id"], {"username": account}, actor="test")
    client = TestClient(create_app(database_url=database_url))
    tokens = {n: client.post("/api/auth/token", data={"username": n, "password": PASSWORD}).json()["access_token"]
              for n in ("admin", "wang", "li", "viewer", "yj", "mz", "cw")}
    return {"engine": district, "client": client, "place": place, "a": grid_a, "b": grid_b,
            "as": lambda name: {"Authorization": f"Bearer {tokens[name]}"}}


def test_an_emergency_from_switch_on_to_its_report(site) -> None:
    from gridmap.services import emergencies, whistles

    client, as_, engine = site["client"], site["as"], site["engine"]
    place, grid_a, grid_b = site["place"], site["a"], site["b"]
    a_lon, a_lat = place["grids"][0][1:]
    began = datetime.now(timezone.utc) - timedelta(hours=2)  # entered after it began: the deadline is past
    body = {"kind": "flood", "reason": "河水超警戒水位", "communities": [place["community"]], "started_at": began.isoformat()}
    url = f"/api/territories/{DISTRICT}/emergencies"
    assert client.post(url, json=body, headers=as_("wang")).status_code == 403
    assert client.post(url, json={**body, "kind": "台风"}, headers=as_("admin")).status_code == 422
    assert client.post(url, json={**body, "communities": ["999999"]}, headers=as_("admin")).status_code == 422
    started = client.post(url, json=body, headers=as_("admin"))
    assert started.status_code == 201, started.text
    on = started.json()
    eid = on["id"]
    assert on["kind"] == "防汛" and on["kind_en"] == "flood" and {grid_a, grid_b} <= set(on["grids"])
    assert client.post(url, json=body, headers=as_("admin")).status_code == 409  # one at a time

    # the emergency category opens inside the area, and only there
    report = {"category_code": "9001", "lon": a_lon, "lat": a_lat, "crs": "4490", "description": "街道积水齐膝"}
    out_lon, out_lat = place["outside"][1:]
    refused = client.post("/api/incidents", json={**report, "lon": out_lon, "lat": out_lat}, headers=as_("wang"))
    assert refused.status_code == 422 and "emergency" in refused.text
    flooded = client.post("/api/incidents", json=report, headers=as_("wang"))
    assert flooded.status_code == 201, flooded.text
    made = flooded.json()
    due = datetime.fromisoformat(made["due_at"]) - datetime.fromisoformat(made["reported_at"])
    assert due == timedelta(minutes=30)

    # check-ins: wang for his own grid (from his staff assignment); a retry is kept once
    check = {"client_id": "phone-1", "lon": a_lon, "lat": a_lat, "at": (began + timedelta(minutes=12)).isoformat()}
    first = client.post(f"/api/emergencies/{eid}/checkins", json=check, headers=as_("wang"))
    assert first.status_code == 201, first.text
    assert [(g["grid_code"], g["stored"], g["late"]) for g in first.json()["grids"]] == [(grid_a, True, False)]
    again = client.post(f"/api/emergencies/{eid}/checkins", json=check, headers=as_("wang")).json()
    assert again["grids"][0]["stored"] is False
    assert client.post(f"/api/emergencies/{eid}/checkins", json=check, headers=as_("viewer")).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM emergency_checkins")).scalar_one() == 1
    # a worker whose role is on the community checks in for the district's emergency; made earlier
    # (kept offline), their check-in takes the place of the one that arrived first
    earlier = client.post(f"/api/emergencies/{eid}/checkins", headers=as_("cw"), json={
        "client_id": "cw-1", "grid_code": grid_a, "at": (began + timedelta(minutes=5)).isoformat()})
    assert earlier.status_code == 201, earlier.text
    assert earlier.json()["grids"][0]["first_check_in"] == (began + timedelta(minutes=5)).isoformat()

    # li misses the deadline: the community at the deadline, the street 15 minutes later, once each
    deadline = datetime.fromisoformat(on["checkin_due"])
    assert emergencies.sweep(engine, now=deadline - timedelta(minutes=1)) == []
    future = {"client_id": "f", "at": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}
    assert client.post(f"/api/emergencies/{eid}/checkins", json=future, headers=as_("wang")).status_code == 422
    missed = {(c["grid_code"], c["level"]) for c in emergencies.sweep(engine, now=deadline + timedelta(minutes=1))}
    assert (grid_b, 1) in missed and all(g != grid_a for g, _ in missed)
    assert emergencies.sweep(engine, now=deadline + timedelta(minutes=2)) == []
    later = {(c["grid_code"], c["level"]) for c in emergencies.sweep(engine, now=deadline + timedelta(minutes=16))}
    assert (grid_b, 2) in later
    late_check = client.post(f"/api/emergencies/{eid}/checkins", json={"client_id": "li-1", "grid_code": grid_b,
                                                                       "at": (deadline + timedelta(minutes=20)).isoformat()},
                             headers=as_("li"))
    assert late_check.json()["grids"][0]["late"] is True

    # statuses and the board
    assert client.post(f"/api/emergencies/{eid}/grids/{grid_a}/status", json={"status": "受影响", "note": "积水"},
                       headers=as_("wang")).json()["status"] == "affected"
    assert client.post(f"/api/emergencies/{eid}/grids/{grid_a}/status", json={"status": "bad"},
                       headers=as_("wang")).status_code == 422
    board = client.get(f"/api/emergencies/{eid}/board", headers=as_("viewer"))
    assert board.status_code == 200, board.text
    rows = {g["grid_code"]: g for g in board.json()["grids"]}
    assert rows[grid_a]["status"] == "affected" and rows[grid_a]["checkin"] == "on_time"
    assert rows[grid_a]["checked_in_by"] == "cw"
    assert rows[grid_a]["position"] == pytest.approx([a_lon, a_lat]) and rows[grid_a]["emergency_incidents"] == 1
    assert rows[grid_b]["checkin"] == "late" and rows[grid_b]["escalation_level"] == 2
    totals = board.json()["totals"]
    assert totals["grids"] == len(on["grids"]) and totals["checkin_on_time"] == 1 and totals["checkin_late"] == 1
    assert totals["status_affected"] == 1 and totals["checkin_missing"] == len(on["grids"]) - 2

    # a door-knocking campaign inside the emergency: a need raised at a door, linked
    campaign = client.post(f"/api/territories/{DISTRICT}/campaigns", headers=as_("admin"), json={
        "name": "防汛敲门", "purpose": "转移提醒", "emergency_id": eid,
        "deadline": (datetime.now(timezone.utc) + timedelta(hours=4)).isoformat(),
        "questions": [{"code": "people", "text_zh": "在家人数", "text_en": "People at home", "required": True}]})
    assert campaign.status_code == 201, campaign.text
    cid = campaign.json()["id"]
    targets = client.get(f"/api/campaigns/{cid}/grids/{grid_a}/targets", headers=as_("wang")).json()["features"]
    assert targets, "the grid has households or buildings to reach"
    knock_url = "/api/campaign-targets/{}/knocks"
    first_door, second_door = targets[0]["id"], targets[-1]["id"]
    assert client.post(knock_url.format(first_door), json={"outcome": "visited", "client_id": "k1"},
                       headers=as_("wang")).status_code == 422  # the required question unanswered
    visited = client.post(knock_url.format(first_door), headers=as_("wang"), json={
        "outcome": "issue_found", "client_id": "k1", "answers": {"people": "2"},
        "need": {"category": "助餐", "description": "独居老人需要送餐", "urgency": "high"}})
    assert visited.status_code == 201, visited.text
    assert visited.json()["need_id"] and visited.json()["stored"]
    retry = client.post(knock_url.format(first_door), headers=as_("wang"), json={
        "outcome": "issue_found", "client_id": "k1", "answers": {"people": "2"},
        "need": {"category": "助餐", "description": "独居老人需要送餐", "urgency": "high"}}).json()
    assert retry["stored"] is False and "need_id" not in retry  # nothing raised twice
    if second_door != first_door:
        assert client.post(knock_url.format(second_door), json={"outcome": "nobody_home", "client_id": "k2"},
                           headers=as_("wang")).status_code == 201
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM needs WHERE description = '独居老人需要送餐'")).scalar_one() == 1
    progress = client.get(f"/api/campaigns/{cid}/progress", headers=as_("viewer")).json()
    grid_progress = {g["grid_code"]: g for g in progress["grids"]}[grid_a]
    assert grid_progress["reached"] == 1 and grid_progress["issue_found"] == 1
    assert grid_progress["nobody_home"] == (1 if second_door != first_door else 0)
    assert progress["totals"]["targets"] == campaign.json()["targets"]
    assert [w["visitor"] for w in progress["workers"]] == ["wang"]

    # the whistle: YJ acknowledges and arrives in time, MZ never does
    blown = client.post("/api/whistles", headers=as_("admin"), json={
        "incident": made["public_id"], "departments": ["YJ", "MZ", "ZJ"], "ack_minutes": 10, "arrive_minutes": 30})
    assert blown.status_code == 201, blown.text
    wid = blown.json()["id"]
    assert blown.json()["emergency_id"] == eid
    assert client.post(f"/api/whistles/{wid}/departments/YJ/acknowledge", headers=as_("mz")).status_code == 403
    assert client.post(f"/api/whistles/{wid}/departments/YJ/acknowledge", headers=as_("yj")).status_code == 200
    arrived = client.post(f"/api/whistles/{wid}/departments/YJ/arrive", headers=as_("yj")).json()
    calls = {c["department_code"]: c for c in arrived["calls"]}
    assert calls["YJ"]["arrived_at"] and calls["MZ"]["acknowledged_at"] is None
    blown_at = datetime.fromisoformat(blown.json()["blown_at"])
    whistles.answer(engine, wid, "ZJ", "acknowledge", actor="zj", at=blown_at + timedelta(minutes=2))  # in time, never there
    assert {(c["department"], c["level"]) for c in whistles.sweep(engine, now=blown_at + timedelta(minutes=11))} \
        == {("MZ", 1)}
    assert {(c["department"], c["level"]) for c in whistles.sweep(engine, now=blown_at + timedelta(minutes=31))} \
        == {("MZ", 2), ("ZJ", 2)}  # ZJ straight to "not arrived": it was never late to acknowledge
    card = {d["department_code"]: d for d in client.get(f"/api/territories/{DISTRICT}/whistles/scorecard",
                                                        headers=as_("viewer")).json()["departments"]}
    assert card["YJ"]["arrived_on_time"] == 1 and card["YJ"]["on_time_share"] == 1.0
    assert card["MZ"]["arrived"] == 0 and card["MZ"]["escalated"] == 1
    assert card["ZJ"]["acknowledged_on_time"] == 1 and card["ZJ"]["arrived"] == 0

    # the end, and the report
    assert client.post(f"/api/emergencies/{eid}/end", json={"note": "水位回落"}, headers=as_("wang")).status_code == 403
    ended = client.post(f"/api/emergencies/{eid}/end", json={"note": "水位回落"}, headers=as_("admin"))
    assert ended.status_code == 200 and ended.json()["ended_at"]
    assert client.post(f"/api/emergencies/{eid}/end", json={}, headers=as_("admin")).status_code == 409
    assert client.post(f"/api/emergencies/{eid}/checkins", json={"client_id": "x"}, headers=as_("wang")).status_code == 409
    assert client.post("/api/incidents", json=report, headers=as_("wang")).status_code == 422  # closed again
    kept = client.post("/api/incidents", headers=as_("wang"), json={  # made during it on a phone offline, sent now
        **report, "description": "地下室进水", "reported_at": (began + timedelta(minutes=40)).isoformat()})
    assert kept.status_code == 201, kept.text
    result = client.get(f"/api/emergencies/{eid}/report", headers=as_("viewer")).json()
    assert result["ended"] and result["checkins"]["on_time"] == 1 and result["checkins"]["late"] == 1
    assert result["checkins"]["missing"] == len(on["grids"]) - 2
    assert result["checkins"]["escalated_street"] == result["checkins"]["missing"] + 1  # li's grid went as far
    assert result["incidents"]["total"] == 2 and result["incidents"]["emergency"] == 2
    assert [d["department_code"] for d in result["incidents"]["by_department"]] == ["YJ"]
    assert result["households"]["reached"] == 1 and result["households"]["targets"] == campaign.json()["targets"]
    assert result["whistles"]["whistles"] == 1
    statuses = result["statuses_over_time"]
    assert statuses[0]["normal"] == len(on["grids"]) and statuses[-1]["affected"] == 1
    kinds = [e["kind"] for e in result["timeline"]]
    ends = [e for e in result["timeline"] if e["kind"] == "end"]
    assert len(ends) == 1 and datetime.fromisoformat(ends[0]["at"]) == datetime.fromisoformat(result["emergency"]["ended_at"])
    assert kinds[0] == "start" and {"checkin", "checkin_missed", "status", "campaign", "knock",
                                                           "whistle", "whistle_acknowledge", "whistle_arrive",
                                                           "whistle_late"} <= set(kinds)


def test_the_drill_runs_end_to_end_through_the_api_and_its_report_agrees(district: sa.Engine, database_url: str,
                                                                         monkeypatch) -> None:
    """``gridmap drill`` on the Chinese demo district: every step through the HTTP API of a real
    server; the report's figures are those of what the drill did, and its records end up labelled
    synthetic. On a territory of real data it is refused."""
    from gridmap.api.loopback import loopback_server
    from gridmap.errors import Invalid
    from gridmap.services import drill
    from gridmap.store import layers

    plan = drill.prepare(district, DISTRICT, "flood", max_grids=12)
    assert 0 < len(plan.grids) <= 12
    with district.connect() as conn:  # the drill's grids are those along the water
        far = conn.execute(sa.text(
            "SELECT max(d) FROM (SELECT min(ST_Distance(f.geom::geography, g.geom::geography)) AS d FROM grids g "
            "JOIN plans p ON p.id = g.plan_id AND p.status = 'published' CROSS JOIN layer_features f JOIN layers l "
            "ON l.id = f.layer_id AND l.name = 'waterways' WHERE g.code = ANY(:g) GROUP BY g.code) x"),
            {"g": [g["grid_code"] for g in plan.grids]}).scalar_one()
    assert far <= drill.SCENARIOS["flood"]["within_m"]
    with loopback_server(database_url) as url:
        result = drill.run(url, plan, seed=3)
        again = drill.run(url, drill.prepare(district, DISTRICT, "flood", max_grids=12), seed=4)
    assert drill.agrees(result) == [] and drill.agrees(again) == []  # a second drill right after: each its own figures
    tally, report = result["tally"], result["report"]
    assert tally["on_time"] + tally["late"] + tally["missing"] == tally["grids"] == len(plan.grids)
    assert report["ended"] and report["incidents"]["emergency"] == tally["incidents"] > 0
    per_grid = report["checkins"]["per_grid"]
    assert all(g["escalation_level"] == 2 for g in per_grid if g["checked_in_at"] is None)  # twice supervised: the street
    assert all(g["escalation_level"] >= 1 for g in per_grid if g["checked_in_at"] and not g["on_time"])
    assert all(g["escalation_level"] == 0 for g in per_grid if g["on_time"])
    assert report["households"]["reached"] == tally["reached"] > 0
    by_department = {d["department_code"]: d for d in report["whistles"]["departments"]}
    assert (by_department["YJ"]["arrived_on_time"], by_department["MZ"]["acknowledged_on_time"],
            by_department["MZ"]["arrived"], by_department["ZJ"]["acknowledged"]) == (1, 1, 0, 0)
    assert by_department["ZJ"]["escalated"] == 1 and by_department["MZ"]["escalated"] == 1
    import gridmap.notebook as gm

    gm.connect(database_url)  # the notebook's reads of the drill
    board = gm.emergency_board(result["emergency_id"])
    assert board.crs.to_epsg() == 4490 and len(board) == tally["grids"] and board.geometry.notna().all()
    assert (board["checkin"] == "missing").sum() == tally["missing"]
    assert gm.emergency_report(result["emergency_id"])["checkins"]["late"] == tally["late"]
    labelled = drill.label_synthetic(district, plan, result["emergency_id"])
    assert labelled["incidents"] == tally["incidents"] and labelled["emergencies"] == 1
    with district.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE synthetic AND category_code LIKE '90%'")
                            ).scalar_one() == tally["incidents"]
    monkeypatch.setattr(layers, "marked_synthetic", lambda conn, territory: False)  # a real office's territory
    with pytest.raises(Invalid, match="real data"):
        drill.prepare(district, DISTRICT, "flood")
