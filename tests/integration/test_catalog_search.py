"""Search relevance, facets, highlights and suggestions of the catalog, through the apply path and the HTTP API.

Each test builds a small corpus with the producers' own code (tests/catalogutil.py), applies it as the worker
does (`apply_event`, which updates the search index in the same step), and asks the catalog's API. Every
ordering asserted here fails when the ranking is wrong: the corpora are built so that a plain BM25 over one
text field, or a code order, gives another answer.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from services.catalog.app import create_app
from services.catalog.search_index import SearchIndex
from services.catalog.store import ReadModel
from services.catalog.sync import apply_event
from shared.mongo import database
from tests.catalogutil import course_body, event, withdrawn_course_body

ECNU, SDU = "ecnu-cto", "sdu-sie"
PAST = [{"term": "2001-spring", "starts_on": "2001-03-01", "ends_on": "2001-06-30"}]
UPCOMING = [{"term": "2099-spring", "starts_on": "2099-03-01", "ends_on": "2099-06-30"}]


@pytest.fixture
def settings(make_settings):
    return make_settings(SDU, "catalog")


@pytest.fixture
def model(settings, mongo_client):
    db = database(mongo_client, settings)
    model = ReadModel(db, settings.search_index_dir)
    model.ensure_indexes()
    return model


@pytest.fixture
def client(settings, mongo_client, model):
    app = create_app(settings, client=mongo_client)
    app.config["TESTING"] = True
    return app.test_client()


def add(model, code: str, title: str, description: str = "A course.", outcomes=(), school: str = ECNU,
        offerings=None, **changes) -> dict:
    """Apply the event of a course as its school's relay publishes it; its body."""
    zh = changes.pop("zh", None)
    body = course_body(school, code=code, title={"en": title, **({"zh": zh} if zh else {})},
                       description={"en": description}, learning_outcomes=[{"en": o} for o in outcomes],
                       offerings=PAST if offerings is None else offerings, **changes)
    assert apply_event(model, event(body, school=school), school) == "applied"
    return body


def codes(client, q: str, **params) -> list[str]:
    response = client.get("/courses", query_string={"q": q, "facets": "false", **params})
    assert response.status_code == 200, response.get_json()
    return [c["code"] for c in response.get_json()["items"]]


def test_an_exact_course_code_comes_before_courses_that_only_mention_it(model, client):
    add(model, "MGT-2001", "Advanced seminar on MGT 2001 topics", "Follows MGT 2001 and MGT 2001.")
    add(model, "FIN-1", "Mgt 2001 for finance")
    add(model, "MGT-2000", "Something else")
    assert codes(client, "MGT-2001")[0] == "MGT-2001"
    assert codes(client, "mgt-2001") == ["MGT-2001", "FIN-1"]
    # never a typo on a code: MGT-2000 is one letter away
    assert "MGT-2000" not in codes(client, "MGT-2001")


def test_a_word_in_the_title_ranks_above_learning_outcomes_above_the_description(model, client):
    # in code order the description course would come first
    add(model, "A-1", "Ethics in business", "Covers the product roadmap of a firm in depth.")
    add(model, "B-2", "Ethics in leadership", "A course.", outcomes=["Draw a product roadmap of a firm."])
    add(model, "C-3", "Product roadmap design", "A course.")
    assert codes(client, "roadmap") == ["C-3", "B-2", "A-1"]


def test_typos_are_forgiven_from_five_letters_as_meilisearch_does(model, client):
    add(model, "S-1", "Scenario planning", "Long-range futures for firms.")
    add(model, "S-2", "Commercialization of technology", "From the lab to the market.")
    add(model, "S-3", "Plans and plants", "A course.")
    assert codes(client, "scenaro planing") == ["S-1"]
    assert codes(client, "commercialisation") == ["S-2"]
    # two typos from nine letters, none below five
    assert codes(client, "comercialisation") == ["S-2"]
    assert codes(client, "plam") == []
    # the exact word ranks above a typo of it
    add(model, "S-4", "Scenaro workshop", "Spelled so on purpose.")
    assert codes(client, "scenaro")[0] == "S-4"


