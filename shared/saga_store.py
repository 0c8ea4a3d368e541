"""The collections of a request saga between schools, whatever is requested (a visit's slot, a course's places).

Every write here is one single-document write; the saga's invariants hold by
conditional writes only (docs/adr/0006, 0007):

- `SeatStore`: one document per requested thing (a slot, an offering), keyed by
  its owner entity's id and the thing's id (`<owner>/<part>`), `holders` a map of
  request ids. A seat is taken by one conditional update (`count < capacity` and
  this request not a holder), so a capacity is never exceeded. The same write sets
  `republish_since`; the owner (the visit, the course) then gets a new version for
  the relay, which reads the seat counts as it publishes, and the marker is cleared,
  so a crash in between leaves it for the worker.
- `DecisionStore`: the host's decisions, one per request, keyed by the request's id;
  a waitlist per group (the requested thing) in the order its requests joined it,
  positions given anew after each change (`renumber`).
- `RequestStore`: the requester's own records, following the host's decisions by
  decision version (`apply_decision`), each intent awaiting the host's answer until a
  decision acknowledges it (`acknowledge`; `resend_unanswered` re-arms the others).
- `SeatedEntityStore`: an owner whose version also moves with its seats, so that a
  coordinator's ETag stays current across seat changes (`edit`).

Maps rather than arrays because the embedded server's `{"array": {"$ne": x}}`
matches arrays that contain x; `{"map.x": {"$exists": false}}` works on both.
"""

from __future__ import annotations

from typing import Callable

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.clock import touched, write_order
from shared.entities import EntityStore
from shared.errors import DomainError
from shared.outbox import pending_marker
from shared.pagination import fill_time_keys
from shared.saga import DECISION, WAITLISTED, WITHDRAWN, edit_applies
from shared.statemachine import StateMachine

# optimistic retries of one document before giving up (a consumer then retries the event)
RETRIES = 50
# retries of a coordinator's write that lost a race with a seat change
EDIT_RETRIES = 20


class SeatedEntityStore(EntityStore):
    """An entity whose requested parts have seats (a visit's slots, a course's offerings)."""

    def edit(self, entity_id: str, expected_version: int, fields: dict, unset=()) -> dict | None:
        """A coordinator's write on the version they read (If-Match); None when another coordinator wrote since.

        Seat changes move `version` too (see seats_changed) but not `edited_version`, so they do
        not make the coordinator's ETag stale. The write is conditional on the version just read;
        a seat change in between makes it read and try again.
        """
        for _ in range(EDIT_RETRIES):
            current = self.get(entity_id)
            if current is None or not edit_applies(current, expected_version):
                return None
            written = self.replace(entity_id, current["version"],
                                   {**fields, "edited_version": current["version"] + 1}, unset)
            if written is not None:
                return written
        raise DomainError("busy")

    def seats_changed(self, entity_id: str) -> None:
        """A seat of this entity was taken or freed: a new version for the relay, which reads the seats anew."""
        self.collection.update_one({"_id": entity_id}, {"$inc": {"version": 1}, "$set": pending_marker()})

    def to_reconcile(self, limit: int = 50) -> list[dict]:
        """Entities changed since the worker last checked the decisions on their parts."""
        return list(self.collection.find({"reconcile_since": {"$gt": 0}}, sort=[("reconcile_since", ASCENDING)],
                                         limit=limit))

    def reconciled(self, entity_id: str, marker: int) -> None:
        # only the marker that was handled: a change written meanwhile keeps the entity flagged
        self.collection.update_one({"_id": entity_id, "reconcile_since": marker}, {"$unset": {"reconcile_since": ""}})


