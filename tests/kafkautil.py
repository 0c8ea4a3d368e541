"""Reading topics in tests with an independent client (confluent-kafka, librdkafka)."""

from __future__ import annotations

import time
import uuid

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout: float = 15.0,
               idle: float = 1.5) -> list:
    """Every record of `topic` from the beginning: stops at `expect` records, or after `idle` s without any."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    records = []
    deadline = time.monotonic() + timeout
    try:
        # assign every partition instead of joining a group: no rebalance to wait for
        partitions = []
        while not partitions and time.monotonic() < deadline:
            meta = consumer.list_topics(topic, timeout=2).topics.get(topic)
            partitions = list(meta.partitions) if meta is not None and not meta.error else []
            if not partitions:
                time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        last = time.monotonic()
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if records and time.monotonic() - last > idle and expect is None:
                    break
                if expect is not None and len(records) >= expect:
                    break
                continue
            if msg.error():
                continue
            records.append(msg)
            last = time.monotonic()
            if expect is not None and len(records) >= expect:
                # keep reading briefly: more than expected is a finding too
                expect = None
                idle = 0.5
    finally:
        consumer.close()
    return records


def cloud_event(msg):
    """Parse a confluent-kafka message with the CloudEvents SDK (binary mode)."""
    headers = {k: v for k, v in (msg.headers() or [])}
    return from_binary(KafkaMessage(headers=headers, key=msg.key(), value=msg.value()), JSONFormat())


def read_until(bootstrap: str, topic: str, done, timeout: float = 30.0) -> list:
    """Read the topic again until `done(records)` holds or `timeout` passes; the last read is returned."""
    deadline = time.monotonic() + timeout
    records = []
    while time.monotonic() < deadline:
        records = read_topic(bootstrap, topic, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
        if done(records):
            break
        time.sleep(0.3)
    return records


def assert_lifecycle(records, entity_id: str, source: str, types: list[str]) -> list:
    """The records are one entity's events of `types`, in order: key, subject, source, versions 1..n,
    JSON content type and increasing sequences. Returns the parsed CloudEvents."""
    assert len(records) == len(types)
    events = [cloud_event(m) for m in records]
    assert [e.get_type() for e in events] == types
    for version, (msg, event) in enumerate(zip(records, events), start=1):
        assert msg.key().decode() == entity_id == event.get_subject()
        assert event.get_source() == source
        assert event.get_extension("entityversion") in (version, str(version))
        assert dict(msg.headers())["content-type"] == b"application/json"
    sequences = [int(e.get_extension("sequence")) for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(types)
    return events


def read_all_topics(bootstrap: str, prefix: str, idle: float = 1.5, timeout: float = 20.0) -> dict[str, list]:
    """Every record of every topic whose name starts with `prefix`, by topic (empty topics too)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    records: dict[str, list] = {}
    try:
        topics = {name: meta for name, meta in consumer.list_topics(timeout=5).topics.items()
                  if name.startswith(prefix)}
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for name, meta in topics.items()
                         for p in meta.partitions])
        records = {name: [] for name in topics}
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            records[msg.topic()].append(msg)
            last = time.monotonic()
    finally:
        consumer.close()
    return records
