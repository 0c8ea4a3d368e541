"""The faculty collection: indexes, and how filters become a query."""

from __future__ import annotations

import re

from pymongo import ASCENDING

from services.faculty.model import email_key, expertise_key, private_keys
from shared.changelog import ChangeLog
from shared.entities import EntityStore, equal_to
from shared.pagination import fill_time_keys

COLLECTION = "faculty"


def ensure_indexes(db) -> None:
    """Every index of the faculty service: its collection and its change log (web and worker call this)."""
    FacultyStore(db).ensure_indexes()
    ChangeLog(db).ensure_indexes()


class FacultyStore(EntityStore):
    collection_name = COLLECTION
    entity = "faculty"
    sort_fields = {"name": "name.en", "department": "department", "updated_at": "updated_key"}

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.collection.create_index([("name.en", ASCENDING)])
        self.collection.create_index([("department", ASCENDING)])
        self.collection.create_index([("updated_key", ASCENDING)])
        self.collection.create_index([("expertise_keys", ASCENDING)])
        self.collection.create_index([("email_key", ASCENDING)])
        fill_time_keys(self.collection, {"updated_key": "updated_at"})
        self.fill_email_keys()

    def fill_email_keys(self) -> None:
        """Profiles stored before the email lookup existed get their email key (docs/operations.md "Upgrade")."""
        for doc in self.collection.find({"email_key": {"$exists": False}}, {"email": 1}):
            keys = private_keys(doc)
            if keys:
                self.collection.update_one({"_id": doc["_id"], "email_key": {"$exists": False}}, {"$set": keys})


def criteria_from(filters: dict) -> dict:
    """A MongoDB filter from validated query parameters; values only, never operators from the client."""
    query = equal_to(filters, "department", "status", "visibility")
    if "email" in filters:
        # coordinator-only (the view checks): the sign-in's lookup of a person's profile
        query["email_key"] = email_key(filters["email"])
    if "language" in filters:
        query["languages"] = filters["language"]
    if "expertise" in filters:
        # $in rather than plain equality: with an index on an array field, the embedded server
        # matches nothing for {"field": value}; $in matches on it and on MongoDB alike
        query["expertise_keys"] = {"$in": [expertise_key(filters["expertise"])]}
    if "available_on" in filters:
        day = filters["available_on"]
        query["availability"] = {"$elemMatch": {"from": {"$lte": day}, "to": {"$gte": day}}}
    if "q" in filters:
        # every word must appear, in the name or the bio, in any language
        words = filters["q"].lower().split()[:10]
        # only white space (Unicode's too, such as U+0085) is no words: an empty $and is an error
        if words:
            query["$and"] = [{"search_text": {"$regex": re.escape(word)}} for word in words]
    return query
