"""The coordinators' pages: /manage/... ("Courses", "Faculty", "Visits", requests, "Partners")."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from shared.i18n import N_, current_lang

from services.catalog import i18n
from services.catalog.api import sync_status
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person

manage = Blueprint("manage", __name__, url_prefix="/manage")
COURSE_STATUSES = ("draft", "published", "withdrawn")
COURSE_VISIBILITIES = ("school", "alliance")


# coded values the coordinators' pages show -> their label (a gettext msgid)
LABELS = {
    "draft": N_("Draft"), "published": N_("Published"), "withdrawn": N_("Withdrawn"),
    "school": N_("School only"), "alliance": N_("Alliance"),
    "courses": N_("Courses"), "faculty": N_("Faculty"), "visits": N_("Visits"),
    "equal": N_("Equal"), "repaired": N_("Repaired"), "differs": N_("Differs"),
    # faculty profiles, visits and their slots, requests
    "active": N_("Active"), "planned": N_("Planned"), "confirmed": N_("Confirmed"), "cancelled": N_("Cancelled"),
    "automatic": N_("Automatic, first come first served"), "review": N_("Review, each request waits for the host"),
    "guest_lecture": N_("Guest lecture"), "co_teaching": N_("Co-teaching"), "workshop": N_("Workshop"),
    "seminar": N_("Seminar"), "panel": N_("Panel"), "site_visit": N_("Site visit"), "mentoring": N_("Mentoring"),
    "pending": N_("Pending"), "approved": N_("Approved"), "waitlisted": N_("Waitlisted"), "declined": N_("Declined"),
    "reconfirm": N_("Re-confirm needed"),
}


def label(value) -> str:
    return _(LABELS[value]) if value in LABELS else str(value or "")


@manage.context_processor
def _labels():
    lang = current_lang()
    return {"status_label": label, "entity_label": label, "digest_label": label, "error_text": error_text,
            "value_label": lambda value: i18n.value_label(lang, value)}


@manage.get("/courses")
@role_required("coordinator")
def courses():
    """Every course of the school, in every status and visibility, read through the courses service."""
    filters = {k: request.args[k] for k in ("status", "visibility") if request.args.get(k)}
    filters = {k: v for k, v in filters.items()
               if v in (COURSE_STATUSES if k == "status" else COURSE_VISIBILITIES)}
    problem = None
    items: list[dict] = []
    try:
        items = for_person(current_person()).get_all("courses", "/courses", limit=100, sort="code", **filters)
    except ServiceProblem as exc:
        problem = exc
    return render_template("frontdoor/manage_courses.html", courses=items, problem=problem, filters=filters,
                           statuses=COURSE_STATUSES, visibilities=COURSE_VISIBILITIES)


@manage.get("/partners")
@role_required("coordinator")
def partners():
    """How far each school's changes are applied in this catalog: sync status, lag, digest checks, dead letters."""
    settings = current_app.extensions["settings"]
    rows = sync_status(current_app.extensions["db"], settings)
    schools = []
    for school in settings.school_ids:
        entries = [r for r in rows if r["school"] == school]
        schools.append({"id": school, "own": school == settings.school, "entries": entries,
                        "state": _sync_state(entries),
                        "dead_lettered": sum(r["dead_lettered"] or 0 for r in entries),
                        "lag": sum(r["lag"] or 0 for r in entries)})
    return render_template("frontdoor/manage_partners.html", schools=schools)


def _sync_state(entries: list[dict]) -> str:
    """One word for a school's sync: "failing" (its last check failed), "unknown" (never reached), "behind", "in-sync"."""
    if any(e["error"] for e in entries):
        return "failing"
    if any(e["lag"] is None for e in entries):
        return "unknown"
    return "behind" if any(e["lag"] for e in entries) else "in-sync"


def error_text(error) -> str:
    """A sync error as the worker stored it ({"at", "detail"} or text), in one line."""
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("reason") or error)
    return str(error)
