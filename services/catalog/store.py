"""The catalog's MongoDB collections: the read model, its conditional writes, and sync state.

Search and the other queries of the read side are in services/catalog/query.py.

One collection per kind (courses, faculty, visits), each entry keyed by the
entity id. Every write is one conditional replace that applies only when the
incoming version is newer than the held one, so replays and stale events
change nothing, on every MongoDB topology and on the embedded server.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.catalog.model import KINDS, TOPIC_ENTITIES
from services.catalog.search_index import SearchIndex
from shared.config import Settings
from shared.events import InvalidEvent
from shared.digest import LANES, hex_of, lanes_of, pair_lanes
from shared.pagination import fill_time_keys

COLLECTIONS = {kind: topic for kind, (topic, _) in KINDS.items()}  # course -> courses
SYNC = "sync"
HELD_DIGESTS = "held_digests"
# what the kept digest and the generation check read of an entry
DIGEST_FIELDS = {"school": 1, "version": 1, "visible": 1, "gen": 1, "seq": 1}
DEAD_LETTERS = "dead_letters"
DUPLICATE_KEY = 11000
# single-field indexes of courses the regex search used; the search index answers those queries now
SEARCH_REPLACED_INDEXES = ("visible", "programme", "code", "title_sort", "credits", "updated_key")
# compound indexes that courses no longer have: what /sync asked of them (the highest sequence applied and the
# visible entries held, per school) is kept beside the digest; each cost a catch-up's insert a fifth of its rate
KEPT_INSTEAD_INDEXES = (("school", "seq"), ("school", "visible"))
# a page of courses is written by this thread while the applying one builds their search documents
_WRITES = ThreadPoolExecutor(1, thread_name_prefix="read-model-write")


class ReadModel:
    """The entries of every kind, written only by applying changes.

    A course entry is stamped with a generation taken before its write, and the
    search index follows the written entries in the same step (see
    services/catalog/search_index.py): a crash in between leaves a generation
    the index picks up at its next follow.
    """

    def __init__(self, db: Database, search_dir: Path | None = None):
        self.db = db
        self.search = SearchIndex.at(search_dir or Settings.search_index_dir, db.name)
        self.digests = HeldDigests(db)

    def collection(self, kind: str):
        return self.db[COLLECTIONS[kind]]

    def ensure_indexes(self) -> None:
        # _id stays out of compound indexes: the embedded server fails every insert with one
        for kind in KINDS:
            if kind != "course":
                coll = self.collection(kind)
                coll.create_index([("school", ASCENDING), ("seq", ASCENDING)])
                coll.create_index([("school", ASCENDING), ("visible", ASCENDING)])
        courses = self.collection("course")
        # the one secondary index of courses: the search index follows the entries by generation
        courses.create_index([("gen", ASCENDING)])
        # course search, filters and sorts are the search index's: MongoDB indexes on those fields (of the
        # regex search before it) only cost each write, a third of a catch-up's insert rate on nx-27017; the
        # sequence and visibility per school are kept with the digest (HeldDigests)
        for name in _unwanted_indexes(courses):
            courses.drop_index(name)
        # entries applied before the key existed; the next change of a course replaces its entry anyway
        fill_time_keys(courses, {"updated_key": "updated_at"})
        DeadLetterTally(self.db).ensure_indexes()
        self.collection("visit").create_index([("ends_on", ASCENDING)])
        self.collection("visit").create_index([("starts_on", ASCENDING)])

    def apply(self, kind: str, doc: dict) -> bool:
        """Store `doc` if its version is newer than the held entry's; False when it is not (a no-op)."""
        coll = self.collection(kind)
        with self.search.lock:
            if kind == "course":
                doc = {**doc, "gen": self.search.take_generations(self.db, 1)}
            # the entry it may replace, for the kept digest (nx-27017's findAndModify with upsert neither
            # replaces nor fails when the condition misses a held id, so "before" cannot come from it)
            before = coll.find_one({"_id": doc["_id"]}, DIGEST_FIELDS)
            try:
                result = coll.replace_one(self._newer(doc), doc, upsert=True)
            except DuplicateKeyError:
                # the entry exists with this version or a newer one, or it is another school's
                self._refuse_foreign(kind, doc)
                return False
            applied = bool(result.upserted_id is not None or result.modified_count)
            if applied:
                self.digests.change(kind, [before] if before else [], [doc])
            if kind == "course":
                self.search.follow(self.db, [doc] if applied else [], (doc["gen"], doc["gen"]))
            return applied

    def apply_many(self, kind: str, docs: list[dict], commit_every: float | None = None,
                   prepared: dict | None = None) -> tuple[int, int]:
        """Apply a page of changes in a few round trips; (applied, refused as another school's).

        Courses: while the server writes the page, this thread commits the earlier pages' search documents
        when that is due and builds this page's (unless the caller `prepared` them from these docs:
        `SearchIndex.prepare`); the index commits at most `commit_every` seconds apart
        (default: the index's own setting: then each page commits as a single apply does). With
        `commit_every`, the last page's documents wait for the next page, `flush_due` or `flush`.
        """
        if not docs:
            return 0, 0
        with self.search.lock:
            if kind != "course":
                applied, refused, _, _ = self._apply_many(kind, docs)
                return applied, refused
            first = self.search.take_generations(self.db, len(docs))
            docs = [{**d, "gen": first + i} for i, d in enumerate(docs)]
            written, new = None, frozenset()
            try:
                writing = _WRITES.submit(self._apply_many, kind, docs)
                try:
                    # the earlier pages' due commit and this page's documents, while the server writes it
                    self.search.flush_due()
                    if prepared is None:
                        prepared = self.search.prepare(docs)
                finally:
                    applied, refused, written, new = writing.result()
                return applied, refused
            finally:
                self.search.follow(self.db, written, (first, first + len(docs) - 1), prepared=prepared, new=new,
                                   commit_every=commit_every, defer=commit_every is not None)

    def _apply_many(self, kind: str, docs: list[dict]) -> tuple[int, int, list[dict], frozenset]:
        """(applied, refused, the documents now stored, the ids of those that were new to the read model), in a
        few round trips: one unordered insert_many of the
        page (a catalog catching up from nothing writes at the server's insert rate, and reads nothing), then
        for the entries it refused as held already (duplicate ids, reported by their index in the page): one
        read of them, version-conditional replaces and a read of what they left. The kept digest moves by what
        changed."""
        coll = self.collection(kind)
        # one entry per id (the latest of the page): an id twice would be refused by its own first insert
        ours = {d["_id"]: d for d in docs}
        docs = list(ours.values())
        before, after = {}, {}
        held = []
        try:
            coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            # an unordered insert writes every other entry and names each one it refused by its index
            held = [docs[e["index"]] for e in errors]
        refused_ids = {d["_id"] for d in held}
        after.update((d["_id"], d) for d in docs if d["_id"] not in refused_ids)
        refused = 0
        if held:
            ids = [d["_id"] for d in held]
            before = {row["_id"]: row for row in coll.find({"_id": {"$in": ids}}, DIGEST_FIELDS)}
            refused = self._replace_many(kind, held)
            after.update((row["_id"], row) for row in coll.find({"_id": {"$in": ids}}, DIGEST_FIELDS))
        changed = [i for i in ours if i in after and _state(after[i]) != _state(before.get(i))]
        self.digests.change(kind, [before[i] for i in changed if i in before], [after[i] for i in changed])
        # the ones stored now are those whose generation is held (courses)
        written = [ours[i] for i in changed if after[i].get("gen") == ours[i].get("gen")]
        return len(changed), refused, written, frozenset(i for i in ours if i not in refused_ids)

    def _replace_many(self, kind: str, docs: list[dict]) -> int:
        """Version-conditional replaces of `docs`; how many were refused as another school's."""
        try:
            self.collection(kind).bulk_write([ReplaceOne(self._newer(d), d, upsert=True) for d in docs],
                                             ordered=False)
            return 0
        except BulkWriteError as exc:
            details = exc.details
            other = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if other:
                raise
            refused = 0
            for error in details.get("writeErrors", []):
                try:
                    self._refuse_foreign(kind, docs[error["index"]])
                except InvalidEvent:
                    refused += 1
            return refused

    @staticmethod
    def _newer(doc: dict) -> dict:
        # the school is part of the condition: an id held for another school is never replaced
        return {"_id": doc["_id"], "school": doc["school"], "version": {"$lt": doc["version"]}}

    def _refuse_foreign(self, kind: str, doc: dict) -> None:
        held = self.collection(kind).find_one({"_id": doc["_id"]}, {"school": 1})
        if held is not None and held["school"] != doc["school"]:
            raise InvalidEvent(f"{kind} {doc['_id']} belongs to {held['school']!r}, not {doc['school']!r}")

    def tombstone(self, kind: str, held: dict, applied_at: str) -> bool:
        """Drop a visible entry still held at the same version (it vanished from its source)."""
        stone = {"_id": held["_id"], "school": held["school"], "version": held["version"],
                 "seq": held.get("seq", 0), "visible": False, "applied_at": applied_at}
        with self.search.lock:
            if kind == "course":
                stone["gen"] = self.search.take_generations(self.db, 1)
            result = self.collection(kind).replace_one(
                {"_id": held["_id"], "version": held["version"], "visible": True}, stone)
            if result.modified_count == 1:
                self.digests.change(kind, [{**held, "visible": True}], [])
            if kind == "course":
                self.search.follow(self.db, [stone] if result.modified_count == 1 else [],
                                  (stone["gen"], stone["gen"]))
            return result.modified_count == 1

    def applied_seq(self, school: str, kind: str) -> int:
        """The highest source sequence of the entries held of `school` (kept with the digest)."""
        kept = self.digests.kept(school, kind)
        if kept is not None:
            return kept["seq"]
        # not counted yet (before the worker's first start): courses have no index for this, a read of them
        last = self.collection(kind).find_one({"school": school}, sort=[("seq", DESCENDING)], projection={"seq": 1})
        return last["seq"] if last else 0

    def held_count(self, school: str, kind: str) -> int:
        """How many visible entries of `school` are held (kept with the digest)."""
        kept = self.digests.kept(school, kind)
        if kept is not None:
            return kept["count"]
        return self.db.command("count", self.collection(kind).name, query={"school": school, "visible": True})["n"]

    def held(self, school: str, kind: str) -> list[dict]:
        """{_id, school, version, seq} of the visible entries of one school."""
        return list(self.collection(kind).find({"school": school, "visible": True},
                                               {"school": 1, "version": 1, "seq": 1}))

    def digest(self, school: str, kind: str) -> dict:
        """The same digest the source serves: over (id, version) of its visible entries held here.

        Kept as entries are written (HeldDigests); counted from the entries when none is kept yet.
        """
        kept = self.digests.get(school, kind)
        return kept if kept is not None else self.recount(school, kind)

    def recount(self, school: str, kind: str) -> dict:
        """The digest counted from the held entries (one read of them all), kept from now on, with the highest
        sequence held (tombstones too)."""
        with self.search.lock:  # every write holds it: no apply slips between the count and its storing
            entries = list(self.collection(kind).find({"school": school}, {"version": 1, "visible": 1, "seq": 1}))
            count, lanes = lanes_of((d["_id"], d["version"]) for d in entries if d.get("visible"))
            seq = max((d.get("seq", 0) for d in entries), default=0)
            self.digests.reset(school, kind, count, lanes, seq)
            return {"count": count, "sha256": hex_of(lanes)}

    def prime_digests(self, schools) -> None:
        """At the worker's start: count the digests not kept yet (cheap on an empty catalog, once after an
        upgrade), or all of them when the last worker did not stop cleanly (killed between a write and its
        count), so that the applies that follow keep them; then mark the digests in use until `stopped`."""
        after_crash = not self.digests.stopped_cleanly()
        for school in schools:
            for kind in KINDS:
                if after_crash or self.digests.get(school, kind) is None:
                    self.recount(school, kind)
        self.digests.mark_running()

    def stopped(self, wait: float = 2.0) -> bool:
        """The worker stops: the kept digests are right, as the last write left them. Marked under the write
        lock, which is then held until the process ends: a loop still running cannot write after the mark.
        Not marked (False) when a write still holds the lock after `wait` seconds: the next start counts."""
        if not self.search.lock.acquire(timeout=wait):
            return False
        self.digests.mark_stopped()
        return True

    def get(self, kind: str, entity_id: str) -> dict | None:
        return self.collection(kind).find_one({"_id": entity_id, "visible": True})

    def profiles(self, faculty_ids) -> list[dict]:
        """The visible public profiles of these faculty members, in the given order."""
        ids = list(faculty_ids)
        found = {d["_id"]: d for d in self.collection("faculty").find({"_id": {"$in": ids}, "visible": True})}
        return [found[i] for i in ids if i in found]


