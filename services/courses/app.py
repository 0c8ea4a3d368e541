"""The courses service's Flask app: gunicorn runs `services.courses.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.courses.api import blp
from services.courses.store import COLLECTION, ensure_indexes
from shared.config import Settings
from shared.outbox import outbox_gauges
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the courses app of one school (settings from the environment by default)."""
    settings = settings or Settings.from_env(service="courses")
    return create_write_service_app(
        settings, title=f"Courses of {settings.school}",
        description="Create, update, withdraw and list a school's courses; the change feed for partners.",
        blueprint=blp, feed_entities="courses", ensure_indexes=ensure_indexes,
        gauges=[lambda db: outbox_gauges(db, COLLECTION)], client=client,
    )
