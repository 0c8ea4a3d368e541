"""Students' places in a partner's course, in real browsers against real processes of both schools.

ecnu-cto publishes a course to the alliance with one offering per test; sdu-sie's students find it in their
own catalog, "Request a place" with a "Statement" and follow it on "My applications"; sdu-sie's coordinator
endorses or declines it on "Student applications"; ecnu-cto's courses service gives the place (automatic
offerings) or its coordinator reviews it (review offerings), on its own "Student applications".
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.browser.frontdoor import (
    PARTNER, SCHOOL, SYNC_SECONDS, check_page, focus_after_tab, screenshots, sign_in, start_two_schools,
    status_text, stop_all, wait_for, withdraw_and_see_the_waitlist_promoted,
)
from tests.samples import course as sample_course

HOST, REQUESTER = SCHOOL, PARTNER  # ecnu-cto hosts the course, sdu-sie's students ask for places
STATEMENT = "I study platform strategy in the MEM programme and would bring two years of case work."


@pytest.fixture(scope="module")
def schools(mongo_uri, kafka_bootstrap, run_dir, keys_dir):
    stacks = start_two_schools(mongo_uri, kafka_bootstrap, run_dir, keys_dir, services=("courses", "catalog"))
    yield stacks
    stop_all(stacks.values())


@pytest.fixture(scope="module")
def course(schools):
    """ecnu-cto's course, shared with the alliance: one offering per test (its term), starting in two months."""
    starts = date.today() + timedelta(days=60)
    year = starts.year

    def offering(name: str, places: int, approval: str = "automatic") -> dict:
        return {"term": f"{year}-{name}", "starts_on": starts.isoformat(),
                "ends_on": (starts + timedelta(days=90)).isoformat(), "places": places, "approval": approval}

    created = schools[HOST].post("courses", "/courses", sample_course(
        code="MEM-7101", title={"en": "Platform Strategy", "zh": "平台战略"}, offerings=[
            offering("approve", 3), offering("decline", 3), offering("review", 2, "review"),
            offering("waitlist", 1), offering("stale", 3), offering("double", 3), offering("pages", 5, "review")]))
    return {"id": created["id"], **{name: f"{year}-{name}" for name in
                                    ("approve", "decline", "review", "waitlist", "stale", "double", "pages")}}


def course_url(schools, course) -> str:
    return f"{schools[REQUESTER].url}/course/{course['id']}"


def request_place(page, schools, course, offering: str, statement: str = STATEMENT) -> str:
    """On the partner's course page, "Request a place" in `offering`, "Statement", "Send request"; the request's
    id from "My applications", where it waits for the school's endorsement."""
    row = wait_for(page, course_url(schools, course), f'tr[data-term="{course[offering]}"] a.request-place')
    row.click()
    page.get_by_label("Statement").fill(statement)
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(schools[REQUESTER].url + "/applications**")
    assert page.get_by_role("heading", level=1).inner_text() == "My applications"
    mine = page.locator(f'li.request[data-course="{course["id"]}"][data-term="{course[offering]}"]')
    assert mine.count() == 1
    assert mine.get_by_test_id("request-status").inner_text() == "Pending endorsement"
    return mine.get_attribute("data-request")


def applications_of(page, stack):
    page.goto(stack.url + "/manage/applications")
    assert page.get_by_role("heading", level=1).inner_text() == "Student applications"


def item(page, request_id: str):
    return page.locator(f'li[data-request="{request_id}"]')


def endorse(page, schools, request_id: str) -> None:
    """sdu-sie's coordinator endorses one request on "Student applications"."""
    applications_of(page, schools[REQUESTER])
    item(page, request_id).get_by_role("button", name="Endorse").click()
    assert page.get_by_test_id("notice").inner_text() == "Endorsed: the request goes to the host."


