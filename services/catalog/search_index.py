"""The catalog's course search index: tantivy files beside the read model, derived from it, never the truth.

One index per catalog database, in `<SEARCH_INDEX_DIR>/<database name>/`, with its vocabulary for typos in
`words/` there (`build_words_schema`). The
read model stamps each course entry it writes with a generation (`gen`, from a
counter incremented before the write); the index follows the read model by
generation (`follow`): it reads the entries written after the generation it
last committed, replaces their documents (a tombstone only deletes), commits,
and stores that generation in `stamp.json` beside the index. The worker calls
`follow` in the same step as each apply, so a change is searchable as soon as
it is applied; a crash between the two leaves a generation the next `follow`
picks up. A missing index, an index of another schema, or one whose stamp is
gone is rebuilt from the read model (`rebuild`, also `python -m
services.catalog.reindex`); so is one tantivy failed to write (its files removed
under the writer, as a delete stopped half-way leaves it): the failure marks the
index broken, and the next `follow` or `heal` builds it anew.

Only one process writes (tantivy's writer lock): the catalog worker. Web
processes open the index read-only and reload it when its stamp names a newer
commit (one stamp read per search), so they see each commit within a request. ADR 0008 says why tantivy and how the index
scales to several catalog hosts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Callable

import orjson
import tantivy
from pymongo import ASCENDING, ReturnDocument
from tantivy import FieldType, Occur, Order, Query

from services.catalog import text
from services.catalog.model import KINDS
from shared.errors import DomainError

log = logging.getLogger(__name__)

COURSES = KINDS["course"][0]  # the read model's collection of courses
SCHEMA_VERSION = 6
STAMP = "stamp.json"
# the vocabulary: a small index beside the courses' (in its folder), one document per word a typo may find
WORDS = "words"
WORDS_HEAP = 15_000_000  # tantivy's least writer heap
# a query word's typos find at most this many words of the vocabulary (a term each)
MAX_VARIANTS = 100
GENERATIONS = "generations"  # the read model's counter documents: {_id: "course", value}
WRITER_HEAP = 64_000_000
FOLLOW_BATCH = 2000
GENERATION_BLOCK = 64

# search facets: name -> index field (arrays are multi-valued fields)
FACET_FIELDS = {"school": "school", "programme": "programme", "language": "languages", "delivery": "delivery",
                "term": "terms", "eqf_level": "eqf_level", "isced_f": "isced_f", "credits": "credits"}
MAX_FACET_VALUES = 50
# facets counted over another column than the filter's field: a course's languages as one value ("en zh"), since
# a terms aggregation over a multi-valued column costs about twice one over a single-valued one; numbers as text
# (`build_schema` says why)
FACET_COLUMNS = {"language": "language_set", "eqf_level": "eqf_level_text", "credits": "credits_text"}
MAX_LANGUAGE_SETS = 1000
# field weights of BM25: an exact code beats everything, then title, learning outcomes, description
WEIGHTS = {"title": 4.0, "code": 3.0, "outcomes": 2.0, "description": 1.0}
# a word within its typos and not of its stem (a constant score per field): in the title (unstemmed), or anywhere
# in the course (the match field), so no unstemmed copy of the outcomes and description to index
TYPO_WEIGHTS = {"title_plain": 1.5, "match_plain": 0.5}
GRAM_WEIGHTS = {"grams_title": 2.0, "grams_body": 0.7}
EXACT_CODE_SCORE = 1_000_000.0
UPCOMING_SCORE = 1_000.0
MAX_RELEVANCE_OFFSET = 10_000
# facet counts run beside the ranking of the page (tantivy releases the GIL while it searches)
_FACETS = ThreadPoolExecutor(4, thread_name_prefix="search-facets")
# sort name -> (the read model field it orders, number or text)
SORT_VALUES = {"code": ("code", str), "title": ("title_sort", str), "credits": ("credits", float),
               "school": ("school", str), "updated": ("updated_key", int)}


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    # the id: indexed to replace a course's document, stored for the sweep (the version is in the card)
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    # what a result shows, stored only: as a text field it was also indexed, a term of ~700 bytes per course,
    # which took half the indexing time and most of the writer's heap (a segment every 16,700 courses, not 25,000)
    sb.add_bytes_field("card", stored=True)
    sb.add_text_field("code_exact", tokenizer_name="raw", index_option="basic")
    for name in WEIGHTS:
        sb.add_text_field(name, tokenizer_name=text.STEMMED, index_option="freq")
    sb.add_text_field("title_plain", tokenizer_name=text.PLAIN, index_option="basic")
    for name in GRAM_WEIGHTS:
        sb.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    # which courses match, without scores: every stemmed field's words in one field and every text's unstemmed
    # words in another, so that counting and faceting read one posting list (and one typo automaton) per word
    sb.add_text_field("match_stem", tokenizer_name=text.STEMMED, index_option="basic")
    sb.add_text_field("match_plain", tokenizer_name=text.PLAIN, index_option="basic")
    sb.add_text_field("suggest", tokenizer_name=text.PLAIN, index_option="basic")
    for field in ("school", "programme", "delivery", "terms", "isced_f", "language_set"):
        sb.add_text_field(field, tokenizer_name="raw", fast=True, index_option="basic")
    # the numbers' facets are counted over their text (a terms aggregation over a text column: 0.085 ms for 16,700
    # courses, over an integer one 0.107 ms, over a float one 0.162 ms); the filters use the numbers
    for field in ("eqf_level_text", "credits_text"):
        sb.add_text_field(field, tokenizer_name="raw", fast=True, index_option="basic")
    sb.add_text_field("languages", tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("eqf_level", indexed=True, fast=True)
    sb.add_float_field("credits", indexed=True, fast=True)
    # "yes" while the course's last offering has not started (as of the day it was indexed or swept): the
    # ranking's boost is one term, not a range over every course; `sweep` turns it off when that day passes
    sb.add_text_field("upcoming", tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("last_start", indexed=True, fast=False)
    # one key per sort, read backwards for a descending one: a second, inverted key per sort cost 8-30% more
    # indexing time and filled the writer's heap sooner (7 segments for 100,000 courses instead of 6)
    for name in SORT_VALUES:
        sb.add_text_field(f"key_{name}", tokenizer_name="raw", fast=True, index_option="basic")
        # the key's first 8 bytes as a number: a page is ordered by it (a numeric column sorts 16,800 matches in
        # 0.6 ms, the text key in 2.0 ms), then exactly by the key among the few that share the last one's
        sb.add_unsigned_field(f"rank_{name}", fast=True)
    return sb.build()


SCHEMA = build_schema()


def build_words_schema() -> tantivy.Schema:
    """The vocabulary: each word of the courses' unstemmed texts that a typo may find (`text.is_typo_word`), with its
    stem. A typo is looked up here (a small dictionary), and the courses of the words it finds are then read by
    term: a typo automaton over the courses' own field read the postings of every word it matched, the query's
    own word (already matched by its stem) included."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("word", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_bytes_field("stem", stored=True)
    return sb.build()


