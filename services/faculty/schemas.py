"""What a faculty profile looks like on the wire: the request and response schemas of the faculty API.

Change how profiles are validated here. Every field is bounded and unknown
fields are refused (422).

Who sees what:

- a coordinator of the profile's school: everything (`FacultySchema`), also
  school-only and withdrawn profiles;
- students and faculty of the school: active profiles, public fields only
  (`FacultyPublicSchema`): no `email`, `phone` or `private_notes`;
- a partner school's service (role `partner`): active profiles with visibility
  `alliance`, public fields only.

`FacultyPublicSchema` is also the body of the profile's events and of its
change-feed entries: contact details and private notes never leave the school.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.faculty.model import STATUSES, VISIBILITIES, is_isced_code, normalise_keyword
from shared.fields import EntityId, IsoDate, LangMap, LanguageTag, unique_items
from shared.pagination import PageQuerySchema, PageSchema

PLAIN_TEXT = validate.Regexp(r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$", error="Text on one line, not blank.")
PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()-]{4,29}$", error="A phone number such as '+86 21 6223 3333'.")
SORTS = ["name", "-name", "department", "-department", "updated_at", "-updated_at"]


class ExpertiseItem(fields.String):
    """An ISCED-F 2013 field code of 2 to 4 digits ('0413'), or a free keyword ('technology strategy')."""

    def __init__(self, **kwargs):
        super().__init__(validate=[validate.Length(2, 80), PLAIN_TEXT],
                         metadata={"example": "0413", "description": self.__doc__}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text.isdigit() and not is_isced_code(text):
            raise ValidationError("An ISCED-F code has 2 to 4 digits, e.g. '0413'.")
        return text


def _distinct_expertise(items) -> None:
    keys = [normalise_keyword(i) for i in items]
    if len(keys) != len(set(keys)):
        raise ValidationError("Items must be unique (ignoring case and spaces).")


class AvailabilityWindowSchema(Schema):
    """Dates when the faculty member can take part in an exchange, both days included."""

    class Meta:
        unknown = RAISE

    from_ = IsoDate(required=True, data_key="from", attribute="from")
    to = IsoDate(required=True)

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data.get("from") and data.get("to") and data["to"] < data["from"]:
            raise ValidationError("Must not be before from.", "to")


class FacultyPublicInSchema(Schema):
    """The fields of a profile that partners may see, as a coordinator writes them."""

    class Meta:
        unknown = RAISE

    name = LangMap(required=True, max_length=200)
    title = fields.String(required=True, validate=[validate.Length(1, 100), PLAIN_TEXT],
                          metadata={"example": "Professor"})
    department = fields.String(required=True, validate=[validate.Length(1, 200), PLAIN_TEXT],
                               metadata={"example": "Engineering Management"})
    expertise = fields.List(ExpertiseItem(), load_default=list, validate=[validate.Length(max=30),
                            _distinct_expertise], metadata={"description": "ISCED-F codes and free keywords"})
    languages = fields.List(LanguageTag(), required=True, validate=[validate.Length(1, 10), unique_items],
                            metadata={"description": "Languages taught in, BCP 47"})
    bio = LangMap(max_length=3000, metadata={"description": "A short biography"})
    courses = fields.List(EntityId(), load_default=list, validate=[validate.Length(max=50), unique_items],
                          metadata={"description": "Ids of the courses taught"})
    availability = fields.List(fields.Nested(AvailabilityWindowSchema), load_default=list,
                               validate=validate.Length(max=20),
                               metadata={"description": "Windows open for exchange visits"})
    visibility = fields.String(load_default="school", validate=validate.OneOf(VISIBILITIES),
                               metadata={"description": "alliance: shared with partner schools"})


class FacultySelfInSchema(Schema):
    """What a faculty member may change on their own profile (PATCH): any of these, the rest is kept.

    Every other field is the school's coordinators' to write: naming one is refused (422).
    """

    class Meta:
        unknown = RAISE

    # no defaults: a field left out is kept as it is
    expertise = fields.List(ExpertiseItem(), validate=[validate.Length(max=30), _distinct_expertise],
                            metadata={"description": "ISCED-F codes and free keywords"})
    bio = LangMap(max_length=3000, metadata={"description": "A short biography"})
    availability = fields.List(fields.Nested(AvailabilityWindowSchema), validate=validate.Length(max=20),
                               metadata={"description": "Windows open for exchange visits (dates, both included)"})

    @validates_schema
    def _changes_something(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of expertise, bio, availability.", "_schema")


class FacultyInSchema(FacultyPublicInSchema):
    """A profile as a coordinator writes it (POST, PUT); the last three fields never leave the school."""

    email = fields.Email(required=True, validate=validate.Length(max=254),
                         metadata={"description": "Private: seen only by the school's coordinators"})
    phone = fields.String(validate=PHONE, metadata={"description": "Private"})
    private_notes = fields.String(validate=validate.Length(1, 2000), metadata={"description": "Private"})


class _ServiceSetFields(Schema):
    """What the service sets on every profile."""

    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES),
                           metadata={"description": "withdrawn: kept for the record, hidden from partners"})
    version = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class FacultyPublicSchema(_ServiceSetFields, FacultyPublicInSchema):
    """A profile as partners, students and events see it: no contact details, no private notes."""


class FacultySchema(_ServiceSetFields, FacultyInSchema):
    """A profile as the API returns it; the private fields only to the school's coordinators."""


class FacultyQuerySchema(PageQuerySchema):
    """Filters, sort and paging of GET /faculty."""

    q = fields.String(validate=validate.Length(1, 200),
                      metadata={"description": "Free text in name and bio, any language; every word must appear"})
    department = fields.String(validate=validate.Length(1, 200))
    expertise = fields.String(validate=validate.Length(2, 80), metadata={
        "description": "An ISCED-F code (a broad code such as '04' matches its narrower ones) or a keyword"})
    language = LanguageTag()
    available_on = IsoDate(metadata={"description": "Available for exchange on this date"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
    email = fields.Email(validate=validate.Length(max=254), metadata={
        "description": "The profile with this email (case-insensitive); the school's coordinators only (403)"})
    sort = fields.String(load_default="name", validate=validate.OneOf(SORTS))


class FacultyPageSchema(PageSchema):
    items = fields.List(fields.Nested(FacultySchema), required=True)
