"""Row 10: a table's day built in N buckets (N = 1, 4, 8) and one commit, via
``bench.rows.snapshot_buckets``: each bucket's CPU and peak RSS, their sum against the single
invocation's (goal: within 1.2x), and the commit's own cost. The default size is small (the run
stays short on a shared machine); ``--full`` runs the 2 GB table of issue 21.
"""

from __future__ import annotations

from typing import Any

DEFAULT_BYTES = 64 * 1024 * 1024
FULL_BYTES = 2000 * 1000 * 1000


def run(quick: bool = False, full: bool = False, **_: Any) -> dict[str, Any]:
    from bench.rows import snapshot_buckets

    size = FULL_BYTES if full else (16 * 1024 * 1024 if quick else DEFAULT_BYTES)
    figures = snapshot_buckets.run(size_bytes=size)
    ratios = {count: result["cpu_ratio"] for count, result in figures["buckets"].items()}
    variants = {
        f"N={count}: {len(result['pieces'])} buckets + commit": {
            "display": (
                f"{result['pieces_cpu_seconds']:.1f} CPU s in all, "
                f"slowest {result['slowest_piece_seconds']:.1f} s, commit {result['commit']['seconds']:.2f} s"
            ),
            "peak_rss_mb": result["peak_rss_mb"],
        }
        for count, result in figures["buckets"].items()
    }
    single = figures["single"]
    return {
        "row": 10,
        "name": f"Snapshot day in buckets ({figures['table_mb']:,.0f} MB table)",
        "unit": "",
        "variants": {
            "one invocation": {
                "display": f"{single['cpu_seconds']:.1f} CPU s",
                "peak_rss_mb": single["peak_rss_mb"],
            },
            **variants,
        },
        "ratio": max(ratios.values()),
        "ratio_text": "sum of the buckets' CPU / one invocation's: "
        + ", ".join(f"N={count} {ratio}x" for count, ratio in ratios.items()),
        "target": "<= 1.2x, the same items",
        "holds": bool(figures["targets_met"] and figures["same_items"]),
        "figures": figures,
    }