def test_a_student_requests_a_place_their_school_endorses_it_and_the_host_gives_it_at_once(new_page, schools,
                                                                                          course):
    from playwright.sync_api import expect

    student, coordinator = new_page(), new_page()
    sign_in(student, schools[REQUESTER], "student")
    # the partner's course page: each offering's places left, "Request a place" on the open ones
    row = wait_for(student, course_url(schools, course), f'tr[data-term="{course["approve"]}"]')
    assert row.get_by_test_id("places-left").inner_text() == "3 places left"
    request_id = request_place(student, schools, course, "approve")
    sign_in(coordinator, schools[REQUESTER], "coordinator")
    applications_of(coordinator, schools[REQUESTER])
    pending = item(coordinator, request_id)
    # the home coordinator reads who asks (with the number and programme the school's provider gave) and why
    assert "Student (sdu-sie)" in pending.inner_text() and "SD2026-0001" in pending.inner_text()
    assert pending.get_by_test_id("statement").inner_text() == "Statement: " + STATEMENT
    pending.get_by_role("button", name="Endorse").click()
    assert coordinator.get_by_test_id("notice").inner_text() == "Endorsed: the request goes to the host."
    # automatic: the host gives the place; the student's page follows without a reload
    expect(status_text(student, request_id)).to_have_text("Approved", timeout=SYNC_SECONDS * 1000)
    assert student.evaluate("performance.getEntriesByType('navigation').length") == 1
    # the host republishes the course with the place taken
    wait_for(student, course_url(schools, course),
             f'tr[data-term="{course["approve"]}"] [data-testid="places-left"]:text-is("2 places left")')
    # the same offering again: refused clearly, nothing sent twice
    student.goto(f'{course_url(schools, course)}/offerings/{course["approve"]}/request')
    student.get_by_label("Statement").fill("Again.")
    student.get_by_role("button", name="Send request").click()
    assert student.get_by_test_id("refusal").inner_text() == (
        "You already hold a request for this offering: see My applications.")
    assert student.get_by_label("Statement").input_value() == "Again."


def test_a_decline_needs_its_reason_and_the_student_reads_it_and_who_declined(new_page, schools, course):
    from playwright.sync_api import expect

    student, coordinator = new_page(), new_page()
    sign_in(student, schools[REQUESTER], "student2")
    # a statement left empty is refused at its field, and nothing is sent
    wait_for(student, course_url(schools, course), f'tr[data-term="{course["decline"]}"] a.request-place').click()
    student.get_by_role("button", name="Send request").click()
    statement = student.get_by_label("Statement")
    assert statement.get_attribute("aria-invalid") == "true"
    error_id = statement.get_attribute("aria-describedby").split()[-1]
    assert student.locator(f"#{error_id}").inner_text() == "Write a statement: your school and the host read it."
    screenshots(student, "place-request-statement-needed")
    request_id = request_place(student, schools, course, "decline")

    sign_in(coordinator, schools[REQUESTER], "coordinator")
    applications_of(coordinator, schools[REQUESTER])
    item(coordinator, request_id).get_by_role("button", name="Decline").click()
    reason = item(coordinator, request_id).get_by_label("Reason")
    assert reason.get_attribute("aria-invalid") == "true"
    error_id = reason.get_attribute("aria-describedby").split()[-1]
    assert coordinator.locator(f"#{error_id}").inner_text() == "Give the reason: the requester reads it."
    screenshots(coordinator, "manage-applications-reason-needed")
    reason.fill("Your programme does not recognise this course's credits this year.")
    item(coordinator, request_id).get_by_role("button", name="Decline").click()
    assert coordinator.get_by_test_id("notice").inner_text() == "Declined: the student reads your reason."

    student.goto(schools[REQUESTER].url + "/applications")
    expect(status_text(student, request_id)).to_have_text("Declined", timeout=SYNC_SECONDS * 1000)
    mine = student.locator(f'li.request[data-request="{request_id}"]')
    assert mine.get_by_test_id("decline-reason").inner_text() == (
        "Declined by your school: Your programme does not recognise this course's credits this year.")
    assert mine.get_by_role("button", name="Withdraw").count() == 0


