"""Which event a pending version becomes, and the digest: pure functions of the outbox."""

from __future__ import annotations

from services.courses.worker import SPEC
from shared.digest import digest_of
from shared.outbox import describe
from tests.samples import course


def doc(**changes):
    d = {**course(), "_id": "c-1", "school": "ecnu-cto", "version": 3, "created_at": "t", "updated_at": "t"}
    d.update(changes)
    return d


def test_a_first_visible_version_is_published_and_later_ones_updated():
    assert describe(SPEC, doc())[:2] == ("course.published.v1", True)
    assert describe(SPEC, doc(public_visible=True))[:2] == ("course.updated.v1", True)


def test_hiding_a_visible_course_sends_a_tombstone_without_its_content():
    type_, visible, body = describe(SPEC, doc(public_visible=True, visibility="school"))
    assert (type_, visible) == ("course.withdrawn.v1", False)
    assert body == {"id": "c-1", "school": "ecnu-cto", "version": 3, "status": "published",
                    "visibility": "school"}


def test_a_course_partners_never_saw_publishes_nothing():
    assert describe(SPEC, doc(status="draft"))[0] is None
    assert describe(SPEC, doc(visibility="school"))[0] is None


def test_the_public_body_has_no_internal_fields():
    _, _, body = describe(SPEC, doc(pending_since=5, idempotency_key="k", search_text="x", public_visible=True))
    assert not {"pending_since", "idempotency_key", "search_text", "public_visible", "_id"} & set(body)
    assert body["id"] == "c-1"


def test_the_digest_does_not_depend_on_order_and_sees_versions():
    a = digest_of([("x", 1), ("y", 2)])
    assert a == digest_of([("y", 2), ("x", 1)]) and a["count"] == 2
    assert a["sha256"] != digest_of([("x", 1), ("y", 3)])["sha256"]
