"""One school's write service in a test: its Flask test client, its database and its worker's loops in threads.

The request sagas' tests (slot requests, course places) run two of them, a host and a requester, on the
real servers; each worker runs until the test's teardown stops it.
"""

from __future__ import annotations

import importlib
import threading

from shared.mongo import database
from shared.worker import run_loops


class School:
    """One school's `service` (visits, courses): its Flask test client, database, and worker threads."""

    def __init__(self, make_settings, mongo_client, school: str, service: str, **settings):
        self.school = school
        self.settings = make_settings(school, service, **settings)
        self.app = importlib.import_module(f"services.{service}.app").create_app(self.settings, client=mongo_client)
        self.db = database(mongo_client, self.settings)
        self.worker_loops = importlib.import_module(f"services.{service}.worker").worker_loops
        self.workers: list[tuple[threading.Event, threading.Thread]] = []

    @property
    def client(self):
        return self.app.test_client()

    def start_worker(self) -> None:
        stop = threading.Event()
        loops = self.worker_loops(self.settings, self.db)
        thread = threading.Thread(target=run_loops, args=(loops, stop, self.settings.worker_stop_seconds), daemon=True)
        thread.start()
        self.workers.append((stop, thread))

    def stop_workers(self) -> None:
        for stop, _ in self.workers:
            stop.set()
        for _, thread in self.workers:
            thread.join(20)


def two_schools(make_settings, mongo_client, service: str, host: str, requester: str, **settings):
    """The host's and the requester's School of `service`; a fixture yields them, then stops their workers."""
    schools = (School(make_settings, mongo_client, host, service, **settings),
               School(make_settings, mongo_client, requester, service, **settings))
    yield schools
    for school in schools:
        school.stop_workers()
