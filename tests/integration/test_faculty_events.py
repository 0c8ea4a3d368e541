"""Faculty events against the real servers: CloudEvents on Kafka, the change feed, and what never leaves the school."""

from __future__ import annotations

import pytest

from services.faculty.app import create_app
from services.faculty.model import PRIVATE as PRIVATE_FIELDS
from services.faculty.store import ensure_indexes
from services.faculty.worker import SPEC
from shared.mongo import database
from shared.digest import digest_of
from shared.worker import make_relay
from tests.faculty_samples import PRIVATE, profile
from tests.integration.test_relay import drain
from tests.kafkautil import assert_lifecycle, cloud_event, read_topic

PUBLIC_FIELDS = {"id", "school", "status", "version", "created_at", "updated_at", "name", "title", "department",
                 "expertise", "languages", "bio", "courses", "availability", "visibility"}


@pytest.fixture
def settings(make_settings):
    return make_settings("ecnu-cto", "faculty")


@pytest.fixture
def client(settings, mongo_client):
    return create_app(settings, client=mongo_client).test_client()


@pytest.fixture
def relay(settings, mongo_client):
    relay = make_relay(settings, database(mongo_client, settings), SPEC)
    ensure_indexes(relay.entities.database)
    yield relay
    relay._drop_producer()


def test_each_write_emits_a_cloudevent_read_by_an_independent_client(client, relay, auth, settings, kafka_bootstrap):
    created = client.post("/faculty", json=profile(**PRIVATE), headers=auth()).get_json()
    url = f"/faculty/{created['id']}"
    drain(relay)
    client.put(url, json=profile(title="Chair Professor", **PRIVATE), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    client.delete(url, headers={**auth(), "If-Match": '"2"'})
    drain(relay)

    topic = settings.topic("faculty")
    assert topic.endswith("ecnu-cto.faculty.v1")
    records = read_topic(kafka_bootstrap, topic, expect=3)
    events = assert_lifecycle(records, created["id"], "/schools/ecnu-cto/faculty",
                              ["faculty.published.v1", "faculty.updated.v1", "faculty.withdrawn.v1"])
    published = events[0].get_data()
    assert set(published) == PUBLIC_FIELDS
    assert published["name"] == {"en": "Li Wei", "zh": "李伟"} and published["id"] == created["id"]
    assert published["availability"] == [{"from": "2027-04-01", "to": "2027-05-15"}]
    assert events[1].get_data()["title"] == "Chair Professor"
    # a withdrawal tells partners to drop the entry, and carries no profile content
    assert set(events[2].get_data()) <= {"id", "school", "version", "status", "visibility"}


def test_school_only_profiles_never_reach_the_topic_and_a_switch_to_school_withdraws(
        client, relay, auth, settings, kafka_bootstrap):
    hidden = client.post("/faculty", json=profile(visibility="school"), headers=auth()).get_json()
    drain(relay)
    assert read_topic(kafka_bootstrap, settings.topic("faculty"), timeout=3) == []
    url = f"/faculty/{hidden['id']}"
    client.put(url, json=profile(visibility="alliance"), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    client.put(url, json=profile(visibility="school"), headers={**auth(), "If-Match": '"2"'})
    drain(relay)
    events = [cloud_event(m) for m in read_topic(kafka_bootstrap, settings.topic("faculty"), expect=2)]
    assert [e.get_type() for e in events] == ["faculty.published.v1", "faculty.withdrawn.v1"]


def test_contact_details_and_private_notes_never_leave_the_school(client, relay, auth, settings, kafka_bootstrap):
    secrets = dict(PRIVATE)
    ids = []
    for i in range(3):
        private = {"email": f"secret.{i}@example.edu", "phone": f"+86 21 5555 000{i}",
                   "private_notes": f"confidential note {i}"}
        secrets.update({f"{k}{i}": v for k, v in private.items()})
        ids.append(client.post("/faculty", json=profile(**private), headers=auth()).get_json()["id"])
    drain(relay)
    # an update that changes only private fields, and one that changes public ones too
    client.put(f"/faculty/{ids[0]}", json=profile(**PRIVATE), headers={**auth(), "If-Match": '"1"'})
    client.put(f"/faculty/{ids[1]}", json=profile(title="Lecturer", **PRIVATE), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    # the faculty member's own update of their public fields, and a coordinator's lookup by email
    own = client.patch(f"/faculty/{ids[1]}", json={"bio": {"en": "Keeps it current."}},
                       headers={**auth("ecnu-cto", "faculty", ids[1]), "If-Match": '"2"'})
    assert own.status_code == 200
    assert client.get(f"/faculty?email={PRIVATE['email']}", headers=auth()).get_json()["items"]
    drain(relay)
    client.delete(f"/faculty/{ids[2]}", headers={**auth(), "If-Match": '"1"'})
    drain(relay)

    records = read_topic(kafka_bootstrap, settings.topic("faculty"), expect=7)
    assert len(records) == 7
    assert any(b"Keeps it current." in (m.value() or b"") for m in records)
    raw = [m.value() or b"" for m in records] + [m.key() or b"" for m in records]
    raw += [value for m in records for _, value in (m.headers() or [])]
    feed_reader = auth("sdu-sie", "partner")
    for headers in (feed_reader, auth()):
        feed = client.get("/changes?since=0", headers=headers)
        assert feed.status_code == 200 and len(feed.get_json()["changes"]) == 3
        raw.append(feed.get_data())
        raw.append(client.get("/digest", headers=headers).get_data())
    for blob in raw:
        for value in secrets.values():
            assert value.encode() not in blob, value
        for field in (*PRIVATE_FIELDS, "email_key"):
            assert f'"{field}"'.encode() not in blob, field
    # the stored profiles do hold them: the test would notice a leak
    assert client.get(f"/faculty/{ids[0]}", headers=auth()).get_json()["email"] == PRIVATE["email"]


def test_the_change_feed_and_digest_serve_the_latest_public_state(client, relay, auth):
    ids = [client.post("/faculty", json=profile(name={"en": f"P {i}"}), headers=auth()).get_json()["id"]
           for i in range(4)]
    client.post("/faculty", json=profile(visibility="school"), headers=auth())
    drain(relay)
    client.put(f"/faculty/{ids[0]}", json=profile(name={"en": "P 0"}, department="Innovation"),
               headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    partner = auth("sdu-sie", "partner")
    feed = client.get("/changes?since=0&limit=3", headers=partner).get_json()
    seen = list(feed["changes"])
    while feed["next"]:
        feed = client.get(feed["next"].replace("http://localhost", ""), headers=partner).get_json()
        seen.extend(feed["changes"])
    assert [c["id"] for c in seen] == ids[1:] + ids[:1]
    assert seen[-1]["version"] == 2 and seen[-1]["state"]["department"] == "Innovation"
    assert all(c["type"].startswith("faculty.") for c in seen)
    digest = client.get("/digest", headers=partner).get_json()
    assert digest["count"] == 4
    assert digest["sha256"] == digest_of([(i, 2 if i == ids[0] else 1) for i in ids])["sha256"]
    assert client.get("/changes", headers=auth("ecnu-cto", "student")).status_code == 403
    assert client.get("/metrics").get_data(as_text=True).count('outbox_backlog{school="ecnu-cto",service="faculty"} 0.0')
