"""The courses worker: the outbox relay. Run with `python -m services.courses.worker`."""

from __future__ import annotations

from services.courses.model import ENTITY, is_visible_to_partners
from services.courses.schemas import CourseSchema
from services.courses.store import COLLECTION, ensure_indexes
from shared.outbox import OutboxSpec
from shared.worker import run_relay_worker

_PUBLIC = CourseSchema()


def public_view(doc: dict) -> dict | None:
    """The state partners see: the API representation, only while published to the alliance."""
    if is_visible_to_partners(doc):
        return _PUBLIC.dump(doc)
    return None


SPEC = OutboxSpec(entity=ENTITY, topic_entity="courses", collection=COLLECTION, public_view=public_view)


def main() -> None:
    run_relay_worker("courses", SPEC, ensure_indexes)


if __name__ == "__main__":
    main()
