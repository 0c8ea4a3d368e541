"""The coordinators' pages in a real browser against real processes: courses, faculty, visits, outgoing requests.

One school's stack (tests/browser/conftest.py) for the module: a coordinator
creates, edits and withdraws through the forms, the services refuse what is
wrong and the page shows it at the field, two coordinators race on one course,
and faculty and students are refused every page here.
"""

from __future__ import annotations

import re
import time
import uuid

import requests

from tests.browser.frontdoor import assert_accessible, screenshots, sign_in


def nav(page, name: str):
    page.get_by_role("navigation", name="Your pages").get_by_role("link", name=name, exact=True).click()


def course_row(page, code: str):
    return page.locator(f"tbody tr[data-code='{code}']")


def open_course(page, stack, code: str):
    page.goto(stack.url + "/manage/courses")
    course_row(page, code).get_by_role("link").click()
    page.wait_for_url(re.compile(r".*/manage/courses/[0-9a-f-]{36}$"))


def fill_course(page, code: str, title: str, credits: str = "3"):
    page.get_by_label("Code").fill(code)
    page.get_by_label("Title · English").fill(title)
    page.get_by_label("Title · Chinese").fill("工程管理前沿")
    page.get_by_label("Description · English").fill("What engineering managers meet next.")
    page.get_by_label("Programme").fill("MEM")
    page.get_by_label("Credits").fill(credits)
    page.get_by_label("Teaching languages").fill("en, zh")
    page.get_by_label("Learning outcomes · English").fill("Plan a project\nLead a team")
    page.get_by_label("Learning outcomes · Chinese").fill("规划项目\n领导团队")
    page.get_by_label("Visibility").select_option("alliance")
    page.get_by_label("Status", exact=True).select_option("published")
    offering = page.get_by_test_id("offering-0")
    offering.get_by_label("Term").fill("2027-spring")
    offering.get_by_label("Starts on").fill("2027-03-01")
    offering.get_by_label("Ends on").fill("2027-06-30")
    offering.get_by_label("Places").fill("30")


def test_a_coordinator_creates_a_course_through_new_course_and_it_appears_in_the_public_catalog(page, stack):
    sign_in(page, stack, "coordinator")
    page.get_by_role("link", name="New course").click()
    assert page.get_by_role("heading", level=1).inner_text() == "New course"
    fill_course(page, "MEM-7001", "Frontiers of Engineering Management")
    page.get_by_role("button", name="Create course").click()
    page.wait_for_url(stack.url + "/manage/courses")
    assert "MEM-7001" in page.get_by_test_id("flash").inner_text()
    row = course_row(page, "MEM-7001")
    assert row.get_attribute("data-status") == "published" and "Frontiers" in row.inner_text()
    # the course as the service holds it: every field the form gave
    open_course(page, stack, "MEM-7001")
    assert page.get_by_label("Learning outcomes · Chinese").input_value() == "规划项目\n领导团队"
    assert page.get_by_test_id("offering-0").get_by_label("Places").input_value() == "30"
    # the courses worker publishes it, the catalog worker applies it: the public catalog shows it
    deadline = time.monotonic() + 45
    while True:
        page.goto(stack.url + "/?q=MEM-7001")
        if "Frontiers of Engineering Management" in page.locator("main").inner_text():
            break
        assert time.monotonic() < deadline, "the new course never reached the public catalog"
        time.sleep(1)


def test_a_double_submitted_new_course_form_creates_one_course(page, stack):
    sign_in(page, stack, "coordinator")
    page.goto(stack.url + "/manage/courses/new")
    fill_course(page, "MEM-7002", "Twice Sent")
    form = page.locator("form.edit")
    fields = form.evaluate("f => Object.fromEntries(new FormData(f))")
    first = page.request.post(stack.url + "/manage/courses/new", form=fields, max_redirects=0)
    second = page.request.post(stack.url + "/manage/courses/new", form=fields, max_redirects=0)
    assert (first.status, second.status) == (302, 302)
    page.goto(stack.url + "/manage/courses")
    assert course_row(page, "MEM-7002").count() == 1


