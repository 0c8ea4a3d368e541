"""The exchange between two schools in real browsers against real processes.

sdu-sie's faculty find ecnu-cto's review-mode visit on "Exchange visits", request its slots and follow
them on "My requests"; ecnu-cto's coordinator approves or declines them on "Incoming requests", in
another browser context. Each test uses its own slot of the one visit, so they run in any order.
"""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import pytest
import requests

from tests.browser.frontdoor import (
    PARTNER, SCHOOL, SYNC_SECONDS, check_page, focus_after_tab, screenshots, sign_in, start_two_schools,
    status_text, stop_all, wait_for, withdraw_and_see_the_waitlist_promoted,
)

HOST, REQUESTER = SCHOOL, PARTNER  # ecnu-cto hosts the visit, sdu-sie's faculty request its slots


@pytest.fixture(scope="module")
def schools(mongo_uri, kafka_bootstrap, run_dir, keys_dir):
    stacks = start_two_schools(mongo_uri, kafka_bootstrap, run_dir, keys_dir)
    yield stacks
    stop_all(stacks.values())


@pytest.fixture(scope="module")
def visit(schools):
    """ecnu-cto's visit in review mode, inviting every partner: one slot per test, on separate days."""
    first = date.today() + timedelta(days=40)

    def slot(kind, day, start, end, capacity):
        on = (first + timedelta(days=day)).isoformat()
        return {"kind": kind, "starts_at": f"{on}T{start}:00+08:00", "ends_at": f"{on}T{end}:00+08:00",
                "capacity": capacity}

    created = schools[HOST].post("visits", "/visits", {
        "theme": {"en": "Platform strategy week", "zh": "平台战略周"}, "place": "Shanghai, Putuo campus",
        "time_zone": "Asia/Shanghai", "starts_on": first.isoformat(),
        "ends_on": (first + timedelta(days=5)).isoformat(), "invited": ["all"], "status": "confirmed",
        "approval": "review",
        "slots": [slot("seminar", 0, "09:00", "11:00", 2), slot("workshop", 1, "09:00", "11:00", 1),
                  slot("guest_lecture", 2, "14:00", "16:00", 3), slot("panel", 3, "10:00", "12:00", 2)]})
    ids = [s["id"] for s in created["slots"]]
    return {"id": created["id"], "approve": ids[0], "waitlist": ids[1], "decline": ids[2], "pages": ids[3]}


def request_slot(page, schools, visit, slot: str, motivation: str = "") -> str:
    """On "Exchange visits", "Request this slot" for `slot`, "Send request"; the request's id from "My requests"."""
    requester = schools[REQUESTER]
    card = wait_for(page, requester.url + "/exchange/visits", f'li.slot[data-slot="{visit[slot]}"]')
    card.get_by_role("link", name="Request this slot").click()
    page.get_by_label("Motivation").fill(motivation)
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(requester.url + "/exchange/requests**")
    assert page.get_by_role("heading", level=1).inner_text() == "My requests"
    row = page.locator(f'li.request[data-slot="{visit[slot]}"]')
    assert row.count() == 1
    assert row.get_by_test_id("request-status").inner_text() == "Pending"
    return row.get_attribute("data-request")


def pending_at_host(page, schools, request_id: str):
    """The request on the host coordinator's "Incoming requests", once it has arrived there."""
    return wait_for(page, schools[HOST].url + "/manage/requests/incoming",
                    f'li.decision[data-request="{request_id}"]')


def move_slot(host, visit_id: str, slot_id: str, starts: str, ends: str) -> None:
    """The host's coordinator changes one slot's times (PUT /visits/<id> with If-Match), keeping every other field."""
    url = f"{host.service_url('visits')}/visits/{visit_id}"
    headers = {"Authorization": f"Bearer {host.token()}"}
    current = requests.get(url, headers=headers, timeout=10)
    body = {k: v for k, v in current.json().items()
            if k not in ("id", "school", "version", "created_at", "updated_at")}
    for slot in body["slots"]:
        slot.pop("places_left", None)
        if slot["id"] == slot_id:
            on = slot["starts_at"][:10]
            slot["starts_at"], slot["ends_at"] = f"{on}T{starts}:00+08:00", f"{on}T{ends}:00+08:00"
    moved = requests.put(url, json=body, timeout=10, headers={**headers, "If-Match": current.headers["ETag"]})
    assert moved.status_code == 200, moved.text