class HeldDigests:
    """Per source school and kind: count and lane sums of the visible (id, version) pairs held, kept as written.

    Every write of the read model (the worker's, under the search index's lock) adds the pairs it made
    visible and subtracts those it replaced or hid, in one `$inc` per school right after the write. A
    worker killed between the two leaves the kept digest off by that write: the next worker counts every
    digest again at its start, since the killed one did not mark its stop (`stopped_cleanly`); a write whose
    count failed while the worker ran is caught by the digest check, which counts again from the entries
    before it concludes anything (Catchup.check_digest).
    `$inc` never creates a document: a digest that was never counted stays unknown until `recount`.
    """

    # the document that says whether the last worker stopped cleanly (no write can be between it and its count)
    STATE = "worker"

    def __init__(self, db: Database):
        self.collection = db[HELD_DIGESTS]

    @staticmethod
    def key(school: str, kind: str) -> str:
        return f"{school}/{kind}"

    def stopped_cleanly(self) -> bool:
        """Whether the last worker marked its stop (False after a kill, a crash, or before any worker ran)."""
        state = self.collection.find_one({"_id": self.STATE}) or {}
        return state.get("running") is False

    def mark_running(self) -> None:
        self.collection.replace_one({"_id": self.STATE}, {"_id": self.STATE, "running": True}, upsert=True)

    def mark_stopped(self) -> None:
        self.collection.replace_one({"_id": self.STATE}, {"_id": self.STATE, "running": False}, upsert=True)

    def kept(self, school: str, kind: str) -> dict | None:
        """{"count", "lanes", "seq"} as kept; None when never counted (or counted before `seq` was kept)."""
        doc = self.collection.find_one({"_id": self.key(school, kind)})
        if doc is None or "seq" not in doc:
            return None
        return {"count": doc["count"], "lanes": [doc[f"l{i}"] for i in range(LANES)], "seq": doc["seq"]}

    def get(self, school: str, kind: str) -> dict | None:
        kept = self.kept(school, kind)
        return None if kept is None else {"count": kept["count"], "sha256": hex_of(kept["lanes"])}

    def reset(self, school: str, kind: str, count: int, lanes: list[int], seq: int) -> None:
        key = self.key(school, kind)
        # the id in the replacement too: nx-27017 does not take an upsert's id from its filter here
        lanes_doc = {f"l{i}": lanes[i] for i in range(LANES)}
        self.collection.replace_one({"_id": key}, {"_id": key, "count": count, **lanes_doc, "seq": seq},
                                    upsert=True)

    def change(self, kind: str, removed: list[dict], added: list[dict]) -> None:
        """Subtract the visible ones of `removed` and add the visible ones of `added` (entries or their
        {_id, school, version, visible, seq}), per school; the highest `seq` of `added` is kept too."""
        deltas: dict[str, list[int]] = {}
        seqs: dict[str, int] = {}
        for row in added:
            seqs[row["school"]] = max(seqs.get(row["school"], 0), int(row.get("seq") or 0))
        for rows, sign in ((removed, -1), (added, 1)):
            for row in rows:
                if not row.get("visible"):
                    continue
                delta = deltas.setdefault(row["school"], [0] * (LANES + 1))
                delta[LANES] += sign
                for i, lane in enumerate(pair_lanes(row["_id"], row["version"])):
                    delta[i] += sign * lane
        for school in deltas.keys() | seqs.keys():
            delta = deltas.get(school, [0] * (LANES + 1))
            update = {"$max": {"seq": seqs.get(school, 0)}}
            if any(delta):
                update["$inc"] = {"count": delta[LANES], **{f"l{i}": delta[i] for i in range(LANES)}}
            self.collection.update_one({"_id": self.key(school, kind)}, update)


