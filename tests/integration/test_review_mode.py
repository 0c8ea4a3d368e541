"""Visits in review mode (each request waits for the host's coordinator) and waitlist positions, between two
schools on the real servers: ecnu-cto hosts, sdu-sie's faculty request through their own school's service.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from services.visits import model
from services.visits.store import DecisionStore, SeatStore
from services.visits.workflow import HAND_DECLINED, Host
from tests.integration.test_slot_workflow import (  # noqa: F401 (fixtures)
    HOST, REQUESTER, School, await_status, decision_at_host, publish_visit, request_slot, running, schools,
    status_at_requester,
)
from tests.kafkautil import read_topic, read_until
from tests.visit_samples import as_host_reads, request_doc, slot, visit, visit_doc
from tests.waiting import wait_until


def review_visit(capacity: int = 2) -> dict:
    return visit(approval="review", time_zone="Asia/Shanghai", slots=[slot(capacity=capacity, title={"en": "Lab"})])


def decide(host: School, auth, request_id: str, status: str, note: str | None = None):
    current = decision_at_host(host, auth, request_id)
    body = {"status": status, **({"note": note} if note is not None else {})}
    return host.client.put(f"/slot-decisions/{request_id}", json=body,
                           headers={**auth(HOST), "If-Match": f'"{current["version"]}"'})


def pending_at_host(host: School, auth, request_id: str) -> dict:
    return wait_until(lambda: (lambda d: d if d.get("status") == "pending" else None)(
        decision_at_host(host, auth, request_id)), what=f"request {request_id} pending at the host")


def seen_with(requester: School, auth, request_id: str, **expected) -> dict:
    """Wait until the requester's view of a request has these field values, and return it."""
    def check():
        seen = status_at_requester(requester, auth, request_id)
        return seen if all(seen.get(k) == v for k, v in expected.items()) else None

    return wait_until(check, what=f"request {request_id} with {expected}")


def test_a_review_mode_request_waits_for_the_host_who_approves_one_and_declines_another_with_its_reason(
        running, auth):
    host, requester = running
    published = publish_visit(host, auth, review_visit())
    assert published["approval"] == "review" and published["time_zone"] == "Asia/Shanghai"
    first, second = request_slot(requester, auth, published), request_slot(requester, auth, published)
    for made in (first, second):
        pending_at_host(host, auth, made["id"])
    # the requester's page has what it shows without calling the host: slot, visit, places left
    seen = seen_with(requester, auth, first["id"], status="pending", places_left=2)
    assert seen["slot"]["kind"] == "workshop" and seen["slot"]["starts_at"] == "2027-04-15T09:00:00+08:00"
    assert seen["slot"]["title"] == {"en": "Lab"} and seen["visit"]["time_zone"] == "Asia/Shanghai"
    assert seen["visit"]["approval"] == "review" and seen["visit"]["theme"]["en"].startswith("Sci-tech")
    # the host's incoming list, filtered by visit, slot and status, with the slot's places left now
    incoming = host.client.get(f"/slot-decisions?status=pending&visit_id={published['id']}"
                               f"&slot_id={published['slots'][0]['id']}", headers=auth(HOST)).get_json()["items"]
    assert sorted(d["id"] for d in incoming) == sorted([first["id"], second["id"]])
    assert {d["places_left"] for d in incoming} == {2}
    # a decline needs its reason
    refused = decide(host, auth, second["id"], "declined")
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0]["pointer"] == "/note"
    approved = decide(host, auth, first["id"], "approved")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    declined = decide(host, auth, second["id"], "declined", note="The workshop is for finance faculty.")
    assert declined.status_code == 200 and declined.get_json()["reason"] == HAND_DECLINED
    assert await_status(requester, auth, first["id"], "approved")["reason"] is None
    seen = await_status(requester, auth, second["id"], "declined")
    assert (seen["reason"], seen["note"]) == (HAND_DECLINED, "The workshop is for finance faculty.")
    # a decision taken stays taken: declining it again is a conflict, not a change
    assert decide(host, auth, second["id"], "declined", note="again").status_code == 409


