"""Where a catalog catch-up's time goes, and code variants side by side on one source.

Not part of `bench.run`: a tool for changing the catch-up. One nx-27017 server and ecnu-cto's courses web
(gunicorn -w 2, the source of `GET /changes`) are started and filled with SIZE courses by bench/growth.py's
`fill` (as the relay leaves them). Then, for each variant (a folder holding a checkout of the repository:
the code to measure) in turn, a child process runs the catalog worker's own `Catchup.catch_up` of sdu-sie
into a fresh database and search index, with timers around its steps, and the raw insert rate of the
same server (insert_many of 1,000 into an empty scratch collection, as bench/growth.py) is taken right
before each catch-up. Variants alternate (A, B, A, B ...) so that a change of the machine's load hits both.

    python -m bench.catchup_profile SIZE [ROUNDS] [VARIANT_DIR ...]

Without a variant, the current checkout is measured. Prints one JSON line per catch-up and a summary.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

# a profiling tool, run alone (bench/run.py leaves it out of `make bench`)
TOOL = True

RAW_MAX = 20_000


def child(spec: dict) -> dict:
    """One instrumented catch-up (runs in the variant's own code)."""
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from bench._common import memory_mib
    from services.catalog import search_index, store, sync
    from services.catalog import text
    from shared.config import Settings

    sums: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    pages: list = []
    lock = threading.Lock()

    def timer(owner, name: str, label: str, per_page: bool = False):
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                with lock:
                    sums[label] += took
                    counts[label] += 1
                    if per_page:
                        pages.append((label, round(took, 4)))

        static = isinstance(getattr(owner, "__dict__", {}).get(name), staticmethod)
        setattr(owner, name, staticmethod(timed) if static else timed)

    timer(sync.FeedClient, "changes", "feed HTTP read (prefetch thread)", per_page=True)
    timer(sync, "entry", "validation: entry() (prefetch thread)")
    timer(sync.Catchup, "_page", "a page read + validated (prefetch thread)")
    timer(store.ReadModel, "_apply_many", "server writes a page (write thread)", per_page=True)
    timer(store.HeldDigests, "change", "kept digest $inc (write thread)")
    timer(search_index.SearchIndex, "prepare", "index documents built (prefetch thread)")
    timer(search_index.SearchIndex, "_commit", "tantivy commit (applying thread)", per_page=True)
    timer(search_index.SearchIndex, "follow", "follow: documents added (applying thread)")
    timer(search_index.SearchIndex, "take_generations", "generations taken (applying thread)")
    timer(store.ReadModel, "apply_many", "apply_many (applying thread, whole)")
    # the server's side: every insert_many and find of the write thread, by collection
    from pymongo.synchronous.cursor import Cursor

    def server_timer(owner, name: str, what):
        original = getattr(owner, name)

        def wrapped(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                label = f"mongo {name.strip('_')} {what(self)} ({threading.current_thread().name.split('_')[0]})"
                with lock:
                    sums[label] += time.perf_counter() - started
                    counts[label] += 1

        setattr(owner, name, wrapped)

    for name in ("insert_many", "bulk_write", "update_one", "find_one_and_update"):
        server_timer(Collection, name, lambda c: c.name)
    # a find's round trips (the first batch and every getMore)
    server_timer(Cursor, "_refresh", lambda c: "find " + c.collection.name)

    os.environ.update(spec["env"])
    settings = Settings.from_env(service="catalog")
    text.warm_up()
    client = MongoClient(settings.mongodb_uri)
    db = client[settings.database_name]
    model = store.ReadModel(db, settings.search_index_dir)
    model.ensure_indexes()
    model.prime_digests(settings.school_ids)
    model.search.follow(db)
    catchup = sync.Catchup(settings, db, sync.FeedClient(settings))
    sums.clear()
    counts.clear()
    pages.clear()
    started = time.perf_counter()
    report = catchup.catch_up("ecnu-cto", "courses", reason="profile")
    seconds = time.perf_counter() - started
    held = db["courses"].count_documents({}) if spec["size"] <= 20_000 else db.command("count", "courses")["n"]
    searchable = model.search.searcher().num_docs
    size = spec["size"]
    memory = {k: round(v) for k, v in memory_mib().items()}
    out = {"seconds": round(seconds, 3), "rate": round(size / seconds), "applied": report["applied"],
           "held": held, "searchable": searchable, "memory_mib": memory,
           "steps": {k: [round(v, 3), counts[k]] for k, v in sorted(sums.items(), key=lambda kv: -kv[1])}}
    # per page, in order: do the writes, reads and commits grow with the catalog?
    tenth = max(1, size // 1000 // 10)
    series = defaultdict(list)
    for label, took in pages:
        series[label].append(took)
    out["per_page"] = {label: [round(sum(v[i:i + tenth]) / len(v[i:i + tenth]), 3) for i in range(0, len(v), tenth)]
                       for label, v in series.items()}
    client.drop_database(settings.database_name)
    client.close()
    return out


def main(size: int, rounds: int, variants: list[str]) -> None:
    from bench._common import ECNU, Alliance, raw_insert_rate
    from bench.growth import fill

    rng = random.Random(27)
    with tempfile.TemporaryDirectory(prefix="bench-catchup-") as tmp:
        alliance = Alliance(Path(tmp), services=())
        alliance.start()
        try:
            alliance.start_service(ECNU, "courses", worker=False)
            started = time.perf_counter()
            fill(alliance, 0, size, rng)
            print(f"filled {size:,} in {time.perf_counter() - started:.1f} s (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr, flush=True)
            results = defaultdict(list)
            n = 0
            for r in range(rounds):
                for variant in variants:
                    n += 1
                    raw = raw_insert_rate(alliance.mongo_port, rng, min(size, RAW_MAX))["batched"]
                    prefix = f"p{n}_"
                    env = {k: v for k, v in alliance.extra_env.items()}
                    from devstack import servers
                    env = servers.service_env("sdu-sie", "catalog", alliance.mongo_port, alliance.kafka_port,
                                              Path(tmp), alliance.alliance, alliance.keys,
                                              {**alliance.extra_env, "MONGODB_DATABASE_PREFIX": prefix})
                    spec = {"env": env, "size": size}
                    load = os.getloadavg()[0]
                    proc = subprocess.run([sys.executable, "-m", "bench.catchup_profile", "--child", json.dumps(spec)],
                                          cwd=variant, env={**os.environ, "PYTHONPATH": variant},
                                          capture_output=True, text=True)
                    if proc.returncode:
                        print(proc.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"{variant}: the catch-up failed")
                    out = json.loads(proc.stdout.strip().splitlines()[-1])
                    out.update(variant=variant, raw=round(raw), ratio=round(out["rate"] / raw, 3),
                               load_before=round(load, 1), load_after=round(os.getloadavg()[0], 1))
                    results[variant].append(out)
                    print(json.dumps(out), flush=True)
            for variant, runs in results.items():
                print(f"{variant}: rate {[r['rate'] for r in runs]} raw {[r['raw'] for r in runs]} "
                      f"ratio {[r['ratio'] for r in runs]}", flush=True)
        finally:
            alliance.stop()


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1,
             [str(Path(v).resolve()) for v in sys.argv[3:]] or [str(Path.cwd())])