WORDS_SCHEMA = build_words_schema()


def _register(index: tantivy.Index) -> tantivy.Index:
    index.register_tokenizer(text.STEMMED, text.stem_analyzer())
    index.register_tokenizer(text.PLAIN, text.plain_analyzer())
    return index


# sort keys: one text per sort whose byte order is the page order, ties by id; a descending sort reads it backwards,
# so it is the exact reverse of the ascending one (ties by id descending)


def _id_bytes(entity_id: str) -> bytes:
    try:
        return uuid.UUID(entity_id).bytes
    except ValueError:
        return entity_id.encode("utf-8")


def _key_bytes(name: str, value, entity_id: str) -> bytes:
    return _sort_head(name, value) + _id_bytes(entity_id)


def _rank(key: bytes) -> int:
    """The first 8 bytes of a sort key as a number: keys in order have ranks in order (equal ranks when they
    start alike)."""
    return int.from_bytes(key[:8].ljust(8, b"\x00"), "big")


def _sort_head(name: str, value) -> bytes:
    _, kind = SORT_VALUES[name]
    if kind is str:
        # the terminator puts a text before its longer continuations ("ab" < "abc")
        return str(value or "").replace("\x00", "").encode("utf-8") + b"\x00"
    if value is None:
        return b"\x00"  # before every number
    return number_bytes(int(round(float(value) * 1000)) if kind is float else int(value))


def number_bytes(number: int) -> bytes:
    """`number` (within 64 bits) as bytes in the numbers' order, as few as it takes: a byte for its length,
    then its magnitude (complemented below zero). Short, so that the rank's 8 bytes hold some of the id too:
    courses of equal credits share a rank only when their ids start alike."""
    number = max(-(2**63), min(2**63 - 1, number))
    size = (abs(number).bit_length() + 7) // 8
    if number >= 0:
        return bytes([0x80 + size]) + number.to_bytes(size, "big")
    return bytes([0x7F - size]) + ((1 << (8 * size)) - 1 + number).to_bytes(size, "big")


def _date_int(iso: str | None) -> int:
    return int(iso.replace("-", "")) if iso else 0


def _texts(value) -> list[str]:
    if isinstance(value, dict):
        return [v for v in value.values() if v]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if value else []


CARD_FIELDS = ("_id", "school", "version", "code", "title", "description", "programme", "credits", "eqf_level",
               "isced_f", "languages", "delivery", "hours", "offerings", "instructors", "updated_at",
               "title_sort", "updated_key")


def last_start(entry: dict) -> int:
    """The start of the course's last offering as yyyymmdd (0 without offerings)."""
    return max((_date_int(o.get("starts_on")) for o in entry.get("offerings", [])), default=0)


def _today_int(today: str | None) -> int:
    return _date_int(today or date.today().isoformat())


