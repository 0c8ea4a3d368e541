"""The outbox relay against the real servers: events on Kafka, the change log, the feed."""

from __future__ import annotations

import threading

import pytest

from services.courses.app import create_app
from services.courses.store import ensure_indexes
from services.courses.worker import SPEC
from shared.mongo import connect, database
from shared.changelog import ChangeLog, LeaseLost
from shared.outbox import unpublished_filter
from shared.worker import make_relay
from tests.kafkautil import assert_lifecycle, cloud_event, read_topic, read_until
from tests.samples import course


@pytest.fixture
def settings(make_settings):
    return make_settings("ecnu-cto", "courses")


@pytest.fixture
def app(settings, mongo_client):
    return create_app(settings, client=mongo_client)


@pytest.fixture
def relay(settings, mongo_client):
    relay = make_relay(settings, database(mongo_client, settings), SPEC)
    ensure_indexes(relay.entities.database)
    yield relay
    relay._drop_producer()


def backlog(relay) -> int:
    """How many entities wait for the relay."""
    return relay.entities.count_documents(unpublished_filter())


def drain(relay) -> int:
    total = 0
    for _ in range(100):
        sent = relay.run_once()
        total += sent
        if sent == 0:
            return total
    raise AssertionError("the relay never ran out of work")


def test_each_write_emits_a_cloudevent_read_by_an_independent_client(app, relay, auth, settings, kafka_bootstrap):
    client = app.test_client()
    created = client.post("/courses", json=course(), headers=auth()).get_json()
    url = f"/courses/{created['id']}"
    drain(relay)
    client.put(url, json=course(hours=50), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    client.delete(url, headers={**auth(), "If-Match": '"2"'})
    drain(relay)

    records = read_topic(kafka_bootstrap, settings.topic("courses"), expect=3)
    events = assert_lifecycle(records, created["id"], "/schools/ecnu-cto/courses",
                              ["course.published.v1", "course.updated.v1", "course.withdrawn.v1"])
    published = events[0].get_data()
    assert published["code"] == "MEM-6101" and published["title"]["zh"] == "技术战略与创新管理"
    assert published["id"] == created["id"] and published["version"] == 1
    assert events[1].get_data()["hours"] == 50
    # a withdrawal tells partners to drop the entry, and carries no course content
    assert set(events[2].get_data()) <= {"id", "school", "version", "status", "visibility"}


def test_school_only_and_draft_courses_never_reach_the_topic(app, relay, auth, settings, kafka_bootstrap):
    client = app.test_client()
    hidden = client.post("/courses", json=course(code="S-1", visibility="school"), headers=auth()).get_json()
    client.post("/courses", json=course(code="D-1", status="draft"), headers=auth())
    drain(relay)
    assert read_topic(kafka_bootstrap, settings.topic("courses"), timeout=3) == []
    client.put(f"/courses/{hidden['id']}", json=course(code="S-1", visibility="alliance"),
               headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    client.put(f"/courses/{hidden['id']}", json=course(code="S-1", visibility="school"),
               headers={**auth(), "If-Match": '"2"'})
    drain(relay)
    events = [cloud_event(m) for m in read_topic(kafka_bootstrap, settings.topic("courses"), expect=2)]
    assert [e.get_type() for e in events] == ["course.published.v1", "course.withdrawn.v1"]


def test_the_change_feed_serves_each_course_latest_state_once_in_sequence_order(app, relay, auth):
    client = app.test_client()
    ids = [client.post("/courses", json=course(code=f"F-{i}"), headers=auth()).get_json()["id"] for i in range(5)]
    drain(relay)
    client.put(f"/courses/{ids[0]}", json=course(code="F-0", hours=10), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    partner = auth("sdu-sie", "partner")
    feed = client.get("/changes?since=0&limit=2", headers=partner).get_json()
    seen, pages = [], 0
    while True:
        seen.extend(feed["changes"])
        pages += 1
        if not feed["next"]:
            break
        feed = client.get(feed["next"].replace("http://localhost", ""), headers=partner).get_json()
    assert pages == 3
    assert [c["id"] for c in seen] == ids[1:] + ids[:1]
    assert seen[-1]["version"] == 2 and seen[-1]["state"]["hours"] == 10
    seqs = [c["seq"] for c in seen]
    assert seqs == sorted(seqs) and feed["last_seq"] == seqs[-1]
    later = client.get(f"/changes?since={feed['last_seq']}", headers=partner).get_json()
    assert later["changes"] == [] and later["last_seq"] == feed["last_seq"]
    assert client.get("/changes", headers=auth("sdu-sie", "student")).status_code == 403
    assert client.get("/changes", headers=auth("ecnu-cto", "student")).status_code == 403


def test_the_digest_counts_alliance_courses_by_id_and_version(app, relay, auth):
    client = app.test_client()
    a = client.post("/courses", json=course(code="G-1"), headers=auth()).get_json()
    client.post("/courses", json=course(code="G-2", visibility="school"), headers=auth())
    drain(relay)
    partner = auth("sdu-sie", "partner")
    first = client.get("/digest", headers=partner).get_json()
    assert first["count"] == 1
    client.put(f"/courses/{a['id']}", json=course(code="G-1", hours=1), headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    second = client.get("/digest", headers=partner).get_json()
    assert second["count"] == 1 and second["sha256"] != first["sha256"]
    from shared.digest import digest_of

    assert second["sha256"] == digest_of([(a["id"], 2)])["sha256"]


def test_the_digest_is_kept_by_the_relay_and_equals_one_computed_from_every_current_entry(app, relay, auth):
    from shared.digest import digest_of

    client = app.test_client()
    docs = [client.post("/courses", json=course(code=f"K-{i}"), headers=auth()).get_json() for i in range(5)]
    drain(relay)
    client.put(f"/courses/{docs[0]['id']}", json=course(code="K-0", hours=2), headers={**auth(), "If-Match": '"1"'})
    client.put(f"/courses/{docs[1]['id']}", json=course(code="K-1", visibility="school"),
               headers={**auth(), "If-Match": '"1"'})
    client.delete(f"/courses/{docs[2]['id']}", headers={**auth(), "If-Match": '"1"'})
    drain(relay)
    # made visible again after hiding: its entity's earlier entry was hidden, so nothing is taken away
    client.put(f"/courses/{docs[1]['id']}", json=course(code="K-1"), headers={**auth(), "If-Match": '"2"'})
    drain(relay)
    log = ChangeLog(relay.log.changes.database)
    expected = digest_of((e["entity_id"], e["version"]) for e in log.changes.find({"current": True, "visible": True}))
    assert expected["count"] == 4
    served = app.test_client().get("/digest", headers=auth("sdu-sie", "partner")).get_json()
    assert {k: served[k] for k in ("count", "sha256")} == expected
    assert served["last_seq"] == log.head()
    # the relay folded every entry: GET /digest reads one document and no entry
    assert log.counters.find_one({"_id": "digest"})["upto"] == log.head()


def test_writes_succeed_while_the_broker_is_down_and_the_backlog_is_published_after(
        app, settings, mongo_client, auth, broker):
    relay = make_relay(settings, database(mongo_client, settings), SPEC)
    ensure_indexes(relay.entities.database)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    client = app.test_client()
    try:
        client.post("/courses", json=course(code="B-0"), headers=auth())
        assert read_topic(broker.bootstrap, settings.topic("courses"), expect=1)
        broker.stop()
        for i in range(1, 21):
            assert client.post("/courses", json=course(code=f"B-{i}"), headers=auth()).status_code == 201
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'outbox_backlog{school="ecnu-cto",service="courses"} 20.0' in metrics
        broker.start()
        expected = {f"B-{i}" for i in range(1, 21)}
        codes = lambda records: {cloud_event(m).get_data()["code"] for m in records}
        records = read_until(broker.bootstrap, settings.topic("courses"), lambda r: codes(r) >= expected, 40)
        # at least once: a send that failed while the broker came back may be repeated, never lost
        assert codes(records) == expected
        assert backlog(relay) == 0
    finally:
        stop.set()
        thread.join(15)
        if broker.proc is None:
            broker.start()


def test_the_change_log_holds_each_version_once_across_resends(app, relay, auth, settings, mongo_client):
    client = app.test_client()
    for i in range(10):
        client.post("/courses", json=course(code=f"R-{i}"), headers=auth())
    # a crash after the change log append (confirmed: the lease held) and before the mark: the relay
    # finds the entries again and keeps their sequences
    db = database(mongo_client, settings)
    batch = list(db["courses"].find({}))
    log = ChangeLog(db)
    first = log.allocate(len(batch))
    log.confirm(log.append_batch(
        first, [(doc["_id"], 1, "course.published.v1", True, {"id": doc["_id"]}) for doc in batch], "t"))
    drain(relay)
    entries = list(db["changes"].find({}))
    assert len(entries) == 10
    assert sorted(e["seq"] for e in entries) == list(range(first, first + 10))
    assert backlog(relay) == 0


def test_of_two_relays_of_one_service_only_the_lease_holder_publishes_and_the_other_takes_over(
        app, settings, mongo_client, auth, kafka_bootstrap):
    db = database(mongo_client, settings)
    relays = [make_relay(settings, db, SPEC) for _ in range(2)]
    ensure_indexes(db)
    stops = [threading.Event() for _ in relays]
    threads = [threading.Thread(target=r.run_forever, args=(s,), daemon=True) for r, s in zip(relays, stops)]
    for thread in threads:
        thread.start()
    client = app.test_client()
    log = ChangeLog(db)
    try:
        for i in range(60):
            assert client.post("/courses", json=course(code=f"L-{i}"), headers=auth()).status_code == 201
        read_until(kafka_bootstrap, settings.topic("courses"), lambda r: len(r) >= 60, 30)
        leader = next(r for r in relays if r.owner == log.lease()["owner"])
        standby = next(r for r in relays if r is not leader)
        assert standby.lease_until == 0
        # the leader stops (a deployment replacing it): it gives the lease up, the standby publishes at once
        stops[relays.index(leader)].set()
        threads[relays.index(leader)].join(15)
        for i in range(60, 80):
            assert client.post("/courses", json=course(code=f"L-{i}"), headers=auth()).status_code == 201
        records = read_until(kafka_bootstrap, settings.topic("courses"), lambda r: len(r) >= 80, 30)
        assert log.lease()["owner"] == standby.owner
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(15)
    # one numbering, each version once, and no event sent twice (nothing crashed, nothing re-sent)
    entries = list(db["changes"].find({}, {"seq": 1}))
    assert len(entries) == 80
    keys = [m.key().decode() for m in records]
    assert len(keys) == 80 and len(set(keys)) == 80


def test_a_relay_whose_lease_ran_out_numbers_nothing(app, settings, mongo_client, auth):
    db = database(mongo_client, settings)
    slow, other = make_relay(settings, db, SPEC), make_relay(settings, db, SPEC)
    ensure_indexes(db)
    now = 1_000_000
    slow.lease_clock = lambda: now
    assert slow.lead()
    # the other relay is not given the lease while it is held ...
    other.lease_clock = lambda: now + 1000
    assert not other.lead()
    # ... but is once it expired (the slow relay paused for longer than the lease)
    other.lease_clock = lambda: now + int(settings.relay_lease_seconds * 1000) + 1
    assert other.lead()
    client = app.test_client()
    assert client.post("/courses", json=course(code="P-1"), headers=auth()).status_code == 201
    # the slow relay still believes it leads (its clock has not moved); numbering refuses it
    assert slow.lead()
    with pytest.raises(LeaseLost):
        slow.run_once()
    assert db["changes"].count_documents({}) == 0
    assert backlog(slow) == 1
    slow._drop_producer()


class StalledPair:
    """Two relays of one log: `slow` leads at first; `expire()` moves its clock past its lease, and the
    successor's clock is already there, so the successor may take over."""

    def __init__(self, settings, db):
        ensure_indexes(db)
        self.slow, self.successor = make_relay(settings, db, SPEC), make_relay(settings, db, SPEC)
        self.now = 1_000_000
        self.expired = self.now + int(settings.relay_lease_seconds * 1000) + 1
        self.slow.lease_clock = lambda: self.now
        self.successor.lease_clock = lambda: self.expired

    def expire(self) -> None:
        self.now = self.expired
        assert self.successor.lead()


def test_a_relay_that_stalls_between_numbering_and_logging_keeps_nothing_a_reader_could_skip(
        app, settings, mongo_client, auth):
    db = database(mongo_client, settings)
    pair = StalledPair(settings, db)
    slow, successor = pair.slow, pair.successor
    client = app.test_client()
    assert client.post("/courses", json=course(code="S-1"), headers=auth()).status_code == 201
    log = ChangeLog(db)
    insert = log.append_batch

    def stalled_insert(first_seq, entries, now_text):
        # the slow relay has its numbers; it pauses past its lease, and the successor takes over meanwhile
        pair.expire()
        assert client.post("/courses", json=course(code="S-2"), headers=auth()).status_code == 201
        assert drain(successor) == 2
        return insert(first_seq, entries, now_text)

    slow.log.append_batch = stalled_insert
    with pytest.raises(LeaseLost):
        slow.run_once()
    # what the slow relay logged under its lower sequence is gone; the successor logged both courses after it
    seqs = sorted(e["seq"] for e in db["changes"].find({}, {"seq": 1}))
    assert seqs == [2, 3]
    changes, last_seq, _ = log.since(0, 10)
    assert [c.seq for c in changes] == [2, 3] and last_seq == 3
    assert backlog(slow) == 0
    slow._drop_producer()
    successor._drop_producer()


def test_a_stalled_relays_late_entry_is_logged_anew_by_its_successor_and_never_lost(app, settings, mongo_client, auth):
    db = database(mongo_client, settings)
    pair = StalledPair(settings, db)
    slow, successor = pair.slow, pair.successor
    client = app.test_client()
    assert client.post("/courses", json=course(code="T-1"), headers=auth()).status_code == 201
    log = ChangeLog(db)
    check = log.holds_lease

    def late_check(owner, now_ms):
        # the slow relay inserted after its lease ran out; the successor publishes that course before the
        # slow relay looks at its lease again
        pair.expire()
        assert drain(successor) == 1
        return check(owner, now_ms)

    slow.log.holds_lease = late_check
    with pytest.raises(LeaseLost):
        slow.run_once()
    entries = list(db["changes"].find({}))
    # one entry, the successor's, above the slow relay's sequence, current and confirmed: the feed serves it
    assert [(e["seq"], e["current"], e.get("unconfirmed")) for e in entries] == [(2, True, None)]
    changes, last_seq, _ = log.since(0, 10)
    assert [c.seq for c in changes] == [2] and last_seq == 2
    assert backlog(slow) == 0
    slow._drop_producer()
    successor._drop_producer()


def test_the_feed_serves_every_change_of_a_log_longer_than_nine_entries(app, relay, auth, settings):
    # the embedded server sorts _id as text ("9" after "12"): the head is read by seq, never by _id
    client = app.test_client()
    for i in range(12):
        assert client.post("/courses", json=course(code=f"H-{i}"), headers=auth()).status_code == 201
    drain(relay)
    partner = auth("sdu-sie", "partner")
    assert ChangeLog(relay.entities.database).head() == 12
    feed = client.get("/changes?since=0&limit=100", headers=partner).get_json()
    assert [c["seq"] for c in feed["changes"]] == list(range(1, 13)) and feed["last_seq"] == 12
    digest = client.get("/digest", headers=partner).get_json()
    assert digest["count"] == 12 and digest["last_seq"] == 12
