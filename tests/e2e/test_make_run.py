"""`make run` as a newcomer runs it: both schools answer, Ctrl-C stops everything, data is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack import servers
from tests.processes import free_port_base
from tests.samples import course

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240


def processes_mentioning(marker: str) -> list[int]:
    """PIDs whose command line or environment mentions `marker` (our run's unique VAR_DIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(entry.name))
    return found


class MakeRun:
    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.proc = None

    def start(self):
        self.log.write_text("")
        out = open(self.log, "a")
        self.proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "[make run] ready." in text:
                return text
            if self.proc.poll() is not None or "error:" in text:
                pytest.fail(f"make run did not start:\n{text[-3000:]}")
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"make run not ready within {START_TIMEOUT}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, signum=signal.SIGTERM) -> int:
        # what a terminal's Ctrl-C does: the signal goes to the whole foreground process group
        os.killpg(self.proc.pid, signum)
        try:
            return self.proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


def test_make_run_serves_both_schools_stops_cleanly_and_keeps_the_data(tmp_path):
    var_dir = tmp_path / "var"
    ecnu, sdu = free_port_base(), free_port_base()
    while abs(ecnu - sdu) < 4:
        sdu = free_port_base()
    env = {**os.environ, "VAR_DIR": str(var_dir), "MONGO_PORT": str(servers.free_port()),
           "KAFKA_PORT": str(servers.free_port()), "PORT_BASE_ECNU_CTO": str(ecnu), "PORT_BASE_SDU_SIE": str(sdu),
           "WEB_WORKERS": "1"}
    for name in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "KEYS_DIR", "ALLIANCE_CONFIG"):
        env.pop(name, None)
    run = MakeRun(env, tmp_path / "make-run.log")
    output = run.start()
    try:
        for base in (ecnu, sdu):
            assert requests.get(f"http://127.0.0.1:{base + 1}/readyz", timeout=5).status_code == 200
        assert f"http://127.0.0.1:{ecnu + 1}" in output and f"http://127.0.0.1:{sdu + 1}" in output
        token = subprocess.run(
            [sys.executable, "-m", "devstack.token", "--school", "ecnu-cto", "--role", "coordinator"],
            cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        created = requests.post(f"http://127.0.0.1:{ecnu + 1}/courses", json=course(code="RUN-1"), headers=headers,
                                timeout=10)
        assert created.status_code == 201, created.text
        # the other school's service refuses a token of this school for writes
        other = requests.post(f"http://127.0.0.1:{sdu + 1}/courses", json=course(), headers=headers, timeout=10)
        assert other.status_code == 403
        # a tampered token is refused without being echoed back
        forged = requests.get(f"http://127.0.0.1:{ecnu + 1}/courses",
                              headers={"Authorization": f"Bearer {token[:-4]}AAAA"}, timeout=10)
        assert forged.status_code == 401 and token[:-4] not in forged.text
    finally:
        code = run.stop()
    # no token and no key material in any log of the run
    for log_file in (var_dir / "log").iterdir():
        text = log_file.read_text(errors="replace")
        assert token[:-4] not in text, f"a bearer token was logged in {log_file.name}"
        assert "PRIVATE KEY" not in text, f"key material was logged in {log_file.name}"
    assert code == 0 or code == -signal.SIGTERM or code == 2, run.log.read_text()[-2000:]
    deadline = time.monotonic() + 30
    while processes_mentioning(str(var_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_mentioning(str(var_dir)) == [], "make run left processes behind"
    assert "[make run] stopped." in run.log.read_text()

    # a second run keeps the MongoDB data
    run.start()
    try:
        token = subprocess.run(
            [sys.executable, "-m", "devstack.token", "--school", "ecnu-cto", "--role", "coordinator"],
            cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        listed = requests.get(f"http://127.0.0.1:{ecnu + 1}/courses?q=RUN-1",
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert [c["code"] for c in listed.json()["items"]] == ["RUN-1"]
    finally:
        run.stop()
    deadline = time.monotonic() + 30
    while processes_mentioning(str(var_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_mentioning(str(var_dir)) == []
