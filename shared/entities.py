"""What every write service does with its entities in MongoDB.

A store keeps one collection of a school's entities: single-document writes
that also mark the entity for the relay (the marker of shared/outbox.py), idempotent
creation, updates conditional on the version, and keyset-paginated search.
The HTTP side (If-Match, Idempotency-Key, ETags) is in shared/resource.py.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.errors import DomainError
from shared.outbox import ensure_outbox_indexes, pending_marker
from shared.pagination import decode_cursor, encode_cursor, keyset_filter


class EntityStore:
    """One collection of entities. Subclasses name it and say what a duplicate means."""

    collection_name = ""
    entity = ""  # "course": used in problem types and messages
    # API sort names -> document fields; "-name" sorts descending
    sort_fields: dict[str, str] = {}

    def __init__(self, db: Database):
        self.collection = db[self.collection_name]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("idempotency_key", ASCENDING)], unique=True, sparse=True)
        ensure_outbox_indexes(self.collection)

    def duplicate(self, doc: dict) -> DomainError:
        """The problem for a write that broke a unique index other than the idempotency key."""
        return DomainError(f"{self.entity}-conflict")

    def not_found(self) -> DomainError:
        return DomainError(f"{self.entity}-not-found", f"no {self.entity} with this id is visible to you")

    def get(self, entity_id: str) -> dict | None:
        return self.collection.find_one({"_id": entity_id})

    def insert(self, doc: dict, idempotency_key: str | None = None,
               fingerprint: str | None = None) -> tuple[dict, bool]:
        """Store a new entity, marked for the relay, in one write.

        Returns (document, created). A retry with the same Idempotency-Key and body
        returns the entity as it was first created, with created=False, also after later
        updates; the same key with another body is a 422.
        """
        first_result = dict(doc)
        doc = {**doc, **pending_marker()}
        if idempotency_key:
            doc["idempotency_key"] = idempotency_key
            doc["idempotency_fingerprint"] = fingerprint
            # kept beside the entity (the same write) so that a retry gets the first result again
            doc["idempotency_first"] = first_result
        try:
            self.collection.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            first = self.replay(idempotency_key, fingerprint) if idempotency_key else None
            if first is not None:
                return first, False
            raise self.duplicate(doc) from None

    def replay(self, idempotency_key: str, fingerprint: str | None) -> dict | None:
        """The entity as first created under this Idempotency-Key, None if the key is new; a 422 for the
        key sent with another body (or by another caller)."""
        first = self.collection.find_one({"idempotency_key": idempotency_key})
        if first is None:
            return None
        if first.get("idempotency_fingerprint") != fingerprint:
            raise DomainError("idempotency-key-reused", f"use a new key for a different {self.entity}")
        return first.get("idempotency_first", first)

    def replace(self, entity_id: str, expected_version: int, fields: dict, unset=(),
                where: dict | None = None) -> dict | None:
        """Set `fields` (and remove `unset`) if the entity is still at `expected_version`; None if not.

        `where` adds conditions the entity must also meet (e.g. {"status": "active"}), checked in the same write.
        """
        update = {"$set": {**fields, **pending_marker()}, "$inc": {"version": 1}}
        if unset:
            update["$unset"] = {k: "" for k in unset}
        try:
            return self.collection.find_one_and_update(
                {**(where or {}), "_id": entity_id, "version": expected_version}, update,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise self.duplicate(fields) from None

    def stale(self, entity_id: str) -> DomainError:
        """Why a conditional write did not apply: 404, or 412 with the current ETag."""
        current = self.get(entity_id)
        if current is None:
            return self.not_found()
        return DomainError("precondition-failed",
                           f"the {self.entity} is at version {current['version']}; read it again and retry",
                           current_version=current["version"])

    def search(self, criteria: dict, sort: str, limit: int, after=None) -> list[dict]:
        """Up to `limit` entities matching `criteria` in `sort` order, after a cursor position."""
        descending = sort.startswith("-")
        field = self.sort_fields[sort.lstrip("-")]
        query = dict(criteria)
        if after is not None:
            position = keyset_filter(field, descending, *after)
            query = {"$and": [query, position]} if query else position
        return list(self.collection.find(
            query, sort=[(field, DESCENDING if descending else ASCENDING), ("_id", ASCENDING)], limit=limit
        ))

    def page(self, criteria: dict, sort: str, limit: int, cursor: str | None) -> dict:
        """{"items", "cursor"}: one page, and the cursor of the next when more match (else None).

        The API turns the cursor into the next page's link (shared.resource.linked).
        """
        after = decode_cursor(cursor) if cursor else None
        rows = self.search(criteria, sort, limit + 1, after)
        items = rows[:limit]
        if len(rows) <= limit:
            return {"items": items, "cursor": None}
        last = items[-1]
        return {"items": items, "cursor": encode_cursor(field_value(last, self.sort_fields[sort.lstrip("-")]),
                                                        last["_id"])}


def equal_to(filters: dict, *names: str) -> dict:
    """{name: value} of the given filters that were set: each must equal its value (a value, never an operator)."""
    return {name: filters[name] for name in names if name in filters}


def value_range(filters: dict, low: str, high: str) -> dict:
    """{"$gte": filters[low], "$lte": filters[high]} with whichever bounds were given (maybe none)."""
    bounds = {}
    if low in filters:
        bounds["$gte"] = filters[low]
    if high in filters:
        bounds["$lte"] = filters[high]
    return bounds


def field_value(doc: dict, dotted: str):
    value = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
