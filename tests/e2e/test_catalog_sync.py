"""Two schools' courses and catalog services as real processes: events, catch-up, resets, forgeries, and the
places left in a partner's visit.

One stack for the module (gunicorn web + worker of courses, catalog and visits at both
schools, faculty at ecnu-cto, on free loopback ports); each test uses its own course codes, so they
do not see each other's courses. Every wait is bounded.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests
from kafka import KafkaProducer

from shared.auth import KeyRing, issue_token
from shared.events import Event, sign, source_of, to_record
from tests.catalogutil import VISIT, course_body
from tests.kafkautil import read_until
from tests.processes import free_port_base, service_processes, write_alliance
from tests.samples import course
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ECNU, SDU = "ecnu-cto", "sdu-sie"
WAIT = 45


class Stack:
    def __init__(self, services: dict, keys_dir, prefix: str, bootstrap: str):
        self.services = services  # (school, service) -> ServiceProcesses
        self.keys_dir = keys_dir
        self.prefix = prefix
        self.bootstrap = bootstrap

    def url(self, school: str, service: str) -> str:
        return self.services[(school, service)].url

    def auth(self, school: str, role: str, faculty_id: str | None = None) -> dict:
        token = issue_token(KeyRing(self.keys_dir, school).private_key(), school, role, faculty_id=faculty_id)
        return {"Authorization": f"Bearer {token}"}

    def create(self, school: str, **fields) -> dict:
        response = requests.post(f"{self.url(school, 'courses')}/courses", json=course(**fields),
                                 headers=self.auth(school, "coordinator"), timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def post(self, school: str, service: str, path: str, body: dict) -> dict:
        response = requests.post(f"{self.url(school, service)}{path}", json=body,
                                 headers=self.auth(school, "coordinator"), timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def put(self, school: str, doc: dict, **fields) -> dict:
        response = requests.put(f"{self.url(school, 'courses')}/courses/{doc['id']}", json=course(**fields),
                                headers={**self.auth(school, "coordinator"), "If-Match": f'"{doc["version"]}"'},
                                timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def withdraw(self, school: str, doc: dict) -> dict:
        response = requests.delete(f"{self.url(school, 'courses')}/courses/{doc['id']}",
                                   headers={**self.auth(school, "coordinator"), "If-Match": f'"{doc["version"]}"'},
                                   timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def search(self, school: str, **params) -> dict:
        response = requests.get(f"{self.url(school, 'catalog')}/courses", params={"limit": 100, **params},
                                timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def codes(self, school: str, tag: str) -> dict[str, int]:
        """Code -> version of the courses tagged `tag` in `school`'s catalog."""
        return {c["code"]: c["version"] for c in self.search(school, q=tag, facets="false")["items"]}

    def source_digest(self, school: str) -> dict:
        return requests.get(f"{self.url(school, 'courses')}/digest", headers=self.auth(SDU, "partner"),
                            timeout=10).json()

    def sync_entry(self, catalog_school: str, source_school: str, entity: str = "courses") -> dict:
        sources = requests.get(f"{self.url(catalog_school, 'catalog')}/sync", timeout=10).json()["sources"]
        return next(s for s in sources if s["school"] == source_school and s["entity"] == entity)

    def produce(self, school: str, event: Event, signer: str | None = None) -> None:
        """Put an event on `school`'s courses topic, signed with `signer`'s key (a forger's, say)."""
        key, value, headers = to_record(sign(event, KeyRing(self.keys_dir, signer or school).private_key()))
        producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        try:
            producer.send(f"{self.prefix}{school}.courses.v1", key=key, value=value, headers=headers).get(10)
        finally:
            producer.close()


