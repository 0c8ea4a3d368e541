"""The courses service's Flask app: gunicorn runs `services.courses.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.courses.api import blp, places
from services.courses.store import COLLECTION, DECISIONS, REQUESTS, ensure_indexes
from shared.config import Settings
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the courses app of one school (settings from the environment by default)."""
    return create_write_service_app(
        "courses", settings, client, blueprint=blp, other_blueprints=(places,), ensure_indexes=ensure_indexes,
        outbox=COLLECTION, other_outboxes={"place_requests": REQUESTS, "place_decisions": DECISIONS},
        feed_entities="courses",
        description="Create, update, withdraw and list a school's courses; the change feed for partners; "
                    "students' requests for places in partners' offerings and the host's decisions on them.",
    )
