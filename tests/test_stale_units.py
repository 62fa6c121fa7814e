"""Units know what they were built from: a re-imported input layer, a changed community boundary
or changed unit rules make the next partition build a new generation of units for the communities
concerned; the old generation is retired, never changed, so published plans, history and drafts
keep their grids and units exactly. An unchanged territory reuses its units.

On the Monaco demo: the buildings layer is ``buildings`` of the root territory 980100.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from gridmap.geo.profile import PRESETS
from gridmap.progress import Progress
from gridmap.services import planning, profiles
from gridmap.services.importing import import_file
from gridmap.services.partitioning import BUILDING_GRAIN, partition_territory
from gridmap.store import frames, territories

MONACO = "980100"


def plan_frames(engine: sa.Engine, plan_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A plan's grids and units as read by every consumer (frames), geometries as WKB hex."""
    with engine.connect() as conn:
        grids = frames.plan_grids(conn, plan_id)
        units = frames.plan_units(conn, plan_id)
    as_rows = [pd.DataFrame(frame.drop(columns="geometry")).assign(wkb=frame.geometry.to_wkb(hex=True))
               for frame in (grids, units)]
    return as_rows[0], as_rows[1]


def assert_same_plan(engine: sa.Engine, plan_id: int, before: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    now = plan_frames(engine, plan_id)
    pd.testing.assert_frame_equal(now[0], before[0])
    pd.testing.assert_frame_equal(now[1], before[1])


def cut_in(engine: sa.Engine, plan_id: int):
    """Cut the largest single-part unit of a draft with many households across, as a planner would
    (the line reaches into the neighbours, which become revisions in this draft)."""
    with engine.connect() as conn:
        unit = conn.execute(sa.text(
            "SELECT u.id, ST_XMin(u.geom) x0, ST_XMax(u.geom) x1, ST_Y(ST_PointOnSurface(u.geom)) y FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p AND ST_NumGeometries(u.geom) = 1 "
            "AND u.households > 20 ORDER BY u.area_m2 DESC LIMIT 1"), {"p": plan_id}).one()
        version = conn.execute(sa.text("SELECT lock_version FROM plans WHERE id = :p"), {"p": plan_id}).scalar()
    pad = (unit.x1 - unit.x0) * 0.1
    line = {"type": "LineString", "coordinates": [[unit.x0 - pad, unit.y], [unit.x1 + pad, unit.y]]}
    return planning.apply_edits(engine, plan_id, [{"op": "cut", "unit": unit.id, "line": line}], version=version,
                                actor="test")


def buildings_with_more_households(engine: sa.Engine, folder: Path, extra: int = 2) -> tuple[Path, int]:
    """The Monaco buildings layer with ``extra`` more households in every inhabited building,
    written to a GeoPackage; returns the file and the new layer's household total."""
    with engine.connect() as conn:
        buildings = frames.layer_features(conn, MONACO, "buildings")
        communities = frames.communities(conn, MONACO)
    buildings["households"] = buildings["households"].where(buildings["households"] <= 0,
                                                            buildings["households"] + extra).astype("int64")
    path = folder / "buildings.gpkg"
    buildings.to_file(path, driver="GPKG")
    # a building counts in the community holding its representative point (buildings are atoms)
    inside = shapely.contains(shapely.union_all(communities.to_crs(buildings.crs).geometry.values),
                              shapely.point_on_surface(buildings.geometry.values))
    return path, int(buildings.loc[inside, "households"].sum())


def households_of(engine: sa.Engine, plan_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT sum(households) FROM grids WHERE plan_id = :p"), {"p": plan_id}).scalar())


def current_unit_ids(engine: sa.Engine) -> dict[str, set[int]]:
    with engine.connect() as conn:
        units = frames.current_units(conn, MONACO)
    return {code: set(group["db_id"]) for code, group in units.groupby("community_code")}


@pytest.fixture
def history(monaco_built: sa.Engine):
    """Monaco: v1 published, v2 a draft copied from it with a cut (pieces and revised neighbours);
    the frames of both as they are now. (From the units as the first partition builds them
    (conftest's snapshot): how they are built is what the tests below change, not their subject.)"""
    monaco = monaco_built
    first = partition_territory(monaco, MONACO)
    planning.publish(monaco, first.plan_id, version=None, actor="test")
    draft, _ = planning.new_draft(monaco, MONACO, actor="test")
    cut = cut_in(monaco, draft)
    assert cut.new_units and cut.replaced_units
    # what an edit makes belongs to its draft: the territory's current units are still the built ones
    assert current_unit_ids(monaco) == {code: set(group["db_id"]) for code, group in
                                        plan_frames(monaco, first.plan_id)[1].groupby("community_code")}
    return monaco, first.plan_id, draft, {first.plan_id: plan_frames(monaco, first.plan_id),
                                          draft: plan_frames(monaco, draft)}


def test_reimported_buildings_rebuild_the_units_and_history_stays_exact(history, tmp_path: Path) -> None:
    engine, published, draft, before = history
    path, total = buildings_with_more_households(engine, tmp_path)
    assert total > households_of(engine, published)
    import_file(engine, path, territory=MONACO, layer="buildings", replace=True)

    said = io.StringIO()
    summary = partition_territory(engine, MONACO, progress=Progress(stream=said))
    built = summary.units_built
    assert built and len(built.communities) == 6 and built.reused == 0
    assert any(r.startswith("buildings layer re-imported on ") for r in built.reasons), built.reasons
    assert "buildings layer re-imported on" in said.getvalue() and "buildings layer re-imported on" in str(summary)
    assert households_of(engine, summary.plan_id) == total  # the new layer's households, not the old ones

    # the published plan and the draft made before are exactly as they were: grids, units, households
    assert_same_plan(engine, published, before[published])
    assert_same_plan(engine, draft, before[draft])
    with engine.connect() as conn:
        retired = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE u.retired_at IS NULL), count(*) FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p"), {"p": published}).one()
        fresh = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE u.retired_at IS NULL), count(*) FROM plan_units pu "
            "JOIN units u ON u.id = pu.unit_id WHERE pu.plan_id = :p"), {"p": summary.plan_id}).one()
        current = frames.current_units(conn, MONACO)
    assert retired[0] == 0 and retired[1] > 0  # the published plan's units: all of the retired generation
    assert fresh[0] == fresh[1]                # the new plan's: all current
    assert sorted(current["db_id"]) == sorted(plan_frames(engine, summary.plan_id)[1]["db_id"])
    assert current["households"].sum() == total
    assert planning.validate(engine, summary.plan_id)["errors"] == 0

    # the old draft stays editable; what an edit makes of retired units is retired too
    cut_in(engine, draft)
    with engine.connect() as conn:
        assert sorted(frames.current_units(conn, MONACO)["db_id"]) == sorted(current["db_id"])

    # nothing changed since: the next partition reuses the new units
    again = partition_territory(engine, MONACO, seed=1)
    assert not again.units_built and again.units_built.reused == 6
    assert households_of(engine, again.plan_id) == total
    # the same content imported once more (a new layer row, the same features) is no reason either
    import_file(engine, path, territory=MONACO, layer="buildings", replace=True)
    assert not partition_territory(engine, MONACO).units_built


