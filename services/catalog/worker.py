"""The catalog worker: consumes every school's events, catches up from feeds, checks digests.

Run with `python -m services.catalog.worker`. Three loops: the consumer (own and
every partner's courses, faculty and visits topics, through the shared
EventConsumer: source check, signature, DLQ, commit after apply), the sync
loop (catch-up from change feeds, periodic digest checks) and the dead-letter
reader (the school's DLQ, counted per partner for /sync).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Callable

from pymongo.errors import PyMongoError

from services.catalog import text
from services.catalog.model import TOPIC_ENTITIES
from services.catalog.store import ReadModel, SyncState
from services.catalog.sync import (
    Catchup, CountedDeadLetters, DeadLetterReader, FeedClient, OffsetMonitor, apply_event,
)
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.logs import configure_logging
from shared.mongo import connect, database
from shared.worker import retry_until_done, run_loops, stop_on_signals

log = logging.getLogger(__name__)
# how long an applied change may wait in the search index's writer before a commit makes it searchable
SEARCH_COMMIT_SECONDS = 0.1
# how often the worker looks whether its search index folder is still there
INDEX_CHECK_SECONDS = 1.0
# how often the search index's upcoming marks are swept (SearchIndex.sweep): a course ranks as upcoming at most
# this long after the day its last offering started
SEARCH_SWEEP_SECONDS = 300.0


def topics(settings: Settings) -> list[str]:
    """Every school's topics of the kinds the catalog keeps; a new school is configuration only."""
    return [settings.topic(entity, school) for school in settings.school_ids for entity in TOPIC_ENTITIES]


def group_id(settings: Settings) -> str:
    # one broker cluster serves every school: each school's catalog is its own group
    return f"{settings.kafka_topic_prefix}{settings.school}.catalog"


def build(settings: Settings, db, feed: FeedClient | None = None) -> tuple[EventConsumer, Catchup, OffsetMonitor]:
    """The consumer, the sync loop and the offset monitor that links them."""
    model = ReadModel(db, settings.search_index_dir)
    catchup = Catchup(settings, db, feed or FeedClient(settings))
    monitor = OffsetMonitor(settings, catchup)
    consumer = EventConsumer(settings, group_id(settings), topics(settings), partial(apply_event, model),
                             on_batch=lambda: monitor(consumer.consumer), on_reset=monitor.reset)
    consumer.dead_letters = CountedDeadLetters(settings, SyncState(db))
    return consumer, catchup, monitor


def index_step(what: str, step: Callable[[], object]) -> None:
    """One step of a search index loop; a database or tantivy failure is logged, and the loop's next turn tries
    again."""
    try:
        step()
    except PyMongoError as exc:
        log.warning("%s: database unavailable (%s); retrying", what, exc.__class__.__name__)
    except (OSError, ValueError) as exc:
        # tantivy's errors (a folder removed while it wrote): the next check rebuilds
        log.warning("%s: %s; retrying", what, exc)


def sweep_upcoming(index, db, stop_loop, every: float = SEARCH_SWEEP_SECONDS) -> None:
    """Sweep the search index's upcoming marks now and then every `every` seconds until `stop_loop` is set."""
    while True:
        index_step("search sweep", lambda: index.sweep(db))
        if stop_loop.wait(every):
            return


def main() -> None:
    settings = Settings.from_env(service="catalog")
    configure_logging(settings.school, "catalog-worker", settings.log_level)
    stop = stop_on_signals()
    db = database(connect(settings), settings)
    model = ReadModel(db, settings.search_index_dir)
    text.warm_up()
    if not retry_until_done(model.ensure_indexes, "creating indexes", stop):
        return
    # the digests the checks compare are kept by each write from now on (counted if never counted, or all
    # of them when the last worker was killed)
    if not retry_until_done(lambda: model.prime_digests(settings.school_ids), "counting the held digests", stop):
        return
    # a missing or outdated search index is rebuilt, or brought up to the read model, before consuming
    if not retry_until_done(lambda: log.info("search index: %d entries followed", model.search.follow(db)),
                            "bringing the search index up to date", stop):
        return
    consumer, catchup, _ = build(settings, db)
    # a burst of events is committed to the search index together, at most SEARCH_COMMIT_SECONDS apart
    model.search.commit_every = SEARCH_COMMIT_SECONDS

    def keep_index(stop_loop) -> None:
        # commits what waits; and an index folder deleted under the running worker is rebuilt, no restart needed
        next_check = time.monotonic() + INDEX_CHECK_SECONDS
        while not stop_loop.wait(SEARCH_COMMIT_SECONDS / 2):
            index_step("search index", model.search.flush_due)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + INDEX_CHECK_SECONDS
                index_step("search index", lambda: model.search.heal(db))

    log.info("catalog worker of %s started; consuming %d topics", settings.school, len(consumer.topics))
    loops = {"consumer": consumer.run_forever, "sync": catchup.run_forever,
             "dead-letters": DeadLetterReader(settings, db).run_forever, "search-index": keep_index,
             "search-sweep": partial(sweep_upcoming, model.search, db)}
    run_loops(loops, stop, settings.worker_stop_seconds)
    model.search.flush()
    try:
        if not model.stopped():
            log.info("a write was still running: the next start counts the held digests again")
    except PyMongoError as exc:  # the next start counts the digests again
        log.warning("could not mark the stop (%s)", exc.__class__.__name__)
    log.info("catalog worker stopped")


if __name__ == "__main__":
    main()
