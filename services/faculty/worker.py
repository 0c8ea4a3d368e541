"""The faculty worker: the outbox relay. Run with `python -m services.faculty.worker`."""

from __future__ import annotations

from services.faculty.model import ENTITY, is_visible_to_partners
from services.faculty.schemas import FacultyPublicSchema
from services.faculty.store import COLLECTION, ensure_indexes
from shared.outbox import OutboxSpec
from shared.worker import run_relay_worker

# the public schema has no contact fields: what it dumps can leave the school
_PUBLIC = FacultyPublicSchema()


def public_view(doc: dict) -> dict | None:
    """The state partners see: public fields only, only while active and shared with the alliance."""
    if is_visible_to_partners(doc):
        return _PUBLIC.dump(doc)
    return None


SPEC = OutboxSpec(entity=ENTITY, topic_entity="faculty", collection=COLLECTION, public_view=public_view)


def main() -> None:
    run_relay_worker("faculty", SPEC, ensure_indexes)


if __name__ == "__main__":
    main()
