"""The front door: sign-in, sessions, CSRF, security headers and the people's pages, in the catalog web.

`init_app(app)` adds it all to the catalog's Flask app. A page of the front
door is a view in one of its blueprints (see docs/development.md, "Adding a
page"): it says who may see it with `@role_required(...)`, calls the school's
services with `for_person(current_person())`, and renders a template that
extends "base.html".
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from services.catalog.frontdoor.api_messages import problem_text
from services.catalog.frontdoor.applications import applications
from services.catalog.frontdoor.auth import auth, init_oauth
from services.catalog.frontdoor.exchange import exchange
from services.catalog.frontdoor.manage import manage
# the coordinators' pages beyond Courses and Partners: their views join the `manage` blueprint on import
from services.catalog.frontdoor import (  # noqa: F401
    feeds, incoming, manage_applications, manage_courses, manage_faculty, manage_outgoing, manage_visits)
from services.catalog.frontdoor.nav import NAV
from services.catalog.frontdoor.people import current_person
from services.catalog.frontdoor.sessions import COLLECTION, MongoSessionInterface
from shared.auth import KeyRing

log = logging.getLogger(__name__)

# blueprints whose views are pages (HTML, forms, the strict Content-Security-Policy)
PAGE_BLUEPRINTS = {"pages", "auth", "exchange", "applications", "manage"}
csrf = CSRFProtect()


def init_app(app: Flask, clock=time.time) -> None:
    settings = app.extensions["settings"]
    keyring: KeyRing = app.extensions["keyring"]
    if settings.sign_in_enabled:
        # the front door mints person tokens: it needs the private key, read now so that a
        # missing or unreadable key stops the process at start (ADR 0010)
        keyring.load(settings.school_ids, private=True)
        app.secret_key = _derived_secret(keyring)
    else:
        app.secret_key = secrets.token_bytes(32)
    app.config.update(WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=settings.session_cookie_secure)
    if settings.session_cookie_secure:
        # in production the school's TLS proxy (Caddy) is the only way in and sets X-Forwarded-Proto:
        # the redirect URI sent to the provider must be https://, as registered there
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=0, x_port=0, x_prefix=0)
    app.session_interface = MongoSessionInterface(
        app.extensions["db"][COLLECTION], settings.session_idle_seconds, settings.session_absolute_seconds,
        secure=settings.session_cookie_secure, clock=clock)
    app.extensions.setdefault("form_blueprints", set()).update(PAGE_BLUEPRINTS)
    csrf.init_app(app)
    init_oauth(app, settings)
    for blueprint in (auth, exchange, applications, manage):
        app.register_blueprint(blueprint)

    # a service's problem with no field to sit at, in the page's language (frontdoor/api_messages.py)
    app.jinja_env.globals["problem_text"] = problem_text

    @app.context_processor
    def _person():
        person = current_person()
        return {"person": person, "sign_in_enabled": settings.sign_in_enabled,
                "nav": NAV.get(person.role, []) if person else []}

    @app.errorhandler(CSRFError)
    def _csrf_refused(error):
        return render_template("frontdoor/csrf.html", reason=error.description), 400

    provider_origin = _origin(settings.oidc_issuer)

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # the callback URL carries the authorization code: never send it on as a Referer
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings.session_cookie_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # every page; the API's offline docs page (/docs, Swagger UI) runs an inline script of its own
        if response.mimetype == "text/html" and not request.path.startswith("/docs"):
            headers["Content-Security-Policy"] = (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
                f"form-action 'self'{(' ' + provider_origin) if provider_origin else ''}")
        if current_person() is not None and response.mimetype == "text/html":
            headers["Cache-Control"] = "no-store"
        return response


def _error_page(error):
    """A page's unexpected failure as a page (never a stack trace); HTTP errors keep their status."""
    if isinstance(error, HTTPException):
        status = error.code or 500
    elif isinstance(error, PyMongoError):
        log.warning("a page could not reach the database: %s", type(error).__name__)
        status = 503
    else:
        log.exception("a page failed")
        status = 500
    return render_template("frontdoor/error.html", status=status), status


for _blueprint in (auth, exchange, applications, manage):
    _blueprint.register_error_handler(Exception, _error_page)


def _origin(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _derived_secret(keyring: KeyRing) -> bytes:
    """The key that signs CSRF tokens, derived from the school's private key: every worker and replica of
    the catalog web agrees on it, and there is no other secret to distribute."""
    raw = keyring.private_key().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"alliance-catalog front door csrf").derive(raw)
