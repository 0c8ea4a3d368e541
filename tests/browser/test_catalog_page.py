"""The catalog page in a real browser (Debian's chromium driven by Playwright): search, filter, open, switch."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from devstack import servers
from services.catalog.app import create_app
from services.catalog.store import ReadModel
from services.catalog.sync import apply_event
from shared.mongo import database
from tests.catalogutil import course_body, event, faculty_body, visit_body

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ECNU, SDU = "ecnu-cto", "sdu-sie"


@pytest.fixture
def catalog_url(make_settings, mongo_uri):
    """sdu-sie's catalog, holding courses of both schools, served on a free loopback port."""
    from pymongo import MongoClient

    settings = make_settings(SDU, "catalog")
    client = MongoClient(mongo_uri, tz_aware=True)
    model = ReadModel(database(client, settings))
    model.ensure_indexes()
    teacher = faculty_body(ECNU)
    apply_event(model, event(teacher, "faculty.published.v1", service="faculty"), ECNU)
    apply_event(model, event(course_body(ECNU, instructors=[teacher["id"]])), ECNU)
    apply_event(model, event(course_body(ECNU, code="MEM-6205", title={"en": "Engineering Project Finance",
                                                                        "zh": "工程项目融资"}, credits=2)), ECNU)
    apply_event(model, event(course_body(SDU, code="EE-101", programme="ExecEd", languages=["zh"],
                                         title={"en": "Innovation Leadership", "zh": "创新领导力"},
                                         delivery="hybrid")), SDU)
    apply_event(model, event(visit_body(ECNU, invited=[SDU]), "visit.published.v1", service="visits"), ECNU)
    app = create_app(settings, client=client)
    port = servers.free_port()
    server = make_server(servers.HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{servers.HOST}:{port}"
    server.shutdown()
    thread.join(10)
    client.close()


@pytest.fixture
def page():
    if not __import__("os").path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (make system-deps)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        # nothing may leave loopback: the page has no external assets
        context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url
                      else route.abort())
        yield context.new_page()
        browser.close()


def test_a_student_searches_filters_opens_a_course_and_switches_to_chinese(page, catalog_url, artifacts_dir):
    page.goto(catalog_url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Alliance course catalog"
    assert page.get_by_role("heading", level=2).first.inner_text() == "3 courses"
    page.screenshot(path=str(artifacts_dir / "catalog-home.png"), full_page=True)

    page.get_by_label("Search courses").fill("project finance")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=project+finance**")
    cards = page.locator("article.card")
    assert cards.count() == 1 and "Engineering Project Finance" in cards.first.inner_text()
    assert "Partner school" in cards.first.inner_text()

    page.goto(catalog_url + "/")
    page.locator("summary").click()
    programme = page.get_by_label("Programme")
    options = [" ".join(o.split()) for o in programme.locator("option").all_text_contents()]
    assert "ExecEd (1)" in options and "MEM (2)" in options
    programme.select_option("ExecEd")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**programme=ExecEd**")
    assert page.locator("article.card").count() == 1
    assert "Our school" in page.locator("article.card").first.inner_text()
    page.screenshot(path=str(artifacts_dir / "catalog-filtered.png"), full_page=True)

    page.goto(catalog_url + "/?q=strategy")
    page.get_by_role("link", name="Technology Strategy and Innovation Management").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Technology Strategy and Innovation Management"
    assert "Li Wei" in page.locator("#instructors").inner_text()
    visits = page.locator("#visits").inner_text()
    assert "Digital transformation in manufacturing" in visits and "Guest lecture" in visits
    # each slot's time with its zone named (the visit names none: the offset the host wrote)
    assert "2099-04-14 09:00–11:00 (UTC+08:00)" in visits
    # one of the lecture's two places is taken; the workshop is full, and says so in words
    assert "Guest lecture" in visits and "1 place left" in visits and "1 places" not in visits
    assert page.locator("#visits li", has_text="Workshop").inner_text().endswith("Full")
    page.screenshot(path=str(artifacts_dir / "catalog-course.png"), full_page=True)

    page.get_by_test_id("lang-switch").click()
    page.wait_for_url("**lang=zh**")
    assert page.get_by_role("heading", level=1).inner_text() == "技术战略与创新管理"
    assert "李伟" in page.locator("#instructors").inner_text()
    assert "剩余 1 个名额" in page.locator("#visits").inner_text() and "已满" in page.locator("#visits").inner_text()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.screenshot(path=str(artifacts_dir / "catalog-course-zh.png"), full_page=True)
    page.get_by_role("link", name="返回搜索").click()
    assert page.get_by_role("heading", level=2).first.inner_text() == "共 3 门课程"


def test_the_page_works_by_keyboard_with_visible_focus_and_fits_a_phone(page, catalog_url, artifacts_dir):
    page.goto(catalog_url + "/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    assert skip.inner_text() == "Skip to results"
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("领导力")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=**")
    assert page.locator("article.card").count() == 1
    # nothing wider than the phone's screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for landmark in ("banner", "main", "contentinfo", "search"):
        assert page.get_by_role(landmark).count() >= 1, landmark
    page.screenshot(path=str(artifacts_dir / "catalog-phone-search.png"), full_page=True)


def test_typing_offers_course_titles_and_codes_and_the_matched_words_are_marked(page, catalog_url):
    page.goto(catalog_url + "/")
    box = page.get_by_label("Search courses")
    box.press_sequentially("engin", delay=30)
    options = page.locator("#q-suggestions option")
    # a locator wait, not wait_for_function: the page's Content-Security-Policy refuses the latter's eval
    options.first.wait_for(state="attached", timeout=10_000)
    values = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert "Engineering Project Finance" in values and "MEM-6205" in values
    box.fill("Engineering Project Finance")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=Engineering**")
    assert page.locator("article.card h3 mark").first.inner_text() == "Engineering"


def test_without_its_script_the_page_searches_the_same(page, catalog_url):
    page.route("**/suggest.js", lambda route: route.abort())
    page.goto(catalog_url + "/?q=leadership")
    cards = page.locator("article.card")
    assert cards.count() == 1 and "Innovation Leadership" in cards.first.inner_text()
