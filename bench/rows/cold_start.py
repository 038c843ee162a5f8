"""Row 8: a handler's cold start (importing ``functions/<name>/app.py``) against bare ``import boto3``.

Lambda bills the init phase, and every scale-out of the stream consumer pays it as lag. Every
handler needs boto3, so importing boto3 alone is the floor. Each import runs alone in a new
``python`` process (``changelake_testing.cold_start``: the repository and the layer on the path,
as the tests and ``make invoke`` load the handlers), with tracing off (the tests' and local
runs' setting) and, apart, on (Lambda under the template's ``Tracing: Active``, where Powertools'
Tracer loads the X-Ray SDK and patches botocore). Compiled bytecode is cached in a directory of
this run, filled by one untimed import of each first, as Lambda's runtime and a pip-built layer
ship ``.pyc`` files (this machine sets ``PYTHONDONTWRITEBYTECODE``: without the cache every
import would compile its sources and the figures would measure the compiler).

The rounds take turns over the floor and every handler, so a change of load hits them alike;
each figure is the median over the rounds of the import's CPU time (``process_time``: on this
shared machine wall time mostly measures the neighbours), wall time beside it.
Target: every handler, tracing off, within 1.5x of the floor.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from changelake_testing.cold_start import HANDLERS, ColdStart, cold_start, handler_module

#: A handler's import may cost at most this many times ``import boto3`` (issue 10).
TARGET_RATIO = 1.5
FLOOR = "import boto3"


def _targets(quick: bool) -> dict[str, tuple[str, bool]]:
    """Variant name -> (module, tracing on). A quick run traces only the stream consumer (the
    function whose cold starts are lag): the target is judged with tracing off."""
    targets = {FLOOR: ("boto3", False)}
    for handler in HANDLERS:
        targets[f"{handler} (tracing off)"] = (handler_module(handler), False)
    for handler in HANDLERS[:1] if quick else HANDLERS:
        targets[f"{handler} (tracing on)"] = (handler_module(handler), True)
    return targets


def _figures(starts: list[ColdStart], floor_cpu: float) -> dict[str, Any]:
    cpu = statistics.median(start.cpu_seconds for start in starts)
    wall = statistics.median(start.wall_seconds for start in starts)
    ratio = cpu / floor_cpu
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "ratio": ratio,
        "modules": len(starts[-1].modules),
        "display": f"{cpu * 1000:.0f} ms CPU ({ratio:.2f}x boto3), {wall * 1000:.0f} ms wall",
    }


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    rounds = 3 if quick else 7
    targets = _targets(quick)
    starts: dict[str, list[ColdStart]] = {name: [] for name in targets}
    with tempfile.TemporaryDirectory(prefix="changelake-bytecode-") as bytecode:
        cache = Path(bytecode)
        for module, tracing in targets.values():  # untimed: compiles and caches the bytecode
            cold_start(module, tracing=tracing, bytecode_cache=cache)
        for _round in range(rounds):
            for name, (module, tracing) in targets.items():
                starts[name].append(cold_start(module, tracing=tracing, bytecode_cache=cache))
    floor_cpu = statistics.median(start.cpu_seconds for start in starts[FLOOR])
    variants = {name: _figures(runs, floor_cpu) for name, runs in starts.items()}
    untraced = {name: figures for name, figures in variants.items() if name.endswith("(tracing off)")}
    traced = {name: figures for name, figures in variants.items() if name.endswith("(tracing on)")}
    worst = max(figures["ratio"] for figures in untraced.values())
    worst_traced = max(figures["ratio"] for figures in traced.values())
    return {
        "row": 8,
        "name": "handler cold start (import)",
        "unit": "",
        "variants": variants,
        "ratio": worst,
        "ratio_text": f"slowest handler {worst:.2f}x import boto3 (tracing on: {worst_traced:.2f}x)",
        "target": f"<= {TARGET_RATIO}x import boto3, tracing off",
        "holds": worst <= TARGET_RATIO,
        "rounds": rounds,
        "notes": f"medians of {rounds} rounds of CPU time, each import in a fresh interpreter with "
        "cached bytecode; tracing on = Lambda under Tracing: Active (Powertools' Tracer loads the "
        "X-Ray SDK and patches botocore, as before)",
    }
