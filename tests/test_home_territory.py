"""Which territory a page opens on (places.js, one rule for the planner, the people of the grids
and emergency command), in real headless Chromium on a database of two planned territories:
雨城区 (listed first) and Monaco. A grid worker of a Monaco community opens every page on Monaco,
the district above their community; an administrator of 雨城区 opens on 雨城区; an address's
``?territory=`` wins over both; the people page remembers one user's pick, not the next user's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import DISTRICT

PASSWORD = "home territory password"
MONACO = "980100"


@pytest.mark.browser
def test_every_page_opens_on_the_users_own_area(district: sa.Engine, database_url: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from gridmap.services import planning
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import users
    from samples import launch_chromium, serve

    load_demo(district, ["monaco"])
    planning.publish(district, partition_territory(district, MONACO).plan_id, version=None, actor="test")
    with district.connect() as conn:
        community = conn.execute(sa.text(
            "SELECT code FROM territories WHERE level = 'community' AND code LIKE :d ORDER BY code LIMIT 1"),
            {"d": MONACO[:4] + "%"}).scalar_one()  # levels below the territory planned
        listed = [row[0] for row in conn.execute(sa.text(
            "SELECT code FROM territories WHERE code IN (:a, :b) ORDER BY code"), {"a": DISTRICT, "b": MONACO})]
    assert listed[0] == DISTRICT  # the worker's area is not the first a page lists
    with district.begin() as conn:
        users.create_user(conn, "mona", PASSWORD)
        users.grant(conn, "mona", "worker", community)
        users.grant(conn, "mona", "planner", community)
        users.create_user(conn, "leo", PASSWORD)
        users.grant(conn, "leo", "worker", community)
        users.create_user(conn, "chief", PASSWORD)
        users.grant(conn, "chief", "admin", DISTRICT)

    def opened_on(page, path: str, name: str, expected: str) -> str:
        """The territory the page shows once ``name`` signs in: ``expected`` as soon as the page
        picks it (a page may list the territories before the sign-in), else what it shows after 15 s."""
        page.goto(f"{url}{path}")
        page.fill("#username", name)
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_selector("#logout:not([hidden])")
        try:
            page.wait_for_function("want => document.querySelector('#territory').value === want", arg=expected,
                                   timeout=15000)
        except PlaywrightTimeout:
            pass
        return page.eval_on_selector("#territory", "s => s.value")

    with serve(database_url) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        errors: list[str] = []
        for path in ("/people", "/emergency", "/planner"):
            for name, asked, expected in (("mona", "", MONACO), ("chief", "", DISTRICT),
                                          ("mona", f"?territory={DISTRICT}", DISTRICT)):
                context = browser.new_context()  # a device of its own: nothing remembered from another page
                page = context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                assert opened_on(page, path + asked, name, expected) == expected, (path + asked, name)
                context.close()
        # the planner keeps a territory picked by hand before the sign-in (its address shows every
        # territory it opens, picked or not)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/planner")
        page.wait_for_function("document.querySelector('#territory').value !== ''", timeout=30000)
        page.select_option("#territory", MONACO[:4] + "01")  # Monaco's district, listed and not planned
        page.fill("#username", "chief")
        page.fill("#password", PASSWORD)
        with page.expect_request(lambda r: r.url.endswith("/plans")) as signed_in:  # the territories read again
            page.click("#login-button")
        assert f"/api/territories/{MONACO[:4]}01/plans" in signed_in.value.url
        assert page.eval_on_selector("#territory", "s => s.value") == MONACO[:4] + "01"
        context.close()
        # the people page remembers a pick per user on one device: mona's, not the next user's
        context = browser.new_context()
        page = context.new_page()
        assert opened_on(page, "/people", "mona", MONACO) == MONACO
        page.select_option("#territory", DISTRICT)  # (she may not read its people; the pick is kept all the same)
        page.wait_for_function(f"localStorage.getItem('gridmap.peopleTerritory.mona') === '{DISTRICT}'")
        for name, expected in (("mona", DISTRICT), ("leo", MONACO)):
            page.evaluate("() => sessionStorage.clear()")  # signed out: the next sign-in
            assert opened_on(page, "/people", name, expected) == expected, name
        context.close()
        assert errors == []
