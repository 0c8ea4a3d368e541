"""What every kind of cross-school request shares on the wire (shared/saga.py): a coordinator's decision by hand,
the waitlist and places-left fields, the school id."""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.fields import EntityId
from shared.pagination import PageQuerySchema
from shared.saga import APPROVED, DECLINED

SCHOOL_ID = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$", error="A school id such as 'ecnu-cto'.")
WAITLIST_POSITION_DOC = "1 = next to get a place; only while waitlisted, else null"
NOTE_DOC = "The host coordinator's words to the requester: the reason of a decline by hand"
# a note: bounded, never blank
NOTE = [validate.Length(max=1000), validate.Regexp(r"\S", error="Must not be blank.")]


class NoteToDecline(Schema):
    """A coordinator's answer whose decline needs a note: the reason, shown to the requester."""

    class Meta:
        unknown = RAISE

    note = fields.String(validate=NOTE,
                         metadata={"description": "Shown to the requester; required to decline (the reason)"})

    @validates_schema
    def _a_decline_gives_its_reason(self, data, **kwargs):
        if data.get("status") == DECLINED and not data.get("note"):
            raise ValidationError("A decline needs its reason for the requester.", "note")


class DecisionInSchema(NoteToDecline):
    """A decision by hand of the host's coordinator."""

    status = fields.String(required=True, validate=validate.OneOf([APPROVED, DECLINED]))


class DecisionQuerySchema(PageQuerySchema):
    """Sort and paging of a host's decisions (each kind adds its filters)."""

    sort = fields.String(load_default="queued_at", validate=validate.OneOf(
        ["queued_at", "-queued_at", "updated_at", "-updated_at", "waitlisted_at", "-waitlisted_at"]), metadata={
        "description": "queued_at: when the host received the request; waitlisted_at (with status=waitlisted): "
                       "the order of a waitlist, next first"})

    @validates_schema
    def _waitlist_order_of_waitlisted_only(self, data, **kwargs):
        if data.get("sort", "").endswith("waitlisted_at") and data.get("status") != "waitlisted":
            raise ValidationError("Sort by waitlisted_at with status=waitlisted.", "sort")


class RequestFields(Schema):
    """What every kind's request shows at the requester's school, beside what was asked (a mixin: each kind adds
    `status`, `places_left` and its snapshots of what was decided)."""

    id = fields.String(required=True, attribute="_id", metadata={"format": "uuid"})
    school = fields.String(required=True, metadata={"description": "The requester's school"})
    reason = fields.String(allow_none=True, metadata={"description": "Why it was declined, as a stable slug"})
    note = fields.String(allow_none=True, metadata={"description": NOTE_DOC})
    waitlist_position = fields.Integer(allow_none=True, metadata={"description": WAITLIST_POSITION_DOC})
    decided_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    version = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class DecisionFields(Schema):
    """What every kind's decision carries on its events (each kind adds `status`, `places_left`, what was
    requested and its snapshots)."""

    id = fields.String(required=True, attribute="_id", metadata={"description": "The request's id"})
    school = fields.String(required=True, metadata={"description": "The host school"})
    requester_school = fields.String(required=True)
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True, metadata={"description": NOTE_DOC})
    waitlist_position = fields.Integer(allow_none=True, metadata={"description": WAITLIST_POSITION_DOC})
    version = fields.Integer(required=True)
    request_version = fields.Integer(required=True, metadata={
        "description": "The newest version of the request the host has applied (the requester's acknowledgement)"})
    decided_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class DecisionEventFields(Schema):
    """What a requester reads of every kind's decision event (each kind adds `status` and its snapshots)."""

    class Meta:
        unknown = EXCLUDE

    id = EntityId(required=True)
    school = fields.String(required=True, validate=SCHOOL_ID)
    requester_school = fields.String(required=True, validate=SCHOOL_ID)
    reason = fields.String(allow_none=True, validate=validate.Length(max=100))
    decided_at = fields.String(allow_none=True, validate=validate.Length(max=40))
    note = fields.String(allow_none=True, validate=validate.Length(max=1000))
    waitlist_position = fields.Integer(allow_none=True, validate=validate.Range(1, 1_000_000))
    places_left = fields.Integer(allow_none=True, validate=validate.Range(0, 100_000))
    # 0 from a host that does not send it yet: the requester then keeps re-sending its latest intent
    request_version = fields.Integer(load_default=0, validate=validate.Range(0, 2**62))


class RequestEventFields(Schema):
    """What a host reads of every kind's request event (each kind adds what is requested and by whom)."""

    class Meta:
        unknown = EXCLUDE

    id = EntityId(required=True)
    school = fields.String(required=True, validate=SCHOOL_ID)
    host_school = fields.String(required=True, validate=SCHOOL_ID)
    withdrawn = fields.Boolean(load_default=False, metadata={"description": "The requester withdrew it"})
    version = fields.Integer(required=True, validate=validate.Range(1, 2**62))


class RequestQuerySchema(PageQuerySchema):
    """Sort and paging of a school's own requests (each kind adds its filters)."""

    sort = fields.String(load_default="-created_at", validate=validate.OneOf(
        ["created_at", "-created_at", "updated_at", "-updated_at"]))