def test_unchanged_territory_reuses_its_units(monaco: sa.Engine) -> None:
    first = partition_territory(monaco, MONACO)
    ids = current_unit_ids(monaco)
    said = io.StringIO()
    second = partition_territory(monaco, MONACO, seed=7, progress=Progress(stream=said))
    assert first.units_built and not second.units_built
    assert "reusing" in said.getvalue() and "building" not in said.getvalue()
    assert current_unit_ids(monaco) == ids
    # another band may need a finer grain where it misses: those communities are rebuilt one unit per
    # building, for that reason alone, and the next run with that band reuses them
    other = partition_territory(monaco, MONACO, min_households=200, max_households=400)
    assert set(other.units_built.reasons) <= {BUILDING_GRAIN}, other.units_built.reasons
    assert not partition_territory(monaco, MONACO, min_households=200, max_households=400).units_built
    ids = current_unit_ids(monaco)
    # the band, the seed and the road classes a partition prefers as grid borders do not shape units
    major = PRESETS["default"].roads.major_classes[:2]
    profile = dataclasses.replace(PRESETS["default"], roads=dataclasses.replace(PRESETS["default"].roads,
                                                                               major_classes=major))
    assert not partition_territory(monaco, MONACO, profile=profile, seed=5).units_built
    assert current_unit_ids(monaco) == ids


