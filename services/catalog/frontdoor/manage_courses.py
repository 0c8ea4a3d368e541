"""The coordinators' course pages: "New course", edit, "Withdraw" (the list is manage.courses).

The create, save and withdraw flows (Idempotency-Key, If-Match, the newer
version on a 412) are entity_forms'; this module gives the course's parts.
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from services.catalog.frontdoor import entity_forms, forms
from services.catalog.frontdoor.forms import Form
from services.catalog.frontdoor.manage import COURSE_STATUSES, COURSE_VISIBILITIES, manage
from services.catalog.frontdoor.people import current_person, role_required
from services.catalog.frontdoor.services_client import ServiceProblem, for_person
from services.courses.model import DELIVERY_MODES

OFFERING_FIELDS = ("term", "starts_on", "ends_on", "places", "applications_open", "applications_close", "approval")
# an offering's `approval` in the form: blank is the service's default, automatic (so a blank row stays blank)
APPROVALS = ("", "review")
# every field the form shows an error at (the rest are listed at the top)
PLACED = {"code", "title", "description", "programme", "credits", "eqf_level", "isced_f", "languages", "delivery",
          "hours", "learning_outcomes", "prerequisites", "instructors", "offerings", "visibility", "status"}


def course_body(values: dict) -> dict:
    """The courses API's body (CourseInSchema) from the form's values."""
    body: dict = {"title": forms.lang_map(values, "title"), "description": forms.lang_map(values, "description")}
    forms.put_text(body, values, "code", required=True)
    forms.put_text(body, values, "programme", required=True)
    forms.put_number(body, values, "credits", required=True)
    forms.put_number(body, values, "eqf_level", integer=True)
    forms.put_text(body, values, "isced_f")
    body["languages"] = forms.items(values.get("languages", ""))
    body["delivery"] = forms.text(values, "delivery")
    forms.put_number(body, values, "hours", integer=True)
    body["learning_outcomes"] = forms.lang_map_list(values, "learning_outcomes")
    body["prerequisites"] = forms.lang_map_list(values, "prerequisites")
    body["instructors"] = [v for v in _multi("instructors") if v]
    offerings = []
    for row in forms.rows(values, "offerings", OFFERING_FIELDS):
        offering = {k: v for k, v in row.items() if v and k != "places"}
        if row["places"]:
            offering["places"] = forms.number(row["places"], integer=True)
        offerings.append(offering)
    body["offerings"] = offerings
    body["visibility"] = forms.text(values, "visibility") or "school"
    body["status"] = forms.text(values, "status") or "draft"
    return body


def _multi(name: str) -> list[str]:
    """A field posted several times (checkboxes), as a list."""
    return request.form.getlist(name)


def values_of(course: dict) -> dict:
    """A course as the form's values (text)."""
    values = {k: str(course.get(k, "") if course.get(k) is not None else "")
              for k in ("code", "programme", "isced_f", "delivery", "visibility", "status")}
    credits = course.get("credits")
    values["credits"] = "" if credits is None else ("%g" % credits)
    for k in ("eqf_level", "hours"):
        values[k] = "" if course.get(k) is None else str(course[k])
    values["languages"] = ", ".join(course.get("languages") or [])
    values.update(forms.langs_of(course, "title"))
    values.update(forms.langs_of(course, "description"))
    values.update(forms.lang_list_of(course, "learning_outcomes"))
    values.update(forms.lang_list_of(course, "prerequisites"))
    offerings = [{f: str(o.get(f, "") if o.get(f) is not None else "") for f in OFFERING_FIELDS}
                 for o in course.get("offerings") or []]
    for offering in offerings:
        offering["approval"] = "" if offering["approval"] == "automatic" else offering["approval"]
    values.update(forms.flatten_rows(offerings, "offerings"))
    values["version"] = str(course.get("version", ""))
    return values


def _faculty_choices(client) -> list[dict]:
    """The school's profiles, to pick instructors from; none when the faculty service does not answer."""
    try:
        return client.get_all("faculty", "/faculty", limit=100, sort="name")
    except ServiceProblem:
        return []


def _render(form: Form, course: dict | None, status: int = 200, newer: dict | None = None, posted: bool = False):
    client = for_person(current_person())
    instructors = _multi("instructors") if posted else (course or {}).get("instructors") or []
    rows = forms.form_rows(form.values, "offerings", OFFERING_FIELDS)
    return render_template(
        "frontdoor/manage_course_form.html", form=form, course=course, newer=newer, offerings=rows,
        instructors=instructors, faculty=_faculty_choices(client), statuses=COURSE_STATUSES,
        visibilities=COURSE_VISIBILITIES, deliveries=DELIVERY_MODES, approvals=APPROVALS,
        unplaced=form.unplaced(PLACED)), status


def _renumbered(values: dict) -> dict:
    """The posted values with the offering rows renumbered as they were sent (blank rows dropped)."""
    return forms.renumbered(values, "offerings", OFFERING_FIELDS)


@manage.get("/courses/new")
@role_required("coordinator")
def new_course():
    """The "New course" form."""
    form = Form(values={"status": "draft", "visibility": "school", "delivery": "in_person", "languages": "en",
                        "idempotency_key": forms.new_idempotency_key()})
    return _render(form, None)


@manage.post("/courses/new")
@role_required("coordinator")
def create_course():
    """Create a course; shown again with the messages at their fields when the service refuses it."""
    return entity_forms.create("courses", "/courses", course_body, _renumbered, _render,
                               lambda course: _("Course %(code)s created.", code=course["code"]), "manage.courses")


@manage.get("/courses/<uuid:course_id>")
@role_required("coordinator")
def edit_course(course_id):
    """A course's edit form, with "Withdraw"."""
    return entity_forms.edit("courses", f"/courses/{course_id}", values_of, _render)


@manage.post("/courses/<uuid:course_id>")
@role_required("coordinator")
def save_course(course_id):
    """Replace a course (If-Match: the version the form showed); a 412 shows the newer version."""
    return entity_forms.save("courses", f"/courses/{course_id}", course_body, _renumbered, _render,
                             lambda values: _("Course %(code)s saved.", code=forms.text(values, "code")),
                             "manage.courses")


@manage.post("/courses/<uuid:course_id>/withdraw")
@role_required("coordinator")
def withdraw_course(course_id):
    """Withdraw a course: it stays listed as withdrawn, and partners' catalogs drop it."""
    return entity_forms.withdraw("courses", f"/courses/{course_id}", values_of, _render,
                                 lambda: _("Course withdrawn."), "manage.courses")
