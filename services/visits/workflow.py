"""The slot-request workflow across schools: the host decides, the requester follows.

Requester side: a request is stored as `pending` and published on
`<school>.slot-requests.v1`; decisions read from the hosts'
`<host>.slot-decisions.v1` topics are applied by decision version, so a
repeated or late decision changes nothing and the status converges to the
host's latest decision.

Host side: each request gets one decision document keyed by the request id
(created as `received`, then decided). The checks that must hold under
concurrency are single-document atomic writes (see store.py): the faculty
member's hold document (no overlapping approvals), then the slot's seat
document (capacity). Every step is idempotent by request id, so an event
delivered twice, or a decision interrupted by a crash and run again, ends in
the same state; a decision write is conditional on the decision's version, and
whoever loses such a race gives back what it took (`settle`).
"""

from __future__ import annotations

import logging

from marshmallow import ValidationError
from pymongo.database import Database

from services.visits import model
from services.visits.schemas import DecisionEventSchema, SlotRequestEventSchema
from services.visits.store import DecisionStore, HoldStore, RequestStore, SeatStore, VisitStore
from shared.clock import now_iso, time_key, touched, write_order
from shared.errors import DomainError
from shared.events import Event, InvalidEvent
from shared.notifications import marker as notify_marker
from shared.outbox import pending_marker
from shared.statemachine import NotAllowed

log = logging.getLogger(__name__)

HAND_DECLINED = "declined-by-host"
# promotions tried per slot in one pass; each one settles one waitlisted request
MAX_PROMOTIONS = 100

_REQUEST_EVENT = SlotRequestEventSchema()
_DECISION_EVENT = DecisionEventSchema()


def event_body(schema, event: Event, topic_school: str) -> dict:
    """The validated body of a partner's event about its own entity; InvalidEvent (dead letter) if it is not."""
    try:
        body = schema.load(event.data)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {event.type} body: {exc.messages}") from None
    if body["id"] != event.subject or body["school"] != topic_school:
        raise InvalidEvent("the body's id or school differs from the event's subject or source school")
    return body


def awaiting_host(intent_version: int) -> dict:
    """The fields of a request whose intent at this version the host has yet to answer (see resend_unanswered)."""
    return {"awaiting_host": True, "intent_version": intent_version}


def slot_snapshot(slot: dict) -> dict:
    return {k: slot[k] for k in ("kind", "title", "starts_at", "ends_at", "capacity") if k in slot}


def visit_snapshot(visit: dict | None) -> dict | None:
    """What a requester's page shows of the visit, carried by the decision (no call to the host needed)."""
    if visit is None:
        return None
    return {"theme": visit.get("theme") or {}, "place": visit.get("place"), "time_zone": visit.get("time_zone"),
            "approval": model.approval_of(visit), "starts_on": visit.get("starts_on"),
            "ends_on": visit.get("ends_on")}


