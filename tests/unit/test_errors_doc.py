"""docs/errors.md documents every problem type a client may see, and nothing else, with its status.

The list is the registry in shared/errors.py (`PROBLEM_TYPES`, plus the `http-error`
fallback): a DomainError of an unregistered kind cannot even be raised, so the
registry is what the code can answer with. The per-entity types are documented as
one row, `<entity>-not-found` / `<entity>-conflict`, naming each entity.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.errors import ENTITIES, FALLBACK, PROBLEM_TYPES, TYPE_PREFIX, DomainError

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "errors.md"
TEMPLATES = ("-not-found", "-conflict")


def documented() -> dict[str, str]:
    """slug -> the status column of docs/errors.md's tables."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`([a-z0-9<>-]+)`\s*\|\s*([^|]+)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def registered() -> dict[str, str]:
    """slug -> status of every type in the registry, the per-entity ones folded into their template."""
    out = {}
    for slug, problem in PROBLEM_TYPES.items():
        for suffix in TEMPLATES:
            if slug.endswith(suffix) and slug[: -len(suffix)] in ENTITIES:
                slug = f"<entity>{suffix}"
        out[slug] = str(problem.status)
    out[FALLBACK] = "4xx/5xx"
    return out


def test_every_registered_problem_type_is_documented_with_its_status():
    docs = documented()
    missing = sorted(set(registered()) - set(docs))
    wrong = [f"{slug}: registry {status}, doc {docs[slug]!r}" for slug, status in sorted(registered().items())
             if slug in docs and status not in docs[slug]]
    assert not missing, f"add to docs/errors.md: {missing}"
    assert not wrong, f"fix the status in docs/errors.md: {wrong}"


def test_the_docs_list_no_problem_type_the_code_cannot_raise():
    stale = sorted(set(documented()) - set(registered()))
    assert not stale, f"docs/errors.md lists types that are not in shared/errors.PROBLEM_TYPES: {stale}"


def test_entity_types_are_named_for_every_entity_of_the_stores():
    from services.catalog.query import CourseSearch, VisitSearch
    from services.courses.store import CourseStore
    from services.faculty.store import FacultyStore
    from services.visits.store import DecisionStore, RequestStore, VisitStore

    stores = (CourseStore, FacultyStore, VisitStore, RequestStore, DecisionStore, CourseSearch, VisitSearch)
    assert {store.entity for store in stores} <= set(ENTITIES)
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{e}-not-found" for e in ENTITIES if f"`{e}-not-found`" not in text]
    assert not missing, f"name these entities' not-found types in docs/errors.md: {missing}"


def test_a_domain_error_of_an_unregistered_kind_cannot_be_raised():
    with pytest.raises(ValueError, match="unregistered problem type"):
        DomainError("no-such-type", "detail")
    refused = DomainError("course-code-taken", "code 'X' is taken")
    assert (refused.status, refused.slug, refused.title) == (409, "course-code-taken", PROBLEM_TYPES[
        "course-code-taken"].title)


def test_errors_doc_states_the_type_prefix():
    assert TYPE_PREFIX in DOC.read_text(encoding="utf-8")
