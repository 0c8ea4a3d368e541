"""Notifications of the course-place saga: who is told what, derived from the courses service's own writes.

The machinery is the slot requests' (shared/notifications.py: marked writes, the queue,
claims, retries); this module holds what is a place request's own:

- at the student's school, a request whose status changed (`notify_since` set by the
  write that changed it: the student's request, their school's endorsement or decline,
  a host's decision applied, a withdrawal). `place_notices` is the table of who is
  mailed: the student (in the language of their request, `lang`), and the school's
  coordinators (COORDINATOR_EMAILS, in COORDINATOR_LANG, each change or a daily
  summary: COORDINATOR_MAIL);
- at the host, an endorsed request received for the first time: its coordinators are
  mailed, as for an incoming slot request.

No calendar invitation: a place in a course is not one event (the offering's dates are in
the mail's words).

The student's address never leaves their school: it is read when the mail is sent from
the request itself (which only the student's school holds), never queued, published or
carried by a decision. The course's title comes from the decision's snapshot, else from
the school's own catalog.
"""

from __future__ import annotations

import logging

import requests
from pymongo.database import Database

from services.courses.model import (
    APPROVED, COURSE_NOT_FOUND, DECLINED, DECLINED_BY_HOME, ENDORSED, HOME, OFFERING_CLOSED, OFFERING_NOT_FOUND,
    OFFERING_REMOVED, PENDING_ENDORSEMENT, WAITLISTED, WITHDRAWN, find_offering,
)
from services.courses.store import DECISIONS, REQUESTS
from shared import mail, notifications
from shared.auth import issue_token
from shared.config import Settings
from shared.i18n import N_, lang_text
from shared.notifications import PermanentFailure, clear_marker, for_coordinators
from shared.saga import HAND_DECLINED

log = logging.getLogger(__name__)

# who is mailed
STUDENT, COORDINATORS = "student", "coordinators"
# the queue's kind of the coordinators' mails (one change each, or a day's summary of them)
SCHOOL_KIND = "places"
# the front door's pages the mails link to (docs/notifications.md)
MY_APPLICATIONS_PATH = "/applications"
STUDENT_APPLICATIONS_PATH = "/manage/applications"
# a statement quoted in a coordinator's mail is cut after so many characters (the page shows it whole)
STATEMENT_CHARS = 300


def place_notices(notified: str | None, status: str, declined_by: str | None) -> tuple[tuple[str, str], ...]:
    """((who, change), ...) to tell for a request now `status` whose last notifications were about `notified`.

    None for `notified`: nothing was told yet (the request is new to the worker). Pure: the table
    of the mails of docs/notifications.md, unit-tested row by row.
    """
    if status == notified:
        return ()
    if status == PENDING_ENDORSEMENT:
        return ((COORDINATORS, "awaiting-endorsement"),) if notified is None else ()
    if status == ENDORSED:
        return ((STUDENT, "endorsed"),) if notified in (None, PENDING_ENDORSEMENT) else ()
    if status == DECLINED and declined_by == HOME:
        # the coordinator who declined it knows already
        return ((STUDENT, "declined-home"),)
    if status == APPROVED:
        change = "promoted" if notified == WAITLISTED else "approved"
        return (STUDENT, change), (COORDINATORS, change)
    if status in (WAITLISTED, DECLINED):
        return (STUDENT, status), (COORDINATORS, status)
    if status == WITHDRAWN:
        # the student withdrew it: their coordinators, if they heard of it
        return ((COORDINATORS, "withdrawn"),) if notified is not None else ()
    return ()


def request_context(request: dict) -> dict:
    """What a mail says of a request at the version it was derived from (no address: read when it is sent)."""
    return {"request_id": request["_id"], "host_school": request["host_school"], "course_id": request["course_id"],
            "term": request["term"], "status": request["status"], "reason": request.get("reason"),
            "note": request.get("note"), "declined_by": request.get("declined_by"),
            "waitlist_position": request.get("waitlist_position"), "course": request.get("course"),
            "offering": request.get("offering")}


