"""The visits service's collections: visits, slot requests, decisions, seats and faculty holds.

Every write here is one single-document write. Capacity and overlap are kept
by two kinds of small documents the host updates atomically:

- a seat document per slot, `holders` a map of request ids: a seat is taken by
  one conditional update (`count < capacity` and this request not a holder);
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
from shared.clock import touched, write_order
from shared.entities import EntityStore, value_range
from shared.errors import Problem
from shared.outbox import pending_marker
from shared.pagination import fill_time_keys

VISITS = "visits"
REQUESTS = "slot_requests"
DECISIONS = "slot_decisions"
SEATS = "slot_seats"
HOLDS = "faculty_holds"
# optimistic retries of one hold document before giving up (the consumer then retries the event)
HOLD_RETRIES = 50


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


def visit_criteria(filters: dict) -> dict:
    """A MongoDB filter from validated query parameters; values only."""
    query: dict = {}
    if "status" in filters:
        query["status"] = filters["status"]
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
            {**where, "status": {"$in": [s for s in model.REQUEST_STATUSES if s != model.WITHDRAWN]}},
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
    return {name: filters[name] for name in ("status", "visit_id", "host_school", "faculty_id") if name in filters}


class DecisionStore(EntityStore):
    """The host's decisions, one per request, keyed by the request's id."""

    collection_name = DECISIONS
    entity = "slot-decision"
    sort_fields = {"queued_at": "queued_at", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("visit_id", ASCENDING), ("slot_id", ASCENDING), ("status", ASCENDING),
                                      ("queued_at", ASCENDING)])
        self.collection.create_index([("queued_at", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})

    def receive(self, request: dict, host: str, request_version: int, now: str) -> dict:
        """The decision on this request, created as `received` on its first event."""
        doc = {
            "_id": request["id"], "school": host, "requester_school": request["school"],
            "visit_id": request["visit_id"], "slot_id": request["slot_id"], "faculty_id": request["faculty_id"],
            "status": model.RECEIVED, "reason": None, "slot_hash": None, "slot": None, "version": 0,
            "request_version": request_version, "queued_at": write_order(), "decided_at": None,
            "created_at": now, **touched(now),
        }
        try:
            self.collection.insert_one(doc)
            return doc
        except DuplicateKeyError:
            # delivered again, or decided concurrently by another consumer: the stored one counts
            return self.get(request["id"])

    def record_request_version(self, request_id: str, request_version: int, republish: bool = False) -> None:
        """Remember a request event that changes no decision, so that an older one is not applied later.

        `republish` re-arms the decision for the relay: the same decision version goes out
        again, now carrying this request version as the requester's acknowledgement.
        """
        fields = {"request_version": request_version, **(pending_marker() if republish else {})}
        self.collection.update_one({"_id": request_id, "request_version": {"$lt": request_version}},
                                   {"$set": fields})

    def first_waitlisted(self, visit_id: str, slot_id: str) -> dict | None:
        return self.collection.find_one({"visit_id": visit_id, "slot_id": slot_id, "status": model.WAITLISTED},
                                        sort=[("queued_at", ASCENDING)])

    def of_visit(self, visit_id: str, statuses) -> list[dict]:
        return list(self.collection.find({"visit_id": visit_id, "status": {"$in": list(statuses)}},
                                         sort=[("queued_at", ASCENDING)]))


def decision_criteria(filters: dict) -> dict:
    return {name: filters[name] for name in ("status", "visit_id", "slot_id", "requester_school") if name in filters}


class SeatStore:
    """One document per slot: how many seats are taken and by which requests."""

    def __init__(self, db: Database):
        self.collection = db[SEATS]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("needs_fill", ASCENDING)])

    @staticmethod
    def key(visit_id: str, slot_id: str) -> str:
        return f"{visit_id}/{slot_id}"

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
            {"$set": {f"holders.{request_id}": write_order()}, "$inc": {"count": 1}})
        return taken is not None or self.holds(visit_id, slot_id, request_id)

    def holds(self, visit_id: str, slot_id: str, request_id: str) -> bool:
        return self.collection.find_one(
            {"_id": self.key(visit_id, slot_id), f"holders.{request_id}": {"$exists": True}}, {"_id": 1}) is not None

    def release(self, visit_id: str, slot_id: str, request_id: str) -> bool:
        """Free this request's seat; True when it held one. The slot is flagged for its waitlist."""
        released = self.collection.find_one_and_update(
            {"_id": self.key(visit_id, slot_id), f"holders.{request_id}": {"$exists": True}},
            {"$unset": {f"holders.{request_id}": ""}, "$inc": {"count": -1}, "$set": {"needs_fill": write_order()}})
        return released is not None

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
        raise Problem(503, "busy", "Too many concurrent changes; retry shortly")
