"""The incident loop against real PostGIS: routing (inside, on a border, outside), due times,
duplicate suggestions, every workflow step with who may take it, the supervision pass, and
Open311 GeoReport v2 checked field by field and driven by a stock GeoReport client."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.incident_rules import default_categories
from gridmap.services.incidents import calendar_from_env
from gridmap.services import incidents as service
from gridmap.settings import Settings
from samples import serve, signed_in_client
from conftest import published_plan_id

MONACO = "980100"
FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
          "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
          "address", "address_id", "zipcode", "lat", "long", "media_url"}


@pytest.fixture
def loop(monaco_published: sa.Engine, database_url: str):
    """Monaco published, categories loaded, and people for every part of the loop."""
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    service.ensure_categories(monaco)
    people = {role: signed_in_client(monaco, database_url, role, role, MONACO)
              for role in ("admin", "handler", "worker", "viewer")}
    with monaco.connect() as conn:
        grid, lon, lat = conn.execute(sa.text(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM grids "
            "WHERE plan_id = :p AND kind = 'comprehensive' ORDER BY code LIMIT 1) s"), {"p": plan_id}).one()
    return monaco, people, {"grid": grid, "lon": lon, "lat": lat, "plan": plan_id}


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()


def report(client: TestClient, where: dict, category: str = "0201", **extra):
    body = {"category_code": category, "lon": where["lon"], "lat": where["lat"], "description": "垃圾堆在路边",
            "reporter_name": "王小明", "reporter_contact": "13900001111", "reporter_role": "grid_worker", **extra}
    return client.post("/api/incidents", json=body)


def test_report_is_routed_with_its_due_time(loop) -> None:
    engine, people, where = loop
    response = report(people["worker"], where)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["grid_code"] == where["grid"] and item["community_code"] == where["grid"][:12]
    assert item["street_code"] == where["grid"][:9]
    assert item["department_code"] == "HW" and item["status"] == "reported"  # 暴露垃圾 → 环卫
    category = next(c for c in default_categories() if c.code == "0201")
    reported = datetime.fromisoformat(item["reported_at"])
    assert datetime.fromisoformat(item["due_at"]) == category.due(reported, calendar_from_env())
    assert item["public_id"].startswith("GM") and item["possible_duplicates"] == []
    assert "reporter_contact" not in item and "13900001111" not in response.text  # a worker does not see contacts
    admin_view = people["admin"].get(f"/api/incidents/{item['public_id']}").json()
    assert admin_view["reporter_contact"] == "13900001111" and admin_view["events"][0]["action"] == "report"


def test_outside_every_grid_nothing_is_stored(loop) -> None:
    engine, people, where = loop
    before = count(engine)
    outside = report(people["worker"], {"lon": 7.0, "lat": 43.0})
    assert outside.status_code == 422 and "outside every published grid" in outside.json()["detail"]
    unknown = report(people["worker"], where, category="9999")
    assert unknown.status_code == 422 and "unknown category" in unknown.json()["detail"]
    assert report(people["worker"], {"lon": 200, "lat": 0}).status_code == 422
    assert report(people["viewer"], where).status_code == 403  # viewers read, they do not report
    assert people["viewer"].post("/api/incidents", json={"category_code": "0201", "lon": where["lon"],
                                                         "lat": where["lat"]}, headers={"Authorization": ""}
                                 ).status_code == 401
    assert "不在任何已发布的网格内" in outside.json()["detail_zh"] and "没有类别" in unknown.json()["detail_zh"]
    assert count(engine) == before


def test_a_report_kept_offline_keeps_the_time_it_was_seen(loop) -> None:
    """A report sent hours after it was made (a phone without network) is dated, and due, from
    when it was seen; a week-old or future time is refused in both languages and stores nothing."""
    from datetime import datetime, timedelta, timezone

    engine, people, where = loop
    seen = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    late = report(people["worker"], where, reported_at=seen.isoformat())
    now = report(people["worker"], where)
    assert late.status_code == 201 and now.status_code == 201, late.text
    late_at = datetime.fromisoformat(late.json()["reported_at"])
    assert late_at == seen
    assert datetime.fromisoformat(late.json()["due_at"]) <= datetime.fromisoformat(now.json()["due_at"])
    before = count(engine)
    for bad in (seen - timedelta(days=8), datetime.now(timezone.utc) + timedelta(hours=1)):
        refused = report(people["worker"], where, reported_at=bad.isoformat())
        assert refused.status_code == 422 and "7 天" in refused.json()["detail_zh"], refused.text
    assert count(engine) == before


def test_a_point_on_a_border_goes_to_one_grid(loop) -> None:
    engine, people, where = loop
    with engine.connect() as conn:
        a, b, lon, lat = conn.execute(sa.text(  # a vertex two grids share (units share exact vertices)
            "SELECT a.code, b.code, ST_X(v.geom), ST_Y(v.geom) FROM grids a JOIN grids b ON b.plan_id = a.plan_id "
            "AND a.code < b.code AND a.geom && b.geom, LATERAL ST_DumpPoints(a.geom) v WHERE a.plan_id = :p "
            "AND ST_Intersects(b.geom, v.geom) AND (SELECT count(*) FROM grids c WHERE c.plan_id = a.plan_id "
            "AND ST_Intersects(c.geom, v.geom)) = 2 ORDER BY a.code, b.code LIMIT 1"), {"p": where["plan"]}).one()
        both = conn.execute(sa.text("SELECT count(*) FROM grids WHERE plan_id = :p AND ST_Intersects(geom, "
                                    "ST_SetSRID(ST_Point(:x, :y), 4490))"), {"p": where["plan"], "x": lon, "y": lat}).scalar()
    assert both == 2  # really on the shared border
    before = count(engine)
    item = report(people["worker"], {"lon": lon, "lat": lat}).json()
    assert item["grid_code"] == min(a, b) and count(engine) == before + 1


def test_duplicates_within_250_m_of_the_same_category(loop) -> None:
    engine, people, where = loop
    first = report(people["worker"], where).json()
    near = {"lon": where["lon"] + 0.0005, "lat": where["lat"]}  # about 40 m east
    second = report(people["worker"], near).json()
    assert [d["public_id"] for d in second["possible_duplicates"]] == [first["public_id"]]
    assert 30 < second["possible_duplicates"][0]["distance_m"] < 50
    other = report(people["worker"], near, category="0101").json()
    assert other["possible_duplicates"] == []  # another category is not a duplicate
    with engine.connect() as conn:
        far = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids WHERE plan_id = :pl "
            "AND ST_Distance(geom::geography, ST_SetSRID(ST_Point(:x, :y), 4490)::geography) > 400 LIMIT 1) s"),
            {"pl": where["plan"], "x": where["lon"], "y": where["lat"]}).one()
    assert report(people["worker"], {"lon": far[0], "lat": far[1]}).json()["possible_duplicates"] == []
    rejected = people["admin"].post(f"/api/incidents/{second['public_id']}/transitions",
                                    json={"action": "reject", "duplicate_of": first["public_id"], "note": "重复"})
    assert rejected.status_code == 200 and rejected.json()["duplicate_of"] == first["public_id"]
    third = report(people["worker"], near).json()  # a closed/rejected case is no longer offered
    assert [d["public_id"] for d in third["possible_duplicates"]] == [first["public_id"]]


def test_the_whole_loop_with_who_may_do_what(loop) -> None:
    engine, people, where = loop
    public_id = report(people["worker"], where).json()["public_id"]

    def step(who: str, action: str, **extra):
        return people[who].post(f"/api/incidents/{public_id}/transitions", json={"action": action, **extra})

    assert step("handler", "file").status_code == 403  # the centre files, not a department
    assert step("admin", "claim").status_code == 409  # not dispatched yet
    conflict = step("admin", "close").json()
    assert "cannot close an incident that is reported" in conflict["detail"] and conflict["allowed"] == ["file", "reject"]
    assert "不能结案" in conflict["detail_zh"] and "立案、不予立案" in conflict["detail_zh"]
    refused = step("handler", "file").json()
    assert "不能对事件" in refused["detail_zh"] and "管理员" in refused["detail_zh"] and "may not file" in refused["detail"]
    assert step("admin", "file", note="属实，立案").status_code == 200
    assert step("admin", "dispatch").json()["status"] == "dispatched"
    moved = step("admin", "reassign", department="CG", note="改派城管")
    assert moved.status_code == 200 and moved.json()["department_code"] == "CG"
    assert step("admin", "reassign", department="CG").status_code == 409  # already there
    assert step("handler", "return", note="不属于本部门").json()["status"] == "filed"
    assert step("admin", "dispatch").status_code == 200
    assert step("handler", "claim").status_code == 200
    assert step("handler", "handle", note="已清运").status_code == 200
    assert step("worker", "send_back", note="仍有残留").json()["status"] == "claimed"
    assert step("handler", "handle", note="已彻底清理").status_code == 200
    assert step("viewer", "verify").status_code == 403
    assert step("worker", "verify", expected_status="claimed").status_code == 409  # stale view
    assert step("worker", "verify", expected_status="handled").status_code == 200
    closed = step("admin", "close", note="结案")
    assert closed.status_code == 200 and closed.json()["closed_at"]
    again = step("admin", "close")
    assert again.status_code == 409 and again.json()["detail_zh"] == "该事件为“已结案”，不能再办理"
    history = people["admin"].get(f"/api/incidents/{public_id}").json()["events"]
    assert [e["action"] for e in history] == ["report", "file", "dispatch", "reassign", "return", "dispatch", "claim",
                                             "handle", "send_back", "handle", "verify", "close"]
    assert history[1] == {**history[1], "actor": "admin", "from_status": "reported", "to_status": "filed",
                          "note": "属实，立案"}
    assert all(e["at"] for e in history)
    assert TestClient(create_app(database_url=str(engine.url.render_as_string(hide_password=False)))).post(
        f"/api/incidents/{public_id}/transitions", json={"action": "file"}).status_code == 401


def test_supervision_escalates_a_level_at_a_time(loop) -> None:
    engine, people, where = loop
    public_id = report(people["worker"], where, category="0502",  # gas: 2 calendar hours
                       attributes={"smell_now": "yes"}).json()["public_id"]
    with engine.connect() as conn:
        due = conn.execute(sa.text("SELECT due_at FROM incidents WHERE public_id = :p"), {"p": public_id}).scalar()
    assert service.escalate_overdue(engine, now=due - timedelta(minutes=1)) == []
    assert service.escalate_overdue(engine, now=due + timedelta(minutes=1)) == [{"public_id": public_id, "level": 1}]
    assert service.escalate_overdue(engine, now=due + timedelta(hours=2)) == []  # not yet a day later
    levels = [service.escalate_overdue(engine, now=due + timedelta(days=d, minutes=2)) for d in (1, 2, 3, 4)]
    assert [x[0]["level"] if x else None for x in levels] == [2, 3, 4, None]  # city is the top
    item = people["admin"].get(f"/api/incidents/{public_id}").json()
    assert item["escalation_level"] == 4 and item["supervised_at"]
    assert [e["detail"]["level"] for e in item["events"] if e["action"] == "escalate"] == [1, 2, 3, 4]
    assert people["admin"].get("/api/incidents", params={"overdue": "true"}).json() == []  # due in 2 h
    with engine.begin() as conn:  # two hours pass
        conn.execute(sa.text("UPDATE incidents SET due_at = now() - interval '1 minute' WHERE public_id = :p"),
                     {"p": public_id})
    overdue = people["admin"].get("/api/incidents", params={"overdue": "true"}).json()
    assert [i["public_id"] for i in overdue] == [public_id]
    assert people["worker"].post("/api/incidents/escalate").status_code == 403


@pytest.fixture
def open311(loop, database_url: str):
    engine, people, where = loop
    public = TestClient(create_app(database_url=database_url, settings=Settings.from_env({"GRIDMAP_OPEN311_PUBLIC": "true"})))
    closed = TestClient(create_app(database_url=database_url))
    return engine, people, where, public, closed


def test_open311_services(open311) -> None:
    _, _, _, public, _ = open311
    services = public.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} == {c.code for c in default_categories()}
    first = services[0]
    assert set(first) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert first["metadata"] is False and first["type"] == "realtime" and isinstance(first["service_code"], str)
    assert public.get(f"/open311/v2/services/{first['service_code']}.json").json() == {
        "service_code": first["service_code"], "attributes": []}
    asks = {s["service_code"] for s in services if s["metadata"]}
    assert asks == {c.code for c in default_categories() if c.attributes} >= {"0102", "0501"}
    fire = public.get("/open311/v2/services/0501.json").json()
    assert fire["service_code"] == "0501" and [a["code"] for a in fire["attributes"]] == ["hazards"]
    hazards = fire["attributes"][0]
    assert hazards == {**hazards, "variable": True, "datatype": "multivaluelist", "required": True, "order": 1}
    assert {"key": "fuel", "name": "堆放易燃物 Stored fuel or flammables"} in hazards["values"]
    xml_definition = ElementTree.fromstring(public.get("/open311/v2/services/0102.xml").content)
    assert xml_definition.tag == "service_definition"
    assert xml_definition.find("service_code").text == "0102"
    first_question = xml_definition.find("attributes/attribute")
    assert first_question.find("code").text == "cover_state" and first_question.find("required").text == "true"
    assert [v.find("key").text for v in first_question.findall("values/value")] == ["missing", "broken", "displaced"]
    missing = public.get("/open311/v2/services/9999.json")
    assert missing.status_code == 404 and missing.json() == [{"code": 404, "description": "no service 9999"}]
    xml = ElementTree.fromstring(public.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and len(xml.findall("service")) == len(services)
    assert xml.find("service/service_code").text == first["service_code"]


def test_a_category_asks_its_questions_through_every_door(open311) -> None:
    """The fire-hazard category asks which hazards were seen (required, several values): the answers
    come as Open311 form fields (``attribute[hazards][]`` once per value), as Open311 JSON and as
    the API's ``attributes``; each is stored as a list. A missing or wrong answer is refused before
    anything is stored, in both languages on the API."""
    engine, people, where, public, _ = open311
    form = [("service_code", "0501"), ("lat", str(where["lat"])), ("long", str(where["lon"])),
            ("description", "楼道堆放杂物"), ("attribute[hazards][]", "exit"), ("attribute[hazards][]", "fuel")]
    by_form = public.post("/open311/v2/requests.json", content=urlencode(form),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert by_form.status_code == 201, by_form.text
    by_json = public.post("/open311/v2/requests.json", json={
        "service_code": "0501", "lat": where["lat"], "long": where["lon"], "attribute": {"hazards": ["ebike"]}})
    assert by_json.status_code == 201, by_json.text
    by_api = report(people["worker"], where, category="0501", attributes={"hazards": ["wiring", "wiring"]})
    assert by_api.status_code == 201 and by_api.json()["attributes"] == {"hazards": ["wiring"]}
    stalls = report(people["worker"], where, category="0302", attributes={"stalls": "3"})
    assert stalls.status_code == 201 and stalls.json()["attributes"] == {"stalls": 3}  # a number, not text
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT public_id, attributes FROM incidents WHERE category_code = '0501'")).all())
    assert stored[by_form.json()[0]["service_request_id"]] == {"hazards": ["exit", "fuel"]}
    assert stored[by_json.json()[0]["service_request_id"]] == {"hazards": ["ebike"]}
    assert people["worker"].get(f"/api/incidents/{by_api.json()['public_id']}").json()["attributes"] == {
        "hazards": ["wiring"]}

    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    unanswered = public.post("/open311/v2/requests.json", data={
        "service_code": "0501", "lat": where["lat"], "long": where["lon"]})
    assert unanswered.status_code == 400 and "hazards (What was seen) is required" in unanswered.json()[0]["description"]
    wrong = public.post("/open311/v2/requests.json", data={
        "service_code": "0501", "lat": where["lat"], "long": where["lon"], "attribute[hazards][]": "dragons"})
    assert wrong.status_code == 400 and "dragons not among exit, fuel, wiring, ebike" in wrong.json()[0]["description"]
    refused = report(people["worker"], where, category="0302", attributes={"stalls": "many", "colour": "red"})
    body = refused.json()
    assert refused.status_code == 422 and "asks no question colour" in body["detail_en"]
    assert "没有问题 colour" in body["detail_zh"] and "stalls（摊位数量）：'many' 不是数字" in body["detail_zh"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == before  # nothing stored
    questions = {c["code"]: c["attributes"] for c in people["worker"].get("/api/incident-categories").json()}
    assert questions["0103"] == [] and questions["0302"][0]["description_zh"] == "摊位数量"
    # the same question twice in a form: both values kept, and refused for a single-value question
    mixed = [("service_code", "0501"), ("lat", str(where["lat"])), ("long", str(where["lon"])),
             ("attribute[hazards]", "exit"), ("attribute[hazards][]", "fuel")]
    both = public.post("/open311/v2/requests.json", content=urlencode(mixed),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert both.status_code == 201, both.text
    twice = [("service_code", "0502"), ("lat", str(where["lat"])), ("long", str(where["lon"])),
             ("attribute[smell_now]", "yes"), ("attribute[smell_now]", "no")]
    refused_twice = public.post("/open311/v2/requests.json", content=urlencode(twice),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused_twice.status_code == 400 and "give one value" in refused_twice.json()[0]["description"]
    assert report(people["worker"], where, category="0303", attributes={"plate": True}).status_code == 422  # no
    with engine.connect() as conn:  # true taken for 1, or for "True"
        assert conn.execute(sa.text("SELECT attributes FROM incidents WHERE public_id = :p"),
                            {"p": both.json()[0]["service_request_id"]}).scalar_one() == {"hazards": ["exit", "fuel"]}

    # an edited table is loaded again on demand (gridmap incidents categories --reload)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE incident_categories SET attributes = '[]'::jsonb WHERE code = '0501'"))
    assert public.get("/open311/v2/services/0501.json").json()["attributes"] == []
    service.ensure_categories(engine, reload=True)
    assert [a["code"] for a in public.get("/open311/v2/services/0501.json").json()["attributes"]] == ["hazards"]


def test_open311_requests_field_by_field(open311) -> None:
    engine, people, where, public, closed = open311
    form = {"service_code": "0201", "lat": where["lat"], "long": where["lon"], "description": "路口有垃圾",
            "email": "resident@example.org", "phone": "13800000000", "first_name": "丽", "last_name": "李",
            "address_string": "Avenue de Fontvieille", "media_url": "https://example.org/p.jpg"}
    refused = closed.post("/open311/v2/requests.json", data=form)
    assert refused.status_code == 401 and refused.json()[0]["code"] == 401  # no key: who are you?
    created = public.post("/open311/v2/requests.json", data=form)
    assert created.status_code == 201
    [answer] = created.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"} and "环卫" in answer["service_notice"]
    rid = answer["service_request_id"]
    [request] = public.get(f"/open311/v2/requests/{rid}.json").json()
    assert set(request) == FIELDS
    assert request["service_request_id"] == rid and request["status"] == "open" and request["status_notes"] == "reported"
    assert request["service_code"] == "0201" and request["service_name"] == "暴露垃圾 Exposed garbage"
    assert request["agency_responsible"] == "环卫 Sanitation" and request["description"] == "路口有垃圾"
    assert request["address"] == "Avenue de Fontvieille" and request["media_url"] == "https://example.org/p.jpg"
    assert abs(request["lat"] - where["lat"]) < 1e-9 and abs(request["long"] - where["lon"]) < 1e-9
    requested = datetime.fromisoformat(request["requested_datetime"])
    expected = datetime.fromisoformat(request["expected_datetime"])
    assert requested.tzinfo is not None and expected > requested
    category = next(c for c in default_categories() if c.code == "0201")
    assert expected == category.due(requested, calendar_from_env()).replace(microsecond=0)
    text = public.get("/open311/v2/requests.json").text + public.get(f"/open311/v2/requests/{rid}.xml").text
    assert "resident@example.org" not in text and "13800000000" not in text and "李" not in text

    assert [r["service_request_id"] for r in public.get("/open311/v2/requests.json",
                                                         params={"status": "open"}).json()] == [rid]
    # the location extension stock apps send: lat/long (and radius in metres, 500 by default)
    here = {"lat": where["lat"], "long": where["lon"]}
    assert [r["service_request_id"] for r in public.get("/open311/v2/requests.json",
                                                         params={**here, "radius": 30}).json()] == [rid]
    assert [r["service_request_id"] for r in public.get("/open311/v2/requests.json", params=here).json()] == [rid]
    away = {"lat": where["lat"] + 0.01, "long": where["lon"]}  # 1.1 km north
    assert public.get("/open311/v2/requests.json", params={**away, "radius": 1000}).json() == []
    assert [r["service_request_id"] for r in public.get("/open311/v2/requests.json",
                                                         params={**away, "radius": 1200}).json()] == [rid]
    for bad_query in ({"radius": 100}, {**here, "radius": "1e9"}, {**here, "radius": "x"}, {"lat": 91, "long": 0}):
        answer = public.get("/open311/v2/requests.json", params=bad_query)
        assert answer.status_code == 400 and answer.json()[0]["code"] == 400, bad_query
    assert public.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    people["admin"].post(f"/api/incidents/{rid}/transitions", json={"action": "reject", "note": "not ours"})
    assert public.get(f"/open311/v2/requests/{rid}.json").json()[0]["status"] == "closed"
    assert public.get("/open311/v2/requests.json", params={"status": "open"}).json() == []
    later = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert public.get("/open311/v2/requests.json", params={"start_date": later}).json() == []
    assert len(public.get("/open311/v2/requests.json", params={"end_date": later, "service_code": "0201"}).json()) == 1
    assert public.get("/open311/v2/requests.json", params={"service_request_id": f"{rid},nope"}).json()[0][
        "service_request_id"] == rid
    xml = ElementTree.fromstring(public.get(f"/open311/v2/requests/{rid}.xml").content)
    assert xml.tag == "service_requests" and xml.find("request/status").text == "closed"
    assert public.get("/open311/v2/requests/NOPE.json").status_code == 404
    bad = public.post("/open311/v2/requests.json", data={"service_code": "0201"})
    assert bad.status_code == 400 and "lat and long" in bad.json()[0]["description"]
    outside = public.post("/open311/v2/requests.json", data={**form, "lat": 43.0, "long": 7.0})
    assert outside.status_code == 400 and "outside every published grid" in outside.json()[0]["description"]
    assert public.get("/open311/v2/requests.json", params={"status": "pending"}).status_code == 400
    assert json.loads(public.get("/open311/v2/discovery.json").text)["endpoints"][0]["url"].endswith("/open311/v2/")


def test_open311_media_upload_is_checked_stored_once_and_served(open311, database_url: str, tmp_path) -> None:
    """A photo sent as the ``media`` file of a multipart request: a real PNG is stored once by its
    content and served back byte for byte as the request's media_url; text dressed as a PNG, or a
    photo above the limit, is refused and stores neither the report nor the file."""
    import dataclasses
    import io

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gridmap.services.media import MAX_MEDIA_BYTES

    engine, _, where, _, _ = open311
    settings = dataclasses.replace(Settings.from_env({"GRIDMAP_OPEN311_PUBLIC": "true"}), home=tmp_path)
    public = TestClient(create_app(database_url=database_url, settings=settings))
    picture = io.BytesIO()
    plt.imsave(picture, np.arange(64 * 48, dtype=float).reshape(48, 64), format="png")
    png = picture.getvalue()
    form = {"service_code": "0102", "lat": where["lat"], "long": where["lon"], "description": "井盖丢失",
            "attribute[cover_state]": "missing"}
    created = public.post("/open311/v2/requests.json", data=form, files={"media": ("photo.png", png, "image/png")})
    assert created.status_code == 201, created.text
    rid = created.json()[0]["service_request_id"]
    url = public.get(f"/open311/v2/requests/{rid}.json").json()[0]["media_url"]
    assert url.endswith(".png") and "/media/" in url
    served = public.get(url.split("testserver")[-1])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png" and served.content == png
    again = public.post("/open311/v2/requests.json", data=form, files={"media": ("same.png", png, "image/png")})
    assert public.get(f"/open311/v2/requests/{again.json()[0]['service_request_id']}.json").json()[0]["media_url"] == url
    folder = tmp_path / "media"
    assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 1  # stored once
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    fake = public.post("/open311/v2/requests.json", data=form, files={"media": ("x.png", b"<html>hi</html>", "image/png")})
    assert fake.status_code == 400 and "JPEG, PNG or WebP" in fake.json()[0]["description"]
    huge = png[:16] + b"\0" * MAX_MEDIA_BYTES
    big = public.post("/open311/v2/requests.json", data=form, files={"media": ("big.png", huge, "image/png")})
    assert big.status_code == 413
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == before
    assert len([p for p in folder.iterdir()]) == 1  # no stray or half-written file
    assert public.get("/media/" + "0" * 64 + ".png").status_code == 404
    assert public.get("/media/..%2F..%2Fetc%2Fpasswd").status_code == 404


@pytest.mark.browser  # a real HTTP server on loopback, like the browser tests
def test_a_stock_georeport_client_files_and_reads(open311, database_url: str) -> None:
    from civicbot.http import HttpTransport, RateLimiter
    from civicbot.open311 import CONFIRM_TOKEN, Open311Client, ValidationError
    from civicbot.registry import Endpoint

    engine, people, where, _, _ = open311
    token = people["worker"].headers["Authorization"].split()[1]
    with serve(database_url) as url:
        client = Open311Client(Endpoint(id="gridmap", name="gridmap", base_url=f"{url}/open311/v2", write=True,
                                        geo_scoped=True),  # the client then sends lat/long when given
                               transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0.0)))
        services = client.list_services()
        assert "0102" in {s["service_code"] for s in services}
        definition = client.get_service_definition("0102")
        assert [a["code"] for a in definition["attributes"]] == ["cover_state", "location"]
        with pytest.raises(ValidationError, match="required attribute 'cover_state' missing"):  # the client reads
            client.create_request("0102", dry_run=False, confirm=CONFIRM_TOKEN, api_key=token,  # our definition
                                  lat=where["lat"], lng=where["lon"], description="井盖丢失", validate_remote=True)
        sent = client.create_request("0102", dry_run=False, confirm=CONFIRM_TOKEN, api_key=token, lat=where["lat"],
                                     lng=where["lon"], description="井盖丢失", validate_remote=True,
                                     attributes={"cover_state": "broken", "location": "carriageway"})
        rid = sent.response[0]["service_request_id"]
        fetched = client.get_request(rid)
        assert fetched["service_request_id"] == rid and fetched["status"] == "open"
        assert fetched["agency_responsible"].startswith("市政") and fetched["expected_datetime"]
        assert rid in {r["service_request_id"] for r in client.list_requests(status="open")}
        assert rid in {r["service_request_id"] for r in client.list_requests(lat=where["lat"], lng=where["lon"])}
        assert rid not in {r["service_request_id"] for r in client.list_requests(lat=where["lat"] - 0.05,
                                                                                  lng=where["lon"])}
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT source, reporter_role, attributes FROM incidents WHERE public_id = :p"),
                           {"p": rid}).one()
    assert tuple(row) == ("open311", "staff", {"cover_state": "broken", "location": "carriageway"})
