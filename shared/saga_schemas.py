"""What every kind of cross-school request shares on the wire (shared/saga.py): a coordinator's decision by hand,
the waitlist and places-left fields, the school id."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

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
