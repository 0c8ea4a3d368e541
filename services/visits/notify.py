"""Notifications of the slot-request saga: who is told what, derived from the visits service's own writes.

Two kinds of cause, each marked by the single-document write that makes it
(`notify_since`, a write-order number):

- at the requester's school, a request whose status the host's decision moved (or that
  its faculty member withdrew): the faculty member is mailed, with an invitation
  (METHOD:REQUEST) for an approval or a changed slot and a METHOD:CANCEL when an
  approved slot goes away (withdrawn, declined after approval, visit cancelled,
  waitlisted again);
- at the host, a request received for the first time: the school's coordinators are
  mailed (one mail each, or a daily summary: COORDINATOR_MAIL).

`derive_pending` turns marked documents into notifications (shared/notifications.py),
keyed by (request, version, recipient), then clears the marker if it is unchanged. A
crash in between derives the same keys again, which inserts nothing.

The faculty member's address never leaves their school: the requester's own visits
worker reads it from its own school's faculty service when it sends (`Directory`), and
neither the queue's events nor any topic carry it. The visit's place and theme come
from the school's own catalog read model (its public API).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import requests
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.visits import model
from services.visits.store import DECISIONS, REQUESTS
from shared import calendars, mail
from shared.auth import KeyRing, issue_token
from shared.config import Settings
from shared.i18n import N_
from shared.notifications import NotificationQueue, PermanentFailure, send_due

log = logging.getLogger(__name__)


HOLDING = model.HOLDING
REQUEST, CANCEL = calendars.REQUEST, calendars.CANCEL
# the front door's pages the mails link to (docs/notifications.md)
MY_REQUESTS_PATH = "/exchange/requests"
INCOMING_PATH = "/manage/requests/incoming"


def request_notice(notified: str | None, status: str, reason: str | None, slot_changed: bool) -> tuple[str, str | None] | None:
    """(mail kind, calendar method or None) for a request now `status` whose last mail was about `notified`.

    None when nothing new is to be told. Pure: the table of the mails a requester gets.
    """
    before = notified or model.PENDING
    held = before in HOLDING
    if status == model.APPROVED:
        if before == model.APPROVED:
            return None
        return ("promoted" if before == model.WAITLISTED else "approved"), REQUEST
    if status == model.RECONFIRM:
        if before == model.RECONFIRM and not slot_changed:
            return None
        return "reconfirm", REQUEST
    if status == model.WAITLISTED:
        return None if before == model.WAITLISTED else ("waitlisted", CANCEL if held else None)
    if status == model.DECLINED:
        if before == model.DECLINED:
            return None
        kind = "cancelled" if reason == model.VISIT_CANCELLED else "declined"
        return kind, CANCEL if held else None
    if status == model.WITHDRAWN:
        return ("withdrawn", CANCEL) if held else None
    return None


class Notifier:
    """Derives this school's notifications from the visits database (both sides of the saga)."""

    def __init__(self, db: Database, settings: Settings):
        self.settings = settings
        self.requests = db[REQUESTS]
        self.decisions = db[DECISIONS]
        self.queue = NotificationQueue(db)

    def ensure_indexes(self) -> None:
        self.queue.ensure_indexes()
        self.requests.create_index([("notify_since", ASCENDING)])
        self.decisions.create_index([("notify_since", ASCENDING)])

    def derive_pending(self, limit: int = 50) -> int:
        done = 0
        for request in self.requests.find({"notify_since": {"$gt": 0}}, sort=[("notify_since", ASCENDING)],
                                          limit=limit):
            self.derive_request(request)
            done += 1
        for decision in self.decisions.find({"notify_since": {"$gt": 0}}, sort=[("notify_since", ASCENDING)],
                                            limit=limit):
            self.derive_incoming(decision)
            done += 1
        return done

    def derive_request(self, request: dict) -> None:
        slot = request.get("slot") or request.get("notified_slot")
        changed = bool(request.get("slot_hash")) and request.get("slot_hash") != request.get("notified_slot_hash")
        notice = request_notice(request.get("notified_status"), request["status"], request.get("reason"), changed)
        if notice is not None:
            kind, method = notice
            if slot is None:
                # declined before any slot was bound (no such visit or slot): the mail, without an invitation
                method = None
            key = f"slot-request/{request['_id']}/v{request['version']}/faculty:{request['faculty_id']}"
            context = {"request_id": request["_id"], "visit_id": request["visit_id"], "slot_id": request["slot_id"],
                       "host_school": request["host_school"], "status": request["status"],
                       "reason": request.get("reason"), "note": request.get("note"), "slot": slot,
                       "waitlist_position": request.get("waitlist_position")}
            cal = None if method is None else {
                "method": method, "uid": calendars.request_uid(request["_id"], request["school"]),
                "sequence": request["version"]}
            if self.queue.enqueue(key, cause=f"slot-request/{request['_id']}", kind=kind,
                                  to={"faculty_id": request["faculty_id"]}, lang=request.get("lang") or "en",
                                  context=context, calendar=cal):
                log.info("queued a %s mail for request %s (version %d)", kind, request["_id"], request["version"])
        fields = {"notified_status": request["status"]}
        if request.get("slot"):
            fields.update(notified_slot=request["slot"], notified_slot_hash=request.get("slot_hash"))
        # only the marker read: a decision applied meanwhile set a newer one, derived next time
        self.requests.update_one({"_id": request["_id"], "notify_since": request["notify_since"]},
                                 {"$unset": {"notify_since": ""}, "$set": fields})

    def derive_incoming(self, decision: dict) -> None:
        item = {"request_id": decision["_id"], "visit_id": decision["visit_id"], "slot_id": decision["slot_id"],
                "requester_school": decision["requester_school"]}
        cause = f"incoming/{decision['_id']}"
        lang = self.settings.coordinator_lang
        for address in self.settings.coordinator_emails:
            if self.settings.coordinator_mail == "daily":
                day = datetime.now(timezone.utc).date()
                due = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
                self.queue.add_to_digest(f"incoming-digest/{day.isoformat()}/{address}", cause=cause,
                                         kind="incoming", to={"address": address}, lang=lang,
                                         item_id=decision["_id"], item=item, due_key=int(due.timestamp() * 1000))
            else:
                self.queue.enqueue(f"{cause}/{address}", cause=cause, kind="incoming", to={"address": address},
                                   lang=lang, context={"items": {decision["_id"]: item}})
        self.decisions.update_one({"_id": decision["_id"], "notify_since": decision["notify_since"]},
                                  {"$unset": {"notify_since": ""}})


