"""How fast a course reaches the partner's catalog, how fast a catalog catches up, how fast it searches.

Starts nx-27017 and the Tansu broker on free loopback ports and, for both
schools, the courses and catalog services (gunicorn web -w 2 + worker each,
via devstack.servers). Then:

1. Sync latency: from the 201 of a POST at ecnu-cto to the course being found
   by sdu-sie's catalog search (polled every 10 ms), idle (one write at a time)
   and under a steady background write load at ecnu-cto.
2. Catch-up: 10,000 courses are written into ecnu-cto's courses database (the
   relay publishes them, catalog workers stopped), the broker is restarted
   (every topic and offset gone), then sdu-sie's catalog worker starts: the
   rate is entities per second from its start until it holds all 10,000, which
   it can only get from ecnu-cto's change feed. Compared with the raw insert
   rate of 10,000 similar documents into the same MongoDB server in this run.
3. Search latency of sdu-sie's catalog API over those 10,000 courses.

Run alone: python -m bench.run catalog_sync
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from pymongo import MongoClient

from bench._common import ECNU, SDU, Alliance, course_doc, ms, percentile, raw_insert_rate, wait  # noqa: F401
from devstack import servers
from services.courses.model import new_course
from services.courses.store import CourseStore
from shared.clock import now_iso
from shared.config import Settings

DOC = "docs/benchmarks.md"
SAMPLES = 40
LOAD_PER_SECOND = 20
BULK = 10_000
SEARCH_SAMPLES = 15
# the raw numbers of the last main(), for bench/run.py's plots (seconds)
RESULTS: dict = {}

STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[catalog_sync +{time.monotonic() - STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


def sync_latencies(alliance: Alliance, session: requests.Session, tag: str, rng: random.Random,
                   samples: int = SAMPLES) -> list[float]:
    """Seconds from each 201 at ecnu-cto to the course found by sdu-sie's catalog search."""
    headers = alliance.token(ECNU, "coordinator")
    search = alliance.url(SDU, "catalog") + "/courses"
    out = []
    for i in range(samples):
        code = f"{tag}-{i:03d}"
        body = {**course_doc(i, rng), "code": code}
        response = session.post(alliance.url(ECNU, "courses") + "/courses", json=body, headers=headers, timeout=10)
        if response.status_code != 201:
            raise RuntimeError(f"POST answered {response.status_code}: {response.text[:200]}")
        created = time.perf_counter()
        wait(lambda: session.get(search, params={"q": code, "facets": "false"}, timeout=10).json()["total"] == 1,
             30, f"{code} in the partner's catalog")
        out.append(time.perf_counter() - created)
        time.sleep(0.05)
    return out


def background_writes(alliance: Alliance, stop: threading.Event, counter: list) -> None:
    """A steady load of course writes at ecnu-cto, LOAD_PER_SECOND per second."""
    session = requests.Session()
    headers = alliance.token(ECNU, "coordinator")
    rng = random.Random(7)
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        body = {**course_doc(i, rng), "code": f"L-{uuid.uuid4().hex[:12]}"}
        if session.post(alliance.url(ECNU, "courses") + "/courses", json=body, headers=headers,
                        timeout=10).status_code == 201:
            counter[0] += 1
        i += 1
        next_at += 1 / LOAD_PER_SECOND
        stop.wait(max(0.0, next_at - time.monotonic()))


def bulk_insert(alliance: Alliance, rng: random.Random) -> None:
    """BULK courses written straight into ecnu-cto's courses database, pending for the relay."""
    settings = Settings(school=ECNU, service="courses", schools=alliance.schools)
    client = MongoClient(servers.mongo_uri(alliance.mongo_port), tz_aware=True)
    store = CourseStore(client[settings.database_name])
    docs = [new_course(course_doc(i, rng), ECNU, now_iso()) for i in range(BULK)]
    # one pending single-document write per course, as the API makes them
    for doc in docs:
        store.insert(doc)
    client.close()


def held(alliance: Alliance, school: str) -> dict:
    return alliance.held(school)


def search_latencies(alliance: Alliance) -> dict[str, list[float]]:
    session = requests.Session()
    url = alliance.url(SDU, "catalog") + "/courses"
    cases = {
        "no query, facets": {},
        "one word, facets": {"q": "innovation"},
        "Chinese word, facets": {"q": "领导力"},
        "two filters, facets": {"programme": "MEM", "language": "zh"},
        "word + filters, no facets": {"q": "strategy", "credits_min": 2, "delivery": "online", "facets": "false"},
    }
    out = {}
    for name, params in cases.items():
        times = []
        for _ in range(SEARCH_SAMPLES):
            started = time.perf_counter()
            response = session.get(url, params=params, timeout=30)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"search {params} answered {response.status_code}")
        out[name] = times
    # the second page of a sorted listing, by its cursor
    first = session.get(url, params={"sort": "-credits", "facets": "false"}, timeout=30).json()
    times = []
    for _ in range(SEARCH_SAMPLES):
        started = time.perf_counter()
        session.get(first["next"], timeout=30)
        times.append(time.perf_counter() - started)
    out["page 2 by cursor, sorted by credits"] = times
    return out