def test_a_typo_matched_in_the_title_ranks_above_one_matched_in_the_text(model, client):
    # the first in code order has the word in its description only (a typo match scores a constant per field)
    add(model, "T-1", "Ethics", "Roadmaps.")
    add(model, "T-2", "Ethics", "A course.", outcomes=["Draw the roadmaps of firms."])
    add(model, "T-3", "Roadmaps of firms and of their markets in depth",
        "A long course on markets, leadership and strategy, taught over many weeks with cases from industry.")
    assert codes(client, "raodmaps")[0] == "T-3"
    assert sorted(codes(client, "raodmaps")) == ["T-1", "T-2", "T-3"]
    # the word as it is: its exact title first, and a title with a typo of it still found, above a text with a typo
    # of it (the title's typo weight holds even though another title has the word as it is)
    add(model, "T-4", "Raodmaps", "A course.")
    add(model, "T-5", "Ethics", "Raodmaps of firms.")
    found = codes(client, "roadmaps")
    assert found[0] == "T-3" and found.index("T-4") < found.index("T-5")
    assert sorted(found) == ["T-1", "T-2", "T-3", "T-4", "T-5"]


def test_english_words_are_stemmed(model, client):
    add(model, "M-1", "Managing innovation", "A course.")
    add(model, "M-2", "Innovation management", "A course.")
    add(model, "M-3", "Leadership", "A course.")
    assert sorted(codes(client, "manage")) == ["M-1", "M-2"]
    assert sorted(codes(client, "innovations")) == ["M-1", "M-2"]


def test_chinese_whole_and_partial_words_find_a_course(model, client):
    add(model, "Z-1", "Digital transformation and enterprise architecture", zh="数字化转型与企业架构")
    add(model, "Z-2", "Enterprise risk", zh="企业风险管理")
    assert codes(client, "数字化转型与企业架构") == ["Z-1"]
    assert codes(client, "转型") == ["Z-1"]
    # a part of a word jieba does not cut out: found through the character bigrams
    assert codes(client, "字化转") == ["Z-1"]
    assert sorted(codes(client, "企业")) == ["Z-1", "Z-2"]


def test_a_mixed_english_and_chinese_query_needs_both_words(model, client):
    add(model, "X-1", "Digital transformation", zh="数字化转型")
    add(model, "X-2", "Digital marketing", zh="数字营销")
    add(model, "X-3", "Organisational change", zh="组织转型")
    assert codes(client, "digital 转型") == ["X-1"]
    assert codes(client, "转型 digital") == ["X-1"]


def test_when_no_course_has_every_word_the_ones_with_most_words_are_found(model, client):
    add(model, "W-1", "Supply chain analytics", "A course.")
    add(model, "W-2", "Supply chain", "A course.")
    add(model, "W-3", "Unrelated", "A course.")
    assert codes(client, "supply chain analytics") == ["W-1"]
    # no course has "quantum": the ones with both other words, none with neither
    assert sorted(codes(client, "supply chain quantum")) == ["W-1", "W-2"]
    page = client.get("/courses?q=supply chain quantum&sort=code").get_json()
    assert [c["code"] for c in page["items"]] == ["W-1", "W-2"] and page["total"] == 2
    # the facets count what was found
    assert {r["value"]: r["count"] for r in page["facets"]["school"]} == {ECNU: 2}


def test_courses_with_an_upcoming_offering_rank_above_those_without(model, client):
    # the past course has the word twice and a shorter title: plain BM25 puts it first
    add(model, "U-1", "Negotiation", "Negotiation.", offerings=PAST)
    add(model, "U-2", "Negotiation in international business teams", "A course.", offerings=UPCOMING)
    add(model, "U-3", "Negotiation workshop", "A course.", offerings=[])
    assert codes(client, "negotiation")[0] == "U-2"


def test_a_course_stops_ranking_as_upcoming_once_the_sweep_sees_its_last_offering_started(model, client):
    starts = date.today() + timedelta(days=10)
    add(model, "U-1", "Negotiation", "Negotiation.", offerings=PAST)
    add(model, "U-2", "Negotiation in international business teams", "A course.",
        offerings=[{"term": "2099-spring", "starts_on": starts.isoformat(), "ends_on": "2099-06-30"}])
    # a web process's own handle of the index, which reloads when the stamp names another commit
    reader = SearchIndex(model.search.path)

    def ranked() -> list[str]:
        return [c["code"] for c in reader.search({"q": "negotiation"}, "relevance", 20, None, False)["items"]]

    assert ranked() == ["U-2", "U-1"]
    # on the day it starts the offering has not started yet: the sweep of that day changes nothing
    assert model.search.sweep(model.db, today=starts.isoformat()) == 0
    assert ranked() == ["U-2", "U-1"]
    # the next day it has: plain BM25 puts the shorter course with the word twice first
    assert model.search.sweep(model.db, today=(starts + timedelta(days=1)).isoformat()) == 1
    assert ranked() == ["U-1", "U-2"]
    assert codes(client, "negotiation") == ["U-1", "U-2"]
    assert model.search.sweep(model.db, today=(starts + timedelta(days=2)).isoformat()) == 0


