"""The write side of the outbox: what a write sets so that the relay publishes it, and what it publishes.

A write stores the entity's new state with `version` + 1 and `pending_since`
set, in one single-document write (shared/entities.py does it for every
store). The relay (shared/relay.py) picks pending entities up in write order,
logs them in the change log (shared/changelog.py) and publishes them;
`OutboxSpec` tells it what partners may see of an entity, and `describe` which
event a pending version becomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from shared.changelog import ChangeLog
from shared.clock import write_order

# what a partner needs to drop an entry: never the content of a hidden entity
TOMBSTONE_FIELDS = ("id", "school", "version", "status", "visibility")


def pending_marker() -> dict:
    """The field a write sets so that the relay picks the entity up, in write order."""
    return {"pending_since": write_order()}


def unpublished_filter() -> dict:
    # a range rather than {"$ne": None}: the embedded server matches missing fields with $ne
    return {"pending_since": {"$gt": 0}}


def ensure_outbox_indexes(entities: Collection) -> None:
    # _id stays out of compound indexes: the embedded server fails every insert with one
    entities.create_index([("pending_since", ASCENDING)])


def outbox_gauges(db: Database, collection: str, others: dict[str, str] | None = None):
    """The gauges of a write service's /metrics: its unpublished backlog and the change log's head.

    `others` names the service's other kinds of published entity and their collections
    ({"slot_requests": "slot_requests"}): each gets an `outbox_backlog_<name>` gauge.
    """
    yield "outbox_backlog", "Entities written but not yet published", _backlog(db, collection)
    yield "outbox_last_published_sequence", "The highest sequence in the change log", ChangeLog(db).head()
    for name, other in (others or {}).items():
        yield f"outbox_backlog_{name}", f"{name} written but not yet published", _backlog(db, other)


def _backlog(db: Database, collection: str) -> int:
    return db.command("count", collection, query=unpublished_filter())["n"]


@dataclass(frozen=True)
class OutboxSpec:
    """What the relay needs to know of one service's entities."""

    entity: str  # "course": the event type prefix
    topic_entity: str  # "courses": the topic and source name
    collection: str  # the MongoDB collection of the entities
    # the state partners may see, or None when the entity is hidden from them
    public_view: Callable[[dict], dict | None]
    # the service named in the events' source, when it differs from topic_entity ("visits")
    service: str = ""
    # the change log's collection-name prefix, for a second kind of entity in one service
    log_prefix: str = ""


def shared_state(is_shared: Callable[[dict], bool], schema) -> Callable[[dict], dict | None]:
    """A public view: the schema's dump of an entity while `is_shared(doc)`, else None (partners drop it)."""

    def view(doc: dict) -> dict | None:
        return schema.dump(doc) if is_shared(doc) else None

    return view


def describe(spec: OutboxSpec, doc: dict) -> tuple[str | None, bool, dict]:
    """(event type, visible, body) of an entity's pending version; type None: nothing to publish."""
    view = spec.public_view(doc)
    was_visible = bool(doc.get("public_visible"))
    if view is not None:
        action = "updated" if was_visible else "published"
        return f"{spec.entity}.{action}.v1", True, view
    if was_visible:
        tombstone = {k: doc[k] for k in TOMBSTONE_FIELDS if k in doc}
        tombstone["id"] = doc["_id"]
        return f"{spec.entity}.withdrawn.v1", False, tombstone
    return None, False, {}