def main() -> dict[str, str]:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        alliance = Alliance(Path(tmp))
        log("starting nx-27017, the broker and both schools' courses and catalog services")
        alliance.start()
        try:
            session = requests.Session()
            # let the catalog workers join their groups before timing anything
            sync_latencies(alliance, session, "WARM", rng, samples=3)
            log("sync latency, idle")
            idle = sync_latencies(alliance, session, "IDLE", rng)
            log(f"sync latency under {LOAD_PER_SECOND} writes/s")
            stop, counter = threading.Event(), [0]
            loader = threading.Thread(target=background_writes, args=(alliance, stop, counter), daemon=True)
            loader.start()
            started = time.monotonic()
            loaded = sync_latencies(alliance, session, "LOAD", rng)
            stop.set()
            loader.join(15)
            load_rate = counter[0] / (time.monotonic() - started)

            log(f"writing {BULK} courses at {ECNU} with the catalog workers stopped")
            alliance.stop_worker(SDU, "catalog")
            alliance.stop_worker(ECNU, "catalog")
            bulk_insert(alliance, rng)
            ecnu_partner = alliance.token(SDU, "partner")
            digest_url = alliance.url(ECNU, "courses") + "/digest"
            expected = lambda: requests.get(digest_url, headers=ecnu_partner, timeout=30).json()  # noqa: E731
            wait(lambda: expected()["count"] >= BULK, 240, "the relay publishing the bulk", interval=1)
            source = expected()
            before = held(alliance, ECNU)["held"]
            log("restarting the broker (all topics, records and offsets gone)")
            alliance.restart_broker()
            log(f"starting {SDU}'s catalog worker: it holds {before} of {source['count']} {ECNU} courses")
            t0 = time.perf_counter()
            alliance.start_worker(SDU, "catalog")
            wait(lambda: held(alliance, ECNU)["held"] >= source["count"], 240, "the catch-up", interval=0.2)
            catchup_seconds = time.perf_counter() - t0
            entry = held(alliance, ECNU)
            caught = source["count"] - before
            catchup_rate = caught / catchup_seconds
            report = entry.get("last_catchup") or {}
            log("raw insert rate of the same server")
            raw = raw_insert_rate(alliance.mongo_port, rng, BULK // 2, one_by_one=BULK // 2)
            log("search latency")
            searches = search_latencies(alliance)
            total = requests.get(alliance.url(SDU, "catalog") + "/courses", params={"facets": "false"},
                                 timeout=30).json()["total"]
        finally:
            log("stopping")
            alliance.stop()

    RESULTS.clear()
    RESULTS.update({"sync_idle": idle, "sync_loaded": loaded, "load_rate": load_rate, "catchup_rate": catchup_rate,
                    "raw": raw, "searches": searches, "total": total})
    sync = (
        "From the 201 of a POST /courses at ecnu-cto to the course being found by `GET /courses?q=<code>` on "
        "sdu-sie's catalog (polled every 10 ms): outbox relay -> Kafka -> catalog worker -> MongoDB -> search. "
        f"{SAMPLES} writes each, one at a time, 50 ms apart.\n\n"
        "| condition | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|\n"
        f"| idle | {ms(idle, 50)} | {ms(idle, 90)} | {ms(idle, 99)} | {max(idle) * 1000:.0f} |\n"
        f"| under {load_rate:.1f} background writes/s at ecnu-cto | {ms(loaded, 50)} | {ms(loaded, 90)} | "
        f"{ms(loaded, 99)} | {max(loaded) * 1000:.0f} |\n"
    )
    ratio = catchup_rate / raw["batched"]
    catch = (
        f"{BULK:,} alliance courses published by ecnu-cto; the broker restarted (all records and offsets gone); "
        f"sdu-sie's catalog worker started holding {before:,} of them. It found its partitions without "
        "committed offsets and caught up from ecnu-cto's `GET /changes` feed (pages of 1,000, each applied "
        "with one unordered bulk of version-conditional replaces).\n\n"
        "| measure | value |\n|---|---:|\n"
        f"| courses caught up | {caught:,} |\n"
        f"| worker start -> all held (process start, group join, feed, apply) | {catchup_seconds:.1f} s |\n"
        f"| catch-up rate, end to end | {catchup_rate:,.0f} entities/s |\n"
        f"| of which the catch-up itself (feed read + apply, its own report) | {report.get('applied', 0):,} applied "
        f"in {report.get('seconds', 0)} s = {report.get('applied', 0) / max(report.get('seconds') or 1, 1e-9):,.0f}"
        " entities/s |\n"
        f"| raw insert rate, same server, insert_many of 1,000 | {raw['batched']:,.0f} docs/s |\n"
        f"| raw insert rate, same server, insert_one | {raw['one_by_one']:,.0f} docs/s |\n"
        f"| ratio catch-up (end to end) / raw batched insert | {ratio:.2f} |\n"
        f"| ratio catch-up (end to end) / raw insert_one | {catchup_rate / raw['one_by_one']:.2f} |\n\n"
        "The catch-up shares the one-core embedded MongoDB server with the source's feed queries "
        "(ecnu-cto's courses web reads its change log on the same server), and each entry is validated "
        "(marshmallow) before it is written, so it cannot reach the raw batched insert rate.\n"
    )
    rows = "".join(f"| {name} | {ms(t, 50)} | {ms(t, 90)} | {ms(t, 99)} |\n" for name, t in searches.items())
    search = (
        f"sdu-sie's catalog API (gunicorn -w 2) holding {total:,} visible courses; {SEARCH_SAMPLES} sequential "
        "requests per case, 20 results a page; facets count 8 filters (disjunctive: each facet under the other "
        "filters), and `total` is counted on every request. The catalog's search index (tantivy beside the "
        "read model, ADR 0008) answers the query, the facets and the page.\n\n"
        f"| query | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|\n{rows}"
    )
    return {"Catalog sync latency": sync, "Catalog catch-up after a broker reset": catch,
            "Catalog search latency": search}


if __name__ == "__main__":
    for title, body in main().items():
        print(f"## {title}\n\n{body}")
