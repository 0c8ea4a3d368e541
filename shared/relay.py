"""The outbox relay: publishes each pending entity's new version to Kafka, in write order.

A write stores the entity's new state with `version` + 1 and `pending_since`
set, in one single-document write (shared/entities.py, with the marker of
shared/outbox.py). The relay (in the
worker) is the only writer of sequence numbers, and only one relay of a log
works at a time: the one holding the log's lease (`Relay.lead`); others stand
by. For each pending entity, in write order, it:

1. appends (sequence, id, version, type, state) to the change log, and keeps
   the entries only if its lease held over the append (`Relay._append`); a
   version logged and confirmed before a crash keeps its entry and sequence,
   and the log never holds a version twice;
2. publishes the event to `<school>.<entities>.v1` with acks=all;
3. clears `pending_since` only if the entity is still at that version.

A crash anywhere makes the relay send again; consumers keep an entity's
version and drop what is not newer, so a re-send changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Callable

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from shared.changelog import Change, ChangeLog, LeaseLost
from shared.clock import now_iso, wall_ms
from shared.config import Settings
from shared.events import Event, source_of, to_record
from shared.outbox import OutboxSpec, describe, unpublished_filter

log = logging.getLogger(__name__)


class BrokerReset(RuntimeError):
    """The broker lost the topic: what was sent may be gone, so it is sent again."""


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
            outgoing.extend(self._append(
                [(doc["_id"], doc["version"], type_, visible, body) for doc, type_, visible, body in to_number], now))
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

    def _append(self, entries: list[tuple], now: str) -> list[tuple[dict, Change]]:
        """Number and log these entries, fenced by the lease at both ends.

        `allocate` refuses a relay whose lease ran out. A relay that stalls after it (a
        long pause between reserving and inserting) could insert sequences below those a
        successor has logged, after a feed reader moved past them, which would then never
        see them. So the entries go in `unconfirmed`, and the lease is checked again after
        the insert: if it ran out meanwhile, the entries this relay inserted are removed
        (their entities stay pending and the lease holder numbers them anew), and LeaseLost
        makes this relay stand by; if it held, they are confirmed. A confirmed entry was
        inserted while its relay held the lease, so below any sequence a successor can
        allocate; a successor that finds an unconfirmed entry of a version it publishes logs
        that version anew under its own sequence (`ChangeLog._insert_or_reuse`), whatever the
        stalled relay does next.
        """
        appended = self.log.append_batch(self.log.allocate(len(entries), self.owner, self.lease_clock()),
                                         entries, now)
        if not self.log.holds_lease(self.owner, self.lease_clock()):
            self.log.retract(appended.inserted)
            raise LeaseLost(f"the lease of {self.spec.entity} ran out while appending; entries retracted")
        self.log.confirm(appended)
        # the digest partners compare, kept current here so that GET /digest reads one document
        self.log.fold_digest()
        return appended.pairs

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