@pytest.fixture(scope="module")
def stack(mongo_uri, broker, run_dir, keys_dir):
    prefix = f"e{uuid.uuid4().hex[:8]}_"
    bases = {ECNU: free_port_base(), SDU: None}
    bases[SDU] = next(b for b in iter(free_port_base, None) if abs(b - bases[ECNU]) > 4)
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", bases)
    services = {}
    try:
        # faculty runs at ecnu-cto only: sdu-sie's catalog reads it as a partner's; visits run at both,
        # ecnu-cto hosting and sdu-sie's faculty requesting slots
        plan = [(ECNU, "faculty", 2)]
        plan += [(school, service, offset) for school in bases
                 for service, offset in (("courses", 1), ("catalog", 0), ("visits", 3))]
        for school, service, offset in plan:
            svc = service_processes(school, service, bases[school] + offset, mongo_uri, broker.bootstrap, run_dir,
                                    alliance, keys_dir, prefix)
            svc.env.update({"CATALOG_DIGEST_SECONDS": "2", "LOG_LEVEL": "INFO"})
            services[(school, service)] = svc
            svc.start_worker()
            svc.start_web(workers=1)
        yield Stack(services, keys_dir, prefix, broker.bootstrap)
    finally:
        for svc in services.values():
            svc.stop()


def test_a_course_created_at_one_school_is_found_updated_and_withdrawn_at_the_partner(stack):
    created = stack.create(ECNU, code="LIFE-1", title={"en": "Lifecycle Course", "zh": "生命周期课程"})
    wait_until(lambda: stack.codes(SDU, "life-") == {"LIFE-1": 1}, WAIT, "the course at the partner")
    hit = stack.search(SDU, q="生命周期")["items"]
    assert [c["id"] for c in hit] == [created["id"]] and hit[0]["own"] is False and hit[0]["school"] == ECNU
    # its own school's catalog shows it too, as its own
    wait_until(lambda: [c["own"] for c in stack.search(ECNU, q="life-")["items"]] == [True], WAIT, "own catalog")

    updated = stack.put(ECNU, created, code="LIFE-1", title={"en": "Lifecycle Course, revised"}, credits=4)
    wait_until(lambda: stack.codes(SDU, "life-") == {"LIFE-1": 2}, WAIT, "the update at the partner")
    detail = requests.get(f"{stack.url(SDU, 'catalog')}/courses/{created['id']}", timeout=10).json()
    assert detail["title"] == {"en": "Lifecycle Course, revised"} and detail["credits"] == 4

    stack.withdraw(ECNU, updated)
    wait_until(lambda: stack.codes(SDU, "life-") == {}, WAIT, "the withdrawal at the partner")
    assert requests.get(f"{stack.url(SDU, 'catalog')}/courses/{created['id']}", timeout=10).status_code == 404


def delete_index(stack, catalog) -> None:
    """Delete sdu-sie's search index folder as docs/operations.md says: moved away in one step, then deleted (the
    worker may start its rebuild at any moment, and a delete racing it could remove the new files: a delete
    stopped half-way, tests/integration/test_catalog_search.py)."""
    folder = Path(catalog.env["SEARCH_INDEX_DIR"]) / f"{stack.prefix}sdu_sie_catalog"
    aside = folder.with_name(f"{folder.name}.deleted")
    folder.rename(aside)
    shutil.rmtree(aside)


def test_the_search_index_is_rebuilt_after_it_is_deleted_with_the_events_missed_while_the_worker_was_stopped(
        stack):
    catalog = stack.services[(SDU, "catalog")]
    first = stack.create(ECNU, code="IDX-1", title={"en": "Rebuilt index seminar"})
    wait_until(lambda: stack.codes(SDU, "idx-") == {"IDX-1": 1}, WAIT, "the course searchable at the partner")
    catalog.worker.stop(timeout=20)
    # while the worker is stopped: its index is deleted, a course changes and another is published
    delete_index(stack, catalog)
    stack.put(ECNU, first, code="IDX-1", title={"en": "Rebuilt index seminar, revised"})
    # (no word of it may match another test's query: the stack is shared, and "stopped" stems to "stop")
    stack.create(ECNU, code="IDX-2", title={"en": "Missed while away"})
    # no index: the web processes say so (a 503 problem) rather than answer an empty page
    response = requests.get(f"{stack.url(SDU, 'catalog')}/courses", params={"q": "idx"}, timeout=10)
    assert response.status_code == 503 and response.headers["Content-Type"] == "application/problem+json"
    catalog.start_worker()

    def searchable() -> dict:
        response = requests.get(f"{stack.url(SDU, 'catalog')}/courses", params={"q": "idx-", "facets": "false"},
                                timeout=10)
        return {c["code"]: c["version"] for c in response.json()["items"]} if response.status_code == 200 else {}

    wait_until(lambda: searchable() == {"IDX-1": 2, "IDX-2": 1}, WAIT, "the rebuilt index with the missed events")
    hit = stack.search(SDU, q="missed away")["items"]
    assert [c["code"] for c in hit] == ["IDX-2"] and "<mark>" in hit[0]["highlight"]["title"]["en"]
    # the vocabulary was built anew too: a typo finds a word that only the missed course has
    assert [c["code"] for c in stack.search(SDU, q="misssed")["items"]] == ["IDX-2"]


