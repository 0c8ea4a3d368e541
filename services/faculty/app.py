"""The faculty service's Flask app: gunicorn runs `services.faculty.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.faculty.api import blp
from services.faculty.store import COLLECTION, ensure_indexes
from shared.config import Settings
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the faculty app of one school (settings from the environment by default)."""
    return create_write_service_app(
        "faculty", settings, client, blueprint=blp, ensure_indexes=ensure_indexes, outbox=COLLECTION,
        feed_entities="faculty profiles",
        description="Create, update, withdraw and list a school's faculty profiles; the change feed for "
                    "partners. Contact details and private notes never leave the school.",
    )