def test_facets_are_disjunctive_and_never_list_an_empty_value(model, client):
    add(model, "F-1", "Strategy one", school=ECNU, isced_f="0413", eqf_level=7, credits=3)
    add(model, "F-2", "Strategy two", school=SDU, credits=2, programme="EMBA", languages=["zh"])
    no_level = course_body(ECNU, code="F-3", title={"en": "Strategy three"}, credits=4)
    for field in ("isced_f", "eqf_level"):
        no_level.pop(field, None)
    apply_event(model, event(no_level, school=ECNU), ECNU)
    page = client.get("/courses?q=strategy&school=ecnu-cto").get_json()
    assert page["total"] == 2
    facets = page["facets"]
    assert set(facets) == {"school", "programme", "language", "delivery", "term", "eqf_level", "isced_f", "credits"}
    # the school facet counts under every other filter but its own: both schools stay visible
    assert {r["value"]: r["count"] for r in facets["school"]} == {ECNU: 2, SDU: 1}
    assert {r["value"]: r["count"] for r in facets["isced_f"]} == {"0413": 1}
    assert {r["value"]: r["count"] for r in facets["eqf_level"]} == {7: 1}
    assert {r["value"]: r["count"] for r in facets["credits"]} == {3.0: 1, 4.0: 1}
    # a course in two languages counts once under each
    assert {r["value"]: r["count"] for r in facets["language"]} == {"zh": 2, "en": 2}
    in_chinese = client.get("/courses?q=strategy&language=zh").get_json()
    assert in_chinese["total"] == 3
    assert {r["value"]: r["count"] for r in in_chinese["facets"]["language"]} == {"zh": 3, "en": 2}
    assert [c["code"] for c in client.get("/courses?q=strategy&language=en&sort=code").get_json()["items"]] == [
        "F-1", "F-3"]
    for rows in facets.values():
        assert all(r["value"] not in ("", None) and r["count"] > 0 for r in rows), facets
    narrowed = client.get("/courses?q=strategy&credits_min=3.5").get_json()
    assert [c["code"] for c in narrowed["items"]] == ["F-3"]
    assert {r["value"] for r in narrowed["facets"]["credits"]} == {2.0, 3.0, 4.0}


def test_matched_words_are_highlighted_and_the_rest_escaped(model, client):
    add(model, "H-1", "R&D <b>strategy</b> for scenario planning", "Planning the <script>lab</script>.",
        zh="数字化转型")
    item = client.get("/courses", query_string={"q": "planning 转型"}).get_json()["items"][0]
    assert item["highlight"]["title"]["en"] == (
        "R&amp;D &lt;b&gt;strategy&lt;/b&gt; for scenario <mark>planning</mark>")
    assert item["highlight"]["title"]["zh"] == "数字化<mark>转型</mark>"
    assert item["highlight"]["description"]["en"] == "<mark>Planning</mark> the &lt;script&gt;lab&lt;/script&gt;."
    page = client.get("/?q=planning").get_data(as_text=True)
    assert "<mark>planning</mark>" in page and "<b>strategy</b>" not in page


def test_a_withdrawn_or_school_only_course_leaves_the_search_index(model, client):
    gone = add(model, "G-1", "Governance")
    local = add(model, "G-2", "Governance of boards")
    assert sorted(codes(client, "governance")) == ["G-1", "G-2"]
    apply_event(model, event(withdrawn_course_body(ECNU, gone["id"], 2), "course.withdrawn.v1", seq=2,
                             school=ECNU), ECNU)
    body = course_body(ECNU, local["id"], version=2, code="G-2", title={"en": "Governance of boards"},
                       visibility="school")
    apply_event(model, event(body, "course.updated.v1", seq=3, school=ECNU), ECNU)
    assert codes(client, "governance") == []
    assert client.get("/courses?q=governance").get_json()["facets"]["school"] == []
    # the vocabulary keeps the word (it only grows), and a typo of it finds no course either
    assert codes(client, "govrnance") == []


