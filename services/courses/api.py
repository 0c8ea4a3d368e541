"""The courses HTTP API: courses (each offering with its places left), students' place requests (the student's
school) and the host's decisions on them. Load with the schema, call one function, return."""

from __future__ import annotations

import logging
import uuid

import requests
from flask import current_app
from flask import request as http_request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.courses import model
from services.courses.places import PlaceHost, PlaceRequester
from services.courses.schemas import (
    CourseInSchema, CoursePageSchema, CourseQuerySchema, CourseSchema, DecisionInSchema, EndorsementInSchema,
    HostPlaceDecisionSchema, PlaceDecisionPageSchema, PlaceDecisionQuerySchema, PlaceRequestInSchema,
    PlaceRequestPageSchema, PlaceRequestQuerySchema, PlaceRequestSchema,
)
from services.courses.store import (
    CourseStore, PlaceRequestStore, PlaceSeatStore, criteria_from, place_decision_criteria, place_request_criteria,
)
from shared.auth import current_principal, require
from shared.clock import now_iso, today_iso, write_order
from shared.errors import DomainError
from shared.mail import pick_lang
from shared.resource import (
    IDEMPOTENCY_HEADER_DOC, READERS, created, db, empty_page, expected_version, linked, narrowed, reader, reads,
    replaced, school, with_etag, writes,
)

log = logging.getLogger(__name__)
# how long a request waits for the school's own catalog before the host is left to decide alone
CATALOG_TIMEOUT_SECONDS = 2.0

blp = Blueprint("courses", __name__, url_prefix="/courses", description="A school's courses")
places = Blueprint("places", __name__, description="Students' requests for places in partners' course offerings, "
                                                   "and the host's decisions on them")


def _store() -> CourseStore:
    return CourseStore(db())


def _readable(course: dict | None) -> dict:
    caller = reader()
    if course is None or not model.can_read(course, caller.role, caller.own_school):
        raise _store().not_found()
    return course


def _shown(course: dict | None) -> dict | None:
    """The course with each offering's places left, as its events carry it."""
    return None if course is None else model.with_places_left(course, PlaceSeatStore(db()).taken(course))


@blp.route("")
class Courses(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, CoursePageSchema(), query=CourseQuerySchema())
    def get(self, query):
        """List courses, filtered and sorted, one page at a time."""
        caller = reader()
        criteria = narrowed(criteria_from(query), model.reader_filter(caller.role, caller.own_school))
        if criteria is None:
            return empty_page()
        page = linked(_store().page(criteria, query["sort"], query["limit"], query.get("cursor")))
        taken = PlaceSeatStore(db()).taken_of(page["items"])
        page["items"] = [model.with_places_left(c, taken.get(c["_id"], {})) for c in page["items"]]
        return page

    @writes(blp, CourseSchema(), CourseInSchema(), status=201, header=IDEMPOTENCY_HEADER_DOC)
    def post(self, data):
        """Create a course of this school."""
        course, status, headers = created(_store(), data, lambda d: model.new_course(d, school(), now_iso()),
                                          "/courses")
        return _shown(course), status, headers


@blp.route("/<uuid:course_id>")
class Course(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, CourseSchema())
    def get(self, course_id):
        """Read one course, each offering with its places left."""
        return with_etag(_shown(_readable(_store().get(str(course_id)))))

    @writes(blp, CourseSchema(), CourseInSchema())
    def put(self, data, course_id):
        """Replace a course; needs If-Match with its ETag (seat changes since do not make it stale)."""
        fields, unset = model.replacement(data, now_iso(), write_order())
        return replaced(_store(), str(course_id),
                        _shown(_store().edit(str(course_id), expected_version("course"), fields, unset)))

    @writes(blp, CourseSchema())
    def delete(self, course_id):
        """Withdraw a course: it stays readable with status withdrawn, and partners drop it."""
        return replaced(_store(), str(course_id), _shown(_store().edit(
            str(course_id), expected_version("course"), model.withdrawn_fields(now_iso(), write_order()))))


# place requests: the student's school


def _requester() -> PlaceRequester:
    return PlaceRequester(db(), school())


def _requests() -> PlaceRequestStore:
    return PlaceRequestStore(db())


def _own_request(request: dict | None) -> dict:
    """A student sees only their own requests; a coordinator all of the school's."""
    caller = current_principal()
    if request is None or (caller.role == "student" and request["student_id"] != caller.subject):
        raise _requests().not_found()
    return request


def _invalid(pointer: str, detail: str) -> DomainError:
    return DomainError("validation-failed",
                       f"{pointer}: {detail}", errors=[{"in": "json", "pointer": pointer, "detail": detail}])


