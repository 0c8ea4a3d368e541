"""Waiting in tests for something that happens in another thread or process: bounded polling."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    """Poll `predicate` every 0.1 s until it returns something truthy, and return that.

    After `timeout` seconds: AssertionError naming `what` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
