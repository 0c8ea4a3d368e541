"""CloudEvents 1.0 in Kafka binary mode: attributes in `ce_` headers, the JSON state as the value.

An event about one entity: `id` (UUID), `source` /schools/<school>/<service>,
`type` such as course.published.v1, `subject` the entity id, `time`, and the
extensions `sequence` (the outbox position) and `entityversion`. The record key
is the entity id, so one entity's events stay in order on one partition.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
_SOURCE = re.compile(r"^/schools/(?P<school>[a-z0-9][a-z0-9-]{0,62})/(?P<service>[a-z]+)$")
_TYPE = re.compile(r"^[a-z_]+\.[a-z_]+\.v[0-9]+$")
REQUIRED = ("id", "source", "type", "specversion", "subject", "time", "sequence", "entityversion")


class InvalidEvent(ValueError):
    """A record that is not a valid catalog event; the reason goes to the dead-letter topic."""


@dataclass(frozen=True)
class Event:
    type: str
    source: str
    subject: str
    sequence: int
    entityversion: int
    data: dict
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
    extensions: dict = field(default_factory=dict)

    @property
    def school(self) -> str:
        return _SOURCE.match(self.source).group("school")


def source_of(school: str, service: str) -> str:
    return f"/schools/{school}/{service}"


def canonical_json(value) -> bytes:
    """The one serialisation of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def to_record(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) for a Kafka producer."""
    headers = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", event.id),
        ("ce_source", event.source),
        ("ce_type", event.type),
        ("ce_subject", event.subject),
        ("ce_time", event.time),
        ("ce_sequence", str(event.sequence)),
        ("ce_entityversion", str(event.entityversion)),
        ("content-type", CONTENT_TYPE),
    ]
    headers += [(f"ce_{name}", str(value)) for name, value in sorted(event.extensions.items())]
    return (
        event.subject.encode("utf-8"),
        canonical_json(event.data),
        [(name, value.encode("utf-8")) for name, value in headers],
    )


def from_record(key: bytes | None, value: bytes | None, headers) -> Event:
    """Parse and check an event's envelope and JSON body; raise InvalidEvent with the reason."""
    attrs: dict[str, str] = {}
    content_type = None
    for name, raw in headers or []:
        try:
            text = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            raise InvalidEvent(f"header {name!r} is not UTF-8") from None
        if name.startswith("ce_"):
            attrs[name[3:]] = text
        elif name.lower() == "content-type":
            content_type = text
    missing = [a for a in REQUIRED if not attrs.get(a)]
    if missing:
        raise InvalidEvent(f"missing CloudEvents attributes: {', '.join(missing)}")
    if attrs["specversion"] != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion {attrs['specversion']!r}")
    if content_type is not None and content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise InvalidEvent(f"unsupported content-type {content_type!r}")
    if not _SOURCE.match(attrs["source"]):
        raise InvalidEvent(f"source {attrs['source']!r} is not /schools/<school>/<service>")
    if not _TYPE.match(attrs["type"]):
        raise InvalidEvent(f"type {attrs['type']!r} is not <entity>.<action>.v<n>")
    try:
        sequence = int(attrs["sequence"])
        entityversion = int(attrs["entityversion"])
    except ValueError:
        raise InvalidEvent("sequence and entityversion must be integers") from None
    if not (0 < sequence < 2**63 and 0 < entityversion < 2**63):
        raise InvalidEvent("sequence and entityversion must be positive 64-bit integers")
    try:
        datetime.fromisoformat(attrs["time"])
    except ValueError:
        raise InvalidEvent(f"time {attrs['time']!r} is not RFC 3339") from None
    if key is not None and key.decode("utf-8", "replace") != attrs["subject"]:
        raise InvalidEvent("the record key differs from the event subject")
    if value is None:
        raise InvalidEvent("the event has no body")
    try:
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidEvent("the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidEvent("the body is not a JSON object")
    known = set(REQUIRED)
    extensions = {k: v for k, v in attrs.items() if k not in known}
    return Event(
        type=attrs["type"], source=attrs["source"], subject=attrs["subject"], sequence=sequence,
        entityversion=entityversion, data=data, id=attrs["id"], time=attrs["time"], extensions=extensions,
    )


# signatures: each school signs its events with its Ed25519 key; consumers verify with its public key

SIGNATURE_ATTR = "signature"


def signing_payload(event: Event) -> bytes:
    """What a signature covers: the key attributes and the body, canonically serialised."""
    return canonical_json({
        "id": event.id, "source": event.source, "type": event.type, "subject": event.subject,
        "time": event.time, "sequence": event.sequence, "entityversion": event.entityversion, "data": event.data,
    })


def sign(event: Event, private_key) -> Event:
    """The event with its `signature` extension (base64url, no padding)."""
    import base64
    from dataclasses import replace

    signature = base64.urlsafe_b64encode(private_key.sign(signing_payload(event))).decode("ascii").rstrip("=")
    return replace(event, extensions={**event.extensions, SIGNATURE_ATTR: signature})


def verify(event: Event, public_keys) -> None:
    """Raise InvalidEvent unless the event carries a valid signature by one of `public_keys`."""
    import base64

    from cryptography.exceptions import InvalidSignature

    signature = event.extensions.get(SIGNATURE_ATTR)
    if not signature:
        raise InvalidEvent("the event is not signed")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        raise InvalidEvent("the signature is not base64url") from None
    payload = signing_payload(event)
    for public_key in public_keys if isinstance(public_keys, (list, tuple)) else [public_keys]:
        try:
            public_key.verify(raw, payload)
            return
        except InvalidSignature:
            continue
    raise InvalidEvent("the signature does not verify with the source school's key")
