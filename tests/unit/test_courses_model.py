"""The course's rules and schema, without a database."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from services.courses import model
from services.courses.schemas import CourseInSchema
from shared.errors import DomainError
from tests.samples import COURSE, course


def test_the_sample_course_validates_and_gets_defaults():
    data = CourseInSchema().load(COURSE)
    assert data["prerequisites"] == [] and data["credits"] == 3


def test_visibility_defaults_to_the_school_only():
    data = CourseInSchema().load({k: v for k, v in COURSE.items() if k not in ("visibility", "status")})
    assert data["visibility"] == "school" and data["status"] == "draft"


def test_a_course_cannot_be_created_withdrawn():
    with pytest.raises(DomainError) as caught:
        model.new_course(CourseInSchema().load(course(status="withdrawn")), "ecnu-cto", "t")
    assert caught.value.status == 422


def test_search_text_covers_code_and_every_language_lower_cased():
    text = model.search_text(course())
    assert "mem-6101" in text and "技术战略" in text and "technology strategy" in text


@pytest.mark.parametrize("role, own, status, visibility, readable", [
    ("coordinator", True, "draft", "school", True),
    ("student", True, "draft", "alliance", False),
    ("student", True, "published", "school", True),
    ("partner", False, "published", "school", False),
    ("partner", False, "published", "alliance", True),
    ("partner", False, "withdrawn", "alliance", False),
])
def test_who_can_read_which_course(role, own, status, visibility, readable):
    assert model.can_read({"status": status, "visibility": visibility}, role, own) is readable


@pytest.mark.parametrize("field, value", [
    ("languages", ["en", "en"]), ("languages", []), ("credits", float("nan")), ("credits", 61),
    ("isced_f", "04a3"), ("code", "$where"), ("title", {"en": "x" * 301}), ("title", {"EN": "x"}),
    ("offerings", [{"term": "spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30"}]),
    ("offerings", [{"term": "2027-spring", "starts_on": "2027-02-30", "ends_on": "2027-06-30"}]),
    ("instructors", ["not-a-uuid"]),
])
def test_bounded_fields_refuse_what_is_out_of_bounds(field, value):
    with pytest.raises(ValidationError) as caught:
        CourseInSchema().load(course(**{field: value}))
    assert field in caught.value.messages
