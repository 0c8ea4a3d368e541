"""The visits service's Flask app: gunicorn runs `services.visits.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.visits.api import blp
from services.visits.store import DECISIONS, REQUESTS, VISITS, ensure_indexes
from shared.config import Settings
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the visits app of one school (settings from the environment by default)."""
    return create_write_service_app(
        "visits", settings, client, blueprint=blp, ensure_indexes=ensure_indexes, outbox=VISITS,
        other_outboxes={"slot_requests": REQUESTS, "slot_decisions": DECISIONS}, feed_entities="visits",
        description="Teaching-team visits hosted by a school and their exchange slots; partner faculty's "
                    "slot requests and the host's decisions; the visits change feed for partners.",
    )