def moved_outward(polygon, others) -> shapely.MultiPolygon:
    """``polygon`` with a small bump (about 3 m) on an edge that touches no other community."""
    ring = list(shapely.get_exterior_ring(shapely.get_parts(polygon)[0]).coords)
    neighbours = shapely.union_all(others)
    for i in range(len(ring) - 1):
        (x0, y0), (x1, y1) = ring[i], ring[i + 1]
        mid = shapely.Point((x0 + x1) / 2, (y0 + y1) / 2)
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        if length < 3e-4 or shapely.distance(mid, neighbours) < 3e-4:
            continue
        nx, ny = -(y1 - y0) / length * 3e-5, (x1 - x0) / length * 3e-5
        for sign in (1, -1):
            bump = (mid.x + sign * nx, mid.y + sign * ny)
            if not polygon.contains(shapely.Point(bump)):
                changed = shapely.Polygon(ring[:i + 1] + [bump] + ring[i + 1:])
                assert changed.is_valid and changed.area > shapely.get_parts(polygon)[0].area
                return shapely.MultiPolygon([changed, *shapely.get_parts(polygon)[1:]])
    raise AssertionError("no edge away from the other communities")


def test_a_changed_boundary_rebuilds_only_that_community(history) -> None:
    engine, published, draft, before = history
    ids = current_unit_ids(engine)
    with engine.connect() as conn:
        before_units = frames.current_units(conn, MONACO)
        communities = frames.communities(conn, MONACO)
        parents = dict(conn.execute(sa.text(
            "SELECT c.code, p.code FROM territories c JOIN territories p ON p.id = c.parent_id "
            "WHERE c.level = 'community'")).all())
    # the same shape stored another way (reversed rings) is no change
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE territories SET geom = ST_Reverse(geom) WHERE level = 'community'"))
    assert not partition_territory(engine, MONACO).units_built

    code = communities["code"].iloc[0]
    row = communities.set_index("code").loc[code]
    changed = moved_outward(row.geometry, communities[communities["code"] != code].geometry.values)
    frame = communities[communities["code"] == code][["code", "name"]].assign(
        parent_code=parents[code], area_m2=float(row.area_m2))
    with engine.begin() as conn:  # as the territory import does: the boundary updated in place by code
        territories.upsert(conn, frame.set_geometry([changed], crs=4490), level="community", source="test")

    summary = partition_territory(engine, MONACO)
    built = summary.units_built
    assert code in built.communities and built.reused == 5
    assert built.reasons[0] == f"community {code} boundary changed", built.reasons
    assert set(built.reasons[1:]) <= {BUILDING_GRAIN}, built.reasons  # a miss there: rebuilt at building grain
    now = current_unit_ids(engine)
    assert not now[code] & ids[code]  # that community's units are new ...
    # ... the others' are kept: the same keys and households; those along the changed community's
    # border took its new units' border vertices (copies standing for the old ones, the same shape
    # to the noding's snap-rounding grid)
    assert built.revised > 0
    with engine.connect() as conn:
        after = frames.current_units(conn, MONACO).query("community_code != @code").set_index("unit_id")
        revised = conn.execute(sa.text(
            "SELECT n.id, (n.properties->>'revision_of_id')::int AS old, n.parent_id, ST_HausdorffDistance(n.geom, o.geom) < 1e-9 AS same "
            "FROM units n JOIN units o ON o.id = n.parent_id AND o.unit_key = n.unit_key WHERE n.retired_at IS NULL")).all()
    kept = before_units.query("community_code != @code").set_index("unit_id")
    assert sorted(after.index) == sorted(kept.index)
    assert (after["households"] == kept.loc[after.index, "households"]).all()
    moved = {int(a): int(b) for a, b in zip(kept.loc[after.index, "db_id"], after["db_id"]) if a != b}
    # each revised once per build that reached it (the boundary build, and a rebuild at building grain)
    assert 0 < len(moved) <= built.revised
    assert {r.parent_id: r.id for r in revised if r.id in moved.values()} == moved
    assert all(r.same for r in revised)
    with engine.connect() as conn:
        union = shapely.union_all(frames.current_units(conn, MONACO).query("community_code == @code").geometry.values)
    old = shapely.union_all(before[published][1].query("community_code == @code")["wkb"].map(shapely.from_wkb).values)
    # ... and tile the new boundary (to the snap-rounding of the clean coverage), which the old ones do not
    assert shapely.symmetric_difference(union, changed).area / changed.area < 1e-7
    assert shapely.symmetric_difference(old, changed).area / changed.area > 1e-5
    checked = planning.validate(engine, summary.plan_id)
    assert checked["errors"] == 0, [p["message_en"] for p in checked["problems"] if p["severity"] == "error"]
    assert_same_plan(engine, published, before[published])
    assert_same_plan(engine, draft, before[draft])


