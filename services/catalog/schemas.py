"""What the catalog reads from events, and what its search API returns.

Event bodies are validated for the fields the catalog uses only; unknown fields
are excluded (an added optional field is a minor change, see docs/events.md), and
every field that is kept is bounded. The API schemas are the read side's own.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.fields import EntityId, IsoDate, LanguageTag
from shared.pagination import PageQuerySchema, PageSchema

SCHOOL = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$", error="A school id such as 'ecnu-cto'.")
PROGRAMME = validate.Regexp(r"^[A-Za-z][A-Za-z0-9 _-]{0,39}$", error="1-40 letters, digits, spaces, '_' or '-'.")
ISCED_F = validate.Regexp(r"^[0-9]{2,4}$", error="An ISCED-F 2013 field code of 2 to 4 digits, e.g. '0413'.")
SLOT_KIND = validate.Regexp(r"^[a-z][a-z_]{0,39}$", error="A slot kind such as 'guest_lecture'.")
TERM = validate.Regexp(r"^[0-9]{4}-[a-z0-9-]{1,20}$", error="A term such as '2027-spring'.")
SORTS = ["relevance", "code", "-code", "title", "-title", "credits", "-credits", "school", "-school", "updated", "-updated"]


# one field checks every language key (a field per key was a tenth of a feed page's validation)
_LANGUAGE_TAG = LanguageTag()


class Localized(fields.Field):
    """Text by language ({"en": ..., "zh": ...}); a plain string is taken as English.

    Partners' bodies differ in whether short labels are localized; the catalog
    accepts both and stores a language map, bounded in size.
    """

    def __init__(self, max_length: int = 5000, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = {"en": value}
        if not isinstance(value, dict) or len(value) > 10:
            raise ValidationError("Text by language, e.g. {'en': '...', 'zh': '...'}.")
        out = {}
        for lang, text in value.items():
            if not isinstance(lang, str) or not isinstance(text, str):
                raise ValidationError("Keys and values must be strings.")
            _LANGUAGE_TAG.deserialize(lang)
            if len(text) > self.max_length:
                raise ValidationError(f"At most {self.max_length} characters per language.")
            out[lang] = text
        return out

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class _Body(Schema):
    class Meta:
        unknown = EXCLUDE

    id = EntityId(required=True)
    school = fields.String(validate=SCHOOL)
    version = fields.Integer(validate=validate.Range(1, 2**63 - 1))
    status = fields.String(validate=validate.Length(max=40))
    visibility = fields.String(validate=validate.Length(max=40))


class TombstoneBody(_Body):
    """What a withdrawal carries: enough to drop the entry, no content."""


class OfferingBody(Schema):
    class Meta:
        unknown = EXCLUDE

    term = fields.String(required=True, validate=TERM)
    starts_on = IsoDate(required=True)
    ends_on = IsoDate(required=True)
    places = fields.Integer(validate=validate.Range(0, 100_000))
    applications_open = IsoDate()
    applications_close = IsoDate()
    # the host's seat counter as the course was published; null without `places`, absent from an older host
    places_left = fields.Integer(allow_none=True, validate=validate.Range(0, 100_000))
    approval = fields.String(validate=validate.OneOf(("automatic", "review")))


class CourseBody(_Body):
    """A course event's body (the courses service's CourseSchema), as far as the catalog uses it."""

    school = fields.String(required=True, validate=SCHOOL)
    code = fields.String(required=True, validate=validate.Length(1, 32))
    title = Localized(required=True, max_length=300)
    description = Localized(load_default=dict, max_length=5000)
    programme = fields.String(required=True, validate=PROGRAMME)
    credits = fields.Float(required=True, validate=validate.Range(0, 60))
    eqf_level = fields.Integer(validate=validate.Range(1, 8))
    isced_f = fields.String(validate=ISCED_F)
    languages = fields.List(LanguageTag(), required=True, validate=validate.Length(1, 10))
    delivery = fields.String(required=True, validate=validate.Length(1, 20))
    hours = fields.Integer(validate=validate.Range(1, 2000))
    learning_outcomes = fields.List(Localized(max_length=1000), load_default=list, validate=validate.Length(max=30))
    prerequisites = fields.List(Localized(max_length=1000), load_default=list, validate=validate.Length(max=30))
    instructors = fields.List(EntityId(), load_default=list, validate=validate.Length(max=20))
    offerings = fields.List(fields.Nested(OfferingBody), load_default=list, validate=validate.Length(max=20))
    updated_at = fields.String(validate=validate.Length(max=40))


class FacultyBody(_Body):
    """A faculty member's public profile, as far as the catalog shows it."""

    school = fields.String(required=True, validate=SCHOOL)
    name = Localized(required=True, max_length=200)
    title = Localized(max_length=200)
    department = Localized(max_length=300)
    expertise = fields.List(Localized(max_length=200), load_default=list, validate=validate.Length(max=30))
    languages = fields.List(LanguageTag(), load_default=list, validate=validate.Length(max=10))
    bio = Localized(max_length=5000)
    courses = fields.List(EntityId(), load_default=list, validate=validate.Length(max=100))
    availability = fields.Raw()