class SyncState:
    """Per source (school and entity kind): what was synced, checked and dead-lettered."""

    def __init__(self, db: Database):
        self.collection = db[SYNC]

    @staticmethod
    def key(school: str, entity: str) -> str:
        return f"{school}/{entity}"

    def get(self, school: str, entity: str) -> dict:
        return self.collection.find_one({"_id": self.key(school, entity)}) or {}

    def all(self) -> dict[str, dict]:
        return {d["_id"]: d for d in self.collection.find({})}

    def update(self, school: str, entity: str, **fields) -> None:
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$set": {"school": school, "entity": entity, **fields}}, upsert=True)

    def advance(self, school: str, entity: str, synced_seq: int) -> None:
        """Everything of this source up to `synced_seq` is held (never moves back)."""
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$max": {"synced_seq": synced_seq},
                                    "$set": {"school": school, "entity": entity}}, upsert=True)

    def reset(self, school: str, entity: str, synced_seq: int = 0) -> None:
        self.update(school, entity, synced_seq=synced_seq)

    def dead_lettered(self, school: str, entity: str) -> None:
        self.collection.update_one({"_id": self.key(school, entity)},
                                   {"$inc": {"dead_lettered": 1}, "$set": {"school": school, "entity": entity}},
                                   upsert=True)


