"""The front door in a real browser against real processes: sign-in, roles, CSRF, sign-out, languages, axe."""

from __future__ import annotations

import re

import requests

from tests.browser.frontdoor import assert_accessible, check_page, screenshots, sign_in, visit_in_catalog

COORDINATOR_NAV = ["Courses", "Faculty", "Visits", "Incoming requests", "Outgoing requests", "Student applications",
                   "Partners"]
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
    # sdu-sie runs nothing in this stack: its page says the catalog could not reach it, in words
    assert partner.get_attribute("data-state") in ("failing", "unknown")
    assert "{'" not in partner.inner_text()


def test_a_faculty_member_sees_their_navigation_and_is_refused_coordinator_pages(page, stack):
    sign_in(page, stack, "faculty")
    assert page.get_by_test_id("person-name").inner_text() == "Zhang Min"
    assert nav_links(page) == FACULTY_NAV
    assert page.url.startswith(stack.url + "/exchange/visits")
    page.get_by_role("navigation", name="Your pages").get_by_role("link", name="My profile").click()
    assert page.get_by_role("heading", level=1).inner_text() == "My profile"
    for path in ("/manage/courses", "/manage/partners", "/manage/requests/incoming"):
        response = page.goto(stack.url + path)
        assert response.status == 403, path
        assert page.get_by_role("heading", level=1).inner_text() == "Not for your role"
        assert "MEM-6101" not in page.content()


def test_someone_not_signed_in_is_sent_to_sign_in_and_brought_back(page, stack):
    page.goto(stack.url + "/manage/partners")
    page.wait_for_url(stack.idp_url + "/**")
    page.locator("input[name=sub]").fill(f"coordinator@{stack.school}")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(stack.url + "/manage/partners")
    assert page.get_by_role("heading", level=1).inner_text() == "Partners"


def test_an_account_with_no_role_at_the_school_is_refused_with_a_clear_page(page, stack):
    # the provider knows this person, but gives them no group the school maps to a role
    sign_in(page, stack, "visitor@example.org")
    assert page.get_by_role("heading", level=1).inner_text() == "You cannot sign in here"
    assert "has no role at this school" in page.get_by_test_id("refusal").inner_text()
    assert page.get_by_test_id("person-name").count() == 0
    assert page.goto(stack.url + "/manage/courses").url.startswith(stack.idp_url)


def test_a_form_posted_without_its_csrf_token_is_refused_with_a_page_not_an_error(page, stack):
    sign_in(page, stack, "coordinator")
    refused = page.request.post(stack.url + "/signout", form={"anything": "1"})
    assert refused.status == 400
    assert "The form could not be accepted" in refused.text() and "<h1>" in refused.text()
    # and the session is still there: nothing was done
    page.goto(stack.url + "/manage/courses")
    assert page.get_by_test_id("person-name").is_visible()


