"""Who is signed in: the person in the session, how the provider's claims map to a role, and the role guard."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import wraps

from flask import current_app, redirect, render_template, request, session, url_for

# the roles a person may have at the front door (partner is a service's role, never a person's)
PERSON_ROLES = ("coordinator", "faculty", "student")


@dataclass(frozen=True)
class Person:
    """A signed-in person, as the session keeps them."""

    sub: str
    name: str
    role: str
    school: str
    email: str | None = None
    faculty_id: str | None = None
    # a student's number and programme at the school (claims OIDC_STUDENT_NUMBER_CLAIM, OIDC_PROGRAMME_CLAIM)
    student_number: str | None = None
    programme: str | None = None

    def profile(self) -> dict | None:
        """What a student's token says about them (name, email, number, programme); None for other roles."""
        if self.role != "student":
            return None
        fields = {"name": self.name, "email": self.email, "student_number": self.student_number,
                  "programme": self.programme}
        return {k: v for k, v in fields.items() if v}

    def to_session(self) -> dict:
        return asdict(self)

    @classmethod
    def from_session(cls, data: dict | None) -> "Person | None":
        if not data:
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


class Refused(Exception):
    """The provider signed the person in, but this front door may not let them in; `reason` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def claim(claims: dict, path: str):
    """A claim by name, or by a dotted path into objects (`realm_access.roles`)."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def claim_values(value) -> set[str]:
    """A roles claim as a set: a list, or one string of space- or comma-separated values."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {v for v in value.replace(",", " ").split() if v}
    if isinstance(value, (list, tuple)):
        return {str(v) for v in value}
    return {str(value)}


def role_from_claims(claims: dict, settings) -> str:
    """The person's role from their claims, by the school's mapping; Refused when none applies."""
    if settings.oidc_school_claim:
        school = claim(claims, settings.oidc_school_claim)
        if school is None:
            # the provider does not say the person belongs to any school: no role here
            raise Refused("no-role")
        if school != settings.school:
            raise Refused("other-school", str(school))
    values = claim_values(claim(claims, settings.oidc_roles_claim))
    for role, accepted in (("coordinator", settings.oidc_coordinator_values),
                           ("faculty", settings.oidc_faculty_values),
                           ("student", settings.oidc_student_values)):
        if values & set(accepted):
            return role
    raise Refused("no-role")


def current_person() -> Person | None:
    return Person.from_session(session.get("person"))


def role_required(*roles: str):
    """Show a page only to people with one of `roles`: others get a 403 page, and no one signed in is sent
    to sign in and brought back here afterwards."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            person = current_person()
            if person is None:
                return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))
            if person.role not in roles:
                return render_template("frontdoor/forbidden.html"), 403
            return view(*args, **kwargs)

        wrapper.page_roles = roles
        return wrapper

    return decorator


def safe_next(value: str | None) -> str | None:
    """A path on this site to go back to after sign-in; anything else (another host) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


def home_of(person: Person) -> str:
    """Where a person lands after sign-in when they did not ask for a page."""
    if person.role == "coordinator":
        return url_for("manage.courses")
    if person.role == "faculty":
        return url_for("exchange.visits")
    return url_for("pages.index")


def settings():
    return current_app.extensions["settings"]
