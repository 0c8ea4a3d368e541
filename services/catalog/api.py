"""The catalog's HTTP API: search the shared courses, read one with its people and visits, list the upcoming
visits with their places left, sync status."""

from __future__ import annotations

from functools import wraps

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from services.catalog.model import ENTITY_OF_TOPIC, TOPIC_ENTITIES, visit_view
from services.catalog.schemas import (
    CourseCardSchema, CourseDetailSchema, SearchPageSchema, SearchQuerySchema, SuggestionsSchema, SuggestQuerySchema, SyncSchema,
    VisitPageSchema, VisitQuerySchema, VisitSchema,
)
from services.catalog.query import (
    VisitSearch, upcoming_visits, visible_visit, visit_criteria,
)
from services.catalog.search_index import FACET_FIELDS, Generations, SearchIndex
from services.catalog.store import DeadLetterTally, ReadModel, SyncState
from services.catalog.text import Highlighter
from shared.auth import current_principal
from shared.errors import DomainError
from shared.pagination import decode_cursor, encode_cursor
from shared.resource import linked

blp = Blueprint("catalog", __name__, description="The shared catalog of every school of the alliance")
READ_ROLES = ("student", "faculty", "coordinator")


def check_read_access() -> None:
    """Reading needs no token, unless the school configures it (CATALOG_READ_TOKEN): then one of its own."""
    settings = current_app.extensions["settings"]
    if not settings.catalog_read_token:
        return
    principal = current_principal()
    if principal.school != settings.school or principal.role not in READ_ROLES:
        raise DomainError("forbidden", f"reading this catalog needs a token of {settings.school} with role "
                      f"{', '.join(READ_ROLES)}")


