"""Building catalog inputs in tests: what the producers really publish, and signed events about it.

Every body here is made by the producing service's own code: its input schema
loads a sample, its model makes the document, and its relay's public view (or
the tombstone the relay sends) turns it into the event body. A consumer test
fed a hand-written body would pass against fields no producer sends.
"""

from __future__ import annotations

from services.courses import model as courses_model
from services.courses import worker as courses_worker
from services.courses.schemas import CourseInSchema
from services.faculty import model as faculty_model
from services.faculty import worker as faculty_worker
from services.faculty.schemas import FacultyInSchema
from services.visits import model as visits_model
from services.visits.schemas import VisitInSchema
from services.visits.worker import visit_view
from shared.events import Event, sign, source_of
from shared.outbox import OutboxSpec, describe
from tests.faculty_samples import profile
from tests.samples import course
from tests.visit_samples import slot, visit

NOW = "2026-11-24T00:00:00.000Z"
# the sample visit's slots, and the seats their approvals hold at the host
GUEST_LECTURE, WORKSHOP = "5d0c9f4e-3f5a-4a6e-9d61-0f6f5f9c1a01", "5d0c9f4e-3f5a-4a6e-9d61-0f6f5f9c1a02"
VISIT = visit(
    theme={"en": "Digital transformation in manufacturing", "zh": "制造业数字化转型"},
    place="Jinan, Software Park campus", starts_on="2099-04-13", ends_on="2099-04-17", invited=["ecnu-cto"],
    slots=[{**slot("guest_lecture", "2099-04-14", "09:00", "11:00", capacity=2), "id": GUEST_LECTURE},
           {**slot("workshop", "2099-04-15", "14:00", "17:00", capacity=1), "id": WORKSHOP}],
)
# one of the lecture's two places is taken; the workshop is full
TAKEN = {GUEST_LECTURE: 1, WORKSHOP: 1}


def published(spec: OutboxSpec, doc: dict, version: int) -> dict:
    """The body the relay publishes about `doc` at `version`: its public view, or the tombstone of a hidden one."""
    doc = {**doc, "version": version, "public_visible": True}
    type_, _, body = describe(spec, doc)
    assert type_ is not None
    return body


def course_doc(school: str, entity_id: str | None = None, **changes) -> dict:
    """The courses service's document of the sample course with `changes`."""
    return courses_model.new_course(CourseInSchema().load(course(**changes)), school, NOW, entity_id)


def course_body(school: str, entity_id: str | None = None, version: int = 1, **changes) -> dict:
    return published(courses_worker.SPEC, course_doc(school, entity_id, **changes), version)


def withdrawn_course_body(school: str, entity_id: str, version: int) -> dict:
    """The tombstone the courses relay publishes when a course is withdrawn."""
    doc = {**course_doc(school, entity_id), **courses_model.withdrawn_fields(NOW)}
    return published(courses_worker.SPEC, doc, version)


def faculty_body(school: str, entity_id: str | None = None, version: int = 1, **changes) -> dict:
    """What the faculty relay publishes about the sample profile with `changes` (no contact details)."""
    doc = faculty_model.new_profile(FacultyInSchema().load(profile(**changes)), school, NOW, entity_id)
    return published(faculty_worker.SPEC, doc, version)


def visit_doc(school: str, entity_id: str | None = None, **changes) -> dict:
    """The visits service's document of the sample visit with `changes`."""
    data = {**VISIT, **changes}
    return visits_model.new_visit(VisitInSchema().load(data), school, NOW, entity_id)


def visit_body(school: str, entity_id: str | None = None, version: int = 1, taken: dict | None = None,
               **changes) -> dict:
    """What the host's visits relay publishes: the visit, each slot with its places left given the seats `taken`
    (the sample's by default)."""
    doc = {**visit_doc(school, entity_id, **changes), "version": version}
    return visit_view(doc, TAKEN if taken is None else taken)


def event(body: dict, type_: str = "course.published.v1", school: str | None = None, service: str = "courses",
          seq: int = 1, version: int | None = None, keyring=None) -> Event:
    """An event about `body`, signed with `keyring`'s school key when given."""
    ev = Event(type=type_, source=source_of(school or body["school"], service), subject=body["id"], sequence=seq,
               entityversion=version or body.get("version", 1), data=body)
    return sign(ev, keyring.private_key()) if keyring is not None else ev
