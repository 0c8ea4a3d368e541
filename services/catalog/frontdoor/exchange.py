"""The faculty's pages: "Exchange visits", "My requests", "My profile"."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person

exchange = Blueprint("exchange", __name__)


def _not_built(title: str):
    return render_template("frontdoor/not_built.html", title=title)


@exchange.get("/exchange/visits")
@role_required("faculty")
def visits():
    """The partner visits this faculty member is invited to, with their slots (not built yet)."""
    return _not_built(_("Exchange visits"))


@exchange.get("/exchange/requests")
@role_required("faculty")
def requests():
    """This faculty member's slot requests and their status (not built yet)."""
    return _not_built(_("My requests"))


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