def readers(view):
    """Check read access before the query is even parsed (401/403 before 422)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        check_read_access()
        return view(*args, **kwargs)

    return wrapper


def _db():
    return current_app.extensions["db"]


def search(db, settings, query: dict) -> dict:
    """One page of visible courses for the query from the search index, its total, facet counts and highlights.

    The sort is by relevance when there is free text and no sort is asked for, by code otherwise.
    """
    filters = {k: v for k, v in query.items() if k not in ("sort", "limit", "cursor", "facets")}
    sort = query.get("sort") or ("relevance" if query.get("q") else "code")
    cursor = decode_cursor(query["cursor"]) if query.get("cursor") else None
    found = _from_index(db, settings, lambda index: index.search(
        filters, sort, query.get("limit", 20), cursor, query.get("facets", True)))
    if found is None:
        found = {"items": [], "total": 0, "next_cursor": None, "words": [],
                 "facets": {name: [] for name in FACET_FIELDS} if query.get("facets", True) else {}}
    for item in found["items"]:
        item["own"] = item["school"] == settings.school
    if found["words"]:
        # every title and description of the page, in each language, marked at once
        places = [(item, field, lang) for item in found["items"] for field in ("title", "description")
                  if item.get(field) for lang in item[field]]
        for item in found["items"]:
            item["highlight"] = {}
        marked = Highlighter(found["words"])([item[field][lang] for item, field, lang in places])
        for (item, field, lang), text in zip(places, marked):
            item["highlight"].setdefault(field, {})[lang] = text
    page = linked({"items": found["items"],
                   "cursor": encode_cursor(*found["next_cursor"]) if found["next_cursor"] else None})
    page["total"] = found["total"]
    page["facets"] = found["facets"]
    return page


CARD_KEYS = tuple(name for name in CourseCardSchema._declared_fields if name != "id")


def search_view(page: dict) -> dict:
    """What SearchPageSchema dumps of a search page, built directly: the hottest answer of the catalog.

    The cards come from the index as the read model stored them (validated when applied),
    so only the declared fields are picked and `_id` is named `id`; a test checks that this
    equals the schema's dump.
    """
    items = [{"id": card["_id"], **{k: card[k] for k in CARD_KEYS if k in card}} for card in page["items"]]
    return {"items": items, "next": page["next"], "total": page["total"], "facets": page["facets"]}


def suggestions(db, settings, prefix: str, limit: int) -> list[dict]:
    """Course titles and codes for what a student has typed so far."""
    return _from_index(db, settings, lambda index: index.suggest(prefix, limit)) or []


def _from_index(db, settings, ask):
    """`ask(index)` of the catalog's search index; None when no course was ever applied (no index to build yet,
    and the answer, nothing, is known). An index missing on a catalog that holds courses is an `unavailable`
    problem. The index reads its stamp once per call (SearchIndex.index)."""
    try:
        return ask(SearchIndex.at(settings.search_index_dir, db.name))
    except DomainError as exc:
        if exc.kind == "unavailable" and Generations(db).current() == 0:
            return None
        raise


def course_detail(db, own_school: str, course_id: str) -> dict:
    """A visible course with its instructors' public profiles and its school's upcoming visits."""
    model = ReadModel(db)
    course = model.get("course", course_id)
    if course is None:
        raise DomainError("course-not-found", "no course with this id is visible to you")
    course["own"] = course["school"] == own_school
    course["instructor_profiles"] = model.profiles(course.get("instructors", []))
    course["visits"] = [visit_view(v, own_school) for v in upcoming_visits(db, course["school"], own_school)]
    return course


def visits_page(db, own_school: str, query: dict) -> dict:
    """One page of the upcoming visits this school may see, earliest first, each slot with its places left."""
    filters = {k: v for k, v in query.items() if k not in ("limit", "cursor")}
    page = linked(VisitSearch(db).page(visit_criteria(filters, own_school), "starts_on", query["limit"],
                                       query.get("cursor")))
    page["items"] = [visit_view(v, own_school) for v in page["items"]]
    return page


def visit_detail(db, own_school: str, visit_id: str) -> dict:
    """A visible visit this school may see (past ones too), each slot with its places left."""
    visit = visible_visit(db, visit_id, own_school)
    if visit is None:
        raise VisitSearch(db).not_found()
    return visit_view(visit, own_school)


def partner_status(db, settings, sources: list[dict]) -> list[dict]:
    """Per partner school, what its "Partners" page line shows: lag, last digest checks, dead letters.

    `dead_lettered` counts every event of that partner's topics this school's consumers refused (the
    catalog's and the visits service's), read from the school's dead-letter topic; `lag` sums the
    known lags of its entity kinds (null while none is known yet).
    """
    tally = DeadLetterTally(db)
    out = []
    for school in settings.school_ids:
        if school == settings.school:
            continue
        mine = [s for s in sources if s["school"] == school]
        lags = [s["lag"] for s in mine if s["lag"] is not None]
        checks = {s["entity"]: s["last_digest_check"] for s in mine if s.get("last_digest_check")}
        out.append({
            "school": school, "dead_lettered": tally.count(school), "lag": sum(lags) if lags else None,
            "last_digest_check": min((c.get("at") or "" for c in checks.values()), default=None) or None,
            "digest_results": {entity: c.get("result") for entity, c in checks.items()},
            "errors": {s["entity"]: s["error"] for s in mine if s.get("error")},
        })
    return out


def sync_status(db, settings) -> list[dict]:
    """Per school and entity kind: applied and source sequences, lag, digest check, dead letters."""
    model = ReadModel(db)
    states = SyncState(db).all()
    out = []
    for school in settings.school_ids:
        for entity in TOPIC_ENTITIES:
            kind = ENTITY_OF_TOPIC[entity]
            state = states.get(SyncState.key(school, entity), {})
            applied = model.applied_seq(school, kind)
            source = state.get("source_last_seq")
            out.append({
                "school": school, "entity": entity, "own": school == settings.school,
                "applied_seq": applied, "source_last_seq": source,
                "lag": max(0, source - applied) if source is not None else None,
                "synced_seq": state.get("synced_seq", 0),
                "last_digest_check": state.get("last_digest_check"),
                "last_catchup": state.get("last_catchup"),
                "dead_lettered": state.get("dead_lettered", 0),
                "held": model.held_count(school, kind),
                "error": state.get("error"),
            })
    return out


@blp.route("/courses")
class Courses(MethodView):
    decorators = [readers]

    # schema instances: a class is instantiated again for every request
    @blp.arguments(SearchQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, SearchPageSchema)
    def get(self, query):
        """Search the shared courses of every school, with facet counts."""
        # answered without the schema's dump (documented by it): a fifth of the request's time at 20 cards
        return jsonify(search_view(search(_db(), current_app.extensions["settings"], query)))


@blp.route("/courses/suggestions")
class Suggestions(MethodView):
    decorators = [readers]

    @blp.arguments(SuggestQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, SuggestionsSchema)
    def get(self, query):
        """Suggest course titles and codes for what a student has typed so far."""
        return {"suggestions": suggestions(_db(), current_app.extensions["settings"], query["q"], query["limit"])}


@blp.route("/courses/<uuid:course_id>")
class Course(MethodView):
    decorators = [readers]

    @blp.response(200, CourseDetailSchema)
    def get(self, course_id):
        """Read one course with its instructors and its school's upcoming visits."""
        return course_detail(_db(), current_app.extensions["settings"].school, str(course_id))


@blp.route("/visits")
class Visits(MethodView):
    decorators = [readers]

    @blp.arguments(VisitQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, VisitPageSchema)
    def get(self, query):
        """List the upcoming teaching-team visits of every school that this school may see, earliest first."""
        return visits_page(_db(), current_app.extensions["settings"].school, query)


@blp.route("/visits/<uuid:visit_id>")
class Visit(MethodView):
    decorators = [readers]

    @blp.response(200, VisitSchema)
    def get(self, visit_id):
        """Read one teaching-team visit, each slot with its places left (0: full)."""
        return visit_detail(_db(), current_app.extensions["settings"].school, str(visit_id))


@blp.route("/sync")
class Sync(MethodView):
    @blp.response(200, SyncSchema)
    def get(self):
        """Show how far the catalog has applied each school's changes, digest checks and dead letters per partner."""
        settings = current_app.extensions["settings"]
        sources = sync_status(_db(), settings)
        return {"school": settings.school, "sources": sources, "partners": partner_status(_db(), settings, sources)}
