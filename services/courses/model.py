"""A course, its rules, and the rules of students' requests for places in its offerings. Pure functions, no I/O.

A course belongs to one school; partners see it only while it is published
with visibility `alliance`. Its id (a UUID) is never reused; withdrawing keeps
the record with status `withdrawn`.

An offering is identified within its course by its `term`. Its `places` are the
capacity students of partner schools request (shared/saga.py: the host decides,
the student's school follows); `places_left` is derived, never stored: the
places less the seats held by approvals (store.PlaceSeatStore). A seat change
re-publishes the course with a new version but does not make a coordinator's
ETag stale (`shared.saga.edit_applies`, as for visits).
"""

from __future__ import annotations

import uuid

from shared.clock import touched
from shared.errors import DomainError
from shared.saga import (
    APPROVE, APPROVED, AUTOMATIC, AWAIT_REVIEW, DECISION, DECLINE, DECLINED, NEEDS_NOTE, PENDING, PROMOTE,
    PUBLISH_INTENT, RECEIVED, RELEASE, REQUEST, REQUEST_FOR_REVIEW, TAKE_SEAT, TAKE_SEAT_OR_WAIT, WAITLISTED,
    WITHDRAW, WITHDRAWN,
)
from shared.statemachine import StateMachine, Transition
from shared.visibility import Visibility

ENTITY = "course"
STATUSES = ("draft", "published", "withdrawn")
VISIBILITIES = ("school", "alliance")
DELIVERY_MODES = ("in_person", "online", "hybrid")
# the fields a coordinator writes; everything else the service sets
WRITABLE = (
    "code", "title", "description", "programme", "credits", "eqf_level", "isced_f", "languages", "delivery",
    "hours", "learning_outcomes", "prerequisites", "instructors", "offerings", "visibility", "status",
)


def new_course(data: dict, school: str, now: str, course_id: str | None = None) -> dict:
    """The document of a course created from validated input."""
    if data.get("status") == "withdrawn":
        raise DomainError("invalid-status",
                          "a course cannot be created withdrawn; create it as draft or published",
                          errors=[{"pointer": "/status", "detail": "withdrawn"}])
    doc = {"_id": course_id or str(uuid.uuid4()), "school": school, "version": 1, "edited_version": 1,
           "created_at": now, **touched(now)}
    doc.update({k: data[k] for k in WRITABLE if k in data})
    doc["search_text"] = search_text(doc)
    return doc


def replacement(data: dict, now: str, marker: int | None = None) -> tuple[dict, list[str]]:
    """A full update (PUT): the fields to set and the optional fields it leaves out, to remove.

    The store increments `version` in the same write. `marker` flags the course for the
    worker, which follows the change in the decisions on its offerings' places.
    """
    fields = {k: data[k] for k in WRITABLE if k in data}
    fields.update(touched(now))
    fields["search_text"] = search_text(fields)
    return {**fields, **reconciling(marker)}, [k for k in WRITABLE if k not in data]


def withdrawn_fields(now: str, marker: int | None = None) -> dict:
    return {"status": "withdrawn", **touched(now), **reconciling(marker)}


def reconciling(marker: int | None) -> dict:
    """The flag of a course the worker must check against the decisions on its offerings (None: no flag)."""
    return {} if marker is None else {"reconcile_since": marker}


def search_text(doc: dict) -> str:
    """What free-text search looks in: code, title and description in every language, lower-cased."""
    parts = [doc.get("code", "")]
    for field in ("title", "description"):
        parts.extend((doc.get(field) or {}).values())
    return "\n".join(p for p in parts if p).lower()


# a published course of the school is read by all its members; with visibility alliance, by partners too
VISIBILITY = Visibility(live="published")
is_visible_to_partners = VISIBILITY.shared
can_read = VISIBILITY.can_read
reader_filter = VISIBILITY.reader_filter


# offerings and their places


def find_offering(course: dict | None, term: str) -> dict | None:
    for offering in (course or {}).get("offerings") or []:
        if offering.get("term") == term:
            return offering
    return None


def approval_of(offering: dict | None) -> str:
    """How the host decides on requests for this offering; offerings written before the field are automatic."""
    return (offering or {}).get("approval") or AUTOMATIC


def places_left(offering: dict, taken: int, withdrawn: bool) -> int | None:
    """How many more requests an offering can approve: its places less the seats held; None without `places`;
    0 when full or the course is withdrawn. Seats held may exceed places lowered since: still 0."""
    if offering.get("places") is None:
        return None
    return 0 if withdrawn else max(0, offering["places"] - taken)


def with_places_left(course: dict, taken: dict[str, int]) -> dict:
    """A copy of the course whose offerings carry `places_left`, given the seats taken per term (none if absent)."""
    withdrawn = course.get("status") == "withdrawn"
    offerings = [{**o, "places_left": places_left(o, taken.get(o["term"], 0), withdrawn)}
                 for o in course.get("offerings") or []]
    return {**course, "offerings": offerings}


# students' course-place requests, as the student's school sees them ("requester") and as the host decides them
REQUEST_ENTITY = "place_request"
DECISION_ENTITY = "place_decision"
PENDING_ENDORSEMENT, ENDORSED = "pending-endorsement", "endorsed"
REQUEST_STATUSES = (PENDING_ENDORSEMENT, ENDORSED, APPROVED, WAITLISTED, DECLINED, WITHDRAWN)
# `received`: internal to the host, never published; `pending`: awaiting the host coordinator's review
DECISION_STATUSES = (RECEIVED, PENDING, APPROVED, WAITLISTED, DECLINED, WITHDRAWN)
# the student's school's coordinator answers for the credits: only an endorsed request travels to the host
ENDORSE = "endorse"
# the host withdrew the course, stopped sharing it, or removed the offering (an intent; the decline it leads
# to gives the reason OFFERING_REMOVED, the same word)
OFFERING_GONE = "offering-removed"
INTENTS = (REQUEST, REQUEST_FOR_REVIEW, ENDORSE, WITHDRAW, APPROVE, DECLINE, PROMOTE, OFFERING_GONE, DECISION)
# who declined a request
HOME, HOST = "home", "host"

