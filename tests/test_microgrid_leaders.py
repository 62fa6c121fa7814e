"""Micro-grid leaders on a Chinese district's towers (real PostGIS): a tower cut into 单元 that lie
in several micro-grids has one 楼栋长, recorded once for all its 单元, and each 单元 its own 单元长,
neither overwriting the other; a re-division of the grid gives every 楼栋长 and 单元长 back to their
building or 单元, and a micro-grid's leader to the new micro-grid holding most of their buildings
and 单元 (two micro-grids of one tower's 单元 hold the same building but never the same 单元); the
staff register takes the 楼栋长 once and each 单元长 as such. A leader's name or phone changes alone."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridmap.errors import Invalid


def _rows(engine: sa.Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def test_tower_leaders_kept_apart_and_carried_over(district: sa.Engine, database_url: str, monkeypatch, capsys) -> None:
    from conftest import DISTRICT
    from gridmap.services import microgrids, planning, staff
    from samples import run_cli

    draft, _ = planning.new_draft(district, DISTRICT, actor="test")
    microgrids.divide_plan(district, draft, actor="test")
    # a tower whose 单元 lie in two micro-grids or more
    tower = _rows(district, "SELECT b.feature_id, min(m.code) AS first, max(m.code) AS last, g.code AS grid, "
                  "max(b.parts) AS parts FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id "
                  "JOIN grids g ON g.id = m.grid_id WHERE m.plan_id = :p AND b.parts > 1 AND b.feature_id IS NOT NULL "
                  "GROUP BY b.feature_id, g.code HAVING count(DISTINCT m.id) > 1 ORDER BY b.feature_id LIMIT 1",
                  p=draft)
    assert tower, "the district has no tower whose 单元 lie in two micro-grids"
    feature, first, last, grid, parts = tower[0]
    first_part = _rows(district, "SELECT min(b.part) FROM microgrid_buildings b JOIN microgrids m ON m.id = b.microgrid_id "
                       "WHERE m.plan_id = :p AND m.code = :c AND b.feature_id = :f", p=draft, c=first, f=feature)[0][0]

    # a 单元长 first, then the building's 楼栋长 named from the other micro-grid: both kept
    unit = microgrids.set_leader(district, draft, first, name="单元长甲", phone="13800000041", building=str(feature),
                                 part=first_part, actor="test")
    assert unit["role"] == "unit" and unit["part"] == first_part
    whole = microgrids.set_leader(district, draft, last, name="楼栋长乙", phone="13800000042", building=str(feature),
                                  actor="test")
    assert whole["role"] == "building" and {first, last} <= set(whole["microgrids"])
    rows = _rows(district, "SELECT b.part, b.leader_name, b.building_leader_name FROM microgrid_buildings b "
                 "JOIN microgrids m ON m.id = b.microgrid_id WHERE m.plan_id = :p AND b.feature_id = :f ORDER BY b.part",
                 p=draft, f=feature)
    assert len(rows) == parts and {r.building_leader_name for r in rows} == {"楼栋长乙"}  # on every 单元
    assert [r.leader_name for r in rows if r.part == first_part] == ["单元长甲"]  # not overwritten
    assert all(r.leader_name is None for r in rows if r.part != first_part)
    # a 单元 of a building this plan keeps whole: refused in both languages
    whole_building = _rows(district, "SELECT m.code, b.feature_id FROM microgrid_buildings b JOIN microgrids m "
                           "ON m.id = b.microgrid_id WHERE m.plan_id = :p AND b.parts <= 1 AND b.feature_id IS NOT NULL "
                           "ORDER BY b.id LIMIT 1", p=draft)[0]
    with pytest.raises(Invalid) as refused:
        microgrids.set_leader(district, draft, whole_building.code, name="x", phone=None,
                              building=str(whole_building.feature_id), part=1, actor="test")
    assert "not cut into stairwells" in refused.value.en and "未按单元划分" in refused.value.zh

    # each micro-grid of the grid its own leader; then the grid divided again, as it was
    codes = [r[0] for r in _rows(district, "SELECT m.code FROM microgrids m JOIN grids g ON g.id = m.grid_id "
                                 "WHERE m.plan_id = :p AND g.code = :g ORDER BY m.code", p=draft, g=grid)]
    for number, code in enumerate(codes):
        microgrids.set_leader(district, draft, code, name=f"微网格长{number}", phone=None, actor="test")
    cells_sql = ("SELECT m.leader_name, array_agg(b.feature_id::text || '/' || b.part ORDER BY b.feature_id, b.part) "
                 "FROM microgrids m JOIN grids g ON g.id = m.grid_id JOIN microgrid_buildings b ON b.microgrid_id = m.id "
                 "WHERE m.plan_id = :p AND g.code = :g GROUP BY m.id, m.leader_name")
    before = {tuple(cells): name for name, cells in _rows(district, cells_sql, p=draft, g=grid)}
    assert len(set(before.values())) == len(codes)
    microgrids.divide_plan(district, draft, grid=grid, actor="test")
    after = {tuple(cells): name for name, cells in _rows(district, cells_sql, p=draft, g=grid)}
    assert after == before  # the same division: every micro-grid's leader where it was, none copied
    rows_after = _rows(district, "SELECT b.part, b.leader_name, b.building_leader_name FROM microgrid_buildings b "
                       "JOIN microgrids m ON m.id = b.microgrid_id WHERE m.plan_id = :p AND b.feature_id = :f "
                       "ORDER BY b.part", p=draft, f=feature)
    assert [tuple(r) for r in rows_after] == [tuple(r) for r in rows]

    # the command line shows them: per micro-grid how many 楼栋长 and 单元长, per building who
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    status, out, err = run_cli(capsys, "microgrid", "list", str(draft), "--grid", grid)
    assert status == 0, err
    table = {line.split(" | ")[0]: line.split(" | ") for line in out.splitlines() if line.startswith(grid)}
    assert set(table) == set(codes)
    assert "building leaders 楼栋长 | stairwell leaders 单元长" in out.splitlines()[0]
    assert table[first][5] == f"微网格长{codes.index(first)}"
    # 楼栋长乙 counted in every micro-grid holding a 单元 of the tower (recorded from ``last``), nowhere else
    assert {code for code, row in table.items() if row[6] == "1"} == set(whole["microgrids"]) & set(codes)
    assert first in set(whole["microgrids"]) and {row[6] for row in table.values()} <= {"", "1"}
    assert {code: row[7] for code, row in table.items() if row[7]} == {first: "1"}  # 单元长甲 alone
    status, out, err = run_cli(capsys, "microgrid", "list", str(draft), first)
    assert status == 0, err
    building_name = _rows(district, "SELECT building_name FROM microgrid_buildings WHERE feature_id = :f AND part = :k "
                          "LIMIT 1", f=feature, k=first_part)[0][0]
    ours = [line.split(" | ") for line in out.splitlines()[1:] if line.startswith(building_name + " | ")]
    assert len(ours) == 1 and ours[0][1] == f"{first_part}/{parts}"
    assert ours[0][3] == "楼栋长乙 13800000042" and ours[0][4] == "单元长甲 13800000041"
    status, _, err = run_cli(capsys, "microgrid", "list", str(draft), grid + "999")
    assert status == 1 and f"no micro-grid {grid}999" in err and "没有微网格" in err
    status, _, err = run_cli(capsys, "microgrid", "list", str(draft), first, "--grid", grid)
    assert status == 1 and "not both" in err and "不要同时给出" in err

    # the staff register: the 楼栋长 once (a building leader), the 单元长 as a stairwell leader
    planning.publish(district, draft, version=None, actor="test")
    staff.adopt(district, DISTRICT, actor="test")
    people = {p["name"]: p for p in staff.people(district, DISTRICT)}
    assert people["楼栋长乙"]["role"] == "building_leader" and people["单元长甲"]["role"] == "stairwell_leader"
    held = _rows(district, "SELECT count(*) FROM staff_assignments a JOIN staff s ON s.id = a.staff_id "
                 "WHERE s.name = '楼栋长乙'")[0][0]
    assert held == 1


def test_a_micro_grids_leader_follows_most_of_its_buildings() -> None:
    """Re-dividing: a micro-grid's leader goes to the new micro-grid holding most of their cells,
    when it holds half of them at least; one new micro-grid takes one leader (the one with more of
    their cells there first); the others are named as not carried over."""
    from gridmap.store.microgrids import carried_microgrid_leaders

    a, b, c = ((1, 1), (2, 1), (3, 1)), ((4, 1), (5, 1)), ((6, 1), (7, 1), (8, 1), (9, 1))
    before = [(a, ("甲", "1")), (b, ("乙", None)), (c, (None, "3"))]
    # a's cells: two in X, one in Y; b's: one in Y, one in Z (half in each: Y has a's third too);
    # c's: one in each of four micro-grids: none holds half
    after = {"X": ((1, 1), (2, 1)), "Y": ((3, 1), (4, 1), (6, 1)), "Z": ((5, 1), (7, 1)), "W": ((8, 1), (9, 1))}
    placed, dropped = carried_microgrid_leaders(before, after)
    assert placed["X"] == ("甲", "1")  # two of three
    assert placed.get("Z") == ("乙", None)  # half of its cells in Y and in Z: the closer fit (Z holds nothing else)
    assert ("乙", None) in placed.values() and list(placed.values()).count(("乙", None)) == 1
    assert placed.get("W") == (None, "3")  # two of c's four: half
    assert dropped == []
    # an unchanged division keeps every leader where it was
    same, none = carried_microgrid_leaders(before, {"X": a, "Y": b, "Z": c})
    assert same == {"X": ("甲", "1"), "Y": ("乙", None), "Z": (None, "3")} and none == []
    # a micro-grid spread over three: its leader is named, not given to a third of its buildings
    spread, gone = carried_microgrid_leaders([(a, ("甲", "1")), (c, (None, "3"))],
                                             {"X": ((1, 1),), "Y": ((2, 1),), "Z": ((3, 1),)})
    assert spread == {} and gone == ["甲", None]  # None: a leader recorded with a phone only
    # a micro-grid whose buildings lost their features has no cells to follow: named, not lost unsaid
    lost_cells, named = carried_microgrid_leaders([((), ("丙", None))], {"X": a})
    assert lost_cells == {} and named == ["丙"]
    # two leaders wanting one micro-grid: the one with more of their cells there has it
    fight, lost = carried_microgrid_leaders([(a, ("甲", None)), (b, ("乙", None))],
                                            {"X": ((1, 1), (2, 1), (3, 1), (4, 1)), "Y": ((5, 1),)})
    assert fight["X"] == ("甲", None) and fight.get("Y") == ("乙", None) and lost == []


def test_a_leaders_phone_alone_keeps_the_name_and_a_move_that_empties_a_micro_grid_says_whose_it_was(
        district: sa.Engine) -> None:
    from conftest import DISTRICT
    from gridmap.services import microgrids, planning

    draft, _ = planning.new_draft(district, DISTRICT, actor="test")
    microgrids.divide_plan(district, draft, actor="test")
    code, grid = _rows(district, "SELECT m.code, g.code FROM microgrids m JOIN grids g ON g.id = m.grid_id "
                       "WHERE m.plan_id = :p ORDER BY m.code LIMIT 1", p=draft)[0]
    done = microgrids.set_leader(district, draft, code, name="赵四", phone="13900000000", actor="test")
    assert done["leader_name"] == "赵四" and done["has_phone"] and "leader_phone" not in done
    done = microgrids.set_leader(district, draft, code, name=None, phone="13911111111", actor="test")
    assert done["leader_name"] == "赵四"  # the name kept
    assert _rows(district, "SELECT leader_name, leader_phone FROM microgrids WHERE plan_id = :p AND code = :c",
                 p=draft, c=code)[0] == ("赵四", "13911111111")
    done = microgrids.set_leader(district, draft, code, name="", phone=None, actor="test")
    assert done["leader_name"] is None and done["has_phone"]  # only the name cleared
    microgrids.set_leader(district, draft, code, name="赵四", phone="", actor="test")
    assert _rows(district, "SELECT leader_name, leader_phone FROM microgrids WHERE plan_id = :p AND code = :c",
                 p=draft, c=code)[0] == ("赵四", None)
    # every building of that micro-grid painted into a neighbour: it is removed, and the answer names its leader
    cells = [r[0] for r in _rows(district, "SELECT b.id FROM microgrid_buildings b JOIN microgrids m ON "
                                 "m.id = b.microgrid_id WHERE m.plan_id = :p AND m.code = :c", p=draft, c=code)]
    neighbours = [r[0] for r in _rows(
        district, "SELECT n.code FROM microgrids m JOIN microgrids n ON n.grid_id = m.grid_id AND n.id <> m.id "
        "AND ST_Length(ST_Intersection(ST_Boundary(m.geom), ST_Boundary(n.geom))::geography) > 1 "
        "WHERE m.plan_id = :p AND m.code = :c ORDER BY n.code", p=draft, c=code)]
    moved = None
    for target in neighbours:
        try:
            moved = microgrids.move_buildings(district, draft, target, cells, actor="test")
            break
        except Invalid:
            continue
    assert moved is not None, f"no neighbour of {code} in grid {grid} could take all its buildings"
    assert moved["removed"] == [code] and moved["removed_leaders"] == [{"microgrid": code, "leader_name": "赵四"}]
