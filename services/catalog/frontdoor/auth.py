"""Sign-in and sign-out with the school's OpenID Connect provider, through Authlib's Flask client.

Authorization code flow with PKCE (S256), `state` and `nonce`: Authlib makes
them, keeps them in the (server-side) session, and checks them, the ID token's
signature, issuer, audience and expiry on the way back. The claims then map to
a role (people.role_from_claims); a faculty member is linked to their profile
in the school's faculty service. Sign-out ends the session here, then at the
provider (RP-initiated logout, with the ID token as `id_token_hint`, sent in
a POST form so that it never appears in a URL).
"""

from __future__ import annotations

import logging

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from services.catalog.frontdoor.people import Person, Refused, claim, current_person, home_of, role_from_claims, safe_next
from services.catalog.frontdoor.services_client import ServiceProblem, lookup_faculty_profile

log = logging.getLogger(__name__)

auth = Blueprint("auth", __name__)
PROVIDER = "school"


def init_oauth(app, settings) -> OAuth | None:
    """Register the school's provider with Authlib, when one is configured."""
    if not settings.sign_in_enabled:
        return None
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret(),
        server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic"
                       if settings.oidc_client_secret_file else "none"},
    )
    return oauth


def _client():
    oauth = current_app.extensions.get("authlib.integrations.flask_client")
    return oauth.create_client(PROVIDER) if oauth else None


def _refused(reason: str, detail: str = "", status: int = 403):
    return render_template("frontdoor/refused.html", reason=reason, detail=detail), status


@auth.get("/signin")
def signin():
    """Send the person to the school's identity provider."""
    client = _client()
    if client is None:
        return _refused("not-configured", status=503)
    if current_person() is not None:
        return redirect(safe_next(request.args.get("next")) or home_of(current_person()))
    after = safe_next(request.args.get("next"))
    # from the catalog's home page, a person lands on their role's first page
    session["after_signin"] = None if after in ("/", None) else after
    try:
        return client.authorize_redirect(url_for("auth.callback", _external=True))
    except Exception:  # the provider's discovery document could not be read
        log.exception("the identity provider did not answer")
        return _refused("provider-down", status=503)


@auth.get("/auth/callback")
def callback():
    """Where the provider sends the person back: check everything, then open the session."""
    client = _client()
    if client is None:
        return _refused("not-configured", status=503)
    if request.args.get("error"):
        return _refused("cancelled", status=400)
    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        log.warning("sign-in refused: %s", exc.error)
        return _refused("failed", status=400)
    except Exception:
        log.exception("sign-in failed")
        return _refused("failed", status=400)
    claims = dict(token.get("userinfo") or {})
    settings = current_app.extensions["settings"]
    try:
        person = person_from_claims(claims, settings)
    except Refused as refusal:
        log.info("sign-in refused: %s", refusal.reason)
        return _refused(refusal.reason, refusal.detail)
    except ServiceProblem:
        return _refused("faculty-service", status=503)
    after = session.get("after_signin")
    session.clear()
    session.rotate()
    session["person"] = person.to_session()
    # kept server-side only, for the provider's end_session (id_token_hint)
    session["id_token"] = token.get("id_token")
    log.info("signed in role=%s", person.role)
    return redirect(after or home_of(person))


def person_from_claims(claims: dict, settings) -> Person:
    """The person the claims describe, or Refused; a faculty member is linked to their profile."""
    role = role_from_claims(claims, settings)
    email = claims.get("email")
    faculty_id = None
    if role == "faculty":
        key = claim(claims, settings.oidc_profile_claim)
        if not key:
            raise Refused("no-profile")
        faculty_id = lookup_faculty_profile(settings, current_app.extensions["keyring"], str(key))
        if faculty_id is None:
            raise Refused("no-profile", str(key))
    name = claims.get("name") or claims.get("preferred_username") or email or claims.get("sub")
    student = {}
    if role == "student":
        student = {"student_number": _text_claim(claims, settings.oidc_student_number_claim),
                   "programme": _text_claim(claims, settings.oidc_programme_claim)}
    return Person(sub=str(claims.get("sub")), name=str(name), role=role, school=settings.school,
                  email=email, faculty_id=faculty_id, **student)


def _text_claim(claims: dict, path: str) -> str | None:
    """A claim as text (a number claim too), or None when the provider does not send it."""
    value = claim(claims, path) if path else None
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return str(value).strip() or None


@auth.post("/signout")
def signout():
    """End the session here, then at the provider."""
    id_token = session.get("id_token")
    session.end()
    client = _client()
    end_session = None
    if client is not None:
        try:
            end_session = client.load_server_metadata().get("end_session_endpoint")
        except Exception:
            log.warning("the identity provider did not answer; signed out here only")
    if not end_session or not id_token:
        return redirect(url_for("pages.index"))
    return render_template("frontdoor/signed_out.html", end_session=end_session, id_token=id_token,
                           client_id=current_app.extensions["settings"].oidc_client_id,
                           after=url_for("pages.index", _external=True))
