"""RFC 9457 problem details: the one shape of every error a client sees.

Each problem has a stable `type` (a URN listed in docs/errors.md), a `title`
that does not change between occurrences, a `status`, and a `detail` for this
occurrence. Validation problems add `errors`, a list of JSON pointers into the
request with what is wrong there. No stack trace ever reaches a response.
"""

from __future__ import annotations

import logging

from flask import Flask, json, request
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:alliance-catalog:problem:"

# the title and slug of each status that werkzeug or flask-smorest may raise by itself
_HTTP_SLUGS = {
    400: ("bad-request", "The request is malformed"),
    401: ("unauthenticated", "A valid bearer token is required"),
    403: ("forbidden", "The token does not allow this"),
    404: ("not-found", "No such resource"),
    405: ("method-not-allowed", "This method is not allowed on this resource"),
    406: ("not-acceptable", "No acceptable representation"),
    409: ("conflict", "The request conflicts with the current state"),
    412: ("precondition-failed", "The resource has changed since the given version"),
    413: ("payload-too-large", "The request body is too large"),
    415: ("unsupported-media-type", "The request body must be application/json"),
    422: ("validation-failed", "The request does not validate"),
    428: ("precondition-required", "This update needs an If-Match header"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "The service is temporarily unavailable"),
}


class Problem(Exception):
    """An error a client can act on; raised anywhere, rendered as problem+json."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None, **extra):
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


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


def problem_response(status: int, slug: str, title: str, detail: str | None = None, headers=None, **extra):
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
    slug, title = _HTTP_SLUGS.get(status, ("http-error", exc.name))
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
    return problem_response(status, slug, title, detail, headers=headers, **extra)


def handle_problem(exc: Problem):
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers, **exc.extra)


def handle_database_down(exc: PyMongoError):
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return problem_response(
        503, "database-unavailable", "The database is unreachable; retry shortly",
        headers={"Retry-After": "2"},
    )


def handle_unexpected(exc: Exception):
    # the trace goes to the log, never to the client
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(500, "internal-error", "Internal error")


def init_app(app: Flask) -> None:
    """Render every error of the app as problem+json (call after Api.init_app)."""
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ConnectionFailure, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
