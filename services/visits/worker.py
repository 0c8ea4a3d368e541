"""The visits worker: three outbox relays and the two halves of the slot workflow.

Run with `python -m services.visits.worker`. Loops, each in its own thread:

- relays of visits (`<school>.visits.v1`, each slot with its places left, read from the
  seats as the visit is published), slot requests (`<school>.slot-requests.v1`) and
  decisions (`<school>.slot-decisions.v1`), each with its own change log;
- the host's consumer of every school's slot-request topic, which decides;
- the requester's consumer of every school's slot-decision topic, which applies;
- the reconciliation of changed visits and freed seats (re-confirmation, waitlist), and the
  re-publication of visits whose seats changed when the writer stopped before bumping them;
- notifications (services/visits/notify.py): derive mails from marked writes, and send them over SMTP.
"""

from __future__ import annotations

from dataclasses import replace

from services.visits.model import DECISION_ENTITY, ENTITY, REQUEST_ENTITY, with_places_left
from services.visits.notify import Notifier, notify_loops
from services.visits.schemas import DecisionSchema, VisitSchema
from services.visits.store import DECISIONS, DECISIONS_LOG, REQUESTS, REQUESTS_LOG, VISITS, SeatStore, ensure_indexes
from services.visits.workflow import Host, Requester
from shared import saga
from shared.config import Settings
from shared.outbox import OutboxSpec
from shared.worker import make_relay, run_worker, saga_loops

SERVICE = "visits"
REQUEST_TOPIC, DECISION_TOPIC = "slot-requests", "slot-decisions"
_VISIT = VisitSchema()
REQUEST_FIELDS = ("school", "host_school", "visit_id", "slot_id", "faculty_id", "motivation", "withdrawn",
                  "confirmed_slot_hash", "version", "created_at", "updated_at")


def visit_view(doc: dict, taken: dict[str, int] | None = None) -> dict:
    """A visit as its API and its events show it, each slot with its places left given the seats `taken`.

    `taken` maps slot ids to seats held (none when absent: a visit nobody asked for yet).
    A visit is public to its invited schools, cancelled ones too, so that requesters learn it.
    """
    return _VISIT.dump(with_places_left(doc, taken or {}))


def seat_reading_view(db):
    """The relay's public view of a visit: the seat counts are read as it publishes.

    A seat change gives the visit a new version after the seat write, so the last version
    published reads the last seat counts, in whatever order seat changes happened.
    """
    seats = SeatStore(db)
    return lambda doc: visit_view(doc, seats.taken(doc))


def request_view(doc: dict) -> dict:
    """What the host needs of a request: who asks for which slot, and whether it was withdrawn."""
    return saga.request_view(doc, REQUEST_FIELDS)


decision_view = saga.decision_view(DecisionSchema())


# publishing a visit reads its seats: use visit_spec(db), which binds the view to the database
_VISIT_SPEC = OutboxSpec(entity=ENTITY, topic_entity="visits", collection=VISITS, public_view=visit_view)
REQUEST_SPEC = OutboxSpec(entity=REQUEST_ENTITY, topic_entity=REQUEST_TOPIC, collection=REQUESTS,
                          public_view=request_view, service=SERVICE, log_prefix=REQUESTS_LOG)
DECISION_SPEC = OutboxSpec(entity=DECISION_ENTITY, topic_entity=DECISION_TOPIC, collection=DECISIONS,
                            public_view=decision_view, service=SERVICE, log_prefix=DECISIONS_LOG)


def visit_spec(db) -> OutboxSpec:
    """The visits relay's spec, its view reading the seats from `db`."""
    return replace(_VISIT_SPEC, public_view=seat_reading_view(db))


def specs(db) -> tuple[OutboxSpec, ...]:
    return visit_spec(db), REQUEST_SPEC, DECISION_SPEC


def worker_loops(settings: Settings, db) -> dict:
    """Every loop of the worker, by name; tests run them in threads of their own."""
    relays = {f"relay-{spec.topic_entity}": make_relay(settings, db, spec) for spec in specs(db)}
    return {
        **{name: relay.run_forever for name, relay in relays.items()},
        **saga_loops(settings, db, SERVICE, Host(db, settings.school), Requester(db, settings.school),
                     REQUEST_TOPIC, DECISION_TOPIC, settings.slot_request_resend_seconds),
        **notify_loops(settings, db),
    }


def indexes(db, settings: Settings) -> None:
    ensure_indexes(db)
    Notifier(db, settings).ensure_indexes()


def main() -> None:
    run_worker(SERVICE, indexes, worker_loops)


if __name__ == "__main__":
    main()
