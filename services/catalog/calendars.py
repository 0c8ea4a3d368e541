"""Calendars at a school's front door: a public `.ics` per visit, and each person's private feed.

- `GET /visits/<visit_id>.ics`: a visit this school may see, one event per slot, in the
  host's time zone (the alliance configuration's `time_zone` of the host school).
- `GET /calendar/<secret>.ics`: the feed of the person the secret belongs to
  (shared/calendars.py `feed_secret`, `rotate_feed`, `revoke_feed`): a faculty member's
  approved slots (the requests of their own school's visits service), a coordinator's
  school's visits. An unknown, rotated or revoked secret answers 404.

The faculty feed reads the school's own visits database (read only, the
`slot_requests` collection) beside the catalog's read model: both are the school's,
and a web process holds no key to call its visits API for a person.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, abort, current_app

from services.catalog.api import check_read_access
from services.catalog.query import visible_visit
from services.catalog.store import COLLECTIONS
from services.visits import model as visits_model
from services.visits.store import REQUESTS
from shared import calendars

calendar_pages = Blueprint("calendars", __name__)
ICS = "text/calendar; charset=utf-8"
SLOT_NAMES = {"guest_lecture": "Guest lecture", "co_teaching": "Co-teaching", "workshop": "Workshop",
              "seminar": "Seminar", "panel": "Panel", "site_visit": "Site visit", "mentoring": "Mentoring"}


def _text(value) -> str:
    if isinstance(value, dict):
        return value.get("en") or next(iter(value.values()), "")
    return value or ""


def _time_zone(visit: dict) -> str:
    settings = current_app.extensions["settings"]
    if visit.get("time_zone"):
        return visit["time_zone"]
    return next((s.time_zone for s in settings.schools if s.id == visit.get("school")), "UTC")


def _school(school_id: str):
    return next((s for s in current_app.extensions["settings"].schools if s.id == school_id), None)


def slot_event(visit: dict, slot: dict, uid: str | None = None, sequence: int | None = None) -> dict:
    """An event spec of one slot of a visit (shared/calendars.py)."""
    host = _school(visit["school"])
    host_name = _text(host.name) if host else visit["school"]
    kind = SLOT_NAMES.get(slot.get("kind"), slot.get("kind") or "")
    title = _text(slot.get("title")) or kind
    cancelled = visit.get("status") == "cancelled"
    return {"uid": uid or calendars.slot_uid(visit["_id"], slot["id"], visit["school"]),
            "sequence": visit.get("version", 0) if sequence is None else sequence,
            "summary": f"{title}: {_text(visit.get('theme'))}", "starts_at": slot["starts_at"],
            "ends_at": slot["ends_at"], "time_zone": _time_zone(visit), "location": _text(visit.get("place")),
            "description": host_name + (f" ({host.contact})" if host and host.contact else ""),
            "organizer": host.contact if host else None, "organizer_name": host_name,
            "status": "CANCELLED" if cancelled else "CONFIRMED"}


def _ics(body: bytes, filename: str) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = ICS
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@calendar_pages.get("/visits/<uuid:visit_id>.ics")
def visit_ics(visit_id):
    """One visit's slots as an iCalendar file."""
    check_read_access()
    settings = current_app.extensions["settings"]
    visit = visible_visit(current_app.extensions["db"], str(visit_id), settings.school)
    if visit is None:
        abort(404)
    specs = [slot_event(visit, slot) for slot in visit.get("slots", [])]
    return _ics(calendars.calendar(specs, method=calendars.PUBLISH, name=_text(visit.get("theme"))),
                f"visit-{visit_id}.ics")


@calendar_pages.get("/calendar/<secret>.ics")
def feed(secret):
    """A person's private calendar feed, reached by its secret URL."""
    db = current_app.extensions["db"]
    owner = calendars.feed_owner(db, secret)
    if owner is None:
        abort(404)
    settings = current_app.extensions["settings"]
    if owner["role"] == "faculty":
        specs, name = _faculty_events(db, settings, owner["faculty_id"]), "My exchange slots"
    else:
        specs, name = _school_events(db, settings.school), "Teaching-team visits"
    response = _ics(calendars.calendar(specs, method=calendars.PUBLISH, name=name), "calendar.ics")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _school_events(db, school: str) -> list[dict]:
    visits = db[COLLECTIONS["visit"]].find({"school": school, "visible": True})
    return [slot_event(visit, slot) for visit in visits for slot in visit.get("slots", [])]


def _faculty_events(db, settings, faculty_id: str) -> list[dict]:
    visits_db = db.client[replace(settings, service="visits").database_name]
    specs = []
    for request in visits_db[REQUESTS].find({"faculty_id": {"$in": [faculty_id]},
                                             "status": {"$in": list(visits_model.HOLDING)}}):
        visit = visible_visit(db, request["visit_id"], settings.school)
        slot = request.get("slot") or request.get("notified_slot")
        if visit is None or slot is None:
            continue
        # the same UID and sequence as the mailed invitation: a calendar that has both keeps one event
        specs.append(slot_event(visit, {**slot, "id": request["slot_id"]},
                                uid=calendars.request_uid(request["_id"], request["school"]),
                                sequence=request["version"]))
    return specs
