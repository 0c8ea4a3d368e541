"""The coordinators' pages: /manage/... ("Courses", "Faculty", "Visits", requests, "Partners")."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from services.catalog import i18n
from services.catalog.api import sync_status
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from shared.i18n import current_lang

manage = Blueprint("manage", __name__, url_prefix="/manage")
COURSE_STATUSES = ("draft", "published", "withdrawn")
COURSE_VISIBILITIES = ("school", "alliance")


def N_(message: str) -> str:
    return message


# coded values the coordinators' pages show -> their label (a gettext msgid)
LABELS = {
    "draft": N_("Draft"), "published": N_("Published"), "withdrawn": N_("Withdrawn"),
    "school": N_("School only"), "alliance": N_("Alliance"),
    "courses": N_("Courses"), "faculty": N_("Faculty"), "visits": N_("Visits"),
    "equal": N_("Equal"), "repaired": N_("Repaired"), "differs": N_("Differs"),
    "active": N_("Active"), "planned": N_("Planned"), "confirmed": N_("Confirmed"), "cancelled": N_("Cancelled"),
}


def label(value) -> str:
    return _(LABELS[value]) if value in LABELS else str(value or "")


@manage.app_context_processor
def _labels():
    return {"status_label": label, "entity_label": label, "digest_label": label, "error_text": error_text,
            "slot_time": slot_time, "kind_label": lambda kind: i18n.value_label(current_lang(), kind)}


def slot_time(slot: dict) -> str:
    """A slot's time in the visit's own time zone, which it states: 2027-04-13 09:00–11:00 (UTC+08:00)."""
    starts, ends = str(slot.get("starts_at") or ""), str(slot.get("ends_at") or "")
    if len(starts) < 16:
        return starts
    zone = starts[-6:] if starts[-6:-5] in ("+", "-") else "+00:00"
    ends_at = ends[11:16] if ends[:10] == starts[:10] else ends[:16].replace("T", " ")
    return f"{starts[:10]} {starts[11:16]}–{ends_at} (UTC{zone})"


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


@manage.get("/faculty")
@role_required("coordinator")
def faculty():
    """The school's faculty profiles, every status, with their contact email (read through the faculty service)."""
    return _listing("faculty", "/faculty", "frontdoor/manage_faculty.html", sort="name")


@manage.get("/visits")
@role_required("coordinator")
def visits():
    """The school's teaching-team visits and their slots, with places left (read through the visits service)."""
    return _listing("visits", "/visits", "frontdoor/manage_visits.html", sort="starts_on")


def _listing(service: str, path: str, template: str, direction: str | None = None, **params):
    """A list page: every item of the service's list, or the problem it answered."""
    problem, items = None, []
    try:
        items = for_person(current_person()).get_all(service, path, limit=100, **params)
    except ServiceProblem as exc:
        problem = exc
    return render_template(template, items=items, problem=problem, direction=direction)


@manage.get("/requests/outgoing")
@role_required("coordinator")
def outgoing_requests():
    """The school's faculty's requests to partners' visits, with their status."""
    return _listing("visits", "/slot-requests", "frontdoor/manage_requests.html", direction="outgoing")
