"""Every school's topics with their settings: `python -m ops.topics` (compose's `kafka-init`, one process).

Creates the topics that are missing, and brings existing ones up to date: their
configuration (cleanup policy, retention, min.insync.replicas) is set with an
incremental alter (keys not named here keep their values), and a topic with
fewer partitions than TOPIC_PARTITIONS gets more (never fewer: Kafka cannot
remove partitions). A replication factor below TOPIC_REPLICATION is only
reported: raising it is a partition reassignment (docs/operations.md, "Grow to
three brokers").

Environment: KAFKA_BOOTSTRAP_SERVERS, SCHOOLS (space-separated ids),
TOPIC_PARTITIONS, TOPIC_REPLICATION, MIN_INSYNC_REPLICAS.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger("topics")

DAY_MS = 24 * 3600 * 1000


def topic_settings(schools: list[str], min_insync: int) -> dict[str, dict[str, str]]:
    """Topic name -> its configuration, for every school."""
    topics = {}
    for school in schools:
        # entity topics: compacted, the latest event of each entity is its full public state
        for entity in ("courses", "faculty", "visits"):
            topics[f"{school}.{entity}.v1"] = {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}
        # the slot saga's requests and decisions: a stream of commands and outcomes, kept 30 days
        for stream in ("slot-requests", "slot-decisions"):
            topics[f"{school}.{stream}.v1"] = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}
        # refused events with the reason, kept 90 days for inspection
        topics[f"{school}.dlq"] = {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)}
    for config in topics.values():
        config["min.insync.replicas"] = str(min_insync)
    return topics


def apply(admin: KafkaAdminClient, wanted: dict[str, dict[str, str]], partitions: int, replication: int) -> None:
    """Create what is missing, then set every topic's configuration and partition count."""
    existing = set(admin.list_topics())
    missing = [t for t in wanted if t not in existing]
    if missing:
        try:
            admin.create_topics([NewTopic(t, partitions, replication, topic_configs=wanted[t]) for t in missing])
        except TopicAlreadyExistsError:
            pass
        log.info("created %s", ", ".join(missing))
    present = [t for t in wanted if t in existing]
    if not present:
        return
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs=wanted[t]) for t in present],
                        incremental=True)
    log.info("configuration set on %s", ", ".join(present))
    grow = {}
    for described in admin.describe_topics(present):
        name, held = described["name"], described["partitions"]
        if len(held) < partitions:
            grow[name] = NewPartitions(partitions)
        replicas = min((len(p["replica_nodes"]) for p in held), default=replication)
        if replicas < replication:
            log.warning("%s has %d replicas, TOPIC_REPLICATION is %d: reassign its partitions "
                        "(docs/operations.md)", name, replicas, replication)
    if grow:
        admin.create_partitions(grow)
        log.info("partitions raised to %d on %s", partitions, ", ".join(grow))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    schools = os.environ["SCHOOLS"].split()
    partitions = int(os.environ.get("TOPIC_PARTITIONS", "3"))
    replication = int(os.environ.get("TOPIC_REPLICATION", "1"))
    wanted = topic_settings(schools, int(os.environ.get("MIN_INSYNC_REPLICAS", "1")))
    deadline = time.monotonic() + 120
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-init", request_timeout_ms=10000)
            break
        except Exception as exc:  # the broker may still be starting: compose restarts nothing here
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable yet (%s); retrying", exc)
            time.sleep(2)
    try:
        apply(admin, wanted, partitions, replication)
    finally:
        admin.close()
    log.info("%d topics up to date", len(wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
