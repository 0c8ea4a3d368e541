"""What one catalog search costs at 100,000 courses: in one process, and over HTTP against gunicorn -w 2.

Builds the sdu-sie catalog's search index of N generated courses (bench/_common.py `course_doc`, the
same generator as bench/growth.py) with the index's own code: each course goes the way the catalog
applies it (the courses relay's `describe`, the catalog's `entry`, `SearchIndex._add`), then one
commit. The read model itself is not filled (search reads the index only), so this takes a minute,
not the growth benchmark's catch-up.

Then, per case of bench/growth.py's SEARCHES (and one word without facets), REQUESTS requests:

- in process: Flask's test client on the catalog app (`create_app`), beside `/healthz`;
- with --http: the catalog web under gunicorn -w 2 (shared/gunicorn_conf.py, as growth runs it) on the
  prepared index, one keep-alive client, beside the same web's `/healthz`, as growth measures it;
- with --profile: cProfile of one case in process (the top functions by own time).

Run: python -m bench.search_profile [--size 100000] [--requests 200] [--http] [--profile "one word, facets"]
Prints p50 / p99 ms per case and the load average; writes nothing to docs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import random
import sys
import tempfile
import time
from pathlib import Path

import requests
from pymongo import MongoClient

from bench._common import ECNU, SDU, Alliance, course_doc, percentile
from bench.growth import SEARCHES
from devstack import servers
from services.catalog.model import Change, entry
from services.catalog.search_index import SearchIndex
from services.courses.model import new_course
from services.courses.worker import SPEC
from shared.clock import now_iso
from shared.config import Settings
from shared.outbox import describe

# a profiling tool, run alone (bench/run.py leaves it out of `make bench`)
TOOL = True

CASES = {**SEARCHES, "one word, no facets": {"q": "innovation", "facets": "false"}}


def log(message: str) -> None:
    print(f"[search-profile] {message}", file=sys.stderr, flush=True)


def build_index(index_dir: Path, db_name: str, size: int, seed: int = 27, commit_every: int = 0) -> float:
    """The search index of `size` generated courses in `index_dir/db_name`; seconds taken.

    `commit_every`: commit after each that many courses (a catch-up commits about once a second), else once."""
    rng = random.Random(seed)
    now = now_iso()
    started = time.perf_counter()
    index = SearchIndex.at(index_dir, db_name)
    index._create()
    writer = index._writable()
    for i in range(size):
        doc = new_course(course_doc(i, rng), ECNU, now)
        doc["public_visible"] = True
        type_, _, body = describe(SPEC, doc)
        index._add(writer, entry(Change("course", doc["_id"], ECNU, 1, i + 1, type_, body), now))
        if commit_every and (i + 1) % commit_every == 0:
            index._pending = i + 1
            index._commit()
    index._pending = size
    index._commit()
    index.close()
    log(f"{_segments(index_dir / db_name)} segments")
    return time.perf_counter() - started


def _segments(folder: Path) -> int:
    import tantivy

    from services.catalog.search_index import SCHEMA
    return tantivy.Index(SCHEMA, str(folder), reuse=True).searcher().num_segments


def timed(get, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        status = get()
        times.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"answered {status}")
    return times


def row(name: str, times: list[float], floor: list[float] | None = None) -> str:
    p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
    ratio = ""
    if floor:
        ratio = f"  ({p50 / (percentile(floor, 50) * 1000):.1f}x / {p99 / (percentile(floor, 99) * 1000):.1f}x)"
    return f"{name:42s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{ratio}"


def in_process(settings: Settings, mongo_uri: str, samples: int, profile: str | None) -> None:
    from services.catalog.app import create_app

    app = create_app(settings, client=MongoClient(mongo_uri))
    client = app.test_client()
    from services.catalog import text

    text.warm_up()
    for params in CASES.values():  # warm-up: jieba, the index's caches
        for _ in range(5):
            client.get("/courses", query_string=params)
    healthz = timed(lambda: client.get("/healthz").status_code, samples)
    log(f"in process, {samples} requests per case, load {os.getloadavg()[0]:.1f}")
    print(row("/healthz (in process)", healthz))
    for name, params in CASES.items():
        print(row(name, timed(lambda: client.get("/courses", query_string=params).status_code, samples)))
    log(f"load after: {os.getloadavg()[0]:.1f}")
    log("where one request's time goes (p50 ms, in process): the index's search (ranking, count, facets, cards),"
        " the API's search (+ highlights), its answer (+ the view and JSON), the whole request (+ Flask, webargs)")
    from flask import jsonify

    from services.catalog.api import search, search_view
    from services.catalog.schemas import SearchQuerySchema

    index = SearchIndex.at(settings.search_index_dir, settings.database_name)
    db = app.extensions["db"]
    for name, params in CASES.items():
        with app.test_request_context("/courses", query_string=params):
            query = SearchQuerySchema().load(params)
            filters = {k: v for k, v in query.items() if k not in ("sort", "limit", "cursor", "facets")}
            sort = query.get("sort") or ("relevance" if query.get("q") else "code")
            steps = [timed(lambda: index.search(filters, sort, 20, None, query.get("facets", True)) and 200, samples),
                     timed(lambda: search(db, settings, query) and 200, samples),
                     timed(lambda: jsonify(search_view(search(db, settings, query))).status_code, samples)]
        steps.append(timed(lambda: client.get("/courses", query_string=params).status_code, samples))
        print(f"{name:42s} " + " | ".join(f"{percentile(t, 50) * 1000:5.2f}" for t in steps))
    if profile:
        params = CASES[profile]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(samples):
            client.get("/courses", query_string=params)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumtime").print_stats(40)


def served(session: requests.Session, url: str) -> tuple[float, int]:
    """Seconds and requests the web's workers counted for GET /courses (its latency histogram's sum and count)."""
    seconds, count = 0.0, 0
    for line in session.get(url + "/metrics", timeout=60).text.splitlines():
        if 'route="/courses"' in line and 'method="GET"' in line:
            if line.startswith("http_request_duration_seconds_sum"):
                seconds += float(line.rsplit(" ", 1)[1])
            elif line.startswith("http_request_duration_seconds_count"):
                count += int(float(line.rsplit(" ", 1)[1]))
    return seconds, count


def over_http(alliance: Alliance, samples: int) -> None:
    alliance.start_service(SDU, "catalog", worker=False)
    url = alliance.url(SDU, "catalog")
    session = requests.Session()
    for params in CASES.values():
        for _ in range(10):
            session.get(url + "/courses", params=params, timeout=60)
    healthz_url = url + "/healthz"
    timed(lambda: session.get(healthz_url, timeout=60).status_code, 20)
    healthz = timed(lambda: session.get(healthz_url, timeout=60).status_code, max(300, samples))
    log(f"over HTTP (gunicorn -w 2), {samples} requests per case, load {os.getloadavg()[0]:.1f}")
    print(row("/healthz (HTTP)", healthz))
    for name, params in CASES.items():
        before = served(session, url)
        times = timed(lambda: session.get(url + "/courses", params=params, timeout=60).status_code, samples)
        after = served(session, url)
        inside = (after[0] - before[0]) / max(after[1] - before[1], 1) * 1000
        print(row(name, times, healthz) + f"  (mean {inside:.2f} ms inside the app)")
    log(f"load after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--http", action="store_true", help="also over HTTP against gunicorn -w 2")
    parser.add_argument("--profile", choices=sorted(CASES), help="cProfile this case in process")
    parser.add_argument("--commit-every", type=int, default=0,
                        help="commit after each that many courses, as a catch-up does (default: once)")
    parser.add_argument("--keep", type=Path, help="build the index in this folder once and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        alliance = Alliance(Path(tmp), services=())
        alliance.start()
        try:
            settings = Settings(school=SDU, service="catalog", schools=alliance.schools,
                                mongodb_uri=servers.mongo_uri(alliance.mongo_port),
                                search_index_dir=Path(tmp) / "search", log_level="WARNING")
            folder = settings.search_index_dir / settings.database_name
            kept = args.keep / f"{args.size}" if args.keep else None
            if kept is not None and SearchIndex.at(kept.parent, kept.name).ready():
                log(f"reusing the index in {kept}")
            else:
                log(f"building the index of {args.size:,} courses (load {os.getloadavg()[0]:.1f})")
                seconds = build_index(kept.parent if kept else settings.search_index_dir,
                                      kept.name if kept else settings.database_name, args.size,
                                      commit_every=args.commit_every)
                log(f"built in {seconds:.1f} s")
            if kept is not None:
                folder.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(kept, folder)
            in_process(settings, servers.mongo_uri(alliance.mongo_port), args.requests, args.profile)
            if args.http:
                over_http(alliance, args.requests)
        finally:
            alliance.stop()


if __name__ == "__main__":
    main()
