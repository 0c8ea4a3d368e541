"""Calling the school's own services (courses, faculty, visits) for the signed-in person.

Each call carries a token minted for that person only, for a minute or two
(PERSON_TOKEN_SECONDS): their role, their faculty id for faculty, and for a
student their name, email, student number and programme. The
services check roles themselves, so a page that asked for too much is refused
there too. A problem+json answer becomes a ServiceProblem, which a page shows
at the field its JSON pointer names (`field_errors()`), or as a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from flask import current_app

from services.catalog.frontdoor.api_messages import in_page_language
from services.catalog.frontdoor.people import Person
from shared.auth import issue_token

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
SERVICES = ("courses", "faculty", "visits")


@dataclass
class ServiceProblem(Exception):
    """An RFC 9457 problem answered by a service (or a failure to reach it, status 503)."""

    status: int
    title: str
    detail: str = ""
    type: str = ""
    errors: list = field(default_factory=list)
    body: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    def field_errors(self) -> dict[str, str]:
        """Messages by form field, in the page's language: the first segment of each error's JSON pointer
        (`/title/en` -> `title`)."""
        out: dict[str, str] = {}
        for error in self.errors:
            pointer = str(error.get("pointer") or "")
            name = pointer.strip("/").split("/")[0] if pointer.strip("/") else ""
            if name and name not in out:
                out[name] = in_page_language(str(error.get("detail") or self.title))
        return out


class ServicesClient:
    """The school's services, called as `person`."""

    def __init__(self, settings, keyring, person: Person, http=None):
        self.settings = settings
        self.keyring = keyring
        self.person = person
        self.http = http or requests

    def token(self) -> str:
        """A token for this person only, valid for PERSON_TOKEN_SECONDS; a student's carries their name, email,
        student number and programme (the courses service reads them when the student requests a place)."""
        return issue_token(self.keyring.private_key(), self.settings.school, self.person.role,
                           subject=self.person.email or self.person.sub, faculty_id=self.person.faculty_id,
                           ttl_seconds=self.settings.person_token_seconds, profile=self.person.profile())

    def url(self, service: str, path: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return self.settings.school_url(self.settings.school, service).rstrip("/") + path

    def call(self, method: str, service: str, path: str, *, params=None, json=None, etag: str | None = None,
             idempotency_key: str | None = None) -> requests.Response:
        """One request; a non-2xx answer raises ServiceProblem. The token is never logged."""
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if etag:
            headers["If-Match"] = etag
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = self.http.request(method, self.url(service, path), params=params, json=json,
                                         headers=headers, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            log.warning("%s %s %s unreachable: %s", method, service, path, type(exc).__name__)
            raise ServiceProblem(503, "service-unavailable", f"the {service} service did not answer") from None
        if response.status_code >= 400:
            raise problem_of(response)
        return response

    def get(self, service: str, path: str, **params) -> dict:
        return self.call("GET", service, path, params=params or None).json()

    def get_all(self, service: str, path: str, max_pages: int = 20, **params) -> list[dict]:
        """Every item of a paged list, following each page's `next` link, up to `max_pages` pages."""
        page = self.get(service, path, **params)
        items = list(page.get("items", []))
        for _ in range(max_pages - 1):
            link = page.get("next")
            if not link:
                break
            # a `next` link is the service's absolute URL: follow its path and query at the service we call
            parts = urlsplit(link)
            page = self.call("GET", service, parts.path + (f"?{parts.query}" if parts.query else "")).json()
            items.extend(page.get("items", []))
        return items


def problem_of(response) -> ServiceProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ServiceProblem(status=response.status_code, title=str(body.get("title") or response.reason or "error"),
                          detail=str(body.get("detail") or ""), type=str(body.get("type") or ""),
                          errors=list(body.get("errors") or []), body=body)


def for_person(person: Person) -> ServicesClient:
    """The client of the current app, for `person`."""
    return ServicesClient(current_app.extensions["settings"], current_app.extensions["keyring"], person)


def lookup_faculty_profile(settings, keyring, email: str, http=None) -> str | None:
    """The id of this school's faculty profile with `email`, or None.

    Looking a profile up by email is for the school's coordinators only (emails are
    theirs to see), so the front door asks as the school's coordinator, with a token
    for this one call; the person's own token is minted after, with the id found.
    """
    agent = Person(sub=f"frontdoor@{settings.school}", name="front door", role="coordinator", school=settings.school)
    client = ServicesClient(settings, keyring, agent, http)
    page = client.get("faculty", "/faculty", email=email, limit=2)
    items = [p for p in page.get("items", []) if p.get("status", "active") == "active"]
    return items[0]["id"] if len(items) == 1 else None