def test_the_search_index_deleted_under_the_running_worker_is_rebuilt_without_a_restart(stack):
    catalog = stack.services[(SDU, "catalog")]
    stack.create(ECNU, code="HEAL-1", title={"en": "Regrown catalogue"})
    wait_until(lambda: stack.codes(SDU, "heal-") == {"HEAL-1": 1}, WAIT, "the course searchable at the partner")
    worker = catalog.worker.pid
    delete_index(stack, catalog)

    def searchable() -> dict:
        # a 503 problem while the index is gone, an empty dict then
        response = requests.get(f"{stack.url(SDU, 'catalog')}/courses", params={"q": "heal-", "facets": "false"},
                                timeout=10)
        return {c["code"]: c["version"] for c in response.json()["items"]} if response.status_code == 200 else {}

    # the worker notices within a second or so and rebuilds from its read model; then a new course follows
    wait_until(lambda: searchable() == {"HEAL-1": 1}, WAIT, "the rebuilt index")
    stack.create(ECNU, code="HEAL-2", title={"en": "Regrown catalogue, second"})
    wait_until(lambda: searchable() == {"HEAL-1": 1, "HEAL-2": 1}, WAIT, "a new course in it")
    assert catalog.worker.pid == worker and catalog.worker.alive()


def test_a_partner_course_is_shown_with_its_instructors_and_its_school_visits(stack):
    from devstack.seed import FACULTY, Seeder

    profile = {k: v for k, v in FACULTY[ECNU][0].items() if k != "key"}
    teacher = stack.post(ECNU, "faculty", "/faculty", {**profile, "email": "zhang@example.edu",
                                                       "visibility": "alliance"})
    created = stack.create(ECNU, code="TEAM-1", instructors=[teacher["id"]])
    visit = stack.post(ECNU, "visits", "/visits", Seeder((), stack.keys_dir, ()).visit(ECNU, [teacher["id"]]))
    url = f"{stack.url(SDU, 'catalog')}/courses/{created['id']}"

    def composed():
        response = requests.get(url, timeout=10)
        detail = response.json() if response.status_code == 200 else {}
        return (detail.get("instructor_profiles") and detail.get("visits")) and detail

    wait_until(composed, WAIT, "the course with its instructor and visit at the partner")
    detail = composed()
    assert [p["name"]["zh"] for p in detail["instructor_profiles"]] == [profile["name"]["zh"]]
    assert detail["instructor_profiles"][0]["title"] == {"en": profile["title"]}
    assert [v["id"] for v in detail["visits"]] == [visit["id"]]
    assert len(detail["visits"][0]["open_slots"]) == len(visit["slots"])
    page = requests.get(f"{stack.url(SDU, 'catalog')}/course/{created['id']}?lang=zh", timeout=10).text
    assert profile["name"]["zh"] in page and visit["theme"]["zh"] in page


def test_a_school_only_course_never_appears_at_the_partner(stack):
    hidden = stack.create(ECNU, code="HIDE-1", visibility="school")
    stack.create(ECNU, code="HIDE-2", status="draft")
    # a shared course written after them: once it is there, the hidden ones had their chance
    stack.create(ECNU, code="HIDE-3")
    wait_until(lambda: "HIDE-3" in stack.codes(SDU, "hide-"), WAIT, "the shared marker course")
    time.sleep(1)
    assert stack.codes(SDU, "hide-") == {"HIDE-3": 1}
    assert requests.get(f"{stack.url(SDU, 'catalog')}/courses/{hidden['id']}", timeout=10).status_code == 404


def _dlq_reasons(stack, school: str, timeout: float, done) -> list[str]:
    records = read_until(stack.bootstrap, f"{stack.prefix}{school}.dlq",
                         lambda rs: done([dict(r.headers()).get("dlq_reason", b"").decode() for r in rs]), timeout)
    return [dict(r.headers()).get("dlq_reason", b"").decode() for r in records]


