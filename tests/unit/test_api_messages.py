"""The services' validation messages read in the page's language at their fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from services.catalog.frontdoor import api_messages, forms
from services.catalog.frontdoor.services_client import ServiceProblem
from shared import i18n

REPO = Path(__file__).resolve().parents[2]
# messages a person never meets on a page: query parameters and fields no form has
API_ONLY = {"Sort by waitlisted_at with status=waitlisted.", "A SHA-256 hex digest.", "Must not be before from."}
LITERAL = re.compile(r"""(?:ValidationError\(|error=)\s*"((?:[^"\\]|\\.)+)\"""")


def schema_messages() -> set[str]:
    sources = [*REPO.glob("services/*/schemas.py"), REPO / "shared" / "fields.py", REPO / "shared" / "saga_schemas.py"]
    return {m.group(1) for path in sources for m in LITERAL.finditer(path.read_text(encoding="utf-8"))}


@pytest.fixture
def zh_page():
    app = Flask(__name__)
    i18n.init_app(app)
    with app.test_request_context("/?lang=zh"):
        yield


def test_every_message_the_schemas_write_is_listed_for_the_pages():
    found = schema_messages()
    assert len(found) > 20  # the scan reads the schemas (a broken pattern would find nothing)
    assert sorted(found - api_messages.FIXED - API_ONLY) == []


def test_a_listed_message_reads_in_chinese_on_a_chinese_page_and_an_unknown_one_as_written(zh_page):
    for message in api_messages.FIXED:
        assert api_messages.in_page_language(message) != message, message
    assert api_messages.in_page_language("Something new.") == "Something new."


@pytest.mark.parametrize("message, numbers", [
    ("Length must be between 1 and 2000.", ["1", "2000"]), ("Longer than maximum length 300.", ["300"]),
    ("Shorter than minimum length 2.", ["2"]), ("Length must be 4.", ["4"]),
    ("Must be greater than or equal to 0.5 and less than or equal to 60.", ["0.5", "60"]),
    ("Must be greater than or equal to 1.", ["1"]), ("Must be less than or equal to 8.", ["8"]),
    ("Must be one of: online, on-site, blended.", ["online, on-site, blended"]),
])
def test_a_message_with_numbers_keeps_them_in_chinese(zh_page, message, numbers):
    words = api_messages.in_page_language(message)
    assert words != message and all(n in words for n in numbers), words


def test_an_english_page_shows_the_service_message_unchanged():
    app = Flask(__name__)
    i18n.init_app(app)
    with app.test_request_context("/?lang=en"):
        for message in [*api_messages.FIXED, "Length must be between 1 and 2000.", "Must be one of: a, b."]:
            assert api_messages.in_page_language(message) == message


def test_a_form_shows_a_problem_at_its_field_in_the_page_language(zh_page):
    problem = ServiceProblem(422, "Validation failed", errors=[
        {"pointer": "/credits", "detail": "Not a number."},
        {"pointer": "/statement", "detail": "Length must be between 1 and 2000."}])
    assert forms.errors_of(problem)["credits"] == api_messages.in_page_language("Not a number.") != "Not a number."
    assert problem.field_errors()["statement"] != "Length must be between 1 and 2000."
