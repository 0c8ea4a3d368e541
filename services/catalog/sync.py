"""Keeping the read model equal to every school's shared state, without trusting the broker.

Three ways changes arrive, all applied by the same rule (newer version wins):

- events, through shared.consumer.EventConsumer and `apply_event`;
- a school's change feed (`GET /changes?since=`), when the catalog starts,
  when its offsets are gone or lie beyond what the broker holds (the embedded
  broker forgets everything on restart and never reports out-of-range), and
  when a digest check differs;
- a full re-sync from sequence 0, which also drops entries the source no
  longer has, when an incremental catch-up did not make the digests equal.

`synced_seq` per source only moves forward, and only to a sequence up to which
everything is known to be held (a feed read to its end, or equal digests), so
catching up from it never skips a change.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Callable

import orjson
import requests
from pymongo.errors import PyMongoError

from services.catalog.model import ENTITY_OF_TOPIC, KINDS, TOPIC_ENTITIES, Change, entry, kind_of
from services.catalog.search_index import SearchIndex
from services.catalog.store import DeadLetterTally, ReadModel, SyncState
from shared.auth import KeyRing, issue_token
from shared.clock import now_iso
from shared.config import ConfigError, Settings
from shared.consumer import DeadLetters, EventConsumer, topic_school
from shared.events import Event, InvalidEvent

log = logging.getLogger(__name__)
# how often the sync loop looks at the stop event while it waits for its next check
STOP_CHECK_SECONDS = 0.5

FEED_PAGE = 1000
MAX_FEED_PAGES = 10_000
TOKEN_REFRESH_SECONDS = 300
# how long a caught-up course (or a single event applied beside a catch-up) may wait in the search index's writer
# before a commit makes it searchable: a catch-up commits when it ends, and a longer one this often (each commit
# is a segment of the index, and every search runs once per segment: ADR 0008)
CATCHUP_COMMIT_SECONDS = 60.0


def apply_event(model: ReadModel, event: Event, school: str, clock: Callable[[], str] = now_iso) -> str:
    """Apply one checked event from `school`'s topic: applied, stale (a no-op) or ignored; InvalidEvent for poison."""
    kind = kind_of(event.type)
    if kind is None:
        # another kind on a shared topic (e.g. slot requests on visits): valid, but not the catalog's
        return "ignored"
    service = event.source.rsplit("/", 1)[-1]
    if service != KINDS[kind][0]:
        raise InvalidEvent(f"a {kind} event cannot come from the {service} service")
    change = Change(kind=kind, entity_id=event.subject, school=school, version=event.entityversion,
                    seq=event.sequence, type=event.type, body=event.data)
    return "applied" if model.apply(kind, entry(change, clock())) else "stale"


def entity_of_topic(settings: Settings, topic: str) -> str:
    """courses from [prefix]ecnu-cto.courses.v1."""
    name = topic[len(settings.kafka_topic_prefix):] if topic.startswith(settings.kafka_topic_prefix) else topic
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else ""


class CountedDeadLetters(DeadLetters):
    """Dead-letters as the shared consumer does, and counts them per source for /sync."""

    def __init__(self, settings: Settings, state: SyncState):
        super().__init__(settings)
        self.state = state

    def send(self, record, reason: str) -> None:
        super().send(record, reason)
        try:
            self.state.dead_lettered(topic_school(self.settings, record.topic),
                                     entity_of_topic(self.settings, record.topic))
        except PyMongoError:  # the record is in the DLQ; only the count is missed
            log.warning("could not count a dead letter of %s", record.topic)


def dead_letter_origin(settings: Settings, record) -> tuple[str, dict] | None:
    """(key, fields) of a record of the dead-letter topic: where it came from and why; None if it says nothing."""
    headers = {name: value for name, value in (record.headers or [])}
    topic = (headers.get("dlq_topic") or b"").decode("utf-8", "replace")[:300]
    if not topic:
        return None
    text = lambda name: (headers.get(name) or b"").decode("utf-8", "replace")
    origin = f"{topic}/{text('dlq_partition')[:20]}/{text('dlq_offset')[:20]}/{text('dlq_group')[:60]}"
    return origin, {"topic": topic, "group": text("dlq_group")[:60], "reason": text("dlq_reason")[:500],
                    "recorded_at": now_iso(), "school": topic_school(settings, topic)}