class SlotBody(Schema):
    """A slot as the host's visits service publishes it (its PublishedSlotSchema)."""

    class Meta:
        unknown = EXCLUDE

    id = EntityId(required=True)
    kind = fields.String(validate=validate.Length(max=40))
    title = Localized(max_length=300)
    starts_at = fields.String(validate=validate.Length(max=40))
    ends_at = fields.String(validate=validate.Length(max=40))
    capacity = fields.Integer(validate=validate.Range(0, 100_000))
    # absent from a host that does not send it yet: then the places left are unknown
    places_left = fields.Integer(validate=validate.Range(0, 100_000))


class VisitBody(_Body):
    """A teaching-team visit as its host's visits service publishes it (its VisitSchema), with its slots."""

    school = fields.String(required=True, validate=SCHOOL)
    theme = Localized(required=True, max_length=300)
    place = fields.String(validate=validate.Length(max=200))
    starts_on = IsoDate(required=True)
    ends_on = IsoDate(required=True)
    invited = fields.List(fields.String(validate=SCHOOL), load_default=list, validate=validate.Length(max=50))
    slots = fields.List(fields.Nested(SlotBody), load_default=list, validate=validate.Length(max=200))
    # absent from a host that does not send them yet: automatic approval, times shown with their offsets
    approval = fields.String(load_default="automatic", validate=validate.OneOf(["automatic", "review"]))
    time_zone = fields.String(allow_none=True, validate=validate.Length(max=64))


# the catalog's API


class SearchQuerySchema(PageQuerySchema):
    """Free text, filters, sort and paging of GET /courses."""

    q = fields.String(validate=validate.Length(1, 200),
                      metadata={"description": "Words in code, title, learning outcomes, description or programme, "
                                               "any language; every word is required (the most of them when no "
                                               "course has all), typos allowed from 5 letters, English stemmed, "
                                               "Chinese segmented"})
    school = fields.String(validate=SCHOOL)
    programme = fields.String(validate=PROGRAMME)
    language = LanguageTag(metadata={"description": "A teaching language, BCP 47"})
    delivery = fields.String(validate=validate.OneOf(["in_person", "online", "hybrid"]))
    credits_min = fields.Float(validate=validate.Range(0, 60))
    credits_max = fields.Float(validate=validate.Range(0, 60))
    term = fields.String(validate=TERM)
    eqf_level = fields.Integer(validate=validate.Range(1, 8))
    isced_f = fields.String(validate=ISCED_F)
    sort = fields.String(validate=validate.OneOf(SORTS), metadata={
        "description": "relevance (the default with free text: an exact code first, then title, learning "
                       "outcomes, description; courses with an upcoming offering first), or a field, `-` for "
                       "descending (code is the default without free text)"})
    facets = fields.Boolean(load_default=True, metadata={"description": "false: leave out facet counts"})


class OfferingOut(Schema):
    term = fields.String()
    starts_on = fields.String()
    ends_on = fields.String()
    places = fields.Integer()
    applications_open = fields.String()
    applications_close = fields.String()
    places_left = fields.Integer(allow_none=True, metadata={
        "description": "Places left as the host last published them (0: full); null or absent: not stated"})
    approval = fields.String(metadata={"description": "automatic (first come, first served) or review"})


class CourseCardSchema(Schema):
    """A course as search results show it."""

    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True)
    own = fields.Boolean(required=True, metadata={"description": "True for this school's own course"})
    version = fields.Integer(required=True)
    code = fields.String(required=True)
    title = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    description = fields.Dict(keys=fields.String(), values=fields.String())
    programme = fields.String(required=True)
    credits = fields.Float(required=True)
    eqf_level = fields.Integer()
    isced_f = fields.String()
    languages = fields.List(fields.String(), required=True)
    delivery = fields.String(required=True)
    hours = fields.Integer()
    offerings = fields.List(fields.Nested(OfferingOut))
    instructors = fields.List(fields.String(), metadata={"description": "Faculty ids"})
    updated_at = fields.String()
    highlight = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.String()),
                            metadata={"description": "With free text: title and description by language as HTML, "
                                                     "escaped, the matched words in <mark>"})


class FacetValueSchema(Schema):
    value = fields.Raw(required=True)
    count = fields.Integer(required=True)


class SearchPageSchema(PageSchema):
    items = fields.List(fields.Nested(CourseCardSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "Courses matching the query and filters"})
    facets = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(FacetValueSchema)),
                         metadata={"description": "Per filter: its values and how many courses each would "
                                                  "match, with the other filters applied"})


class SuggestQuerySchema(Schema):
    q = fields.String(required=True, validate=validate.Length(1, 100),
                      metadata={"description": "What the student has typed; the last word is taken as a prefix"})
    limit = fields.Integer(load_default=8, validate=validate.Range(1, 20))


class SuggestionSchema(Schema):
    id = fields.String(required=True, metadata={"format": "uuid"})
    code = fields.String(required=True)
    title = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    school = fields.String(required=True)


