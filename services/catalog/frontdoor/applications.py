"""The students' pages: "Request a place" in a partner's course offering, and "My applications".

A partner's course and its offerings (with the places left its host last
published) are read from this catalog's own copy; the request, and its
withdrawal, go to the school's courses service as the signed-in student, whose
token carries their name, email, student number and programme
(services_client). Their own school's coordinators endorse it first; only then
does it travel to the host (docs/workflows.md).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from services.catalog.frontdoor import forms
from services.catalog.frontdoor.exchange import (
    change_request, label_in, live_answer, own_requests_context, reason_text)
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.catalog.store import COLLECTIONS
from services.courses.model import is_open
from shared.clock import today_iso
from services.catalog import i18n
from shared.i18n import N_, current_lang

applications = Blueprint("applications", __name__)

STATEMENT_MAX = 2000
# a request that still holds its place in the queue: the student may withdraw it
WITHDRAWABLE = ("pending-endorsement", "endorsed", "approved", "waitlisted")

# a place request's status (at the student's school, or at the host) -> its words (a gettext msgid)
STATUS_LABELS = {
    "pending-endorsement": N_("Pending endorsement"), "endorsed": N_("Endorsed"), "approved": N_("Approved"),
    "waitlisted": N_("Waitlisted"), "declined": N_("Declined"), "withdrawn": N_("Withdrawn"),
    "received": N_("Received"), "pending": N_("Waiting for review"),
}
# why the host declined a request by itself (its reason code) in words; a decline by hand shows its note
REASON_LABELS = {
    "offering-closed": N_("The offering is not open for requests."),
    "offering-not-found": N_("The host does not know this offering."),
    "course-not-found": N_("The host does not know this course."),
    "offering-removed": N_("The host withdrew the course or removed this offering."),
}


def status_label(status) -> str:
    return label_in(STATUS_LABELS, status)


def decline_reason(item: dict) -> str:
    """Why a request was declined, in words: the person's note, else the host's reason code in words."""
    return reason_text(item, REASON_LABELS)


def open_for_requests(offering: dict) -> bool:
    """Whether an offering of a partner's shared course takes requests today (the courses service's own rule:
    it has places, it has not started, today is within its application window when it has one)."""
    return is_open(offering, today_iso())


def may_request(course: dict, offering: dict) -> bool:
    """"Request a place" is offered to a signed-in student of another school, on an open offering (one with
    places); on a full one the form says that the request would join the waitlist."""
    person = current_person()
    return (person is not None and person.role == "student" and course.get("school") != _own_school()
            and open_for_requests(offering))


def offering_places(offering: dict) -> str:
    """An offering's places left in words ("3 places left", "Full"), its places when the host does not say."""
    return i18n.places(current_lang(), offering.get("places_left"), offering.get("places"))


@applications.app_context_processor
def _application_labels() -> dict:
    return {"place_status_label": status_label, "decline_reason": decline_reason, "may_request": may_request,
            "offering_places": offering_places}


def _own_school() -> str:
    return current_app.extensions["settings"].school


def _courses() -> object:
    return current_app.extensions["db"][COLLECTIONS["course"]]


def _partner_offering(course_id: str, term: str) -> tuple[dict, dict]:
    """A partner's shared course in this catalog and its offering `term`, or 404."""
    course = _courses().find_one({"_id": course_id, "visible": True})
    if course is None or course.get("school") == _own_school():
        abort(404)
    offering = next((o for o in course.get("offerings") or [] if o.get("term") == term), None)
    if offering is None:
        abort(404)
    return course, offering