def test_a_full_slot_waitlists_the_next_who_is_promoted_after_a_withdrawal_with_positions_right_at_each_step(
        running, auth):
    host, requester = running
    published = publish_visit(host, auth, review_visit(capacity=1))
    a, b, c, d = (request_slot(requester, auth, published) for _ in range(4))
    for made in (a, b, c, d):
        pending_at_host(host, auth, made["id"])
    assert decide(host, auth, a["id"], "approved").get_json()["status"] == "approved"
    # the slot is full: an approval puts the request on the waitlist, in arrival order
    answer = decide(host, auth, b["id"], "approved").get_json()
    assert (answer["status"], answer["waitlist_position"]) == ("waitlisted", 1)
    assert decide(host, auth, c["id"], "approved").get_json()["waitlist_position"] == 2
    assert seen_with(requester, auth, b["id"], status="waitlisted", waitlist_position=1)
    assert seen_with(requester, auth, c["id"], status="waitlisted", waitlist_position=2)
    assert seen_with(requester, auth, a["id"], status="approved", places_left=0)
    # the approved one withdraws: the first waitlisted is promoted, the next moves up
    withdrawn = requester.client.delete(f"/slot-requests/{a['id']}", headers={
        **auth(REQUESTER), "If-Match": f'"{status_at_requester(requester, auth, a["id"])["version"]}"'})
    assert withdrawn.status_code == 200
    assert seen_with(requester, auth, b["id"], status="approved", waitlist_position=None)
    assert seen_with(requester, auth, c["id"], status="waitlisted", waitlist_position=1)
    # another approval queues behind; a decline of the first waitlisted moves it up
    assert decide(host, auth, d["id"], "approved").get_json()["waitlist_position"] == 2
    assert decide(host, auth, c["id"], "declined", note="Another lecturer covers it.").status_code == 200
    assert seen_with(requester, auth, d["id"], status="waitlisted", waitlist_position=1)
    seen = seen_with(requester, auth, c["id"], status="declined")
    assert seen["waitlist_position"] is None and seen["note"] == "Another lecturer covers it."
    # the host's waitlist of the slot, in order
    waitlist = host.client.get(f"/slot-decisions?status=waitlisted&sort=waitlisted_at"
                               f"&slot_id={published['slots'][0]['id']}", headers=auth(HOST)).get_json()["items"]
    assert [(w["id"], w["waitlist_position"], w["places_left"]) for w in waitlist] == [(d["id"], 1, 0)]


def test_concurrent_approvals_in_review_mode_never_exceed_the_capacity(running, auth):
    host, requester = running
    published = publish_visit(host, auth, review_visit(capacity=2))
    made = [request_slot(requester, auth, published) for _ in range(10)]
    for request in made:
        pending_at_host(host, auth, request["id"])
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda r: decide(host, auth, r["id"], "approved"), made))
    assert {a.status_code for a in answers} == {200}
    decisions = [decision_at_host(host, auth, r["id"]) for r in made]
    assert sum(d["status"] == "approved" for d in decisions) == 2
    assert sum(d["status"] == "waitlisted" for d in decisions) == 8
    seat = SeatStore(host.db).get(published["id"], published["slots"][0]["id"])
    assert seat["count"] == 2 and sorted(seat["holders"]) == sorted(d["id"] for d in decisions
                                                                    if d["status"] == "approved")
    waitlist = host.client.get(f"/slot-decisions?status=waitlisted&sort=waitlisted_at"
                               f"&slot_id={published['slots'][0]['id']}", headers=auth(HOST)).get_json()["items"]
    assert [w["waitlist_position"] for w in waitlist] == list(range(1, 9))


