"""The faculty's pages: "Exchange visits", "Request this slot", "My requests", "My profile".

Partner visits are read from this catalog's own copy (the partners' visit events, applied by its
worker); requests, withdrawals and re-confirmations go to the school's visits service, and the
profile to its faculty service, each as the signed-in person (services_client.for_person).
"""

from __future__ import annotations

import uuid
from datetime import date

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from services.catalog.frontdoor import forms
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.catalog.i18n import in_zone, moment, slot_time
from services.catalog.query import visit_criteria, visible_visit
from services.catalog.model import visit_view
from services.catalog.store import COLLECTIONS
from shared.i18n import N_

exchange = Blueprint("exchange", __name__)

SLOT_KINDS = ("guest_lecture", "co_teaching", "workshop", "seminar", "panel", "site_visit", "mentoring")
# a request that still counts: another one for the same slot is a duplicate
ACTIVE = ("pending", "approved", "waitlisted", "reconfirm")
WITHDRAWABLE = ACTIVE
MOTIVATION_MAX = 2000


# coded values the exchange pages show -> their label (a gettext msgid)
KIND_LABELS = {
    "guest_lecture": N_("Guest lecture"), "co_teaching": N_("Co-teaching"), "workshop": N_("Workshop"),
    "seminar": N_("Seminar"), "panel": N_("Panel"), "site_visit": N_("Site visit"), "mentoring": N_("Mentoring"),
}
STATUS_LABELS = {
    "pending": N_("Pending"), "approved": N_("Approved"), "waitlisted": N_("Waitlisted"),
    "declined": N_("Declined"), "withdrawn": N_("Withdrawn"), "reconfirm": N_("Re-confirm needed"),
    "received": N_("Received"),
}
# why a request was declined (the host's reason slug) in words; declined-by-host shows the host's note
REASON_LABELS = {
    "overlapping-approval": N_("You already hold an approved slot at an overlapping time."),
    "visit-cancelled": N_("The visit was cancelled."),
    "slot-removed": N_("The slot was removed from the visit."),
    "school-not-invited": N_("Your school is not invited to this visit."),
    "slot-not-found": N_("The host does not know this slot."),
    "visit-not-found": N_("The host does not know this visit."),
}


def kind_label(kind) -> str:
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else str(kind or "").replace("_", " ")


def label_in(labels: dict, value) -> str:
    """A coded value in words, by a table of gettext msgids; the value itself when the table lacks it."""
    return _(labels[value]) if value in labels else str(value or "")


def request_status_label(status) -> str:
    return label_in(STATUS_LABELS, status)


def reason_text(item: dict, labels: dict = REASON_LABELS) -> str:
    """Why a request was declined, in words: the person's note for a decline by hand, else its reason code in
    words (`labels`)."""
    return item.get("note") or label_in(labels, item.get("reason"))


@exchange.app_context_processor
def _exchange_labels() -> dict:
    return {"kind_label": kind_label, "request_status_label": request_status_label, "reason_text": reason_text,
            "slot_time": slot_time}


def _db():
    return current_app.extensions["db"]


def _own_school() -> str:
    return current_app.extensions["settings"].school


def _visit_filters(args) -> tuple[dict, dict]:
    """The filters of the "Exchange visits" form (dates from, until; kind); invalid values are named, not used."""
    filters, errors = {}, {}
    for name in ("from", "until"):
        value = (args.get(name) or "").strip()
        if value:
            try:
                date.fromisoformat(value)
                filters[name] = value
            except ValueError:
                errors[name] = _("A date such as 2027-04-13.")
    kind = args.get("kind") or ""
    if kind in SLOT_KINDS:
        filters["kind"] = kind
    if "from" in filters and "until" in filters and filters["until"] < filters["from"]:
        errors["until"] = _("Must not be before the first date.")
        filters.pop("until")
    return filters, errors