class DeadLetterReader(EventConsumer):
    """Reads the school's dead-letter topic into the tally that /sync counts per partner (its own group).

    EventConsumer's loop (poll, retry from the record that failed with its backoff, commit only what is
    recorded, rewind after a broker reset) with this `handle`: a dead letter is counted, never applied.
    """

    def __init__(self, settings: Settings, db, group_id: str | None = None):
        super().__init__(settings, group_id or f"{settings.kafka_topic_prefix}{settings.school}.catalog.dead-letters",
                         [settings.dlq_topic], apply=_never_applied)
        self.tally = DeadLetterTally(db)
        self.seen = 0  # records read, counted or not

    def handle(self, record) -> None:
        self.seen += 1
        origin = dead_letter_origin(self.settings, record)
        if origin is not None:
            key, fields = origin
            self.tally.record(key, fields.pop("school"), **fields)


def _never_applied(event: Event, school: str) -> None:
    raise AssertionError("a dead letter is counted, never applied")


class FeedError(RuntimeError):
    """A school's feed or digest could not be read."""


class FeedClient:
    """Reads a school's `GET /changes` and `GET /digest` as this school's `partner` service.

    `http_get(url, params, headers) -> (status, json)` is injectable, so tests can
    serve a feed from a Flask test client.
    """

    def __init__(self, settings: Settings, http_get=None, timeout: float = 10.0):
        self.settings = settings
        self.keyring = KeyRing(settings.keys_dir, settings.school)
        # read at start: an unreadable key must stop the worker, not crash the sync loop every second
        self.keyring.load(settings.school_ids, private=True)
        self.timeout = timeout
        self.http_get = http_get or self._requests_get
        self.session = requests.Session()
        self._token = None
        self._token_expires = 0.0

    def _requests_get(self, url: str, params: dict, headers: dict):
        response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
        try:
            # orjson: a feed page of 1,000 in 4 ms against 8 ms; what it refuses (a lone surrogate, NaN) goes to
            # the standard parser, so that only its entry is refused later, not the whole page
            body = orjson.loads(response.content)
        except ValueError:
            try:
                body = response.json()
            except ValueError:
                body = None
        return response.status_code, body

    def _auth(self) -> dict:
        if self._token is None or time.time() > self._token_expires - TOKEN_REFRESH_SECONDS:
            ttl = self.settings.token_ttl_seconds
            self._token = issue_token(self.keyring.private_key(), self.settings.school, "partner", ttl_seconds=ttl)
            self._token_expires = time.time() + ttl
        return {"Authorization": f"Bearer {self._token}"}

    def get(self, school: str, entity: str, path: str, params: dict | None = None) -> dict:
        try:
            url = self.settings.school_url(school, entity) + path
        except (ConfigError, KeyError) as exc:
            raise FeedError(f"no {entity} service is configured for {school}") from exc
        try:
            status, body = self.http_get(url, params or {}, self._auth())
        except requests.RequestException as exc:
            raise FeedError(f"{url}: {exc.__class__.__name__}") from exc
        if status != 200 or not isinstance(body, dict):
            raise FeedError(f"{url} answered {status}")
        return body

    def changes(self, school: str, entity: str, since: int, limit: int = FEED_PAGE) -> dict:
        return self.get(school, entity, "/changes", {"since": since, "limit": limit})

    def digest(self, school: str, entity: str) -> dict:
        return self.get(school, entity, "/digest")


