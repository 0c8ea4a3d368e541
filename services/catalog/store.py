"""The catalog's MongoDB collections: the read model, its conditional writes, search and sync state.

One collection per kind (courses, faculty, visits), each entry keyed by the
entity id. Every write is one conditional replace that applies only when the
incoming version is newer than the held one, so replays and stale events
change nothing, on every MongoDB topology and on the embedded server.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.catalog.model import KINDS, TOPIC_ENTITIES
from services.courses.store import criteria_from as course_criteria
from shared.entities import EntityStore, value_range
from shared.events import InvalidEvent
from shared.digest import digest_of
from shared.pagination import fill_time_keys

COLLECTIONS = {kind: topic for kind, (topic, _) in KINDS.items()}  # course -> courses
SYNC = "sync"
DUPLICATE_KEY = 11000
# facet name -> the document field it counts (arrays are unwound)
FACETS = {"school": "school", "programme": "programme", "language": "languages", "delivery": "delivery",
          "eqf_level": "eqf_level", "isced_f": "isced_f", "term": "terms"}
MAX_FACET_VALUES = 50
FACET_BATCH = 5000
MAX_UPCOMING = 1000
# a visit's `invited` holding this invites every partner
ALL_PARTNERS = "all"


class ReadModel:
    """The entries of every kind, written only by applying changes."""

    def __init__(self, db: Database):
        self.db = db

    def collection(self, kind: str):
        return self.db[COLLECTIONS[kind]]

    def ensure_indexes(self) -> None:
        # _id stays out of compound indexes: the embedded server fails every insert with one
        for kind in KINDS:
            coll = self.collection(kind)
            coll.create_index([("school", ASCENDING), ("seq", ASCENDING)])
            coll.create_index([("school", ASCENDING), ("visible", ASCENDING)])
        courses = self.collection("course")
        for field in ("visible", "programme", "code", "title_sort", "credits", "updated_key"):
            courses.create_index([(field, ASCENDING)])
        # entries applied before the key existed; the next change of a course replaces its entry anyway
        fill_time_keys(courses, {"updated_key": "updated_at"})
        self.collection("visit").create_index([("ends_on", ASCENDING)])
        self.collection("visit").create_index([("starts_on", ASCENDING)])

    def apply(self, kind: str, doc: dict) -> bool:
        """Store `doc` if its version is newer than the held entry's; False when it is not (a no-op)."""
        coll = self.collection(kind)
        try:
            result = coll.replace_one(self._newer(doc), doc, upsert=True)
        except DuplicateKeyError:
            # the entry exists with this version or a newer one, or it is another school's
            self._refuse_foreign(kind, doc)
            return False
        return bool(result.upserted_id is not None or result.modified_count)

    def apply_many(self, kind: str, docs: list[dict]) -> tuple[int, int]:
        """Apply a page of changes in one round trip; (applied, refused as another school's)."""
        if not docs:
            return 0, 0
        try:
            result = self.collection(kind).bulk_write(
                [ReplaceOne(self._newer(d), d, upsert=True) for d in docs], ordered=False)
            return result.upserted_count + result.modified_count, 0
        except BulkWriteError as exc:
            details = exc.details
            other = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if other:
                raise
            refused = 0
            for error in details.get("writeErrors", []):
                try:
                    self._refuse_foreign(kind, docs[error["index"]])
                except InvalidEvent:
                    refused += 1
            return details.get("nUpserted", 0) + details.get("nModified", 0), refused

    @staticmethod
    def _newer(doc: dict) -> dict:
        # the school is part of the condition: an id held for another school is never replaced
        return {"_id": doc["_id"], "school": doc["school"], "version": {"$lt": doc["version"]}}

    def _refuse_foreign(self, kind: str, doc: dict) -> None:
        held = self.collection(kind).find_one({"_id": doc["_id"]}, {"school": 1})
        if held is not None and held["school"] != doc["school"]:
            raise InvalidEvent(f"{kind} {doc['_id']} belongs to {held['school']!r}, not {doc['school']!r}")

    def tombstone(self, kind: str, held: dict, applied_at: str) -> bool:
        """Drop a visible entry still held at the same version (it vanished from its source)."""
        stone = {"_id": held["_id"], "school": held["school"], "version": held["version"],
                 "seq": held.get("seq", 0), "visible": False, "applied_at": applied_at}
        result = self.collection(kind).replace_one(
            {"_id": held["_id"], "version": held["version"], "visible": True}, stone)
        return result.modified_count == 1

    def applied_seq(self, school: str, kind: str) -> int:
        last = self.collection(kind).find_one({"school": school}, sort=[("seq", DESCENDING)], projection={"seq": 1})
        return last["seq"] if last else 0

    def held(self, school: str, kind: str) -> list[dict]:
        """{_id, school, version, seq} of the visible entries of one school."""
        return list(self.collection(kind).find({"school": school, "visible": True},
                                               {"school": 1, "version": 1, "seq": 1}))

    def digest(self, school: str, kind: str) -> dict:
        """The same digest the source serves: over (id, version) of its visible entries held here."""
        return digest_of((d["_id"], d["version"]) for d in self.held(school, kind))

    def get(self, kind: str, entity_id: str) -> dict | None:
        return self.collection(kind).find_one({"_id": entity_id, "visible": True})

    def profiles(self, faculty_ids) -> list[dict]:
        """The visible public profiles of these faculty members, in the given order."""
        ids = list(faculty_ids)
        found = {d["_id"]: d for d in self.collection("faculty").find({"_id": {"$in": ids}, "visible": True})}
        return [found[i] for i in ids if i in found]

    def upcoming_visits(self, school: str, reader: str, today: str | None = None, limit: int = 20) -> list[dict]:
        """Visits that have not ended, hosted by `school` or inviting it, that `reader`'s school may see.

        A visit is public to its host and its invited schools ("all": every partner).
        """
        today = today or date.today().isoformat()
        # filtered here rather than with $or: the embedded server drops the other conditions of an
        # $or query when an index covers one of its branches
        upcoming = self.collection("visit").find({"visible": True, "ends_on": {"$gte": today}},
                                                 sort=[("starts_on", ASCENDING)], limit=MAX_UPCOMING)
        return [v for v in upcoming if _involves(v, school) and _involves(v, reader)][:limit]