def test_relevance_pages_list_every_match_once(model, client):
    for i in range(7):
        add(model, f"R-{i}", f"Risk {'management ' * (i % 3)}course {i}")
    seen, url = [], "/courses?q=risk&limit=3&facets=false"
    while url:
        page = client.get(url).get_json()
        seen += [c["code"] for c in page["items"]]
        url = page["next"] and page["next"].replace("http://localhost", "")
    assert sorted(seen) == [f"R-{i}" for i in range(7)]
    assert client.get("/courses?q=risk&cursor=abc").status_code == 400


def test_suggestions_complete_titles_and_codes_as_a_student_types(model, client):
    add(model, "TS-1", "Technology strategy")
    add(model, "TS-2", "Technical writing")
    add(model, "OPS-9", "Operations")
    got = client.get("/courses/suggestions?q=techn").get_json()["suggestions"]
    assert sorted(s["code"] for s in got) == ["TS-1", "TS-2"]
    got = client.get("/courses/suggestions?q=technology str").get_json()["suggestions"]
    assert [s["title"]["en"] for s in got] == ["Technology strategy"]
    assert [s["code"] for s in client.get("/courses/suggestions?q=ops-9").get_json()["suggestions"]] == ["OPS-9"]
    assert client.get("/courses/suggestions").status_code == 422


def test_the_search_answer_is_what_its_documented_schema_dumps(model, client, settings):
    from services.catalog.api import search, search_view
    from services.catalog.schemas import SearchPageSchema

    add(model, "D-1", "Data strategy", "Strategy for data.", offerings=UPCOMING, zh="数据战略")
    add(model, "D-2", "Data platforms", school=SDU, eqf_level=6)
    with client.application.test_request_context("/courses?q=data&limit=1"):
        page = search(model.db, settings, {"q": "data", "limit": 1})
        dumped = SearchPageSchema().dump(page)
        assert search_view(page) == dumped
    served = client.get("/courses?q=data&limit=1").get_json()
    assert served == dumped and served["next"] and served["items"][0]["highlight"]["title"]["zh"]


def test_a_feed_page_mixing_held_and_new_courses_is_applied_and_searchable_whole(model, client):
    from services.catalog.model import Change, entry

    held = add(model, "P-0", "Portfolio management")

    def page_entry(body, version, seq):
        return entry(Change("course", body["id"], ECNU, version, seq, "course.updated.v1", body), "2026-12-04T00:00:00Z")

    newer = course_body(ECNU, held["id"], version=2, code="P-0", title={"en": "Portfolio management, revised"})
    fresh = [course_body(ECNU, code=f"P-{i}", title={"en": f"Portfolio theory {i}"}) for i in range(1, 4)]
    # the held course first: a server that stops an insert at the first duplicate must not lose the others
    docs = [page_entry(newer, 2, 5)] + [page_entry(b, 1, 6 + i) for i, b in enumerate(fresh)]
    assert model.apply_many("course", docs) == (4, 0)
    assert sorted(codes(client, "portfolio")) == ["P-0", "P-1", "P-2", "P-3"]
    assert codes(client, "revised") == ["P-0"]
    # the same page again changes nothing
    assert model.apply_many("course", docs) == (0, 0)
    assert len(codes(client, "portfolio")) == 4


def test_applies_close_together_are_committed_together_and_a_flush_makes_them_searchable(model, client):
    add(model, "B-0", "Batch committed first")
    model.search.commit_every = 3600.0
    try:
        add(model, "B-1", "Batch waiting one")
        add(model, "B-2", "Batch waiting two")
        # added to the index's writer, not committed yet: a crash now would have the next follow redo them
        assert codes(client, "batch") == ["B-0"]
        model.search.flush()
        assert sorted(codes(client, "batch")) == ["B-0", "B-1", "B-2"]
    finally:
        model.search.commit_every = 0.0


