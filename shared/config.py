"""Settings: the one place that reads the environment.

Every default is right for production (docker-compose.yml and the image); the
embedded stack and the tests set their own values (devstack/servers.py
service_env, tests/conftest.py make_settings). See docs/settings.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# the port of each service relative to a school's port base (8100, 8200, ...)
SERVICE_PORT_OFFSETS = {"catalog": 0, "courses": 1, "faculty": 2, "visits": 3}


class ConfigError(ValueError):
    """The configuration cannot work; raised at start-up, never per request."""


@dataclass(frozen=True)
class School:
    """A member of the alliance, as the alliance configuration lists it."""

    id: str
    name: dict
    urls: dict  # service name -> base URL of that school's service


def load_alliance(path: Path, host: str) -> tuple[School, ...]:
    """Read the alliance configuration: which schools exist and where their services answer."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read alliance configuration {path}: {exc}") from exc
    schools = []
    for entry in raw.get("schools", []):
        urls = dict(entry.get("urls") or {})
        base = entry.get("port_base")
        for service, offset in SERVICE_PORT_OFFSETS.items():
            if service not in urls and base is not None:
                urls[service] = f"http://{host}:{int(base) + offset}"
        schools.append(School(id=entry["id"], name=entry.get("name", {}), urls=urls))
    if not schools:
        raise ConfigError(f"alliance configuration {path} lists no school")
    return tuple(schools)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _number(name: str, default, kind, what: str):
    raw = _env(name, str(default))
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "an integer")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw not in ("1", "0", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    """Everything a service process needs to know, read once at start-up."""

    school: str = "ecnu-cto"
    service: str = "courses"
    # no directConnection: against a replica set the driver must discover the primary
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_timeout_ms: int = 2000
    mongodb_database_prefix: str = ""
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    # Apache Kafka refuses session timeouts under group.min.session.timeout.ms (6000 by default)
    kafka_session_timeout_ms: int = 10000
    kafka_heartbeat_interval_ms: int = 3000
    kafka_poll_timeout_ms: int = 3000
    # where compose mounts the secrets (the image creates the folder); make run uses var/keys
    keys_dir: Path = Path("/run/secrets")
    alliance_config: Path = REPO_ROOT / "config" / "alliance.json"
    alliance_host: str = "127.0.0.1"
    schools: tuple[School, ...] = field(default_factory=tuple)
    slot_request_resend_seconds: float = 30.0
    relay_batch_size: int = 200
    relay_idle_seconds: float = 0.05
    relay_lease_seconds: float = 10.0
    worker_stop_seconds: float = 15.0
    max_body_bytes: int = 256 * 1024
    token_ttl_seconds: int = 3600
    log_level: str = "INFO"
    # the catalog: how often it compares each source's digest, and whether reading it needs a token
    catalog_digest_seconds: float = 30.0
    catalog_read_token: bool = False
    # the catalog's search index: one folder per catalog database below it (compose: a volume)
    search_index_dir: Path = REPO_ROOT / "var" / "search"

    @classmethod
    def from_env(cls, service: str | None = None, **overrides) -> "Settings":
        """Build the settings from the environment, then apply explicit overrides (tests)."""
        values = dict(
            school=_env("SCHOOL", cls.school),
            service=service or _env("SERVICE", cls.service),
            mongodb_uri=_env("MONGODB_URI", cls.mongodb_uri),
            mongodb_timeout_ms=_int("MONGODB_TIMEOUT_MS", cls.mongodb_timeout_ms),
            mongodb_database_prefix=_env("MONGODB_DATABASE_PREFIX", cls.mongodb_database_prefix),
            kafka_bootstrap=_env("KAFKA_BOOTSTRAP_SERVERS", cls.kafka_bootstrap),
            kafka_topic_prefix=_env("KAFKA_TOPIC_PREFIX", cls.kafka_topic_prefix),
            kafka_topic_partitions=_int("KAFKA_TOPIC_PARTITIONS", cls.kafka_topic_partitions),
            kafka_replication_factor=_int("KAFKA_REPLICATION_FACTOR", cls.kafka_replication_factor),
            kafka_session_timeout_ms=_int("KAFKA_SESSION_TIMEOUT_MS", cls.kafka_session_timeout_ms),
            kafka_heartbeat_interval_ms=_int("KAFKA_HEARTBEAT_INTERVAL_MS", cls.kafka_heartbeat_interval_ms),
            kafka_poll_timeout_ms=_int("KAFKA_POLL_TIMEOUT_MS", cls.kafka_poll_timeout_ms),
            keys_dir=Path(_env("KEYS_DIR", str(cls.keys_dir))),
            alliance_config=Path(_env("ALLIANCE_CONFIG", str(cls.alliance_config))),
            alliance_host=_env("ALLIANCE_HOST", cls.alliance_host),
            slot_request_resend_seconds=_float("SLOT_REQUEST_RESEND_SECONDS", cls.slot_request_resend_seconds),
            relay_batch_size=_int("RELAY_BATCH_SIZE", cls.relay_batch_size),
            relay_idle_seconds=_float("RELAY_IDLE_SECONDS", cls.relay_idle_seconds),
            relay_lease_seconds=_float("RELAY_LEASE_SECONDS", cls.relay_lease_seconds),
            worker_stop_seconds=_float("WORKER_STOP_SECONDS", cls.worker_stop_seconds),
            max_body_bytes=_int("MAX_BODY_BYTES", cls.max_body_bytes),
            token_ttl_seconds=_int("TOKEN_TTL_SECONDS", cls.token_ttl_seconds),
            log_level=_env("LOG_LEVEL", cls.log_level),
            catalog_digest_seconds=_float("CATALOG_DIGEST_SECONDS", cls.catalog_digest_seconds),
            catalog_read_token=_bool("CATALOG_READ_TOKEN", cls.catalog_read_token),
            search_index_dir=Path(_env("SEARCH_INDEX_DIR", str(cls.search_index_dir))),
        )
        values.update(overrides)
        if not values.get("schools"):
            values["schools"] = load_alliance(values["alliance_config"], values["alliance_host"])
        settings = cls(**values)
        if settings.school not in settings.school_ids:
            raise ConfigError(
                f"SCHOOL={settings.school!r} is not in the alliance configuration "
                f"({', '.join(settings.school_ids)})"
            )
        return settings

    @property
    def school_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.schools)

    @property
    def database_name(self) -> str:
        """One database per school and service: ecnu_cto_courses (after MONGODB_DATABASE_PREFIX)."""
        return f"{self.mongodb_database_prefix}{self.school}_{self.service}".replace("-", "_")

    def topic(self, entity: str, school: str | None = None) -> str:
        """The topic of one school's entity kind: ecnu-cto.courses.v1 (after KAFKA_TOPIC_PREFIX)."""
        return f"{self.kafka_topic_prefix}{school or self.school}.{entity}.v1"

    @property
    def dlq_topic(self) -> str:
        return f"{self.kafka_topic_prefix}{self.school}.dlq"

    def school_url(self, school: str, service: str) -> str:
        for s in self.schools:
            if s.id == school:
                return s.urls[service]
        raise ConfigError(f"unknown school {school!r}")
