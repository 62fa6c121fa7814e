"""What follows a publish: every answer about the *current* grids uses the newly published plan,
while each incident keeps the grid it was reported in.

The scenario is the one a planner runs: a new draft from the published Monaco plan, one unit (with
incidents in it) painted into the neighbouring grid, save, publish. Then every consumer of the
published plan is asked about that unit: the dashboard's choropleth and the incident map page,
one incident's answer, the OGC collection, Open311, exports and notebook reads, /api/locate, a new
report, station coverage and the vector tiles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services import incidents as incident_service
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from gridmap.store import features, frames, incident_stats, plans
from gridmap.store import incidents as incident_store
from samples import histogram_median, signed_in_client
from conftest import published_plan_id

MONACO = "980100"


@dataclass
class Moved:
    """The published plan before and after, the unit moved and the incidents inside it."""

    before: int
    after: int
    unit: int
    source: str       # the unit's grid before
    target: str       # the unit's grid after
    incidents: list[str]
    point: tuple[float, float]


def _scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


@pytest.fixture
def moved(monaco_published: sa.Engine) -> Moved:
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    plan_id = published_plan_id(monaco)
    incident_service.load_demo_incidents(monaco, MONACO, count=1500, seed=3)
    return move_one_unit(monaco, plan_id)


def move_one_unit(monaco: sa.Engine, published: int) -> Moved:
    """A new draft of the ``published`` plan with its unit holding the most incidents painted into
    the neighbouring grid of its community, published."""
    with monaco.connect() as conn:
        # the unit with the most incidents whose grid has a neighbour in the same community
        row = conn.execute(sa.text(
            "SELECT u.id AS unit, g.code AS source, n.code AS target, count(i.id) AS n FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id JOIN grids g ON g.id = pu.grid_id "
            "JOIN incidents i ON ST_Intersects(u.geom, i.geom) "
            "JOIN plan_units npu ON npu.plan_id = pu.plan_id JOIN units nu ON nu.id = npu.unit_id "
            "JOIN grids n ON n.id = npu.grid_id AND n.id <> g.id AND n.community_id = g.community_id "
            "AND n.kind = 'comprehensive' "
            "WHERE pu.plan_id = :p AND g.kind = 'comprehensive' AND ST_Intersects(u.geom, nu.geom) "
            "AND ST_Length(ST_Intersection(ST_Boundary(u.geom), ST_Boundary(nu.geom))) > 0 "
            "AND (SELECT count(*) FROM plan_units x WHERE x.grid_id = g.id) > 1 "
            "GROUP BY u.id, g.code, n.code ORDER BY count(i.id) DESC, u.id LIMIT 1"), {"p": published}).one()
        inside = conn.execute(sa.text(
            "SELECT i.public_id FROM incidents i JOIN units u ON u.id = :u WHERE ST_Within(i.geom, u.geom) "
            "ORDER BY i.public_id"), {"u": row.unit}).scalars().all()
        point = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units "
                                     "WHERE id = :u) s"), {"u": row.unit}).one()
    assert inside, "the chosen unit must hold incidents"
    draft, _ = planning.new_draft(monaco, MONACO, actor="test")
    edit = planning.apply_edits(monaco, draft, [{"op": "assign", "units": [row.unit], "grid": row.target}],
                                version=1, actor="test")
    published_now = planning.publish(monaco, draft, version=edit.version, actor="test")
    assert published_now["previous"] == published
    return Moved(published, draft, row.unit, row.source, row.target, list(inside), (point[0], point[1]))


def test_incidents_keep_their_reported_grid_and_follow_the_published_one(moved: Moved, monaco: sa.Engine) -> None:
    with monaco.connect() as conn:
        rows = incident_store.search(conn, public_ids=moved.incidents)
    assert {r["grid_code"] for r in rows} == {moved.target}
    assert {r["reported_grid_code"] for r in rows} == {moved.source}
    # the reported grid is the row of the plan published at the time, kept as history
    assert _scalar(monaco, "SELECT count(DISTINCT g.plan_id) FROM incidents i JOIN grids g ON g.id = i.grid_id "
                           "WHERE i.public_id = ANY(:ids)", ids=moved.incidents) == 1
    assert _scalar(monaco, "SELECT DISTINCT g.plan_id FROM incidents i JOIN grids g ON g.id = i.grid_id "
                           "WHERE i.public_id = ANY(:ids)", ids=moved.incidents) == moved.before


def test_choropleth_counts_every_incident_in_its_current_grid(moved: Moved, monaco: sa.Engine,
                                                            database_url: str) -> None:
    client = TestClient(create_app(database_url=database_url))
    fc = client.get(f"/api/territories/{MONACO}/incidents/choropleth").json()
    counts = {f["properties"]["grid_code"]: f["properties"]["incidents"] for f in fc["features"]}
    total = _scalar(monaco, "SELECT count(*) FROM incidents")
    assert sum(counts.values()) == total
    # each grid's count is the number of incidents its published shape holds (the routing rule:
    # a point on a shared border goes to the smaller code)
    with monaco.connect() as conn:
        direct = dict(conn.execute(sa.text(
            "SELECT code, count(*) FROM (SELECT DISTINCT ON (i.id) g.code FROM incidents i JOIN grids g "
            "ON ST_Intersects(g.geom, i.geom) WHERE g.plan_id = :p ORDER BY i.id, g.code) s GROUP BY code"),
            {"p": moved.after}).all())
    assert counts == {code: direct.get(code, 0) for code in counts}
    assert counts[moved.target] >= len(moved.incidents)
    # the page map of incidents draws the same numbers
    page = client.get(f"/maps/incidents?territory={MONACO}")
    assert page.status_code == 200
    drawn = [int(n) for n in __import__("re").findall(r'"incidents": (\d+)', page.text)]
    assert sum(drawn) == total


def test_every_reader_of_the_published_plan_sees_the_new_grid(moved: Moved, monaco: sa.Engine,
                                                             database_url: str) -> None:
    client = signed_in_client(monaco, database_url, "reader", "viewer", MONACO)
    one = client.get(f"/api/incidents/{moved.incidents[0]}").json()
    assert (one["grid_code"], one["reported_grid_code"]) == (moved.target, moved.source)
    items = client.get("/collections/incidents/items", params={"grid_code": moved.target, "limit": 1000}).json()
    assert set(moved.incidents) <= {f["properties"]["incident_id"] for f in items["features"]}
    assert client.get(f"/open311/v2/requests/{moved.incidents[0]}.json").json()[0]["service_notice"] \
        == f"grid {moved.target}"
    lon, lat = moved.point
    assert client.get("/api/locate", params={"lon": lon, "lat": lat}).json()["grid_code"] == moved.target
    grids = client.get("/collections/grids/items", params={"limit": 1000}).json()
    plan_codes = {f["properties"]["grid_code"] for f in client.get(f"/api/plans/{moved.after}/grids").json()["features"]}
    assert {f["properties"]["grid_code"] for f in grids["features"]} == plan_codes
    # the landing page and its territory list count the plans in use (the old one is history now)
    assert client.get("/").status_code == 200
    listed = {t["code"]: t["plans"] for t in client.get("/api/territories").json()}
    assert listed[MONACO] == 1
    with monaco.connect() as conn:
        ref = plans.find(conn, MONACO)
        exported = frames.incidents(conn, MONACO)
    assert ref.id == moved.after
    mine = exported[exported["incident_id"].isin(moved.incidents)]
    assert set(mine["grid_code"]) == {moved.target} and set(mine["reported_grid_code"]) == {moved.source}


def test_a_new_report_is_routed_by_the_new_plan(moved: Moved, monaco: sa.Engine, database_url: str) -> None:
    client = signed_in_client(monaco, database_url, "reporter", "worker", MONACO)
    lon, lat = moved.point
    answer = client.post("/api/incidents", json={"category_code": "0201", "lon": lon, "lat": lat,
                                                 "description": "after the publish"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["grid_code"] == body["reported_grid_code"] == moved.target


def test_station_coverage_and_tiles_follow_the_publish(moved: Moved, monaco: sa.Engine, database_url: str) -> None:
    from gridmap.services import stations

    assert stations.load_demo_stations(monaco, MONACO) > 0
    client = TestClient(create_app(database_url=database_url))
    coverage = client.get(f"/api/territories/{MONACO}/coverage").json()
    with monaco.connect() as conn:
        codes = set(conn.execute(sa.text("SELECT code FROM grids WHERE plan_id = :p"), {"p": moved.after}).scalars())
    assert {g["grid_code"] for g in coverage["grids"]} == codes
    # vector tiles: the URL carries the published version; the tile holding the moved unit draws
    # the new grid there
    tilejson = client.get("/tiles/grids/tilejson.json").json()
    with monaco.connect() as conn:
        stamp = features.published_stamp(conn)
    assert tilejson["tiles"][0].endswith(f"?v={stamp}")
    import math

    lon, lat = moved.point
    z = 16
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    response = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"v": stamp})
    assert response.status_code == 200 and "max-age=86400" in response.headers["cache-control"]
    decoded = mapbox_vector_tile.decode(response.content)
    drawn = {f["properties"]["grid_code"] for f in decoded["grids"]["features"]}
    assert moved.target in drawn and drawn <= codes
    stale = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"v": "old"})
    assert stale.headers["cache-control"] == "no-cache"


def test_choropleth_statistics_follow_the_publish(moved: Moved, monaco: sa.Engine) -> None:
    """Medians and overdue rates by current grid agree with pandas over the rows (by the new plan)."""
    import pandas as pd

    with monaco.connect() as conn:
        fc = incident_stats.choropleth(conn, MONACO, incident_stats.Filters())
        rows = pd.read_sql(sa.text(
            "SELECT g.code, (COALESCE(i.closed_at, now()) > i.due_at AND i.status <> 'rejected') AS late, "
            "CASE WHEN i.status = 'closed' THEN date_part('epoch', i.closed_at - i.reported_at) / 3600 END AS hours "
            "FROM incidents i JOIN grids g ON g.lineage = i.grid_lineage AND g.plan_id = :p"), conn,
            params={"p": moved.after})
    by_code = {f["properties"]["grid_code"]: f["properties"] for f in fc["features"]}
    expected = rows.groupby("code").agg(n=("late", "size"), late=("late", "mean"),
                                        hours=("hours", lambda h: histogram_median(h.dropna()) if h.notna().any() else None))
    for code, row in expected.iterrows():
        got = by_code[code]
        assert got["incidents"] == row["n"]
        assert got["overdue_rate"] == pytest.approx(row["late"], abs=0.0006)
        if not pd.isna(row["hours"]):
            assert got["median_hours"] == pytest.approx(row["hours"], abs=0.051)


def test_publishing_a_fresh_partition_keeps_unchanged_grids_and_reroutes_the_rest(monaco_built: sa.Engine) -> None:
    """A new partition with another seed: grids holding the same units keep their incidents
    without work; every other incident is routed again, none is lost."""
    monaco = monaco_built  # Monaco with its units built (conftest)
    first = partition_territory(monaco, MONACO)
    planning.publish(monaco, first.plan_id, version=None, actor="test")
    incident_service.load_demo_incidents(monaco, MONACO, count=800, seed=5)
    total = _scalar(monaco, "SELECT count(*) FROM incidents")
    second = partition_territory(monaco, MONACO, seed=7)
    answer = planning.publish(monaco, second.plan_id, version=None, actor="test")
    same = _scalar(monaco, "SELECT count(*) FROM grids a JOIN grids b ON a.lineage = b.lineage "
                           "WHERE a.plan_id = :a AND b.plan_id = :b", a=first.plan_id, b=second.plan_id)
    assert answer["incidents"]["adopted"] == same
    assert _scalar(monaco, "SELECT count(*) FROM incidents i JOIN grids g ON g.lineage = i.grid_lineage "
                           "AND g.plan_id = :p", p=second.plan_id) == total
    # and the bulk path gives the same answer as one lookup per incident
    with monaco.connect() as conn:
        wrong = conn.execute(sa.text(
            "SELECT count(*) FROM incidents i WHERE i.grid_lineage IS DISTINCT FROM (SELECT g.lineage FROM grids g "
            "WHERE g.plan_id = :p AND ST_Intersects(g.geom, i.geom) ORDER BY g.code LIMIT 1)"),
            {"p": second.plan_id}).scalar()
    assert wrong == 0


def test_bulk_rerouting_agrees_with_one_lookup_per_incident(monaco_built: sa.Engine, monkeypatch) -> None:
    monaco = monaco_built  # Monaco with its units built (conftest)
    monkeypatch.setattr(incident_service, "BULK_REROUTE_MIN", 0)
    first = partition_territory(monaco, MONACO)
    planning.publish(monaco, first.plan_id, version=None, actor="test")
    incident_service.load_demo_incidents(monaco, MONACO, count=800, seed=6)
    second = partition_territory(monaco, MONACO, seed=11)
    answer = planning.publish(monaco, second.plan_id, version=None, actor="test")
    assert answer["incidents"]["rerouted"] > 0
    with monaco.connect() as conn:
        wrong = conn.execute(sa.text(
            "SELECT count(*) FROM incidents i WHERE i.grid_lineage IS DISTINCT FROM (SELECT g.lineage FROM grids g "
            "WHERE g.plan_id = :p AND ST_Intersects(g.geom, i.geom) ORDER BY g.code LIMIT 1)"),
            {"p": second.plan_id}).scalar()
    assert wrong == 0


def test_tiles_are_kept_only_where_the_publish_stamp_versions_them(monaco_built, database_url: str) -> None:
    """A published grid tile names the publish stamp as its ETag: asked again with it, the answer
    is 304 with nothing drawn; after a publish it is drawn again. Stations and incidents change on
    their own: their tiles are never kept by a cache, whatever version is asked for."""
    import math

    from fastapi.testclient import TestClient

    from gridmap.api.app import create_app
    from gridmap.services import planning, stations
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import features

    made = partition_territory(monaco_built, MONACO)
    planning.publish(monaco_built, made.plan_id, version=None, actor="test")
    stations.create(monaco_built, MONACO, station_type="pharmacy", name="药房", lon=7.4236, lat=43.7306, actor="test")
    client = TestClient(create_app(database_url=database_url))
    with monaco_built.connect() as conn:
        stamp = features.published_stamp(conn)
    z = 15
    x = int((7.4236 + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(43.7306))) / math.pi) / 2 * 2**z)
    first = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"v": stamp})
    assert first.status_code == 200 and first.headers["etag"] == f'"{stamp}"'
    again = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"v": stamp}, headers={"If-None-Match": f'W/"{stamp}"'})
    assert again.status_code == 304 and again.content == b""
    ogc = client.get(f"/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}", headers={"If-None-Match": f'"{stamp}"'})
    assert ogc.status_code == 304
    draft, _ = planning.new_draft(monaco_built, MONACO, actor="test")
    planning.publish(monaco_built, draft, version=None, actor="test")  # a new stamp: drawn again
    after = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": f'"{stamp}"'})
    assert after.status_code == 200 and after.headers["etag"] != f'"{stamp}"'
    items = client.get("/collections/grids/items", params={"limit": 5})  # the OGC items likewise
    assert items.status_code == 200 and items.headers["etag"]
    held = client.get("/collections/grids/items", params={"limit": 5}, headers={"If-None-Match": items.headers["etag"]})
    assert held.status_code == 304
    other = client.get("/collections/grids/items", params={"limit": 6}, headers={"If-None-Match": items.headers["etag"]})
    assert other.status_code == 200 and other.headers["etag"] != items.headers["etag"]  # another page, another tag
    assert "etag" not in client.get("/collections/incidents/items", params={"limit": 5}).headers
    pharmacy = client.get(f"/tiles/stations/{z}/{x}/{y}.mvt", params={"v": stamp}, headers={"If-None-Match": f'"{stamp}"'})
    assert pharmacy.status_code == 200 and pharmacy.headers["cache-control"] == "no-store" and "etag" not in pharmacy.headers


def test_a_kept_tile_gives_way_to_the_next_publish(monaco_built, database_url: str, monkeypatch) -> None:
    """The server keeps a published plan's tiles by publish stamp: asked again, a tile is the
    same bytes (not drawn again); once a plan with another worker on that grid is published, the
    same tile URL draws the new worker."""
    import math

    from gridmap.store import features

    made = partition_territory(monaco_built, MONACO)
    planning.publish(monaco_built, made.plan_id, version=None, actor="test")
    client = TestClient(create_app(database_url=database_url))
    z, lon, lat = 15, 7.4236, 43.7306
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)

    def workers() -> dict[str, str | None]:
        answer = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
        assert answer.status_code == 200
        return {f["properties"]["grid_code"]: f["properties"].get("worker")
                for f in mapbox_vector_tile.decode(answer.content)["grids"]["features"]}

    before = workers()
    built = []
    drawn = features.tile
    monkeypatch.setattr(features, "tile", lambda *args, **kwargs: built.append(args) or drawn(*args, **kwargs))
    assert workers() == before and not built  # kept: the same tile, not drawn again
    draft, _ = planning.new_draft(monaco_built, MONACO, actor="test")
    code = sorted(before)[0]
    planning.apply_edits(monaco_built, draft, [{"op": "set", "grid": code, "worker": "新网格员"}],
                         version=None, actor="test")
    planning.publish(monaco_built, draft, version=None, actor="test")
    after = workers()
    assert len(built) == 1 and after[code] == "新网格员" and set(after) == set(before)


def test_the_choropleths_kept_outlines_give_way_to_the_next_publish(monaco_built: sa.Engine, database_url: str,
                                                                    monkeypatch) -> None:
    """The server keeps the choropleth's grid outlines by publish stamp: asked again, they are not
    read again (the figures are); after a publish that moves a unit between two grids, the same
    request draws the new plan's grids, each with its own outline, households and incidents."""
    summary = partition_territory(monaco_built, MONACO)
    planning.publish(monaco_built, summary.plan_id, version=None, actor="test")
    incident_service.load_demo_incidents(monaco_built, MONACO, count=300, seed=5)
    client = TestClient(create_app(database_url=database_url))
    url = f"/api/territories/{MONACO}/incidents/choropleth"
    first = client.get(url).json()
    read = []
    original = incident_stats.grid_outlines
    monkeypatch.setattr(incident_stats, "grid_outlines", lambda *a, **k: read.append(a) or original(*a, **k))
    assert client.get(url).json() == first and not read  # kept: the outlines are not read again
    report = incident_service.report(monaco_built, incident_service.Report("0101", 7.4236, 43.7306, "after the first map"),
                                     actor="test")
    again = {f["id"]: f["properties"]["incidents"] for f in client.get(url).json()["features"]}
    assert sum(again.values()) == sum(f["properties"]["incidents"] for f in first["features"]) + 1 and not read
    moved = move_one_unit(monaco_built, summary.plan_id)
    after = client.get(url).json()
    assert len(read) == 1  # a new stamp: the outlines of the new plan read once
    with monaco_built.connect() as conn:
        stored = {r.code: (json.loads(r.outline), r.households) for r in conn.execute(sa.text(
            "SELECT code, ST_AsGeoJSON(geom_display, 6, 0) AS outline, households FROM grids WHERE plan_id = :p"),
            {"p": moved.after})}
    drawn = {f["id"]: (f["geometry"], f["properties"]["households"]) for f in after["features"]}
    assert drawn == stored
    assert drawn[moved.target] != {f["id"]: (f["geometry"], f["properties"]["households"])
                                   for f in first["features"]}[moved.target]
    assert report["grid_code"] in again


