"""schemathesis over every service's OpenAPI document, against the real gunicorn process.

A bounded number of examples per operation (FUZZ_EXAMPLES, default 25) and a
fixed seed (FUZZ_SEED) keep the run within a few minutes and reproducible. One
worker: with two, hypothesis's lambda descriptions call ast.parse from two
threads at once, which Python 3.11 can fail ("AST constructor recursion depth
mismatch"), a runtime error of the tool rather than a finding.
Every check runs except one, and the reason is written here:

- positive_data_acceptance: the API has rules JSON Schema (OpenAPI 3.0) cannot
  express: a language map's keys must be BCP 47 tags (propertyNames is 3.1
  only), an end date must not precede its start date, list items must be
  unique, a page cursor must be one the API issued. schemathesis takes such
  inputs for valid and reports the 422/400 as a failure. Those answers are
  still checked by every other check (a documented status, problem+json
  content type, the Problem schema, no 5xx).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port_base, service_processes, write_alliance

REPO = Path(__file__).resolve().parents[2]
SERVICES = [s for s in ("courses", "faculty", "visits", "catalog") if (REPO / "services" / s / "app.py").exists()]
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "25")
SEED = os.environ.get("FUZZ_SEED", "20261124")
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        service, mongo_uri, kafka_bootstrap, run_dir, keys_dir, prefix, token, artifacts_dir, tmp_path):
    base = free_port_base()
    alliance = write_alliance(run_dir / f"{prefix}alliance.json", {"ecnu-cto": base, "sdu-sie": base + 10})
    svc = service_processes("ecnu-cto", service, base + ["catalog", "courses", "faculty", "visits"].index(service),
                            mongo_uri, kafka_bootstrap, run_dir, alliance, keys_dir, prefix)
    svc.start_web(workers=2)
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"{svc.url}/openapi.json",
             "-H", f"Authorization: Bearer {token('ecnu-cto', 'coordinator')}",
             "--max-examples", EXAMPLES, "--seed", SEED, "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
             "--workers", "1", "--no-color", "--request-timeout", "10",
             "--report", "json", "--report-json-path", str(tmp_path / "report.json")],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    finally:
        svc.stop()
    summary = _summary(result.stdout)
    (artifacts_dir / f"schemathesis-{service}.txt").write_text(result.stdout + result.stderr, encoding="utf-8")
    (artifacts_dir / f"schemathesis-{service}.json").write_text(json.dumps(summary), encoding="utf-8")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert summary["generated"] > 0, "schemathesis generated no test case"


def _summary(stdout: str) -> dict:
    """The counts schemathesis prints: '232 generated, 9 found 12 unique failures, 6 skipped'."""
    import re

    found = re.search(r"(\d+) generated(?:, (\d+) found (\d+) unique failures)?", stdout)
    return {"generated": int(found.group(1)) if found else 0,
            "failures": int(found.group(3)) if found and found.group(3) else 0}
