"""The coordinators' visit pages: the school's visits and their slots, "New visit", edit, "Cancel visit".

A slot's times are typed in the visit's time zone (a `datetime-local` field)
and sent with that zone's offset on that day; they are shown back the same
way. Each slot shows its places left, as the visits service counts them. A
visit's `approval` says how its requests are decided: automatic (first come,
first served) or review (each request waits for the host's coordinator).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, render_template, request
from flask_babel import gettext as _

from services.catalog.frontdoor import entity_forms, forms
from services.catalog.frontdoor.forms import Form
from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.visits.model import ALL_PARTNERS, APPROVALS, SLOT_KINDS

SLOT_FIELDS = ("id", "kind", "title_en", "title_zh", "starts_at", "ends_at", "capacity")
VISIT_STATUSES = ("planned", "confirmed")
DEFAULT_TIME_ZONE = "Asia/Shanghai"
PLACED = {"theme", "invited", "place", "time_zone", "starts_on", "ends_on", "host_team", "agenda", "slots", "status",
          "approval"}


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def moment(local: str, tz: ZoneInfo | None) -> str:
    """A `datetime-local` value in the visit's zone as an RFC 3339 time with that day's offset; as typed if it
    is not a time (the service then says so at the field)."""
    try:
        parsed = datetime.fromisoformat(local)
    except ValueError:
        return local
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or ZoneInfo("UTC"))
    return parsed.isoformat()


def local(moment_text: str, tz: ZoneInfo | None) -> str:
    """An RFC 3339 time as a `datetime-local` value in the visit's zone (or at its own offset)."""
    try:
        parsed = datetime.fromisoformat(moment_text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return moment_text or ""
    if tz is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz)
    return parsed.strftime("%Y-%m-%dT%H:%M")


def visit_body(values: dict) -> dict:
    """The visits API's body (VisitInSchema) from the form's values."""
    tz_name = forms.text(values, "time_zone")
    tz = zone(tz_name)
    body: dict = {"theme": forms.lang_map(values, "theme"), "invited": request.form.getlist("invited")}
    forms.put_text(body, values, "place", required=True)
    if tz_name:
        body["time_zone"] = tz_name
    for name in ("starts_on", "ends_on"):
        forms.put_text(body, values, name, required=True)
    body["host_team"] = [v for v in request.form.getlist("host_team") if v]
    body["agenda"] = forms.lang_map_list(values, "agenda")
    slots = []
    for row in forms.rows(values, "slots", SLOT_FIELDS):
        slot: dict = {"kind": row["kind"], "starts_at": moment(row["starts_at"], tz),
                      "ends_at": moment(row["ends_at"], tz),
                      "capacity": forms.number(row["capacity"], integer=True) if row["capacity"] else None}
        if row["id"]:
            slot["id"] = row["id"]
        title = {lang: row[f"title_{lang}"] for lang in forms.LANGS if row[f"title_{lang}"]}
        if title:
            slot["title"] = title
        slots.append(slot)
    body["slots"] = slots
    body["status"] = forms.text(values, "status") or "planned"
    body["approval"] = forms.text(values, "approval") or "automatic"
    return body


def values_of(visit: dict) -> dict:
    values = {k: str(visit.get(k) or "") for k in ("place", "time_zone", "starts_on", "ends_on", "status", "approval")}
    values.update(forms.langs_of(visit, "theme"))
    values.update(forms.lang_list_of(visit, "agenda"))
    tz = zone(visit.get("time_zone") or "")
    slots = [{"id": s.get("id", ""), "kind": s.get("kind", ""), "title_en": (s.get("title") or {}).get("en", ""),
              "title_zh": (s.get("title") or {}).get("zh", ""), "starts_at": local(s.get("starts_at", ""), tz),
              "ends_at": local(s.get("ends_at", ""), tz), "capacity": str(s.get("capacity", ""))}
             for s in visit.get("slots") or []]
    values.update(forms.flatten_rows(slots, "slots"))
    values["version"] = str(visit.get("version", ""))
    return values


def _renumbered(values: dict) -> dict:
    return forms.renumbered(values, "slots", SLOT_FIELDS)


def _partners() -> list[str]:
    settings = current_app.extensions["settings"]
    return [s for s in settings.school_ids if s != settings.school]


def _render(form: Form, visit: dict | None, status: int = 200, newer: dict | None = None, posted: bool = False):
    client = for_person(current_person())
    if posted:
        invited, host_team = request.form.getlist("invited"), request.form.getlist("host_team")
    elif visit:
        invited, host_team = visit.get("invited") or [], visit.get("host_team") or []
    else:
        invited, host_team = _partners(), []
    try:
        faculty = client.get_all("faculty", "/faculty", limit=100, sort="name")
    except ServiceProblem:
        faculty = []
    places = {s.get("id"): s.get("places_left") for s in (visit or {}).get("slots") or []}
    return render_template(
        "frontdoor/manage_visit_form.html", form=form, visit=visit, newer=newer, invited=invited,
        host_team=host_team, faculty=faculty, partners=[ALL_PARTNERS, *_partners()],
        slots=forms.form_rows(form.values, "slots", SLOT_FIELDS), places=places, kinds=SLOT_KINDS,
        approvals=APPROVALS, statuses=VISIT_STATUSES, unplaced=form.unplaced(PLACED)), status


@manage.get("/visits")
@role_required("coordinator")
def visits():
    """The school's visits and their slots, with places left."""
    problem = None
    items: list[dict] = []
    try:
        items = for_person(current_person()).get_all("visits", "/visits", limit=100, sort="-starts_on")
    except ServiceProblem as exc:
        problem = exc
    return render_template("frontdoor/manage_visits.html", visits=items, problem=problem)


@manage.get("/visits/new")
@role_required("coordinator")
def new_visit():
    """The "New visit" form."""
    form = Form(values={"time_zone": DEFAULT_TIME_ZONE, "status": "planned", "approval": "automatic",
                        "idempotency_key": forms.new_idempotency_key()})
    return _render(form, None)


@manage.post("/visits/new")
@role_required("coordinator")
def create_visit():
    """Publish a visit; shown again with the messages at their fields when the service refuses it."""
    return entity_forms.create("visits", "/visits", visit_body, _renumbered, _render,
                               lambda visit: _("Visit “%(theme)s” published.", theme=visit["theme"].get("en", "")),
                               "manage.visits")


@manage.get("/visits/<uuid:visit_id>")
@role_required("coordinator")
def edit_visit(visit_id):
    """A visit's edit form, with "Cancel visit"."""
    return entity_forms.edit("visits", f"/visits/{visit_id}", values_of, _render)


@manage.post("/visits/<uuid:visit_id>")
@role_required("coordinator")
def save_visit(visit_id):
    """Replace a visit (If-Match: the version the form showed; seat changes since do not make it stale)."""
    return entity_forms.save("visits", f"/visits/{visit_id}", visit_body, _renumbered, _render,
                             lambda values: _("Visit saved."), "manage.visits")


@manage.post("/visits/<uuid:visit_id>/cancel")
@role_required("coordinator")
def cancel_visit(visit_id):
    """Cancel a visit: it stays published as cancelled, and its requests are declined."""
    return entity_forms.withdraw("visits", f"/visits/{visit_id}", values_of, _render,
                                 lambda: _("Visit cancelled."), "manage.visits")
