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

import logging
import threading
from dataclasses import replace
from datetime import timedelta

from pymongo.errors import PyMongoError

from services.visits.model import DECISION_ENTITY, ENTITY, RECEIVED, REQUEST_ENTITY, with_places_left
from services.visits.notify import Notifier, notify_loops
from services.visits.schemas import DecisionSchema, VisitSchema
from services.visits.store import DECISIONS, DECISIONS_LOG, REQUESTS, REQUESTS_LOG, VISITS, SeatStore, ensure_indexes
from services.visits.workflow import Host, Requester
from shared.clock import iso, utc_now
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.logs import configure_logging
from shared.mongo import connect, database
from shared.outbox import OutboxSpec
from shared.worker import make_relay, retry_until_done, run_loops, stop_on_signals

log = logging.getLogger(__name__)

SERVICE = "visits"
REQUEST_TOPIC, DECISION_TOPIC = "slot-requests", "slot-decisions"
_VISIT = VisitSchema()
_DECISION = DecisionSchema()
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
    view = {"id": doc["_id"], **{k: doc.get(k) for k in REQUEST_FIELDS}}
    # the embedded server reads back a boolean written by $set as 0 or 1
    view["withdrawn"] = bool(view["withdrawn"])
    return view


def decision_view(doc: dict) -> dict | None:
    return None if doc.get("status") == RECEIVED else _DECISION.dump(doc)


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


def reconcile_loop(host: Host, idle_seconds: float = 0.2):
    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if host.reconcile_pending() == 0:
                    stop.wait(idle_seconds)
            except PyMongoError as exc:
                log.warning("reconcile: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    return loop


def resend_loop(requester: Requester, every_seconds: float):
    """Every `every_seconds`, publish again the requests whose latest intent has waited that long for the host."""
    def loop(stop: threading.Event) -> None:
        while not stop.wait(every_seconds):
            try:
                cutoff = iso(utc_now() - timedelta(seconds=every_seconds))
                resent = requester.resend_unanswered(cutoff)
                if resent:
                    log.info("re-sending %d slot requests the host has not answered after %.0fs", resent,
                             every_seconds)
            except PyMongoError as exc:
                log.warning("resend: database unavailable (%s); retrying", exc.__class__.__name__)

    return loop


def worker_loops(settings: Settings, db) -> dict:
    """Every loop of the worker, by name; tests run them in threads of their own."""
    relays = {f"relay-{spec.topic_entity}": make_relay(settings, db, spec) for spec in specs(db)}
    host = Host(db, settings.school)
    requester = Requester(db, settings.school)
    prefix = settings.kafka_topic_prefix
    requests = EventConsumer(settings, f"{prefix}{settings.school}.visits.requests",
                             [settings.topic(REQUEST_TOPIC, s) for s in settings.school_ids],
                             host.apply_request_event)
    decisions = EventConsumer(settings, f"{prefix}{settings.school}.visits.decisions",
                              [settings.topic(DECISION_TOPIC, s) for s in settings.school_ids],
                              requester.apply_decision_event)
    return {
        **{name: relay.run_forever for name, relay in relays.items()},
        "decide": requests.run_forever,
        "apply-decisions": decisions.run_forever,
        "reconcile": reconcile_loop(host),
        "resend": resend_loop(requester, settings.slot_request_resend_seconds),
        **notify_loops(settings, db),
    }


def main() -> None:
    settings = Settings.from_env(service=SERVICE)
    configure_logging(settings.school, f"{SERVICE}-worker", settings.log_level)
    stop = stop_on_signals()
    db = database(connect(settings), settings)
    def indexes() -> None:
        ensure_indexes(db)
        Notifier(db, settings).ensure_indexes()

    if not retry_until_done(indexes, "creating indexes", stop):
        return
    loops = worker_loops(settings, db)
    log.info("visits worker of %s started: %s", settings.school, ", ".join(loops))
    run_loops(loops, stop, settings.worker_stop_seconds)
    log.info("visits worker stopped")


if __name__ == "__main__":
    main()
