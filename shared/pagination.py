"""Keyset pagination: an opaque cursor holding the last row's sort value and id.

No page is silently cut: a page has `next` whenever more rows follow, and
`limit` is capped (PAGE_LIMIT_MAX).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from urllib.parse import urlencode

from flask import request
from marshmallow import Schema, fields, validate

from shared.errors import Problem
from shared.fields import Cursor

MAX_CURSOR_CHARS = 512


def encode_cursor(value, last_id: str) -> str:
    typed = {"dt": value.isoformat()} if isinstance(value, datetime) else {"v": value}
    raw = json.dumps([typed, last_id], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str):
    """(value, id) from a cursor; a 400 problem when it was not made by encode_cursor."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        typed, last_id = json.loads(raw.decode("utf-8"))
        if not isinstance(last_id, str) or not isinstance(typed, dict) or len(typed) != 1:
            raise ValueError("bad shape")
        if "dt" in typed:
            value = datetime.fromisoformat(typed["dt"])
        else:
            value = typed["v"]
            if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError("bad value")
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValueError("out of range")
        return value, last_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise Problem(400, "invalid-cursor", "The page cursor is not valid",
                      "use the `next` link of the previous page as it is") from None


def keyset_filter(field: str, descending: bool, after_value, after_id: str) -> dict:
    """Rows strictly after (after_value, after_id) in the order (field asc|desc, _id asc)."""
    op = "$lt" if descending else "$gt"
    return {"$or": [{field: {op: after_value}}, {field: after_value, "_id": {"$gt": after_id}}]}


def next_link(cursor: str) -> str:
    """The URL of the next page: this request's query with `cursor` replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    args.append(("cursor", cursor))
    return f"{request.base_url}?{urlencode(args)}"


class PageQuerySchema(Schema):
    """The paging parameters of every list endpoint; a service's query schema adds filters and `sort`."""

    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100),
                           metadata={"description": "Page size, at most 100"})
    cursor = Cursor()
