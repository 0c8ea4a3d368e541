"""The coordinators' "Student applications": students' requests for places in courses, both ways.

Views on the `manage` blueprint (under /manage). Two sections: this school's
students' requests for partners' courses, each pending one with "Endorse" and
"Decline" (with a required reason, which the student reads); and partners'
students' requests for this school's courses, per offering with its places
left, each waiting for review with "Approve" and "Decline" (with a reason), the
others listed with their status and waitlist position. The courses service
holds the rules (endorsement, places, waitlist) and decides; this page asks it,
as the coordinator.
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import gettext as _

from services.catalog.frontdoor.applications import application_rows
from services.catalog.frontdoor.incoming import REASON_MAX, posted_decision, send_decision
from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.catalog.store import COLLECTIONS

# a host's decisions under an offering, in this order; "pending" ones wait for the coordinator's review
HOST_ORDER = ("pending", "received", "approved", "waitlisted", "declined", "withdrawn")


def _offerings(decisions: list[dict]) -> list[dict]:
    """Partners' requests for this school's courses, by offering: its course, places left, and its requests
    (the waitlist in order)."""
    by_offering: dict[tuple, list[dict]] = {}
    for decision in decisions:
        by_offering.setdefault((decision["course_id"], decision["term"]), []).append(decision)
    ids = list({course_id for course_id, _term in by_offering})
    courses = {c["_id"]: c for c in current_app.extensions["db"][COLLECTIONS["course"]].find({"_id": {"$in": ids}})} \
        if ids else {}
    out = []
    for (course_id, term), items in sorted(by_offering.items()):
        items.sort(key=lambda d: (HOST_ORDER.index(d["status"]) if d["status"] in HOST_ORDER else len(HOST_ORDER),
                                  d.get("waitlist_position") or 0, d.get("queued_at") or 0))
        # the newest decision knows the offering's places left best
        latest = max(items, key=lambda d: d.get("updated_at") or "")
        course = courses.get(course_id) or next((d["course"] for d in items if d.get("course")), {})
        out.append({"course": course, "course_id": course_id, "term": term,
                    "places_left": latest.get("places_left"),
                    "pending": [d for d in items if d["status"] == "pending"],
                    "others": [d for d in items if d["status"] != "pending"]})
    # the offerings with requests waiting for review first
    return sorted(out, key=lambda o: not o["pending"])


def _applications_context(errors: dict | None = None, notice: str | None = None, reasons: dict | None = None) -> dict:
    client = for_person(current_person())
    problem = None
    requests: list[dict] = []
    decisions: list[dict] = []
    try:
        requests = application_rows(client.get_all("courses", "/place-requests", limit=100))
        decisions = client.get_all("courses", "/place-decisions", limit=100)
    except ServiceProblem as exc:
        problem = exc
    to_endorse = [r for r in requests if r["status"] == "pending-endorsement"]
    offerings = _offerings(decisions)
    return {"to_endorse": to_endorse, "sent": [r for r in requests if r["status"] != "pending-endorsement"],
            "offerings": offerings, "to_review": sum(len(o["pending"]) for o in offerings), "problem": problem,
            "errors": errors or {}, "notice": notice, "reasons": reasons or {}, "reason_max": REASON_MAX}


@manage.get("/applications")
@role_required("coordinator")
def applications():
    """Students' place requests: this school's to endorse, and partners' for this school's courses."""
    return render_template("frontdoor/manage_applications.html", **_applications_context())


@manage.post("/applications/<uuid:request_id>/endorsement")
@role_required("coordinator")
def endorse(request_id):
    """"Endorse" or "Decline" (with its reason) a student's request: PUT /place-requests/<id>/endorsement."""
    return _decide(str(request_id), f"/place-requests/{request_id}/endorsement",
                   {"endorse": "endorsed", "decline": "declined"})


@manage.post("/applications/decisions/<uuid:request_id>")
@role_required("coordinator")
def decide_place(request_id):
    """"Approve" or "Decline" (with its reason) a partner's student's request: PUT /place-decisions/<id>."""
    return _decide(str(request_id), f"/place-decisions/{request_id}", {"approve": "approved", "decline": "declined"})


def _decide(request_id: str, path: str, actions: dict[str, str]):
    decided, refused = send_decision("courses", path, request_id, posted_decision(actions), _again)
    return refused if refused is not None else _again({}, _notice(decided), 200)


def _notice(decided: dict) -> str:
    status = decided.get("status")
    if status == "endorsed":
        return _("Endorsed: the request goes to the host.")
    if status == "waitlisted":
        return _("Approved: the offering is full, so the request joined the waitlist (position %(num)d).",
                 num=decided.get("waitlist_position") or 0)
    if status == "approved":
        return _("Approved: the student has a place.")
    return _("Declined: the student reads your reason.")


def _again(errors: dict, notice: str | None = None, status: int = 422, reasons: dict | None = None):
    return render_template("frontdoor/manage_applications.html",
                           **_applications_context(errors, notice, reasons)), status
