"""The production docker-compose.yml: valid for docker-compose, and complete for every service that exists.

No Docker engine is needed: `docker-compose config` only parses, merges the
anchors and validates the file.
"""

from __future__ import annotations

import json
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
    script = " ".join(init["command"])
    for kind in TOPIC_KINDS:
        assert kind in script
    assert "cleanup.policy=compact" in script
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
            assert targets == {f"{school}.key"} | {f"{s}.pub" for s in SCHOOLS}
            assert env["KEYS_DIR"] == "/run/secrets"
            assert proc["depends_on"][f"mongodb-{school}"]["condition"] == "service_healthy"
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


def test_image_runs_as_a_non_root_user_without_keys():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    assert any(line.startswith("USER ") and "root" not in line for line in dockerfile.splitlines())
    assert "PROMETHEUS_MULTIPROC_DIR=" in dockerfile
    assert "COPY var" not in dockerfile and "COPY . " not in dockerfile
    assert "var" in (REPO / ".dockerignore").read_text(encoding="utf-8").split()
