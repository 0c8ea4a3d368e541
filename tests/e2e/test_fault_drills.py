"""Fault drills on the embedded stack: kill a part under load, bring it back, check that nothing is lost.

Real processes throughout (gunicorn web + python workers from tests/processes.py, nx-27017 and the
Tansu broker from devstack/servers.py). A drill that kills the broker or the MongoDB-protocol server
starts a private one on a free port, so the session's servers (shared with every other test) stay up.

- a: the broker SIGKILLed during a steady write load and restarted;
- b: nx-27017 SIGKILLed and restarted (same data directory, same port) during writes;
- c: a worker SIGKILLed mid-batch. The producing side (the outbox relay) is
  tests/e2e/test_courses_processes.py::test_the_relay_killed_mid_backlog_loses_and_duplicates_nothing;
  here the consuming side: the catalog worker killed while applying a burst of events;
- d: one gunicorn web worker SIGKILLed under load;
- e: a partner school's courses service (web and worker) down for a while, then back.

Every loop is bounded by a deadline. Each drill prints one `drill <x>: {...}` line of numbers
(run with -s to see them); docs/reliability.md reports them.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pymongo import MongoClient

from devstack import servers
from services.catalog.store import ReadModel
from services.courses.store import CourseStore
from shared.auth import KeyRing, issue_token
from shared.config import Settings
from shared.changelog import ChangeLog
from tests.kafkautil import read_until
from tests.processes import free_port_base, service_processes, write_alliance
from tests.samples import course
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ECNU, SDU = "ecnu-cto", "sdu-sie"
PROBLEM_DB_DOWN = "urn:alliance-catalog:problem:database-unavailable"


# --- helpers ---------------------------------------------------------------------------------------


def auth(keys_dir: Path, school: str = ECNU, role: str = "coordinator") -> dict:
    token = issue_token(KeyRing(keys_dir, school).private_key(), school, role, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def report(drill: str, numbers: dict) -> None:
    print(f"\ndrill {drill}: {json.dumps(numbers, sort_keys=True)}")


class Load:
    """Threads POSTing courses at a fixed total rate; every answer recorded.

    Each logical write has its own Idempotency-Key and is retried with it after anything but
    a 2xx (a 503, a reset connection) until it is answered 2xx, so that "every write that was
    accepted" and "no write stored twice" can both be checked afterwards.
    """

    def __init__(self, url: str, headers: dict, rate: float, tag: str, threads: int = 1,
                 timeout: float = 10.0, retry_pause: float = 0.2):
        self.url, self.headers, self.tag = url, headers, tag
        self.interval = threads / rate
        self.threads_n = threads
        self.timeout = timeout
        self.retry_pause = retry_pause
        self.stop_event = threading.Event()
        self.hard_deadline = time.monotonic() + 600
        self.lock = threading.Lock()
        self.created: dict[str, str] = {}  # idempotency key -> course id (first 2xx)
        self.created_at: dict[str, float] = {}  # course id -> monotonic time of its first 2xx
        self.keys: list[str] = []
        self.outcomes: collections.Counter = collections.Counter()  # "201", "503", "ConnectionError"...
        # (status, content type, problem type, Retry-After) of the answers that were not 2xx
        self.problems: collections.Counter = collections.Counter()
        self.timeline: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.counter = 0

    def start(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def stop(self, grace: float = 60.0) -> None:
        """Stop starting new writes; writes under way keep retrying until answered, within `grace`."""
        self.hard_deadline = time.monotonic() + grace
        self.stop_event.set()
        for t in self.threads:
            t.join(grace + self.timeout + 5)

    def _next_code(self) -> str:
        with self.lock:
            self.counter += 1
            return f"{self.tag}-{self.counter:05d}"

    def _record(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.timeline.append((time.monotonic(), outcome))

    def _run(self, index: int) -> None:
        session = requests.Session()
        next_at = time.monotonic() + index * self.interval / self.threads_n
        while not self.stop_event.is_set() and time.monotonic() < self.hard_deadline:
            pause = next_at - time.monotonic()
            if pause > 0 and self.stop_event.wait(pause):
                break
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            key = uuid.uuid4().hex
            body = course(code=self._next_code())
            with self.lock:
                self.keys.append(key)
            while time.monotonic() < self.hard_deadline:
                try:
                    response = session.post(self.url, json=body, timeout=self.timeout,
                                            headers={**self.headers, "Idempotency-Key": key})
                except requests.RequestException as exc:
                    self._record(exc.__class__.__name__)
                    session.close()
                    session = requests.Session()
                    time.sleep(self.retry_pause)
                    continue
                self._record(str(response.status_code))
                if 200 <= response.status_code < 300:
                    with self.lock:
                        if key not in self.created:
                            self.created[key] = response.json()["id"]
                            self.created_at[response.json()["id"]] = time.monotonic()
                    break
                ctype = response.headers.get("Content-Type", "")
                try:
                    ptype = response.json().get("type", "")
                except ValueError:
                    ptype = "(not JSON)"
                with self.lock:
                    self.problems[(response.status_code, ctype, ptype, response.headers.get("Retry-After"))] += 1
                time.sleep(self.retry_pause)
        session.close()

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.created.values())

    def first(self, outcome, after: float = 0.0) -> float | None:
        with self.lock:
            return next((t for t, o in self.timeline if t >= after and o == outcome), None)

    def last(self, predicate) -> float | None:
        with self.lock:
            return next((t for t, o in reversed(self.timeline) if predicate(o)), None)


class TopicTail:
    """Reads a topic from the beginning with confluent-kafka while it runs; records every key seen."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic = bootstrap, topic
        self.keys: set[str] = set()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TopicTail":
        self.thread.start()
        return self

    def stop(self) -> set[str]:
        self.stop_event.set()
        self.thread.join(10)
        return set(self.keys)

    def _run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"tail-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 10, "log_level": 0})
        try:
            partitions = []
            deadline = time.monotonic() + 30
            while not partitions and time.monotonic() < deadline and not self.stop_event.is_set():
                meta = consumer.list_topics(self.topic, timeout=2).topics.get(self.topic)
                partitions = list(meta.partitions) if meta is not None and not meta.error else []
                if not partitions:
                    time.sleep(0.2)
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            while not self.stop_event.is_set():
                msg = consumer.poll(0.05)
                if msg is not None and not msg.error() and msg.key():
                    self.keys.add(msg.key().decode())
        finally:
            consumer.close()


