"""Benchmark: one hour compacted by slice workers and their commit, against one invocation.

The hour is generated as ``bench.rows.compaction_hour`` generates it (aggregator-sized raw files,
about 5 % redelivered) into a local folder store (``compaction_hour.local_store``: the store
interface over files, so what is measured is compaction itself, not an S3 emulator). Then, each in
a fresh child process (its CPU seconds include its checking process; peak RSS is ``VmHWM`` of the
process plus that of its checking process):

* one invocation: ``Compactor.compact`` of the hour;
* for each N (1 and 4): the N slice workers one after another (``SlicedHours.build``), then the
  commit (``SlicedHours.commit``).

Reported per N: each slice's CPU seconds and peak RSS, the sum of the slices' CPU against the single
invocation's (the goal is 1.2x at most), the commit's own CPU and seconds, and whether the sliced
hour holds the same lines as the single one (SHA-256 of the parts decompressed, in name order).

Run: ``.venv/bin/python -m bench.rows.compaction_slices --size-mb 2000``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
import zlib
from datetime import date
from pathlib import Path
from typing import Any

from bench.support.children import child_environment, cpu_seconds, print_result, run_child, sized_parser

SLICE_COUNTS = (1, 4)
DEFAULT_BYTES = 64 * 1024 * 1024
QUICK_BYTES = 16 * 1024 * 1024
#: The issue's busy hour (``make bench BENCH_ARGS=--full``, or ``--size-mb 2000`` here).
FULL_BYTES = 2_000_000_000
#: The goal: N slices together cost at most this much the CPU of one invocation.
CPU_GOAL = 1.2


class _Discard:
    """A client whose ``put_object`` drops the body (the generator also feeds a moto server)."""

    def put_object(self, **_: Any) -> None:
        return None


def _compactor(root: str) -> Any:
    from bench.rows.compaction_hour import MEMORY_BUDGET, local_store
    from changelake.compaction.compactor import Compactor
    from changelake.storage.limits import BuildLimits

    limits = BuildLimits(memory_budget_bytes=MEMORY_BUDGET, spill_dir=Path(root) / "spill")
    return Compactor(local_store(Path(root)), limits=limits)


def _partition() -> Any:
    from bench.rows.compaction_hour import TABLE
    from changelake.formats.layout import Partition

    return Partition(TABLE, date(2026, 11, 22), 12)


def _lines_digest(compactor: Any) -> str:
    """SHA-256 of the hour's parts, decompressed and concatenated in name order."""
    digest = hashlib.sha256()
    store = compactor.store
    for item in sorted(store.list_objects(_partition().prefix("compacted") + "part-"), key=lambda i: i.key):
        decompressor = zlib.decompressobj(31)
        body = store.open(item.key)
        try:
            while chunk := body.read(1 << 20):
                digest.update(decompressor.decompress(chunk))
        finally:
            body.close()
    return digest.hexdigest()


def _child(mode: str, root: str, piece: str) -> None:
    """Runs in its own process: one step, measured; prints its figures as JSON."""
    from changelake.compaction.check import peak_rss_kb
    from changelake.compaction.sliced_hours import SlicedHours
    from changelake.pieces import Piece

    compactor = _compactor(root)
    index, count = (int(part) for part in piece.split("/"))
    cpu_before, started = cpu_seconds(), time.perf_counter()
    if mode == "single":
        result = compactor.compact(_partition())
    elif mode == "slice":
        result = SlicedHours(compactor).build(_partition(), Piece(index, count))
    else:
        result = SlicedHours(compactor).commit(_partition(), count)
    figures = {
        "status": result.status,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu_before,
        "peak_rss_kb": peak_rss_kb() + result.check_peak_rss_kb,
        **result.counts.document(),
    }
    if mode != "slice":
        figures["lines_sha256"] = _lines_digest(compactor)
    print(json.dumps(figures))


def _step(mode: str, root: Path, piece: str, environ: dict[str, str]) -> dict[str, Any]:
    args = ["--child", mode, "--root", str(root), "--piece", piece]
    return run_child("bench.rows.compaction_slices", args, environ)


def _fresh_output(root: Path) -> None:
    """Take compacted/ away (and open uploads), so the next build starts from raw/ alone."""
    shutil.rmtree(root / "objects" / "compacted", ignore_errors=True)
    shutil.rmtree(root / "uploads", ignore_errors=True)
    (root / "uploads").mkdir()


