"""Plan editing over the API against real PostGIS: drafts, every edit operation (and the invalid
ones), incremental statistics, versions and 409s, validation, diff, publish (atomic), history,
revert, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from gridmap.store import users
from samples import signed_in_client
from conftest import published_plan_id

MONACO = "980100"
FONTVIEILLE = "980101900001"


@pytest.fixture
def published(monaco_published: sa.Engine) -> tuple[sa.Engine, int]:
    """Monaco partitioned and the plan published."""
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    return monaco, plan_id


@pytest.fixture
def planner(published, database_url: str) -> TestClient:
    return signed_in_client(published[0], database_url, "planner", "planner", MONACO)


@pytest.fixture
def draft(planner: TestClient) -> dict:
    response = planner.post(f"/api/territories/{MONACO}/drafts", json={"source": "published"})
    assert response.status_code == 201, response.text
    return response.json()


def assignment(engine: sa.Engine, plan_id: int) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT pu.unit_id, g.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = :p"),
            {"p": plan_id}).all())


def grid_truth(engine: sa.Engine, plan_id: int, code: str) -> dict:
    """A grid's statistics recomputed from scratch from its units, independently of the edit code."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT sum(u.households) AS households, count(*) AS unit_count, sum(u.area_m2) AS area_m2, "
            "ST_NumGeometries(ST_Union(u.geom)) AS parts FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = :p AND g.code = :c"),
            {"p": plan_id, "c": code}).one()._mapping)


