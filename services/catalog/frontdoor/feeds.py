"""A person's private calendar feed on their own page: faculty on "My requests", coordinators on "Visits".

The feed itself is served by services/catalog/calendars.py (`/calendar/<secret>.ics`); its secret is
kept by shared/calendars.py. Here a person sees the full URL of their own feed (never anyone
else's) and creates, replaces or turns it off with a POST form. The secret is only ever in the
page's body: the page's own URL does not carry it, so neither the access log nor a Referer does.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_babel import gettext as _

from services.catalog.frontdoor.exchange import exchange
from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.people import Person, current_person, role_required
from services.catalog.frontdoor import forms
from shared import calendars

ACTIONS = ("create", "rotate", "revoke")


def feed_person(person: Person) -> dict | None:
    """The person as shared/calendars.py keys feeds; None for a faculty account with no faculty profile."""
    if person.role == "faculty" and not person.faculty_id:
        return None
    return {"role": person.role, "school": person.school, "faculty_id": person.faculty_id, "subject": person.sub}


def feed_context(person: Person | None) -> dict:
    """What the "Calendar feed" section shows: `linked` (the account can have a feed) and `url` (or None)."""
    owner = feed_person(person) if person else None
    if owner is None:
        return {"linked": False, "url": None}
    secret = calendars.current_feed(current_app.extensions["db"], owner)
    return {"linked": True, "url": feed_url(secret) if secret else None}


def feed_url(secret: str) -> str:
    settings = current_app.extensions["settings"]
    return settings.school_url(settings.school, "catalog").rstrip("/") + calendars.feed_path(secret)


def _change(page: str):
    action = forms.posted().get("action")
    person = current_person()
    owner = feed_person(person)
    if owner is None or action not in ACTIONS:
        flash(_("Nothing was changed: your account is not linked to a faculty profile of the school.")
              if owner is None else _("Nothing was changed."))
        return redirect(url_for(page, _anchor="calendar-feed"), code=303)
    db = current_app.extensions["db"]
    if action == "create":
        calendars.feed_secret(db, owner)
        flash(_("Your calendar link is ready: add it to your calendar application."))
    elif action == "rotate":
        calendars.rotate_feed(db, owner)
        flash(_("Your calendar link was replaced: the old link no longer works."))
    else:
        calendars.revoke_feed(db, owner)
        flash(_("Your calendar link was turned off."))
    return redirect(url_for(page, _anchor="calendar-feed"), code=303)


@exchange.post("/exchange/requests/calendar-feed")
@role_required("faculty")
def faculty_feed():
    """"Get a calendar link", "Replace the link", "Turn off the link": the feed of this person's approved slots."""
    return _change("exchange.requests")


@manage.post("/visits/calendar-feed")
@role_required("coordinator")
def coordinator_feed():
    """The same for a coordinator: the feed of the school's visits."""
    return _change("manage.visits")


def _calendar_feed() -> dict:
    return feed_context(current_person())


@exchange.app_context_processor
def _feed_helpers() -> dict:
    return {"calendar_feed": _calendar_feed}