def test_a_poison_event_is_dead_lettered_and_the_next_good_event_is_applied(stack):
    good = stack.create(ECNU, code="POI-1")
    wait_until(lambda: "POI-1" in stack.codes(SDU, "poi-"), WAIT, "the course")
    dead_before = stack.sync_entry(SDU, ECNU)["dead_lettered"]
    # correctly signed by ecnu-cto, same key (so same partition) as the course, but the body is poison
    poison = Event(type="course.updated.v1", source=source_of(ECNU, "courses"), subject=good["id"], sequence=10**9,
                   entityversion=50, data={"id": good["id"], "school": ECNU, "credits": "many"})
    stack.produce(ECNU, poison)
    stack.put(ECNU, good, code="POI-1", hours=3)
    wait_until(lambda: stack.codes(SDU, "poi-") == {"POI-1": 2}, WAIT, "the good event after the poison")
    reasons = _dlq_reasons(stack, SDU, WAIT, lambda rs: any("does not validate" in r for r in rs))
    assert any("the course body does not validate" in r for r in reasons), reasons
    wait_until(lambda: stack.sync_entry(SDU, ECNU)["dead_lettered"] > dead_before, WAIT, "the DLQ count")


def test_forged_events_are_refused(stack):
    target = stack.create(ECNU, code="FRG-1", title={"en": "The genuine title"})
    wait_until(lambda: "FRG-1" in stack.codes(SDU, "frg-"), WAIT, "the genuine course")
    # what ecnu-cto's own courses service would publish, but made by a forger
    forged_body = course_body(ECNU, target["id"], version=99, code="FRG-1", title={"en": "Forged"})
    about = dict(subject=target["id"], sequence=10**9, entityversion=99, data=forged_body, type="course.updated.v1")
    # sdu-sie publishing, on its own topic and with its own key, about ecnu-cto's course
    stack.produce(SDU, Event(source=source_of(SDU, "courses"), **about))
    # sdu-sie's event on ecnu-cto's topic
    stack.produce(ECNU, Event(source=source_of(SDU, "courses"), **about), signer=SDU)
    # claiming to be ecnu-cto, signed with another key
    stack.produce(ECNU, Event(source=source_of(ECNU, "courses"), **about), signer=SDU)
    # each refusal, as the catalog's apply or the shared consumer's checks word it
    expected = (("cannot come from", "belongs to school"), ("differs from the topic's school",),
                ("signature does not verify",))
    refused = lambda rs: all(any(p in r for r in rs for p in phrases) for phrases in expected)  # noqa: E731
    reasons = _dlq_reasons(stack, SDU, WAIT, refused)
    assert refused(reasons), reasons
    detail = requests.get(f"{stack.url(SDU, 'catalog')}/courses/{target['id']}", timeout=10).json()
    assert detail["title"] == {"en": "The genuine title"} and detail["version"] == 1
    # ecnu-cto's own catalog refused them too
    assert refused(_dlq_reasons(stack, ECNU, WAIT, refused))
    own = requests.get(f"{stack.url(ECNU, 'catalog')}/courses/{target['id']}", timeout=10).json()
    assert own["version"] == 1


def test_a_stopped_catalog_worker_catches_up_when_restarted(stack):
    first = stack.create(ECNU, code="STOP-0")
    wait_until(lambda: "STOP-0" in stack.codes(SDU, "stop-"), WAIT, "the first course")
    catalog = stack.services[(SDU, "catalog")]
    catalog.worker.stop(timeout=15)
    try:
        for i in range(1, 6):
            stack.create(ECNU, code=f"STOP-{i}")
        stack.withdraw(ECNU, stack.put(ECNU, first, code="STOP-0", hours=5))
        target = stack.source_digest(ECNU)
        time.sleep(1)
        assert "STOP-5" not in stack.codes(SDU, "stop-")
    finally:
        catalog.start_worker()
    expected = {f"STOP-{i}": 1 for i in range(1, 6)}
    wait_until(lambda: stack.codes(SDU, "stop-") == expected, WAIT, "catch-up after the restart")
    wait_until(lambda: stack.sync_entry(SDU, ECNU)["applied_seq"] >= target["last_seq"], WAIT, "applied sequence")