def test_a_review_offering_waits_for_the_host_s_coordinator_who_approves_or_declines(new_page, schools, course):
    from playwright.sync_api import expect

    first, second, home, host = new_page(), new_page(), new_page(), new_page()
    sign_in(first, schools[REQUESTER], "student")
    sign_in(second, schools[REQUESTER], "student2")
    first_id = request_place(first, schools, course, "review")
    second_id = request_place(second, schools, course, "review", "Second statement.")
    sign_in(home, schools[REQUESTER], "coordinator")
    endorse(home, schools, first_id)
    endorse(home, schools, second_id)
    expect(status_text(first, first_id)).to_have_text("Endorsed", timeout=SYNC_SECONDS * 1000)

    sign_in(host, schools[HOST], "coordinator")
    offering = f'section[data-course="{course["id"]}"][data-term="{course["review"]}"]'
    wait_for(host, schools[HOST].url + "/manage/applications", f'{offering} li.decision[data-request="{second_id}"]')
    decision = item(host, first_id)
    # the host reads the name, school, programme and statement; never the student number or email
    assert "Student (sdu-sie) (sdu-sie) · MEM" in decision.inner_text()
    assert "SD2026-0001" not in host.content() and "student@sdu-sie.example.edu" not in host.content()
    assert decision.get_by_test_id("statement").inner_text() == "Statement: " + STATEMENT
    decision.get_by_role("button", name="Approve").click()
    assert host.get_by_test_id("notice").inner_text() == "Approved: the student has a place."
    assert host.locator(offering).get_by_test_id("places-left").inner_text() == "1 place left"
    item(host, second_id).get_by_label("Reason").fill("The seminar room seats only one more this term.")
    item(host, second_id).get_by_role("button", name="Decline").click()
    assert host.get_by_test_id("notice").inner_text() == "Declined: the student reads your reason."
    assert item(host, second_id).get_attribute("data-status") == "declined"

    expect(status_text(first, first_id)).to_have_text("Approved", timeout=SYNC_SECONDS * 1000)
    expect(status_text(second, second_id)).to_have_text("Declined", timeout=SYNC_SECONDS * 1000)
    assert second.locator(f'li.request[data-request="{second_id}"]').get_by_test_id("decline-reason").inner_text() \
        == "Declined by ecnu-cto: The seminar room seats only one more this term."


def test_a_withdrawal_gives_the_place_to_the_first_on_the_waitlist(new_page, schools, course):
    from playwright.sync_api import expect

    first, second, coordinator = new_page(), new_page(javascript=False), new_page()
    sign_in(first, schools[REQUESTER], "student")
    sign_in(second, schools[REQUESTER], "student2")
    sign_in(coordinator, schools[REQUESTER], "coordinator")
    first_id = request_place(first, schools, course, "waitlist")
    endorse(coordinator, schools, first_id)
    expect(status_text(first, first_id)).to_have_text("Approved", timeout=SYNC_SECONDS * 1000)
    # the one place is taken: the course page says so, and the second student, in a browser without
    # JavaScript, may still ask, to join the waitlist
    wait_for(second, course_url(schools, course),
             f'tr[data-term="{course["waitlist"]}"] [data-testid="places-left"]:text-is("Full")')
    second.locator(f'tr[data-term="{course["waitlist"]}"] a.request-place').click()
    assert second.get_by_test_id("full").inner_text() == "The offering is full: your request would join its waitlist."
    second_id = request_place(second, schools, course, "waitlist")
    endorse(coordinator, schools, second_id)
    wait_for(second, schools[REQUESTER].url + "/applications",
             f'li.request[data-request="{second_id}"][data-status="waitlisted"]')
    assert status_text(second, second_id).inner_text() == "Waitlisted, position 1"

    withdraw_and_see_the_waitlist_promoted(first, second, schools[REQUESTER].url + "/applications", first_id,
                                           second_id)


def test_a_withdraw_from_a_stale_page_shows_the_newer_state_and_does_nothing(new_page, schools, course):
    student, coordinator = new_page(javascript=False), new_page()
    sign_in(student, schools[REQUESTER], "student2")
    sign_in(coordinator, schools[REQUESTER], "coordinator")
    request_id = request_place(student, schools, course, "stale")
    # the page (no script) still shows the request pending; meanwhile the school endorses it
    endorse(coordinator, schools, request_id)
    student.locator(f'li.request[data-request="{request_id}"]').get_by_role("button", name="Withdraw").click()
    assert "changed meanwhile" in student.get_by_test_id("notice").inner_text()
    assert student.get_by_test_id("changed").inner_text().startswith("Now: ")
    assert status_text(student, request_id).inner_text() != "Withdrawn"


