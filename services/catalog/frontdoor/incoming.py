"""The coordinators' "Incoming requests": partners' requests for the school's visits, decided by hand.

Views on the `manage` blueprint (under /manage), kept apart from manage.py. Per slot of each of the
school's visits: its places left, its waitlist in order, and each pending request with "Approve"
and "Decline" (with a required reason, which the requester reads). The visits service holds the
rules (capacity, waitlist, overlap) and decides; this page only asks it, as the coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _

from services.catalog.frontdoor import forms
from services.catalog.frontdoor.exchange import request_status_label
from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.catalog.i18n import slot_time
from services.catalog.store import COLLECTIONS

REASON_MAX = 1000
# the decisions shown under a slot, in this order
SHOWN = ("pending", "approved", "reconfirm", "waitlisted", "declined", "withdrawn")


def _requester_names(decisions: list[dict]) -> dict[str, str]:
    """The names of the requesting faculty whose public profiles this catalog holds, by faculty id."""
    ids = list({d["faculty_id"] for d in decisions})
    if not ids:
        return {}
    found = current_app.extensions["db"][COLLECTIONS["faculty"]].find({"_id": {"$in": ids}, "visible": True})
    return {p["_id"]: p.get("name") or {} for p in found}


def _slots(visits: list[dict], decisions: list[dict]) -> list[dict]:
    """One entry per slot of the school's visits that has requests: the slot, places left, and its decisions."""
    by_slot: dict[tuple, list[dict]] = {}
    for decision in decisions:
        by_slot.setdefault((decision["visit_id"], decision["slot_id"]), []).append(decision)
    out = []
    for visit in visits:
        for slot in visit.get("slots", []):
            items = by_slot.pop((visit["id"], slot.get("id")), [])
            if not items:
                continue
            waitlist = sorted((d for d in items if d["status"] == "waitlisted"),
                              key=lambda d: (d.get("waitlist_position") or 10**9, d.get("updated_at", "")))
            out.append({"visit": visit, "slot": slot, "places_left": slot.get("places_left"),
                        "pending": [d for d in items if d["status"] == "pending"],
                        "holding": [d for d in items if d["status"] in ("approved", "reconfirm")],
                        "waitlist": waitlist,
                        "closed": [d for d in items if d["status"] in ("declined", "withdrawn")]})
    return out


def _incoming_context(errors: dict | None = None, notice: str | None = None, reasons: dict | None = None) -> dict:
    client = for_person(current_person())
    problem = None
    visits: list[dict] = []
    decisions: list[dict] = []
    try:
        visits = client.get_all("visits", "/visits", limit=100)
        decisions = [d for d in client.get_all("visits", "/slot-decisions", limit=100) if d["status"] in SHOWN]
    except ServiceProblem as exc:
        problem = exc
    slots = _slots(visits, decisions)
    return {"slots": slots, "names": _requester_names(decisions), "problem": problem, "errors": errors or {},
            "notice": notice, "reasons": reasons or {}, "reason_max": REASON_MAX,
            "pending_count": sum(len(s["pending"]) for s in slots)}


@manage.app_context_processor
def _incoming_labels() -> dict:
    return {"decision_label": request_status_label, "slot_time": slot_time}


@manage.get("/requests/incoming")
@role_required("coordinator")
def incoming_requests():
    """Partners' requests for the school's visits: per slot the places left, the waitlist, Approve and Decline."""
    return render_template("frontdoor/manage_incoming.html", **_incoming_context())


@manage.post("/requests/incoming/<uuid:request_id>/decision")
@role_required("coordinator")
def decide(request_id):
    """"Approve" or "Decline" (with its reason) one pending request: PUT /slot-decisions/<id> with If-Match."""
    request_id = str(request_id)
    decided, refused = send_decision("visits", f"/slot-decisions/{request_id}", request_id,
                                     posted_decision({"approve": "approved", "decline": "declined"}), _again,
                                     _overlapping)
    if refused is not None:
        return refused
    if decided.get("status") == "waitlisted":
        notice = _("Approved: the slot is full, so the request joined the waitlist (position %(num)d).",
                   num=decided.get("waitlist_position") or 0)
    elif decided.get("status") == "approved":
        notice = _("Approved: the requester has a place.")
    else:
        notice = _("Declined: the requester reads your reason.")
    return _again({}, notice, 200)


def _overlapping(problem: ServiceProblem) -> str | None:
    if problem.body.get("reason") == "overlapping-approval":
        return _("Not approved: the requester already holds an approved slot at an overlapping time. Decline it "
                 "with a reason they can read.")
    return None


def send_decision(service: str, path: str, request_id: str, decision: "PostedDecision", again, explain=None):
    """PUT a posted decision on one request of a list page; `(the answer, None)` once done, else `(None, the
    page again)`: `again(errors, notice, status, reasons)` with the message at the request's reason field (its
    reason kept), that it changed meanwhile (412), or why the service refused (`explain(problem)` first)."""
    if decision.error:
        return None, again({request_id: decision.error}, reasons={request_id: decision.note})
    try:
        return for_person(current_person()).call("PUT", service, path, json=decision.body,
                                                 etag=decision.etag).json(), None
    except ServiceProblem as exc:
        if exc.status == 404:
            abort(404)
        if exc.status == 412:
            return None, again({}, _("This request changed meanwhile; here is its newer state. Nothing was done."),
                               409)
        if exc.field_errors().get("note"):
            return None, again({request_id: exc.field_errors()["note"]}, reasons={request_id: decision.note})
        return None, again({}, (explain and explain(exc)) or _("That could not be done: %(reason)s",
                                                               reason=exc.detail or exc.title), 409)


@dataclass
class PostedDecision:
    """A decision posted from a list (an "Approve", "Endorse" or "Decline" button with its "Reason" field)."""

    body: dict
    note: str
    etag: str
    error: str | None


def posted_decision(actions: dict[str, str]) -> PostedDecision:
    """The posted decision: the API body for the button pressed (`actions`: button value -> status), the
    reason as typed, If-Match on the version the page showed, and the message for the reason field when a
    decline has none or it is too long (then nothing is sent). A form that is not one of ours is a 400."""
    action = request.form.get("action")
    note = (request.form.get("reason") or "").strip()
    etag = forms.if_match(request.form)
    if action not in actions:
        abort(400)
    error = None
    if actions[action] == "declined" and not note:
        error = _("Give the reason: the requester reads it.")
    elif len(note) > REASON_MAX:
        error = _("At most %(num)d characters.", num=REASON_MAX)
    body = {"status": actions[action], **({"note": note} if note else {})}
    return PostedDecision(body=body, note=note, etag=etag, error=error)


def _again(errors: dict, notice: str | None = None, status: int = 422, reasons: dict | None = None):
    return render_template("frontdoor/manage_incoming.html",
                           **_incoming_context(errors, notice, reasons)), status
