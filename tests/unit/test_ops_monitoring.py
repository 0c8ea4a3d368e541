"""The alert rules and the dashboard in ops/ parse, and use only metrics the services expose.

The exposed names are read from the code (shared/ and services/), the way docs/operations.md
lists them: the counters and histograms declared with prometheus_client, and the gauges that
metric sources yield at scrape time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "ops" / "grafana" / "alliance.json"
OPERATIONS = REPO / "docs" / "operations.md"

# series Prometheus makes itself, not the services
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "histogram_quantile", "absent",
    "absent_over_time", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "clamp_min", "clamp_max", "abs", "ceil", "floor", "round", "time", "vector", "scalar", "label_replace",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exposed_metrics() -> dict[str, str]:
    """Metric name -> kind ("counter", "histogram", "gauge"), found in the code."""
    found: dict[str, str] = {}
    for path in list((REPO / "shared").rglob("*.py")) + list((REPO / "services").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for kind, name in re.findall(r"\b(Counter|Histogram|Gauge)\(\s*\"([a-z_:][a-z0-9_:]*)\"", text):
            found[name] = kind.lower()
        # gauge sources: yield "name", "help", value[, labels]  (also inside parentheses)
        for name in re.findall(r"yield\s+\(?\s*\"([a-z_:][a-z0-9_:]*)\"\s*,", text):
            found[name] = "gauge"
        # yield f"prefix_{name}" inside `for name, ... in (("a", ...), ("b", ...)):`
        for loop, prefix in re.findall(
                r"for name, \w+ in \((.*?)\):\s*\n(?:.*\n)*?\s*yield f\"([a-z_]+)\{name\}\"", text):
            for name in re.findall(r"\(\"([a-z_]+)\"", loop):
                found[prefix + name] = "gauge"
        # a write service's other outboxes: create_write_service_app(..., other_outboxes={"name": ...})
        for outboxes in re.findall(r"other_outboxes=\{(.*?)\}", text, re.S):
            for name in re.findall(r"\"([a-z_]+)\":", outboxes):
                found[f"outbox_backlog_{name}"] = "gauge"
    return found


def used_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\"[^\"]*\"", " ", expr)
    names = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]|e\d*", n)}


def known(name: str, exposed: dict[str, str]) -> bool:
    if name in exposed or name in PROMETHEUS_OWN:
        return True
    return any(name.endswith(s) and exposed.get(name[: -len(s)]) == "histogram" for s in HISTOGRAM_SUFFIXES)


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def test_the_code_exposes_the_metrics_the_docs_promise():
    exposed = exposed_metrics()
    for name in ("http_requests_total", "http_request_duration_seconds", "outbox_backlog",
                 "outbox_last_published_sequence", "outbox_backlog_slot_requests", "outbox_backlog_slot_decisions",
                 "catalog_applied_sequence", "catalog_sync_lag", "catalog_digest_equal", "catalog_dead_lettered",
                 "catalog_entries"):
        assert name in exposed, name
    # and docs/operations.md lists every one of them
    text = OPERATIONS.read_text(encoding="utf-8")
    assert [n for n in exposed if f"`{n}`" not in text] == []


def test_the_alert_rules_parse_and_are_complete():
    rules = alert_rules()
    assert len(rules) >= 8
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule
    # the four things an operator must hear about
    used = {m for r in rules for m in used_metrics(r["expr"])}
    assert {"catalog_sync_lag", "catalog_dead_lettered", "outbox_backlog", "http_requests_total"} <= used


def test_every_metric_the_alerts_use_is_exposed_by_the_code():
    exposed = exposed_metrics()
    unknown = {r["alert"]: sorted(m for m in used_metrics(r["expr"]) if not known(m, exposed)) for r in alert_rules()}
    assert {k: v for k, v in unknown.items() if v} == {}


def test_the_dashboard_parses_and_uses_only_exposed_metrics():
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert doc["uid"] and doc["title"] and doc["panels"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    exprs = dashboard_exprs()
    assert len(exprs) >= len(doc["panels"])
    exposed = exposed_metrics()
    unknown = sorted({m for e in exprs for m in used_metrics(e) if not known(m, exposed)})
    assert unknown == []
    # every metric the services expose is on the dashboard
    shown = {m for e in exprs for m in used_metrics(e)}
    assert [n for n in exposed if not any(s == n or s.startswith(n + "_") for s in shown)] == []


def test_the_promql_reader_finds_metric_names_and_skips_the_rest():
    expr = ('histogram_quantile(0.99, sum by (le, school) (rate(http_request_duration_seconds_bucket'
            '{route!="/metrics"}[5m]))) > 1 and max by (school) (outbox_backlog) > 0')
    assert used_metrics(expr) == {"http_request_duration_seconds_bucket", "outbox_backlog"}
    assert not known("made_up_metric", exposed_metrics())