class SuggestionsSchema(Schema):
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)


class ProfileSchema(Schema):
    id = fields.String(required=True, attribute="_id")
    school = fields.String(required=True)
    name = fields.Dict(required=True)
    title = fields.Dict()
    department = fields.Dict()
    expertise = fields.List(fields.Dict())
    languages = fields.List(fields.String())
    bio = fields.Dict()


class SlotSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String()
    title = fields.Dict()
    starts_at = fields.String()
    ends_at = fields.String()
    capacity = fields.Integer()
    places_left = fields.Integer(allow_none=True, metadata={
        "description": "Places left as the host published them, 0 when full; null when the host does not say"})


class OpenSlotSchema(SlotSchema):
    open_places = fields.Integer(allow_none=True, metadata={"description": "The same as places_left"})


class VisitSchema(Schema):
    """A teaching-team visit, each slot with its places left."""

    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True, metadata={"description": "The host school"})
    own = fields.Boolean(required=True, metadata={"description": "True for a visit this school hosts"})
    version = fields.Integer(required=True)
    status = fields.String()
    theme = fields.Dict(required=True)
    place = fields.String()
    starts_on = fields.String(required=True)
    ends_on = fields.String(required=True)
    invited = fields.List(fields.String())
    slots = fields.List(fields.Nested(SlotSchema), required=True)
    approval = fields.String(dump_default="automatic", metadata={
        "description": "automatic: first come first served; review: each request waits for the host's coordinator"})
    time_zone = fields.String(allow_none=True, metadata={
        "description": "The IANA time zone the host shows the visit's times in; absent: use the times' offsets"})


class CourseVisitSchema(VisitSchema):
    """A visit as a course shows it, with its open slots apart."""

    open_slots = fields.List(fields.Nested(OpenSlotSchema), metadata={
        "description": "The slots with places left (or unknown places)"})


class VisitQuerySchema(PageQuerySchema):
    """Filters and paging of GET /visits: upcoming visits, earliest first."""

    school = fields.String(validate=SCHOOL, metadata={"description": "The host school"})
    starts_from = IsoDate(metadata={"description": "Visits starting on or after this date"})
    starts_until = IsoDate(metadata={"description": "Visits starting on or before this date"})
    kind = fields.String(validate=SLOT_KIND, metadata={"description": "Has a slot of this kind, e.g. workshop"})


class VisitPageSchema(PageSchema):
    items = fields.List(fields.Nested(VisitSchema), required=True)


class CourseDetailSchema(CourseCardSchema):
    """A course with its instructors' public profiles and its school's upcoming visits."""

    learning_outcomes = fields.List(fields.Dict())
    prerequisites = fields.List(fields.Dict())
    hours = fields.Integer()
    instructor_profiles = fields.List(fields.Nested(ProfileSchema), required=True)
    visits = fields.List(fields.Nested(CourseVisitSchema), required=True)


class CheckSchema(Schema):
    at = fields.String()
    result = fields.String(metadata={"description": "equal, differs, repaired or error"})
    detail = fields.String()
    local = fields.Dict()
    remote = fields.Dict()


class SyncEntrySchema(Schema):
    school = fields.String(required=True)
    entity = fields.String(required=True, metadata={"description": "courses, faculty or visits"})
    own = fields.Boolean(required=True)
    applied_seq = fields.Integer(required=True, metadata={"description": "Highest source sequence applied"})
    source_last_seq = fields.Integer(allow_none=True, metadata={"description": "From the last digest check"})
    lag = fields.Integer(allow_none=True, metadata={"description": "source_last_seq - applied_seq"})
    synced_seq = fields.Integer(metadata={"description": "Everything up to here is held (feed or digest)"})
    last_digest_check = fields.Nested(CheckSchema, allow_none=True)
    last_catchup = fields.Dict(allow_none=True)
    dead_lettered = fields.Integer(required=True)
    held = fields.Integer(metadata={"description": "Visible entries held"})
    error = fields.Dict(allow_none=True, metadata={"description": "The last failure to reach the source"})


class PartnerSyncSchema(Schema):
    """One partner school at a glance: what the coordinators' "Partners" page shows."""

    school = fields.String(required=True)
    dead_lettered = fields.Integer(required=True, metadata={
        "description": "Events of this partner's topics refused by this school's consumers (catalog and visits)"})
    lag = fields.Integer(allow_none=True, metadata={"description": "Sum of the known lags of its entity kinds"})
    last_digest_check = fields.String(allow_none=True, metadata={
        "format": "date-time", "description": "The oldest of its entity kinds' last digest checks"})
    digest_results = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                                 metadata={"description": "Per entity kind: equal, differs, repaired or error"})
    errors = fields.Dict(metadata={"description": "Per entity kind: the last failure to reach the partner"})


class SyncSchema(Schema):
    school = fields.String(required=True)
    sources = fields.List(fields.Nested(SyncEntrySchema), required=True)
    partners = fields.List(fields.Nested(PartnerSyncSchema), required=True)