def _slot_shown(slot: dict, filters: dict, time_zone: str | None) -> bool:
    if "kind" in filters and slot.get("kind") != filters["kind"]:
        return False
    starts = moment(slot.get("starts_at"))
    if starts is None:
        return True
    day = in_zone(starts, time_zone)[0].date().isoformat()
    return filters.get("from", "0000") <= day <= filters.get("until", "9999")


def invited_visits(filters: dict) -> list[dict]:
    """The partners' upcoming visits this school is invited to, each with the slots the filters keep."""
    criteria = {}
    if "kind" in filters:
        criteria["kind"] = filters["kind"]
    if "until" in filters:
        criteria["starts_until"] = filters["until"]
    own = _own_school()
    found = _db()[COLLECTIONS["visit"]].find(visit_criteria(criteria, own), sort=[("starts_on", 1), ("_id", 1)], limit=200)
    visits = []
    for visit in found:
        if visit.get("school") == own or visit.get("status") == "cancelled":
            continue
        if "from" in filters and str(visit.get("ends_on", "")) < filters["from"]:
            continue
        shown = visit_view(visit, own)
        shown["slots"] = [s for s in shown["slots"] if _slot_shown(s, filters, visit.get("time_zone"))]
        if shown["slots"]:
            visits.append(shown)
    return visits


@exchange.get("/exchange/visits")
@role_required("faculty")
def visits():
    """The partner visits this faculty member is invited to, with their slots, filterable by date and kind."""
    filters, errors = _visit_filters(request.args)
    return render_template("frontdoor/exchange_visits.html", visits=invited_visits(filters), filters=filters,
                           errors=errors, kinds=SLOT_KINDS, raw=request.args)


def _visit_and_slot(visit_id: str, slot_id: str) -> tuple[dict, dict]:
    visit = visible_visit(_db(), visit_id, _own_school())
    if visit is None or visit.get("school") == _own_school():
        abort(404)
    visit = visit_view(visit, _own_school())
    slot = next((s for s in visit["slots"] if s.get("id") == slot_id), None)
    if slot is None:
        abort(404)
    return visit, slot


def _my_requests() -> list[dict]:
    return for_person(current_person()).get_all("visits", "/slot-requests", limit=100)


@exchange.route("/exchange/visits/<visit_id>/slots/<slot_id>/request", methods=["GET", "POST"])
@role_required("faculty")
def request_slot(visit_id: str, slot_id: str):
    """"Request this slot": the slot, a "Motivation" field and "Send request"."""
    visit, slot = _visit_and_slot(visit_id, slot_id)
    person = current_person()
    errors: dict[str, str] = {}
    problem = None
    motivation = (request.form.get("motivation") or "").strip() if request.method == "POST" else ""
    key = request.form.get("key") or str(uuid.uuid4())
    if request.method == "POST":
        if len(motivation) > MOTIVATION_MAX:
            errors["motivation"] = _("At most %(num)d characters.", num=MOTIVATION_MAX)
        elif not person.faculty_id:
            problem = _("Your account is not linked to a faculty profile of the school; ask its coordinators.")
        else:
            try:
                mine = [r for r in _my_requests() if r.get("visit_id") == visit_id and r.get("slot_id") == slot_id
                        and r.get("status") in ACTIVE]
                if mine:
                    problem = _("You have already requested this slot: see My requests.")
                else:
                    for_person(person).call("POST", "visits", "/slot-requests", idempotency_key=key, json={
                        "visit_id": visit_id, "host_school": visit["school"], "slot_id": slot_id,
                        "faculty_id": person.faculty_id, "motivation": motivation})
                    return redirect(url_for("exchange.requests", sent=1), code=303)
            except ServiceProblem as exc:
                errors = exc.field_errors()
                if not errors or set(errors) - {"motivation"}:
                    problem = _("The request was not sent: %(reason)s", reason=exc.detail or exc.title)
    status = 422 if errors else (409 if problem else 200)
    return render_template("frontdoor/exchange_request.html", visit=visit, slot=slot, motivation=motivation,
                           key=key, errors=errors, problem=problem), status


