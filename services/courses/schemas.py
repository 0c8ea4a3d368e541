"""What a course looks like on the wire: the request and response schemas of the courses API.

Change how courses are validated here. Every field is bounded, unknown fields
are refused (422), and the response schema is also the body of the course's
events (its public state).
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.courses.model import DELIVERY_MODES, STATUSES, VISIBILITIES
from shared.fields import EntityId, Integer, IsoDate, LangMap, LanguageTag, Number, unique_items
from shared.pagination import PageQuerySchema, PageSchema

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", error="1-32 letters, digits, '.', '_' or '-'.")
PROGRAMME = validate.Regexp(r"^[A-Za-z][A-Za-z0-9 _-]{0,39}$", error="1-40 letters, digits, spaces, '_' or '-'.")
ISCED_F = validate.Regexp(r"^[0-9]{2,4}$", error="An ISCED-F 2013 field code of 2 to 4 digits, e.g. '0413'.")
TERM = validate.Regexp(r"^[0-9]{4}-[a-z0-9-]{1,20}$", error="A term such as '2027-spring'.")


class OfferingSchema(Schema):
    """One run of the course in a term."""

    class Meta:
        unknown = RAISE

    term = fields.String(required=True, validate=TERM, metadata={"example": "2027-spring"})
    starts_on = IsoDate(required=True)
    ends_on = IsoDate(required=True)
    places = Integer(validate=validate.Range(0, 100_000), metadata={"description": "Open places"})
    applications_open = IsoDate()
    applications_close = IsoDate()

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            raise ValidationError("Must not be before starts_on.", "ends_on")
        if (data.get("applications_open") and data.get("applications_close")
                and data["applications_close"] < data["applications_open"]):
            raise ValidationError("Must not be before applications_open.", "applications_close")


class CourseInSchema(Schema):
    """A course as a coordinator writes it (POST, PUT)."""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=CODE, metadata={"description": "Unique within the school"})
    title = LangMap(required=True, max_length=300)
    description = LangMap(required=True, max_length=5000)
    programme = fields.String(required=True, validate=PROGRAMME, metadata={"example": "MEM"})
    credits = Number(required=True, validate=validate.Range(0.5, 60), metadata={"description": "ECTS"})
    eqf_level = Integer(validate=validate.Range(1, 8))
    isced_f = fields.String(validate=ISCED_F)
    languages = fields.List(LanguageTag(), required=True,
                            validate=[validate.Length(1, 10), unique_items],
                            metadata={"description": "Teaching languages, BCP 47"})
    delivery = fields.String(required=True, validate=validate.OneOf(DELIVERY_MODES))
    hours = Integer(validate=validate.Range(1, 2000), metadata={"description": "Contact hours"})
    learning_outcomes = fields.List(LangMap(max_length=1000), load_default=list, validate=validate.Length(max=30))
    prerequisites = fields.List(LangMap(max_length=1000), load_default=list, validate=validate.Length(max=30))
    instructors = fields.List(EntityId(), load_default=list, validate=[validate.Length(max=20), unique_items],
                              metadata={"description": "Faculty ids"})
    offerings = fields.List(fields.Nested(OfferingSchema), load_default=list, validate=validate.Length(max=20))
    visibility = fields.String(load_default="school", validate=validate.OneOf(VISIBILITIES),
                               metadata={"description": "alliance: shared with partner schools"})
    status = fields.String(load_default="draft", validate=validate.OneOf(STATUSES))


class CourseSchema(CourseInSchema):
    """A course as the API returns it and as its events carry it."""

    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True)
    version = Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class CourseQuerySchema(PageQuerySchema):
    """Filters, sort and paging of GET /courses."""

    q = fields.String(validate=validate.Length(1, 200), metadata={"description": "Free text in title, "
                      "description and code, any language"})
    programme = fields.String(validate=PROGRAMME)
    language = LanguageTag()
    delivery = fields.String(validate=validate.OneOf(DELIVERY_MODES))
    credits_min = fields.Float(validate=validate.Range(0, 60))
    credits_max = fields.Float(validate=validate.Range(0, 60))
    term = fields.String(validate=TERM)
    status = fields.String(validate=validate.OneOf(STATUSES))
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
    sort = fields.String(load_default="code", validate=validate.OneOf(
        ["code", "-code", "title", "-title", "credits", "-credits", "updated_at", "-updated_at"]))


class CoursePageSchema(PageSchema):
    items = fields.List(fields.Nested(CourseSchema), required=True)
