"""docs/asyncapi.yaml: a valid AsyncAPI 3.0 document that names every event type and matches the code.

Validation is twofold. The document is checked against the official AsyncAPI 3.0.0 JSON Schema
(tests/unit/data/asyncapi-3.0.0-schema.json, from the @asyncapi/specs package) with jsonschema_rs.
The AsyncAPI validators tried from PyPI were not usable: pydantic-asyncapi 0.3.2 installs and has
v3 models, but refuses any Kafka message binding (valid per the specification), and
asyncapi-python-parser-jonaslagoni 0.5.0 reads its JSON Schemas from a path relative to the working
directory that its package does not ship. The rules JSON Schema cannot express are checked here:
every $ref resolves, an operation's messages belong to its channel, every address parameter is
declared, every event type of docs/events.md has a message.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "asyncapi.yaml"
EVENTS_MD = REPO / "docs" / "events.md"
OFFICIAL_SCHEMA = Path(__file__).resolve().parent / "data" / "asyncapi-3.0.0-schema.json"
CE_REQUIRED = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_sequence",
               "ce_entityversion", "ce_signature", "content-type"}


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(DOC.read_text(encoding="utf-8"))


def generator():
    spec = importlib.util.spec_from_file_location("ops_asyncapi", REPO / "ops" / "asyncapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref}: no {part!r}"
        node = node[part]
    return node


def refs(node, path="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{path}/{i}")


def messages_of(doc: dict) -> dict[str, dict]:
    return {m["name"]: m for m in doc["components"]["messages"].values()}


def test_it_is_an_asyncapi_3_document_with_its_required_fields(doc):
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["channels"] and doc["operations"] and doc["components"]["messages"]
    for server in doc["servers"].values():
        assert server["protocol"] == "kafka" and server["host"]
    for cid, channel in doc["channels"].items():
        assert channel["address"] and channel["messages"], cid
    for oid, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), oid
        assert op["channel"]["$ref"].startswith("#/channels/"), oid


def test_every_reference_resolves(doc):
    found = list(refs(doc))
    assert len(found) > 50
    for where, ref in found:
        assert resolve(doc, ref) is not None, where


def test_operations_send_and_receive_only_messages_of_their_channel(doc):
    for oid, op in doc["operations"].items():
        channel_ref = op["channel"]["$ref"]
        channel = resolve(doc, channel_ref)
        assert op["messages"], oid
        for message in op["messages"]:
            # AsyncAPI 3: an operation's messages are references into its channel's messages
            assert message["$ref"].startswith(channel_ref + "/messages/"), (oid, message)
            name = message["$ref"].rsplit("/", 1)[1]
            assert name in channel["messages"], (oid, name)


def test_every_address_parameter_is_declared(doc):
    for cid, channel in doc["channels"].items():
        params = set(re.findall(r"\{(\w+)\}", channel["address"]))
        assert params == set(channel.get("parameters", {})), cid


def test_every_event_type_in_events_md_has_a_message_on_its_topic(doc):
    text = EVENTS_MD.read_text(encoding="utf-8")
    types = set(re.findall(r"`([a-z_]+\.(?:published|updated|withdrawn)\.v\d+)`", text))
    assert len(types) >= 12, types
    messages = messages_of(doc)
    assert sorted(types - set(messages)) == []
    # and nothing the events page does not know
    assert sorted(set(messages) - types - {"dead-letter"}) == []
    topics = {c["address"].split(".", 1)[1] if "." in c["address"] else c["address"]: c
              for c in doc["channels"].values()}
    for topic in re.findall(r"`<school>\.([a-z-]+\.v\d+)`", text):
        assert topic in topics, topic
    for type_ in types:
        carrying = [cid for cid, c in doc["channels"].items()
                    if any(resolve(doc, m["$ref"])["name"] == type_ for m in c["messages"].values())]
        assert len(carrying) == 1, (type_, carrying)


def test_every_event_message_carries_the_cloudevents_headers_and_a_payload(doc):
    for name, message in messages_of(doc).items():
        headers = resolve(doc, message["headers"]["$ref"])
        assert message["payload"], name
        if name == "dead-letter":
            required = {r for part in headers["allOf"] for r in part.get("required", [])}
            assert {"dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset", "dlq_group"} <= required
            continue
        assert set(headers["required"]) == CE_REQUIRED, name
        assert message["contentType"] == "application/json"
        payload = resolve(doc, message["payload"]["$ref"])
        assert {"id", "school", "version"} <= set(payload["properties"]), name
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"


def test_it_validates_against_the_official_asyncapi_3_schema(doc):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{list(e.instance_path)}: {e.message}"[:300] for e in validator.iter_errors(doc)]
    assert errors == []
    # the validator does look inside: a wrong action and a wrong binding are refused
    broken = json.loads(json.dumps(doc))
    broken["operations"]["publishCourses"]["action"] = "publish"
    broken["channels"]["courses"]["bindings"]["kafka"]["partitions"] = "three"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_a_course_as_the_relay_publishes_it_fits_the_payload_schema(doc):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    from services.courses.worker import public_view
    from tests.samples import course

    stored = {**course(), "_id": str(uuid.uuid4()), "school": "ecnu-cto", "version": 3,
              "created_at": "2026-11-24T00:00:00.000Z", "updated_at": "2026-11-24T00:00:01.000Z"}
    body = public_view(stored)
    schema = {**doc["components"]["schemas"]["Course"], "components": doc["components"]}
    validator = jsonschema_rs.validator_for(schema)
    assert [e.message for e in validator.iter_errors(body)] == []
    assert not validator.is_valid({**body, "credits": "many"})


def test_the_document_is_what_the_generator_makes_from_the_current_schemas():
    assert DOC.read_text(encoding="utf-8") == generator().render(), \
        "docs/asyncapi.yaml is out of date: run .venv/bin/python ops/asyncapi.py"
