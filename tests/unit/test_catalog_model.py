"""The catalog's pure rules: what removes an entry, how open slots and languages are shown."""

from __future__ import annotations

import uuid

import pytest

from services.catalog import i18n
from services.catalog.model import Change, entry, is_removal, kind_of, open_places, visit_view
from shared.events import InvalidEvent


@pytest.mark.parametrize("event_type, body, removed", [
    ("course.withdrawn.v1", {}, True),
    ("course.updated.v1", {"visibility": "school", "status": "published"}, True),
    ("course.updated.v1", {"visibility": "alliance", "status": "draft"}, True),
    ("visit.updated.v1", {"status": "cancelled"}, True),
    ("faculty.updated.v1", {"visibility": "alliance", "status": "active"}, False),
    ("course.published.v1", {"visibility": "alliance", "status": "published"}, False),
    ("visit.published.v1", {"status": "planned"}, False),
])
def test_removals_are_withdrawals_school_only_and_hidden_states(event_type, body, removed):
    assert is_removal(event_type, body) is removed


def test_kinds_the_catalog_does_not_keep_are_recognised():
    assert kind_of("course.updated.v1") == "course"
    assert kind_of("slot_request.created.v1") is None


@pytest.mark.parametrize("slot, left", [
    ({"capacity": 3, "approved": 1}, 2),
    ({"capacity": 2, "taken": 5}, 0),
    ({"capacity": 4, "remaining": 1}, 1),
    ({"capacity": 4}, None),
    ({"capacity": 4, "approved": 0, "status": "closed"}, 0),
])
def test_open_places_come_from_whichever_count_the_host_sends(slot, left):
    assert open_places(slot) == left


def test_a_visit_shows_only_slots_with_places_left():
    view = visit_view({"slots": [{"id": "a", "capacity": 1, "approved": 1}, {"id": "b", "capacity": 2}]})
    assert [s["id"] for s in view["open_slots"]] == ["b"]


def test_a_tombstone_keeps_the_version_and_drops_the_content():
    entity_id = str(uuid.uuid4())
    doc = entry(Change("course", entity_id, "ecnu-cto", 4, 9, "course.withdrawn.v1",
                       {"id": entity_id, "school": "ecnu-cto", "version": 4, "title": {"en": "gone"}}), "t")
    assert doc == {"_id": entity_id, "school": "ecnu-cto", "version": 4, "seq": 9, "visible": False,
                   "applied_at": "t"}


def test_a_faculty_title_given_as_plain_text_is_kept_as_english():
    entity_id = str(uuid.uuid4())
    doc = entry(Change("faculty", entity_id, "sdu-sie", 1, 1, "faculty.published.v1",
                       {"id": entity_id, "school": "sdu-sie", "name": {"en": "Wang Li", "zh": "王丽"},
                        "title": "Professor", "expertise": ["0413", "venture building"], "email": "x@y"}), "t")
    assert doc["title"] == {"en": "Professor"} and doc["expertise"][1] == {"en": "venture building"}
    assert "email" not in doc


def test_a_body_naming_another_school_is_invalid():
    entity_id = str(uuid.uuid4())
    with pytest.raises(InvalidEvent, match="cannot come from"):
        entry(Change("faculty", entity_id, "sdu-sie", 1, 1, "faculty.published.v1",
                     {"id": entity_id, "school": "ecnu-cto", "name": {"en": "X"}}), "t")


def test_text_falls_back_from_chinese_to_english_and_labels_exist_in_both_languages():
    assert i18n.text({"en": "Strategy"}, "zh") == "Strategy"
    assert i18n.text({"en": "Strategy", "zh-Hans": "战略"}, "zh") == "战略"
    assert set(i18n.LABELS["en"]) == set(i18n.LABELS["zh"])
    assert i18n.label("zh", "results", n=3) == "共 3 门课程"
    assert i18n.pick_lang("fr") == "en"