class Directory:
    """What the sender looks up in its own school when it sends: a faculty member's profile, a visit.

    Both through the school's own services: the faculty service with a short-lived
    coordinator token the worker signs with its school's key (only that school's
    services accept it for private fields), the catalog's public visit API.
    """

    def __init__(self, settings: Settings, private_key, session: requests.Session | None = None):
        self.settings = settings
        self.private_key = private_key
        self.http = session or requests.Session()

    def faculty(self, faculty_id: str) -> dict:
        token = issue_token(self.private_key, self.settings.school, "coordinator", subject="visits-notifier",
                            ttl_seconds=60)
        url = f"{self.settings.school_url(self.settings.school, 'faculty')}/faculty/{faculty_id}"
        response = self.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if response.status_code == 404:
            raise PermanentFailure(f"no faculty profile {faculty_id} at {self.settings.school}")
        response.raise_for_status()
        profile = response.json()
        if not profile.get("email"):
            raise PermanentFailure(f"faculty profile {faculty_id} has no email")
        return profile

    def visit(self, visit_id: str) -> dict | None:
        url = f"{self.settings.school_url(self.settings.school, 'catalog')}/visits/{visit_id}"
        response = self.http.get(url, timeout=10)
        if response.status_code in (403, 404):
            return None
        response.raise_for_status()
        return response.json()


