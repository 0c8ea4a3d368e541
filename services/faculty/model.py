"""A faculty profile and its rules. Pure functions, no I/O.

A profile belongs to one school. Its contact details (`email`, `phone`) and
`private_notes` are private: they never leave the school, so they are kept out
of events, the change feed and every reader's view but a coordinator's of the
school. Partners see a profile only while it is active with visibility
`alliance`. Its id (a UUID) is never reused; withdrawing keeps the record with
status `withdrawn`, and a withdrawn profile cannot be changed again.
"""

from __future__ import annotations

import re
import uuid

from shared.clock import touched
from shared.errors import DomainError
from shared.visibility import Visibility

ENTITY = "faculty"
STATUSES = ("active", "withdrawn")
VISIBILITIES = ("school", "alliance")
# the fields that never leave the school
PRIVATE = ("email", "phone", "private_notes")
# the fields a coordinator writes; everything else the service sets
WRITABLE = (
    "name", "title", "department", "expertise", "languages", "bio", "courses", "availability", "visibility",
    *PRIVATE,
)
# the public fields a faculty member keeps current on their own profile; every other field is the coordinators'
SELF_WRITABLE = ("expertise", "bio", "availability")
ISCED_F = re.compile(r"^[0-9]{2,4}$")


def new_profile(data: dict, school: str, now: str, faculty_id: str | None = None) -> dict:
    """The document of a profile created from validated input; it starts active."""
    doc = {"_id": faculty_id or str(uuid.uuid4()), "school": school, "status": "active", "version": 1,
           "created_at": now, **touched(now)}
    doc.update({k: data[k] for k in WRITABLE if k in data})
    doc.update(derived_fields(doc))
    doc.update(private_keys(doc))
    return doc


def replacement(data: dict, now: str) -> tuple[dict, list[str]]:
    """A full update (PUT): the fields to set and the optional fields it leaves out, to remove.

    The store increments `version` in the same write.
    """
    fields = {k: data[k] for k in WRITABLE if k in data}
    fields.update(touched(now))
    fields.update(derived_fields(fields))
    fields.update(private_keys(fields))
    return fields, [k for k in WRITABLE if k not in data]


def self_update(current: dict, data: dict, now: str) -> dict:
    """A faculty member's update of their own profile (PATCH): only SELF_WRITABLE fields, the others kept.

    The derived fields are computed from the profile as it will be, so search still finds its name.
    """
    fields = {k: data[k] for k in SELF_WRITABLE if k in data}
    fields.update(touched(now))
    fields.update(derived_fields({**current, **fields}))
    return fields


def may_edit_self(role: str, own_school: bool, caller_faculty_id: str | None, faculty_id: str) -> bool:
    """A faculty member edits their own profile only; a coordinator of the school any of its profiles."""
    if not own_school:
        return False
    return role == "coordinator" or (role == "faculty" and caller_faculty_id == faculty_id)


def email_key(email: str) -> str:
    """How an email is compared when a coordinator looks a profile up by it: trimmed, lower-cased."""
    return email.strip().lower()


def private_keys(doc: dict) -> dict:
    """The indexed key of the private email (never in a view, an event or the feed: schemas leave it out)."""
    return {"email_key": email_key(doc["email"])} if doc.get("email") else {}


def withdrawn_fields(now: str) -> dict:
    return {"status": "withdrawn", **touched(now)}


def ensure_changeable(doc: dict) -> None:
    """A withdrawn profile is final: a 409 for any further write (create a new profile instead)."""
    if doc.get("status") == "withdrawn":
        raise DomainError("faculty-withdrawn", "a withdrawn profile cannot be changed; create a new profile instead")


def derived_fields(doc: dict) -> dict:
    """The indexed fields the service computes from public fields only, so no filter reveals private ones."""
    return {"search_text": search_text(doc), "expertise_keys": expertise_keys(doc.get("expertise") or [])}


def search_text(doc: dict) -> str:
    """What free-text search looks in: the name and the bio in every language, lower-cased."""
    parts = []
    for field in ("name", "bio"):
        parts.extend((doc.get(field) or {}).values())
    return "\n".join(p for p in parts if p).lower()


def is_isced_code(item: str) -> bool:
    return bool(ISCED_F.match(item))


def expertise_keys(expertise: list[str]) -> list[str]:
    """What the `expertise` filter matches: keywords lower-cased, and each ISCED-F code with its broader fields.

    "0413" (management and administration) also files the profile under "041"
    (business and administration) and "04" (business, administration and law).
    """
    keys: list[str] = []
    for item in expertise:
        if is_isced_code(item):
            candidates = [item[:n] for n in range(2, len(item) + 1)]
        else:
            candidates = [expertise_key(item)]
        keys.extend(k for k in candidates if k not in keys)
    return keys


def expertise_key(item: str) -> str:
    """How one expertise item, or a filter value, is compared: codes as they are, keywords lower-cased."""
    return item if is_isced_code(item) else normalise_keyword(item)


def normalise_keyword(text: str) -> str:
    return " ".join(text.split()).lower()


# an active profile is read by all the school's members; with visibility alliance, by partners too
VISIBILITY = Visibility(live="active")
is_visible_to_partners = VISIBILITY.shared
can_read = VISIBILITY.can_read
reader_filter = VISIBILITY.reader_filter


def sees_private_fields(role: str, own_school: bool) -> bool:
    """Only the school's coordinators see contact details and private notes."""
    return own_school and role == "coordinator"


def without_private(doc: dict) -> dict:
    """The profile minus what never leaves the school."""
    return {k: v for k, v in doc.items() if k not in PRIVATE and k != "email_key"}


def view_for(doc: dict, role: str, own_school: bool) -> dict:
    """The profile as this reader may see it."""
    return doc if sees_private_fields(role, own_school) else without_private(doc)


