"""Students' course-place requests between two schools, each with its courses app and worker, on the real servers.

ecnu-cto hosts a course; sdu-sie's students ask for places through their own
school's courses service, its coordinator endorses, the host decides. Each
school's worker loops (relays, consumers, reconciliation, resend) run in
threads of this process and stop at teardown.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.courses.places import PlaceHost
from services.courses.schemas import PlaceRequestEventSchema
from services.courses.store import DECISIONS, REQUESTS, PlaceSeatStore
from services.courses.worker import request_view
from tests.integration.test_slot_workflow import _replay
from tests.kafkautil import read_topic, read_until
from tests.samples import course
from tests.schools import School, two_schools
from tests.waiting import wait_until

HOST, HOME = "ecnu-cto", "sdu-sie"
PROFILE = {"name": "Wang Fang", "email": "wang.fang@sdu.example", "student_number": "202400123",
           "programme": "MEM"}


@pytest.fixture
def schools(make_settings, mongo_client):
    yield from two_schools(make_settings, mongo_client, "courses", HOST, HOME, place_request_resend_seconds=2.0)


@pytest.fixture
def running(schools):
    for school in schools:
        school.start_worker()
    return schools


def student(auth, number: int = 1):
    """A student of the home school, with the profile the front door passes from their sign-in."""
    sub = f"student{number}@{HOME}"
    return auth(HOME, "student", subject=sub, profile={**PROFILE, "student_number": f"20240{number:04d}"})


def publish_course(host: School, auth, **offering) -> dict:
    doc = course(code=f"MEM-{uuid.uuid4().hex[:6]}",
                 offerings=[{"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": 2,
                             **offering}])
    response = host.client.post("/courses", json=doc, headers=auth(HOST))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def ask(home: School, headers, published: dict, term: str = "2027-spring", **changes):
    body = {"host_school": HOST, "course_id": published["id"], "term": term,
            "statement": "I want to learn how technology firms plan their roadmaps.", **changes}
    return home.client.post("/place-requests", json=body, headers=headers)


def endorse(home: School, auth, made: dict, status: str = "endorsed", note: str | None = None):
    body = {"status": status, **({"note": note} if note else {})}
    return home.client.put(f"/place-requests/{made['id']}/endorsement", json=body,
                           headers={**auth(HOME), "If-Match": f'"{made["version"]}"'})


def at_home(home: School, auth, request_id: str) -> dict:
    return home.client.get(f"/place-requests/{request_id}", headers=auth(HOME)).get_json()


def await_status(home: School, auth, request_id: str, *statuses: str) -> dict:
    return wait_until(lambda: (lambda r: r if r["status"] in statuses else None)(at_home(home, auth, request_id)),
                      what=f"request {request_id} {statuses}")


def test_a_students_request_endorsed_at_home_is_approved_by_the_host_and_seen_at_home(running, auth,
                                                                                      kafka_bootstrap):
    host, home = running
    published = publish_course(host, auth)
    assert published["offerings"][0]["places_left"] == 2
    made = ask(home, student(auth), published)
    assert made.status_code == 201, made.get_json()
    request = made.get_json()
    assert request["status"] == "pending-endorsement" and request["student_id"] == f"student1@{HOME}"
    assert (request["name"], request["email"], request["programme"]) == (
        "Wang Fang", "wang.fang@sdu.example", "MEM")
    endorsed = endorse(home, auth, request, note="Top of her cohort in strategy.")
    assert endorsed.status_code == 200, endorsed.get_json()
    assert endorsed.get_json()["status"] == "endorsed"
    seen = await_status(home, auth, request["id"], "approved")
    assert seen["course"]["code"] == published["code"] and seen["offering"]["term"] == "2027-spring"
    assert seen["places_left"] == 1 and seen["declined_by"] is None
    # the endorser's words outlive the host's decision (which has no note of its own here)
    assert (seen["endorsement_note"], seen["note"]) == ("Top of her cohort in strategy.", None)
    decision = host.client.get(f"/place-decisions/{request['id']}", headers=auth(HOST)).get_json()
    assert (decision["status"], decision["requester_school"], decision["name"]) == ("approved", HOME, "Wang Fang")
    assert decision["statement"].startswith("I want to learn")
    # the host's course shows the place taken, in its API and in its events
    assert host.client.get(f"/courses/{published['id']}", headers=auth(HOST)).get_json()[
        "offerings"][0]["places_left"] == 1
    records = read_until(kafka_bootstrap, host.settings.topic("courses"), lambda rs: any(
        json.loads(r.value())["offerings"][0].get("places_left") == 1 for r in rs))
    assert any(json.loads(r.value())["offerings"][0].get("places_left") == 1 for r in records)
    # the home school's requests were all answered by the host
    wait_until(lambda: home.db[REQUESTS].count_documents({"awaiting_host": True}) == 0, what="answered")


def test_a_request_is_refused_at_the_field_or_when_the_student_holds_one_already(schools, auth):
    host, home = schools
    published = {"id": str(uuid.uuid4())}
    bad_host = ask(home, student(auth), published, host_school=HOME)
    assert bad_host.status_code == 422 and bad_host.get_json()["errors"][0]["pointer"] == "/host_school"
    bad_term = ask(home, student(auth), published, term="spring")
    assert bad_term.status_code == 422
    assert ask(home, student(auth), published, statement="").status_code == 422
    assert ask(home, student(auth), published).status_code == 201
    again = ask(home, student(auth), published)
    assert again.status_code == 409 and again.get_json()["type"].endswith("already-requested")
    # another student may; coordinators and faculty may not ask
    assert ask(home, student(auth, 2), published).status_code == 201
    assert ask(home, auth(HOME), published).status_code == 403


def test_an_idempotency_key_replays_only_for_the_student_who_sent_it(schools, auth):
    _, home = schools
    published, key = {"id": str(uuid.uuid4())}, {"Idempotency-Key": str(uuid.uuid4())}
    first = ask(home, {**student(auth, 3), **key}, published)
    assert first.status_code == 201
    replay = ask(home, {**student(auth, 3), **key}, published)
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.get_json()["id"] == first.get_json()["id"]
    # the same key and body from another student: refused, never the first student's request (email, number)
    other = ask(home, {**student(auth, 4), **key}, published)
    assert other.status_code == 422 and other.get_json()["type"].endswith(":idempotency-key-reused")
    assert "email" not in other.get_json() and "student_number" not in other.get_json()


def test_a_decline_at_home_needs_its_note_and_never_travels(schools, auth):
    host, home = schools
    request = ask(home, student(auth), {"id": str(uuid.uuid4())}).get_json()
    no_note = endorse(home, auth, request, "declined")
    assert no_note.status_code == 422 and no_note.get_json()["errors"][0]["pointer"] == "/note"
    declined = endorse(home, auth, request, "declined", "Take the school's own strategy course first.")
    assert declined.status_code == 200
    body = declined.get_json()
    assert (body["status"], body["declined_by"], body["note"]) == (
        "declined", "home", "Take the school's own strategy course first.")
    assert endorse(home, auth, body).status_code == 409
    # declined: the student may ask again
    assert ask(home, student(auth), {"id": request["course_id"]}).status_code == 201


def test_an_offering_has_one_term_per_course(schools, auth):
    host, _ = schools
    offering = {"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": 2}
    response = host.client.post("/courses", json=course(offerings=[offering, offering]), headers=auth(HOST))
    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/offerings/1/term"]


def decision_at_host(host: School, auth, request_id: str) -> dict:
    return host.client.get(f"/place-decisions/{request_id}", headers=auth(HOST)).get_json()


def asked_and_endorsed(home: School, auth, published: dict, number: int = 1, term: str = "2027-spring") -> dict:
    made = ask(home, student(auth, number), published, term=term)
    assert made.status_code == 201, made.get_json()
    endorsed = endorse(home, auth, made.get_json())
    assert endorsed.status_code == 200, endorsed.get_json()
    return endorsed.get_json()


def test_the_host_declines_with_its_reason_and_the_students_school_sees_who_declined(running, auth):
    host, home = running
    published = publish_course(host, auth)
    made = asked_and_endorsed(home, auth, published)
    await_status(home, auth, made["id"], "approved")
    decision = decision_at_host(host, auth, made["id"])
    no_note = host.client.put(f"/place-decisions/{made['id']}", json={"status": "declined"},
                              headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert no_note.status_code == 422 and no_note.get_json()["errors"][0]["pointer"] == "/note"
    declined = host.client.put(f"/place-decisions/{made['id']}", json={"status": "declined",
                                                                      "note": "The course is for MEM students."},
                               headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert declined.status_code == 200 and declined.get_json()["reason"] == "declined-by-host"
    seen = await_status(home, auth, made["id"], "declined")
    assert (seen["declined_by"], seen["reason"], seen["note"]) == (
        "host", "declined-by-host", "The course is for MEM students.")
    # the place it held is free again
    wait_until(lambda: host.client.get(f"/courses/{published['id']}", headers=auth(HOST)).get_json()[
        "offerings"][0]["places_left"] == 2, what="the place given back")
    # a host's decline is final: the student may ask again, so approving the old request could give two places
    again = host.client.put(f"/place-decisions/{made['id']}", json={"status": "approved"},
                            headers={**auth(HOST), "If-Match": f'"{declined.get_json()["version"]}"'})
    assert again.status_code == 409 and again.get_json()["type"].endswith(":decision-not-possible")
    # an offering that has started is closed: the host declines at once, with the reason
    started = publish_course(host, auth, term="2026-autumn", starts_on="2026-09-01", ends_on="2027-01-15")
    late = asked_and_endorsed(home, auth, started, term="2026-autumn")
    seen = await_status(home, auth, late["id"], "declined")
    assert (seen["declined_by"], seen["reason"]) == ("host", "offering-closed")
    unknown = asked_and_endorsed(home, auth, {"id": str(uuid.uuid4())})
    assert await_status(home, auth, unknown["id"], "declined")["reason"] == "course-not-found"


def test_in_review_mode_the_host_coordinator_approves_or_declines_each_request(running, auth):
    host, home = running
    published = publish_course(host, auth, approval="review")
    assert published["offerings"][0]["approval"] == "review"
    first, second = (asked_and_endorsed(home, auth, published, n) for n in (1, 2))
    for made in (first, second):
        wait_until(lambda: decision_at_host(host, auth, made["id"]).get("status") == "pending",
                   what="pending at the host")
    # while the host reviews, the student's school shows it endorsed, with the course as the host sent it
    wait_until(lambda: at_home(home, auth, first["id"])["course"] is not None, what="the host's answer at home")
    assert at_home(home, auth, first["id"])["status"] == "endorsed"
    pending = host.client.get("/place-decisions?status=pending", headers=auth(HOST)).get_json()["items"]
    assert {d["id"] for d in pending} == {first["id"], second["id"]}
    assert all(d["name"] == "Wang Fang" and d["programme"] == "MEM" and d["statement"] for d in pending)
    decision = decision_at_host(host, auth, first["id"])
    approved = host.client.put(f"/place-decisions/{first['id']}", json={"status": "approved"},
                               headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    decision = decision_at_host(host, auth, second["id"])
    declined = host.client.put(f"/place-decisions/{second['id']}",
                               json={"status": "declined", "note": "Prerequisites missing."},
                               headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert declined.status_code == 200
    assert await_status(home, auth, first["id"], "approved")["places_left"] == 1
    seen = await_status(home, auth, second["id"], "declined")
    assert (seen["declined_by"], seen["note"]) == ("host", "Prerequisites missing.")
    # approving again what is approved is a conflict, not a second place
    decision = decision_at_host(host, auth, first["id"])
    again = host.client.put(f"/place-decisions/{first['id']}", json={"status": "approved"},
                            headers={**auth(HOST), "If-Match": f'"{decision["version"]}"'})
    assert again.status_code == 409


def test_fifty_concurrent_endorsed_requests_for_two_places_end_with_two_approved_and_48_in_order(schools, auth):
    host, home = schools
    host.start_worker()
    host.start_worker()  # two consumers in the host's group decide concurrently
    home.start_worker()
    published = publish_course(host, auth)
    made = [ask(home, student(auth, n), published).get_json() for n in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        endorsed = list(pool.map(lambda m: endorse(home, auth, m), made))
    assert all(e.status_code == 200 for e in endorsed)

    def all_decided():
        page = home.client.get("/place-requests?limit=100", headers=auth(HOME)).get_json()["items"]
        return page if len(page) == 50 and all(r["status"] in ("approved", "waitlisted") for r in page) else None

    decided = wait_until(all_decided, what="every request decided at the students' school")
    assert sum(r["status"] == "approved" for r in decided) == 2
    waitlist = host.client.get("/place-decisions?status=waitlisted&sort=waitlisted_at&limit=100",
                               headers=auth(HOST)).get_json()["items"]
    assert [d["waitlist_position"] for d in waitlist] == list(range(1, 49))
    positions = {d["id"]: d["waitlist_position"] for d in waitlist}
    wait_until(lambda: sorted(r["waitlist_position"] for r in home.client.get(
        "/place-requests?status=waitlisted&limit=100", headers=auth(HOME)).get_json()["items"]
        if r["waitlist_position"] == positions[r["id"]]) == list(range(1, 49)),
        what="the students' school sees every waitlist position")
    seat = PlaceSeatStore(host.db).get(published["id"], "2027-spring")
    assert seat["count"] == 2 and len(seat["holders"]) == 2
    assert host.client.get(f"/courses/{published['id']}", headers=auth(HOST)).get_json()[
        "offerings"][0]["places_left"] == 0


def test_concurrent_repeated_deliveries_at_the_host_never_oversell(schools, auth):
    host, home = schools
    published = publish_course(host, auth)
    hosting = PlaceHost(host.db, HOST)
    requests = [as_host_reads(home, auth, published, n) for n in range(50)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda r: hosting.on_request(r, r["version"]), requests + requests))
    decisions = [host.db[DECISIONS].find_one({"_id": r["id"]}) for r in requests]
    assert sum(d["status"] == "approved" for d in decisions) == 2
    waiting = sorted((d for d in decisions if d["status"] == "waitlisted"), key=lambda d: d["waitlist_key"])
    assert [d["waitlist_position"] for d in waiting] == list(range(1, 49))
    assert {d["version"] for d in decisions if d["status"] == "approved"} == {1}


def as_host_reads(home: School, auth, published: dict, number: int) -> dict:
    """An endorsed request as the host's consumer loads it from the students' school's event."""
    endorsed = asked_and_endorsed(home, auth, published, number)
    stored = home.db[REQUESTS].find_one({"_id": endorsed["id"]})
    return PlaceRequestEventSchema().load(request_view(stored))


