"""marshmallow fields the services share: language maps, ISO dates, ids, language tags.

Every field bounds its input (lengths, ranges, years), so that nothing huge or
out of range reaches MongoDB, and keys are validated, so no `$` or `.` key is
ever stored.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from marshmallow import ValidationError, fields, validate

# BCP 47 language tags, the forms catalogs use: en, zh, zh-Hans, pt-BR, es-419
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
MIN_YEAR, MAX_YEAR = 2000, 2100


class LanguageTag(fields.String):
    """A BCP 47 language tag such as en, zh or zh-Hans."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": LANGUAGE_TAG.pattern, "maxLength": 16,
                                   **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 16 or not LANGUAGE_TAG.match(text):
            raise ValidationError("Not a BCP 47 language tag such as 'en', 'zh' or 'zh-Hans'.")
        return text


class LangMap(fields.Dict):
    """Text in several languages, {"en": ..., "zh": ...}; English is required."""

    def __init__(self, max_length: int = 2000, require_english: bool = True, **kwargs):
        super().__init__(
            keys=LanguageTag(),
            values=fields.String(validate=validate.Length(min=1, max=max_length)),
            metadata={"description": "Text by BCP 47 language tag (en, zh, zh-Hans...); 'en' is required",
                      "example": {"en": "Text", "zh": "文本"}, "required": ["en"], "maxProperties": 10,
                      **kwargs.pop("metadata", {})},
            **kwargs,
        )
        self.require_english = require_english

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if len(result) > 10:
            raise ValidationError("At most 10 languages.")
        if self.require_english and not (result.get("en") or "").strip():
            raise ValidationError("English text ('en') is required.")
        return result


class IsoDate(fields.String):
    """A calendar date YYYY-MM-DD between 2000 and 2100, stored as that string (it sorts)."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"format": "date", "description": "YYYY-MM-DD, years 2000 to 2100",
                                   **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            raise ValidationError("Not a date in the form YYYY-MM-DD.") from None
        if len(text) != 10 or not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(f"Must be a YYYY-MM-DD date between {MIN_YEAR} and {MAX_YEAR}.")
        return parsed.isoformat()


class IsoDateTime(fields.String):
    """A date-time with its UTC offset, 2027-04-13T09:00:00+08:00, between 2000 and 2100."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"format": "date-time", **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("Not an RFC 3339 date-time.") from None
        if parsed.tzinfo is None or len(text) > 40:
            raise ValidationError("The date-time needs a UTC offset, e.g. 2027-04-13T09:00:00+08:00.")
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(f"Must be between {MIN_YEAR} and {MAX_YEAR}.")
        return parsed.isoformat()


class EntityId(fields.String):
    """A UUID naming an entity (course, faculty member, visit, slot), in canonical form."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"format": "uuid", **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(uuid.UUID(text)) if len(text) <= 36 else _bad_uuid()
        except ValueError:
            _bad_uuid()


def _bad_uuid():
    raise ValidationError("Not a UUID.")


class Cursor(fields.String):
    """A page cursor from a `next` link: URL-safe base64, so a valid query line stays short."""

    def __init__(self, **kwargs):
        super().__init__(validate=[validate.Length(1, 512), validate.Regexp(r"^[A-Za-z0-9_-]+$")],
                         metadata={"description": "From a `next` link", **kwargs.pop("metadata", {})}, **kwargs)


def unique_items(items) -> None:
    """A list validator: no item twice."""
    seen = [repr(i) for i in items]
    if len(seen) != len(set(seen)):
        raise ValidationError("Items must be unique.")


class Number(fields.Float):
    """A JSON number, never a string or a boolean; finite."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a number.")
        return super()._deserialize(value, attr, data, **kwargs)


class Integer(fields.Integer):
    """A JSON integer, never a string, a float or a boolean."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not an integer.")
        return super()._deserialize(value, attr, data, **kwargs)
