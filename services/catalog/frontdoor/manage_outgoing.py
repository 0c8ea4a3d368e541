"""The coordinators' "Outgoing requests": the school's faculty's requests for slots in partners' visits.

Each request shows what the host last sent with its decision (the visit, the
slot in the visit's time zone), its status in words (Pending, Approved,
Waitlisted with its position, Declined with the host's reason, Re-confirm
needed, Withdrawn) and when it last changed.
"""

from __future__ import annotations

from flask import render_template, request

from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.manage_visits import local, zone
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.visits.model import REQUEST_STATUSES


@manage.get("/requests/outgoing")
@role_required("coordinator")
def outgoing_requests():
    """The school's slot requests to partners' visits, newest first, with their status."""
    status = request.args.get("status") if request.args.get("status") in REQUEST_STATUSES else None
    client = for_person(current_person())
    problem = None
    items: list[dict] = []
    try:
        params = {"limit": 100, "sort": "-created_at", **({"status": status} if status else {})}
        items = client.get_all("visits", "/slot-requests", **params)
    except ServiceProblem as exc:
        problem = exc
    try:
        names = {p["id"]: p["name"] for p in client.get_all("faculty", "/faculty", limit=100, sort="name")}
    except ServiceProblem:
        names = {}

    def when(moment_text, visit):
        return local(moment_text or "", zone((visit or {}).get("time_zone") or "")).replace("T", " ")

    return render_template("frontdoor/manage_outgoing.html", requests=items, problem=problem, names=names,
                           statuses=REQUEST_STATUSES, status=status, when=when)
