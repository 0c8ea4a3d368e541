"""`make bench` (python -m bench.run [module ...]): run the benchmarks and write their numbers to docs.

The contract of a benchmark module, bench/<name>.py:

- It defines `main() -> dict[str, str]`: section title -> markdown body (tables and the
  conditions they were measured in). A module without a callable `main` (bench/minimal_app.py)
  is not a benchmark and is skipped, as are `run` and names starting with `_`.
- main() starts what it needs itself (devstack.servers on free loopback ports), stops everything
  it started before returning, and raises if the run is not valid (missing events, errors);
  it logs progress to stderr, never to stdout. Keep one module within about 2 minutes.
- Optionally `DOC = "docs/<file>.md"`: the file its sections go to; by default
  docs/benchmarks.md, the one report every module of bench/ writes to.
- Optionally a module-level `RESULTS: dict`, which main() fills with its raw numbers (samples,
  rates). After the modules have run, bench/_plots.py draws PNG plots (matplotlib, Agg backend;
  `pip install -e '.[bench]'`, which `make bench` does) from the RESULTS of the modules of this
  run only, into docs/img/bench-*.png, and adds each plot as a section of the block of the module
  whose numbers it shows; a plot of several modules' numbers goes into the `_summary` block and is
  drawn only when all of them ran. A module without RESULTS gets no plot; without matplotlib no
  plot is drawn and the tables are written as before.

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

Written by `make bench` (bench/run.py); every number and plot below comes from the run named in its
block (the plots are drawn from the raw numbers of that run, docs/img/bench-*.png).
Re-run with `make bench`, or one module with `.venv/bin/python -m bench.run <module>`.
"""
_BLOCK = re.compile(r"<!-- bench:(?P<name>[\w]+) -->\n.*?<!-- /bench:(?P=name) -->\n", re.S)


def discover() -> list[str]:
    """The names of the modules in bench/ that define main(), sorted; not the profiling tools (`TOOL = True`:
    run alone with `python -m bench.<name>`, they write nothing to docs)."""
    names = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name == "run" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)) and not getattr(module, "TOOL", False):
            names.append(info.name)
    return sorted(names)


def machine() -> str:
    return (f"{os.cpu_count()} CPUs (nproc), {platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def render_block(name: str, sections: dict, seconds: float, source: str = "", at: datetime | None = None) -> str:
    """The block of `name`; `at`: when it finished (default now)."""
    source = source or f"`bench/{name}.py`, run"
    at = at or datetime.now(timezone.utc)
    lines = [f"<!-- bench:{name} -->",
             f"_{source} {at:%Y-%m-%d %H:%M} UTC in {seconds:.0f} s "
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


def plots(results: dict) -> dict[str, dict[str, str]]:
    """{block name: {section title: markdown}} of the plots drawn from these modules' RESULTS."""
    results = {name: r for name, r in results.items() if r}
    if not results:
        return {}
    try:
        from bench import _plots

        return _plots.draw(results, REPO / "docs" / "img")
    except ImportError as exc:
        print(f"[bench] no plots ({exc}): pip install -e '.[bench]'", file=sys.stderr, flush=True)
        return {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    available = discover()
    unknown = [n for n in argv if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    run_started = time.monotonic()
    done: dict[str, tuple] = {}  # name -> (module, sections, seconds, finished at)
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
        done[name] = (module, dict(sections), time.monotonic() - started, datetime.now(timezone.utc))
    figures = plots({name: getattr(module, "RESULTS", None) for name, (module, *_) in done.items()})
    by_doc: dict[Path, dict[str, str]] = {}
    for name, (module, sections, seconds, at) in done.items():
        block = render_block(name, {**sections, **figures.pop(name, {})}, seconds, at=at)
        print(block, flush=True)
        doc = REPO / getattr(module, "DOC", DEFAULT_DOC)
        by_doc.setdefault(doc, {})[name] = block
    if "_summary" in figures:
        block = render_block("_summary", figures.pop("_summary"), time.monotonic() - run_started,
                             f"Drawn by bench/run.py from the raw numbers of the run of {', '.join(done)},")
        print(block, flush=True)
        by_doc.setdefault(REPO / DEFAULT_DOC, {})["_summary"] = block
    for doc, blocks in by_doc.items():
        write_blocks(doc, blocks)
        print(f"[bench] wrote {doc.relative_to(REPO)}", file=sys.stderr)
    print(f"[bench] {len(done)} module(s) in {time.monotonic() - run_started:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