def test_sign_out_ends_the_session_here_and_at_the_provider(page, context, browser, stack):
    sign_in(page, stack, "coordinator")
    old = [c for c in context.cookies() if c["name"] == "frontdoor_session"]
    assert old and old[0]["httpOnly"] and old[0]["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    # the provider's end-session page (the ID token went there in a POST form, never in a URL)
    page.wait_for_url(stack.idp_url + "/oauth2/end_session**")
    assert "id_token_hint" not in page.url
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(stack.url + "/")
    assert page.get_by_role("link", name="Sign in").is_visible()
    assert page.goto(stack.url + "/manage/courses").url.startswith(stack.idp_url)
    # the old cookie, replayed in another browser, opens nothing
    other = browser.new_context()
    try:
        other.add_cookies(old)
        replay = other.new_page()
        replay.goto(stack.url + "/manage/courses")
        assert replay.url.startswith(stack.idp_url)
    finally:
        other.close()


def test_the_language_chosen_is_remembered_across_pages(page, stack):
    sign_in(page, stack, "coordinator")
    page.get_by_test_id("lang-switch").click()
    page.wait_for_url("**lang=zh**")
    assert page.get_by_role("heading", level=1).inner_text() == "课程"
    page.get_by_role("navigation", name="您的页面").get_by_role("link", name="合作院校").click()
    assert "lang=" not in page.url
    assert page.get_by_role("heading", level=1).inner_text() == "合作院校"
    assert page.get_by_role("button", name="退出登录").is_visible()
    page.goto(stack.url + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"


def test_sign_in_and_out_work_by_keyboard_alone(page, stack):
    page.goto(stack.url + "/")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Sign in":
            break
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url(stack.idp_url + "/**")
    page.locator("input[name=sub]").focus()
    page.keyboard.type(f"coordinator@{stack.school}")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.url + "/**")
    assert page.get_by_test_id("person-name").is_visible()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Sign out":
            break
    focused = page.locator(":focus")
    assert focused.inner_text() == "Sign out"
    assert focused.evaluate("e => getComputedStyle(e).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(stack.idp_url + "/oauth2/end_session**")


def test_every_page_has_security_headers_and_a_policy_without_inline_script(page, stack):
    sign_in(page, stack, "coordinator")
    for path in ("/", "/manage/courses", "/manage/partners", "/signin"):
        response = page.request.get(stack.url + path, max_redirects=0)
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"
    html = page.content()
    assert "<script>" not in html and " style=" not in html


PAGES = {
    "catalog-home": ("student", "/"),
    "manage-courses": ("coordinator", "/manage/courses"),
    "manage-partners": ("coordinator", "/manage/partners"),
    "manage-faculty": ("coordinator", "/manage/faculty"),
    "manage-visits": ("coordinator", "/manage/visits"),
    "my-profile": ("faculty", "/me/profile"),
    "my-requests": ("faculty", "/exchange/requests"),
    "request-slot": ("faculty", None),
    "manage-requests-incoming": ("coordinator", "/manage/requests/incoming"),
    "manage-requests-outgoing": ("coordinator", "/manage/requests/outgoing"),
    "exchange-visits": ("faculty", "/exchange/visits"),
    "forbidden": ("faculty", "/manage/courses"),
}


def test_every_front_door_page_passes_axe_in_both_languages_at_phone_and_desktop_width(page, context, stack):
    signed_in_as = None
    for name, (user, path) in PAGES.items():
        if user != signed_in_as:
            context.clear_cookies()
            sign_in(page, stack, user)
            signed_in_as = user
        if path is None:  # the first slot's request form
            # in English: the language chosen on the page before is remembered
            page.goto(stack.url + "/exchange/visits?lang=en")
            path = page.get_by_role("link", name="Request this slot").first.get_attribute("href")
        check_page(page, stack.url + path, name)
    context.clear_cookies()
    page.goto(stack.url + "/signin")
    page.goto(stack.url + "/manage/courses")  # not signed in: sent to the provider
    assert page.url.startswith(stack.idp_url)


def test_no_token_or_authorization_code_reaches_a_log_or_a_url(page, stack):
    seen_urls = []
    page.on("request", lambda request: seen_urls.append(request.url))
    sign_in(page, stack, "coordinator")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(stack.idp_url + "/oauth2/end_session**")
    # a JWT starts with base64url of '{"' : eyJ
    assert not [u for u in seen_urls if "eyJ" in u or "id_token" in u or "access_token" in u], seen_urls
    for name in ("catalog", "courses", "faculty"):
        log = stack.services[name].web.log_path.read_text(errors="replace")
        assert "eyJ" not in log and "code=" not in log and "Bearer" not in log, name


def _feed_url(page) -> str:
    field = page.get_by_label("Subscription link")
    assert field.get_attribute("readonly") is not None
    url = field.input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/calendar/[A-Za-z0-9_-]{40,}\.ics", url), url
    return url


def _calendar(url: str):
    import icalendar

    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/calendar")
    assert response.headers["Cache-Control"] == "private, no-store"
    return icalendar.Calendar.from_ical(response.content)


def _get_replace_and_turn_off_the_feed(page, stack, user: str, path: str, name: str) -> tuple[list, object]:
    """Get a link, fetch it, replace it (the old one 404), turn it off (404); returns the URLs and the calendar."""
    sign_in(page, stack, user)
    page.goto(stack.url + path)
    section = page.locator("#calendar-feed")
    assert section.get_by_role("heading", name="Calendar feed").is_visible()
    assert section.get_by_label("Subscription link").count() == 0
    section.get_by_role("button", name="Get a calendar link").click()
    page.wait_for_url(f"**{path}#calendar-feed")
    assert "Your calendar link is ready" in page.get_by_test_id("flash").inner_text()
    first = _feed_url(page)
    cal = _calendar(first)
    assert_accessible(page)
    screenshots(page, name)
    page.get_by_role("button", name="Replace the link").click()
    page.wait_for_url(f"**{path}#calendar-feed")
    assert "the old link no longer works" in page.get_by_test_id("flash").inner_text()
    second = _feed_url(page)
    assert second != first
    assert requests.get(first, timeout=10).status_code == 404
    _calendar(second)
    page.get_by_role("button", name="Turn off the link").click()
    page.wait_for_url(f"**{path}#calendar-feed")
    assert "turned off" in page.get_by_test_id("flash").inner_text()
    assert page.get_by_label("Subscription link").count() == 0
    assert page.get_by_role("button", name="Get a calendar link").is_visible()
    assert requests.get(second, timeout=10).status_code == 404
    return [first, second], cal


def test_a_faculty_member_and_a_coordinator_get_replace_and_turn_off_their_private_calendar_feeds(page, context,
                                                                                                 stack):
    seen_urls = []
    page.on("request", lambda request: seen_urls.append(request.url))
    urls, cal = _get_replace_and_turn_off_the_feed(page, stack, "faculty", "/exchange/requests",
                                                   "calendar-feed-faculty")
    assert cal.get("x-wr-calname") == "My exchange slots"
    context.clear_cookies()
    own = visit_in_catalog(stack, stack.school, invited=["sdu-sie"])
    more, cal = _get_replace_and_turn_off_the_feed(page, stack, "coordinator", "/manage/visits",
                                                   "calendar-feed-coordinator")
    assert cal.get("x-wr-calname") == "Teaching-team visits"
    events = cal.walk("VEVENT")
    wanted = {f"visit-{own['id']}-slot-{slot['id']}@{stack.school}.alliance-catalog" for slot in own["slots"]}
    assert wanted and {str(e.get("uid")) for e in events} >= wanted
    secrets = [u.rsplit("/", 1)[1].removesuffix(".ics") for u in urls + more]
    # the secrets are in the pages' bodies only: never in a URL the browser asked for, nor in a log
    assert not [u for u in seen_urls if any(s in u for s in secrets)]
    log = stack.services["catalog"].web.log_path.read_text(errors="replace")
    assert "/calendar/<secret>.ics" in log and not [s for s in secrets if s in log]