class Notifier(notifications.Notifier):
    """Derives this school's notifications from the courses database (both sides of the saga)."""

    requests_collection, decisions_collection = REQUESTS, DECISIONS

    def derive_request(self, request: dict) -> None:
        context = request_context(request)
        version = request["version"]
        for who, change in place_notices(request.get("notified_status"), request["status"],
                                         request.get("declined_by")):
            cause = f"place-request/{request['_id']}"
            if who == STUDENT:
                if self.queue.enqueue(f"{cause}/v{version}/student", cause=cause, kind=change,
                                      to={"request_id": request["_id"]}, lang=request.get("lang") or "en",
                                      context=context):
                    log.info("queued a %s mail for place request %s (version %d)", change, request["_id"], version)
            else:
                item = {**context, "change": change, "name": request.get("name"),
                        "programme": request.get("programme"), "requester_school": request["school"],
                        "statement": (request.get("statement") or "")[:STATEMENT_CHARS]
                        if change == "awaiting-endorsement" else None}
                for_coordinators(self.queue, self.settings, cause=cause, key=f"{cause}/v{version}/coordinators",
                                 kind=SCHOOL_KIND, item_id=f"{request['_id']}/v{version}", item=item)
        clear_marker(self.requests, request, {"notified_status": request["status"]})

    def derive_incoming(self, decision: dict) -> None:
        """A partner's student's endorsed request reached this school, the host: its coordinators are told."""
        item = {"change": "incoming", "request_id": decision["_id"], "requester_school": decision["requester_school"],
                "host_school": self.settings.school, "course_id": decision["course_id"], "term": decision["term"],
                "name": decision.get("name"), "programme": decision.get("programme"), "course": None,
                "statement": None, "reason": None, "note": None, "waitlist_position": None}
        for_coordinators(self.queue, self.settings, cause=f"place-incoming/{decision['_id']}", kind=SCHOOL_KIND,
                         item_id=f"{decision['_id']}/incoming", item=item)
        clear_marker(self.decisions, decision)


class Directory:
    """What the sender looks up in its own school when it sends: the student of a request, a course.

    The student from the request the school holds; the course from the school's own catalog
    (with a 60-second coordinator token the worker signs, as the catalog may require one).
    """

    def __init__(self, settings: Settings, db: Database, private_key, session: requests.Session | None = None):
        self.settings = settings
        self.requests = db[REQUESTS]
        self.private_key = private_key
        self.http = session or requests.Session()

    def student(self, request_id: str) -> dict:
        request = self.requests.find_one({"_id": request_id}, {"email": 1, "name": 1})
        if request is None:
            raise PermanentFailure(f"no place request {request_id} at {self.settings.school}")
        if not request.get("email"):
            raise PermanentFailure(f"the student of place request {request_id} has no email")
        return request

    def course(self, course_id: str) -> dict | None:
        token = issue_token(self.private_key, self.settings.school, "coordinator", subject="courses-notifier",
                            ttl_seconds=60)
        url = f"{self.settings.school_url(self.settings.school, 'catalog')}/courses/{course_id}"
        response = self.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if response.status_code in (403, 404):
            return None
        response.raise_for_status()
        return response.json()


REASONS = {
    DECLINED_BY_HOME: N_("Your school declined the request."),
    HAND_DECLINED: N_("The host school declined the request."),
    COURSE_NOT_FOUND: N_("The host does not share this course (any more)."),
    OFFERING_NOT_FOUND: N_("The host does not know this offering."),
    OFFERING_CLOSED: N_("The offering is not open for requests."),
    OFFERING_REMOVED: N_("The host removed the offering or stopped sharing the course."),
}
STUDENT_SUBJECTS = {
    "endorsed": N_("Endorsed: your request for a place in %(course)s"),
    "declined-home": N_("Declined by your school: your request for a place in %(course)s"),
    "approved": N_("Approved: your place in %(course)s at %(host)s"),
    "promoted": N_("Approved from the waitlist: your place in %(course)s at %(host)s"),
    "waitlisted": N_("Waitlisted: your request for a place in %(course)s at %(host)s"),
    "declined": N_("Declined: your request for a place in %(course)s at %(host)s"),
}
SCHOOL_SUBJECTS = {
    "awaiting-endorsement": N_("A student's request for a place awaits your endorsement"),
    "incoming": N_("A partner's student asks for a place in your course"),
    "approved": N_("Approved: a place for %(student)s in %(course)s"),
    "promoted": N_("Approved from the waitlist: a place for %(student)s in %(course)s"),
    "waitlisted": N_("Waitlisted: %(student)s's request for %(course)s"),
    "declined": N_("Declined by the host: %(student)s's request for %(course)s"),
    "withdrawn": N_("Withdrawn: %(student)s's request for %(course)s"),
}

