"""The faculty API on the real MongoDB-protocol server, through Flask's test client."""

from __future__ import annotations

import random

import pytest

from services.faculty.model import PRIVATE as PRIVATE_FIELDS
from tests.faculty_samples import FACULTY, PRIVATE, profile
from tests.integration.test_courses_api import assert_problem
from tests.paging import TIES_IN_ONE_SECOND, all_pages, assert_pages_list_each_once_in_order, fixed_clock


@pytest.fixture
def faculty_app(make_settings, mongo_client):
    from services.faculty.app import create_app

    app = create_app(make_settings("ecnu-cto", "faculty"), client=mongo_client)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(faculty_app):
    return faculty_app.test_client()


def create(client, auth, doc=None, **headers):
    return client.post("/faculty", json=doc or FACULTY, headers={**auth(), **headers})


def test_the_sample_profile_is_accepted_and_read_back(client, auth):
    created = create(client, auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/faculty/{body['id']}"
    assert body["school"] == "ecnu-cto" and body["version"] == 1 and body["status"] == "active"
    got = client.get(f"/faculty/{body['id']}", headers=auth()).get_json()
    for field, value in FACULTY.items():
        assert got[field] == value, field
    assert got["created_at"] == got["updated_at"]
    assert "search_text" not in got and "expertise_keys" not in got


@pytest.mark.parametrize("change, pointer", [
    ({"name": {"zh": "只有中文"}}, "/name"),
    ({"languages": ["chinese"]}, "/languages/0"),
    ({"expertise": ["0413", "041399"]}, "/expertise/1"),
    ({"availability": [{"from": "2027-05-15", "to": "2027-04-01"}]}, "/availability/0/to"),
    ({"availability": [{"from": "1999-05-15", "to": "2027-04-01"}]}, "/availability/0/from"),
    ({"availability": [{"from": "2027-04-01", "to": "2027-05-01", "until": "x"}]}, "/availability/0/until"),
    ({"courses": ["not-a-uuid"]}, "/courses/0"),
    ({"email": "li.wei"}, "/email"),
    ({"visibility": "everyone"}, "/visibility"),
    ({"status": "withdrawn"}, "/status"),
    ({"title": "x" * 101}, "/title"),
    ({"bio": {"en": "x", "$where": "1"}}, "/bio"),
])
def test_validation_errors_name_the_fields_with_json_pointers(client, auth, change, pointer):
    body = assert_problem(create(client, auth, profile(**change)), 422, "validation-failed")
    pointers = [e["pointer"] for e in body["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), pointers
    assert client.get("/faculty", headers=auth()).get_json()["items"] == []


def test_missing_required_fields_are_each_named(client, auth):
    body = assert_problem(create(client, auth, {"bio": {"en": "x"}}), 422, "validation-failed")
    assert {"/name", "/title", "/department", "/languages", "/email"} <= {e["pointer"] for e in body["errors"]}


def test_writes_need_a_coordinator_token_of_the_profile_school(client, auth):
    assert_problem(client.post("/faculty", json=FACULTY), 401, "unauthenticated")
    assert_problem(client.post("/faculty", json=FACULTY, headers={"Authorization": "Bearer nonsense"}),
                   401, "unauthenticated")
    for school, role in (("ecnu-cto", "student"), ("sdu-sie", "coordinator"), ("sdu-sie", "partner")):
        assert_problem(create(client, lambda: auth(school, role)), 403, "forbidden")
    created = create(client, auth).get_json()
    url = f"/faculty/{created['id']}"
    assert_problem(client.put(url, json=FACULTY, headers={**auth("sdu-sie", "partner"), "If-Match": '"1"'}),
                   403, "forbidden")
    assert_problem(client.delete(url, headers={**auth("ecnu-cto", "student"), "If-Match": '"1"'}),
                   403, "forbidden")
    assert_problem(client.get("/faculty", headers=auth("sdu-sie", "student")), 403, "forbidden")
    assert_problem(client.get(url, headers=auth("sdu-sie", "coordinator")), 403, "forbidden")
    assert len(client.get("/faculty", headers=auth()).get_json()["items"]) == 1


def test_an_update_needs_the_current_etag(client, auth):
    created = create(client, auth).get_json()
    url = f"/faculty/{created['id']}"
    changed = profile(title="Associate Professor")
    assert_problem(client.put(url, json=changed, headers=auth()), 428, "precondition-required")
    assert_problem(client.put(url, json=changed, headers={**auth(), "If-Match": '"7"'}), 412, "precondition-failed")
    ok = client.put(url, json=changed, headers={**auth(), "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    assert ok.get_json()["title"] == "Associate Professor" and ok.get_json()["version"] == 2
    stale = client.put(url, json=changed, headers={**auth(), "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    assert stale.headers["ETag"] == '"2"'


def test_an_update_leaving_out_an_optional_field_removes_it(client, auth):
    created = create(client, auth, profile(**PRIVATE)).get_json()
    assert created["phone"] == PRIVATE["phone"]
    without = {k: v for k, v in FACULTY.items() if k != "bio"}
    ok = client.put(f"/faculty/{created['id']}", json=without, headers={**auth(), "If-Match": '"1"'}).get_json()
    assert "bio" not in ok and "phone" not in ok and "private_notes" not in ok
    assert client.get("/faculty?q=portfolio", headers=auth()).get_json()["items"] == []


def test_a_withdrawn_profile_stays_with_coordinators_and_cannot_change_again(client, auth):
    created = create(client, auth).get_json()
    url = f"/faculty/{created['id']}"
    assert_problem(client.delete(url, headers=auth()), 428, "precondition-required")
    assert_problem(client.delete(url, headers={**auth(), "If-Match": '"5"'}), 412, "precondition-failed")
    gone = client.delete(url, headers={**auth(), "If-Match": '"1"'})
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn" and gone.headers["ETag"] == '"2"'
    assert client.get(url, headers=auth()).get_json()["status"] == "withdrawn"
    assert_problem(client.get(url, headers=auth("ecnu-cto", "student")), 404, "faculty-not-found")
    assert_problem(client.get(url, headers=auth("sdu-sie", "partner")), 404, "faculty-not-found")
    assert_problem(client.put(url, json=FACULTY, headers={**auth(), "If-Match": '"2"'}), 409, "faculty-withdrawn")
    assert_problem(client.delete(url, headers={**auth(), "If-Match": '"2"'}), 409, "faculty-withdrawn")
    assert client.get(url, headers=auth()).get_json()["version"] == 2


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_profile(client, auth):
    first = create(client, auth, **{"Idempotency-Key": "f-123"})
    again = create(client, auth, **{"Idempotency-Key": "f-123"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = create(client, auth, profile(title="Lecturer"), **{"Idempotency-Key": "f-123"})
    assert_problem(other, 422, "idempotency-key-reused")
    assert_problem(create(client, auth, **{"Idempotency-Key": "x" * 201}), 400, "invalid-idempotency-key")
    assert len(client.get("/faculty", headers=auth()).get_json()["items"]) == 1
    # the first result kept for retries holds the contact details: they stay out of partners' reads
    partner = auth("sdu-sie", "partner")
    for url in (f"/faculty/{first.get_json()['id']}", "/faculty"):
        read = client.get(url, headers=partner)
        assert read.status_code == 200 and "li.wei@example.edu" not in read.get_data(as_text=True)


def test_unknown_ids_and_non_ids_are_404(client, auth):
    assert_problem(client.get("/faculty/00000000-0000-4000-8000-000000000000", headers=auth()),
                   404, "faculty-not-found")
    assert_problem(client.get("/faculty/not-an-id", headers=auth()), 404, "not-found")
    assert_problem(client.put("/faculty/00000000-0000-4000-8000-000000000000", json=FACULTY,
                              headers={**auth(), "If-Match": '"1"'}), 404, "faculty-not-found")


def test_query_parameters_are_validated_never_passed_as_operators(client, auth):
    assert_problem(client.get("/faculty?limit=101", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/faculty?department[$ne]=x", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/faculty?available_on=tomorrow", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/faculty?sort=email", headers=auth()), 422, "validation-failed")
    assert_problem(client.get("/faculty?cursor=garbage", headers=auth()), 400, "invalid-cursor")
    assert create(client, auth).status_code == 201
    assert client.get("/faculty?q=.*", headers=auth()).get_json()["items"] == []


def test_partners_and_students_never_see_contact_details_or_private_notes(client, auth):
    shared = create(client, auth, profile(**PRIVATE)).get_json()
    create(client, auth, profile(name={"en": "School Only"}, visibility="school", **PRIVATE))
    names = lambda who: sorted(p["name"]["en"] for p in client.get("/faculty", headers=who).get_json()["items"])
    assert names(auth("sdu-sie", "partner")) == ["Li Wei"]
    assert names(auth("ecnu-cto", "student")) == ["Li Wei", "School Only"]
    readers = [auth("sdu-sie", "partner"), auth("ecnu-cto", "student"),
               auth("ecnu-cto", "faculty", faculty_id=shared["id"])]
    for headers in readers:
        one = client.get(f"/faculty/{shared['id']}", headers=headers)
        listed = client.get("/faculty", headers=headers)
        assert one.status_code == listed.status_code == 200
        for response in (one, listed):
            text = response.get_data(as_text=True)
            assert not any(value in text for value in PRIVATE.values()), text
            assert not any(f'"{field}"' in text for field in PRIVATE_FIELDS), text
        assert one.get_json()["name"] == FACULTY["name"]
    full = client.get(f"/faculty/{shared['id']}", headers=auth()).get_json()
    assert {k: full[k] for k in PRIVATE} == PRIVATE
    # a partner cannot probe private fields through search either
    assert client.get("/faculty?q=sabbatical", headers=auth("sdu-sie", "partner")).get_json()["items"] == []


def _profiles(n: int, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    surnames = ["Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou"]
    topics = ["innovation", "finance", "operations", "leadership", "venture", "supply chains"]
    departments = ["Engineering Management", "Innovation", "Entrepreneurship"]
    docs = []
    for i in range(n):
        topic = rng.choice(topics)
        start = f"2027-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}"
        end = f"2027-{int(start[5:7]) + rng.randint(0, 1):02d}-28"
        docs.append(profile(
            name={"en": f"{rng.choice(surnames)} {i:03d}", "zh": f"教师{i}"},
            department=rng.choice(departments),
            expertise=rng.sample(["0413", "0411", "0714", "0311", "Technology Strategy", "venture capital"], 2),
            languages=rng.choice([["en"], ["zh"], ["zh", "en"]]),
            bio={"en": f"Researches {topic}.", "zh": "技术创新" if i % 4 == 0 else "管理"},
            availability=[{"from": start, "to": end}] if i % 3 else [],
            visibility=rng.choice(["school", "alliance"]),
            email=f"person{i}@example.edu",
        ))
    return docs


def _pages(client, headers, query: str, limit: int) -> list[dict]:
    return all_pages(client, headers, "/faculty", query, limit)


def test_filters_search_sort_and_pagination_return_exactly_the_right_profiles(client, auth):
    docs = _profiles(100)
    for doc in docs:
        assert create(client, auth, doc).status_code == 201
    headers = auth()
    everything = _pages(client, headers, "", 17)
    assert [p["name"]["en"] for p in everything] == sorted(d["name"]["en"] for d in docs)

    def available(d, day):
        return any(w["from"] <= day <= w["to"] for w in d["availability"])

    cases = {
        "department=Innovation": lambda d: d["department"] == "Innovation",
        "expertise=0413": lambda d: "0413" in d["expertise"],
        "expertise=04": lambda d: any(e.startswith("04") for e in d["expertise"]),
        "expertise=technology+strategy": lambda d: "Technology Strategy" in d["expertise"],
        "language=zh": lambda d: "zh" in d["languages"],
        "available_on=2027-06-15": lambda d: available(d, "2027-06-15"),
        "q=venture": lambda d: "venture" in d["bio"]["en"].lower(),
        "q=技术": lambda d: "技术" in d["bio"]["zh"],
        "q=教师1": lambda d: "教师1" in d["name"]["zh"],
        "q=ZHANG+finance": lambda d: "Zhang" in d["name"]["en"] and "finance" in d["bio"]["en"],
        "visibility=alliance&language=en&expertise=0714": lambda d: d["visibility"] == "alliance"
            and "en" in d["languages"] and "0714" in d["expertise"],
    }
    for query, keep in cases.items():
        expected = sorted(d["name"]["en"] for d in docs if keep(d))
        got = [p["name"]["en"] for p in _pages(client, headers, query, 7)]
        assert got == expected, query
        assert expected, f"the sample data should exercise {query}"

    by_department = _pages(client, headers, "sort=-department", 30)
    keys = [(d["department"], d["id"]) for d in by_department]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True) and len(keys) == 100
    assert len({p["id"] for p in by_department}) == 100
    # many profiles share a second: the cursor must still neither skip nor repeat one
    partner = _pages(client, auth("sdu-sie", "partner"), "sort=-updated_at", 9)
    assert [(p["updated_at"], p["id"]) for p in partner] == sorted(
        ((p["updated_at"], p["id"]) for p in partner), key=lambda k: (_desc(k[0]), k[1]))
    assert sorted(p["name"]["en"] for p in partner) == sorted(d["name"]["en"] for d in docs
                                                               if d["visibility"] == "alliance")
    assert not any("email" in p for p in partner)


def _desc(text: str) -> list[int]:
    return [-ord(ch) for ch in text]


def test_the_openapi_document_describes_the_faculty_api(client):
    spec = client.get("/openapi.json").get_json()
    assert {"/faculty", "/faculty/{faculty_id}", "/changes", "/digest"} <= set(spec["paths"])
    assert set(spec["paths"]["/faculty/{faculty_id}"]) >= {"get", "put", "patch", "delete"}
    patch = spec["paths"]["/faculty/{faculty_id}"]["patch"]
    assert patch["summary"].startswith("Update the expertise") and "If-Match" in {p["name"] for p in patch["parameters"]}
    assert "email" in {p["name"] for p in spec["paths"]["/faculty"]["get"]["parameters"]}


def test_metrics_count_requests_and_show_the_outbox_backlog(client, auth):
    create(client, auth)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/faculty",school="ecnu-cto",service="faculty",status="201"}' \
        in text
    assert 'outbox_backlog{school="ecnu-cto",service="faculty"} 1.0' in text
    assert "outbox_last_published_sequence" in text
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_pages_through_ties_list_every_profile_once_in_order_for_every_sort(client, auth, monkeypatch):
    # twelve profiles written within one second, some in the same millisecond, with equal names and departments
    monkeypatch.setattr("services.faculty.api.now_iso", fixed_clock(TIES_IN_ONE_SECOND))
    ids = []
    for i in range(len(TIES_IN_ONE_SECOND)):
        created = create(client, auth, profile(name={"en": f"Name {i % 4}"}, department=["A", "B", "C"][i % 3]))
        assert created.status_code == 201, created.get_json()
        ids.append(created.get_json()["id"])
    sorts = {"name": lambda p: p["name"]["en"], "department": lambda p: p["department"],
             "updated_at": lambda p: p["updated_at"]}
    for limit in (1, 2, 5):
        assert_pages_list_each_once_in_order(client, auth(), "/faculty", ids, sorts, limit=limit)


def test_a_faculty_member_keeps_their_own_expertise_bio_and_availability_current(client, auth):
    created = create(client, auth, profile(**PRIVATE)).get_json()
    url, me = f"/faculty/{created['id']}", auth("ecnu-cto", "faculty", created["id"])
    change = {"bio": {"en": "Now works on venture finance.", "zh": "研究风险投资。"},
              "availability": [{"from": "2027-09-01", "to": "2027-09-30"}]}
    assert_problem(client.patch(url, json=change, headers=me), 428, "precondition-required")
    ok = client.patch(url, json=change, headers={**me, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    body = ok.get_json()
    assert body["bio"] == change["bio"] and body["availability"] == change["availability"]
    # what was left out is kept, and the faculty member sees no contact details, not even their own
    assert body["expertise"] == FACULTY["expertise"] and body["name"] == FACULTY["name"]
    assert not set(PRIVATE_FIELDS) & set(body)
    # search follows the new bio, and still finds the name; the filters follow availability
    assert [p["id"] for p in client.get("/faculty?q=venture+wei", headers=auth()).get_json()["items"]] == [
        created["id"]]
    assert client.get("/faculty?available_on=2027-09-15", headers=auth()).get_json()["items"][0]["id"] == created["id"]
    assert client.get("/faculty?available_on=2027-04-15", headers=auth()).get_json()["items"] == []
    # the coordinator's view still holds the private fields
    assert client.get(url, headers=auth()).get_json()["phone"] == PRIVATE["phone"]
    stale = client.patch(url, json={"expertise": ["0411"]}, headers={**me, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")


def test_a_faculty_member_cannot_edit_another_profile_nor_the_coordinators_fields(client, auth):
    mine = create(client, auth).get_json()
    other = create(client, auth, profile(name={"en": "Zhang Min"}, email="zhang.min@example.edu")).get_json()
    me = auth("ecnu-cto", "faculty", mine["id"])
    url = f"/faculty/{mine['id']}"
    refused = client.patch(f"/faculty/{other['id']}", json={"bio": {"en": "Hacked"}},
                           headers={**me, "If-Match": '"1"'})
    assert_problem(refused, 403, "forbidden")
    for field, value in (("name", {"en": "Someone else"}), ("title", "Dean"), ("visibility", "school"),
                         ("email", "me@example.org"), ("status", "withdrawn"), ("private_notes", "x")):
        body = assert_problem(client.patch(url, json={field: value}, headers={**me, "If-Match": '"1"'}),
                              422, "validation-failed")
        assert [e["pointer"] for e in body["errors"]] == [f"/{field}"]
    assert_problem(client.patch(url, json={}, headers={**me, "If-Match": '"1"'}), 422, "validation-failed")
    assert_problem(client.put(url, json=FACULTY, headers={**me, "If-Match": '"1"'}), 403, "forbidden")
    for school, role in (("ecnu-cto", "student"), ("sdu-sie", "faculty"), ("sdu-sie", "partner")):
        headers = {**auth(school, role, mine["id"] if role == "faculty" else None), "If-Match": '"1"'}
        assert_problem(client.patch(url, json={"bio": {"en": "x"}}, headers=headers), 403, "forbidden")
    assert client.get(url, headers=auth()).get_json()["version"] == 1
    assert client.get(f"/faculty/{other['id']}", headers=auth()).get_json()["version"] == 1


def test_only_the_school_coordinators_find_a_profile_by_email(client, auth):
    created = create(client, auth, profile(**PRIVATE)).get_json()
    create(client, auth, profile(name={"en": "Zhang Min"}, email="zhang.min@example.edu"))
    found = client.get("/faculty?email=Li.Wei@Example.EDU", headers=auth()).get_json()["items"]
    assert [p["id"] for p in found] == [created["id"]] and found[0]["email"] == PRIVATE["email"]
    assert client.get("/faculty?email=nobody@example.edu", headers=auth()).get_json()["items"] == []
    assert_problem(client.get("/faculty?email=li", headers=auth()), 422, "validation-failed")
    for school, role in (("ecnu-cto", "student"), ("ecnu-cto", "faculty"), ("ecnu-cto", "partner"),
                         ("sdu-sie", "partner")):
        headers = auth(school, role, created["id"] if role == "faculty" else None)
        assert_problem(client.get(f"/faculty?email={PRIVATE['email']}", headers=headers), 403, "forbidden")
