"""The production docker-compose.yml: valid for docker-compose, and complete for every service that exists.

No Docker engine is needed: `docker-compose config` only parses, merges the
anchors and validates the file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHOOLS = ("ecnu-cto", "sdu-sie")
TOPIC_KINDS = ("courses", "faculty", "visits", "slot-requests", "slot-decisions", "dlq")


def _compose(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make system-deps installs it)")
    return subprocess.run([binary, "-f", str(COMPOSE_FILE), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def deployable_services() -> list[str]:
    """The services in services/ that have both a web app and a worker."""
    root = REPO / "services"
    return sorted(p.name for p in root.iterdir() if (p / "app.py").exists() and (p / "worker.py").exists())


@pytest.fixture(scope="module")
def config() -> dict:
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_passes_docker_compose_config_check():
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr
    # a key docker-compose does not support is only a warning; it must not be silently dropped
    assert "ignored" not in result.stderr, result.stderr


def test_compose_runs_kafka_in_kraft_mode_and_a_mongodb_per_school(config):
    services = config["services"]
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in services["kafka"]
    for school in SCHOOLS:
        mongodb = services[f"mongodb-{school}"]
        assert "healthcheck" in mongodb
        assert any(str(v).endswith(":/data/db:rw") or str(v).endswith(":/data/db") for v in mongodb["volumes"])


def test_topic_init_creates_every_topic_kind_and_compacts_entity_topics(config):
    init = config["services"]["kafka-init"]
    # the topics and their settings are in ops/topics.py, which kafka-init runs
    assert init["command"] == ["python", "-m", "ops.topics"]
    script = (REPO / "ops" / "topics.py").read_text(encoding="utf-8")
    for kind in TOPIC_KINDS:
        assert kind in script
    from ops.topics import topic_settings

    wanted = topic_settings(init["environment"]["SCHOOLS"].split(), 1)
    for school in SCHOOLS:
        for entity in ("courses", "faculty", "visits"):
            assert wanted[f"{school}.{entity}.v1"]["cleanup.policy"] == "compact"
    assert set(init["environment"]["SCHOOLS"].split()) == set(SCHOOLS)
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("school", SCHOOLS)
def test_every_existing_service_has_a_web_and_a_worker_per_school(config, school):
    services = config["services"]
    assert "courses" in deployable_services()
    for name in deployable_services():
        web = services[f"{school}-{name}-web"]
        worker = services[f"{school}-{name}-worker"]
        assert any("gunicorn" in part for part in web["command"])
        assert f"services.{name}.app:create_app()" in web["command"]
        assert worker["command"] == ["python", "-m", f"services.{name}.worker"]
        for proc in (web, worker):
            env = proc["environment"]
            assert env["SCHOOL"] == school
            assert env["SERVICE"] == name
            assert env["MONGODB_URI"].startswith(f"mongodb://mongodb-{school}:")
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
            # Apache Kafka refuses group session timeouts under 6 s
            assert int(env["KAFKA_SESSION_TIMEOUT_MS"]) >= 6000
            assert int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]) * 3 <= int(env["KAFKA_SESSION_TIMEOUT_MS"])
            assert proc["restart"] == "unless-stopped"
            assert proc["deploy"]["resources"]["limits"]["memory"]
            targets = {s["target"] for s in proc["secrets"]}
            # a web process verifies tokens only: it never holds the private key, except the catalog's,
            # the front door, which mints short-lived tokens for signed-in people (ADR 0010)
            own_key = {f"{school}.key"} if proc is worker or name == "catalog" else set()
            # and its school's Kafka password and its own service's MongoDB password, no other
            assert targets == own_key | {f"{s}.pub" for s in SCHOOLS} | {"kafka.password", "mongodb.password"}
            sources = {s["target"]: s["source"] for s in proc["secrets"]}
            assert sources["kafka.password"] == f"{school}-kafka-password"
            assert sources["mongodb.password"] == f"{school}-{name}-mongodb-password"
            assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
            assert env["KAFKA_PASSWORD_FILE"] == "/run/secrets/kafka.password"
            assert env["MONGODB_PASSWORD_FILE"] == "/run/secrets/mongodb.password"
            assert env["KEYS_DIR"] == "/run/secrets"
            assert proc["depends_on"][f"mongodb-{school}"]["condition"] == "service_healthy"
            assert proc["depends_on"][f"{school}-mongodb-init"]["condition"] == "service_completed_successfully"
            assert proc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(web["healthcheck"]["test"])


def test_alliance_config_of_compose_names_every_deployed_service(config):
    web = config["services"]["ecnu-cto-courses-web"]
    target = web["environment"]["ALLIANCE_CONFIG"]
    mounts = [v for v in web["volumes"] if f":{target}" in v]
    assert mounts, f"{target} is not mounted"
    raw = json.loads((REPO / "config" / "alliance.compose.json").read_text(encoding="utf-8"))
    schools = {s["id"]: s for s in raw["schools"]}
    assert set(schools) == set(SCHOOLS)
    for school in SCHOOLS:
        for name in deployable_services():
            url = schools[school]["urls"][name]
            assert url == f"http://{school}-{name}-web:8000"
            assert f"{school}-{name}-web" in config["services"]


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(number) * units[unit]
    return total


def test_kafka_and_mongodb_get_a_minute_to_stop_and_gunicorn_stops_before_its_grace_ends(config):
    services = config["services"]
    assert _seconds(services["kafka"]["stop_grace_period"]) >= 60
    for school in SCHOOLS:
        assert _seconds(services[f"mongodb-{school}"]["stop_grace_period"]) >= 60
    gunicorn_conf = (REPO / "shared" / "gunicorn_conf.py").read_text(encoding="utf-8")
    graceful = float(re.search(r"^graceful_timeout = (\d+)", gunicorn_conf, flags=re.M).group(1))
    for name in deployable_services():
        for school in SCHOOLS:
            web = services[f"{school}-{name}-web"]
            assert "--graceful-timeout" not in web["command"]
            assert graceful < _seconds(web["stop_grace_period"])


def test_the_kafka_healthcheck_starts_no_jvm(config):
    check = " ".join(config["services"]["kafka"]["healthcheck"]["test"])
    assert ".sh" not in check and "java" not in check


def test_topic_init_is_one_process_that_also_updates_existing_topics(config):
    init = config["services"]["kafka-init"]
    assert init["command"] == ["python", "-m", "ops.topics"]
    script = (REPO / "ops" / "topics.py").read_text(encoding="utf-8")
    assert "alter_configs" in script and "create_partitions" in script
    assert "COPY ops/topics.py" in (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_web_replicas_publish_no_port_and_only_the_proxy_faces_the_public(config):
    services = config["services"]
    published = {name for name, spec in services.items() if spec.get("ports")}
    assert published == {f"proxy-{school}" for school in SCHOOLS}
    caddyfile = (REPO / "ops" / "caddy" / "Caddyfile").read_text(encoding="utf-8")
    # the school's own certificate, and /metrics refused at the edge
    assert "tls /run/secrets/tls.crt /run/secrets/tls.key" in caddyfile
    assert re.search(r"@metrics path /metrics", caddyfile) and "respond @metrics 404" in caddyfile
    for school in SCHOOLS:
        proxy = services[f"proxy-{school}"]
        assert {s["target"] for s in proxy["secrets"]} == {"tls.crt", "tls.key"}
        assert any(v.endswith(":/etc/caddy/Caddyfile:ro") for v in proxy["volumes"])
        for name in deployable_services():
            assert f"{school}-{name}-web" in proxy["depends_on"]
            assert "container_name" not in services[f"{school}-{name}-web"]


def test_image_runs_as_a_non_root_user_without_keys():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    assert any(line.startswith("USER ") and "root" not in line for line in dockerfile.splitlines())
    assert "PROMETHEUS_MULTIPROC_DIR=" in dockerfile
    assert "COPY var" not in dockerfile and "COPY . " not in dockerfile
    assert "var" in (REPO / ".dockerignore").read_text(encoding="utf-8").split()


@pytest.mark.parametrize("school", SCHOOLS)
def test_each_school_mongodb_runs_with_a_root_user_and_an_init_step_that_makes_the_service_users(config, school):
    services = config["services"]
    mongodb = services[f"mongodb-{school}"]
    # the mongo image turns --auth on when a root user is configured
    assert mongodb["environment"]["MONGO_INITDB_ROOT_USERNAME"]
    assert mongodb["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"] == "/run/secrets/mongodb-root.password"
    init = services[f"{school}-mongodb-init"]
    assert init["command"] == ["python", "-m", "ops.mongo_users"]
    assert init["environment"]["SCHOOL"] == school
    assert init["depends_on"][f"mongodb-{school}"]["condition"] == "service_healthy"
    from ops.mongo_users import SERVICES, password_file

    targets = {s["target"] for s in init["secrets"]}
    assert targets == {"mongodb-root.password"} | {password_file(Path(""), school, s).name for s in SERVICES}


def test_kafka_listens_with_sasl_scram_only_and_kafka_init_logs_in_as_the_super_user(config):
    services = config["services"]
    env = services["kafka"]["environment"]
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        # the controller listener cannot use SCRAM in KRaft: it listens on the container's loopback only
        assert protocols[name] == "SASL_PLAINTEXT" or address.startswith("127.0.0.1:"), listener
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "User:admin" in env["KAFKA_SUPER_USERS"].split(";")
    init = services["kafka-init"]
    assert init["environment"]["KAFKA_USERNAME"] == "admin"
    assert init["environment"]["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert {s["target"] for s in init["secrets"]} == {"kafka-admin.password"} | {
        f"{s}.kafka.password" for s in SCHOOLS}


def _mib(limit) -> float:
    """A compose memory limit ("512M", "1G" or bytes) in MiB."""
    text = str(limit).strip().upper().rstrip("B")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024}
    if text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return int(text) / 2**20


def _measured(label: str) -> list[float]:
    """The numbers of the growth benchmark's row `label` in docs/benchmarks.md (every size, MiB)."""
    rows = [line for line in (REPO / "docs" / "benchmarks.md").read_text().splitlines()
            if line.startswith(f"| {label}")]
    assert len(rows) == 1, f"docs/benchmarks.md has no single row {label!r}: run `python -m bench.run growth`"
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", rows[0][len(label) + 2:])]


def test_the_catalog_processes_may_use_the_memory_the_growth_benchmark_measured_with_a_quarter_to_spare(config):
    # a catch-up of 100,000 courses, and searches of them, as bench/growth.py measured them (peak resident
    # memory): a limit below that is an out-of-memory kill in the middle of a catch-up
    worker_peak = max(_measured("catalog worker's peak memory (VmHWM)"))
    web_worker_peak = max(_measured("catalog web's peak memory, the largest of its two gunicorn workers (VmHWM)"))
    for school in SCHOOLS:
        services = config["services"]
        worker = _mib(services[f"{school}-catalog-worker"]["deploy"]["resources"]["limits"]["memory"])
        assert worker >= 1.25 * worker_peak, (school, worker, worker_peak)
        web = services[f"{school}-catalog-web"]
        gunicorn_workers = int(web["environment"]["WEB_CONCURRENCY"])
        assert _mib(web["deploy"]["resources"]["limits"]["memory"]) >= 1.25 * web_worker_peak * gunicorn_workers