def test_a_withdrawal_promotes_the_first_waitlisted(running, auth):
    host, home = running
    published = publish_course(host, auth, places=1)
    first = asked_and_endorsed(home, auth, published, 1)
    approved = await_status(home, auth, first["id"], "approved")
    second = asked_and_endorsed(home, auth, published, 2)
    assert await_status(home, auth, second["id"], "waitlisted")["waitlist_position"] == 1
    third = asked_and_endorsed(home, auth, published, 3)
    assert await_status(home, auth, third["id"], "waitlisted")["waitlist_position"] == 2
    # only the student withdraws their own request, with the version they read
    mine = student(auth, 1)
    assert home.client.delete(f"/place-requests/{first['id']}", headers={**student(auth, 2), "If-Match":
                                                                          f'"{approved["version"]}"'}).status_code == 404
    assert home.client.delete(f"/place-requests/{first['id']}",
                              headers={**mine, "If-Match": '"1"'}).status_code == 412
    gone = home.client.delete(f"/place-requests/{first['id']}",
                              headers={**mine, "If-Match": f'"{approved["version"]}"'})
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"
    await_status(home, auth, second["id"], "approved")
    wait_until(lambda: at_home(home, auth, third["id"])["waitlist_position"] == 1, what="third moves up")
    wait_until(lambda: decision_at_host(host, auth, first["id"])["status"] == "withdrawn", what="withdrawn at host")
    assert at_home(home, auth, first["id"])["status"] == "withdrawn"
    # a student's list holds their own requests only
    own = home.client.get("/place-requests", headers=student(auth, 3)).get_json()["items"]
    assert [r["id"] for r in own] == [third["id"]]


