"""Slot-request latency across two schools: from the requester's 201 to the decision visible there.

Starts nx-27017 and the Tansu broker on free loopback ports, then for each of
ecnu-cto (the host) and sdu-sie (the requester) the visits web (gunicorn -w 2)
and the visits worker (three relays, two consumers, reconciliation), via
devstack.servers. The host publishes one visit with a large slot; a client
then posts slot requests at the requester, one at a time, and polls
GET /slot-requests/<id> there every POLL_INTERVAL seconds until the status is
no longer pending. The path measured: requester web -> requester relay ->
Kafka -> host consumer (decide) -> host relay -> Kafka -> requester consumer.

Measured twice: idle, and under a steady background of visit writes at the
host (a second client posting visits at BACKGROUND_RATE per second, which the
host's relay publishes on the same MongoDB server and broker).

Run alone: python -m bench.run slot_latency
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from bench.courses_write import Run, percentile, versions
from devstack import servers
from shared.auth import KeyRing, ensure_dev_keys, issue_token
from tests.visit_samples import slot, visit

DOC = "docs/benchmarks.md"
# the raw numbers of the last main(), for bench/run.py's plots (milliseconds)
RESULTS: dict = {}
HOST, REQUESTER = "ecnu-cto", "sdu-sie"
WARMUP = 5
REQUESTS = 100
POLL_INTERVAL = 0.01
BACKGROUND_RATE = 40.0
WEB_WORKERS = 2
TARGET_P99_MS = 2000.0
REQUEST_TIMEOUT = 30.0


def log(message: str) -> None:
    print(f"[bench slot_latency] {message}", file=sys.stderr, flush=True)


def main() -> dict:
    """Run the benchmark; returns {section title: markdown}."""
    with tempfile.TemporaryDirectory(prefix="bench-slots-") as tmp:
        return _bench(Path(tmp))


def _bench(root: Path) -> dict:
    run = Run(root)
    keys_dir = root / "keys"
    ensure_dev_keys(keys_dir, [HOST, REQUESTER])
    alliance_path = root / "alliance.json"
    alliance_path.write_text('{"schools": [{"id": "ecnu-cto"}, {"id": "sdu-sie"}]}', encoding="utf-8")
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    try:
        mongo_port, kafka_port = servers.free_port(), servers.free_port()
        log(f"starting nx-27017 on {mongo_port} and Tansu on {kafka_port}")
        run.add(servers.start_mongo(root / "mongo", mongo_port, run.log_dir))
        run.add(servers.start_broker(kafka_port, run.log_dir))
        urls = {}
        for school in (HOST, REQUESTER):
            env = servers.service_env(school, "visits", mongo_port, kafka_port, root, alliance_path, keys_dir,
                                      {"MONGODB_DATABASE_PREFIX": prefix, "KAFKA_TOPIC_PREFIX": prefix})
            run.add(servers.start_worker(school, "visits", env, run.log_dir))
            port = servers.free_port()
            run.add(servers.start_web(school, "visits", port, env, run.log_dir, WEB_WORKERS))
            urls[school] = f"http://{servers.HOST}:{port}"
        headers = {s: {"Authorization": "Bearer " + issue_token(KeyRing(keys_dir, s).private_key(), s,
                                                                  "coordinator", ttl_seconds=3600)}
                   for s in (HOST, REQUESTER)}
        session = requests.Session()
        published = session.post(f"{urls[HOST]}/visits", headers=headers[HOST],
                                 json=visit(slots=[slot("seminar", "2027-04-13", capacity=1000)]))
        published.raise_for_status()
        target = published.json()

        def measure(count: int) -> list[float]:
            return [one_request(session, urls[REQUESTER], headers[REQUESTER], target) for _ in range(count)]

        log("warming up (consumer groups join)")
        measure(WARMUP)
        log(f"idle: {REQUESTS} requests")
        idle = measure(REQUESTS)
        log(f"under load: {REQUESTS} requests, visits posted at the host at {BACKGROUND_RATE}/s")
        background = Background(urls[HOST], headers[HOST], BACKGROUND_RATE)
        background.start()
        try:
            loaded = measure(REQUESTS)
        finally:
            achieved = background.stop()
        if background.errors:
            raise RuntimeError(f"{background.errors} background writes failed")
        RESULTS.clear()
        RESULTS.update({"idle": idle, "loaded": loaded, "background_rate": achieved})
        return report(idle, loaded, achieved)
    finally:
        run.stop()


def one_request(session: requests.Session, base: str, headers: dict, target: dict) -> float:
    """Post one slot request and poll until it is decided; returns milliseconds from its 201."""
    body = {"visit_id": target["id"], "host_school": HOST, "slot_id": target["slots"][0]["id"],
            "faculty_id": str(uuid.uuid4()), "motivation": "bench"}
    response = session.post(f"{base}/slot-requests", json=body, headers=headers)
    created = time.monotonic()
    response.raise_for_status()
    url = f"{base}/slot-requests/{response.json()['id']}"
    deadline = created + REQUEST_TIMEOUT
    while time.monotonic() < deadline:
        status = session.get(url, headers=headers).json()["status"]
        if status != "pending":
            if status != "approved":
                raise RuntimeError(f"request decided {status}, expected approved")
            return (time.monotonic() - created) * 1000
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"request not decided within {REQUEST_TIMEOUT}s")


class Background:
    """Posts visits at the host at a steady rate in a thread, until stopped."""

    def __init__(self, base: str, headers: dict, rate: float):
        self.base, self.headers, self.interval = base, headers, 1.0 / rate
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.written = 0
        self.errors = 0
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()

    def _run(self) -> None:
        session = requests.Session()
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            response = session.post(f"{self.base}/visits", json=visit(), headers=self.headers)
            if response.status_code == 201:
                self.written += 1
            else:
                self.errors += 1
            next_at += self.interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> float:
        self.stop_event.set()
        self.thread.join(10)
        return self.written / max(1e-9, time.monotonic() - self.started)


def report(idle: list[float], loaded: list[float], background_rate: float) -> dict:
    def row(name, values):
        return (f"| {name} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 90):.0f} | "
                f"{percentile(values, 99):.0f} | {max(values):.0f} |")

    worst = max(percentile(idle, 99), percentile(loaded, 99))
    verdict = "met" if worst < TARGET_P99_MS else "NOT met"
    table = "\n".join([
        "| phase | requests | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        row("idle", idle),
        row(f"background visit writes ({background_rate:.0f}/s achieved)", loaded),
    ])
    conditions = (
        f"From the 201 of `POST /slot-requests` at {REQUESTER} to `GET /slot-requests/<id>` there showing the "
        f"decision (polled every {POLL_INTERVAL * 1000:.0f} ms), one request at a time, {WARMUP} warm-up requests "
        f"not counted. Both schools' visits web (gunicorn -w {WEB_WORKERS}) and workers on one nx-27017 and one "
        f"Tansu broker, loopback; relay idle poll 50 ms, consumer poll timeout 3 s (a poll returns as soon as "
        f"records arrive). The path crosses two relays and two consumers. Target p99 < "
        f"{TARGET_P99_MS / 1000:.0f} s: **{verdict}** (worst p99 {worst:.0f} ms). Versions: {versions()}."
    )
    return {"Slot request to decision, as the requester sees it": f"{table}\n\n{conditions}"}
