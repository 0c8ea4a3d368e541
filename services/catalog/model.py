"""The catalog's read model and its rules. Pure functions, no I/O.

The catalog holds one entry per course, faculty member and visit of every
school, keyed by the entity id and stamped with the entity version it was
built from. An entry is either visible (built from the entity's public state)
or a tombstone (withdrawn, or switched to school-only): the tombstone keeps its
version, so an older event replayed later cannot bring the entry back.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import ValidationError

from services.catalog import schemas
from services.catalog.strict import strict_course
from shared.clock import moment_key
from shared.errors import pointer_errors
from shared.events import InvalidEvent

# event type prefix -> (topic entity and source service, body schema)
KINDS = {
    "course": ("courses", schemas.CourseBody()),
    "faculty": ("faculty", schemas.FacultyBody()),
    "visit": ("visits", schemas.VisitBody()),
}
# topic entity -> event type prefix
ENTITY_OF_TOPIC = {topic: kind for kind, (topic, _) in KINDS.items()}
TOPIC_ENTITIES = tuple(ENTITY_OF_TOPIC)
# states in which an entity is not (or no longer) shared with partners
HIDDEN_STATUSES = {"draft", "withdrawn", "cancelled", "canceled", "archived", "deleted"}
_TOMBSTONE = schemas.TombstoneBody()


@dataclass(frozen=True)
class Change:
    """One entity's new state, from an event or from a partner's change feed."""

    kind: str  # course, faculty, visit
    entity_id: str
    school: str  # the school whose topic or feed it came from
    version: int
    seq: int
    type: str
    body: dict


def kind_of(event_type: str) -> str | None:
    """course from course.updated.v1; None for kinds the catalog does not keep."""
    prefix = event_type.split(".", 1)[0]
    return prefix if prefix in KINDS else None


def is_removal(event_type: str, body: dict) -> bool:
    """A withdrawal, a switch to school-only visibility, or a state partners must not show."""
    if event_type.endswith(".withdrawn.v1"):
        return True
    if body.get("visibility") not in (None, "alliance"):
        return True
    return str(body.get("status", "")).lower() in HIDDEN_STATUSES


def owner_of(kind: str, body: dict) -> str | None:
    return body.get("school")


def entry(change: Change, applied_at: str) -> dict:
    """The document to store for a change: a visible entry or a tombstone; InvalidEvent for poison."""
    removal = is_removal(change.type, change.body)
    schema = _TOMBSTONE if removal else KINDS[change.kind][1]
    # a course body the strict check accepts loads as the schema would load it; any other is the schema's to judge
    body = strict_course(change.body) if change.kind == "course" and not removal else None
    if body is None:
        try:
            body = schema.load(change.body)
        except ValidationError as exc:
            raise InvalidEvent(f"the {change.kind} body does not validate: {_first_errors(exc.messages)}") from None
    if body.get("version", change.version) != change.version:
        raise InvalidEvent(f"the body's version {body['version']} differs from entityversion {change.version}")
    if body["id"] != change.entity_id:
        raise InvalidEvent(f"the body's id {body['id']!r} differs from the event subject {change.entity_id!r}")
    owner = owner_of(change.kind, body)
    if owner is not None and owner != change.school:
        raise InvalidEvent(f"a {change.kind} of {owner!r} cannot come from {change.school!r}")
    if removal and owner is None:
        # a tombstone may carry only the id; it is still about the topic's school
        owner = change.school
    if owner is None:
        raise InvalidEvent(f"the {change.kind} body names no school")
    doc = {"_id": change.entity_id, "school": owner, "version": change.version, "seq": change.seq,
           "visible": not removal, "applied_at": applied_at}
    if removal:
        return doc
    del body["id"]
    body.pop("version", None)
    body.pop("school", None)
    doc.update(body)
    if change.kind == "course":
        doc["terms"] = sorted({o["term"] for o in doc.get("offerings", [])})
        doc["title_sort"] = (doc["title"].get("en") or next(iter(doc["title"].values()), "")).lower()
        # what search sorts `updated` by: the producer's text compares to the second only on the embedded server
        doc["updated_key"] = moment_key(doc.get("updated_at"))
    return doc


def open_places(slot: dict) -> int | None:
    """Places left in a slot, as its host published them (0: full); None from a host that does not say."""
    return slot.get("places_left")


def visit_view(visit: dict, own_school: str | None = None) -> dict:
    """A visit as the API and page show it: every slot with its places left, and its open slots apart."""
    slots = [{**slot, "places_left": open_places(slot)} for slot in visit.get("slots", [])]
    open_slots = [{**slot, "open_places": slot["places_left"]} for slot in slots
                  if slot["places_left"] is None or slot["places_left"] > 0]
    return {**visit, "own": visit.get("school") == own_school, "slots": slots, "open_slots": open_slots}


def _first_errors(messages, limit: int = 3) -> str:
    return "; ".join(f"{e['pointer']}: {e['detail']}" for e in pointer_errors(messages)[:limit])