class BacklogMonitor:
    """Samples a write service's unpublished backlog (pending outbox markers) every 100 ms."""

    def __init__(self, db, collection: str = "courses"):
        self.db, self.collection = db, collection
        self.samples: list[tuple[float, int]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "BacklogMonitor":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)

    def _run(self) -> None:
        while not self.stop_event.wait(0.1):
            try:
                n = self.db.command("count", self.collection, query={"pending_since": {"$gt": 0}})["n"]
            except Exception:  # the database may be the thing a drill killed
                continue
            self.samples.append((time.monotonic(), n))

    def peak(self) -> int:
        return max((n for _, n in self.samples), default=0)

    def drained_after(self, t: float) -> float | None:
        """The first time after `t` the backlog was zero."""
        return next((s for s, n in self.samples if s >= t and n == 0), None)


def topic_exists(bootstrap: str, topic: str) -> bool:
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}", "log_level": 0})
    try:
        return topic in probe.list_topics(timeout=2).topics
    finally:
        probe.close()


def change_log_counts(db) -> collections.Counter:
    return collections.Counter(e["entity_id"] for e in db["changes"].find({}, {"entity_id": 1}))


def backlog(db, collection: str = "courses") -> int:
    return db.command("count", collection, query={"pending_since": {"$gt": 0}})["n"]


def courses_db(client: MongoClient, prefix: str, school: str = ECNU, service: str = "courses"):
    settings = Settings(school=school, service=service, mongodb_database_prefix=prefix, schools=())
    return client[settings.database_name]


