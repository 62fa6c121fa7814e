"""A territory is called what it is: a village 村, a town 镇, a county 县, as its own name says,
where gridmap stores it at the community, street or district level (gridmap.geo.levels), on the
command line, the landing page and the planner's search."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from conftest import published_plan_id
from gridmap.geo.levels import level_name
from samples import signed_in_client

MONACO = "980100"


@pytest.mark.parametrize("level, name, said", [
    ("community", "白鹤村", ("村", "village")), ("community", "石桥村村委会", ("村", "village")),
    ("community", "滨江社区", ("社区", "community")), ("community", "Monaco-Ville", ("社区", "community")),
    ("community", None, ("社区", "community")), ("street", "城关镇", ("镇", "town")),
    ("street", "高庙乡", ("乡", "township")), ("street", "东城街道", ("街道", "street")),
    ("district", "洪雅县", ("县", "county")), ("district", "雨城区", ("区", "district")),
    ("district", "峨眉山市", ("县级市", "county-level city")), ("city", "雅安市", ("市", "city")),
    ("province", "四川省", ("province", "province")),
])
def test_a_territory_is_called_what_its_name_says(level, name, said) -> None:
    assert level_name(level, name) == said


def test_villages_and_towns_are_called_so_on_the_page_the_command_line_and_the_search(
        monaco_published: sa.Engine, database_url: str) -> None:
    engine = monaco_published
    plan_id = published_plan_id(engine)
    with engine.begin() as conn:  # one of Monaco's communities renamed as a village would be
        village = conn.execute(sa.text(
            "UPDATE territories SET name = '白鹤村' WHERE code = (SELECT min(t.code) FROM territories t "
            "JOIN grids g ON g.community_id = t.id WHERE g.plan_id = :p) RETURNING code"), {"p": plan_id}).scalar_one()
    from gridmap.api.app import create_app

    page = TestClient(create_app(database_url=database_url)).get("/", headers={"Accept": "text/html"}).text
    assert 'data-zh="村" data-en="village"' in page and 'data-zh="社区" data-en="community"' in page
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    listing = subprocess.run([sys.executable, "-m", "gridmap.cli", "territories"], env=env, capture_output=True,
                             text=True).stdout
    assert f"{village}  白鹤村  (village / 村)" in listing and "(community / 社区)" in listing
    client = signed_in_client(engine, database_url, "searcher", "viewer", MONACO)
    hits = client.get(f"/api/plans/{plan_id}/search", params={"q": "白鹤"}).json()["hits"]
    found = [h for h in hits if h["kind"] == "community"]
    assert found and found[0]["detail"] == village and found[0]["kind_names"] == ["村", "village"]
