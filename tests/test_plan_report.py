"""Every plan has a working report: a function of its assignment alone, so a copy of the
published plan reports exactly what the partition did, an edit changes it, and it is kept per
edit version. The page answers a page, also to a reader who may not see the plan."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.services import planning
from gridmap.services.partitioning import partition_territory
from samples import signed_in_client

MONACO = "980100"


@pytest.fixture
def plans(monaco_built: sa.Engine):
    monaco = monaco_built  # Monaco with its units built (conftest)
    summary = partition_territory(monaco, MONACO)
    planning.publish(monaco, summary.plan_id, version=None, actor="test")
    draft, _ = planning.new_draft(monaco, MONACO, actor="test")
    return summary, draft


CJK = re.compile(r"[\u4e00-\u9fff]")


def map_tooltip(page) -> str:
    """The report map's tooltip as shown (hidden text left out) over a grid, the mouse moved there
    for real (the map is folium's, in an iframe of the page)."""
    import shapely.geometry

    frame = next(f for f in page.frames if f.url == "about:srcdoc")
    find = """() => Object.keys(window).filter(k => k.startsWith('geo_json_')).map(k => window[k])
        .find(v => v && v.getLayers).getLayers()[0].feature.geometry"""
    inside = shapely.geometry.shape(frame.evaluate(find)).representative_point()
    x, y = frame.evaluate("""([lat, lng]) => { const m = Object.keys(window).filter(k => k.startsWith('map_'))
        .map(k => window[k]).find(v => v && v.latLngToContainerPoint);
        const p = m.latLngToContainerPoint([lat, lng]); return [p.x, p.y]; }""", [inside.y, inside.x])
    page.evaluate("document.querySelector('#map iframe').scrollIntoView({block: 'start'})")
    box = page.query_selector("#map iframe").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 40)  # below the map: the tooltip closes
    page.wait_for_timeout(100)
    for dx in (0, 1, 0):  # in, and a pixel on: Leaflet reads the pointer on the canvas at most every 32 ms
        page.mouse.move(box["x"] + x + dx, box["y"] + y, steps=6)
        page.wait_for_timeout(80)
    frame.wait_for_selector(".leaflet-tooltip", timeout=5000)
    return frame.inner_text(".leaflet-tooltip")


def _comparable(report: dict) -> tuple:
    summary = {k: v for k, v in report["summary"].items() if k != "seed"}
    flags = sorted((f["grid_code"], f["flag"], f["reason"], f["reason_zh"]) for f in report["flags"])
    return summary, flags, report["histogram"]


def test_a_copy_reports_what_the_partition_did(plans, monaco: sa.Engine) -> None:
    summary, draft = plans
    original = planning.report(monaco, summary.plan_id)
    copy = planning.report(monaco, draft)
    assert _comparable(copy) == _comparable(original)
    assert copy["summary"]["grids"] == len(summary.result.grids)
    assert sum(copy["histogram"]["counts"]) == copy["summary"]["comprehensive"]
    # every flag says why in both languages
    assert copy["flags"] and all(f["reason"] and any("\u4e00" <= ch <= "\u9fff" for ch in f["reason_zh"])
                                 for f in copy["flags"])
    # the grids outside the band are exactly the flagged ones (no silent misses)
    grids = summary.result.grids
    comp = grids[grids["kind"] == "comprehensive"]
    outside = set(comp.loc[~comp["households"].between(300, 500), "grid_code"])
    band_flags = {f["grid_code"] for f in copy["flags"] if f["flag"] in ("infeasible_band", "below_min", "above_max")}
    assert band_flags == outside


def test_an_edit_changes_the_report_and_it_is_kept_per_version(plans, monaco: sa.Engine) -> None:
    summary, draft = plans
    before = planning.report(monaco, draft)
    grids = summary.result.grids
    comp = grids[grids["kind"] == "comprehensive"].sort_values("grid_code")
    units = summary.result.units
    # merge the two first comprehensive grids of a community with several: one grid less
    community = comp.groupby("community_code").size().idxmax()
    a, b = comp[comp["community_code"] == community]["grid_code"].iloc[:2]
    result = planning.apply_edits(monaco, draft, [{"op": "merge", "grids": [a, b], "into": a}], version=1, actor="test")
    after = planning.report(monaco, draft)
    assert after["summary"]["grids"] == before["summary"]["grids"] - 1
    merged = int(units.loc[units["grid_code"].isin([a, b]), "households"].sum())
    assert after["summary"]["households_max"] >= merged or merged > 500 and any(
        f["grid_code"] == a for f in after["flags"])
    with monaco.connect() as conn:
        stored = conn.execute(sa.text("SELECT report_version, lock_version FROM plans WHERE id = :p"),
                              {"p": draft}).one()
    assert stored.report_version == stored.lock_version == result.version
    # asked again at the same version: the stored report, not a new computation
    with monaco.begin() as conn:
        conn.execute(sa.text("UPDATE plans SET report = jsonb_set(report, '{summary,grids}', '-1') WHERE id = :p"),
                     {"p": draft})
    assert planning.report(monaco, draft)["summary"]["grids"] == -1


