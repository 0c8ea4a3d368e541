"""Helpers shared by the catalog benchmarks (bench/catalog_sync.py, bench/growth.py): not a benchmark itself.

Course documents of a plausible shape, percentiles, polling, the raw insert rate of a MongoDB server,
and `Alliance`: both schools' courses and catalog processes on one nx-27017 and one Tansu broker on
free loopback ports (devstack.servers).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import requests
from pymongo import MongoClient

from devstack import servers
from services.courses.model import new_course
from shared.auth import KeyRing, ensure_dev_keys, issue_token
from shared.clock import now_iso
from shared.config import load_alliance

ECNU, SDU = "ecnu-cto", "sdu-sie"
PROGRAMMES = ("MEM", "ExecEd", "MBA", "DBA")
WORDS = ("strategy", "innovation", "finance", "operations", "leadership", "data", "supply", "quality",
         "project", "platform", "venture", "marketing")
ZH = ("战略", "创新", "金融", "运营", "领导力", "数据", "供应链", "质量", "项目", "平台", "创业", "营销")
ALL_SERVICES = ((ECNU, "courses"), (ECNU, "catalog"), (SDU, "courses"), (SDU, "catalog"))


def course_doc(i: int, rng: random.Random) -> dict:
    """The validated input of course number `i` (code B-<i>), fields drawn from `rng`."""
    a, b = rng.sample(range(len(WORDS)), 2)
    return {
        "code": f"B-{i:05d}", "title": {"en": f"{WORDS[a].title()} and {WORDS[b].title()} {i}", "zh": f"{ZH[a]}与{ZH[b]} {i}"},
        "description": {"en": f"A course on {WORDS[a]} and {WORDS[b]} for engineering managers."},
        "programme": rng.choice(PROGRAMMES), "credits": rng.choice((1, 1.5, 2, 3, 4, 6)),
        "eqf_level": rng.choice((6, 7, 8)), "isced_f": rng.choice(("0413", "0613", "0788", "0542")),
        "languages": rng.choice((["en"], ["zh"], ["zh", "en"])),
        "delivery": rng.choice(("in_person", "online", "hybrid")), "hours": 32, "learning_outcomes": [],
        "prerequisites": [], "instructors": [], "visibility": "alliance", "status": "published",
        "offerings": [{"term": rng.choice(("2027-spring", "2027-autumn")), "starts_on": "2027-03-01",
                       "ends_on": "2027-06-30", "places": 40}],
    }


def percentile(values, p: float) -> float:
    """Nearest-rank on (n - 1): p0 is the minimum, p100 the maximum."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def ms(values, p) -> str:
    return f"{percentile(values, p) * 1000:.0f}"