def _sliced(root: Path, count: int, single: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    _fresh_output(root)
    slices = [_step("slice", root, f"{index}/{count}", environ) for index in range(count)]
    commit = _step("commit", root, f"0/{count}", environ)
    cpu = sum(figures["cpu_seconds"] for figures in slices)
    return {
        "slices": count,
        "slice_cpu_seconds": [round(figures["cpu_seconds"], 2) for figures in slices],
        "slice_seconds": [round(figures["seconds"], 2) for figures in slices],
        "slice_peak_rss_mb": [round(figures["peak_rss_kb"] / 1024, 1) for figures in slices],
        "slices_cpu_seconds": round(cpu, 2),
        "cpu_against_single": round(cpu / single["cpu_seconds"], 2),
        "commit_cpu_seconds": round(commit["cpu_seconds"], 3),
        "commit_seconds": round(commit["seconds"], 3),
        "same_lines_as_single": commit["lines_sha256"] == single["lines_sha256"],
        "same_counts_as_single": all(
            commit[name] == single[name] for name in ("rows_in", "rows_out", "duplicates_removed", "bytes_in")
        ),
    }


def run(size_bytes: int = DEFAULT_BYTES, workdir: Path | None = None) -> dict[str, Any]:
    """Generate the hour, then build it once and in slices; returns the figures."""
    from bench.rows.compaction_hour import _generate, local_store

    with tempfile.TemporaryDirectory(prefix="changelake-bench-slices-") as scratch:
        work = workdir or Path(scratch)
        root = work / "local-store"
        environ = child_environment()
        started = time.perf_counter()
        generated = _generate(_Discard(), local_store(root), size_bytes, work)
        generation_seconds = time.perf_counter() - started
        Path(generated["concatenated"]).unlink()
        single = _step("single", root, "0/1", environ)
        by_count = {count: _sliced(root, count, single, environ) for count in SLICE_COUNTS}
    return {
        "size_mb": round(generated["uncompressed_bytes"] / 1e6, 1),
        "raw_files": generated["raw_files"],
        "rows_in": single["rows_in"],
        "generation_seconds": round(generation_seconds, 1),
        "single_cpu_seconds": round(single["cpu_seconds"], 2),
        "single_seconds": round(single["seconds"], 2),
        "single_peak_rss_mb": round(single["peak_rss_kb"] / 1024, 1),
        "sliced": [by_count[count] for count in SLICE_COUNTS],
        "cpu_goal": CPU_GOAL,
        "goal_met": all(figures["cpu_against_single"] <= CPU_GOAL for figures in by_count.values()),
    }


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"one hour: {result['size_mb']} MB uncompressed, {result['raw_files']} raw files, "
        f"{result['rows_in']} rows in; one invocation: {result['single_cpu_seconds']} CPU s, "
        f"{result['single_seconds']} s, peak RSS {result['single_peak_rss_mb']} MB"
    )
    header = f"{'N':>3} {'slices CPU s':>14} {'vs one':>7} {'commit CPU s':>13} {'same':>5}"
    print(f"{header}  per slice (CPU s / RSS MB)")
    for figures in result["sliced"]:
        per_slice = ", ".join(
            f"{cpu} / {rss}"
            for cpu, rss in zip(figures["slice_cpu_seconds"], figures["slice_peak_rss_mb"], strict=True)
        )
        same = figures["same_lines_as_single"] and figures["same_counts_as_single"]
        print(
            f"{figures['slices']:>3} {figures['slices_cpu_seconds']:>14} {figures['cpu_against_single']:>7} "
            f"{figures['commit_cpu_seconds']:>13} {same!s:>5}  {per_slice}"
        )
    print(f"goal (slices' CPU <= {result['cpu_goal']}x one invocation's) met: {result['goal_met']}")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = sized_parser("bench.rows.compaction_slices", __doc__, "uncompressed MB of change records")
    parser.add_argument("--child", choices=("single", "slice", "commit"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--piece", default="0/1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.root, args.piece)
        return None
    return print_result(run(int(args.size_mb * 1e6), args.workdir), args.json, _print_table)


if __name__ == "__main__":
    main()
