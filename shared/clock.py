"""Time as the services store it: UTC ISO 8601 strings with milliseconds, which sort as text.

Stored as strings rather than BSON dates because the embedded server turns a
date written through an update operator ($set) into text of another format;
one fixed string format sorts and compares the same on MongoDB and on it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """2026-11-24T00:03:48.859Z"""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(utc_now())


def today_iso(now: str | None = None) -> str:
    """Today's UTC date, 2026-11-24 (of `now`, an ISO text, when given): what dates without a time compare to."""
    return (now or now_iso())[:10]


def time_key(text: str) -> int:
    """2026-11-24T00:03:48.859Z -> 20261124000348859: what to sort and page by.

    The embedded server compares strings that look like date-times to the second
    only, so keyset pages over the ISO text would skip or repeat rows written in
    the same second; the integer compares exactly everywhere.
    """
    return int("".join(ch for ch in text if ch.isdigit()))


def touched(now: str) -> dict:
    """`updated_at` and, beside it in the same write, the integer that lists sort and page it by."""
    return {"updated_at": now, "updated_key": time_key(now)}


def moment_key(text) -> int:
    """time_key of a date-time another school wrote, in any offset (UTC to the millisecond).

    0 when it is missing or not a date-time, so that such rows still sort
    together, first, and keyset pages still pass them.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
    except (AttributeError, TypeError, ValueError, OverflowError):
        return 0
    digits = f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}"
    return int(f"{digits}{moment.second:02d}{moment.microsecond // 1000:03d}")


def write_order() -> int:
    """Microseconds since the epoch: orders the outbox's pending writes."""
    return time.time_ns() // 1000


def wall_ms() -> int:
    """Milliseconds since the epoch: the relay lease's expiry (compared across processes and hosts)."""
    return time.time_ns() // 1_000_000
