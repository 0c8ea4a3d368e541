"""Building catalog inputs in tests: course, faculty and visit bodies, and signed events about them."""

from __future__ import annotations

import copy
import uuid

from shared.events import Event, sign, source_of
from tests.samples import course

FACULTY = {
    "name": {"en": "Li Wei", "zh": "李伟"}, "title": {"en": "Professor", "zh": "教授"},
    "department": {"en": "Engineering Management", "zh": "工程管理系"},
    "expertise": [{"en": "Technology strategy", "zh": "技术战略"}], "languages": ["zh", "en"],
    "bio": {"en": "Works on technology roadmaps.", "zh": "研究技术路线图。"}, "courses": [],
    "availability": {"terms": ["2027-spring"]}, "visibility": "alliance", "status": "published",
    "office_hours": "unknown fields are tolerated",
}
VISIT = {
    "theme": {"en": "Digital transformation in manufacturing", "zh": "制造业数字化转型"},
    "place": {"en": "Jinan, Software Park campus", "zh": "济南软件园校区"},
    "starts_on": "2099-04-13", "ends_on": "2099-04-17", "invited": ["ecnu-cto"], "status": "published",
    "slots": [
        {"id": "5d0c9f4e-3f5a-4a6e-9d61-0f6f5f9c1a01", "kind": "guest_lecture", "starts_at": "2099-04-14T09:00:00+08:00",
         "ends_at": "2099-04-14T11:00:00+08:00", "capacity": 2, "approved": 1},
        {"id": "5d0c9f4e-3f5a-4a6e-9d61-0f6f5f9c1a02", "kind": "workshop", "starts_at": "2099-04-15T14:00:00+08:00",
         "ends_at": "2099-04-15T17:00:00+08:00", "capacity": 1, "approved": 1},
    ],
}


def course_body(school: str, entity_id: str | None = None, version: int = 1, **changes) -> dict:
    body = course(**changes)
    body.update({"id": entity_id or str(uuid.uuid4()), "school": school, "version": version,
                 "created_at": "2026-11-24T00:00:00.000Z", "updated_at": "2026-11-24T00:00:00.000Z"})
    return body


def faculty_body(school: str, entity_id: str | None = None, version: int = 1, **changes) -> dict:
    body = copy.deepcopy(FACULTY)
    body.update({"id": entity_id or str(uuid.uuid4()), "school": school, "version": version, **changes})
    return body


def visit_body(school: str, entity_id: str | None = None, version: int = 1, **changes) -> dict:
    body = copy.deepcopy(VISIT)
    body.update({"id": entity_id or str(uuid.uuid4()), "school": school, "version": version, **changes})
    return body


def event(body: dict, type_: str = "course.published.v1", school: str | None = None, service: str = "courses",
          seq: int = 1, version: int | None = None, keyring=None) -> Event:
    """An event about `body`, signed with `keyring`'s school key when given."""
    ev = Event(type=type_, source=source_of(school or body["school"], service), subject=body["id"], sequence=seq,
               entityversion=version or body.get("version", 1), data=body)
    return sign(ev, keyring.private_key()) if keyring is not None else ev
