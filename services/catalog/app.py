"""The catalog service's Flask app: gunicorn runs `services.catalog.app:create_app()`."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from services.catalog import frontdoor, text
from services.catalog.api import blp, sync_status
from services.catalog.calendars import calendar_pages
from services.catalog.pages import pages
from services.catalog.store import ReadModel
from shared import i18n
from shared.calendars import ensure_feed_indexes
from shared.config import Settings
from shared.web import create_base_app

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, client=None, clock=time.time) -> Flask:
    """Build the app: search API, sync status, the public pages and the front door (sign-in and the people's
    pages); indexes made at start-up. `clock` (seconds) decides session expiry; tests pass their own."""
    settings = settings or Settings.from_env(service="catalog")
    app, api = create_base_app(
        settings, title=f"Alliance catalog at {settings.school}",
        description="Search the courses every school of the alliance shares, with their instructors and "
                    "teaching-team visits; see how far each school's changes are applied.",
        client=client,
    )
    api.register_blueprint(blp)
    i18n.init_app(app, secure_cookie=settings.session_cookie_secure)
    app.register_blueprint(pages)
    frontdoor.init_app(app, clock=clock)
    app.register_blueprint(calendar_pages)
    db = app.extensions["db"]
    try:
        ReadModel(db).ensure_indexes()
        ensure_feed_indexes(db)
    except Exception:  # the database may be down at start-up; the worker creates them too
        log.warning("could not create indexes at start-up; the worker will")
    app.extensions["metric_sources"].append(lambda: _sync_gauges(db, settings))
    # jieba's dictionary loads beside the first requests (its own lock makes a Chinese query wait for it),
    # so that a loaded host still answers /healthz at once
    threading.Thread(target=text.warm_up, name="jieba-warm-up", daemon=True).start()
    return app


def _sync_gauges(db, settings):
    for source in sync_status(db, settings):
        labels = {"source_school": source["school"], "entity": source["entity"]}
        yield "catalog_applied_sequence", "Highest source sequence applied", source["applied_seq"], labels
        if source["lag"] is not None:
            yield "catalog_sync_lag", "Source last sequence minus applied sequence", source["lag"], labels
        check = source["last_digest_check"] or {}
        if check:
            yield ("catalog_digest_equal", "1 when the last digest check found (or made) the digests equal",
                   1.0 if check.get("result") in ("equal", "repaired") else 0.0, labels)
        yield "catalog_dead_lettered", "Events of this source sent to the DLQ", source["dead_lettered"], labels
        yield "catalog_entries", "Visible entries held", source["held"], labels
