"""docs/settings.md lists every environment variable the code reads, so the docs stay in sync."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "settings.md"
# the code that runs in services, workers, `make run` and `make bench` (tests document their own)
SCANNED = ("shared", "services", "devstack", "bench")

# the private helpers of shared/config.py (_env("SCHOOL", ...), _int, _float, _bool ...) and devstack's _port_env:
# any _helper("UPPER_CASE", ...); then os.environ.get / os.getenv / os.environ[...]
_READ = re.compile(
    r"""(?:\b_[a-z_]+|os\.environ\.get|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)
# a name built at run time from a prefix: "PORT_BASE_" + school -> documented as PORT_BASE_<SCHOOL>
_PREFIX = re.compile(r"""["']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_)["']\s*\+""")


def variables_read() -> dict[str, set[str]]:
    """Variable name -> the files that read it."""
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            names = {a or b for a, b in _READ.findall(text)} | {p for p in _PREFIX.findall(text)}
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return found


def documented() -> set[str]:
    """The names in the first column of the doc's tables."""
    names = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`([A-Z][A-Z0-9_]*(?:<[A-Z]+>)?)`\s*\|", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_setting_of_settings_from_env_is_documented():
    config = (REPO / "shared" / "config.py").read_text(encoding="utf-8")
    body = config[config.index("def from_env"):]
    names = {a or b for a, b in _READ.findall(body)}
    assert {"SCHOOL", "MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "KEYS_DIR"} <= names
    missing = sorted(names - documented())
    assert not missing, f"add to docs/settings.md: {missing}"


def test_every_environment_variable_read_by_the_code_is_documented():
    found = variables_read()
    assert "PROMETHEUS_MULTIPROC_DIR" in found and "WEB_CONCURRENCY" in found
    docs = documented()
    missing = []
    for name, files in sorted(found.items()):
        ok = any(d.startswith(name) and d[len(name):].startswith("<") for d in docs) if name.endswith("_") \
            else name in docs
        if not ok:
            missing.append(f"{name} (read in {', '.join(sorted(files))})")
    assert not missing, "add to docs/settings.md: " + "; ".join(missing)


def test_settings_doc_names_no_variable_twice_in_one_table():
    table: list[str] = []
    for line in DOC.read_text(encoding="utf-8").splitlines() + [""]:
        match = re.match(r"^\|\s*`([A-Z][A-Z0-9_<>]*)`\s*\|", line)
        if match:
            table.append(match.group(1))
        elif not line.startswith("|"):
            duplicates = {n for n in table if table.count(n) > 1}
            assert not duplicates, f"listed twice in one table: {sorted(duplicates)}"
            table = []