def test_an_exports_flags_describe_the_grids_it_read_though_the_draft_is_edited_meanwhile(
        plans, monaco: sa.Engine) -> None:
    """The export reads the grids and the report's flags in one snapshot: a merge committed
    between the two reads (another planner's edit) shows in neither, and nothing is stored from
    the snapshot's stale view."""
    from gridmap.services import reading
    from gridmap.services.exporting import ExportRequest, gather, with_flags

    summary, draft = plans
    grids = summary.result.grids
    comp = grids[grids["kind"] == "comprehensive"].sort_values("grid_code")
    community = comp.groupby("community_code").size().idxmax()
    a, b = comp[comp["community_code"] == community]["grid_code"].iloc[:2]
    # merged, they are above the band: the report of the edited draft flags the merged grid
    assert comp.set_index("grid_code").loc[[a, b], "households"].sum() > 500
    with monaco.begin() as conn:  # no report kept: the export must compute it
        conn.execute(sa.text("UPDATE plans SET report_version = NULL WHERE id = :p"), {"p": draft})
    request = ExportRequest(territory=MONACO, plan="draft", layers=("grids",))
    with reading.snapshot(monaco) as conn:
        plan, layers = gather(conn, request)
        planning.apply_edits(monaco, draft, [{"op": "merge", "grids": [a, b], "into": a}], version=plan.lock_version,
                             actor="other planner")
        seen = planning.report_in(conn, plan.id)
        flagged = with_flags(seen.report, layers)["grids"]
    assert not seen.kept and seen.version == plan.lock_version
    assert planning.keep_report(monaco, seen) is False  # edited since: the stale report is not kept
    with monaco.connect() as conn:
        kept = conn.execute(sa.text("SELECT report_version FROM plans WHERE id = :p"), {"p": draft}).scalar()
    assert kept is None
    with monaco.connect() as conn:  # seen at the plan's current version: kept, as an export keeps it
        fresh = planning.report_in(conn, draft)
    assert not fresh.kept and planning.keep_report(monaco, fresh) is True
    with monaco.connect() as conn:
        assert planning.report_in(conn, draft).kept
    before = planning.report(monaco, summary.plan_id)  # the published plan's: what the draft was a copy of
    assert {a, b} <= set(flagged["grid_code"])  # the grids as read, the merge not in them
    said: dict[str, set] = {}
    for f in before["flags"]:
        said.setdefault(f["grid_code"], set()).add(f["flag"])
    assert said  # Monaco's plan has flags to carry
    for row in flagged.itertuples():
        flags = set(row.flag.split(",")) if isinstance(row.flag, str) and row.flag else set()
        assert flags == said.get(row.grid_code, set()), row.grid_code
    after = planning.report(monaco, draft)  # the draft now: computed afresh for its new version
    assert after["summary"]["grids"] == before["summary"]["grids"] - 1


def test_report_api_and_page_work_for_a_draft(plans, monaco: sa.Engine, database_url: str) -> None:
    _, draft = plans
    client = signed_in_client(monaco, database_url, "planner", "planner", MONACO)
    api = client.get(f"/api/plans/{draft}/report")
    assert api.status_code == 200 and api.json()["summary"]["grids"] > 0
    page = client.get(f"/plans/{draft}/report")
    assert page.status_code == 200, page.text[:300]
    # each text in one language at a time (the page's switch): Chinese shown, English beside it
    assert 'data-zh="户数分布" data-en="Households per grid">户数分布<' in page.text
    assert 'data-en="Flags (' in page.text and '>问题清单（' in page.text
    assert f"{MONACO} Monaco · 方案 " in page.text and f'data-en="{MONACO} Monaco · plan ' in page.text  # the title
    assert "（草稿）" in page.text and "(draft)" in page.text
    assert f'id="to-planner" href="/planner?territory={MONACO}&amp;plan={draft}"' in page.text  # back to the planner
    assert '<button id="lang-switch"' in page.text and '<script src="/static/js/i18n.js">' in page.text
    assert not re.search(r">\d+\.000<", page.text)  # 384, not 384.000
    assert client.get(f"/api/plans/{draft}").json()["summary"]["grids"] == api.json()["summary"]["grids"]


