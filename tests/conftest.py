"""Fixtures: the real embedded servers on free loopback ports, keys, tokens and settings.

MONGODB_URI / KAFKA_BOOTSTRAP_SERVERS, when set, point the suite at real
servers instead; the few tests that stop or restart the broker are then
skipped, when they ask for it. Each test gets its own database prefix and
topic prefix, so tests sharing one server never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from devstack import servers
from shared.auth import KeyRing, ensure_dev_keys, issue_token
from shared.config import School, Settings

SCHOOLS = ("ecnu-cto", "sdu-sie")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def mongo_uri(run_dir):
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    port = servers.free_port()
    proc = servers.start_mongo(run_dir / "mongo", port, run_dir / "log")
    yield servers.mongo_uri(port)
    proc.stop(timeout=10)


class Broker:
    """The session's Kafka-protocol broker; tests that restart it use restart().

    With `external` (KAFKA_BOOTSTRAP_SERVERS) it is a broker the suite did not start:
    stop(), start() and restart() skip the test that calls them.
    """

    def __init__(self, run_dir: Path, external: str | None = None):
        self.run_dir = run_dir
        self.external = external
        self.port = None if external else servers.free_port()
        self.proc = None

    @property
    def bootstrap(self) -> str:
        return self.external or f"{servers.HOST}:{self.port}"

    def _own_only(self):
        if self.external:
            pytest.skip(f"stops or restarts the broker; KAFKA_BOOTSTRAP_SERVERS={self.external} is not the suite's own")

    def start(self):
        self._own_only()
        self.proc = servers.start_broker(self.port, self.run_dir / "log")

    def stop(self):
        self._own_only()
        # memory only: nothing to flush, and SIGTERM takes seconds with clients connected
        if self.proc:
            self.proc.kill()
            self.proc = None

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def broker(run_dir):
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield Broker(run_dir, external)
        return
    b = Broker(run_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(broker):
    return broker.bootstrap


@pytest.fixture(scope="session")
def keys_dir(run_dir) -> Path:
    path = run_dir / "keys"
    ensure_dev_keys(path, SCHOOLS)
    return path


@pytest.fixture(scope="session")
def alliance(run_dir):
    """The two schools, with service URLs filled in by tests that start processes."""
    return tuple(School(id=s, name={"en": s}, urls={}) for s in SCHOOLS)


@pytest.fixture
def prefix() -> str:
    """A prefix unique to this test, for database and topic names."""
    return f"t{uuid.uuid4().hex[:10]}_"


@pytest.fixture
def make_settings(mongo_uri, kafka_bootstrap, keys_dir, alliance, prefix):
    """Settings of one school's service, isolated to this test."""

    def _make(school: str = "ecnu-cto", service: str = "courses", **overrides) -> Settings:
        values = dict(
            school=school, service=service, mongodb_uri=mongo_uri, kafka_bootstrap=kafka_bootstrap,
            keys_dir=keys_dir, schools=alliance, mongodb_database_prefix=prefix, kafka_topic_prefix=prefix,
            relay_idle_seconds=0.02, log_level="WARNING",
            # the dev stack's values (devstack/servers.py service_env): the embedded broker joins in half of it
            kafka_session_timeout_ms=2000, kafka_heartbeat_interval_ms=500,
        )
        values.update(overrides)
        return Settings(**values)

    return _make


@pytest.fixture
def token(keys_dir):
    """token(school, role, faculty_id=None) -> a signed bearer token."""

    def _token(school: str = "ecnu-cto", role: str = "coordinator", faculty_id: str | None = None, **kwargs):
        return issue_token(KeyRing(keys_dir, school).private_key(), school, role, faculty_id=faculty_id, **kwargs)

    return _token


@pytest.fixture
def auth(token):
    """auth(school, role) -> headers with a bearer token."""

    def _auth(school: str = "ecnu-cto", role: str = "coordinator", faculty_id: str | None = None, **kwargs):
        return {"Authorization": f"Bearer {token(school, role, faculty_id, **kwargs)}"}

    return _auth


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
