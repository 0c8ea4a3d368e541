"""Integration fixtures: a service's Flask app on the real MongoDB-protocol server."""

from __future__ import annotations

import pytest
from pymongo import MongoClient


@pytest.fixture
def mongo_client(mongo_uri):
    client = MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=3000)
    yield client
    client.close()


@pytest.fixture
def courses_app(make_settings, mongo_client):
    from services.courses.app import create_app

    settings = make_settings("ecnu-cto", "courses")
    app = create_app(settings, client=mongo_client)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(courses_app):
    return courses_app.test_client()