class Catchup:
    """Catch-up from change feeds and periodic digest checks, for every school and entity kind."""

    def __init__(self, settings: Settings, db, feed: FeedClient, clock: Callable[[], str] = now_iso,
                 digest_interval: float | None = None):
        self.settings = settings
        self.model = ReadModel(db, settings.search_index_dir)
        self.state = SyncState(db)
        self.feed = feed
        self.clock = clock
        self.digest_interval = digest_interval if digest_interval is not None else settings.catalog_digest_seconds
        self.sources = [(school, entity) for school in settings.school_ids for entity in TOPIC_ENTITIES]
        self._requests: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.wake = threading.Event()

    # requests come from the consumer thread; the sync thread serves them

    def request(self, school: str, entity: str, reason: str) -> None:
        with self._lock:
            self._requests.setdefault((school, entity), reason)
        self.wake.set()

    def _take_requests(self) -> dict:
        # cleared first: a request made while these are served wakes the next wait at once
        self.wake.clear()
        with self._lock:
            taken, self._requests = self._requests, {}
        return taken

    def catch_up(self, school: str, entity: str, full: bool = False, reason: str = "") -> dict:
        """Apply the school's feed from `synced_seq` (or from 0, dropping what it no longer has, when full)."""
        kind = ENTITY_OF_TOPIC[entity]
        since = 0 if full else int(self.state.get(school, entity).get("synced_seq", 0))
        started = time.monotonic()
        removed = 0
        seen: set[str] = set()
        counts = {"applied": 0, "invalid": 0, "refused": 0}
        last_seq = since
        # the next page is read and validated while this one is applied: the source's time and the
        # validation overlap the local writes
        prefetch = ThreadPoolExecutor(1, thread_name_prefix="feed")
        pending = prefetch.submit(self._page, kind, school, entity, last_seq)
        # courses: committed to the search index when caught up (searchable now), or CATCHUP_COMMIT_SECONDS apart
        holding = self.model.search.holding(CATCHUP_COMMIT_SECONDS) if kind == "course" else nullcontext()
        try:
            with holding:
                last_seq = self._apply_pages(kind, school, entity, pending, prefetch, seen, counts)
        finally:
            prefetch.shutdown(wait=True, cancel_futures=True)
        applied, invalid, refused = counts["applied"], counts["invalid"], counts["refused"]
        if full:
            # what the source no longer has at all; entries applied after the feed's head stay
            for held in self.model.held(school, kind):
                if held["_id"] not in seen and held.get("seq", 0) <= last_seq:
                    removed += self.model.tombstone(kind, held, self.clock())
            self.state.update(school, entity, synced_seq=last_seq)
        else:
            self.state.advance(school, entity, last_seq)
        seconds = time.monotonic() - started
        report = {"at": self.clock(), "reason": reason, "full": full, "since": since, "last_seq": last_seq,
                  "applied": applied, "removed": removed, "invalid": invalid + refused,
                  "seconds": round(seconds, 3)}
        if applied or removed or invalid or refused or full:
            # a no-op catch-up (nothing was missing) does not hide the last one that repaired something
            self.state.update(school, entity, last_catchup=report)
        self.state.update(school, entity, error=None, source_last_seq=last_seq)
        log.info("caught up %s/%s (%s): since=%d last_seq=%d applied=%d removed=%d invalid=%d in %.2fs",
                 school, entity, reason or "requested", since, last_seq, applied, removed, invalid + refused,
                 seconds)
        return report

    def _page(self, kind: str, school: str, entity: str, since: int) -> tuple[dict, list[dict], int, dict | None]:
        """One feed page after `since`: (the page, its valid entries to store, how many were refused, the search
        index documents of its courses)."""
        page = self.feed.changes(school, entity, since)
        now = self.clock()
        docs, invalid = [], 0
        for change in page.get("changes", []):
            try:
                docs.append(entry(_feed_change(kind, school, change), now))
            except (InvalidEvent, KeyError, TypeError, ValueError) as exc:
                invalid += 1
                log.warning("feed of %s/%s: refusing %s: %s", school, entity,
                            change.get("id") if isinstance(change, dict) else None, exc)
        # built here, beside the feed's read, so that the applying thread only adds them to the index
        prepared = SearchIndex.prepare(docs) if kind == "course" else None
        return page, docs, invalid, prepared

    def _apply_pages(self, kind: str, school: str, entity: str, pending, prefetch, seen: set, counts: dict) -> int:
        """Apply feed pages from the `pending` one on, asking for each next page before applying; the last seq."""
        last_seq = 0
        for _ in range(MAX_FEED_PAGES):
            page, docs, invalid, prepared = pending.result()
            last_seq = int(page["last_seq"])
            if page.get("next"):
                pending = prefetch.submit(self._page, kind, school, entity, last_seq)
            counts["invalid"] += invalid
            seen.update(doc["_id"] for doc in docs if doc["visible"])
            # a catch-up's pages are committed to the search index together (`holding` above)
            done, foreign = self.model.apply_many(kind, docs, commit_every=CATCHUP_COMMIT_SECONDS, prepared=prepared)
            counts["applied"] += done
            counts["refused"] += foreign
            if not page.get("next"):
                break
        return last_seq

    def _digests(self, school: str, entity: str) -> tuple[dict, dict]:
        remote = self.feed.digest(school, entity)
        local = self.model.digest(school, ENTITY_OF_TOPIC[entity])
        return local, remote

    def check_digest(self, school: str, entity: str) -> str:
        """Compare with the source's digest; on a difference catch up, then re-sync in full if needed."""
        local, remote = self._digests(school, entity)
        result = "equal"
        if not _same(local, remote):
            self.catch_up(school, entity, reason="digest differs")
            local, remote = self._digests(school, entity)
            if not _same(local, remote):
                # events in flight can make a difference that heals by itself: look once more
                time.sleep(0.5)
                local, remote = self._digests(school, entity)
            if not _same(local, remote):
                # the kept digest is off after a crash between a write and its count: counted from the
                # entries (one full read, under the write lock) only now, before the costlier full re-sync
                local = self.model.recount(school, ENTITY_OF_TOPIC[entity])
            if not _same(local, remote):
                self.catch_up(school, entity, full=True, reason="digest differs after catch-up")
                local, remote = self._digests(school, entity)
            result = "repaired" if _same(local, remote) else "differs"
        if result != "differs":
            self.state.advance(school, entity, int(remote.get("last_seq", 0)))
        self.state.update(school, entity, source_last_seq=int(remote.get("last_seq", 0)), error=None,
                          last_digest_check={"at": self.clock(), "result": result, "local": local,
                                             "remote": {k: remote.get(k) for k in ("count", "sha256", "last_seq")}})
        if result != "equal":
            log.warning("digest of %s/%s: %s (local %s, source %s)", school, entity, result, local, remote)
        return result

    def run_forever(self, stop: threading.Event) -> None:
        """Catch up every source at start, then serve requests and check digests periodically."""
        for school, entity in self.sources:
            self.request(school, entity, "start")
        next_check = {source: time.monotonic() + self.digest_interval for source in self.sources}
        while not stop.is_set():
            for (school, entity), reason in self._take_requests().items():
                if not self._guarded(school, entity, lambda: self.catch_up(school, entity, reason=reason)):
                    next_check[(school, entity)] = min(next_check[(school, entity)], time.monotonic() + 1)
            now = time.monotonic()
            for source, due in next_check.items():
                if stop.is_set():
                    break
                if due <= now:
                    self._guarded(*source, lambda s=source: self.check_digest(*s))
                    next_check[source] = time.monotonic() + self.digest_interval
            # woken by a request; at least twice a second, so that a stop is seen at once
            self.wake.wait(min(STOP_CHECK_SECONDS, max(0.05, min(next_check.values()) - time.monotonic())))

    def _guarded(self, school: str, entity: str, step) -> bool:
        try:
            step()
            return True
        except FeedError as exc:
            # a school (or a service not deployed yet) is away: tried again at the next check
            log.info("sync of %s/%s: %s", school, entity, exc)
            self._record_error(school, entity, str(exc))
        except PyMongoError as exc:
            log.warning("sync of %s/%s: database unavailable (%s)", school, entity, exc.__class__.__name__)
        return False

    def _record_error(self, school: str, entity: str, detail: str) -> None:
        try:
            self.state.update(school, entity, error={"at": self.clock(), "detail": detail})
        except PyMongoError:
            pass


