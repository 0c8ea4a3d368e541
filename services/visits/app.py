"""The visits service's Flask app: gunicorn runs `services.visits.app:create_app()`."""

from __future__ import annotations

from flask import Flask

from services.visits.api import blp
from services.visits.store import DECISIONS, REQUESTS, VISITS, ensure_indexes
from shared.config import Settings
from shared.outbox import outbox_gauges, unpublished_filter
from shared.web import create_write_service_app


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the visits app of one school (settings from the environment by default)."""
    settings = settings or Settings.from_env(service="visits")
    return create_write_service_app(
        settings, title=f"Visits of {settings.school}",
        description="Teaching-team visits hosted by a school and their exchange slots; partner faculty's "
                    "slot requests and the host's decisions; the visits change feed for partners.",
        blueprint=blp, feed_entities="visits", ensure_indexes=ensure_indexes,
        gauges=[lambda db: outbox_gauges(db, VISITS), _backlogs], client=client,
    )


def _backlogs(db):
    for name, collection in (("slot_requests", REQUESTS), ("slot_decisions", DECISIONS)):
        backlog = db.command("count", collection, query=unpublished_filter())["n"]
        yield f"outbox_backlog_{name}", f"{name} written but not yet published", backlog
