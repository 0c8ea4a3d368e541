"""Server-side sessions in the catalog's MongoDB: the cookie holds a random id, the session lives here.

Why not a signed cookie: signing out must really end a session (an old cookie
must stop working), and what the session holds (the ID token, the sign-in
state) must never travel to the browser. Why not Flask-Session: a session here
has two expiries, one since its last use (idle) and one since sign-in
(absolute), and the tests inject a clock; both fit in a few lines.

The id in the cookie is 32 random bytes; the database keeps only its SHA-256,
so a copy of the database gives no usable cookie.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Callable

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

COOKIE_NAME = "frontdoor_session"
COLLECTION = "frontdoor_sessions"
# a session used again within this many seconds is not written back just to move its idle expiry
TOUCH_SECONDS = 15


def session_state(doc: dict | None, now: float, idle_seconds: int, absolute_seconds: int) -> str:
    """"live", "idle" (unused for too long), "expired" (too long since sign-in) or "missing"."""
    if doc is None:
        return "missing"
    if now - doc["created"] >= absolute_seconds:
        return "expired"
    if now - doc["last_seen"] >= idle_seconds:
        return "idle"
    return "live"


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    """A session whose data lives in the database; `end()` removes it, `rotate()` gives it a new id."""

    def __init__(self, data=None, sid: str | None = None, created: float | None = None,
                 last_seen: float | None = None, ended_because: str | None = None):
        def on_update(self):
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.created = created
        self.last_seen = last_seen
        self.modified = False
        self.ended = False
        self.rotated_from: str | None = None
        # why the session the browser sent is gone ("idle", "expired"), for the sign-in page to say
        self.ended_because = ended_because

    def end(self) -> None:
        """Sign out: the stored session is deleted and the cookie removed."""
        self.clear()
        self.ended = True

    def rotate(self) -> None:
        """A new id for this session (at sign-in, so an id known before it is worth nothing after)."""
        if self.sid and not self.rotated_from:
            self.rotated_from = self.sid
        self.sid = None
        # the absolute expiry counts from sign-in
        self.created = None
        self.modified = True


class MongoSessionInterface(SessionInterface):
    """Flask's session, kept in a MongoDB collection, with idle and absolute expiry."""

    def __init__(self, collection, idle_seconds: int, absolute_seconds: int, secure: bool,
                 clock: Callable[[], float] = time.time):
        self.collection = collection
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self.secure = secure
        self.clock = clock

    def open_session(self, app, request) -> ServerSession:
        sid = request.cookies.get(COOKIE_NAME)
        if not sid or len(sid) > 128:
            return ServerSession()
        doc = self.collection.find_one({"_id": _key(sid)})
        state = session_state(doc, self.clock(), self.idle_seconds, self.absolute_seconds)
        if state == "live":
            return ServerSession(doc.get("data") or {}, sid=sid, created=doc["created"], last_seen=doc["last_seen"])
        if doc is not None:
            self.collection.delete_one({"_id": _key(sid)})
        return ServerSession(ended_because=state if state in ("idle", "expired") else None)

    def save_session(self, app, session: ServerSession, response) -> None:
        now = self.clock()
        if session.rotated_from:
            self.collection.delete_one({"_id": _key(session.rotated_from)})
        if session.ended or (not session and session.sid is None):
            if session.sid:
                self.collection.delete_one({"_id": _key(session.sid)})
            if session.ended or session.ended_because:
                response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Lax", secure=self.secure)
            return
        fresh = session.sid is None
        if fresh:
            session.sid = secrets.token_urlsafe(32)
            session.created = now
            self._sweep(now)
        if not (fresh or session.modified or now - (session.last_seen or 0) >= TOUCH_SECONDS):
            return
        self.collection.replace_one({"_id": _key(session.sid)}, {
            "_id": _key(session.sid), "data": dict(session), "created": session.created or now, "last_seen": now,
            "expires": min((session.created or now) + self.absolute_seconds, now + self.idle_seconds),
        }, upsert=True)
        if fresh:
            # a session cookie (no Max-Age): the server decides when it ends
            response.set_cookie(COOKIE_NAME, session.sid, path="/", httponly=True, samesite="Lax",
                                secure=self.secure)
        response.vary.add("Cookie")

    def _sweep(self, now: float) -> None:
        """Drop sessions past their expiry (a TTL index needs BSON dates, which the embedded server mangles)."""
        self.collection.delete_many({"expires": {"$lt": now}})
