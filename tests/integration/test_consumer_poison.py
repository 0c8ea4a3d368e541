"""Poison on Kafka: the shared consumer dead-letters it with the reason and keeps going.

The broker, the producer and the consumer are real; the `apply` function is
the test's own, a stand-in for a service's (which add their own rules on top).
"""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaProducer

from shared.auth import KeyRing
from shared.consumer import EventConsumer
from shared.events import Event, InvalidEvent, sign, to_record
from shared.kafka import ensure_topics
from tests.kafkautil import read_until


def good_event(source_school: str, entity_id: str, version: int = 1, **data) -> Event:
    body = {"id": entity_id, "school": source_school, "title": {"en": "T"}, **data}
    return Event(type="course.published.v1", source=f"/schools/{source_school}/courses", subject=entity_id,
                 sequence=version, entityversion=version, data=body)


def test_poison_goes_to_the_dlq_with_its_reason_and_the_next_good_event_is_applied(make_settings, keys_dir, artifacts_dir):
    settings = make_settings("ecnu-cto", "catalog", kafka_poll_timeout_ms=500)
    partner_topic = settings.topic("courses", "sdu-sie")
    ensure_topics(settings, [partner_topic, settings.dlq_topic])
    sdu_key = KeyRing(keys_dir, "sdu-sie").private_key()
    applied: dict[str, int] = {}

    def apply(event: Event, school: str) -> None:
        if event.type.split(".")[1] not in ("published", "updated", "withdrawn"):
            raise InvalidEvent(f"unknown event type {event.type!r}")
        if not isinstance(event.data.get("title"), dict) or "en" not in event.data["title"]:
            raise InvalidEvent("body: title.en is required")
        if event.entityversion > applied.get(event.subject, 0):
            applied[event.subject] = event.entityversion

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    send = lambda key, value, headers: producer.send(partner_topic, key=key, value=value, headers=headers).get(10)
    signed = lambda event: to_record(sign(event, sdu_key))

    poison = {
        "malformed bytes": (b"p-1", b"\x00\x9f\x92binary", [("ce_id", b"x")]),
        "no CloudEvents headers": (b"p-2", b"{}", []),
        "unknown type": signed(Event(**{**good_event("sdu-sie", "p-3").__dict__, "type": "course.exploded.v1"})),
        "body fails validation": signed(good_event("sdu-sie", "p-4", title={"zh": "无英文"})),
        "oversized value": signed(good_event("sdu-sie", "p-5", blob="x" * 600_000)),
        "forged source": to_record(sign(good_event("ecnu-cto", "p-6"), sdu_key)),
        "body of another school": signed(good_event("sdu-sie", "p-7", school="ecnu-cto")),
        "signed with another key": to_record(sign(good_event("sdu-sie", "p-8"), Ed25519PrivateKey.generate())),
        "unsigned": to_record(good_event("sdu-sie", "p-9")),
        "not JSON body": (lambda k, v, h: (k, b"not json", h))(*signed(good_event("sdu-sie", "p-10"))),
    }
    for key, value, headers in poison.values():
        send(key, value, headers)
    send(*signed(good_event("sdu-sie", "good-1", version=2)))
    send(*signed(good_event("sdu-sie", "good-1", version=1)))  # stale: changes nothing

    consumer = EventConsumer(settings, f"{settings.kafka_topic_prefix}catalog", [partner_topic], apply)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while (consumer.stats.applied < 2 or consumer.stats.dead_lettered < len(poison)) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(20)
        producer.close()
    assert applied == {"good-1": 2}
    assert consumer.stats.dead_lettered == len(poison)
    dlq = read_until(settings.kafka_bootstrap, settings.dlq_topic, lambda r: len(r) >= len(poison), 30)
    reasons = {m.key().decode(): dict(m.headers())["dlq_reason"].decode() for m in dlq}
    assert set(reasons) == {v[0].decode() for v in poison.values()}
    for m in dlq:
        headers = dict(m.headers())
        assert headers["dlq_topic"].decode() == partner_topic and headers["dlq_offset"]
    expected = {
        "p-1": "missing", "p-2": "missing", "p-3": "unknown event type", "p-4": "title.en",
        "p-5": "limit", "p-6": "differs from the topic", "p-7": "belongs to school 'ecnu-cto'", "p-8": "signature",
        "p-9": "not signed", "p-10": "JSON",
    }
    for key, fragment in expected.items():
        assert fragment in reasons[key], (key, reasons[key])
    lines = ["| poison | dead-letter reason |", "|---|---|"]
    lines += [f"| {name} | {reasons[value[0].decode()]} |" for name, value in poison.items()]
    (artifacts_dir / "poison-events.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
