"""The courses service as real processes: gunicorn web, relay worker, killed and restarted."""

from __future__ import annotations

import signal

import pytest
import requests
from pymongo import MongoClient

from services.courses.store import CourseStore
from shared.config import Settings
from tests.kafkautil import cloud_event, read_until
from tests.processes import free_port_base, service_processes, write_alliance
from tests.samples import course
from tests.waiting import wait_until


@pytest.fixture
def courses(mongo_uri, kafka_bootstrap, run_dir, keys_dir, prefix):
    base = free_port_base()
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", {"ecnu-cto": base, "sdu-sie": base + 10})
    svc = service_processes("ecnu-cto", "courses", base + 1, mongo_uri, kafka_bootstrap, run_dir, alliance,
                            keys_dir, prefix)
    yield svc
    svc.stop()


def test_a_course_posted_to_gunicorn_reaches_kafka_through_the_worker(courses, auth, kafka_bootstrap, prefix):
    courses.start_web()
    courses.start_worker()
    created = requests.post(f"{courses.url}/courses", json=course(), headers=auth(), timeout=10)
    assert created.status_code == 201, created.text
    course_id = created.json()["id"]
    records = read_until(kafka_bootstrap, f"{prefix}ecnu-cto.courses.v1", lambda r: len(r) >= 1, 20)
    assert [cloud_event(m).get_subject() for m in records] == [course_id]
    assert requests.get(f"{courses.url}/readyz", timeout=5).status_code == 200
    metrics = requests.get(f"{courses.url}/metrics", timeout=5).text
    assert 'http_requests_total{method="POST",route="/courses",school="ecnu-cto",service="courses",status="201"}' \
        in metrics


def test_the_relay_killed_mid_backlog_loses_and_duplicates_nothing(courses, mongo_uri, kafka_bootstrap, prefix):
    settings = Settings(school="ecnu-cto", service="courses", mongodb_database_prefix=prefix,
                        schools=(), mongodb_uri=mongo_uri)
    client = MongoClient(mongo_uri, tz_aware=True)
    db = client[settings.database_name]
    store = CourseStore(db)
    store.ensure_indexes()
    total = 1500
    for i in range(total):
        store.insert({**course(code=f"K-{i:05d}"), "_id": f"00000000-0000-4000-8000-{i:012d}", "school": "ecnu-cto",
                      "version": 1, "created_at": "2026-11-24T00:00:00.000Z",
                      "updated_at": "2026-11-24T00:00:00.000Z"})
    worker = courses.start_worker()
    wait_until(lambda: db["changes"].estimated_document_count() >= 200, 60, "the relay starting on the backlog")
    worker.stop(signum=signal.SIGKILL)
    at_kill = db["changes"].estimated_document_count()
    assert at_kill < total, "the backlog was drained before the kill; the test proves nothing"
    courses.start_worker()
    wait_until(lambda: db.command("count", "courses", query={"pending_since": {"$gt": 0}})["n"] == 0, 120,
         "the restarted relay draining the backlog")
    entries = list(db["changes"].find({}, {"entity_id": 1, "version": 1, "seq": 1}))
    assert len(entries) == total
    assert len({(e["entity_id"], e["version"]) for e in entries}) == total
    assert len({e["seq"] for e in entries}) == total
    ids = {f"00000000-0000-4000-8000-{i:012d}" for i in range(total)}
    records = read_until(kafka_bootstrap, f"{prefix}ecnu-cto.courses.v1",
                         lambda r: {m.key().decode() for m in r} >= ids, 60)
    # at least once on Kafka: the batch in flight at the kill may be sent twice, never lost
    assert {m.key().decode() for m in records} == ids
    client.close()
