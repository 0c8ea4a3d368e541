"""The notification queue on the real MongoDB-protocol server, with a real SMTP server (or none)."""

from __future__ import annotations

import email
import threading
import time
from email import policy

import pytest

from devstack import servers
from services.visits import model
from services.visits.notify import Notifier
from shared import mail
from shared.clock import wall_ms
from shared.notifications import (
    FAILED, PENDING, SENT, NotificationQueue, PermanentFailure, marker, send_due,
)

SEND = dict(claim_seconds=30, retry_seconds=0.01, retry_max_seconds=0.05)


@pytest.fixture
def db(mongo_client, prefix):
    database = mongo_client[f"{prefix}queue"]
    NotificationQueue(database).ensure_indexes()
    return database


def queue_three(queue: NotificationQueue) -> None:
    for i in range(3):
        assert queue.enqueue(f"n/{i}", cause=f"c/{i}", kind="k", to={"address": f"p{i}@x"}, lang="en", context={})


def test_a_notification_queued_twice_under_its_key_is_one(db):
    queue = NotificationQueue(db)
    assert queue.enqueue("k/1", cause="c", kind="k", to={"address": "a@x"}, lang="en", context={}) is True
    assert queue.enqueue("k/1", cause="c", kind="k", to={"address": "a@x"}, lang="en", context={}) is False
    assert db["notifications"].count_documents({}) == 1


def test_concurrent_senders_claim_each_notification_once(db):
    queue = NotificationQueue(db)
    for i in range(30):
        # causes of their own: one cause's notifications to one person go out one after the other
        queue.enqueue(f"n/{i}", cause=f"c/{i}", kind="k", to={"address": "a@x"}, lang="en", context={})
    delivered, lock = [], threading.Lock()

    def deliver(doc):
        with lock:
            delivered.append(doc["_id"])

    def sender():
        while send_due(NotificationQueue(db), deliver, **SEND):
            pass

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(delivered) == sorted(f"n/{i}" for i in range(30))
    assert queue.counts() == {PENDING: 0, SENT: 30, FAILED: 0}


def test_a_failed_delivery_stays_pending_with_a_later_due_time_and_a_permanent_one_fails(db):
    queue = NotificationQueue(db)
    queue_three(queue)

    def deliver(doc):
        if doc["_id"] == "n/0":
            raise ConnectionRefusedError("the mail server is down")
        if doc["_id"] == "n/1":
            raise PermanentFailure("no address")

    for _ in range(5):
        send_due(queue, deliver, **SEND)
    docs = {d["_id"]: d for d in db["notifications"].find()}
    assert docs["n/0"]["status"] == PENDING and docs["n/0"]["attempts"] >= 1
    assert "ConnectionRefusedError" in docs["n/0"]["last_error"]
    assert docs["n/1"]["status"] == FAILED and docs["n/2"]["status"] == SENT


def test_one_persons_news_of_one_cause_goes_out_in_order_even_when_the_first_attempt_failed(db):
    queue = NotificationQueue(db)
    person, other = {"faculty_id": "f-1"}, {"faculty_id": "f-2"}
    queue.enqueue("r/v2/f-1", cause="r", kind="approved", to=person, lang="en", context={})
    failing = {"r/v2/f-1"}
    delivered = []

    def deliver(doc):
        if doc["_id"] in failing:
            raise LookupError("the visit is not in this school's catalog yet")
        delivered.append(doc["_id"])

    send_due(queue, deliver, **SEND)
    assert delivered == [] and db["notifications"].find_one({"_id": "r/v2/f-1"})["attempts"] == 1
    # the decline is queued while the approval waits for its retry: due now, it still waits for the approval
    queue.enqueue("r/v3/f-1", cause="r", kind="declined", to=person, lang="en", context={})
    # another person's news of the same cause does not wait
    queue.enqueue("r/v3/f-2", cause="r", kind="declined", to=other, lang="en", context={})
    send_due(queue, deliver, claim_seconds=30, retry_seconds=5, retry_max_seconds=5)
    assert delivered == ["r/v3/f-2"]
    failing.clear()
    db["notifications"].update_one({"_id": "r/v2/f-1"}, {"$set": {"due_key": 0}})
    for _ in range(20):
        send_due(queue, deliver, **SEND)
        if len(delivered) == 3:
            break
        time.sleep(0.05)
    assert delivered == ["r/v3/f-2", "r/v2/f-1", "r/v3/f-1"]


def test_a_claimed_notification_is_not_sent_by_another_worker_until_the_claim_expires(db):
    queue = NotificationQueue(db)
    queue.enqueue("only", cause="c", kind="k", to={"address": "a@x"}, lang="en", context={})
    claimed = queue.claim(30)
    assert claimed is not None and queue.claim(30) is None
    # a claim that lapsed (its worker died) is taken over
    db["notifications"].update_one({"_id": "only"}, {"$set": {"claimed_until": 1}})
    again = queue.claim(30)
    assert again is not None and again["claimed_by"] != claimed["claimed_by"]
    # the first worker's late mark does not count: its claim is gone
    assert queue.mark_sent(claimed) is False and queue.mark_sent(again) is True


def approved_request(request_id: str, lang: str) -> dict:
    """A faculty member's slot request as the requester keeps it once approved, marked for its mail."""
    slot = {"kind": "workshop", "starts_at": "2099-04-15T14:00:00+08:00", "ends_at": "2099-04-15T17:00:00+08:00",
            "capacity": 1}
    return {"_id": request_id, "school": "sdu-sie", "host_school": "ecnu-cto", "visit_id": "v1", "slot_id": "s1",
            "faculty_id": "f1", "status": model.APPROVED, "reason": None, "slot": slot, "slot_hash": "h",
            "version": 3, "lang": lang, **marker()}