def document(entry: dict, today: str | None = None) -> tantivy.Document:
    """The index document of a visible course entry of the read model (`today`: the day it counts as
    upcoming on, by default the host's date)."""
    doc = tantivy.Document()
    entity_id = entry["_id"]
    doc.add_text("id", entity_id)
    doc.add_bytes("card", orjson.dumps({k: entry[k] for k in CARD_FIELDS if k in entry}))
    code = entry.get("code", "")
    doc.add_text("code_exact", code.lower())
    titles = _texts(entry.get("title"))
    outcomes = _texts(entry.get("learning_outcomes"))
    body = _texts(entry.get("description"))
    doc.add_text("code", f"{code} {entry.get('programme', '')}")
    doc.add_text("match_stem", f"{code} {entry.get('programme', '')}")
    segmented_titles = []
    for name, texts in (("title", titles), ("outcomes", outcomes), ("description", body)):
        for t in texts:
            cut = text.segmented(t)
            if name == "title":
                segmented_titles.append(cut)
                doc.add_text("title_plain", t)
            doc.add_text(name, cut)
            doc.add_text("match_stem", cut)
            doc.add_text("match_plain", t)
    doc.add_text("grams_title", " ".join(text.grams(t) for t in titles))
    doc.add_text("grams_body", " ".join(text.grams(t) for t in outcomes + body))
    # jieba cuts each title once: the same words go to the title and the suggestions
    for cut in segmented_titles + [text.segmented(code)]:
        doc.add_text("suggest", cut)
    for field in ("school", "programme", "delivery", "isced_f"):
        if entry.get(field):
            doc.add_text(field, str(entry[field]))
    for lang in entry.get("languages", []):
        doc.add_text("languages", lang)
    if entry.get("languages"):
        doc.add_text("language_set", " ".join(sorted(set(entry["languages"]))))
    for term in entry.get("terms", []):
        doc.add_text("terms", term)
    if entry.get("eqf_level") is not None:
        doc.add_integer("eqf_level", int(entry["eqf_level"]))
        doc.add_text("eqf_level_text", str(int(entry["eqf_level"])))
    credits = float(entry.get("credits", 0))
    doc.add_float("credits", credits)
    doc.add_text("credits_text", repr(credits))
    start = last_start(entry)
    doc.add_integer("last_start", start)
    if start >= _today_int(today):
        doc.add_text("upcoming", "yes")
    id_bytes = _id_bytes(entity_id)
    for name, (field, _) in SORT_VALUES.items():
        value = entry.get(field)
        key = _sort_head(name, value) + id_bytes
        doc.add_text(f"key_{name}", key.hex())
        doc.add_unsigned(f"rank_{name}", _rank(key))
    return doc


def indexed(entry: dict, today: str | None = None) -> tuple[tantivy.Document, set[str]]:
    """What the index takes of a visible course entry: its document, and the words of its texts (the vocabulary
    keeps those `text.is_typo_word` accepts)."""
    texts = [t for field in ("title", "learning_outcomes", "description") for t in _texts(entry.get(field))]
    return document(entry, today), text.plain_words(texts)


class Generations:
    """The read model's generation counter of course entries: taken before each write, so none is missed."""

    def __init__(self, db):
        self.collection = db[GENERATIONS]

    def take(self, count: int = 1) -> int:
        """Reserve `count` generations; returns the first."""
        doc = self.collection.find_one_and_update({"_id": "course"}, {"$inc": {"value": count}}, upsert=True,
                                                  return_document=ReturnDocument.AFTER)
        return doc["value"] - count + 1

    def current(self) -> int:
        doc = self.collection.find_one({"_id": "course"})
        return doc["value"] if doc else 0


