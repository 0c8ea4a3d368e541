"""Running a worker process: settings, logs, signals, and loops that outlive outages."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta
from typing import Callable

from pymongo.errors import PyMongoError

from shared.auth import KeyRing
from shared.clock import iso, utc_now
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.events import sign
from shared.kafka import TopicWatch, ensure_topics, make_producer
from shared.logs import configure_logging
from shared.mongo import connect, database
from shared.outbox import OutboxSpec
from shared.relay import Relay

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: loops finish their batch and return."""
    stop = threading.Event()

    def _set(signum: int) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    def _handler(signum, frame):
        # a handler runs in the main thread, which may be inside stop.wait() holding the event's
        # non-reentrant lock: setting the event right here could deadlock, so another thread does it
        threading.Thread(target=_set, args=(signum,), daemon=True).start()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def retry_until_done(step: Callable[[], None], what: str, stop: threading.Event) -> bool:
    """Run `step` until it succeeds or the worker stops (the database or broker may start later)."""
    delay = 0.2
    while not stop.is_set():
        try:
            step()
            return True
        except Exception as exc:  # any failure of a dependency at start-up: wait and retry
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, exc.__class__.__name__, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return False


def make_relay(settings: Settings, db, spec: OutboxSpec) -> Relay:
    """The relay of one service, signing its events with the school's key.

    The keys are read here, at start: a private key the process cannot read raises
    ConfigError (naming the file and the fix) instead of failing every batch forever.
    """
    keyring = KeyRing(settings.keys_dir, settings.school)
    keyring.load(settings.school_ids, private=True)
    watch = TopicWatch(settings)
    return Relay(
        settings, db, spec,
        producer_factory=lambda: make_producer(settings),
        topic_setup=lambda topics: ensure_topics(settings, topics),
        topic_exists=watch.exists,
        signer=lambda event: sign(event, keyring.private_key()),
    )


def run_loops(loops: dict[str, Callable[[threading.Event], None]], stop: threading.Event,
              stop_seconds: float) -> None:
    """Run each loop in a thread until `stop`; a loop that dies is logged and restarted.

    After `stop`, the loops get `stop_seconds` together to return (WORKER_STOP_SECONDS, 15 s;
    `make run` sets 1); one still running then
    (in a poll, or waiting for its next check) is left to end with the process. That loses
    nothing: a relay sends again what it had not marked, a consumer reads again what it
    had not committed.
    """

    def guarded(name, loop):
        while not stop.is_set():
            try:
                loop(stop)
            except Exception:
                log.exception("%s crashed; restarting in 1s", name)
                stop.wait(1.0)

    threads = [threading.Thread(target=guarded, args=(n, l), name=n, daemon=True) for n, l in loops.items()]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(0.5)
    deadline = time.monotonic() + stop_seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threads if t.is_alive()]
    if left:
        log.info("loops still running after %.1fs, left to end with the process: %s", stop_seconds, ", ".join(left))


def reconcile_loop(host, idle_seconds: float = 0.2):
    """The loop of a saga's host (shared.saga.Host): reconcile changed owners, fill freed seats, renumber."""
    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if host.reconcile_pending() == 0:
                    stop.wait(idle_seconds)
            except PyMongoError as exc:
                log.warning("reconcile: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    return loop


def resend_loop(requester, every_seconds: float, what: str):
    """Every `every_seconds`, publish again the requests (of a shared.saga.Requester) whose latest intent has
    waited that long for the host."""
    def loop(stop: threading.Event) -> None:
        while not stop.wait(every_seconds):
            try:
                cutoff = iso(utc_now() - timedelta(seconds=every_seconds))
                resent = requester.resend_unanswered(cutoff)
                if resent:
                    log.info("re-sending %d %s the host has not answered after %.0fs", resent, what, every_seconds)
            except PyMongoError as exc:
                log.warning("resend: database unavailable (%s); retrying", exc.__class__.__name__)

    return loop


def saga_loops(settings: Settings, db, service: str, host, requester, request_topic: str, decision_topic: str,
               resend_seconds: float) -> dict:
    """The loops of both halves of a request saga (shared/saga.py) in a service's worker, by name: the host's
    consumer of every school's request topic (decides), the requester's consumer of every school's decision
    topic (applies), the host's reconciliation and the requester's resend of unanswered intents."""
    group = f"{settings.kafka_topic_prefix}{settings.school}.{service}"
    requests = EventConsumer(settings, f"{group}.requests",
                             [settings.topic(request_topic, s) for s in settings.school_ids], host.apply_request_event)
    decisions = EventConsumer(settings, f"{group}.decisions",
                              [settings.topic(decision_topic, s) for s in settings.school_ids],
                              requester.apply_decision_event)
    return {"decide": requests.run_forever, "apply-decisions": decisions.run_forever,
            "reconcile": reconcile_loop(host), "resend": resend_loop(requester, resend_seconds, request_topic)}


def run_worker(service: str, ensure_indexes: Callable, loops: Callable) -> None:
    """The main of a write service's worker: its loops `loops(settings, db)` (which read the keys they need now,
    so that an unreadable key stops the start), its indexes (`ensure_indexes(db, settings)`), then the loops
    until a signal."""
    settings = Settings.from_env(service=service)
    configure_logging(settings.school, f"{service}-worker", settings.log_level)
    stop = stop_on_signals()
    db = database(connect(settings), settings)
    running = loops(settings, db)
    if not retry_until_done(lambda: ensure_indexes(db, settings), "creating indexes", stop):
        return
    log.info("%s worker of %s started: %s", service, settings.school, ", ".join(running))
    run_loops(running, stop, settings.worker_stop_seconds)
    log.info("%s worker stopped", service)


def run_relay_worker(service: str, spec: OutboxSpec, ensure_indexes: Callable) -> None:
    """The main of a write service's worker whose only loop is its relay."""
    run_worker(service, lambda db, settings: ensure_indexes(db),
               lambda settings, db: {"relay": make_relay(settings, db, spec).run_forever})