def _waitlisted(signature: str) -> str:
    """The ids of the waitlisted requests in a "My requests" signature ("id:version:status:position|...")."""
    return "|".join(f"{part.split(':')[0]}:" for part in signature.split("|") if ":waitlisted:" in part)


def test_a_faculty_member_requests_a_slot_and_sees_it_approved_without_reloading(new_page, schools, visit):
    from playwright.sync_api import expect

    faculty, coordinator = new_page(), new_page()
    sign_in(faculty, schools[REQUESTER], "faculty")
    # "Exchange visits": ecnu-cto's visit with its slots, each in the visit's time zone, kind and places left
    card = wait_for(faculty, schools[REQUESTER].url + "/exchange/visits", f'li.visit[data-visit="{visit["id"]}"]')
    assert "Platform strategy week" in card.inner_text()
    seminar = card.locator(f'li.slot[data-slot="{visit["approve"]}"]')
    assert re.search(r"\d{4}-\d\d-\d\d 09:00–11:00 \(Asia/Shanghai\)", seminar.inner_text())
    assert "Seminar" in seminar.inner_text() and "2 places left" in seminar.inner_text()
    # filtered by kind (a GET form): only the workshop is left
    faculty.get_by_label("Kind").select_option("workshop")
    faculty.get_by_role("button", name="Show").click()
    faculty.wait_for_url(re.compile(r".*kind=workshop.*"))
    kinds = faculty.locator("li.slot").evaluate_all("slots => slots.map(s => s.dataset.kind)")
    assert kinds == ["workshop"]

    typed = "I teach platform strategy at <SDU> & would co-teach.\nTwo years of case work."
    request_id = request_slot(faculty, schools, visit, "approve", typed)
    sign_in(coordinator, schools[HOST], "coordinator")
    row = pending_at_host(coordinator, schools, request_id)
    # the coordinator reads who asks and the motivation they typed, as text (escaped, its line break kept)
    assert row.locator("strong").inner_text() == "Wang Li (sdu-sie)"
    assert row.get_by_test_id("motivation").inner_text() == "Motivation: " + typed
    assert row.get_by_test_id("motivation").locator("b, sdu").count() == 0
    row.get_by_role("button", name="Approve").click()
    assert "Approved" in coordinator.get_by_test_id("notice").inner_text()
    # the faculty member's page follows without a reload (its script asks the front door every few seconds)
    expect(status_text(faculty, request_id)).to_have_text("Approved", timeout=SYNC_SECONDS * 1000)
    assert faculty.evaluate("performance.getEntriesByType('navigation').length") == 1
    # the host moves the slot by an hour: the approval needs re-confirmation, which the faculty member gives
    move_slot(schools[HOST], visit["id"], visit["approve"], "10:00", "12:00")
    expect(status_text(faculty, request_id)).to_have_text("Re-confirm needed", timeout=SYNC_SECONDS * 1000)
    faculty.locator(f'li.request[data-request="{request_id}"]').get_by_role("button", name="Re-confirm").click()
    assert faculty.get_by_test_id("notice").inner_text() == "You re-confirmed the changed slot."
    expect(status_text(faculty, request_id)).to_have_text("Approved", timeout=SYNC_SECONDS * 1000)
    assert "10:00–12:00 (Asia/Shanghai)" in faculty.locator(f'li.request[data-request="{request_id}"]').inner_text()
    # the same slot again: refused clearly, nothing sent
    faculty.goto(f'{schools[REQUESTER].url}/exchange/visits/{visit["id"]}/slots/{visit["approve"]}/request')
    faculty.get_by_role("button", name="Send request").click()
    assert faculty.get_by_test_id("refusal").inner_text() == "You have already requested this slot: see My requests."
    faculty.goto(schools[REQUESTER].url + "/exchange/requests")
    assert faculty.locator(f'li.request[data-slot="{visit["approve"]}"]').count() == 1


