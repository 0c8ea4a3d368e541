"""The courses API on the real MongoDB-protocol server, through Flask's test client."""

from __future__ import annotations

import json
import random

import pytest

from tests.paging import TIES_IN_ONE_SECOND, all_pages, assert_pages_list_each_once_in_order, fixed_clock
from tests.samples import COURSE, course

PROBLEM = "application/problem+json"


def create(client, auth, doc=None, **headers):
    return client.post("/courses", json=doc or COURSE, headers={**auth(), **headers})


def assert_problem(response, status: int, slug: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == f"urn:alliance-catalog:problem:{slug}"
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_the_sample_course_is_accepted_and_read_back(client, auth):
    created = create(client, auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/courses/{body['id']}"
    assert body["school"] == "ecnu-cto" and body["version"] == 1
    read = client.get(f"/courses/{body['id']}", headers=auth("ecnu-cto", "student"))
    assert read.status_code == 200
    got = read.get_json()
    for field, value in COURSE.items():
        if field == "offerings":
            # the API adds each offering's approval mode (default automatic) and places left (none taken yet)
            value = [{**o, "approval": "automatic", "places_left": o["places"]} for o in value]
        assert got[field] == value, field
    assert got["created_at"] == got["updated_at"]


@pytest.mark.parametrize("change, pointer", [
    ({"title": {"zh": "只有中文"}}, "/title"),
    ({"languages": ["english"]}, "/languages/0"),
    ({"credits": "three"}, "/credits"),
    ({"eqf_level": 9}, "/eqf_level"),
    ({"delivery": "by_pigeon"}, "/delivery"),
    ({"offerings": [{"term": "2027-spring", "starts_on": "2027-06-30", "ends_on": "2027-03-01"}]},
     "/offerings/0/ends_on"),
    ({"offerings": [{"term": "2027-spring", "starts_on": "1999-01-01", "ends_on": "2027-03-01"}]},
     "/offerings/0/starts_on"),
    ({"hours": 2**70}, "/hours"),
    ({"surprise": True}, "/surprise"),
    ({"title": {"en": "x", "$where": "1"}}, "/title"),
])
def test_validation_errors_name_the_fields(client, auth, change, pointer):
    response = create(client, auth, course(**change))
    body = assert_problem(response, 422, "validation-failed")
    pointers = [e["pointer"] for e in body["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), pointers
    assert client.get("/courses?status=published", headers=auth()).get_json()["items"] == []


def test_missing_required_fields_are_each_named(client, auth):
    body = assert_problem(create(client, auth, {"code": "X-1"}), 422, "validation-failed")
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/title", "/description", "/programme", "/credits", "/languages", "/delivery"} <= pointers


def test_writes_need_a_coordinator_token_of_the_course_school(client, auth):
    assert_problem(client.post("/courses", json=COURSE), 401, "unauthenticated")
    assert_problem(client.post("/courses", json=COURSE, headers={"Authorization": "Bearer nonsense"}),
                   401, "unauthenticated")
    assert_problem(create(client, lambda: auth("ecnu-cto", "student")), 403, "forbidden")
    assert_problem(create(client, lambda: auth("sdu-sie", "coordinator")), 403, "forbidden")
    assert_problem(create(client, lambda: auth("sdu-sie", "partner")), 403, "forbidden")
    assert client.get("/courses", headers=auth()).get_json()["items"] == []


def test_an_update_needs_the_current_etag(client, auth):
    created = create(client, auth).get_json()
    url = f"/courses/{created['id']}"
    changed = course(title={"en": "Technology Strategy", "zh": "技术战略"})
    assert_problem(client.put(url, json=changed, headers=auth()), 428, "precondition-required")
    assert_problem(client.put(url, json=changed, headers={**auth(), "If-Match": '"7"'}), 412, "precondition-failed")
    for odd in ('""', "*", "1", 'W/"1"', '"1", "2"', '"99999999999999999999"'):
        response = client.put(url, json=changed, headers={**auth(), "If-Match": odd})
        assert response.status_code in (412, 428), (odd, response.status_code)
    ok = client.put(url, json=changed, headers={**auth(), "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    assert ok.get_json()["title"]["en"] == "Technology Strategy" and ok.get_json()["version"] == 2
    # the ETag just used is now stale
    stale = client.put(url, json=changed, headers={**auth(), "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    assert stale.headers["ETag"] == '"2"'


def test_an_update_leaving_out_an_optional_field_removes_it(client, auth):
    created = create(client, auth).get_json()
    without_hours = {k: v for k, v in COURSE.items() if k != "hours"}
    ok = client.put(f"/courses/{created['id']}", json=without_hours, headers={**auth(), "If-Match": '"1"'})
    assert ok.status_code == 200 and "hours" not in ok.get_json()


def test_withdrawing_keeps_the_course_with_status_withdrawn(client, auth):
    created = create(client, auth).get_json()
    url = f"/courses/{created['id']}"
    assert_problem(client.delete(url, headers=auth()), 428, "precondition-required")
    gone = client.delete(url, headers={**auth(), "If-Match": '"1"'})
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"
    assert client.get(url, headers=auth()).get_json()["status"] == "withdrawn"
    # students see only published courses
    assert_problem(client.get(url, headers=auth("ecnu-cto", "student")), 404, "course-not-found")


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_course(client, auth):
    first = create(client, auth, **{"Idempotency-Key": "k-123"})
    again = create(client, auth, **{"Idempotency-Key": "k-123"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    # the first result, also after the course was changed: version 1, its ETag and its body
    url = f"/courses/{first.get_json()['id']}"
    assert client.put(url, json=course(hours=50), headers={**auth(), "If-Match": '"1"'}).status_code == 200
    later = create(client, auth, **{"Idempotency-Key": "k-123"})
    assert later.status_code == 201 and later.headers["ETag"] == '"1"'
    assert later.get_json() == first.get_json()
    assert client.get(url, headers=auth()).get_json()["hours"] == 50
    other = create(client, auth, course(code="MEM-9"), **{"Idempotency-Key": "k-123"})
    assert_problem(other, 422, "idempotency-key-reused")
    assert len(client.get("/courses", headers=auth()).get_json()["items"]) == 1


def test_a_second_course_with_the_same_code_conflicts(client, auth):
    assert create(client, auth).status_code == 201
    assert_problem(create(client, auth), 409, "course-code-taken")


def test_unknown_ids_and_non_ids_are_404(client, auth):
    assert_problem(client.get("/courses/00000000-0000-4000-8000-000000000000", headers=auth()),
                   404, "course-not-found")
    assert_problem(client.get("/courses/not-an-id", headers=auth()), 404, "not-found")
    assert_problem(client.get("/courses/{\"$gt\":\"\"}", headers=auth()), 404, "not-found")


def test_bad_bodies_get_clear_4xx_problems(client, auth, courses_app):
    assert_problem(client.post("/courses", data="{not json", headers={**auth(), "Content-Type": "application/json"}),
                   400, "bad-request")
    assert_problem(client.post("/courses", data="code=x", headers={**auth(), "Content-Type": "text/plain"}),
                   415, "unsupported-media-type")
    huge = json.dumps(course(description={"en": "x" * (courses_app.config["MAX_CONTENT_LENGTH"] + 1)}))
    assert_problem(client.post("/courses", data=huge, headers={**auth(), "Content-Type": "application/json"}),
                   413, "payload-too-large")
    assert_problem(client.post("/courses", json=[COURSE], headers=auth()), 422, "validation-failed")
    assert client.get("/courses", headers=auth()).get_json()["items"] == []


def test_query_parameters_are_validated_never_passed_as_operators(client, auth):
    assert_problem(client.get("/courses?limit=1000", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/courses?credits_min[$gt]=0", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/courses?cursor=garbage", headers=auth()), 400, "invalid-cursor")
    assert_problem(client.get("/courses?sort=$natural", headers=auth()), 422, "validation-failed")
    assert create(client, auth).status_code == 201
    # a regex-looking search is literal text
    assert client.get("/courses?q=.*", headers=auth()).get_json()["items"] == []


def test_partners_see_only_published_alliance_courses_and_students_only_published(client, auth):
    shared = create(client, auth, course(code="A-1")).get_json()
    create(client, auth, course(code="S-1", visibility="school"))
    create(client, auth, course(code="D-1", status="draft"))
    codes = lambda who: sorted(c["code"] for c in client.get("/courses", headers=who).get_json()["items"])
    assert codes(auth("sdu-sie", "partner")) == ["A-1"]
    assert codes(auth("ecnu-cto", "student")) == ["A-1", "S-1"]
    assert codes(auth("ecnu-cto", "coordinator")) == ["A-1", "D-1", "S-1"]
    assert client.get(f"/courses/{shared['id']}", headers=auth("sdu-sie", "partner")).status_code == 200
    assert_problem(client.get("/courses", headers=auth("sdu-sie", "student")), 403, "forbidden")


def _catalogue(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    words = ["strategy", "innovation", "finance", "operations", "leadership", "data", "venture", "supply"]
    docs = []
    for i in range(n):
        w1, w2 = rng.sample(words, 2)
        docs.append(course(
            code=f"C-{i:04d}",
            title={"en": f"{w1.title()} and {w2} {i}", "zh": f"课程{i}"},
            description={"en": f"A course on {w1}.", "zh": "技术" if i % 5 == 0 else "管理"},
            programme=rng.choice(["MEM", "executive", "MBA"]),
            credits=rng.choice([1, 2, 2.5, 3, 4, 6]),
            languages=rng.choice([["en"], ["zh"], ["zh", "en"]]),
            delivery=rng.choice(["in_person", "online", "hybrid"]),
            offerings=[{"term": rng.choice(["2027-spring", "2027-autumn"]), "starts_on": "2027-03-01",
                        "ends_on": "2027-06-30"}],
            visibility=rng.choice(["school", "alliance"]),
            status=rng.choice(["draft", "published", "published"]),
        ))
    return docs


def _pages(client, headers, query: str, limit: int) -> list[dict]:
    return all_pages(client, headers, "/courses", query, limit)


def test_filters_search_sort_and_pagination_return_exactly_the_right_courses(client, auth):
    docs = _catalogue(300)
    for doc in docs:
        assert create(client, auth, doc).status_code == 201
    headers = auth()
    everything = _pages(client, headers, "", 37)
    assert [c["code"] for c in everything] == sorted(d["code"] for d in docs)

    cases = {
        "programme=MEM": lambda d: d["programme"] == "MEM",
        "language=zh": lambda d: "zh" in d["languages"],
        "delivery=online": lambda d: d["delivery"] == "online",
        "credits_min=2.5&credits_max=4": lambda d: 2.5 <= d["credits"] <= 4,
        "term=2027-autumn": lambda d: d["offerings"][0]["term"] == "2027-autumn",
        "status=draft": lambda d: d["status"] == "draft",
        "visibility=school": lambda d: d["visibility"] == "school",
        "q=venture": lambda d: "venture" in (d["title"]["en"] + d["description"]["en"]).lower(),
        "q=技术": lambda d: "技术" in d["description"]["zh"],
        "q=STRATEGY+leadership": lambda d: all(
            w in (d["title"]["en"] + d["description"]["en"]).lower() for w in ("strategy", "leadership")),
        "programme=executive&language=en&delivery=hybrid": lambda d: d["programme"] == "executive"
            and "en" in d["languages"] and d["delivery"] == "hybrid",
    }
    for query, keep in cases.items():
        expected = sorted(d["code"] for d in docs if keep(d))
        got = [c["code"] for c in _pages(client, headers, query, 23)]
        assert got == expected, query
        assert expected, f"the sample data should exercise {query}"

    by_credits = _pages(client, headers, "sort=-credits", 50)
    keys = [(-c["credits"], c["id"]) for c in by_credits]
    assert keys == sorted(keys) and len(by_credits) == 300
    by_title = [c["title"]["en"] for c in _pages(client, headers, "sort=title", 41)]
    assert by_title == sorted(d["title"]["en"] for d in docs)


def test_pages_through_ties_list_every_course_once_in_order_for_every_sort(client, auth, monkeypatch):
    # twelve courses written within one second, some in the same millisecond, with equal titles and credits
    monkeypatch.setattr("services.courses.api.now_iso", fixed_clock(TIES_IN_ONE_SECOND))
    ids = []
    for i in range(len(TIES_IN_ONE_SECOND)):
        doc = course(code=f"T-{i:02d}", title={"en": f"Title {i % 3}"}, credits=[2, 3][i % 2])
        created = create(client, auth, doc)
        assert created.status_code == 201, created.get_json()
        ids.append(created.get_json()["id"])
    sorts = {"code": lambda c: c["code"], "title": lambda c: c["title"]["en"], "credits": lambda c: c["credits"],
             "updated_at": lambda c: c["updated_at"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(client, auth(), "/courses", ids, sorts, limit=limit)


def test_readiness_fails_with_503_problem_when_the_database_is_unreachable(make_settings):
    from services.courses.app import create_app

    app = create_app(make_settings(mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true",
                                   mongodb_timeout_ms=200))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert_problem(client.get("/readyz"), 503, "database-unavailable")


def test_database_outage_answers_503_problem_not_500(make_settings, auth):
    from services.courses.app import create_app

    app = create_app(make_settings(mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true",
                                   mongodb_timeout_ms=200))
    response = app.test_client().post("/courses", json=COURSE, headers=auth())
    assert_problem(response, 503, "database-unavailable")
    assert response.headers["Retry-After"]


def test_metrics_count_requests_and_show_the_outbox_backlog(client, auth):
    create(client, auth)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/courses",school="ecnu-cto",service="courses",status="201"}' \
        in text
    assert 'outbox_backlog{school="ecnu-cto",service="courses"} 1.0' in text
    assert "outbox_last_published_sequence" in text


def test_every_response_carries_a_request_id(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["X-Request-ID"] == "abc-1"
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32
