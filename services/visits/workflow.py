"""The slot-request workflow across schools: the host decides, the requester follows.

The saga is shared/saga.py's (see there: events applied by version, one
decision per request, seats, waitlist, resend of unanswered intents); what is
the slots' own is here: a faculty member's hold document (no overlapping
approvals, taken before the seat), re-confirmation of an approval whose slot
changed, and the slot and visit snapshots a decision carries.

Requester side: a request is stored as `pending` and published on
`<school>.slot-requests.v1`; decisions come from the hosts'
`<host>.slot-decisions.v1` topics.
"""

from __future__ import annotations

import logging

from pymongo.database import Database

from services.visits import model
from services.visits.schemas import DecisionEventSchema, SlotRequestEventSchema
from services.visits.store import DecisionStore, HoldStore, RequestStore, SeatStore, VisitStore
from shared import saga
from shared.clock import now_iso, touched
from shared.errors import DomainError
from shared.saga import HAND_DECLINED, awaiting_host

log = logging.getLogger(__name__)

__all__ = ["HAND_DECLINED", "Host", "Requester", "slot_snapshot", "visit_snapshot"]

def slot_snapshot(slot: dict) -> dict:
    return {k: slot[k] for k in ("kind", "title", "starts_at", "ends_at", "capacity") if k in slot}


def visit_snapshot(visit: dict | None) -> dict | None:
    """What a requester's page shows of the visit, carried by the decision (no call to the host needed)."""
    if visit is None:
        return None
    return {"theme": visit.get("theme") or {}, "place": visit.get("place"), "time_zone": visit.get("time_zone"),
            "approval": model.approval_of(visit), "starts_on": visit.get("starts_on"),
            "ends_on": visit.get("ends_on")}