def lang_text(value, lang: str) -> str:
    if isinstance(value, dict):
        return value.get(lang) or value.get("en") or next(iter(value.values()), "")
    return value or ""


SLOT_KINDS = {
    "guest_lecture": N_("Guest lecture"), "co_teaching": N_("Co-teaching"), "workshop": N_("Workshop"), "seminar": N_("Seminar"),
    "panel": N_("Panel"), "site_visit": N_("Site visit"), "mentoring": N_("Mentoring"),
}
REASONS = {
    model.VISIT_NOT_FOUND: N_("The visit does not exist (any more)."),
    model.VISIT_CANCELLED: N_("The host cancelled the visit."),
    model.SLOT_NOT_FOUND: N_("The slot does not exist."),
    model.NOT_INVITED: N_("Your school is not invited to this visit."),
    model.OVERLAP: N_("You hold an approved slot at the same time."),
    model.SLOT_REMOVED: N_("The host removed the slot."),
    "declined-by-host": N_("The host declined the request."),
}
SUBJECTS = {
    "approved": N_("Approved: your slot at %(host)s"),
    "promoted": N_("Approved from the waitlist: your slot at %(host)s"),
    "waitlisted": N_("Waitlisted: your slot request at %(host)s"),
    "declined": N_("Declined: your slot request at %(host)s"),
    "reconfirm": N_("Please re-confirm: your slot at %(host)s changed"),
    "cancelled": N_("Cancelled: the visit of %(host)s"),
    "withdrawn": N_("Withdrawn: your slot at %(host)s"),
}


# failed attempts a mail waits for its visit to reach this school's catalog (see Deliverer.visit)
VISIT_WAIT_ATTEMPTS = 5


def when_text(slot: dict | None, time_zone: str) -> str:
    if not slot:
        return ""
    start = calendars.local_time(slot["starts_at"], time_zone)
    end = calendars.local_time(slot["ends_at"], time_zone)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} ({time_zone})"


