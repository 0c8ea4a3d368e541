"""The services' Kafka clients with SASL/SCRAM, against what the embedded Tansu broker can check.

Tansu 0.6 (`broker --authentication`) requires SASL and does SCRAM-SHA-512, checking the user against
the SCRAM credentials it stores; without the flag it refuses a SASL handshake. Its memory storage
cannot be given a user while authentication is on (creating one needs an authenticated client), so no
test here logs in successfully: that, the ACLs and the broker's configuration are for Apache Kafka
(docker-compose.yml, checked by reading; docs/access.md says what is verified where).
"""

from __future__ import annotations

import logging

import pytest
from kafka import KafkaAdminClient

from devstack import servers
from ops.topics import set_credentials
from shared.kafka import connection_options

SCHOOL = "ecnu-cto"


@pytest.fixture(scope="module")
def authenticating_broker(tmp_path_factory):
    """A Tansu broker that requires SASL (SCRAM), and has no user."""
    port = servers.free_port()
    url = f"tcp://{servers.HOST}:{port}"
    log_dir = tmp_path_factory.mktemp("tansu-auth")
    proc = servers.spawn("kafka-auth", [servers.broker_binary(), "broker", "--listener-url", url,
                                        "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
                                        "--authentication"], log_dir / "tansu.log")
    servers.wait_for(lambda: servers.port_open(port), 30, proc, "Tansu with --authentication")
    yield f"{servers.HOST}:{port}"
    proc.kill()


class KafkaLog(logging.Handler):
    """kafka-python's own log of the exchange: what it sent and what the broker answered."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        self.logger = logging.getLogger("kafka")
        self.saved_level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved_level)

    def has(self, *parts: str) -> bool:
        return any(all(p in line for p in parts) for line in self.lines)


def _connect(settings) -> None:
    """Connect as every client of the services does (connection_options) and list the topics."""
    admin = KafkaAdminClient(**connection_options(settings), bootstrap_timeout_ms=6000, request_timeout_ms=6000)
    try:
        admin.list_topics()
    finally:
        admin.close()


def test_a_client_from_sasl_settings_logs_in_with_scram_as_the_school_and_the_broker_refuses_an_unknown_user(
        make_settings, authenticating_broker):
    settings = make_settings(SCHOOL, kafka_bootstrap=authenticating_broker,
                             kafka_security_protocol="SASL_PLAINTEXT", kafka_password="not-a-user-of-this-broker")
    with KafkaLog() as log, pytest.raises(Exception):
        _connect(settings)
    # the SCRAM exchange started as the school's principal, and the broker answered: unknown user
    assert log.has("SaslHandshakeRequest", "SCRAM-SHA-512"), log.lines[-20:]
    assert log.has("SaslAuthenticateRequest", f"n={SCHOOL},"), log.lines[-20:]
    assert log.has("SaslAuthenticateResponse", "e=unknown-user"), log.lines[-20:]


def test_the_authenticating_broker_refuses_a_client_without_sasl(make_settings, authenticating_broker):
    settings = make_settings(SCHOOL, kafka_bootstrap=authenticating_broker)
    with KafkaLog() as log, pytest.raises(Exception):
        _connect(settings)
    assert not log.has("SaslHandshakeRequest")


def test_sasl_settings_are_applied_a_broker_without_authentication_refuses_the_handshake(
        make_settings, kafka_bootstrap, prefix):
    # the same settings without SASL publish: only the SASL arguments make the difference
    _connect(make_settings(SCHOOL, kafka_topic_prefix=prefix))
    settings = make_settings(SCHOOL, kafka_topic_prefix=prefix, kafka_security_protocol="SASL_PLAINTEXT",
                             kafka_password="pw")
    with KafkaLog() as log, pytest.raises(Exception):
        _connect(settings)
    assert log.has("SaslHandshakeRequest", "SCRAM-SHA-512"), log.lines[-20:]


def test_kafka_init_sets_each_school_s_scram_credential_and_can_set_it_again(kafka_bootstrap, broker):
    broker._own_only()  # an external Kafka would need kafka-init's super user
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000)
    try:
        set_credentials(admin, {"ecnu-cto": "first", "sdu-sie": "second"})
        # a rotation: the same step with new passwords (it raises on any error the broker reports)
        set_credentials(admin, {"ecnu-cto": "third", "sdu-sie": "fourth"})
    finally:
        admin.close()
