"""The baseline of the write benchmark: the least a Flask + pymongo insert endpoint can do.

POST /items inserts the JSON body into one collection and answers 201 with the
new id: no schema, no auth, no outbox, no logging. It runs under the same
gunicorn settings and against the same MongoDB-protocol server as the courses
service, so the ratio of the two is the cost of everything the service adds.
Run: gunicorn -c python:shared.gunicorn_conf "bench.minimal_app:create_app()"
"""

from __future__ import annotations

from flask import Flask, request

from shared.config import Settings
from shared.mongo import connect, database


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(service="minimal")
    app = Flask("bench-minimal")
    items = database(connect(settings), settings)["items"]

    @app.post("/items")
    def create_item():
        doc = request.get_json()
        result = items.insert_one(doc)
        return {"id": str(result.inserted_id)}, 201

    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    return app
