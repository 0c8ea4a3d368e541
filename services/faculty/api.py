"""The faculty HTTP API: load with the schema, call one function, return.

Contact details and private notes are shown to the school's coordinators only
(see `model.view_for`); every other reader gets the public fields.
"""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.faculty import model
from services.faculty.schemas import FacultyInSchema, FacultyPageSchema, FacultyQuerySchema, FacultySchema
from services.faculty.store import FacultyStore, criteria_from
from shared.auth import current_principal, require
from shared.clock import now_iso
from shared.entities import (
    IDEMPOTENCY_HEADER_DOC, IF_MATCH_HEADER_DOC, created_headers, etag, expected_version, idempotency,
)
from shared.errors import Problem

blp = Blueprint("faculty", __name__, url_prefix="/faculty", description="A school's faculty profiles")
SECURITY = [{"bearerAuth": []}]
READERS = ("student", "faculty", "coordinator", "partner")
# writes apply only to a profile that is not withdrawn, checked in the same single-document write
CHANGEABLE = {"status": "active"}


def _store() -> FacultyStore:
    return FacultyStore(current_app.extensions["db"])


def _reader() -> tuple[str, bool]:
    """(role, own school) of the caller."""
    principal = current_principal()
    return principal.role, principal.school == current_app.extensions["settings"].school


def _shown(profile: dict | None) -> dict:
    """The profile as the caller may see it; 404 when they may not see it at all."""
    role, own_school = _reader()
    if profile is None or not model.can_read(profile, role, own_school):
        raise _store().not_found()
    return model.view_for(profile, role, own_school)


def _refusal(faculty_id: str) -> Problem:
    """Why a conditional write did not apply: 404, 409 for a withdrawn profile, or 412."""
    current = _store().get(faculty_id)
    if current is not None:
        model.ensure_changeable(current)
    return _store().stale(faculty_id)


def _written(profile: dict | None, faculty_id: str):
    if profile is None:
        raise _refusal(faculty_id)
    return profile, 200, {"ETag": etag(profile["version"])}


@blp.route("")
class FacultyList(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.arguments(FacultyQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, FacultyPageSchema())
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List faculty profiles, filtered and sorted, one page at a time."""
        role, own_school = _reader()
        criteria = criteria_from(query)
        for key, value in model.reader_filter(role, own_school).items():
            if criteria.get(key, value) != value:
                return {"items": [], "next": None}
            criteria[key] = value
        page = _store().page(criteria, query["sort"], query["limit"], query.get("cursor"))
        page["items"] = [model.view_for(doc, role, own_school) for doc in page["items"]]
        return page

    @require("coordinator")
    @blp.arguments(FacultyInSchema())
    @blp.response(201, FacultySchema())
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data):
        """Create a faculty profile of this school."""
        key, fingerprint = idempotency(data)
        school = current_app.extensions["settings"].school
        profile, created = _store().insert(model.new_profile(data, school, now_iso()), key, fingerprint)
        return profile, 201, created_headers(profile, f"/faculty/{profile['_id']}", created)


@blp.route("/<uuid:faculty_id>")
class FacultyProfile(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.response(200, FacultySchema())
    @blp.doc(security=SECURITY)
    def get(self, faculty_id):
        """Read one faculty profile; contact details only for the school's coordinators."""
        profile = _shown(_store().get(str(faculty_id)))
        return profile, 200, {"ETag": etag(profile["version"])}

    @require("coordinator")
    @blp.arguments(FacultyInSchema())
    @blp.response(200, FacultySchema())
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def put(self, data, faculty_id):
        """Replace a faculty profile; needs If-Match with its current ETag."""
        version = expected_version("faculty profile")
        fields, unset = model.replacement(data, now_iso())
        return _written(_store().replace(str(faculty_id), version, fields, unset, where=CHANGEABLE), str(faculty_id))

    @require("coordinator")
    @blp.response(200, FacultySchema())
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def delete(self, faculty_id):
        """Withdraw a faculty profile: it stays readable to coordinators, and partners drop it."""
        version = expected_version("faculty profile")
        fields = model.withdrawn_fields(now_iso())
        return _written(_store().replace(str(faculty_id), version, fields, where=CHANGEABLE), str(faculty_id))
