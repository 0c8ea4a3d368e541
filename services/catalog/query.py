"""The catalog's read side in MongoDB: the visits a school may see.

Everything here reads the read model that services/catalog/store.py writes;
filters are built from validated query values only, never operators from a client.
Course search (relevance, facets, sorted pages) is the search index's:
services/catalog/search_index.py.
"""

from __future__ import annotations

from datetime import date

from pymongo import ASCENDING

from services.catalog.store import COLLECTIONS
from services.visits.model import ALL_PARTNERS
from shared.entities import EntityStore, value_range


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
