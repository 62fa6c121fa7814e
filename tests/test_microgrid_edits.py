"""Buildings painted between micro-grids (the planner's micro-grid mode): the rules on generated
cells, then the operation on real PostGIS through the API: households conserved, the grid still
tiled by its micro-grids, flags stated again, a micro-grid left empty removed, and refusals
(pieces, another grid, a stale version, a published plan, no role) that change nothing."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.geo.microgrid_edits import move_cells, restate
from samples import signed_in_client

MONACO = "980100"
STEP = 0.0002  # cells of about 20 m near Ya'an


def row_of_cells(owners: list[str], households: list[int], grid: str = "511802001001001") -> gpd.GeoDataFrame:
    """Square cells side by side in one row, owned by the micro-grids ``owners``."""
    return gpd.GeoDataFrame({
        "cell_id": np.arange(1, len(owners) + 1), "microgrid_code": owners, "grid_code": grid,
        "building_key": [str(i) for i in range(len(owners))], "households": households},
        geometry=[shapely.box(103.0 + i * STEP, 30.0, 103.0 + (i + 1) * STEP, 30.0 + STEP) for i in range(len(owners))],
        crs=4490)


def test_a_move_states_both_micro_grids_again() -> None:
    cells = row_of_cells(["A", "A", "A", "B", "B"], [30, 20, 25, 30, 20])
    moved = move_cells(cells, [3], "B")
    out = restate(moved, ["A", "B"], (50, 80), {"A": 1, "B": 1}).microgrids.set_index("microgrid_code")
    assert out.loc["A", "households"] == 50 and out.loc["B", "households"] == 75
    assert out.loc["A", "building_count"] == 2 and out.loc["B", "building_count"] == 3
    assert out["parts"].tolist() == [1, 1] and out["flag"].isna().all()
    # the union of the new micro-grids is the union of the cells: nothing lost, nothing doubled
    assert shapely.equals(shapely.union_all(out.geometry.values), shapely.union_all(cells.geometry.values))


def test_a_move_out_of_the_band_is_flagged_in_both_languages() -> None:
    cells = row_of_cells(["A", "A", "B", "B"], [30, 30, 40, 20])
    out = restate(move_cells(cells, [2], "B"), ["A", "B"], (50, 80), {}).microgrids.set_index("microgrid_code")
    assert out.loc["A", "flag"] == "below_min" and "by hand" in out.loc["A", "reason"]
    assert "手工" in out.loc["A", "reason_zh"] and out.loc["B", "flag"] == "above_max"


def test_a_move_that_takes_one_micro_grid_out_of_the_band_leaves_the_others_reason_empty() -> None:
    """One micro-grid flagged, the other in the band: the latter's reasons are None (stored as no
    reason), not NaN, which json.dumps writes as a NaN that PostgreSQL refuses."""
    import json

    cells = row_of_cells(["A", "A", "A", "B", "B"], [30, 30, 5, 40, 38])
    out = restate(move_cells(cells, [3], "B"), ["A", "B"], (50, 80), {"A": 1, "B": 1}).microgrids
    out = out.set_index("microgrid_code")
    assert out.loc["B", "flag"] == "above_max" and pd.isna(out.loc["A", "flag"])
    assert out.loc["A", "reason"] is None and out.loc["A", "reason_zh"] is None
    json.loads(json.dumps({"reason": out.loc["A", "reason"], "reason_zh": out.loc["A", "reason_zh"]}, allow_nan=False))


def test_a_move_that_cuts_a_micro_grid_or_leaves_one_in_pieces_is_refused() -> None:
    cells = row_of_cells(["A", "A", "A", "B"], [20, 20, 20, 60])
    with pytest.raises(Invalid) as cut:  # the middle of A to B: A in two pieces, B too
        restate(move_cells(cells, [2], "B"), ["A", "B"], (50, 80), {"A": 1, "B": 1})
    assert "pieces" in cut.value.en and "连片" in cut.value.zh


def test_a_micro_grid_left_without_cells_is_removed_and_other_grids_are_refused() -> None:
    cells = row_of_cells(["A", "B", "B"], [30, 30, 20])
    done = restate(move_cells(cells, [1], "B"), ["A", "B"], (50, 80), {"A": 1, "B": 1})
    assert done.removed == ["A"] and done.microgrids["households"].tolist() == [80]
    other = row_of_cells(["C"], [50], grid="511802001001002")
    other["cell_id"] = [9]
    with pytest.raises(Invalid) as crossing:
        move_cells(gpd.GeoDataFrame(np.concatenate([cells.values, other.values]), columns=cells.columns,
                                    geometry="geometry", crs=4490), [9], "B")
    assert "never crosses its grid" in crossing.value.en and "不能跨越" in crossing.value.zh
    with pytest.raises(Invalid):
        move_cells(cells, [77], "B")


# -- stored, through the API -------------------------------------------------------------------------
@pytest.fixture
def divided(monaco_built: sa.Engine, database_url: str):
    monaco = monaco_built  # Monaco with its units built (conftest)
    from gridmap.services import microgrids
    from gridmap.services.partitioning import partition_territory

    plan_id = partition_territory(monaco, MONACO).plan_id
    microgrids.divide_plan(monaco, plan_id, actor="test")
    return monaco, plan_id


def query(engine: sa.Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def snapshot(engine: sa.Engine, plan_id: int) -> list:
    return query(engine, "SELECT m.code, m.households, b.id FROM microgrids m JOIN microgrid_buildings b "
                 "ON b.microgrid_id = m.id WHERE m.plan_id = :p ORDER BY b.id", p=plan_id)


def untiled(engine: sa.Engine, plan_id: int) -> int:
    """Comprehensive grids that are not exactly the union of their micro-grids."""
    return query(engine, "SELECT count(*) AS n FROM grids g JOIN LATERAL (SELECT ST_Union(m.geom) u, "
                 "sum(ST_Area(m.geom::geography)) a FROM microgrids m WHERE m.grid_id = g.id) s ON true "
                 "WHERE g.plan_id = :p AND g.kind = 'comprehensive' AND (s.u IS NULL OR "
                 "ST_Area(ST_SymDifference(s.u, g.geom)::geography) > 1 OR abs(s.a - ST_Area(g.geom::geography)) > 1)",
                 p=plan_id)[0]["n"]


def test_painting_buildings_between_micro_grids(divided, database_url: str) -> None:
    engine, plan_id = divided
    planner = signed_in_client(engine, database_url, "painter", "planner", MONACO)
    grid = query(engine, "SELECT g.code FROM grids g JOIN microgrids m ON m.grid_id = g.id WHERE g.plan_id = :p "
                 "GROUP BY g.code HAVING count(*) >= 3 ORDER BY g.code LIMIT 1", p=plan_id)[0]["code"]
    cells = planner.get(f"/api/plans/{plan_id}/microgrid-cells", params={"grid": grid})
    assert cells.status_code == 200 and cells.headers["content-type"].startswith("application/geo+json")
    features = cells.json()["features"]
    assert features and all(f["properties"]["microgrid_code"].startswith(grid) for f in features)
    assert "crs" not in cells.json() and "leader" not in cells.text
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    owner = [f["properties"]["microgrid_code"] for f in features]
    before = snapshot(engine, plan_id)
    totals = {r["code"]: r["households"] for r in before}
    # refused: a cell into a micro-grid it does not touch leaves the target in pieces; nothing changes
    far = next((i, code) for i in range(len(features)) for code in sorted(set(owner))
               if code != owner[i] and not any(shapes[i].touches(shapes[j]) for j in range(len(features))
                                               if owner[j] == code))
    refused = planner.post(f"/api/plans/{plan_id}/microgrids/{far[1]}/cells",
                           json={"cells": [features[far[0]]["id"]]})
    assert refused.status_code == 422 and "连片" in refused.json()["detail_zh"]
    assert snapshot(engine, plan_id) == before
    # accepted: a cell on the border of a neighbouring micro-grid, whose own micro-grid stays whole
    version = query(engine, "SELECT lock_version FROM plans WHERE id = :p", p=plan_id)[0]["lock_version"]
    done = None
    for i in range(len(features)):
        for code in sorted(set(owner) - {owner[i]}):
            if not any(shapes[i].intersection(shapes[j]).length > 0 for j in range(len(features)) if owner[j] == code):
                continue
            answer = planner.post(f"/api/plans/{plan_id}/microgrids/{code}/cells",
                                  json={"cells": [features[i]["id"]], "version": version})
            if answer.status_code == 200:
                done = (i, code, answer.json())
                break
            assert answer.status_code == 422, answer.text
        if done:
            break
    assert done is not None, "no cell of the grid could move to a neighbouring micro-grid"
    i, code, body = done
    moved = features[i]["properties"]["households"]
    assert body["version"] == version + 1 and body["moved"] == 1
    after = {r["code"]: r["households"] for r in snapshot(engine, plan_id)}
    assert after[code] == totals[code] + moved
    if owner[i] in body["removed"]:  # its only cell moved: the micro-grid is gone
        assert owner[i] not in after and totals[owner[i]] == moved and owner.count(owner[i]) == 1
    else:
        assert after[owner[i]] == totals[owner[i]] - moved
    assert sum(after.values()) == sum(totals.values())
    assert untiled(engine, plan_id) == 0
    stated = {m["microgrid_code"]: m for m in body["microgrids"]}
    lo, hi = 50, 80
    assert (stated[code]["flag"] is None) == (lo <= after[code] <= hi)
    assert query(engine, "SELECT count(*) AS n FROM audit_log WHERE action = 'microgrid.assign'")[0]["n"] == 1
    # the same version again: someone else's edit came first
    stale = planner.post(f"/api/plans/{plan_id}/microgrids/{owner[i]}/cells",
                         json={"cells": [features[i]["id"]], "version": version})
    assert stale.status_code == 409
    # no role, no edit; a published plan's micro-grids are read-only
    reader = signed_in_client(engine, database_url, "looker", "viewer", MONACO)
    assert reader.post(f"/api/plans/{plan_id}/microgrids/{owner[i]}/cells",
                       json={"cells": [features[i]["id"]]}).status_code == 403
    from gridmap.services import planning

    planning.publish(engine, plan_id, version=None, actor="test")
    frozen = planner.post(f"/api/plans/{plan_id}/microgrids/{owner[i]}/cells", json={"cells": [features[i]["id"]]})
    assert frozen.status_code == 409 and "只读" in frozen.json()["detail_zh"]


def test_buildings_whose_features_are_gone_are_known_by_name(divided) -> None:
    """After the buildings layer is re-imported (feature ids cleared), a move still counts
    buildings, not 单元: the key is the building's name without its ' N单元'."""
    from gridmap.store import microgrids as store

    engine, plan_id = divided
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT b.id, b.building_name, m.code FROM microgrid_buildings b JOIN microgrids m "
                                   "ON m.id = b.microgrid_id WHERE m.plan_id = :p ORDER BY b.id LIMIT 1"),
                           {"p": plan_id}).one()
        conn.execute(sa.text("UPDATE microgrid_buildings SET building_name = building_name || ' 2单元', part = 2, "
                             "parts = 2 WHERE id = :i"), {"i": row.id})  # a 单元's row, as a cut building's are
        conn.execute(sa.text("UPDATE microgrid_buildings SET feature_id = NULL WHERE microgrid_id IN "
                             "(SELECT id FROM microgrids WHERE plan_id = :p)"), {"p": plan_id})
        cells = store.cells_for_move(conn, plan_id, row.code, [row.id])
    key = cells.loc[cells["cell_id"] == row.id, "building_key"].iat[0]
    assert key == row.building_name and "单元" not in key