class SearchIndex:
    """One catalog database's course index: reading it (any process) and writing it (the worker only)."""

    _open: dict[Path, "SearchIndex"] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = path
        self._index: tantivy.Index | None = None
        # the vocabulary (opened and reloaded with the index), its writer, the words it holds or that were found
        # not to be typo words, and whether some are added and not committed yet (the worker)
        self._words: tantivy.Index | None = None
        self._words_writer = None
        self._known: set[str] | None = None
        self._words_added = False
        self._build = None
        # the stamp's (build, generation) at the last reload of a reader
        self._loaded = None
        self._writer = None
        self.lock = threading.RLock()
        # seconds between commits of single applies (0: commit each); the worker sets it and flushes
        self.commit_every = 0.0
        self._pending: int | None = None
        self._last_commit = time.monotonic()
        # when what is pending must be committed at the latest (monotonic seconds)
        self._commit_due = 0.0
        # generations reserved from the read model's counter and not handed out yet: [next, end)
        self._block = (0, 0)
        # the last sweep's commit, in the stamp so that readers reload after a sweep too: a time, not a count,
        # so that a restarted worker's first sweep never repeats the stamp a reader saw before the restart
        self._swept = 0
        # tantivy failed to write the index (its files removed under the writer): built anew at the next chance
        self._broken = False
        # while a catch-up runs (`holding`): the least time between commits, for its pages and single applies alike
        self._hold = 0.0

    @classmethod
    def at(cls, base_dir: Path, db_name: str) -> "SearchIndex":
        """The process's one handle of the index of `db_name` (one writer per index, readers share it)."""
        path = Path(base_dir) / db_name
        with cls._open_lock:
            if path not in cls._open:
                cls._open[path] = cls(path)
            return cls._open[path]

    # reading

    def _stamp(self) -> dict:
        try:
            return json.loads((self.path / STAMP).read_text())
        except (OSError, ValueError):
            return {}

    def ready(self) -> bool:
        return (self._stamp().get("schema") == SCHEMA_VERSION and tantivy.Index.exists(str(self.path))
                and tantivy.Index.exists(str(self.path / WORDS)))

    def _sound(self) -> bool:
        """Whether the writer may go on with the index as it is (not to be built anew)."""
        return not self._broken and self.ready()

    @contextmanager
    def _writing(self):
        """Around tantivy's writes: a failure (files removed under the writer) marks the index to be built anew."""
        try:
            yield
        except (OSError, ValueError):
            self._broken = True
            raise

    def index(self) -> tantivy.Index:
        """The index at its last commit (reopened when it was built anew); an `unavailable` problem while there
        is none yet."""
        return self._indexes()[0]

    def _indexes(self) -> tuple[tantivy.Index, tantivy.Index]:
        """The index and its vocabulary at the last commit (see `index`).

        One read of the stamp per call: both are reloaded only when the stamp names another commit
        than the last reload saw (a commit is stamped right after it is made, the vocabulary's before it).
        """
        with self.lock:
            stamp = self._stamp()
            if stamp.get("schema") != SCHEMA_VERSION:
                if self._writer is None:
                    self._index = None
                    raise DomainError("unavailable", "the search index is being built; retry in a few seconds")
            elif self._index is not None and self._writer is None and stamp.get("build") != self._build:
                self._index = None
            try:
                if self._index is None:
                    if not (tantivy.Index.exists(str(self.path)) and tantivy.Index.exists(str(self.path / WORDS))):
                        raise DomainError("unavailable", "the search index is being built; retry in a few seconds")
                    self._open_indexes()
                    self._build = stamp.get("build")
                    self._loaded = None
                seen = (stamp.get("build"), stamp.get("gen"), stamp.get("sweep"))
                if seen != self._loaded or self._writer is not None:
                    self._index.reload()
                    self._words.reload()
                    self._loaded = seen
            except (OSError, ValueError):
                # its files are being removed or written anew: the worker builds it again (`heal`)
                if self._writer is None:
                    self._index = None
                raise DomainError("unavailable", "the search index is being built; retry in a few seconds") from None
            return self._index, self._words

    def _open_indexes(self) -> None:
        self._index = _register(tantivy.Index(SCHEMA, str(self.path), reuse=True))
        self._words = tantivy.Index(WORDS_SCHEMA, str(self.path / WORDS), reuse=True)

    def searcher(self) -> tantivy.Searcher:
        return self.index().searcher()

    # writing (the worker)

    def _writable(self) -> tantivy.IndexWriter:
        with self.lock:
            if self._writer is None:
                if not self.ready():
                    self._create()
                if self._index is None:
                    self._open_indexes()
                self._build = self._stamp().get("build")
                # ValueError when another process holds tantivy's writer lock (the worker)
                self._writer = self._index.writer(WRITER_HEAP, 1)
                self._words_writer = self._words.writer(WORDS_HEAP, 1)
                self._known = {word for word, _ in self._words.searcher().terms_with_prefix("word", "")}
            return self._writer

    def _add(self, writer: tantivy.IndexWriter, entry: dict, built: tuple | None = None,
             today: str | None = None) -> None:
        """A visible course entry's document into the index (`built`: its `indexed`, when the caller made it),
        and its words the vocabulary does not hold yet into that."""
        doc, words = built if built is not None else indexed(entry, today)
        writer.add_document(doc)
        new = words - self._known
        if new:
            self._known |= new
            for word in new:
                if text.is_typo_word(word):
                    word_doc = tantivy.Document()
                    word_doc.add_text("word", word)
                    word_doc.add_bytes("stem", text.stem(word).encode("utf-8"))
                    self._words_writer.add_document(word_doc)
                    self._words_added = True

    def _create(self) -> None:
        """A new, empty index (an old one of another schema, without a stamp, or broken is removed first)."""
        self.close()
        self._pending = None
        if self.path.exists():
            # moved aside first: whatever else is still deleting or writing there cannot mix into the new one
            aside = self.path.with_name(f"{self.path.name}.removed-{uuid.uuid4().hex}")
            os.rename(self.path, aside)
            shutil.rmtree(aside, ignore_errors=True)
        self.path.mkdir(parents=True)
        _register(tantivy.Index(SCHEMA, str(self.path), reuse=False))
        (self.path / WORDS).mkdir()
        tantivy.Index(WORDS_SCHEMA, str(self.path / WORDS), reuse=False)
        self._build = uuid.uuid4().hex
        self._save_stamp(0)

    def _save_stamp(self, gen: int) -> None:
        # written after the commit it describes: a crash in between makes the next follow repeat work, not miss it
        tmp = self.path / f"{STAMP}.tmp"
        tmp.write_text(json.dumps({"schema": SCHEMA_VERSION, "gen": gen, "build": self._build, "sweep": self._swept}))
        os.replace(tmp, self.path / STAMP)

    def close(self) -> None:
        with self.lock:
            for writer in (self._writer, self._words_writer):
                if writer is not None:
                    try:
                        writer.wait_merging_threads()
                    except (OSError, ValueError):  # its files were removed under it
                        pass
            self._writer = self._words_writer = None
            self._index = self._words = None
            self._known = None
            self._words_added = False

    @staticmethod
    def prepare(entries: list[dict]) -> dict[str, tuple]:
        """What the index takes of the visible ones of `entries` (`indexed`), by id: built before their write lands
        (a catch-up builds them in the thread that reads and validates the page)."""
        return {e["_id"]: indexed(e) for e in entries if e.get("visible")}

    def follow(self, db, written: list[dict] | None = None, taken: tuple[int, int] | None = None,
               prepared: dict | None = None, commit_every: float | None = None, defer: bool = False,
               new: frozenset = frozenset()) -> int:
        """Index the course entries written since the last commit (rebuilding a missing index); how many.

        `written` and `taken`: the caller, under this index's lock, took the generations
        `taken` (first, last) and knows that exactly `written` of them are stored. When no other
        entry was stored since the last commit, those are indexed without reading anything back
        (with their `prepared` documents, by id, when the caller built them from these entries), and committed
        at most `commit_every` seconds after the last commit (default: `self.commit_every`); with
        `defer`, by the next `flush_due` or `flush` only (a catch-up commits while its next page is written).
        `new`: the ids of `written` that were new to the read model, so the index has no document of them to
        replace (tantivy keeps each delete in memory until the commit: 1.2 KB each, 120 MB for a catch-up of
        100,000 committed once).
        """
        with self.lock, self._writing():
            if not self._sound():
                return self.rebuild(db)
            done = self._done()
            if written is not None and taken is not None:
                first, through = taken
                if done < first and self._only_ours_since(db, done, first):
                    writer = self._writable()
                    prepared = prepared or {}
                    for entry in written:
                        if entry["_id"] not in new:
                            writer.delete_documents_by_term("id", entry["_id"])
                        if entry.get("visible"):
                            self._add(writer, entry, prepared.get(entry["_id"]))
                    every = max(self.commit_every if commit_every is None else commit_every, self._hold)
                    due = self._last_commit + every
                    self._commit_due = due if self._pending is None else min(due, self._commit_due)
                    self._pending = through
                    if not defer and (every <= 0 or time.monotonic() >= self._commit_due):
                        self._commit()
                    return len(written)
            if done > Generations(db).current():
                # an index of another read model (the database was dropped or restored): built anew
                return self.rebuild(db)
            writer = self._writable()
            known = {d["gen"]: d for d in written or () if "gen" in d}
            courses = db[COURSES]
            changed = 0
            while True:
                batch = list(courses.find({"gen": {"$gt": done}}, {"gen": 1}, sort=[("gen", ASCENDING)],
                                          limit=FOLLOW_BATCH))
                if not batch:
                    break
                missing = [b["_id"] for b in batch if b["gen"] not in known]
                full = {d["_id"]: d for d in courses.find({"_id": {"$in": missing}})} if missing else {}
                for row in batch:
                    entry = known.get(row["gen"]) or full.get(row["_id"])
                    if entry is None or entry.get("gen") != row["gen"]:
                        continue  # written again since: followed under its newer generation
                    writer.delete_documents_by_term("id", entry["_id"])
                    if entry.get("visible"):
                        self._add(writer, entry)
                done = batch[-1]["gen"]
                changed += len(batch)
                if len(batch) < FOLLOW_BATCH:
                    break
            if changed or self._pending is not None:
                self._pending = done
                self._commit()
            return changed

    def heal(self, db) -> bool:
        """Rebuild the index when its folder or stamp went away under the running writer, or a write to it failed;
        whether it did."""
        with self.lock:
            if self._sound():
                return False
            log.warning("search index %s is gone, unreadable or broken: rebuilding it from the read model", self.path)
            self.rebuild(db)
            return True

    def sweep(self, db, today: str | None = None) -> int:
        """Index again the courses still marked upcoming whose last offering started before `today` (by default
        the host's date), from their read model entries; how many. The worker calls it every few minutes
        (services/catalog/worker.py SEARCH_SWEEP_SECONDS), so a course ranks as upcoming at most that long after
        the day its last offering started."""
        with self.lock, self._writing():
            if not self._sound():
                return 0  # `heal` builds it anew, with today's marks
            writer = self._writable()
            searcher = self.index().searcher()
            stale = Query.boolean_query([
                (Occur.Must, Query.term_query(SCHEMA, "upcoming", "yes")),
                (Occur.Must, Query.range_query(SCHEMA, "last_start", FieldType.Integer, None, _today_int(today),
                                               include_upper=False, use_inverted_index=True))])
            count = searcher.search(stale, 1, count=True).count
            if not count:
                return 0
            ids = [searcher.doc(address)["id"][0] for _, address in searcher.search(stale, count).hits]
            courses = db[COURSES]
            for first in range(0, len(ids), FOLLOW_BATCH):
                chunk = ids[first:first + FOLLOW_BATCH]
                entries = {e["_id"]: e for e in courses.find({"_id": {"$in": chunk}})}
                for entity_id in chunk:
                    writer.delete_documents_by_term("id", entity_id)
                    entry = entries.get(entity_id)
                    if entry is not None and entry.get("visible"):
                        self._add(writer, entry, today=today)
            self._pending = self._done()
            self._swept = time.time_ns()
            self._commit()
            log.info("search index %s: %d courses no longer upcoming", self.path, len(ids))
            return len(ids)

    @contextmanager
    def holding(self, seconds: float):
        """Commit at most `seconds` apart inside (a catch-up): its pages and the single applies beside it go into
        one commit, so a catch-up of 100,000 courses leaves the segments the writer's heap flushes (6), not the
        dozen that a commit a second left (every search runs once per segment). What waits is committed on
        leaving."""
        with self.lock:
            self._hold = seconds
        try:
            yield self
        finally:
            with self.lock:
                self._hold = 0.0
                self.flush()

    def take_generations(self, db, count: int) -> int:
        """The first of `count` generations for entries about to be written (call under `lock`).

        Reserved from the counter in blocks, so a single apply does not cost a counter update;
        generations reserved and never used are gaps, which `follow` steps over.
        """
        with self.lock:
            first, end = self._block
            if end - first < count:
                size = max(count, GENERATION_BLOCK)
                first = Generations(db).take(size)
                end = first + size
            self._block = (first + count, end)
            return first

    def _done(self) -> int:
        """The generation the index holds: committed (the stamp), or added and waiting for the next commit."""
        return self._pending if self._pending is not None else self._stamp().get("gen", 0)

    def _commit(self) -> None:
        with self._writing():
            writer = self._writable()
            if self._words_added:
                # the vocabulary first: a reader that sees a course sees its words
                self._words_writer.commit()
                self._words_added = False
            writer.commit()
            self._save_stamp(self._pending)
        self._pending = None
        self._last_commit = time.monotonic()

    def flush(self) -> None:
        """Commit what `follow` added since the last commit."""
        with self.lock:
            if self._pending is not None:
                self._commit()

    def flush_due(self) -> None:
        """Commit what `follow` added once its commit is due (the worker calls this a few times a second)."""
        with self.lock:
            if self._pending is not None and time.monotonic() >= self._commit_due:
                self._commit()

    def _only_ours_since(self, db, done: int, first: int) -> bool:
        """Whether no entry was stored with a generation between the last commit and the caller's first."""
        if first - done <= 1:
            return True
        return db[COURSES].find_one({"gen": {"$gt": done, "$lt": first}}, {"_id": 1}) is None

    def rebuild(self, db) -> int:
        """Build the index anew from the read model's visible courses; how many were indexed."""
        with self.lock, self._writing():
            if not self._sound():
                self._create()
                self._broken = False
            writer = self._writable()
            # the generation first: an entry written while the rebuild reads is followed again, never missed;
            # this process's reserved generations are dropped, since the stamp will be above them
            self._block = (0, 0)
            gen = Generations(db).current()
            # readers see the old documents until the commit, then the new ones: never an empty index
            writer.delete_all_documents()
            count = 0
            for entry in db[COURSES].find({"visible": True}, batch_size=FOLLOW_BATCH):
                self._add(writer, entry)
                count += 1
            self._pending = gen
            self._commit()
            log.info("search index %s rebuilt: %d courses at generation %d", self.path, count, gen)
            self.follow(db)
            return count

    # querying

    def search(self, filters: dict, sort: str, limit: int, cursor, facets: bool) -> dict:
        """Matching courses: one page in `sort` order, the total, facet counts and the query's words."""
        words = text.query_words(filters.get("q", ""))
        offset = 0
        if sort == "relevance" and cursor is not None:
            offset = cursor[0]
            if not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset <= MAX_RELEVANCE_OFFSET:
                raise DomainError("invalid-cursor", "use the `next` link of the previous page as it is")
        index, vocabulary = self._indexes()
        searcher = index.searcher()
        _look_up_variants(vocabulary.searcher(), words)
        # which courses match needs no score: counted and faceted without the ranking's boosts; the facets
        # are counted by tantivy's threads while this one ranks the page
        matching = self._text_match(words)
        faceting = self._facets(searcher, matching, filters) if facets else None
        cards, total = self._page(index, searcher, matching, words, None, filters, sort, limit, cursor, offset)
        if total == 0 and len(words) > 1:
            # nothing has every word: the courses with the most of them (asked only when nothing matched)
            for need in range(len(words) - 1, 0, -1):
                matching = self._text_match(words, need)
                if need == 1 or searcher.search(self._narrowed(matching, filters), 1, count=True).count:
                    break
            faceting = self._facets(searcher, matching, filters) if facets else None
            cards, total = self._page(index, searcher, matching, words, need, filters, sort, limit, cursor, offset)
        more = len(cards) > limit
        cards = cards[:limit]
        next_cursor = None
        if more:
            last = cards[-1]
            if sort == "relevance":
                next_cursor = (offset + len(cards), last["_id"])
            else:
                next_cursor = (last.get(SORT_VALUES[sort.lstrip("-")][0]), last["_id"])
        return {"items": cards, "total": total, "next_cursor": next_cursor, "words": words,
                "facets": faceting() if faceting is not None else {}}

    def _page(self, index, searcher, matching: Query, words, need: int | None, filters: dict, sort: str,
              limit: int, cursor, offset: int) -> tuple[list[dict], int]:
        """Up to limit + 1 cards of the page in `sort` order, and how many courses match in all (`matching`:
        the unscored text match, `need` its words)."""
        if sort == "relevance":
            ranked = self._ranked(searcher, self._text_match(words, need, ranking=searcher), words)
            found = searcher.search(self._narrowed(ranked, filters), limit + 1, count=True, offset=offset)
            return [self._card(searcher, address) for _, address in found.hits], found.count
        narrowed = self._narrowed(matching, filters)
        name = sort.lstrip("-")
        key_field = f"key_{name}"
        order = Order.Desc if sort.startswith("-") else Order.Asc
        clauses = [(Occur.Must, narrowed)]
        counting = None
        if cursor is not None:
            try:
                after = _key_bytes(name, cursor[0], cursor[1])
            except (TypeError, ValueError):
                raise DomainError("invalid-cursor", "use the `next` link of the previous page as it is") from None
            clauses.append((Occur.Must, self._beyond(index, name, after, order)))
            # a later page counts every match beside its own search; the first page's search counts them itself
            counting = _FACETS.submit(searcher.search, narrowed, 1, count=True)
        query = Query.boolean_query(clauses)
        # the first limit + 1 by rank, then in exact key order: the ones ranked before the last one's rank are
        # the page's (all of them), and the rest of the page is the first, by key, of those that share that rank
        found = searcher.search(query, limit + 1, count=cursor is None, order_by_field=f"rank_{name}", order=order)
        field = SORT_VALUES[name][0]
        keyed = sorted(((_key_bytes(name, card.get(field), card["_id"]), card)
                        for card in (self._card(searcher, address) for _, address in found.hits)),
                       key=lambda pair: pair[0], reverse=order == Order.Desc)
        cards = [card for _, card in keyed]
        last = _rank(keyed[-1][0]) if keyed else None
        if len(cards) > limit and _rank(keyed[limit - 1][0]) == last:
            # the page's last row shares its rank with the one after it: courses of that rank that were not read
            # may come before either (when the page ends before that rank, the one after it only says there is more)
            cards = [card for key, card in keyed if _rank(key) != last]
            tied = Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.range_query(
                SCHEMA, f"rank_{name}", FieldType.Unsigned, last, last))])
            cards += [self._card(searcher, address) for _, address in searcher.search(
                tied, limit + 1 - len(cards), count=False, order_by_field=key_field, order=order).hits]
        return cards, found.count if counting is None else counting.result().count

    @staticmethod
    def _beyond(index, name: str, after: bytes, order) -> Query:
        """The courses after the key `after` in `order`: those of a later rank (a range of the rank column), and
        those of the same rank with a later key (a range of the key's terms that holds only that rank's; a range
        to the end of the keys read every course's key, 3-4 ms at 100,000)."""
        key_field, rank_field, rank = f"key_{name}", f"rank_{name}", _rank(after)
        clauses = []
        if order == Order.Desc:
            same = f"[{rank.to_bytes(8, 'big').hex()} TO {after.hex()}}}"
            if rank > 0:
                clauses.append(Query.range_query(SCHEMA, rank_field, FieldType.Unsigned, 0, rank - 1))
        elif rank < 2**64 - 1:
            same = f"{{{after.hex()} TO {(rank + 1).to_bytes(8, 'big').hex()}}}"
            clauses.append(Query.range_query(SCHEMA, rank_field, FieldType.Unsigned, rank + 1, 2**64 - 1))
        else:
            same = f"{{{after.hex()} TO *}}"
        clauses.append(index.parse_query(f"{key_field}:{same}", [key_field]))
        return Query.boolean_query([(Occur.Should, clause) for clause in clauses])

    def _narrowed(self, matching: Query, filters: dict) -> Query:
        return Query.boolean_query([(Occur.Must, matching), *self._filter_clauses(filters)])

    def _card(self, searcher, address) -> dict:
        return orjson.loads(searcher.doc(address)["card"][0])

    def _text_match(self, words: list[text.QueryWord], need: int | None = None, ranking=None) -> Query:
        """Every word required (or at least `need` of them); every course without words. With the searcher of
        a `ranking`: scored by weighted BM25 over each field, else over the match fields (the same courses, for
        less)."""
        if not words:
            return Query.all_query()
        clauses = [self._word_query(w, ranking) if ranking is not None else self._word_match(w) for w in words]
        if need is None:
            return Query.boolean_query([(Occur.Must, c) for c in clauses])
        return Query.boolean_query([(Occur.Should, c) for c in clauses], minimum_number_should_match=need)

    def _ranked(self, searcher, matching: Query, words: list[text.QueryWord]) -> Query:
        """`matching` ranked: exact codes first, then courses with an upcoming offering, then BM25."""
        # one optional clause per boolean query: tantivy then seeks each boost's postings to the matching
        # courses; two optional clauses side by side are unioned over every course that has either (twice the
        # cost at 100,000), and a term set query reads its terms into a set of every course first
        ranked = Query.boolean_query([
            (Occur.Must, matching),
            (Occur.Should, Query.const_score_query(Query.term_query(SCHEMA, "upcoming", "yes"), UPCOMING_SCORE))])
        # the codes the query may be (the whole of it, or one of its words) that a course has: most queries have
        # none, and their ranking is spared the boost's clause (0.1 ms at 100,000)
        whole = " ".join(w.text for w in words)
        codes = [code for code in sorted({whole, *(w.text for w in words)} - {""})
                 if searcher.doc_freq("code_exact", code)]
        if codes:
            codes_query = Query.boolean_query([(Occur.Should, Query.term_query(SCHEMA, "code_exact", code))
                                               for code in codes])
            ranked = Query.boolean_query([(Occur.Must, ranked),
                                          (Occur.Should, Query.const_score_query(codes_query, EXACT_CODE_SCORE))])
        return ranked

    def _word_match(self, word: text.QueryWord) -> Query:
        """The courses `_word_query` finds, through the match fields (the Chinese bigrams as there: per field)."""
        should = [Query.term_query(SCHEMA, "match_stem", word.stem)]
        if word.chinese:
            should.extend(_grams_query(field, word) for field in GRAM_WEIGHTS)
        elif word.variants:
            should.append(_any_term("match_plain", word.variants))
        return should[0] if len(should) == 1 else Query.boolean_query([(Occur.Should, q) for q in should])

    def _word_query(self, word: text.QueryWord, searcher) -> Query:
        """One word of the ranking: its stem per field (BM25, weighted), its typos' words (a constant per field: in
        a title, or anywhere), or its Chinese bigrams."""
        should = [Query.boost_query(Query.term_query(SCHEMA, field, word.stem), weight)
                  for field, weight in WEIGHTS.items()]
        if word.chinese:
            should.extend(Query.boost_query(_grams_query(field, word), weight) for field, weight in GRAM_WEIGHTS.items())
        elif word.variants:
            for field, weight in TYPO_WEIGHTS.items():
                # the words some course has in that field (a term lookup each): a typo often has none in a title
                found = [v for v in word.variants if searcher.doc_freq(field, v)]
                if found:
                    should.append(Query.const_score_query(_any_term(field, found), weight))
        return Query.boolean_query([(Occur.Should, q) for q in should])

    def _filter_clauses(self, filters: dict, skip: str | None = None) -> list[tuple]:
        clauses = []
        for name, field in FACET_FIELDS.items():
            if name == skip or name == "credits" or name not in filters:
                continue
            clauses.append((Occur.Must, Query.term_query(SCHEMA, field, filters[name])))
        if skip != "credits" and ("credits_min" in filters or "credits_max" in filters):
            clauses.append((Occur.Must, Query.range_query(
                SCHEMA, "credits", FieldType.Float, filters.get("credits_min"), filters.get("credits_max"))))
        return clauses

    def _facets(self, searcher, matching: Query, filters: dict) -> Callable[[], dict]:
        """Per facet, its values with counts under the text and every other filter (disjunctive), no empty one.

        One aggregation for the facets without a filter and one per filtered facet, each started at once in
        the facet threads; the returned function waits for them and puts the counts together.
        """
        active = {name for name in FACET_FIELDS if name in filters}
        if "credits_min" in filters or "credits_max" in filters:
            active.add("credits")
        groups = [(None, [n for n in FACET_FIELDS if n not in active])] + [(n, [n]) for n in sorted(active)]
        pending = []
        for skip, names in groups:
            if not names:
                continue
            query = Query.boolean_query([(Occur.Must, matching), *self._filter_clauses(filters, skip)])
            aggs = {n: {"terms": {"field": FACET_COLUMNS.get(n, FACET_FIELDS[n]),
                                  "size": MAX_LANGUAGE_SETS if n == "language" else MAX_FACET_VALUES}}
                    for n in names}
            pending.append((names, _FACETS.submit(searcher.aggregate, query, aggs)))

        def counts() -> dict:
            out = {}
            for names, future in pending:
                result = future.result()
                for n in names:
                    buckets = result.get(n, {}).get("buckets", [])
                    if n == "language":
                        buckets = _languages(buckets)
                    rows = [{"value": _facet_value(n, b["key"]), "count": b["doc_count"]}
                            for b in buckets if b["doc_count"] > 0 and b["key"] != ""]
                    out[n] = sorted(rows, key=lambda r: (-r["count"], str(r["value"])))[:MAX_FACET_VALUES]
            return {n: out.get(n, []) for n in FACET_FIELDS}

        return counts

    def suggest(self, prefix: str, limit: int = 8) -> list[dict]:
        """Course titles and codes for what a student has typed so far: every word, the last one as a prefix."""
        words = text.query_words(prefix)
        if not words:
            return []
        searcher = self.searcher()
        *whole, last = words
        clauses = [(Occur.Must, Query.term_query(SCHEMA, "suggest", w.text)) for w in whole]
        clauses.append((Occur.Must, Query.boolean_query([
            (Occur.Should, Query.term_query(SCHEMA, "suggest", last.text)),
            (Occur.Should, Query.fuzzy_term_query(SCHEMA, "suggest", last.text, 0, True, True)),
        ])))
        clauses.append((Occur.Should, Query.const_score_query(
            Query.term_query(SCHEMA, "code_exact", prefix.strip().lower()), EXACT_CODE_SCORE)))
        found = searcher.search(Query.boolean_query(clauses), limit, count=False)
        out = []
        for _, address in found.hits:
            card = self._card(searcher, address)
            out.append({"id": card["_id"], "code": card["code"], "title": card["title"], "school": card["school"]})
        return out

    def stats(self) -> dict:
        stamp = self._stamp()
        return {"path": str(self.path), "documents": self.searcher().num_docs if self.ready() else 0,
                "generation": stamp.get("gen", 0)}


