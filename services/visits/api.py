"""The visits HTTP API: visits (host side), slot requests (requester side), decisions (host side)."""

from __future__ import annotations

import uuid

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.visits import model
from services.visits.schemas import (
    DecisionInSchema, DecisionPageSchema, DecisionQuerySchema, DecisionSchema, SlotRequestInSchema,
    SlotRequestPageSchema, SlotRequestQuerySchema, SlotRequestSchema, VisitInSchema, VisitPageSchema,
    VisitQuerySchema, VisitSchema,
)
from services.visits.store import (
    DecisionStore, RequestStore, SeatStore, VisitStore, decision_criteria, invited_filter, request_criteria,
    visit_criteria,
)
from services.visits.workflow import Host, Requester
from shared.auth import current_principal, require
from shared.clock import now_iso, write_order
from shared.entities import (
    IDEMPOTENCY_HEADER_DOC, IF_MATCH_HEADER_DOC, created_headers, etag, expected_version, idempotency,
)
from shared.errors import Problem

blp = Blueprint("visits", __name__, description="Teaching-team visits, slot requests and the host's decisions")
SECURITY = [{"bearerAuth": []}]
READERS = ("student", "faculty", "coordinator", "partner")


def _db():
    return current_app.extensions["db"]


def _school() -> str:
    return current_app.extensions["settings"].school


def _visits() -> VisitStore:
    return VisitStore(_db())


def _invalid(pointer: str, detail: str) -> Problem:
    return Problem(422, "validation-failed", "The request does not validate", f"{pointer}: {detail}",
                   errors=[{"in": "json", "pointer": pointer, "detail": detail}])


def _check_invited(data: dict) -> None:
    """Invited schools are partners of the alliance, or "all" alone."""
    invited = data["invited"]
    if model.ALL_PARTNERS in invited:
        if len(invited) > 1:
            raise _invalid("/invited", '"all" invites every partner and stands alone')
        return
    partners = set(current_app.extensions["settings"].school_ids) - {_school()}
    for index, school in enumerate(invited):
        if school not in partners:
            raise _invalid(f"/invited/{index}", f"{school!r} is not a partner school of the alliance")


def _shown(visit: dict) -> dict:
    """The visit with each slot's places left, as its events carry it."""
    return model.with_places_left(visit, SeatStore(_db()).taken(visit))


def _readable_visit(visit: dict | None) -> dict:
    principal = current_principal()
    if visit is None or not model.can_read(visit, principal.school, principal.school == _school()):
        raise _visits().not_found()
    return visit


