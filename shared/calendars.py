"""iCalendar (RFC 5545) with `icalendar`: invitations for approved slots, per-visit files and personal feeds.

An event is described by a plain dict (`EventSpec`, below) so that a notification can
store it and build the invitation when it is sent. Times are written in the visit's
time zone (its IANA name, with the VTIMEZONE the calendar needs), never as floating
local times.

Personal feeds: a person's feed is reached by a secret URL (`/calendar/<secret>.ics`),
one per person, kept in the `calendar_feeds` collection of the catalog's database.
`current_feed` gives the current secret or None, `feed_secret` the current secret (creating one), `rotate_feed` replaces it (the
old URL answers 404 from then on) and `revoke_feed` removes it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vText
from pymongo import ASCENDING
from pymongo.database import Database

from shared.clock import now_iso

PRODID = "-//alliance-catalog//visits//EN"
FEEDS = "calendar_feeds"
REQUEST, CANCEL, PUBLISH = "REQUEST", "CANCEL", "PUBLISH"

# EventSpec keys: uid, sequence, summary, starts_at, ends_at (ISO with offsets), time_zone (IANA name),
# location, description, organizer (address or None), organizer_name, attendee (address or None),
# status (CONFIRMED, TENTATIVE or CANCELLED), url


def request_uid(request_id: str, requester_school: str) -> str:
    """The stable UID of the invitation for one slot request: the same for its updates and its cancellation."""
    return f"slot-request-{request_id}@{requester_school}.alliance-catalog"


def slot_uid(visit_id: str, slot_id: str, host_school: str) -> str:
    return f"visit-{visit_id}-slot-{slot_id}@{host_school}.alliance-catalog"


def zone(name: str | None):
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: str, time_zone: str | None) -> datetime:
    """An ISO date-time with offset, as the same instant in `time_zone`."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zone(time_zone))


def event(spec: dict) -> Event:
    ev = Event()
    ev.add("uid", spec["uid"])
    ev.add("sequence", int(spec.get("sequence") or 0))
    ev.add("dtstamp", datetime.now(timezone.utc))
    ev.add("dtstart", local_time(spec["starts_at"], spec.get("time_zone")))
    ev.add("dtend", local_time(spec["ends_at"], spec.get("time_zone")))
    ev.add("summary", spec.get("summary") or "")
    if spec.get("location"):
        ev.add("location", spec["location"])
    if spec.get("description"):
        ev.add("description", spec["description"])
    if spec.get("url"):
        ev.add("url", spec["url"])
    ev.add("status", spec.get("status") or "CONFIRMED")
    if spec.get("organizer"):
        organizer = vCalAddress(f"mailto:{spec['organizer']}")
        if spec.get("organizer_name"):
            organizer.params["cn"] = vText(spec["organizer_name"])
        ev.add("organizer", organizer)
    if spec.get("attendee"):
        attendee = vCalAddress(f"mailto:{spec['attendee']}")
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("ACCEPTED" if spec.get("status") != "CANCELLED" else "DECLINED")
        ev.add("attendee", attendee)
    return ev


def calendar(specs: list[dict], method: str | None = None, name: str | None = None) -> bytes:
    """A VCALENDAR of these events, with the VTIMEZONE of every zone they use."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    for spec in specs:
        cal.add_component(event(spec))
    cal.add_missing_timezones()
    return cal.to_ical()


def invitation(spec: dict, method: str) -> bytes:
    """One event as an iTIP message: REQUEST (new or updated) or CANCEL (the same UID, a higher SEQUENCE)."""
    if method == CANCEL:
        spec = {**spec, "status": "CANCELLED"}
    return calendar([spec], method=method)


# personal feeds

def ensure_feed_indexes(db: Database) -> None:
    db[FEEDS].create_index([("secret", ASCENDING)], unique=True)


def person_key(person: dict) -> str:
    """One feed per person: a faculty member by faculty id, anyone else by role and subject."""
    if person.get("role") == "faculty":
        return f"faculty:{person['faculty_id']}"
    return f"{person['role']}:{person['subject']}"


def current_feed(db: Database, person: dict) -> str | None:
    """The person's current feed secret, or None when they have none (never created, or revoked)."""
    found = db[FEEDS].find_one({"_id": person_key(person)})
    return None if found is None else found["secret"]


def feed_secret(db: Database, person: dict) -> str:
    """The person's current feed secret, created on first use."""
    return current_feed(db, person) or rotate_feed(db, person)


def rotate_feed(db: Database, person: dict) -> str:
    """A new secret for the person's feed; the previous URL stops working at once."""
    secret = secrets.token_urlsafe(32)
    fields = {"secret": secret, "role": person["role"], "school": person["school"],
              "faculty_id": person.get("faculty_id"), "subject": person.get("subject"), "rotated_at": now_iso()}
    db[FEEDS].update_one({"_id": person_key(person)}, {"$set": fields}, upsert=True)
    return secret


def revoke_feed(db: Database, person: dict) -> None:
    """No feed for the person any more: their URL answers 404 until they create a new one."""
    db[FEEDS].delete_one({"_id": person_key(person)})


def feed_path(secret: str) -> str:
    """The path of a feed at the school's front door (the catalog web): `/calendar/<secret>.ics`."""
    return f"/calendar/{secret}.ics"


def feed_owner(db: Database, secret: str) -> dict | None:
    """Whose feed this secret opens, or None (unknown, rotated or revoked)."""
    if not secret or len(secret) > 100:
        return None
    return db[FEEDS].find_one({"secret": secret})
