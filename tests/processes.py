"""Starting the services as real processes for end-to-end tests (gunicorn web, python workers)."""

from __future__ import annotations

import json
from pathlib import Path

from devstack import servers


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
