"""How the catalog's numbers grow from 1,000 to 100,000 courses.

Starts nx-27017 and the Tansu broker on free loopback ports (devstack.servers) and ecnu-cto's courses
web (gunicorn -w 2, the source of `GET /changes` and `GET /digest`). Then, for 1,000, 10,000 and
100,000 courses held by ecnu-cto (filled up cumulatively):

1. Fill: the missing courses are written into ecnu-cto's courses database as the relay leaves them
   after publishing: `new_course` documents, numbered into the change log by the relay's own
   `describe` + `ChangeLog.allocate` / `append_batch` (shared/changelog.py), in batches of 1,000. Nothing
   is sent to Kafka, so a catalog can only learn them from the change feed.
2. Raw insert rate of the catalog's server in this run: as many similar documents as the size (at most
   RAW_MAX), insert_many of 1,000, into an empty scratch collection (what a fresh catalog has to write).
   With SERVER_PER_SCHOOL (the default) each school has its own nx-27017, as docker-compose.yml deploys
   them: ecnu-cto's answers the feed, sdu-sie's takes the catalog's writes.
3. Catch-up: a fresh sdu-sie catalog (its own database, web + worker) starts; the rate is entities per
   second until it holds them all (end to end from the worker's start), and the catch-up's own report
   (feed read + apply). Then once more into another fresh catalog from the same feed recorded (`RecordedFeed`:
   its pages served from this process's memory), so that the source's server and web do not share the two
   cores with the catalog, as a partner's feed served from the partner's own machines would not. The catalog
   worker's peak memory (VmHWM) is read after each.
4. Search latency of that catalog's API (the tantivy index beside its read model), sequential requests,
   each followed by one to the same catalog's `GET /healthz`, as a ratio to those; then the throughput of
   20 concurrent clients against search with facets and against `/healthz`.
5. The source's feed: `GET /changes` pages of 1,000 (from the start, the middle and the end of the
   log) and `GET /digest` (kept by the relay: one document plus the entries after it).

Run alone: python -m bench.run growth
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from pymongo import MongoClient

from bench._common import ECNU, SDU, Alliance, course_doc, memory_mib, ms, percentile, raw_insert_rate, wait
from devstack import servers
from services.courses.model import new_course
from services.courses.worker import SPEC
from shared.clock import now_iso
from shared.config import Settings
from shared.changelog import ChangeLog
from shared.outbox import describe

DOC = "docs/benchmarks.md"
SIZES = (1_000, 10_000, 100_000)
# sequential requests per search case, per size (each followed by one to /healthz)
SEARCH_SAMPLES = {1_000: 100, 10_000: 100, 100_000: 100}
FEED_SAMPLES = {1_000: 10, 10_000: 10, 100_000: 10}
CLIENTS = 20
THROUGHPUT_SECONDS = 5.0
# the raw insert rate is measured on at most this many documents (it is flat from 1k to 100k: about 10k/s)
RAW_MAX = 20_000
BATCH = 1000
# each school on a database server of its own, as docker-compose.yml deploys them: the source's feed queries
# run on ecnu-cto's server, the catalog's writes (and the raw insert it is compared with) on sdu-sie's
SERVER_PER_SCHOOL = True
SEARCHES = {
    "one word, facets": {"q": "innovation"},
    "two words, facets": {"q": "supply strategy"},
    "a typo, facets": {"q": "inovation"},
    "Chinese word, facets": {"q": "创新"},
    "no words, two filters, facets": {"programme": "MEM", "language": "zh"},
    "one word, sorted by credits, no facets": {"q": "innovation", "sort": "-credits", "facets": "false"},
}
THROUGHPUT_CASE = "one word, facets"
# the raw numbers of the last main(), for bench/run.py's plots (seconds, per size)
RESULTS: dict = {}

STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[growth +{time.monotonic() - STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


def fill(alliance: Alliance, start: int, end: int, rng: random.Random) -> float:
    """Courses start..end-1 into ecnu-cto's courses database and its change log; returns seconds."""
    settings = Settings(school=ECNU, service="courses", schools=alliance.schools)
    client = MongoClient(servers.mongo_uri(alliance.mongo_ports[ECNU]), tz_aware=True)
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
        # what the relay does after each batch: the digest partners compare stays current
        changelog.fold_digest()
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