def test_changed_unit_rules_rebuild(monaco: sa.Engine) -> None:
    first = partition_territory(monaco, MONACO)
    units = dataclasses.replace(PRESETS["default"].units, min_unit_area_m2=900.0)
    profiles.set_for_territory(monaco, MONACO, dataclasses.replace(PRESETS["default"], name="coarse", units=units),
                               actor="test")
    before = plan_frames(monaco, first.plan_id)
    second = partition_territory(monaco, MONACO)
    assert second.units_built and len(second.units_built.communities) == 6
    assert second.units_built.reasons[0] == "the unit rules changed (profile 'coarse', sections units and roads)"
    assert set(second.units_built.reasons[1:]) <= {BUILDING_GRAIN}
    assert second.result.report["summary"]["units"] < first.result.report["summary"]["units"]  # bigger slivers merge
    assert_same_plan(monaco, first.plan_id, before)
    assert not partition_territory(monaco, MONACO).units_built


def test_rebuild_units_with_plans_present(history, database_url: str) -> None:
    engine, published, draft, before = history
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "partition", "--territory", MONACO,
                           "--rebuild-units"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "a rebuild was asked for (--rebuild-units)" in done.stderr and "retired" in done.stderr
    assert "units: built" in done.stdout and "old units retired" in done.stdout
    assert_same_plan(engine, published, before[published])
    assert_same_plan(engine, draft, before[draft])
    with engine.connect() as conn:
        plans_now = conn.execute(sa.text("SELECT count(*) FROM plans")).scalar()
        builds = conn.execute(sa.text("SELECT count(*), count(DISTINCT community_id) FROM unit_builds")).one()
    # both generations' builds, one per community each, and the communities rebuilt at building grain
    assert plans_now == 3 and builds[1] == 6 and builds[0] >= 12


def test_incidents_follow_a_plan_of_rebuilt_units(monaco_built: sa.Engine) -> None:
    """New units have new ids, so no grid of the new plan holds the same units as one of the old:
    every lineage changes and every incident is routed again, to the grid that holds it."""
    from gridmap.services import incidents

    monaco = monaco_built
    first = partition_territory(monaco, MONACO)
    planning.publish(monaco, first.plan_id, version=None, actor="test")
    incidents.ensure_categories(monaco)
    stored, _ = incidents.load_demo_incidents(monaco, MONACO, count=400, seed=2)
    assert stored > 300
    rebuilt = partition_territory(monaco, MONACO, rebuild_units=True)
    assert rebuilt.units_built
    followed = planning.publish(monaco, rebuilt.plan_id, version=None, actor="test")["incidents"]
    assert followed["adopted"] == 0 and followed["rerouted"] + followed["outside"] == stored
    assert followed["rerouted"] == stored
    with monaco.connect() as conn:
        wrong = conn.execute(sa.text(
            "SELECT count(*) FROM incidents i LEFT JOIN grids g ON g.lineage = i.grid_lineage "
            "AND g.plan_id = :p WHERE g.id IS NULL OR NOT ST_Intersects(g.geom, i.geom)"),
            {"p": rebuilt.plan_id}).scalar()
        reported = conn.execute(sa.text(
            "SELECT count(DISTINCT g.plan_id) FROM incidents i JOIN grids g ON g.id = i.grid_id")).scalar()
    assert wrong == 0 and reported == 1  # each keeps the grid it was reported in (of the first plan)


GENERATIONS = {
    "units": "SELECT md5(string_agg(concat_ws('|', id, unit_key, build_id, retired_at, parent_id, households, "
             "md5(ST_AsEWKB(geom)::text)), ',' ORDER BY id)) FROM units",
    "builds": "SELECT md5(string_agg(concat_ws('|', id, community_id, territory_id, inputs, reasons, built_at, built_by), "
              "',' ORDER BY id)) FROM unit_builds",
}


def test_dump_and_restore_keep_the_generations(history, tmp_path: Path) -> None:
    from gridmap.store import backup

    engine, published, draft, before = history
    partition_territory(engine, MONACO, rebuild_units=True)
    with engine.connect() as conn:
        kept = {name: conn.execute(sa.text(sql)).scalar() for name, sql in GENERATIONS.items()}
    assert all(kept.values())
    backup.dump(engine, MONACO, tmp_path / "monaco.zip")
    backup.restore(engine, tmp_path / "monaco.zip", replace=True)
    with engine.connect() as conn:
        assert {name: conn.execute(sa.text(sql)).scalar() for name, sql in GENERATIONS.items()} == kept
    assert_same_plan(engine, published, before[published])
    assert not partition_territory(engine, MONACO).units_built  # what the units were built from came along