def test_a_faculty_member_lists_their_own_requests_with_all_a_page_shows_and_the_coordinator_all_of_the_school(
        running, auth):
    host, requester = running
    published = publish_visit(host, auth, visit(time_zone="Asia/Shanghai", slots=[slot(capacity=1)]))
    made = [request_slot(requester, auth, published), request_slot(requester, auth, published)]
    # the two may reach the host in either order (two keys, two partitions): the first there gets the place
    decided = {r["id"]: await_status(requester, auth, r["id"], "approved", "waitlisted")["status"] for r in made}
    first, second = sorted(made, key=lambda r: decided[r["id"]])  # approved, then waitlisted
    seen_with(requester, auth, second["id"], status="waitlisted", waitlist_position=1)
    mine = requester.client.get("/slot-requests", headers=auth(REQUESTER, "faculty", second["faculty_id"]))
    items = mine.get_json()["items"]
    assert [r["id"] for r in items] == [second["id"]]
    shown = items[0]
    assert (shown["status"], shown["waitlist_position"], shown["host_school"]) == ("waitlisted", 1, HOST)
    assert shown["slot"]["kind"] == "workshop" and shown["slot"]["starts_at"] == "2027-04-15T09:00:00+08:00"
    assert shown["visit"]["time_zone"] == "Asia/Shanghai" and shown["visit"]["approval"] == "automatic"
    assert shown["places_left"] == 0 and shown["motivation"]
    # the school's coordinator: every request, filtered by status or visit
    coordinator = auth(REQUESTER)
    waiting = requester.client.get("/slot-requests?status=waitlisted", headers=coordinator).get_json()["items"]
    assert [r["id"] for r in waiting] == [second["id"]]
    of_visit = requester.client.get(f"/slot-requests?visit_id={published['id']}&sort=created_at",
                                    headers=coordinator).get_json()["items"]
    assert [r["id"] for r in of_visit] == [r["id"] for r in made]
    # another faculty member sees neither the list nor the request of someone else
    other = auth(REQUESTER, "faculty", first["faculty_id"])
    assert [r["id"] for r in requester.client.get("/slot-requests", headers=other).get_json()["items"]] == [
        first["id"]]
    assert requester.client.get(f"/slot-requests/{second['id']}", headers=other).status_code == 404


def test_in_review_mode_the_rules_that_need_no_judgement_still_decline_at_once_and_a_cancellation_declines_pending(
        schools):
    host, requester = schools
    hosting = Host(host.db, HOST)
    published = visit_doc(HOST, approval="review", slots=[slot(capacity=3), slot(start="10:00", end="12:00")])
    host.db["visits"].insert_one(published)
    first_slot, overlapping_slot = (s["id"] for s in published["slots"])
    member = str(uuid.uuid4())
    asked = as_host_reads(request_doc(requester.db, REQUESTER, HOST, published["_id"], first_slot, member))
    assert hosting.on_request(asked, 1)["status"] == "pending"
    assert hosting.decide_by_hand(asked["id"], 1, "approved", None)["status"] == "approved"
    # the same member asks for an overlapping slot: declined on arrival, as in automatic mode
    clash = as_host_reads(request_doc(requester.db, REQUESTER, HOST, published["_id"], overlapping_slot, member))
    assert (lambda d: (d["status"], d["reason"]))(hosting.on_request(clash, 1)) == ("declined", model.OVERLAP)
    # another request waits; the visit is cancelled: it is declined with that reason, the approval too
    waiting = as_host_reads(request_doc(requester.db, REQUESTER, HOST, published["_id"], first_slot))
    assert hosting.on_request(waiting, 1)["status"] == "pending"
    host.db["visits"].update_one({"_id": published["_id"]}, {"$set": {"status": "cancelled"}})
    hosting.reconcile(host.db["visits"].find_one({"_id": published["_id"]}))
    for request_id in (waiting["id"], asked["id"]):
        decision = host.db["slot_decisions"].find_one({"_id": request_id})
        assert (decision["status"], decision["reason"]) == ("declined", model.VISIT_CANCELLED)
    assert SeatStore(host.db).get(published["_id"], first_slot)["count"] == 0


