"""The outbox: the change log, its feed and digest, and the relay that publishes to Kafka.

A write stores the entity's new state with `version` + 1 and `pending_since`
set, in one single-document write. The relay (in the worker) is the only
writer of sequence numbers, and only one relay of a log works at a time: the one
holding the log's lease (`Relay.lead`); others stand by. For each pending
entity, in write order, it:

1. appends (sequence, id, version, type, state) to the change log, reusing the
   entry of a version that already has one (a crash after the append re-sends
   the same sequence, so the log never holds a version twice);
2. publishes the event to `<school>.<entities>.v1` with acks=all;
3. clears `pending_since` only if the entity is still at that version.

A crash anywhere makes the relay send again; consumers keep an entity's
version and drop what is not newer, so a re-send changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from shared.clock import now_iso, wall_ms, write_order
from shared.config import Settings
from shared.events import Event, source_of, to_record

log = logging.getLogger(__name__)

# what a partner needs to drop an entry: never the content of a hidden entity
TOMBSTONE_FIELDS = ("id", "school", "version", "status", "visibility")


def pending_marker() -> dict:
    """The field a write sets so that the relay picks the entity up, in write order."""
    return {"pending_since": write_order()}


def unpublished_filter() -> dict:
    # a range rather than {"$ne": None}: the embedded server matches missing fields with $ne
    return {"pending_since": {"$gt": 0}}


def ensure_outbox_indexes(entities: Collection) -> None:
    # _id stays out of compound indexes: the embedded server fails every insert with one
    entities.create_index([("pending_since", ASCENDING)])


class BrokerReset(RuntimeError):
    """The broker lost the topic: what was sent may be gone, so it is sent again."""


class LeaseLost(RuntimeError):
    """Another relay holds the log's lease now: this one must not number entries."""


# the log's counter document: the last sequence number handed out, and the relay lease
SEQUENCE = "sequence"


@dataclass(frozen=True)
class Change:
    seq: int
    entity_id: str
    version: int
    type: str
    visible: bool
    state: dict
    time: str


