"""Documents the issues ask the API to accept as they are, and builders of many more."""

from __future__ import annotations

import copy

COURSE = {
    "code": "MEM-6101",
    "title": {"en": "Technology Strategy and Innovation Management", "zh": "技术战略与创新管理"},
    "description": {"en": "How technology-based firms choose, build and defend their position."},
    "programme": "MEM", "credits": 3, "eqf_level": 7, "isced_f": "0413",
    "languages": ["zh", "en"], "delivery": "in_person", "hours": 48,
    "learning_outcomes": [{"en": "Build a technology roadmap for a product line."}],
    "instructors": [],
    "offerings": [{"term": "2027-spring", "starts_on": "2027-03-01", "ends_on": "2027-06-30", "places": 40}],
    "visibility": "alliance", "status": "published",
}


def course(**changes) -> dict:
    """The sample course with some fields changed."""
    doc = copy.deepcopy(COURSE)
    doc.update(changes)
    return doc