def _request_rows(items: list[dict]) -> list[dict]:
    """Each request with the visit it names: the host's copy once decided, else this catalog's copy."""
    ids = list({r["visit_id"] for r in items if not r.get("visit") or not r.get("slot")})
    known = {v["_id"]: v for v in _db()[COLLECTIONS["visit"]].find({"_id": {"$in": ids}})} if ids else {}
    rows = []
    for item in items:
        visit = item.get("visit") or known.get(item["visit_id"]) or {}
        slot = item.get("slot")
        if not slot:
            slot = next((s for s in (known.get(item["visit_id"]) or {}).get("slots", [])
                         if s.get("id") == item["slot_id"]), None)
        rows.append({**item, "visit": visit, "slot": slot or {}})
    return rows


def _requests_context(notice: str | None = None, changed: dict | None = None) -> dict:
    return own_requests_context(_my_requests, _request_rows, WITHDRAWABLE, notice, changed)


def own_requests_context(fetch, rows_of, withdrawable, notice: str | None = None, changed: dict | None = None) -> dict:
    """What a person's list of their own requests shows ("My requests", "My applications"): the rows
    (`rows_of(fetch())`), or the problem when the service did not answer; a notice, the newer state of a
    request changed meanwhile, the live list's signature and the statuses that can be withdrawn."""
    problem = None
    items: list[dict] = []
    try:
        items = fetch()
    except ServiceProblem as exc:
        problem = exc
    rows = rows_of(items)
    return {"rows": rows, "problem": problem, "notice": notice, "changed": changed, "signature": signature_of(rows),
            "withdrawable": withdrawable}


@exchange.get("/exchange/requests")
@role_required("faculty")
def requests():
    """This faculty member's slot requests and their status, with "Withdraw" and "Re-confirm"."""
    notice = _("Your request was sent. The host decides; this page shows its answer.") if request.args.get("sent") \
        else None
    return render_template("frontdoor/exchange_requests.html", **_requests_context(notice))


@exchange.get("/exchange/requests/live")
@role_required("faculty")
def requests_live():
    """"My requests" as JSON for the page's script: a signature of the statuses and the list's HTML."""
    return live_answer("frontdoor/_my_requests.html", _requests_context())


def live_answer(template: str, context: dict):
    """A live list's JSON for static/frontdoor.js: its signature and its HTML (`template` with `context`)."""
    response = jsonify({"signature": context["signature"], "html": render_template(template, **context)})
    response.headers["Cache-Control"] = "no-store"
    return response


def signature_of(rows: list[dict]) -> str:
    """What a live list's script compares: each request's id, version, status and waitlist position."""
    return "|".join(f"{r['id']}:{r['version']}:{r['status']}:{r.get('waitlist_position')}" for r in rows)


@exchange.post("/exchange/requests/<uuid:request_id>/withdraw")
@role_required("faculty")
def withdraw(request_id):
    """"Withdraw": DELETE /slot-requests/<id> with If-Match; a 412 shows the newer state."""
    return change_request("DELETE", "visits", f"/slot-requests/{request_id}", _("Your request was withdrawn."),
                          _render_requests)


@exchange.post("/exchange/requests/<uuid:request_id>/reconfirm")
@role_required("faculty")
def reconfirm(request_id):
    """"Re-confirm": accept the changed slot of an approval (POST .../reconfirmation with If-Match)."""
    return change_request("POST", "visits", f"/slot-requests/{request_id}/reconfirmation",
                          _("You re-confirmed the changed slot."), _render_requests,
                          item_path=f"/slot-requests/{request_id}")


def _render_requests(notice: str, changed: dict | None = None) -> str:
    return render_template("frontdoor/exchange_requests.html", **_requests_context(notice, changed=changed))


