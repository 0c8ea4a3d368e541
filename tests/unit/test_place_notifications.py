"""Which mail each change of a student's place request gets, to whom, in which language and words (no I/O)."""

from __future__ import annotations

import email
from email import policy

import pytest

from services.courses import notify
from services.courses.notify import (
    APPROVED, COORDINATORS, DECLINED, ENDORSED, PENDING_ENDORSEMENT, STUDENT, WAITLISTED, WITHDRAWN, place_notices,
)
from shared.config import Settings

ECNU, SDU = "ecnu-cto", "sdu-sie"
COURSE = {"title": {"en": "Technology strategy", "zh": "技术战略"}, "code": "CTO-601", "credits": 3}
OFFERING = {"term": "2027-fall", "starts_on": "2027-09-06", "ends_on": "2028-01-14"}


@pytest.mark.parametrize("notified, status, declined_by, expected", [
    (None, PENDING_ENDORSEMENT, None, ((COORDINATORS, "awaiting-endorsement"),)),
    (PENDING_ENDORSEMENT, ENDORSED, None, ((STUDENT, "endorsed"),)),
    (None, ENDORSED, None, ((STUDENT, "endorsed"),)),
    (PENDING_ENDORSEMENT, DECLINED, "home", ((STUDENT, "declined-home"),)),
    (ENDORSED, APPROVED, None, ((STUDENT, "approved"), (COORDINATORS, "approved"))),
    (ENDORSED, WAITLISTED, None, ((STUDENT, "waitlisted"), (COORDINATORS, "waitlisted"))),
    (WAITLISTED, APPROVED, None, ((STUDENT, "promoted"), (COORDINATORS, "promoted"))),
    (ENDORSED, DECLINED, "host", ((STUDENT, "declined"), (COORDINATORS, "declined"))),
    (APPROVED, DECLINED, "host", ((STUDENT, "declined"), (COORDINATORS, "declined"))),
    (APPROVED, WITHDRAWN, None, ((COORDINATORS, "withdrawn"),)),
    (PENDING_ENDORSEMENT, WITHDRAWN, None, ((COORDINATORS, "withdrawn"),)),
    # created and withdrawn before the worker looked: nobody heard of it
    (None, WITHDRAWN, None, ()),
    # the host's review shows as endorsed: nothing new for the student
    (ENDORSED, ENDORSED, None, ()),
    (APPROVED, APPROVED, None, ()),
    (PENDING_ENDORSEMENT, PENDING_ENDORSEMENT, None, ()),
    (DECLINED, DECLINED, "host", ()),
])
def test_each_change_of_a_place_request_mails_the_people_of_the_table(notified, status, declined_by, expected):
    assert place_notices(notified, status, declined_by) == expected


class Queue:
    def __init__(self):
        self.queued, self.digests = [], []

    def enqueue(self, key, **fields):
        self.queued.append({"_id": key, **fields})
        return True

    def add_to_digest(self, key, **fields):
        self.digests.append({"_id": key, **fields})


class Collection:
    def __init__(self):
        self.updates = []

    def update_one(self, filter, update):
        self.updates.append((filter, update))


def notifier(**settings) -> notify.Notifier:
    n = notify.Notifier.__new__(notify.Notifier)
    n.settings = Settings.from_env(service="courses", school=SDU, coordinator_emails=("c1@sdu", "c2@sdu"),
                                   coordinator_lang="zh", **settings)
    n.queue, n.requests, n.decisions = Queue(), Collection(), Collection()
    return n


def request(**fields) -> dict:
    return {"_id": "r1", "school": SDU, "host_school": ECNU, "course_id": "c1", "term": "2027-fall",
            "student_id": "li.lei@sdu", "email": "li.lei@sdu-sie.example.edu", "student_number": "2027001",
            "name": "Li Lei", "programme": "MEM", "statement": "I build products.", "lang": "zh",
            "status": APPROVED, "notified_status": ENDORSED, "reason": None, "note": None, "declined_by": None,
            "waitlist_position": None, "course": COURSE, "offering": OFFERING, "version": 4, "notify_since": 17,
            **fields}


def test_an_approval_queues_the_students_mail_in_their_language_and_one_per_coordinator_in_theirs():
    n = notifier()
    n.derive_request(request())
    (student,) = [q for q in n.queue.queued if q["kind"] == "approved"]
    assert student["_id"] == "place-request/r1/v4/student" and student["lang"] == "zh"
    assert student["to"] == {"request_id": "r1"}
    coordinators = [q for q in n.queue.queued if q["kind"] == notify.SCHOOL_KIND]
    assert [q["_id"] for q in coordinators] == ["place-request/r1/v4/coordinators/c1@sdu",
                                                "place-request/r1/v4/coordinators/c2@sdu"]
    assert {q["lang"] for q in coordinators} == {"zh"}
    (item,) = coordinators[0]["context"]["items"].values()
    assert item["change"] == "approved" and item["name"] == "Li Lei"
    # the student's address and number are read when the mail is sent, never queued
    assert "li.lei@sdu-sie.example.edu" not in repr(n.queue.queued) and "2027001" not in repr(n.queue.queued)
    # what was told is remembered, and the marker read cleared
    assert n.requests.updates == [({"_id": "r1"}, {"$set": {"notified_status": APPROVED}}),
                                  ({"_id": "r1", "notify_since": 17}, {"$unset": {"notify_since": ""}})]


