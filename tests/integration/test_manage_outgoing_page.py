"""How "Outgoing requests" shows each status: the page's template given requests as the visits API answers them."""

from __future__ import annotations

import uuid

import pytest
from flask import render_template

from services.visits.schemas import SlotRequestSchema

FACULTY = str(uuid.uuid4())


def request_as_listed(status: str, **extra) -> dict:
    """A slot request as GET /slot-requests answers it (dumped by the API's own schema)."""
    doc = {"_id": str(uuid.uuid4()), "school": "ecnu-cto", "host_school": "sdu-sie", "visit_id": str(uuid.uuid4()),
           "slot_id": str(uuid.uuid4()), "faculty_id": FACULTY, "motivation": "", "status": status, "version": 3,
           "created_at": "2027-01-05T08:00:00+00:00", "updated_at": "2027-01-06T09:30:00+00:00",
           "slot": {"kind": "workshop", "title": {"en": "Lean lab"}, "starts_at": "2027-04-13T09:00:00+08:00",
                    "ends_at": "2027-04-13T11:00:00+08:00", "capacity": 2},
           "visit": {"theme": {"en": "Smart Manufacturing Week", "zh": "智能制造周"}, "place": "Jinan",
                     "time_zone": "Asia/Shanghai", "approval": "review"}, **extra}
    return SlotRequestSchema().dump(doc)


@pytest.fixture
def app(make_settings, mongo_client):
    from services.catalog.app import create_app

    return create_app(make_settings("ecnu-cto", "catalog", session_cookie_secure=False), client=mongo_client)


def rendered(app, requests: list[dict], lang: str = "en") -> str:
    from services.catalog.frontdoor.manage_visits import local, zone

    with app.test_request_context(f"/manage/requests/outgoing?lang={lang}"):
        app.preprocess_request()
        return render_template(
            "frontdoor/manage_outgoing.html", requests=requests, problem=None,
            names={FACULTY: {"en": "Zhang Min", "zh": "张敏"}}, statuses=(), status=None,
            when=lambda text, visit: local(text or "", zone((visit or {}).get("time_zone") or "")).replace("T", " "))


def test_each_status_reads_as_a_coordinator_expects_with_position_reason_and_the_slot_in_the_visit_zone(app):
    html = rendered(app, [
        request_as_listed("pending"), request_as_listed("approved"),
        request_as_listed("waitlisted", waitlist_position=2),
        request_as_listed("declined", reason="declined-by-host", note="The slot is kept for the host faculty"),
        request_as_listed("reconfirm"), request_as_listed("withdrawn")])
    for words in ("Pending", "Approved", "Waitlisted", "Position 2", "Declined",
                  "The slot is kept for the host faculty", "Re-confirm needed", "Withdrawn"):
        assert words in html, words
    assert "Zhang Min" in html and "Smart Manufacturing Week" in html
    assert "2027-04-13 09:00 – 11:00 (Asia/Shanghai)" in html


def test_the_statuses_read_in_chinese_too(app):
    html = rendered(app, [request_as_listed("waitlisted", waitlist_position=1), request_as_listed("reconfirm")], "zh")
    assert "候补中" in html and "第 1 位" in html and "需要重新确认" in html and "智能制造周" in html
