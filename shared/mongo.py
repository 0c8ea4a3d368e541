"""MongoDB wiring: one client per process, one database per school and service."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from shared.config import Settings


def credentials(settings: Settings) -> dict:
    """How the process authenticates: none without a password, else as its own user of its own database.

    ops/mongo_users.py creates that user (`<school>_<service>`, role readWrite on that database only);
    the password comes from MONGODB_PASSWORD_FILE, never from the URI or the environment.
    """
    if not settings.mongodb_password:
        return {}
    return {
        "username": settings.mongodb_user,
        "password": settings.mongodb_password,
        "authSource": settings.database_name,
        "authMechanism": "SCRAM-SHA-256",
    }


def connect(settings: Settings) -> MongoClient:
    """The process-wide client; fails fast (503 upstream) when the server is away."""
    return MongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        socketTimeoutMS=max(10_000, settings.mongodb_timeout_ms * 5),
        appname=f"{settings.school}-{settings.service}",
        **credentials(settings),
    )


def database(client: MongoClient, settings: Settings) -> Database:
    return client[settings.database_name]


def ping(client: MongoClient) -> bool:
    try:
        client.admin.command("ping")
        return True
    except Exception:  # any failure means not ready
        return False
