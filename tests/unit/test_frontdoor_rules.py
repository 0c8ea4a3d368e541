"""The front door's pure rules: session expiry, claims to roles, where to go after sign-in, problems to fields."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.catalog.frontdoor.people import Refused, claim_values, role_from_claims, safe_next
from services.catalog.frontdoor.services_client import problem_of
from services.catalog.frontdoor.sessions import session_state
from shared.config import Settings

IDLE, ABSOLUTE = 1800, 12 * 3600


@pytest.mark.parametrize("created, last_seen, now, state", [
    (0, 0, 10, "live"),
    (0, 0, IDLE - 1, "live"),
    (0, 0, IDLE, "idle"),
    (0, ABSOLUTE - 60, ABSOLUTE - 1, "live"),
    # used a minute ago, but signed in 12 hours ago: over
    (0, ABSOLUTE - 60, ABSOLUTE, "expired"),
])
def test_a_session_ends_when_idle_too_long_or_too_long_after_sign_in(created, last_seen, now, state):
    assert session_state({"created": created, "last_seen": last_seen}, now, IDLE, ABSOLUTE) == state


def test_no_stored_session_is_missing():
    assert session_state(None, 0, IDLE, ABSOLUTE) == "missing"


def settings(**changes) -> Settings:
    return Settings(school="ecnu-cto", schools=(), **changes)


@pytest.mark.parametrize("claims, role", [
    ({"groups": ["staff", "coordinator"]}, "coordinator"),
    ({"groups": ["faculty", "coordinator"]}, "coordinator"),
    ({"groups": "faculty staff"}, "faculty"),
    ({"groups": ["student"]}, "student"),
])
def test_the_groups_claim_maps_to_one_role_coordinator_first(claims, role):
    assert role_from_claims(claims, settings()) == role


def test_a_school_maps_its_own_claim_and_values_even_nested_ones():
    keycloak = settings(oidc_roles_claim="realm_access.roles", oidc_coordinator_values=("catalog-admin",),
                        oidc_faculty_values=("teacher", "professor"))
    assert role_from_claims({"realm_access": {"roles": ["professor"]}}, keycloak) == "faculty"
    assert role_from_claims({"realm_access": {"roles": ["catalog-admin"]}}, keycloak) == "coordinator"


@pytest.mark.parametrize("claims, reason", [
    ({"groups": ["alumni"]}, "no-role"),
    ({}, "no-role"),
    ({"groups": ["coordinator"], "school": "sdu-sie"}, "other-school"),
    ({"groups": ["coordinator"]}, "no-role"),
])
def test_no_role_or_another_school_is_refused(claims, reason):
    with pytest.raises(Refused) as refused:
        role_from_claims(claims, settings(oidc_school_claim="school"))
    assert refused.value.reason == reason


def test_claim_values_accept_lists_and_separated_strings():
    assert claim_values(["a", "b"]) == {"a", "b"} and claim_values("a, b c") == {"a", "b", "c"}
    assert claim_values(None) == set()


@pytest.mark.parametrize("value, safe", [
    ("/manage/courses?status=draft", "/manage/courses?status=draft"),
    ("//evil.example/x", None), ("https://evil.example/", None), ("/\\evil.example", None), (None, None),
])
def test_only_a_path_of_this_site_is_followed_after_sign_in(value, safe):
    assert safe_next(value) == safe


def test_a_service_problem_names_the_fields_its_pointers_point_at():
    response = SimpleNamespace(status_code=422, reason="UNPROCESSABLE ENTITY", json=lambda: {
        "type": "urn:alliance-catalog:problem:validation-failed", "title": "The request does not validate",
        "errors": [{"pointer": "/title/en", "detail": "Missing data"}, {"pointer": "/credits", "detail": "Too big"},
                   {"pointer": "/title/zh", "detail": "ignored: one message per field"}]})
    problem = problem_of(response)
    assert problem.status == 422
    assert problem.field_errors() == {"title": "Missing data", "credits": "Too big"}


def test_a_service_answer_that_is_not_json_is_still_a_problem():
    def not_json():
        raise ValueError("no JSON")

    problem = problem_of(SimpleNamespace(status_code=502, reason="Bad Gateway", json=not_json))
    assert (problem.status, problem.title, problem.field_errors()) == (502, "Bad Gateway", {})
