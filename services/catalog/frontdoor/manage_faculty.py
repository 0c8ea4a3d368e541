"""The coordinators' faculty pages: the school's profiles, "New profile", edit, "Withdraw".

A profile's private fields (email, phone, notes) are shown here only: the
faculty service gives them to the school's coordinators and to no one else,
and no other page asks for them.
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from services.catalog.frontdoor import entity_forms, forms
from services.catalog.frontdoor.forms import Form
from services.catalog.frontdoor.manage import manage
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.faculty.model import VISIBILITIES

WINDOW_FIELDS = ("from", "to")
PLACED = {"name", "title", "department", "expertise", "languages", "bio", "courses", "availability", "visibility",
          "email", "phone", "private_notes"}


def profile_body(values: dict) -> dict:
    """The faculty API's body (FacultyInSchema) from the form's values."""
    body: dict = {"name": forms.lang_map(values, "name")}
    for name in ("title", "department", "email"):
        forms.put_text(body, values, name, required=True)
    for name in ("phone", "private_notes"):
        forms.put_text(body, values, name)
    body["expertise"] = forms.items(values.get("expertise", ""))
    body["languages"] = forms.items(values.get("languages", ""))
    bio = forms.lang_map(values, "bio")
    if bio:
        body["bio"] = bio
    body["courses"] = [v for v in request.form.getlist("courses") if v]
    body["availability"] = forms.rows(values, "availability", WINDOW_FIELDS)
    body["visibility"] = forms.text(values, "visibility") or "school"
    return body


def values_of(profile: dict) -> dict:
    values = {k: str(profile.get(k) or "") for k in ("title", "department", "email", "phone", "private_notes",
                                                      "visibility")}
    values.update(forms.langs_of(profile, "name"))
    values.update(forms.langs_of(profile, "bio"))
    values["expertise"] = ", ".join(profile.get("expertise") or [])
    values["languages"] = ", ".join(profile.get("languages") or [])
    values.update(forms.flatten_rows([{f: w.get(f, "") for f in WINDOW_FIELDS}
                                      for w in profile.get("availability") or []], "availability"))
    values["version"] = str(profile.get("version", ""))
    return values


def _renumbered(values: dict) -> dict:
    return forms.renumbered(values, "availability", WINDOW_FIELDS)


def _render(form: Form, profile: dict | None, status: int = 200, newer: dict | None = None, posted: bool = False):
    client = for_person(current_person())
    chosen = request.form.getlist("courses") if posted else (profile or {}).get("courses") or []
    try:
        courses = client.get_all("courses", "/courses", limit=100, sort="code")
    except ServiceProblem:
        courses = []
    return render_template(
        "frontdoor/manage_faculty_form.html", form=form, profile=profile, newer=newer, chosen=chosen,
        courses=courses, windows=forms.form_rows(form.values, "availability", WINDOW_FIELDS),
        visibilities=VISIBILITIES, unplaced=form.unplaced(PLACED)), status


@manage.get("/faculty")
@role_required("coordinator")
def faculty():
    """The school's faculty profiles, active and withdrawn, with their private contact details."""
    problem = None
    items: list[dict] = []
    try:
        items = for_person(current_person()).get_all("faculty", "/faculty", limit=100, sort="name")
    except ServiceProblem as exc:
        problem = exc
    return render_template("frontdoor/manage_faculty.html", profiles=items, problem=problem)


@manage.get("/faculty/new")
@role_required("coordinator")
def new_profile():
    """The "New profile" form."""
    form = Form(values={"visibility": "school", "languages": "zh, en", "idempotency_key": forms.new_idempotency_key()})
    return _render(form, None)


@manage.post("/faculty/new")
@role_required("coordinator")
def create_profile():
    """Create a profile; shown again with the messages at their fields when the service refuses it."""
    return entity_forms.create("faculty", "/faculty", profile_body, _renumbered, _render,
                               lambda profile: _("Profile of %(name)s created.", name=profile["name"].get("en", "")),
                               "manage.faculty")


@manage.get("/faculty/<uuid:faculty_id>")
@role_required("coordinator")
def edit_profile(faculty_id):
    """A profile's edit form, with "Withdraw"."""
    return entity_forms.edit("faculty", f"/faculty/{faculty_id}", values_of, _render)


@manage.post("/faculty/<uuid:faculty_id>")
@role_required("coordinator")
def save_profile(faculty_id):
    """Replace a profile (If-Match: the version the form showed); a 412 shows the newer version."""
    return entity_forms.save("faculty", f"/faculty/{faculty_id}", profile_body, _renumbered, _render,
                             lambda values: _("Profile saved."), "manage.faculty")


@manage.post("/faculty/<uuid:faculty_id>/withdraw")
@role_required("coordinator")
def withdraw_profile(faculty_id):
    """Withdraw a profile: coordinators still see it, partners drop it (a 409 or 412 shows it again)."""
    return entity_forms.withdraw("faculty", f"/faculty/{faculty_id}", values_of, _render,
                                 lambda: _("Profile withdrawn."), "manage.faculty", shown=(409, 412))