def test_a_request_change_is_derived_into_one_notification_even_when_derived_twice(db, make_settings):
    settings = make_settings("sdu-sie", "visits")
    notifier = Notifier(db, settings)
    notifier.ensure_indexes()
    request = approved_request("r1", lang="zh")
    db["slot_requests"].insert_one(request)
    # a crash after the notification was queued and before the marker was cleared: derived again
    notifier.derive_request(dict(request, notify_since=request["notify_since"] - 1))
    assert notifier.derive_pending() == 1
    assert notifier.derive_pending() == 0
    docs = list(db["notifications"].find())
    assert [d["_id"] for d in docs] == ["slot-request/r1/v3/faculty:f1"]
    assert docs[0]["calendar"]["method"] == "REQUEST" and docs[0]["calendar"]["sequence"] == 3
    assert docs[0]["lang"] == "zh" and docs[0]["kind"] == "approved"
    stored = db["slot_requests"].find_one({"_id": "r1"})
    assert "notify_since" not in stored and stored["notified_status"] == model.APPROVED


def test_a_change_written_while_its_mail_is_derived_does_not_mail_the_same_status_twice(db, make_settings):
    notifier = Notifier(db, make_settings("sdu-sie", "visits"))
    notifier.ensure_indexes()
    request = approved_request("r2", lang="en")
    db["slot_requests"].insert_one(request)
    # the approval is derived from the document as read; meanwhile the host's decision arrives again (the
    # requester records it, a newer version with a newer marker, the status unchanged)
    db["slot_requests"].update_one({"_id": "r2"}, {"$set": {"version": 4, **marker()}})
    notifier.derive_request(request)
    # the newer marker is derived next: the approval was told already, whatever the version
    notifier.derive_pending()
    assert [d["kind"] for d in db["notifications"].find({"cause": "slot-request/r2"})] == ["approved"]
    stored = db["slot_requests"].find_one({"_id": "r2"})
    assert "notify_since" not in stored and stored["notified_status"] == model.APPROVED


def test_a_message_is_marked_sent_only_once_the_smtp_server_accepted_it(db, make_settings, tmp_path):
    port = servers.free_port()
    settings = make_settings("sdu-sie", "visits", smtp_host=servers.HOST, smtp_port=port, smtp_timeout_seconds=2)
    queue = NotificationQueue(db)
    queue.enqueue("hello", cause="c", kind="k", to={"address": "a@sdu-sie.example.edu"}, lang="en", context={})

    def deliver(doc):
        mail.send(settings, mail.build_message(sender=settings.mail_sender, to=doc["to"]["address"], subject="Hi",
                                               text="t", html="<p>h</p>", message_key=doc["_id"]))

    send_due(queue, deliver, **SEND)
    assert db["notifications"].find_one({"_id": "hello"})["status"] == PENDING
    server = servers.start_mail(port, tmp_path / "mail", tmp_path)
    try:
        db["notifications"].update_one({"_id": "hello"}, {"$set": {"due_key": 0}})
        send_due(queue, deliver, **SEND)
    finally:
        server.stop(timeout=5)
    assert db["notifications"].find_one({"_id": "hello"})["status"] == SENT
    [kept] = list((tmp_path / "mail").glob("*.eml"))
    message = email.message_from_bytes(kept.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Hi" and message["X-Envelope-To"] == "a@sdu-sie.example.edu"


@pytest.mark.parametrize("mode", ["each", "daily"])
def test_new_incoming_requests_reach_the_coordinators_each_or_in_one_summary_a_day(db, make_settings, mode):
    settings = make_settings("ecnu-cto", "visits", coordinator_emails=("a@ecnu-cto.example.edu",
                                                                       "b@ecnu-cto.example.edu"),
                             coordinator_mail=mode)
    notifier = Notifier(db, settings)
    notifier.ensure_indexes()
    for i in range(3):
        db["slot_decisions"].insert_one({"_id": f"r{i}", "visit_id": "v1", "slot_id": "s1",
                                         "requester_school": "sdu-sie", "status": model.RECEIVED, **marker()})
    assert notifier.derive_pending() == 3 and notifier.derive_pending() == 0
    docs = list(db["notifications"].find())
    if mode == "each":
        assert len(docs) == 6 and all(len(d["context"]["items"]) == 1 for d in docs)
        assert all(d["due_key"] <= wall_ms() for d in docs)
    else:
        # one summary per coordinator, due when the day is over
        assert len(docs) == 2 and all(sorted(d["context"]["items"]) == ["r0", "r1", "r2"] for d in docs)
        assert all(d["due_key"] > wall_ms() and d["_id"].startswith("incoming-digest/") for d in docs)
    assert {d["to"]["address"] for d in docs} == {"a@ecnu-cto.example.edu", "b@ecnu-cto.example.edu"}


def test_a_request_declined_before_any_slot_was_bound_is_mailed_without_an_invitation(db, make_settings):
    notifier = Notifier(db, make_settings("sdu-sie", "visits"))
    db["slot_requests"].insert_one({
        "_id": "r2", "school": "sdu-sie", "host_school": "ecnu-cto", "visit_id": "gone", "slot_id": "s1",
        "faculty_id": "f1", "status": model.DECLINED, "reason": model.VISIT_NOT_FOUND, "slot": None,
        "version": 2, **marker()})
    assert notifier.derive_pending() == 1
    [doc] = db["notifications"].find()
    assert doc["kind"] == "declined" and doc["calendar"] is None and doc["context"]["reason"] == model.VISIT_NOT_FOUND