class ChangeLog:
    """The append-only log of what was published, in sequence order.

    Each entry is one published version. `current` is true on an entity's
    latest entry, so the feed serves each entity's latest state once.
    """

    def __init__(self, db: Database, prefix: str = ""):
        # a service that relays several kinds of entity keeps one log per kind: prefix "slot_requests_"
        self.changes = db[f"{prefix}changes"]
        self.counters = db[f"{prefix}counters"]

    def ensure_indexes(self) -> None:
        self.changes.create_index([("entity_id", ASCENDING), ("version", ASCENDING)], unique=True)
        self.changes.create_index([("current", ASCENDING), ("seq", ASCENDING)])

    def _create_counter(self) -> bool:
        """Create the counter document if it is missing (never reset it); True if it was created.

        Done by the first relay that asks for the lease, not at start-up: web processes write nothing until asked.
        """
        created = self.counters.update_one(
            {"_id": SEQUENCE}, {"$setOnInsert": {"value": 0, "owner": None, "lease_until": 0}}, upsert=True)
        return created.upserted_id is not None

    def allocate(self, count: int, owner: str | None = None, now_ms: int = 0) -> int:
        """Reserve `count` sequence numbers; returns the first. Gaps after a crash are harmless.

        With `owner`, only while that relay holds the lease at `now_ms` (LeaseLost if not): two
        relays numbering at once could log seq 5 before seq 4, and a feed reader would skip 4.
        """
        where = {"_id": SEQUENCE}
        if owner is not None:
            where.update(owner=owner, lease_until={"$gt": now_ms})
        doc = self.counters.find_one_and_update(
            where, {"$inc": {"value": count}}, upsert=owner is None, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise LeaseLost(f"the lease of {self.counters.name} is no longer held by {owner}")
        return doc["value"] - count + 1

    def take_lease(self, owner: str, now_ms: int, until_ms: int) -> bool:
        """Take or renew the right to number this log's entries until `until_ms`; False while another holds it."""
        free = [{"owner": owner}, {"lease_until": {"$lt": now_ms}}, {"lease_until": {"$exists": False}}]
        for _ in range(2):
            # $or wrapped in $and: the embedded server drops conditions beside a top-level $or
            if self.counters.find_one_and_update({"$and": [{"_id": SEQUENCE}, {"$or": free}]},
                                                 {"$set": {"owner": owner, "lease_until": until_ms}}) is not None:
                return True
            if not self._create_counter():  # held by another relay (not merely missing)
                return False
        return False

    def release_lease(self, owner: str) -> None:
        """Give the lease up at once, so that a standby relay takes over without waiting for it to expire."""
        self.counters.update_one({"_id": SEQUENCE, "owner": owner}, {"$set": {"lease_until": 0}})

    def lease(self) -> dict:
        """{"owner", "lease_until"} of the log's lease (owner None before any relay took it)."""
        doc = self.counters.find_one({"_id": SEQUENCE}) or {}
        return {"owner": doc.get("owner"), "lease_until": doc.get("lease_until", 0)}

    def append(self, seq: int, entity_id: str, version: int, type_: str, visible: bool, state: dict,
               now: str) -> Change:
        """Store this version under `seq`, or return the entry it already has."""
        entry = {"_id": seq, "seq": seq, "entity_id": entity_id, "version": version, "type": type_,
                 "visible": visible, "state": state, "time": now, "current": True}
        try:
            self.changes.insert_one(entry)
        except DuplicateKeyError:
            existing = self.changes.find_one({"entity_id": entity_id, "version": version})
            if existing is None:  # the sequence itself was taken: never by this entity
                raise
            entry = existing
        if version > 1:
            self.changes.update_many(
                {"entity_id": entity_id, "current": True, "seq": {"$lt": entry["seq"]}},
                {"$set": {"current": False}},
            )
        return _change(entry)

    def append_batch(self, first_seq: int, entries: list[tuple], now: str) -> list[tuple[dict, "Change"]]:
        """Append (id, version, type, visible, state) entries under first_seq, first_seq + 1...

        One insert and one update for the whole batch; after a crash that left some of
        these versions logged already, falls back to append() one by one, which reuses them.
        Returns ({"_id", "version"}, change) pairs.
        """
        docs = [{"_id": first_seq + i, "seq": first_seq + i, "entity_id": entity_id, "version": version,
                 "type": type_, "visible": visible, "state": state, "time": now, "current": True}
                for i, (entity_id, version, type_, visible, state) in enumerate(entries)]
        try:
            self.changes.insert_many(docs, ordered=True)
        except BulkWriteError:
            return [({"_id": d["entity_id"], "version": d["version"]},
                     self.append(d["seq"], d["entity_id"], d["version"], d["type"], d["visible"], d["state"], now))
                    for d in docs]
        later = [d["entity_id"] for d in docs if d["version"] > 1]
        if later:
            self.changes.update_many(
                {"entity_id": {"$in": later}, "current": True, "seq": {"$lt": first_seq}},
                {"$set": {"current": False}},
            )
        return [({"_id": d["entity_id"], "version": d["version"]}, _change(d)) for d in docs]

    def head(self) -> int:
        """The highest sequence in the log (0 when empty)."""
        last = self.changes.find_one({}, sort=[("seq", DESCENDING)], projection={"seq": 1})
        return last["seq"] if last else 0

    def since(self, since: int, limit: int) -> tuple[list[Change], int, bool]:
        """Each entity's latest entry after `since`, in sequence order.

        Returns (changes, last_seq, more). With more=False, last_seq is the log's
        head read before the page, so a reader that stores it skips nothing.
        """
        head = self.head()
        cursor = self.changes.find(
            {"current": True, "seq": {"$gt": since, "$lte": head}}, sort=[("seq", ASCENDING)], limit=limit + 1
        )
        entries = [_change(e) for e in cursor]
        more = len(entries) > limit
        entries = entries[:limit]
        last_seq = entries[-1].seq if more else max(head, since)
        return entries, last_seq, more

    def digest(self) -> dict:
        """Count and SHA-256 over the sorted (id, version) pairs of the visible entities."""
        return digest_of(
            (e["entity_id"], e["version"])
            for e in self.changes.find({"current": True, "visible": True}, {"entity_id": 1, "version": 1})
        )


def digest_of(pairs) -> dict:
    """The digest a partner compares: the same function on both sides."""
    h = hashlib.sha256()
    count = 0
    for entity_id, version in sorted(pairs):
        h.update(f"{entity_id}:{version}\n".encode("utf-8"))
        count += 1
    return {"count": count, "sha256": h.hexdigest()}


def outbox_gauges(db: Database, collection: str):
    """The gauges of a write service's /metrics: its unpublished backlog and the change log's head."""
    backlog = db.command("count", collection, query=unpublished_filter())["n"]
    yield "outbox_backlog", "Entities written but not yet published", backlog
    yield "outbox_last_published_sequence", "The highest sequence in the change log", ChangeLog(db).head()


def _change(entry: dict) -> Change:
    return Change(seq=entry["seq"], entity_id=entry["entity_id"], version=entry["version"], type=entry["type"],
                  visible=entry["visible"], state=entry["state"], time=entry["time"])


@dataclass(frozen=True)
class OutboxSpec:
    """What the relay needs to know of one service's entities."""

    entity: str  # "course": the event type prefix
    topic_entity: str  # "courses": the topic and source name
    collection: str  # the MongoDB collection of the entities
    # the state partners may see, or None when the entity is hidden from them
    public_view: Callable[[dict], dict | None]
    # the service named in the events' source, when it differs from topic_entity ("visits")
    service: str = ""
    # the change log's collection-name prefix, for a second kind of entity in one service
    log_prefix: str = ""


def describe(spec: OutboxSpec, doc: dict) -> tuple[str | None, bool, dict]:
    """(event type, visible, body) of an entity's pending version; type None: nothing to publish."""
    view = spec.public_view(doc)
    was_visible = bool(doc.get("public_visible"))
    if view is not None:
        action = "updated" if was_visible else "published"
        return f"{spec.entity}.{action}.v1", True, view
    if was_visible:
        tombstone = {k: doc[k] for k in TOMBSTONE_FIELDS if k in doc}
        tombstone["id"] = doc["_id"]
        return f"{spec.entity}.withdrawn.v1", False, tombstone
    return None, False, {}


class Relay:
    """Publishes pending entities in write order; survives broker and database outages.

    Several relays of one log may run (a standby, or old and new workers during a
    deployment); only the one holding the log's lease publishes. The lease lasts
    RELAY_LEASE_SECONDS, is renewed when half spent, and fences numbering:
    `ChangeLog.allocate` refuses a relay whose lease has run out. A relay that stops
    gives the lease up; one that dies loses it when it expires.
    """

    def __init__(self, settings: Settings, db: Database, spec: OutboxSpec, producer_factory, topic_setup,
                 topic_exists: Callable[[str], bool] = lambda topic: True,
                 signer: Callable[[Event], Event] = lambda event: event, clock=now_iso, lease_clock=wall_ms):
        self.settings = settings
        self.entities = db[spec.collection]
        self.log = ChangeLog(db, spec.log_prefix)
        self.spec = spec
        self.topic = settings.topic(spec.topic_entity)
        self.source = source_of(settings.school, spec.service or spec.topic_entity)
        self.producer_factory = producer_factory
        self.topic_setup = topic_setup
        self.topic_exists = topic_exists
        self.signer = signer
        self.clock = clock
        self.lease_clock = lease_clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_until = 0  # while this relay holds the lease: its expiry (ms since the epoch)
        self.producer = None

    def setup(self) -> None:
        ensure_outbox_indexes(self.entities)
        self.log.ensure_indexes()

    def backlog(self) -> int:
        return self.entities.database.command("count", self.entities.name, query=unpublished_filter())["n"]

    def _connect(self) -> None:
        # a topic lost in a broker reset since the last batch is caught by the check after the
        # send (BrokerReset), which drops the producer: the next batch recreates both
        if self.producer is None:
            self.topic_setup([self.topic])
            self.producer = self.producer_factory()

    def _drop_producer(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=0)
            except Exception:  # closing a broken producer may fail in any way
                pass
        self.producer = None

    def lead(self) -> bool:
        """Hold the log's lease, renewing it when half spent; False while another relay holds it."""
        now = self.lease_clock()
        ttl = int(self.settings.relay_lease_seconds * 1000)
        if now < self.lease_until - ttl // 2:
            return True
        held = self.log.take_lease(self.owner, now, now + ttl)
        if held and not self.lease_until:
            log.info("relay %s of %s: took the lease", self.owner, self.spec.entity)
        elif not held and self.lease_until:
            log.warning("relay %s of %s: another relay took the lease; standing by", self.owner, self.spec.entity)
        self.lease_until = now + ttl if held else 0
        return held

    def release(self) -> None:
        if self.lease_until:
            self.lease_until = 0
            self.log.release_lease(self.owner)

    def run_once(self) -> int:
        """Publish one batch; returns how many entities were published (or found nothing to send).

        Nothing (0) while another relay holds the lease.
        """
        if not self.lead():
            return 0
        batch = list(self.entities.find(
            unpublished_filter(), sort=[("pending_since", ASCENDING), ("_id", ASCENDING)],
            limit=self.settings.relay_batch_size,
        ))
        if not batch:
            return 0
        self._connect()
        now = self.clock()
        outgoing = []  # (doc, change)
        silent = []  # hidden entities never seen by partners: nothing to send
        to_number = []
        for doc in batch:
            type_, visible, body = describe(self.spec, doc)
            if type_ is None:
                silent.append(doc)
            else:
                # a version logged before a crash is found by append_batch, which reuses its entry
                to_number.append((doc, type_, visible, body))
        if to_number:
            outgoing.extend(self.log.append_batch(
                self.log.allocate(len(to_number), self.owner, self.lease_clock()),
                [(doc["_id"], doc["version"], type_, visible, body) for doc, type_, visible, body in to_number], now,
            ))
        outgoing.sort(key=lambda pair: pair[1].seq)
        futures = []
        for doc, change in outgoing:
            event = Event(type=change.type, source=self.source, subject=change.entity_id, sequence=change.seq,
                          entityversion=change.version, data=change.state, time=change.time)
            key, value, headers = to_record(self.signer(event))
            futures.append((doc, change, self.producer.send(self.topic, key=key, value=value, headers=headers)))
        self.producer.flush(timeout=10)
        if futures and not self.topic_exists(self.topic):
            # the broker was reset during the batch and may have acknowledged records it dropped
            raise BrokerReset(f"topic {self.topic} vanished while publishing")
        acknowledged = {True: [], False: []}
        failure = None
        for doc, change, future in futures:
            try:
                future.get(timeout=10)
            except Exception as exc:  # this one stays pending; the ones that were acknowledged are marked
                failure = failure or exc
                continue
            acknowledged[change.visible].append((doc["_id"], change.version))
        acknowledged[False].extend((doc["_id"], doc["version"]) for doc in silent)
        for visible, published in acknowledged.items():
            self._mark(published, visible)
        done = len(acknowledged[True]) + len(acknowledged[False])
        if failure is not None:
            raise failure
        if futures:
            log.info("published %d %s events up to seq=%d", len(futures), self.spec.entity, outgoing[-1][1].seq)
        return done

    def _mark(self, published: list[tuple[str, int]], visible: bool) -> None:
        """Clear the pending marker of these (id, version) pairs, in two writes whatever their number.

        `public_visible` records what partners now hold, which decides the type of the
        entity's next event; an entity written again meanwhile stays pending but gets it too.
        """
        if not published:
            return
        marked = self.entities.update_many(
            {"$or": [{"_id": entity_id, "version": version} for entity_id, version in published]},
            {"$set": {"public_visible": visible}, "$unset": {"pending_since": ""}},
        )
        if marked.matched_count == len(published):
            return
        self.entities.update_many(
            {"_id": {"$in": [entity_id for entity_id, _ in published]}, **unpublished_filter()},
            {"$set": {"public_visible": visible}},
        )

    def run_forever(self, stop: threading.Event) -> None:
        backoff = 0.5
        # a standby asks for the lease a few times per lease period, not at the idle rate
        standby_wait = max(self.settings.relay_idle_seconds, min(1.0, self.settings.relay_lease_seconds / 4))
        while not stop.is_set():
            try:
                if not self.lead():
                    self._drop_producer()
                    stop.wait(standby_wait)
                    continue
                sent = self.run_once()
                backoff = 0.5
                if sent < self.settings.relay_batch_size:
                    stop.wait(self.settings.relay_idle_seconds)
            except LeaseLost as exc:
                # expired while this relay was slow (a pause longer than half the lease): stand by
                log.warning("relay %s: %s", self.owner, exc)
                self.lease_until = 0
            except PyMongoError as exc:
                log.warning("relay: database unavailable (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # broker errors of every kind: recreate the producer and the topics
                log.warning("relay: publish failed (%s: %s); retrying in %.1fs",
                            exc.__class__.__name__, exc, backoff)
                self._drop_producer()
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._drop_producer()
        try:
            self.release()
        except PyMongoError:
            pass  # the lease expires by itself

