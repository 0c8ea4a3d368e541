"""The visit the issue asks the API to accept as it is, and builders of others."""

from __future__ import annotations

import copy

VISIT = {
    "theme": {"en": "Sci-tech entrepreneurship teaching week", "zh": "科技创业教学周"},
    "invited": ["sdu-sie"], "place": "Shanghai",
    "starts_on": "2027-04-12", "ends_on": "2027-04-16", "host_team": [],
    "slots": [{"kind": "guest_lecture", "starts_at": "2027-04-13T09:00:00+08:00",
               "ends_at": "2027-04-13T11:00:00+08:00", "capacity": 2},
              {"kind": "co_teaching", "starts_at": "2027-04-14T14:00:00+08:00",
               "ends_at": "2027-04-14T17:00:00+08:00", "capacity": 1}],
    "status": "confirmed",
}


def visit(**changes) -> dict:
    """The sample visit with some fields changed."""
    doc = copy.deepcopy(VISIT)
    doc.update(changes)
    return doc


def slot(kind="workshop", day="2027-04-15", start="09:00", end="11:00", capacity=2, **extra) -> dict:
    return {"kind": kind, "starts_at": f"{day}T{start}:00+08:00", "ends_at": f"{day}T{end}:00+08:00",
            "capacity": capacity, **extra}


def visit_doc(school: str, **changes) -> dict:
    """The host's document of the sample visit with some fields changed, made by the visits service's model."""
    from services.visits.model import new_visit
    from services.visits.schemas import VisitInSchema
    from shared.clock import now_iso

    return new_visit(VisitInSchema().load(visit(**changes)), school, now_iso())


def request_doc(db, school: str, host_school: str, visit_id: str, slot_id: str, faculty_id: str | None = None) -> dict:
    """A slot request as the requester's visits service stores it (its Requester's own document)."""
    import uuid

    from services.visits.workflow import Requester

    data = {"visit_id": visit_id, "host_school": host_school, "slot_id": slot_id,
            "faculty_id": faculty_id or str(uuid.uuid4()), "motivation": "Guest lecture on venture finance."}
    return Requester(db, school).new_request(data, str(uuid.uuid4()))


def as_host_reads(request: dict) -> dict:
    """The body of the slot_request event the requester's relay publishes, as the host's consumer loads it."""
    from services.visits.schemas import SlotRequestEventSchema
    from services.visits.worker import request_view

    return SlotRequestEventSchema().load(request_view(request))
