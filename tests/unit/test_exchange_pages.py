"""The rules of the exchange pages that need no server: slot times in the visit's zone, the profile form, the
incoming page's grouping by slot with its waitlist in order."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from services.catalog.frontdoor.exchange import _profile_body
from services.catalog.i18n import slot_time
from services.catalog.frontdoor.incoming import _slots

SLOT = {"id": "s1", "kind": "seminar", "starts_at": "2027-04-13T09:00:00+08:00", "ends_at": "2027-04-13T11:00:00+08:00"}


def test_a_slot_time_is_shown_in_the_visit_time_zone_and_names_it():
    assert slot_time(SLOT, "Asia/Shanghai") == "2027-04-13 09:00–11:00 (Asia/Shanghai)"
    assert slot_time(SLOT, "Europe/Paris") == "2027-04-13 03:00–05:00 (Europe/Paris)"


def test_a_slot_time_without_a_known_zone_names_its_offset():
    assert slot_time(SLOT, None) == "2027-04-13 09:00–11:00 (UTC+08:00)"
    assert slot_time(SLOT, "Not/AZone") == "2027-04-13 09:00–11:00 (UTC+08:00)"


def test_a_slot_over_midnight_shows_the_end_date_and_a_missing_slot_shows_nothing():
    late = {**SLOT, "starts_at": "2027-04-13T22:00:00+08:00", "ends_at": "2027-04-14T01:00:00+08:00"}
    assert slot_time(late, "Asia/Shanghai") == "2027-04-13 22:00–2027-04-14 01:00 (Asia/Shanghai)"
    assert slot_time(None, "Asia/Shanghai") == ""
    assert slot_time({"starts_at": "soon"}, None) == ""


def test_the_profile_form_becomes_a_patch_body_of_the_public_fields_only():
    form = MultiDict([("expertise", "0413\nventure building, 0413\n\n"), ("bio_en", " Runs a studio. "),
                      ("bio_zh", ""), ("from", "2027-05-01"), ("to", "2027-05-20"), ("from", ""), ("to", "")])
    body, errors = _profile_body(form)
    assert errors == {}
    assert body == {"expertise": ["0413", "venture building"], "bio": {"en": "Runs a studio."},
                    "availability": [{"from": "2027-05-01", "to": "2027-05-20"}]}


def test_incoming_requests_are_grouped_by_slot_with_the_waitlist_in_order():
    visit = {"id": "v1", "slots": [{**SLOT, "places_left": 0, "capacity": 1}, {**SLOT, "id": "s2"}]}
    decisions = [
        {"id": "a", "visit_id": "v1", "slot_id": "s1", "status": "waitlisted", "waitlist_position": 2},
        {"id": "b", "visit_id": "v1", "slot_id": "s1", "status": "approved"},
        {"id": "c", "visit_id": "v1", "slot_id": "s1", "status": "waitlisted", "waitlist_position": 1},
        {"id": "d", "visit_id": "v1", "slot_id": "s1", "status": "pending"},
        {"id": "e", "visit_id": "v1", "slot_id": "s1", "status": "declined"},
    ]
    (entry,) = _slots([visit], decisions)  # the slot without requests is left out
    assert entry["places_left"] == 0
    assert [d["id"] for d in entry["waitlist"]] == ["c", "a"]
    assert [d["id"] for d in entry["pending"]] == ["d"]
    assert [d["id"] for d in entry["holding"]] == ["b"]
    assert [d["id"] for d in entry["closed"]] == ["e"]
