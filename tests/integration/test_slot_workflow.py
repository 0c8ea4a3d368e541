"""The slot-request workflow between two schools, each with its visits app and worker, on the real servers.

ecnu-cto hosts visits; sdu-sie's faculty request slots through their own
school's service. Each school's worker loops (relays, consumers,
reconciliation) run in threads of this process and stop at teardown.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Producer

from services.visits import model
from services.visits.store import DECISIONS, REQUESTS, RequestStore, SeatStore, ensure_indexes
from services.visits.workflow import Host, Requester
from services.visits.worker import visit_spec
from shared.worker import make_relay
from tests.kafkautil import read_topic, read_until
from tests.schools import School, two_schools
from tests.visit_samples import as_host_reads, request_doc, slot, visit, visit_doc
from tests.waiting import wait_until

HOST, REQUESTER = "ecnu-cto", "sdu-sie"
DEADLINE = 60.0


@pytest.fixture
def schools(make_settings, mongo_client):
    yield from two_schools(make_settings, mongo_client, "visits", HOST, REQUESTER)


@pytest.fixture
def running(schools):
    for school in schools:
        school.start_worker()
    return schools


def publish_visit(host: School, auth, doc=None) -> dict:
    response = host.client.post("/visits", json=doc or visit(), headers=auth(HOST))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def request_slot(requester: School, auth, visit_doc: dict, slot_index: int = 0, faculty_id: str | None = None,
                 **changes) -> dict:
    faculty_id = faculty_id or str(uuid.uuid4())
    body = {"visit_id": visit_doc["id"], "host_school": HOST, "slot_id": visit_doc["slots"][slot_index]["id"],
            "faculty_id": faculty_id, "motivation": "Guest lecture on venture finance.", **changes}
    response = requester.client.post("/slot-requests", json=body, headers=auth(REQUESTER, "faculty", faculty_id))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def status_at_requester(requester: School, auth, request_id: str) -> dict:
    return requester.client.get(f"/slot-requests/{request_id}", headers=auth(REQUESTER)).get_json()


def await_status(requester: School, auth, request_id: str, *statuses: str) -> dict:
    return wait_until(lambda: (lambda r: r if r["status"] in statuses else None)(
        status_at_requester(requester, auth, request_id)), what=f"request {request_id} {statuses}")


def answered(requester: School) -> None:
    """Wait until the host has answered every intent of the requester (the decision's status shows a moment
    before its acknowledgement is stored)."""
    wait_until(lambda: requester.db[REQUESTS].count_documents({"awaiting_host": True}) == 0,
               what="every request answered by the host")


def decision_at_host(host: School, auth, request_id: str) -> dict:
    return host.client.get(f"/slot-decisions/{request_id}", headers=auth(HOST)).get_json()


def test_a_request_made_at_the_requester_is_decided_by_the_host_and_seen_at_the_requester(running, auth,
                                                                                          kafka_bootstrap):
    host, requester = running
    published = publish_visit(host, auth)
    made = request_slot(requester, auth, published)
    assert made["status"] == "pending"
    seen = await_status(requester, auth, made["id"], "approved")
    decision = decision_at_host(host, auth, made["id"])
    assert decision["status"] == "approved" and decision["requester_school"] == REQUESTER
    assert decision["slot_hash"] == seen["slot_hash"] == model.slot_hash(published["slots"][0])
    assert decision["slot"]["starts_at"] == "2027-04-13T09:00:00+08:00" and seen["decided_at"]
    records = read_topic(kafka_bootstrap, host.settings.topic("slot-decisions"), expect=1)
    assert [m.key().decode() for m in records] == [made["id"]]
    # requests the host must decline, each with its reason
    missing = request_slot(requester, auth, {**published, "id": str(uuid.uuid4())})
    unknown_slot = request_slot(requester, auth, {**published, "slots": [{"id": str(uuid.uuid4())}]})
    for made_now, reason in ((missing, model.VISIT_NOT_FOUND), (unknown_slot, model.SLOT_NOT_FOUND)):
        declined = await_status(requester, auth, made_now["id"], "declined")
        assert declined["reason"] == reason


def test_a_cancelled_visit_declines_its_requests(running, auth):
    host, requester = running
    published = publish_visit(host, auth, visit(invited=["all"]))
    cancelled = host.client.delete(f"/visits/{published['id']}", headers={**auth(HOST), "If-Match": '"1"'})
    assert cancelled.status_code == 200
    made = request_slot(requester, auth, published)
    assert await_status(requester, auth, made["id"], "declined")["reason"] == model.VISIT_CANCELLED


def test_a_school_not_invited_is_declined(schools):
    host, requester = schools
    published = visit_doc(HOST)
    host.db["visits"].insert_one(published)
    request = as_host_reads(request_doc(requester.db, "later-member", HOST, published["_id"],
                                        published["slots"][0]["id"]))
    decision = Host(host.db, HOST).on_request(request, 1)
    assert (decision["status"], decision["reason"]) == ("declined", model.NOT_INVITED)


def test_fifty_concurrent_requests_for_two_seats_end_with_exactly_two_approved(schools, auth):
    host, requester = schools
    host.start_worker()
    host.start_worker()  # two consumers in the host's group decide concurrently
    requester.start_worker()
    published = publish_visit(host, auth)
    with ThreadPoolExecutor(max_workers=16) as pool:
        made = list(pool.map(lambda _: request_slot(requester, auth, published), range(50)))
    ids = [m["id"] for m in made]

    def all_decided():
        page = requester.client.get("/slot-requests?limit=100", headers=auth(REQUESTER)).get_json()["items"]
        return page if all(r["status"] != "pending" for r in page) and len(page) == 50 else None

    decided = wait_until(all_decided, what="every request decided at the requester")
    counts = {s: sum(r["status"] == s for r in decided) for s in ("approved", "waitlisted")}
    assert counts == {"approved": 2, "waitlisted": 48}
    at_host = [decision_at_host(host, auth, i) for i in ids]
    assert sum(d["status"] == "approved" for d in at_host) == 2
    # each approval decided once: its first decision is version 1, and no seat was taken twice
    assert {d["version"] for d in at_host if d["status"] == "approved"} == {1}
    # the waitlist is numbered 1..48 in the order they joined it, and the requester sees the same positions
    waitlist = host.client.get(f"/slot-decisions?status=waitlisted&sort=waitlisted_at&limit=100"
                               f"&slot_id={published['slots'][0]['id']}", headers=auth(HOST)).get_json()["items"]
    assert [d["waitlist_position"] for d in waitlist] == list(range(1, 49))
    positions = {d["id"]: d["waitlist_position"] for d in waitlist}
    wait_until(lambda: all(r["waitlist_position"] == positions[r["id"]] for r in requester.client.get(
        "/slot-requests?status=waitlisted&limit=100", headers=auth(REQUESTER)).get_json()["items"]),
        what="the requester sees every waitlist position")
    seat = SeatStore(host.db).get(published["id"], published["slots"][0]["id"])
    assert seat["count"] == 2 and sorted(seat["holders"]) == sorted(d["id"] for d in at_host
                                                                    if d["status"] == "approved")


def test_concurrent_decisions_of_repeated_requests_never_exceed_capacity(schools):
    host, _ = schools
    hosting = Host(host.db, HOST)
    published = visit_doc(HOST)
    host.db["visits"].insert_one(published)
    slot_id = published["slots"][0]["id"]
    requests = [as_host_reads(request_doc(host.db, REQUESTER, HOST, published["_id"], slot_id)) for _ in range(50)]
    # every request delivered twice, all at once
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda r: hosting.on_request(r, 1), requests + requests))
    decisions = [host.db["slot_decisions"].find_one({"_id": r["id"]}) for r in requests]
    assert sum(d["status"] == "approved" for d in decisions) == 2
    assert sum(d["status"] == "waitlisted" for d in decisions) == 48
    # decided once each (a later version only moves a waitlist position), and numbered in the order they joined
    assert {d["version"] for d in decisions if d["status"] == "approved"} == {1}
    waiting = sorted((d for d in decisions if d["status"] == "waitlisted"), key=lambda d: d["waitlist_key"])
    assert [d["waitlist_position"] for d in waiting] == list(range(1, 49))
    seat = SeatStore(host.db).get(published["_id"], slot_id)
    assert seat["count"] == 2 and len(seat["holders"]) == 2


def _replay(bootstrap: str, records, poison_key: bytes, topic: str) -> None:
    """Send these records again, then a poison record with the same key: its dead letter marks them consumed."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for msg in records:
        producer.produce(topic, key=msg.key(), value=msg.value(), headers=msg.headers(), partition=msg.partition())
    partition = records[-1].partition()
    producer.produce(topic, key=poison_key, value=b"{}", headers=[("ce_specversion", b"1.0")], partition=partition)
    assert producer.flush(10) == 0