class Host(saga.Host):
    """The host school's side: decisions on partners' requests for its visits' slots."""

    machine = model.DECISIONS
    holding = model.HOLDING
    identity = (("requester_school", "school"), ("visit_id", "visit_id"), ("slot_id", "slot_id"),
                ("faculty_id", "faculty_id"))
    full = ("slot-full", "the slot has no free seat")
    affected_by_change = model.AFFECTED_BY_VISIT_CHANGE

    request_event = SlotRequestEventSchema()

    def __init__(self, db: Database, school: str, clock=now_iso):
        super().__init__(school, clock)
        self.visits = self.owners = VisitStore(db)
        self.decisions = DecisionStore(db)
        self.seats = SeatStore(db)
        self.holds = HoldStore(db)

    # the slots' own

    def received(self, request: dict, version: int, now: str) -> dict:
        return {"visit_id": request["visit_id"], "slot_id": request["slot_id"], "faculty_id": request["faculty_id"],
                # the requester's words, for the coordinator who decides by hand; never published back
                "motivation": request.get("motivation") or "", "slot_hash": None, "slot": None, "visit": None}

    def refusal(self, ctx: dict | None, decision: dict) -> str | None:
        return model.refusal(ctx, decision["slot_id"], decision["requester_school"])

    def capacity(self, ctx: dict | None, group: tuple[str, str]) -> int | None:
        slot = model.find_slot(ctx, group[1])
        return None if slot is None or ctx.get("status") == "cancelled" else slot["capacity"]

    def approval(self, ctx: dict | None, group: tuple[str, str]) -> str:
        return model.approval_of(ctx)

    def places_left(self, ctx: dict | None, group: tuple[str, str], taken: int | None = None) -> int | None:
        slot = model.find_slot(ctx, group[1])
        if slot is None:
            return None
        seats = self.seats.count(*group) if taken is None else taken
        return model.places_left(slot, seats, ctx.get("status") == "cancelled")

    def snapshot(self, decision: dict, ctx: dict | None) -> dict:
        slot = model.find_slot(ctx, decision["slot_id"])
        if slot is None:
            return {}
        return {"slot_hash": model.slot_hash(slot), "slot": slot_snapshot(slot), "visit": visit_snapshot(ctx)}

    def precheck(self, decision: dict, ctx: dict | None) -> str | None:
        return model.OVERLAP if self._overlap(decision, model.find_slot(ctx, decision["slot_id"])) else None

    def take_extra(self, decision: dict, ctx: dict | None) -> str | None:
        slot = model.find_slot(ctx, decision["slot_id"])
        return model.OVERLAP if self.holds.take(decision, slot) is not None else None

    def release_extra(self, decision: dict) -> None:
        self.holds.release(decision)

    def refused_detail(self, reason: str) -> str:
        if reason == model.OVERLAP:
            return "the faculty member holds an overlapping approved slot"
        return super().refused_detail(reason)

    def _overlap(self, decision: dict, slot: dict) -> bool:
        key = self.holds.key(decision["requester_school"], decision["faculty_id"])
        current = self.holds.collection.find_one({"_id": key}) or {"holds": []}
        return model.conflicting_hold(current["holds"], decision["_id"], slot["starts_at"], slot["ends_at"]) is not None

    def follow(self, decision: dict, request: dict, version: int) -> dict | None:
        """A changed slot accepted by the requester: approved again if it still fits."""
        if (request.get("confirmed_slot_hash") and model.DECISIONS.allows(decision["status"], model.CONFIRM)
                and request["confirmed_slot_hash"] == decision["slot_hash"]):
            return self._reconfirm(decision, version)
        return None

    def _reconfirm(self, decision: dict, version: int) -> dict | None:
        """The requester accepts the changed slot: approved again if it still fits (hold, capacity)."""
        visit = self.visits.get(decision["visit_id"])
        slot = model.find_slot(visit, decision["slot_id"])
        if model.refusal(visit, decision["slot_id"], decision["requester_school"]) or slot is None:
            return None  # the worker's reconciliation declines it
        if self.holds.take(decision, slot) is not None:
            return self._write(decision, model.CONFIRM, model.DECLINED, model.OVERLAP, ctx=visit,
                               request_version=version)
        seat = self.seats.get(decision["visit_id"], decision["slot_id"]) or {}
        # the capacity went down below the seats held: this one waits for a place
        status = model.WAITLISTED if seat.get("count", 0) > slot["capacity"] else model.APPROVED
        return self._write(decision, model.CONFIRM, status, None, ctx=visit, snapshot=True, request_version=version)

    # visit changes

    def change_of(self, owner: dict, decision: dict) -> tuple[str, str, str | None] | None:
        cancelled = owner.get("status") == "cancelled"
        slot = model.find_slot(owner, decision["slot_id"])
        change = model.after_slot_change(decision["status"], decision.get("slot_hash"), slot, cancelled)
        if change is None:
            return None
        return (model.visit_change(decision.get("slot_hash"), slot, cancelled), *change)

    def parts(self, owner: dict) -> list[tuple[str, int]]:
        if owner.get("status") == "cancelled":
            return []
        return [(slot["id"], slot["capacity"]) for slot in owner.get("slots", [])]


class Requester(saga.Requester):
    """The requesting school's side: its faculty's requests and the hosts' decisions on them."""

    machine = model.REQUESTS
    decision_event = DecisionEventSchema()

    def __init__(self, db: Database, school: str, clock=now_iso):
        super().__init__(school, clock)
        self.requests = RequestStore(db)

    def new_request(self, data: dict, request_id: str) -> dict:
        return {**self.base_request(request_id, self.clock()), **data, "status": model.PENDING, "slot_hash": None,
                "confirmed_slot_hash": None, "slot": None, "visit": None, **awaiting_host(1)}

    def reconfirm(self, request_id: str, expected_version: int) -> dict:
        """Accept the changed slot of an approval that needs re-confirmation."""
        request = self.current(request_id, expected_version)
        if not model.REQUESTS.allows(request["status"], model.CONFIRM):
            raise DomainError("not-awaiting-reconfirmation", f"the request is {request['status']}")
        fields = {"confirmed_slot_hash": request["slot_hash"], **touched(self.clock()),
                  **awaiting_host(expected_version + 1)}
        return self.replace(request_id, expected_version, fields)

    def decision_fields(self, body: dict) -> dict:
        # the slot decided on goes into the mail the requester gets (services/visits/notify.py); slot and visit
        # are kept from an earlier decision when a host's event leaves them out (a decision not bound to a slot)
        return {"slot_hash": body.get("slot_hash"), **{k: body[k] for k in ("slot", "visit") if body.get(k) is not None}}
