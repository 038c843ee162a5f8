"""Row 5: compaction of one hour, via ``bench.compaction.run`` (owned by the compaction engineer).

``bench.compaction.run(size_bytes=..., workdir=None) -> dict`` is called in its own process so its
peak RSS is its own. The default size is small (the run stays short on a shared machine);
``--full`` (``make bench BENCH_ARGS=--full``) runs the 1 GB hour of the compaction issue.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bench import COMPACTION_MEMORY_MB, run_variant

DEFAULT_BYTES = 64 * 1024 * 1024
FULL_BYTES = 1024 * 1024 * 1024


def _compaction(size_bytes: int) -> dict[str, Any]:
    from bench import compaction  # type: ignore[attr-defined]

    return dict(compaction.run(size_bytes=size_bytes, workdir=None))


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
    if importlib.util.find_spec("bench.compaction") is None:
        return {
            "row": 5,
            "name": name,
            "status": "not available",
            "reason": "bench/compaction.py (the compaction engineer's) is not in this tree yet",
        }
    size = FULL_BYTES if full else (8 * 1024 * 1024 if quick else DEFAULT_BYTES)
    figures = run_variant("compaction_row", "compaction", size_bytes=size)
    ours = {key: value for key, value in figures.items() if not isinstance(value, dict)}
    floor = figures.get("floor") if isinstance(figures.get("floor"), dict) else None
    variants: dict[str, Any] = {
        f"changelake compaction ({size / 2**20:,.0f} MiB)": {**ours, "display": _rate(ours)}
    }
    ratio_text, ratio = "", None
    if floor:
        variants["floor"] = {**floor, "display": _rate(floor)}
        for key in ("seconds", "wall_s", "elapsed_s", "cpu_s"):
            if key in ours and key in floor and floor[key]:
                ratio = ours[key] / floor[key]
                ratio_text = f"{ratio:.2f}x the floor's time"
                break
    fits = figures["peak_rss_mb"] < COMPACTION_MEMORY_MB
    return {
        "row": 5,
        "name": name,
        "unit": "",
        "variants": variants,
        "ratio": ratio,
        "ratio_text": ratio_text or "(no floor reported)",
        "target": f"< {COMPACTION_MEMORY_MB} MB",
        "holds": fits,
        "notes": f"compaction peak RSS {figures['peak_rss_mb']:.0f} MB of {COMPACTION_MEMORY_MB} MB; figures: "
        + ", ".join(f"{key}={value}" for key, value in ours.items() if key != "peak_rss_mb"),
    }