DECISIONS = StateMachine("place decision", DECISION_STATUSES, INTENTS, {
    (RECEIVED, REQUEST): Transition((APPROVED, WAITLISTED, DECLINED), (TAKE_SEAT,)),
    (RECEIVED, REQUEST_FOR_REVIEW): Transition((PENDING, DECLINED), (AWAIT_REVIEW,)),
    (RECEIVED, WITHDRAW): Transition((WITHDRAWN,)),
    (RECEIVED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (RECEIVED, APPROVE): Transition((APPROVED,), (TAKE_SEAT,)),
    # review mode: an approval still respects the places; a full offering (or one with a waitlist) waitlists it
    (PENDING, APPROVE): Transition((APPROVED, WAITLISTED), (TAKE_SEAT_OR_WAIT,)),
    (PENDING, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (PENDING, WITHDRAW): Transition((WITHDRAWN,)),
    (PENDING, OFFERING_GONE): Transition((DECLINED,)),
    (APPROVED, WITHDRAW): Transition((WITHDRAWN,), (RELEASE,)),
    (APPROVED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE, RELEASE)),
    (APPROVED, OFFERING_GONE): Transition((DECLINED,), (RELEASE,)),
    (WAITLISTED, WITHDRAW): Transition((WITHDRAWN,)),
    (WAITLISTED, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (WAITLISTED, APPROVE): Transition((APPROVED,), (TAKE_SEAT,)),
    (WAITLISTED, PROMOTE): Transition((APPROVED,), (TAKE_SEAT,)),
    (WAITLISTED, OFFERING_GONE): Transition((DECLINED,)),
    # no (DECLINED, APPROVE): a host's decline is final for a place, since it frees the student to ask again
})
# the student's school: its own record, endorsed (or declined) by its coordinator, then moved by the host's
# decisions (the host's `pending` shows as `endorsed`); a withdrawn request stays withdrawn
_DECIDED = (ENDORSED, APPROVED, WAITLISTED, DECLINED, WITHDRAWN)
REQUESTS = StateMachine("place request", REQUEST_STATUSES, INTENTS, {
    (PENDING_ENDORSEMENT, ENDORSE): Transition((ENDORSED,), (PUBLISH_INTENT,)),
    (PENDING_ENDORSEMENT, DECLINE): Transition((DECLINED,), (NEEDS_NOTE,)),
    (PENDING_ENDORSEMENT, WITHDRAW): Transition((WITHDRAWN,)),
    **{(status, WITHDRAW): Transition((WITHDRAWN,), (PUBLISH_INTENT,)) for status in (ENDORSED, APPROVED, WAITLISTED)},
    **{(status, DECISION): Transition(_DECIDED) for status in (ENDORSED, APPROVED, WAITLISTED, DECLINED)},
})
# the host's decisions a change of their course may decline
AFFECTED_BY_COURSE_CHANGE = DECISIONS.from_statuses(OFFERING_GONE)

# why a request is declined: stable slugs
DECLINED_BY_HOME = "declined-by-home"
COURSE_NOT_FOUND = "course-not-found"
OFFERING_NOT_FOUND = "offering-not-found"
OFFERING_CLOSED = "offering-closed"
OFFERING_REMOVED = "offering-removed"


def catalog_refusal(course: dict | None, host_school: str, term: str, today: str) -> tuple[str, str] | None:
    """(field, why) a request cannot be made, as far as the student's school's catalog knows the host's course
    (`course` as the catalog shows it, None when it shows none); None when it may be asked for."""
    if course is None or course.get("school") != host_school:
        return "course_id", f"no course of {host_school} shared with this school has this id"
    offering = find_offering(course, term)
    if offering is None:
        return "term", "the course has no offering in this term"
    if not is_open(offering, today):
        return "term", "this offering takes no requests now (no places, started, or outside its application dates)"
    return None


def refusal(course: dict | None, term: str, requester_school: str, today: str) -> str | None:
    """Why a request for an offering must be declined whatever the places, or None.

    Open: the course is shared with the alliance, the offering has places, it has not
    started, and today is within its application window when it has one.
    """
    if course is None or not is_visible_to_partners(course) or course.get("school") == requester_school:
        return COURSE_NOT_FOUND
    offering = find_offering(course, term)
    if offering is None:
        return OFFERING_NOT_FOUND
    if not is_open(offering, today):
        return OFFERING_CLOSED
    return None


def is_open(offering: dict, today: str) -> bool:
    """Whether an offering takes requests today (dates as ISO text compare as dates)."""
    if offering.get("places") is None or today >= offering["starts_on"]:
        return False
    if offering.get("applications_open") and today < offering["applications_open"]:
        return False
    return not (offering.get("applications_close") and today > offering["applications_close"])


def capacity(course: dict | None, term: str) -> int | None:
    """The seats of an offering that takes requests (its places), or None (course not shared, offering gone)."""
    offering = find_offering(course, term)
    if course is None or offering is None or not is_visible_to_partners(course):
        return None
    return offering.get("places")


def course_change(course: dict, term: str) -> str | None:
    """The intent a course's change means for the decisions on one of its offerings, or None."""
    return OFFERING_GONE if capacity(course, term) is None else None
