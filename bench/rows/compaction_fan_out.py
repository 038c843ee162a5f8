"""Row 9: one hour compacted in slices and a commit, against one invocation, measured by
``bench.rows.compaction_slices`` (N = 1 and 4; each slice and the commit in a process of its own).

The default size is small (the run stays short on a shared machine); ``--quick`` smaller still;
``--full`` (``make bench BENCH_ARGS=--full``) runs the 2 GB hour of issue 21.
"""

from __future__ import annotations

from typing import Any

from bench.support.variants import run_variant

DEFAULT_BYTES = 64 * 1024 * 1024
QUICK_BYTES = 16 * 1024 * 1024


def _sliced(size_bytes: int) -> dict[str, Any]:
    from bench.rows import compaction_slices

    return dict(compaction_slices.run(size_bytes=size_bytes, workdir=None))


VARIANTS = {"sliced": _sliced}


def run(quick: bool = False, full: bool = False, **_: Any) -> dict[str, Any]:
    from bench.rows.compaction_slices import CPU_GOAL, FULL_BYTES

    size = FULL_BYTES if full else (QUICK_BYTES if quick else DEFAULT_BYTES)
    figures = run_variant("bench.rows.compaction_fan_out", "sliced", size_bytes=size)
    variants = {
        "one invocation": {
            "display": f"{figures['single_cpu_seconds']} CPU s",
            "peak_rss_mb": figures["single_peak_rss_mb"],
            "wall_s": figures["single_seconds"],
        }
    }
    for sliced in figures["sliced"]:
        variants[f"{sliced['slices']} slice(s) + commit"] = {
            "display": f"{sliced['slices_cpu_seconds']} CPU s (commit {sliced['commit_cpu_seconds']})",
            "peak_rss_mb": max(sliced["slice_peak_rss_mb"]),
            "wall_s": sum(sliced["slice_seconds"]) + sliced["commit_seconds"],
        }
    ratios = [sliced["cpu_against_single"] for sliced in figures["sliced"]]
    same = all(s["same_lines_as_single"] and s["same_counts_as_single"] for s in figures["sliced"])
    return {
        "row": 9,
        "name": f"Compaction of one hour in slices ({figures['size_mb']:,.0f} MB)",
        "unit": "",
        "variants": variants,
        "ratio": max(ratios),
        "ratio_text": "slices' CPU / one invocation's: "
        + ", ".join(f"N={s['slices']}: {s['cpu_against_single']}x" for s in figures["sliced"]),
        "target": f"slices' CPU <= {CPU_GOAL}x one invocation's; the same lines",
        "holds": bool(figures["goal_met"] and same),
        "figures": figures,
        "notes": "sliced compaction figures: "
        + ", ".join(f"{key}={value}" for key, value in figures.items()),
    }