def test_a_leader_of_a_building_whose_feature_is_gone_stays_in_its_grid(divided) -> None:
    """Feature ids cleared (the layer re-imported): a 楼栋长 recorded for "1号楼" in one grid is not
    given to another grid's "1号楼", and the staff register takes each building once."""
    from gridmap.store import microgrids as store
    from gridmap.store.staff import named_in_plan

    engine, plan_id = divided
    with engine.begin() as conn:
        rows = conn.execute(sa.text(
            "SELECT DISTINCT ON (m.grid_id) b.id, m.code, m.grid_id FROM microgrid_buildings b JOIN microgrids m "
            "ON m.id = b.microgrid_id WHERE m.plan_id = :p ORDER BY m.grid_id, b.id LIMIT 2"), {"p": plan_id}).all()
        assert len(rows) == 2 and rows[0].grid_id != rows[1].grid_id
        conn.execute(sa.text("UPDATE microgrid_buildings SET feature_id = NULL WHERE microgrid_id IN "
                             "(SELECT id FROM microgrids WHERE plan_id = :p)"), {"p": plan_id})
        conn.execute(sa.text("UPDATE microgrid_buildings SET building_name = '1号楼', part = 0, parts = 1 "
                             "WHERE id = ANY(:ids)"), {"ids": [r.id for r in rows]})
        done = store.set_leader(conn, plan_id, rows[0].code, name="甲楼长", phone=None, building="1号楼")
        assert done["microgrids"] == [rows[0].code]
        store.set_leader(conn, plan_id, rows[1].code, name="乙楼长", phone=None, building="1号楼")
        leaders = dict(conn.execute(sa.text("SELECT id, building_leader_name FROM microgrid_buildings "
                                            "WHERE id = ANY(:ids)"), {"ids": [r.id for r in rows]}).all())
        assert leaders == {rows[0].id: "甲楼长", rows[1].id: "乙楼长"}
        named = named_in_plan(conn, plan_id)
    assert sorted(named.loc[named["kind"] == "building", "name"]) == ["乙楼长", "甲楼长"]


