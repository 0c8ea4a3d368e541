"""MongoDB wiring: one client per process, one database per school and service."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from shared.config import Settings


def connect(settings: Settings) -> MongoClient:
    """The process-wide client; fails fast (503 upstream) when the server is away."""
    return MongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        socketTimeoutMS=max(10_000, settings.mongodb_timeout_ms * 5),
        appname=f"{settings.school}-{settings.service}",
    )


def database(client: MongoClient, settings: Settings) -> Database:
    return client[settings.database_name]


def ping(client: MongoClient) -> bool:
    try:
        client.admin.command("ping")
        return True
    except Exception:  # any failure means not ready
        return False
