"""How the catalog's numbers grow from 1,000 to 100,000 courses.

Starts nx-27017 and the Tansu broker on free loopback ports (devstack.servers) and ecnu-cto's courses
web (gunicorn -w 2, the source of `GET /changes` and `GET /digest`). Then, for 1,000, 10,000 and
100,000 courses held by ecnu-cto (filled up cumulatively):

1. Fill: the missing courses are written into ecnu-cto's courses database as the relay leaves them
   after publishing: `new_course` documents, numbered into the change log by the relay's own
   `describe` + `ChangeLog.allocate` / `append_batch` (shared/changelog.py), in batches of 1,000. Nothing
   is sent to Kafka, so a catalog can only learn them from the change feed.
2. Raw insert rate of the same server in this run: as many similar documents as the size (at most
   RAW_MAX), insert_many of 1,000, into an empty scratch collection (what a fresh catalog has to write).
3. Catch-up: a fresh sdu-sie catalog (its own database, web + worker) starts; the rate is entities per
   second until it holds them all (end to end from the worker's start), and the catch-up's own report
   (feed read + apply).
4. Search latency of that catalog's API: one word with facets and the same word without facets;
   fewer samples at the larger sizes (the counts are in the table).
5. The source's feed: one `GET /changes` page of 1,000 (from the middle of the log) and one
   `GET /digest` (count + SHA-256 over every visible course), a few samples each.

Run alone: python -m bench.run growth
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import requests
from pymongo import MongoClient

from bench._common import ECNU, SDU, Alliance, course_doc, ms, percentile, raw_insert_rate, wait
from devstack import servers
from services.courses.model import new_course
from services.courses.worker import SPEC
from shared.clock import now_iso
from shared.config import Settings
from shared.changelog import ChangeLog
from shared.outbox import describe

DOC = "docs/benchmarks.md"
SIZES = (1_000, 10_000, 100_000)
# search requests per query case, per size: a request at 100k takes seconds on the embedded server
SEARCH_SAMPLES = {1_000: 20, 10_000: 8, 100_000: 3}
FEED_SAMPLES = {1_000: 10, 10_000: 5, 100_000: 2}
# the raw insert rate is measured on at most this many documents (it is flat from 1k to 100k: about 10k/s)
RAW_MAX = 20_000
BATCH = 1000
SEARCHES = {
    "one word, facets": {"q": "innovation"},
    "one word, no facets": {"q": "innovation", "facets": "false"},
}
# the raw numbers of the last main(), for bench/run.py's plots (seconds, per size)
RESULTS: dict = {}

STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[growth +{time.monotonic() - STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


def fill(alliance: Alliance, start: int, end: int, rng: random.Random) -> float:
    """Courses start..end-1 into ecnu-cto's courses database and its change log; returns seconds."""
    settings = Settings(school=ECNU, service="courses", schools=alliance.schools)
    client = MongoClient(servers.mongo_uri(alliance.mongo_port), tz_aware=True)
    db = client[settings.database_name]
    changelog = ChangeLog(db)
    started = time.perf_counter()
    for first in range(start, end, BATCH):
        now = now_iso()
        docs, entries = [], []
        for i in range(first, min(end, first + BATCH)):
            doc = new_course(course_doc(i, rng), ECNU, now)
            type_, visible, body = describe(SPEC, doc)
            doc["public_visible"] = visible  # as the relay marks it once published
            docs.append(doc)
            entries.append((doc["_id"], doc["version"], type_, visible, body))
        db[SPEC.collection].insert_many(docs, ordered=False)
        changelog.confirm(changelog.append_batch(changelog.allocate(len(entries)), entries, now))
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def timed(session: requests.Session, url: str, params: dict, headers: dict, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = session.get(url, params=params, headers=headers, timeout=120)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} {params} answered {response.status_code}: {response.text[:200]}")
    return times


