"""The visits service's collections: visits, slot requests, decisions, seats and faculty holds.

Every write here is one single-document write. Capacity and overlap are kept
by two kinds of small documents the host updates atomically:

- a seat document per slot, `holders` a map of request ids: a seat is taken by
  one conditional update (`count < capacity` and this request not a holder).
  The same write sets `republish_since`; the visit is then bumped (a new
  version, pending for the relay, which reads the seat counts as it publishes)
  and the marker cleared, so a crash in between leaves it for the worker;
- a hold document per visiting faculty member, the approved slots they hold:
  changed by compare-and-set on its `version`, so two overlapping approvals
  can never both be written.

Maps rather than arrays because the embedded server's `{"array": {"$ne": x}}`
matches arrays that contain x; `{"map.x": {"$exists": false}}` works on both.
"""

from __future__ import annotations

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.visits import model
from shared.changelog import ChangeLog
from shared.clock import touched, write_order
from shared.entities import EntityStore, equal_to, value_range
from shared.errors import DomainError
from shared.notifications import marker as notify_marker
from shared.outbox import pending_marker
from shared.pagination import fill_time_keys

VISITS = "visits"
REQUESTS = "slot_requests"
DECISIONS = "slot_decisions"
SEATS = "slot_seats"
HOLDS = "faculty_holds"
# optimistic retries of one hold document before giving up (the consumer then retries the event)
HOLD_RETRIES = 50
# retries of a coordinator's visit write that lost a race with a seat change
EDIT_RETRIES = 20
# each kind of entity the service publishes has a change log of its own: collection-name prefixes
VISITS_LOG, REQUESTS_LOG, DECISIONS_LOG = "", "slot_requests_", "slot_decisions_"


def ensure_indexes(db) -> None:
    """Every index of the visits service: its collections and its three change logs (web and worker call this)."""
    for store in (VisitStore(db), RequestStore(db), DecisionStore(db), SeatStore(db)):
        store.ensure_indexes()
    for prefix in (VISITS_LOG, REQUESTS_LOG, DECISIONS_LOG):
        ChangeLog(db, prefix).ensure_indexes()


