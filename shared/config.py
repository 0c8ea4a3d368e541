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
    # the IANA time zone of the school's visits (calendar invitations) and its public contact address
    time_zone: str = "UTC"
    contact: str | None = None


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
        schools.append(School(id=entry["id"], name=entry.get("name", {}), urls=urls,
                              time_zone=entry.get("time_zone") or "UTC", contact=entry.get("contact")))
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


def _path(name: str) -> Path | None:
    value = _env(name, "")
    return Path(value) if value else None


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "an integer")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default).lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def read_secret(path: Path, setting: str) -> str:
    """A password from a file (a compose secret), read at start: unreadable stops the process with the fix."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        try:
            st = Path(path).stat()
            held = f" (owner {st.st_uid}:{st.st_gid}, mode {st.st_mode & 0o7777:04o})"
        except OSError:
            held = ""
        raise ConfigError(
            f"{setting}: cannot read {path}{held}: {exc.strerror or exc}. `sudo make secrets` writes the "
            "passwords with the owner and mode their readers need; see docs/operations.md, \"Secrets\"") from exc
    if not value:
        raise ConfigError(f"{setting}: {path} is empty; delete it and run `sudo make secrets` for a new password")
    return value


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw not in ("1", "0", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("1", "true", "yes")


def _list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list: `a, b` -> ("a", "b")."""
    return tuple(v.strip() for v in _env(name, ",".join(default)).split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    """Everything a service process needs to know, read once at start-up."""

    school: str = "ecnu-cto"
    service: str = "courses"
    # no directConnection: against a replica set the driver must discover the primary
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_timeout_ms: int = 2000
    mongodb_database_prefix: str = ""
    # MongoDB authentication: on when a password file is given (compose does; the embedded stack has none)
    mongodb_username: str = ""
    mongodb_password_file: Path | None = None
    mongodb_password: str = field(default="", repr=False)
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    # Apache Kafka refuses session timeouts under group.min.session.timeout.ms (6000 by default)
    kafka_session_timeout_ms: int = 10000
    kafka_heartbeat_interval_ms: int = 3000
    kafka_poll_timeout_ms: int = 3000
    # Kafka authentication: SASL/SCRAM as the school's principal in production (docker-compose.yml)
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password_file: Path | None = None
    kafka_password: str = field(default="", repr=False)
    # where compose mounts the secrets (the image creates the folder); make run uses var/keys
    keys_dir: Path = Path("/run/secrets")
    alliance_config: Path = REPO_ROOT / "config" / "alliance.json"
    alliance_host: str = "127.0.0.1"
    schools: tuple[School, ...] = field(default_factory=tuple)
    slot_request_resend_seconds: float = 30.0
    place_request_resend_seconds: float = 30.0
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
    # the front door (the catalog web's sign-in and people's pages; docs/sign-in.md): empty issuer = no sign-in
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret_file: Path | None = None
    oidc_scopes: str = "openid email profile"
    oidc_roles_claim: str = "groups"
    oidc_coordinator_values: tuple[str, ...] = ("coordinator",)
    oidc_faculty_values: tuple[str, ...] = ("faculty",)
    oidc_student_values: tuple[str, ...] = ("student",)
    oidc_school_claim: str = ""
    oidc_profile_claim: str = "email"
    oidc_student_number_claim: str = "student_number"
    oidc_programme_claim: str = "programme"
    session_idle_seconds: int = 1800
    session_absolute_seconds: int = 12 * 3600
    session_cookie_secure: bool = True
    person_token_seconds: int = 90
    # mail (shared/mail.py): the school's SMTP server; the password is read from a file, never the environment
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_tls: str = "none"  # none, starttls or tls (implicit TLS, usually port 465)
    smtp_user: str = ""
    smtp_password_file: Path | None = None
    smtp_timeout_seconds: float = 10.0
    mail_sender: str = "alliance-catalog@localhost"
    # who hears of new incoming slot requests at a host school, how often (each or daily), in which language
    coordinator_emails: tuple[str, ...] = ()
    coordinator_mail: str = "each"
    coordinator_lang: str = "en"
    # the notification queue (shared/notifications.py): backoff of failed sends and the claim of a send
    mail_retry_seconds: float = 2.0
    mail_retry_max_seconds: float = 600.0
    mail_claim_seconds: float = 60.0
    mail_idle_seconds: float = 0.5
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
            mongodb_username=_env("MONGODB_USERNAME", cls.mongodb_username),
            mongodb_password_file=_path("MONGODB_PASSWORD_FILE"),
            kafka_bootstrap=_env("KAFKA_BOOTSTRAP_SERVERS", cls.kafka_bootstrap),
            kafka_topic_prefix=_env("KAFKA_TOPIC_PREFIX", cls.kafka_topic_prefix),
            kafka_topic_partitions=_int("KAFKA_TOPIC_PARTITIONS", cls.kafka_topic_partitions),
            kafka_replication_factor=_int("KAFKA_REPLICATION_FACTOR", cls.kafka_replication_factor),
            kafka_session_timeout_ms=_int("KAFKA_SESSION_TIMEOUT_MS", cls.kafka_session_timeout_ms),
            kafka_heartbeat_interval_ms=_int("KAFKA_HEARTBEAT_INTERVAL_MS", cls.kafka_heartbeat_interval_ms),
            kafka_poll_timeout_ms=_int("KAFKA_POLL_TIMEOUT_MS", cls.kafka_poll_timeout_ms),
            kafka_security_protocol=_env("KAFKA_SECURITY_PROTOCOL", cls.kafka_security_protocol),
            kafka_sasl_mechanism=_env("KAFKA_SASL_MECHANISM", cls.kafka_sasl_mechanism),
            kafka_username=_env("KAFKA_USERNAME", cls.kafka_username),
            kafka_password_file=_path("KAFKA_PASSWORD_FILE"),
            keys_dir=Path(_env("KEYS_DIR", str(cls.keys_dir))),
            alliance_config=Path(_env("ALLIANCE_CONFIG", str(cls.alliance_config))),
            alliance_host=_env("ALLIANCE_HOST", cls.alliance_host),
            slot_request_resend_seconds=_float("SLOT_REQUEST_RESEND_SECONDS", cls.slot_request_resend_seconds),
            place_request_resend_seconds=_float("PLACE_REQUEST_RESEND_SECONDS", cls.place_request_resend_seconds),
            relay_batch_size=_int("RELAY_BATCH_SIZE", cls.relay_batch_size),
            relay_idle_seconds=_float("RELAY_IDLE_SECONDS", cls.relay_idle_seconds),
            relay_lease_seconds=_float("RELAY_LEASE_SECONDS", cls.relay_lease_seconds),
            worker_stop_seconds=_float("WORKER_STOP_SECONDS", cls.worker_stop_seconds),
            max_body_bytes=_int("MAX_BODY_BYTES", cls.max_body_bytes),
            token_ttl_seconds=_int("TOKEN_TTL_SECONDS", cls.token_ttl_seconds),
            log_level=_env("LOG_LEVEL", cls.log_level),
            catalog_digest_seconds=_float("CATALOG_DIGEST_SECONDS", cls.catalog_digest_seconds),
            catalog_read_token=_bool("CATALOG_READ_TOKEN", cls.catalog_read_token),
            oidc_issuer=_env("OIDC_ISSUER", cls.oidc_issuer).rstrip("/"),
            oidc_client_id=_env("OIDC_CLIENT_ID", cls.oidc_client_id),
            oidc_client_secret_file=_path("OIDC_CLIENT_SECRET_FILE"),
            oidc_scopes=_env("OIDC_SCOPES", cls.oidc_scopes),
            oidc_roles_claim=_env("OIDC_ROLES_CLAIM", cls.oidc_roles_claim),
            oidc_coordinator_values=_list("OIDC_COORDINATOR_VALUES", cls.oidc_coordinator_values),
            oidc_faculty_values=_list("OIDC_FACULTY_VALUES", cls.oidc_faculty_values),
            oidc_student_values=_list("OIDC_STUDENT_VALUES", cls.oidc_student_values),
            oidc_school_claim=_env("OIDC_SCHOOL_CLAIM", cls.oidc_school_claim),
            oidc_profile_claim=_env("OIDC_PROFILE_CLAIM", cls.oidc_profile_claim),
            oidc_student_number_claim=_env("OIDC_STUDENT_NUMBER_CLAIM", cls.oidc_student_number_claim),
            oidc_programme_claim=_env("OIDC_PROGRAMME_CLAIM", cls.oidc_programme_claim),
            session_idle_seconds=_int("SESSION_IDLE_SECONDS", cls.session_idle_seconds),
            session_absolute_seconds=_int("SESSION_ABSOLUTE_SECONDS", cls.session_absolute_seconds),
            session_cookie_secure=_bool("SESSION_COOKIE_SECURE", cls.session_cookie_secure),
            person_token_seconds=_int("PERSON_TOKEN_SECONDS", cls.person_token_seconds),
            smtp_host=_env("SMTP_HOST", cls.smtp_host),
            smtp_port=_int("SMTP_PORT", cls.smtp_port),
            smtp_tls=_choice("SMTP_TLS", cls.smtp_tls, ("none", "starttls", "tls")),
            smtp_user=_env("SMTP_USER", cls.smtp_user),
            smtp_password_file=_path("SMTP_PASSWORD_FILE"),
            smtp_timeout_seconds=_float("SMTP_TIMEOUT_SECONDS", cls.smtp_timeout_seconds),
            mail_sender=_env("MAIL_SENDER", cls.mail_sender),
            coordinator_emails=_list("COORDINATOR_EMAILS", cls.coordinator_emails),
            coordinator_mail=_choice("COORDINATOR_MAIL", cls.coordinator_mail, ("each", "daily")),
            coordinator_lang=_choice("COORDINATOR_LANG", cls.coordinator_lang, ("en", "zh")),
            mail_retry_seconds=_float("MAIL_RETRY_SECONDS", cls.mail_retry_seconds),
            mail_retry_max_seconds=_float("MAIL_RETRY_MAX_SECONDS", cls.mail_retry_max_seconds),
            mail_claim_seconds=_float("MAIL_CLAIM_SECONDS", cls.mail_claim_seconds),
            mail_idle_seconds=_float("MAIL_IDLE_SECONDS", cls.mail_idle_seconds),
            search_index_dir=Path(_env("SEARCH_INDEX_DIR", str(cls.search_index_dir))),
        )
        values.update(overrides)
        # the passwords are read once, here: a file the process cannot read stops it at start
        if values.get("mongodb_password_file") and not values.get("mongodb_password"):
            values["mongodb_password"] = read_secret(values["mongodb_password_file"], "MONGODB_PASSWORD_FILE")
        if values.get("kafka_password_file") and not values.get("kafka_password"):
            values["kafka_password"] = read_secret(values["kafka_password_file"], "KAFKA_PASSWORD_FILE")
        if not values.get("schools"):
            values["schools"] = load_alliance(values["alliance_config"], values["alliance_host"])
        settings = cls(**values)
        settings.check_security()
        if settings.school not in settings.school_ids:
            raise ConfigError(
                f"SCHOOL={settings.school!r} is not in the alliance configuration "
                f"({', '.join(settings.school_ids)})"
            )
        return settings

    def check_security(self) -> None:
        """A Kafka protocol or mechanism the clients do not know, or SASL without a password, stops the start."""
        if self.kafka_security_protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, "
                              f"got {self.kafka_security_protocol!r}")
        if self.kafka_security_protocol.startswith("SASL"):
            if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)}, "
                                  f"got {self.kafka_sasl_mechanism!r}")
            if not self.kafka_password:
                raise ConfigError(f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                                  "KAFKA_PASSWORD_FILE (the school's Kafka password, written by `make secrets`)")

    @property
    def kafka_principal(self) -> str:
        """The SASL user name: KAFKA_USERNAME, or the school's id (the principal ops/topics.py gives ACLs)."""
        return self.kafka_username or self.school

    @property
    def mongodb_user(self) -> str:
        """The MongoDB user: MONGODB_USERNAME, or the database name (the user ops/mongo_users.py creates)."""
        return self.mongodb_username or self.database_name

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

    @property
    def sign_in_enabled(self) -> bool:
        """Whether the front door offers sign-in: an identity provider is configured."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    def oidc_client_secret(self) -> str | None:
        """The client secret, read from its file (a secret like the keys); None for a public client."""
        if self.oidc_client_secret_file is None:
            return None
        try:
            return self.oidc_client_secret_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read OIDC_CLIENT_SECRET_FILE {self.oidc_client_secret_file}: "
                              f"{exc.strerror}") from None
    def school_of(self, school: str) -> School:
        for s in self.schools:
            if s.id == school:
                return s
        raise ConfigError(f"unknown school {school!r}")

    def school_url(self, school: str, service: str) -> str:
        for s in self.schools:
            if s.id == school:
                return s.urls[service]
        raise ConfigError(f"unknown school {school!r}")