class RequestStore(EntityStore):
    """The requests this school's people made (the requester's side). Subclasses set `machine` (their REQUESTS)."""

    machine: StateMachine
    sort_fields = {"created_at": "created_key", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("created_key", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        # the worker's resend looks for requests not answered since a cutoff (whole seconds are enough)
        self.collection.create_index([("updated_at", ASCENDING)])
        fill_time_keys(self.collection, {"created_key": "created_at", "updated_key": "updated_at"})

    def apply_decision(self, request_id: str, host_school: str, decision_version: int, fields: dict,
                       status_fields: tuple[str, ...] = ("status",)) -> dict | None:
        """Store the host's decision if it is newer than the one held; None when it is not (or unknown).

        `status_fields` say what the request's status is; a withdrawn request keeps its own.

        Not marked for the relay: partners learn nothing new from it. The version
        still moves, so an If-Match taken before the decision no longer matches.
        """
        where = {"_id": request_id, "host_school": host_school, "decision_version": {"$lt": decision_version}}
        update = {"decision_version": decision_version, **fields}
        changed = self.collection.find_one_and_update(
            {**where, "status": {"$in": list(self.machine.from_statuses(DECISION))}},
            {"$set": update, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)
        if changed is None:
            # withdrawn here: the host's answer is recorded, the withdrawal stands
            for name in status_fields:
                update.pop(name, None)
            changed = self.collection.find_one_and_update(
                {**where, "status": WITHDRAWN}, {"$set": update, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER)
        return changed

    def acknowledge(self, request_id: str, host_school: str, request_version: int) -> None:
        """The host has applied this request up to `request_version`: an intent it covers is answered."""
        self.collection.update_one(
            {"_id": request_id, "host_school": host_school, "awaiting_host": True,
             "intent_version": {"$lte": request_version}},
            {"$set": {"awaiting_host": False}})

    def resend_unanswered(self, older_than: str) -> int:
        """Re-arm for the relay the requests whose latest intent the host has not answered, written before
        `older_than`; returns how many."""
        result = self.collection.update_many(
            {"awaiting_host": True, "updated_at": {"$lt": older_than}}, {"$set": pending_marker()})
        return result.modified_count


class DecisionStore(EntityStore):
    """The host's decisions, one per request, keyed by the request's id.

    `group` names the two fields that identify what is requested ("visit_id", "slot_id"):
    its seats and its waitlist.
    """

    group: tuple[str, str]
    # `waitlisted_at`: the order of a group's waitlist (when each joined it), for status=waitlisted
    sort_fields = {"queued_at": "queued_at", "updated_at": "updated_key", "waitlisted_at": "waitlist_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        first, second = self.group
        self.collection.create_index([(first, ASCENDING), (second, ASCENDING), ("status", ASCENDING),
                                      ("queued_at", ASCENDING)])
        self.collection.create_index([(first, ASCENDING), (second, ASCENDING), ("status", ASCENDING),
                                      ("waitlist_key", ASCENDING)])
        self.collection.create_index([("queued_at", ASCENDING)])
        self.collection.create_index([("waitlist_key", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("renumber_since", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})

    def group_of(self, decision: dict) -> tuple[str, str]:
        return decision[self.group[0]], decision[self.group[1]]

    def _in(self, owner_id: str, part_id: str) -> dict:
        return {self.group[0]: owner_id, self.group[1]: part_id}

    def receive(self, doc: dict) -> tuple[dict, bool]:
        """(the decision on this request, created): created as `doc` on its first event, else the stored one."""
        try:
            self.collection.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            # delivered again, or decided concurrently by another consumer: the stored one counts
            return self.get(doc["_id"]), False

    def record_request_version(self, request_id: str, request_version: int, republish: bool = False) -> None:
        """Remember a request event that changes no decision, so that an older one is not applied later.

        `republish` re-arms the decision for the relay: the same decision version goes out
        again, now carrying this request version as the requester's acknowledgement.
        """
        fields = {"request_version": request_version, **(pending_marker() if republish else {})}
        self.collection.update_one({"_id": request_id, "request_version": {"$lt": request_version}},
                                   {"$set": fields})

    def republish(self, request_id: str) -> None:
        """Send the decision again as it is (the requester sent its latest version again: it has not seen it)."""
        self.collection.update_one({"_id": request_id}, {"$set": pending_marker()})

    def position_of(self, decision: dict) -> int:
        """Where this decision stands in its group's waitlist: 1 + those that joined it before."""
        return 1 + self.collection.count_documents(
            {**self._in(*self.group_of(decision)), "status": WAITLISTED,
             "waitlist_key": {"$lt": decision["waitlist_key"]}})

    def waitlist(self, owner_id: str, part_id: str) -> list[dict]:
        """The part's waitlisted decisions, next first (in the order they joined the waitlist)."""
        return list(self.collection.find({**self._in(owner_id, part_id), "status": WAITLISTED}, sort=[("waitlist_key", ASCENDING)]))

    def renumber(self, owner_id: str, part_id: str, now: str) -> int:
        """Give each waitlisted decision of the part its position; each one that moves is published again
        (a new version). A write that loses a race is read and tried again. Returns how many moved."""
        moved = 0
        for _ in range(RETRIES):
            raced = False
            for position, decision in enumerate(self.waitlist(owner_id, part_id), start=1):
                if decision.get("waitlist_position") == position:
                    continue
                written = self.collection.find_one_and_update(
                    {"_id": decision["_id"], "version": decision["version"], "status": WAITLISTED},
                    {"$set": {"waitlist_position": position, **touched(now), **pending_marker()},
                     "$inc": {"version": 1}})
                moved += written is not None
                raced = raced or written is None
            if not raced:
                return moved
        return moved

    def renumbered(self, decision: dict) -> None:
        # only the marker that was handled: a change written meanwhile keeps the decision flagged
        self.collection.update_one({"_id": decision["_id"], "renumber_since": decision["renumber_since"]},
                                   {"$unset": {"renumber_since": ""}})

    def to_renumber(self, limit: int = 50) -> list[dict]:
        return list(self.collection.find({"renumber_since": {"$gt": 0}}, limit=limit))

    def first_waitlisted(self, owner_id: str, part_id: str) -> dict | None:
        return self.collection.find_one({**self._in(owner_id, part_id), "status": WAITLISTED}, sort=[("waitlist_key", ASCENDING)])

    def of_owner(self, owner_id: str, statuses) -> list[dict]:
        """The decisions on any part of one owner (a visit's slots, a course's offerings) in these statuses."""
        return list(self.collection.find({self.group[0]: owner_id, "status": {"$in": list(statuses)}},
                                         sort=[("queued_at", ASCENDING)]))


class SeatStore:
    """One document per requested part: how many seats are taken and by which requests.

    Every write that changes `count` also sets `republish_since`; `republish` then gives the
    owner a new version (`owner_changed(owner_id)`, so partners' catalogs learn the places
    left) and clears the marker.
    """

    def __init__(self, db: Database, collection: str, owner_changed: Callable[[str], None]):
        self.collection = db[collection]
        self.owner_changed = owner_changed

    def ensure_indexes(self) -> None:
        self.collection.create_index([("needs_fill", ASCENDING)])
        self.collection.create_index([("republish_since", ASCENDING)])

    @staticmethod
    def key(owner_id: str, part_id: str) -> str:
        return f"{owner_id}/{part_id}"

    @staticmethod
    def group_of(seat: dict) -> tuple[str, str]:
        """(owner id, part id) of a seat document: the inverse of `key`."""
        owner_id, part_id = seat["_id"].split("/", 1)
        return owner_id, part_id

    def get(self, owner_id: str, part_id: str) -> dict | None:
        return self.collection.find_one({"_id": self.key(owner_id, part_id)})

    def count(self, owner_id: str, part_id: str) -> int:
        return (self.get(owner_id, part_id) or {}).get("count", 0)

    def set_capacity(self, owner_id: str, part_id: str, capacity: int) -> None:
        """Create the part's seat document, or follow a changed capacity."""
        for _ in range(2):
            try:
                self.collection.update_one(
                    {"_id": self.key(owner_id, part_id)},
                    {"$set": {"capacity": capacity}, "$setOnInsert": {"count": 0, "holders": {}}}, upsert=True)
                return
            except DuplicateKeyError:  # created by a concurrent upsert: now it exists, set it again
                continue

    def take(self, owner_id: str, part_id: str, capacity: int, request_id: str) -> bool:
        """Give this request a seat if one is free; True also when it already holds one."""
        self.set_capacity(owner_id, part_id, capacity)
        taken = self.collection.find_one_and_update(
            {"_id": self.key(owner_id, part_id), "capacity": capacity, "count": {"$lt": capacity},
             f"holders.{request_id}": {"$exists": False}},
            {"$set": {f"holders.{request_id}": write_order(), "republish_since": write_order()},
             "$inc": {"count": 1}}, return_document=ReturnDocument.AFTER)
        if taken is not None:
            self.republish(taken)
            return True
        return self.holds(owner_id, part_id, request_id)

    def holds(self, owner_id: str, part_id: str, request_id: str) -> bool:
        return self.collection.find_one(
            {"_id": self.key(owner_id, part_id), f"holders.{request_id}": {"$exists": True}}, {"_id": 1}) is not None

    def release(self, owner_id: str, part_id: str, request_id: str) -> bool:
        """Free this request's seat; True when it held one. The part is flagged for its waitlist."""
        released = self.collection.find_one_and_update(
            {"_id": self.key(owner_id, part_id), f"holders.{request_id}": {"$exists": True}},
            {"$unset": {f"holders.{request_id}": ""}, "$inc": {"count": -1},
             "$set": {"needs_fill": write_order(), "republish_since": write_order()}},
            return_document=ReturnDocument.AFTER)
        if released is not None:
            self.republish(released)
        return released is not None

    def republish(self, seat: dict) -> None:
        """Give the seat's owner a new version for the relay, then clear the seat's marker if no change came since."""
        self.owner_changed(self.group_of(seat)[0])
        self.collection.update_one({"_id": seat["_id"], "republish_since": seat["republish_since"]},
                                   {"$unset": {"republish_since": ""}})

    def to_republish(self, limit: int = 50) -> list[dict]:
        """Seats changed whose owner may not have been bumped since (the writer stopped in between)."""
        return list(self.collection.find({"republish_since": {"$gt": 0}}, limit=limit))

    def part_ids(self, owner: dict) -> list[str]:
        """The ids of an owner's parts that may have seats (its slots' ids, its offerings' terms)."""
        raise NotImplementedError

    def taken(self, owner: dict) -> dict[str, int]:
        """Seats taken per part id of this owner (a part nobody asked for has no seat document)."""
        return self.taken_of([owner]).get(owner["_id"], {})

    def taken_of(self, owners: list[dict]) -> dict[str, dict[str, int]]:
        """Seats taken per part id, per owner id, in one query."""
        keys = [self.key(owner["_id"], part) for owner in owners for part in self.part_ids(owner)]
        out: dict[str, dict[str, int]] = {}
        for seat in self.collection.find({"_id": {"$in": keys}}, {"count": 1}) if keys else []:
            owner_id, part_id = self.group_of(seat)
            out.setdefault(owner_id, {})[part_id] = seat.get("count", 0)
        return out

    def to_fill(self, limit: int = 50) -> list[dict]:
        return list(self.collection.find({"needs_fill": {"$gt": 0}}, limit=limit))

    def filled(self, seat: dict) -> None:
        self.collection.update_one({"_id": seat["_id"], "needs_fill": seat["needs_fill"]},
                                   {"$unset": {"needs_fill": ""}})
