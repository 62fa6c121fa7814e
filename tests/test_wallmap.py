"""The community wall map (``gridmap print``, ``GET /api/territories/{code}/wallmap``): a real
PDF/PNG of a partitioned, published Monaco community, read back (page size, embedded CJK font,
pixels of every grid's fill), and the rules of the sheet: no two touching grids share a colour,
labels sit inside their grid, the legend says how far each grid is from the band."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.errors import Invalid
from gridmap.services.printing import WallMapRequest
from gridmap.web import wallmap
from conftest import published_plan_id

MONACO = "980100"
MM_TO_PT = 72 / 25.4


@pytest.fixture
def published(monaco_published: sa.Engine) -> tuple[sa.Engine, str, int]:
    """Monaco partitioned and published; the community with the most grids and the plan version."""
    monaco = monaco_published  # Monaco with its first partition published (conftest)

    plan_id = published_plan_id(monaco)
    with monaco.connect() as conn:
        community, version = conn.execute(sa.text(
            "SELECT t.code, p.version FROM grids g JOIN territories t ON t.id = g.community_id "
            "JOIN plans p ON p.id = g.plan_id WHERE p.id = :p GROUP BY t.code, p.version "
            "ORDER BY count(*) DESC, t.code LIMIT 1"), {"p": plan_id}).one()
    return monaco, community, version


@pytest.fixture
def client(published, database_url: str) -> TestClient:
    from gridmap.api.app import create_app

    return TestClient(create_app(database_url=database_url))


def media_box(pdf: bytes) -> tuple[float, float]:
    found = re.search(rb"/MediaBox \[ *0 0 ([0-9.]+) ([0-9.]+) *\]", pdf)
    assert found, "no MediaBox in the PDF"
    return float(found.group(1)), float(found.group(2))


def test_pdf_sheet_is_a4_with_a_cjk_font_and_names_the_plan(client: TestClient, published) -> None:
    _, community, version = published
    answer = client.get(f"/api/territories/{community}/wallmap")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert f'filename="gridmap-{community}-v{version}-A4.pdf"' in answer.headers["content-disposition"]
    pdf = answer.content
    assert pdf.startswith(b"%PDF-")
    width, height = sorted(media_box(pdf))
    assert abs(width - 210 * MM_TO_PT) < 1.5 and abs(height - 297 * MM_TO_PT) < 1.5
    assert b"NotoSansCJK" in pdf or b"Noto Sans CJK" in pdf, "the Chinese text needs an embedded CJK font"


def test_png_sheet_is_a3_and_shows_every_grid_fill(client: TestClient, published) -> None:
    from PIL import Image

    engine, community, _ = published
    answer = client.get(f"/api/territories/{community}/wallmap", params={"paper": "A3", "format": "png", "lang": "en"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content)).convert("RGB")
    expected = sorted(round(mm / 25.4 * wallmap.PNG_DPI) for mm in wallmap.PAPERS_MM["A3"])
    assert sorted(image.size) == pytest.approx(expected, abs=2)
    pixels = np.asarray(image).reshape(-1, 3)
    present = {tuple(p) for p in np.unique(pixels, axis=0)}
    with engine.connect() as conn:
        n_grids = conn.execute(sa.text(
            "SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id JOIN territories t ON t.id = g.community_id "
            "WHERE p.status = 'published' AND t.code = :c"), {"c": community}).scalar_one()
    fills = {tuple(int(wallmap.PALETTE[i][k:k + 2], 16) for k in (1, 3, 5)) for i in range(len(wallmap.PALETTE))}
    shown = fills & present
    assert len(shown) >= min(3, n_grids), "the grids' fills are missing from the sheet"
    assert (140, 140, 140) in present, "the houses (#8c8c8c) are missing from the sheet"
    from gridmap.services.printing import gather  # and they are the houses: without them, far fewer such pixels
    data = gather(engine, WallMapRequest(community, paper="A3", format="png", lang="en"))
    bare = np.asarray(Image.open(io.BytesIO(wallmap.render(dataclasses.replace(data, buildings=None))))
                      .convert("RGB")).reshape(-1, 3)
    houses = int((pixels == (140, 140, 140)).all(axis=1).sum())
    assert houses > 10 * int((bare == (140, 140, 140)).all(axis=1).sum()) + 100, houses
    chinese = client.get(f"/api/territories/{community}/wallmap", params={"paper": "A3", "format": "png"})
    assert chinese.content != answer.content  # the language changes the sheet


def test_refusals_are_bilingual_and_drafts_need_a_role(client: TestClient, published) -> None:
    _, community, _ = published
    street = client.get(f"/api/territories/{MONACO}/wallmap")
    assert street.status_code == 422
    assert "not a community" in street.json()["detail_en"] and "不是社区" in street.json()["detail_zh"]
    assert client.get(f"/api/territories/{community}/wallmap", params={"paper": "B5"}).status_code == 422
    assert client.get("/api/territories/000000000000/wallmap").status_code == 404
    # a published plan is public; a draft is not
    from gridmap.services import planning

    engine = published[0]
    assert client.get(f"/api/territories/{community}/wallmap", params={"plan": "draft"}).status_code == 404
    planning.new_draft(engine, MONACO, actor="test")
    refused = client.get(f"/api/territories/{community}/wallmap", params={"plan": "draft"})
    assert refused.status_code == 401, refused.text
    from gridmap.store import users

    with engine.begin() as conn:
        elsewhere = conn.execute(sa.text("SELECT code FROM territories WHERE level = 'community' AND code <> :c "
                                         "ORDER BY code LIMIT 1"), {"c": community}).scalar_one()
        users.create_user(conn, "viewer-elsewhere", "a long passphrase")
        users.grant(conn, "viewer-elsewhere", "viewer", elsewhere)
        users.create_user(conn, "monaco-planner", "a long passphrase")
        users.grant(conn, "monaco-planner", "planner", MONACO)

    def signed(name: str) -> dict:
        token = client.post("/api/auth/token", data={"username": name, "password": "a long passphrase"}).json()
        return {"Authorization": f"Bearer {token['access_token']}"}

    outside = client.get(f"/api/territories/{community}/wallmap", params={"plan": "draft"},
                         headers=signed("viewer-elsewhere"))
    assert outside.status_code == 403 and "打印草稿" in outside.json()["detail_zh"]
    draft = client.get(f"/api/territories/{community}/wallmap", params={"plan": "draft", "format": "png"},
                       headers=signed("monaco-planner"))
    assert draft.status_code == 200 and draft.content.startswith(b"\x89PNG")
    # a plan named by its id (as the planner does): it must cover the community
    from gridmap.services.partitioning import partition_territory

    with engine.connect() as conn:
        draft_id, draft_version = conn.execute(sa.text("SELECT id, version FROM plans WHERE status = 'draft'")).one()
    by_id = client.get(f"/api/territories/{community}/wallmap", params={"plan_id": draft_id},
                       headers=signed("monaco-planner"))
    assert by_id.status_code == 200 and f"-v{draft_version}-" in by_id.headers["content-disposition"]
    other = partition_territory(engine, elsewhere).plan_id  # a plan of another community
    wrong = client.get(f"/api/territories/{community}/wallmap", params={"plan_id": other},
                       headers=signed("monaco-planner"))
    assert wrong.status_code == 422 and "不含社区" in wrong.json()["detail_zh"], wrong.text


def test_gridmap_print_writes_the_sheet(published, database_url: str, tmp_path) -> None:
    import os

    _, community, version = published
    env = {**os.environ, "GRIDMAP_DATABASE_URL": database_url}
    out = tmp_path / "墙图.png"
    done = subprocess.run([sys.executable, "-m", "gridmap.cli", "print", "--community", community, "--out", str(out),
                           "--paper", "A3"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\x89PNG") and f"plan version {version}" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "gridmap.cli", "print", "--community", community, "--out",
                            str(tmp_path / "sheet.svg")], env=env, capture_output=True, text=True)
    assert wrong.returncode != 0 and ".pdf or .png" in wrong.stderr


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 7), st.integers(2, 7), st.lists(st.integers(0, 3), min_size=49, max_size=49))
def test_touching_grids_never_share_a_colour(columns: int, rows: int, merges: list[int]) -> None:
    """A lattice of cells, some merged with their right neighbour into L- and bar-shaped grids."""
    cells = [[shapely.box(x, y, x + 1, y + 1) for x in range(columns)] for y in range(rows)]
    grids = []
    for y in range(rows):
        x = 0
        while x < columns:
            width = 2 if merges[y * 7 + x] == 0 and x + 1 < columns else 1
            grids.append(shapely.union_all(cells[y][x:x + width]))
            x += width
    geoms = np.array(grids, dtype=object)
    colours = wallmap.neighbour_colours(geoms)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    touching = left != right
    assert not np.any(colours[left[touching]] == colours[right[touching]])
    assert colours.max() < len(wallmap.PALETTE)


def test_labels_inside_their_grid_and_legend_against_the_band() -> None:
    from datetime import date

    ring = shapely.box(0, 0, 900, 900).difference(shapely.box(150, 150, 750, 750))  # a grid wrapped around another
    grids = gpd.GeoDataFrame({"grid_code": ["440303001001001", "440303001001002", "440303001001003"],
                              "grid_name": [None, None, None], "kind": ["comprehensive", "comprehensive", "dedicated"],
                              "households": [280, 520, 0], "worker": [None, "王芳", None]},
                             geometry=[ring, shapely.box(150, 150, 750, 750), shapely.box(900, 0, 1000, 900)],
                             crs=32650)
    labels = wallmap.grid_labels(grids, mm_per_m=0.2, lang="zh", community_code="440303001001")
    assert [label.code for label in labels] == ["001", "002", "003"]
    for label, geom in zip(labels, grids.geometry):
        assert geom.contains(shapely.Point(label.x, label.y))
        assert 4 <= label.size_pt <= 11
    assert labels[0].text.endswith("280 户")
    sheet = wallmap.WallMapSheet("莲花社区", "福田区", 3, "published", (300, 500), "A4", "pdf", "zh", date(2026, 12, 3))
    header, shares, rows = wallmap.legend_table(grids, sheet)
    assert header == ["网格编码", "户数", "户数标准 300–500", "网格员"]  # no grid has a name: no name column
    assert abs(sum(shares) - 1) < 1e-9
    assert [r[2] for r in rows] == ["少 20", "多 20", "专属网格"]
    english = wallmap.WallMapSheet("Lianhua", "Futian", 3, "published", (300, 500), "A4", "pdf", "en", date(2026, 12, 3))
    assert [r[2] for r in wallmap.legend_table(grids, english)[2]] == ["20 below", "20 above", "dedicated"]


def test_sheet_orientation_scale_and_bad_requests() -> None:
    assert wallmap.sheet_size_mm("A4", (0, 0, 2000, 1000)) == (297.0, 210.0)
    assert wallmap.sheet_size_mm("A3", (0, 0, 1000, 2000)) == (297.0, 420.0)
    assert wallmap.nice_scale_length(2600) == 500 and wallmap.nice_scale_length(90) == 10
    with pytest.raises(Invalid) as refused:
        WallMapRequest("440303001001", paper="Letter")
    assert "纸张" in refused.value.zh
    with pytest.raises(Invalid):
        WallMapRequest("440303001001", format="svg")


def test_a_legend_cell_is_cut_to_its_column() -> None:
    """A long dedicated grid's name ran into the households column: each cell is cut to its own
    column's width (a Chinese character an em, others about half), ending in "…"."""
    assert wallmap.fitted("第一网格", 5.0) == "第一网格"
    cut = wallmap.fitted("成都市棕北中学第五校区", 6.0)
    assert cut.endswith("…") and wallmap.text_width_em(cut) <= 6.0 and cut.startswith("成都市棕北")
    assert wallmap.fitted("Zongbei Middle School, fifth campus", 10.0).startswith("Zongbei Mi")
    assert wallmap.text_width_em("ab") == 1.2 and wallmap.text_width_em("中文") == 2.0


