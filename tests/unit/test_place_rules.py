"""The place pages' pure rules: when an offering takes requests, and a student's number and programme from claims."""

from __future__ import annotations

import pytest

from services.courses.model import is_open
from services.catalog.frontdoor.auth import person_from_claims
from shared.config import Settings

TODAY = "2027-01-10"
OFFERING = {"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": 2}


@pytest.mark.parametrize("changes, open_", [
    ({}, True),
    ({"places": 0}, True),
    ({"places": None}, False),
    ({"starts_on": "2027-01-10"}, False),
    ({"starts_on": "2027-01-11"}, True),
    ({"applications_open": "2027-01-10", "applications_close": "2027-01-10"}, True),
    ({"applications_open": "2027-01-11"}, False),
    ({"applications_close": "2027-01-09"}, False),
])
def test_the_pages_offer_requests_before_an_offering_starts_with_places_and_within_its_application_window(changes, open_):
    offering = {k: v for k, v in {**OFFERING, **changes}.items() if v is not None}
    assert is_open(offering, TODAY) is open_


def test_a_student_s_number_and_programme_come_from_the_claims_the_school_names():
    settings = Settings(school="ecnu-cto", schools=(), oidc_student_number_claim="ext.matriculation",
                        oidc_programme_claim="programme")
    person = person_from_claims({"sub": "s1", "name": "Li Na", "email": "s1@example.edu", "groups": ["student"],
                                 "ext": {"matriculation": 2026001}, "programme": "MEM"}, settings)
    assert (person.student_number, person.programme) == ("2026001", "MEM")
    assert person.profile() == {"name": "Li Na", "email": "s1@example.edu", "student_number": "2026001",
                                "programme": "MEM"}
    bare = person_from_claims({"sub": "s2", "groups": ["student"]}, settings)
    assert (bare.student_number, bare.programme) == (None, None)
    coordinator = person_from_claims({"sub": "c1", "groups": ["coordinator"], "programme": "MEM"}, settings)
    assert coordinator.programme is None and coordinator.profile() is None