def test_a_full_slot_waitlists_the_next_person_who_is_promoted_after_a_withdrawal(new_page, schools, visit):
    first, second, coordinator = new_page(), new_page(javascript=False), new_page()
    sign_in(first, schools[REQUESTER], "faculty")
    sign_in(coordinator, schools[HOST], "coordinator")
    first_id = request_slot(first, schools, visit, "waitlist")
    pending_at_host(coordinator, schools, first_id).get_by_role("button", name="Approve").click()
    # the second faculty member, in a browser without JavaScript, requests the same (now full) slot
    sign_in(second, schools[REQUESTER], "faculty2")
    second_id = request_slot(second, schools, visit, "waitlist")
    pending_at_host(coordinator, schools, second_id).get_by_role("button", name="Approve").click()
    assert "waitlist (position 1)" in coordinator.get_by_test_id("notice").inner_text()
    # the second's page (no script) still shows the request as it was: once the decision has arrived, its
    # "Withdraw" carries a stale version, and is refused as changed meanwhile, with the newer state
    live = schools[REQUESTER].url + "/exchange/requests/live"
    deadline = time.monotonic() + SYNC_SECONDS
    while f"{second_id}:" not in _waitlisted(second.request.get(live).json()["signature"]):
        assert time.monotonic() < deadline, "the waitlisting never reached the requester"
        time.sleep(0.5)
    second.locator(f'li.request[data-request="{second_id}"]').get_by_role("button", name="Withdraw").click()
    assert "changed meanwhile" in second.get_by_test_id("notice").inner_text()
    assert second.get_by_test_id("changed").inner_text() == "Now: Waitlisted (position 1)"
    slot = coordinator.locator(f'section.incoming-slot[data-slot="{visit["waitlist"]}"]')
    assert slot.get_by_test_id("places-left").inner_text().startswith("Full")
    assert slot.get_by_test_id("waitlist").locator("li").all_inner_texts() == ["Liu Yang (sdu-sie) · position 1"]
    wait_for(second, schools[REQUESTER].url + "/exchange/requests",
             f'li.request[data-request="{second_id}"][data-status="waitlisted"]')
    assert status_text(second, second_id).inner_text() == "Waitlisted, position 1"

    # the first withdraws (once the approval has arrived): the waitlisted one is promoted
    wait_for(first, schools[REQUESTER].url + "/exchange/requests",
             f'li.request[data-request="{first_id}"][data-status="approved"]')
    withdraw_and_see_the_waitlist_promoted(first, second, schools[REQUESTER].url + "/exchange/requests", first_id,
                                           second_id)


def test_a_decline_needs_its_reason_and_the_faculty_member_reads_it(new_page, schools, visit):
    from playwright.sync_api import expect

    faculty, coordinator = new_page(), new_page()
    sign_in(faculty, schools[REQUESTER], "faculty2")
    sign_in(coordinator, schools[HOST], "coordinator")
    request_id = request_slot(faculty, schools, visit, "decline")
    row = pending_at_host(coordinator, schools, request_id)
    assert row.get_by_test_id("motivation").inner_text() == "No motivation given."
    # no reason: the message is at the field, and nothing was decided
    row.get_by_role("button", name="Decline").click()
    reason = coordinator.locator(f'li.decision[data-request="{request_id}"]').get_by_label("Reason")
    assert reason.get_attribute("aria-invalid") == "true"
    error_id = reason.get_attribute("aria-describedby").split()[-1]
    assert coordinator.locator(f"#{error_id}").inner_text() == "Give the reason: the requester reads it."
    screenshots(coordinator, "manage-incoming-reason-needed")
    reason.fill("The workshop is for faculty teaching in our MEM programme this term.")
    coordinator.locator(f'li.decision[data-request="{request_id}"]').get_by_role("button", name="Decline").click()
    assert "Declined" in coordinator.get_by_test_id("notice").inner_text()
    expect(status_text(faculty, request_id)).to_have_text("Declined", timeout=SYNC_SECONDS * 1000)
    row = faculty.locator(f'li.request[data-request="{request_id}"]')
    assert row.get_by_test_id("decline-reason").inner_text() == (
        "Reason: The workshop is for faculty teaching in our MEM programme this term.")
    assert row.get_by_role("button", name="Withdraw").count() == 0