def test_after_a_broker_reset_the_catalog_converges_to_the_source_with_equal_digests(stack, broker):
    before = [stack.create(ECNU, code=f"RST-{i}") for i in range(3)]
    wait_until(lambda: len(stack.codes(SDU, "rst-")) == 3, WAIT, "the courses before the reset")
    broker.restart()
    stack.create(ECNU, code="RST-3")
    stack.put(ECNU, before[0], code="RST-0", hours=7)
    stack.withdraw(ECNU, before[1])
    expected = {"RST-0": 2, "RST-2": 1, "RST-3": 1}
    wait_until(lambda: stack.codes(SDU, "rst-") == expected, 90, "convergence after the reset")

    def digests_equal():
        source = stack.source_digest(ECNU)
        check = stack.sync_entry(SDU, ECNU)["last_digest_check"] or {}
        local = check.get("local") or {}
        return (check.get("result") in ("equal", "repaired") and local.get("sha256") == source["sha256"]
                and local.get("count") == source["count"])

    wait_until(digests_equal, 60, "equal digests after the reset")
    # and the partner's events flow again through the new broker
    stack.create(ECNU, code="RST-4")
    wait_until(lambda: "RST-4" in stack.codes(SDU, "rst-"), WAIT, "a new course after the reset")


def test_a_partner_catalog_shows_the_places_left_going_down_after_an_approval_and_up_after_a_withdrawal(stack):
    # in 2099, so that it stays upcoming; a guest lecture for two and a workshop for one
    slots = [{k: v for k, v in slot.items() if k != "id"} for slot in VISIT["slots"]]
    hosted = stack.post(ECNU, "visits", "/visits", {**VISIT, "invited": [SDU], "slots": slots})
    lecture = hosted["slots"][0]
    assert (lecture["capacity"], lecture["places_left"]) == (2, 2)
    url = f"{stack.url(SDU, 'catalog')}/visits/{hosted['id']}"

    def places_left():
        response = requests.get(url, timeout=10)
        return [s["places_left"] for s in response.json()["slots"]] if response.status_code == 200 else None

    wait_until(lambda: places_left() == [2, 1], WAIT, "the visit in the partner's catalog")
    # a faculty member of sdu-sie asks their own school's visits service; ecnu-cto's worker decides
    faculty_id = str(uuid.uuid4())
    mine = stack.auth(SDU, "faculty", faculty_id)
    asked = requests.post(f"{stack.url(SDU, 'visits')}/slot-requests", headers=mine, timeout=10, json={
        "visit_id": hosted["id"], "host_school": ECNU, "slot_id": lecture["id"], "faculty_id": faculty_id,
        "motivation": "A guest lecture on venture finance."})
    assert asked.status_code == 201, asked.text
    request_url = f"{stack.url(SDU, 'visits')}/slot-requests/{asked.json()['id']}"

    def request_status(*statuses):
        request = requests.get(request_url, headers=mine, timeout=10).json()
        return request if request["status"] in statuses else None

    approved = wait_until(lambda: request_status("approved"), WAIT, "the approval at the requester")
    wait_until(lambda: places_left() == [1, 1], WAIT, "one place fewer in the partner's catalog")
    host_view = requests.get(f"{stack.url(ECNU, 'visits')}/visits/{hosted['id']}",
                             headers=stack.auth(ECNU, "coordinator"), timeout=10).json()
    assert [s["places_left"] for s in host_view["slots"]] == [1, 1] and host_view["version"] > hosted["version"]
    # the partner's list of upcoming visits shows the same
    page = requests.get(f"{stack.url(SDU, 'catalog')}/visits?school={ECNU}&limit=100", timeout=10).json()
    listed = next(v for v in page["items"] if v["id"] == hosted["id"])
    assert [s["places_left"] for s in listed["slots"]] == [1, 1] and listed["own"] is False
    gone = requests.delete(request_url, headers={**mine, "If-Match": f'"{approved["version"]}"'}, timeout=10)
    assert gone.status_code == 200, gone.text
    wait_until(lambda: places_left() == [2, 1], WAIT, "the freed place back in the partner's catalog")
