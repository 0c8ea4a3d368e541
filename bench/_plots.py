"""The PNG plots of `make bench`, drawn with matplotlib (Agg) from the RESULTS of the modules of one run.

`draw(results, img_dir)` takes {module name: its RESULTS} of the modules that ran and returns
{block name: {section title: markdown}}: a plot goes into the block of the module whose numbers it
shows, and the latency plot, which shows three modules' numbers, into the `_summary` block, drawn only
when all three ran. Each image is docs/img/bench-<name>.png.
"""

from __future__ import annotations

from pathlib import Path

from bench._common import percentile

IMG_LINK = "img"  # relative to docs/benchmarks.md


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(results: dict[str, dict], img_dir: Path) -> dict[str, dict[str, str]]:
    img_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, str]] = {}
    if all(results.get(name) for name in ("courses_write", "catalog_sync", "slot_latency")):
        out["_summary"] = latency(results, img_dir)
    if results.get("courses_write"):
        out["courses_write"] = throughput(results["courses_write"], img_dir)
    if results.get("growth"):
        out["growth"] = growth(results["growth"], img_dir)
    return out


def _save(plt, fig, img_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(img_dir / f"bench-{name}.png", dpi=110)
    plt.close(fig)
    return f"{IMG_LINK}/bench-{name}.png"


def latency_series(results: dict) -> list[tuple[str, list[float]]]:
    """(label, milliseconds) of every latency measured in the run."""
    cw, cs, sl = results["courses_write"], results["catalog_sync"], results["slot_latency"]
    return [
        ("courses: 201 -> event\n(writer flat out)", cw["loaded"]),
        ("courses: 201 -> event\n(paced)", cw["paced"]),
        ("catalog sync\n(idle)", [s * 1000 for s in cs["sync_idle"]]),
        (f"catalog sync\n(under {cs['load_rate']:.0f} writes/s)", [s * 1000 for s in cs["sync_loaded"]]),
        ("slot request -> decision\n(idle)", sl["idle"]),
        (f"slot request -> decision\n({sl['background_rate']:.0f} visit writes/s)", sl["loaded"]),
    ]


def latency(results: dict, img_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    series = latency_series(results)
    marks = (50, 90, 99)
    fig, ax = plt.subplots(figsize=(10, 4.6))
    width = 0.26
    for k, p in enumerate(marks):
        xs = [i + (k - 1) * width for i in range(len(series))]
        values = [percentile(v, p) for _, v in series]
        bars = ax.bar(xs, values, width, label=f"p{p}")
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(series)), [label for label, _ in series], fontsize=8)
    ax.set_ylabel("milliseconds")
    ax.set_title("Latency percentiles (one run of make bench)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    link = _save(plt, fig, img_dir, "latency")
    rows = "".join(f"| {label.replace(chr(10), ' ')} | {len(v)} | {percentile(v, 50):.0f} | {percentile(v, 90):.0f} | "
                   f"{percentile(v, 99):.0f} |\n" for label, v in series)
    body = (f"![latency percentiles]({link})\n\n"
            "The latencies of the blocks below, from their raw samples in this run (percentile: nearest rank "
            "on n - 1, so the numbers can differ by a sample from a block's own table, which may round "
            "differently).\n\n| path | samples | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|\n" + rows)
    return {"Latency percentiles": body}


def throughput(cw: dict, img_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    rates = [("A: courses\nPOST /courses", cw["rate_a"])]
    names = {"no-relay": "A, its worker\n(relay) stopped", "quiet": "A, LOG_LEVEL=WARNING\n(no request log)"}
    rates += [(names.get(name, f"A {name}"), rate) for name, rate in cw["diag_rates"].items()]
    rates.append(("B: minimal\nFlask + pymongo", cw["rate_b"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["tab:blue"] + ["tab:cyan"] * len(cw["diag_rates"]) + ["tab:gray"]
    bars = ax.bar([label for label, _ in rates], [r for _, r in rates], color=colors)
    ax.bar_label(bars, labels=[f"{r:.0f}/s\n{r / cw['rate_b']:.2f} of B" for _, r in rates], fontsize=8)
    ax.set_ylabel("writes per second (one sequential client)")
    ax.set_title("Write throughput against the minimal baseline (same run, interleaved rounds)")
    ax.set_ylim(0, max(r for _, r in rates) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    link = _save(plt, fig, img_dir, "throughput")
    return {"Courses: throughput plot": f"![write throughput against the minimal endpoint]({link})"}


def growth(results: dict, img_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    sizes = sorted(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    names = list(results[sizes[0]]["search"])
    for name in names:
        left.plot(sizes, [percentile(results[s]["search"][name], 50) * 1000 for s in sizes], "o-",
                  label=f"search: {name}")
    left.plot(sizes, [percentile(results[s]["digest"], 50) * 1000 for s in sizes], "s--", label="source GET /digest")
    left.plot(sizes, [percentile(results[s]["changes"], 50) * 1000 for s in sizes], "^--",
              label="source GET /changes (1,000)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("courses")
    left.set_ylabel("p50 milliseconds")
    left.set_title("Latency as the catalog grows")
    left.legend(fontsize=7)
    left.grid(alpha=0.3, which="both")
    right.plot(sizes, [results[s]["catchup_rate"] for s in sizes], "o-", label="catch-up, end to end")
    right.plot(sizes, [results[s]["own_applied"] / max(results[s]["own_seconds"], 1e-9) for s in sizes], "o--",
               label="catch-up, its own report")
    right.plot(sizes, [results[s]["recorded_rate"] for s in sizes], "o:",
               label="catch-up from the recorded feed (source idle), end to end")
    right.plot(sizes, [results[s]["raw_rate"] for s in sizes], "s-", color="tab:gray",
               label="raw insert_many, same server")
    for s in sizes:
        right.annotate(f"{results[s]['catchup_rate'] / results[s]['raw_rate']:.2f} of raw",
                       (s, results[s]["catchup_rate"]), textcoords="offset points", xytext=(0, -14), ha="center",
                       fontsize=7)
    right.set_xscale("log")
    right.set_ylim(bottom=0)
    right.set_xlabel("courses")
    right.set_ylabel("entities (documents) per second")
    right.set_title("Catch-up from the change feed vs raw inserts")
    right.legend(fontsize=7)
    right.grid(alpha=0.3, which="both")
    for ax in (left, right):
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    link = _save(plt, fig, img_dir, "growth")
    return {"Growth: plots": f"![growth from 1k to 100k courses]({link})"}
