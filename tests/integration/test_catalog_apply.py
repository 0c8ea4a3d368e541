"""The catalog's apply rules, search API and catch-up against the real MongoDB-protocol server."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import datetime
from dataclasses import replace

import icalendar
import pytest

from services.catalog.app import create_app
from services.catalog.store import ReadModel
from services.catalog.sync import Catchup, FeedClient, apply_event
from shared.config import School
from shared.events import InvalidEvent
from shared.mongo import database
from shared.digest import digest_of
from tests.catalogutil import (
    GUEST_LECTURE, WORKSHOP, course_body, event, faculty_body, visit_body, withdrawn_course_body,
)
from tests.paging import TIES_IN_ONE_SECOND, assert_pages_list_each_once_in_order
from tests.samples import course

ECNU, SDU = "ecnu-cto", "sdu-sie"


@pytest.fixture
def settings(make_settings, alliance):
    schools = tuple(School(s.id, s.name, {"courses": f"http://{s.id}.test", "faculty": f"http://{s.id}.test",
                                          "visits": f"http://{s.id}.test"}) for s in alliance)
    return make_settings(SDU, "catalog", schools=schools)


@pytest.fixture
def db(settings, mongo_client):
    db = database(mongo_client, settings)
    ReadModel(db).ensure_indexes()
    return db


@pytest.fixture
def model(db):
    return ReadModel(db)


@pytest.fixture
def client(settings, mongo_client, db):
    app = create_app(settings, client=mongo_client)
    app.config["TESTING"] = True
    return app.test_client()


def apply(model, body, type_="course.published.v1", school=ECNU, **kwargs):
    return apply_event(model, event(body, type_, school=school, **kwargs), school)


def test_a_newer_version_replaces_the_entry_and_a_replay_changes_nothing(model):
    body = course_body(ECNU)
    assert apply(model, body) == "applied"
    updated = course_body(ECNU, body["id"], version=2, hours=60)
    assert apply(model, updated, "course.updated.v1", seq=2) == "applied"
    assert apply(model, updated, "course.updated.v1", seq=2) == "stale"
    # the older event arriving late (a partition or a re-send) is stale: it hits the held newer version
    assert apply(model, body, seq=1) == "stale"
    held = model.get("course", body["id"])
    assert held["version"] == 2 and held["hours"] == 60 and held["seq"] == 2


def test_a_withdrawal_leaves_a_tombstone_that_an_older_replay_cannot_resurrect(model):
    body = course_body(ECNU)
    apply(model, body)
    tombstone = withdrawn_course_body(ECNU, body["id"], 2)
    assert apply(model, tombstone, "course.withdrawn.v1", seq=2) == "applied"
    assert model.get("course", body["id"]) is None
    assert apply(model, body, seq=1) == "stale"
    assert model.get("course", body["id"]) is None
    stone = model.collection("course").find_one({"_id": body["id"]})
    assert stone["visible"] is False and stone["version"] == 2 and "title" not in stone


def test_a_switch_to_school_only_visibility_removes_the_entry(model):
    body = course_body(ECNU)
    apply(model, body)
    apply(model, course_body(ECNU, body["id"], version=2, visibility="school"), "course.updated.v1", seq=2)
    assert model.get("course", body["id"]) is None


def test_a_withdrawal_of_an_unknown_course_is_kept_so_its_late_publication_stays_dropped(model):
    entity_id = str(uuid.uuid4())
    apply(model, withdrawn_course_body(ECNU, entity_id, 3), "course.withdrawn.v1", seq=3)
    assert apply(model, course_body(ECNU, entity_id, version=2), seq=2) == "stale"
    assert model.get("course", entity_id) is None


@pytest.mark.parametrize("change, reason", [
    ({"title": 42}, "title"),
    ({"credits": "three"}, "credits"),
    ({"languages": ["english"]}, "languages"),
    ({"id": "not-a-uuid"}, "id"),
    ({"id": str(uuid.uuid4())}, "differs from the event subject"),
    ({"version": 7}, "version"),
])
def test_a_poison_course_body_is_invalid(model, change, reason):
    good = event(course_body(ECNU))
    poisoned = replace(good, data={**good.data, **change})
    with pytest.raises(InvalidEvent, match=reason):
        apply_event(model, poisoned, ECNU)
    assert model.collection("course").count_documents({}) == 0


def test_a_body_about_another_school_is_refused(model):
    # sdu-sie's topic and source, but the course says it belongs to ecnu-cto
    body = course_body(ECNU)
    with pytest.raises(InvalidEvent, match="cannot come from"):
        apply_event(model, event(body, school=SDU), SDU)
    assert model.collection("course").find_one({"_id": body["id"]}) is None


def test_an_id_held_for_another_school_is_never_taken_over(model):
    body = course_body(ECNU)
    apply(model, body)
    forged = course_body(SDU, body["id"], version=9, title={"en": "Taken over"})
    with pytest.raises(InvalidEvent, match="belongs to"):
        apply(model, forged, school=SDU)
    assert model.get("course", body["id"])["title"]["en"] == body["title"]["en"]


def test_a_course_event_from_another_service_is_refused(model):
    with pytest.raises(InvalidEvent, match="service"):
        apply(model, course_body(ECNU), service="visits")


def test_unknown_fields_are_tolerated_and_other_kinds_ignored(model):
    from services.visits.workflow import Requester
    from services.visits.worker import request_view

    # a field a later minor version of the producer adds
    body = {**course_body(ECNU), "accreditation": {"aacsb": True}}
    assert apply(model, body) == "applied"
    assert "accreditation" not in model.get("course", body["id"])
    request = request_view(Requester(model.db, ECNU).new_request(
        {"visit_id": str(uuid.uuid4()), "host_school": SDU, "slot_id": str(uuid.uuid4()),
         "faculty_id": str(uuid.uuid4()), "motivation": ""}, str(uuid.uuid4())))
    assert apply(model, request, "slot_request.created.v1", service="visits") == "ignored"


def test_the_local_digest_equals_the_source_digest_function(model):
    a, b = course_body(ECNU), course_body(ECNU)
    apply(model, a)
    apply(model, b)
    apply(model, course_body(ECNU, b["id"], version=2), "course.updated.v1", seq=3)
    assert model.digest(ECNU, "course") == digest_of([(a["id"], 1), (b["id"], 2)])
    assert model.digest(SDU, "course") == digest_of([])


def test_the_kept_digest_follows_applies_replays_withdrawals_pages_and_tombstones_without_reading_entries(model):
    from services.catalog.model import Change, entry

    model.prime_digests([ECNU, SDU])
    a, b, c = course_body(ECNU), course_body(ECNU), course_body(ECNU)
    apply(model, a)
    apply(model, b)
    apply(model, course_body(ECNU, b["id"], version=2), "course.updated.v1", seq=3)
    apply(model, course_body(ECNU, b["id"], version=2), "course.updated.v1", seq=3)  # a replay
    apply(model, a, seq=1)  # stale
    apply(model, withdrawn_course_body(ECNU, a["id"], version=2), "course.withdrawn.v1", seq=4)
    # a feed page: one new course, one held at an older version, one replayed at its held version
    page = [entry(Change("course", i, ECNU, v, seq, "course.updated.v1", course_body(ECNU, i, version=v)),
                  "2026-12-04T00:00:00Z") for i, v, seq in ((c["id"], 1, 5), (b["id"], 3, 6), (a["id"], 2, 4))]
    page[2] = entry(Change("course", a["id"], ECNU, 2, 4, "course.withdrawn.v1", {"id": a["id"]}),
                    "2026-12-04T00:00:00Z")
    assert model.apply_many("course", page) == (2, 0)
    expected = digest_of([(b["id"], 3), (c["id"], 1)])
    assert model.digests.get(ECNU, "course") == expected and model.digest(ECNU, "course") == expected
    assert model.tombstone("course", {"_id": c["id"], "school": ECNU, "version": 1, "seq": 5}, "2026-12-04T00:00:01Z")
    assert model.digests.get(ECNU, "course") == digest_of([(b["id"], 3)]) == model.recount(ECNU, "course")
    assert model.digests.get(SDU, "course") == digest_of([])


def test_a_worker_started_after_a_kill_counts_the_digests_again_and_one_after_a_clean_stop_does_not(model):
    model.prime_digests([ECNU, SDU])
    apply(model, course_body(ECNU))
    right = model.recount(ECNU, "course")

    def drift():
        # a worker killed between a write and its count: the entry is held, its count is not
        model.db["held_digests"].update_one({"_id": f"{ECNU}/course"}, {"$inc": {"count": -1, "l0": -7}})
        assert model.digests.get(ECNU, "course") != right

    drift()
    # the killed worker never marked its stop: the next one counts every digest again at its start
    model.prime_digests([ECNU, SDU])
    assert model.digests.get(ECNU, "course") == right
    assert model.stopped()
    model.search.lock.release()  # a stopping worker keeps it until its process ends
    # after a clean stop the kept digests are trusted (no read of every entry at each start)
    drift()
    model.prime_digests([ECNU, SDU])
    assert model.digests.get(ECNU, "course") != right


def test_a_page_is_written_without_reading_what_is_held_and_a_held_entry_in_its_middle_or_an_id_twice_counts_once(
        model, monkeypatch):
    from pymongo.collection import Collection

    from services.catalog.model import Change, entry

    model.prime_digests([ECNU, SDU])
    held = course_body(ECNU)
    apply(model, held)

    def page_entry(body, version, seq):
        return entry(Change("course", body["id"], ECNU, version, seq, "course.updated.v1", body),
                     "2026-12-04T00:00:00Z")

    first, twice = course_body(ECNU), course_body(ECNU)
    page = [page_entry(first, 1, 2), page_entry(course_body(ECNU, held["id"], version=2), 2, 3),
            page_entry(twice, 1, 4), page_entry(course_body(ECNU, twice["id"], version=2), 2, 5)]
    assert model.apply_many("course", page) == (3, 0)
    assert model.get("course", twice["id"])["version"] == 2 and model.get("course", held["id"])["version"] == 2
    expected = digest_of([(first["id"], 1), (held["id"], 2), (twice["id"], 2)])
    assert model.digests.get(ECNU, "course") == expected == model.recount(ECNU, "course")
    # a page of courses the catalog does not hold yet costs one insert and no read of the courses
    reads = []
    original = Collection.find
    monkeypatch.setattr(Collection, "find", lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    fresh = [page_entry(course_body(ECNU), 1, 6 + i) for i in range(3)]
    assert model.apply_many("course", fresh) == (3, 0)
    assert "courses" not in reads
    assert model.digests.get(ECNU, "course") == model.recount(ECNU, "course")
    assert model.apply_many("course", fresh) == (0, 0)


def test_search_finds_courses_by_text_in_both_languages_with_filters_and_facets(model, client):
    mem = course_body(ECNU, code="MEM-1", credits=3)
    exec_ = course_body(SDU, code="EXE-1", programme="EMBA", credits=2, languages=["zh"], delivery="hybrid",
                        title={"en": "Leading Digital Transformation", "zh": "数字化转型领导力"},
                        offerings=[{"term": "2027-autumn", "starts_on": "2027-09-01", "ends_on": "2027-12-20"}])
    apply(model, mem)
    apply(model, exec_, school=SDU)
    page = client.get("/courses?q=转型").get_json()
    assert [c["code"] for c in page["items"]] == ["EXE-1"] and page["items"][0]["own"] is True
    page = client.get("/courses?q=technology strategy").get_json()
    assert [c["code"] for c in page["items"]] == ["MEM-1"] and page["items"][0]["own"] is False
    page = client.get("/courses?programme=MEM").get_json()
    assert page["total"] == 1
    # a facet counts its values under the other filters, so alternatives stay visible
    assert {r["value"]: r["count"] for r in page["facets"]["programme"]} == {"MEM": 1, "EMBA": 1}
    assert {r["value"]: r["count"] for r in page["facets"]["school"]} == {ECNU: 1}
    assert {r["value"]: r["count"] for r in page["facets"]["language"]} == {"en": 1, "zh": 1}
    assert client.get("/courses?credits_min=2.5").get_json()["total"] == 1
    assert client.get("/courses?term=2027-autumn").get_json()["items"][0]["code"] == "EXE-1"
    assert client.get("/courses?eqf_level=7&isced_f=0413&language=zh&delivery=hybrid").get_json()["total"] == 1
    bad = client.get("/courses?credits_min=lots&$where=1")
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"


def test_search_pages_by_keyset_without_repeats(model, client):
    for i in range(7):
        apply(model, course_body(ECNU, code=f"P-{i}", credits=1 + i % 3))
    seen, url = [], "/courses?sort=-credits&limit=3&facets=false"
    for _ in range(5):
        page = client.get(url).get_json()
        seen += [c["code"] for c in page["items"]]
        if not page["next"]:
            break
        url = page["next"].replace("http://localhost", "")
    assert sorted(seen) == [f"P-{i}" for i in range(7)] and len(seen) == 7
    # a cursor this catalog never made, with a value no page has (JSON's Infinity): a 400, not a failure
    crafted = base64.urlsafe_b64encode(json.dumps([{"v": float("inf")}, "x"]).encode()).decode().rstrip("=")
    for sort in ("credits", "-credits", "updated"):
        response = client.get(f"/courses?sort={sort}&limit=3&facets=false&cursor={crafted}")
        assert response.status_code == 400 and response.get_json()["type"].endswith("invalid-cursor")


def test_search_pages_through_ties_list_every_course_once_in_order_for_every_sort(model, client):
    # twelve courses of two schools updated within one second, some in the same millisecond, with equal
    # codes (across the schools), titles and credits
    ids = []
    for i, updated_at in enumerate(TIES_IN_ONE_SECOND):
        school = (ECNU, SDU)[i % 2]
        body = course_body(school, code=f"T-{i // 2}", title={"en": f"Title {i % 3}"}, credits=[2, 3][i % 3 % 2])
        body["updated_at"] = updated_at
        assert apply(model, body, school=school) == "applied"
        ids.append(body["id"])
    sorts = {"code": lambda c: c["code"], "title": lambda c: c["title"]["en"].lower(), "credits": lambda c: c["credits"],
             "school": lambda c: c["school"], "updated": lambda c: c["updated_at"]}
    for limit in (1, 2, 5):
        # a descending sort reads the index's one sort key backwards: ties by id descending
        assert_pages_list_each_once_in_order(client, {}, "/courses", ids, sorts, query="facets=false", limit=limit,
                                             reverse_ties=True)


def test_entries_applied_before_the_update_key_existed_get_it_at_start_up(model, client):
    # an upgraded catalog: entries applied by a version that stored no key, one of them from a producer
    # writing its times with an offset
    ids = []
    for i, updated_at in enumerate(TIES_IN_ONE_SECOND[:5] + ["2027-01-04T09:30:14.999+01:00"]):
        body = course_body(ECNU, code=f"U-{i}")
        body["updated_at"] = updated_at
        apply(model, body)
        ids.append(body["id"])
    courses = model.collection("course")
    courses.update_many({}, {"$unset": {"updated_key": ""}})
    model.ensure_indexes()
    assert {d["updated_key"] for d in courses.find()} >= {20270104083015000, 20270104083014999}
    # the one with an offset is the oldest, though its text sorts last
    got = [c["id"] for c in client.get("/courses?sort=-updated&limit=100&facets=false").get_json()["items"]]
    assert got[-1] == ids[-1] and sorted(got) == sorted(ids)


def test_a_course_is_read_with_its_instructors_and_its_school_upcoming_visits(model, client):
    teacher = faculty_body(ECNU)
    body = course_body(ECNU, instructors=[teacher["id"]])
    apply(model, body)
    apply(model, teacher, "faculty.published.v1", service="faculty")
    apply(model, visit_body(SDU), "visit.published.v1", school=SDU, service="visits")
    apply(model, visit_body(ECNU, starts_on="2001-01-01", ends_on="2001-01-02", slots=[]), "visit.published.v1",
          service="visits")
    detail = client.get(f"/courses/{body['id']}").get_json()
    assert [p["name"]["zh"] for p in detail["instructor_profiles"]] == ["李伟"]
    # the sdu-sie visit invites ecnu-cto; the past ecnu-cto visit is not upcoming
    assert [v["school"] for v in detail["visits"]] == [SDU]
    assert [s["kind"] for s in detail["visits"][0]["open_slots"]] == ["guest_lecture"]
    assert detail["visits"][0]["open_slots"][0]["open_places"] == 1
    missing = client.get(f"/courses/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_reading_can_be_configured_to_need_a_student_token_of_the_school(make_settings, mongo_client, auth):
    app = create_app(make_settings(SDU, "catalog", catalog_read_token=True), client=mongo_client)
    client = app.test_client()
    assert client.get("/courses").status_code == 401
    assert client.get("/courses", headers=auth(ECNU, "student")).status_code == 403
    assert client.get("/courses", headers=auth(SDU, "student")).status_code == 200


class FeedFromApp:
    """A partner's change feed served by its Flask app's test client."""

    def __init__(self, client):
        self.client = client

    def __call__(self, url, params, headers):
        path = "/" + url.split("/", 3)[3]
        response = self.client.get(path, query_string=params, headers=headers)
        return response.status_code, response.get_json()


@pytest.fixture
def courses_source(make_settings, mongo_client):
    """ecnu-cto's courses service and its relay, run in-process."""
    from services.courses.app import create_app as create_courses
    from services.courses.store import ensure_indexes
    from services.courses.worker import SPEC
    from shared.worker import make_relay

    settings = make_settings(ECNU, "courses")
    app = create_courses(settings, client=mongo_client)
    relay = make_relay(settings, database(mongo_client, settings), SPEC)
    ensure_indexes(relay.entities.database)
    yield app.test_client(), relay
    relay._drop_producer()