def test_a_waitlist_left_unnumbered_by_a_stopped_writer_is_renumbered_by_the_worker_pass(schools):
    host, requester = schools
    hosting = Host(host.db, HOST)
    published = visit_doc(HOST, slots=[slot(capacity=1)])
    host.db["visits"].insert_one(published)
    slot_id = published["slots"][0]["id"]
    asked = [as_host_reads(request_doc(requester.db, REQUESTER, HOST, published["_id"], slot_id)) for _ in range(4)]
    for request in asked:
        hosting.on_request(request, 1)
    first_waiting, second_waiting, third_waiting = (d["_id"] for d in DecisionStore(host.db).waitlist(
        published["_id"], slot_id))
    # the first waitlisted is declined, and the writer stops before renumbering (its flag stays)
    decision = host.db["slot_decisions"].find_one({"_id": first_waiting})
    assert hosting._write(decision, model.DECLINE, model.DECLINED, HAND_DECLINED, note="No") is not None
    positions = lambda: [host.db["slot_decisions"].find_one({"_id": i})["waitlist_position"]
                         for i in (second_waiting, third_waiting)]
    assert positions() == [2, 3]
    versions = [host.db["slot_decisions"].find_one({"_id": i})["version"] for i in (second_waiting, third_waiting)]
    assert hosting.reconcile_pending() >= 1
    assert positions() == [1, 2]
    # each moved decision has a new version, for the relay to publish again; a second pass changes nothing
    assert [host.db["slot_decisions"].find_one({"_id": i})["version"] for i in (second_waiting, third_waiting)] == [
        v + 1 for v in versions]
    assert hosting.reconcile_pending() == 0 and positions() == [1, 2]


def test_the_host_keeps_the_requesters_motivation_for_its_coordinator_and_never_publishes_it_back(
        running, auth, kafka_bootstrap):
    host, requester = running
    published = publish_visit(host, auth, review_visit())
    words = "I teach <b>venture finance</b> & would co-teach the lab.\nTwo years of fintech cases."
    made = request_slot(requester, auth, published, motivation=words)
    silent = request_slot(requester, auth, published, motivation="")
    # the request event, as the requester's relay publishes it, carries the motivation to the host
    pending = pending_at_host(host, auth, made["id"])
    assert pending["motivation"] == words
    assert pending_at_host(host, auth, silent["id"])["motivation"] == ""
    listed = host.client.get(f"/slot-decisions?status=pending&visit_id={published['id']}",
                             headers=auth(HOST)).get_json()["items"]
    assert {d["id"]: d["motivation"] for d in listed} == {made["id"]: words, silent["id"]: ""}
    assert host.db["slot_decisions"].find_one({"_id": made["id"]})["motivation"] == words
    # the pending decision is on its topic before the approval: the relay publishes an entity's latest
    # state, so an approval written before the relay ran would leave no pending event to look at
    read_until(kafka_bootstrap, host.settings.topic("slot-decisions"), lambda records: any(
        m.key().decode() == made["id"] and json.loads(m.value())["status"] == "pending" for m in records))
    approved = decide(host, auth, made["id"], "approved")
    assert approved.status_code == 200 and approved.get_json()["motivation"] == words
    assert await_status(requester, auth, made["id"], "approved")["motivation"] == words
    # the decision events back (pending, then approved) carry no motivation, nor do the host's visit events
    decisions = read_until(kafka_bootstrap, host.settings.topic("slot-decisions"), lambda records: any(
        m.key().decode() == made["id"] and json.loads(m.value())["status"] == "approved" for m in records))
    mine = [json.loads(m.value()) for m in decisions if m.key().decode() == made["id"]]
    assert [body["status"] for body in mine][-1] == "approved" and "pending" in [body["status"] for body in mine]
    assert all("motivation" not in body for body in mine)
    assert all(b"venture finance" not in m.value() for m in decisions)
    visits = read_topic(kafka_bootstrap, host.settings.topic("visits"))
    assert visits and all(b"venture finance" not in m.value() for m in visits if m.value())


def test_a_decision_received_before_the_host_kept_motivations_gets_it_from_the_requests_next_event(schools):
    host, requester = schools
    hosting = Host(host.db, HOST)
    published = visit_doc(HOST, approval="review", slots=[slot(capacity=1)])
    host.db["visits"].insert_one(published)
    asked = as_host_reads(request_doc(requester.db, REQUESTER, HOST, published["_id"], published["slots"][0]["id"]))
    assert hosting.on_request(asked, 1)["motivation"] == "Guest lecture on venture finance."
    # as an older host stored it; the requester re-sends its unanswered request: the host fills it in
    host.db["slot_decisions"].update_one({"_id": asked["id"]}, {"$unset": {"motivation": ""}})
    version = host.db["slot_decisions"].find_one({"_id": asked["id"]})["version"]
    hosting.on_request(asked, 1)
    stored = host.db["slot_decisions"].find_one({"_id": asked["id"]})
    assert (stored["motivation"], stored["version"]) == ("Guest lecture on venture finance.", version)
