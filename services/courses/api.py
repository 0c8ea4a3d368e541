"""The courses HTTP API: load with the schema, call one function, return."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.courses import model
from services.courses.schemas import CourseInSchema, CoursePageSchema, CourseQuerySchema, CourseSchema
from services.courses.store import CourseStore, criteria_from
from shared.auth import require
from shared.clock import now_iso
from shared.resource import (
    IDEMPOTENCY_HEADER_DOC, READERS, created, db, empty_page, expected_version, linked, narrowed, reader, reads,
    replaced, school, with_etag, writes,
)

blp = Blueprint("courses", __name__, url_prefix="/courses", description="A school's courses")


def _store() -> CourseStore:
    return CourseStore(db())


def _readable(course: dict | None) -> dict:
    caller = reader()
    if course is None or not model.can_read(course, caller.role, caller.own_school):
        raise _store().not_found()
    return course


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
        return linked(_store().page(criteria, query["sort"], query["limit"], query.get("cursor")))

    @writes(blp, CourseSchema(), CourseInSchema(), status=201, header=IDEMPOTENCY_HEADER_DOC)
    def post(self, data):
        """Create a course of this school."""
        return created(_store(), data, lambda d: model.new_course(d, school(), now_iso()), "/courses")


@blp.route("/<uuid:course_id>")
class Course(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @reads(blp, CourseSchema())
    def get(self, course_id):
        """Read one course."""
        return with_etag(_readable(_store().get(str(course_id))))

    @writes(blp, CourseSchema(), CourseInSchema())
    def put(self, data, course_id):
        """Replace a course; needs If-Match with its current ETag."""
        fields, unset = model.replacement(data, now_iso())
        return replaced(_store(), str(course_id),
                        _store().replace(str(course_id), expected_version("course"), fields, unset))

    @writes(blp, CourseSchema())
    def delete(self, course_id):
        """Withdraw a course: it stays readable with status withdrawn, and partners drop it."""
        return replaced(_store(), str(course_id),
                        _store().replace(str(course_id), expected_version("course"), model.withdrawn_fields(now_iso())))