def test_a_catch_up_page_with_deferred_commit_is_searchable_after_the_flush_and_the_regex_indexes_are_dropped(
        model, client):
    from pymongo import ASCENDING

    from services.catalog.model import Change, entry
    from services.catalog.store import SEARCH_REPLACED_INDEXES

    add(model, "D-00", "An index exists")
    courses = model.collection("course")
    courses.create_index([("programme", ASCENDING)])
    model.ensure_indexes()
    held = {tuple(field for field, _ in info["key"]) for info in courses.index_information().values()}
    assert not held & {(f,) for f in SEARCH_REPLACED_INDEXES}
    bodies = [course_body(ECNU, code=f"D-{i}", title={"en": f"Deferred commit {i}"}) for i in range(3)]
    docs = [entry(Change("course", b["id"], ECNU, 1, 10 + i, "course.created.v1", b), "2026-12-04T00:00:00Z")
            for i, b in enumerate(bodies)]
    assert model.apply_many("course", docs, commit_every=3600.0) == (3, 0)
    # written and added to the index's writer; the catch-up's flush (or the next page) commits them
    assert codes(client, "deferred") == []
    model.search.flush_due()
    assert codes(client, "deferred") == []
    model.search.flush()
    assert sorted(codes(client, "deferred")) == ["D-0", "D-1", "D-2"]


class SlowFeed:
    """ecnu-cto's course feed in `pages` pages of five, each read `delay` seconds after the last; `beside` runs
    while the second page is read (an event the consumer applies during the catch-up)."""

    def __init__(self, pages: int, delay: float, beside):
        self.bodies = [course_body(ECNU, code=f"F-{i}", title={"en": f"Feed course {i}"}) for i in range(pages * 5)]
        self.delay = delay
        self.beside = beside
        self.reads = 0

    def changes(self, school, entity, since, limit=1000):
        self.reads += 1
        if self.reads == 2:
            self.beside()
        time.sleep(self.delay)
        page = self.bodies[since:since + 5] if entity == "courses" else []
        changes = [{"id": b["id"], "version": 1, "seq": since + i + 1, "type": "course.published.v1",
                    "visible": True, "state": b} for i, b in enumerate(page)]
        last = since + len(page)
        return {"changes": changes, "last_seq": last, "next": last < len(self.bodies) and page != []}


def test_a_catch_up_commits_its_pages_and_the_events_applied_beside_it_once_as_one_segment(
        settings, model, client):
    from services.catalog.sync import Catchup

    seen_beside = []

    def beside():
        # a live event during the catch-up waits for the catch-up's commit, as its pages do
        add(model, "K-1", "Kafka course applied beside")
        seen_beside.append(codes(client, "kafka"))

    model.search.follow(model.db)  # the worker's start: an empty index
    feed = SlowFeed(pages=4, delay=0.4, beside=beside)
    report = Catchup(settings, model.db, feed).catch_up(ECNU, "courses", reason="test")
    assert report["applied"] == 20 and feed.reads == 4
    assert seen_beside == [[]]
    # one commit when the catch-up ended (a commit a second would have made two or three): one segment
    assert model.search.searcher().num_segments == 1
    assert len(codes(client, "feed", limit=50)) == 20 and codes(client, "kafka") == ["K-1"]
    # after the catch-up, single applies commit as before
    add(model, "K-2", "Kafka course applied after")
    assert sorted(codes(client, "kafka")) == ["K-1", "K-2"]


def test_an_index_whose_files_were_removed_under_the_writer_is_built_anew_by_the_next_check(model, client):
    add(model, "H-1", "Half removed catalogue")
    # a delete of the folder stopped half-way (or a disk clean-up): the segments are gone, the stamp and
    # tantivy's meta.json are left, so the folder still looks like a current index
    for path in model.search.path.iterdir():
        if path.is_file() and path.name not in ("meta.json", "stamp.json"):
            path.unlink()
    with pytest.raises(ValueError):
        add(model, "H-2", "Half removed catalogue, second")
    # meanwhile the API says the index is being built, with a problem a client can retry on
    response = client.get("/courses", query_string={"q": "catalogue"})
    assert response.status_code == 503 and response.get_json()["type"].endswith(":unavailable")
    # the write that failed marked the index broken: the worker's next check builds it anew from the read
    # model, which holds both courses (the read model is written before the index)
    assert model.search.heal(model.db)
    assert sorted(codes(client, "catalogue")) == ["H-1", "H-2"]
    assert not model.search.heal(model.db)
    add(model, "H-3", "Half removed catalogue, third")
    assert sorted(codes(client, "catalogue")) == ["H-1", "H-2", "H-3"]
