"""The courses service's Flask app: gunicorn runs `services.courses.app:create_app()`."""

from __future__ import annotations

import logging

from flask import Flask

from services.courses.api import blp
from services.courses.store import COLLECTION, CourseStore
from shared.config import Settings
from shared.feed import feed_blueprint
from shared.outbox import ChangeLog, outbox_gauges
from shared.web import create_base_app

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the app; indexes are created at start-up so the first request finds them."""
    settings = settings or Settings.from_env(service="courses")
    app, api = create_base_app(
        settings, title=f"Courses of {settings.school}",
        description="Create, update, withdraw and list a school's courses; the change feed for partners.",
        client=client,
    )
    api.register_blueprint(blp)
    api.register_blueprint(feed_blueprint("courses"))
    db = app.extensions["db"]
    _ensure_indexes(db)
    app.extensions["metric_sources"].append(lambda: outbox_gauges(db, COLLECTION))
    return app


def _ensure_indexes(db) -> None:
    try:
        CourseStore(db).ensure_indexes()
        ChangeLog(db).ensure_indexes()
    except Exception:  # the database may be down at start-up; the worker creates them too
        log.warning("could not create indexes at start-up; the worker will")

