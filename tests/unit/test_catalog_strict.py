"""The strict fast check of course bodies accepts only what the marshmallow schema accepts, loaded alike."""

from __future__ import annotations

import copy
import random

import pytest
from marshmallow import ValidationError

from services.catalog import schemas
from services.catalog.model import Change, entry
from services.catalog.strict import FIELDS, OFFERING_FIELDS, strict_course
from shared.events import InvalidEvent
from tests.catalogutil import course_body

ECNU = "ecnu-cto"
SCHEMA = schemas.CourseBody()


def typed(value):
    """The value with the type of every part, so that 3 and 3.0 or True and 1 differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def verdicts(body):
    """(strict result, marshmallow result or None when it refuses)."""
    try:
        loaded = SCHEMA.load(copy.deepcopy(body))
    except ValidationError:
        loaded = None
    return strict_course(copy.deepcopy(body)), loaded


# values that are right for some field and wrong for others, or wrong in a way marshmallow may still accept
ODD = [None, True, False, 0, 1, -1, 7, 7.0, 2.5, 61, 2**63, float("nan"), float("inf"), "", " ", "3", "7.0", "en",
       "EN", "en\n", "zh-Hans", "x" * 33, "x" * 301, "MEM", "mem-1", "0413", "04130", "2027-spring",
       "2027-03-01", "2027-3-1", "20270301", "1999-12-31", "2101-01-01", "automatic", "manual", [], ["en"],
       ["en", 1], ["en"] * 11, {}, {"en": "Text"}, {"en": 1}, {"EN": "Text"}, {"en": "x" * 5001},
       {f"l{i}": "t" for i in range(11)}, "5260C63A-933E-4E1F-8C83-76C132993B32",
       "{5260c63a-933e-4e1f-8c83-76c132993b32}", "5260c63a933e4e1f8c8376c132993b32"]


def mutations(base: dict, rng: random.Random):
    """The base body with each field (and each offering field) set to odd values, dropped, or joined by others."""
    for name in list(base) + ["unknown_field"]:
        for value in ODD:
            yield {**base, name: copy.deepcopy(value)}
        yield {k: v for k, v in base.items() if k != name}
    offering = base["offerings"][0]
    for name in list(offering) + ["applications_open", "applications_close", "places_left", "extra"]:
        for value in ODD:
            yield {**base, "offerings": [{**offering, name: copy.deepcopy(value)}]}
        yield {**base, "offerings": [{k: v for k, v in offering.items() if k != name}]}
    for _ in range(300):
        body = copy.deepcopy(base)
        for name in rng.sample(sorted(body), 3):
            body[name] = copy.deepcopy(rng.choice(ODD))
        yield body


def test_the_strict_check_names_every_field_of_the_course_schema_and_its_offerings():
    assert FIELDS == set(schemas.CourseBody().fields)
    assert OFFERING_FIELDS == set(schemas.OfferingBody().fields)


@pytest.mark.parametrize("changes", [
    {}, {"credits": 3}, {"credits": 2.5}, {"title": {"en": "Data", "zh": "数据"}}, {"languages": ["zh", "en"]},
    {"learning_outcomes": [{"en": "Plan"}, {"en": "Lead", "zh": "领导"}]},
])
def test_a_published_course_passes_the_strict_check_and_loads_exactly_as_the_schema_loads_it(changes):
    strict, loaded = verdicts(course_body(ECNU, **changes))
    assert strict is not None and typed(strict) == typed(loaded)


def test_whatever_the_strict_check_accepts_the_schema_accepts_and_loads_alike():
    rng = random.Random(14)
    base = course_body(ECNU, learning_outcomes=[{"en": "Plan"}], credits=3)
    base["offerings"][0].update(applications_open="2027-01-10", applications_close="2027-02-10", places_left=3)
    accepted = refused_by_both = handed_on = 0
    for body in mutations(base, rng):
        strict, loaded = verdicts(body)
        if strict is not None:
            assert loaded is not None, body
            assert typed(strict) == typed(loaded), body
            accepted += 1
        elif loaded is None:
            refused_by_both += 1
        else:
            handed_on += 1  # marshmallow accepts what the strict check left to it (a number in a string...)
    # every kind of outcome was exercised
    assert accepted > 100 and refused_by_both > 100 and handed_on > 10


def test_a_body_the_strict_check_refuses_is_still_refused_with_the_schema_s_words():
    body = course_body(ECNU)
    body["credits"] = 61
    assert strict_course(body) is None
    change = Change("course", body["id"], ECNU, 1, 1, "course.published.v1", body)
    with pytest.raises(InvalidEvent, match="/credits"):
        entry(change, "2026-12-04T00:00:00Z")
    # and one it leaves to the schema, which accepts it as before
    body = course_body(ECNU)
    body["credits"] = "3"
    assert strict_course(body) is None
    assert entry(Change("course", body["id"], ECNU, 1, 1, "course.published.v1", body),
                 "2026-12-04T00:00:00Z")["credits"] == 3.0