def test_a_bad_field_shows_its_message_at_that_field_and_keeps_every_value_typed(page, stack):
    sign_in(page, stack, "coordinator")
    page.goto(stack.url + "/manage/courses/new")
    fill_course(page, "MEM-7003", "Kept As Typed", credits="99")
    page.get_by_test_id("offering-0").get_by_label("Ends on").fill("2027-02-01")  # before it starts
    with page.expect_response(lambda r: r.url.endswith("/manage/courses/new") and r.request.method == "POST") as sent:
        page.get_by_role("button", name="Create course").click()
    assert sent.value.status == 422
    assert "Nothing was saved" in page.get_by_test_id("problem").inner_text()
    credits = page.get_by_label("Credits")
    assert credits.get_attribute("aria-invalid") == "true"
    assert "60" in page.get_by_test_id("error-f-credits").inner_text()  # the service's range, at the field
    assert "f-credits-error" in credits.get_attribute("aria-describedby")
    assert "starts_on" in page.get_by_test_id("error-f-offerings-0-ends-on").inner_text()
    # nothing typed is lost
    assert credits.input_value() == "99"
    assert page.get_by_label("Code").input_value() == "MEM-7003"
    assert page.get_by_label("Title · English").input_value() == "Kept As Typed"
    assert page.get_by_label("Learning outcomes · Chinese").input_value() == "规划项目\n领导团队"
    assert page.get_by_label("Visibility").input_value() == "alliance"
    assert page.get_by_test_id("offering-0").get_by_label("Term").input_value() == "2027-spring"
    assert_accessible(page)
    screenshots(page, "manage-course-errors")
    # corrected, it is created
    credits.fill("6")
    page.get_by_test_id("offering-0").get_by_label("Ends on").fill("2027-06-30")
    page.get_by_role("button", name="Create course").click()
    page.wait_for_url(stack.url + "/manage/courses")
    assert course_row(page, "MEM-7003").count() == 1


def test_two_coordinators_edit_one_course_and_the_second_sees_the_newer_version_and_can_reapply(browser, stack):
    first, second = browser.new_context(), browser.new_context()
    try:
        a, b = first.new_page(), second.new_page()
        for p in (a, b):
            sign_in(p, stack, "coordinator")
            open_course(p, stack, "MEM-6203")
        a.get_by_label("Title · English").fill("Renamed By The First")
        a.get_by_role("button", name="Save").click()
        a.wait_for_url(stack.url + "/manage/courses")
        b.get_by_label("Credits").fill("7.5")
        with b.expect_response(lambda r: r.request.method == "POST") as sent:
            b.get_by_role("button", name="Save").click()
        assert sent.value.status == 412
        assert "Someone else changed this" in b.get_by_test_id("problem").inner_text()
        newer = b.get_by_test_id("newer-version")
        assert "version 2" in newer.inner_text()
        assert b.get_by_test_id("newer-title").inner_text() == "Renamed By The First"
        assert b.get_by_label("Credits").input_value() == "7.5"  # the second person's change is kept
        screenshots(b, "manage-course-conflict")
        # saving again applies the second person's form over the newer version
        b.get_by_role("button", name="Save").click()
        b.wait_for_url(stack.url + "/manage/courses")
        row = course_row(b, "MEM-6203")
        assert "7.5" in row.inner_text() and row.locator("td").last.inner_text() == "3"
    finally:
        first.close()
        second.close()


def test_a_coordinator_withdraws_a_course_and_it_stays_listed_as_withdrawn(page, stack):
    sign_in(page, stack, "coordinator")
    open_course(page, stack, "MEM-6999")
    page.get_by_role("button", name="Withdraw").click()
    page.wait_for_url(stack.url + "/manage/courses")
    assert "withdrawn" in page.get_by_test_id("flash").inner_text()
    assert course_row(page, "MEM-6999").get_attribute("data-status") == "withdrawn"


