"""The courses collection: indexes, queries and the single-document writes."""

from __future__ import annotations

import re

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.errors import Problem
from shared.outbox import ensure_outbox_indexes, pending_marker
from shared.pagination import keyset_filter

COLLECTION = "courses"
SORT_FIELDS = {"code": "code", "title": "title.en", "credits": "credits", "updated_at": "updated_at"}


class CourseStore:
    def __init__(self, db: Database):
        self.courses = db[COLLECTION]

    def ensure_indexes(self) -> None:
        self.courses.create_index([("code", ASCENDING)], unique=True)
        self.courses.create_index([("idempotency_key", ASCENDING)], unique=True, sparse=True)
        self.courses.create_index([("updated_at", ASCENDING)])
        self.courses.create_index([("programme", ASCENDING)])
        ensure_outbox_indexes(self.courses)

    def get(self, course_id: str) -> dict | None:
        return self.courses.find_one({"_id": course_id})

    def by_idempotency_key(self, key: str) -> dict | None:
        return self.courses.find_one({"idempotency_key": key})

    def insert(self, doc: dict, idempotency_key: str | None, fingerprint: str | None) -> tuple[dict, bool]:
        """Store a new course and mark it for the relay, in one write.

        Returns (document, created). A retry with the same Idempotency-Key and body
        returns the first course with created=False.
        """
        doc = {**doc, **pending_marker()}
        if idempotency_key:
            doc["idempotency_key"] = idempotency_key
            doc["idempotency_fingerprint"] = fingerprint
        try:
            self.courses.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            if idempotency_key:
                first = self.by_idempotency_key(idempotency_key)
                if first is not None:
                    if first.get("idempotency_fingerprint") != fingerprint:
                        raise Problem(422, "idempotency-key-reused",
                                      "This Idempotency-Key was used with a different request",
                                      "use a new key for a different course") from None
                    return first, False
            raise Problem(409, "course-code-taken", "A course with this code exists in this school",
                          f"code {doc['code']!r} is taken; codes are unique per school") from None

    def replace(self, course_id: str, expected_version: int, fields: dict, unset: list[str]) -> dict | None:
        """Apply a full update if the course is still at `expected_version`; None if it is not."""
        update = {"$set": {**fields, **pending_marker()}, "$inc": {"version": 1}}
        if unset:
            update["$unset"] = {k: "" for k in unset}
        try:
            return self.courses.find_one_and_update(
                {"_id": course_id, "version": expected_version}, update, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            raise Problem(409, "course-code-taken", "A course with this code exists in this school",
                          f"code {fields.get('code')!r} is taken; codes are unique per school") from None

    def search(self, criteria: dict, sort: str, limit: int, after=None) -> list[dict]:
        """One page of courses matching `criteria`, in `sort` order, after a cursor position."""
        descending = sort.startswith("-")
        field = SORT_FIELDS[sort.lstrip("-")]
        query = dict(criteria)
        if after is not None:
            query = {"$and": [query, keyset_filter(field, descending, *after)]} if query else \
                keyset_filter(field, descending, *after)
        return list(self.courses.find(
            query, sort=[(field, DESCENDING if descending else ASCENDING), ("_id", ASCENDING)], limit=limit
        ))


def criteria_from(filters: dict) -> dict:
    """A MongoDB filter from validated query parameters; values only, never operators from the client."""
    query: dict = {}
    for name in ("programme", "delivery", "status", "visibility"):
        if name in filters:
            query[name] = filters[name]
    if "language" in filters:
        query["languages"] = filters["language"]
    if "term" in filters:
        query["offerings.term"] = filters["term"]
    credits = {}
    if "credits_min" in filters:
        credits["$gte"] = filters["credits_min"]
    if "credits_max" in filters:
        credits["$lte"] = filters["credits_max"]
    if credits:
        query["credits"] = credits
    if "q" in filters:
        # every word must appear, in any field and language
        words = filters["q"].lower().split()[:10]
        query["$and"] = [{"search_text": {"$regex": re.escape(word)}} for word in words]
    return query


def sort_value(doc: dict, sort: str):
    """The value of the sort field in a document, for the next page's cursor."""
    value = doc
    for part in SORT_FIELDS[sort.lstrip("-")].split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