def side_by_side(session: requests.Session, url: str, params: dict, floor: str, samples: int) -> tuple[list, list]:
    """`samples` requests to `url` with `params`, each followed by one to `floor` (`/healthz`): seconds of each,
    taken in the same seconds of the machine, so that a ratio of the two does not depend on when the load moved."""
    times, floors = [], []
    for _ in range(samples):
        times += timed(session, url, params, {}, 1)
        floors += timed(session, floor, {}, {}, 1)
    return times, floors


def throughput(url: str, params: dict, clients: int, seconds: float) -> float:
    """Requests per second that `clients` concurrent keep-alive clients get from `url` in `seconds`."""
    stop_at = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[str] = []

    def client(n: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            response = session.get(url, params=params, timeout=60)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
                return
            counts[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"GET {url} {params}: {errors[0]}")
    return sum(counts) / (time.monotonic() - started)


class RecordedFeed:
    """A school's course feed recorded once, page by page, and served from this process's memory.

    A catalog catching up from it reads the very pages the source served, while the source's server and web
    do no work on this machine: as when the partner's feed is served from the partner's own machines. Only
    the pages a catch-up from the start asks for are recorded (`since` of each, and the empty one after the
    last), and `GET /digest`; anything else is a 404.
    """

    def __init__(self, source: str, headers: dict):
        session = requests.Session()
        self.pages: dict[tuple, bytes] = {}
        since = 0
        for _ in range(10_000):
            response = session.get(source + "/changes", params={"since": since, "limit": 1000}, headers=headers,
                                   timeout=120)
            response.raise_for_status()
            self.pages[("/changes", since)] = response.content
            page = response.json()
            if since == page["last_seq"]:
                break
            since = page["last_seq"]
        self.pages[("/digest", None)] = session.get(source + "/digest", headers=headers, timeout=60).content
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                since = parse_qs(url.query).get("since", [None])[0]
                body = pages.get((url.path, int(since) if since is not None else None))
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b'{"title": "not recorded"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((servers.HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{servers.HOST}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alliance_config(self, alliance: Alliance, school: str, path: Path) -> Path:
        """A copy of the alliance's configuration in which `school`'s courses service is this recording."""
        raw = json.loads(alliance.alliance.read_text())
        for entry in raw["schools"]:
            if entry["id"] == school:
                entry["urls"] = {"courses": self.url}
        path.write_text(json.dumps(raw))
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def web_peak_memory_mb(alliance: Alliance) -> float:
    """The largest peak resident memory (VmHWM) of the catalog web's gunicorn workers, in MiB."""
    master = alliance.procs[(SDU, "catalog", "web")].pid
    children = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    return max((memory_mib(pid)["VmHWM"] for pid in children), default=0.0)


def catch_up(alliance: Alliance, size: int, prefix: str, extra_env: dict | None = None) -> dict:
    """A fresh sdu-sie catalog (database prefix `prefix`) started and caught up with `size` courses: the time from
    its start until all are held and searchable, its own report and its worker's peak memory."""
    t0 = time.perf_counter()
    alliance.start_service(SDU, "catalog", {"MONGODB_DATABASE_PREFIX": prefix, **(extra_env or {})})
    interval = 0.1 if size <= 10_000 else 0.5
    url = alliance.url(SDU, "catalog") + "/courses"

    def searchable() -> int:
        response = requests.get(url, params={"facets": "false", "limit": 1}, timeout=60)
        return response.json()["total"] if response.status_code == 200 else -1

    # caught up (the catalog's own sync state, read from its database: polling its /sync, which counts the
    # held entries, loaded the one server the catch-up writes to and timed out at 100,000), then searchable
    client = MongoClient(servers.mongo_uri(alliance.mongo_port))
    sync = client[Settings(school=SDU, service="catalog", mongodb_database_prefix=prefix).database_name]["sync"]

    def caught_up() -> dict | None:
        """The last catch-up's report once everything up to the source's last sequence (= size) is held."""
        state = sync.find_one({"_id": f"{ECNU}/courses"}) or {}
        return state.get("last_catchup") or {} if state.get("synced_seq", 0) >= size else None

    wait(lambda: caught_up() is not None, 900, f"the catch-up of {size}", interval=interval)
    wait(lambda: searchable() >= size, 60, f"the search index of {size}", interval=0.05)
    seconds = time.perf_counter() - t0
    load = os.getloadavg()[0]
    report = caught_up() or {}
    client.close()
    return {"seconds": seconds, "rate": size / seconds, "own_applied": report.get("applied", 0),
            "own_seconds": report.get("seconds") or 0.0, "load": load,
            "worker_peak_mb": memory_mib(alliance.procs[(SDU, "catalog", "worker")].pid)["VmHWM"]}


def drop_catalog(alliance: Alliance, prefix: str) -> None:
    """Stop a throw-away catalog (killed: a clean stop waits seconds for the consumer to leave its group) and
    drop its database."""
    alliance.stop_service(SDU, "catalog", kill=True)
    client = MongoClient(servers.mongo_uri(alliance.mongo_port))
    client.drop_database(Settings(school=SDU, service="catalog", mongodb_database_prefix=prefix).database_name)
    client.close()


def measure(alliance: Alliance, size: int) -> dict:
    """Catch-up into a fresh catalog, its search latency and the source's feed latency, at `size` courses;
    then a catch-up from the recorded feed."""
    prefix = f"g{size}_"
    log(f"{size:,}: a fresh {SDU} catalog (database prefix {prefix}) catching up")
    live = catch_up(alliance, size, prefix)
    load = {"catchup": live["load"]}
    out = {"catchup_seconds": live["seconds"], "catchup_rate": live["rate"], "own_applied": live["own_applied"],
           "own_seconds": live["own_seconds"], "worker_peak_mb": live["worker_peak_mb"]}
    url = alliance.url(SDU, "catalog") + "/courses"
    session = requests.Session()
    total = session.get(url, params={"facets": "false"}, timeout=120).json()["total"]
    if total != size:
        raise RuntimeError(f"the catalog shows {total} courses, expected {size}")
    log(f"{size:,}: search latency, {SEARCH_SAMPLES[size]} requests per case, and /healthz")
    healthz = alliance.url(SDU, "catalog") + "/healthz"
    timed(session, healthz, {}, {}, 20)
    # each search request followed by a /healthz request: its ratio is to the /healthz of the same seconds
    out["search"], out["healthz_beside"] = {}, {}
    for name, params in SEARCHES.items():
        out["search"][name], out["healthz_beside"][name] = side_by_side(session, url, params, healthz,
                                                                         SEARCH_SAMPLES[size])
    out["healthz"] = [t for times in out["healthz_beside"].values() for t in times]
    load["search"] = os.getloadavg()[0]
    log(f"{size:,}: throughput of {CLIENTS} clients, {THROUGHPUT_SECONDS:.0f} s each")
    out["throughput_healthz"] = throughput(healthz, {}, CLIENTS, THROUGHPUT_SECONDS)
    out["throughput_search"] = throughput(url, SEARCHES[THROUGHPUT_CASE], CLIENTS, THROUGHPUT_SECONDS)
    load["throughput"] = os.getloadavg()[0]
    out["web_peak_mb"] = web_peak_memory_mb(alliance)
    drop_catalog(alliance, prefix)

    log(f"{size:,}: recording {ECNU}'s feed; a fresh {SDU} catalog catching up from the recording")
    recorded = RecordedFeed(alliance.url(ECNU, "courses"), alliance.token(SDU, "partner"))
    try:
        config = recorded.alliance_config(alliance, ECNU, alliance.root / f"alliance-recorded-{size}.json")
        replay = catch_up(alliance, size, f"r{size}_", {"ALLIANCE_CONFIG": str(config)})
    finally:
        recorded.close()
    drop_catalog(alliance, f"r{size}_")
    out.update({f"recorded_{k}": v for k, v in replay.items()})

    log(f"{size:,}: the source's GET /changes and GET /digest, {FEED_SAMPLES[size]} each")
    headers = alliance.token(SDU, "partner")
    source = alliance.url(ECNU, "courses")
    out["changes"] = timed(session, source + "/changes", {"since": size // 2, "limit": 1000}, headers,
                           FEED_SAMPLES[size])
    out["changes_first"] = timed(session, source + "/changes", {"since": 0, "limit": 1000}, headers,
                                 FEED_SAMPLES[size])
    out["changes_last"] = timed(session, source + "/changes", {"since": max(0, size - 1000), "limit": 1000},
                                headers, FEED_SAMPLES[size])
    out["digest"] = timed(session, source + "/digest", {}, headers, FEED_SAMPLES[size])
    load["feed"] = os.getloadavg()[0]
    out["load"] = load
    return out


def main() -> dict[str, str]:
    global STARTED
    STARTED = time.monotonic()  # log times from the start of the run, not of the import
    rng = random.Random(27)
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        alliance = Alliance(Path(tmp), services=(), server_per_school=SERVER_PER_SCHOOL)
        log(f"starting nx-27017 (one per school: {SERVER_PER_SCHOOL}), the broker and {ECNU}'s courses web")
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
                log(f"{size:,}: raw numbers {json.dumps(results[size])}")
        finally:
            log("stopping")
            alliance.stop()
    RESULTS.clear()
    RESULTS.update(results)
    return report(results)


def report(results: dict[int, dict]) -> dict[str, str]:
    sizes = sorted(results)
    head = "| courses | " + " | ".join(f"{s:,}" for s in sizes) + " |\n|---|" + "---:|" * len(sizes) + "\n"

    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(cell(results[s]) for s in sizes) + " |\n"

    catch = (
        head
        + row("source filled (insert_many + change log append_batch + digest fold, courses added per s)",
              lambda r: f"{r['fill_rate']:,.0f}/s")
        + row("catch-up, worker start -> all held and searchable", lambda r: f"{r['catchup_seconds']:.1f} s")
        + row("**catch-up rate, end to end (read model and search index)**", lambda r: f"**{r['catchup_rate']:,.0f}/s**")
        + row("catch-up's own report (feed read + apply + index)",
              lambda r: f"{r['own_applied'] / max(r['own_seconds'], 1e-9):,.0f}/s")
        + row("raw insert rate, the catalog's server, insert_many of 1,000 into an empty collection (documents)",
              lambda r: f"{r['raw_rate']:,.0f}/s ({r['raw_docs']:,})")
        + row("**ratio catch-up (end to end) / raw**", lambda r: f"**{r['catchup_rate'] / r['raw_rate']:.2f}**")
        + row("ratio catch-up's own report / raw",
              lambda r: f"{r['own_applied'] / max(r['own_seconds'], 1e-9) / r['raw_rate']:.2f}")
        + row("load average (1 min, 2 CPUs) when the catch-up ended", lambda r: f"{r['load']['catchup']:.1f}")
        + row("from the recorded feed (the source idle): worker start -> all held and searchable",
              lambda r: f"{r['recorded_seconds']:.1f} s ({r['recorded_rate']:,.0f}/s)")
        + row("**ratio catch-up from the recorded feed (end to end) / raw**",
              lambda r: f"**{r['recorded_rate'] / r['raw_rate']:.2f}**")
        + row("load average when the catch-up from the recorded feed ended", lambda r: f"{r['recorded_load']:.1f}")
        + row("catalog worker's peak memory (VmHWM): from the source / from the recorded feed",
              lambda r: f"{r['worker_peak_mb']:.0f} / {r['recorded_worker_peak_mb']:.0f} MiB")
    )
    catch_text = (
        ("Each school has a database server of its own, as docker-compose.yml deploys them (`mongodb-<school>`): "
           "ecnu-cto's nx-27017 answers the feed's queries, sdu-sie's takes the catalog's writes; both on the "
           "same two cores. " if SERVER_PER_SCHOOL else "Both schools share one nx-27017 server, as `make run` "
           "does: it answers the feed's queries and takes the catalog's writes. ")
        + "A fresh sdu-sie catalog (its own database and search index; web gunicorn -w 2 and worker) catching up "
        "from ecnu-cto's `GET /changes` (pages of 1,000) at each size; nothing was on Kafka, so every course "
        "came from the feed. The catch-up overlaps its steps (ADR 0008): the next page is read, validated "
        "(a strict pydantic check, marshmallow for what it leaves) and turned into index documents in one "
        "thread while the server writes this page (one unordered insert_many; only what it refuses as held "
        "is read back) from another and the applying thread adds the earlier pages' documents to the search "
        "index, which commits once, at the end (a catch-up longer than a minute commits every 60 s). The end "
        "is read from the catalog's own sync "
        "state in its database (`synced_seq` at the source's last sequence), then the catalog's search must "
        "show them all. The source was filled as the relay leaves its entities after publishing: "
        "`new_course` documents numbered into the change log by `describe` and `ChangeLog.append_batch` (the "
        "relay's own code), 1,000 at a time, the digest folded after each batch, without Kafka. The raw rate "
        "is similar documents written by insert_many of 1,000 into an empty scratch collection of the "
        f"catalog's nx-27017 server in this run: as many as the size, at most {RAW_MAX:,}. End to end includes the "
        "start of the catalog's web and worker processes (a few seconds on a loaded machine), which weighs "
        "most at 1,000; the catch-up's own report is its feed reads, validation, writes and index. "
        "Then a second fresh catalog catches up from the same feed recorded: every page the first one read, "
        "fetched from the source once and served from the benchmark's memory (`RecordedFeed`), so that the "
        "source's server and gunicorn, which a partner runs on machines of its own, do not take the two cores "
        "from the catalog while it catches up. The worker's peak memory is its VmHWM after the catch-up "
        "(docker-compose.yml gives the catalog worker 512 MiB; tests/e2e/test_compose.py holds its limits a quarter above these peaks).\n\n" + catch
    )

    def ratio(r, name, p):
        return percentile(r["search"][name], p) / percentile(r["healthz_beside"][name], p)

    srows = row("`GET /healthz` of the same catalog (every request beside the searches): p50 / p99 ms",
                lambda r: f"{percentile(r['healthz'], 50) * 1000:.1f} / {percentile(r['healthz'], 99) * 1000:.1f}")
    for name in SEARCHES:
        srows += row(f"{name}: p50 / p99 ms (x healthz)",
                     lambda r, n=name: f"{ms(r['search'][n], 50)} / {ms(r['search'][n], 99)} "
                                       f"({ratio(r, n, 50):.1f}x / {ratio(r, n, 99):.1f}x)")
    srows += row(f"throughput, {CLIENTS} clients: `/healthz` requests/s", lambda r: f"{r['throughput_healthz']:,.0f}")
    srows += row(f"throughput, {CLIENTS} clients: {THROUGHPUT_CASE} requests/s (of healthz's)",
                 lambda r: f"{r['throughput_search']:,.0f} ({r['throughput_search'] / r['throughput_healthz']:.2f})")
    srows += row("catalog web's peak memory, the largest of its two gunicorn workers (VmHWM)",
                 lambda r: f"{r['web_peak_mb']:.0f} MiB")
    srows += row("load average (1 min, 2 CPUs) after the latencies / after the throughput",
                 lambda r: f"{r['load']['search']:.1f} / {r['load']['throughput']:.1f}")
    search_text = (
        "The same fresh catalog's `GET /courses` (20 a page, `total` counted on every request), answered by its "
        f"search index, after the catch-up: {SEARCH_SAMPLES[sizes[0]]} sequential requests per case (keep-alive, "
        "one client), each followed by a request to the same catalog's `GET /healthz` (no database, the "
        "smallest answer the web process gives: the floor of this server, client and machine); a case's ratio "
        "is to the `/healthz` requests beside its own, taken in the same seconds. Facets are the "
        "eight of the API (school, programme, language, delivery, term, EQF level, ISCED-F, credits), "
        "disjunctive. Then "
        f"{CLIENTS} concurrent clients (threads of this benchmark's process, on the same two cores) for "
        f"{THROUGHPUT_SECONDS:.0f} s against each. Percentiles: nearest rank.\n\n" + head + srows
    )
    feed = (head
            + row("`GET /changes?limit=1000` from the start of the log: p50 / max ms",
                  lambda r: f"{ms(r['changes_first'], 50)} / {max(r['changes_first']) * 1000:.0f}")
            + row("`GET /changes?limit=1000` from the middle: p50 / max ms",
                  lambda r: f"{ms(r['changes'], 50)} / {max(r['changes']) * 1000:.0f}")
            + row("`GET /changes?limit=1000` the last page: p50 / max ms",
                  lambda r: f"{ms(r['changes_last'], 50)} / {max(r['changes_last']) * 1000:.0f}")
            + row("`GET /digest`: p50 / max ms",
                  lambda r: f"{ms(r['digest'], 50)} / {max(r['digest']) * 1000:.0f}")
            + row("load average (1 min, 2 CPUs) after these", lambda r: f"{r['load']['feed']:.1f}"))
    feed_text = (
        "The source's feed endpoints as a partner calls them (ecnu-cto's courses web, gunicorn -w 2), "
        f"{FEED_SAMPLES[sizes[0]]} sequential requests each. `GET /digest` reads the digest document the relay "
        "keeps (shared/changelog.py `fold_digest`) and the entries after it.\n\n" + feed
    )
    return {"Growth: catch-up from 1k to 100k courses": catch_text,
            "Growth: search latency and throughput from 1k to 100k courses": search_text,
            "Growth: change feed and digest from 1k to 100k courses": feed_text}


if __name__ == "__main__":
    for title, body in main().items():
        print(f"## {title}\n\n{body}")
