"""An entity's form pages (a course, a profile, a visit): edit, create, save and withdraw through its service.

Each page module passes what differs: the service and the entity's path, its
`body(values)` and `values_of(entity)`, how to put back the posted values
(`renumbered`), its flash messages and the list to go back to, and its
`render(form, entity, status=200, newer=None, posted=False)` (`posted`: the
checkboxes as the person ticked them, not as the entity has them).

Every write goes as the signed-in coordinator: a create with the form's
Idempotency-Key (a double submit creates one), a save and a withdrawal with
If-Match on the version the form was rendered from (a stale one is a 412: the
page then shows the newer version and keeps what the person typed, ready to
apply again).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from services.catalog.frontdoor import forms
from services.catalog.frontdoor.forms import Form
from services.catalog.frontdoor.people import current_person
from services.catalog.frontdoor.services_client import ServiceProblem, for_person


def status_of(problem: ServiceProblem) -> int:
    """The page's status: the service's 4xx (422, 409, 412) as it is; a failure to reach it is a 502."""
    return problem.status if 400 <= problem.status < 500 else 502


def missing(problem: ServiceProblem):
    """The "not found" page (404), or the service's failure (502)."""
    status = 404 if problem.status == 404 else 502
    return render_template("frontdoor/manage_missing.html", problem=problem), status


def edit(service: str, path: str, values_of, render):
    """The entity's edit form, as the service has it."""
    try:
        entity = for_person(current_person()).get(service, path)
    except ServiceProblem as problem:
        return missing(problem)
    return render(Form(values=values_of(entity)), entity)


def create(service: str, path: str, body, renumbered, render, created, back: str):
    """POST the form; refused, the form again with the messages at their fields and a fresh key (the refused
    request created nothing); done, `created(entity)` is flashed on the list `back`."""
    values = forms.posted()
    try:
        entity = for_person(current_person()).call(
            "POST", service, path, json=body(values), idempotency_key=values.get("idempotency_key") or None).json()
    except ServiceProblem as problem:
        values = dict(renumbered(values), idempotency_key=forms.new_idempotency_key())
        form = Form(values=values, errors=forms.errors_of(problem), problem=problem)
        return render(form, None, status=status_of(problem), posted=True)
    flash(created(entity))
    return redirect(url_for(back))


def save(service: str, path: str, body, renumbered, render, saved, back: str):
    """PUT the form (If-Match); refused, the form again with the person's values; on a 412 with the newer
    version beside it and its version in the form, ready to apply again. Done, `saved(values)` is flashed."""
    values = forms.posted()
    client = for_person(current_person())
    try:
        client.call("PUT", service, path, json=body(values), etag=forms.version_of(values))
    except ServiceProblem as problem:
        try:
            entity = client.get(service, path)
        except ServiceProblem as gone:
            return missing(gone)
        kept = renumbered(values)
        newer = None
        if problem.status == 412:
            newer, kept = entity, dict(kept, version=str(entity["version"]))
        form = Form(values=kept, errors=forms.errors_of(problem), problem=problem)
        return render(form, entity, status=status_of(problem), newer=newer, posted=True)
    flash(saved(values))
    return redirect(url_for(back))


def withdraw(service: str, path: str, values_of, render, withdrawn, back: str, shown=(412,)):
    """DELETE the entity (If-Match); a refusal whose status is in `shown` shows the form again as the service
    has it now (the newer version beside it on a 412); done, `withdrawn()` is flashed."""
    values = forms.posted()
    client = for_person(current_person())
    try:
        client.call("DELETE", service, path, etag=forms.version_of(values))
    except ServiceProblem as problem:
        if problem.status not in shown:
            return missing(problem)
        try:
            entity = client.get(service, path)
        except ServiceProblem as gone:
            return missing(gone)
        form = Form(values=values_of(entity), problem=problem)
        return render(form, entity, status=problem.status, newer=entity if problem.status == 412 else None)
    flash(withdrawn())
    return redirect(url_for(back))
