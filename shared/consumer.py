"""The apply path: consume, check, apply, dead-letter what is poison, then commit.

For each record: parse the CloudEvents envelope and JSON body; refuse an event
whose source school is not the topic's school, or whose signature does not
verify with that school's public key; hand it to the service's `apply`
function. `apply` raises InvalidEvent for an event it cannot accept (bad body,
unknown entity): the record goes to `<school>.dlq` with the reason, and
consumption goes on. Any other exception (the database is down) leaves the
offset uncommitted and the record is retried after a pause. Offsets are
committed only after the effect is stored, and `apply` must make a replay a
no-op (by entity version), so at-least-once delivery changes nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from shared.auth import KeyRing
from shared.config import Settings
from shared.events import Event, InvalidEvent, from_record, verify
from shared.kafka import ensure_topics, make_consumer, make_producer

log = logging.getLogger(__name__)

# an entity's public state is a few KiB; anything near Kafka's default 1 MiB message size is poison
MAX_EVENT_BYTES = 512 * 1024

# Apply = (event, the school whose topic it came from) -> None; raises InvalidEvent for poison
Apply = Callable[[Event, str], None]


def topic_school(settings: Settings, topic: str) -> str:
    """ecnu-cto from [prefix]ecnu-cto.courses.v1."""
    name = topic[len(settings.kafka_topic_prefix):] if topic.startswith(settings.kafka_topic_prefix) else topic
    return name.split(".", 1)[0]


@dataclass
class ConsumerStats:
    applied: int = 0
    dead_lettered: int = 0
    retries: int = 0


class DeadLetters:
    """Writes refused records to `<school>.dlq` with the reason and where they came from."""

    def __init__(self, settings: Settings, producer_factory=None):
        self.settings = settings
        self.topic = settings.dlq_topic
        self.producer_factory = producer_factory or (lambda: make_producer(settings))
        self.producer = None

    def send(self, record, reason: str) -> None:
        if self.producer is None:
            ensure_topics(self.settings, [self.topic])
            self.producer = self.producer_factory()
        headers = list(record.headers or []) + [
            ("dlq_reason", reason.encode("utf-8")),
            ("dlq_topic", record.topic.encode("utf-8")),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_group", self.settings.service.encode()),
        ]
        try:
            self.producer.send(self.topic, key=record.key, value=record.value, headers=headers).get(timeout=10)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=0)
            except Exception:
                pass
            self.producer = None


def check(settings: Settings, keyring: KeyRing, record) -> Event:
    """Parse a record into an event this school may accept, or raise InvalidEvent with the reason."""
    if record.value is not None and len(record.value) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"the event body has {len(record.value)} bytes; the limit is {MAX_EVENT_BYTES}")
    event = from_record(record.key, record.value, record.headers)
    school = topic_school(settings, record.topic)
    if event.school != school:
        raise InvalidEvent(f"source school {event.school!r} differs from the topic's school {school!r}")
    owner = event.data.get("school")
    if owner is not None and owner != school:
        raise InvalidEvent(f"the entity belongs to school {owner!r}, not to the topic's school {school!r}")
    public_keys = keyring.public_keys(school)
    if not public_keys:
        raise InvalidEvent(f"no public key is configured for school {school!r}")
    verify(event, public_keys)
    return event


class ResetWatch:
    """Sees that the broker lost what a partition held, and reads that partition again from its beginning.

    The sign is a position beyond the high watermark seen in fetch responses: a broker that
    restarted empty (the embedded one, or a Kafka whose data was lost) never answers
    out-of-range, so a member would wait silently until new records passed its old
    position. Events are applied idempotently by version, so reading again is harmless.
    Checked after a poll, at most every `interval` seconds; `on_reset(tp)` is told of each.
    """

    def __init__(self, interval: float = 1.0, on_reset: Callable[[TopicPartition], None] | None = None):
        self.interval = interval
        self.on_reset = on_reset
        self.next_at = 0.0

    def __call__(self, consumer) -> None:
        if consumer is None or time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.interval
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = consumer.position(tp, timeout_ms=200)
            except Exception:  # the coordinator may be away: the next check sees the partition again
                continue
            if position is not None and position > highwater:
                log.warning("%s[%d]: position %d beyond the broker's end %d: the broker lost data; rewinding",
                            tp.topic, tp.partition, position, highwater)
                consumer.seek_to_beginning(tp)
                if self.on_reset:
                    self.on_reset(tp)


class EventConsumer:
    """One consumer group member applying events from `topics` until stopped (rewinding after a broker reset)."""

    def __init__(self, settings: Settings, group_id: str, topics: list[str], apply: Apply,
                 keyring: KeyRing | None = None, on_batch: Callable[[], None] | None = None,
                 on_reset: Callable[[TopicPartition], None] | None = None):
        self.settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        self.apply = apply
        self.keyring = keyring or KeyRing(settings.keys_dir, settings.school)
        self.dead_letters = DeadLetters(settings)
        self.on_batch = on_batch
        self.reset_watch = ResetWatch(on_reset=on_reset)
        self.stats = ConsumerStats()
        self.consumer = None

    def handle(self, record) -> None:
        """Check and apply one record; poison goes to the DLQ. Other errors propagate (retry)."""
        try:
            event = check(self.settings, self.keyring, record)
            self.apply(event, topic_school(self.settings, record.topic))
            self.stats.applied += 1
        except InvalidEvent as exc:
            log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
            self.dead_letters.send(record, str(exc))
            self.stats.dead_lettered += 1

    def run_forever(self, stop: threading.Event) -> None:
        ensure_topics(self.settings, self.topics)
        self.consumer = make_consumer(self.settings, self.group_id, self.topics)
        backoff = 0.5
        try:
            while not stop.is_set():
                batches = self.consumer.poll(timeout_ms=self.settings.kafka_poll_timeout_ms)
                for tp, records in batches.items():
                    done = None
                    for record in records:
                        try:
                            self.handle(record)
                        except Exception as exc:  # a store or DLQ outage: retry from this record
                            self.stats.retries += 1
                            log.warning("apply failed at %s[%d]@%d (%s: %s); retrying in %.1fs", tp.topic,
                                        tp.partition, record.offset, exc.__class__.__name__, exc, backoff)
                            self.consumer.seek(tp, record.offset)
                            stop.wait(backoff)
                            backoff = min(backoff * 2, 5.0)
                            break
                        backoff = 0.5
                        done = record.offset
                    if done is not None:
                        # the effects of everything up to `done` are stored: only now the offset moves
                        self.consumer.commit({TopicPartition(tp.topic, tp.partition):
                                              OffsetAndMetadata(done + 1, None, -1)})
                self.reset_watch(self.consumer)
                if self.on_batch:
                    self.on_batch()
        finally:
            self.dead_letters.close()
            try:
                self.consumer.close(autocommit=False)
            except Exception:
                pass
