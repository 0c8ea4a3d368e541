"""The catalog's read side: search over the shared courses with facets, and the visits a school may see.

Everything here reads the read model that services/catalog/store.py writes;
filters are built from validated query values only, never operators from a client.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from pymongo import ASCENDING

from services.catalog.store import COLLECTIONS
from services.courses.store import criteria_from as course_criteria
from services.visits.model import ALL_PARTNERS
from shared.entities import EntityStore, equal_to, value_range

# facet name -> the document field it counts (arrays are unwound)
FACETS = {"school": "school", "programme": "programme", "language": "languages", "delivery": "delivery",
          "eqf_level": "eqf_level", "isced_f": "isced_f", "term": "terms"}
MAX_FACET_VALUES = 50
FACET_BATCH = 5000


def involving(school: str) -> dict:
    """Visits hosted by `school` or inviting it ("all" invites every partner): the ones it may see.

    An $or: keep it inside an $and, since the embedded server drops the conditions beside a top-level $or.
    """
    return {"$or": [{"school": school}, {"invited": {"$in": [school, ALL_PARTNERS]}}]}


def upcoming_visits(db, school: str, reader: str, today: str | None = None, limit: int = 20) -> list[dict]:
    """Visits that have not ended, hosted by `school` or inviting it, that `reader`'s school may see."""
    today = today or date.today().isoformat()
    query = {"$and": [{"visible": True}, {"ends_on": {"$gte": today}}, involving(school), involving(reader)]}
    return list(db[COLLECTIONS["visit"]].find(query, sort=[("starts_on", ASCENDING), ("_id", ASCENDING)],
                                              limit=limit))


def visible_visit(db, visit_id: str, reader: str) -> dict | None:
    """A visit `reader`'s school may see (past ones too), or None."""
    return db[COLLECTIONS["visit"]].find_one({"$and": [{"_id": visit_id, "visible": True}, involving(reader)]})


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
    conditions = [{"visible": True}, {"ends_on": {"$gte": today}}, involving(reader)]
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
    query.update(equal_to(filters, "school", "eqf_level", "isced_f"))
    return query
