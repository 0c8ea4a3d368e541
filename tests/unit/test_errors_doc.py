"""docs/errors.md documents every problem type the code can answer with, so clients can rely on the list.

The slugs are read from the source of shared/ and every service in services/:
`Problem(<status>, "<slug>", ...)` and `problem_response(<status>, "<slug>", ...)`,
the `_HTTP_SLUGS` table and its fallback in shared/errors.py, and the templates
of EntityStore (`f"{self.entity}-not-found"`), documented as `<entity>-not-found`
and expanded for every store's `entity`.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "errors.md"
SCANNED = ("shared", "services")

_RAISED = re.compile(r"""\b(?:Problem|problem_response)\(\s*(?:status\s*=\s*)?(\d{3})\s*,\s*(?:slug\s*=\s*)?(f?)["']([^"']+)["']""")
_HTTP_TABLE = re.compile(r"""^\s*(\d{3}):\s*\(\s*["']([a-z0-9-]+)["']""", re.M)
_FALLBACK = re.compile(r"""_HTTP_SLUGS\.get\(\s*\w+\s*,\s*\(\s*["']([a-z0-9-]+)["']""")
_ENTITY = re.compile(r"""^\s+entity\s*=\s*["']([a-z_]+)["']""", re.M)


def sources():
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")


def slugs_in_code() -> dict[str, set[str]]:
    """slug -> the statuses it is raised with; templates as `<entity>-suffix`."""
    found: dict[str, set[str]] = {}
    for path, text in sources():
        for status, is_f, slug in _RAISED.findall(text):
            if is_f:
                slug = slug.replace("{self.entity}", "<entity>")
                if "{" in slug:
                    raise AssertionError(f"{path}: cannot document the computed problem slug {slug!r}")
            found.setdefault(slug, set()).add(status)
        if path.name == "errors.py" and path.parent.name == "shared":
            for status, slug in _HTTP_TABLE.findall(text):
                found.setdefault(slug, set()).add(status)
            for slug in _FALLBACK.findall(text):
                found.setdefault(slug, set()).add("4xx/5xx")
    return found


def store_entities() -> set[str]:
    """The `entity` names of the EntityStore subclasses in services/."""
    names = set()
    for path in sorted((REPO / "services").rglob("store.py")):
        text = path.read_text(encoding="utf-8")
        if "EntityStore" in text:
            names.update(_ENTITY.findall(text))
    return names


def documented() -> dict[str, str]:
    """slug -> the status column of docs/errors.md's tables."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`([a-z0-9<>-]+)`\s*\|\s*([^|]+)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_known_slugs_are_found_in_the_code():
    found = slugs_in_code()
    for slug in ("validation-failed", "unauthenticated", "precondition-failed", "course-code-taken",
                 "<entity>-not-found", "database-unavailable", "http-error"):
        assert slug in found
    assert "course" in store_entities()


def test_every_problem_type_in_the_code_is_documented_with_its_status():
    docs = documented()
    missing, wrong_status = [], []
    for slug, statuses in sorted(slugs_in_code().items()):
        if slug not in docs:
            missing.append(slug)
        elif not all(status in docs[slug] for status in statuses):
            wrong_status.append(f"{slug}: code {sorted(statuses)}, doc {docs[slug]!r}")
    assert not missing, f"add to docs/errors.md: {missing}"
    assert not wrong_status, f"fix the status in docs/errors.md: {wrong_status}"


def test_entity_not_found_is_documented_for_every_store():
    text = DOC.read_text(encoding="utf-8")
    missing = [e for e in sorted(store_entities()) if f"`{e}-not-found`" not in text]
    assert not missing, f"name these entities' not-found types in docs/errors.md: {missing}"


def test_errors_doc_states_the_type_prefix():
    from shared.errors import TYPE_PREFIX

    assert TYPE_PREFIX in DOC.read_text(encoding="utf-8")
