"""The visits HTTP API: visits (host side), slot requests (requester side), decisions (host side)."""

from __future__ import annotations

import uuid

from flask import current_app
from flask import request as http_request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.visits import model
from services.visits.schemas import (
    DecisionInSchema, DecisionPageSchema, DecisionQuerySchema, HostDecisionSchema, SlotRequestInSchema,
    SlotRequestPageSchema, SlotRequestQuerySchema, SlotRequestSchema, VisitInSchema, VisitPageSchema,
    VisitQuerySchema, VisitSchema,
)
from services.visits.store import (
    RequestStore, SeatStore, VisitStore, decision_criteria, invited_filter, request_criteria,
    visit_criteria,
)
from services.visits.workflow import Host, Requester
from shared.auth import require
from shared.clock import now_iso, write_order
from shared.errors import DomainError
from shared.mail import pick_lang
from shared.resource import (
    IDEMPOTENCY_HEADER_DOC, READERS, created, db, empty_page, expected_version, linked, narrowed, reader, reads,
    replaced, school, with_etag, writes,
)

blp = Blueprint("visits", __name__, description="Teaching-team visits, slot requests and the host's decisions")


def _visits() -> VisitStore:
    return VisitStore(db())


def _invalid(pointer: str, detail: str) -> DomainError:
    return DomainError("validation-failed",
                       f"{pointer}: {detail}", errors=[{"in": "json", "pointer": pointer, "detail": detail}])


def _check_invited(data: dict) -> None:
    """Invited schools are partners of the alliance, or "all" alone."""
    invited = data["invited"]
    if model.ALL_PARTNERS in invited:
        if len(invited) > 1:
            raise _invalid("/invited", '"all" invites every partner and stands alone')
        return
    partners = set(current_app.extensions["settings"].school_ids) - {school()}
    for index, invitee in enumerate(invited):
        if invitee not in partners:
            raise _invalid(f"/invited/{index}", f"{invitee!r} is not a partner school of the alliance")


def _shown(visit: dict) -> dict:
    """The visit with each slot's places left, as its events carry it."""
    return model.with_places_left(visit, SeatStore(db()).taken(visit))


def _shown_if(visit: dict | None) -> dict | None:
    return None if visit is None else _shown(visit)


def _readable_visit(visit: dict | None) -> dict:
    caller = reader()
    if visit is None or not model.can_read(visit, caller.school, caller.own_school):
        raise _visits().not_found()
    return visit


@blp.route("/visits")
class Visits(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, VisitPageSchema, query=VisitQuerySchema)
    def get(self, query):
        """List this school's visits (a partner sees those it is invited to), one page at a time."""
        criteria = visit_criteria(query)
        caller = reader()
        if not caller.own_school:
            criteria.update(invited_filter(caller.school))
        page = linked(_visits().page(criteria, query["sort"], query["limit"], query.get("cursor")))
        taken = SeatStore(db()).taken_of(page["items"])
        page["items"] = [model.with_places_left(v, taken.get(v["_id"], {})) for v in page["items"]]
        return page

    @writes(blp, VisitSchema, VisitInSchema, status=201, header=IDEMPOTENCY_HEADER_DOC)
    def post(self, data):
        """Publish a teaching-team visit hosted by this school."""
        _check_invited(data)
        visit, status, headers = created(_visits(), data, lambda d: model.new_visit(d, school(), now_iso()),
                                         "/visits")
        return _shown(visit), status, headers


@blp.route("/visits/<uuid:visit_id>")
class Visit(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, VisitSchema)
    def get(self, visit_id):
        """Read one visit, each slot with its places left."""
        return with_etag(_shown(_readable_visit(_visits().get(str(visit_id)))))

    @writes(blp, VisitSchema, VisitInSchema)
    def put(self, data, visit_id):
        """Replace a visit; needs If-Match (seat changes since do not make it stale). Approvals on a changed slot
        then need re-confirmation."""
        _check_invited(data)
        version = expected_version("visit")
        current = _visits().get(str(visit_id))
        if current is not None and current.get("status") == "cancelled":
            raise DomainError("visit-cancelled", "publish a new visit instead")
        fields, unset = model.replacement(data, now_iso(), write_order())
        return replaced(_visits(), str(visit_id), _shown_if(_visits().edit(str(visit_id), version, fields, unset)))

    @writes(blp, VisitSchema)
    def delete(self, visit_id):
        """Cancel a visit: it stays published with status cancelled, and its requests are declined."""
        return replaced(_visits(), str(visit_id), _shown_if(_visits().edit(
            str(visit_id), expected_version("visit"), model.cancelled_fields(now_iso(), write_order()))))


