"""The durable notification queue: one MongoDB document per (cause, recipient), sent once.

A notification is derived from a state change that was itself one single-document
write (a request's decision, a withdrawal, a new incoming request): that write also
sets a marker (`notify_since`), and the worker turns marked documents into
notifications here, then clears the marker if no newer change came (each kind's
table of who is told what: services/visits/notify.py for slot requests,
services/courses/notify.py for course places). No multi-document transaction is needed:

- the notification's `_id` is its key, `<cause>/<version>/<recipient>`, so deriving
  it again after a crash (the marker was not cleared yet) inserts nothing new;
- a sender claims one due notification with a single conditional update (status
  `pending`, due, and no live claim), so two workers never send the same one at once;
- it is marked `sent` only after the SMTP server accepted the message, with a write
  conditional on its own claim; a failure leaves it `pending` with the next attempt
  after an exponential backoff; a permanent refusal (5xx, no address) marks it
  `failed` with the reason;
- one person's notifications of one cause go out in the order they were queued
  (`order`): one claimed while an older one of its cause and recipient is still
  pending (waiting for a retry) is put back to be due after it, so an approval
  delayed by a retry never arrives after the decline that followed it.

The one window left: a worker that dies after the server accepted a message and
before it marked it sent. Its claim expires (MAIL_CLAIM_SECONDS) and another worker
sends it again. The message keeps its `Message-ID` (derived from the key), so a mail
system that deduplicates by it drops the repeat.

What every kind of notification shares is here too: reading and clearing the marked
documents (`marked`, `clear_marker`), the school's coordinators' mails, each at once or
in a daily summary (`for_coordinators`), the sender's base (`Deliverer`) and the
worker's two loops (`notify_loops`).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared import mail
from shared.auth import KeyRing
from shared.clock import now_iso, wall_ms, write_order
from shared.config import Settings
from shared.i18n import lang_text

log = logging.getLogger(__name__)

COLLECTION = "notifications"
PENDING, SENT, FAILED = "pending", "sent", "failed"
# how long a notification waits when an older one of its cause and recipient is being sent (milliseconds)
IN_ORDER_WAIT_MS = 100


def marker() -> dict:
    """What a state-changing write also sets so that the worker derives its notifications (`notify_since`)."""
    return {"notify_since": write_order()}


def marked(collection: Collection, limit: int = 50) -> list[dict]:
    """The documents of `collection` whose change is still to be told, oldest change first."""
    return list(collection.find({"notify_since": {"$gt": 0}}, sort=[("notify_since", ASCENDING)], limit=limit))


def clear_marker(collection: Collection, doc: dict, fields: dict | None = None) -> None:
    """Its notifications are queued: remember `fields` (what was told), then clear the marker read, unless a
    newer change set one.

    What was told is recorded whatever was written meanwhile: the next derivation compares the newer change
    with it, so a change that did not move the status (a decision received again) mails nothing twice.
    The marker is cleared only if it is still the one read: a change written meanwhile is derived next time.
    """
    if fields:
        collection.update_one({"_id": doc["_id"]}, {"$set": fields})
    collection.update_one({"_id": doc["_id"], "notify_since": doc["notify_since"]}, {"$unset": {"notify_since": ""}})


def ensure_marker_index(*collections: Collection) -> None:
    for collection in collections:
        collection.create_index([("notify_since", ASCENDING)])


class PermanentFailure(Exception):
    """A notification that can never be delivered as it is (no address, a recipient refused for good)."""


def backoff_seconds(attempts: int, base: float, ceiling: float, jitter=random.random) -> float:
    """The wait after the `attempts`-th failure: base x 2^(attempts-1), at most `ceiling`, plus up to 20 % jitter."""
    wait = min(ceiling, base * 2 ** max(0, attempts - 1))
    return min(ceiling, wait * (1 + 0.2 * jitter()))


class NotificationQueue:
    """The `notifications` collection of one service's database."""

    def __init__(self, db: Database):
        self.collection = db[COLLECTION]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("status", ASCENDING), ("due_key", ASCENDING)])
        self.collection.create_index([("cause", ASCENDING)])

    def enqueue(self, key: str, *, cause: str, kind: str, to: dict, lang: str, context: dict,
                calendar: dict | None = None, due_key: int | None = None) -> bool:
        """Queue a notification under `key`; False when it was queued before (a repeated derivation)."""
        doc = {"_id": key, "cause": cause, "kind": kind, "to": to, "lang": lang, "context": context,
               "calendar": calendar, "status": PENDING, "attempts": 0, "due_key": due_key or wall_ms(),
               "order": write_order(),
               "claimed_until": 0, "claimed_by": None, "created_at": now_iso(), "sent_at": None,
               "last_error": None}
        try:
            self.collection.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    def add_to_digest(self, key: str, *, cause: str, kind: str, to: dict, lang: str, item_id: str, item: dict,
                      due_key: int) -> None:
        """Add one item to a summary notification (created on its first item), sent once when due.

        Items are a map by id, so adding one twice changes nothing. A summary already sent
        (a late item after its day) is left alone: the item goes to no summary, which the
        caller avoids by keying summaries by the item's day.
        """
        self.collection.update_one(
            {"_id": key},
            {"$set": {f"context.items.{item_id}": item},
             "$setOnInsert": {"cause": cause, "kind": kind, "to": to, "lang": lang, "calendar": None,
                              "order": write_order(), "status": PENDING, "attempts": 0, "due_key": due_key, "claimed_until": 0,
                              "claimed_by": None, "created_at": now_iso(), "sent_at": None, "last_error": None}},
            upsert=True)

    def claim(self, claim_seconds: float) -> dict | None:
        """Take the next due notification for `claim_seconds`: no other worker sends it meanwhile."""
        now = wall_ms()
        token = uuid.uuid4().hex
        return self.collection.find_one_and_update(
            {"status": PENDING, "due_key": {"$lte": now}, "claimed_until": {"$lt": now}},
            {"$set": {"claimed_until": now + int(claim_seconds * 1000), "claimed_by": token}},
            sort=[("due_key", ASCENDING), ("order", ASCENDING)], return_document=ReturnDocument.AFTER)

    def earlier_pending(self, doc: dict) -> dict | None:
        """An older notification of `doc`'s cause to the same recipient, still to be sent; None if there is none."""
        if "order" not in doc:
            return None  # queued before notifications had an order
        # the recipient field by field (nx-27017 does not compare whole embedded documents)
        recipient = {f"to.{name}": value for name, value in doc["to"].items()}
        return self.collection.find_one(
            {"cause": doc["cause"], **recipient, "status": PENDING, "order": {"$lt": doc["order"]}},
            {"due_key": 1}, sort=[("order", ASCENDING)])

    def wait_for(self, doc: dict, earlier: dict) -> None:
        """Give back the claim of `doc`, due after `earlier` (which is waiting for a retry, or being sent)."""
        self.collection.update_one(
            {"_id": doc["_id"], "claimed_by": doc["claimed_by"], "status": PENDING},
            {"$set": {"due_key": max(doc["due_key"], earlier["due_key"] + 1, wall_ms() + IN_ORDER_WAIT_MS),
                      "claimed_until": 0}})

    def mark_sent(self, doc: dict) -> bool:
        """The server accepted it: sent, if this worker's claim still holds."""
        done = self.collection.update_one(
            {"_id": doc["_id"], "claimed_by": doc["claimed_by"], "status": PENDING},
            {"$set": {"status": SENT, "sent_at": now_iso(), "claimed_until": 0}, "$inc": {"attempts": 1}})
        return done.modified_count == 1

    def retry_later(self, doc: dict, error: str, base: float, ceiling: float) -> float:
        """A failed attempt: due again after the backoff; returns the wait in seconds."""
        attempts = doc.get("attempts", 0) + 1
        wait = backoff_seconds(attempts, base, ceiling)
        self.collection.update_one(
            {"_id": doc["_id"], "claimed_by": doc["claimed_by"], "status": PENDING},
            {"$set": {"due_key": wall_ms() + int(wait * 1000), "claimed_until": 0, "last_error": error[:500],
                      "attempts": attempts}})
        return wait

    def fail(self, doc: dict, error: str) -> None:
        self.collection.update_one(
            {"_id": doc["_id"], "claimed_by": doc["claimed_by"], "status": PENDING},
            {"$set": {"status": FAILED, "claimed_until": 0, "last_error": error[:500]}, "$inc": {"attempts": 1}})

    def counts(self) -> dict[str, int]:
        return {status: self.collection.count_documents({"status": status}) for status in (PENDING, SENT, FAILED)}


