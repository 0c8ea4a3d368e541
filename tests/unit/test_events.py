"""The CloudEvents envelope on Kafka and its signature: pure encoding, no broker."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.events import Event, InvalidEvent, from_record, sign, to_record, verify


def event(**changes):
    values = dict(type="course.published.v1", source="/schools/ecnu-cto/courses", subject="c-1", sequence=7,
                  entityversion=2, data={"id": "c-1", "title": {"zh": "技术"}})
    values.update(changes)
    return Event(**values)


def test_an_event_round_trips_through_a_record():
    original = event()
    key, value, headers = to_record(original)
    assert key == b"c-1"
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0" and names["ce_sequence"] == b"7"
    assert names["content-type"] == b"application/json"
    parsed = from_record(key, value, headers)
    assert parsed == original and parsed.school == "ecnu-cto"


@pytest.mark.parametrize("mutate, reason", [
    (lambda h: [x for x in h if x[0] != "ce_id"], "missing"),
    (lambda h: [(n, b"abc" if n == "ce_sequence" else v) for n, v in h], "integers"),
    (lambda h: [(n, b"0" if n == "ce_entityversion" else v) for n, v in h], "positive"),
    (lambda h: [(n, b"/elsewhere" if n == "ce_source" else v) for n, v in h], "source"),
    (lambda h: [(n, b"published" if n == "ce_type" else v) for n, v in h], "type"),
    (lambda h: [(n, b"0.3" if n == "ce_specversion" else v) for n, v in h], "specversion"),
    (lambda h: [(n, b"yesterday" if n == "ce_time" else v) for n, v in h], "RFC 3339"),
    (lambda h: [(n, b"\xff" if n == "ce_subject" else v) for n, v in h], "UTF-8"),
    (lambda h: [(n, b"text/plain" if n == "content-type" else v) for n, v in h], "content-type"),
])
def test_a_broken_envelope_is_refused_with_the_reason(mutate, reason):
    key, value, headers = to_record(event())
    with pytest.raises(InvalidEvent, match=reason):
        from_record(key, value, mutate(headers))


@pytest.mark.parametrize("value, reason", [
    (b"\x00\x01binary", "JSON"), (b"[1, 2]", "object"), (None, "no body"), (b"{\"a\": ", "JSON"),
])
def test_a_broken_body_is_refused_with_the_reason(value, reason):
    key, _, headers = to_record(event())
    with pytest.raises(InvalidEvent, match=reason):
        from_record(key, value, headers)


def test_a_key_that_differs_from_the_subject_is_refused():
    _, value, headers = to_record(event())
    with pytest.raises(InvalidEvent, match="key"):
        from_record(b"other", value, headers)


def test_a_signed_event_verifies_and_any_change_breaks_it():
    key = Ed25519PrivateKey.generate()
    signed = sign(event(), key)
    parsed = from_record(*to_record(signed))
    verify(parsed, key.public_key())
    tampered = from_record(*to_record(sign(event(), key)))
    tampered = Event(**{**tampered.__dict__, "data": {"id": "c-1", "title": {"zh": "改"}}})
    with pytest.raises(InvalidEvent, match="signature"):
        verify(tampered, key.public_key())
    with pytest.raises(InvalidEvent, match="signature"):
        verify(parsed, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(InvalidEvent, match="not signed"):
        verify(event(), key.public_key())


def test_an_event_signed_with_a_school_next_key_verifies_during_a_rotation():
    current, upcoming = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    parsed = from_record(*to_record(sign(event(), upcoming)))
    verify(parsed, [current.public_key(), upcoming.public_key()])
    with pytest.raises(InvalidEvent, match="signature"):
        verify(parsed, [current.public_key()])
