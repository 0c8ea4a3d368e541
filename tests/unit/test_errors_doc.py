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


def entity_stores() -> list[type]:
    """Every EntityStore subclass of the services (their modules imported first)."""
    import importlib

    from shared.entities import EntityStore

    for path in sorted((REPO / "services").glob("*/*.py")):
        if path.stem in ("store", "query"):
            importlib.import_module(f"services.{path.parent.name}.{path.stem}")
    found, todo = [], list(EntityStore.__subclasses__())
    while todo:
        store = todo.pop()
        found.append(store)
        todo.extend(store.__subclasses__())
    return found


def test_entity_types_are_registered_and_named_for_every_entity_of_the_stores():
    stores = entity_stores()
    assert len(stores) >= 6, [s.__name__ for s in stores]
    # the shared bases of shared/saga_store.py name no entity: their subclasses do
    unregistered = sorted({s.entity for s in stores if not s.__module__.startswith("shared.")} - set(ENTITIES))
    assert not unregistered, f"add to shared.errors.ENTITIES (their not-found/conflict types): {unregistered}"
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{e}{suffix}" for e in ENTITIES for suffix in TEMPLATES if f"`{e}{suffix}`" not in text]
    assert not missing, f"name these entities' types in docs/errors.md: {missing}"


def test_a_domain_error_of_an_unregistered_kind_cannot_be_raised():
    with pytest.raises(ValueError, match="unregistered problem type"):
        DomainError("no-such-type", "detail")
    refused = DomainError("course-code-taken", "code 'X' is taken")
    assert (refused.status, refused.slug, refused.title) == (409, "course-code-taken", PROBLEM_TYPES[
        "course-code-taken"].title)


def test_errors_doc_states_the_type_prefix():
    assert TYPE_PREFIX in DOC.read_text(encoding="utf-8")
