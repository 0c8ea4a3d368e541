"""The visits service's collections: visits, slot requests, decisions, seats and faculty holds.

Every write here is one single-document write. Requests, decisions and seats
are the saga's stores (shared/saga_store.py), bound to slots: a decision's
group is (visit id, slot id), a seat document is a slot's. Overlap is the
visits' own: a hold document per visiting faculty member, the approved slots
they hold, changed by compare-and-set on its `version`, so two overlapping
approvals can never both be written.
"""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.visits import model
from shared import saga_store
from shared.changelog import ChangeLog
from shared.entities import equal_to, value_range
from shared.errors import DomainError
from shared.pagination import fill_time_keys
from shared.saga_store import RETRIES, SeatedEntityStore

VISITS = "visits"
REQUESTS = "slot_requests"
DECISIONS = "slot_decisions"
SEATS = "slot_seats"
HOLDS = "faculty_holds"
# each kind of entity the service publishes has a change log of its own: collection-name prefixes
VISITS_LOG, REQUESTS_LOG, DECISIONS_LOG = "", "slot_requests_", "slot_decisions_"


def ensure_indexes(db) -> None:
    """Every index of the visits service: its collections and its three change logs (web and worker call this)."""
    for store in (VisitStore(db), RequestStore(db), DecisionStore(db), SeatStore(db)):
        store.ensure_indexes()
    for prefix in (VISITS_LOG, REQUESTS_LOG, DECISIONS_LOG):
        ChangeLog(db, prefix).ensure_indexes()


class VisitStore(SeatedEntityStore):
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


class RequestStore(saga_store.RequestStore):
    """The slot requests this school's faculty made (the requester's side)."""

    collection_name = REQUESTS
    entity = "slot-request"
    machine = model.REQUESTS

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("faculty_id", ASCENDING)])


def request_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "visit_id", "host_school", "faculty_id")


class DecisionStore(saga_store.DecisionStore):
    """The host's decisions, one per request, keyed by the request's id; a slot's seats and waitlist."""

    collection_name = DECISIONS
    entity = "slot-decision"
    group = ("visit_id", "slot_id")

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        # waitlisted before the key existed: their arrival order, as the waitlist then was
        for decision in self.collection.find({"status": model.WAITLISTED, "waitlist_key": {"$exists": False}},
                                             {"queued_at": 1}):
            self.collection.update_one({"_id": decision["_id"], "waitlist_key": {"$exists": False}},
                                       {"$set": {"waitlist_key": decision["queued_at"]}})

    def receive(self, doc: dict) -> tuple[dict, bool]:
        decision, created = super().receive(doc)
        if not created and doc.get("motivation"):
            # one received before decisions kept the motivation gets it from this event
            self.collection.update_one({"_id": doc["_id"], "motivation": {"$exists": False}},
                                       {"$set": {"motivation": doc["motivation"]}})
        return decision, created


def decision_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "visit_id", "slot_id", "requester_school")


class SeatStore(saga_store.SeatStore):
    """One document per slot: how many seats are taken and by which requests; a seat change re-publishes the visit."""

    def __init__(self, db: Database):
        super().__init__(db, SEATS, VisitStore(db).seats_changed)

    def part_ids(self, visit: dict) -> list[str]:
        return [slot["id"] for slot in visit.get("slots", [])]


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
        for _ in range(RETRIES):
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
