"""Every refusal an edit can get, in Chinese and English: ``detail`` stays English (what clients
and the other tests read), ``detail_en`` repeats it and ``detail_zh`` says it in Chinese."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from samples import signed_in_client
from conftest import published_plan_id

MONACO = "980100"
FONTVIEILLE = "980101900001"
CJK = re.compile(r"[\u4e00-\u9fff]")


def bilingual(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail_en"] == body["detail"]
    assert CJK.search(body["detail_zh"]) and not CJK.search(body["detail"]), body
    return body


@pytest.fixture
def drafted(monaco_published: sa.Engine, database_url: str):
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    planner = signed_in_client(monaco, database_url, "planner", "planner", MONACO)
    draft = planner.post(f"/api/territories/{MONACO}/drafts", json={"source": "published"}).json()
    return monaco, planner, plan_id, draft["plan_id"]


def edit(client: TestClient, plan_id: int, version: int, *ops: dict, **extra):
    return client.post(f"/api/plans/{plan_id}/edits", json={"version": version, "operations": list(ops), **extra})


def test_edit_refusals_say_it_in_both_languages(drafted) -> None:
    engine, planner, published_id, plan_id = drafted
    with engine.connect() as conn:
        grid, foreign_unit, own_unit = conn.execute(sa.text(
            "SELECT g.code, (SELECT pu.unit_id FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "WHERE pu.plan_id = :p AND u.community_id <> g.community_id ORDER BY 1 LIMIT 1), "
            "(SELECT pu.unit_id FROM plan_units pu WHERE pu.grid_id = g.id ORDER BY 1 LIMIT 1) FROM grids g "
            "WHERE g.plan_id = :p ORDER BY g.code LIMIT 1"), {"p": plan_id}).one()

    # another community: the English detail as before, the operation named in both languages
    across = bilingual(edit(planner, plan_id, 1, {"op": "assign", "units": [foreign_unit], "grid": grid},
                            dry_run=True), 422)
    assert across["detail"].startswith("operation 1 (assign): ") and "never crosses a community boundary" in across["detail"]
    assert across["detail_zh"].startswith("第 1 项操作（分配）：") and "网格不能跨越社区边界" in across["detail_zh"]
    assert str(foreign_unit) in across["detail_zh"] and grid in across["detail_zh"]

    # a new grid holding units of two communities (a split grid painted across the boundary)
    mixed = bilingual(edit(planner, plan_id, 1, {"op": "assign", "units": [own_unit, foreign_unit],
                                                  "grid": grid + "9"}, dry_run=True), 422)
    assert "different communities" in mixed["detail"] and "分属不同社区" in mixed["detail_zh"]

    unknown = bilingual(edit(planner, plan_id, 1, {"op": "split", "grid": "999999999999999", "units": [own_unit]}), 422)
    assert "no grid 999999999999999" in unknown["detail"] and "没有网格 999999999999999" in unknown["detail_zh"]
    assert unknown["detail_zh"].startswith("第 1 项操作（拆分）：")

    everything = bilingual(edit(planner, plan_id, 1, {"op": "merge", "grids": [grid, grid]}), 422)
    assert "至少两个不同的网格编码" in everything["detail_zh"]

    missed = bilingual(edit(planner, plan_id, 1, {"op": "cut", "unit": own_unit, "line": {
        "type": "LineString", "coordinates": [[0.0, 0.0], [0.001, 0.001]]}}), 422)
    assert "第 1 项操作（切分单元）" in missed["detail_zh"]

    # a stale version: 409 with the edits saved since, in both languages
    assert edit(planner, plan_id, 1, {"op": "set", "grid": grid, "name": "一号"}).status_code == 200
    stale = bilingual(edit(planner, plan_id, 1, {"op": "set", "grid": grid, "name": "二号"}), 409)
    assert stale["your_version"] == 1 and stale["current_version"] == 2 and len(stale["changes"]) == 1
    assert "编辑版本已是 2" in stale["detail_zh"] and "重新载入" in stale["detail_zh"]

    # a published plan is not editable
    published = bilingual(edit(planner, published_id, 1, {"op": "set", "grid": grid, "name": "x"}), 409)
    assert "only drafts can be edited" in published["detail"] and "只有草稿可以编辑" in published["detail_zh"]

    nowhere = bilingual(edit(planner, 987654, 1, {"op": "set", "grid": grid, "name": "x"}), 404)
    assert nowhere["detail"] == "no plan with id 987654" and "987654" in nowhere["detail_zh"]


def test_access_refusals_say_it_in_both_languages(drafted, database_url: str) -> None:
    engine, planner, _, plan_id = drafted
    anonymous = TestClient(create_app(database_url=database_url))
    viewer = signed_in_client(engine, database_url, "viewer", "viewer", MONACO)
    local = signed_in_client(engine, database_url, "fontvieille", "planner", FONTVIEILLE)
    with engine.connect() as conn:
        grid, unit = conn.execute(sa.text(
            "SELECT a.code, pu.unit_id FROM grids a JOIN grids b ON b.plan_id = a.plan_id AND "
            "b.community_id = a.community_id AND b.code <> a.code JOIN plan_units pu ON pu.grid_id = b.id "
            "JOIN territories c ON c.id = a.community_id WHERE a.plan_id = :p AND c.code <> :f "
            "ORDER BY a.code, pu.unit_id LIMIT 1"), {"p": plan_id, "f": FONTVIEILLE}).one()
    move = {"op": "assign", "units": [unit], "grid": grid}

    signed_out = bilingual(edit(anonymous, plan_id, 1, move), 401)
    assert signed_out["detail"] == "sign in first (POST /api/auth/token)" and "请先登录" in signed_out["detail_zh"]
    forbidden = bilingual(edit(viewer, plan_id, 1, move), 403)
    assert "viewer may not edit plans in territory 980100" in forbidden["detail"]
    assert "无权在辖区 980100 编辑方案" in forbidden["detail_zh"] and "规划员" in forbidden["detail_zh"]
    publish = bilingual(viewer.post(f"/api/plans/{plan_id}/publish", json={"version": 1}), 403)
    assert "发布方案" in publish["detail_zh"]
    outside = bilingual(edit(local, plan_id, 1, move, dry_run=True), 403)
    assert "outside your planning area" in outside["detail"] and "不在您的规划范围" in outside["detail_zh"]
    assert grid in outside["detail_zh"] and FONTVIEILLE in outside["detail_zh"]

    expired = TestClient(create_app(database_url=database_url), headers={"Authorization": "Bearer nonsense"})
    token = bilingual(edit(expired, plan_id, 1, move), 401)
    assert "登录凭据无效或已过期" in token["detail_zh"]
    assert anonymous.post(f"/api/territories/{MONACO}/drafts", json={}).json()["detail_zh"].startswith("请先登录")


def test_every_refusal_carries_both_languages() -> None:
    """A refusal cannot be raised in one language only: both texts are written where it is raised."""
    from gridmap.services.edits import EditError
    from gridmap.store.plans import VersionConflict

    with pytest.raises(TypeError):
        EditError("english only")  # type: ignore[call-arg]
    refusal = EditError("english", "中文")
    assert refusal.zh == "中文" and str(refusal) == "english"
    conflict = VersionConflict(4, 1, 3, [{}, {}])
    assert str(conflict).startswith("plan 4 is at version 3, not 1") and "编辑版本已是 3" in conflict.zh