class Host:
    """The host school's side: decisions on partners' requests for its visits' slots."""

    def __init__(self, db: Database, school: str, clock=now_iso):
        self.school = school
        self.clock = clock
        self.visits = VisitStore(db)
        self.decisions = DecisionStore(db)
        self.seats = SeatStore(db)
        self.holds = HoldStore(db)

    # events

    def apply_request_event(self, event: Event, topic_school: str) -> None:
        """Apply a partner's slot_request event; InvalidEvent for one that cannot be accepted."""
        body = event_body(_REQUEST_EVENT, event, topic_school)
        if body["host_school"] != self.school:
            return  # a request to another host
        self.on_request(body, event.entityversion)

    def on_request(self, request: dict, version: int) -> dict:
        """Decide on a request, or follow its withdrawal or re-confirmation; a replay changes nothing."""
        decision = self.decisions.receive(request, self.school, version, self.clock())
        if any(decision[k] != request[k2] for k, k2 in (("requester_school", "school"), ("visit_id", "visit_id"),
                                                         ("slot_id", "slot_id"), ("faculty_id", "faculty_id"))):
            raise InvalidEvent("this request id is already used by another request")
        if version > decision["request_version"]:
            decision = self._follow(decision, request, version)
        elif decision["status"] == model.RECEIVED:
            # the first event, or one whose decision was interrupted
            if request["withdrawn"]:
                decision = (self._write(decision, model.WITHDRAW, model.WITHDRAWN, None)
                            or self.decisions.get(decision["_id"]))
            else:
                decision = self._decide(decision)
        elif version == decision["request_version"]:
            # the requester sent its latest version again: it has not seen the decision, which the
            # broker may have lost; the relay sends the same decision event again (kept once)
            self.decisions.collection.update_one({"_id": decision["_id"]}, {"$set": pending_marker()})
        return self.settle(decision)

    def _follow(self, decision: dict, request: dict, version: int) -> dict:
        """A newer event of a known request: withdrawn, or a changed slot accepted."""
        if request["withdrawn"] and model.DECISIONS.allows(decision["status"], model.WITHDRAW):
            written = self._write(decision, model.WITHDRAW, model.WITHDRAWN, None, request_version=version)
            if written is not None:
                return written
        elif (request.get("confirmed_slot_hash") and model.DECISIONS.allows(decision["status"], model.CONFIRM)
              and request["confirmed_slot_hash"] == decision["slot_hash"]):
            written = self._reconfirm(decision, version)
            if written is not None:
                return written
        # nothing to decide; the decision is sent again all the same, carrying this request version,
        # so that the requester knows its intent arrived and stops re-sending it
        self.decisions.record_request_version(decision["_id"], version, republish=decision["version"] > 0)
        return self.decisions.get(decision["_id"])

    def _decide(self, decision: dict) -> dict:
        visit = self.visits.get(decision["visit_id"])
        refused = model.refusal(visit, decision["slot_id"], decision["requester_school"])
        slot = model.find_slot(visit, decision["slot_id"])
        overlapping, seat = False, False
        if model.arrival_intent(visit) == model.REQUEST_FOR_REVIEW and not refused:
            # review mode: the rules that need no judgement decline at once; the rest waits for the coordinator
            status, reason = model.review_outcome(self._overlap(decision, slot))
            written = self._write(decision, model.REQUEST_FOR_REVIEW, status, reason, slot=slot, visit=visit)
            return written or self.decisions.get(decision["_id"])
        if not refused:
            queue = self.decisions.first_waitlisted(decision["visit_id"], decision["slot_id"])
            if queue is None:
                overlapping, seat = self._take(decision, slot)
            else:
                # others wait already: no overtaking, but an overlap is refused at once
                overlapping = self._overlap(decision, slot)
        status, reason = model.outcome(refused, overlapping, seat)
        written = self._write(decision, model.REQUEST, status, reason, slot=slot, visit=visit)
        if written is None:  # decided meanwhile by another consumer: that decision stands
            return self.decisions.get(decision["_id"])
        if status == model.WAITLISTED:
            self.fill(decision["visit_id"], decision["slot_id"])  # a seat may have been freed meanwhile
        return written

    def _take(self, decision: dict, slot: dict) -> tuple[bool, bool]:
        """(overlapping, seat): the faculty member's hold first, then a seat; the hold is given back without one."""
        if self.holds.take(decision, slot) is not None:
            return True, False
        if self.seats.take(decision["visit_id"], decision["slot_id"], slot["capacity"], decision["_id"]):
            return False, True
        self.holds.release(decision)
        return False, False

    def _overlap(self, decision: dict, slot: dict) -> bool:
        key = self.holds.key(decision["requester_school"], decision["faculty_id"])
        current = self.holds.collection.find_one({"_id": key}) or {"holds": []}
        return model.conflicting_hold(current["holds"], decision["_id"], slot["starts_at"], slot["ends_at"]) is not None

    def _reconfirm(self, decision: dict, version: int) -> dict | None:
        """The requester accepts the changed slot: approved again if it still fits (hold, capacity)."""
        visit = self.visits.get(decision["visit_id"])
        slot = model.find_slot(visit, decision["slot_id"])
        if model.refusal(visit, decision["slot_id"], decision["requester_school"]) or slot is None:
            return None  # the worker's reconciliation declines it
        if self.holds.take(decision, slot) is not None:
            return self._write(decision, model.CONFIRM, model.DECLINED, model.OVERLAP, visit=visit,
                               request_version=version)
        seat = self.seats.get(decision["visit_id"], decision["slot_id"]) or {}
        if seat.get("count", 0) > slot["capacity"]:
            # the capacity went down below the seats held: this one waits for a place
            return self._write(decision, model.CONFIRM, model.WAITLISTED, None, slot=slot, visit=visit,
                               request_version=version)
        return self._write(decision, model.CONFIRM, model.APPROVED, None, slot=slot, visit=visit,
                           request_version=version)

    def _write(self, decision: dict, intent: str, status: str, reason: str | None, slot: dict | None = None,
               note: str | None = None, visit: dict | None = None, **extra) -> dict | None:
        """Publish a new decision if it is still at the version it was taken on; None if it is not.

        The move must be one of the transition table's (model.DECISIONS): `intent` from the status read.
        `visit` is the stored visit when the caller has just read it (else it is read here).
        """
        if not model.DECISIONS.leads_to(decision["status"], intent, status):
            raise NotAllowed(f"slot decision {decision['_id']}: {intent} cannot lead from "
                             f"{decision['status']} to {status}")
        now = self.clock()
        fields = {"status": status, "reason": reason, "decided_at": now, **touched(now), "note": note, **extra}
        if visit is None:
            visit = self.visits.get(decision["visit_id"])
        if slot is not None:
            fields.update(slot_hash=model.slot_hash(slot), slot=slot_snapshot(slot), visit=visit_snapshot(visit))
        fields["places_left"] = self._places_left(visit, decision["slot_id"])
        # a waitlist changes: this decision's place in it now, the others' after the write (renumber);
        # a waitlist is kept in the order its requests joined it (first come first served)
        if status == model.WAITLISTED and decision["status"] != model.WAITLISTED:
            fields["waitlist_key"] = write_order()
        fields["waitlist_position"] = (self.decisions.position_of({**decision, **fields})
                                       if status == model.WAITLISTED else None)
        if model.WAITLISTED in (status, decision["status"]):
            fields["renumber_since"] = write_order()
        return self.decisions.replace(decision["_id"], decision["version"], fields)

    def _places_left(self, visit: dict | None, slot_id: str) -> int | None:
        slot = model.find_slot(visit, slot_id)
        if slot is None:
            return None
        seat = self.seats.get(visit["_id"], slot_id) or {}
        return model.places_left(slot, seat.get("count", 0), visit.get("status") == "cancelled")

    def settle(self, decision: dict) -> dict:
        """Give back the seat and hold of a decision that does not hold them (any more), then fill the slot."""
        if decision["status"] not in model.HOLDING and decision["status"] != model.RECEIVED:
            released = self.seats.release(decision["visit_id"], decision["slot_id"], decision["_id"])
            self.holds.release(decision)
            if released:
                self.fill(decision["visit_id"], decision["slot_id"])
        self.renumber(decision)
        return decision

    def renumber(self, decision: dict) -> None:
        """After a decision joined or left its slot's waitlist: give every waitlisted one its position anew."""
        if decision.get("renumber_since"):
            self.decisions.renumber(decision["visit_id"], decision["slot_id"], self.clock())
            self.decisions.renumbered(decision)

    def fill(self, visit_id: str, slot_id: str) -> int:
        """Approve waitlisted requests, oldest first, while the slot has free seats; returns how many."""
        promoted = 0
        for _ in range(MAX_PROMOTIONS):
            visit = self.visits.get(visit_id)
            slot = model.find_slot(visit, slot_id)
            if slot is None or visit.get("status") == "cancelled":
                break
            seat = self.seats.get(visit_id, slot_id)
            if seat is not None and seat["count"] >= slot["capacity"]:
                break
            waiting = self.decisions.first_waitlisted(visit_id, slot_id)
            if waiting is None:
                break
            overlapping, took = self._take(waiting, slot)
            if not overlapping and not took:
                break  # taken by a concurrent decision
            status, reason = model.outcome(None, overlapping, took)
            written = self._write(waiting, model.PROMOTE, status, reason, slot=slot, visit=visit)
            if written is None:
                self.settle(self.decisions.get(waiting["_id"]))
            elif status == model.APPROVED:
                promoted += 1
                log.info("promoted request %s from the waitlist of slot %s", waiting["_id"], slot_id)
        if promoted:
            self.decisions.renumber(visit_id, slot_id, self.clock())
        return promoted

    # by hand

    def decide_by_hand(self, request_id: str, expected_version: int, status: str, note: str | None) -> dict:
        """A coordinator approves or declines a request; approving still respects capacity and overlap."""
        decision = self.decisions.get(request_id)
        if decision is None:
            raise self.decisions.not_found()
        if decision["version"] != expected_version:
            raise self.decisions.stale(request_id)
        if status == model.DECLINED:
            if not model.DECISIONS.allows(decision["status"], model.DECLINE):
                raise _conflict(f"the request is {decision['status']} already")
            written = self._write(decision, model.DECLINE, model.DECLINED, HAND_DECLINED, note=note)
        elif decision["status"] == model.PENDING:
            written = self._approve_reviewed(decision, note)
        else:
            written = self._approve_by_hand(decision, note)
        if written is None:
            raise self.decisions.stale(request_id)
        if written["status"] == model.WAITLISTED:
            self.fill(written["visit_id"], written["slot_id"])  # a seat may have been freed meanwhile
        return self.settle(self.decisions.get(request_id) or written)

    def _approve_reviewed(self, decision: dict, note: str | None) -> dict | None:
        """Approve a request that waits for review: a seat if one is free and nobody waits, else the waitlist.

        The same checks as on a request's arrival in automatic mode, in the same order: the
        visit and slot, the faculty member's overlapping approvals, then the capacity.
        """
        visit = self.visits.get(decision["visit_id"])
        refused = model.refusal(visit, decision["slot_id"], decision["requester_school"])
        if refused:
            raise _conflict(f"it cannot be approved: {refused}", reason=refused)
        slot = model.find_slot(visit, decision["slot_id"])
        if self.decisions.first_waitlisted(decision["visit_id"], decision["slot_id"]) is None:
            overlapping, seat = self._take(decision, slot)
        else:
            # others wait already: no overtaking
            overlapping, seat = self._overlap(decision, slot), False
        if overlapping:
            raise _conflict("the faculty member holds an overlapping approved slot", reason=model.OVERLAP)
        status = model.APPROVED if seat else model.WAITLISTED
        written = self._write(decision, model.APPROVE, status, None, slot=slot, note=note, visit=visit)
        if written is None:
            self.settle(self.decisions.get(decision["_id"]))
        return written

    def _approve_by_hand(self, decision: dict, note: str | None) -> dict | None:
        if not model.DECISIONS.allows(decision["status"], model.APPROVE):
            raise _conflict(f"the request is {decision['status']}")
        visit = self.visits.get(decision["visit_id"])
        refused = model.refusal(visit, decision["slot_id"], decision["requester_school"])
        if refused:
            raise _conflict(f"it cannot be approved: {refused}", reason=refused)
        slot = model.find_slot(visit, decision["slot_id"])
        overlapping, seat = self._take(decision, slot)
        if overlapping:
            raise _conflict("the faculty member holds an overlapping approved slot", reason=model.OVERLAP)
        if not seat:
            raise _conflict("the slot has no free seat", reason="slot-full")
        written = self._write(decision, model.APPROVE, model.APPROVED, None, slot=slot, note=note, visit=visit)
        if written is None:
            self.settle(self.decisions.get(decision["_id"]))
        return written

    # visit changes

    def reconcile(self, visit: dict) -> None:
        """Follow a visit's change in the decisions on its slots: re-confirm, decline, or promote."""
        cancelled = visit.get("status") == "cancelled"
        for decision in self.decisions.of_visit(visit["_id"], model.AFFECTED_BY_VISIT_CHANGE):
            slot = model.find_slot(visit, decision["slot_id"])
            change = model.after_slot_change(decision["status"], decision.get("slot_hash"), slot, cancelled)
            if change is None:
                continue
            status, reason = change
            intent = model.visit_change(decision.get("slot_hash"), slot, cancelled)
            written = self._write(decision, intent, status, reason, slot=slot if status == model.RECONFIRM else None)
            if written is not None:
                log.info("request %s: %s after a change of visit %s", decision["_id"], status, visit["_id"])
                self.settle(written)
        if not cancelled:
            for slot in visit.get("slots", []):
                self.seats.set_capacity(visit["_id"], slot["id"], slot["capacity"])
                self.fill(visit["_id"], slot["id"])

    def reconcile_pending(self) -> int:
        """One pass of the worker: visits changed since last time, slots whose seats were freed, and
        seat changes whose visit was not re-published (the writer stopped in between)."""
        done = 0
        for visit in self.visits.to_reconcile():
            self.reconcile(visit)
            self.visits.reconciled(visit["_id"], visit["reconcile_since"])
            done += 1
        for seat in self.seats.to_fill():
            visit_id, slot_id = self.seats.slot_of(seat)
            self.fill(visit_id, slot_id)
            self.seats.filled(seat)
            done += 1
        for seat in self.seats.to_republish():
            self.seats.republish(seat)
            done += 1
        # waitlists whose positions were not renumbered after a change (the writer stopped in between)
        for decision in self.decisions.to_renumber():
            self.renumber(decision)
            done += 1
        return done