def test_the_sheet_reads_the_houses_and_says_the_town(published) -> None:
    """What the sheet shows beside the grids: the community's buildings (a grid worker finds their
    houses by them) and, in its subtitle, the street or town between the plan's territory and the
    community (洪雅县 城关镇)."""
    from gridmap.services.printing import gather

    engine, community, _ = published
    data = gather(engine, WallMapRequest(community))
    with engine.connect() as conn:
        parent, parent_name, territory_name = conn.execute(sa.text(
            "SELECT p.code, p.name, (SELECT name FROM territories WHERE code = :m) FROM territories t "
            "JOIN territories p ON p.id = t.parent_id WHERE t.code = :c"), {"c": community, "m": MONACO}).one()
    assert data.buildings is not None and len(data.buildings) > 10
    expected = territory_name if parent == MONACO else f"{territory_name} {parent_name}"
    assert data.place_name == expected
    assert wallmap.WallMapSheet.of(data).territory_name == expected
    # the rule itself, on a county's plan and on a town's own plan
    from gridmap.services.printing import where_it_lies
    from gridmap.store.territories import TerritoryRow

    town = TerritoryRow(1, "511423101", "城关镇", "street", "511423", None)
    assert where_it_lies("511423", "洪雅县", town) == "洪雅县 城关镇"
    assert where_it_lies("511423101", "城关镇", town) == "城关镇"
    assert where_it_lies("511423", "洪雅县", None) == "洪雅县"


def test_micro_grids_are_labelled_by_their_own_digits_where_they_have_room() -> None:
    """A micro-grid's label is the digits below its grid's code, where the micro-grid is about
    three labels wide on the sheet; a small one stays unlabelled."""
    grid = "511423101201001"
    frame = gpd.GeoDataFrame({"microgrid_code": [grid + "001", grid + "002", "X9"], "grid_code": [grid, grid, grid]},
                             geometry=[shapely.box(0, 0, 200, 200), shapely.box(200, 0, 203, 3), shapely.box(0, 300, 50, 350)],
                             crs=32648)
    labels = wallmap.microgrid_labels(frame, mm_per_m=0.5)  # 1:2,000
    assert [(label.code, label.text) for label in labels] == [(grid + "001", "001"), ("X9", "X9")]
    assert shapely.box(0, 0, 200, 200).contains(shapely.Point(labels[0].x, labels[0].y))
