"""Course-place requests between two schools' courses services as real processes (gunicorn web, worker).

One stack for the module: ecnu-cto's and sdu-sie's courses web and worker processes, and sdu-sie's
catalog (web and worker: the courses service checks a request against it), on the session's servers.
Students of sdu-sie ask over HTTP, its coordinator endorses, ecnu-cto's worker decides.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from shared.auth import KeyRing, issue_token
from tests.processes import free_port_base, service_processes, write_alliance
from tests.samples import course
from tests.waiting import wait_until

HOST, HOME = "ecnu-cto", "sdu-sie"


@pytest.fixture(scope="module")
def stack(mongo_uri, kafka_bootstrap, run_dir, keys_dir):
    prefix = f"pl{uuid.uuid4().hex[:8]}_"
    bases = {HOST: free_port_base(), HOME: free_port_base()}
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", bases)
    services = {school: service_processes(school, "courses", base + 1, mongo_uri, kafka_bootstrap, run_dir,
                                          alliance, keys_dir, prefix) for school, base in bases.items()}
    services["catalog"] = service_processes(HOME, "catalog", bases[HOME], mongo_uri, kafka_bootstrap, run_dir,
                                            alliance, keys_dir, prefix)
    try:
        for svc in services.values():
            svc.env["PLACE_REQUEST_RESEND_SECONDS"] = "3"
            svc.start_web()
            svc.start_worker()
        for svc in services.values():
            wait_until(lambda: requests.get(f"{svc.url}/readyz", timeout=5).status_code == 200, 30, "web ready")
        yield services
    finally:
        for svc in services.values():
            svc.stop()


def headers(keys_dir, school: str, role: str = "coordinator", number: int | None = None, **extra) -> dict:
    profile = {"name": f"Student {number}", "email": f"s{number}@sdu.example", "student_number": f"2024{number:05d}",
               "programme": "MEM"} if role == "student" else None
    token = issue_token(KeyRing(keys_dir, school).private_key(), school, role,
                        subject=f"student{number}@{school}" if role == "student" else None, profile=profile)
    return {"Authorization": f"Bearer {token}", **extra}


def publish(stack, keys_dir, places: int, *more_offerings) -> dict:
    doc = course(code=f"P-{uuid.uuid4().hex[:6]}", offerings=[
        {"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": places},
        *more_offerings])
    created = requests.post(f"{stack[HOST].url}/courses", json=doc, headers=headers(keys_dir, HOST), timeout=10)
    assert created.status_code == 201, created.text
    # the students' school's catalog knows it (the courses service checks requests against it)
    wait_until(lambda: requests.get(f"{stack['catalog'].url}/courses/{created.json()['id']}",
                                    timeout=5).status_code == 200, 60, "the course in the students' catalog")
    return created.json()


def ask_and_endorse(stack, keys_dir, published: dict, number: int) -> dict:
    home = stack[HOME].url
    made = requests.post(f"{home}/place-requests", timeout=10, json={
        "host_school": HOST, "course_id": published["id"], "term": "2027-spring",
        "statement": "My thesis is on technology roadmaps."},
        headers=headers(keys_dir, HOME, "student", number, **{"Idempotency-Key": str(uuid.uuid4())}))
    assert made.status_code == 201, made.text
    endorsed = requests.put(f"{home}/place-requests/{made.json()['id']}/endorsement", json={"status": "endorsed"},
                            headers=headers(keys_dir, HOME, **{"If-Match": made.headers["ETag"]}), timeout=10)
    assert endorsed.status_code == 200, endorsed.text
    return endorsed.json()


def requests_at_home(stack, keys_dir, course_id: str) -> list[dict]:
    page = requests.get(f"{stack[HOME].url}/place-requests?course_id={course_id}&limit=100",
                        headers=headers(keys_dir, HOME), timeout=10)
    return page.json()["items"]


def test_a_request_endorsed_at_home_is_approved_by_the_hosts_worker(stack, keys_dir):
    published = publish(stack, keys_dir, places=3)
    made = ask_and_endorse(stack, keys_dir, published, 1)
    seen = wait_until(lambda: (lambda r: r if r["status"] == "approved" else None)(requests.get(
        f"{stack[HOME].url}/place-requests/{made['id']}", headers=headers(keys_dir, HOME), timeout=10).json()),
        60, "approved at home")
    assert seen["places_left"] == 2 and seen["course"]["code"] == published["code"]
    course_now = requests.get(f"{stack[HOST].url}/courses/{published['id']}", headers=headers(keys_dir, HOST),
                              timeout=10).json()
    assert course_now["offerings"][0]["places_left"] == 2


def test_fifty_students_asking_at_once_for_two_places_get_exactly_two(stack, keys_dir):
    published = publish(stack, keys_dir, places=2)
    with ThreadPoolExecutor(max_workers=12) as pool:
        made = list(pool.map(lambda n: ask_and_endorse(stack, keys_dir, published, n), range(100, 150)))
    assert len({m["id"] for m in made}) == 50
    decided = wait_until(lambda: (lambda rs: rs if len(rs) == 50 and all(
        r["status"] in ("approved", "waitlisted") for r in rs) else None)(
        requests_at_home(stack, keys_dir, published["id"])), 120, "every request decided")
    assert sum(r["status"] == "approved" for r in decided) == 2
    wait_until(lambda: sorted(r["waitlist_position"] for r in requests_at_home(stack, keys_dir, published["id"])
                              if r["status"] == "waitlisted") == list(range(1, 49)), 60, "positions 1..48 at home")
    course_now = requests.get(f"{stack[HOST].url}/courses/{published['id']}", headers=headers(keys_dir, HOST),
                              timeout=10).json()
    assert course_now["offerings"][0]["places_left"] == 0


def test_the_students_school_refuses_at_the_field_what_its_catalog_shows_cannot_be_asked_for(stack, keys_dir):
    started = {"term": "2026-autumn", "starts_on": "2026-09-01", "ends_on": "2027-01-15", "places": 5}
    published = publish(stack, keys_dir, 5, started)

    def ask(course_id: str, term: str, **extra):
        return requests.post(f"{stack[HOME].url}/place-requests", timeout=10, json={
            "host_school": HOST, "course_id": course_id, "term": term, "statement": "Why not."},
            headers=headers(keys_dir, HOME, "student", 7, **extra))

    for course_id, term, pointer in ((published["id"], "2026-autumn", "/term"), (published["id"], "2030-fall", "/term"),
                                     (str(uuid.uuid4()), "2027-spring", "/course_id")):
        refused = ask(course_id, term)
        assert refused.status_code == 422, refused.text
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    made = ask(published["id"], "2027-spring", **key)
    assert made.status_code == 201
    # the host withdraws the course; a retry of the request already made is its replay, not a refusal
    withdrawn = requests.delete(f"{stack[HOST].url}/courses/{published['id']}", timeout=10,
                                headers=headers(keys_dir, HOST, **{"If-Match": f'"{published["version"]}"'}))
    assert withdrawn.status_code == 200, withdrawn.text
    wait_until(lambda: requests.get(f"{stack['catalog'].url}/courses/{published['id']}", timeout=5).status_code
               == 404, 60, "the withdrawal in the students' catalog")
    retried = ask(published["id"], "2027-spring", **key)
    assert retried.status_code == 201 and retried.headers.get("Idempotent-Replayed") == "true"
    assert retried.json()["id"] == made.json()["id"]