def test_a_request_the_broker_lost_is_sent_again_and_decided(schools, auth, broker):
    host, home = schools
    published = publish_course(host, auth)
    home.start_worker()
    made = asked_and_endorsed(home, auth, published)
    topic = home.settings.topic("place-requests")
    assert read_until(broker.bootstrap, topic, lambda r: len(r) >= 1, 60)
    # the broker forgets the request before the host ever reads it
    broker.restart()
    host.start_worker()
    # the students' school's worker sends it again (PLACE_REQUEST_RESEND_SECONDS=2 here), the host decides
    await_status(home, auth, made["id"], "approved")
    wait_until(lambda: home.db[REQUESTS].count_documents({"awaiting_host": True}) == 0, what="answered")
    assert host.db[DECISIONS].count_documents({}) == 1


def test_the_place_requests_topic_never_carries_a_students_email_number_or_id(running, auth, kafka_bootstrap):
    host, home = running
    published = publish_course(host, auth)
    made = asked_and_endorsed(home, auth, published)
    await_status(home, auth, made["id"], "approved")
    mine = at_home(home, auth, made["id"])
    gone = home.client.delete(f"/place-requests/{made['id']}",
                              headers={**student(auth, 1), "If-Match": f'"{mine["version"]}"'})
    assert gone.status_code == 200
    never_endorsed = ask(home, student(auth, 2), published).get_json()
    records = read_until(kafka_bootstrap, home.settings.topic("place-requests"), lambda r: len(r) >= 2, 60)
    assert len(records) >= 2 and {r.key().decode() for r in records} == {made["id"]}, "only endorsed requests"
    for record in records:
        body = json.loads(record.value())
        assert set(body) == {"id", "school", "host_school", "course_id", "term", "name", "programme", "statement",
                             "withdrawn", "version", "created_at", "updated_at"}
        raw = record.value().decode()
        for secret in (PROFILE["email"], "202400001", f"student1@{HOME}", "email", "student_number", "student_id"):
            assert secret not in raw, secret
    assert [json.loads(r.value())["withdrawn"] for r in records][-1] is True
    # the host's decisions name nobody either
    for record in read_topic(kafka_bootstrap, host.settings.topic("place-decisions")):
        assert PROFILE["email"] not in record.value().decode() and "Wang Fang" not in record.value().decode()
    assert never_endorsed["status"] == "pending-endorsement"


