"""The faculty profile the issue asks the API to accept as it is, and builders of many more."""

from __future__ import annotations

import copy

FACULTY = {
    "name": {"en": "Li Wei", "zh": "李伟"}, "title": "Professor",
    "department": "Engineering Management", "expertise": ["0413", "technology strategy"],
    "languages": ["zh", "en"], "bio": {"en": "Works on R&D portfolio decisions."},
    "courses": [], "availability": [{"from": "2027-04-01", "to": "2027-05-15"}],
    "email": "li.wei@example.edu", "visibility": "alliance",
}
# what must never leave the school: the sample's contact details plus the optional private fields
PRIVATE = {"email": "li.wei@example.edu", "phone": "+86 21 6223 9999",
           "private_notes": "Sabbatical request pending; do not share"}


def profile(**changes) -> dict:
    """The sample profile with some fields changed."""
    doc = copy.deepcopy(FACULTY)
    doc.update(changes)
    return doc
