"""The dev identity provider: one `oidc-provider-mock` (PyPI) per school, with that school's three dev users.

Used by `make run` and the test fixtures alike. Its sign-in page takes the user
in its `sub` field (or offers a button per predefined user): `coordinator@<s>`,
`faculty@<s>` (linked, by email, to the school's first seeded faculty profile),
`faculty2@<s>` (its second, for trying exchange requests with two people), `student@<s>` and
`student2@<s>` (each with a `student_number` and a `programme` claim, for place requests in partners'
courses). Each user's `groups` claim carries the role and its `school` claim the school, as the front
door's dev settings (`idp_env`) map them.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

from devstack import servers
from devstack.seed import FACULTY, faculty2_email, faculty_email

# the provider of a school listens on its port base + this (8109 for ecnu-cto, 8209 for sdu-sie)
IDP_PORT_OFFSET = 9


def users(school: str) -> list[dict]:
    """The dev users of `school`, as ID token claims."""
    first = (FACULTY.get(school) or [{}])[0]
    second = (FACULTY.get(school) or [{}, {}])[1:2] or [{}]
    return [
        {"sub": f"coordinator@{school}", "name": f"Coordinator ({school})", "email": f"coordinator@{school}.example.edu",
         "groups": ["coordinator"], "school": school},
        {"sub": f"faculty@{school}", "name": (first.get("name") or {}).get("en", f"Faculty ({school})"),
         "email": faculty_email(school), "groups": ["faculty"], "school": school},
        {"sub": f"faculty2@{school}", "name": (second[0].get("name") or {}).get("en", f"Faculty 2 ({school})"),
         "email": faculty2_email(school), "groups": ["faculty"], "school": school},
        {"sub": f"student@{school}", "name": f"Student ({school})", "email": f"student@{school}.example.edu",
         "groups": ["student"], "school": school, "student_number": student_number(school, 1), "programme": "MEM"},
        {"sub": f"student2@{school}", "name": f"Student 2 ({school})", "email": f"student2@{school}.example.edu",
         "groups": ["student"], "school": school, "student_number": student_number(school, 2), "programme": "MBA"},
    ]


def student_number(school: str, n: int) -> str:
    """A dev student's number at `school`: its initials, the year, the student's index (e.g. "EC2026-0001")."""
    return f"{school[:2].upper()}2026-{n:04d}"


def start_idp(school: str, port: int, log_dir: Path, stop: threading.Event | None = None) -> servers.Proc:
    """oidc-provider-mock for `school` on 127.0.0.1:port, nonce required, ready when its discovery answers."""
    argv = [servers.bin_path("oidc-provider-mock"), "-H", servers.HOST, "-p", str(port), "--require-nonce", "true"]
    for claims in users(school):
        argv += ["--user-claims", json.dumps(claims)]
    proc = servers.spawn(f"{school}-idp", argv, log_dir / f"{school}-idp.log",
                         {"PYTHONWARNINGS": "ignore"})
    return servers._started(proc, lambda: servers._http_ok(port, "/.well-known/openid-configuration"), 30,
                            f"{school} identity provider on port {port}", stop)


def issuer(port: int) -> str:
    return f"http://{servers.HOST}:{port}"


def idp_env(school: str, port: int, keys_dir: Path) -> dict:
    """The catalog's front-door settings for the dev provider on `port` (plain HTTP: no Secure cookies)."""
    secret_file = Path(keys_dir) / f"{school}.oidc-client-secret"
    if not secret_file.exists():
        # the mock accepts any secret; a file makes the dev stack use the confidential client, as production does
        secret_file.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        secret_file.chmod(0o600)
    return {
        "OIDC_ISSUER": issuer(port), "OIDC_CLIENT_ID": f"catalog-{school}",
        "OIDC_CLIENT_SECRET_FILE": str(secret_file), "OIDC_ROLES_CLAIM": "groups", "OIDC_SCHOOL_CLAIM": "school",
        "SESSION_COOKIE_SECURE": "false",
    }