def test_repeated_and_reordered_deliveries_change_nothing(running, auth, kafka_bootstrap):
    host, home = running
    published = publish_course(host, auth, places=1)
    first = asked_and_endorsed(home, auth, published, 1)
    approved = await_status(home, auth, first["id"], "approved")
    second = asked_and_endorsed(home, auth, published, 2)
    await_status(home, auth, second["id"], "waitlisted")
    home.client.delete(f"/place-requests/{first['id']}",
                       headers={**student(auth, 1), "If-Match": f'"{approved["version"]}"'})
    await_status(home, auth, second["id"], "approved")
    wait_until(lambda: decision_at_host(host, auth, first["id"])["status"] == "withdrawn", what="withdrawn at host")
    wait_until(lambda: home.db[REQUESTS].count_documents({"awaiting_host": True}) == 0, what="answered")
    ids = (first["id"], second["id"])
    before_host = [decision_at_host(host, auth, i) for i in ids]
    before_home = [at_home(home, auth, i) for i in ids]
    # the first request's events (endorsed, withdrawn) again and out of order: withdrawn, endorsed, endorsed
    request_topic = home.settings.topic("place-requests")
    sent = [m for m in read_topic(kafka_bootstrap, request_topic, expect=3) if m.key().decode() == first["id"]]
    assert len(sent) == 2
    _replay(kafka_bootstrap, [sent[1], sent[0], sent[0]], first["id"].encode(), request_topic)
    # the host's decisions on it (approved, withdrawn) again, newest first
    decision_topic = host.settings.topic("place-decisions")
    by_version = {int(dict(m.headers())["ce_entityversion"]): m
                  for m in read_topic(kafka_bootstrap, decision_topic) if m.key().decode() == first["id"]}
    decided = [by_version[v] for v in sorted(by_version)]
    _replay(kafka_bootstrap, decided[::-1], first["id"].encode(), decision_topic)
    # the poison records reach the dead-letter topics only after the replays before them were handled
    assert read_until(kafka_bootstrap, host.settings.dlq_topic, lambda r: len(r) >= 1, 30)
    assert read_until(kafka_bootstrap, home.settings.dlq_topic, lambda r: len(r) >= 1, 30)
    assert [decision_at_host(host, auth, i) for i in ids] == before_host
    assert [at_home(home, auth, i) for i in ids] == before_home


def test_more_places_promote_the_waitlist_and_a_withdrawn_course_declines_its_requests(running, auth):
    host, home = running
    published = publish_course(host, auth, places=1)
    first = asked_and_endorsed(home, auth, published, 1)
    await_status(home, auth, first["id"], "approved")
    second = asked_and_endorsed(home, auth, published, 2)
    await_status(home, auth, second["id"], "waitlisted")
    # the host's coordinator edits the course (sent back as read, places left and all) on the ETag they read
    # before the seat was taken: still current
    doc = course(code=published["code"], offerings=[{**published["offerings"][0], "places": 2}])
    more = host.client.put(f"/courses/{published['id']}", json=doc,
                           headers={**auth(HOST), "If-Match": f'"{published["version"]}"'})
    assert more.status_code == 200, more.get_json()
    await_status(home, auth, second["id"], "approved")
    current = host.client.get(f"/courses/{published['id']}", headers=auth(HOST))
    gone = host.client.delete(f"/courses/{published['id']}",
                              headers={**auth(HOST), "If-Match": current.headers["ETag"]})
    assert gone.status_code == 200
    for made in (first, second):
        seen = await_status(home, auth, made["id"], "declined")
        assert (seen["declined_by"], seen["reason"]) == ("host", "offering-removed")
