"""The faculty worker: the outbox relay. Run with `python -m services.faculty.worker`."""

from __future__ import annotations

from services.faculty.model import ENTITY, is_visible_to_partners
from services.faculty.schemas import FacultyPublicSchema
from services.faculty.store import COLLECTION, ensure_indexes
from shared.outbox import OutboxSpec, shared_state
from shared.worker import run_relay_worker

# the state partners see: public fields only (the public schema has no contact fields, so what it
# dumps can leave the school), only while active and shared with the alliance
public_view = shared_state(is_visible_to_partners, FacultyPublicSchema())


SPEC = OutboxSpec(entity=ENTITY, topic_entity="faculty", collection=COLLECTION, public_view=public_view)


def main() -> None:
    run_relay_worker("faculty", SPEC, ensure_indexes)


if __name__ == "__main__":
    main()
