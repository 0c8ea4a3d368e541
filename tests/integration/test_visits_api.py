"""The visits API on the real MongoDB-protocol server, through Flask's test client."""

from __future__ import annotations

import uuid

import pytest

from services.visits.app import create_app
from services.visits.store import DecisionStore, RequestStore, ensure_indexes
from services.visits.worker import REQUEST_SPEC, visit_spec
from services.visits.workflow import Host, Requester
from shared.clock import time_key
from shared.mongo import database
from shared.pagination import fill_time_keys
from shared.worker import make_relay
from tests.integration.test_courses_api import assert_problem
from tests.kafkautil import cloud_event, read_topic
from tests.paging import TIES_IN_ONE_SECOND, assert_pages_list_each_once_in_order, fixed_clock
from tests.visit_samples import VISIT, slot, visit


@pytest.fixture
def settings(make_settings):
    return make_settings("ecnu-cto", "visits")


@pytest.fixture
def app(settings, mongo_client):
    app = create_app(settings, client=mongo_client)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def drain(relay) -> None:
    for _ in range(100):
        if relay.run_once() == 0:
            break
    relay._drop_producer()


def create(client, auth, doc=None, **headers):
    return client.post("/visits", json=doc or VISIT, headers={**auth(), **headers})


def test_the_sample_visit_is_accepted_and_its_slots_get_ids(client, auth):
    created = create(client, auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["ETag"] == '"1"' and created.headers["Location"] == f"/visits/{body['id']}"
    assert body["school"] == "ecnu-cto" and body["version"] == 1 and body["status"] == "confirmed"
    assert body["theme"]["zh"] == "科技创业教学周" and body["invited"] == ["sdu-sie"]
    ids = [s["id"] for s in body["slots"]]
    assert len(set(ids)) == 2 and all(uuid.UUID(i) for i in ids)
    assert body["slots"][0]["starts_at"] == "2027-04-13T09:00:00+08:00" and body["slots"][1]["capacity"] == 1
    read = client.get(f"/visits/{body['id']}", headers=auth("ecnu-cto", "student"))
    assert read.status_code == 200 and read.get_json() == body


@pytest.mark.parametrize("change, pointer", [
    ({"theme": {"zh": "只有中文"}}, "/theme"),
    ({"invited": []}, "/invited"),
    ({"invited": ["nowhere"]}, "/invited/0"),
    ({"invited": ["ecnu-cto"]}, "/invited/0"),
    ({"invited": ["all", "sdu-sie"]}, "/invited"),
    ({"ends_on": "2027-04-01"}, "/ends_on"),
    ({"starts_on": "1999-04-12"}, "/starts_on"),
    ({"host_team": ["not-a-uuid"]}, "/host_team/0"),
    ({"status": "maybe"}, "/status"),
    ({"slots": [slot(kind="party")]}, "/slots/0/kind"),
    ({"slots": [slot(capacity=0)]}, "/slots/0/capacity"),
    ({"slots": [slot(capacity=2**70)]}, "/slots/0/capacity"),
    ({"slots": [slot(start="11:00", end="09:00")]}, "/slots/0/ends_at"),
    ({"slots": [{**slot(), "starts_at": "2027-04-15T09:00:00"}]}, "/slots/0/starts_at"),
    ({"slots": [slot(day="2027-05-01")]}, "/slots/0/starts_at"),
    ({"slots": [slot(id="0b7d5f5e-7d0a-4c55-9d59-6a1f7d8f0a11")] * 2}, "/slots"),
    ({"slots": [{**slot(), "surprise": 1}]}, "/slots/0/surprise"),
    ({"surprise": True}, "/surprise"),
])
def test_validation_errors_name_the_fields(client, auth, change, pointer):
    body = assert_problem(create(client, auth, visit(**change)), 422, "validation-failed")
    pointers = [e["pointer"] for e in body["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), pointers
    assert client.get("/visits", headers=auth()).get_json()["items"] == []


def test_writes_need_a_coordinator_of_the_host_school(client, auth):
    assert_problem(client.post("/visits", json=VISIT), 401, "unauthenticated")
    for school, role in (("ecnu-cto", "student"), ("ecnu-cto", "faculty"), ("sdu-sie", "coordinator"),
                         ("sdu-sie", "partner")):
        headers = auth(school, role, str(uuid.uuid4()) if role == "faculty" else None)
        assert_problem(client.post("/visits", json=VISIT, headers=headers), 403, "forbidden")


def test_a_partner_sees_only_the_visits_it_is_invited_to(client, auth, make_settings, mongo_client):
    invited = create(client, auth, visit(invited=["sdu-sie"])).get_json()
    everyone = create(client, auth, visit(invited=["all"], starts_on="2027-04-11")).get_json()
    # a third school joins the alliance later: "all" invites it too, a named list does not
    partner = auth("sdu-sie", "partner")
    ids = [v["id"] for v in client.get("/visits", headers=partner).get_json()["items"]]
    assert ids == [everyone["id"], invited["id"]]
    assert client.get(f"/visits/{invited['id']}", headers=partner).status_code == 200
    assert_problem(client.get("/visits", headers=auth("sdu-sie", "student")), 403, "forbidden")


def test_updates_need_if_match_and_cancelling_keeps_the_visit(client, auth):
    assert_problem(create(client, auth, visit(status="cancelled")), 422, "invalid-status")
    created = create(client, auth).get_json()
    url = f"/visits/{created['id']}"
    changed = visit(place="Shanghai, Putuo campus", slots=created["slots"])
    assert_problem(client.put(url, json=changed, headers=auth()), 428, "precondition-required")
    assert_problem(client.put(url, json=changed, headers={**auth(), "If-Match": '"5"'}), 412, "precondition-failed")
    ok = client.put(url, json=changed, headers={**auth(), "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    assert [s["id"] for s in ok.get_json()["slots"]] == [s["id"] for s in created["slots"]]
    cancelled = client.delete(url, headers={**auth(), "If-Match": '"2"'})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert client.get(url, headers=auth("sdu-sie", "partner")).get_json()["status"] == "cancelled"
    assert_problem(client.put(url, json=changed, headers={**auth(), "If-Match": '"3"'}), 409, "visit-cancelled")


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_visit(client, auth):
    first = create(client, auth, **{"Idempotency-Key": "v-1"})
    again = create(client, auth, **{"Idempotency-Key": "v-1"})
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(create(client, auth, visit(place="Jinan"), **{"Idempotency-Key": "v-1"}),
                   422, "idempotency-key-reused")


def test_filters_and_keyset_pages_list_every_visit_once(client, auth):
    for day in range(1, 13):
        kind = "seminar" if day % 3 == 0 else "workshop"
        create(client, auth, visit(starts_on=f"2027-05-{day:02d}", ends_on=f"2027-05-{day:02d}",
                                   slots=[slot(kind=kind, day=f"2027-05-{day:02d}")]))
    seen, url = [], "/visits?limit=5"
    while url:
        page = client.get(url.replace("http://localhost", ""), headers=auth()).get_json()
        seen.extend(v["starts_on"] for v in page["items"])
        url = page["next"]
    assert seen == [f"2027-05-{d:02d}" for d in range(1, 13)]
    seminars = client.get("/visits?kind=seminar&starts_from=2027-05-04", headers=auth()).get_json()["items"]
    assert [v["starts_on"] for v in seminars] == ["2027-05-06", "2027-05-09", "2027-05-12"]
    latest = client.get("/visits?sort=-starts_on&limit=1", headers=auth()).get_json()["items"]
    assert latest[0]["starts_on"] == "2027-05-12"
    assert_problem(client.get("/visits?status[$ne]=x", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/visits?cursor=nonsense", headers=auth()), 400, "invalid-cursor")


def test_pages_through_ties_list_every_visit_once_in_order_for_every_sort(client, auth, monkeypatch):
    # twelve visits written within one second, some in the same millisecond, on three days
    monkeypatch.setattr("services.visits.api.now_iso", fixed_clock(TIES_IN_ONE_SECOND))
    ids = []
    for i in range(len(TIES_IN_ONE_SECOND)):
        day = f"2027-05-{1 + i % 3:02d}"
        created = create(client, auth, visit(starts_on=day, ends_on=day, slots=[slot(day=day)]))
        assert created.status_code == 201, created.get_json()
        ids.append(created.get_json()["id"])
    sorts = {"starts_on": lambda v: v["starts_on"], "updated_at": lambda v: v["updated_at"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(client, auth(), "/visits", ids, sorts, limit=limit)
    # a partner pages through what it is invited to the same way
    assert_pages_list_each_once_in_order(client, auth("sdu-sie", "partner"), "/visits", ids, sorts, limit=3)


def test_openapi_documents_visits_requests_and_decisions(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/visits", "/visits/{visit_id}", "/slot-requests", "/slot-requests/{request_id}",
                 "/slot-requests/{request_id}/reconfirmation", "/slot-decisions",
                 "/slot-decisions/{request_id}", "/changes", "/digest"):
        assert path in paths, path
    assert client.get("/healthz").status_code == 200
    assert b"outbox_backlog" in client.get("/metrics").data


# slot requests, at the requester's school (sdu-sie)


@pytest.fixture
def requester(make_settings, mongo_client):
    app = create_app(make_settings("sdu-sie", "visits"), client=mongo_client)
    return app.test_client()


def slot_request(faculty_id: str, **changes) -> dict:
    return {"visit_id": str(uuid.uuid4()), "host_school": "ecnu-cto", "slot_id": str(uuid.uuid4()),
            "faculty_id": faculty_id, "motivation": "I teach venture finance.", **changes}


def test_a_faculty_member_may_request_a_slot_only_for_themselves(requester, auth):
    me, colleague = str(uuid.uuid4()), str(uuid.uuid4())
    mine = requester.post("/slot-requests", json=slot_request(me), headers=auth("sdu-sie", "faculty", me))
    assert mine.status_code == 201, mine.get_json()
    body = mine.get_json()
    assert body["status"] == "pending" and body["school"] == "sdu-sie" and body["faculty_id"] == me
    assert mine.headers["Location"] == f"/slot-requests/{body['id']}"
    assert_problem(requester.post("/slot-requests", json=slot_request(colleague),
                                  headers=auth("sdu-sie", "faculty", me)), 403, "forbidden")
    # a coordinator requests for any faculty member of the school
    theirs = requester.post("/slot-requests", json=slot_request(colleague), headers=auth("sdu-sie"))
    assert theirs.status_code == 201
    # each faculty member sees their own requests; the coordinator sees all
    listed = requester.get("/slot-requests", headers=auth("sdu-sie", "faculty", me)).get_json()["items"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert len(requester.get("/slot-requests", headers=auth("sdu-sie")).get_json()["items"]) == 2
    assert_problem(requester.get(f"/slot-requests/{theirs.get_json()['id']}",
                                 headers=auth("sdu-sie", "faculty", me)), 404, "slot-request-not-found")
    # other schools and other roles have no business here
    for headers in (auth("sdu-sie", "student"), auth("ecnu-cto", "faculty", me), auth("ecnu-cto", "partner"),
                    auth("ecnu-cto")):
        assert_problem(requester.post("/slot-requests", json=slot_request(me), headers=headers), 403, "forbidden")
        assert_problem(requester.get(f"/slot-requests/{body['id']}", headers=headers), 403, "forbidden")


@pytest.mark.parametrize("change, pointer", [
    ({"host_school": "sdu-sie"}, "/host_school"),
    ({"host_school": "nowhere"}, "/host_school"),
    ({"visit_id": "x"}, "/visit_id"),
    ({"motivation": "x" * 2001}, "/motivation"),
    ({"status": "approved"}, "/status"),
])
def test_slot_request_validation_names_the_fields(requester, auth, change, pointer):
    body = assert_problem(requester.post("/slot-requests", json=slot_request(str(uuid.uuid4()), **change),
                                         headers=auth("sdu-sie")), 422, "validation-failed")
    assert pointer in [e["pointer"] for e in body["errors"]]


def test_withdrawing_needs_if_match_and_only_once(requester, auth):
    me = str(uuid.uuid4())
    headers = auth("sdu-sie", "faculty", me)
    created = requester.post("/slot-requests", json=slot_request(me), headers=headers).get_json()
    url = f"/slot-requests/{created['id']}"
    assert_problem(requester.delete(url, headers=headers), 428, "precondition-required")
    gone = requester.delete(url, headers={**headers, "If-Match": '"1"'})
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"
    assert_problem(requester.delete(url, headers={**headers, "If-Match": '"2"'}), 409, "not-withdrawable")
    assert_problem(requester.post(f"{url}/reconfirmation", headers={**headers, "If-Match": '"2"'}),
                   409, "not-awaiting-reconfirmation")


def test_pages_through_ties_list_every_slot_request_once_in_order_for_every_sort(requester, auth, make_settings,
                                                                                 mongo_client):
    # twelve requests created within one second, some in the same millisecond; every other one then
    # withdrawn within another second, so that the two sorts differ
    db = database(mongo_client, make_settings("sdu-sie", "visits"))
    store = RequestStore(db)
    created = Requester(db, "sdu-sie", clock=fixed_clock(TIES_IN_ONE_SECOND))
    ids = []
    for _ in TIES_IN_ONE_SECOND:
        doc, _ = store.insert(created.new_request(slot_request(str(uuid.uuid4())), str(uuid.uuid4())))
        ids.append(doc["_id"])
    withdrawn = Requester(db, "sdu-sie", clock=fixed_clock([t.replace(":15.", ":16.") for t in TIES_IN_ONE_SECOND]))
    for request_id in ids[::2]:
        withdrawn.withdraw(request_id, 1)
    sorts = {"created_at": lambda r: r["created_at"], "updated_at": lambda r: r["updated_at"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(requester, auth("sdu-sie"), "/slot-requests", ids, sorts, limit=limit)


def test_pages_through_ties_list_every_decision_once_in_order_for_every_sort(client, auth, settings, mongo_client):
    # twelve decisions taken within one second (the visits are unknown: each is declined), some in the same
    # millisecond; queued_at is the order they were received in
    host = Host(database(mongo_client, settings), "ecnu-cto", clock=fixed_clock(
        [t for t in TIES_IN_ONE_SECOND for _ in range(2)]))
    ids = []
    for _ in TIES_IN_ONE_SECOND:
        request = {"id": str(uuid.uuid4()), "school": "sdu-sie", "visit_id": str(uuid.uuid4()),
                   "slot_id": str(uuid.uuid4()), "faculty_id": str(uuid.uuid4()), "withdrawn": False}
        assert host.on_request(request, 1)["status"] == "declined"
        ids.append(request["id"])
    sorts = {"queued_at": lambda d: ids.index(d["id"]), "updated_at": lambda d: d["updated_at"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(client, auth(), "/slot-decisions", ids, sorts, limit=limit)


def test_pages_of_a_waitlist_list_each_decision_once_in_the_order_it_joined(client, auth, settings, mongo_client):
    db = database(mongo_client, settings)
    visit_id = create(client, auth).get_json()["id"]
    slot_id = client.get(f"/visits/{visit_id}", headers=auth()).get_json()["slots"][1]["id"]  # capacity 1
    host = Host(db, "ecnu-cto")
    ids = []
    for _ in range(7):
        request = {"id": str(uuid.uuid4()), "school": "sdu-sie", "visit_id": visit_id, "slot_id": slot_id,
                   "faculty_id": str(uuid.uuid4()), "withdrawn": False}
        ids.append(request["id"])
        host.on_request(request, 1)
    waiting = ids[1:]
    positions = {d["_id"]: d["waitlist_position"] for d in DecisionStore(db).waitlist(visit_id, slot_id)}
    assert [positions[i] for i in waiting] == list(range(1, 7))
    sorts = {"waitlisted_at": lambda d: d["waitlist_position"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(client, auth(), "/slot-decisions", waiting, sorts,
                                             query="status=waitlisted", limit=limit)
    refused = client.get("/slot-decisions?sort=waitlisted_at", headers=auth())
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["pointer"] == "/sort"


def test_rows_stored_before_the_time_keys_existed_get_them_at_start_up(client, auth, settings, mongo_client,
                                                                       monkeypatch):
    # an upgraded school: visits, requests and decisions written by a version that stored no keys
    db = database(mongo_client, settings)
    monkeypatch.setattr("services.visits.api.now_iso", fixed_clock(TIES_IN_ONE_SECOND))
    ids = [create(client, auth).get_json()["id"] for _ in range(6)]
    RequestStore(db).insert(Requester(db, "ecnu-cto").new_request(
        slot_request(str(uuid.uuid4()), host_school="sdu-sie"), str(uuid.uuid4())))
    Host(db, "ecnu-cto").on_request({"id": str(uuid.uuid4()), "school": "sdu-sie", "visit_id": ids[0],
                                     "slot_id": str(uuid.uuid4()), "faculty_id": str(uuid.uuid4()),
                                     "withdrawn": False}, 1)
    old = {"visits": ["updated_key"], "slot_requests": ["created_key", "updated_key"],
           "slot_decisions": ["updated_key"]}
    for name, keys in old.items():
        db[name].update_many({}, {"$unset": {key: "" for key in keys}})
        assert db[name].count_documents({keys[0]: {"$exists": True}}) == 0
    versions = {d["_id"]: d["version"] for d in db.visits.find()}
    ensure_indexes(db)
    for name, keys in old.items():
        rows = list(db[name].find())
        assert rows, name
        for row in rows:
            for key in keys:
                assert row[key] == time_key(row[key.replace("_key", "_at")]), (name, key)
    # filling changes no version: an If-Match a client holds still matches
    assert {d["_id"]: d["version"] for d in db.visits.find()} == versions
    assert_pages_list_each_once_in_order(client, auth(), "/visits", ids, {"updated_at": lambda v: v["updated_at"]})
    assert fill_time_keys(db.visits, {"updated_key": "updated_at"}) == 0


def test_visits_and_requests_are_published_as_signed_cloudevents(app, client, requester, auth, settings,
                                                                 make_settings, mongo_client, kafka_bootstrap):
    db = database(mongo_client, settings)
    relay = make_relay(settings, db, visit_spec(db))
    ensure_indexes(db)
    created = create(client, auth).get_json()
    drain(relay)
    client.delete(f"/visits/{created['id']}", headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    events = [cloud_event(m) for m in read_topic(kafka_bootstrap, settings.topic("visits"), expect=2)]
    assert [e.get_type() for e in events] == ["visit.published.v1", "visit.updated.v1"]
    assert events[1].get_data()["status"] == "cancelled" and events[0].get_source() == "/schools/ecnu-cto/visits"
    # a request is published on the requester's own topic, from its own change log
    me = str(uuid.uuid4())
    requester.post("/slot-requests", json=slot_request(me), headers=auth("sdu-sie", "faculty", me))
    sdu = make_settings("sdu-sie", "visits")
    relay = make_relay(sdu, database(mongo_client, sdu), REQUEST_SPEC)
    ensure_indexes(relay.entities.database)
    drain(relay)
    records = read_topic(kafka_bootstrap, sdu.topic("slot-requests"), expect=1)
    event = cloud_event(records[0])
    assert event.get_type() == "slot_request.published.v1" and event.get_source() == "/schools/sdu-sie/visits"
    assert event.get_data()["faculty_id"] == me and event.get_data()["withdrawn"] is False
    assert database(mongo_client, sdu)["slot_requests_changes"].count_documents({}) == 1
    assert database(mongo_client, sdu)["changes"].count_documents({}) == 0