def send_due(queue: NotificationQueue, deliver: Callable[[dict], None], *, claim_seconds: float,
             retry_seconds: float, retry_max_seconds: float, limit: int = 20) -> int:
    """Send up to `limit` due notifications with `deliver(doc)`; returns how many were handled.

    `deliver` raises PermanentFailure for one that can never go out, any other exception
    for a failure worth retrying (the server down, a timeout, a 4xx answer).
    """
    handled = 0
    for _ in range(limit):
        doc = queue.claim(claim_seconds)
        if doc is None:
            break
        earlier = queue.earlier_pending(doc)
        if earlier is not None:
            # the older news of this cause goes first, even when its last attempt failed
            queue.wait_for(doc, earlier)
            continue
        handled += 1
        try:
            deliver(doc)
        except PermanentFailure as exc:
            log.warning("notification %s cannot be delivered: %s", doc["_id"], exc)
            queue.fail(doc, str(exc))
            continue
        except Exception as exc:  # any failure of the mail server or a lookup: try again later
            wait = queue.retry_later(doc, f"{exc.__class__.__name__}: {exc}", retry_seconds, retry_max_seconds)
            log.warning("notification %s not sent (%s: %s); next attempt in %.1fs", doc["_id"],
                        exc.__class__.__name__, exc, wait)
            # the server is likely down for the others too: stop this pass
            break
        if not queue.mark_sent(doc):
            log.warning("notification %s was sent after its claim had expired", doc["_id"])
    return handled