def test_duplicate_and_reordered_deliveries_change_nothing(running, auth, kafka_bootstrap):
    host, requester = running
    published = publish_visit(host, auth)
    # two requests for the one seat: they are keyed by request id, so they may travel on different
    # partitions and the host may decide either first; one is approved, the other waitlisted
    asked = [request_slot(requester, auth, published, slot_index=1) for _ in range(2)]
    decided = [await_status(requester, auth, r["id"], "approved", "waitlisted") for r in asked]
    assert sorted(d["status"] for d in decided) == ["approved", "waitlisted"]
    approved, waiting = sorted(decided, key=lambda d: d["status"] != "approved")
    made = approved
    gone = requester.client.delete(f"/slot-requests/{made['id']}",
                                   headers={**auth(REQUESTER), "If-Match": f'"{approved["version"]}"'})
    assert gone.status_code == 200
    await_status(requester, auth, waiting["id"], "approved")
    wait_until(lambda: decision_at_host(host, auth, made["id"])["status"] == "withdrawn", what="withdrawn at host")
    before_host = [decision_at_host(host, auth, i) for i in (made["id"], waiting["id"])]
    before_requester = [status_at_requester(requester, auth, i) for i in (made["id"], waiting["id"])]

    # the requester's events (submitted, withdrawn), again and out of order: withdrawn, submitted
    request_topic = requester.settings.topic("slot-requests")
    sent = [m for m in read_topic(kafka_bootstrap, request_topic, expect=3) if m.key().decode() == made["id"]]
    assert len(sent) == 2
    _replay(kafka_bootstrap, [sent[1], sent[0], sent[0]], made["id"].encode(), request_topic)
    # the host's decisions on the first request (approved, withdrawn), again and out of order
    decision_topic = host.settings.topic("slot-decisions")
    # (a replayed request may have the host send its decision again: the same version, at least once)
    by_version = {int(dict(m.headers())["ce_entityversion"]): m
                  for m in read_topic(kafka_bootstrap, decision_topic, expect=4) if m.key().decode() == made["id"]}
    assert len(by_version) == 2
    decided = [by_version[v] for v in sorted(by_version)]
    _replay(kafka_bootstrap, [decided[1], decided[0]], made["id"].encode(), decision_topic)

    # the poison records reach the dead-letter topics only after the replays before them were handled
    assert read_until(kafka_bootstrap, host.settings.dlq_topic, lambda r: len(r) >= 1, 30)
    assert read_until(kafka_bootstrap, requester.settings.dlq_topic, lambda r: len(r) >= 1, 30)
    assert [decision_at_host(host, auth, i) for i in (made["id"], waiting["id"])] == before_host
    assert [status_at_requester(requester, auth, i) for i in (made["id"], waiting["id"])] == before_requester
    assert status_at_requester(requester, auth, made["id"])["status"] == "withdrawn"


