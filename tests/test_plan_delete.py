"""Deleting a draft (`gridmap plan delete ID`, `DELETE /api/plans/{id}`): the draft goes with its
grids, assignment, edit log and merge results and the units made for it alone, in one audited
transaction; units another plan uses stay. Published and history plans are the record and are
refused in both languages. A save racing the deletion lands whole before it or finds no draft."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from gridmap.store import plans as plan_store
from gridmap.store import units as unit_store
from gridmap.store import users
from samples import signed_in_client
from test_stale_units import assert_same_plan, cut_in, plan_frames
from conftest import published_plan_id

MONACO = "980100"
GRIDMAP = [sys.executable, "-m", "gridmap.cli"]


def referencing(engine: sa.Engine, plan_id: int) -> dict[str, int]:
    """Rows of every table with a foreign key to ``plans`` that still name ``plan_id`` (read from
    the catalog, so a table added later is checked too)."""
    with engine.connect() as conn:
        keys = conn.execute(sa.text(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f' "
            "AND c.confrelid = 'plans'::regclass")).all()
        assert {t for t, _ in keys} >= {"grids", "plan_units", "plan_edits", "merge_crosswalk", "plan_conflicts",
                                        "grid_duties", "plans"}
        found = {f"{t}.{c}": conn.execute(sa.text(f'SELECT count(*) FROM "{t}" WHERE "{c}" = :p'), {"p": plan_id}
                                          ).scalar() for t, c in keys}
        found["plans.id"] = conn.execute(sa.text("SELECT count(*) FROM plans WHERE id = :p"), {"p": plan_id}).scalar()
    return {k: v for k, v in found.items() if v}


def orphans(engine: sa.Engine) -> int:
    """Units an edit or an old generation left that no plan uses: what a half-deleted draft leaves."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM units u WHERE (u.parent_id IS NOT NULL OR u.retired_at IS NOT NULL) "
            "AND NOT EXISTS (SELECT 1 FROM plan_units pu WHERE pu.unit_id = u.id)")).scalar()


def unit_ids(engine: sa.Engine, plan_id: int) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT unit_id FROM plan_units WHERE plan_id = :p"), {"p": plan_id}).scalars())


@pytest.fixture
def drafted(monaco_published: sa.Engine):
    """Monaco: v1 published; v2 a draft copied from it with a cut (pieces, revised neighbours).
    From the units as the first partition builds them (conftest's snapshot)."""
    monaco = monaco_published
    plan_id = published_plan_id(monaco)
    draft, _ = planning.new_draft(monaco, MONACO, actor="test")
    cut = cut_in(monaco, draft)
    assert cut.new_units and cut.replaced_units
    return monaco, plan_id, draft


