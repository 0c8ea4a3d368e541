"""The students' and coordinators' place-request pages in the catalog web, on the real MongoDB-protocol server.

A partner's course is applied to this catalog as its consumer applies the courses relay's own event; the
people are signed in as the front door's sign-in writes the session. What the courses service answers is
in tests/browser/test_places.py (real processes of both schools); here: who sees what, and what a form
keeps when it is refused before or at the service.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest

from tests.catalogutil import course_body, event

OWN, PARTNER = "ecnu-cto", "sdu-sie"
STUDENT = {"sub": "student@ecnu-cto", "name": "Student One", "role": "student", "school": OWN,
           "email": "student@ecnu-cto.example.edu", "faculty_id": None, "student_number": "EC2026-0001",
           "programme": "MEM"}
COORDINATOR = {"sub": "c1", "name": "Coordinator One", "role": "coordinator", "school": OWN,
               "email": "c1@ecnu-cto.example.edu", "faculty_id": None}
FACULTY = {**COORDINATOR, "role": "faculty", "faculty_id": str(uuid.uuid4())}


def day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


OFFERINGS = [
    {"term": "2090-open", "starts_on": day(60), "ends_on": day(150), "places": 2},
    {"term": "2090-started", "starts_on": day(-10), "ends_on": day(80), "places": 2},
    {"term": "2090-closed", "starts_on": day(60), "ends_on": day(150), "places": 2,
     "applications_open": day(-30), "applications_close": day(-1)},
    {"term": "2090-unlimited", "starts_on": day(60), "ends_on": day(150)},
]


@pytest.fixture
def app(make_settings, mongo_client):
    from services.catalog.app import create_app

    return create_app(make_settings(OWN, "catalog", session_cookie_secure=False), client=mongo_client)


def applied(app, mongo_client, school: str, **changes) -> str:
    """A course of `school`, published to the alliance, in this catalog as the courses relay publishes it."""
    from services.catalog.store import ReadModel
    from services.catalog.sync import apply_event

    body = course_body(school, str(uuid.uuid4()), offerings=OFFERINGS, **changes)
    apply_event(ReadModel(mongo_client[app.extensions["settings"].database_name]), event(body), school)
    return body["id"]


def as_person(app, person: dict | None):
    client = app.test_client()
    if person:
        with client.session_transaction() as session:
            session["person"] = person
    return client


def request_links(html: str) -> list[str]:
    return re.findall(r'href="(/course/[^"]+/offerings/([^/"]+)/request)"', html)


def test_a_student_of_another_school_is_offered_a_place_only_in_an_open_offering_with_places(app, mongo_client):
    course_id = applied(app, mongo_client, PARTNER)
    html = as_person(app, STUDENT).get(f"/course/{course_id}").get_data(as_text=True)
    assert [term for _, term in request_links(html)] == ["2090-open"]
    assert ">Request a place</a>" in html and "2 places" in html
    for person in (None, COORDINATOR, FACULTY):
        assert request_links(as_person(app, person).get(f"/course/{course_id}").get_data(as_text=True)) == []
    # the student's own school's course: nothing to request
    own = applied(app, mongo_client, OWN)
    assert request_links(as_person(app, STUDENT).get(f"/course/{own}").get_data(as_text=True)) == []


def test_the_request_form_keeps_the_statement_and_says_at_the_field_what_is_missing(app, mongo_client):
    course_id = applied(app, mongo_client, PARTNER)
    client = as_person(app, STUDENT)
    page = client.get(f"/course/{course_id}/offerings/2090-open/request")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<label for="f-statement">Statement' in html and "Send request" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    refused = client.post(f"/course/{course_id}/offerings/2090-open/request",
                          data={"csrf_token": token, "idempotency_key": key, "statement": "   "})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in html and "Write a statement: your school and the host read it." in html
    too_long = "x" * 2001
    refused = client.post(f"/course/{course_id}/offerings/2090-open/request",
                          data={"csrf_token": token, "idempotency_key": key, "statement": too_long})
    assert refused.status_code == 422 and too_long in refused.get_data(as_text=True)
    assert "At most 2000 characters." in refused.get_data(as_text=True)


def test_an_offering_not_open_shows_why_and_offers_no_form(app, mongo_client):
    course_id = applied(app, mongo_client, PARTNER)
    client = as_person(app, STUDENT)
    for term in ("2090-started", "2090-closed", "2090-unlimited"):
        html = client.get(f"/course/{course_id}/offerings/{term}/request").get_data(as_text=True)
        assert "does not take requests now" in html and 'name="statement"' not in html, term
    assert client.get(f"/course/{course_id}/offerings/2091-none/request").status_code == 404
    own = applied(app, mongo_client, OWN)
    assert client.get(f"/course/{own}/offerings/2090-open/request").status_code == 404


def test_the_statement_typed_is_kept_when_the_courses_service_does_not_answer(make_settings, mongo_client):
    from devstack import servers
    from services.catalog.app import create_app
    from shared.config import School

    closed = servers.free_port()  # nothing listens there
    schools = (School(OWN, {"en": OWN}, {"courses": f"http://127.0.0.1:{closed}"}), School(PARTNER, {"en": PARTNER}, {}))
    app = create_app(make_settings(OWN, "catalog", schools=schools, session_cookie_secure=False), client=mongo_client)
    course_id = applied(app, mongo_client, PARTNER)
    client = as_person(app, STUDENT)
    html = client.get(f"/course/{course_id}/offerings/2090-open/request").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    typed = "I study <platform> strategy & would bring two years of case work."
    refused = client.post(f"/course/{course_id}/offerings/2090-open/request",
                          data={"csrf_token": token, "idempotency_key": str(uuid.uuid4()), "statement": typed})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 503
    assert "I study &lt;platform&gt; strategy &amp; would bring two years of case work." in html
    assert "The request was not sent: A service this page needs did not answer." in html
    # My applications says the service did not answer, as a page
    mine = client.get("/applications")
    assert mine.status_code == 200 and "The courses service did not answer as expected: it is not answering right " \
        "now. Try again in a moment." in mine.get_data(as_text=True)
    # in the page's language, not the service's English problem title
    mine = client.get("/applications?lang=zh").get_data(as_text=True)
    assert "课程服务未按预期响应： 它暂时没有响应。请稍后再试。" in mine and "temporarily unavailable" not in mine


@pytest.mark.parametrize("person, path", [
    (COORDINATOR, "/applications"), (FACULTY, "/applications"), (STUDENT, "/manage/applications"),
    (FACULTY, "/manage/applications"),
])
def test_each_role_sees_only_its_own_application_pages(app, person, path):
    response = as_person(app, person).get(path)
    assert response.status_code == 403 and "Not for your role" in response.get_data(as_text=True)


def test_the_navigation_names_each_role_s_application_page(app, mongo_client):
    student = as_person(app, STUDENT).get("/").get_data(as_text=True)
    assert '<a href="/applications">My applications</a>' in student
    coordinator = as_person(app, COORDINATOR).get("/manage/partners").get_data(as_text=True)
    assert '<a href="/manage/applications">Student applications</a>' in coordinator


def listed_request(status: str, **extra) -> dict:
    """A place request as GET /place-requests answers it (dumped by the courses API's own schema)."""
    from services.courses.schemas import PlaceRequestSchema

    doc = {"_id": str(uuid.uuid4()), "school": OWN, "host_school": PARTNER, "course_id": str(uuid.uuid4()),
           "term": "2027-fall", "statement": "Why I ask.", "student_id": "student@ecnu-cto.example.edu",
           "name": "Student One", "email": "student@ecnu-cto.example.edu", "student_number": "EC2026-0001",
           "programme": "MEM", "status": status, "version": 4, "created_at": "2027-01-05T08:00:00+00:00",
           "updated_at": "2027-01-06T09:30:00+00:00",
           "course": {"title": {"en": "Lean Operations", "zh": "精益运营"}, "code": "OM-501", "credits": 3},
           "offering": {"term": "2027-fall", "starts_on": "2027-09-01", "ends_on": "2027-12-20"}, **extra}
    return PlaceRequestSchema().dump(doc)


def rendered_mine(app, items: list[dict], lang: str = "en") -> str:
    from flask import render_template

    from services.catalog.frontdoor.applications import WITHDRAWABLE, application_rows

    with app.test_request_context(f"/applications?lang={lang}"):
        app.preprocess_request()
        return render_template("frontdoor/_my_applications.html", rows=application_rows(items), problem=None,
                               withdrawable=WITHDRAWABLE)


def test_each_status_reads_as_the_contract_words_it_with_position_reason_and_who_declined(app):
    html = rendered_mine(app, [
        listed_request("pending-endorsement", course=None, offering=None), listed_request("endorsed"),
        listed_request("approved"), listed_request("waitlisted", waitlist_position=2),
        listed_request("declined", declined_by="home", reason="declined-by-home", note="Not in your plan."),
        listed_request("declined", declined_by="host", reason="offering-closed"),
        listed_request("withdrawn")])
    statuses = re.findall(r'data-testid="request-status">([^<]+)</span>', html)
    assert statuses == ["Pending endorsement", "Endorsed", "Approved", "Waitlisted, position 2", "Declined",
                        "Declined", "Withdrawn"]
    assert "Declined by your school:</span> Not in your plan." in html
    assert "Declined by sdu-sie:</span> The offering is not open for requests." in html
    assert "Lean Operations" in html and "OM-501" in html and "2027-09-01 – 2027-12-20" in html
    # withdraw is offered while the request still holds its turn
    assert html.count(">Withdraw</button>") == 4


def test_the_statuses_read_in_chinese_too(app):
    html = rendered_mine(app, [listed_request("pending-endorsement"), listed_request("waitlisted", waitlist_position=1)],
                         "zh")
    assert "待本校推荐" in html and "候补中" in html and "第 1 位" in html and "精益运营" in html