# failed attempts a mail waits for its course to reach this school's catalog (see Deliverer.course)
COURSE_WAIT_ATTEMPTS = 5


def dates_text(offering: dict | None) -> str:
    if not offering or not offering.get("starts_on"):
        return ""
    return f"{offering['starts_on']} – {offering['ends_on']}" if offering.get("ends_on") else offering["starts_on"]


class Deliverer(notifications.Deliverer):
    """Builds one place notification's message: text and HTML, no invitation."""

    def __init__(self, settings: Settings, directory: Directory, send=mail.send):
        super().__init__(settings, send)
        self.directory = directory

    def message(self, doc: dict):
        if doc["kind"] == SCHOOL_KIND:
            return self.school_message(doc)
        return self.student_message(doc)

    def course(self, doc: dict, ctx: dict) -> tuple[dict, dict]:
        """(course, offering) of a mail: the host's snapshot on the request, else this school's catalog.

        The catalog may not hold a partner's change yet: waited for a few attempts, then the
        mail goes with the course's id rather than never.
        """
        if ctx.get("course"):
            return ctx["course"], ctx.get("offering") or {}
        course = self.directory.course(ctx["course_id"])
        if course is None:
            if doc.get("attempts", 0) < COURSE_WAIT_ATTEMPTS:
                raise LookupError(f"course {ctx['course_id']} is not in this school's catalog yet")
            return {}, {}
        return course, find_offering(course, ctx["term"]) or {}

    def course_words(self, doc: dict, ctx: dict, lang: str) -> dict:
        course, offering = self.course(doc, ctx)
        title = lang_text(course.get("title"), lang) or ctx["course_id"]
        return {"course_title": title, "course_label": f"{title} ({course['code']})" if course.get("code") else title,
                "term": ctx["term"], "dates": dates_text(offering),
                "host_name": self.school_name(ctx["host_school"], lang)}

    def reason_text(self, lang: str, reason: str | None) -> str:
        return mail.gettext(lang, REASONS.get(reason, reason or ""))

    def student_message(self, doc: dict):
        lang, ctx = doc["lang"], doc["context"]
        student = self.directory.student(doc["to"]["request_id"])
        words = self.course_words(doc, ctx, lang)
        subject = mail.gettext(lang, STUDENT_SUBJECTS[doc["kind"]], course=words["course_title"],
                               host=words["host_name"])
        text, html = mail.render("place", lang, {
            **words, "kind": doc["kind"], "subject": subject, "person_name": student.get("name") or "",
            "note": ctx.get("note"), "waitlist_position": ctx.get("waitlist_position"),
            "reason_text": self.reason_text(lang, ctx.get("reason")), "link": self.page(MY_APPLICATIONS_PATH)})
        return mail.build_message(sender=self.settings.mail_sender, to=student["email"], subject=subject, text=text,
                                  html=html, message_key=doc["_id"])

    def school_message(self, doc: dict):
        lang = doc["lang"]
        items = []
        for key, item in sorted(doc["context"]["items"].items()):
            items.append({**self.course_words(doc, item, lang), "change": item["change"],
                          "student": item.get("name") or mail.gettext(lang, N_("a student")), "programme": item.get("programme") or "",
                          "statement": item.get("statement") or "", "note": item.get("note"),
                          "waitlist_position": item.get("waitlist_position"),
                          "reason_text": self.reason_text(lang, item.get("reason")),
                          "school_name": self.school_name(item["requester_school"], lang)})
        if len(items) == 1:
            one = items[0]
            subject = mail.gettext(lang, SCHOOL_SUBJECTS[one["change"]], student=one["student"],
                                   course=one["course_title"])
        else:
            subject = mail.translations(lang).ngettext(
                "%(num)d change in students' place requests", "%(num)d changes in students' place requests",
                len(items)) % {"num": len(items)}
        text, html = mail.render("places", lang, {"items": items, "subject": subject,
                                                  "link": self.page(STUDENT_APPLICATIONS_PATH)})
        return mail.build_message(sender=self.settings.mail_sender, to=doc["to"]["address"], subject=subject,
                                  text=text, html=html, message_key=doc["_id"])


def notify_loops(settings: Settings, db: Database) -> dict:
    """The courses worker's loops: derive place notifications from marked writes, and send what is due."""
    deliver = Deliverer(settings, Directory(settings, db, notifications.school_key(settings)))
    return notifications.notify_loops(settings, Notifier(db, settings), deliver)
