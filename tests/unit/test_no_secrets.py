"""No secret is committed: no private key, no token, no credentials in tracked files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in a URI": re.compile(r"mongodb(\+srv)?://[^/\s:@]+:[^/\s@]+@"),
}


def test_no_tracked_file_holds_a_secret():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert files, "git ls-files found nothing: the test would prove nothing"
    found = []
    for name in files:
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, pattern in PATTERNS.items():
            if pattern.search(text) and name != "tests/unit/test_no_secrets.py":
                found.append((name, what))
    assert found == []


def test_dev_keys_live_under_var_which_git_ignores():
    ignored = subprocess.run(["git", "check-ignore", "var/keys/ecnu-cto.key"], cwd=REPO, capture_output=True)
    assert ignored.returncode == 0
