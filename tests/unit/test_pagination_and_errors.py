"""Cursors, keyset filters and problem pointers: pure functions."""

from __future__ import annotations

import pytest

from shared.clock import moment_key, now_iso, time_key
from shared.errors import DomainError, pointer_errors
from shared.pagination import PageQuerySchema, PageSchema, decode_cursor, encode_cursor, keyset_filter


@pytest.mark.parametrize("value", ["MEM-6101", 3.5, 7, "技术", None])
def test_a_cursor_round_trips_its_position(value):
    assert decode_cursor(encode_cursor(value, "id-1")) == (value, "id-1")


@pytest.mark.parametrize("cursor", ["garbage", "e30", "W1tdLCJ4Il0", "x" * 600,
                                    # [{"v": {"$gt": ""}}, "id"]: an operator smuggled in a cursor
                                    "W3sidiI6IHsiJGd0IjogIiJ9fSwgImlkIl0",
                                    # [{"v": Infinity}, "x"] and [{"v": NaN}, "x"]: JSON's non-numbers
                                    "W3sidiI6IEluZmluaXR5fSwgIngiXQ", "W3sidiI6IE5hTn0sICJ4Il0"])
def test_a_tampered_cursor_is_a_400_problem(cursor):
    with pytest.raises(DomainError) as caught:
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


def test_a_time_key_orders_to_the_millisecond_whatever_the_offset():
    assert moment_key(now := now_iso()) == time_key(now)
    assert moment_key("2027-01-04T08:30:15.001Z") < moment_key("2027-01-04T08:30:15.002Z")
    # an offset is converted to UTC: the text of an earlier moment may sort after a later one
    assert moment_key("2027-01-04T09:30:14.999+01:00") == 20270104083014999 < moment_key("2027-01-04T08:30:15Z")
    assert moment_key("2027-01-04T08:30:15") == 20270104083015000  # no offset: taken as UTC
    for missing in (None, "", "soon", 17, "2027-13-40T00:00:00Z"):
        assert moment_key(missing) == 0


def _list_schemas():
    from services.catalog import schemas as catalog
    from services.courses import schemas as courses
    from services.faculty import schemas as faculty
    from services.visits import schemas as visits

    return [(courses.CourseQuerySchema, courses.CoursePageSchema), (faculty.FacultyQuerySchema,
            faculty.FacultyPageSchema), (visits.VisitQuerySchema, visits.VisitPageSchema),
            (visits.SlotRequestQuerySchema, visits.SlotRequestPageSchema),
            (visits.DecisionQuerySchema, visits.DecisionPageSchema),
            (catalog.SearchQuerySchema, catalog.SearchPageSchema),
            (catalog.VisitQuerySchema, catalog.VisitPageSchema)]


@pytest.mark.parametrize("query, page", _list_schemas(), ids=lambda s: s.__name__)
def test_every_list_pages_with_the_shared_query_and_page_schemas(query, page):
    assert issubclass(query, PageQuerySchema) and issubclass(page, PageSchema)
    for name in ("limit", "cursor"):
        assert query._declared_fields[name] is PageQuerySchema._declared_fields[name], f"{name} redefined"
    assert page._declared_fields["next"] is PageSchema._declared_fields["next"]
    assert page._declared_fields["items"] is not PageSchema._declared_fields["items"], "items names no schema"


def test_no_list_sorts_or_pages_by_date_time_text():
    from services.catalog.query import VisitSearch
    from services.catalog.search_index import SORT_VALUES
    from services.courses.store import CourseStore
    from services.faculty.store import FacultyStore
    from services.visits.store import DecisionStore, RequestStore, VisitStore

    # these hold ISO date-time text, which the embedded server compares to the second only
    text = {"created_at", "updated_at", "decided_at", "applied_at"}
    for store in (CourseStore, FacultyStore, VisitStore, RequestStore, DecisionStore, VisitSearch):
        assert not text & set(store.sort_fields.values()), store.__name__
    # the catalog's course search sorts in its index, by these read model fields
    assert not text & {field for field, _ in SORT_VALUES.values()}
