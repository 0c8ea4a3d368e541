"""The change log of one kind of entity: what the relay published, in sequence order.

Each entry is one published version, stored under its sequence number as `_id`
and `seq`; the log's head is read from an index on `seq` alone (not from `_id`:
the embedded server sorts `_id` as text, so 9 would come after 12).
`current` is true on an entity's latest entry, so the feed serves each entity's
latest state once. The log's counter document holds the last sequence number
handed out and the relay lease (see shared/relay.py): only the lease holder
numbers entries, and an entry counts only once its relay has confirmed that the
lease held over its insert (`confirm`); until then it is `unconfirmed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.digest import LANES, hex_of, pair_lanes

# the log's counter document: the last sequence number handed out, and the relay lease
SEQUENCE = "sequence"
# the digest's document: count and hash lanes of the visible (id, version) pairs up to a sequence
DIGEST = "digest"
DIGEST_BATCH = 2000


class LeaseLost(RuntimeError):
    """Another relay holds the log's lease now: this one must not number entries."""


@dataclass(frozen=True)
class Change:
    seq: int
    entity_id: str
    version: int
    type: str
    visible: bool
    state: dict
    time: str


@dataclass(frozen=True)
class Appended:
    """What `append_batch` wrote: the (entity ref, change) pairs, and the sequences it inserted itself (unconfirmed)."""

    pairs: list
    inserted: list
    # each pair's change supersedes the entity's earlier entries from this sequence on (None: its own seq)
    superseding_from: int | None


