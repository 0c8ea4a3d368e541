"""A course and its rules. Pure functions, no I/O.

A course belongs to one school; partners see it only while it is published
with visibility `alliance`. Its id (a UUID) is never reused; withdrawing keeps
the record with status `withdrawn`.
"""

from __future__ import annotations

import uuid

from shared.clock import touched
from shared.errors import DomainError
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
    doc = {"_id": course_id or str(uuid.uuid4()), "school": school, "version": 1,
           "created_at": now, **touched(now)}
    doc.update({k: data[k] for k in WRITABLE if k in data})
    doc["search_text"] = search_text(doc)
    return doc


def replacement(data: dict, now: str) -> tuple[dict, list[str]]:
    """A full update (PUT): the fields to set and the optional fields it leaves out, to remove.

    The store increments `version` in the same write.
    """
    fields = {k: data[k] for k in WRITABLE if k in data}
    fields.update(touched(now))
    fields["search_text"] = search_text(fields)
    return fields, [k for k in WRITABLE if k not in data]


def withdrawn_fields(now: str) -> dict:
    return {"status": "withdrawn", **touched(now)}


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