def measure(alliance: Alliance, size: int) -> dict:
    """Catch-up into a fresh catalog, its search latency and the source's feed latency, at `size` courses."""
    prefix = f"g{size}_"
    log(f"{size:,}: a fresh {SDU} catalog (database prefix {prefix}) catching up")
    t0 = time.perf_counter()
    alliance.start_service(SDU, "catalog", {"MONGODB_DATABASE_PREFIX": prefix})
    interval = 0.1 if size <= 10_000 else 0.5
    wait(lambda: alliance.held(ECNU)["held"] >= size, 300, f"the catch-up of {size}", interval=interval)
    seconds = time.perf_counter() - t0
    report = alliance.held(ECNU).get("last_catchup") or {}
    out = {"catchup_seconds": seconds, "catchup_rate": size / seconds,
           "own_applied": report.get("applied", 0), "own_seconds": report.get("seconds") or 0.0}
    session = requests.Session()
    url = alliance.url(SDU, "catalog") + "/courses"
    total = session.get(url, params={"facets": "false"}, timeout=120).json()["total"]
    if total != size:
        raise RuntimeError(f"the catalog shows {total} courses, expected {size}")
    log(f"{size:,}: search latency, {SEARCH_SAMPLES[size]} requests per case")
    out["search"] = {name: timed(session, url, params, {}, SEARCH_SAMPLES[size]) for name, params in SEARCHES.items()}
    # a throw-away catalog: killed (a clean stop waits seconds for the consumer to leave its group)
    alliance.stop_service(SDU, "catalog", kill=True)
    client = MongoClient(servers.mongo_uri(alliance.mongo_port))
    client.drop_database(Settings(school=SDU, service="catalog", mongodb_database_prefix=prefix).database_name)
    client.close()

    log(f"{size:,}: the source's GET /changes and GET /digest, {FEED_SAMPLES[size]} each")
    headers = alliance.token(SDU, "partner")
    source = alliance.url(ECNU, "courses")
    out["changes"] = timed(session, source + "/changes", {"since": size // 2, "limit": 1000}, headers,
                           FEED_SAMPLES[size])
    out["digest"] = timed(session, source + "/digest", {}, headers, FEED_SAMPLES[size])
    return out


def main() -> dict[str, str]:
    global STARTED
    STARTED = time.monotonic()  # log times from the start of the run, not of the import
    rng = random.Random(27)
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        alliance = Alliance(Path(tmp), services=())
        log(f"starting nx-27017, the broker and {ECNU}'s courses web")
        alliance.start()
        try:
            alliance.start_service(ECNU, "courses", worker=False)
            held = 0
            for size in SIZES:
                log(f"{size:,}: filling {ECNU}'s courses from {held:,}")
                fill_seconds = fill(alliance, held, size, rng)
                added, held = size - held, size
                raw_docs = min(size, RAW_MAX)
                log(f"{size:,}: raw insert_many of {raw_docs:,} documents")
                raw = raw_insert_rate(alliance.mongo_port, rng, raw_docs)["batched"]
                results[size] = {"fill_rate": added / fill_seconds, "raw_rate": raw, "raw_docs": raw_docs,
                                 **measure(alliance, size)}
                log(f"{size:,}: catch-up {results[size]['catchup_rate']:,.0f}/s, raw {raw:,.0f}/s")
        finally:
            log("stopping")
            alliance.stop()
    RESULTS.clear()
    RESULTS.update(results)
    return report(results)


def slowdown(results: dict[int, dict]) -> str:
    """How much of the largest catch-up the source's feed pages account for, from this run's numbers."""
    size = max(results)
    r = results[size]
    pages = -(-size // 1000)
    page = percentile(r["changes"], 50)
    return (f"At {size:,} the catch-up reads {pages:,} feed pages of 1,000; at the p50 page latency measured "
            f"below ({page * 1000:.0f} ms, a page from the middle of the log) that is about {pages * page:.0f} s "
            f"of its {r['catchup_seconds']:.0f} s (the page latency grows with the change log, see below); the "
            "rest is validating and applying the entries into the catalog, not broken down here.\n")


def report(results: dict[int, dict]) -> dict[str, str]:
    sizes = sorted(results)
    head = "| courses | " + " | ".join(f"{s:,}" for s in sizes) + " |\n|---|" + "---:|" * len(sizes) + "\n"

    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(cell(results[s]) for s in sizes) + " |\n"

    catch = (
        head
        + row("source filled (insert_many + change log append_batch, courses added per s)",
              lambda r: f"{r['fill_rate']:,.0f}/s")
        + row("catch-up, worker start -> all held", lambda r: f"{r['catchup_seconds']:.1f} s")
        + row("**catch-up rate, end to end**", lambda r: f"**{r['catchup_rate']:,.0f}/s**")
        + row("catch-up's own report (feed read + apply)",
              lambda r: f"{r['own_applied'] / max(r['own_seconds'], 1e-9):,.0f}/s")
        + row("raw insert rate, same server, insert_many of 1,000 into an empty collection (documents)",
              lambda r: f"{r['raw_rate']:,.0f}/s ({r['raw_docs']:,})")
        + row("**ratio catch-up (end to end) / raw**", lambda r: f"**{r['catchup_rate'] / r['raw_rate']:.2f}**")
    )
    catch_text = (
        "A fresh sdu-sie catalog (its own database; web gunicorn -w 2 and worker) catching up from ecnu-cto's "
        "`GET /changes` (pages of 1,000) at each size; nothing was on Kafka, so every course came from the "
        "feed. The source was filled as the relay leaves its entities after publishing: `new_course` "
        "documents numbered into the change log by `describe` and `ChangeLog.append_batch` (the relay's own "
        "code), 1,000 at a time, without Kafka. The raw rate is similar documents written by insert_many "
        "of 1,000 into an empty scratch collection of the same nx-27017 server in this run: as many as the "
        f"size, at most {RAW_MAX:,} (at 100,000: the rate of the first {RAW_MAX:,} documents, to keep the "
        "run short). End to end includes the worker's process start "
        "(about a second), which weighs most at 1,000.\n\n" + catch + "\n" + slowdown(results)
    )
    srows = ""
    for name in SEARCHES:
        srows += row(f"{name}: p50 / p99 ms (requests)",
                     lambda r, n=name: f"{ms(r['search'][n], 50)} / {ms(r['search'][n], 99)} ({len(r['search'][n])})")
    feed = (row("`GET /changes?limit=1000` (a page from the middle): p50 / max ms",
                lambda r: f"{ms(r['changes'], 50)} / {max(r['changes']) * 1000:.0f}")
            + row("`GET /digest` (every visible course): p50 / max ms",
                  lambda r: f"{ms(r['digest'], 50)} / {max(r['digest']) * 1000:.0f}"))
    search_text = (
        "The same fresh catalog's `GET /courses` (20 a page, `total` counted on every request), sequential "
        "requests, after the catch-up; then the source's feed endpoints as a partner calls them. Few "
        f"samples at the larger sizes ({', '.join(f'{SEARCH_SAMPLES[s]} at {s:,}' for s in sizes)} per search "
        f"case; {', '.join(f'{FEED_SAMPLES[s]} at {s:,}' for s in sizes)} per feed endpoint): with 3 "
        "requests, p99 is the maximum of three and p50 the middle one (with 2, p50 is the lower and p99 the higher). Free text is a regex over every "
        "course's search text on the embedded server, and facets read every matching course, so both grow "
        "with the catalog; without facets a page stops after 20 matches but `total` still counts them "
        "all.\n\n"
        + head + srows + feed
    )
    return {"Growth: catch-up from 1k to 100k courses": catch_text,
            "Growth: search and feed latency from 1k to 100k courses": search_text}


if __name__ == "__main__":
    for title, body in main().items():
        print(f"## {title}\n\n{body}")