def test_a_coordinator_creates_a_review_mode_visit_with_a_slot_then_cancels_it(page, stack):
    sign_in(page, stack, "coordinator")
    nav(page, "Visits")
    page.get_by_role("link", name="New visit").click()
    page.get_by_label("Theme · English").fill("Smart Manufacturing Week")
    page.get_by_label("Theme · Chinese").fill("智能制造周")
    page.get_by_label("Place").fill("Shanghai")
    page.get_by_label("Starts on").fill("2027-04-12")
    page.get_by_label("Ends on").fill("2027-04-16")
    page.get_by_label("Review, each request waits for the host").check()
    slot = page.get_by_test_id("slot-0")
    slot.get_by_label("Kind").select_option("workshop")
    slot.get_by_label("Starts").fill("2027-04-13T09:00")
    slot.get_by_label("Ends").fill("2027-04-13T11:00")
    slot.get_by_label("Capacity").fill("3")
    page.get_by_role("button", name="Publish visit").click()
    page.wait_for_url(stack.url + "/manage/visits")
    visit = page.locator("section.visit", has_text="Smart Manufacturing Week")
    assert visit.get_attribute("data-approval") == "review"
    assert "Asia/Shanghai" in visit.inner_text() and "2027-04-13 09:00" in visit.inner_text()
    assert visit.get_by_test_id("places-left").inner_text() == "3"
    # as the service holds it: the slot at 09:00 Shanghai time, in review mode
    token = stack.token()
    held = requests.get(stack.service_url("visits") + "/visits", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).json()["items"]
    mine = [v for v in held if v["theme"]["en"] == "Smart Manufacturing Week"][0]
    assert mine["approval"] == "review" and mine["slots"][0]["starts_at"] == "2027-04-13T09:00:00+08:00"
    visit.get_by_role("link").first.click()
    assert "3 places left" in page.get_by_test_id("slot-places-left").inner_text()
    assert page.get_by_test_id("slot-0").get_by_label("Starts").input_value() == "2027-04-13T09:00"
    page.get_by_role("button", name="Cancel visit").click()
    page.wait_for_url(stack.url + "/manage/visits")
    cancelled = page.locator("section.visit", has_text="Smart Manufacturing Week")
    assert cancelled.get_attribute("data-status") == "cancelled"


def test_a_visit_slot_outside_the_visit_dates_is_refused_at_its_field(page, stack):
    sign_in(page, stack, "coordinator")
    page.goto(stack.url + "/manage/visits/new")
    page.get_by_label("Theme · English").fill("Out Of Range")
    page.get_by_label("Place").fill("Jinan")
    page.get_by_label("Starts on").fill("2027-05-10")
    page.get_by_label("Ends on").fill("2027-05-11")
    slot = page.get_by_test_id("slot-0")
    slot.get_by_label("Kind").select_option("seminar")
    slot.get_by_label("Starts").fill("2027-05-20T09:00")
    slot.get_by_label("Ends").fill("2027-05-20T10:00")
    slot.get_by_label("Capacity").fill("2")
    page.get_by_role("button", name="Publish visit").click()
    assert "between" in page.get_by_test_id("error-f-slots-0-starts-at").inner_text()
    assert page.get_by_test_id("slot-0").get_by_label("Capacity").input_value() == "2"
    assert page.get_by_label("Theme · English").input_value() == "Out Of Range"


def test_a_coordinator_keeps_faculty_profiles_with_their_private_fields(page, stack):
    sign_in(page, stack, "coordinator")
    nav(page, "Faculty")
    assert "Zhang Min" in page.locator("table").inner_text()
    page.get_by_role("link", name="New profile").click()
    page.get_by_label("Name · English").fill("Li Wei")
    page.get_by_label("Academic title").fill("Associate Professor")
    page.locator("#f-department").fill("Industrial Engineering")
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Phone").fill("+86 21 6223 3333")
    page.get_by_label("Notes").fill("Prefers spring terms")
    page.get_by_role("button", name="Create profile").click()
    assert page.get_by_test_id("error-f-email").is_visible()
    assert page.get_by_label("Notes").input_value() == "Prefers spring terms"
    page.get_by_label("Email").fill("li.wei@example.edu")
    page.get_by_role("button", name="Create profile").click()
    page.wait_for_url(stack.url + "/manage/faculty")
    row = page.locator("tbody tr", has_text="Li Wei")
    assert "li.wei@example.edu" in row.inner_text() and "+86 21 6223 3333" in row.inner_text()
    row.get_by_role("link").click()
    page.locator("#f-department").fill("Industrial and Systems Engineering")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(stack.url + "/manage/faculty")
    row = page.locator("tbody tr", has_text="Li Wei")
    assert "Industrial and Systems Engineering" in row.inner_text()
    row.get_by_role("link").click()
    page.get_by_role("button", name="Withdraw").click()
    page.wait_for_url(stack.url + "/manage/faculty")
    assert page.locator("tbody tr", has_text="Li Wei").get_attribute("data-status") == "withdrawn"
    # the private fields are the coordinators' only: the faculty service gives others the public fields
    student = requests.get(stack.service_url("faculty") + "/faculty",
                           headers={"Authorization": f"Bearer {stack.token('student')}"}, timeout=10).json()
    assert student["items"] and all("email" not in p and "private_notes" not in p for p in student["items"])


