"""Every route of every service against the table in docs/access.md."""

from __future__ import annotations

import importlib
import re
import uuid
from pathlib import Path

import pytest

from shared.auth import ROLES

REPO = Path(__file__).resolve().parents[2]
SERVICES = [p.parent.name for p in sorted((REPO / "services").glob("*/app.py"))]
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
OWN, PARTNER = "ecnu-cto", "sdu-sie"


def access_table() -> dict[tuple[str, str, str], tuple[set, set]]:
    text = (REPO / "docs" / "access.md").read_text(encoding="utf-8")
    block = text.split("<!-- access-table:start -->")[1].split("<!-- access-table:end -->")[0]
    table = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("service", "---") or set(cells[0]) <= {"-"}:
            continue
        service, method, path, own, partner = cells
        parse = lambda cell: set() if cell == "-" else {r.strip() for r in cell.split(",")}
        table[(service, method, path)] = (parse(own), parse(partner))
    return table


def routes(app) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - SKIPPED_METHODS):
            found.append((method, rule.rule, rule.endpoint))
    return found


def entry_for(table, service, method, path):
    return table.get((service, method, path)) or table.get(("*", method, path))


def concrete(path: str) -> str:
    path = re.sub(r"<uuid:[^>]+>", str(uuid.uuid4()), path)
    path = re.sub(r"<path:[^>]+>", "swagger-ui.css", path)
    return re.sub(r"<[^>]+>", "x", path)


@pytest.fixture(params=SERVICES)
def service_app(request, make_settings, mongo_client):
    module = importlib.import_module(f"services.{request.param}.app")
    return request.param, module.create_app(make_settings(OWN, request.param), client=mongo_client)


def test_every_route_is_in_the_access_table_and_every_listed_route_exists(service_app):
    service, app = service_app
    table = access_table()
    present = {(m, p) for m, p, _ in routes(app)}
    missing = [(m, p) for m, p in sorted(present) if entry_for(table, service, m, p) is None]
    assert missing == [], f"routes of {service} not in docs/access.md: {missing}"
    listed = {(m, p) for (s, m, p) in table if s == service}
    assert listed - present == set(), f"docs/access.md lists routes {service} does not have"


def test_each_route_admits_exactly_the_callers_the_table_lists(service_app, auth):
    service, app = service_app
    client = app.test_client()
    table = access_table()
    callers = [("anonymous", None, {})]
    for role in ROLES:
        faculty_id = str(uuid.uuid4()) if role == "faculty" else None
        callers.append((f"own {role}", ("own", role), auth(OWN, role, faculty_id)))
        callers.append((f"partner {role}", ("partner", role), auth(PARTNER, role, faculty_id)))
    for method, path, endpoint in routes(app):
        own_roles, partner_roles = entry_for(table, service, method, path)
        if any(r.startswith("page:") for r in own_roles):
            # a page for signed-in people: no bearer token opens it; without a session it asks to sign in,
            # and a form posted without the session's CSRF token is refused before anything else (400)
            for name, who, headers in callers:
                response = client.open(concrete(path), method=method, headers=headers)
                if method == "POST":
                    assert response.status_code == 400, (service, method, path, name, response.status_code)
                    continue
                assert response.status_code == 302, (service, method, path, name, response.status_code)
                assert response.headers["Location"].startswith("/signin"), (path, name)
            continue
        for name, who, headers in callers:
            if who is None:
                allowed = "public" in own_roles
            elif who[0] == "own":
                allowed = "public" in own_roles or who[1] in own_roles
            else:
                allowed = "public" in partner_roles or who[1] in partner_roles
            response = client.open(concrete(path), method=method, headers={**headers, "If-Match": '"1"'},
                                   json={} if method in ("POST", "PUT", "PATCH") else None)
            if allowed:
                assert response.status_code not in (401, 403), (service, method, path, name, response.get_json())
            else:
                expected = 401 if who is None else 403
                assert response.status_code == expected, (service, method, path, name, response.status_code)
