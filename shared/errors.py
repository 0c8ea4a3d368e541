"""RFC 9457 problem details: the one shape of every error a client sees.

Each problem has a stable `type` (a URN listed in docs/errors.md), a `title`
that does not change between occurrences, a `status`, and a `detail` for this
occurrence. Validation problems add `errors`, a list of JSON pointers into the
request with what is wrong there. No stack trace ever reaches a response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, json, request
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:alliance-catalog:problem:"

@dataclass(frozen=True)
class ProblemType:
    """What a client sees of one kind of error: its HTTP status and its fixed title."""

    status: int
    title: str


# the entities of the write services: each has a "<entity>-not-found" and a "<entity>-conflict" type
ENTITIES = ("course", "faculty", "visit", "slot-request", "slot-decision", "place-request", "place-decision")

# every problem type a client may see, by slug (the type is TYPE_PREFIX + slug). Models, stores and
# workflows raise DomainError(slug, detail) and never name a status; this table is the one place that
# maps a slug to its status and title, and docs/errors.md is checked against it.
PROBLEM_TYPES: dict[str, ProblemType] = {
    # any endpoint
    "bad-request": ProblemType(400, "The request is malformed"),
    "unauthenticated": ProblemType(401, "A valid bearer token is required"),
    "forbidden": ProblemType(403, "The token does not allow this"),
    "not-found": ProblemType(404, "No such resource"),
    "method-not-allowed": ProblemType(405, "This method is not allowed on this resource"),
    "not-acceptable": ProblemType(406, "No acceptable representation"),
    "conflict": ProblemType(409, "The request conflicts with the current state"),
    "precondition-failed": ProblemType(412, "The resource has changed since the given version"),
    "payload-too-large": ProblemType(413, "The request body is too large"),
    "unsupported-media-type": ProblemType(415, "The request body must be application/json"),
    "validation-failed": ProblemType(422, "The request does not validate"),
    "precondition-required": ProblemType(428, "This update needs an If-Match header"),
    "too-many-requests": ProblemType(429, "Too many requests"),
    "internal-error": ProblemType(500, "Internal error"),
    "unavailable": ProblemType(503, "The service is temporarily unavailable"),
    "database-unavailable": ProblemType(503, "The database is unreachable; retry shortly"),
    # writes of any entity
    **{f"{entity}-not-found": ProblemType(404, f"No such {entity}") for entity in ENTITIES},
    **{f"{entity}-conflict": ProblemType(409, f"This {entity} conflicts with an existing one") for entity in ENTITIES},
    "idempotency-key-reused": ProblemType(422, "This Idempotency-Key was used with a different request"),
    "invalid-idempotency-key": ProblemType(400, "The Idempotency-Key header is not valid"),
    "invalid-cursor": ProblemType(400, "The page cursor is not valid"),
    "invalid-status": ProblemType(422, "An entity cannot be created in a final status"),
    # courses
    "course-code-taken": ProblemType(409, "A course with this code exists in this school"),
    # faculty
    "faculty-withdrawn": ProblemType(409, "This faculty profile is withdrawn"),
    # visits and exchange slots
    "visit-cancelled": ProblemType(409, "A cancelled visit cannot be changed"),
    "not-withdrawable": ProblemType(409, "This request cannot be withdrawn"),
    "not-awaiting-reconfirmation": ProblemType(409, "This request does not await re-confirmation"),
    "decision-not-possible": ProblemType(409, "This decision is not possible now"),
    # students' course-place requests
    "already-requested": ProblemType(409, "You hold a request for this offering already"),
    "not-awaiting-endorsement": ProblemType(409, "This request does not await endorsement"),
    "busy": ProblemType(503, "Too many concurrent changes; retry shortly"),
}
# the slug of each status that werkzeug or flask-smorest may raise by itself
_HTTP_SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 412: "precondition-failed",
               413: "payload-too-large", 415: "unsupported-media-type", 422: "validation-failed",
               428: "precondition-required", 429: "too-many-requests", 500: "internal-error", 503: "unavailable"}
# a status none of the above names: `http-error` with the framework's own title
FALLBACK = "http-error"


class DomainError(Exception):
    """An outcome a client can act on, raised anywhere (models, stores, workflows, the edge).

    `kind` is a slug of PROBLEM_TYPES; the HTTP edge renders it as problem+json with that
    type's status and title. `detail` says what happened this time; `extra` adds fields to the
    body (e.g. `reason`, `errors`); `current_version` is the entity's version after a stale
    write, which the edge sends as the ETag. `headers` is for the edge's own problems only.
    """

    def __init__(self, kind: str, detail: str | None = None, current_version: int | None = None, **extra):
        if kind not in PROBLEM_TYPES:
            raise ValueError(f"unregistered problem type {kind!r}: add it to PROBLEM_TYPES and docs/errors.md")
        super().__init__(detail or PROBLEM_TYPES[kind].title)
        self.kind = kind
        self.detail = detail
        self.current_version = current_version
        self.extra = extra
        self.headers: dict[str, str] = {}

    @property
    def slug(self) -> str:
        return self.kind

    @property
    def status(self) -> int:
        return PROBLEM_TYPES[self.kind].status

    @property
    def title(self) -> str:
        return PROBLEM_TYPES[self.kind].title


def problem_body(status: int, slug: str, title: str, detail: str | None = None, **extra) -> dict:
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    try:
        body["instance"] = request.path
    except RuntimeError:  # outside a request
        pass
    body.update(extra)
    return body


def problem_response(kind: str, detail: str | None = None, headers=None, **extra):
    """The problem+json response of a registered problem type."""
    known = PROBLEM_TYPES[kind]
    return _response(known.status, kind, known.title, detail, headers, extra)


def _response(status: int, slug: str, title: str, detail: str | None, headers, extra: dict):
    body = problem_body(status, slug, title, detail, **extra)
    response = Flask.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def pointer_errors(messages, prefix: str = "") -> list[dict]:
    """Flatten marshmallow's nested messages into [{"pointer": "/title/en", "detail": ...}]."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            part = prefix if key == "_schema" else f"{prefix}/{str(key).replace('~', '~0').replace('/', '~1')}"
            out.extend(pointer_errors(value, part))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out.extend({"pointer": prefix or "/", "detail": m} for m in messages)
        else:
            for m in messages:
                out.extend(pointer_errors(m, prefix))
    else:
        out.append({"pointer": prefix or "/", "detail": str(messages)})
    return out


