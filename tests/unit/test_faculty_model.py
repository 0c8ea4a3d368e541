"""The faculty profile's rules, without I/O."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from services.faculty import model
from services.faculty.schemas import FacultyInSchema, FacultyPublicSchema
from services.faculty.worker import public_view
from shared.errors import DomainError
from tests.faculty_samples import FACULTY, PRIVATE, profile

NOW = "2026-11-24T00:00:00.000Z"


def test_a_new_profile_is_active_at_version_one_with_its_school():
    doc = model.new_profile(FacultyInSchema().load(FACULTY), "ecnu-cto", NOW)
    assert doc["status"] == "active" and doc["version"] == 1 and doc["school"] == "ecnu-cto"
    assert doc["created_at"] == doc["updated_at"] == NOW
    assert doc["email"] == FACULTY["email"]


def test_search_text_holds_name_and_bio_in_every_language_but_no_private_field():
    doc = model.new_profile(profile(**PRIVATE), "ecnu-cto", NOW)
    assert "li wei" in doc["search_text"] and "李伟" in doc["search_text"]
    assert "portfolio" in doc["search_text"]
    for value in PRIVATE.values():
        assert value.lower() not in doc["search_text"]


def test_isced_codes_are_filed_under_their_broader_fields_and_keywords_lower_cased():
    assert model.expertise_keys(["0413", "Technology  Strategy", "04"]) == ["04", "041", "0413", "technology strategy"]
    assert model.expertise_key("Technology Strategy") == "technology strategy"
    assert model.expertise_key("041") == "041"


def test_a_replacement_removes_the_optional_fields_it_leaves_out():
    fields, unset = model.replacement({k: v for k, v in FACULTY.items() if k != "bio"}, NOW)
    assert "bio" in unset and "phone" in unset and "private_notes" in unset
    assert "status" not in fields and "status" not in unset
    assert fields["updated_at"] == NOW and "portfolio" not in fields["search_text"]


def test_a_withdrawn_profile_cannot_be_changed():
    model.ensure_changeable({"status": "active"})
    with pytest.raises(DomainError) as refused:
        model.ensure_changeable({"status": "withdrawn"})
    assert refused.value.status == 409 and refused.value.slug == "faculty-withdrawn"


@pytest.mark.parametrize("role, own_school, status, visibility, readable", [
    ("coordinator", True, "withdrawn", "school", True),
    ("student", True, "active", "school", True),
    ("faculty", True, "active", "school", True),
    ("student", True, "withdrawn", "alliance", False),
    ("partner", False, "active", "alliance", True),
    ("partner", False, "active", "school", False),
    ("partner", False, "withdrawn", "alliance", False),
])
def test_who_may_read_a_profile(role, own_school, status, visibility, readable):
    assert model.can_read({"status": status, "visibility": visibility}, role, own_school) is readable


def test_only_the_school_coordinators_see_contact_details_and_private_notes():
    doc = model.new_profile(profile(**PRIVATE), "ecnu-cto", NOW)
    assert model.view_for(doc, "coordinator", True)["email"] == PRIVATE["email"]
    for role, own in (("student", True), ("faculty", True), ("partner", False), ("coordinator", False)):
        shown = model.view_for(doc, role, own)
        assert not set(model.PRIVATE) & set(shown), role
        assert shown["name"] == FACULTY["name"]


def test_listing_filters_follow_the_reading_rules():
    assert model.reader_filter("coordinator", True) == {}
    assert model.reader_filter("student", True) == {"status": "active"}
    assert model.reader_filter("partner", False) == {"status": "active", "visibility": "alliance"}


def test_the_event_body_is_the_public_schema_without_private_fields():
    doc = model.new_profile(profile(**PRIVATE), "ecnu-cto", NOW)
    body = public_view(doc)
    assert body["id"] == doc["_id"] and body["name"] == FACULTY["name"]
    assert not set(model.PRIVATE) & set(body) and "search_text" not in body
    assert not set(model.PRIVATE) & set(FacultyPublicSchema().fields)
    assert public_view({**doc, "visibility": "school"}) is None
    assert public_view({**doc, "status": "withdrawn"}) is None


@pytest.mark.parametrize("change, field", [
    ({"availability": [{"from": "2027-05-15", "to": "2027-04-01"}]}, "availability"),
    ({"availability": [{"from": "2027-04-01"}]}, "availability"),
    ({"expertise": ["12345"]}, "expertise"),
    ({"expertise": ["Strategy", "strategy"]}, "expertise"),
    ({"name": {"zh": "李伟"}}, "name"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "call me"}, "phone"),
    ({"title": "Professor\nof everything"}, "title"),
    ({"languages": []}, "languages"),
    ({"status": "withdrawn"}, "status"),
])
def test_the_input_schema_refuses_bad_profiles(change, field):
    with pytest.raises(ValidationError) as refused:
        FacultyInSchema().load(profile(**change))
    assert field in refused.value.messages


def test_an_availability_window_of_one_day_is_valid():
    loaded = FacultyInSchema().load(profile(availability=[{"from": "2027-04-01", "to": "2027-04-01"}]))
    assert loaded["availability"] == [{"from": "2027-04-01", "to": "2027-04-01"}]


def test_the_update_sort_key_follows_updated_at_to_the_millisecond():
    earlier, later = model.touched("2026-11-24T00:17:01.005Z"), model.touched("2026-11-24T00:17:01.012Z")
    assert earlier["updated_key"] == 20261124001701005 < later["updated_key"] < 2**63
    assert model.withdrawn_fields("2026-11-24T00:17:01.005Z")["updated_key"] == earlier["updated_key"]