def change_request(method: str, service: str, path: str, done: str, render, item_path: str | None = None):
    """One change of the person's own request (withdraw, re-confirm) with If-Match on the version the page
    showed; `render(notice, changed)` draws the person's list again. A 412 shows the request's newer state
    (read at `item_path`, the request itself by default), and nothing is done."""
    client = for_person(current_person())
    try:
        client.call(method, service, path, etag=forms.if_match(request.form))
    except ServiceProblem as exc:
        if exc.status == 412:
            try:
                newer = client.get(service, item_path or path)
            except ServiceProblem:
                newer = None
            return render(_("This request changed meanwhile; here is its newer state. Nothing was done."), newer), 409
        if exc.status == 404:
            abort(404)
        return render(_("That could not be done: %(reason)s", reason=exc.detail or exc.title), None), 409
    return render(done, None)


# my profile: the public fields a faculty member keeps current

AVAILABILITY_ROWS = 2


def _profile_form(profile: dict) -> dict:
    bio = profile.get("bio") or {}
    windows = list(profile.get("availability") or [])
    return {"expertise": "\n".join(profile.get("expertise") or []), "bio_en": bio.get("en", ""),
            "bio_zh": bio.get("zh", ""),
            "availability": windows + [{"from": "", "to": ""}] * AVAILABILITY_ROWS}


def _profile_body(form) -> tuple[dict, dict]:
    """The PATCH body from the form, and the errors found before sending it."""
    expertise = []
    for line in (form.get("expertise") or "").replace(",", "\n").splitlines():
        if line.strip() and line.strip() not in expertise:
            expertise.append(line.strip())
    bio = {lang: (form.get(f"bio_{lang}") or "").strip() for lang in ("en", "zh")}
    windows, errors = [], {}
    for index, (start, end) in enumerate(zip(form.getlist("from"), form.getlist("to"))):
        start, end = start.strip(), end.strip()
        if not start and not end:
            continue
        if not start or not end:
            errors["availability"] = _("Give both dates of each window.")
            continue
        windows.append({"from": start, "to": end})
    return {"expertise": expertise, "bio": {k: v for k, v in bio.items() if v}, "availability": windows}, errors


@exchange.route("/me/profile", methods=["GET", "POST"])
@role_required("faculty")
def profile():
    """The public fields of this faculty member's own profile: expertise, bio, availability (PATCH /faculty/<id>)."""
    person = current_person()
    if not person.faculty_id:
        return render_template("frontdoor/exchange_profile.html", profile=None, form=None, errors={},
                               notice=None, version=None)
    client = for_person(person)
    path = f"/faculty/{person.faculty_id}"
    try:
        current = client.get("faculty", path)
    except ServiceProblem as exc:
        return render_template("frontdoor/exchange_profile.html", profile=None, form=None, errors={}, notice=None,
                               version=None, problem=exc), 502
    errors: dict[str, str] = {}
    notice = None
    status = 200
    stale = False
    form = _profile_form(current)
    if request.method == "POST":
        body, errors = _profile_body(request.form)
        form = {"expertise": request.form.get("expertise", ""), "bio_en": request.form.get("bio_en", ""),
                "bio_zh": request.form.get("bio_zh", ""),
                "availability": [{"from": f, "to": t} for f, t in zip(request.form.getlist("from"),
                                                                    request.form.getlist("to"))]}
        if not body["bio"]:
            body.pop("bio")
        if not errors:
            try:
                current = client.call("PATCH", "faculty", path, json=body,
                                      etag=forms.if_match(request.form)).json()
                form = _profile_form(current)
                notice = _("Your profile was saved.")
            except ServiceProblem as exc:
                if exc.status == 412:
                    current = client.get("faculty", path)
                    stale = True
                    notice = _("Your profile changed meanwhile; here is its newer version. Nothing was saved.")
                    form = _profile_form(current)
                else:
                    errors = exc.field_errors() or {"_": exc.detail or exc.title}
        status = 422 if errors else (409 if stale else 200)
    return render_template("frontdoor/exchange_profile.html", profile=current, form=form, errors=errors,
                           notice=notice, version=current.get("version")), status
