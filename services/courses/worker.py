"""The courses worker: three outbox relays and the two halves of the course-place saga.

Run with `python -m services.courses.worker`. Loops, each in its own thread:

- relays of courses (`<school>.courses.v1`, each offering with its places left, read from the
  seats as the course is published), place requests (`<school>.place-requests.v1`, once
  endorsed) and the host's decisions (`<school>.place-decisions.v1`), each with its own change log;
- the host's consumer of every school's place-request topic, which decides;
- the requester's consumer of every school's place-decision topic, which applies;
- the reconciliation of changed courses and freed seats (waitlist promotion, renumbering), and
  the re-publication of courses whose seats changed when the writer stopped before bumping them;
- the resend of endorsed requests whose latest intent the host has not answered.
"""

from __future__ import annotations

from dataclasses import replace

from services.courses.model import DECISION_ENTITY, ENTITY, REQUEST_ENTITY, is_visible_to_partners, with_places_left
from services.courses.places import PlaceHost, PlaceRequester
from services.courses.schemas import CourseSchema, PlaceDecisionSchema
from services.courses.store import (
    COLLECTION, DECISIONS, DECISIONS_LOG, REQUESTS, REQUESTS_LOG, PlaceSeatStore, ensure_indexes,
)
from shared import saga
from shared.config import Settings
from shared.outbox import OutboxSpec, shared_state
from shared.worker import make_relay, run_worker, saga_loops

SERVICE = "courses"
REQUEST_TOPIC, DECISION_TOPIC = "place-requests", "place-decisions"
# what the host needs of a student's request: never their email, student number or id (they stay at their school)
REQUEST_FIELDS = ("school", "host_school", "course_id", "term", "name", "programme", "statement", "withdrawn",
                  "version", "created_at", "updated_at")

_shared_course = shared_state(is_visible_to_partners, CourseSchema())


def public_view(doc: dict, taken: dict[str, int] | None = None) -> dict | None:
    """The state partners see of a course (None while not published to the alliance), each offering with its
    places left given the seats `taken` per term."""
    return _shared_course(with_places_left(doc, taken or {}))


def seat_reading_view(db):
    """The relay's public view of a course: the seat counts are read as it publishes (see the visits')."""
    seats = PlaceSeatStore(db)
    return lambda doc: public_view(doc, seats.taken(doc))


def request_view(doc: dict) -> dict | None:
    """What the host needs of a request, once its school endorsed it; None before (it stays at this school)."""
    if not doc.get("endorsed_at"):
        return None
    return saga.request_view(doc, REQUEST_FIELDS)


decision_view = saga.decision_view(PlaceDecisionSchema())

# publishing a course reads its seats: use course_spec(db), which binds the view to the database
_COURSE_SPEC = OutboxSpec(entity=ENTITY, topic_entity="courses", collection=COLLECTION, public_view=public_view)
REQUEST_SPEC = OutboxSpec(entity=REQUEST_ENTITY, topic_entity=REQUEST_TOPIC, collection=REQUESTS,
                          public_view=request_view, service=SERVICE, log_prefix=REQUESTS_LOG)
DECISION_SPEC = OutboxSpec(entity=DECISION_ENTITY, topic_entity=DECISION_TOPIC, collection=DECISIONS,
                           public_view=decision_view, service=SERVICE, log_prefix=DECISIONS_LOG)
# kept for the tests and tools that publish courses without seats (places left as if none were taken)
SPEC = _COURSE_SPEC


def course_spec(db) -> OutboxSpec:
    """The courses relay's spec, its view reading the seats from `db`."""
    return replace(_COURSE_SPEC, public_view=seat_reading_view(db))


def specs(db) -> tuple[OutboxSpec, ...]:
    return course_spec(db), REQUEST_SPEC, DECISION_SPEC


def worker_loops(settings: Settings, db) -> dict:
    """Every loop of the worker, by name; tests run them in threads of their own."""
    relays = {f"relay-{spec.topic_entity}": make_relay(settings, db, spec) for spec in specs(db)}
    return {
        **{name: relay.run_forever for name, relay in relays.items()},
        **saga_loops(settings, db, SERVICE, PlaceHost(db, settings.school), PlaceRequester(db, settings.school),
                     REQUEST_TOPIC, DECISION_TOPIC, settings.place_request_resend_seconds),
    }


def main() -> None:
    run_worker(SERVICE, lambda db, settings: ensure_indexes(db), worker_loops)


if __name__ == "__main__":
    main()
