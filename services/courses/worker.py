"""The courses worker: the outbox relay. Run with `python -m services.courses.worker`."""

from __future__ import annotations

from services.courses.model import ENTITY, is_visible_to_partners
from services.courses.schemas import CourseSchema
from services.courses.store import COLLECTION, ensure_indexes
from shared.outbox import OutboxSpec, shared_state
from shared.worker import run_relay_worker

# the state partners see: the API representation, only while published to the alliance
public_view = shared_state(is_visible_to_partners, CourseSchema())


SPEC = OutboxSpec(entity=ENTITY, topic_entity="courses", collection=COLLECTION, public_view=public_view)


def main() -> None:
    run_relay_worker("courses", SPEC, ensure_indexes)


if __name__ == "__main__":
    main()
