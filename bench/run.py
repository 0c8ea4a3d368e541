"""`make bench` (python -m bench.run [module ...]): run the benchmarks and write their numbers to docs.

The contract of a benchmark module, bench/<name>.py:

- It defines `main() -> dict[str, str]`: section title -> markdown body (tables and the
  conditions they were measured in). A module without a callable `main` (bench/minimal_app.py)
  is not a benchmark and is skipped, as are `run` and names starting with `_`.
- main() starts what it needs itself (devstack.servers on free loopback ports), stops everything
  it started before returning, and raises if the run is not valid (missing events, errors);
  it logs progress to stderr, never to stdout. Keep one module within about 2 minutes.
- Optionally `DOC = "docs/<file>.md"`: the file its sections go to; by default
  docs/benchmarks.md. Several modules may share one file.

Each module's sections are written between `<!-- bench:<name> -->` and `<!-- /bench:<name> -->`
markers, headed with the date and the machine. Running some modules only
(`python -m bench.run courses_write`) replaces only their blocks; the blocks of the others stay.
Everything written is also printed to stdout.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import bench

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DOC = "docs/benchmarks.md"
HEADER = """# Benchmarks

Written by `make bench` (bench/run.py); every number below comes from the run named in its block.
Re-run with `make bench`, or one module with `.venv/bin/python -m bench.run <module>`.
"""
_BLOCK = re.compile(r"<!-- bench:(?P<name>[\w]+) -->\n.*?<!-- /bench:(?P=name) -->\n", re.S)


def discover() -> list[str]:
    """The names of the modules in bench/ that define main(), sorted."""
    names = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name == "run" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)):
            names.append(info.name)
    return sorted(names)


def machine() -> str:
    return (f"{os.cpu_count()} CPUs (nproc), {platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def render_block(name: str, sections: dict, seconds: float) -> str:
    lines = [f"<!-- bench:{name} -->",
             f"_`bench/{name}.py`, run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s "
             f"on {machine()}._", ""]
    for title, body in sections.items():
        lines += [f"## {title}", "", body.strip(), ""]
    lines.append(f"<!-- /bench:{name} -->")
    return "\n".join(lines) + "\n"


def write_blocks(path: Path, blocks: dict[str, str]) -> str:
    """Replace or append the given modules' blocks in `path`, keeping every other block."""
    existing = {}
    if path.exists():
        for match in _BLOCK.finditer(path.read_text(encoding="utf-8")):
            existing[match.group("name")] = match.group(0)
    existing.update(blocks)
    text = HEADER + "".join(f"\n{existing[name]}" for name in sorted(existing))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    available = discover()
    unknown = [n for n in argv if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    by_doc: dict[Path, dict[str, str]] = {}
    failed = []
    for name in argv or available:
        module = importlib.import_module(f"bench.{name}")
        print(f"[bench] running {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            sections = module.main()
        except Exception as exc:  # one broken benchmark must not lose the numbers of the others
            print(f"[bench] {name} failed: {exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        block = render_block(name, sections, time.monotonic() - started)
        print(block, flush=True)
        doc = REPO / getattr(module, "DOC", DEFAULT_DOC)
        by_doc.setdefault(doc, {})[name] = block
    for doc, blocks in by_doc.items():
        write_blocks(doc, blocks)
        print(f"[bench] wrote {doc.relative_to(REPO)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
