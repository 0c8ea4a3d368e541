"""Hostile input to the courses API: each gets a clear 4xx problem, nothing is stored or published.

The inputs and the answers are written to tests/artifacts/hostile-inputs.md;
docs/security.md shows that table.
"""

from __future__ import annotations

import json

import pytest

from tests.samples import COURSE, course

JSON = "application/json"


def body(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


HOSTILE = [
    # (name, method, path, content type, raw body, extra headers, expected status)
    ("body over the size limit", "POST", "/courses", JSON, body(course(description={"en": "x" * 300_000})), {}, 413),
    ("form-encoded body", "POST", "/courses", "application/x-www-form-urlencoded", b"code=X", {}, 415),
    ("XML body", "POST", "/courses", "application/xml", b"<course/>", {}, 415),
    ("no content type", "POST", "/courses", None, body(COURSE), {}, 415),
    ("malformed JSON", "POST", "/courses", JSON, b'{"code": "X",', {}, 400),
    ("JSON array instead of object", "POST", "/courses", JSON, body([COURSE]), {}, 422),
    ("JSON null", "POST", "/courses", JSON, b"null", {}, 422),
    ("invalid UTF-8", "POST", "/courses", JSON, b'{"code": "\xff\xfe"}', {}, 400),
    ("lone surrogate escape", "POST", "/courses", JSON,
     body(course(title={"en": "SURROGATE"})).replace(b"SURROGATE", b"\\ud800"), {}, 400),
    ("NUL character in a string", "POST", "/courses", JSON, body(course(code="A\x00B")), {}, 400),
    ("unknown field", "POST", "/courses", JSON, body(course(owner="sdu-sie")), {}, 422),
    ("school field (set by the server)", "POST", "/courses", JSON, body(course(school="sdu-sie")), {}, 422),
    ("wrong type: credits as string", "POST", "/courses", JSON, body(course(credits="3")), {}, 422),
    ("wrong type: boolean as integer", "POST", "/courses", JSON, body(course(hours=True)), {}, 422),
    ("wrong type: languages as string", "POST", "/courses", JSON, body(course(languages="en")), {}, 422),
    ("integer beyond 8 bytes", "POST", "/courses", JSON, body(course(hours=2**64)), {}, 422),
    ("huge integer literal", "POST", "/courses", JSON,
     body(COURSE).replace(b'"hours": 48', b'"hours": ' + b"9" * 5000), {}, 400),
    ("float infinity literal", "POST", "/courses", JSON, body(COURSE).replace(b'"credits": 3', b'"credits": Infinity'),
     {}, 422),
    ("date out of range", "POST", "/courses", JSON, body(course(offerings=[
        {"term": "2027-spring", "starts_on": "9999-12-31", "ends_on": "9999-12-31"}])), {}, 422),
    ("date that does not exist", "POST", "/courses", JSON, body(course(offerings=[
        {"term": "2027-spring", "starts_on": "2027-02-30", "ends_on": "2027-03-01"}])), {}, 422),
    ("huge string", "POST", "/courses", JSON, body(course(title={"en": "x" * 100_000})), {}, 422),
    ("huge array", "POST", "/courses", JSON, body(course(instructors=["00000000-0000-4000-8000-000000000000"] * 5000)),
     {}, 422),
    ("deeply nested value", "POST", "/courses", JSON,
     body(COURSE).replace(b'"hours": 48', b'"hours": ' + b"[" * 5000 + b"]" * 5000), {}, 400),
    ("$-prefixed key in a language map", "POST", "/courses", JSON, body(course(title={"en": "x", "$gt": ""})), {}, 422),
    ("$-prefixed top-level key", "POST", "/courses", JSON, body({**COURSE, "$set": {"school": "sdu-sie"}}), {}, 422),
    ("dotted key", "POST", "/courses", JSON, body(course(title={"en": "x", "a.b": "y"})), {}, 422),
    ("operator object as a value", "POST", "/courses", JSON, body(course(code={"$ne": None})), {}, 422),
    ("$-prefixed query parameter", "GET", "/courses?$where=1", None, None, {}, 422),
    ("operator in a query value", "GET", "/courses?programme[$ne]=MEM", None, None, {}, 422),
    ("query value with regex syntax", "GET", "/courses?programme=.*", None, None, {}, 422),
    ("limit above the cap", "GET", "/courses?limit=100000", None, None, {}, 422),
    ("limit beyond 8 bytes", "GET", "/courses?limit=99999999999999999999", None, None, {}, 422),
    ("forged page cursor", "GET", "/courses?cursor=eyIkZ3QiOiIifQ", None, None, {}, 400),
    ("path id that is not an id", "GET", "/courses/..%2F..%2Fetc", None, None, {}, 404),
    ("path id with an operator", "GET", "/courses/%7B%22%24gt%22%3A%22%22%7D", None, None, {}, 404),
    ("change feed since beyond 8 bytes", "GET", "/changes?since=99999999999999999999", None, None, {}, 422),
    ("change feed since negative", "GET", "/changes?since=-1", None, None, {}, 422),
    ("malformed Idempotency-Key", "POST", "/courses", JSON, body(COURSE), {"Idempotency-Key": "x" * 500}, 400),
    ("unsupported method", "PATCH", "/courses", JSON, b"{}", {}, 405),
]


@pytest.fixture(scope="module")
def report(artifacts_dir):
    rows = []
    yield rows
    lines = ["| input | request | status | problem type |", "|---|---|---|---|"]
    lines += [f"| {name} | `{method} {path[:60]}` | {status} | `{slug}` |" for name, method, path, status, slug in rows]
    (artifacts_dir / "hostile-inputs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name, method, path, content_type, raw, headers, status", HOSTILE,
                         ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_a_clear_problem_and_changes_nothing(
        client, auth, mongo_client, courses_app, report, name, method, path, content_type, raw, headers, status):
    all_headers = {**auth(), **headers}
    if content_type:
        all_headers["Content-Type"] = content_type
    response = client.open(path, method=method, data=raw, headers=all_headers)
    text = response.get_data(as_text=True)
    assert response.status_code == status, (name, response.status_code, text[:500])
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].startswith("urn:alliance-catalog:problem:") and problem["status"] == status
    assert "Traceback" not in text and "File \"" not in text
    db = courses_app.extensions["db"]
    assert db["courses"].count_documents({}) == 0, "hostile input stored something"
    assert db["changes"].count_documents({}) == 0, "hostile input reached the change log"
    report.append((name, method, path, status, problem["type"].rsplit(":", 1)[1]))


# the same request checks stand in front of every service: a sample of the list above, per service
EVERY_SERVICE = [
    ("faculty", "POST", "/faculty"), ("visits", "POST", "/visits"), ("visits", "POST", "/slot-requests"),
]
GENERIC = [
    ("body over the size limit", JSON, b'{"x": "' + b"x" * 300_000 + b'"}', 413),
    ("form-encoded body", "application/x-www-form-urlencoded", b"a=b", 415),
    ("malformed JSON", JSON, b'{"a": ', 400),
    ("invalid UTF-8", JSON, b'{"a": "\xff"}', 400),
    ("lone surrogate escape", JSON, b'{"a": "\\ud800"}', 400),
    ("deeply nested value", JSON, b"[" * 5000 + b"]" * 5000, 400),
    ("$-prefixed top-level key", JSON, b'{"$set": {"school": "sdu-sie"}}', 422),
    ("JSON array instead of object", JSON, b"[]", 422),
]


@pytest.mark.parametrize("service, method, path", EVERY_SERVICE, ids=[f"{m} {p}" for _, m, p in EVERY_SERVICE])
@pytest.mark.parametrize("name, content_type, raw, status", GENERIC, ids=[g[0] for g in GENERIC])
def test_every_write_service_refuses_hostile_bodies_and_stores_nothing(
        make_settings, mongo_client, auth, service, method, path, name, content_type, raw, status):
    import importlib

    app = importlib.import_module(f"services.{service}.app").create_app(make_settings("ecnu-cto", service),
                                                                       client=mongo_client)
    role = auth("ecnu-cto", "coordinator")
    response = app.test_client().open(path, method=method, data=raw, headers={**role, "Content-Type": content_type})
    assert response.status_code == status, (name, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/problem+json"
    db = app.extensions["db"]
    assert all(db[c].count_documents({}) == 0 for c in db.list_collection_names() if not c.startswith("system"))


@pytest.mark.parametrize("query", ["?$where=1", "?school[$ne]=x", "?limit=99999999999999999999", "?cursor=%00",
                                   "?credits_min=nan", "?q=" + "x" * 5000])
def test_the_catalog_search_refuses_hostile_queries(make_settings, mongo_client, query):
    from services.catalog.app import create_app

    app = create_app(make_settings("ecnu-cto", "catalog"), client=mongo_client)
    response = app.test_client().get(f"/courses{query}")
    assert response.status_code in (400, 422), (query, response.status_code)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("service", ["courses", "faculty", "catalog"])
@pytest.mark.parametrize("q", ["%C2%85", "%E3%80%80", "%20%09"], ids=["next-line", "ideographic-space", "ascii"])
def test_free_text_of_only_white_space_lists_as_if_there_were_none(make_settings, mongo_client, auth, service, q):
    # str.split() takes U+0085 and U+3000 for white space: such a query has no words, not an empty $and
    import importlib

    from services.catalog.store import ReadModel
    from services.catalog.sync import apply_event
    from tests.catalogutil import course_body, event
    from tests.faculty_samples import profile

    settings = make_settings("ecnu-cto", service)
    app = importlib.import_module(f"services.{service}.app").create_app(settings, client=mongo_client)
    path = "/courses" if service != "faculty" else "/faculty"
    client = app.test_client()
    # one entry to list, so that "the same list" is not merely two empty ones
    if service == "catalog":
        assert apply_event(ReadModel(app.extensions["db"]), event(course_body("ecnu-cto")), "ecnu-cto") == "applied"
    else:
        made = client.post(path, json=course() if service == "courses" else profile(), headers=auth())
        assert made.status_code == 201, made.get_json()
    plain = client.get(f"{path}?language=en", headers=auth())
    spaced = client.get(f"{path}?language=en&q={q}", headers=auth())
    assert spaced.status_code == 200, spaced.get_json()
    assert len(plain.get_json()["items"]) == 1
    assert spaced.get_json()["items"] == plain.get_json()["items"]