def test_the_same_form_sent_twice_makes_one_request(new_page, schools, course):
    student = new_page()
    sign_in(student, schools[REQUESTER], "student")
    form_url = f'{course_url(schools, course)}/offerings/{course["double"]}/request'
    wait_for(student, course_url(schools, course), f'tr[data-term="{course["double"]}"] a.request-place')
    student.goto(form_url)
    fields = {name: student.locator(f'form.stacked input[name="{name}"]').get_attribute("value")
              for name in ("csrf_token", "idempotency_key")}
    # twice the very same form (a double click, a resent page): both land on My applications, not on a refusal
    for _ in range(2):
        sent = student.request.post(form_url, form={**fields, "statement": STATEMENT}, max_redirects=0)
        assert sent.status == 303 and sent.headers["location"].endswith("/applications?sent=1")
    student.goto(schools[REQUESTER].url + "/applications")
    assert student.locator(f'li.request[data-term="{course["double"]}"]').count() == 1


def test_every_place_page_reads_in_both_languages_fits_a_phone_and_passes_axe(new_page, schools, course):
    student, home, host = new_page(), new_page(), new_page()
    requester = schools[REQUESTER]
    sign_in(student, requester, "student")
    wait_for(student, course_url(schools, course), f'tr[data-term="{course["pages"]}"] a.request-place')
    check_page(student, course_url(schools, course), "course-places")
    form_url = f'{course_url(schools, course)}/offerings/{course["pages"]}/request'
    check_page(student, form_url, "place-request")
    request_id = request_place(student, schools, course, "pages")
    check_page(student, requester.url + "/applications", "my-applications")
    # the Chinese words of the status and the controls
    student.goto(requester.url + "/applications?lang=zh")
    mine = student.locator(f'li.request[data-request="{request_id}"]')
    assert mine.get_by_test_id("request-status").inner_text() == "待本校推荐"
    assert mine.get_by_role("button", name="撤回").count() == 1
    assert student.get_by_role("link", name="我的选课申请").count() == 1
    student.goto(requester.url + "/applications?lang=en")

    sign_in(home, requester, "coordinator")
    check_page(home, requester.url + "/manage/applications", "manage-applications-endorse")
    # keyboard alone: from the reason field, Tab reaches "Endorse" with a visible focus
    home.goto(requester.url + "/manage/applications?lang=en")
    assert focus_after_tab(home, item(home, request_id).get_by_label("Reason")) == ["Endorse", "solid"]
    home.keyboard.press("Enter")
    assert home.get_by_test_id("notice").inner_text() == "Endorsed: the request goes to the host."

    sign_in(host, schools[HOST], "coordinator")
    wait_for(host, schools[HOST].url + "/manage/applications", f'li.decision[data-request="{request_id}"]')
    check_page(host, schools[HOST].url + "/manage/applications", "manage-applications-review")
    # the course form: each offering's approval, as the service has it
    check_page(host, f'{schools[HOST].url}/manage/courses/{course["id"]}', "manage-course-approval")
    host.goto(f'{schools[HOST].url}/manage/courses/{course["id"]}?lang=en')
    assert host.locator("#f-offerings-2-approval").input_value() == "review"
    assert host.locator("#f-offerings-0-approval option:checked").inner_text() == "Automatic, first come first served"


def test_students_and_coordinators_are_refused_each_other_s_application_pages(new_page, schools, course):
    student, coordinator = new_page(), new_page()
    sign_in(student, schools[REQUESTER], "student")
    assert student.goto(schools[REQUESTER].url + "/manage/applications").status == 403
    sign_in(coordinator, schools[REQUESTER], "coordinator")
    assert coordinator.goto(schools[REQUESTER].url + "/applications").status == 403
    # a coordinator is not offered "Request a place", and the form is not theirs
    coordinator.goto(course_url(schools, course))
    assert coordinator.get_by_role("link", name="Request a place").count() == 0
    assert coordinator.goto(f'{course_url(schools, course)}/offerings/{course["pages"]}/request').status == 403