def test_a_new_request_tells_the_coordinators_only_and_quotes_the_statement():
    n = notifier()
    n.derive_request(request(status=PENDING_ENDORSEMENT, notified_status=None, course=None, offering=None, version=1))
    assert {q["kind"] for q in n.queue.queued} == {notify.SCHOOL_KIND}
    item = next(iter(n.queue.queued[0]["context"]["items"].values()))
    assert item["change"] == "awaiting-endorsement" and item["statement"] == "I build products."


def test_coordinators_who_asked_for_a_daily_summary_get_the_change_in_that_days_summary():
    n = notifier(coordinator_mail="daily")
    n.derive_request(request(status=WITHDRAWN, notified_status=APPROVED, version=5))
    assert n.queue.queued == []
    assert [d["_id"].split("/")[0] for d in n.queue.digests] == ["places-digest", "places-digest"]
    assert {d["item_id"] for d in n.queue.digests} == {"r1/v5"}


def test_a_request_received_at_the_host_tells_the_hosts_coordinators():
    n = notifier()
    n.derive_incoming({"_id": "r9", "requester_school": ECNU, "course_id": "c2", "term": "2027-fall",
                       "name": "Wang Fang", "programme": "EMBA", "notify_since": 3})
    assert [q["_id"] for q in n.queue.queued] == ["place-incoming/r9/c1@sdu", "place-incoming/r9/c2@sdu"]
    assert next(iter(n.queue.queued[0]["context"]["items"].values()))["change"] == "incoming"
    assert n.decisions.updates == [({"_id": "r9", "notify_since": 3}, {"$unset": {"notify_since": ""}})]


class Directory:
    def __init__(self, catalog=None):
        self.catalog = catalog or {}

    def student(self, request_id):
        return {"_id": request_id, "email": "li.lei@sdu-sie.example.edu", "name": "Li Lei"}

    def course(self, course_id):
        return self.catalog.get(course_id)


def deliverer(catalog=None) -> notify.Deliverer:
    settings = Settings.from_env(service="courses", school=SDU)
    return notify.Deliverer(settings, Directory(catalog), send=lambda settings, message: None)


def parsed(message) -> email.message.EmailMessage:
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


def test_a_students_mail_is_in_chinese_with_the_course_and_the_hosts_reason_and_note():
    n = notifier()
    n.derive_request(request(status=DECLINED, declined_by="host", reason="declined-by-host", note="名额已满"))
    doc = next(q for q in n.queue.queued if q["kind"] == "declined")
    message = parsed(deliverer().message({**doc, "attempts": 0}))
    assert message["To"] == "li.lei@sdu-sie.example.edu"
    assert "技术战略" in message["Subject"] and "已拒绝" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "Li Lei，您好" in text
    assert "开课院校拒绝了该申请。" in text and "主办方备注：名额已满" in text
    assert "技术战略 (CTO-601)" in text and "2027-09-06 – 2028-01-14" in text and "/applications" in text
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_a_mail_before_the_hosts_decision_reads_the_course_from_the_catalog_and_waits_for_it_a_few_times():
    doc = {"_id": "place-request/r1/v2/student", "kind": "endorsed", "lang": "en", "to": {"request_id": "r1"},
           "attempts": 0, "context": {"request_id": "r1", "host_school": ECNU, "course_id": "c1",
                                      "term": "2027-fall", "course": None, "offering": None}}
    with pytest.raises(LookupError):
        deliverer().message(doc)
    text = parsed(deliverer({"c1": {**COURSE, "offerings": [OFFERING]}}).message(doc)).get_body(("plain",))
    assert "Your school endorsed your request" in text.get_content() and "Technology strategy" in text.get_content()
    late = parsed(deliverer().message({**doc, "attempts": notify.COURSE_WAIT_ATTEMPTS}))
    assert "c1" in late.get_body(("plain",)).get_content()


def test_a_coordinators_summary_of_several_changes_says_how_many_and_each_one():
    n = notifier(coordinator_mail="daily")
    n.derive_request(request(status=WAITLISTED, waitlist_position=2))
    n.derive_request(request(_id="r2", name="Han Mei", status=PENDING_ENDORSEMENT, notified_status=None, version=1))
    items = {d["item_id"]: d["item"] for d in n.queue.digests if d["to"] == {"address": "c1@sdu"}}
    doc = {"_id": "places-digest/2027-01-01/c1@sdu", "kind": notify.SCHOOL_KIND, "lang": "en", "attempts": 0,
           "to": {"address": "c1@sdu"}, "context": {"items": items}}
    message = parsed(deliverer({"c1": COURSE}).message(doc))
    assert message["Subject"] == "2 changes in students' place requests"
    text = message.get_body(("plain",)).get_content()
    assert "Li Lei for Technology strategy (CTO-601) (2027-fall) on the waitlist" in text
    assert "Place on the waitlist: 2." in text
    assert "Han Mei asks for a place in Technology strategy (CTO-601) (2027-fall)" in text
    assert "Statement: I build products." in text and "/manage/applications" in text
