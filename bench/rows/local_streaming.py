"""Row 6: local streaming, sustained changes/s and lag percentiles, from ``changelake_local``.

Runs ``changelake_local.run_pipeline`` with the options ``make run`` uses, in its own process.
"""

from __future__ import annotations

from typing import Any

from bench.support.variants import run_variant

NAME = "Local streaming (changelake_local)"


def _pipeline(duration: float, rate: float, night: float) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from changelake_local import LOCAL_PARAMETERS, RunOptions, run_pipeline

    with tempfile.TemporaryDirectory(prefix="changelake-bench-lake-") as lake:
        options = RunOptions(
            duration=duration,
            rate=rate,
            night=night,
            parameters=LOCAL_PARAMETERS,  # what `make run` deploys with
            lake_dir=Path(lake),
            duckdb_sample=False,
        )
        summary = run_pipeline(options)
    return {key: value for key, value in vars(summary).items() if isinstance(value, int | float | str)}


VARIANTS = {"pipeline": _pipeline}


def _find(figures: dict[str, Any], *names: str) -> float | None:
    for name in names:
        if isinstance(figures.get(name), int | float):
            return float(figures[name])
    return None


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    duration, rate = (10.0, 100.0) if quick else (30.0, 300.0)
    figures = run_variant("bench.rows.local_streaming", "pipeline", duration=duration, rate=rate, night=5.0)
    # Sustained rate: changes the generator wrote per second while every one reached the lake
    # (``ok`` is the pipeline's own verification); stored_throughput is shown in the notes.
    throughput = _find(figures, "write_throughput", "throughput", "changes_per_s")
    p50 = _find(figures, "lag_p50", "lag_p50_s")
    p99 = _find(figures, "lag_p99", "lag_p99_s")
    display = f"{throughput:,.0f} changes/s" if throughput is not None else ""
    return {
        "row": 6,
        "name": NAME,
        "unit": "changes/s",
        "variants": {f"offered {rate:,.0f}/s for {duration:.0f} s": {**figures, "display": display}},
        "ratio": (throughput / rate) if throughput is not None else None,
        "ratio_text": f"{(throughput or 0) / rate:.2f} of the offered rate; lag p50 {p50 or 0:.1f} s, "
        f"p99 {p99 or 0:.1f} s",
        "target": "sustains the offered rate, lake verified",
        "holds": throughput is not None and throughput >= 0.95 * rate and bool(figures.get("ok")),
        "notes": ", ".join(f"{key}={value}" for key, value in figures.items()),
    }