def gunicorn_children(master_pid: int) -> set[int]:
    """The worker processes of a gunicorn master (read from /proc)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == master_pid:
            children.add(int(entry.name))
    return children


@pytest.fixture
def started(request):
    """Processes a drill starts; every one is stopped at the end, whatever happened."""
    procs = []
    yield procs
    for proc in reversed(procs):
        try:
            proc.stop(timeout=10)
        except Exception:
            pass


@pytest.fixture
def alliance_file(run_dir, prefix):
    bases = {ECNU: free_port_base(), SDU: None}
    bases[SDU] = next(b for b in iter(free_port_base, None) if abs(b - bases[ECNU]) > 4)
    return write_alliance(run_dir / f"{prefix}alliance.json", bases), bases


# --- a: the broker killed under a steady write load -------------------------------------------------


def test_a_broker_killed_under_steady_writes_loses_no_accepted_course(
        mongo_uri, run_dir, keys_dir, prefix, alliance_file, started):
    alliance, bases = alliance_file
    log_dir = run_dir / prefix / "broker-a"
    port = servers.free_port()
    broker = servers.start_broker(port, log_dir)
    started.append(broker)
    bootstrap = f"{servers.HOST}:{port}"
    svc = service_processes(ECNU, "courses", bases[ECNU] + 1, mongo_uri, bootstrap, run_dir, alliance, keys_dir,
                            prefix)
    # ecnu-cto's own catalog, consuming from the same broker: the end-to-end check of "nothing lost"
    catalog = service_processes(ECNU, "catalog", bases[ECNU], mongo_uri, bootstrap, run_dir, alliance, keys_dir,
                                prefix)
    catalog.env["CATALOG_DIGEST_SECONDS"] = "2"
    started.append(svc.start_worker())
    started.append(svc.start_web(workers=2))
    started.append(catalog.start_worker())
    topic = f"{prefix}{ECNU}.courses.v1"
    client = MongoClient(mongo_uri, tz_aware=True)
    db = courses_db(client, prefix)
    cat_db = courses_db(client, prefix, service="catalog")
    monitor = BacklogMonitor(db).start()
    load = Load(f"{svc.url}/courses", auth(keys_dir), rate=25, tag="DRA").start()
    try:
        # the relay creates its topic with its first batch; the tail reads it from the beginning
        wait_until(lambda: topic_exists(bootstrap, topic), 30, "the relay creating its topic")
        tail = TopicTail(bootstrap, topic).start()
        time.sleep(3)
        killed_at = time.monotonic()
        broker.kill()
        time.sleep(0.5)
        seen_before = tail.stop()
        time.sleep(2.5)
        pending_at_restart = backlog(db)
        restart_began = time.monotonic()
        broker = servers.start_broker(port, log_dir)
        started.append(broker)
        restarted_at = time.monotonic()
        time.sleep(3)
    finally:
        load.stop()
    wait_until(lambda: backlog(db) == 0, 60, "the relay draining the outbox after the restart")
    drained = monitor.drained_after(restarted_at) or time.monotonic()
    monitor.stop()
    ids = load.ids()

    def held() -> set[str]:
        return {d["_id"] for d in cat_db["courses"].find({"school": ECNU, "visible": True}, {"_id": 1})}

    wait_until(lambda: held() >= ids, 60, "ecnu-cto's catalog holding every accepted course")
    catalog_complete = time.monotonic()
    catalog_state = cat_db["sync"].find_one({"_id": f"{ECNU}/courses"}) or {}
    created_during_outage = {i for i, t in load.created_at.items() if killed_at <= t < restarted_at}
    after_kill = {i for i, t in load.created_at.items() if t >= killed_at}
    new_topic = read_until(bootstrap, topic, lambda rs: {m.key().decode() for m in rs} >= after_kill, 60)
    on_new = {m.key().decode() for m in new_topic}
    on_topic = seen_before | on_new
    logged = change_log_counts(db)
    missing = ids - on_topic
    # only a course published (and acknowledged) in the last moments before the kill can be missing from
    # both lives of the memory-only broker; the change feed still serves it to every partner
    feed = requests.get(f"{svc.url}/changes", params={"since": 0, "limit": 1000}, headers=auth(keys_dir),
                        timeout=10).json()
    in_feed = {c["id"] for c in feed["changes"]}
    held_final = held()
    report("a", {
        "writes_answered_201": load.outcomes["201"], "other_answers": {k: v for k, v in load.outcomes.items()
                                                                       if k != "201"},
        "created_while_broker_down": len(created_during_outage), "backlog_at_restart": pending_at_restart,
        "backlog_peak": monitor.peak(), "broker_restart_seconds": round(restarted_at - restart_began, 2),
        "backlog_drained_seconds_after_restart": round(drained - restarted_at, 2),
        "read_from_old_broker": len(seen_before), "read_from_new_broker": len(on_new),
        "missing_from_topic": len(missing), "change_log_entries": sum(logged.values()),
        "catalog_held": len(held_final), "catalog_complete_after_restart": round(catalog_complete - restarted_at, 2),
        "catalog_last_catchup": {k: catalog_state.get("last_catchup", {}).get(k) for k in ("reason", "applied")},
    })
    client.close()
    assert set(load.outcomes) == {"201"}, load.outcomes  # the web never talks to Kafka
    assert len(ids) == len(load.keys) >= 100
    assert created_during_outage, "no write landed while the broker was down; the drill proves nothing"
    assert pending_at_restart > 0
    # the change log: every accepted course exactly once, nothing else
    assert set(logged) == ids and set(logged.values()) == {1}
    # on the topic: everything written from the kill on is on the new broker, and all the rest was read
    # from the old one before it died (but for what the memory-only broker took with it, see above)
    assert after_kill <= on_new
    assert missing <= ids - after_kill and missing <= in_feed, missing
    assert len(missing) <= 5, f"{len(missing)} acknowledged events lost with the broker's memory"
    # and the consumer ends up with every accepted course, once (events, then its feed catch-up)
    assert held_final == ids


# --- b: the MongoDB-protocol server killed during writes --------------------------------------------


def test_b_database_killed_during_writes_answers_503_then_recovers_with_every_201_stored(
        kafka_bootstrap, run_dir, keys_dir, prefix, alliance_file, started):
    alliance, bases = alliance_file
    data_dir = run_dir / prefix / "mongo-b"
    log_dir = run_dir / prefix / "mongo-b-log"
    port = servers.free_port()
    mongo = servers.start_mongo(data_dir, port, log_dir)
    started.append(mongo)
    uri = servers.mongo_uri(port)
    svc = service_processes(ECNU, "courses", bases[ECNU] + 1, uri, kafka_bootstrap, run_dir, alliance, keys_dir,
                            prefix)
    svc.env["MONGODB_TIMEOUT_MS"] = "1000"
    started.append(svc.start_worker())
    started.append(svc.start_web(workers=2))
    headers = auth(keys_dir)
    load = Load(f"{svc.url}/courses", headers, rate=10, tag="DRB", threads=2, retry_pause=0.25).start()
    ready_during = []
    try:
        time.sleep(3)
        killed_at = time.monotonic()
        mongo.kill()
        down_until = time.monotonic() + 4
        while time.monotonic() < down_until:
            r = requests.get(f"{svc.url}/readyz", timeout=10)
            ready_during.append((r.status_code, r.headers.get("Content-Type"), r.json().get("type")))
            time.sleep(0.5)
        restart_began = time.monotonic()
        mongo = servers.start_mongo(data_dir, port, log_dir)
        started.append(mongo)
        restarted_at = time.monotonic()
        wait_until(lambda: load.first("201", after=restarted_at), 30, "a 201 after the restart")
        time.sleep(3)
    finally:
        load.stop()
    first_201_after = load.first("201", after=restarted_at)
    last_503 = load.last(lambda o: o == "503")
    first_503 = load.first("503", after=killed_at)
    client = MongoClient(uri, tz_aware=True)
    db = courses_db(client, prefix)
    wait_until(lambda: backlog(db) == 0, 60, "the relay draining the outbox after the restart")
    ids = load.ids()
    stored = {d["_id"] for d in db["courses"].find({}, {"_id": 1})}
    logged = change_log_counts(db)
    readable = sum(requests.get(f"{svc.url}/courses/{i}", headers=headers, timeout=10).status_code == 200
                   for i in ids)
    records = read_until(kafka_bootstrap, f"{prefix}{ECNU}.courses.v1",
                         lambda rs: {m.key().decode() for m in rs} >= ids, 60)
    report("b", {
        "answers": dict(load.outcomes), "writes_accepted": len(ids),
        "problems": {" ".join(map(str, k)): n for k, n in load.problems.items()},
        "first_503_seconds_after_kill": round(first_503 - killed_at, 2) if first_503 else None,
        "server_down_seconds": round(restarted_at - killed_at, 2),
        "server_restart_seconds": round(restarted_at - restart_began, 2),
        "first_201_seconds_after_restart": round(first_201_after - restarted_at, 2),
        "last_503_seconds_after_restart": round(last_503 - restarted_at, 2) if last_503 else None,
        "readyz_during_outage": sorted({str(r) for r in ready_during}),
        "stored": len(stored), "readable_after": readable, "on_topic": len({m.key().decode() for m in records}),
    })
    client.close()
    assert load.outcomes["503"] > 0, "no request met the outage; the drill proves nothing"
    # never a 500, never an unanswered request: 201 or 503 only
    assert set(load.outcomes) <= {"201", "503"}, load.outcomes
    assert set(load.problems) == {(503, "application/problem+json", PROBLEM_DB_DOWN, "2")}, load.problems
    assert ready_during and {r[0] for r in ready_during} == {503}
    assert {r[2] for r in ready_during} == {PROBLEM_DB_DOWN}
    # recovers by itself, without restarting the web or the worker
    assert svc.web.alive() and svc.worker.alive()
    assert first_201_after - restarted_at < 10
    # every write was accepted in the end (retried with its Idempotency-Key), each stored once
    assert len(ids) == len(load.keys) >= 40
    assert stored == ids, (len(stored), len(ids))
    assert readable == len(ids)
    assert set(logged) == ids and set(logged.values()) == {1}
    assert {m.key().decode() for m in records} == ids


# --- c: the catalog worker killed while applying a burst --------------------------------------------


def test_c_catalog_worker_killed_mid_burst_converges_after_restart(
        mongo_uri, kafka_bootstrap, run_dir, keys_dir, prefix, alliance_file, started):
    """The consuming side; the producing side is test_courses_processes.py's relay-killed-mid-backlog test.

    No courses web runs, so the catalog cannot catch up from the feed: what it holds after the restart
    comes from Kafka alone (its uncommitted events delivered again).
    """
    alliance, bases = alliance_file
    source = service_processes(ECNU, "courses", bases[ECNU] + 1, mongo_uri, kafka_bootstrap, run_dir, alliance,
                               keys_dir, prefix)
    catalog = service_processes(ECNU, "catalog", bases[ECNU], mongo_uri, kafka_bootstrap, run_dir, alliance,
                                keys_dir, prefix)
    catalog.env["CATALOG_DIGEST_SECONDS"] = "600"
    client = MongoClient(mongo_uri, tz_aware=True)
    src_db = courses_db(client, prefix)
    cat_db = courses_db(client, prefix, service="catalog")
    store = CourseStore(src_db)
    store.ensure_indexes()
    model = ReadModel(cat_db)

    def insert(i: int) -> None:
        store.insert({**course(code=f"DRC-{i:05d}"), "_id": f"00000000-0000-4000-8000-{i:012d}", "school": ECNU,
                      "version": 1, "created_at": "2026-11-24T00:00:00.000Z",
                      "updated_at": "2026-11-24T00:00:00.000Z"})

    def held() -> int:
        return cat_db.command("count", "courses", query={"school": ECNU, "visible": True})["n"]

    insert(0)
    started.append(source.start_worker())
    started.append(catalog.start_worker())
    wait_until(lambda: held() == 1, 60, "the catalog applying the first course")
    total = 1500
    # the burst is written straight into the source's collection (as an import would), in a thread
    burst = threading.Thread(target=lambda: [insert(i) for i in range(1, total + 1)], daemon=True)
    burst_at = time.monotonic()
    burst.start()
    wait_until(lambda: held() >= 300, 60, "the catalog applying the burst")
    catalog.worker.stop(signum=signal.SIGKILL)
    killed_at = time.monotonic()
    at_kill = held()
    burst.join(60)
    wait_until(lambda: backlog(src_db) == 0, 60, "the relay publishing the whole burst")
    published_at = time.monotonic()
    assert held() == at_kill, "a killed worker kept applying"
    started.append(catalog.start_worker())
    restarted_at = time.monotonic()
    source_digest = {k: v for k, v in ChangeLog(src_db).digest().items() if k != "last_seq"}
    wait_until(lambda: model.digest(ECNU, "course") == source_digest, 90, "the catalog converging on the source")
    converged_at = time.monotonic()
    state = cat_db["sync"].find_one({"_id": f"{ECNU}/courses"}) or {}
    versions = collections.Counter(d["version"] for d in cat_db["courses"].find({"school": ECNU}, {"version": 1}))
    held_after = held()
    client.close()
    report("c", {
        "burst": total, "held_at_kill": at_kill, "seconds_from_burst_to_kill": round(killed_at - burst_at, 2),
        "relay_published_burst_seconds": round(published_at - burst_at, 2),
        "converged_seconds_after_restart": round(converged_at - restarted_at, 2), "held_after": held_after,
        "feed_catchup_error": (state.get("error") or {}).get("detail"),
    })
    assert 0 < at_kill < total + 1, "the worker was not killed mid-burst; the drill proves nothing"
    assert held_after == total + 1 and versions == {1: total + 1}
    # the feed was unreachable: convergence came from the events Kafka delivered again
    assert (state.get("last_catchup") or {}).get("applied", 0) == 0


# --- d: a gunicorn web worker killed under load -----------------------------------------------------


def test_d_a_gunicorn_worker_killed_under_load_is_replaced_and_no_answered_write_is_lost(
        mongo_uri, kafka_bootstrap, run_dir, keys_dir, prefix, alliance_file, started):
    alliance, bases = alliance_file
    svc = service_processes(ECNU, "courses", bases[ECNU] + 1, mongo_uri, kafka_bootstrap, run_dir, alliance,
                            keys_dir, prefix)
    started.append(svc.start_worker())
    started.append(svc.start_web(workers=2))
    master = svc.web.pid
    before = wait_until(lambda: (lambda c: c if len(c) == 2 else None)(gunicorn_children(master)), 15,
                        "two gunicorn workers")
    headers = auth(keys_dir)
    load = Load(f"{svc.url}/courses", headers, rate=120, tag="DRD", threads=4, retry_pause=0.1).start()
    try:
        time.sleep(2.5)
        victim = min(before)
        answered_before = load.outcomes["201"]
        os.kill(victim, signal.SIGKILL)  # a child of the gunicorn this test started
        killed_at = time.monotonic()
        after = wait_until(lambda: (lambda c: c if len(c) == 2 and victim not in c else None)(
            gunicorn_children(master)), 30, "gunicorn replacing the killed worker")
        replaced_at = time.monotonic()
        time.sleep(2.5)
    finally:
        load.stop()
    ids = load.ids()
    client = MongoClient(mongo_uri, tz_aware=True)
    db = courses_db(client, prefix)
    stored = {d["_id"] for d in db["courses"].find({}, {"_id": 1})}
    readable = sum(requests.get(f"{svc.url}/courses/{i}", headers=headers, timeout=10).status_code == 200
                   for i in ids)
    failed = {k: v for k, v in load.outcomes.items() if not k.startswith("2")}
    report("d", {
        "answers": dict(load.outcomes), "writes_accepted": len(ids), "accepted_before_kill": answered_before,
        "failed_attempts_retried": failed, "worker_replaced_seconds": round(replaced_at - killed_at, 2),
        "stored": len(stored), "readable_after": readable,
    })
    client.close()
    assert svc.web.alive()
    assert after != before and len(after) == 2
    assert not any(k.startswith("5") for k in load.outcomes), load.outcomes
    # every write answered 2xx is there, once; those that met the dying worker were retried with their key
    assert len(ids) == len(load.keys) >= 100
    assert stored == ids and readable == len(ids)
    requests.get(f"{svc.url}/healthz", timeout=5).raise_for_status()


# --- e: a partner school's services down for a while, then back -------------------------------------


def test_e_a_partner_down_for_a_while_then_back_converges_with_equal_digests(
        mongo_uri, kafka_bootstrap, run_dir, keys_dir, prefix, alliance_file, started):
    alliance, bases = alliance_file
    sdu = service_processes(SDU, "courses", bases[SDU] + 1, mongo_uri, kafka_bootstrap, run_dir, alliance,
                            keys_dir, prefix)
    catalog = service_processes(ECNU, "catalog", bases[ECNU], mongo_uri, kafka_bootstrap, run_dir, alliance,
                                keys_dir, prefix)
    catalog.env["CATALOG_DIGEST_SECONDS"] = "2"
    for proc in (sdu.start_worker(), sdu.start_web(workers=1), catalog.start_worker(), catalog.start_web(workers=1)):
        started.append(proc)
    coordinator = auth(keys_dir, SDU)
    partner = auth(keys_dir, ECNU, "partner")

    def create(code: str) -> dict:
        r = requests.post(f"{sdu.url}/courses", json=course(code=code), headers=coordinator, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()

    def held() -> dict[str, int]:
        r = requests.get(f"{catalog.url}/courses", params={"q": "dre-", "limit": 100, "facets": "false"},
                         timeout=10)
        assert r.status_code == 200, r.text
        return {c["code"]: c["version"] for c in r.json()["items"]}

    def sync_entry() -> dict:
        sources = requests.get(f"{catalog.url}/sync", timeout=10).json()["sources"]
        return next(s for s in sources if s["school"] == SDU and s["entity"] == "courses")

    def digests_equal(source: dict, since: float = 0.0) -> bool:
        check = sync_entry().get("last_digest_check") or {}
        local = check.get("local") or {}
        return (check.get("result") in ("equal", "repaired") and local.get("sha256") == source["sha256"]
                and local.get("count") == source["count"])

    first = [create(f"DRE-{i}") for i in range(4)]
    wait_until(lambda: held() == {f"DRE-{i}": 1 for i in range(4)}, 45, "sdu-sie's courses at ecnu-cto")
    digest_before = requests.get(f"{sdu.url}/digest", headers=partner, timeout=10).json()
    wait_until(lambda: digests_equal(digest_before), 30, "equal digests before the outage")

    # the partner's relay stops first; its coordinators keep writing until its web goes down too
    sdu.worker.stop(timeout=15)
    down_at = time.monotonic()
    for i in range(4, 7):
        create(f"DRE-{i}")
    updated = requests.put(f"{sdu.url}/courses/{first[0]['id']}", json=course(code="DRE-0", hours=12),
                           headers={**coordinator, "If-Match": '"1"'}, timeout=10)
    assert updated.status_code == 200, updated.text
    withdrawn = requests.delete(f"{sdu.url}/courses/{first[1]['id']}", headers={**coordinator, "If-Match": '"1"'},
                                timeout=10)
    assert withdrawn.status_code == 200, withdrawn.text
    sdu.web.stop(timeout=10)
    # down for a while: several digest periods of the catalog
    error = wait_until(lambda: (sync_entry().get("error") or {}).get("detail"), 30,
                       "the catalog noticing the partner's feed is away")
    time.sleep(4)
    during = held()
    assert during == {f"DRE-{i}": 1 for i in range(4)}, during

    back_at = time.monotonic()
    started.append(sdu.start_web(workers=1))
    started.append(sdu.start_worker())
    expected = {"DRE-0": 2, "DRE-2": 1, "DRE-3": 1, "DRE-4": 1, "DRE-5": 1, "DRE-6": 1}
    wait_until(lambda: held() == expected, 60, "ecnu-cto's catalog showing the partner's changes")
    visible_at = time.monotonic()
    source = requests.get(f"{sdu.url}/digest", headers=partner, timeout=10).json()
    wait_until(lambda: digests_equal(source), 60, "equal digests after the partner came back")
    equal_at = time.monotonic()
    entry = sync_entry()
    report("e", {
        "partner_down_seconds": round(back_at - down_at, 2), "error_seen_by_catalog": error,
        "changes_made_meanwhile": 5, "visible_seconds_after_back": round(visible_at - back_at, 2),
        "digest_equal_seconds_after_back": round(equal_at - back_at, 2), "source_digest": source,
        "lag": entry.get("lag"), "applied_seq": entry.get("applied_seq"),
    })
    assert entry["applied_seq"] >= source["last_seq"]
    assert not entry.get("error")