@blp.route("/visits")
class Visits(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.arguments(VisitQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, VisitPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List this school's visits (a partner sees those it is invited to), one page at a time."""
        criteria = visit_criteria(query)
        principal = current_principal()
        if principal.school != _school():
            criteria.update(invited_filter(principal.school))
        page = _visits().page(criteria, query["sort"], query["limit"], query.get("cursor"))
        taken = SeatStore(_db()).taken_of(page["items"])
        page["items"] = [model.with_places_left(v, taken.get(v["_id"], {})) for v in page["items"]]
        return page

    @require("coordinator")
    @blp.arguments(VisitInSchema)
    @blp.response(201, VisitSchema)
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data):
        """Publish a teaching-team visit hosted by this school."""
        _check_invited(data)
        key, fingerprint = idempotency(data)
        visit, created = _visits().insert(model.new_visit(data, _school(), now_iso()), key, fingerprint)
        return _shown(visit), 201, created_headers(visit, f"/visits/{visit['_id']}", created)


@blp.route("/visits/<uuid:visit_id>")
class Visit(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.response(200, VisitSchema)
    @blp.doc(security=SECURITY)
    def get(self, visit_id):
        """Read one visit, each slot with its places left."""
        visit = _readable_visit(_visits().get(str(visit_id)))
        return _shown(visit), 200, {"ETag": etag(visit["version"])}

    @require("coordinator")
    @blp.arguments(VisitInSchema)
    @blp.response(200, VisitSchema)
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def put(self, data, visit_id):
        """Replace a visit; needs If-Match (seat changes since do not make it stale). Approvals on a changed slot
        then need re-confirmation."""
        _check_invited(data)
        version = expected_version("visit")
        current = _visits().get(str(visit_id))
        if current is not None and current.get("status") == "cancelled":
            raise Problem(409, "visit-cancelled", "A cancelled visit cannot be changed",
                          "publish a new visit instead")
        fields, unset = model.replacement(data, now_iso(), write_order())
        visit = _visits().edit(str(visit_id), version, fields, unset)
        if visit is None:
            raise _visits().stale(str(visit_id))
        return _shown(visit), 200, {"ETag": etag(visit["version"])}

    @require("coordinator")
    @blp.response(200, VisitSchema)
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def delete(self, visit_id):
        """Cancel a visit: it stays published with status cancelled, and its requests are declined."""
        visit = _visits().edit(str(visit_id), expected_version("visit"),
                               model.cancelled_fields(now_iso(), write_order()))
        if visit is None:
            raise _visits().stale(str(visit_id))
        return _shown(visit), 200, {"ETag": etag(visit["version"])}


# slot requests: the requester's side


def _requester() -> Requester:
    return Requester(_db(), _school())


def _own_request(request: dict | None) -> dict:
    """A faculty member sees only their own requests; a coordinator all of the school's."""
    principal = current_principal()
    if request is None or (principal.role == "faculty" and request["faculty_id"] != principal.faculty_id):
        raise RequestStore(_db()).not_found()
    return request


@blp.route("/slot-requests")
class SlotRequests(MethodView):
    decorators = [require("faculty", "coordinator")]

    @blp.arguments(SlotRequestQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, SlotRequestPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List this school's slot requests (a faculty member's own), newest first by default."""
        criteria = request_criteria(query)
        principal = current_principal()
        if principal.role == "faculty":
            if criteria.get("faculty_id", principal.faculty_id) != principal.faculty_id:
                return {"items": [], "next": None}
            criteria["faculty_id"] = principal.faculty_id
        return RequestStore(_db()).page(criteria, query["sort"], query["limit"], query.get("cursor"))

    @blp.arguments(SlotRequestInSchema)
    @blp.response(201, SlotRequestSchema)
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data):
        """Request a slot in a partner's visit for a faculty member of this school; the host decides."""
        principal = current_principal()
        if principal.role == "faculty" and data["faculty_id"] != principal.faculty_id:
            raise Problem(403, "forbidden", "The token does not allow this",
                          "a faculty member may only request slots for themselves")
        partners = set(current_app.extensions["settings"].school_ids) - {_school()}
        if data["host_school"] not in partners:
            raise _invalid("/host_school", "must be a partner school of the alliance")
        key, fingerprint = idempotency(data)
        request, created = RequestStore(_db()).insert(_requester().new_request(data, str(uuid.uuid4())),
                                                      key, fingerprint)
        return request, 201, created_headers(request, f"/slot-requests/{request['_id']}", created)


@blp.route("/slot-requests/<uuid:request_id>")
class SlotRequest(MethodView):
    decorators = [require("faculty", "coordinator")]

    @blp.response(200, SlotRequestSchema)
    @blp.doc(security=SECURITY)
    def get(self, request_id):
        """Read one slot request, with the host's decision once it arrived."""
        request = _own_request(RequestStore(_db()).get(str(request_id)))
        return request, 200, {"ETag": etag(request["version"])}

    @blp.response(200, SlotRequestSchema)
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def delete(self, request_id):
        """Withdraw a slot request; needs If-Match. An approved place goes to the host's waitlist."""
        _own_request(RequestStore(_db()).get(str(request_id)))
        request = _requester().withdraw(str(request_id), expected_version("slot request"))
        return request, 200, {"ETag": etag(request["version"])}


@blp.route("/slot-requests/<uuid:request_id>/reconfirmation")
class Reconfirmation(MethodView):
    decorators = [require("faculty", "coordinator")]

    @blp.response(200, SlotRequestSchema)
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def post(self, request_id):
        """Accept the changed slot of an approval that awaits re-confirmation; needs If-Match."""
        _own_request(RequestStore(_db()).get(str(request_id)))
        request = _requester().reconfirm(str(request_id), expected_version("slot request"))
        return request, 200, {"ETag": etag(request["version"])}


# decisions: the host's side


@blp.route("/slot-decisions")
class Decisions(MethodView):
    decorators = [require("coordinator")]

    @blp.arguments(DecisionQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, DecisionPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List the decisions on partners' requests for this school's visits, oldest request first."""
        return DecisionStore(_db()).page(decision_criteria(query), query["sort"], query["limit"],
                                         query.get("cursor"))


@blp.route("/slot-decisions/<uuid:request_id>")
class Decision(MethodView):
    decorators = [require("coordinator")]

    @blp.response(200, DecisionSchema)
    @blp.doc(security=SECURITY)
    def get(self, request_id):
        """Read the decision on one request."""
        decision = DecisionStore(_db()).get(str(request_id))
        if decision is None:
            raise DecisionStore(_db()).not_found()
        return decision, 200, {"ETag": etag(decision["version"])}

    @blp.arguments(DecisionInSchema)
    @blp.response(200, DecisionSchema)
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def put(self, data, request_id):
        """Approve or decline a request by hand; needs If-Match. Approving still respects capacity and overlap."""
        decision = Host(_db(), _school()).decide_by_hand(str(request_id), expected_version("decision"),
                                                         data["status"], data.get("note"))
        return decision, 200, {"ETag": etag(decision["version"])}