def _check_with_catalog(data: dict) -> None:
    """Refuse at the field a request the school's own catalog shows cannot be made (unknown course, no such
    offering, closed). The catalog is asked as the student (their token); when it cannot answer, the host
    decides alone (and declines what is not open, with the reason)."""
    url = current_app.extensions["settings"].school_of(school()).urls.get("catalog")
    if not url:
        return  # no catalog configured for this school (a service tested alone)
    try:
        answer = requests.get(f"{url}/courses/{data['course_id']}", timeout=CATALOG_TIMEOUT_SECONDS,
                              headers={"Authorization": http_request.headers.get("Authorization", "")})
    except requests.RequestException as exc:
        log.info("catalog not reachable to check a place request (%s); the host decides", exc.__class__.__name__)
        return
    if answer.status_code not in (200, 404):
        log.info("catalog answered %d to check a place request; the host decides", answer.status_code)
        return
    course = answer.json() if answer.status_code == 200 else None
    refused = model.catalog_refusal(course, data["host_school"], data["term"], today_iso())
    if refused:
        raise _invalid(f"/{refused[0]}", refused[1])


@places.route("/place-requests")
class PlaceRequests(MethodView):
    decorators = [require("student", "coordinator")]

    @reads(places, PlaceRequestPageSchema, query=PlaceRequestQuerySchema)
    def get(self, query):
        """List this school's students' place requests (a student's own), newest first by default."""
        caller = current_principal()
        own = {"student_id": caller.subject} if caller.role == "student" else {}
        criteria = narrowed(place_request_criteria(query), own)
        if criteria is None:
            return empty_page()
        return linked(_requests().page(criteria, query["sort"], query["limit"], query.get("cursor")))

    @writes(places, PlaceRequestSchema, PlaceRequestInSchema, status=201, header=IDEMPOTENCY_HEADER_DOC,
            roles=("student",))
    def post(self, data):
        """Ask for a place in a partner's course offering; the school's coordinator endorses it, then the host
        decides."""
        partners = set(current_app.extensions["settings"].school_ids) - {school()}
        if data["host_school"] not in partners:
            raise _invalid("/host_school", "must be a partner school of the alliance")
        caller = current_principal()
        # the student's language, for the mails about this request (kept at this school only)
        lang = pick_lang(http_request.headers.get("Accept-Language"))

        def build(d: dict) -> dict:
            _check_with_catalog(d)  # not for a retry of a request already made: created() replays it first
            return _requester().new_request({**d, "lang": lang}, str(uuid.uuid4()), caller.subject, caller.profile)

        return created(_requests(), data, build, "/place-requests")


@places.route("/place-requests/<uuid:request_id>")
class PlaceRequest(MethodView):
    decorators = [require("student", "coordinator")]

    @reads(places, PlaceRequestSchema)
    def get(self, request_id):
        """Read one place request, with the host's decision once it arrived."""
        return with_etag(_own_request(_requests().get(str(request_id))))

    @writes(places, PlaceRequestSchema, roles=("student",))
    def delete(self, request_id):
        """Withdraw a place request; needs If-Match. A place it held is freed and the host promotes its waitlist."""
        _own_request(_requests().get(str(request_id)))
        return with_etag(_requester().withdraw(str(request_id), expected_version("place request")))


@places.route("/place-requests/<uuid:request_id>/endorsement")
class Endorsement(MethodView):
    decorators = [require("coordinator")]

    @writes(places, PlaceRequestSchema, EndorsementInSchema, roles=None)
    def put(self, data, request_id):
        """Endorse a student's request (it goes to the host) or decline it with a note; needs If-Match."""
        return with_etag(_requester().endorse(str(request_id), expected_version("place request"), data["status"],
                                              data.get("note")))


# decisions: the host's side


@places.route("/place-decisions")
class PlaceDecisions(MethodView):
    decorators = [require("coordinator")]

    @reads(places, PlaceDecisionPageSchema, query=PlaceDecisionQuerySchema)
    def get(self, query):
        """List partners' students' endorsed requests for this school's offerings with their decisions, oldest
        first."""
        return linked(PlaceHost(db(), school()).page(place_decision_criteria(query), query))


@places.route("/place-decisions/<uuid:request_id>")
class PlaceDecision(MethodView):
    decorators = [require("coordinator")]

    @reads(places, HostPlaceDecisionSchema)
    def get(self, request_id):
        """Read the decision on one place request."""
        return with_etag(PlaceHost(db(), school()).read(str(request_id)))

    @writes(places, HostPlaceDecisionSchema, DecisionInSchema, roles=None)
    def put(self, data, request_id):
        """Approve or decline (with a note: the reason) a place request; needs If-Match. The places hold."""
        return with_etag(PlaceHost(db(), school()).decide_by_hand(str(request_id), expected_version("decision"),
                                                                  data["status"], data.get("note")))