def test_kept_outlines_follow_a_community_moved_or_renamed_without_a_publish(monaco_built: sa.Engine,
                                                                            database_url: str) -> None:
    """A community moved to another street (``territory import`` can change its parent) or renamed,
    with no publish: the street's choropleth draws the community's grids, each with its outline, and
    the new name, though the street's outlines were kept before."""
    summary = partition_territory(monaco_built, MONACO)
    planning.publish(monaco_built, summary.plan_id, version=None, actor="test")
    client = TestClient(create_app(database_url=database_url))
    street, district, moved_code = "980101900", "980101", "980101900006"
    url = f"/api/territories/{street}/incidents/choropleth"

    def parent(code: str, to: str) -> None:
        with monaco_built.begin() as conn:
            conn.execute(sa.text("UPDATE territories SET parent_id = (SELECT id FROM territories WHERE code = :to) "
                                 "WHERE code = :c"), {"c": code, "to": to})

    with monaco_built.connect() as conn:
        grids_of_moved = set(conn.execute(sa.text(
            "SELECT g.code FROM grids g JOIN territories c ON c.id = g.community_id "
            "WHERE g.plan_id = :p AND c.code = :c"), {"p": summary.plan_id, "c": moved_code}).scalars())
    assert grids_of_moved
    whole = {f["id"]: f["geometry"] for f in client.get(url).json()["features"]}
    parent(moved_code, district)
    without = client.get(url).json()  # kept for this stamp: the street without the community
    assert {f["id"] for f in without["features"]} == set(whole) - grids_of_moved
    parent(moved_code, street)
    with monaco_built.begin() as conn:
        conn.execute(sa.text("UPDATE territories SET name = '新名字社区' WHERE code = :c"), {"c": moved_code})
    back = client.get(url)
    assert back.status_code == 200
    drawn = {f["id"]: f for f in back.json()["features"]}
    assert {code: f["geometry"] for code, f in drawn.items()} == whole
    assert {drawn[code]["properties"]["community"] for code in grids_of_moved} == {"新名字社区"}


def test_kept_tiles_hold_one_stamp_within_their_bytes() -> None:
    """The server's kept tiles: the least recently asked for go past the byte limit, and every
    tile of an older stamp goes once one of a newer stamp is kept."""
    from gridmap.api.tiles import KeptTiles

    kept = KeptTiles(max_bytes=10)
    kept.put(("grids", "s1", 15, 0, 0), b"12345")
    kept.put(("grids", "s1", 15, 0, 1), b"12345")
    assert kept.get(("grids", "s1", 15, 0, 0)) == b"12345"  # now the most recently asked for
    kept.put(("grids", "s1", 15, 1, 1), b"123")  # 13 bytes: the least recently asked for goes
    assert kept.get(("grids", "s1", 15, 0, 1)) is None and kept.get(("grids", "s1", 15, 1, 1)) == b"123"
    kept.put(("grids", "s2", 15, 0, 0), b"")  # a publish: an empty tile of the new stamp
    assert kept.get(("grids", "s1", 15, 0, 0)) is None and kept.get(("grids", "s2", 15, 0, 0)) == b""
