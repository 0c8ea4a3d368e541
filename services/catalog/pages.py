"""The student page: search, filters with counts, result cards and a course page, in English and Chinese.

Server-rendered (Jinja), no JavaScript needed, no external assets. The page
uses the same search and course functions as the API. One small script
(static/suggest.js, no inline script) offers course titles and codes as a
student types, in the search box's datalist; without it the page works the same.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, render_template, request
from markupsafe import Markup, escape
from marshmallow import EXCLUDE, ValidationError

from services.catalog import i18n
from shared.i18n import current_lang
from services.catalog.api import check_read_access, course_detail, search
from services.catalog.schemas import SORTS, SearchQuerySchema
from shared.config import ConfigError
from shared.errors import DomainError

pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/static/catalog")
PAGE_SORTS = [s for s in SORTS if s in ("code", "title", "credits", "-credits", "school", "-updated")]
FILTERS = ("school", "programme", "language", "delivery", "term", "eqf_level", "isced_f")
_QUERY = SearchQuerySchema(unknown=EXCLUDE)


def _query_from_args() -> tuple[dict, list[str]]:
    """The search query from the form; invalid fields are dropped and named, never a 422 page."""
    raw = {k: v for k, v in request.args.items() if v.strip() and k != "lang"}
    try:
        return _QUERY.load(raw), []
    except ValidationError as exc:
        bad = sorted(exc.messages)
        return _QUERY.load({k: v for k, v in raw.items() if k not in bad}), bad


def _school_name(school_id: str) -> str:
    """A school's name in the page's language."""
    try:
        school = current_app.extensions["settings"].school_of(school_id)
    except ConfigError:
        return school_id
    return i18n.text(school.name, current_lang()) or school_id


def _url_with(**changes) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    args = {k: v for k, v in request.args.items() if v}
    args.update({k: v for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        args.pop(k, None)
    return f"{request.path}?{urlencode(args)}" if args else request.path


@pages.app_context_processor
def _layout_context() -> dict:
    """What the layout (base.html) needs on every page of the app, the front door's too."""
    lang = current_lang()
    return {
        "url_with": _url_with, "school_name": _school_name, "own_school": current_app.extensions["settings"].school,
        "tx": lambda value: i18n.text(value, lang),
    }


def _context() -> dict:
    lang = current_lang()
    return {
        "vl": lambda value: i18n.value_label(lang, value),
        "vls": lambda values: ", ".join(i18n.value_label(lang, v) for v in values or []),
        "txs": lambda values: ", ".join(i18n.text(v, lang) for v in values or []),
        "filter_label": lambda name: i18n.label_of(i18n.FILTER_LABELS, lang, name),
        "sort_label": lambda name: i18n.label_of(i18n.SORT_LABELS, lang, name),
        "places": lambda slot: i18n.places(lang, slot.get("places_left"), slot.get("capacity")),
        "slot_time": i18n.slot_time,
        "hl": lambda item, field: _highlighted(item, field, lang),
    }


def _highlighted(item: dict, field: str, lang: str) -> Markup:
    """A card's text in `lang` with the matched words marked (escaped by the search), else the plain text escaped."""
    marked = (item.get("highlight") or {}).get(field)
    if marked:
        return Markup(i18n.text(marked, lang))
    return escape(i18n.text(item.get(field), lang))


@pages.get("/")
def index():
    """The search page."""
    check_read_access()
    query, invalid = _query_from_args()
    result = search(current_app.extensions["db"], current_app.extensions["settings"], query)
    filtering = any(k in query for k in (*FILTERS, "credits_min", "credits_max"))
    return render_template("index.html", query=query, invalid=invalid, result=result, filters=FILTERS,
                           filtering=filtering, sorts=PAGE_SORTS, **_context())


@pages.get("/course/<uuid:course_id>")
def course(course_id):
    """One course's page."""
    check_read_access()
    context = _context()
    try:
        detail = course_detail(current_app.extensions["db"], current_app.extensions["settings"].school,
                               str(course_id))
    except DomainError as problem:
        if problem.status != 404:
            raise
        return render_template("not_found.html", **context), 404
    return render_template("course.html", course=detail, **context)
