"""Prometheus metrics: HTTP requests and latencies, plus gauges each service computes at scrape time.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (the
embedded runner and the Dockerfile do) so that every worker's counts are
summed; without it the process's own registry is served. The folder is
created at start when missing (compose mounts a fresh tmpfs on /tmp, which
hides whatever the image had there), and a metric that cannot be written is
logged, never turned into a failed request.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Iterable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["school", "service", "method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["school", "service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# a gauge source returns (name, help, value) triples, or (name, help, value, labels) with extra labels,
# read from the database at scrape time
GaugeSource = Callable[[], Iterable[tuple[str, str, float]]]


class _ScrapeTimeGauges:
    def __init__(self, labels: dict, sources: list[GaugeSource]):
        self.labels = labels
        self.sources = sources

    def collect(self):
        families: dict[str, GaugeMetricFamily] = {}
        for source in self.sources:
            try:
                values = list(source())
            except Exception:  # a database outage must not break the scrape
                continue
            for name, help_text, value, *more in values:
                # an optional fourth item adds labels (e.g. the partner school a gauge is about)
                extra = more[0] if more else {}
                labels = {**self.labels, **extra}
                if name not in families:
                    families[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
                families[name].add_metric(list(labels.values()), value)
        yield from families.values()


def ensure_multiproc_dir() -> None:
    """Create PROMETHEUS_MULTIPROC_DIR when it is set and missing; ConfigError when it cannot be."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        from shared.config import ConfigError

        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR={path} cannot be created: {exc.strerror}; "
                          "point it at a writable folder (compose: under the /tmp tmpfs)") from None


def init_app(app: Flask, school: str, service: str) -> None:
    """Count every request and serve GET /metrics."""
    ensure_multiproc_dir()
    sources: list[GaugeSource] = app.extensions.setdefault("metric_sources", [])
    labels = {"school": school, "service": service}

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        try:
            REQUESTS.labels(school, service, request.method, route, str(response.status_code)).inc()
            LATENCY.labels(school, service, request.method, route).observe(elapsed)
        except OSError as exc:
            # the metric files are gone (a folder removed under a running process): the answer matters more
            log.warning("could not count %s %s in the metrics (%s)", request.method, route, exc)
        return response

    @app.get("/metrics")
    def metrics():
        registry = CollectorRegistry()
        try:
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                raise ValueError("PROMETHEUS_MULTIPROC_DIR is not set")
            multiprocess.MultiProcessCollector(registry)
        except ValueError:
            # not set, or its folder is gone: serve this process's own counts rather than fail
            registry.register(_ProcessRegistry())
        registry.register(_ScrapeTimeGauges(labels, sources))
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _ProcessRegistry:
    """This process's own counters, for single-process runs (tests, flask run)."""

    def collect(self):
        yield from REQUESTS.collect()
        yield from LATENCY.collect()
