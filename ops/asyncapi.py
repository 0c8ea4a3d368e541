"""Write docs/asyncapi.yaml, the event catalogue as an AsyncAPI 3.0 document.

    .venv/bin/python ops/asyncapi.py          # rewrite docs/asyncapi.yaml
    .venv/bin/python ops/asyncapi.py --check  # exit 1 when the file differs from what the code gives

Channels are the topics of docs/events.md (`{school}.courses.v1` ...), messages the event types with
their CloudEvents headers (Kafka binary mode), and payloads the marshmallow schemas the services dump
their public state with, converted by apispec's MarshmallowPlugin (OpenAPI 3.1 output, which is JSON
Schema, as AsyncAPI's default schema format expects). tests/unit/test_asyncapi.py validates the
result and checks it is up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from apispec import APISpec  # noqa: E402
from apispec.ext.marshmallow import MarshmallowPlugin  # noqa: E402

OUTPUT = REPO / "docs" / "asyncapi.yaml"
BINDING_VERSION = "0.5.0"
UUID = {"type": "string", "format": "uuid"}

# channel id -> (topic after the school, entity prefix of the types, actions, payload schema, tombstones,
#                publisher, consumers, cleanup)
CHANNELS = {
    "courses": dict(
        topic="courses.v1", entity="course", actions=("published", "updated", "withdrawn"), payload="Course",
        publisher="the school's courses worker (outbox relay)", consumers=("catalog",),
        cleanup={"cleanup.policy": ["compact"]},
        title="Courses",
        description="A school's courses shared with the alliance: visibility `alliance` and status "
                    "`published`. The body is the course as its API returns it (`CourseSchema`), each offering "
                    "with its `places_left` (places less the seats approved students' requests hold; null when "
                    "the offering has no places). A seat taken or freed re-publishes the course with a newer "
                    "version and the places left read at publish time.",
    ),
    "faculty": dict(
        topic="faculty.v1", entity="faculty", actions=("published", "updated", "withdrawn"),
        payload="FacultyPublic", publisher="the school's faculty worker (outbox relay)", consumers=("catalog",),
        cleanup={"cleanup.policy": ["compact"]},
        title="Faculty profiles",
        description="Public faculty profiles (`FacultyPublicSchema`: never contact details).",
    ),
    "visits": dict(
        topic="visits.v1", entity="visit", actions=("published", "updated"), payload="Visit",
        publisher="the school's visits worker (outbox relay)", consumers=("catalog", "visits"),
        cleanup={"cleanup.policy": ["compact"]},
        title="Teaching-team visits",
        description="Visits hosted by the school with their exchange slots (`VisitSchema`), each slot with its "
                    "`places_left` (capacity less the seats approvals hold; 0 when full or the visit is "
                    "cancelled). A seat taken or freed re-publishes the visit with a newer version and the "
                    "places left read at publish time. A cancellation is an update with status `cancelled`.",
    ),
    "slotRequests": dict(
        topic="slot-requests.v1", entity="slot_request", actions=("published", "updated"), payload="SlotRequestEvent",
        publisher="the visits worker of the requesting school", consumers=("visits",), group="visits.requests",
        cleanup={"cleanup.policy": ["delete"], "retention.ms": 2592000000},
        title="Exchange-slot requests",
        description="A faculty member's request for a slot in a partner's visit, sent by the requester's "
                    "school to the host (`SlotRequestEventSchema` is what the host reads).",
    ),
    "slotDecisions": dict(
        topic="slot-decisions.v1", entity="slot_decision", actions=("published", "updated"), payload="Decision",
        publisher="the visits worker of the host school", consumers=("visits",), group="visits.decisions",
        cleanup={"cleanup.policy": ["delete"], "retention.ms": 2592000000},
        title="Exchange-slot decisions",
        description="The host's decision on a slot request (`DecisionSchema`): approved, waitlisted, declined...",
    ),
    "placeRequests": dict(
        topic="place-requests.v1", entity="place_request", actions=("published", "updated"),
        payload="PlaceRequestEvent", publisher="the courses worker of the student's school", consumers=("courses",),
        group="courses.requests", cleanup={"cleanup.policy": ["delete"], "retention.ms": 2592000000},
        title="Course-place requests",
        description="A student's request for a place in a partner's course offering, once their school's "
                    "coordinator endorsed it, and its withdrawal (`PlaceRequestEventSchema` is what the host "
                    "reads). Only the student's name, programme and statement cross: never their email, "
                    "student number or id.",
    ),
    "placeDecisions": dict(
        topic="place-decisions.v1", entity="place_decision", actions=("published", "updated"),
        payload="PlaceDecision", publisher="the courses worker of the host school", consumers=("courses",),
        group="courses.decisions", cleanup={"cleanup.policy": ["delete"], "retention.ms": 2592000000},
        title="Course-place decisions",
        description="The host's decision on a course-place request (`PlaceDecisionSchema`): pending (its "
                    "coordinator reviews), approved, waitlisted with its position, declined with the reason and "
                    "note, withdrawn; with the places left and the course and offering as decided.",
    ),
}

ACTION_TEXT = {
    "published": "The entity becomes visible to partners (for the first time, or again after a withdrawal). "
                 "The body is its full public state.",
    "updated": "A new version of an entity partners already see. The body is its full public state.",
    "withdrawn": "An entity partners saw is no longer visible to them; partners drop the entry. The body is a "
                 "tombstone: id, school, version, status and visibility only.",
}

CE_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode (docs/events.md). Header values are "
                   "UTF-8 bytes on the wire.",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_sequence",
                 "ce_entityversion", "ce_signature", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event; a re-send may differ."},
        "ce_source": {"type": "string", "pattern": "^/schools/[a-z0-9-]+/[a-z-]+$",
                      "description": "`/schools/<school>/<service>`; must name the topic's school.",
                      "examples": ["/schools/ecnu-cto/courses"]},
        "ce_type": {"type": "string", "pattern": "^[a-z_]+\\.[a-z_]+\\.v[0-9]+$",
                    "description": "`<entity>.<action>.v<n>`."},
        "ce_subject": {"type": "string", "format": "uuid", "description": "The entity id; also the record key."},
        "ce_time": {"type": "string", "format": "date-time",
                    "description": "When the relay logged the change (RFC 3339, UTC, milliseconds)."},
        "ce_sequence": {"type": "string", "pattern": "^[1-9][0-9]*$",
                        "description": "Extension: the change's position in the source's change log, increasing "
                                       "per source; the same number as in GET /changes."},
        "ce_entityversion": {"type": "string", "pattern": "^[1-9][0-9]*$",
                             "description": "Extension: the entity's version; apply only if newer than held."},
        "ce_signature": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$",
                         "description": "Extension: the school's Ed25519 signature over the canonical JSON of "
                                        "data, entityversion, id, sequence, source, subject, time and type; "
                                        "base64url without padding."},
        "content-type": {"type": "string", "const": "application/json"},
    },
}

DLQ_HEADERS = {
    "description": "The refused record's own headers, plus where it came from and why.",
    "allOf": [
        {"type": "object", "description": "Whatever CloudEvents headers the refused record carried (possibly "
                                          "none: a record may be refused for missing them)."},
        {"type": "object", "required": ["dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset", "dlq_group"],
         "properties": {
             "dlq_reason": {"type": "string", "examples": ["the signature does not verify"]},
             "dlq_topic": {"type": "string", "examples": ["sdu-sie.courses.v1"]},
             "dlq_partition": {"type": "string", "pattern": "^[0-9]+$"},
             "dlq_offset": {"type": "string", "pattern": "^[0-9]+$"},
             "dlq_group": {"type": "string", "description": "The refusing service (catalog, visits, courses).",
                           "examples": ["catalog"]},
         }},
    ],
}

TOMBSTONE = {
    "type": "object",
    "description": "What a partner needs to drop an entry; never the hidden content.",
    "required": ["id", "school", "version"],
    "properties": {
        "id": UUID,
        "school": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "status": {"type": "string"},
        "visibility": {"type": "string"},
    },
}


def payload_schemas() -> dict:
    """The payload schemas, from the services' marshmallow schemas through apispec."""
    from services.courses.schemas import CourseSchema, PlaceDecisionSchema, PlaceRequestEventSchema
    from services.faculty.schemas import FacultyPublicSchema
    from services.visits.schemas import DecisionSchema, SlotRequestEventSchema, VisitSchema

    spec = APISpec("alliance events", "1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()])
    for name, schema in (("Course", CourseSchema), ("FacultyPublic", FacultyPublicSchema), ("Visit", VisitSchema),
                         ("SlotRequestEvent", SlotRequestEventSchema), ("Decision", DecisionSchema),
                         ("PlaceRequestEvent", PlaceRequestEventSchema), ("PlaceDecision", PlaceDecisionSchema)):
        spec.components.schema(name, schema=schema)
    return spec.to_dict()["components"]["schemas"]


def camel(*words: str) -> str:
    parts = [p for w in words for p in w.replace("-", "_").split("_")]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def build() -> dict:
    schemas = payload_schemas()
    for name in ("Course", "FacultyPublic", "Visit", "SlotRequestEvent", "Decision", "PlaceRequestEvent",
                 "PlaceDecision"):
        schemas[name].setdefault("description", f"The public state carried by the events (marshmallow {name}Schema).")
    schemas["Tombstone"] = TOMBSTONE
    schemas["CloudEventsHeaders"] = CE_HEADERS
    schemas["DeadLetterHeaders"] = DLQ_HEADERS

    channels, operations, messages = {}, {}, {}
    for cid, ch in CHANNELS.items():
        channel_messages = {}
        for action in ch["actions"]:
            type_ = f"{ch['entity']}.{action}.v1"
            mid = camel(ch["entity"], action)
            messages[mid] = {
                "name": type_,
                "title": type_,
                "summary": ACTION_TEXT[action].split(". ")[0] + ".",
                "description": ACTION_TEXT[action],
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                "payload": {"$ref": "#/components/schemas/" + ("Tombstone" if action == "withdrawn" else ch["payload"])},
                "bindings": {"kafka": {"key": UUID, "bindingVersion": BINDING_VERSION}},
                "x-cloudevents-type": type_,
            }
            channel_messages[mid] = {"$ref": f"#/components/messages/{mid}"}
        channels[cid] = {
            "address": "{school}." + ch["topic"],
            "title": ch["title"],
            "description": ch["description"] + " Record key = entity id = `ce_subject`, so one entity's events "
                                               "stay in order. Published by " + ch["publisher"] + ".",
            "parameters": {"school": {"$ref": "#/components/parameters/school"}},
            "messages": channel_messages,
            "bindings": {"kafka": {"partitions": 3, "topicConfiguration": ch["cleanup"],
                                   "bindingVersion": BINDING_VERSION}},
        }
        refs = [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in channel_messages]
        operations[camel("publish", cid)] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "title": f"Publish {ch['title'].lower()}",
            "summary": f"The outbox relay of {ch['publisher']} publishes each change it logged, signed, acks=all.",
            "messages": refs,
        }
        for consumer in ch["consumers"]:
            operations[camel("receive", cid, "in", consumer)] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "title": f"{consumer.capitalize()} consumes {ch['title'].lower()}",
                "summary": f"Every school's {consumer} worker reads every school's topic: checks the source "
                           "school and the signature, applies by entity version, commits after the write; "
                           "refused records go to its own school's DLQ.",
                "messages": refs,
                "bindings": {"kafka": {"groupId": {"type": "string", "examples": [
                    "ecnu-cto.catalog" if consumer == "catalog" else f"ecnu-cto.{ch.get('group', 'visits.decisions')}"]},
                    "bindingVersion": BINDING_VERSION}},
            }

    messages["deadLetter"] = {
        "name": "dead-letter",
        "title": "A refused record",
        "summary": "A record a consumer refused, unchanged (key, value, headers), with the reason.",
        "description": "Refused: a missing attribute, another specversion or content type, a malformed source "
                       "or type, a bad sequence or entityversion, a time that is not RFC 3339, a body that is not "
                       "a JSON object, a source school that is not the topic's, a signature that does not verify, "
                       "a body that fails the consumer's schema, a body over 512 KiB.",
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The refused record's value, unchanged (may be anything)."},
    }
    channels["dlq"] = {
        "address": "{school}.dlq",
        "title": "Dead letters",
        "description": "Records refused by the school's own consumers, kept 90 days for inspection "
                       "(docs/operations.md: drain the DLQ).",
        "parameters": {"school": {"$ref": "#/components/parameters/school"}},
        "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        "bindings": {"kafka": {"partitions": 3,
                               "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": 7776000000},
                               "bindingVersion": BINDING_VERSION}},
    }
    operations["deadLetterRefused"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/dlq"},
        "title": "Dead-letter a refused record",
        "summary": "A consumer (catalog, visits, courses) writes a record it refuses to its own school's DLQ and goes on.",
        "messages": [{"$ref": "#/channels/dlq/messages/deadLetter"}],
    }

    return {
        "asyncapi": "3.0.0",
        "id": "urn:alliance-catalog:events",
        "info": {
            "title": "Alliance catalog events",
            "version": "1.0.0",
            "description": "What the partner schools tell each other about their courses, faculty, visits, "
                           "exchange slots and course places: CloudEvents 1.0 on the alliance's Kafka, binary mode, each event "
                           "signed with its school's Ed25519 key. One topic per school and entity kind; a school "
                           "publishes only to its own. Delivery is at least once, in order per entity; consumers "
                           "apply an event only if its `entityversion` is newer. Schema evolution: an added "
                           "optional field is a minor change on `.v1`; anything else is a new `.v2` topic. "
                           "Generated by ops/asyncapi.py from the services' schemas; prose in docs/events.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka", "protocolVersion": "3.9.0",
                           "description": "The alliance's Apache Kafka (docker-compose.yml, KRaft)."},
            "embedded": {"host": "127.0.0.1:9092", "protocol": "kafka",
                         "description": "The Tansu broker of `make run` (memory only)."},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": {"school": {
                "description": "The school id, as in the alliance configuration (config/alliance.json). "
                               "`KAFKA_TOPIC_PREFIX` is prepended to the whole name when set.",
                "examples": ["ecnu-cto", "sdu-sie"],
            }},
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
        },
    }


def render() -> str:
    header = ("# The alliance's event catalogue (AsyncAPI 3.0). Generated by ops/asyncapi.py from the services'\n"
              "# marshmallow schemas: do not edit by hand; run `.venv/bin/python ops/asyncapi.py`.\n")
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=110)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO)} is out of date: run .venv/bin/python ops/asyncapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
