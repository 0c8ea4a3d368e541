"""Two schools' services mailing through the development SMTP server (devstack/mailserver.py), for e2e tests.

`two_schools` writes an alliance of ecnu-cto and sdu-sie on free port bases; `mail_env` is what a
service needs to mail through the server quickly (short retries); `mails` reads back the `.eml`
files the server wrote, each a parsed message (`X-Envelope-To` names its recipient).
"""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

from devstack import servers
from tests.processes import free_port_base

ECNU, SDU = "ecnu-cto", "sdu-sie"


def two_schools(path: Path, host_contact: str | None = None) -> dict[str, int]:
    """Write the alliance file of ecnu-cto (with `host_contact`) and sdu-sie at `path`; their port bases."""
    bases = {ECNU: free_port_base()}
    bases[SDU] = next(b for b in iter(free_port_base, None) if abs(b - bases[ECNU]) > 4)
    path.write_text(json.dumps({"schools": [
        {"id": ECNU, "name": {"en": "ECNU CTO School", "zh": "华东师范大学首席技术官学院"}, "port_base": bases[ECNU],
         "time_zone": "Asia/Shanghai", **({"contact": host_contact} if host_contact else {})},
        {"id": SDU, "name": {"en": "SDU SIE", "zh": "山东大学创新创业学院"}, "port_base": bases[SDU],
         "time_zone": "Asia/Shanghai"},
    ]}), encoding="utf-8")
    return bases


def mail_env(mail_port: int, school: str, coordinators: str = "", **more: str) -> dict[str, str]:
    """A service's settings to mail through the development server, retrying within a second."""
    return {"SMTP_HOST": servers.HOST, "SMTP_PORT": str(mail_port), "MAIL_RETRY_SECONDS": "0.2",
            "MAIL_RETRY_MAX_SECONDS": "1", "MAIL_IDLE_SECONDS": "0.1",
            "MAIL_SENDER": f"alliance-catalog@{school}.example.edu", "COORDINATOR_EMAILS": coordinators, **more}


def mails(mail_dir: Path, to: str | None = None) -> list:
    """The messages the server kept, oldest file name first; only those to `to` if given."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if to is None or message["X-Envelope-To"] == to:
            found.append(message)
    return found


def stop_all(services: dict, mail_server) -> None:
    """Stop every service's processes and the mail server at once: one deadline for every process."""
    procs = [p for svc in services.values() for p in (svc.web, svc.worker) if p is not None]
    servers.stop_all(procs + ([mail_server] if mail_server else []), 5)
