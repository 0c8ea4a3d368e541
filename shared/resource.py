"""What every service's HTTP API does the same way: who reads, and how a create, read, update or page answers.

The views of courses, faculty and visits are thin: they load with their
schema, call one model or workflow function, and return through these
helpers (the catalog's read API uses the page links). Everything here reads
the request (headers, the caller's token); the stores never do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app, request
from marshmallow import RAISE

from shared.auth import current_principal, require
from shared.errors import DomainError
from shared.events import canonical_json

# the security requirement of every endpoint that needs a bearer token, as the OpenAPI document states it
SECURITY = [{"bearerAuth": []}]
# who may read a write service's entities: every role; what each one sees is the model's `can_read`
READERS = ("student", "faculty", "coordinator", "partner")
MAX_IDEMPOTENCY_KEY = 200
# a strong ETag holding a version: "12"
_ETAG = re.compile(r'"([0-9]{1,18})"')

IDEMPOTENCY_HEADER_DOC = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
    "description": "A retry with the same key and body returns the first result",
}
# documented as optional because its absence is answered with 428 Precondition Required (RFC 6585),
# which OpenAPI's "required" cannot express: a required header's absence would mean a 400
IF_MATCH_HEADER_DOC = {
    "in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
    "description": "Required in practice: the ETag of the version being replaced (428 without it, 412 if stale)",
}


def reads(blp, response, query=None):
    """The decorators of a read: its query (unknown parameters refused), its response, the token it needs."""
    decorators = [blp.arguments(query, location="query", unknown=RAISE)] if query is not None else []
    return _stacked(decorators + [blp.response(200, response), blp.doc(security=SECURITY)])


def writes(blp, response, body=None, status: int = 200, roles=("coordinator",), header=IF_MATCH_HEADER_DOC):
    """The decorators of a write: the role check first (refused before the body is read), then its body,
    its response and the header it needs (If-Match by default, Idempotency-Key for a POST).

    `roles=None` leaves the check to the view class's own `decorators`.
    """
    decorators = [require(*roles)] if roles else []
    if body is not None:
        decorators.append(blp.arguments(body))
    return _stacked(decorators + [blp.response(status, response), blp.doc(security=SECURITY, parameters=[header])])


def _stacked(decorators: list):
    """One decorator applying `decorators` as if written one above the other, the first outermost."""
    def apply(view):
        for decorator in reversed(decorators):
            view = decorator(view)
        return view

    return apply


@dataclass(frozen=True)
class Reader:
    """Who is calling: their role, and whether their token is of this service's school."""

    role: str
    school: str
    faculty_id: str | None
    own_school: bool


def reader() -> Reader:
    principal = current_principal()
    return Reader(principal.role, principal.school, principal.faculty_id, principal.school == school())


def db():
    return current_app.extensions["db"]


def school() -> str:
    """The school this service belongs to."""
    return current_app.extensions["settings"].school


def narrowed(criteria: dict, required: dict) -> dict | None:
    """The caller's criteria with what they may see added, or None when the two contradict (nothing to list)."""
    for key, value in required.items():
        if criteria.get(key, value) != value:
            return None
        criteria[key] = value
    return criteria


def empty_page() -> dict:
    return {"items": [], "next": None}


def linked(page: dict) -> dict:
    """A store's page as the API answers it: the next page's cursor becomes its link (None on the last)."""
    cursor = page.pop("cursor")
    page["next"] = next_link(cursor) if cursor else None
    return page


def next_link(cursor: str) -> str:
    """The URL of the next page: this request's query with `cursor` replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    args.append(("cursor", cursor))
    return f"{request.base_url}?{urlencode(args)}"


def etag(version: int) -> str:
    return f'"{version}"'


def with_etag(doc: dict, status: int = 200):
    """A view's answer for one entity: the entity, its status, and its version as the ETag."""
    return doc, status, {"ETag": etag(doc["version"])}


def created(store, data: dict, build, collection_path: str):
    """Insert the entity `build(data)` makes, idempotently by the request's Idempotency-Key; 201 and its URL.

    The key is checked before the entity is built, so a malformed key is a 400 whatever the body; a retry
    is answered from the stored first result before `build` runs (a check `build` makes, such as a place
    request's look at the catalog, does not turn a retry of a created entity into a refusal).
    """
    key, fingerprint = idempotency(data)
    first = store.replay(key, fingerprint) if key else None
    if first is not None:
        doc, is_new = first, False
    else:
        doc, is_new = store.insert(build(data), key, fingerprint)
    headers = {"ETag": etag(doc["version"]), "Location": f"{collection_path}/{doc['_id']}"}
    if not is_new:
        headers["Idempotent-Replayed"] = "true"
    return doc, 201, headers


def replaced(store, entity_id: str, written: dict | None):
    """The answer to a conditional write: the entity with its new ETag, or why it did not apply (404, 412)."""
    if written is None:
        raise store.stale(entity_id)
    return with_etag(written)


def expected_version(entity: str) -> int:
    """The version named by If-Match: 428 without one, 412 when it cannot be a version."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        raise DomainError("precondition-required", f"send the ETag of the {entity} you read: If-Match: \"<version>\"")
    match = _ETAG.fullmatch(header)
    if match is None:
        raise DomainError("precondition-failed", "If-Match must hold one ETag of the form \"<version>\"")
    return int(match.group(1))


def idempotency(data: dict) -> tuple[str | None, str | None]:
    """(Idempotency-Key, fingerprint of the caller and the validated body) of a POST; a 400 for a malformed key.

    The caller is part of the fingerprint: a key is one client's, so another caller sending the same key
    and body gets a 422 (key reused), never the first caller's entity (a student's request, say).
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None, None
    if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise DomainError("invalid-idempotency-key", f"use 1-{MAX_IDEMPOTENCY_KEY} printable characters, e.g. a UUID")
    caller = current_principal(optional=True)
    who = [caller.school, caller.subject] if caller is not None else None
    return key, hashlib.sha256(canonical_json({"caller": who, "body": data})).hexdigest()
