"""Front-door sessions on the real MongoDB-protocol server, with an injected clock: expiry and sign-out."""

from __future__ import annotations

import re

import pytest

from services.catalog.frontdoor.sessions import COLLECTION, COOKIE_NAME

IDLE, ABSOLUTE = 600, 3600
COORDINATOR = {"sub": "c1", "name": "Coordinator One", "role": "coordinator", "school": "ecnu-cto",
               "email": "c1@ecnu-cto.example.edu", "faculty_id": None}


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(make_settings, mongo_client, clock):
    from services.catalog.app import create_app

    settings = make_settings("ecnu-cto", "catalog", session_idle_seconds=IDLE, session_absolute_seconds=ABSOLUTE,
                             session_cookie_secure=False)
    return create_app(settings, client=mongo_client, clock=clock)


@pytest.fixture
def browser(app):
    """A test client signed in as a coordinator (the session written as sign-in writes it)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["person"] = COORDINATOR
    return client


def signed_in(client) -> bool:
    response = client.get("/manage/partners")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/signin")
        return False
    assert response.status_code == 200
    return True


def test_the_cookie_holds_only_a_random_id_and_is_http_only_and_same_site(browser, app):
    cookie = browser.get_cookie(COOKIE_NAME)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert "Coordinator" not in cookie.value and len(cookie.value) >= 40
    stored = app.extensions["db"][COLLECTION].find_one({})
    assert stored["data"]["person"]["name"] == "Coordinator One"
    # the database keeps a hash of the id, not the id
    assert stored["_id"] != cookie.value


def test_a_session_unused_for_the_idle_time_ends(browser, clock):
    assert signed_in(browser)
    clock.now += IDLE - 1
    assert signed_in(browser)
    clock.now += IDLE - 1
    assert signed_in(browser), "each use moves the idle expiry"
    clock.now += IDLE
    assert not signed_in(browser)


def test_a_session_in_use_still_ends_at_the_absolute_expiry(browser, clock):
    for _ in range(ABSOLUTE // (IDLE // 2) - 1):
        clock.now += IDLE // 2
        assert signed_in(browser)
    clock.now += IDLE // 2
    assert not signed_in(browser)


def test_sign_out_deletes_the_session_so_the_old_cookie_opens_nothing(browser, app):
    cookie = browser.get_cookie(COOKIE_NAME).value
    page = browser.get("/manage/partners").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    out = browser.post("/signout", data={"csrf_token": token})
    assert out.status_code == 302
    assert app.extensions["db"][COLLECTION].count_documents({}) == 0
    replay = app.test_client()
    replay.set_cookie(COOKIE_NAME, cookie)
    assert not signed_in(replay)


def test_sign_out_without_the_csrf_token_is_refused_with_a_page(browser):
    refused = browser.post("/signout", data={})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "The form could not be accepted" in refused.get_data(as_text=True)
    assert signed_in(browser)


def test_anonymous_browsing_creates_no_session(app):
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get_cookie(COOKIE_NAME) is None
    assert app.extensions["db"][COLLECTION].count_documents({}) == 0


def test_a_page_a_role_may_not_see_is_a_403_page(app):
    client = app.test_client()
    with client.session_transaction() as session:
        session["person"] = {**COORDINATOR, "role": "student"}
    response = client.get("/manage/courses")
    assert response.status_code == 403 and "Not for your role" in response.get_data(as_text=True)


def test_sign_in_without_a_configured_provider_says_so(app):
    response = app.test_client().get("/signin")
    assert response.status_code == 503 and "not set up" in response.get_data(as_text=True)


def test_the_courses_page_says_so_when_the_courses_service_does_not_answer(make_settings, mongo_client, clock):
    from devstack import servers
    from services.catalog.app import create_app
    from shared.config import School

    closed = servers.free_port()  # nothing listens there
    schools = (School("ecnu-cto", {"en": "ecnu-cto"}, {"courses": f"http://127.0.0.1:{closed}"}),
               School("sdu-sie", {"en": "sdu-sie"}, {}))
    app = create_app(make_settings("ecnu-cto", "catalog", schools=schools, session_cookie_secure=False),
                     client=mongo_client, clock=clock)
    client = app.test_client()
    with client.session_transaction() as session:
        session["person"] = COORDINATOR
    response = client.get("/manage/courses")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "The courses service did not answer as expected" in html
    # a page that fails unexpectedly is a page too, never a stack trace
    broken = create_app(make_settings("ecnu-cto", "catalog", session_cookie_secure=False), client=mongo_client,
                        clock=clock)
    client = broken.test_client()
    with client.session_transaction() as session:
        session["person"] = COORDINATOR
    failed = client.get("/manage/courses")  # this alliance configuration lists no URL for courses
    assert failed.status_code == 500 and failed.mimetype == "text/html"
    assert "Something went wrong" in failed.get_data(as_text=True) and "Traceback" not in failed.get_data(as_text=True)