def memory_mib(pid: int | str = "self") -> dict[str, float]:
    """A process's memory from /proc/<pid>/status, in MiB: VmHWM (peak resident), VmRSS, RssAnon, RssFile."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[name] = int(value.split()[0]) / 1024
    return out


def wait(predicate, timeout: float, what: str, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what}: not within {timeout}s")


def raw_insert_rate(mongo_port: int, rng: random.Random, count: int, one_by_one: int = 0,
                    batch: int = 1000) -> dict:
    """Documents per second into a scratch collection of the server: `one_by_one` insert_one calls, then
    `count` documents by insert_many of `batch`. The scratch database is dropped afterwards."""
    client = MongoClient(servers.mongo_uri(mongo_port))
    coll = client["bench_scratch"]["raw"]
    now = now_iso()
    out = {}
    if one_by_one:
        docs = [{**new_course(course_doc(i, rng), ECNU, now), "_id": str(uuid.uuid4())} for i in range(one_by_one)]
        started = time.perf_counter()
        for doc in docs:
            coll.insert_one(doc)
        out["one_by_one"] = one_by_one / (time.perf_counter() - started)
    docs = [{**new_course(course_doc(i, rng), ECNU, now), "_id": str(uuid.uuid4())} for i in range(count)]
    started = time.perf_counter()
    for i in range(0, count, batch):
        coll.insert_many(docs[i:i + batch], ordered=False)
    out["batched"] = count / (time.perf_counter() - started)
    client.drop_database("bench_scratch")
    client.close()
    return out


class Alliance:
    """Both schools' courses and catalog processes on one MongoDB (or one per school) and one broker.

    `services`: the (school, service) pairs to run (default all four); `extra_env`: more variables for
    every service process; `server_per_school`: each school's services on a MongoDB server of their own, as
    docker-compose.yml deploys them (`mongodb-<school>`), instead of one server for both (as `make run`).
    """

    def __init__(self, root: Path, services=ALL_SERVICES, extra_env: dict | None = None,
                 server_per_school: bool = False):
        self.root = root
        self.log_dir = root / "log"
        self.services = tuple(services)
        self.extra_env = {"LOG_LEVEL": "WARNING", "CATALOG_DIGEST_SECONDS": "30", **(extra_env or {})}
        self.mongo_port, self.kafka_port = servers.free_port(), servers.free_port()
        # the server of each school (sdu-sie's: mongo_port; ecnu-cto's its own one when server_per_school)
        self.mongo_ports = {SDU: self.mongo_port, ECNU: servers.free_port() if server_per_school else self.mongo_port}
        self.keys = root / "keys"
        ensure_dev_keys(self.keys, (ECNU, SDU))
        bases = {ECNU: servers.free_port(), SDU: servers.free_port()}
        while abs(bases[ECNU] - bases[SDU]) < 5 or any(servers.port_open(b + i) for b in bases.values()
                                                       for i in range(2)):
            bases = {ECNU: servers.free_port(), SDU: servers.free_port()}
        self.alliance = root / "alliance.json"
        self.alliance.write_text(json.dumps({"schools": [{"id": s, "name": {"en": s}, "port_base": b}
                                                         for s, b in bases.items()]}))
        self.schools = load_alliance(self.alliance, servers.HOST)
        self.procs: dict[tuple, servers.Proc] = {}
        self.servers: list[servers.Proc] = []
        self.envs: dict[tuple, dict] = {}
        self.broker = None

    def url(self, school: str, service: str) -> str:
        return next(s for s in self.schools if s.id == school).urls[service]

    def start(self) -> None:
        for port in sorted(set(self.mongo_ports.values())):
            if port == self.mongo_port:
                self.servers.append(servers.start_mongo(self.root / "mongo", port, self.log_dir))
            else:  # its own data, log and pid file
                own_log = self.log_dir / f"mongo-{port}"
                own_log.mkdir(parents=True, exist_ok=True)
                self.servers.append(servers.start_mongo(self.root / f"mongo-{port}", port, own_log))
        self.broker = servers.start_broker(self.kafka_port, self.log_dir)
        for school, service in self.services:
            self.start_service(school, service)

    def start_service(self, school: str, service: str, extra_env: dict | None = None, worker: bool = True) -> None:
        """The service's worker (unless worker=False) and web process; extra_env on top of the alliance's."""
        env = servers.service_env(school, service, self.mongo_ports[school], self.kafka_port, self.root, self.alliance,
                                  self.keys, {**self.extra_env, **(extra_env or {})})
        self.envs[(school, service)] = env
        if worker:
            self.start_worker(school, service)
        port = int(self.url(school, service).rsplit(":", 1)[1])
        self.procs[(school, service, "web")] = servers.start_web(school, service, port, env, self.log_dir, 2)

    def stop_service(self, school: str, service: str, kill: bool = False) -> None:
        """Stop its worker and web (SIGTERM; kill=True: SIGKILL, for a throw-away service)."""
        for part in ("worker", "web"):
            proc = self.procs.pop((school, service, part), None)
            if proc is not None:
                proc.kill() if kill else proc.stop(timeout=15)

    def start_worker(self, school: str, service: str) -> None:
        self.procs[(school, service, "worker")] = servers.start_worker(school, service, self.envs[(school, service)],
                                                                       self.log_dir)

    def stop_worker(self, school: str, service: str) -> None:
        self.procs.pop((school, service, "worker")).stop(timeout=15)

    def restart_broker(self) -> None:
        self.broker.kill()
        self.broker = servers.start_broker(self.kafka_port, self.log_dir)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop(timeout=15)
        if self.broker is not None:
            self.broker.kill()
        for proc in self.servers:
            proc.stop(timeout=15)

    def token(self, school: str, role: str) -> dict:
        return {"Authorization": "Bearer " + issue_token(KeyRing(self.keys, school).private_key(), school, role)}

    def held(self, school: str, catalog_school: str = SDU) -> dict:
        """`catalog_school`'s catalog's /sync entry for `school`'s courses (held, last_catchup ...)."""
        sources = requests.get(self.url(catalog_school, "catalog") + "/sync", timeout=10).json()["sources"]
        return next(s for s in sources if s["school"] == school and s["entity"] == "courses")