def test_two_partitions_racing_after_a_change_build_the_units_once(monaco: sa.Engine, monkeypatch) -> None:
    """Both find the units stale; the first stores a new generation, the second notices it under
    the rebuild lock, stores nothing and reuses it."""
    import threading

    from gridmap.services import partitioning

    first = partition_territory(monaco, MONACO)
    units = dataclasses.replace(PRESETS["default"].units, min_unit_area_m2=900.0)
    profiles.set_for_territory(monaco, MONACO, dataclasses.replace(PRESETS["default"], name="coarse", units=units),
                               actor="test")
    both_stale = threading.Barrier(2, timeout=60)
    build = partitioning.build_units_in_pieces

    def after_both_looked(*args, **kwargs):
        both_stale.wait()  # each run found the units stale before either stored any
        return build(*args, **kwargs)

    monkeypatch.setattr(partitioning, "build_units_in_pieces", after_both_looked)
    # the race is over the stale units; a refinement at building grain depends on the seed's grids
    # (tests/test_partition_service.py covers it), and would build again in one run only
    monkeypatch.setattr(partitioning, "REFINE_ROUNDS", 0)
    results: list = []
    runs = [threading.Thread(target=lambda seed=seed: results.append(partition_territory(monaco, MONACO, seed=seed)))
            for seed in (1, 2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert len(results) == 2 and sorted(bool(r.units_built) for r in results) == [False, True]
    with monaco.connect() as conn:
        builds = conn.execute(sa.text("SELECT count(*) FROM unit_builds")).scalar()
        retired = conn.execute(sa.text("SELECT count(*) FROM units WHERE retired_at IS NOT NULL")).scalar()
        plan_units = conn.execute(sa.text(
            "SELECT pu.plan_id, bool_and(u.retired_at IS NULL) FROM plan_units pu JOIN units u ON u.id = pu.unit_id "
            "GROUP BY 1 ORDER BY 1")).all()
    assert builds == 12 and retired == first.result.report["summary"]["units"]  # one new generation, not two
    assert [current for _, current in plan_units] == [False, True, True]  # both new plans on the new units


def test_every_reason_for_a_rebuild_is_said_in_chinese() -> None:
    from gridmap.services.partitioning import REBUILD_ASKED, reason_zh

    reasons = [REBUILD_ASKED, BUILDING_GRAIN, "no units yet", "units stored before their inputs were recorded",
               "community 980101900001 has units of more than one build", "community 980101900001 boundary changed",
               "the boundaries of 7 communities changed (980101900001, 980101900002 ...)",
               "the unit rules changed (profile 'coarse', sections units and roads)",
               "buildings layer added (980100/buildings, imported on 2026-12-01 10:00 UTC)",
               "roads layer removed (980100/roads)", "buildings layer re-imported on 2026-12-01 10:00 UTC",
               "buildings layer is now 980101/b2 (imported on 2026-12-01 10:00 UTC), was 980100/buildings"]
    for reason in reasons:
        said = reason_zh(reason)
        assert re.search(r"[\u4e00-\u9fff]", said) and said != reason, reason
    assert "980101900001" in reason_zh("community 980101900001 boundary changed")  # the codes are kept


def test_a_layers_digest_is_computed_once_per_import(monaco: sa.Engine) -> None:
    """A layer's features are written once, when it is imported, so its digest is worked out once
    a process; a partition refined at building grain asked for it twice."""
    from gridmap.store import layers

    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    with monaco.connect() as conn:
        layer_id = conn.execute(sa.text("SELECT l.id FROM layers l JOIN territories t ON t.id = l.territory_id "
                                        "WHERE t.code = :c AND l.name = 'buildings'"), {"c": MONACO}).scalar_one()
        layers._digests.clear()
        sa.event.listen(monaco, "before_cursor_execute", count)
        try:
            first, second = layers.digest(conn, layer_id), layers.digest(conn, layer_id)
        finally:
            sa.event.remove(monaco, "before_cursor_execute", count)
        fresh = conn.execute(sa.text(
            "SELECT md5(COALESCE(string_agg(md5(properties::text) || md5(ST_AsEWKB(geom)), '' ORDER BY feature_index), "
            "'')) FROM layer_features WHERE layer_id = :l"), {"l": layer_id}).scalar_one()
    assert first == second == fresh
    assert sum("md5(" in s for s in statements) == 1  # the features were read once