class VisitStore(EntityStore):
    collection_name = VISITS
    entity = "visit"
    # a date without a time ("2027-04-13") compares exactly on the embedded server: paged as it is
    sort_fields = {"starts_on": "starts_on", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("starts_on", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("reconcile_since", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})

    def to_reconcile(self, limit: int = 50) -> list[dict]:
        """Visits changed since the worker last checked the decisions on their slots."""
        return list(self.collection.find({"reconcile_since": {"$gt": 0}}, sort=[("reconcile_since", ASCENDING)],
                                         limit=limit))

    def reconciled(self, visit_id: str, marker: int) -> None:
        # only the marker that was handled: a change written meanwhile keeps the visit flagged
        self.collection.update_one({"_id": visit_id, "reconcile_since": marker}, {"$unset": {"reconcile_since": ""}})

    def edit(self, visit_id: str, expected_version: int, fields: dict, unset=()) -> dict | None:
        """A coordinator's write on the version they read (If-Match); None when another coordinator wrote since.

        Seat changes move `version` too (see seats_changed) but not `edited_version`, so they do
        not make the coordinator's ETag stale. The write is conditional on the version just read;
        a seat change in between makes it read and try again.
        """
        for _ in range(EDIT_RETRIES):
            current = self.get(visit_id)
            if current is None or not model.edit_applies(current, expected_version):
                return None
            written = self.replace(visit_id, current["version"],
                                   {**fields, "edited_version": current["version"] + 1}, unset)
            if written is not None:
                return written
        raise DomainError("busy")

    def seats_changed(self, visit_id: str) -> None:
        """A seat of this visit was taken or freed: a new version for the relay, which reads the seats anew."""
        self.collection.update_one({"_id": visit_id}, {"$inc": {"version": 1}, "$set": pending_marker()})


def visit_criteria(filters: dict) -> dict:
    """A MongoDB filter from validated query parameters; values only."""
    query = equal_to(filters, "status")
    if "kind" in filters:
        query["slots.kind"] = filters["kind"]
    starts = value_range(filters, "starts_from", "starts_until")
    if starts:
        query["starts_on"] = starts
    return query


def invited_filter(school: str) -> dict:
    return {"$or": [{"invited": school}, {"invited": model.ALL_PARTNERS}]}


class RequestStore(EntityStore):
    """The slot requests this school's faculty made (the requester's side)."""

    collection_name = REQUESTS
    entity = "slot-request"
    sort_fields = {"created_at": "created_key", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("created_key", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        # the worker's resend looks for requests not answered since a cutoff (whole seconds are enough)
        self.collection.create_index([("updated_at", ASCENDING)])
        self.collection.create_index([("faculty_id", ASCENDING)])
        fill_time_keys(self.collection, {"created_key": "created_at", "updated_key": "updated_at"})

    def apply_decision(self, request_id: str, host_school: str, decision_version: int, fields: dict) -> dict | None:
        """Store the host's decision if it is newer than the one held; None when it is not (or unknown).

        Not marked for the relay: partners learn nothing new from it. The version
        still moves, so an If-Match taken before the decision no longer matches.
        """
        where = {"_id": request_id, "host_school": host_school, "decision_version": {"$lt": decision_version}}
        update = {"decision_version": decision_version, **fields}
        changed = self.collection.find_one_and_update(
            {**where, "status": {"$in": list(model.REQUESTS.from_statuses(model.DECISION))}},
            {"$set": update, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)
        if changed is None:
            # withdrawn here: the host's answer is recorded, the withdrawal stands
            update.pop("status", None)
            changed = self.collection.find_one_and_update(
                {**where, "status": model.WITHDRAWN}, {"$set": update, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER)
        return changed

    def acknowledge(self, request_id: str, host_school: str, request_version: int) -> None:
        """The host has applied this request up to `request_version`: an intent it covers is answered."""
        self.collection.update_one(
            {"_id": request_id, "host_school": host_school, "awaiting_host": True,
             "intent_version": {"$lte": request_version}},
            {"$set": {"awaiting_host": False}})


def request_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "visit_id", "host_school", "faculty_id")


class DecisionStore(EntityStore):
    """The host's decisions, one per request, keyed by the request's id."""

    collection_name = DECISIONS
    entity = "slot-decision"
    # `waitlisted_at`: the order of a slot's waitlist (when each joined it), for status=waitlisted
    sort_fields = {"queued_at": "queued_at", "updated_at": "updated_key", "waitlisted_at": "waitlist_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("visit_id", ASCENDING), ("slot_id", ASCENDING), ("status", ASCENDING),
                                      ("queued_at", ASCENDING)])
        self.collection.create_index([("visit_id", ASCENDING), ("slot_id", ASCENDING), ("status", ASCENDING),
                                      ("waitlist_key", ASCENDING)])
        self.collection.create_index([("queued_at", ASCENDING)])
        self.collection.create_index([("waitlist_key", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("renumber_since", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})
        # waitlisted before the key existed: their arrival order, as the waitlist then was
        for decision in self.collection.find({"status": model.WAITLISTED, "waitlist_key": {"$exists": False}},
                                             {"queued_at": 1}):
            self.collection.update_one({"_id": decision["_id"], "waitlist_key": {"$exists": False}},
                                       {"$set": {"waitlist_key": decision["queued_at"]}})

    def receive(self, request: dict, host: str, request_version: int, now: str) -> dict:
        """The decision on this request, created as `received` on its first event."""
        doc = {
            "_id": request["id"], "school": host, "requester_school": request["school"],
            "visit_id": request["visit_id"], "slot_id": request["slot_id"], "faculty_id": request["faculty_id"],
            # the requester's words, for the coordinator who decides by hand; never published back
            "motivation": request.get("motivation") or "",
            "status": model.RECEIVED, "reason": None, "slot_hash": None, "slot": None, "visit": None,
            "waitlist_position": None, "places_left": None, "version": 0,
            "request_version": request_version, "queued_at": write_order(), "decided_at": None,
            "created_at": now, **touched(now), **notify_marker(),
        }
        try:
            self.collection.insert_one(doc)
            return doc
        except DuplicateKeyError:
            # delivered again, or decided concurrently by another consumer: the stored one counts;
            # one received before decisions kept the motivation gets it from this event
            if request.get("motivation"):
                self.collection.update_one({"_id": request["id"], "motivation": {"$exists": False}},
                                           {"$set": {"motivation": request["motivation"]}})
            return self.get(request["id"])

    def record_request_version(self, request_id: str, request_version: int, republish: bool = False) -> None:
        """Remember a request event that changes no decision, so that an older one is not applied later.

        `republish` re-arms the decision for the relay: the same decision version goes out
        again, now carrying this request version as the requester's acknowledgement.
        """
        fields = {"request_version": request_version, **(pending_marker() if republish else {})}
        self.collection.update_one({"_id": request_id, "request_version": {"$lt": request_version}},
                                   {"$set": fields})

    def position_of(self, decision: dict) -> int:
        """Where this decision stands in its slot's waitlist: 1 + those that joined it before."""
        return 1 + self.collection.count_documents(
            {"visit_id": decision["visit_id"], "slot_id": decision["slot_id"], "status": model.WAITLISTED,
             "waitlist_key": {"$lt": decision["waitlist_key"]}})

    def waitlist(self, visit_id: str, slot_id: str) -> list[dict]:
        """The slot's waitlisted decisions, next first (in the order they joined the waitlist)."""
        return list(self.collection.find({"visit_id": visit_id, "slot_id": slot_id, "status": model.WAITLISTED},
                                         sort=[("waitlist_key", ASCENDING)]))

    def renumber(self, visit_id: str, slot_id: str, now: str) -> int:
        """Give each waitlisted decision of the slot its position; each one that moves is published again
        (a new version). A write that loses a race is read and tried again. Returns how many moved."""
        moved = 0
        for _ in range(HOLD_RETRIES):
            raced = False
            for position, decision in enumerate(self.waitlist(visit_id, slot_id), start=1):
                if decision.get("waitlist_position") == position:
                    continue
                written = self.collection.find_one_and_update(
                    {"_id": decision["_id"], "version": decision["version"], "status": model.WAITLISTED},
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

    def first_waitlisted(self, visit_id: str, slot_id: str) -> dict | None:
        return self.collection.find_one({"visit_id": visit_id, "slot_id": slot_id, "status": model.WAITLISTED},
                                        sort=[("waitlist_key", ASCENDING)])

    def of_visit(self, visit_id: str, statuses) -> list[dict]:
        return list(self.collection.find({"visit_id": visit_id, "status": {"$in": list(statuses)}},
                                         sort=[("queued_at", ASCENDING)]))


def decision_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "visit_id", "slot_id", "requester_school")


class SeatStore:
    """One document per slot: how many seats are taken and by which requests.

    Every write that changes `count` also sets `republish_since`; `republish` then gives the
    visit a new version (so partners' catalogs learn the places left) and clears the marker.
    """

    def __init__(self, db: Database):
        self.collection = db[SEATS]
        self.visits = VisitStore(db)

    def ensure_indexes(self) -> None:
        self.collection.create_index([("needs_fill", ASCENDING)])
        self.collection.create_index([("republish_since", ASCENDING)])

    @staticmethod
    def key(visit_id: str, slot_id: str) -> str:
        return f"{visit_id}/{slot_id}"

    @staticmethod
    def slot_of(seat: dict) -> tuple[str, str]:
        """(visit id, slot id) of a seat document: the inverse of `key`."""
        visit_id, slot_id = seat["_id"].split("/", 1)
        return visit_id, slot_id

    def get(self, visit_id: str, slot_id: str) -> dict | None:
        return self.collection.find_one({"_id": self.key(visit_id, slot_id)})

    def set_capacity(self, visit_id: str, slot_id: str, capacity: int) -> None:
        """Create the slot's seat document, or follow a changed capacity."""
        for _ in range(2):
            try:
                self.collection.update_one(
                    {"_id": self.key(visit_id, slot_id)},
                    {"$set": {"capacity": capacity}, "$setOnInsert": {"count": 0, "holders": {}}}, upsert=True)
                return
            except DuplicateKeyError:  # created by a concurrent upsert: now it exists, set it again
                continue

    def take(self, visit_id: str, slot_id: str, capacity: int, request_id: str) -> bool:
        """Give this request a seat if one is free; True also when it already holds one."""
        self.set_capacity(visit_id, slot_id, capacity)
        taken = self.collection.find_one_and_update(
            {"_id": self.key(visit_id, slot_id), "capacity": capacity, "count": {"$lt": capacity},
             f"holders.{request_id}": {"$exists": False}},
            {"$set": {f"holders.{request_id}": write_order(), "republish_since": write_order()},
             "$inc": {"count": 1}}, return_document=ReturnDocument.AFTER)
        if taken is not None:
            self.republish(taken)
            return True
        return self.holds(visit_id, slot_id, request_id)

    def holds(self, visit_id: str, slot_id: str, request_id: str) -> bool:
        return self.collection.find_one(
            {"_id": self.key(visit_id, slot_id), f"holders.{request_id}": {"$exists": True}}, {"_id": 1}) is not None

    def release(self, visit_id: str, slot_id: str, request_id: str) -> bool:
        """Free this request's seat; True when it held one. The slot is flagged for its waitlist."""
        released = self.collection.find_one_and_update(
            {"_id": self.key(visit_id, slot_id), f"holders.{request_id}": {"$exists": True}},
            {"$unset": {f"holders.{request_id}": ""}, "$inc": {"count": -1},
             "$set": {"needs_fill": write_order(), "republish_since": write_order()}},
            return_document=ReturnDocument.AFTER)
        if released is not None:
            self.republish(released)
        return released is not None

    def republish(self, seat: dict) -> None:
        """Give the seat's visit a new version for the relay, then clear the seat's marker if no change came since."""
        self.visits.seats_changed(self.slot_of(seat)[0])
        self.collection.update_one({"_id": seat["_id"], "republish_since": seat["republish_since"]},
                                   {"$unset": {"republish_since": ""}})

    def to_republish(self, limit: int = 50) -> list[dict]:
        """Seats changed whose visit may not have been bumped since (the writer stopped in between)."""
        return list(self.collection.find({"republish_since": {"$gt": 0}}, limit=limit))

    def taken(self, visit: dict) -> dict[str, int]:
        """Seats taken per slot id of this visit (a slot nobody asked for has no seat document)."""
        return self.taken_of([visit]).get(visit["_id"], {})

    def taken_of(self, visits: list[dict]) -> dict[str, dict[str, int]]:
        """Seats taken per slot id, per visit id, in one query."""
        keys = [self.key(v["_id"], s["id"]) for v in visits for s in v.get("slots", [])]
        out: dict[str, dict[str, int]] = {}
        for seat in self.collection.find({"_id": {"$in": keys}}, {"count": 1}) if keys else []:
            visit_id, slot_id = self.slot_of(seat)
            out.setdefault(visit_id, {})[slot_id] = seat.get("count", 0)
        return out

    def to_fill(self, limit: int = 50) -> list[dict]:
        return list(self.collection.find({"needs_fill": {"$gt": 0}}, limit=limit))

    def filled(self, seat: dict) -> None:
        self.collection.update_one({"_id": seat["_id"], "needs_fill": seat["needs_fill"]},
                                   {"$unset": {"needs_fill": ""}})


class HoldStore:
    """One document per visiting faculty member: the approved slots they hold at this host."""

    def __init__(self, db: Database):
        self.collection = db[HOLDS]

    @staticmethod
    def key(school: str, faculty_id: str) -> str:
        return f"{school}/{faculty_id}"

    def take(self, decision: dict, slot: dict) -> dict | None:
        """Record that this request holds `slot`; returns the overlapping hold instead, if there is one."""
        hold = {"request_id": decision["_id"], "starts_at": slot["starts_at"], "ends_at": slot["ends_at"]}

        def mutate(holds):
            conflict = model.conflicting_hold(holds, hold["request_id"], hold["starts_at"], hold["ends_at"])
            if conflict is not None:
                return None, conflict
            return [h for h in holds if h["request_id"] != hold["request_id"]] + [hold], None

        return self._compare_and_set(decision, mutate)

    def release(self, decision: dict) -> None:
        self._compare_and_set(decision, lambda holds: ([h for h in holds if h["request_id"] != decision["_id"]], None))

    def _compare_and_set(self, decision: dict, mutate):
        key = self.key(decision["requester_school"], decision["faculty_id"])
        for _ in range(HOLD_RETRIES):
            current = self.collection.find_one({"_id": key})
            if current is None:
                try:
                    self.collection.insert_one({"_id": key, "holds": [], "version": 0})
                except DuplicateKeyError:
                    pass
                continue
            holds, result = mutate(current["holds"])
            if holds is None or holds == current["holds"]:
                return result
            written = self.collection.update_one({"_id": key, "version": current["version"]},
                                                 {"$set": {"holds": holds}, "$inc": {"version": 1}})
            if written.matched_count:
                return result
        raise DomainError("busy")
