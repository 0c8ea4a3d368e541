"""What a course looks like on the wire: the request and response schemas of the courses API.

Change how courses are validated here. Every field is bounded, unknown fields
are refused (422), and the response schema is also the body of the course's
events (its public state).
"""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from services.courses.model import (
    DECISION_STATUSES, DELIVERY_MODES, ENDORSED, HOME, HOST, REQUEST_STATUSES, STATUSES, VISIBILITIES,
)
from shared import saga_schemas
from shared.auth import MAX_PROFILE_CLAIM
from shared.fields import EntityId, Integer, IsoDate, LangMap, LanguageTag, Number, unique_items
from shared.pagination import PageQuerySchema, PageSchema
from shared.saga import APPROVALS, AUTOMATIC, DECLINED
from shared.saga_schemas import SCHOOL_ID, DecisionInSchema  # noqa: F401 (DecisionInSchema: the API's)

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", error="1-32 letters, digits, '.', '_' or '-'.")
PROGRAMME = validate.Regexp(r"^[A-Za-z][A-Za-z0-9 _-]{0,39}$", error="1-40 letters, digits, spaces, '_' or '-'.")
ISCED_F = validate.Regexp(r"^[0-9]{2,4}$", error="An ISCED-F 2013 field code of 2 to 4 digits, e.g. '0413'.")
TERM = validate.Regexp(r"^[0-9]{4}-[a-z0-9-]{1,20}$", error="A term such as '2027-spring'.")


APPROVAL_DOC = ("How the host decides on students' requests for places: automatic (first come first served among "
                "endorsed requests: approved while places remain, then waitlisted) or review (each request waits as "
                "pending for the host's coordinator)")
PLACES_LEFT_DOC = ("Places less the seats held by approved requests; 0 when full or the course is withdrawn; "
                   "null when the offering has no places")


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
    approval = fields.String(load_default=AUTOMATIC, dump_default=AUTOMATIC, validate=validate.OneOf(APPROVALS),
                             metadata={"description": APPROVAL_DOC})
    # an offering read from the API and sent back unchanged carries it: accepted, and ignored
    places_left = Integer(allow_none=True, validate=validate.Range(0, 100_000),
                          metadata={"description": "Read-only: the service derives it from the seats held"})

    @post_load
    def _derived_fields_are_not_written(self, data, **kwargs):
        data.pop("places_left", None)
        return data

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
    offerings = fields.List(fields.Nested(OfferingSchema), load_default=list, validate=validate.Length(max=20),
                            metadata={"description": "At most one offering per term"})
    visibility = fields.String(load_default="school", validate=validate.OneOf(VISIBILITIES),
                               metadata={"description": "alliance: shared with partner schools"})
    status = fields.String(load_default="draft", validate=validate.OneOf(STATUSES))

    @validates_schema
    def _one_offering_per_term(self, data, **kwargs):
        seen = set()
        for index, offering in enumerate(data.get("offerings") or []):
            if offering["term"] in seen:
                raise ValidationError({"offerings": {index: {"term": ["Another offering has this term."]}}})
            seen.add(offering["term"])


class PublishedOfferingSchema(OfferingSchema):
    """An offering as the API returns it and as its course's events carry it."""

    places_left = fields.Integer(allow_none=True, validate=validate.Range(0, 100_000),
                                 metadata={"description": PLACES_LEFT_DOC})


class CourseSchema(CourseInSchema):
    """A course as the API returns it and as its events carry it (each offering with its places left)."""

    offerings = fields.List(fields.Nested(PublishedOfferingSchema), load_default=list,
                            validate=validate.Length(max=20))

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


# students' course-place requests: at the student's school ("requester") and at the host


STATEMENT = validate.Length(1, 2000)
# as long as the front door lets a claim be (longer, the host would refuse the event)
PROFILE_TEXT = validate.Length(max=MAX_PROFILE_CLAIM)


class PlaceRequestInSchema(Schema):
    """A student's request for a place in a partner's course offering, made at their own school.

    Who asks (id, name, email, student number, programme) comes from the student's token.
    """

    class Meta:
        unknown = RAISE

    host_school = fields.String(required=True, validate=SCHOOL_ID)
    course_id = EntityId(required=True)
    term = fields.String(required=True, validate=TERM, metadata={"example": "2027-spring"})
    statement = fields.String(required=True, validate=[STATEMENT, validate.Regexp(r"\S", error="Must not be blank.")],
                              metadata={"description": "The student's words to both coordinators (1-2000 characters)"})


class RequestedCourseSchema(Schema):
    """What the student's pages show of the course, as the host last sent it (a partner's copy)."""

    class Meta:
        unknown = EXCLUDE

    title = fields.Dict(keys=fields.String(validate=validate.Length(max=35)),
                        values=fields.String(validate=validate.Length(max=300)), validate=validate.Length(max=20))
    code = fields.String(validate=validate.Length(max=32))
    credits = fields.Float(allow_none=True, validate=validate.Range(0, 60))