def _look_up_variants(vocabulary: tantivy.Searcher, words: list[text.QueryWord]) -> None:
    """Set each word's `variants`: the vocabulary's words within its typos (as tantivy's typo automata count
    them), but those of its own stem, which the stem matches already (the word itself among them)."""
    for word in words:
        if word.chinese or not word.typos:
            continue
        query = Query.fuzzy_term_query(WORDS_SCHEMA, "word", word.text, word.typos, True, False)
        variants = []
        for _, address in vocabulary.search(query, MAX_VARIANTS, count=False).hits:
            found = vocabulary.doc(address)
            if found["stem"][0].decode("utf-8") != word.stem:
                variants.append(found["word"][0])
        word.variants = tuple(sorted(variants))


def _any_term(field: str, terms) -> Query:
    """The courses with any of `terms` in `field`: a term query each (a term set query reads its terms' courses
    into a set of every course first: 0.44 ms against 0.21 ms for one typo's word at 100,000)."""
    if len(terms) == 1:
        return Query.term_query(SCHEMA, field, terms[0])
    return Query.boolean_query([(Occur.Should, Query.term_query(SCHEMA, field, t)) for t in terms])


def _grams_query(field: str, word: text.QueryWord) -> Query:
    """The courses whose `field` (a grams field) has every bigram of the Chinese `word`."""
    return Query.boolean_query([(Occur.Must, Query.term_query(SCHEMA, field, g)) for g in text.run_grams(word.text)])


def _languages(buckets: list[dict]) -> list[dict]:
    """Buckets per language from buckets per set of languages ("en zh"): each course has one set."""
    counts: dict[str, int] = {}
    for b in buckets:
        for lang in str(b["key"]).split():
            counts[lang] = counts.get(lang, 0) + b["doc_count"]
    return [{"key": lang, "doc_count": n} for lang, n in counts.items()]


def _facet_value(name: str, key):
    if name == "eqf_level":
        return int(key)
    if name == "credits":
        return float(key)
    return key

