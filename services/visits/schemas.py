"""What visits, slot requests and decisions look like on the wire.

Change how visits are validated here. Every field is bounded and unknown
fields are refused (422). The response schemas are also the bodies of the
events; the event schemas that read partners' events ignore fields they do
not know, since an added optional field is a minor schema change.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from zoneinfo import available_timezones

from services.visits.model import (
    APPROVALS, AUTOMATIC, REQUEST_STATUSES, SLOT_KINDS, STATUSES, parse_moment,
)
from shared import saga_schemas
from shared.fields import EntityId, Integer, IsoDate, IsoDateTime, LangMap, unique_items
from shared.pagination import PageQuerySchema, PageSchema
from shared.saga_schemas import SCHOOL_ID, DecisionInSchema  # noqa: F401 (DecisionInSchema: the API's)

PLACE = validate.Length(1, 200)
HASH = validate.Regexp(r"^[0-9a-f]{64}$", error="A SHA-256 hex digest.")
_TIME_ZONES = frozenset(available_timezones())


def _time_zone(name: str) -> None:
    if name not in _TIME_ZONES:
        raise ValidationError("An IANA time zone such as 'Asia/Shanghai'.")


APPROVAL_DOC = ("How the host decides on requests: automatic (first come first served: approved while places "
                "remain, then waitlisted) or review (each request waits as pending for the host's coordinator)")


class SlotSchema(Schema):
    """One exchange slot of a visit: a guest lecture, a co-teaching session, a workshop..."""

    class Meta:
        unknown = RAISE

    id = EntityId(metadata={"description": "Assigned by the service when absent; keep it in a PUT"})
    kind = fields.String(required=True, validate=validate.OneOf(SLOT_KINDS))
    title = LangMap(max_length=300)
    starts_at = IsoDateTime(required=True, metadata={"example": "2027-04-13T09:00:00+08:00"})
    ends_at = IsoDateTime(required=True, metadata={"example": "2027-04-13T11:00:00+08:00"})
    capacity = Integer(required=True, validate=validate.Range(1, 1000),
                       metadata={"description": "How many visiting faculty the slot takes"})
    # a slot read from the API and sent back unchanged carries it: accepted, and ignored
    places_left = Integer(validate=validate.Range(0, 1000),
                          metadata={"description": "Read-only: the service derives it from the seats held"})

    @post_load
    def _derived_fields_are_not_written(self, data, **kwargs):
        data.pop("places_left", None)
        return data

    @validates_schema
    def _times_in_order(self, data, **kwargs):
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at and ends_at and parse_moment(ends_at) <= parse_moment(starts_at):
            raise ValidationError("Must be after starts_at.", "ends_at")


class VisitInSchema(Schema):
    """A visit as its host's coordinator writes it (POST, PUT)."""

    class Meta:
        unknown = RAISE

    theme = LangMap(required=True, max_length=300)
    invited = fields.List(fields.String(validate=SCHOOL_ID), required=True,
                          validate=[validate.Length(1, 50), unique_items],
                          metadata={"description": "The partner schools invited, or [\"all\"] for every partner"})
    place = fields.String(required=True, validate=PLACE, metadata={"example": "Shanghai"})
    time_zone = fields.String(validate=[validate.Length(max=64), _time_zone], metadata={
        "example": "Asia/Shanghai", "description": "The IANA time zone the visit's times are shown in"})
    starts_on = IsoDate(required=True)
    ends_on = IsoDate(required=True)
    host_team = fields.List(EntityId(), load_default=list, validate=[validate.Length(max=30), unique_items],
                            metadata={"description": "Faculty ids of the host team"})
    agenda = fields.List(LangMap(max_length=1000), load_default=list, validate=validate.Length(max=50))
    slots = fields.List(fields.Nested(SlotSchema), load_default=list, validate=validate.Length(max=50))
    status = fields.String(load_default="planned", validate=validate.OneOf(STATUSES))
    approval = fields.String(load_default=AUTOMATIC, dump_default=AUTOMATIC, validate=validate.OneOf(APPROVALS),
                             metadata={"description": APPROVAL_DOC})

    @validates_schema
    def _dates_and_slots(self, data, **kwargs):
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if starts_on and ends_on and ends_on < starts_on:
            raise ValidationError("Must not be before starts_on.", "ends_on")
        errors = {}
        ids = [slot["id"] for slot in data.get("slots") or [] if slot.get("id")]
        if len(ids) != len(set(ids)):
            raise ValidationError("Slot ids must be unique.", "slots")
        for index, slot in enumerate(data.get("slots") or []):
            day = parse_moment(slot["starts_at"]).date().isoformat()
            if starts_on and ends_on and not starts_on <= day <= ends_on:
                errors[index] = {"starts_at": ["Must fall between the visit's starts_on and ends_on."]}
        if errors:
            raise ValidationError({"slots": errors})


class PublishedSlotSchema(SlotSchema):
    """A slot as the API returns it and as its visit's events carry it."""

    places_left = fields.Integer(required=True, validate=validate.Range(0, 1000), metadata={
        "description": "Capacity less the seats held by approvals; 0 when the slot is full or the visit cancelled"})


