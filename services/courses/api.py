"""The courses HTTP API: load with the schema, call one function, return."""

from __future__ import annotations

import hashlib

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.courses import model
from services.courses.schemas import CourseInSchema, CoursePageSchema, CourseQuerySchema, CourseSchema
from services.courses.store import CourseStore, criteria_from, sort_value
from shared.auth import current_principal, require
from shared.clock import now_iso
from shared.errors import Problem
from shared.events import canonical_json
from shared.pagination import decode_cursor, encode_cursor, next_link

blp = Blueprint("courses", __name__, url_prefix="/courses", description="A school's courses")
SECURITY = [{"bearerAuth": []}]
READERS = ("student", "faculty", "coordinator", "partner")
MAX_IDEMPOTENCY_KEY = 200


def _store() -> CourseStore:
    return CourseStore(current_app.extensions["db"])


def _now() -> str:
    return now_iso()


def _school() -> str:
    return current_app.extensions["settings"].school


def _readable(course: dict | None) -> dict:
    principal = current_principal()
    if course is None or not model.can_read(course, principal.role, principal.school == _school()):
        raise Problem(404, "course-not-found", "No such course", "no course with this id is visible to you")
    return course


def _expected_version() -> int:
    """The version named by If-Match: 428 without one, 412 when it cannot be current."""
    if not request.headers.get("If-Match"):
        raise Problem(428, "precondition-required", "This update needs an If-Match header",
                      "send the ETag of the course you read: If-Match: \"<version>\"")
    tags = list(request.if_match.as_set())
    if len(tags) == 1 and tags[0].isdigit() and len(tags[0]) < 19:
        return int(tags[0])
    raise Problem(412, "precondition-failed", "The resource has changed since the given version",
                  "If-Match must hold one ETag of the form \"<version>\"")


def _stale(course_id: str) -> Problem:
    current = _store().get(course_id)
    if current is None:
        return Problem(404, "course-not-found", "No such course", "no course with this id is visible to you")
    problem = Problem(412, "precondition-failed", "The resource has changed since the given version",
                      f"the course is at version {current['version']}; read it again and retry")
    problem.headers["ETag"] = model.etag(current["version"])
    return problem


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

    @blp.arguments(CourseQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, CoursePageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query):
        """List courses, filtered and sorted, one page at a time."""
        criteria = criteria_from(query)
        for key, value in _visible_filter().items():
            if criteria.get(key, value) != value:
                return {"items": [], "next": None}
            criteria[key] = value
        after = decode_cursor(query["cursor"]) if "cursor" in query else None
        rows = _store().search(criteria, query["sort"], query["limit"] + 1, after)
        page = rows[: query["limit"]]
        more = len(rows) > query["limit"]
        next_url = next_link(encode_cursor(sort_value(page[-1], query["sort"]), page[-1]["_id"])) if more else None
        return {"items": page, "next": next_url}

    @require("coordinator")
    @blp.arguments(CourseInSchema)
    @blp.response(201, CourseSchema)
    @blp.doc(security=SECURITY, parameters=[{
        "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200},
        "description": "A retry with the same key and body returns the first result"}])
    def post(self, data):
        """Create a course of this school."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
            raise Problem(400, "invalid-idempotency-key", "The Idempotency-Key header is not valid",
                          f"use 1-{MAX_IDEMPOTENCY_KEY} printable characters, e.g. a UUID")
        fingerprint = hashlib.sha256(canonical_json(data)).hexdigest() if key else None
        doc = model.new_course(data, _school(), _now())
        course, created = _store().insert(doc, key, fingerprint)
        headers = {"ETag": model.etag(course["version"]), "Location": f"/courses/{course['_id']}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return course, 201, headers


@blp.route("/<uuid:course_id>")
class Course(MethodView):
    decorators = [require(*READERS, partner_schools=True)]

    @blp.response(200, CourseSchema)
    @blp.doc(security=SECURITY)
    def get(self, course_id):
        """Read one course."""
        course = _readable(_store().get(str(course_id)))
        return course, 200, {"ETag": model.etag(course["version"])}

    @require("coordinator")
    @blp.arguments(CourseInSchema)
    @blp.response(200, CourseSchema)
    @blp.doc(security=SECURITY, parameters=[{"in": "header", "name": "If-Match", "required": True,
                                             "schema": {"type": "string"}, "description": "The course's ETag"}])
    def put(self, data, course_id):
        """Replace a course; needs If-Match with its current ETag."""
        expected = _expected_version()
        fields, unset = model.replacement(data, _now())
        course = _store().replace(str(course_id), expected, fields, unset)
        if course is None:
            raise _stale(str(course_id))
        return course, 200, {"ETag": model.etag(course["version"])}

    @require("coordinator")
    @blp.response(200, CourseSchema)
    @blp.doc(security=SECURITY, parameters=[{"in": "header", "name": "If-Match", "required": True,
                                             "schema": {"type": "string"}, "description": "The course's ETag"}])
    def delete(self, course_id):
        """Withdraw a course: it stays readable with status withdrawn, and partners drop it."""
        expected = _expected_version()
        course = _store().replace(str(course_id), expected, model.withdrawn_fields(_now()), [])
        if course is None:
            raise _stale(str(course_id))
        return course, 200, {"ETag": model.etag(course["version"])}