class RequestedOfferingSchema(Schema):
    """The offering as the host last sent it."""

    class Meta:
        unknown = EXCLUDE

    term = fields.String(validate=validate.Length(max=30))
    starts_on = fields.String(validate=validate.Length(max=10))
    ends_on = fields.String(validate=validate.Length(max=10))
    approval = fields.String(validate=validate.Length(max=20), metadata={"description": "automatic or review"})


class PlaceRequestSchema(PlaceRequestInSchema, saga_schemas.RequestFields):
    """A place request as the student's school shows it, with the host's decision once it arrives."""

    student_id = fields.String(required=True, metadata={"description": "The student's id (their token's subject)"})
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True, metadata={"description": "Kept at the student's school only"})
    student_number = fields.String(allow_none=True, metadata={"description": "Kept at the student's school only"})
    programme = fields.String(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    note = fields.String(allow_none=True, metadata={
        "description": "The words of whoever declined it (the student's coordinator or the host's)"})
    declined_by = fields.String(allow_none=True, validate=validate.OneOf([HOME, HOST]),
                                metadata={"description": "home: the student's school; host: the host school"})
    places_left = fields.Integer(allow_none=True, metadata={
        "description": "Places left in the offering when the host last wrote its decision (null: not known)"})
    course = fields.Nested(RequestedCourseSchema, allow_none=True, metadata={
        "description": "The course (title, code, credits) as the host last sent it; null until the host answers"})
    offering = fields.Nested(RequestedOfferingSchema, allow_none=True)
    endorsed_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    endorsement_note = fields.String(allow_none=True, metadata={
        "description": "The words the student's coordinator gave with an endorsement (kept at the student's school)"})


class PlaceRequestEventSchema(saga_schemas.RequestEventFields):
    """The body of a place_request event: only what the host needs (never the student's email, number or id)."""

    course_id = EntityId(required=True)
    term = fields.String(required=True, validate=TERM)
    name = fields.String(allow_none=True, validate=PROFILE_TEXT)
    programme = fields.String(allow_none=True, validate=PROFILE_TEXT)
    statement = fields.String(load_default="", validate=validate.Length(max=2000))
    created_at = fields.String(validate=validate.Length(max=40), metadata={"format": "date-time"})
    updated_at = fields.String(validate=validate.Length(max=40), metadata={"format": "date-time"})


class EndorsementInSchema(saga_schemas.NoteToDecline):
    """The student's school's coordinator endorses a request (it travels to the host) or declines it."""

    status = fields.String(required=True, validate=validate.OneOf([ENDORSED, DECLINED]))


class PlaceRequestQuerySchema(saga_schemas.RequestQuerySchema):
    """Filters, sort and paging of GET /place-requests."""

    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    host_school = fields.String(validate=SCHOOL_ID)
    course_id = EntityId()


class PlaceRequestPageSchema(PageSchema):
    items = fields.List(fields.Nested(PlaceRequestSchema), required=True)


class PlaceDecisionSchema(saga_schemas.DecisionFields):
    """The host's decision on one place request, as its events carry it (HostPlaceDecisionSchema: as its API
    returns it)."""

    course_id = fields.String(required=True)
    term = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(DECISION_STATUSES))
    course = fields.Nested(RequestedCourseSchema, allow_none=True)
    offering = fields.Nested(RequestedOfferingSchema, allow_none=True)
    places_left = fields.Integer(allow_none=True, metadata={"description": PLACES_LEFT_DOC})


class HostPlaceDecisionSchema(PlaceDecisionSchema):
    """The host's decision as its own API returns it to its coordinators: the event's fields and who asks, why.

    The student's name, programme and statement come from the request event; they are never published back.
    """

    name = fields.String(allow_none=True)
    programme = fields.String(allow_none=True)
    statement = fields.String(dump_default="")
    queued_at = fields.Integer(metadata={"description": "When the host received the request (its order)"})


class PlaceDecisionEventSchema(saga_schemas.DecisionEventFields):
    """The body of a place_decision event, as the student's school reads it."""

    status = fields.String(required=True, validate=validate.OneOf(DECISION_STATUSES))
    course = fields.Nested(RequestedCourseSchema, allow_none=True)
    offering = fields.Nested(RequestedOfferingSchema, allow_none=True)


class PlaceDecisionQuerySchema(saga_schemas.DecisionQuerySchema):
    """Filters, sort and paging of GET /place-decisions."""

    status = fields.String(validate=validate.OneOf(DECISION_STATUSES))
    course_id = EntityId()
    term = fields.String(validate=TERM)
    requester_school = fields.String(validate=SCHOOL_ID)


class PlaceDecisionPageSchema(PageSchema):
    items = fields.List(fields.Nested(HostPlaceDecisionSchema), required=True)
