"""The courses service's collections: courses; students' place requests, the host's decisions and the seats of
offerings (the saga's stores, shared/saga_store.py, bound to offerings: a decision's group is (course id, term)).

Indexes, what a conflict means, and how filters become a query.
"""

from __future__ import annotations

import re

from pymongo import ASCENDING
from pymongo.database import Database

from services.courses import model
from shared import saga_store
from shared.changelog import ChangeLog
from shared.entities import equal_to, value_range
from shared.errors import DomainError
from shared.pagination import fill_time_keys

COLLECTION = "courses"
REQUESTS = "place_requests"
DECISIONS = "place_decisions"
SEATS = "offering_seats"
# each kind of entity the service publishes has a change log of its own: collection-name prefixes
COURSES_LOG, REQUESTS_LOG, DECISIONS_LOG = "", "place_requests_", "place_decisions_"


def ensure_indexes(db) -> None:
    """Every index of the courses service: its collections and its three change logs (web and worker call this)."""
    for store in (CourseStore(db), PlaceRequestStore(db), PlaceDecisionStore(db), PlaceSeatStore(db)):
        store.ensure_indexes()
    for prefix in (COURSES_LOG, REQUESTS_LOG, DECISIONS_LOG):
        ChangeLog(db, prefix).ensure_indexes()


class CourseStore(saga_store.SeatedEntityStore):
    collection_name = COLLECTION
    entity = "course"
    sort_fields = {"code": "code", "title": "title.en", "credits": "credits", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        # one database per school, so a unique code here is unique within the school
        self.collection.create_index([("code", ASCENDING)], unique=True)
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("programme", ASCENDING)])
        self.collection.create_index([("reconcile_since", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})

    def duplicate(self, doc: dict) -> DomainError:
        return DomainError("course-code-taken", f"code {doc.get('code')!r} is taken; codes are unique per school")


def criteria_from(filters: dict) -> dict:
    """A MongoDB filter from validated query parameters; values only, never operators from the client."""
    query = equal_to(filters, "programme", "delivery", "status", "visibility")
    if "language" in filters:
        query["languages"] = filters["language"]
    if "term" in filters:
        query["offerings.term"] = filters["term"]
    credits = value_range(filters, "credits_min", "credits_max")
    if credits:
        query["credits"] = credits
    if "q" in filters:
        # every word must appear, in any field and language
        words = filters["q"].lower().split()[:10]
        # only white space (Unicode's too, such as U+0085) is no words: an empty $and is an error
        if words:
            query["$and"] = [{"search_text": {"$regex": re.escape(word)}} for word in words]
    return query


class PlaceRequestStore(saga_store.RequestStore):
    """The place requests this school's students made (the requester's side).

    `live_key` (student, host, course, term) is unique while the request is live, so a student
    holds one request per offering also under concurrent posts; a withdrawn or declined request
    sets it to its own id, which frees the offering for a new request.
    """

    collection_name = REQUESTS
    entity = "place-request"
    machine = model.REQUESTS

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("student_id", ASCENDING)])
        self.collection.create_index([("live_key", ASCENDING)], unique=True, sparse=True)

    def duplicate(self, doc: dict) -> DomainError:
        return DomainError("already-requested", "you hold a request for this offering already; withdraw it first",
                           errors=[{"in": "json", "pointer": "/term", "detail": "already requested"}])


def live_key(student_id: str, host_school: str, course_id: str, term: str) -> str:
    return f"{student_id}/{host_school}/{course_id}/{term}"


def place_request_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "host_school", "course_id", "student_id")


class PlaceDecisionStore(saga_store.DecisionStore):
    """The host's decisions on partners' students' requests, one per request; an offering's seats and waitlist."""

    collection_name = DECISIONS
    entity = "place-decision"
    group = ("course_id", "term")


def place_decision_criteria(filters: dict) -> dict:
    return equal_to(filters, "status", "course_id", "term", "requester_school")


class PlaceSeatStore(saga_store.SeatStore):
    """One document per offering (`<course id>/<term>`): the seats taken; a seat change re-publishes the course."""

    def __init__(self, db: Database):
        super().__init__(db, SEATS, CourseStore(db).seats_changed)

    def part_ids(self, course: dict) -> list[str]:
        return [offering["term"] for offering in course.get("offerings") or []]
