"""The part of every service's Flask app that is not about its entities.

create_base_app() gives a Flask app and a flask-smorest Api with: settings,
keys and the MongoDB client in `app.extensions`; problem+json errors; request
ids and JSON logs; body size and content-type checks; /healthz, /readyz,
/metrics; OpenAPI at /openapi.json and an offline docs page at /docs.
"""

from __future__ import annotations

import functools
import http
import json
import logging
import re
import uuid

import orjson
import swagger_ui_bundle
from flask import Flask, g, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from marshmallow import Schema, fields
from pymongo.errors import PyMongoError

from shared import errors, metrics
from shared.auth import KeyRing
from shared.config import Settings
from shared.errors import PROBLEM_CONTENT_TYPE, DomainError, problem_response
from shared.feed import feed_blueprint
from shared.logs import configure_logging
from shared.mongo import connect, database, ping
from shared.outbox import outbox_gauges

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# lone surrogates (from \\ud800 escapes) and NUL
_BAD_TEXT = re.compile("[\ud800-\udfff\x00]")


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"description": "A stable URN naming the kind of problem"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Dict(), metadata={"description": "For validation problems: where and what"})


class FastJSONProvider(DefaultJSONProvider):
    """Flask's JSON answers written by orjson (a feed page of 1,000 changes in 1.3 ms instead of 10.3 ms):
    keys sorted as Flask sorts them, dates, decimals and dataclasses as Flask writes them; anything
    orjson refuses (an integer beyond 64 bits) is written by Flask's own provider. Text is UTF-8, not escaped."""

    OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
               | orjson.OPT_PASSTHROUGH_DATACLASS)

    def _bytes(self, obj) -> bytes | None:
        try:
            return orjson.dumps(obj, default=self.default, option=self.OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            return None

    def dumps(self, obj, **kwargs) -> str:
        data = None if kwargs else self._bytes(obj)
        return data.decode() if data is not None else super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        data = None if self._app.debug else self._bytes(obj)
        if data is None:
            return super().response(obj)
        return self._app.response_class(data + b"\n", mimetype=self.mimetype)


class ProblemApi(Api):
    """flask-smorest's Api, documenting problem+json as the error body."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)

    def _register_responses(self):
        # flask-smorest documents errors as application/json; ours are application/problem+json
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "An RFC 9457 problem",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}},
        }, lazy=True)


# a personal calendar feed's secret is its credential: never written to a log
_SECRET_PATH = re.compile(r"^/calendar/[^/]+\.ics$")


def logged_path(path: str) -> str:
    """The request path as logged: a calendar feed's secret is replaced by `<secret>`."""
    return "/calendar/<secret>.ics" if _SECRET_PATH.match(path) else path


def create_base_app(settings: Settings, title: str, description: str, client=None) -> tuple[Flask, Api]:
    """A Flask app with everything but the service's own routes; `client` lets tests share one."""
    configure_logging(settings.school, settings.service, settings.log_level)
    app = Flask(f"{settings.school}.{settings.service}")
    app.json = FastJSONProvider(app)
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        },
    )
    client = client or connect(settings)
    app.extensions["settings"] = settings
    keyring = KeyRing(settings.keys_dir, settings.school)
    # a web process verifies tokens only: every school's public keys, read now so that an
    # unreadable key stops the process at start instead of refusing every token
    keyring.load(settings.school_ids, private=False)
    app.extensions["keyring"] = keyring
    app.extensions["mongo"] = client
    app.extensions["db"] = database(client, settings)

    api = ProblemApi(app)
    errors.init_app(app)
    metrics.init_app(app, settings.school, settings.service)
    _init_request_context(app)
    _init_health(app)

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    return app, api


def _init_request_context(app: Flask) -> None:
    @app.before_request
    def _request_id_and_body_checks():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # a page's form posts application/x-www-form-urlencoded (the catalog's front door); APIs take JSON only
        forms = request.blueprint in app.extensions.get("form_blueprints", ())
        if (request.method in _BODY_METHODS and not forms
                and (request.content_length or request.headers.get("Transfer-Encoding"))):
            if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
                raise DomainError("unsupported-media-type", f"got Content-Type {request.mimetype or '(none)'!r}")
            check_json_body(request.get_data(cache=True))

    @app.after_request
    def _log_and_tag(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        path = logged_path(request.path)
        log.info("%s %s %d", request.method, path, response.status_code,
                 extra={"status": response.status_code, "method": request.method, "path": path})
        return response


def check_json_body(raw: bytes) -> None:
    """Refuse, with a 400 problem, JSON that the schemas must never see.

    Python's parser raises ValueError on integers of more than 4300 digits and
    RecursionError on deep nesting, and accepts lone surrogates and NUL, which
    MongoDB's BSON encoder refuses later: all of these are the client's error.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise DomainError("bad-request", "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise DomainError("bad-request", f"the body is not valid JSON: {exc}"[:200]) \
            from None
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and (_BAD_TEXT.search(item)):
            raise DomainError("bad-request", "strings must be valid Unicode without NUL characters")


def _init_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz():
        if not ping(app.extensions["mongo"]):
            return problem_response("database-unavailable", headers={"Retry-After": "2"})
        return {"status": "ready"}


def create_write_service_app(service: str, settings: Settings | None, client, *, description: str, blueprint,
                             feed_entities: str, ensure_indexes, outbox: str,
                             other_outboxes: dict[str, str] | None = None, other_blueprints=()) -> Flask:
    """The app of a write service: its blueprint, the change feed, indexes and outbox gauges.

    `settings` default to the environment's. `ensure_indexes(db)` runs at start-up so the
    first request finds them; when the database is down then, the worker creates them.
    `outbox` is the collection of the entities the change feed serves; `other_outboxes`
    the service's other published kinds, by name, each with a backlog gauge in /metrics.
    """
    settings = settings or Settings.from_env(service=service)
    title = f"{service.capitalize()} of {settings.school}"
    app, api = create_base_app(settings, title=title, description=description, client=client)
    api.register_blueprint(blueprint)
    for other in other_blueprints:
        api.register_blueprint(other)
    api.register_blueprint(feed_blueprint(feed_entities))
    db = app.extensions["db"]
    try:
        ensure_indexes(db)
    except PyMongoError:
        log.warning("could not create indexes at start-up; the worker will")
    app.extensions["metric_sources"].append(functools.partial(outbox_gauges, db, outbox, other_outboxes))
    return app
