"""Row 7: the snapshot of one day of a table (5 % of its items changed), via ``bench.rows.snapshot_day``.

``snapshot_day.run(size_bytes=..., workdir=None) -> dict`` measures ours, the gzip floor and
DuckDB, each in its own process. The default size is small (the run stays short on a shared
machine); ``--full`` (``make bench BENCH_ARGS=--full``) runs the 1 GB table of the issue.
"""

from __future__ import annotations

from typing import Any

from bench.support.variants import run_variant

DEFAULT_BYTES = 64 * 1024 * 1024
FULL_BYTES = 1000 * 1000 * 1000
#: SnapshotFunction's MemorySize in template.yaml.
SNAPSHOT_MEMORY_MB = 1769


def _snapshot(size_bytes: int) -> dict[str, Any]:
    from bench.rows import snapshot_day

    return dict(snapshot_day.run(size_bytes=size_bytes, workdir=None))


VARIANTS = {"snapshot": _snapshot}


def _variant(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "display": f"{figures['mb_per_s']:,.1f} MB/s ({figures['cpu_seconds']:.1f} CPU s)",
        "peak_rss_mb": figures["peak_rss_mb"],
        "wall_s": figures["seconds"],
    }


def run(quick: bool = False, full: bool = False, **_: Any) -> dict[str, Any]:
    size = FULL_BYTES if full else (16 * 1024 * 1024 if quick else DEFAULT_BYTES)
    figures = run_variant("bench.rows.snapshot", "snapshot", size_bytes=size)
    to_floor, to_duckdb = figures["throughput_ratio_floor"], figures["throughput_ratio_duckdb"]
    return {
        "row": 7,
        "name": "Snapshot of one day (5 % of items changed)",
        "unit": "",
        "variants": {
            f"changelake snapshot ({figures['table_mb']:,.0f} MB table)": _variant(figures["ours"]),
            "floor: gzip -dc | gzip": _variant(figures["floor"]),
            "DuckDB: the same merge in SQL": _variant(figures["duckdb"]),
        },
        "ratio": to_floor,
        "ratio_text": f"{to_floor}x the floor's throughput, {to_duckdb}x DuckDB's",
        "target": ">= 0.5x floor, ahead of DuckDB, peak RSS < 300 MB",
        "holds": bool(figures["targets_met"]),
        "figures": figures,
        "notes": "snapshot figures: "
        + ", ".join(f"{key}={value}" for key, value in figures.items() if key != "details"),
    }
