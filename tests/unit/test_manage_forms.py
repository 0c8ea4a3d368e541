"""The coordinators' forms: typed values to an API body, an API problem back to the fields, times in a visit's zone."""

from __future__ import annotations

from flask import Flask
from werkzeug.datastructures import MultiDict

from services.catalog.frontdoor import forms
from services.catalog.frontdoor.manage_courses import course_body, values_of
from services.catalog.frontdoor.manage_visits import local, moment, visit_body, zone
from services.catalog.frontdoor.services_client import ServiceProblem

APP = Flask(__name__)


def posted(pairs):
    return APP.test_request_context("/", method="POST", data=MultiDict(pairs))


def test_a_problem_pointer_becomes_the_key_of_the_field_it_names_and_a_part_reaches_its_field():
    problem = ServiceProblem(422, "Validation failed", errors=[
        {"pointer": "/title/en", "detail": "English text ('en') is required."},
        {"pointer": "/offerings/0/ends_on", "detail": "Must not be before starts_on."},
        {"pointer": "/credits", "detail": "Not a number."}])
    form = forms.Form(errors=forms.errors_of(problem))
    assert form.error("title") == "English text ('en') is required."
    assert form.error("offerings.0.ends_on") == "Must not be before starts_on."
    assert form.exact("offerings") == "" and form.error("offerings") == "Must not be before starts_on."
    assert form.unplaced({"title", "credits"}) == [("offerings.0.ends_on", "Must not be before starts_on.")]


def test_a_taken_course_code_is_shown_at_the_code_field_though_the_service_names_no_pointer():
    problem = ServiceProblem(409, "Course code taken", detail="code 'MEM-1' is taken",
                             type="urn:alliance-catalog:problem:course-code-taken")
    assert forms.errors_of(problem) == {"code": "code 'MEM-1' is taken"}


def test_a_course_form_becomes_the_api_body_with_values_that_are_not_numbers_sent_as_typed():
    with posted([("code", "MEM-1"), ("title_en", "Title"), ("title_zh", ""), ("description_en", "D"),
                 ("programme", "MEM"), ("credits", "abc"), ("hours", "32"), ("languages", "en，zh"),
                 ("delivery", "online"), ("learning_outcomes_en", "one\ntwo\n"), ("learning_outcomes_zh", "一"),
                 ("instructors", "a"), ("instructors", "b"),
                 ("offerings-0-term", ""), ("offerings-0-starts_on", ""), ("offerings-1-term", "2027-spring"),
                 ("offerings-1-starts_on", "2027-03-01"), ("offerings-1-places", "x")]):
        body = course_body(forms.posted())
    assert body["title"] == {"en": "Title"} and body["credits"] == "abc" and body["hours"] == 32
    assert body["languages"] == ["en", "zh"] and body["instructors"] == ["a", "b"]
    assert body["learning_outcomes"] == [{"en": "one", "zh": "一"}, {"en": "two"}]
    # the blank row is dropped, so the row sent first is offerings[0], where the service's pointer lands
    assert body["offerings"] == [{"term": "2027-spring", "starts_on": "2027-03-01", "places": "x"}]
    assert body["status"] == "draft" and body["visibility"] == "school" and "eqf_level" not in body


def test_a_course_read_back_fills_the_form_it_came_from():
    course = {"code": "MEM-1", "title": {"en": "T", "zh": "题"}, "description": {"en": "D"}, "programme": "MEM",
              "credits": 2.5, "languages": ["en"], "delivery": "hybrid", "offerings": [
                  {"term": "2027-fall", "starts_on": "2027-09-01", "ends_on": "2027-12-20", "places": 4}],
              "learning_outcomes": [{"en": "a", "zh": "甲"}], "version": 3, "visibility": "alliance",
              "status": "published"}
    values = values_of(course)
    assert values["credits"] == "2.5" and values["title_zh"] == "题" and values["version"] == "3"
    assert values["offerings-0-places"] == "4" and values["learning_outcomes_zh"] == "甲"
    with posted(list(values.items())):
        body = course_body(forms.posted())
    assert body["offerings"] == course["offerings"] and body["credits"] == 2.5 and body["title"] == course["title"]


def test_an_offering_s_approval_reads_back_and_a_blank_row_stays_blank():
    course = {"code": "MEM-1", "title": {"en": "T"}, "programme": "MEM", "credits": 3, "languages": ["en"],
              "delivery": "online", "version": 2, "offerings": [
                  {"term": "2027-fall", "starts_on": "2027-09-01", "ends_on": "2027-12-20", "places": 4,
                   "approval": "review", "places_left": 4},
                  {"term": "2028-spring", "starts_on": "2028-03-01", "ends_on": "2028-06-30", "places": 2,
                   "approval": "automatic", "places_left": 1}]}
    values = values_of(course)
    # automatic is the service's default: the form's blank choice, so a row left blank is still blank
    assert values["offerings-0-approval"] == "review" and values["offerings-1-approval"] == ""
    with posted(list(values.items()) + [("offerings-2-term", ""), ("offerings-2-approval", "")]):
        body = course_body(forms.posted())
    assert [o.get("approval") for o in body["offerings"]] == ["review", None]
    assert all("places_left" not in o for o in body["offerings"])


def test_slot_times_are_typed_in_the_visit_time_zone_and_shown_back_in_it():
    shanghai = zone("Asia/Shanghai")
    assert moment("2027-04-13T09:00", shanghai) == "2027-04-13T09:00:00+08:00"
    assert local("2027-04-13T01:00:00+00:00", shanghai) == "2027-04-13T09:00"
    assert moment("not a time", shanghai) == "not a time"
    assert zone("Mars/Olympus") is None and moment("2027-04-13T09:00", None) == "2027-04-13T09:00:00+00:00"
    # a zone with daylight saving: the offset of that day
    assert moment("2027-07-01T10:00", zone("Europe/Berlin")).endswith("+02:00")


def test_a_visit_form_keeps_slot_ids_and_sends_approval_and_invited_schools():
    with posted([("theme_en", "Week"), ("place", "Shanghai"), ("time_zone", "Asia/Shanghai"),
                 ("starts_on", "2027-04-12"), ("ends_on", "2027-04-16"), ("approval", "review"),
                 ("invited", "sdu-sie"), ("slots-0-id", "11111111-1111-1111-1111-111111111111"),
                 ("slots-0-kind", "workshop"), ("slots-0-starts_at", "2027-04-13T09:00"),
                 ("slots-0-ends_at", "2027-04-13T11:00"), ("slots-0-capacity", "3"), ("slots-0-title_en", ""),
                 ("slots-1-id", ""), ("slots-1-kind", ""), ("slots-1-capacity", "")]):
        body = visit_body(forms.posted())
    assert body["approval"] == "review" and body["invited"] == ["sdu-sie"]
    assert body["slots"] == [{"id": "11111111-1111-1111-1111-111111111111", "kind": "workshop",
                              "starts_at": "2027-04-13T09:00:00+08:00", "ends_at": "2027-04-13T11:00:00+08:00",
                              "capacity": 3}]