class Deliverer:
    """Builds one notification's message (text, HTML, invitation) and hands it to the SMTP server."""

    def __init__(self, settings: Settings, directory: Directory, send=mail.send):
        self.settings = settings
        self.directory = directory
        self.send = send

    def __call__(self, doc: dict) -> None:
        message = self.message(doc)
        try:
            self.send(self.settings, message)
        except Exception as exc:
            if mail.is_permanent(exc):
                raise PermanentFailure(f"refused by the mail server: {exc}") from exc
            raise

    def school_name(self, school_id: str, lang: str) -> str:
        try:
            return lang_text(self.settings.school_of(school_id).name, lang) or school_id
        except Exception:
            return school_id

    def message(self, doc: dict):
        if doc["kind"] == "incoming":
            return self.incoming_message(doc)
        return self.request_message(doc)

    def visit(self, doc: dict, visit_id: str) -> dict:
        """The visit as this school's catalog holds it; waited for a few attempts if it has not arrived yet.

        A decision can come before the visit's own event reaches this school's catalog; after
        VISIT_WAIT_ATTEMPTS the mail goes without the visit's place and theme rather than never.
        """
        visit = self.directory.visit(visit_id)
        if visit is None and doc.get("attempts", 0) < VISIT_WAIT_ATTEMPTS:
            raise LookupError(f"visit {visit_id} is not in this school's catalog yet")
        return visit or {}

    def request_message(self, doc: dict):
        lang, ctx = doc["lang"], doc["context"]
        profile = self.directory.faculty(doc["to"]["faculty_id"])
        visit = self.visit(doc, ctx["visit_id"])
        host = self.settings.school_of(ctx["host_school"]) if ctx["host_school"] in self.settings.school_ids else None
        time_zone = visit.get("time_zone") or (host.time_zone if host else "UTC")
        host_name = self.school_name(ctx["host_school"], lang)
        contact = host.contact if host else None
        slot = ctx.get("slot") or {}
        theme = lang_text(visit.get("theme"), lang)
        place = visit.get("place") or ""
        slot_kind = mail.gettext(lang, SLOT_KINDS.get(slot.get("kind"), slot.get("kind") or ""))
        subject = mail.gettext(lang, SUBJECTS[doc["kind"]], host=host_name)
        link = self.settings.school_url(self.settings.school, "catalog") + MY_REQUESTS_PATH
        text, html = mail.render("request", lang, {
            "kind": doc["kind"], "subject": subject, "person_name": lang_text(profile.get("name"), lang),
            "host_name": host_name, "theme": theme, "place": place, "slot_kind": slot_kind,
            "when": when_text(slot, time_zone), "contact": contact, "link": link, "note": ctx.get("note"),
            "waitlist_position": ctx.get("waitlist_position"),
            "reason_text": mail.gettext(lang, REASONS.get(ctx.get("reason"), ctx.get("reason") or "")),
        })
        invitation = None
        if doc.get("calendar"):
            cal = doc["calendar"]
            spec = {"uid": cal["uid"], "sequence": cal["sequence"], "starts_at": slot["starts_at"],
                    "ends_at": slot["ends_at"], "time_zone": time_zone, "location": place,
                    "summary": f"{slot_kind}: {theme}" if theme else slot_kind,
                    "description": f"{host_name}" + (f" ({contact})" if contact else ""),
                    "organizer": contact or self.settings.mail_sender, "organizer_name": host_name,
                    "attendee": profile["email"], "url": link}
            invitation = (calendars.invitation(spec, cal["method"]), cal["method"])
        return mail.build_message(sender=self.settings.mail_sender, to=profile["email"], subject=subject, text=text,
                                  html=html, message_key=doc["_id"], calendar=invitation)

    def incoming_message(self, doc: dict):
        lang = doc["lang"]
        items = []
        for item in sorted(doc["context"]["items"].values(), key=lambda i: i["request_id"]):
            visit = self.visit(doc, item["visit_id"])
            slot = model.find_slot(visit, item["slot_id"]) or {}
            time_zone = visit.get("time_zone") or self.settings.school_of(self.settings.school).time_zone
            items.append({"theme": lang_text(visit.get("theme"), lang) or item["visit_id"],
                          "slot_kind": mail.gettext(lang, SLOT_KINDS.get(slot.get("kind"), slot.get("kind") or "")),
                          "when": when_text(slot, time_zone) if slot else "",
                          "requester_name": self.school_name(item["requester_school"], lang)})
        subject = mail.gettext(lang, N_("New slot requests for your visits"))
        link = self.settings.school_url(self.settings.school, "catalog") + INCOMING_PATH
        text, html = mail.render("incoming", lang, {"items": items, "subject": subject, "link": link})
        return mail.build_message(sender=self.settings.mail_sender, to=doc["to"]["address"], subject=subject,
                                  text=text, html=html, message_key=doc["_id"])


def notify_loops(settings: Settings, db: Database) -> dict:
    """The worker's loops: derive notifications from marked writes, and send what is due."""
    notifier = Notifier(db, settings)
    mail.smtp_password(settings)  # read at start: an unreadable password file stops the worker with the fix
    keyring = KeyRing(settings.keys_dir, settings.school)
    keyring.load(settings.school_ids, private=True)
    deliver = Deliverer(settings, Directory(settings, keyring.private_key()))

    def derive(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if notifier.derive_pending() == 0:
                    stop.wait(settings.mail_idle_seconds)
            except PyMongoError as exc:
                log.warning("notify: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    def sender(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                handled = send_due(notifier.queue, deliver, claim_seconds=settings.mail_claim_seconds,
                                   retry_seconds=settings.mail_retry_seconds,
                                   retry_max_seconds=settings.mail_retry_max_seconds)
                if handled == 0:
                    stop.wait(settings.mail_idle_seconds)
            except PyMongoError as exc:
                log.warning("mail: database unavailable (%s); retrying", exc.__class__.__name__)
                stop.wait(1.0)

    return {"notify": derive, "mail": sender}