class Notifier:
    """Derives a school's notifications from the two collections of a request saga (shared/saga.py).

    A kind sets `requests_collection` (the requests its people made: `derive_request`) and
    `decisions_collection` (the decisions on partners' requests it hosts: `derive_incoming`);
    each hook queues what its document's change tells, then clears the marker (`clear_marker`).
    """

    requests_collection: str
    decisions_collection: str

    def __init__(self, db: Database, settings: Settings):
        self.settings = settings
        self.requests = db[self.requests_collection]
        self.decisions = db[self.decisions_collection]
        self.queue = NotificationQueue(db)

    def ensure_indexes(self) -> None:
        self.queue.ensure_indexes()
        ensure_marker_index(self.requests, self.decisions)

    def derive_pending(self, limit: int = 50) -> int:
        """Derive the notifications of up to `limit` marked documents of each collection; returns how many."""
        done = 0
        for request in marked(self.requests, limit):
            self.derive_request(request)
            done += 1
        for decision in marked(self.decisions, limit):
            self.derive_incoming(decision)
            done += 1
        return done

    def derive_request(self, request: dict) -> None:
        raise NotImplementedError

    def derive_incoming(self, decision: dict) -> None:
        raise NotImplementedError


def for_coordinators(queue: NotificationQueue, settings: Settings, *, cause: str, kind: str, item_id: str,
                     item: dict, key: str | None = None, now: datetime | None = None) -> int:
    """Tell each of the school's coordinators (COORDINATOR_EMAILS) about one item, in COORDINATOR_LANG.

    COORDINATOR_MAIL=each: one mail per item and address, keyed `<key>/<address>` (`key`
    the cause unless given: one mail per cause, or per version of it);
    `daily`: the item joins that address's summary of the day for `kind`, sent at midnight
    UTC. Returns the number of addresses told.
    """
    lang = settings.coordinator_lang
    for address in settings.coordinator_emails:
        if settings.coordinator_mail == "daily":
            day = (now or datetime.now(timezone.utc)).date()
            due = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
            queue.add_to_digest(f"{kind}-digest/{day.isoformat()}/{address}", cause=cause, kind=kind,
                                to={"address": address}, lang=lang, item_id=item_id, item=item,
                                due_key=int(due.timestamp() * 1000))
        else:
            queue.enqueue(f"{key or cause}/{address}", cause=cause, kind=kind, to={"address": address}, lang=lang,
                          context={"items": {item_id: item}})
    return len(settings.coordinator_emails)


class Deliverer:
    """Builds one notification's message (`message`, by each kind of request) and hands it to the SMTP server.

    A failure of the server is retried by `send_due`; a refusal that a retry will not change
    (a 5xx answer) is a PermanentFailure.
    """

    def __init__(self, settings: Settings, send=mail.send):
        self.settings = settings
        self.send = send

    def __call__(self, doc: dict) -> None:
        message = self.message(doc)
        try:
            self.send(self.settings, message)
        except Exception as exc:
            if mail.is_permanent(exc):
                raise PermanentFailure(f"refused by the mail server: {exc}") from exc
            raise

    def message(self, doc: dict):
        raise NotImplementedError

    def school_name(self, school_id: str, lang: str) -> str:
        try:
            return lang_text(self.settings.school_of(school_id).name, lang) or school_id
        except Exception:
            return school_id

    def page(self, path: str) -> str:
        """The address of one of this school's front-door pages, which mails link to."""
        return self.settings.school_url(self.settings.school, "catalog") + path


def school_key(settings: Settings):
    """The school's private key, read now (an unreadable one stops the worker at its start): the sender signs
    the short-lived tokens of its lookups in its own school's services with it."""
    keyring = KeyRing(settings.keys_dir, settings.school)
    keyring.load(settings.school_ids, private=True)
    return keyring.private_key()


def notify_loops(settings: Settings, notifier: Notifier, deliver: Callable[[dict], None]) -> dict:
    """A worker's two notification loops: `notify` derives notifications from marked writes, `mail` sends
    what is due with `deliver`.

    The SMTP password file is read now: an unreadable one stops the worker at its start with the fix.
    """
    mail.smtp_password(settings)
    derive_pending, queue = notifier.derive_pending, notifier.queue

    def derive(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if derive_pending() == 0:
                    stop.wait(settings.mail_idle_seconds)
            except PyMongoError as exc:
                log.warning("notify: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    def sender(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                handled = send_due(queue, deliver, claim_seconds=settings.mail_claim_seconds,
                                   retry_seconds=settings.mail_retry_seconds,
                                   retry_max_seconds=settings.mail_retry_max_seconds)
                if handled == 0:
                    stop.wait(settings.mail_idle_seconds)
            except PyMongoError as exc:
                log.warning("mail: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    return {"notify": derive, "mail": sender}
