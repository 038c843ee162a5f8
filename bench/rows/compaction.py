"""Row 5: compaction of one hour, measured by ``bench.rows.compaction_hour``.

``compaction_hour.run(size_bytes=..., workdir=None) -> dict`` is called in its own process so its
peak RSS is its own. The default size is small (the run stays short on a shared machine);
``--full`` (``make bench BENCH_ARGS=--full``) runs the 1 GB hour of the compaction issue.
"""

from __future__ import annotations

from typing import Any

from bench.support.template import COMPACTION_MEMORY_MB
from bench.support.variants import run_variant

DEFAULT_BYTES = 64 * 1024 * 1024
FULL_BYTES = 1024 * 1024 * 1024


def _compaction(size_bytes: int) -> dict[str, Any]:
    from bench.rows import compaction_hour

    return dict(compaction_hour.run(size_bytes=size_bytes, workdir=None))


VARIANTS = {"compaction": _compaction}


def _rate(figures: dict[str, Any]) -> str:
    for key in ("throughput_mb_s", "mb_per_s", "throughput_mib_s"):
        if key in figures:
            return f"{figures[key]:,.1f} MB/s"
    for key in ("rows_per_s", "records_per_s", "throughput"):
        if key in figures:
            return f"{figures[key]:,.0f} {key.replace('_per_s', '/s').replace('_', ' ')}"
    return ""


def run(quick: bool = False, full: bool = False, **_: Any) -> dict[str, Any]:
    name = "Compaction of one hour"
    size = FULL_BYTES if full else (16 * 1024 * 1024 if quick else DEFAULT_BYTES)
    figures = run_variant("bench.rows.compaction", "compaction", size_bytes=size)
    peak = float(figures.get("compaction_peak_rss_mb", figures["peak_rss_mb"]))
    ours = {
        "display": f"{figures.get('compaction_mb_per_s', 0):,.1f} MB/s ({figures.get('rows_in', 0):,} rows)",
        "peak_rss_mb": peak,
        "wall_s": figures.get("compaction_seconds"),
    }
    floor = {
        "display": f"{figures.get('floor_mb_per_s', 0):,.1f} MB/s",
        "peak_rss_mb": figures.get("floor_peak_rss_mb", 0.0),
        "wall_s": figures.get("floor_seconds"),
    }
    ratio = figures.get("throughput_ratio")
    return {
        "row": 5,
        "name": name,
        "unit": "",
        "variants": {
            f"changelake compaction ({figures.get('size_mb', size / 1e6):,.0f} MB hour)": ours,
            "floor: gzip -dc | gzip": floor,
        },
        "ratio": ratio,
        "ratio_text": f"{ratio}x the floor's throughput" if ratio is not None else "(no floor reported)",
        "target": f"peak RSS < {COMPACTION_MEMORY_MB} MB (compaction's own: < 300 MB, >= 0.5x floor)",
        "holds": bool(figures.get("targets_met", peak < COMPACTION_MEMORY_MB)),
        "figures": figures,
        "notes": "compaction figures: " + ", ".join(f"{key}={value}" for key, value in figures.items()),
    }
