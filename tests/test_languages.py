"""Every page in each language, in real headless Chromium: the landing map, the planner (signed in,
a draft loaded, a grid selected, a comparison shown; the brush's options and the side-by-side map;
on a phone), the dashboard, the people and emergency pages and the phone report page (signed in,
located). In English no visible text, placeholder or tooltip holds a Chinese
character; in Chinese none holds a text the page itself gives as the English of one of its
elements. Data (territory names, codes) is Latin in the Monaco demo, so it cannot hide a miss."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gridmap.services import planning
from gridmap.store import users
from samples import launch_chromium, serve

MONACO = "980100"
PASSWORD = "both languages"
CJK = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
# the Chinese column names an English message quotes on purpose (a plan report's reason: "add one: a
# 单元数 column"): the header the office's sheet must have, not a missed translation
QUOTED_FIELDS = re.compile(r"单元数|单元")

VISIBLE_TEXTS = """(lang) => {
    const shown = el => {
        for (let e = el; e; e = e.parentElement) {
            const s = getComputedStyle(e);
            if (s.display === 'none' || s.visibility === 'hidden' || e.hidden) return false;
        }
        return true;
    };
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode, el = node.parentElement;
        if (!el || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEXTAREA'].includes(el.tagName)) continue;
        if (el.closest('#lang-switch')) continue;  // the switch names the other language on purpose
        const holder = el.closest('option') ? el.closest('select') : el;
        if (!shown(holder)) continue;
        const text = node.textContent.trim();
        if (text) texts.push(text);
    }
    document.querySelectorAll('[placeholder], [title]').forEach(el => {
        if (!shown(el) || el.closest('#lang-switch')) return;
        for (const a of ['placeholder', 'title']) { const v = el.getAttribute(a); if (v) texts.push(v); }
    });
    const other = [...document.querySelectorAll('[data-zh][data-en]')]
        .filter(el => el.dataset.zh !== el.dataset.en)
        .map(el => lang === 'zh' ? el.dataset.en : el.dataset.zh);
    return {texts, other: [...new Set(other)]};
}"""


@pytest.fixture
def site(monaco_published: sa.Engine, database_url: str) -> Iterator[tuple[sa.Engine, str, int]]:
    monaco = monaco_published  # Monaco with its first partition published (conftest)
    from gridmap.services.incidents import ensure_categories

    draft_id, _ = planning.new_draft(monaco, MONACO, actor="test")
    ensure_categories(monaco)
    with monaco.begin() as conn:
        users.create_user(conn, "bilingual", PASSWORD)
        users.grant(conn, "bilingual", "planner", MONACO)
        users.grant(conn, "bilingual", "worker", MONACO)
    with serve(database_url) as url:
        yield monaco, url, draft_id


def misses(page, lang: str) -> list[str]:
    """The visible texts in the wrong language (see the module docstring)."""
    found = page.evaluate(VISIBLE_TEXTS, lang)
    if lang == "en":
        return [t for t in found["texts"] if CJK.search(QUOTED_FIELDS.sub("", t))]
    english = [o for o in found["other"] if re.search(r"[A-Za-z]{3}", o)]
    wrong = []
    for text in found["texts"]:
        for o in english:
            if text == o or (len(o) >= 8 and o in text):
                wrong.append(f"{text!r} (the English of an element: {o!r})")
    return wrong


def walk(page, where: str) -> list[str]:
    """Both languages of the page as it stands: Chinese first (the default), English, back."""
    assert page.evaluate("window.gridmapLang") == "zh", where
    wrong = [f"{where} zh: {m}" for m in misses(page, "zh")]
    page.click("#lang-switch")
    wrong += [f"{where} en: {m}" for m in misses(page, "en")]
    page.click("#lang-switch")
    return wrong


def sign_in(page) -> None:
    page.fill("#username", "bilingual")
    page.fill("#password", PASSWORD)
    page.click("#login-button")


@pytest.mark.browser
def test_every_page_speaks_one_language_at_a_time(site) -> None:
    from playwright.sync_api import sync_playwright

    engine, url, draft_id = site
    with engine.connect() as conn:
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids g JOIN plans pl ON "
            "pl.id = g.plan_id AND pl.status = 'published' ORDER BY g.code LIMIT 1) s")).one()
    wrong: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        page.goto(url + "/")
        page.wait_for_load_state("networkidle")
        wrong += walk(page, "/")

        page.goto(f"{url}/planner?territory={MONACO}&plan={draft_id}")
        wrong += walk(page, "/planner (signed out)")
        sign_in(page)
        page.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
        code = page.evaluate("() => Object.keys(window.gridmapPlanner.grids).sort()[1]")
        page.fill("#search", code)
        page.press("#search", "Enter")
        page.wait_for_function(f"document.querySelector('#grid-code').textContent === '{code}'")
        page.click("#validate")
        page.wait_for_selector("#problems li")
        page.click("#diff")
        page.wait_for_function("!document.querySelector('#compare-figures').hidden")
        wrong += walk(page, "/planner (a grid selected, validated, compared)")

        page.click("button[data-tool='brush']")  # the brush's options shown
        page.click("#side-by-side")
        page.wait_for_function("window.gridmapPlannerSideMap() !== null")
        wrong += walk(page, "/planner (brush, side by side)")

        page.goto(url + "/dashboard")
        page.wait_for_function("document.querySelectorAll('#territory option').length > 0")
        page.wait_for_load_state("networkidle")
        wrong += walk(page, "/dashboard")

        for path in ("/people", "/emergency"):  # signed in already: the token is the page's
            page.goto(url + path)
            page.wait_for_function("document.querySelectorAll('#territory option').length > 0")
            page.wait_for_load_state("networkidle")
            wrong += walk(page, path)
            if path == "/people":  # Monaco has no households register: said so, and how to import it
                page.wait_for_function("document.getElementById('totals').textContent.length > 0")
                assert "住户登记尚未导入" in page.inner_text("#totals") and "gridmap households import" in page.inner_text("#totals")
                assert "0 户" not in page.inner_text("#totals")
                # the check box on its label's line, before its text
                box, text = page.evaluate("""() => ['#mine', '#mine + span'].map(s => {
                    const r = document.querySelector(s).getBoundingClientRect(); return [r.left, r.top, r.bottom]; })""")
                assert box[0] < text[0] and box[1] < text[2] and text[1] < box[2], (box, text)
        page.goto(f"{url}/plans/{draft_id}/report")  # the draft's report: the tab's sign-in shows it
        page.wait_for_selector("#summary table", timeout=30000)
        wrong += walk(page, "/plans/{id}/report")
        browser.close()

        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      geolocation={"latitude": lat, "longitude": lon, "accuracy": 10},
                                      permissions=["geolocation"])
        phone = context.new_page()
        phone.on("pageerror", lambda exc: errors.append(str(exc)))
        phone.goto(url + "/report")
        wrong += walk(phone, "/report (signed out)")
        sign_in(phone)
        phone.wait_for_function("document.querySelectorAll('#category option').length > 0")
        phone.click("#locate")
        phone.wait_for_function("document.querySelector('#place').textContent.length > 0")
        wrong += walk(phone, "/report (located)")
        for lang in ("zh", "en"):  # the header's buttons whole on the phone's screen, in both languages
            cut = phone.evaluate("""() => ['#lang-switch', '#logout', 'header nav a'].map(s => {
                const r = document.querySelector(s).getBoundingClientRect();
                return r.left < 0 || r.right > window.innerWidth + 0.5 || r.width === 0 ? s : null;
            }).filter(Boolean)""")
            assert not cut, (f"/report on a phone ({lang}): {cut} not whole on the screen", phone.evaluate(
                "() => [...document.querySelectorAll('header h1, header nav, header nav > *')].map(e => [e.tagName, e.id, "
                "e.textContent.trim().slice(0, 20), Math.round(e.getBoundingClientRect().left), "
                "Math.round(e.getBoundingClientRect().width)])"), phone.evaluate("window.innerWidth"))
            zoom = phone.evaluate("() => [document.querySelector('.leaflet-control-zoom-in').title, "
                                  "document.querySelector('.leaflet-control-zoom-out').title]")
            assert zoom == (["放大", "缩小"] if lang == "zh" else ["Zoom in", "Zoom out"]), zoom  # Leaflet's own
            phone.click("#lang-switch")
        phone.goto(f"{url}/planner?territory={MONACO}&plan={draft_id}")  # the planner on a phone
        phone.wait_for_function(f"document.body.dataset.planLoaded === '{draft_id}'", timeout=30000)
        wrong += walk(phone, "/planner (phone)")
        # every page at 390 px and on a narrow window (720 px), in both languages: the language switch
        # and the header's links whole on the screen, inside the header and each on one line (the
        # header wraps rather than hide them or break a word)
        for width in (390, 720):
            phone.set_viewport_size({"width": width, "height": 844})
            for path in ("/", "/planner", "/dashboard", "/people", "/emergency", "/report", f"/plans/{draft_id}/report"):
                phone.goto(url + path)
                phone.wait_for_load_state("networkidle")
                for lang in ("zh", "en"):
                    cut = phone.evaluate("""() => { const h = document.querySelector('header').getBoundingClientRect();
                        return [...document.querySelectorAll('#lang-switch, header nav a, header nav button')]
                        .filter(e => !e.hidden && getComputedStyle(e).display !== 'none').map(e => {
                        const r = e.getBoundingClientRect(), line = parseFloat(getComputedStyle(e).fontSize);
                        return r.left < 0 || r.right > window.innerWidth + 0.5 || r.top < 0 || r.bottom > window.innerHeight
                               || r.bottom > h.bottom + 0.5 || r.height > 2 * line + 12 || r.width === 0
                               ? (e.id || e.textContent.trim()) + ' ' + [r.left, r.right, r.bottom].map(Math.round) : null;
                    }).filter(Boolean); }""")
                    assert not cut, f"{path} at {width} px ({lang}): {cut} not whole on the screen"
                    phone.click("#lang-switch")
        browser.close()
    assert not wrong, "\n".join(wrong)
    assert not errors, errors
