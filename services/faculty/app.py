"""The faculty service's Flask app: gunicorn runs `services.faculty.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.faculty.api import blp
from services.faculty.store import COLLECTION, ensure_indexes
from shared.config import Settings
from shared.outbox import outbox_gauges
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the faculty app of one school (settings from the environment by default)."""
    settings = settings or Settings.from_env(service="faculty")
    return create_write_service_app(
        settings, title=f"Faculty of {settings.school}",
        description="Create, update, withdraw and list a school's faculty profiles; the change feed for "
                    "partners. Contact details and private notes never leave the school.",
        blueprint=blp, feed_entities="faculty profiles", ensure_indexes=ensure_indexes,
        gauges=[lambda db: outbox_gauges(db, COLLECTION)], client=client,
    )
