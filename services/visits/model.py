"""Teaching-team visits, their slots, and the rules of slot requests. Pure functions, no I/O.

A visit belongs to its host school and is public to the schools it invites
(`invited` lists them, or holds "all" for every partner). Its slots are what
partner faculty request. A decision on a request is bound to the slot as it
was when decided (`slot_hash`); a later change of the slot asks for
re-confirmation instead of silently keeping the approval.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from shared.clock import iso, touched
from shared.errors import Problem
from shared.events import canonical_json

ENTITY = "visit"
STATUSES = ("planned", "confirmed", "cancelled")
SLOT_KINDS = ("guest_lecture", "co_teaching", "workshop", "seminar", "panel", "site_visit", "mentoring")
ALL_PARTNERS = "all"
WRITABLE = ("theme", "invited", "place", "starts_on", "ends_on", "host_team", "agenda", "slots", "status")

# slot requests, as the requester's school sees them
REQUEST_ENTITY = "slot_request"
# decisions, as the host school takes them
DECISION_ENTITY = "slot_decision"
PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN, RECONFIRM = (
    "pending", "approved", "waitlisted", "declined", "withdrawn", "reconfirm")
REQUEST_STATUSES = (PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN, RECONFIRM)
# a decision received but not taken yet: internal to the host, never published
RECEIVED = "received"
# the decisions that hold a seat in their slot
HOLDING = (APPROVED, RECONFIRM)
# what a requester may still withdraw
WITHDRAWABLE = (PENDING, APPROVED, WAITLISTED, RECONFIRM)

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
        raise Problem(422, "invalid-status", "A visit cannot be created cancelled",
                      "create it as planned or confirmed", errors=[{"pointer": "/status", "detail": "cancelled"}])
    doc = {"_id": visit_id or str(uuid.uuid4()), "school": school, "version": 1, "created_at": now,
           **touched(now)}
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


def cancelled_fields(now: str, marker: int) -> dict:
    return {"status": "cancelled", **touched(now), "reconcile_since": marker}


def with_slot_ids(slots: list[dict]) -> list[dict]:
    return [{**slot, "id": slot.get("id") or str(uuid.uuid4())} for slot in slots]


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
    if refused:
        return DECLINED, refused
    if overlapping:
        return DECLINED, OVERLAP
    return (APPROVED, None) if seat else (WAITLISTED, None)


def after_slot_change(decision_status: str, decided_hash: str | None, slot: dict | None,
                      visit_cancelled: bool) -> tuple[str, str | None] | None:
    """What a visit change does to a decision on one of its slots: (status, reason), or None for no change."""
    if decision_status not in (APPROVED, RECONFIRM, WAITLISTED):
        return None
    if visit_cancelled:
        return DECLINED, VISIT_CANCELLED
    if slot is None:
        return DECLINED, SLOT_REMOVED
    if decision_status == APPROVED and decided_hash != slot_hash(slot):
        return RECONFIRM, None
    return None
