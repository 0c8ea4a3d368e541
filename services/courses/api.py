"""The courses HTTP API: load with the schema, call one function, return."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.courses import model
from services.courses.schemas import CourseInSchema, CoursePageSchema, CourseQuerySchema, CourseSchema
from services.courses.store import CourseStore, criteria_from
from shared.auth import current_principal, require
from shared.clock import now_iso
from shared.entities import (
    IDEMPOTENCY_HEADER_DOC, IF_MATCH_HEADER_DOC, created_headers, etag, expected_version, idempotency,
)

blp = Blueprint("courses", __name__, url_prefix="/courses", description="A school's courses")
SECURITY = [{"bearerAuth": []}]
READERS = ("student", "faculty", "coordinator", "partner")


def _store() -> CourseStore:
    return CourseStore(current_app.extensions["db"])


def _school() -> str:
    return current_app.extensions["settings"].school


def _readable(course: dict | None) -> dict:
    principal = current_principal()
    if course is None or not model.can_read(course, principal.role, principal.school == _school()):
        raise _store().not_found()
    return course


def _visible_filter() -> dict:
    """What the caller may list, as a filter added to theirs."""
    principal = current_principal()
    if principal.school != _school():
        return {"status": "published", "visibility": "alliance"}
    if principal.role != "coordinator":
        return {"status": "published"}
    return {}


@blp.route("")
class Courses(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.arguments(CourseQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, CoursePageSchema())
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List courses, filtered and sorted, one page at a time."""
        criteria = criteria_from(query)
        for key, value in _visible_filter().items():
            if criteria.get(key, value) != value:
                return {"items": [], "next": None}
            criteria[key] = value
        return _store().page(criteria, query["sort"], query["limit"], query.get("cursor"))

    @require("coordinator")
    @blp.arguments(CourseInSchema())
    @blp.response(201, CourseSchema())
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data):
        """Create a course of this school."""
        key, fingerprint = idempotency(data)
        course, created = _store().insert(model.new_course(data, _school(), now_iso()), key, fingerprint)
        return course, 201, created_headers(course, f"/courses/{course['_id']}", created)


@blp.route("/<uuid:course_id>")
class Course(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.response(200, CourseSchema())
    @blp.doc(security=SECURITY)
    def get(self, course_id):
        """Read one course."""
        course = _readable(_store().get(str(course_id)))
        return course, 200, {"ETag": etag(course["version"])}

    @require("coordinator")
    @blp.arguments(CourseInSchema())
    @blp.response(200, CourseSchema())
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def put(self, data, course_id):
        """Replace a course; needs If-Match with its current ETag."""
        fields, unset = model.replacement(data, now_iso())
        course = _store().replace(str(course_id), expected_version("course"), fields, unset)
        if course is None:
            raise _store().stale(str(course_id))
        return course, 200, {"ETag": etag(course["version"])}

    @require("coordinator")
    @blp.response(200, CourseSchema())
    @blp.doc(security=SECURITY, parameters=[IF_MATCH_HEADER_DOC])
    def delete(self, course_id):
        """Withdraw a course: it stays readable with status withdrawn, and partners drop it."""
        course = _store().replace(str(course_id), expected_version("course"), model.withdrawn_fields(now_iso()))
        if course is None:
            raise _store().stale(str(course_id))
        return course, 200, {"ETag": etag(course["version"])}