# slot requests: the requester's side


def _requester() -> Requester:
    return Requester(db(), school())


def _requests() -> RequestStore:
    return RequestStore(db())


def _own_request(request: dict | None) -> dict:
    """A faculty member sees only their own requests; a coordinator all of the school's."""
    caller = reader()
    if request is None or (caller.role == "faculty" and request["faculty_id"] != caller.faculty_id):
        raise _requests().not_found()
    return request


@blp.route("/slot-requests")
class SlotRequests(MethodView):
    decorators = [require("faculty", "coordinator")]

    @reads(blp, SlotRequestPageSchema, query=SlotRequestQuerySchema)
    def get(self, query):
        """List this school's slot requests (a faculty member's own), newest first by default."""
        caller = reader()
        own = {"faculty_id": caller.faculty_id} if caller.role == "faculty" else {}
        criteria = narrowed(request_criteria(query), own)
        if criteria is None:
            return empty_page()
        return linked(_requests().page(criteria, query["sort"], query["limit"], query.get("cursor")))

    @writes(blp, SlotRequestSchema, SlotRequestInSchema, status=201, header=IDEMPOTENCY_HEADER_DOC, roles=None)
    def post(self, data):
        """Request a slot in a partner's visit for a faculty member of this school; the host decides."""
        caller = reader()
        if caller.role == "faculty" and data["faculty_id"] != caller.faculty_id:
            raise DomainError("forbidden", "a faculty member may only request slots for themselves")
        partners = set(current_app.extensions["settings"].school_ids) - {school()}
        if data["host_school"] not in partners:
            raise _invalid("/host_school", "must be a partner school of the alliance")
        # the requester's language, for the mails about this request (kept at this school only)
        lang = pick_lang(http_request.headers.get("Accept-Language"))
        return created(_requests(), data, lambda d: _requester().new_request({**d, "lang": lang}, str(uuid.uuid4())),
                       "/slot-requests")


@blp.route("/slot-requests/<uuid:request_id>")
class SlotRequest(MethodView):
    decorators = [require("faculty", "coordinator")]

    @reads(blp, SlotRequestSchema)
    def get(self, request_id):
        """Read one slot request, with the host's decision once it arrived."""
        return with_etag(_own_request(_requests().get(str(request_id))))

    @writes(blp, SlotRequestSchema, roles=None)
    def delete(self, request_id):
        """Withdraw a slot request; needs If-Match. An approved place goes to the host's waitlist."""
        _own_request(_requests().get(str(request_id)))
        return with_etag(_requester().withdraw(str(request_id), expected_version("slot request")))


@blp.route("/slot-requests/<uuid:request_id>/reconfirmation")
class Reconfirmation(MethodView):
    decorators = [require("faculty", "coordinator")]

    @writes(blp, SlotRequestSchema, roles=None)
    def post(self, request_id):
        """Accept the changed slot of an approval that awaits re-confirmation; needs If-Match."""
        _own_request(_requests().get(str(request_id)))
        return with_etag(_requester().reconfirm(str(request_id), expected_version("slot request")))


# decisions: the host's side


@blp.route("/slot-decisions")
class Decisions(MethodView):
    decorators = [require("coordinator")]

    @reads(blp, DecisionPageSchema, query=DecisionQuerySchema)
    def get(self, query):
        """List partners' requests for this school's visits with their decisions, oldest first."""
        return linked(Host(db(), school()).page(decision_criteria(query), query))


@blp.route("/slot-decisions/<uuid:request_id>")
class Decision(MethodView):
    decorators = [require("coordinator")]

    @reads(blp, HostDecisionSchema)
    def get(self, request_id):
        """Read the decision on one request."""
        return with_etag(Host(db(), school()).read(str(request_id)))

    @writes(blp, HostDecisionSchema, DecisionInSchema, roles=None)
    def put(self, data, request_id):
        """Approve or decline (with a note: the reason) a request; needs If-Match. Capacity and overlap rules hold."""
        return with_etag(Host(db(), school()).decide_by_hand(str(request_id), expected_version("decision"),
                                                             data["status"], data.get("note")))