def drain(relay):
    for _ in range(100):
        if relay.run_once() == 0:
            return
    raise AssertionError("the relay never ran out of work")


def test_catch_up_from_the_feed_then_a_full_resync_drops_what_the_source_no_longer_has(
        settings, db, model, courses_source, auth):
    source, relay = courses_source
    ids = [source.post("/courses", json=course(code=f"C-{i}"), headers=auth()).get_json()["id"] for i in range(5)]
    drain(relay)
    catchup = Catchup(settings, db, FeedClient(settings, http_get=FeedFromApp(source)), digest_interval=1)
    report = catchup.catch_up(ECNU, "courses", reason="test")
    assert report["applied"] == 5 and report["last_seq"] >= 5
    source.delete(f"/courses/{ids[0]}", headers={**auth(), "If-Match": '"1"'})
    source.put(f"/courses/{ids[1]}", json=course(code="C-1", hours=99), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    assert catchup.catch_up(ECNU, "courses", reason="test")["applied"] == 2
    assert model.get("course", ids[0]) is None and model.get("course", ids[1])["hours"] == 99
    # an entry the source never had (e.g. from before the source was restored) goes with a full re-sync
    stray = course_body(ECNU)
    apply(model, stray, seq=1)
    assert catchup.check_digest(ECNU, "courses") == "repaired"
    assert model.get("course", stray["id"]) is None
    partner = auth(SDU, "partner")
    remote = source.get("/digest", headers=partner).get_json()
    assert model.digest(ECNU, "course") == {k: remote[k] for k in ("count", "sha256")}
    assert catchup.check_digest(ECNU, "courses") == "equal"
    # a crash between a write and its count leaves the kept digest off: after the ordinary catch-up (nothing
    # missing) the check counts again from the entries, and no full re-sync runs
    db["held_digests"].update_one({"_id": f"{ECNU}/course"}, {"$inc": {"count": 1, "l0": 7}})
    before = catchup.state.get(ECNU, "courses")["last_catchup"]
    assert catchup.check_digest(ECNU, "courses") == "repaired"
    assert catchup.state.get(ECNU, "courses")["last_catchup"] == before
    assert model.digests.get(ECNU, "course") == {k: remote[k] for k in ("count", "sha256")}
    status = catchup.state.get(ECNU, "courses")
    assert status["synced_seq"] == remote["last_seq"] and status["last_digest_check"]["result"] == "repaired"
    assert catchup.check_digest(ECNU, "courses") == "equal"



def test_a_feed_page_the_fast_parser_refuses_is_read_whole_by_the_standard_one(settings):
    # a lone surrogate in one entry (orjson refuses the page, Python's parser takes it): the page is read, and
    # only that entry is refused when it is validated
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = b'{"changes": [{"id": "a", "state": {"title": {"en": "\\ud800"}}}, {"id": "b"}], "last_seq": 2}'

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, body = FeedClient(settings)._requests_get(f"http://127.0.0.1:{server.server_address[1]}/changes",
                                                          {}, {})
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and [c["id"] for c in body["changes"]] == ["a", "b"]
    assert body["changes"][0]["state"]["title"]["en"] == "\ud800"


def test_sync_status_and_metrics_show_each_source(model, client, db):
    from services.catalog.store import SyncState

    apply(model, course_body(ECNU), seq=4)
    SyncState(db).update(ECNU, "courses", source_last_seq=6)
    SyncState(db).dead_lettered(ECNU, "courses")
    sources = {(s["school"], s["entity"]): s for s in client.get("/sync").get_json()["sources"]}
    assert set(sources) == {(s, e) for s in (ECNU, SDU) for e in ("courses", "faculty", "visits")}
    ecnu = sources[(ECNU, "courses")]
    assert (ecnu["applied_seq"], ecnu["lag"], ecnu["dead_lettered"], ecnu["own"]) == (4, 2, 1, False)
    assert sources[(SDU, "courses")]["own"] is True
    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('catalog_sync_lag{entity="courses",school="sdu-sie",service="catalog",source_school="ecnu-cto"} 2.0'
            in metrics or 'catalog_sync_lag{school="sdu-sie",service="catalog",source_school="ecnu-cto",'
            'entity="courses"} 2.0' in metrics), metrics


def test_sync_status_reads_the_sequence_and_count_kept_with_the_digest_since_courses_index_only_their_generation(
        model, client, db):
    from pymongo import ASCENDING

    from services.catalog.model import Change, entry

    courses = model.collection("course")
    # a catalog of an older version: the compound indexes and a kept digest without the sequence
    courses.create_index([("school", ASCENDING), ("seq", ASCENDING)])
    courses.create_index([("school", ASCENDING), ("visible", ASCENDING)])
    a, b = course_body(ECNU), course_body(ECNU)
    apply(model, a, seq=3)
    model.digests.collection.replace_one({"_id": "ecnu-cto/course"}, {"_id": "ecnu-cto/course", "count": 0,
                                          **{f"l{i}": 0 for i in range(8)}}, upsert=True)
    model.ensure_indexes()
    def keys(coll):
        return {tuple(field for field, _ in info["key"]) for info in coll.index_information().values()}

    assert keys(courses) == {("_id",), ("gen",)}
    assert keys(model.collection("visit")) >= {("school", "seq"), ("school", "visible")}
    model.prime_digests([ECNU, SDU])
    assert model.digests.kept(ECNU, "course")["seq"] == 3
    page = [entry(Change("course", b["id"], ECNU, 1, 7, "course.published.v1", b), "2026-12-04T00:00:00Z")]
    assert model.apply_many("course", page) == (1, 0)
    # a withdrawal with the highest sequence: no longer counted, its sequence applied
    apply(model, withdrawn_course_body(ECNU, a["id"], version=2), "course.withdrawn.v1", seq=9)
    sources = {(s["school"], s["entity"]): s for s in client.get("/sync").get_json()["sources"]}
    assert (sources[(ECNU, "courses")]["applied_seq"], sources[(ECNU, "courses")]["held"]) == (9, 1)
    assert (sources[(SDU, "courses")]["applied_seq"], sources[(SDU, "courses")]["held"]) == (0, 0)
    assert model.digests.get(ECNU, "course") == model.recount(ECNU, "course") == digest_of([(b["id"], 1)])
    assert model.digests.kept(ECNU, "course")["seq"] == 9


def test_the_page_renders_cards_and_a_course_in_both_languages_and_remembers_the_choice(model, client):
    body = course_body(ECNU)
    apply(model, body)
    page = client.get("/?q=strategy&lang=zh")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "技术战略与创新管理" in html and "合作院校" in html
    assert 'lang="zh-Hans"' in html
    # the choice is kept in a cookie: the next page, without ?lang=, is in Chinese too
    remembered = client.get(f"/course/{body['id']}").get_data(as_text=True)
    assert "授课教师" in remembered and 'lang="zh-Hans"' in remembered
    english = client.get(f"/course/{body['id']}?lang=en").get_data(as_text=True)
    assert "Technology Strategy and Innovation Management" in english and "Instructors" in english
    assert client.get("/?credits_min=lots").status_code == 200
    assert client.get(f"/course/{uuid.uuid4()}").status_code == 404


def visit_pages(client, url: str) -> list[list[dict]]:
    pages = []
    for _ in range(50):
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        pages.append(page["items"])
        if not page["next"]:
            return pages
        url = page["next"].replace("http://localhost", "")
    raise AssertionError("the pages never ended")


def test_visits_are_listed_earliest_first_in_keyset_pages_through_visits_that_start_the_same_day(model, client):
    # sdu-sie's catalog: its own visits, ecnu-cto's that invite it (or every partner), never the others
    same_day = [visit_body(ECNU, invited=[SDU]) for _ in range(7)]
    for body in same_day:
        apply(model, body, "visit.published.v1", service="visits")
    later = visit_body(SDU, starts_on="2099-05-03", ends_on="2099-05-04", slots=[], invited=["all"])
    everyone = visit_body(ECNU, starts_on="2099-04-20", ends_on="2099-04-21", slots=[], invited=["all"])
    hidden = visit_body(ECNU, invited=["later-member"])
    past = visit_body(ECNU, starts_on="2001-01-01", ends_on="2001-01-02", slots=[], invited=[SDU])
    for body, school in ((later, SDU), (everyone, ECNU), (hidden, ECNU), (past, ECNU)):
        apply(model, body, "visit.published.v1", school=school, service="visits")
    pages = visit_pages(client, "/visits?limit=3")
    assert [len(p) for p in pages] == [3, 3, 3]
    seen = [v["id"] for p in pages for v in p]
    assert seen == sorted(b["id"] for b in same_day) + [everyone["id"], later["id"]]
    first = pages[0][0]
    assert first["own"] is False and first["school"] == ECNU and first["place"] == "Jinan, Software Park campus"
    assert [(s["kind"], s["capacity"], s["places_left"]) for s in first["slots"]] == [
        ("guest_lecture", 2, 1), ("workshop", 1, 0)]
    assert pages[-1][-1]["own"] is True
    # filters: host school, start dates, slot kind; each still pages
    assert [v["id"] for p in visit_pages(client, f"/visits?school={SDU}") for v in p] == [later["id"]]
    dated = visit_pages(client, "/visits?starts_from=2099-04-14&starts_until=2099-04-30&limit=1")
    assert [v["id"] for p in dated for v in p] == [everyone["id"]]
    workshops = [v["id"] for p in visit_pages(client, "/visits?kind=workshop&limit=2") for v in p]
    assert workshops == sorted(b["id"] for b in same_day)
    for bad in ("/visits?kind=$ne", "/visits?starts_from=tomorrow", "/visits?limit=1000", "/visits?sort=x",
                "/visits?cursor=nonsense"):
        response = client.get(bad)
        assert response.status_code in (400, 422) and response.mimetype == "application/problem+json", bad


def test_a_visit_is_read_with_its_places_left_and_only_by_the_schools_it_involves(model, client):
    body = visit_body(ECNU, invited=[SDU], taken={})
    apply(model, body, "visit.published.v1", service="visits")
    shown = client.get(f"/visits/{body['id']}").get_json()
    assert [s["places_left"] for s in shown["slots"]] == [2, 1] and shown["version"] == 1
    # two seats taken since: the host published the visit again with a newer version
    apply(model, visit_body(ECNU, body["id"], version=3, invited=[SDU], taken={GUEST_LECTURE: 1, WORKSHOP: 1}),
          "visit.updated.v1", service="visits", seq=3)
    shown = client.get(f"/visits/{body['id']}").get_json()
    assert [s["places_left"] for s in shown["slots"]] == [1, 0] and shown["version"] == 3
    hidden = visit_body(ECNU, invited=["later-member"])
    apply(model, hidden, "visit.published.v1", service="visits", seq=4)
    for missing in (hidden["id"], str(uuid.uuid4())):
        response = client.get(f"/visits/{missing}")
        assert response.status_code == 404 and response.get_json()["type"].endswith("visit-not-found")
    page = client.get(f"/course/{course_with_visits(model)}").get_data(as_text=True)
    assert "1 place left" in page and "Full" in page and "2 places left" not in page
    chinese = client.get(f"/course/{course_with_visits(model)}?lang=zh").get_data(as_text=True)
    assert "剩余 1 个名额" in chinese and "已满" in chinese


def test_a_visit_keeps_its_approval_mode_and_time_zone_and_an_older_host_body_reads_as_automatic(model, client):
    review = visit_body(ECNU, invited=[SDU], approval="review", time_zone="Asia/Shanghai")
    assert review["approval"] == "review"  # the host's own view carries it
    apply(model, review, "visit.published.v1", service="visits")
    shown = client.get(f"/visits/{review['id']}").get_json()
    assert (shown["approval"], shown["time_zone"]) == ("review", "Asia/Shanghai")
    # a host that does not send the field yet (a minor schema change): its visits are first come first served
    older = {k: v for k, v in visit_body(ECNU, invited=[SDU]).items() if k not in ("approval", "time_zone")}
    apply(model, older, "visit.published.v1", service="visits", seq=2)
    shown = client.get(f"/visits/{older['id']}").get_json()
    assert shown["approval"] == "automatic" and shown.get("time_zone") is None
    listed = {v["id"]: v["approval"] for v in client.get("/visits?limit=10").get_json()["items"]}
    assert listed == {review["id"]: "review", older["id"]: "automatic"}


def course_with_visits(model) -> str:
    """An ecnu-cto course, whose page shows ecnu-cto's upcoming visits."""
    body = course_body(ECNU)
    apply(model, body, seq=99)
    return body["id"]


def test_a_visit_on_a_course_page_links_its_calendar_file_in_the_host_time_zone(model, client):
    body = visit_body(ECNU, invited=[SDU], taken={GUEST_LECTURE: 1})
    apply(model, body, "visit.published.v1", service="visits")
    page = client.get(f"/course/{course_with_visits(model)}").get_data(as_text=True)
    assert f'href="/visits/{body["id"]}.ics"' in page
    response = client.get(f"/visits/{body['id']}.ics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.data)
    starts = sorted(e.decoded("DTSTART") for e in cal.walk("VEVENT"))
    assert starts == sorted(datetime.fromisoformat(s["starts_at"]) for s in body["slots"])
    assert client.get(f"/visits/{uuid.uuid4()}.ics").status_code == 404
