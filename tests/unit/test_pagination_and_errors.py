"""Cursors, keyset filters and problem pointers: pure functions."""

from __future__ import annotations

import pytest

from shared.errors import Problem, pointer_errors
from shared.pagination import decode_cursor, encode_cursor, keyset_filter


@pytest.mark.parametrize("value", ["MEM-6101", 3.5, 7, "技术", None])
def test_a_cursor_round_trips_its_position(value):
    assert decode_cursor(encode_cursor(value, "id-1")) == (value, "id-1")


@pytest.mark.parametrize("cursor", ["garbage", "e30", "W1tdLCJ4Il0", "x" * 600,
                                    # [{"v": {"$gt": ""}}, "id"]: an operator smuggled in a cursor
                                    "W3sidiI6IHsiJGd0IjogIiJ9fSwgImlkIl0"])
def test_a_tampered_cursor_is_a_400_problem(cursor):
    with pytest.raises(Problem) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 400 and caught.value.slug == "invalid-cursor"


def test_keyset_filter_continues_after_the_last_row_in_either_direction():
    assert keyset_filter("credits", False, 3, "b") == {
        "$or": [{"credits": {"$gt": 3}}, {"credits": 3, "_id": {"$gt": "b"}}]}
    assert keyset_filter("credits", True, 3, "b")["$or"][0] == {"credits": {"$lt": 3}}


def test_validation_messages_become_json_pointers():
    messages = {"title": ["English text ('en') is required."],
                "offerings": {0: {"ends_on": ["Must not be before starts_on."]}},
                "a/b": ["x"], "_schema": ["whole"]}
    assert pointer_errors(messages) == [
        {"pointer": "/title", "detail": "English text ('en') is required."},
        {"pointer": "/offerings/0/ends_on", "detail": "Must not be before starts_on."},
        {"pointer": "/a~1b", "detail": "x"},
        {"pointer": "/", "detail": "whole"},
    ]
