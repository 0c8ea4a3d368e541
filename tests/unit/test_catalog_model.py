"""The catalog's pure rules: what removes an entry, how open slots and languages are shown."""

from __future__ import annotations

import uuid

import pytest

from services.catalog import i18n
from services.catalog.model import Change, entry, is_removal, kind_of, open_places, visit_view
from services.visits.model import cancelled_fields
from services.visits.worker import visit_view as published_visit
from shared.events import InvalidEvent
from tests.catalogutil import GUEST_LECTURE, NOW, WORKSHOP, faculty_body, visit_body, visit_doc, withdrawn_course_body
from tests.visit_samples import slot


def published_slot(capacity: int, taken: int, cancelled: bool = False) -> dict:
    """A slot as the host's visits relay publishes it, `taken` of its seats held."""
    doc = visit_doc("sdu-sie", slots=[{**slot("guest_lecture", "2099-04-14", capacity=capacity), "id": GUEST_LECTURE}])
    if cancelled:
        doc.update(cancelled_fields(NOW, 1))
    return published_visit(doc, {GUEST_LECTURE: taken})["slots"][0]


def slot_of_an_older_host(capacity: int) -> dict:
    """A slot from a host whose visits service does not publish places left yet."""
    return {k: v for k, v in published_slot(capacity, 0).items() if k != "places_left"}


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


@pytest.mark.parametrize("published, left", [
    (lambda: published_slot(3, 1), 2),
    # the capacity was lowered below the seats held
    (lambda: published_slot(2, 5), 0),
    (lambda: published_slot(4, 3), 1),
    (lambda: slot_of_an_older_host(4), None),
    (lambda: published_slot(4, 0, cancelled=True), 0),
])
def test_open_places_are_the_places_left_the_host_publishes(published, left):
    assert open_places(published()) == left


def test_a_visit_shows_only_slots_with_places_left():
    view = visit_view(visit_body("sdu-sie", taken={WORKSHOP: 1}))
    assert [s["id"] for s in view["open_slots"]] == [GUEST_LECTURE]
    assert [s["places_left"] for s in view["slots"]] == [2, 0]


def test_a_tombstone_keeps_the_version_and_drops_the_content():
    entity_id = str(uuid.uuid4())
    doc = entry(Change("course", entity_id, "ecnu-cto", 4, 9, "course.withdrawn.v1",
                       withdrawn_course_body("ecnu-cto", entity_id, 4)), "t")
    assert doc == {"_id": entity_id, "school": "ecnu-cto", "version": 4, "seq": 9, "visible": False,
                   "applied_at": "t"}


def test_a_faculty_title_given_as_plain_text_is_kept_as_english():
    entity_id = str(uuid.uuid4())
    doc = entry(Change("faculty", entity_id, "sdu-sie", 1, 1, "faculty.published.v1",
                       faculty_body("sdu-sie", entity_id, name={"en": "Wang Li", "zh": "王丽"}, title="Professor",
                                    expertise=["0413", "venture building"], email="x@example.edu")), "t")
    assert doc["title"] == {"en": "Professor"} and doc["expertise"][1] == {"en": "venture building"}
    assert "email" not in doc


def test_a_body_naming_another_school_is_invalid():
    entity_id = str(uuid.uuid4())
    with pytest.raises(InvalidEvent, match="cannot come from"):
        entry(Change("faculty", entity_id, "sdu-sie", 1, 1, "faculty.published.v1",
                     faculty_body("ecnu-cto", entity_id, name={"en": "X"})), "t")


def test_text_falls_back_from_chinese_to_english_and_coded_values_read_in_both_languages():
    assert i18n.text({"en": "Strategy"}, "zh") == "Strategy"
    assert i18n.text({"en": "Strategy", "zh-Hans": "战略"}, "zh") == "战略"
    assert i18n.value_label("zh", "hybrid") == "混合式" and i18n.value_label("en", "hybrid") == "Hybrid"
    assert i18n.value_label("zh", "unheard_of") == "unheard of"
    assert i18n.label_of(i18n.SORT_LABELS, "zh", "-credits") == "学分（从高到低）"


@pytest.mark.parametrize("lang, left, words", [
    ("en", 3, "3 places left"), ("en", 1, "1 place left"), ("en", 0, "Full"), ("en", None, "4 places"), ("en", 2, "2 places left"),
    ("zh", 3, "剩余 3 个名额"), ("zh", 1, "剩余 1 个名额"), ("zh", 0, "已满"), ("zh", None, "共 4 个名额"),
])
def test_a_slot_says_how_many_places_are_left_in_words_of_both_languages(lang, left, words):
    assert i18n.places(lang, left, 4) == words
