"""Teaching-team visits, their slots, and the rules of slot requests. Pure functions, no I/O.

A visit belongs to its host school and is public to the schools it invites
(`invited` lists them, or holds "all" for every partner). Its slots are what
partner faculty request. A decision on a request is bound to the slot as it
was when decided (`slot_hash`); a later change of the slot asks for
re-confirmation instead of silently keeping the approval.

A slot's `places_left` is derived, never stored: its capacity less the seats
its approvals hold (see store.SeatStore). A seat change re-publishes the visit
with a new `version`, but does not make a coordinator's ETag stale: a
coordinator's write applies while no other coordinator wrote since the version
they read (`shared.saga.edit_applies`; docs/adr/0006-places-left-in-visit-events.md).

The slot-request saga runs on shared/saga.py; what is the visits' own here: a
faculty member's overlapping approvals, and re-confirmation of a changed slot.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from shared.clock import iso, touched
from shared.errors import DomainError
from shared import saga
from shared.events import canonical_json
from shared.saga import (  # noqa: F401 (the names every request kind shares, as this model's too)
    APPROVALS, APPROVE, APPROVED, AUTOMATIC, AWAIT_REVIEW, DECISION, DECLINE, DECLINED, NEEDS_NOTE, PENDING, PROMOTE,
    PUBLISH_INTENT, RECEIVED, REQUEST, REQUEST_FOR_REVIEW, REVIEW, TAKE_SEAT, TAKE_SEAT_OR_WAIT, WAITLISTED, WITHDRAW,
    WITHDRAWN,
)
from shared.statemachine import StateMachine, Transition

ENTITY = "visit"
STATUSES = ("planned", "confirmed", "cancelled")
SLOT_KINDS = ("guest_lecture", "co_teaching", "workshop", "seminar", "panel", "site_visit", "mentoring")
ALL_PARTNERS = "all"
WRITABLE = ("theme", "invited", "place", "time_zone", "starts_on", "ends_on", "host_team", "agenda", "slots",
            "status", "approval")

# slot requests, as the requester's school sees them
REQUEST_ENTITY = "slot_request"
# decisions, as the host school takes them
DECISION_ENTITY = "slot_decision"
# (the statuses, intents and effects every request kind shares are shared.saga's)
RECONFIRM = "reconfirm"
REQUEST_STATUSES = (PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN, RECONFIRM)
# `received`: a decision not taken yet, internal to the host, never published;
# `pending` at the host: a request for a visit in review mode, awaiting the host coordinator's decision
DECISION_STATUSES = (RECEIVED, PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN, RECONFIRM)
# the decisions that hold a seat in their slot (and a hold on the faculty member's time)
HOLDING = (APPROVED, RECONFIRM)

# the requester accepts a changed slot (its request event carries it)
CONFIRM = "confirm"
# the host changed the visit: a slot's time, kind or capacity, a slot removed, the visit cancelled
SLOT_CHANGED, SLOT_GONE, CANCELLATION = "slot-changed", "slot-removed", "visit-cancelled"
INTENTS = (REQUEST, REQUEST_FOR_REVIEW, WITHDRAW, CONFIRM, APPROVE, DECLINE, PROMOTE, SLOT_CHANGED, SLOT_GONE, CANCELLATION, DECISION)

# effects, in the order the workflow carries them out (see services/visits/workflow.py)
TAKE_HOLD = "take the faculty member's hold (no overlapping approval)"
RELEASE = "give back seat and hold, then promote the waitlist"
CHECK_CAPACITY = "check the seats against the capacity"
CHECK_OVERLAP = "check the faculty member's holds (no overlapping approval)"

_SEATED = (APPROVED, WAITLISTED, DECLINED)
# the host's side: one decision per request; a status that is not HOLDING gives its seat back (Host.settle)
DECISIONS = StateMachine("slot decision", DECISION_STATUSES, INTENTS, {
    (RECEIVED, REQUEST): Transition(_SEATED, (TAKE_HOLD, TAKE_SEAT)),
    (RECEIVED, REQUEST_FOR_REVIEW): Transition((PENDING, DECLINED), (CHECK_OVERLAP, AWAIT_REVIEW)),
    (RECEIVED, WITHDRAW): Transition((WITHDRAWN,)),
    (RECEIVED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (RECEIVED, APPROVE): Transition((APPROVED,), (TAKE_HOLD, TAKE_SEAT)),
    # review mode: the coordinator's approval holds the capacity and overlap rules of automatic mode;
    # a full slot (or one with a waitlist already) puts the approved request on its waitlist
    (PENDING, APPROVE): Transition((APPROVED, WAITLISTED), (TAKE_HOLD, TAKE_SEAT_OR_WAIT)),
    (PENDING, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (PENDING, WITHDRAW): Transition((WITHDRAWN,)),
    (PENDING, SLOT_GONE): Transition((DECLINED,)),
    (PENDING, CANCELLATION): Transition((DECLINED,)),
    (APPROVED, WITHDRAW): Transition((WITHDRAWN,), (RELEASE,)),
    (APPROVED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE, RELEASE)),
    (APPROVED, SLOT_CHANGED): Transition((RECONFIRM,)),
    (APPROVED, SLOT_GONE): Transition((DECLINED,), (RELEASE,)),
    (APPROVED, CANCELLATION): Transition((DECLINED,), (RELEASE,)),
    (WAITLISTED, WITHDRAW): Transition((WITHDRAWN,)),
    (WAITLISTED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (WAITLISTED, APPROVE): Transition((APPROVED,), (TAKE_HOLD, TAKE_SEAT)),
    (WAITLISTED, PROMOTE): Transition((APPROVED, DECLINED), (TAKE_HOLD, TAKE_SEAT)),
    (WAITLISTED, SLOT_GONE): Transition((DECLINED,)),
    (WAITLISTED, CANCELLATION): Transition((DECLINED,)),
    (DECLINED, APPROVE): Transition((APPROVED,), (TAKE_HOLD, TAKE_SEAT)),
    (RECONFIRM, WITHDRAW): Transition((WITHDRAWN,), (RELEASE,)),
    (RECONFIRM, CONFIRM): Transition(_SEATED, (TAKE_HOLD, CHECK_CAPACITY)),
    # changed again before the requester confirmed: the new slot is the one to confirm
    (RECONFIRM, SLOT_CHANGED): Transition((RECONFIRM,)),
    (RECONFIRM, DECLINE): Transition((DECLINED,), (NEEDS_NOTE, RELEASE)),
    (RECONFIRM, APPROVE): Transition((APPROVED,), (TAKE_HOLD, TAKE_SEAT)),
    (RECONFIRM, SLOT_GONE): Transition((DECLINED,), (RELEASE,)),
    (RECONFIRM, CANCELLATION): Transition((DECLINED,), (RELEASE,)),
})
# the requester's side: its own record of the request, moved by its intents and by the host's decisions;
# a withdrawn request stays withdrawn (the host's answer to it is recorded, not its status)
# (a `pending` decision: the host received the request and its coordinator is to decide)
_DECIDED = (PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN, RECONFIRM)
REQUESTS = StateMachine("slot request", REQUEST_STATUSES, INTENTS, {
    **{(status, WITHDRAW): Transition((WITHDRAWN,), (PUBLISH_INTENT,))
       for status in (PENDING, APPROVED, WAITLISTED, RECONFIRM)},
    (RECONFIRM, CONFIRM): Transition((RECONFIRM,), (PUBLISH_INTENT,)),
    **{(status, DECISION): Transition(_DECIDED) for status in (PENDING, APPROVED, WAITLISTED, DECLINED, RECONFIRM)},
})

# why a request is declined: stable slugs a requester can act on
VISIT_NOT_FOUND = "visit-not-found"
VISIT_CANCELLED = "visit-cancelled"
SLOT_NOT_FOUND = "slot-not-found"
NOT_INVITED = "school-not-invited"
OVERLAP = "overlapping-approval"
SLOT_REMOVED = "slot-removed"


def new_visit(data: dict, school: str, now: str, visit_id: str | None = None) -> dict:
    """The document of a visit created from validated input; slots without an id get one."""
    if data.get("status") == "cancelled":
        raise DomainError("invalid-status",
                          "a visit cannot be created cancelled; create it as planned or confirmed",
                          errors=[{"pointer": "/status", "detail": "cancelled"}])
    doc = {"_id": visit_id or str(uuid.uuid4()), "school": school, "version": 1, "edited_version": 1,
           "created_at": now, **touched(now)}
    doc.update({k: data[k] for k in WRITABLE if k in data})
    doc["slots"] = with_slot_ids(doc.get("slots", []))
    return doc


def replacement(data: dict, now: str, marker: int) -> tuple[dict, list[str]]:
    """A full update (PUT): the fields to set and the optional fields it leaves out.

    `marker` flags the visit for the worker, which re-checks the decisions on
    its slots (a changed slot needs re-confirmation, a removed one declines).
    """
    fields = {k: data[k] for k in WRITABLE if k in data}
    fields["slots"] = with_slot_ids(fields.get("slots", []))
    fields.update(touched(now))
    fields["reconcile_since"] = marker
    return fields, [k for k in WRITABLE if k not in data]


def places_left(slot: dict, taken: int, cancelled: bool) -> int:
    """How many more requests a slot can approve: its capacity less the seats held; 0 when full or cancelled.

    Seats held may exceed a capacity lowered since: still 0, never negative.
    """
    return 0 if cancelled else max(0, slot["capacity"] - taken)


def with_places_left(visit: dict, taken: dict[str, int]) -> dict:
    """A copy of the visit whose slots carry `places_left`, given the seats taken per slot id (none if absent)."""
    cancelled = visit.get("status") == "cancelled"
    slots = [{**slot, "places_left": places_left(slot, taken.get(slot["id"], 0), cancelled)}
             for slot in visit.get("slots", [])]
    return {**visit, "slots": slots}


def cancelled_fields(now: str, marker: int) -> dict:
    return {"status": "cancelled", **touched(now), "reconcile_since": marker}


def with_slot_ids(slots: list[dict]) -> list[dict]:
    return [{**slot, "id": slot.get("id") or str(uuid.uuid4())} for slot in slots]


def approval_of(visit: dict | None) -> str:
    """How the host decides on requests for this visit; visits written before the field are automatic."""
    return (visit or {}).get("approval") or AUTOMATIC


def is_invited(visit: dict, school: str) -> bool:
    invited = visit.get("invited") or []
    return school != visit.get("school") and (ALL_PARTNERS in invited or school in invited)


def can_read(visit: dict, school: str, own_school: bool) -> bool:
    """The host school reads all its visits; a partner only those it is invited to."""
    return own_school or is_invited(visit, school)


def find_slot(visit: dict | None, slot_id: str) -> dict | None:
    for slot in (visit or {}).get("slots", []):
        if slot.get("id") == slot_id:
            return slot
    return None


def slot_hash(slot: dict) -> str:
    """What a decision is bound to: the slot's time, kind and capacity, hashed."""
    bound = {"id": slot["id"], "kind": slot["kind"], "starts_at": instant(slot["starts_at"]),
             "ends_at": instant(slot["ends_at"]), "capacity": slot["capacity"]}
    return hashlib.sha256(canonical_json(bound)).hexdigest()


