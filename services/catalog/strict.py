"""A course body's fast check: pydantic (compiled) in strict mode in front of the marshmallow schema.

A catch-up validates every course of a partner's feed (1,000 a page); marshmallow's `CourseBody.load` took
about half of the catch-up process's own CPU time. `strict_course(body)` checks the same fields with a
pydantic `TypeAdapter` built to accept *less* than `schemas.CourseBody`: exact types only (an int is not a
str, a bool is not an int, no number in a string), ids only in canonical form, patterns matched whole. A
body it accepts comes out as `CourseBody().load` would load it (the tests compare both on every sample
body and on generated ones); anything it refuses is handed to marshmallow, which decides as before. So the
catalog refuses exactly what it refused, and an ordinary body costs a tenth of the time.

A field added to `schemas.CourseBody` must be added here too (tests/unit/test_catalog_strict.py fails until
it is).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter
# pydantic reads TypedDicts from typing_extensions before Python 3.12
from typing_extensions import NotRequired, TypedDict

from shared.fields import LANGUAGE_TAG, IsoDate

# the marshmallow regexes, anchored at both ends for pydantic's engine (Python's `$` also accepts a final newline)
_SCHOOL = r"^[a-z0-9][a-z0-9-]{0,62}$"
_PROGRAMME = r"^[A-Za-z][A-Za-z0-9 _-]{0,39}$"
_ISCED_F = r"^[0-9]{2,4}$"
_TERM = r"^[0-9]{4}-[a-z0-9-]{1,20}$"
# the canonical form `EntityId` returns, so that what passes here comes out unchanged
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ISO_DATE = IsoDate()


def _text(max_length: int, min_length: int = 0):
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length)]


def _pattern(pattern: str):
    return Annotated[str, StringConstraints(pattern=pattern)]


Tag = Annotated[str, StringConstraints(max_length=16, pattern=LANGUAGE_TAG.pattern)]
Id = _pattern(_UUID)
# the marshmallow field's own rule (and its output, the date as text)
Date = Annotated[str, AfterValidator(lambda v: _ISO_DATE.deserialize(v))]


def _localized(max_length: int):
    """`Localized`: a plain string is English; at most 10 languages."""
    return Annotated[dict[Tag, _text(max_length)], Field(max_length=10),
                     BeforeValidator(lambda v: {"en": v} if isinstance(v, str) else v)]


def _int(low: int, high: int):
    return Annotated[int, Field(ge=low, le=high)]


# strict: no coercion (a string is never a number, a bool never an int); unknown fields are left out
_STRICT = ConfigDict(strict=True, extra="ignore")


class _Offering(TypedDict):
    __pydantic_config__ = _STRICT

    term: _pattern(_TERM)
    starts_on: Date
    ends_on: Date
    places: NotRequired[_int(0, 100_000)]
    applications_open: NotRequired[Date]
    applications_close: NotRequired[Date]
    places_left: NotRequired[_int(0, 100_000) | None]
    approval: NotRequired[Literal["automatic", "review"]]


class _Course(TypedDict):
    __pydantic_config__ = _STRICT

    id: Id
    school: _pattern(_SCHOOL)
    version: NotRequired[_int(1, 2**63 - 1)]
    status: NotRequired[_text(40)]
    visibility: NotRequired[_text(40)]
    code: _text(32, 1)
    title: _localized(300)
    description: NotRequired[_localized(5000)]
    programme: _pattern(_PROGRAMME)
    credits: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)]
    eqf_level: NotRequired[_int(1, 8)]
    isced_f: NotRequired[_pattern(_ISCED_F)]
    languages: Annotated[list[Tag], Field(min_length=1, max_length=10)]
    delivery: _text(20, 1)
    hours: NotRequired[_int(1, 2000)]
    learning_outcomes: NotRequired[Annotated[list[_localized(1000)], Field(max_length=30)]]
    prerequisites: NotRequired[Annotated[list[_localized(1000)], Field(max_length=30)]]
    instructors: NotRequired[Annotated[list[Id], Field(max_length=20)]]
    offerings: NotRequired[Annotated[list[_Offering], Field(max_length=20)]]
    updated_at: NotRequired[_text(40)]


_COURSE = TypeAdapter(_Course)
# marshmallow's load_default: present in every loaded body
_DEFAULTS = {"description": dict, "learning_outcomes": list, "prerequisites": list, "instructors": list,
             "offerings": list}
FIELDS = set(_Course.__annotations__) - {"__pydantic_config__"}
OFFERING_FIELDS = set(_Offering.__annotations__) - {"__pydantic_config__"}


def strict_course(body) -> dict | None:
    """The loaded course body when the strict check accepts it; None when marshmallow must decide."""
    try:
        loaded = _COURSE.validate_python(body)
    except Exception:  # pydantic's refusal, or the date field's: the full schema decides and words it
        return None
    for name, default in _DEFAULTS.items():
        if name not in loaded:
            loaded[name] = default()
    return loaded
