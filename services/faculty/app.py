"""The faculty service's Flask app: gunicorn runs `services.faculty.app:create_app()`."""

from __future__ import annotations

import logging

from flask import Flask

from services.faculty.api import blp
from services.faculty.store import COLLECTION, FacultyStore
from shared.config import Settings
from shared.feed import feed_blueprint
from shared.outbox import ChangeLog, outbox_gauges
from shared.web import create_base_app

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the app; indexes are created at start-up so the first request finds them."""
    settings = settings or Settings.from_env(service="faculty")
    app, api = create_base_app(
        settings, title=f"Faculty of {settings.school}",
        description="Create, update, withdraw and list a school's faculty profiles; the change feed for "
                    "partners. Contact details and private notes never leave the school.",
        client=client,
    )
    api.register_blueprint(blp)
    api.register_blueprint(feed_blueprint("faculty profiles"))
    db = app.extensions["db"]
    try:
        FacultyStore(db).ensure_indexes()
        ChangeLog(db).ensure_indexes()
    except Exception:  # the database may be down at start-up; the worker creates them too
        log.warning("could not create indexes at start-up; the worker will")
    app.extensions["metric_sources"].append(lambda: outbox_gauges(db, COLLECTION))
    return app
