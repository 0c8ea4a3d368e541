"""The courses collection: indexes, what a conflict means, and how filters become a query."""

from __future__ import annotations

import re

from pymongo import ASCENDING

from shared.changelog import ChangeLog
from shared.entities import EntityStore, equal_to, value_range
from shared.errors import DomainError
from shared.pagination import fill_time_keys

COLLECTION = "courses"


def ensure_indexes(db) -> None:
    """Every index of the courses service: its collection and its change log (web and worker call this)."""
    CourseStore(db).ensure_indexes()
    ChangeLog(db).ensure_indexes()


class CourseStore(EntityStore):
    collection_name = COLLECTION
    entity = "course"
    sort_fields = {"code": "code", "title": "title.en", "credits": "credits", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        # one database per school, so a unique code here is unique within the school
        self.collection.create_index([("code", ASCENDING)], unique=True)
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("programme", ASCENDING)])
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
