"""A school's MongoDB users: `python -m ops.mongo_users` (compose's `<school>-mongodb-init`, one process).

Least privilege: each service of the school gets its own user, named like its
database (`ecnu_cto_courses`), defined in that database, with the one role
`readWrite` on that database only. The catalog's user reaches the catalog's
database and nothing else; no service user can read another service's data,
create users or run server commands.

Connects as the server's root user (created by the mongo image from
MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD_FILE on the first
start of an empty volume). Creates each missing user and sets every existing
one's password and roles to what is derived here, so it can run at every
`docker compose up`, and a changed password file takes effect at the next run
(docs/operations.md, "Rotate passwords").

Environment: SCHOOL, MONGODB_URI (the school's server, no credentials in it),
MONGODB_USERNAME (the root user), MONGODB_PASSWORD_FILE (its password),
SECRETS_DIR (default /run/secrets: `<school>.<service>.mongodb.password` of
each service), MONGODB_DATABASE_PREFIX (tests only).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from bson.son import SON
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.config import SERVICE_PORT_OFFSETS, ConfigError, read_secret

log = logging.getLogger("mongo_users")

SERVICES = tuple(SERVICE_PORT_OFFSETS)
ROLE = "readWrite"


def database_of(school: str, service: str, prefix: str = "") -> str:
    """The service's database, as shared.config.Settings.database_name names it; also its user's name."""
    return f"{prefix}{school}_{service}".replace("-", "_")


def password_file(secrets_dir: Path, school: str, service: str) -> Path:
    return secrets_dir / f"{school}.{service}.mongodb.password"


def user_command(database: str, password: str, exists: bool) -> SON:
    """The command, run in `database`, that makes its user hold this password and only readWrite on it."""
    roles = [{"role": ROLE, "db": database}]
    if exists:
        return SON([("updateUser", database), ("pwd", password), ("roles", roles),
                    ("mechanisms", ["SCRAM-SHA-256"])])
    return SON([("createUser", database), ("pwd", password), ("roles", roles), ("mechanisms", ["SCRAM-SHA-256"])])


def apply(client: MongoClient, school: str, passwords: dict[str, str], prefix: str = "") -> None:
    """Create or update the user of each service in `passwords` (service -> password)."""
    for service, password in sorted(passwords.items()):
        name = database_of(school, service, prefix)
        db = client[name]
        exists = bool(db.command("usersInfo", name).get("users"))
        db.command(user_command(name, password, exists))
        log.info("%s user %s (role %s on %s)", "updated" if exists else "created", name, ROLE, name)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    school = os.environ["SCHOOL"]
    secrets_dir = Path(os.environ.get("SECRETS_DIR") or "/run/secrets")
    prefix = os.environ.get("MONGODB_DATABASE_PREFIX", "")
    try:
        root_password = read_secret(Path(os.environ["MONGODB_PASSWORD_FILE"]), "MONGODB_PASSWORD_FILE")
        passwords = {s: read_secret(password_file(secrets_dir, school, s), f"{school} {s}") for s in SERVICES}
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/"),
                         username=os.environ.get("MONGODB_USERNAME") or "root", password=root_password,
                         authSource="admin", serverSelectionTimeoutMS=5000)
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                apply(client, school, passwords, prefix)
                break
            except PyMongoError as exc:  # the server may still be starting
                if time.monotonic() > deadline:
                    raise
                log.warning("MongoDB not ready yet (%s); retrying", exc.__class__.__name__)
                time.sleep(2)
    finally:
        client.close()
    log.info("%d users of %s up to date", len(passwords), school)
    return 0


if __name__ == "__main__":
    sys.exit(main())
