"""Every decision reaches the person: mails with invitations, and calendar feeds, against real processes.

One stack for the module: ecnu-cto hosts (visits + catalog), sdu-sie requests (visits,
faculty, catalog), the development SMTP server (devstack/mailserver.py) on a free port
writing one `.eml` file per message. Every test uses its own faculty members and visit.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import icalendar
import pytest
import requests
import vobject
from pymongo import MongoClient

from devstack import servers
from shared import calendars
from shared.auth import KeyRing, issue_token
from tests.faculty_samples import profile
from tests.kafkautil import read_all_topics
from tests.mailbox import mail_env, mails, stop_all, two_schools
from tests.processes import service_processes
from tests.visit_samples import slot, visit
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ECNU, SDU = "ecnu-cto", "sdu-sie"
WAIT = 45
HOST_CONTACT = "exchange@ecnu-cto.example.edu"
COORDINATOR = "coordinator@ecnu-cto.example.edu"


class Stack:
    def __init__(self, services, keys_dir, prefix, bootstrap, mongo_uri, mail_dir: Path, mail_port: int, log_dir):
        self.services, self.keys_dir, self.prefix, self.bootstrap = services, keys_dir, prefix, bootstrap
        self.mongo = MongoClient(mongo_uri)
        self.mail_dir, self.mail_port, self.log_dir = mail_dir, mail_port, log_dir
        self.mail_server = None
        self.emails: set[str] = set()

    def start_mail(self):
        self.mail_server = servers.start_mail(self.mail_port, self.mail_dir, self.log_dir)

    def stop_mail(self):
        self.mail_server.stop(timeout=5)
        wait_until(lambda: not servers.port_open(self.mail_port), 10, "the mail server stopped")

    def url(self, school: str, service: str) -> str:
        return self.services[(school, service)].url

    def auth(self, school: str, role: str, faculty_id: str | None = None) -> dict:
        token = issue_token(KeyRing(self.keys_dir, school).private_key(), school, role, faculty_id=faculty_id)
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, school: str, service: str, path: str, role="coordinator", faculty_id=None,
             expect=(200, 201), **kwargs):
        headers = {**self.auth(school, role, faculty_id), **kwargs.pop("headers", {})}
        response = requests.request(method, f"{self.url(school, service)}{path}", headers=headers, timeout=10,
                                    **kwargs)
        assert response.status_code in expect, response.text
        return response.json()

    def faculty(self, name: str = "Wang Fang") -> tuple[str, str]:
        """A new faculty profile at sdu-sie: (id, email)."""
        address = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@sdu-sie.example.edu"
        created = self.call("POST", SDU, "faculty", "/faculty", json=profile(name={"en": name, "zh": "王芳"},
                                                                            email=address))
        self.emails.add(address)
        return created["id"], address

    def host_visit(self, slots: list[dict]) -> dict:
        body = visit(starts_on="2099-04-13", ends_on="2099-04-17", place="Shanghai, Putuo campus", slots=slots)
        return self.call("POST", ECNU, "visits", "/visits", json=body)

    def ask(self, faculty_id: str, hosted: dict, slot_index: int = 0, lang: str = "en") -> dict:
        return self.call("POST", SDU, "visits", "/slot-requests", role="faculty", faculty_id=faculty_id,
                         headers={"Accept-Language": lang}, json={
                             "visit_id": hosted["id"], "host_school": ECNU,
                             "slot_id": hosted["slots"][slot_index]["id"], "faculty_id": faculty_id})

    def request_status(self, request: dict, faculty_id: str, *statuses):
        got = self.call("GET", SDU, "visits", f"/slot-requests/{request['id']}", role="faculty",
                        faculty_id=faculty_id)
        return got if got["status"] in statuses else None

    def mails(self, to: str | None = None) -> list:
        return mails(self.mail_dir, to)

    def wait_mails(self, to: str, count: int, what: str) -> list:
        return wait_until(lambda: (lambda m: m if len(m) >= count else None)(self.mails(to)), WAIT, what)

    def notifications(self, school: str):
        return self.mongo[f"{self.prefix}{school}_visits".replace("-", "_")]["notifications"]


@pytest.fixture(scope="module")
def stack(mongo_uri, broker, run_dir, keys_dir):
    prefix = f"n{uuid.uuid4().hex[:8]}_"
    alliance = run_dir / f"{prefix}alliance.json"
    bases = two_schools(alliance, host_contact=HOST_CONTACT)
    mail_port = servers.free_port()
    log_dir = run_dir / prefix / "log"
    stack = Stack({}, keys_dir, prefix, broker.bootstrap, mongo_uri, run_dir / prefix / "mail", mail_port, log_dir)
    stack.start_mail()
    try:
        plan = [(ECNU, "visits", 3), (ECNU, "catalog", 0), (SDU, "faculty", 2), (SDU, "visits", 3),
                (SDU, "catalog", 0)]
        for school, service, offset in plan:
            svc = service_processes(school, service, bases[school] + offset, mongo_uri, broker.bootstrap, run_dir,
                                    alliance, keys_dir, prefix)
            svc.env.update(mail_env(mail_port, school, COORDINATOR if school == ECNU else "",
                                    CATALOG_DIGEST_SECONDS="5"))
            stack.services[(school, service)] = svc
            svc.start_worker()
            svc.start_web(workers=1)
        yield stack
    finally:
        stop_all(stack.services, stack.mail_server)
        stack.mongo.close()


def calendar_part(message) -> tuple[icalendar.Calendar, str]:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, [p.get_content_type() for p in message.walk()]
    return icalendar.Calendar.from_ical(parts[0].get_content()), parts[0].get_param("method")


def only_event(cal: icalendar.Calendar) -> icalendar.Event:
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_an_approval_mails_the_requester_an_invitation_at_the_slot_time_and_a_cancelled_visit_a_cancel(stack):
    faculty_id, address = stack.faculty()
    hosted = stack.host_visit([slot("guest_lecture", "2099-04-14", "09:00", "11:00", capacity=2)])
    asked = stack.ask(faculty_id, hosted, lang="zh-CN,zh;q=0.9,en;q=0.5")
    wait_until(lambda: stack.request_status(asked, faculty_id, "approved"), WAIT, "the approval at the requester")

    [approval] = stack.wait_mails(address, 1, "the approval mail")
    assert approval["From"] == "alliance-catalog@sdu-sie.example.edu"
    # in the requester's language, plain text and HTML beside the invitation
    assert "已批准" in approval["Subject"]
    types = [p.get_content_type() for p in approval.walk()]
    assert types[0] == "multipart/alternative" and {"text/plain", "text/html", "text/calendar"} <= set(types)
    assert "华东师范大学首席技术官学院" in approval.get_body(("plain",)).get_content()
    cal, method = calendar_part(approval)
    assert method == "REQUEST" and cal["METHOD"] == "REQUEST"
    event = only_event(cal)
    start = event.decoded("DTSTART")
    assert start == instant(hosted["slots"][0]["starts_at"]) and event.decoded("DTEND") == instant(
        hosted["slots"][0]["ends_at"])
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    assert str(event["LOCATION"]) == "Shanghai, Putuo campus"
    assert str(event["ORGANIZER"]) == f"mailto:{HOST_CONTACT}"
    assert str(event["ATTENDEE"]) == f"mailto:{address}"
    uid, sequence = str(event["UID"]), int(event["SEQUENCE"])

    # the host's coordinators hear of the incoming request, with a link to their page
    incoming = stack.wait_mails(COORDINATOR, 1, "the coordinators' mail")
    assert any("/manage/requests/incoming" in m.get_body(("plain",)).get_content() for m in incoming)

    # the host cancels the visit: the same event is cancelled, with a higher sequence
    current = stack.call("GET", ECNU, "visits", f"/visits/{hosted['id']}")
    stack.call("DELETE", ECNU, "visits", f"/visits/{hosted['id']}",
               headers={"If-Match": f'"{current["version"]}"'})
    mails = stack.wait_mails(address, 2, "the cancellation mail")
    cal, method = calendar_part(mails[1])
    event = only_event(cal)
    assert method == "CANCEL" and str(event["UID"]) == uid and int(event["SEQUENCE"]) > sequence
    assert str(event["STATUS"]) == "CANCELLED"


def test_a_decline_after_approval_mails_its_reason_and_cancels_the_invitation(stack):
    faculty_id, address = stack.faculty("Zhao Lei")
    hosted = stack.host_visit([slot("workshop", "2099-04-15", "14:00", "17:00", capacity=1)])
    asked = stack.ask(faculty_id, hosted)
    wait_until(lambda: stack.request_status(asked, faculty_id, "approved"), WAIT, "the approval")
    decision = stack.call("GET", ECNU, "visits", f"/slot-decisions/{asked['id']}")
    stack.call("PUT", ECNU, "visits", f"/slot-decisions/{asked['id']}",
               headers={"If-Match": f'"{decision["version"]}"'},
               json={"status": "declined", "note": "The workshop room is too small for guests."})
    mails = stack.wait_mails(address, 2, "the decline mail")
    decline = mails[1]
    assert decline["Subject"].startswith("Declined")
    text = decline.get_body(("plain",)).get_content()
    assert "The workshop room is too small for guests." in text and "The host declined the request." in text
    cal, method = calendar_part(decline)
    assert method == "CANCEL"
    assert str(only_event(cal)["UID"]) == str(only_event(calendar_part(mails[0])[0])["UID"])


def test_five_decisions_while_the_mail_server_is_down_all_arrive_once_after_it_is_back(stack):
    hosted = stack.host_visit([slot("seminar", "2099-04-16", "09:00", "11:00", capacity=10)])
    people = [stack.faculty(f"Person {i}") for i in range(5)]
    stack.stop_mail()
    try:
        asked = [stack.ask(faculty_id, hosted) for faculty_id, _ in people]
        for request, (faculty_id, _) in zip(asked, people):
            wait_until(lambda: stack.request_status(request, faculty_id, "approved"), WAIT, "an approval")
        queue = stack.notifications(SDU)
        keys = {f"slot-request/{r['id']}" for r in asked}

        def tried_and_waiting():
            docs = [d for d in queue.find({"cause": {"$in": sorted(keys)}})]
            return len(docs) == 5 and all(d["status"] == "pending" and d["attempts"] >= 1 for d in docs)

        wait_until(tried_and_waiting, WAIT, "five notifications tried and waiting")
        # a worker restart while they wait loses nothing either
        requester = stack.services[(SDU, "visits")]
        requester.worker.stop(timeout=10)
        requester.start_worker()
    finally:
        stack.start_mail()
    for _, address in people:
        stack.wait_mails(address, 1, f"the approval mail to {address}")
    # a few more send periods (0.1 s idle, 1 s longest backoff): nothing arrives twice
    time.sleep(3)
    for _, address in people:
        assert len(stack.mails(address)) == 1, address
    assert all(d["status"] == "sent" for d in stack.notifications(SDU).find({"cause": {"$in": sorted(keys)}}))


def parse_both(body: bytes) -> tuple[list, list]:
    """The events of a calendar as read by icalendar and by vobject, two independent parsers."""
    first = icalendar.Calendar.from_ical(body).walk("VEVENT")
    second = list(vobject.readOne(body.decode("utf-8")).vevent_list)
    return first, second


def test_feeds_validate_in_two_parsers_and_a_revoked_feed_answers_404(stack):
    faculty_id, _ = stack.faculty("Sun Mei")
    hosted = stack.host_visit([slot("panel", "2099-04-13", "10:00", "12:00", capacity=3),
                               slot("mentoring", "2099-04-14", "15:00", "16:00", capacity=3)])
    asked = stack.ask(faculty_id, hosted, slot_index=1)
    wait_until(lambda: stack.request_status(asked, faculty_id, "approved"), WAIT, "the approval")
    sdu_catalog, ecnu_catalog = stack.url(SDU, "catalog"), stack.url(ECNU, "catalog")
    # the visit reaches the requester's catalog through its events
    wait_until(lambda: requests.get(f"{sdu_catalog}/visits/{hosted['id']}", timeout=10).status_code == 200,
               WAIT, "the visit in sdu-sie's catalog")

    # the public file of one visit: both slots
    public = requests.get(f"{sdu_catalog}/visits/{hosted['id']}.ics", timeout=10)
    assert public.status_code == 200 and public.headers["Content-Type"].startswith("text/calendar")
    first, second = parse_both(public.content)
    assert len(first) == len(second) == 2
    assert sorted(e.decoded("DTSTART") for e in first) == sorted(s.dtstart.value for s in second)

    # the faculty member's private feed: their approved slot only, the invitation's UID
    catalog_db = stack.mongo[f"{stack.prefix}sdu_sie_catalog"]
    person = {"role": "faculty", "school": SDU, "faculty_id": faculty_id, "subject": f"faculty:{faculty_id}"}
    secret = calendars.feed_secret(catalog_db, person)
    assert calendars.feed_secret(catalog_db, person) == secret
    feed = requests.get(f"{sdu_catalog}{calendars.feed_path(secret)}", timeout=10)
    assert feed.status_code == 200, feed.text
    first, second = parse_both(feed.content)
    assert len(first) == len(second) == 1
    assert first[0].decoded("DTSTART") == instant(hosted["slots"][1]["starts_at"]) == second[0].dtstart.value
    assert str(first[0]["UID"]) == calendars.request_uid(asked["id"], SDU) == second[0].uid.value

    # the host's coordinator's feed: the school's visits
    ecnu_db = stack.mongo[f"{stack.prefix}ecnu_cto_catalog"]
    coordinator = {"role": "coordinator", "school": ECNU, "subject": "coordinator@ecnu-cto"}
    wait_until(lambda: requests.get(f"{ecnu_catalog}/visits/{hosted['id']}", timeout=10).status_code == 200,
               WAIT, "the visit in ecnu-cto's catalog")
    school_feed = requests.get(f"{ecnu_catalog}/calendar/{calendars.feed_secret(ecnu_db, coordinator)}.ics",
                               timeout=10)
    first, second = parse_both(school_feed.content)
    uids = {str(e["UID"]) for e in first}
    assert {calendars.slot_uid(hosted["id"], s["id"], ECNU) for s in hosted["slots"]} <= uids
    assert uids == {s.uid.value for s in second}

    # rotated: the old URL is gone; revoked: the new one too
    rotated = calendars.rotate_feed(catalog_db, person)
    assert requests.get(f"{sdu_catalog}/calendar/{secret}.ics", timeout=10).status_code == 404
    assert requests.get(f"{sdu_catalog}/calendar/{rotated}.ics", timeout=10).status_code == 200
    calendars.revoke_feed(catalog_db, person)
    assert requests.get(f"{sdu_catalog}/calendar/{rotated}.ics", timeout=10).status_code == 404
    assert requests.get(f"{sdu_catalog}/calendar/not-a-secret.ics", timeout=10).status_code == 404


def test_no_faculty_email_is_on_any_topic_or_change_feed(stack):
    # after the tests above (and on its own: one approval of its own)
    faculty_id, address = stack.faculty("Qian Yu")
    hosted = stack.host_visit([slot("site_visit", "2099-04-17", "09:00", "10:00", capacity=1)])
    asked = stack.ask(faculty_id, hosted)
    wait_until(lambda: stack.request_status(asked, faculty_id, "approved"), WAIT, "the approval")
    stack.wait_mails(address, 1, "the approval mail")
    blobs = []
    topics = read_all_topics(stack.bootstrap, stack.prefix)
    # every topic of the stack: the saga's, the faculty profiles', the dead letters'
    assert {f"{stack.prefix}{s}.{e}.v1" for s in (ECNU, SDU) for e in ("visits", "slot-requests", "slot-decisions")
            } | {f"{stack.prefix}{SDU}.faculty.v1"} <= set(topics)
    assert len(topics[f"{stack.prefix}{SDU}.faculty.v1"]) >= len(stack.emails)
    for records in topics.values():
        for m in records:
            blobs += [m.value() or b"", m.key() or b""] + [value for _, value in (m.headers() or [])]
    partner = stack.auth(ECNU, "partner")
    for school, service in ((SDU, "faculty"), (SDU, "visits"), (ECNU, "visits")):
        for path in ("/changes?since=0", "/digest"):
            response = requests.get(f"{stack.url(school, service)}{path}", headers=partner, timeout=10)
            assert response.status_code == 200, response.text
            blobs.append(response.content)
    for blob in blobs:
        for address in stack.emails:
            assert address.encode() not in blob, address
        assert b"sdu-sie.example.edu" not in blob
    # the mails did go out to those addresses: the test would see a leak
    assert stack.mails(address)


def test_a_changed_slot_sends_an_update_and_a_waitlisted_request_promoted_after_a_withdrawal_is_told(stack):
    (first_id, first), (second_id, second) = stack.faculty("Zhou Jie"), stack.faculty("Wu Min")
    hosted = stack.host_visit([slot("co_teaching", "2099-04-16", "14:00", "16:00", capacity=1)])
    asked = stack.ask(first_id, hosted)
    wait_until(lambda: stack.request_status(asked, first_id, "approved"), WAIT, "the first approval")
    waiting = stack.ask(second_id, hosted, lang="zh")
    wait_until(lambda: stack.request_status(waiting, second_id, "waitlisted"), WAIT, "the waitlist")
    [listed] = stack.wait_mails(second, 1, "the waitlist mail")
    assert "候补" in listed["Subject"]
    assert not [p for p in listed.walk() if p.get_content_type() == "text/calendar"]

    # the host moves the slot by an hour: the approved one is asked to re-confirm, with an updated invitation
    current = stack.call("GET", ECNU, "visits", f"/visits/{hosted['id']}")
    moved = {**current["slots"][0], "starts_at": "2099-04-16T15:00:00+08:00", "ends_at": "2099-04-16T17:00:00+08:00"}
    moved.pop("places_left")
    body = {k: current[k] for k in ("theme", "invited", "place", "starts_on", "ends_on", "host_team", "agenda",
                                    "status")}
    stack.call("PUT", ECNU, "visits", f"/visits/{hosted['id']}", json={**body, "slots": [moved]},
               headers={"If-Match": f'"{current["version"]}"'})
    approval, update = stack.wait_mails(first, 2, "the update")
    assert update["Subject"].startswith("Please re-confirm")
    (before, _), (after, method) = calendar_part(approval), calendar_part(update)
    old, new = only_event(before), only_event(after)
    assert method == "REQUEST" and str(new["UID"]) == str(old["UID"]) and int(new["SEQUENCE"]) > int(old["SEQUENCE"])
    assert new.decoded("DTSTART") == instant("2099-04-16T15:00:00+08:00")

    # the first withdraws: their invitation is cancelled, and the waitlisted one is promoted and invited
    reconfirm = wait_until(lambda: stack.request_status(asked, first_id, "reconfirm"), WAIT, "re-confirmation")
    stack.call("DELETE", SDU, "visits", f"/slot-requests/{asked['id']}", role="faculty", faculty_id=first_id,
               headers={"If-Match": f'"{reconfirm["version"]}"'})
    withdrawn = stack.wait_mails(first, 3, "the withdrawal")[2]
    cal, method = calendar_part(withdrawn)
    assert method == "CANCEL" and str(only_event(cal)["UID"]) == str(old["UID"])
    promoted = stack.wait_mails(second, 2, "the promotion")[1]
    assert "候补转正" in promoted["Subject"]
    cal, method = calendar_part(promoted)
    assert method == "REQUEST" and only_event(cal).decoded("DTSTART") == instant("2099-04-16T15:00:00+08:00")