def test_cli_deletes_a_draft_and_only_what_it_alone_used(drafted, database_url: str) -> None:
    engine, published, draft = drafted
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    copy, _ = planning.new_draft(engine, MONACO, source=draft, actor="test")  # shares the cut's units
    before = plan_frames(engine, published), plan_frames(engine, copy)
    made = unit_ids(engine, draft) - unit_ids(engine, published)  # the pieces and revisions of the cut
    assert made and made <= unit_ids(engine, copy)
    with engine.begin() as conn:  # a merge's results hang from the plan as well
        conn.execute(sa.text("INSERT INTO merge_crosswalk (plan_id, department, grid_ref, grid_code, area_share, "
                             "area_m2, households) VALUES (:p, 'zz', 'g1', '1', 1, 1, 1)"), {"p": draft})
        conn.execute(sa.text("INSERT INTO grid_duties (plan_id, grid_code, department, duty) VALUES "
                             "(:p, '1', 'zz', 'd')"), {"p": draft})

    done = subprocess.run([*GRIDMAP, "plan", "delete", str(draft)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"deleted draft plan 2 (id {draft}) of {MONACO}" in done.stdout and "1 saved edits" in done.stdout
    assert referencing(engine, draft) == {}
    assert made <= unit_ids(engine, copy)  # the copy still uses the cut's units: they stay
    assert_same_plan(engine, published, before[0])
    assert_same_plan(engine, copy, before[1])
    with engine.connect() as conn:
        parent = conn.execute(sa.text("SELECT parent_plan_id FROM plans WHERE id = :p"), {"p": copy}).scalar()
        audit = conn.execute(sa.text("SELECT actor, before, after FROM audit_log WHERE action = 'plan.delete'")).one()
    assert parent is None  # the copy loses only its link to the deleted draft
    assert audit.actor == "cli" and audit.before["version"] == 2 and audit.before["edits"] == 1
    assert audit.before["grids"] > 0 and audit.after["deleted"]

    # now the copy goes too, and with it the cut's units, which no plan uses any more
    done = subprocess.run([*GRIDMAP, "plan", "delete", str(copy)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM units WHERE id = ANY(:ids)"), {"ids": sorted(made)}).scalar()
    assert left == 0 and orphans(engine) == 0
    assert_same_plan(engine, published, before[0])

    # published and history plans are the record: refused, with the reason
    second, _ = planning.new_draft(engine, MONACO, actor="test")
    planning.publish(engine, second, version=None, actor="test")  # v1 is history now
    for plan_id, status in ((published, "history"), (second, "published")):
        refused = subprocess.run([*GRIDMAP, "plan", "delete", str(plan_id)], env=env, capture_output=True, text=True)
        assert refused.returncode == 1
        assert f"plan {plan_id} is {status}: only drafts can be deleted" in refused.stderr, refused.stderr
        assert referencing(engine, plan_id)["plans.id"] == 1
    missing = subprocess.run([*GRIDMAP, "plan", "delete", "99999"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "no plan with id 99999" in missing.stderr


def test_a_deleted_draft_takes_the_retired_units_only_it_used(monaco: sa.Engine) -> None:
    old = partition_territory(monaco, MONACO)  # a draft on the first generation of units
    kept = partition_territory(monaco, MONACO, rebuild_units=True)  # the next generation
    with monaco.connect() as conn:
        generations = conn.execute(sa.text("SELECT count(*) FILTER (WHERE retired_at IS NULL), "
                                           "count(*) FILTER (WHERE retired_at IS NOT NULL) FROM units")).one()
    assert generations[0] == generations[1] > 0
    result = planning.delete_draft(monaco, old.plan_id, actor="test")
    assert result["units_deleted"] == generations[1]
    with monaco.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM units WHERE retired_at IS NOT NULL")).scalar() == 0
    assert unit_ids(monaco, kept.plan_id) and orphans(monaco) == 0
    # deleting a draft never takes the territory's current units, even when no plan uses them
    planning.delete_draft(monaco, kept.plan_id, actor="test")
    with monaco.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar() == generations[0]
    assert not partition_territory(monaco, MONACO).units_built


def test_api_deletes_drafts_for_planners_only(drafted, database_url: str) -> None:
    engine, published, draft = drafted
    planner = signed_in_client(engine, database_url, "planner", "planner", MONACO)
    viewer = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    part = signed_in_client(engine, database_url, "part", "planner", "980101900001")  # one community's planner
    anonymous = TestClient(create_app(database_url=database_url))
    assert anonymous.delete(f"/api/plans/{draft}").status_code == 401
    assert viewer.delete(f"/api/plans/{draft}").status_code == 403
    refused = part.delete(f"/api/plans/{draft}")  # may edit its part of the draft, not delete the whole
    assert refused.status_code == 403 and "删除草稿" in refused.json()["detail_zh"]
    assert referencing(engine, draft)["plans.id"] == 1

    history = planner.delete(f"/api/plans/{published}")
    assert history.status_code == 409
    body = history.json()
    assert "only drafts can be deleted" in body["detail_en"] and "只能删除草稿" in body["detail_zh"]
    assert "已发布" in body["detail_zh"] and body["detail"] == body["detail_en"]

    gone = planner.delete(f"/api/plans/{draft}")
    assert gone.status_code == 204 and gone.content == b""
    assert referencing(engine, draft) == {} and orphans(engine) == 0
    assert planner.get(f"/api/plans/{draft}").status_code == 404
    again = planner.delete(f"/api/plans/{draft}")
    assert again.status_code == 404 and again.json()["detail_zh"]
    assert [p["id"] for p in planner.get(f"/api/territories/{MONACO}/plans").json()] == [published]
    with engine.connect() as conn:
        actor = conn.execute(sa.text("SELECT actor FROM audit_log WHERE action = 'plan.delete'")).scalar()
    assert actor == "planner"


def _planner_clients(engine: sa.Engine, database_url: str, n: int) -> list[TestClient]:
    with engine.begin() as conn:
        users.create_user(conn, "racer", "racing password")
        users.grant(conn, "racer", "planner", MONACO)
    clients = []
    for _ in range(n):
        client = TestClient(create_app(database_url=database_url))
        token = client.post("/api/auth/token", data={"username": "racer", "password": "racing password"}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        clients.append(client)
    return clients


def _cut_request(engine: sa.Engine, plan_id: int) -> dict:
    with engine.connect() as conn:
        unit = conn.execute(sa.text(
            "SELECT u.id, ST_XMin(u.geom) x0, ST_XMax(u.geom) x1, ST_Y(ST_PointOnSurface(u.geom)) y FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND ST_NumGeometries(u.geom) = 1 "
            "AND u.households > 20 ORDER BY u.area_m2 DESC OFFSET 3 LIMIT 1"), {"p": plan_id}).one()
        version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": plan_id}).scalar()
    pad = (unit.x1 - unit.x0) * 0.1
    line = {"type": "LineString", "coordinates": [[unit.x0 - pad, unit.y], [unit.x1 + pad, unit.y]]}
    return {"version": version, "operations": [{"op": "cut", "unit": unit.id, "line": line}]}


@pytest.mark.parametrize("first", ["edit", "delete"])
def test_a_save_racing_the_deletion_never_leaves_half_a_plan(drafted, database_url: str, monkeypatch,
                                                             first: str) -> None:
    """The edit holds the draft when the deletion comes (it waits, then deletes the edited draft
    whole), or the deletion holds it when the edit comes (the edit waits, then finds no draft: 404).
    Either way nothing of the draft is left: no grid, no assignment, no edit, no unit the cut made."""
    engine, published, draft = drafted
    before = plan_frames(engine, published)
    editor, deleter = _planner_clients(engine, database_url, 2)
    body = _cut_request(engine, draft)
    inside = threading.Event()
    answers: dict[str, object] = {}

    def holding(original):
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            inside.set()       # the transaction holds the draft's row now ...
            threading.Event().wait(1.5)  # ... long enough for the other request to arrive and wait
            return result
        return wrapper

    if first == "edit":
        monkeypatch.setattr(plan_store, "record_edit", holding(plan_store.record_edit))
    else:
        monkeypatch.setattr(unit_store, "collect_unused", holding(unit_store.collect_unused))

    def edit() -> None:
        answers["edit"] = editor.post(f"/api/plans/{draft}/edits", json=body)

    def delete() -> None:
        answers["delete"] = deleter.delete(f"/api/plans/{draft}")

    leader = threading.Thread(target=edit if first == "edit" else delete)
    leader.start()
    assert inside.wait(30), "the first request never got the draft"
    (delete if first == "edit" else edit)()
    leader.join(60)
    assert answers["delete"].status_code == 204, answers["delete"].text
    if first == "edit":
        assert answers["edit"].status_code == 200, answers["edit"].text
    else:
        assert answers["edit"].status_code == 404 and f"no plan with id {draft}" in answers["edit"].json()["detail"]
    assert referencing(engine, draft) == {}
    assert orphans(engine) == 0
    assert_same_plan(engine, published, before)