def _same(local: dict, remote: dict) -> bool:
    return local.get("count") == remote.get("count") and local.get("sha256") == remote.get("sha256")


def _feed_change(kind: str, school: str, change: dict) -> Change:
    type_ = change["type"] if change.get("visible") else f"{kind}.withdrawn.v1"
    return Change(kind=kind, entity_id=str(change["id"]), school=school, version=int(change["version"]),
                  seq=int(change["seq"]), type=type_, body=change.get("state") or {})


class OffsetMonitor:
    """Asks the sync thread to catch a source up when Kafka cannot be trusted for it.

    Called after each poll (cheap: at most every `interval` seconds): a newly assigned
    partition without a committed offset (first start, or the broker forgot the group).
    `reset` is the consumer's hook for a partition it rewound after a broker reset
    (shared.consumer.ResetWatch): what the broker lost is caught up from the feed.
    """

    def __init__(self, settings: Settings, catchup: Catchup, interval: float = 1.0):
        self.settings = settings
        self.catchup = catchup
        self.interval = interval
        self.known: set = set()
        self.next_at = 0.0

    def _source(self, topic: str) -> tuple[str, str]:
        return topic_school(self.settings, topic), entity_of_topic(self.settings, topic)

    def reset(self, tp) -> None:
        self.catchup.request(*self._source(tp.topic), "offset beyond the broker's end")

    def __call__(self, consumer) -> None:
        if consumer is None or time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.interval
        assignment = set(consumer.assignment())
        for tp in assignment - self.known:
            try:
                committed = consumer.committed(tp)
            except Exception:  # the coordinator may be away; the next check sees the partition again
                continue
            self.known.add(tp)
            if committed is None:
                self.catchup.request(*self._source(tp.topic), "no committed offset")
        self.known &= assignment