def test_report_page_refuses_with_a_page(plans, database_url: str) -> None:
    _, draft = plans
    anonymous = TestClient(create_app(database_url=database_url))
    page = anonymous.get(f"/plans/{draft}/report")
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "只有登录的规划人员可以查看" in page.text and "only signed-in planners may read it" in page.text
    # the app's sign-in form on the page itself (signing in shows the report here), the switch, the way back
    assert '<form id="login"' in page.text and 'id="lang-switch"' in page.text
    assert f'href="/planner?plan={draft}"' in page.text and "/static/js/plan-report.js" in page.text
    missing = anonymous.get("/plans/999999/report")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    # the published plan's report is public
    published = anonymous.get("/api/territories/980100/plans").json()
    public_id = next(p["id"] for p in published if p["status"] == "published")
    assert anonymous.get(f"/plans/{public_id}/report").status_code == 200


def test_the_favicon_is_served_from_the_package(database_url: str) -> None:
    """Every page's automatic /favicon.ico request gets an icon (no 404 in the console)."""
    from gridmap.web import STATIC

    icon = TestClient(create_app(database_url=database_url)).get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content == (STATIC / "favicon.ico").read_bytes() and icon.content[:4] == b"\x00\x00\x01\x00"


@pytest.mark.browser
def test_signing_in_on_the_report_page_shows_the_report_there_in_one_language(plans, monaco: sa.Engine,
                                                                               database_url: str) -> None:
    """A draft's report asked for signed out: the refusal page's own sign-in form brings the report
    up on the same address within a few seconds (measured); it speaks the language chosen, switches
    like every page, and links back to the planner. A sign-in made on another page of the tab is
    used at once."""
    import time

    from playwright.sync_api import sync_playwright

    from samples import launch_chromium, serve
    from test_languages import misses

    _, draft = plans
    signed_in_client(monaco, database_url, "reader", "planner", MONACO, password="report reader")
    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/plans/{draft}/report")
        assert page.inner_text("#refusal") == "此方案是草稿，只有登录的规划人员可以查看。"
        assert page.is_visible("#login") and not misses(page, "zh")
        page.click("#lang-switch")
        assert page.inner_text("#refusal") == "This plan is a draft: only signed-in planners may read it."
        assert not misses(page, "en")
        page.fill("#username", "reader")
        page.fill("#password", "report reader")
        started = time.monotonic()
        page.click("#login-button")
        page.wait_for_selector("#summary table", timeout=30000)
        took = time.monotonic() - started
        assert took < 5, f"the report took {took:.1f} s to show after signing in"
        assert page.url == f"{url}/plans/{draft}/report"  # the report's own address, not the planner's
        # English, as chosen before signing in: no Chinese but the territory's name in the data
        assert page.evaluate("window.gridmapLang") == "en"
        assert page.inner_text("#histogram h2") == "Households per grid"
        assert page.inner_text("#title").startswith(f"{MONACO} Monaco · plan ") and "(draft)" in page.inner_text("#title")
        assert not misses(page, "en"), misses(page, "en")
        tip = map_tooltip(page)  # the map's tooltip speaks the page's language too
        assert "households" in tip and "grid" in tip and not CJK.search(tip), tip
        page.click("#lang-switch")  # the report's own switch
        assert page.inner_text("#histogram h2") == "户数分布" and not misses(page, "zh"), misses(page, "zh")
        tip = map_tooltip(page)
        assert "户数" in tip and "网格" in tip and "households" not in tip, tip
        frame = next(f for f in page.frames if f.url == "about:srcdoc")  # the map's scale: metres only, no miles
        scale = frame.eval_on_selector_all(".leaflet-control-scale-line", "els => els.map(e => e.textContent)")
        assert len(scale) == 1 and scale[0].endswith("m") and "mi" not in scale[0] and "ft" not in scale[0], scale
        href = page.get_attribute("#to-planner", "href")
        assert href == f"/planner?territory={MONACO}&plan={draft}"
        # a sign-in already in the tab: straight to the report, again measured
        started = time.monotonic()
        page.goto(f"{url}/plans/{draft}/report")
        page.wait_for_selector("#summary table", timeout=30000)
        took = time.monotonic() - started
        assert took < 5, f"the report took {took:.1f} s to show with the tab's sign-in"
        assert page.inner_text("#histogram h2") == "户数分布"
        page.click("#to-planner")
        page.wait_for_url(f"**/planner?territory={MONACO}&plan={draft}")
        assert errors == []
        browser.close()