def _conflict(detail: str, reason: str | None = None) -> DomainError:
    extra = {"reason": reason} if reason else {}
    return DomainError("decision-not-possible", detail, **extra)


class Requester:
    """The requesting school's side: its faculty's requests and the hosts' decisions on them."""

    def __init__(self, db: Database, school: str, clock=now_iso):
        self.school = school
        self.clock = clock
        self.requests = RequestStore(db)

    def new_request(self, data: dict, request_id: str) -> dict:
        now = self.clock()
        return {"_id": request_id, "school": self.school, **data, "status": model.PENDING, "reason": None,
                "slot_hash": None, "decided_at": None, "decision_version": 0, "withdrawn": False,
                "confirmed_slot_hash": None, "note": None, "slot": None, "visit": None, "waitlist_position": None,
                "places_left": None, "version": 1, "created_at": now, "created_key": time_key(now),
                **touched(now), **awaiting_host(1)}

    def withdraw(self, request_id: str, expected_version: int) -> dict:
        """Withdraw a request; the host frees its seat, if it held one, and promotes its waitlist."""
        request = self._current(request_id, expected_version)
        if not model.REQUESTS.allows(request["status"], model.WITHDRAW):
            raise DomainError("not-withdrawable", f"the request is {request['status']}")
        fields = {"status": model.WITHDRAWN, "withdrawn": True, **touched(self.clock()),
                  **awaiting_host(expected_version + 1), **notify_marker()}
        return self._replace(request_id, expected_version, fields)

    def reconfirm(self, request_id: str, expected_version: int) -> dict:
        """Accept the changed slot of an approval that needs re-confirmation."""
        request = self._current(request_id, expected_version)
        if not model.REQUESTS.allows(request["status"], model.CONFIRM):
            raise DomainError("not-awaiting-reconfirmation", f"the request is {request['status']}")
        fields = {"confirmed_slot_hash": request["slot_hash"], **touched(self.clock()),
                  **awaiting_host(expected_version + 1)}
        return self._replace(request_id, expected_version, fields)

    def _current(self, request_id: str, expected_version: int) -> dict:
        request = self.requests.get(request_id)
        if request is None:
            raise self.requests.not_found()
        if request["version"] != expected_version:
            raise self.requests.stale(request_id)
        return request

    def _replace(self, request_id: str, expected_version: int, fields: dict) -> dict:
        # conditional on the version: a decision applied meanwhile moved it, and this write does not apply
        written = self.requests.replace(request_id, expected_version, fields)
        if written is None:
            raise self.requests.stale(request_id)
        return written

    def resend_unanswered(self, older_than: str) -> int:
        """Publish again the requests whose latest intent the host has not answered, last written before `older_than`.

        An intent is the request itself, its withdrawal or its re-confirmation. One the
        broker lost (a reset before the host read it) would otherwise never reach the host:
        the request would stay pending, or the host would keep the seat of a withdrawn one.
        The host applies each request version once and answers a repeat of the latest with
        its decision again, which carries the request version it has applied
        (`acknowledge`). Returns how many were re-armed for the relay.
        """
        result = self.requests.collection.update_many(
            {"awaiting_host": True, "updated_at": {"$lt": older_than}}, {"$set": pending_marker()})
        return result.modified_count

    def apply_decision_event(self, event: Event, topic_school: str) -> None:
        """Apply a host's slot_decision event to the request it answers, if it is newer than the one held."""
        body = event_body(_DECISION_EVENT, event, topic_school)
        if body["requester_school"] != self.school:
            return  # a decision for another school's request
        # the slot decided on and the host's note go into the mail the requester gets (services/visits/notify.py)
        fields = {"status": body["status"], "reason": body.get("reason"), "slot_hash": body.get("slot_hash"),
                  "decided_at": body.get("decided_at"), "note": body.get("note"),
                  "waitlist_position": body.get("waitlist_position"), "places_left": body.get("places_left"),
                  **touched(self.clock()), **notify_marker()}
        # kept from an earlier decision when a host's event leaves them out (a decision not bound to a slot)
        fields.update({k: body[k] for k in ("slot", "visit") if body.get(k) is not None})
        if self.requests.apply_decision(body["id"], topic_school, event.entityversion, fields) is None:
            known = self.requests.get(body["id"])
            if known is None or known["host_school"] != topic_school:
                raise InvalidEvent(f"no request {body['id']} of {self.school} to host {topic_school}")
            # else: a decision no newer than the one held; it may still answer a newer intent
        self.requests.acknowledge(body["id"], topic_school, body["request_version"])
