"""The pure rules of visits and slot decisions: overlap, the slot hash, the order of the checks."""

from __future__ import annotations

import uuid

import pytest

from services.visits import model
from shared.errors import DomainError

SLOT = {"id": str(uuid.uuid4()), "kind": "guest_lecture", "starts_at": "2027-04-13T09:00:00+08:00",
        "ends_at": "2027-04-13T11:00:00+08:00", "capacity": 2}
VISIT = {"_id": "v", "school": "ecnu-cto", "invited": ["sdu-sie"], "status": "confirmed", "slots": [SLOT]}


@pytest.mark.parametrize("a, b, expected", [
    (("09:00", "11:00"), ("10:00", "12:00"), True),
    (("09:00", "11:00"), ("11:00", "12:00"), False),  # back to back is not an overlap
    (("09:00", "11:00"), ("08:00", "09:00"), False),
    (("09:00", "11:00"), ("09:30", "10:30"), True),
    (("09:00", "11:00"), ("07:00", "13:00"), True),
])
def test_overlap_is_of_half_open_ranges(a, b, expected):
    at = lambda t: f"2027-04-13T{t}:00+08:00"
    assert model.overlaps(at(a[0]), at(a[1]), at(b[0]), at(b[1])) is expected
    assert model.overlaps(at(b[0]), at(b[1]), at(a[0]), at(a[1])) is expected


def test_overlap_compares_instants_across_offsets():
    # 09:00 in Shanghai is 01:00 UTC
    assert model.overlaps("2027-04-13T09:00:00+08:00", "2027-04-13T11:00:00+08:00",
                          "2027-04-13T02:30:00+00:00", "2027-04-13T03:30:00Z")
    assert not model.overlaps("2027-04-13T09:00:00+08:00", "2027-04-13T11:00:00+08:00",
                              "2027-04-13T09:00:00+00:00", "2027-04-13T11:00:00+00:00")


def test_the_slot_hash_binds_time_kind_and_capacity_not_the_offset_spelling():
    same_instant = {**SLOT, "starts_at": "2027-04-13T01:00:00+00:00", "ends_at": "2027-04-13T03:00:00Z"}
    assert model.slot_hash(SLOT) == model.slot_hash(same_instant)
    assert model.slot_hash(SLOT) == model.slot_hash({**SLOT, "title": {"en": "A new title"}})
    for change in ({"starts_at": "2027-04-13T09:30:00+08:00"}, {"ends_at": "2027-04-13T12:00:00+08:00"},
                   {"kind": "workshop"}, {"capacity": 3}):
        assert model.slot_hash({**SLOT, **change}) != model.slot_hash(SLOT), change


@pytest.mark.parametrize("visit, slot_id, school, reason", [
    (None, SLOT["id"], "sdu-sie", model.VISIT_NOT_FOUND),
    ({**VISIT, "status": "cancelled"}, SLOT["id"], "sdu-sie", model.VISIT_CANCELLED),
    (VISIT, SLOT["id"], "other-school", model.NOT_INVITED),
    (VISIT, SLOT["id"], "ecnu-cto", model.NOT_INVITED),  # the host never requests from itself
    ({**VISIT, "invited": ["all"]}, SLOT["id"], "other-school", None),
    (VISIT, str(uuid.uuid4()), "sdu-sie", model.SLOT_NOT_FOUND),
    (VISIT, SLOT["id"], "sdu-sie", None),
])
def test_refusals_come_before_capacity(visit, slot_id, school, reason):
    assert model.refusal(visit, slot_id, school) == reason


def test_the_outcome_applies_refusal_then_overlap_then_capacity():
    assert model.outcome(model.VISIT_CANCELLED, True, True) == (model.DECLINED, model.VISIT_CANCELLED)
    assert model.outcome(None, True, False) == (model.DECLINED, model.OVERLAP)
    assert model.outcome(None, False, True) == (model.APPROVED, None)
    assert model.outcome(None, False, False) == (model.WAITLISTED, None)


def test_a_conflicting_hold_is_another_request_overlapping_in_time():
    holds = [{"request_id": "r1", "starts_at": SLOT["starts_at"], "ends_at": SLOT["ends_at"]}]
    assert model.conflicting_hold(holds, "r2", "2027-04-13T10:00:00+08:00", "2027-04-13T10:30:00+08:00") == holds[0]
    assert model.conflicting_hold(holds, "r1", SLOT["starts_at"], SLOT["ends_at"]) is None
    assert model.conflicting_hold(holds, "r2", "2027-04-13T11:00:00+08:00", "2027-04-13T12:00:00+08:00") is None


def test_a_slot_change_asks_approvals_to_reconfirm_and_removal_declines():
    decided = model.slot_hash(SLOT)
    moved = {**SLOT, "starts_at": "2027-04-13T10:00:00+08:00"}
    assert model.after_slot_change(model.APPROVED, decided, SLOT, False) is None
    assert model.after_slot_change(model.APPROVED, decided, moved, False) == (model.RECONFIRM, None)
    assert model.after_slot_change(model.WAITLISTED, decided, moved, False) is None
    assert model.after_slot_change(model.APPROVED, decided, None, False) == (model.DECLINED, model.SLOT_REMOVED)
    assert model.after_slot_change(model.WAITLISTED, decided, SLOT, True) == (model.DECLINED, model.VISIT_CANCELLED)
    assert model.after_slot_change(model.DECLINED, decided, None, True) is None


def test_a_new_visit_gets_slot_ids_and_cannot_start_cancelled():
    given = str(uuid.uuid4())
    doc = model.new_visit({"slots": [{**SLOT, "id": given}, {k: v for k, v in SLOT.items() if k != "id"}]},
                          "ecnu-cto", "2027-01-04T08:30:15.001Z")
    assert doc["slots"][0]["id"] == given and uuid.UUID(doc["slots"][1]["id"])
    with pytest.raises(DomainError):
        model.new_visit({"status": "cancelled"}, "ecnu-cto", "now")


def test_a_slot_changed_again_before_confirmation_asks_to_confirm_the_new_slot():
    decided = model.slot_hash(SLOT)
    moved = {**SLOT, "starts_at": "2027-04-13T10:00:00+08:00", "ends_at": "2027-04-13T12:00:00+08:00"}
    # the decision already awaits re-confirmation of an earlier change: it is bound to the new slot now
    assert model.after_slot_change(model.RECONFIRM, decided, moved, False) == (model.RECONFIRM, None)
    assert model.after_slot_change(model.RECONFIRM, model.slot_hash(moved), moved, False) is None
