"""Prometheus metrics: HTTP requests and latencies, plus gauges each service computes at scrape time.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (the
embedded runner and the Dockerfile do) so that every worker's counts are
summed; without it the process's own registry is served.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

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


def init_app(app: Flask, school: str, service: str) -> None:
    """Count every request and serve GET /metrics."""
    sources: list[GaugeSource] = app.extensions.setdefault("metric_sources", [])
    labels = {"school": school, "service": service}

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(school, service, request.method, route, str(response.status_code)).inc()
        LATENCY.labels(school, service, request.method, route).observe(elapsed)
        return response

    @app.get("/metrics")
    def metrics():
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(registry)
        else:
            registry.register(_ProcessRegistry())
        registry.register(_ScrapeTimeGauges(labels, sources))
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _ProcessRegistry:
    """This process's own counters, for single-process runs (tests, flask run)."""

    def collect(self):
        yield from REQUESTS.collect()
        yield from LATENCY.collect()
