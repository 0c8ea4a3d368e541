"""The faculty HTTP API: load with the schema, call one function, return.

Contact details and private notes are shown to the school's coordinators only
(see `model.view_for`); every other reader gets the public fields.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.faculty import model
from services.faculty.schemas import (
    FacultyInSchema, FacultyPageSchema, FacultyQuerySchema, FacultySchema, FacultySelfInSchema,
)
from services.faculty.store import FacultyStore, criteria_from
from shared.auth import require
from shared.clock import now_iso
from shared.errors import DomainError
from shared.resource import (
    IDEMPOTENCY_HEADER_DOC, READERS, created, db, empty_page, expected_version, linked, narrowed, reader, reads,
    school, with_etag, writes,
)

blp = Blueprint("faculty", __name__, url_prefix="/faculty", description="A school's faculty profiles")
# writes apply only to a profile that is not withdrawn, checked in the same single-document write
CHANGEABLE = {"status": "active"}


def _store() -> FacultyStore:
    return FacultyStore(db())


def _shown(profile: dict | None) -> dict:
    """The profile as the caller may see it; 404 when they may not see it at all."""
    caller = reader()
    if profile is None or not model.can_read(profile, caller.role, caller.own_school):
        raise _store().not_found()
    return model.view_for(profile, caller.role, caller.own_school)


def _refusal(faculty_id: str) -> DomainError:
    """Why a conditional write did not apply: 404, 409 for a withdrawn profile, or 412."""
    current = _store().get(faculty_id)
    if current is not None:
        model.ensure_changeable(current)
    return _store().stale(faculty_id)


def _written(profile: dict | None, faculty_id: str):
    if profile is None:
        raise _refusal(faculty_id)
    return with_etag(profile)


@blp.route("")
class FacultyList(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, FacultyPageSchema(), query=FacultyQuerySchema())
    def get(self, query):
        """List faculty profiles, filtered and sorted, one page at a time."""
        caller = reader()
        if "email" in query and not model.sees_private_fields(caller.role, caller.own_school):
            raise DomainError("forbidden", "only the school's coordinators may look a profile up by email")
        criteria = narrowed(criteria_from(query), model.reader_filter(caller.role, caller.own_school))
        if criteria is None:
            return empty_page()
        page = linked(_store().page(criteria, query["sort"], query["limit"], query.get("cursor")))
        page["items"] = [model.view_for(doc, caller.role, caller.own_school) for doc in page["items"]]
        return page

    @writes(blp, FacultySchema(), FacultyInSchema(), status=201, header=IDEMPOTENCY_HEADER_DOC)
    def post(self, data):
        """Create a faculty profile of this school."""
        return created(_store(), data, lambda d: model.new_profile(d, school(), now_iso()), "/faculty")


@blp.route("/<uuid:faculty_id>")
class FacultyProfile(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, FacultySchema())
    def get(self, faculty_id):
        """Read one faculty profile; contact details only for the school's coordinators."""
        return with_etag(_shown(_store().get(str(faculty_id))))

    @writes(blp, FacultySchema(), FacultyInSchema())
    def put(self, data, faculty_id):
        """Replace a faculty profile; needs If-Match with its current ETag."""
        version = expected_version("faculty profile")
        fields, unset = model.replacement(data, now_iso())
        return _written(_store().replace(str(faculty_id), version, fields, unset, where=CHANGEABLE), str(faculty_id))

    @writes(blp, FacultySchema(), FacultySelfInSchema(), roles=("faculty", "coordinator"))
    def patch(self, data, faculty_id):
        """Update the expertise, bio or availability of a profile: a faculty member their own; needs If-Match."""
        caller = reader()
        if not model.may_edit_self(caller.role, caller.own_school, caller.faculty_id, str(faculty_id)):
            raise DomainError("forbidden", "a faculty member may only change their own profile")
        version = expected_version("faculty profile")
        current = _store().get(str(faculty_id))
        if current is None:
            raise _store().not_found()
        fields = model.self_update(current, data, now_iso())
        written = _store().replace(str(faculty_id), version, fields, where=CHANGEABLE)
        if written is None:
            raise _refusal(str(faculty_id))
        return with_etag(model.view_for(written, caller.role, caller.own_school))

    @writes(blp, FacultySchema())
    def delete(self, faculty_id):
        """Withdraw a faculty profile: it stays readable to coordinators, and partners drop it."""
        version = expected_version("faculty profile")
        fields = model.withdrawn_fields(now_iso())
        return _written(_store().replace(str(faculty_id), version, fields, where=CHANGEABLE), str(faculty_id))