def test_dividing_checks_the_drafts_version_and_an_edit_made_meanwhile(divided, database_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner divides with the version it saw: a stale one is a conflict at once; and an edit
    stored while the grids are being divided (they were read before it) is a conflict too, with
    nothing stored: those micro-grids would be of grids that are no longer there."""
    from gridmap.services import microgrids
    from gridmap.store.plans import VersionConflict

    engine, plan_id = divided
    planner = signed_in_client(engine, database_url, "divider", "planner", MONACO)
    version = query(engine, "SELECT lock_version FROM plans WHERE id = :p", p=plan_id)[0]["lock_version"]
    grid = query(engine, "SELECT g.code FROM grids g JOIN microgrids m ON m.grid_id = g.id WHERE g.plan_id = :p "
                 "ORDER BY g.code LIMIT 1", p=plan_id)[0]["code"]
    before = snapshot(engine, plan_id)
    stale = planner.post(f"/api/plans/{plan_id}/microgrids", json={"grid": grid, "version": version - 1})
    assert stale.status_code == 409 and stale.json()["detail_zh"]
    assert snapshot(engine, plan_id) == before
    done = planner.post(f"/api/plans/{plan_id}/microgrids", json={"grid": grid, "version": version})
    assert done.status_code == 200, done.text
    assert done.json()["version"] == version + 1 and done.json()["grids"] == [grid]
    after_divide = snapshot(engine, plan_id)
    # someone's edit lands while the grids are divided
    real = microgrids._divide

    def with_an_edit_meanwhile(*args, **kwargs):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE plans SET lock_version = lock_version + 1 WHERE id = :p"), {"p": plan_id})
        return real(*args, **kwargs)

    monkeypatch.setattr(microgrids, "_divide", with_an_edit_meanwhile)
    with pytest.raises(VersionConflict):
        microgrids.divide_plan(engine, plan_id, grid=grid, actor="test")
    assert snapshot(engine, plan_id) == after_divide


def test_an_emptied_micro_grid_is_made_again_by_the_undo(divided, database_url: str) -> None:
    """Painting every building of a micro-grid into its neighbour removes it; giving them back with
    ``recreate`` (the planner's undo) makes it again with its code, and the plan is as it was."""
    engine, plan_id = divided
    planner = signed_in_client(engine, database_url, "undoer", "planner", MONACO)
    grids = [r["code"] for r in query(engine, "SELECT g.code FROM grids g JOIN microgrids m ON m.grid_id = g.id "
                                              "WHERE g.plan_id = :p GROUP BY g.code HAVING count(*) >= 2 ORDER BY g.code",
                                      p=plan_id)]
    before = snapshot(engine, plan_id)
    done = None
    for grid in grids:
        features = planner.get(f"/api/plans/{plan_id}/microgrid-cells", params={"grid": grid}).json()["features"]
        owner = [f["properties"]["microgrid_code"] for f in features]
        for source in sorted(set(owner)):
            mine = [f["id"] for f, o in zip(features, owner) if o == source]
            for target in sorted(set(owner) - {source}):
                answer = planner.post(f"/api/plans/{plan_id}/microgrids/{target}/cells", json={"cells": mine})
                if answer.status_code == 200:
                    done = (grid, source, target, mine, answer.json())
                    break
            if done:
                break
        if done:
            break
    assert done is not None, "no micro-grid could be painted whole into a neighbour"
    grid, source, target, mine, body = done
    assert source in body["removed"] and not body["restored"]
    # without recreate the micro-grid is unknown; with a code of another grid it is refused
    assert planner.post(f"/api/plans/{plan_id}/microgrids/{source}/cells", json={"cells": mine}).status_code == 422
    other = next(g for g in grids if g != grid) + "9" * (len(source) - len(grid))  # a free code of another grid
    wrong = planner.post(f"/api/plans/{plan_id}/microgrids/{other}/cells", json={"cells": mine, "recreate": True})
    assert wrong.status_code == 422 and "无法重建微网格" in wrong.json()["detail_zh"]
    never = grid + "9" * (len(source) - len(grid))  # a free code of this grid that no edit emptied: not made
    if never != source:
        made = planner.post(f"/api/plans/{plan_id}/microgrids/{never}/cells", json={"cells": mine, "recreate": True})
        assert made.status_code == 422 and "无法重建微网格" in made.json()["detail_zh"]
    back = planner.post(f"/api/plans/{plan_id}/microgrids/{source}/cells", json={"cells": mine, "recreate": True})
    assert back.status_code == 200, back.text
    assert back.json()["restored"] and source in {m["microgrid_code"] for m in back.json()["microgrids"]}
    assert snapshot(engine, plan_id) == before and untiled(engine, plan_id) == 0
    edits = query(engine, "SELECT operations FROM plan_edits WHERE plan_id = :p ORDER BY id DESC LIMIT 1", p=plan_id)
    assert edits and edits[0]["operations"][0].get("recreated") is True
