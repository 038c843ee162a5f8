"""``python -m bench`` (``make bench``): every row, one table, the same figures as JSON.

Options: ``--quick`` (smaller inputs, for a smoke run), ``--full`` (compaction and snapshot on 1 GB),
``--rows 1,2`` (a subset), ``--json PATH`` (default ``bench/results/latest.json``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.support.inputs import CACHE, RESULTS, ROOT

ROWS = {
    1: "conversion",
    2: "consumer",
    3: "cost",
    4: "aggregator",
    5: "compaction",
    6: "local_streaming",
    7: "snapshot",
    8: "cold_start",
    9: "compaction_fan_out",
    10: "snapshot_fan_out",
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def table_rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Flattened (row, variant, figure, cpu/record, peak RSS, ratio, target, holds) lines."""
    lines: list[tuple[str, ...]] = []
    for result in results:
        head = f"{result['row']}. {result['name']}"
        if result.get("status") in ("not available", "pending", "failed"):
            lines.append((head, result["status"], result.get("reason", "")[:90], "", "", "", "", "-"))
            continue
        first = True
        for variant, figures in result["variants"].items():
            figure = figures.get("display") or (
                f"{_number(figures['rate'])} {result['unit']}" if "rate" in figures else ""
            )
            cpu = figures.get("cpu_us_per_record")
            lines.append(
                (
                    head if first else "",
                    variant,
                    figure,
                    f"{cpu:.1f} us" if cpu is not None else "",
                    f"{figures['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in figures else "",
                    result["ratio_text"] if first else "",
                    result["target"] if first else "",
                    ("yes" if result["holds"] else "NO") if first else "",
                )
            )
            first = False
    return lines


HEADERS = ("row", "variant", "throughput", "CPU/record", "peak RSS", "ratio", "target", "holds")


def print_table(results: list[dict[str, Any]]) -> None:
    lines = table_rows(results)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dev dependency
        print(" | ".join(HEADERS))
        for line in lines:
            print(" | ".join(line))
    else:
        table = Table(title="changelake benchmark (ratios from this run)", show_lines=False)
        for header in HEADERS:
            table.add_column(header, overflow="fold")
        for line in lines:
            table.add_row(*line)
        Console(width=max(160, shutil.get_terminal_size().columns)).print(table)
    for result in results:
        if result.get("notes"):
            print(f"  row {result['row']}: {result['notes']}")


def markdown(results: list[dict[str, Any]]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell.replace("|", "/") for cell in line) + " |" for line in table_rows(results)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (smoke run)")
    parser.add_argument("--full", action="store_true", help="compaction and snapshot on the full 1 GB")
    every_row = ",".join(str(number) for number in ROWS)
    parser.add_argument("--rows", default=every_row, help="comma-separated row numbers")
    parser.add_argument("--json", default=str(RESULTS / "latest.json"), help="where to write the figures")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
    shutil.rmtree(CACHE, ignore_errors=True)  # inputs are regenerated (deterministically) each run

    started = time.time()
    results: list[dict[str, Any]] = []
    done: dict[int, dict[str, Any]] = {}
    for number in [int(part) for part in args.rows.split(",") if part.strip()]:
        module = importlib.import_module(f"bench.rows.{ROWS[number]}")
        print(f"row {number}: {ROWS[number]} ...", file=sys.stderr, flush=True)
        try:
            result = module.run(quick=args.quick, full=args.full, earlier=done)
        except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
            traceback.print_exc()
            result = {"row": number, "name": ROWS[number], "status": "failed", "reason": str(exc)}
        done[number] = result
        results.append(result)

    print_table(results)
    if args.markdown:
        print(markdown(results))
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": machine(),
        "options": vars(args),
        "rows": results,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"figures written to {path}")
    shutil.rmtree(CACHE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
