"""Students' requests for places in partners' course offerings: the saga of shared/saga.py, for offerings.

Requester side (the student's school): a request is stored as
`pending-endorsement`; only once the school's coordinator endorses it is it
published on `<school>.place-requests.v1` (with the student's name, programme
and statement; their email, student number and id stay here). Decisions come
from the hosts' `<host>.place-decisions.v1` topics; the host's `pending`
(its coordinator reviews) shows here as `endorsed`.

Host side: an offering's `places` are its seats (one seat document per
offering, taken by a conditional write: never oversold); first come first
served among endorsed requests, or each reviewed by the host's coordinator
(`approval: review`); beyond the places a waitlist, promoted in order.
"""

from __future__ import annotations

from pymongo.database import Database

from services.courses import model
from services.courses.schemas import PlaceDecisionEventSchema, PlaceRequestEventSchema
from services.courses.store import CourseStore, PlaceDecisionStore, PlaceRequestStore, PlaceSeatStore, live_key
from shared import saga
from shared.clock import now_iso, today_iso, touched
from shared.errors import DomainError
from shared.notifications import marker as notify_marker
from shared.saga import awaiting_host


def course_snapshot(course: dict | None) -> dict | None:
    """What a student's page shows of the course, carried by the decision (no call to the host needed)."""
    if course is None:
        return None
    return {"title": course.get("title") or {}, "code": course.get("code"), "credits": course.get("credits")}


def offering_snapshot(offering: dict | None) -> dict | None:
    if offering is None:
        return None
    return {"term": offering["term"], "starts_on": offering.get("starts_on"), "ends_on": offering.get("ends_on"),
            "approval": model.approval_of(offering)}


class PlaceHost(saga.Host):
    """The host school's side: decisions on partners' students' requests for its offerings' places."""

    machine = model.DECISIONS
    identity = (("requester_school", "school"), ("course_id", "course_id"), ("term", "term"))
    full = ("full", "the offering has no free place")
    affected_by_change = model.AFFECTED_BY_COURSE_CHANGE
    request_event = PlaceRequestEventSchema()

    def __init__(self, db: Database, school: str, clock=now_iso, today=None):
        super().__init__(school, clock)
        self.owners = CourseStore(db)
        self.decisions = PlaceDecisionStore(db)
        self.seats = PlaceSeatStore(db)
        # the host's date, to which "before the offering starts" and the application window refer
        self.today = today or (lambda: today_iso(self.clock()))

    def received(self, request: dict, version: int, now: str) -> dict:
        # who asks and why, for the coordinator who reviews; never published back
        return {"course_id": request["course_id"], "term": request["term"], "name": request.get("name"),
                "programme": request.get("programme"), "statement": request.get("statement") or "",
                "course": None, "offering": None}

    def refusal(self, ctx: dict | None, decision: dict) -> str | None:
        return model.refusal(ctx, decision["term"], decision["requester_school"], self.today())

    def capacity(self, ctx: dict | None, group: tuple[str, str]) -> int | None:
        return model.capacity(ctx, group[1])

    def approval(self, ctx: dict | None, group: tuple[str, str]) -> str:
        return model.approval_of(model.find_offering(ctx, group[1]))

    def places_left(self, ctx: dict | None, group: tuple[str, str], taken: int | None = None) -> int | None:
        offering = model.find_offering(ctx, group[1])
        if offering is None:
            return None
        seats = self.seats.count(*group) if taken is None else taken
        return model.places_left(offering, seats, ctx.get("status") == "withdrawn")

    def snapshot(self, decision: dict, ctx: dict | None) -> dict:
        offering = model.find_offering(ctx, decision["term"])
        if offering is None:
            return {}
        return {"course": course_snapshot(ctx), "offering": offering_snapshot(offering)}

    def change_of(self, owner: dict, decision: dict) -> tuple[str, str, str | None] | None:
        if model.course_change(owner, decision["term"]) is None:
            return None
        return model.OFFERING_GONE, model.DECLINED, model.OFFERING_REMOVED

    def parts(self, owner: dict) -> list[tuple[str, int]]:
        return [(o["term"], o["places"]) for o in owner.get("offerings") or []
                if model.capacity(owner, o["term"]) is not None]


class PlaceRequester(saga.Requester):
    """The student's school's side: its students' requests, its coordinator's endorsement, the hosts' decisions."""

    machine = model.REQUESTS
    decision_event = PlaceDecisionEventSchema()

    def __init__(self, db: Database, school: str, clock=now_iso):
        super().__init__(school, clock)
        self.requests = PlaceRequestStore(db)

    def new_request(self, data: dict, request_id: str, student_id: str, profile: dict) -> dict:
        """A student's request, pending their school's endorsement; who they are comes from their token."""
        return {**self.base_request(request_id, self.clock()), **data, "student_id": student_id,
                **{k: profile.get(k) for k in ("name", "email", "student_number", "programme")},
                "status": model.PENDING_ENDORSEMENT, "declined_by": None, "course": None, "offering": None,
                "endorsed_at": None, "awaiting_host": False,
                "live_key": live_key(student_id, data["host_school"], data["course_id"], data["term"]),
                # the school's coordinators are told that it awaits their endorsement (services/courses/notify.py)
                **notify_marker()}

    def endorse(self, request_id: str, expected_version: int, status: str, note: str | None) -> dict:
        """The school's coordinator endorses the request (it travels to the host) or declines it, with a note."""
        request = self.current(request_id, expected_version)
        intent = model.ENDORSE if status == model.ENDORSED else model.DECLINE
        if not self.machine.leads_to(request["status"], intent, status):
            raise DomainError("not-awaiting-endorsement", f"the request is {request['status']}")
        now = self.clock()
        if status == model.ENDORSED:
            # the endorser's words are their own field: `note` is the decliner's, which a host's decision rewrites
            fields = {"status": model.ENDORSED, "endorsed_at": now, "endorsement_note": note,
                      **awaiting_host(expected_version + 1)}
        else:
            fields = {"status": model.DECLINED, "declined_by": model.HOME, "reason": model.DECLINED_BY_HOME,
                      "note": note, "live_key": request_id}
        return self.replace(request_id, expected_version, {**fields, **touched(now), **notify_marker()})

    def travelled(self, request: dict) -> bool:
        # only an endorsed request went to the host
        return request["status"] != model.PENDING_ENDORSEMENT

    def withdrawal_fields(self, request: dict) -> dict:
        # the offering is free for a new request of the student
        return {"live_key": request["_id"]}

    def status_of(self, host_status: str) -> str:
        # the host's coordinator reviews: still endorsed, as far as the student is concerned
        return model.ENDORSED if host_status == model.PENDING else host_status

    # a withdrawn request is not "declined by the host" when the host's decline crosses the withdrawal
    status_fields = ("status", "declined_by", "live_key")

    def decision_fields(self, body: dict) -> dict:
        fields = {k: body[k] for k in ("course", "offering") if body.get(k) is not None}
        declined = body["status"] == model.DECLINED
        fields["declined_by"] = model.HOST if declined else None
        if declined:
            fields["live_key"] = body["id"]
        return fields