def two_grids(engine: sa.Engine, plan_id: int, *, touching: bool = True,
              not_in: str = "-") -> tuple[str, str, list[int]]:
    """Two comprehensive grids of one community that share a border (or do not), and the units of
    the second one that touch the first (or all of them)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.community_id = b.community_id "
            "AND a.code < b.code WHERE a.plan_id = :p AND a.kind = 'comprehensive' AND b.kind = 'comprehensive' "
            "AND (ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0) = :t "
            "AND a.code NOT LIKE :x || '%' ORDER BY a.code, b.code LIMIT 1"),
            {"p": plan_id, "t": touching, "x": not_in}).one()
        units = [r[0] for r in conn.execute(sa.text(
            "SELECT u.id FROM plan_units pu JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
            "JOIN grids a ON a.plan_id = g.plan_id AND a.code = :a WHERE pu.plan_id = :p AND g.code = :b "
            "AND (NOT :t OR ST_Length(ST_Intersection(ST_Boundary(u.geom), ST_Boundary(a.geom))) > 0) ORDER BY u.id"),
            {"p": plan_id, "a": rows[0], "b": rows[1], "t": touching})]
    return rows[0], rows[1], units


def edit(client: TestClient, plan_id: int, version: int, *ops: dict, **extra):
    return client.post(f"/api/plans/{plan_id}/edits", json={"version": version, "operations": list(ops), **extra})


def test_draft_is_a_copy_of_the_published_plan(published, draft) -> None:
    engine, published_id = published
    assert draft["status"] == "draft" and draft["version"] == 1
    assert assignment(engine, draft["plan_id"]) == assignment(engine, published_id)
    assert draft["summary"]["units"] == len(assignment(engine, published_id))


def test_move_returns_incremental_stats_that_match_a_recount(published, planner, draft) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    before = assignment(engine, plan_id)
    response = edit(planner, plan_id, 1, {"op": "assign", "units": touching[:1], "grid": a})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2 and not body["dry_run"]
    returned = {g["code"]: g for g in body["grids"]}
    assert set(returned) <= {a, b} and a in returned  # only the touched grids come back
    for code, stats in returned.items():
        truth = grid_truth(engine, plan_id, code)
        assert stats["households"] == truth["households"] and stats["unit_count"] == truth["unit_count"]
        assert abs(stats["area_m2"] - truth["area_m2"]) < 1e-6 * truth["area_m2"]
        assert stats["parts"] == truth["parts"] and 0 < stats["compactness"] <= 1
    after = assignment(engine, plan_id)
    assert after[touching[0]] == a
    assert {u for u in after if after[u] != before[u]} == {touching[0]}
    assert body["summary"]["households"] == draft["summary"]["households"]  # households conserved


def test_move_into_another_community_is_rejected_and_changes_nothing(published, planner, draft) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    with engine.connect() as conn:
        grid, foreign_unit = conn.execute(sa.text(
            "SELECT g.code, (SELECT pu.unit_id FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "WHERE pu.plan_id = :p AND u.community_id <> g.community_id LIMIT 1) FROM grids g "
            "WHERE g.plan_id = :p ORDER BY g.code LIMIT 1"), {"p": plan_id}).one()
    before = assignment(engine, plan_id)
    response = edit(planner, plan_id, 1, {"op": "assign", "units": [foreign_unit], "grid": grid})
    assert response.status_code == 422
    assert "never crosses a community boundary" in response.json()["detail"]
    assert assignment(engine, plan_id) == before
    assert planner.get(f"/api/plans/{plan_id}/state").json()["version"] == 1


def test_a_move_that_breaks_contiguity_is_allowed_but_flagged(published, planner, draft) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    a, b, units = two_grids(engine, plan_id, touching=False)
    response = edit(planner, plan_id, 1, {"op": "assign", "units": units[:1], "grid": a})
    assert response.status_code == 200
    stats = {g["code"]: g for g in response.json()["grids"]}
    assert stats[a]["parts"] >= 2
    report = planner.get(f"/api/plans/{plan_id}/validate").json()
    flagged = [p for p in report["problems"] if p["kind"] == "not_contiguous" and p["grid_code"] == a]
    assert flagged and flagged[0]["severity"] == "warning" and flagged[0]["bbox"]
    assert "不连续" in flagged[0]["message_zh"] and "not contiguous" in flagged[0]["message_en"]


def test_merge_and_split(published, planner, draft) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    a, b, _ = two_grids(engine, plan_id)
    total = grid_truth(engine, plan_id, a)["households"] + grid_truth(engine, plan_id, b)["households"]
    merged = edit(planner, plan_id, 1, {"op": "merge", "grids": [a, b], "into": a}).json()
    assert merged["removed"] == [b]
    assert {g["code"]: g["households"] for g in merged["grids"]} == {a: total}
    assert b not in set(assignment(engine, plan_id).values())

    members = [u for u, g in assignment(engine, plan_id).items() if g == a]
    split = edit(planner, plan_id, 2, {"op": "split", "grid": a, "units": members[:3]})
    assert split.status_code == 200, split.text
    new_code = split.json()["created"][0]
    assert new_code.startswith(a[:12]) and len(new_code) == len(a) and new_code not in (a, b)
    assert sorted(u for u, g in assignment(engine, plan_id).items() if g == new_code) == sorted(members[:3])
    assert grid_truth(engine, plan_id, a)["households"] + grid_truth(engine, plan_id, new_code)["households"] == total

    everything = edit(planner, plan_id, 3, {"op": "split", "grid": a, "units": [u for u, g in
                                                                               assignment(engine, plan_id).items() if g == a]})
    assert everything.status_code == 422 and "some but not all" in everything.json()["detail"]
    unknown = edit(planner, plan_id, 3, {"op": "merge", "grids": [a, "999999999999999"]})
    assert unknown.status_code == 422 and "no grid 999999999999999" in unknown.json()["detail"]


def test_cut_a_unit_by_a_line(published, planner, draft) -> None:
    engine, published_id = published
    plan_id = draft["plan_id"]
    with engine.connect() as conn:
        unit = conn.execute(sa.text(
            "SELECT u.id, u.households, u.area_m2, g.code, ST_XMin(u.geom) x0, ST_XMax(u.geom) x1, "
            "ST_Y(ST_PointOnSurface(u.geom)) y, ST_YMin(u.geom) y0, ST_YMax(u.geom) y1 FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id WHERE pu.plan_id = :p AND "
            "ST_NumGeometries(u.geom) = 1 AND u.households > 20 ORDER BY u.area_m2 DESC LIMIT 1"),
            {"p": plan_id}).one()
    pad = (unit.x1 - unit.x0) * 0.1
    line = {"type": "LineString", "coordinates": [[unit.x0 - pad, unit.y], [unit.x1 + pad, unit.y]]}
    response = edit(planner, plan_id, 1, {"op": "cut", "unit": unit.id, "line": line})
    assert response.status_code == 200, response.text
    pieces = response.json()["new_units"]["features"]
    assert len(pieces) >= 2
    assert sum(p["properties"]["households"] for p in pieces) == unit.households
    assert abs(sum(p["properties"]["area_m2"] for p in pieces) - unit.area_m2) < 0.5
    assert all(p["properties"]["grid_code"] == unit.code for p in pieces)
    with engine.connect() as conn:
        union_equals_parent = conn.execute(sa.text(
            "SELECT ST_Area(ST_SymDifference(ST_Union(c.geom), p.geom)) / ST_Area(p.geom) FROM units c "
            "JOIN units p ON p.id = c.parent_id WHERE p.id = :u GROUP BY p.geom"), {"u": unit.id}).scalar_one()
    assert union_equals_parent < 1e-9
    now = assignment(engine, plan_id)
    assert unit.id not in now and all(p["id"] in now for p in pieces)
    assert unit.id in assignment(engine, published_id)  # the published plan keeps the uncut unit

    miss = {"type": "LineString", "coordinates": [[unit.x0 - 1, unit.y0 - 1], [unit.x0 - 0.5, unit.y0 - 1]]}
    missed = edit(planner, plan_id, 2, {"op": "cut", "unit": pieces[0]["id"], "line": miss})
    assert missed.status_code == 422 and "does not cross" in missed.json()["detail"]
    inside = [[unit.x0 + (unit.x1 - unit.x0) * 0.45, unit.y], [unit.x0 + (unit.x1 - unit.x0) * 0.46, unit.y]]
    dangling = edit(planner, plan_id, 2, {"op": "cut", "unit": pieces[0]["id"],
                                          "line": {"type": "LineString", "coordinates": inside}})
    assert dangling.status_code == 422


def test_stale_version_gets_409_with_the_changes(published, planner, draft, database_url: str) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    colleague = signed_in_client(engine, database_url, "colleague", "planner", MONACO)
    assert edit(colleague, plan_id, 1, {"op": "assign", "units": touching[:1], "grid": a}).status_code == 200
    before = assignment(engine, plan_id)
    stale = edit(planner, plan_id, 1, {"op": "merge", "grids": [a, b]})
    assert stale.status_code == 409
    body = stale.json()
    assert body["your_version"] == 1 and body["current_version"] == 2
    assert body["changes"][0]["actor"] == "colleague" and a in body["changes"][0]["grids"]
    assert assignment(engine, plan_id) == before  # nothing overwritten
    assert edit(planner, plan_id, 2, {"op": "merge", "grids": [a, b]}).status_code == 200


def test_dry_run_previews_and_stores_nothing(published, planner, draft) -> None:
    engine, _ = published
    plan_id = draft["plan_id"]
    a, _, touching = two_grids(engine, plan_id)
    before = assignment(engine, plan_id)
    preview = edit(planner, plan_id, 1, {"op": "assign", "units": touching[:2], "grid": a}, dry_run=True)
    assert preview.status_code == 200 and preview.json()["dry_run"] and preview.json()["version"] == 1
    assert assignment(engine, plan_id) == before
    assert planner.get(f"/api/plans/{plan_id}/edits").json() == []


def test_validate_diff_publish_history_revert(published, planner, draft) -> None:
    engine, published_id = published
    plan_id = draft["plan_id"]
    first = planner.get(f"/api/plans/{plan_id}/validate").json()
    assert not [p for p in first["problems"] if p["kind"] == "coverage"]  # units tile every community
    a, b, touching = two_grids(engine, plan_id)
    assert edit(planner, plan_id, 1, {"op": "assign", "units": touching[:2], "grid": a}).status_code == 200
    diff = planner.get(f"/api/plans/{plan_id}/diff").json()
    assert diff["against"] == published_id and diff["units_moved"] == 2
    assert set(diff["changed"]) | set(diff["removed"]) == {a, b}
    assert {f["properties"]["change"] for f in diff["features"]["features"]} <= {"changed", "removed"}
    mine, theirs = diff["figures"]["plan"], diff["figures"]["against"]  # both plans' figures, side by side
    assert (mine["id"], theirs["id"]) == (plan_id, published_id)
    assert (mine["status"], theirs["status"]) == ("draft", "published")
    with engine.connect() as conn:
        grids_now = conn.execute(sa.text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": plan_id}).scalar_one()
    assert mine["grids"] == grids_now and mine["units"] == theirs["units"]
    assert 0 <= mine["in_band"] <= mine["comprehensive"] and mine["households_min"] <= mine["households_max"]

    assert planner.post(f"/api/plans/{plan_id}/publish", json={"version": 1}).status_code == 409  # stale
    done = planner.post(f"/api/plans/{plan_id}/publish", json={"version": 2})
    assert done.status_code == 200 and done.json()["previous"] == published_id
    history = {p["id"]: p for p in planner.get(f"/api/territories/{MONACO}/history").json()}
    assert history[plan_id]["status"] == "published" and history[published_id]["status"] == "history"
    assert history[published_id]["valid_to"] == history[plan_id]["valid_from"]
    assert planner.post(f"/api/plans/{plan_id}/edits", json={"version": 2, "operations": [
        {"op": "assign", "units": touching[:1], "grid": b}]}).status_code == 409  # published plans are read-only

    reverted = planner.post(f"/api/plans/{published_id}/revert", json={"publish": True})
    assert reverted.status_code == 201 and reverted.json()["published"]
    new_id = reverted.json()["plan_id"]
    assert assignment(engine, new_id) == assignment(engine, published_id)
    statuses = {p["id"]: p["status"] for p in planner.get(f"/api/territories/{MONACO}/history").json()}
    assert statuses[new_id] == "published" and statuses[plan_id] == "history"


def test_a_failure_mid_publish_leaves_the_published_plan_intact(published, draft) -> None:
    engine, published_id = published
    plan_id = draft["plan_id"]
    with engine.begin() as conn:  # make the second statement of the publish fail, after the first ran
        conn.execute(sa.text(
            "CREATE FUNCTION fail_publish() RETURNS trigger AS $$ BEGIN "
            "IF NEW.status = 'published' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF; RETURN NEW; END $$ "
            "LANGUAGE plpgsql"))
        conn.execute(sa.text(f"CREATE TRIGGER t_fail BEFORE UPDATE ON plans FOR EACH ROW WHEN (NEW.id = {plan_id}) "
                             "EXECUTE FUNCTION fail_publish()"))
    try:
        with pytest.raises(sa.exc.DBAPIError, match="disk full"):
            planning.publish(engine, plan_id, version=1, actor="test")
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, status FROM plans")).all())
            valid_to = conn.execute(sa.text("SELECT valid_to FROM plans WHERE id = :p"), {"p": published_id}).scalar()
        assert rows[published_id] == "published" and rows[plan_id] == "draft" and valid_to is None
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER t_fail ON plans"))
            conn.execute(sa.text("DROP FUNCTION fail_publish()"))


def test_who_may_do_what(published, draft, database_url: str) -> None:
    engine, published_id = published
    plan_id = draft["plan_id"]
    anonymous = TestClient(create_app(database_url=database_url))
    viewer = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    local = signed_in_client(engine, database_url, "fontvieille", "planner", FONTVIEILLE)
    a, _, touching = two_grids(engine, plan_id, not_in=FONTVIEILLE)
    move = {"op": "assign", "units": touching[:1], "grid": a}

    assert anonymous.get(f"/api/plans/{published_id}/grids").status_code == 200  # published: public
    assert anonymous.get(f"/api/plans/{plan_id}/grids").status_code == 401  # drafts: signed in
    assert viewer.get(f"/api/plans/{plan_id}/grids").status_code == 200
    assert edit(anonymous, plan_id, 1, move).status_code == 401
    assert edit(viewer, plan_id, 1, move).status_code == 403
    assert viewer.post(f"/api/plans/{plan_id}/publish", json={"version": 1}).status_code == 403
    assert anonymous.post(f"/api/territories/{MONACO}/drafts", json={}).status_code == 401

    # a community planner edits inside the community only
    with engine.connect() as conn:
        own, own_units = conn.execute(sa.text(
            "SELECT a.code, array_agg(pu.unit_id) FROM grids a JOIN grids b ON b.plan_id = a.plan_id AND "
            "b.community_id = a.community_id AND b.code <> a.code JOIN plan_units pu ON pu.grid_id = b.id "
            "JOIN territories c ON c.id = a.community_id WHERE a.plan_id = :p AND c.code = :c GROUP BY a.code "
            "ORDER BY a.code LIMIT 1"), {"p": plan_id, "c": FONTVIEILLE}).one()
    inside = edit(local, plan_id, 1, {"op": "assign", "units": own_units[:1], "grid": own})
    assert inside.status_code == 200, inside.text
    before = assignment(engine, plan_id)
    outside = edit(local, plan_id, 2, move)
    assert outside.status_code == 403 and "outside your planning area" in outside.json()["detail"]
    assert assignment(engine, plan_id) == before
    assert local.post(f"/api/plans/{plan_id}/publish", json={"version": 2}).status_code == 403


def test_tokens_expire_and_passwords_are_checked(published, database_url: str) -> None:
    engine, _ = published
    client = TestClient(create_app(database_url=database_url))
    with engine.begin() as conn:
        user_id = users.create_user(conn, "ana", "a long passphrase")
        users.grant(conn, "ana", "planner", MONACO)
        expired, _ = users.issue_token(conn, user_id, timedelta(seconds=-1))
        stored = conn.execute(sa.text("SELECT password_hash FROM users WHERE id = :u"), {"u": user_id}).scalar_one()
    assert stored.startswith("$argon2id$") and "a long passphrase" not in stored
    assert client.post("/api/auth/token", data={"username": "ana", "password": "wrong"}).status_code == 401
    assert client.post("/api/auth/token", data={"username": "nobody", "password": "x"}).status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    token = client.post("/api/auth/token", data={"username": "ana", "password": "a long passphrase"}).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    me = client.get("/api/auth/me", headers=auth).json()
    assert me["username"] == "ana" and me["roles"] == [{"role": "planner", "territory": MONACO}]
    assert client.post("/api/auth/logout", headers=auth).status_code == 204
    assert client.get("/api/auth/me", headers=auth).status_code == 401  # revoked
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text("SELECT action FROM audit_log WHERE table_name IN "
                                                      "('users', 'auth_tokens') ORDER BY id"))]
    assert actions.count("auth.failed") == 2 and "auth.token" in actions and "auth.logout" in actions


def test_reading_can_require_sign_in(published, database_url: str) -> None:
    from gridmap.settings import Settings

    engine, published_id = published
    closed = TestClient(create_app(database_url=database_url,
                                   settings=Settings.from_env({"GRIDMAP_PUBLIC_READ": "false"})))
    assert closed.get(f"/api/plans/{published_id}/grids").status_code == 401
    assert closed.get("/collections/grids/items").status_code == 401
    viewer = signed_in_client(engine, database_url, "v", "viewer", MONACO)
    viewer.app.state.settings = Settings.from_env({"GRIDMAP_PUBLIC_READ": "false"})
    assert viewer.get("/collections/grids/items").status_code == 200


def test_a_locked_grid_keeps_its_units_until_unlocked(published, planner, draft) -> None:
    """``set`` with ``locked``: no unit moves into or out of a locked grid (assign, merge, split)
    and none of its units is cut; a new draft keeps the lock; unlocking lets the same edit through."""
    engine, _ = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    before = assignment(engine, plan_id)
    locked = edit(planner, plan_id, 1, {"op": "set", "grid": a, "locked": True})
    assert locked.status_code == 200, locked.text
    grids = {f["properties"]["grid_code"]: f["properties"] for f in planner.get(f"/api/plans/{plan_id}/grids").json()["features"]}
    assert grids[a]["locked"] is True and grids[b]["locked"] is False
    version = locked.json()["version"]
    own = [u for u, g in before.items() if g == a]
    refusals = [
        {"op": "assign", "units": touching[:1], "grid": a},                    # into it
        {"op": "assign", "units": own[:1], "grid": b},                         # out of it
        {"op": "merge", "grids": [b, a], "into": b},                           # merged away
        {"op": "merge", "grids": [a, b], "into": a},                           # taking another grid in
        {"op": "cut", "unit": own[0], "line": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
    ]
    if len(own) > 1:
        refusals.append({"op": "split", "grid": a, "units": own[:1]})
    for op in refusals:
        refused = edit(planner, plan_id, version, op)
        assert refused.status_code == 422, (op, refused.text)
        body = refused.json()
        assert f"grid {a} is locked" in body["detail_en"] and f"网格 {a} 已锁定" in body["detail_zh"], body
    assert assignment(engine, plan_id) == before  # nothing moved
    with engine.connect() as conn:  # a cut of the next grid's unit along a line that starts on the locked side
        unit, locked_grid = (shapely.from_wkb(bytes(g)) for g in conn.execute(sa.text(
            "SELECT ST_AsBinary(u.geom), ST_AsBinary(g.geom) FROM units u, grids g WHERE u.id = :u "
            "AND g.plan_id = :p AND g.code = :a"), {"u": touching[0], "p": plan_id, "a": a}).one())
    middle = shapely.line_merge(shapely.intersection(unit.boundary, locked_grid.boundary)).interpolate(0.5, normalized=True)
    towards = np.array(unit.centroid.coords[0]) - np.array(middle.coords[0])
    towards /= np.hypot(*towards)
    reach = 2 * max(unit.bounds[2] - unit.bounds[0], unit.bounds[3] - unit.bounds[1])
    start, end = np.array(middle.coords[0]) - towards * 1e-5, np.array(middle.coords[0]) + towards * reach
    line = {"type": "LineString", "coordinates": [start.tolist(), end.tolist()]}
    crossing = edit(planner, plan_id, version, {"op": "cut", "unit": touching[0], "line": line})
    assert crossing.status_code == 422 and f"网格 {a} 已锁定" in crossing.json()["detail_zh"], crossing.text
    moved_elsewhere = edit(planner, plan_id, version, {"op": "assign", "units": touching[:1], "grid": b})
    assert moved_elsewhere.status_code == 200  # grids that are not locked are edited as ever
    version = moved_elsewhere.json()["version"]
    named = edit(planner, plan_id, version, {"op": "set", "grid": a, "name": "东区一格"})
    assert named.status_code == 200  # a lock holds the units, not the name
    version = named.json()["version"]

    copy_id, _ = planning.new_draft(engine, MONACO, actor="test", source=plan_id)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT locked FROM grids WHERE plan_id = :p AND code = :c"),
                            {"p": copy_id, "c": a}).scalar_one() is True

    unlocked = edit(planner, plan_id, version, {"op": "set", "grid": a, "locked": False},
                    {"op": "assign", "units": touching[:1], "grid": a})
    assert unlocked.status_code == 200, unlocked.text
    assert assignment(engine, plan_id)[touching[0]] == a


def test_notes_on_grids_and_units_are_kept_with_the_draft_and_shown_in_the_diff(published, planner, draft) -> None:
    engine, published_id = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    noted = edit(planner, plan_id, 1, {"op": "note", "grid": a, "text": "沿主干道划界，学校单列"},
                 {"op": "note", "unit": touching[0], "text": "小区整体保留"})
    assert noted.status_code == 200, noted.text
    listed = planner.get(f"/api/plans/{plan_id}/notes").json()["notes"]
    assert [(n["grid_code"], n["unit_id"], n["body"]) for n in listed] == [
        (a, None, "沿主干道划界，学校单列"), (None, touching[0], "小区整体保留")]
    assert listed[1]["grid_of_unit"] == b and all(n["author"] == "planner" for n in listed)
    diff = planner.get(f"/api/plans/{plan_id}/diff").json()
    assert [n["body"] for n in diff["notes"]] == ["沿主干道划界，学校单列", "小区整体保留"]
    version = noted.json()["version"]
    for bad in ({"op": "note", "grid": "999", "text": "x"}, {"op": "note", "unit": 10**9, "text": "x"},
                {"op": "note", "grid": a, "unit": touching[0], "text": "x"}, {"op": "note", "grid": a, "text": "   "},
                {"op": "note", "remove": 10**9}):
        refused = edit(planner, plan_id, version, bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail_zh"] != refused.json()["detail_en"]
    copy_id, _ = planning.new_draft(engine, MONACO, actor="test", source=plan_id)
    with engine.connect() as conn:
        copied = conn.execute(sa.text("SELECT body FROM plan_notes WHERE plan_id = :p ORDER BY id"), {"p": copy_id}).scalars().all()
    assert copied == ["沿主干道划界，学校单列", "小区整体保留"]
    removed = edit(planner, plan_id, version, {"op": "note", "remove": listed[0]["id"]})
    assert removed.status_code == 200
    assert [n["body"] for n in planner.get(f"/api/plans/{plan_id}/notes").json()["notes"]] == ["小区整体保留"]
    assert planner.get(f"/api/plans/{published_id}/diff", params={"against": published_id}).json()["notes"] == []


def test_compare_refuses_plans_of_another_territory_and_unreadable_drafts(published, planner, draft,
                                                                          database_url: str) -> None:
    """A comparison reads both plans: the other plan must be of the same territory, and readable
    by the caller (a draft is not public)."""
    engine, published_id = published
    with engine.connect() as conn:
        community = conn.execute(sa.text("SELECT code FROM territories WHERE level = 'community' ORDER BY code "
                                         "LIMIT 1")).scalar_one()
    elsewhere = partition_territory(engine, community).plan_id  # a draft of one community: another territory
    refused = planner.get(f"/api/plans/{draft['plan_id']}/diff", params={"against": elsewhere})
    assert refused.status_code == 422, refused.text
    assert "one territory" in refused.json()["detail_en"] and "同一辖区" in refused.json()["detail_zh"]
    anonymous = TestClient(create_app(database_url=database_url))
    peek = anonymous.get(f"/api/plans/{published_id}/diff", params={"against": draft["plan_id"]})
    assert peek.status_code == 401, peek.text  # the published plan is public, the draft it is compared with is not
    assert anonymous.get(f"/api/plans/{published_id}/diff", params={"against": 999999}).status_code == 404


def test_units_are_tagged_by_the_edit_version_so_a_reload_is_free_and_a_save_is_seen(
        published, planner, draft, database_url: str) -> None:
    """The planner's units carry an ETag naming the plan's edit version: asked again with it, the
    answer is 304 with no body; once an edit is saved the tag changes and the new assignment is
    served (never the kept copy). A draft's units stay private: asking with its tag but without
    the right to read drafts is refused, not answered from what the server kept."""
    import json

    engine, published_id = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    path = f"/api/plans/{plan_id}/units?simplify=0.5&decimals=6"

    def grid_of(body: bytes, unit: int) -> str:
        return next(f["properties"]["grid_code"] for f in json.loads(body)["features"] if f["id"] == unit)

    first = planner.get(path)
    assert first.status_code == 200 and first.headers["content-type"] == "application/geo+json"
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache" and grid_of(first.content, touching[0]) == b
    again = planner.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert planner.get(path, headers={"If-None-Match": "W/" + tag}).status_code == 304
    assert planner.get(path.replace("decimals=6", "decimals=7"), headers={"If-None-Match": tag}).status_code == 200

    assert edit(planner, plan_id, 1, {"op": "assign", "units": touching[:1], "grid": a}).status_code == 200
    after = planner.get(path, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag
    assert grid_of(after.content, touching[0]) == a
    assert json.loads(after.content)["features"] == [
        {**f, "properties": {**f["properties"], "grid_code": a if f["id"] == touching[0] else f["properties"]["grid_code"]}}
        for f in json.loads(first.content)["features"]]

    # asked again without a tag: the same bytes, from what the server kept (PostgreSQL not asked)
    from gridmap.store import features

    asked = []
    original = features.units_feature_collection

    def counting(*args, **kwargs):
        asked.append(kwargs)
        return original(*args, **kwargs)

    features.units_feature_collection = counting
    try:
        kept = planner.get(path)
        near = planner.get(path.replace("simplify=0.5", "simplify=0.501"))  # the same centimetre step
        assert asked == [] and kept.content == after.content and near.headers["etag"] == kept.headers["etag"]
        planner.get(path.replace("simplify=0.5", "simplify=0.52"))
        assert [a["simplify_m"] for a in asked] == [0.52]
    finally:
        features.units_feature_collection = original
    assert planner.get(path, headers={"If-None-Match": "*"}).status_code == 304
    # the plan's row written again (as a restore puts a plan back): another tag, never the kept one
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE plans SET lock_version = lock_version WHERE id = :p"), {"p": plan_id})
    assert planner.get(path, headers={"If-None-Match": kept.headers["etag"]}).status_code == 200

    stranger = TestClient(create_app(database_url=database_url))
    assert stranger.get(path, headers={"If-None-Match": after.headers["etag"]}).status_code in (401, 403)
    public = stranger.get(f"/api/plans/{published_id}/units?simplify=0.5&decimals=6")
    assert public.status_code == 200 and public.headers["cache-control"] == "public, no-cache"


def test_grids_and_report_are_tagged_by_the_edit_version(published, planner, draft, database_url: str) -> None:
    """A plan's grids (GeoJSON) and report carry the plan's version as their ETag: asked again
    with it, 304 and nothing read; after a saved edit, the new grids and report; a draft's stay
    private, a published plan's may be kept by a shared cache."""
    from gridmap.store import features

    engine, published_id = published
    plan_id = draft["plan_id"]
    a, b, touching = two_grids(engine, plan_id)
    # the report worked out for a version is kept in the plan's row: that write is a new row
    # version, so the tags read before it change once (a restored row must never match a kept tag)
    assert planner.get(f"/api/plans/{plan_id}/report").status_code == 200
    tags = {}
    for what in ("grids", "report"):
        first = planner.get(f"/api/plans/{plan_id}/{what}")
        assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
        tags[what] = first.headers["etag"]
        again = planner.get(f"/api/plans/{plan_id}/{what}", headers={"If-None-Match": tags[what]})
        assert again.status_code == 304 and again.content == b""
    assert tags["grids"] != tags["report"]
    original = features.grids_feature_collection
    features.grids_feature_collection = lambda *a, **k: (_ for _ in ()).throw(AssertionError("read again"))
    try:  # a 304 reads no grids
        assert planner.get(f"/api/plans/{plan_id}/grids", headers={"If-None-Match": tags["grids"]}).status_code == 304
    finally:
        features.grids_feature_collection = original
    import shapely.geometry

    def shapes() -> dict:
        return {f["properties"]["grid_code"]: shapely.geometry.shape(f["geometry"])
                for f in planner.get(f"/api/plans/{plan_id}/grids").json()["features"]}

    before = shapes()
    assert edit(planner, plan_id, 1, {"op": "assign", "units": touching[:1], "grid": a}).status_code == 200
    for what in ("grids", "report"):
        after = planner.get(f"/api/plans/{plan_id}/{what}", headers={"If-None-Match": tags[what]})
        assert after.status_code == 200 and after.headers["etag"] != tags[what]
    moved = shapes()
    assert moved[a].area > before[a].area and moved[b].area < before[b].area  # the new grids, not the kept ones
    public = TestClient(create_app(database_url=database_url)).get(f"/api/plans/{published_id}/grids")
    assert public.status_code == 200 and public.headers["cache-control"] == "public, no-cache"