@applications.route("/course/<uuid:course_id>/offerings/<term>/request", methods=["GET", "POST"])
@role_required("student")
def request_place(course_id, term: str):
    """"Request a place": the offering, a "Statement" field and "Send request" (POST /place-requests)."""
    course, offering = _partner_offering(str(course_id), term)
    taking = open_for_requests(offering)
    values = forms.posted() if request.method == "POST" else {}
    form = forms.Form(values={"statement": values.get("statement", ""),
                              "idempotency_key": values.get("idempotency_key") or forms.new_idempotency_key()})
    status = 200
    if request.method == "POST":
        statement = forms.text(values, "statement")
        if not taking:
            status = 409
        elif not statement:
            form.errors["statement"] = _("Write a statement: your school and the host read it.")
        elif len(statement) > STATEMENT_MAX:
            form.errors["statement"] = _("At most %(num)d characters.", num=STATEMENT_MAX)
        else:
            try:
                for_person(current_person()).call("POST", "courses", "/place-requests",
                                                  idempotency_key=form.value("idempotency_key"), json={
                                                      "host_school": course["school"], "course_id": course["_id"],
                                                      "term": term, "statement": statement})
                return redirect(url_for("applications.mine", sent=1), code=303)
            except ServiceProblem as problem:
                form.problem = problem
                form.errors = forms.errors_of(problem)
                # the refused request created nothing: a new key lets the corrected one through
                form.values["idempotency_key"] = forms.new_idempotency_key()
        if form.errors.get("statement"):
            status = 422
        elif form.problem is not None and form.problem.status >= 500:
            status = 503  # not sent: the service did not answer; the same form may be sent again
        elif form.problem is not None or not taking:
            status = 409
    return render_template("frontdoor/place_request.html", course=course, offering=offering, form=form,
                           is_open=taking, refusal=_refusal(form.problem),
                           statement_max=STATEMENT_MAX), status


def _refusal(problem: ServiceProblem | None) -> str | None:
    """A refusal that is not about the statement, in words (the statement's own is at its field)."""
    if problem is None or set(forms.errors_of(problem)) == {"statement"}:
        return None
    if problem.type.endswith(":already-requested"):
        return _("You already hold a request for this offering: see My applications.")
    # the page's own words for what the service refused (its text is English): the course, the term, or no answer
    fields = set(forms.errors_of(problem))
    if "course_id" in fields:
        reason = _("The host does not know this course.")
    elif "term" in fields:
        reason = _("This offering does not take requests now: it has started, its application period is over or "
                   "not yet open, or it has no places.")
    elif problem.status >= 500:
        reason = _("A service this page needs did not answer. Please try again in a minute.")
    else:
        reason = problem.detail or problem.title
    return _("The request was not sent: %(reason)s", reason=reason)


def _my_requests() -> list[dict]:
    return for_person(current_person()).get_all("courses", "/place-requests", limit=100)


def application_rows(items: list[dict]) -> list[dict]:
    """Each request with its course: the host's snapshot once it has answered, else this catalog's copy."""
    ids = list({r["course_id"] for r in items if not (r.get("course") or {}).get("title")})
    known = {c["_id"]: c for c in _courses().find({"_id": {"$in": ids}})} if ids else {}
    rows = []
    for item in items:
        course = item.get("course") if (item.get("course") or {}).get("title") else known.get(item["course_id"])
        offering = item.get("offering") or next(
            (o for o in (known.get(item["course_id"]) or {}).get("offerings") or [] if o.get("term") == item["term"]),
            {})
        rows.append({**item, "course": course or {}, "offering": offering or {}})
    return rows


def _mine_context(notice: str | None = None, changed: dict | None = None) -> dict:
    return own_requests_context(_my_requests, application_rows, WITHDRAWABLE, notice, changed)


@applications.get("/applications")
@role_required("student")
def mine():
    """"My applications": this student's place requests and their status, with "Withdraw"."""
    notice = _("Your request was sent. Your school endorses it first, then the host decides; this page shows "
               "each step.") if request.args.get("sent") else None
    return render_template("frontdoor/my_applications.html", **_mine_context(notice))


@applications.get("/applications/live")
@role_required("student")
def mine_live():
    """"My applications" as JSON for the page's script: a signature of the statuses and the list's HTML."""
    return live_answer("frontdoor/_my_applications.html", _mine_context())


@applications.post("/applications/<uuid:request_id>/withdraw")
@role_required("student")
def withdraw(request_id):
    """"Withdraw": DELETE /place-requests/<id> with If-Match; a 412 shows the newer state."""
    return change_request("DELETE", "courses", f"/place-requests/{request_id}", _("Your request was withdrawn."),
                          lambda notice, changed: render_template("frontdoor/my_applications.html",
                                                                  **_mine_context(notice, changed)))
