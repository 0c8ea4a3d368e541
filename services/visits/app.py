"""The visits service's Flask app: gunicorn runs `services.visits.app:create_app()`."""

from __future__ import annotations

import logging

from flask import Flask

from services.visits.api import blp
from services.visits.store import DECISIONS, REQUESTS, VISITS
from services.visits.worker import ensure_indexes
from shared.config import Settings
from shared.feed import feed_blueprint
from shared.outbox import outbox_gauges, unpublished_filter
from shared.web import create_base_app

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, client=None) -> Flask:
    """Build the app; indexes are created at start-up so the first request finds them."""
    settings = settings or Settings.from_env(service="visits")
    app, api = create_base_app(
        settings, title=f"Visits of {settings.school}",
        description="Teaching-team visits hosted by a school and their exchange slots; partner faculty's "
                    "slot requests and the host's decisions; the visits change feed for partners.",
        client=client,
    )
    api.register_blueprint(blp)
    api.register_blueprint(feed_blueprint("visits"))
    db = app.extensions["db"]
    try:
        ensure_indexes(db)
    except Exception:  # the database may be down at start-up; the worker creates them too
        log.warning("could not create indexes at start-up; the worker will")
    app.extensions["metric_sources"].append(lambda: outbox_gauges(db, VISITS))
    app.extensions["metric_sources"].append(lambda: _backlogs(db))
    return app


def _backlogs(db):
    for name, collection in (("slot_requests", REQUESTS), ("slot_decisions", DECISIONS)):
        backlog = db.command("count", collection, query=unpublished_filter())["n"]
        yield f"outbox_backlog_{name}", f"{name} written but not yet published", backlog
