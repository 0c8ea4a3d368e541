"""The faculty's pages: "Exchange visits" (with "Request this slot"), "My requests", "My profile"."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from services.catalog.api import visit_detail, visits_page
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from shared.errors import DomainError

exchange = Blueprint("exchange", __name__)
MOTIVATION_MAX = 2000


def N_(message: str) -> str:
    return message


# a slot request's status as the faculty member reads it
REQUEST_STATUS_LABELS = {
    "pending": N_("Pending"), "approved": N_("Approved"), "waitlisted": N_("Waitlisted"),
    "declined": N_("Declined"), "withdrawn": N_("Withdrawn"), "reconfirm": N_("Re-confirm needed"),
    "received": N_("Pending"),
}


@exchange.app_context_processor
def _request_labels():
    from flask_babel import gettext

    return {"request_status": lambda status: gettext(REQUEST_STATUS_LABELS[status])
            if status in REQUEST_STATUS_LABELS else str(status)}


@exchange.get("/exchange/visits")
@role_required("faculty")
def visits():
    """The partners' upcoming visits this school is invited to, each slot with its time, kind and places left."""
    settings = current_app.extensions["settings"]
    page = visits_page(current_app.extensions["db"], settings.school, {"limit": 100})
    partner_visits = [v for v in page["items"] if v.get("school") != settings.school]
    return render_template("frontdoor/exchange_visits.html", visits=partner_visits)


def _slot(visit_id: str, slot_id: str) -> tuple[dict, dict]:
    settings = current_app.extensions["settings"]
    try:
        visit = visit_detail(current_app.extensions["db"], settings.school, str(visit_id))
    except DomainError:
        abort(404)
    slot = next((s for s in visit.get("slots", []) if s.get("id") == str(slot_id)), None)
    if slot is None or visit.get("school") == settings.school:
        abort(404)
    return visit, slot


@exchange.route("/exchange/visits/<uuid:visit_id>/slots/<uuid:slot_id>/request", methods=["GET", "POST"])
@role_required("faculty")
def request_slot(visit_id, slot_id):
    """The "Request this slot" form: a motivation, sent to this school's visits service for the host to decide."""
    visit, slot = _slot(visit_id, slot_id)
    person = current_person()
    errors: dict[str, str] = {}
    problem = None
    motivation = ""
    # one key per form shown: sending the form twice makes one request
    key = request.form.get("idempotency_key") or str(uuid.uuid4())
    if request.method == "POST":
        motivation = request.form.get("motivation", "").strip()
        if len(motivation) > MOTIVATION_MAX:
            errors["motivation"] = "too-long"
        else:
            try:
                for_person(person).call("POST", "visits", "/slot-requests", idempotency_key=key, json={
                    "visit_id": str(visit_id), "host_school": visit["school"], "slot_id": str(slot_id),
                    "faculty_id": person.faculty_id, "motivation": motivation})
                return redirect(url_for("exchange.requests", sent=1))
            except ServiceProblem as exc:
                problem = exc
                errors = exc.field_errors()
    status = 422 if errors or problem else 200
    return render_template("frontdoor/request_slot.html", visit=visit, slot=slot, motivation=motivation,
                           errors=errors, problem=problem, key=key, motivation_max=MOTIVATION_MAX), status


@exchange.get("/exchange/requests")
@role_required("faculty")
def requests():
    """This faculty member's slot requests, each with its status (and the host's reason when declined)."""
    problem, items = None, []
    try:
        items = for_person(current_person()).get_all("visits", "/slot-requests", limit=100)
    except ServiceProblem as exc:
        problem = exc
    return render_template("frontdoor/my_requests.html", items=items, problem=problem,
                           sent=request.args.get("sent") == "1")


@exchange.get("/me/profile")
@role_required("faculty")
def profile():
    """This faculty member's own profile as the school keeps it (editing it comes with the faculty API's self-edit)."""
    person = current_person()
    problem, item = None, None
    try:
        item = for_person(person).get("faculty", f"/faculty/{person.faculty_id}")
    except ServiceProblem as exc:
        problem = exc
    return render_template("frontdoor/my_profile.html", profile=item, problem=problem)