class VisitSchema(VisitInSchema):
    """A visit as the API returns it and as its events carry it."""

    slots = fields.List(fields.Nested(PublishedSlotSchema), required=True, validate=validate.Length(max=50))
    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True, metadata={"description": "The host school"})
    version = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class VisitQuerySchema(PageQuerySchema):
    """Filters, sort and paging of GET /visits."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(SLOT_KINDS), metadata={"description": "Has a slot of this kind"})
    starts_from = IsoDate(metadata={"description": "Visits starting on or after this date"})
    starts_until = IsoDate(metadata={"description": "Visits starting on or before this date"})
    sort = fields.String(load_default="starts_on", validate=validate.OneOf(
        ["starts_on", "-starts_on", "updated_at", "-updated_at"]))


class VisitPageSchema(PageSchema):
    items = fields.List(fields.Nested(VisitSchema), required=True)


class DecidedSlotSchema(Schema):
    """The slot as the host last decided on it (a partner's copy: unknown fields are ignored when read)."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(validate=validate.Length(max=40))
    title = fields.Dict(keys=fields.String(validate=validate.Length(max=35)),
                        values=fields.String(validate=validate.Length(max=300)), validate=validate.Length(max=20))
    starts_at = fields.String(validate=validate.Length(max=40), metadata={"format": "date-time"})
    ends_at = fields.String(validate=validate.Length(max=40), metadata={"format": "date-time"})
    capacity = fields.Integer(validate=validate.Range(0, 100_000))


class DecidedVisitSchema(Schema):
    """What a requester's page shows of the visit a decision is about, without calling the host."""

    class Meta:
        unknown = EXCLUDE

    theme = fields.Dict(keys=fields.String(validate=validate.Length(max=35)),
                        values=fields.String(validate=validate.Length(max=300)), validate=validate.Length(max=20))
    place = fields.String(validate=validate.Length(max=200))
    time_zone = fields.String(allow_none=True, validate=validate.Length(max=64),
                              metadata={"description": "IANA time zone of the visit; absent: use the times' offsets"})
    approval = fields.String(validate=validate.Length(max=20), metadata={"description": "automatic or review"})
    starts_on = fields.String(validate=validate.Length(max=10))
    ends_on = fields.String(validate=validate.Length(max=10))


PLACES_LEFT_DOC = "Places left in the slot when the host last wrote this decision (null: not known)"


class SlotRequestInSchema(Schema):
    """A faculty member's request for a slot in a partner's visit, made at their own school."""

    class Meta:
        unknown = RAISE

    visit_id = EntityId(required=True)
    host_school = fields.String(required=True, validate=SCHOOL_ID)
    slot_id = EntityId(required=True)
    faculty_id = EntityId(required=True, metadata={"description": "A faculty token may only name its own"})
    motivation = fields.String(load_default="", validate=validate.Length(max=2000))


class SlotRequestSchema(SlotRequestInSchema, saga_schemas.RequestFields):
    """A slot request as the requester's school shows it, with the host's decision once it arrives."""

    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    slot_hash = fields.String(allow_none=True, metadata={"description": "The slot as decided on, hashed"})
    slot = fields.Nested(DecidedSlotSchema, allow_none=True, metadata={
        "description": "The slot (kind, title, times with their offset, capacity) as the host last decided on it; "
                       "null until the host has received the request"})
    visit = fields.Nested(DecidedVisitSchema, allow_none=True, metadata={
        "description": "The visit's theme, place, time zone and approval mode, as the host last sent them"})
    places_left = fields.Integer(allow_none=True, metadata={"description": PLACES_LEFT_DOC})


class SlotRequestEventSchema(saga_schemas.RequestEventFields):
    """The body of a slot_request event: what the requester asks of the host."""

    visit_id = EntityId(required=True)
    slot_id = EntityId(required=True)
    faculty_id = EntityId(required=True)
    motivation = fields.String(load_default="", validate=validate.Length(max=2000))
    confirmed_slot_hash = fields.String(allow_none=True, validate=HASH,
                                        metadata={"description": "The changed slot the requester accepts"})


class SlotRequestQuerySchema(saga_schemas.RequestQuerySchema):
    """Filters, sort and paging of GET /slot-requests."""

    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    visit_id = EntityId()
    host_school = fields.String(validate=SCHOOL_ID)
    faculty_id = EntityId()


class SlotRequestPageSchema(PageSchema):
    items = fields.List(fields.Nested(SlotRequestSchema), required=True)


class DecisionSchema(saga_schemas.DecisionFields):
    """The host's decision on one slot request, as its events carry it (HostDecisionSchema: as its API returns it)."""

    visit_id = fields.String(required=True)
    slot_id = fields.String(required=True)
    faculty_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    slot_hash = fields.String(allow_none=True, metadata={"description": "SHA-256 of the slot decided on"})
    slot = fields.Nested(DecidedSlotSchema, allow_none=True)
    visit = fields.Nested(DecidedVisitSchema, allow_none=True)
    places_left = fields.Integer(allow_none=True, metadata={"description": PLACES_LEFT_DOC})


class HostDecisionSchema(DecisionSchema):
    """The host's decision as its own API returns it to its coordinators: the event's fields and the request's words.

    `motivation` is kept from the request event so that a coordinator deciding by hand reads it; it is
    never published back on the decision events (the requester has it already).
    """

    motivation = fields.String(dump_default="", metadata={
        "description": "The requester's motivation, as their request event carried it (empty: none given)"})


class DecisionEventSchema(saga_schemas.DecisionEventFields):
    """The body of a slot_decision event, as a requester reads it."""

    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    slot_hash = fields.String(allow_none=True, validate=HASH)
    slot = fields.Nested(DecidedSlotSchema, allow_none=True)
    visit = fields.Nested(DecidedVisitSchema, allow_none=True)


class DecisionQuerySchema(saga_schemas.DecisionQuerySchema):
    """Filters, sort and paging of GET /slot-decisions."""

    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    visit_id = EntityId()
    slot_id = EntityId()
    requester_school = fields.String(validate=SCHOOL_ID)


class DecisionPageSchema(PageSchema):
    items = fields.List(fields.Nested(HostDecisionSchema), required=True)