def _involves(visit: dict, school: str) -> bool:
    invited = visit.get("invited", [])
    return visit["school"] == school or school in invited or ALL_PARTNERS in invited


def may_see(visit: dict, reader: str) -> bool:
    """A visit is public to its host and its invited schools ("all": every partner)."""
    return _involves(visit, reader)


class VisitSearch(EntityStore):
    """Keyset-paginated upcoming visits, earliest start first.

    Paged on (starts_on, _id): a date without a time, which the embedded server
    compares exactly (it compares date-time text only to the second), and the id
    to order the visits that start the same day.
    """

    collection_name = COLLECTIONS["visit"]
    entity = "visit"
    sort_fields = {"starts_on": "starts_on"}


def visit_criteria(filters: dict, reader: str, today: str | None = None) -> dict:
    """A MongoDB filter over the visible, not yet ended visits `reader`'s school may see; values only.

    Every condition sits in one $and: the embedded server drops the conditions beside a top-level $or.
    """
    today = today or date.today().isoformat()
    conditions = [{"visible": True}, {"ends_on": {"$gte": today}},
                  {"$or": [{"school": reader}, {"invited": {"$in": [reader, ALL_PARTNERS]}}]}]
    if "school" in filters:
        conditions.append({"school": filters["school"]})
    starts = value_range(filters, "starts_from", "starts_until")
    if starts:
        conditions.append({"starts_on": starts})
    if "kind" in filters:
        # equality, not $in: the embedded server's $in matches nothing on a field inside an array
        conditions.append({"slots.kind": filters["kind"]})
    return {"$and": conditions}


class CourseSearch(EntityStore):
    """Keyset-paginated search over the visible courses, with facet counts."""

    collection_name = COLLECTIONS["course"]
    entity = "course"
    sort_fields = {"code": "code", "title": "title_sort", "credits": "credits", "school": "school",
                   "updated": "updated_key"}

    def count(self, criteria: dict) -> int:
        return self.collection.database.command("count", self.collection.name, query=criteria)["n"]

    def facets(self, filters: dict) -> dict:
        """Per facet, its values with counts under the query and every other filter (disjunctive facets).

        One query reads the facet fields of the courses matching the free text and
        credit range; the counting happens here. On the embedded server this is
        several times faster than a $facet aggregation (0.6 s against 3.7 s over
        10,000 courses), and it needs one round trip for all seven facets.
        """
        base = criteria_from({k: v for k, v in filters.items() if k not in FACETS})
        active = {name: filters[name] for name in FACETS if name in filters}
        counts: dict[str, Counter] = {name: Counter() for name in FACETS}
        projection = {"_id": 0, **{field: 1 for field in FACETS.values()}}
        for row in self.collection.find(base, projection, batch_size=FACET_BATCH):
            values = {name: _as_list(row.get(field)) for name, field in FACETS.items()}
            misses = [name for name, wanted in active.items() if wanted not in values[name]]
            if len(misses) > 1:
                continue
            for name in (misses or FACETS):
                # a facet counts the rows that pass every other filter
                counts[name].update(values[name])
        return {name: [{"value": v, "count": n} for v, n in sorted(c.items(), key=lambda i: (-i[1], str(i[0])))]
                [:MAX_FACET_VALUES] for name, c in counts.items()}


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def criteria_from(filters: dict) -> dict:
    """A MongoDB filter over visible courses from validated query values; never operators from a client.

    The catalog holds each course as its source's event body (plus search_text),
    so the courses service's own filter serves for the fields both have.
    """
    query = course_criteria({k: v for k, v in filters.items() if k not in ("status", "visibility")})
    query["visible"] = True
    for name in ("school", "eqf_level", "isced_f"):
        if name in filters:
            query[name] = filters[name]
    return query


class SyncState:
    """Per source (school and entity kind): what was synced, checked and dead-lettered."""

    def __init__(self, db: Database):
        self.collection = db[SYNC]

    @staticmethod
    def key(school: str, entity: str) -> str:
        return f"{school}/{entity}"

    def get(self, school: str, entity: str) -> dict:
        return self.collection.find_one({"_id": self.key(school, entity)}) or {}

    def all(self) -> dict[str, dict]:
        return {d["_id"]: d for d in self.collection.find({})}

    def update(self, school: str, entity: str, **fields) -> None:
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$set": {"school": school, "entity": entity, **fields}}, upsert=True)

    def advance(self, school: str, entity: str, synced_seq: int) -> None:
        """Everything of this source up to `synced_seq` is held (never moves back)."""
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$max": {"synced_seq": synced_seq},
                                    "$set": {"school": school, "entity": entity}}, upsert=True)

    def reset(self, school: str, entity: str, synced_seq: int = 0) -> None:
        self.update(school, entity, synced_seq=synced_seq)

    def dead_lettered(self, school: str, entity: str) -> None:
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$inc": {"dead_lettered": 1}, "$set": {"school": school, "entity": entity}},
                                   upsert=True)


__all__ = ["ReadModel", "CourseSearch", "VisitSearch", "SyncState", "criteria_from", "visit_criteria", "may_see",
           "TOPIC_ENTITIES"]