def _validation_errors(exc: HTTPException) -> list[dict]:
    """webargs puts the messages per location: {"json": {...}, "query": {...}}."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or {}
    errors = []
    for location, fields in messages.items():
        for item in pointer_errors(fields):
            errors.append({"in": location, **item})
    return errors


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    slug = _HTTP_SLUGS.get(status, FALLBACK)
    extra = {}
    detail = None
    if status == 422:
        extra["errors"] = _validation_errors(exc)
        detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in extra["errors"][:5]) or None
    elif status in (404, 405, 413, 415):
        detail = exc.description
    elif getattr(exc, "data", None) and exc.data.get("message"):
        detail = exc.data["message"]
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if slug == FALLBACK:
        return _response(status, FALLBACK, exc.name, detail, headers, extra)
    return problem_response(slug, detail, headers=headers, **extra)


def handle_domain_error(exc: DomainError):
    headers = dict(exc.headers)
    if exc.current_version is not None:
        headers["ETag"] = f'"{exc.current_version}"'
    return problem_response(exc.kind, exc.detail, headers=headers, **exc.extra)


def handle_database_down(exc: PyMongoError):
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return problem_response("database-unavailable", headers={"Retry-After": "2"})


def handle_unexpected(exc: Exception):
    # the trace goes to the log, never to the client
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response("internal-error")


def init_app(app: Flask) -> None:
    """Render every error of the app as problem+json (call after Api.init_app)."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ConnectionFailure, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
