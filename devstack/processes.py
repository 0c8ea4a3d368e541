"""Starting the services as real processes (gunicorn web, python workers) on free loopback ports.

Used by the end-to-end and browser tests (tests/processes.py re-exports the first part) and by
bench/pages.py: `service_processes` for one service of one school, `start_school` for one school's
courses, faculty, visits and catalog with its dev identity provider (the front door's stack).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack import servers
from devstack.idp import idp_env, issuer, start_idp
from shared.auth import KeyRing, issue_token


def write_alliance(path: Path, port_bases: dict[str, int]) -> Path:
    """An alliance configuration whose schools answer on these port bases."""
    config = {"schools": [{"id": school, "name": {"en": school}, "port_base": base}
                          for school, base in port_bases.items()]}
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def free_port_base(span: int = 4) -> int:
    """A port base whose next `span` ports were free a moment ago (a school's catalog, courses, faculty, visits)."""
    return servers.free_ports(span)


class ServiceProcesses:
    """One school's service: its web and worker processes, restartable."""

    def __init__(self, school: str, service: str, env: dict, log_dir: Path, port: int):
        self.school, self.service, self.env, self.log_dir, self.port = school, service, env, log_dir, port
        self.web = None
        self.worker = None

    @property
    def url(self) -> str:
        return f"http://{servers.HOST}:{self.port}"

    def start_worker(self):
        self.worker = servers.start_worker(self.school, self.service, self.env, self.log_dir)
        return self.worker

    def start_web(self, workers: int = 2):
        self.web = servers.start_web(self.school, self.service, self.port, self.env, self.log_dir, workers)
        return self.web

    def stop(self):
        for proc in (self.web, self.worker):
            if proc is not None:
                proc.stop(timeout=10)


def service_processes(school: str, service: str, port: int, mongo_uri: str, kafka_bootstrap: str,
                      run_dir: Path, alliance_path: Path, keys_dir: Path, prefix: str) -> ServiceProcesses:
    env = servers.service_env(school, service, 0, 0, run_dir / prefix, alliance_path, keys_dir, {
        "MONGODB_URI": mongo_uri, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_DATABASE_PREFIX": prefix, "KAFKA_TOPIC_PREFIX": prefix, "RELAY_IDLE_SECONDS": "0.02",
    })
    return ServiceProcesses(school, service, env, run_dir / prefix / "log", port)


@dataclass
class Stack:
    """One school's courses, faculty, visits and catalog (web; catalog and courses workers) and its provider."""

    school: str
    base: int
    idp_url: str
    keys_dir: Path
    mongo_uri: str = ""
    prefix: str = ""
    procs: list = field(default_factory=list)
    services: dict = field(default_factory=dict)
    faculty_id: str = ""
    alliance: Path | None = None
    partner_base: int = 0

    @property
    def url(self) -> str:
        return f"http://{servers.HOST}:{self.base}"

    def service_url(self, service: str) -> str:
        return self.services[service].url

    def token(self, role: str = "coordinator", faculty_id: str | None = None) -> str:
        return issue_token(KeyRing(self.keys_dir, self.school).private_key(), self.school, role, faculty_id=faculty_id)

    def post(self, service: str, path: str, body: dict) -> dict:
        """POST as a coordinator (a fresh Idempotency-Key); the 201's body, or AssertionError with the answer."""
        response = requests.post(self.service_url(service) + path, json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token()}",
                                          "Idempotency-Key": str(uuid.uuid4())})
        if response.status_code != 201:
            raise AssertionError(f"POST {path}: {response.status_code} {response.text}")
        return response.json()

    def stop(self):
        for svc in self.services.values():
            svc.stop()
        for proc in self.procs:
            proc.stop(timeout=5)


def start_school(school: str, partner: str, mongo_uri: str, kafka_bootstrap: str, run_dir: Path, keys_dir: Path, *,
                 prefix: str = "", catalog_env: dict | None = None, workers: tuple = ("courses", "catalog")) -> Stack:
    """`school`'s courses, faculty, visits and catalog web processes (2 gunicorn workers each) and the workers of
    `workers`, and its dev identity provider, on free ports; `partner` in the alliance on a port base nothing
    listens on (unless the caller starts it). `catalog_env`: more settings for the catalog. Nothing is seeded."""
    prefix = prefix or f"fd{uuid.uuid4().hex[:8]}_"
    base, partner_base = free_port_base(4), free_port_base(4)
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", {school: base, partner: partner_base})
    idp_port = servers.free_port()
    stack = Stack(school, base, issuer(idp_port), keys_dir, mongo_uri=mongo_uri, prefix=prefix,
                  alliance=alliance, partner_base=partner_base)
    try:
        stack.procs.append(start_idp(school, idp_port, run_dir / prefix / "log"))
        for offset, service in ((1, "courses"), (2, "faculty"), (3, "visits"), (0, "catalog")):
            svc = service_processes(school, service, base + offset, mongo_uri, kafka_bootstrap, run_dir, alliance,
                                    keys_dir, prefix)
            if service == "catalog":
                svc.env.update(idp_env(school, idp_port, keys_dir))
                svc.env.update(catalog_env or {})
            stack.services[service] = svc
            svc.start_web(workers=2)
            if service in workers:
                svc.start_worker()
    except BaseException:
        stack.stop()
        raise
    return stack
