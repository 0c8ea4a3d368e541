"""Kafka wiring: producers, consumers and topics, with settings that suit both brokers.

The embedded broker needs short group session timeouts (joins take half the
session timeout); Apache Kafka refuses those below 6 s by default, so they are
settings (KAFKA_SESSION_TIMEOUT_MS, KAFKA_HEARTBEAT_INTERVAL_MS).
"""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.config import Settings

log = logging.getLogger(__name__)

# kafka-python backs off exponentially up to 30 s between reconnects by default, so a
# client could sit idle for half a minute after the broker is back; a short cap keeps
# recovery within about a second of the broker's return
RECONNECT = {"reconnect_backoff_ms": 50, "reconnect_backoff_max_ms": 1000}


def security_options(protocol: str, mechanism: str, username: str, password: str) -> dict:
    """kafka-python's authentication arguments: none for PLAINTEXT, SASL/SCRAM as `username` otherwise.

    The one place that turns settings into them: every producer, consumer and admin client of the
    services (connection_options) and the kafka-init step (ops/topics.py) use it.
    """
    if protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    return {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


def connection_options(settings: Settings) -> dict:
    """Where the cluster is and how this process authenticates: the start of every client's arguments."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        **security_options(settings.kafka_security_protocol, settings.kafka_sasl_mechanism,
                           settings.kafka_principal, settings.kafka_password),
        **RECONNECT,
    }


def make_producer(settings: Settings) -> KafkaProducer:
    """A producer that waits for all in-sync replicas and fails fast when the broker is away."""
    return KafkaProducer(
        **connection_options(settings),
        client_id=f"{settings.school}-{settings.service}-relay",
        acks="all",
        linger_ms=5,
        batch_size=262144,
        retries=2,
        # an idempotent producer fails for good after a broker reset (see docs/adr/0002);
        # the relay re-sends instead, and consumers drop what they already hold by version
        enable_idempotence=False,
        # one request in flight keeps a key's events in order across retries
        max_in_flight_requests_per_connection=1,
        max_block_ms=3000,
        request_timeout_ms=5000,
        delivery_timeout_ms=10000,
    )


def ensure_topics(settings: Settings, topics) -> None:
    """Create the topics that do not exist yet (at start-up, and after a broker reset)."""
    admin = KafkaAdminClient(
        **connection_options(settings),
        client_id=f"{settings.school}-{settings.service}-admin",
        request_timeout_ms=5000,
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics([
                    NewTopic(t, settings.kafka_topic_partitions, settings.kafka_replication_factor)
                    for t in missing
                ])
                log.info("created topics %s", ",".join(missing))
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def make_consumer(settings: Settings, group_id: str, topics, **overrides) -> KafkaConsumer:
    """A consumer in `group_id` that commits offsets by hand, after the effect is stored."""
    options = dict(
        **connection_options(settings),
        client_id=f"{settings.school}-{settings.service}-{group_id}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_records=200,
    )
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe(list(topics))
    return consumer


class TopicWatch:
    """Asks the broker whether a topic exists, over one admin connection kept open.

    The embedded broker forgets its topics on restart, yet acknowledges records
    sent to a topic it no longer has (and drops them). The relay checks its topic
    after each batch's flush, so a reset is seen and the batch is sent again (with a
    new producer, after the topic is created again).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.admin = None

    def exists(self, topic: str) -> bool:
        try:
            if self.admin is None:
                self.admin = KafkaAdminClient(
                    **connection_options(self.settings), request_timeout_ms=5000,
                    client_id=f"{self.settings.school}-{self.settings.service}-watch",
                )
            return topic in self.admin.list_topics()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.admin is not None:
            try:
                self.admin.close()
            except Exception:
                pass
            self.admin = None