def test_withdrawing_an_approved_request_promotes_the_first_waitlisted(running, auth, kafka_bootstrap):
    host, requester = running
    published = publish_visit(host, auth)
    first = request_slot(requester, auth, published, slot_index=1)
    approved = await_status(requester, auth, first["id"], "approved")
    second = request_slot(requester, auth, published, slot_index=1)
    await_status(requester, auth, second["id"], "waitlisted")
    third = request_slot(requester, auth, published, slot_index=1)
    await_status(requester, auth, third["id"], "waitlisted")
    # the faculty member withdraws with their own token
    mine = auth(REQUESTER, "faculty", first["faculty_id"])
    stale = requester.client.delete(f"/slot-requests/{first['id']}", headers={**mine, "If-Match": '"1"'})
    assert stale.status_code == 412  # the decision moved the version
    gone = requester.client.delete(f"/slot-requests/{first['id']}",
                                   headers={**mine, "If-Match": f'"{approved["version"]}"'})
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"
    promoted = await_status(requester, auth, second["id"], "approved")
    assert promoted["reason"] is None
    assert decision_at_host(host, auth, second["id"])["version"] == 2  # waitlisted, then approved
    assert status_at_requester(requester, auth, third["id"])["status"] == "waitlisted"
    wait_until(lambda: decision_at_host(host, auth, first["id"])["status"] == "withdrawn", what="withdrawn at host")
    assert status_at_requester(requester, auth, first["id"])["status"] == "withdrawn"
    # the host's coordinator declines the promoted one by hand: the next in line moves up
    decision = decision_at_host(host, auth, second["id"])
    declined = host.client.put(f"/slot-decisions/{second['id']}", json={"status": "declined", "note": "Full week"},
                               headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert declined.status_code == 200 and declined.get_json()["reason"] == "declined-by-host"
    assert await_status(requester, auth, second["id"], "declined")["reason"] == "declined-by-host"
    await_status(requester, auth, third["id"], "approved")


def test_a_faculty_member_is_refused_an_overlapping_slot(running, auth):
    host, requester = running
    published = publish_visit(host, auth, visit(slots=[
        slot("seminar", "2027-04-13", "09:00", "11:00"), slot("workshop", "2027-04-13", "10:30", "12:00"),
        slot("panel", "2027-04-13", "11:00", "12:00")]))
    faculty_id = str(uuid.uuid4())
    first = request_slot(requester, auth, published, 0, faculty_id)
    await_status(requester, auth, first["id"], "approved")
    overlapping = request_slot(requester, auth, published, 1, faculty_id)
    adjacent = request_slot(requester, auth, published, 2, faculty_id)
    assert await_status(requester, auth, overlapping["id"], "declined")["reason"] == model.OVERLAP
    assert await_status(requester, auth, adjacent["id"], "approved")["reason"] is None
    # a colleague may take the overlapping slot
    colleague = request_slot(requester, auth, published, 1)
    await_status(requester, auth, colleague["id"], "approved")
    # approving the overlap by hand is refused too
    decision = decision_at_host(host, auth, overlapping["id"])
    refused = host.client.put(f"/slot-decisions/{overlapping['id']}", json={"status": "approved"},
                              headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert refused.status_code == 409 and refused.get_json()["reason"] == model.OVERLAP


def move_first_slot(host: School, auth, published: dict, slots: list[dict], starts_at: str, ends_at: str,
                    version: int):
    """The host moves the visit's first slot to a new time (a PUT with If-Match on `version`); the answer."""
    slots[0].update(starts_at=starts_at, ends_at=ends_at)
    moved = host.client.put(f"/visits/{published['id']}", json=visit(slots=slots),
                            headers={**auth(HOST), "If-Match": f'"{version}"'})
    assert moved.status_code == 200, moved.get_json()
    return moved


def test_a_slot_change_asks_approvals_to_reconfirm(running, auth, kafka_bootstrap):
    host, requester = running
    published = publish_visit(host, auth)
    moved = request_slot(requester, auth, published, 0)
    kept = request_slot(requester, auth, published, 1)
    await_status(requester, auth, moved["id"], "approved")
    await_status(requester, auth, kept["id"], "approved")
    slots = [dict(s) for s in published["slots"]]
    changed = move_first_slot(host, auth, published, slots, "2027-04-13T14:00:00+08:00", "2027-04-13T16:00:00+08:00", 1)
    asked = await_status(requester, auth, moved["id"], "reconfirm")
    assert asked["slot_hash"] == model.slot_hash(changed.get_json()["slots"][0]) != model.slot_hash(slots[1])
    assert decision_at_host(host, auth, moved["id"])["slot"]["starts_at"] == "2027-04-13T14:00:00+08:00"
    assert status_at_requester(requester, auth, kept["id"])["status"] == "approved"
    # the requester accepts the new time
    accepted = requester.client.post(f"/slot-requests/{moved['id']}/reconfirmation",
                                     headers={**auth(REQUESTER), "If-Match": f'"{asked["version"]}"'})
    assert accepted.status_code == 200, accepted.get_json()
    again = await_status(requester, auth, moved["id"], "approved")
    assert again["slot_hash"] == asked["slot_hash"]
    # cancelling the visit declines what it approved
    version = host.client.get(f"/visits/{published['id']}", headers=auth(HOST)).get_json()["version"]
    host.client.delete(f"/visits/{published['id']}", headers={**auth(HOST), "If-Match": f'"{version}"'})
    assert await_status(requester, auth, kept["id"], "declined")["reason"] == model.VISIT_CANCELLED


def test_a_slot_changed_twice_is_approved_only_for_the_time_the_requester_confirmed(running, auth):
    host, requester = running
    published = publish_visit(host, auth)
    made = request_slot(requester, auth, published, 0)
    await_status(requester, auth, made["id"], "approved")
    slots = [dict(s) for s in published["slots"]]
    first = move_first_slot(host, auth, published, slots, "2027-04-13T14:00:00+08:00", "2027-04-13T16:00:00+08:00", 1)
    asked = await_status(requester, auth, made["id"], "reconfirm")
    # the host moves the slot again before the requester answers
    second = move_first_slot(host, auth, published, slots, "2027-04-13T16:00:00+08:00", "2027-04-13T17:00:00+08:00",
                             first.get_json()["version"])
    latest = model.slot_hash(second.get_json()["slots"][0])
    assert latest != asked["slot_hash"]
    wait_until(lambda: status_at_requester(requester, auth, made["id"])["slot_hash"] == latest,
               what="the request bound to the slot's second time")
    now = status_at_requester(requester, auth, made["id"])
    assert now["status"] == "reconfirm"
    accepted = requester.client.post(f"/slot-requests/{made['id']}/reconfirmation",
                                     headers={**auth(REQUESTER), "If-Match": f'"{now["version"]}"'})
    assert accepted.status_code == 200, accepted.get_json()
    again = await_status(requester, auth, made["id"], "approved")
    assert again["slot_hash"] == latest
    assert decision_at_host(host, auth, made["id"])["slot"]["starts_at"] == "2027-04-13T16:00:00+08:00"


def test_a_request_the_broker_lost_is_sent_again_and_decided(schools, auth, broker):
    host, requester = schools
    published = publish_visit(host, auth)
    requester.start_worker()
    made = request_slot(requester, auth, published)
    topic = requester.settings.topic("slot-requests")
    assert read_until(broker.bootstrap, topic, lambda r: len(r) >= 1, DEADLINE)
    # the broker forgets the request before the host ever reads it
    broker.restart()
    host.start_worker()
    time.sleep(2)
    assert status_at_requester(requester, auth, made["id"])["status"] == "pending"
    # what the worker's resend loop does every SLOT_REQUEST_RESEND_SECONDS
    assert Requester(requester.db, REQUESTER).resend_unanswered("9999") == 1
    await_status(requester, auth, made["id"], "approved")
    answered(requester)
    assert Requester(requester.db, REQUESTER).resend_unanswered("9999") == 0
    # a repeat of a decided request makes the host send the same decision again, and changes nothing else
    host.stop_workers()
    records = read_until(broker.bootstrap, topic, lambda r: len(r) >= 1, DEADLINE)
    body = json.loads(records[-1].value())
    decided = decision_at_host(host, auth, made["id"])
    Host(host.db, HOST).on_request(body, 1)
    again = host.db[DECISIONS].find_one({"_id": made["id"]})
    assert again["pending_since"] > 0, "the decision was not re-armed for the relay"
    assert decision_at_host(host, auth, made["id"]) == decided


def test_a_withdrawal_the_broker_lost_is_sent_again_and_frees_the_seat(schools, auth, broker):
    host, requester = schools
    published = publish_visit(host, auth)
    for school in schools:
        school.start_worker()
    made = request_slot(requester, auth, published, slot_index=1)
    approved = await_status(requester, auth, made["id"], "approved")
    waiting = request_slot(requester, auth, published, slot_index=1)
    await_status(requester, auth, waiting["id"], "waitlisted")
    # the host answered both: nothing is left to send again
    answered(requester)
    assert Requester(requester.db, REQUESTER).resend_unanswered("9999") == 0
    # the host stops reading; the withdrawal is published, then the broker forgets it
    host.stop_workers()
    topic = requester.settings.topic("slot-requests")
    gone = requester.client.delete(f"/slot-requests/{made['id']}",
                                   headers={**auth(REQUESTER), "If-Match": f'"{approved["version"]}"'})
    assert gone.status_code == 200
    sent = read_until(broker.bootstrap, topic, lambda r: len(r) >= 3, DEADLINE)
    assert len(sent) == 3
    withdrawal = [json.loads(m.value()) for m in sent if m.key().decode() == made["id"]][-1]
    assert withdrawal["withdrawn"] is True  # a JSON boolean, as the event schema says
    broker.restart()
    host.start_worker()
    time.sleep(2)
    assert decision_at_host(host, auth, made["id"])["status"] == "approved", "the host saw the lost withdrawal"
    # what the worker's resend loop does every SLOT_REQUEST_RESEND_SECONDS
    assert Requester(requester.db, REQUESTER).resend_unanswered("9999") == 1
    wait_until(lambda: decision_at_host(host, auth, made["id"])["status"] == "withdrawn", what="withdrawn at host")
    # the seat it freed goes to the waitlist, and the withdrawal's answer stops the re-sending
    await_status(requester, auth, waiting["id"], "approved")
    answered(requester)
    assert status_at_requester(requester, auth, made["id"])["status"] == "withdrawn"


def test_a_withdrawal_that_changes_no_decision_is_still_answered(schools):
    host, requester = schools
    hosting = Host(host.db, HOST)
    stored = request_doc(requester.db, REQUESTER, HOST, str(uuid.uuid4()), str(uuid.uuid4()))
    RequestStore(requester.db).insert(stored)
    request = as_host_reads(stored)
    declined = hosting.on_request(request, 1)
    assert declined["status"] == "declined" and declined["request_version"] == 1
    host.db[DECISIONS].update_one({"_id": request["id"]}, {"$unset": {"pending_since": ""}})  # as the relay leaves it
    # the requester withdrew before it learnt of the decline: nothing to decide, but the decision
    # goes out again with the request version it answers, so the requester stops re-sending
    withdrawn = Requester(requester.db, REQUESTER).withdraw(request["id"], 1)
    after = hosting.on_request(as_host_reads(withdrawn), 2)
    stored = host.db[DECISIONS].find_one({"_id": request["id"]})
    assert after["status"] == "declined" and after["version"] == declined["version"]
    assert stored["request_version"] == 2 and stored.get("pending_since", 0) > 0


def places_left(school: School, auth, visit_id: str) -> tuple[list[int], str]:
    response = school.client.get(f"/visits/{visit_id}", headers=auth(REQUESTER, "partner"))
    return [s["places_left"] for s in response.get_json()["slots"]], response.headers["ETag"]


def drain(relay) -> None:
    for _ in range(100):
        if relay.run_once() == 0:
            return
    raise AssertionError("the relay never ran out of work")


def test_each_seat_change_republishes_the_visit_with_its_places_left_and_keeps_the_coordinators_etag(
        schools, auth, kafka_bootstrap):
    host, requester = schools
    published = publish_visit(host, auth)
    visit_id, lecture = published["id"], published["slots"][0]["id"]
    assert [s["places_left"] for s in published["slots"]] == [2, 1]
    relay = make_relay(host.settings, host.db, visit_spec(host.db))
    ensure_indexes(host.db)
    try:
        hosting = Host(host.db, HOST)
        asked = [request_doc(requester.db, REQUESTER, HOST, visit_id, lecture) for _ in range(2)]
        for made in asked:
            RequestStore(requester.db).insert(made)
        hosting.on_request(as_host_reads(asked[0]), 1)
        assert places_left(host, auth, visit_id) == ([1, 1], '"2"')
        hosting.on_request(as_host_reads(asked[1]), 1)
        assert places_left(host, auth, visit_id) == ([0, 1], '"3"')
        # the relay publishes the latest version with the seats as they are when it publishes
        drain(relay)
        latest = host.db["changes"].find_one({"entity_id": visit_id, "current": True})
        assert latest["version"] == 3 and [s["places_left"] for s in latest["state"]["slots"]] == [0, 1]
        # a coordinator who read version 1 may still edit: the seat changes since touch nothing they write
        url = f"/visits/{visit_id}"
        changed = host.client.put(url, json=visit(place="Shanghai, Putuo campus", slots=published["slots"]),
                                  headers={**auth(HOST), "If-Match": '"1"'})
        assert changed.status_code == 200 and changed.headers["ETag"] == '"4"'
        assert [s["places_left"] for s in changed.get_json()["slots"]] == [0, 1]
        # ... but never over another coordinator's edit
        stale = host.client.put(url, json=visit(place="Jinan", slots=published["slots"]),
                                headers={**auth(HOST), "If-Match": '"3"'})
        assert stale.status_code == 412 and stale.headers["ETag"] == '"4"'
        # a withdrawal frees its seat: one place again, and a newer version for the partners' catalogs
        withdrawn = Requester(requester.db, REQUESTER).withdraw(asked[0]["_id"], 1)
        hosting.on_request(as_host_reads(withdrawn), 2)
        assert places_left(host, auth, visit_id) == ([1, 1], '"5"')
        drain(relay)
        latest = host.db["changes"].find_one({"entity_id": visit_id, "current": True})
        assert latest["version"] == 5 and [s["places_left"] for s in latest["state"]["slots"]] == [1, 1]
        assert latest["state"]["place"] == "Shanghai, Putuo campus"
    finally:
        relay._drop_producer()


def test_a_seat_change_whose_writer_stopped_before_republishing_is_republished_by_the_worker(schools, auth):
    host, _ = schools
    published = publish_visit(host, auth)
    visit_id, lecture = published["id"], published["slots"][0]["id"]
    stopped = SeatStore(host.db)
    stopped.republish = lambda seat: None  # the process dies right after the seat write
    assert stopped.take(visit_id, lecture, 2, str(uuid.uuid4()))
    assert places_left(host, auth, visit_id) == ([1, 1], '"1"')  # read from the seats, not yet re-published
    assert host.db["visits"].find_one({"_id": visit_id})["version"] == 1
    assert Host(host.db, HOST).reconcile_pending() >= 1
    again = host.db["visits"].find_one({"_id": visit_id})
    assert again["version"] == 2 and again["pending_since"] > 0
    assert SeatStore(host.db).to_republish() == []
    assert Host(host.db, HOST).reconcile_pending() == 0