class DeadLetterTally:
    """Every record of this school's dead-letter topic, once, by the school whose topic it came from.

    Each consumer of the school (the catalog's, the visits host's and requester's) writes what it
    refuses to `<school>.dlq` with the topic, partition and offset it came from and its own group;
    the catalog worker reads that topic and records each dead letter under that origin, so a
    replayed DLQ record counts once and the count outlives a broker that lost the topic.
    """

    def __init__(self, db: Database):
        self.collection = db[DEAD_LETTERS]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("school", ASCENDING)])

    def record(self, key: str, school: str, **fields) -> None:
        try:
            self.collection.update_one({"_id": key}, {"$setOnInsert": {"school": school, **fields}}, upsert=True)
        except DuplicateKeyError:  # recorded by a concurrent upsert: once is enough
            pass

    def count(self, school: str) -> int:
        return self.collection.count_documents({"school": school})


def _unwanted_indexes(courses) -> list[str]:
    """The names of the courses' indexes that `ensure_indexes` drops, found by their keys (nx-27017 names
    them its own way, `idx_courses_visible`, and drops nothing by the name `create_index` returned)."""
    unwanted = {(field,) for field in SEARCH_REPLACED_INDEXES} | set(KEPT_INSTEAD_INDEXES)
    return [name for name, info in courses.index_information().items()
            if tuple(field for field, _ in info.get("key", ())) in unwanted]


def _state(row: dict | None) -> tuple | None:
    return None if row is None else (row["school"], row["version"], bool(row.get("visible")))


__all__ = ["DeadLetterTally", "HeldDigests", "ReadModel", "SyncState", "TOPIC_ENTITIES"]
