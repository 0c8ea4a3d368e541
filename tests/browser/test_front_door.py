"""The front door in a real browser against real processes: sign-in, roles, CSRF, sign-out, languages, axe."""

from __future__ import annotations

import re

import requests

from tests.browser.frontdoor import assert_accessible, screenshots, sign_in

COORDINATOR_NAV = ["Courses", "Faculty", "Visits", "Incoming requests", "Outgoing requests", "Partners"]
FACULTY_NAV = ["Exchange visits", "My requests", "My profile"]


def nav_links(page) -> list[str]:
    return [t.strip() for t in page.get_by_role("navigation", name="Your pages").get_by_role("link").all_inner_texts()]


def test_a_coordinator_signs_in_and_sees_their_name_and_navigation(page, stack):
    sign_in(page, stack, "coordinator")
    assert page.get_by_test_id("person-name").inner_text() == "Coordinator (ecnu-cto)"
    assert nav_links(page) == COORDINATOR_NAV
    assert page.get_by_role("link", name="Sign in").count() == 0
    assert page.get_by_role("button", name="Sign out").is_visible()
    # a coordinator lands on "Courses", read through the courses service with their own token
    assert page.url.startswith(stack.url + "/manage/courses")
    assert page.get_by_role("heading", level=1).inner_text() == "Courses"
    assert "MEM-6101" in page.locator("table").inner_text()
    statuses = set(page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)"))
    assert statuses == {"draft", "published", "withdrawn"}


def test_the_partners_page_shows_each_school_sync_status_lag_digest_and_dead_letters(page, stack):
    sign_in(page, stack, "coordinator")
    page.get_by_role("navigation", name="Your pages").get_by_role("link", name="Partners").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Partners"
    own = page.locator("section[data-school=ecnu-cto]")
    partner = page.locator("section[data-school=sdu-sie]")
    assert "Our school" in own.inner_text()
    for header in ("Lag", "Last digest check", "Dead-lettered"):
        assert header in partner.inner_text()
    assert re.search(r"\d+ events? dead-lettered", partner.inner_text())