def test_a_faculty_member_keeps_their_expertise_bio_and_availability_current(new_page, schools):
    page = new_page()
    requester = schools[REQUESTER]
    sign_in(page, requester, "faculty")
    page.goto(requester.url + "/me/profile")
    assert page.get_by_role("heading", level=1).inner_text() == "My profile"
    # one date of a window alone: the message is at the field, nothing saved
    page.get_by_label("From").first.fill("2027-05-01")
    page.get_by_role("button", name="Save").click()
    assert page.locator("#availability-error").inner_text() == "Give both dates of each window."
    page.get_by_label("Expertise").fill("0413\nventure building\nplatform strategy")
    page.get_by_label("Bio (English)").fill("Runs the school's venture studio.")
    page.get_by_label("To").first.fill("2027-05-20")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_test_id("notice").inner_text() == "Your profile was saved."
    page.goto(requester.url + "/me/profile")
    assert page.get_by_label("Expertise").input_value() == "0413\nventure building\nplatform strategy"
    assert page.get_by_label("To").first.input_value() == "2027-05-20"


def test_every_exchange_page_reads_in_both_languages_fits_a_phone_and_passes_axe(new_page, schools, visit):
    faculty, coordinator = new_page(), new_page()
    requester, host = schools[REQUESTER], schools[HOST]
    sign_in(faculty, requester, "faculty2")
    wait_for(faculty, requester.url + "/exchange/visits", f'li.slot[data-slot="{visit["pages"]}"]')
    check_page(faculty, requester.url + "/exchange/visits", "exchange-visits-invited")
    form_url = f'{requester.url}/exchange/visits/{visit["id"]}/slots/{visit["pages"]}/request'
    check_page(faculty, form_url, "exchange-request")
    request_id = request_slot(faculty, schools, visit, "pages", "Panel on platform regulation.")
    check_page(faculty, requester.url + "/exchange/requests", "exchange-requests")
    check_page(faculty, requester.url + "/me/profile", "me-profile")
    # Chinese names of the statuses and controls
    faculty.goto(requester.url + "/exchange/requests?lang=zh")
    row = faculty.locator(f'li.request[data-request="{request_id}"]')
    assert row.get_by_role("button", name="撤回").count() == 1
    faculty.goto(requester.url + "/exchange/requests?lang=en")

    sign_in(coordinator, host, "coordinator")
    pending_at_host(coordinator, schools, request_id)
    check_page(coordinator, host.url + "/manage/requests/incoming", "manage-incoming")
    row = coordinator.locator(f'li.decision[data-request="{request_id}"]')
    assert row.get_by_role("button", name="Approve").count() == 1 and row.get_by_label("Reason").count() == 1
    # keyboard alone reaches "Approve" with a visible focus
    assert focus_after_tab(coordinator, row.get_by_label("Reason")) == ["Approve", "solid"]


def test_coordinator_and_faculty_pages_refuse_the_other_role(new_page, schools):
    faculty = new_page()
    sign_in(faculty, schools[REQUESTER], "faculty")
    response = faculty.goto(schools[REQUESTER].url + "/manage/requests/incoming")
    assert response.status == 403
    coordinator = new_page()
    sign_in(coordinator, schools[HOST], "coordinator")
    for path in ("/exchange/visits", "/exchange/requests", "/me/profile"):
        assert coordinator.goto(schools[HOST].url + path).status == 403, path