class ChangeLog:
    """The append-only log of what was published, in sequence order."""

    def __init__(self, db: Database, prefix: str = ""):
        # a service that relays several kinds of entity keeps one log per kind: prefix "slot_requests_"
        self.changes = db[f"{prefix}changes"]
        self.counters = db[f"{prefix}counters"]

    def ensure_indexes(self) -> None:
        self.changes.create_index([("entity_id", ASCENDING), ("version", ASCENDING)], unique=True)
        self.changes.create_index([("current", ASCENDING), ("seq", ASCENDING)])
        # the head: a sort on seq alone, which the (current, seq) index cannot serve
        self.changes.create_index([("seq", ASCENDING)])

    # the lease and the sequence counter

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

    def holds_lease(self, owner: str, now_ms: int) -> bool:
        """Whether `owner` still holds the lease at `now_ms` (read from the database, not remembered)."""
        return self.counters.find_one(
            {"_id": SEQUENCE, "owner": owner, "lease_until": {"$gt": now_ms}}, {"_id": 1}) is not None

    def release_lease(self, owner: str) -> None:
        """Give the lease up at once, so that a standby relay takes over without waiting for it to expire."""
        self.counters.update_one({"_id": SEQUENCE, "owner": owner}, {"$set": {"lease_until": 0}})

    def lease(self) -> dict:
        """{"owner", "lease_until"} of the log's lease (owner None before any relay took it)."""
        doc = self.counters.find_one({"_id": SEQUENCE}) or {}
        return {"owner": doc.get("owner"), "lease_until": doc.get("lease_until", 0)}

    # appending

    def append_batch(self, first_seq: int, entries: list[tuple], now: str) -> Appended:
        """Insert (id, version, type, visible, state) entries under first_seq, first_seq + 1...

        One insert for the whole batch; after a crash that left some of these versions
        logged already, falls back to one insert per entry (`_insert_or_reuse`). The new
        entries are `unconfirmed` and the earlier entries of these entities stay current
        until `confirm`, which the relay calls once it has checked that its lease held over
        the insert (or `retract` if not).
        """
        docs = [_entry(first_seq + i, entity_id, version, type_, visible, state, now)
                for i, (entity_id, version, type_, visible, state) in enumerate(entries)]
        try:
            self.changes.insert_many(docs, ordered=True)
        except BulkWriteError:
            pairs, inserted = [], []
            for d in docs:
                entry, created = self._insert_or_reuse(d)
                pairs.append(({"_id": d["entity_id"], "version": d["version"]}, _change(entry)))
                if created:
                    inserted.append(d["_id"])
            return Appended(pairs, inserted, superseding_from=None)
        pairs = [({"_id": d["entity_id"], "version": d["version"]}, _change(d)) for d in docs]
        return Appended(pairs, [d["_id"] for d in docs], superseding_from=first_seq)

    def _insert_or_reuse(self, entry: dict) -> tuple[dict, bool]:
        """Store this version under its seq, or keep the entry it already has; (entry, inserted by this relay).

        A version logged and confirmed before a crash keeps its entry (and sequence). One
        logged but unconfirmed may be a stalled relay's, inserted after its lease ran out
        and below sequences a feed reader has passed: it is logged anew under this seq.
        """
        for _ in range(3):
            try:
                self.changes.insert_one(entry)
                return entry, True
            except DuplicateKeyError:
                existing = self.changes.find_one({"entity_id": entry["entity_id"], "version": entry["version"]})
                if existing is None:  # the sequence itself was taken: never by this entity
                    raise
                if existing["_id"] == entry["_id"]:  # this batch's insert_many stored it before it failed
                    return existing, True
                if not existing.get("unconfirmed"):
                    return existing, False
                self.changes.delete_one({"_id": existing["_id"], "unconfirmed": True})
        raise RuntimeError(f"could not log {entry['entity_id']} v{entry['version']} under seq {entry['_id']}")

    def confirm(self, appended: Appended) -> None:
        """The lease held over the insert: the entries count, each the only current one of its entity.

        Two writes for a fresh batch whatever its size; one per later version after a fallback.
        """
        if appended.inserted:
            self.changes.update_many({"_id": {"$in": list(appended.inserted)}}, {"$unset": {"unconfirmed": ""}})
        later = [change for _, change in appended.pairs if change.version > 1]
        if not later:
            return
        if appended.superseding_from is not None:
            self.changes.update_many(
                {"entity_id": {"$in": [c.entity_id for c in later]}, "current": True,
                 "seq": {"$lt": appended.superseding_from}},
                {"$set": {"current": False}})
            return
        for change in later:
            self.changes.update_many({"entity_id": change.entity_id, "current": True, "seq": {"$lt": change.seq}},
                                     {"$set": {"current": False}})

    def retract(self, seqs: list[int]) -> None:
        """Remove entries this relay inserted after its lease ran out; their entities stay pending."""
        if seqs:
            self.changes.delete_many({"_id": {"$in": list(seqs)}, "unconfirmed": True})

    # reading

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

    # the digest, kept as entries are confirmed

    def digest(self) -> dict:
        """{"count", "sha256", "last_seq"}: the digest of the visible (id, version) pairs up to `last_seq`.

        Read from the digest document and completed, in memory only, with the confirmed
        entries after it (usually none: the relay folds them in after each batch), so a
        call costs a few reads whatever the size of the log. `last_seq` stops before the
        first unconfirmed entry: the digest never claims a sequence it has not counted.
        """
        state = self._digest_state()
        state = self._folded(state, limit=None)
        return {"count": state["count"], "sha256": hex_of(state["lanes"]), "last_seq": state["upto"]}

    def fold_digest(self) -> int:
        """Fold the confirmed entries after the digest document into it (the relay calls this); the new position.

        One conditional update per batch: it applies only if no other process folded
        meanwhile, so a crash or a race repeats work, never counts an entry twice.
        """
        while True:
            state = self._digest_state()
            folded = self._folded(state, limit=DIGEST_BATCH)
            if folded["upto"] != state["upto"]:
                delta = {f"l{i}": folded["lanes"][i] - state["lanes"][i] for i in range(LANES)}
                self.counters.update_one(
                    {"_id": DIGEST, "upto": state["upto"]},
                    {"$inc": {**delta, "count": folded["count"] - state["count"]}, "$set": {"upto": folded["upto"]}})
            if folded["done"]:
                return folded["upto"]

    def _digest_state(self) -> dict:
        doc = self.counters.find_one({"_id": DIGEST})
        if doc is None:
            self.counters.update_one({"_id": DIGEST}, {"$setOnInsert": {"upto": 0, "count": 0,
                                                                         **{f"l{i}": 0 for i in range(LANES)}}},
                                     upsert=True)
            doc = self.counters.find_one({"_id": DIGEST})
        return {"upto": doc["upto"], "count": doc["count"], "lanes": [doc[f"l{i}"] for i in range(LANES)]}

    def _folded(self, state: dict, limit: int | None) -> dict:
        """`state` with the confirmed entries after it added (at most `limit`): each entry adds its pair when
        visible and removes its entity's previous entry's pair when that one was visible."""
        lanes, count, upto = list(state["lanes"]), state["count"], state["upto"]
        query = {"seq": {"$gt": upto}}
        entries = list(self.changes.find(query, {"state": 0}, sort=[("seq", ASCENDING)],
                                         limit=limit or 0))
        done = limit is None or len(entries) < limit
        taken = []
        for e in entries:
            if e.get("unconfirmed"):
                done = True
                break
            taken.append(e)
        if not taken:
            return {"lanes": lanes, "count": count, "upto": upto, "done": True}
        previous = self._previous_entries(taken)
        for e in taken:
            before = previous.get(e["entity_id"])
            if before is not None and before["visible"]:
                for i, lane in enumerate(pair_lanes(e["entity_id"], before["version"])):
                    lanes[i] -= lane
                count -= 1
            if e["visible"]:
                for i, lane in enumerate(pair_lanes(e["entity_id"], e["version"])):
                    lanes[i] += lane
                count += 1
            previous[e["entity_id"]] = e
        return {"lanes": lanes, "count": count, "upto": taken[-1]["seq"], "done": done}

    def _previous_entries(self, entries: list[dict]) -> dict:
        """Per entity of `entries`: its latest confirmed entry before the first of them (None if it has none)."""
        first = entries[0]["seq"]
        ids = list({e["entity_id"] for e in entries})
        latest: dict = {}
        for i in range(0, len(ids), 500):
            for e in self.changes.find({"entity_id": {"$in": ids[i:i + 500]}, "seq": {"$lt": first}},
                                       {"entity_id": 1, "version": 1, "seq": 1, "visible": 1, "unconfirmed": 1}):
                if e.get("unconfirmed"):
                    continue
                held = latest.get(e["entity_id"])
                if held is None or e["seq"] > held["seq"]:
                    latest[e["entity_id"]] = e
        return latest


def _entry(seq: int, entity_id: str, version: int, type_: str, visible: bool, state: dict, now: str) -> dict:
    return {"_id": seq, "seq": seq, "entity_id": entity_id, "version": version, "type": type_,
            "visible": visible, "state": state, "time": now, "current": True, "unconfirmed": True}


def _change(entry: dict) -> Change:
    return Change(seq=entry["seq"], entity_id=entry["entity_id"], version=entry["version"], type=entry["type"],
                  visible=entry["visible"], state=entry["state"], time=entry["time"])