def instant(moment: str) -> str:
    """A date-time with offset as UTC text, so that the same instant hashes and compares the same."""
    return iso(parse_moment(moment))


def overlaps(a_start: str, a_end: str, b_start: str, b_end: str) -> bool:
    """Whether two half-open time ranges [start, end) given with offsets share an instant."""
    return parse_moment(a_start) < parse_moment(b_end) and parse_moment(b_start) < parse_moment(a_end)


def parse_moment(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def refusal(visit: dict | None, slot_id: str, requester_school: str) -> str | None:
    """Why a request must be declined whatever the capacity, or None when it may be decided on seats."""
    if visit is None:
        return VISIT_NOT_FOUND
    if visit.get("status") == "cancelled":
        return VISIT_CANCELLED
    if not is_invited(visit, requester_school):
        return NOT_INVITED
    if find_slot(visit, slot_id) is None:
        return SLOT_NOT_FOUND
    return None


def conflicting_hold(holds: list[dict], request_id: str, starts_at: str, ends_at: str) -> dict | None:
    """The approved slot of the same faculty member that overlaps this one, if any (itself excepted)."""
    for hold in holds:
        if hold["request_id"] != request_id and overlaps(hold["starts_at"], hold["ends_at"], starts_at, ends_at):
            return hold
    return None


def outcome(refused: str | None, overlapping: bool, seat: bool) -> tuple[str, str | None]:
    """(status, reason) of a decision from what was checked, in the order the rules apply."""
    return saga.outcome(refused or (OVERLAP if overlapping else None), seat)


# what each kind of visit change makes of a decision it applies to: (status, reason)
VISIT_CHANGE_OUTCOMES = {CANCELLATION: (DECLINED, VISIT_CANCELLED), SLOT_GONE: (DECLINED, SLOT_REMOVED),
                         SLOT_CHANGED: (RECONFIRM, None)}


def visit_change(decided_hash: str | None, slot: dict | None, visit_cancelled: bool) -> str | None:
    """The intent a visit's change means for a decision on one of its slots, or None when the slot is as decided."""
    if visit_cancelled:
        return CANCELLATION
    if slot is None:
        return SLOT_GONE
    if decided_hash != slot_hash(slot):
        return SLOT_CHANGED
    return None


def after_slot_change(decision_status: str, decided_hash: str | None, slot: dict | None,
                      visit_cancelled: bool) -> tuple[str, str | None] | None:
    """What a visit change does to a decision on one of its slots: (status, reason), or None for no change."""
    intent = visit_change(decided_hash, slot, visit_cancelled)
    if intent is None or not DECISIONS.allows(decision_status, intent):
        return None
    return VISIT_CHANGE_OUTCOMES[intent]


# the decisions a change of their visit may move
AFFECTED_BY_VISIT_CHANGE = tuple(s for s in DECISION_STATUSES
                                 if any(DECISIONS.allows(s, i) for i in (SLOT_CHANGED, SLOT_GONE, CANCELLATION)))