def test_outgoing_requests_show_each_request_and_its_status(page, stack):
    sent = requests.post(stack.service_url("visits") + "/slot-requests", timeout=10, json={
        "visit_id": str(uuid.uuid4()), "host_school": "sdu-sie", "slot_id": str(uuid.uuid4()),
        "faculty_id": stack.faculty_id, "motivation": "Co-teach the workshop"},
        headers={"Authorization": f"Bearer {stack.token('faculty', stack.faculty_id)}",
                 "Idempotency-Key": str(uuid.uuid4())})
    assert sent.status_code == 201, sent.text
    sign_in(page, stack, "coordinator")
    nav(page, "Outgoing requests")
    assert page.get_by_role("heading", level=1).inner_text() == "Outgoing requests"
    row = page.locator("tbody tr").first
    assert "Zhang Min" in row.inner_text()
    assert row.get_by_test_id("request-status").inner_text() == "Pending"
    assert "Not received by the host yet" in row.inner_text()


MANAGE_PAGES = ("/manage/courses/new", "/manage/faculty", "/manage/faculty/new", "/manage/visits",
                "/manage/visits/new", "/manage/requests/outgoing")


def test_a_faculty_member_and_a_student_are_refused_every_coordinator_page(page, context, stack):
    for user in ("faculty", "student"):
        context.clear_cookies()
        sign_in(page, stack, user)
        for path in MANAGE_PAGES:
            response = page.goto(stack.url + path)
            assert response.status == 403, (user, path)
            assert page.get_by_role("heading", level=1).inner_text() == "Not for your role"
        # a form posted with a valid CSRF token is refused too: the role guard, not only the page, says no
        page.goto(stack.url + "/")
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        refused = page.request.post(stack.url + "/manage/courses/new", form={
            "csrf_token": token, "code": "SNEAK-1", "title_en": "x"}, max_redirects=0)
        assert refused.status == 403, user
    context.clear_cookies()
    sign_in(page, stack, "coordinator")
    assert course_row(page, "SNEAK-1").count() == 0


def test_every_coordinator_page_passes_axe_in_both_languages_at_phone_and_desktop_width(page, stack):
    sign_in(page, stack, "coordinator")
    pages = {"manage-courses": "/manage/courses", "manage-course-new": "/manage/courses/new",
             "manage-faculty": "/manage/faculty", "manage-faculty-new": "/manage/faculty/new",
             "manage-visits": "/manage/visits", "manage-visit-new": "/manage/visits/new",
             "manage-outgoing": "/manage/requests/outgoing"}
    page.goto(stack.url + "/manage/courses")
    open_course(page, stack, "MEM-6101")
    pages["manage-course-edit"] = page.url.removeprefix(stack.url)
    page.goto(stack.url + "/manage/faculty")
    page.locator("tbody tr", has_text="Zhang Min").get_by_role("link").click()
    pages["manage-faculty-edit"] = page.url.removeprefix(stack.url)
    visit = stack.post("visits", "/visits", {
        "theme": {"en": "Digital Twins Week", "zh": "数字孪生周"}, "invited": ["sdu-sie"], "place": "Shanghai",
        "time_zone": "Asia/Shanghai", "starts_on": "2027-09-06", "ends_on": "2027-09-08", "approval": "review",
        "slots": [{"kind": "guest_lecture", "title": {"en": "Twins in practice", "zh": "数字孪生实践"},
                   "starts_at": "2027-09-07T14:00:00+08:00", "ends_at": "2027-09-07T16:00:00+08:00", "capacity": 2}]})
    pages["manage-visit-edit"] = f"/manage/visits/{visit['id']}"
    for name, path in pages.items():
        for lang in ("en", "zh"):
            response = page.goto(f"{stack.url}{path}?lang={lang}")
            assert response.status == 200, (name, lang)
            assert page.locator("html").get_attribute("lang") == ("zh-Hans" if lang == "zh" else "en")
            assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], name
            assert_accessible(page)
            screenshots(page, name)


def test_the_course_form_works_by_keyboard_alone_with_focus_visible(page, stack):
    sign_in(page, stack, "coordinator")
    page.goto(stack.url + "/manage/courses")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "New course":
            break
    focused = page.locator(":focus")
    assert focused.inner_text() == "New course"
    assert focused.evaluate("e => getComputedStyle(e).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url("**/manage/courses/new")
    page.keyboard.press("Tab")
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "f-code":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-code"
    assert page.locator(":focus").evaluate("e => getComputedStyle(e).outlineStyle") != "none"
