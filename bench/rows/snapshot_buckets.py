"""Benchmark: a day of a table built in N buckets (N = 1, 4, 8) by bucket workers and one commit.

The inputs are ``bench.rows.snapshot_day``'s (the previous day's snapshot of a table of
``size_bytes``, and the day's changes of 5 % of its items in raw/), in a local folder store. For
each N > 1 the previous day is also written as a day built in N buckets (its lines split by
``bucket_of`` into N key-sorted streams, with a manifest saying so), in a store of its own beside
the same raw/ files: the steady state, where each bucket reads only its own bucket of the day
before. N = 1 builds on the single-invocation day.

Measured, each in a fresh subprocess: the single invocation (``SnapshotBuilder.refresh_day``, the
snapshot_day row's child), each bucket worker (``build_bucket``: its CPU seconds, wall seconds and
peak RSS) and the commit (``commit_buckets``: collecting the records, the manifest, completing the
uploads; no derived formats). Reported: the sum of the buckets' CPU against the single invocation's
(goal: within 1.2x), the slowest bucket, and the commit's own cost; the days must hold as many items.

Run: ``.venv/bin/python -m bench.rows.snapshot_buckets --size-mb 2000``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rows.snapshot_day import BASE_DAY, DAY, TABLE, _Parts
from bench.rows.snapshot_day import MODULE as DAY_MODULE
from bench.support.children import child_environment, cpu_seconds, print_result, run_child, sized_parser

MODULE = "bench.rows.snapshot_buckets"
COUNTS = (1, 4, 8)


def _origin_marker(store: Any) -> None:
    """An object in raw/ on the previous day that is not a raw file: that day is the table's first,
    so the day measured builds on it (the bucket workers check the day before is current)."""
    store.put(f"raw/{TABLE}/dt={BASE_DAY.isoformat()}/hour=00/.origin", b"")


def _bucketed_base(single: Path, root: Path, count: int) -> None:
    """``root``: the same raw/ files as ``single`` (hard links) and the previous day built in ``count``
    buckets from the single day's lines."""
    from bench.rows.compaction_hour import local_store
    from changelake.pieces import Piece
    from changelake.snapshot.buckets import bucket_of
    from changelake.snapshot.lines import base_key
    from changelake.snapshot.manifest import DayManifest
    from changelake.storage.io import iter_gzip_lines

    for path in (single / "objects" / "raw").rglob("*"):
        target = root / path.relative_to(single)
        if path.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    source, store = local_store(single), local_store(root)
    folder = f"snapshot/{TABLE}/dt={BASE_DAY.isoformat()}/"
    manifest = DayManifest.from_json(source.get(folder + "_manifest.json"))
    assert manifest is not None
    writers = [
        _Parts(store, folder, manifest.generation, piece=Piece(index, count)) for index in range(count)
    ]
    pending: list[list[bytes]] = [[] for _ in range(count)]
    for output in manifest.outputs:
        for line in iter_gzip_lines(source.open(output.key), resource=output.key):
            key = base_key(line)
            assert key is not None
            bucket = bucket_of(key, count)
            pending[bucket].append(line + b"\n")
            if len(pending[bucket]) >= 1000:
                writers[bucket].write(pending[bucket])
                pending[bucket] = []
    for writer, lines in zip(writers, pending, strict=True):
        if lines:
            writer.write(lines)
        writer.close()
    outputs = tuple(part for writer in writers for part in writer.outputs)
    bucketed = manifest.model_copy(update={"outputs": outputs, "buckets": count})
    store.put(folder + "_manifest.json", bucketed.to_json())


def _child_bucket(root: str, spill_dir: str, count: int, index: int) -> None:
    """Runs in its own process: one bucket worker on the local store; print JSON."""
    import json

    from bench.rows.compaction_hour import local_store
    from changelake.compaction.check import peak_rss_kb
    from changelake.pieces import Piece
    from changelake.snapshot.builder import SnapshotBuilder
    from changelake.storage.limits import BuildLimits

    builder = SnapshotBuilder(local_store(Path(root)), limits=BuildLimits(spill_dir=Path(spill_dir)))
    cpu = cpu_seconds()
    started = time.perf_counter()
    result = builder.build_bucket(TABLE, DAY, Piece(index, count))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    assert result.manifest is not None, result.status
    figures = {"seconds": seconds, "cpu_seconds": cpu, "maxrss_kb": peak_rss_kb()}
    print(json.dumps(figures | {"items": result.manifest.counts.items, "parts": result.parts_written}))


def _child_commit(root: str, count: int) -> None:
    """Runs in its own process: the commit of the ``count`` buckets; print JSON."""
    import json

    from bench.rows.compaction_hour import local_store
    from changelake.compaction.check import peak_rss_kb
    from changelake.snapshot.builder import SnapshotBuilder

    builder = SnapshotBuilder(local_store(Path(root)))
    cpu = cpu_seconds()
    started = time.perf_counter()
    chain = builder.commit_buckets(TABLE, DAY, count)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    day = chain.days[0]
    assert day.status == "built", day.status
    assert day.manifest is not None
    figures = {"seconds": seconds, "cpu_seconds": cpu, "maxrss_kb": peak_rss_kb()}
    print(json.dumps(figures | {"items": day.manifest.counts.items, "outputs": len(day.manifest.outputs)}))


def _clear_day(store: Any) -> None:
    """The measured day's folder emptied (a rerun in the same ``--workdir`` builds it again)."""
    for item in list(store.list_objects(f"snapshot/{TABLE}/dt={DAY.isoformat()}/")):
        store.delete(item.key)


def _in_buckets(root: Path, count: int, spill: Path, environ: dict[str, str]) -> dict[str, Any]:
    from bench.rows.compaction_hour import local_store

    _clear_day(local_store(root))
    command = ["--child-bucket", str(root), "--spill-dir", str(spill), "--count", str(count)]
    pieces = [run_child(MODULE, [*command, "--index", str(index)], environ) for index in range(count)]
    commit = run_child(MODULE, ["--child-commit", str(root), "--count", str(count)], environ)
    return {
        "pieces": [_figures(piece) for piece in pieces],
        "pieces_cpu_seconds": round(sum(piece["cpu_seconds"] for piece in pieces), 2),
        "slowest_piece_seconds": round(max(piece["seconds"] for piece in pieces), 2),
        "peak_rss_mb": round(max(piece["maxrss_kb"] for piece in pieces) / 1024, 1),
        "items": sum(piece["items"] for piece in pieces),
        "commit": _figures(commit) | {"outputs": commit["outputs"]},
        "committed_items": commit["items"],
    }


def _figures(measured: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": round(measured["seconds"], 2),
        "cpu_seconds": round(measured["cpu_seconds"], 2),
        "peak_rss_mb": round(measured["maxrss_kb"] / 1024, 1),
    }


def run(
    size_bytes: int = 1_000_000_000, workdir: Path | None = None, counts: tuple[int, ...] = COUNTS
) -> dict[str, Any]:
    """Generate, then measure the single invocation and the N buckets + commit for each N."""
    from bench.rows.compaction_hour import local_store
    from bench.rows.snapshot_day import _generated

    with tempfile.TemporaryDirectory(prefix="changelake-bench-buckets-") as scratch:
        work = workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        environ = child_environment()
        spill = work / "spill"
        spill.mkdir(exist_ok=True)
        single = work / "local-store"
        store = local_store(single)
        started = time.perf_counter()
        items, base_bytes, changes = _generated(store, size_bytes, work, work / "base-and-changes.gz")
        _origin_marker(store)
        for count in counts:
            if count > 1 and not (work / f"buckets-{count}" / "objects").exists():
                _bucketed_base(single, work / f"buckets-{count}", count)
        generation_seconds = time.perf_counter() - started
        one = run_child(DAY_MODULE, ["--child-ours", str(single), "--spill-dir", str(spill)], environ)
        by_count = {
            count: _in_buckets(single if count == 1 else work / f"buckets-{count}", count, spill, environ)
            for count in counts
        }
    mb = (base_bytes + changes["bytes"]) / 1e6
    for figures in by_count.values():
        figures["cpu_ratio"] = round(figures["pieces_cpu_seconds"] / one["cpu_seconds"], 2)
        figures["mb_per_cpu_s_per_piece"] = round(mb / figures["pieces_cpu_seconds"], 1)
    return {
        "table_mb": round(base_bytes / 1e6, 1),
        "input_mb": round(mb, 1),
        "items_before": items,
        "generation_seconds": round(generation_seconds, 1),
        "single": _figures(one) | {"items": one["items"], "mb_per_cpu_s": round(mb / one["cpu_seconds"], 1)},
        "buckets": {str(count): figures for count, figures in by_count.items()},
        "same_items": all(figures["committed_items"] == one["items"] for figures in by_count.values()),
        "targets_met": all(figures["cpu_ratio"] <= 1.2 for figures in by_count.values()),
    }


def _print_table(result: dict[str, Any]) -> None:
    single = result["single"]
    print(
        f"table {result['table_mb']} MB ({result['items_before']:,} items), input {result['input_mb']} MB; "
        f"single invocation: {single['cpu_seconds']} CPU s, {single['seconds']} s, "
        f"{single['peak_rss_mb']} MB peak RSS"
    )
    header = ("N", "sum CPU s", "x single", "slowest s", "peak RSS MB", "commit s", "commit CPU s")
    print(" ".join(f"{name:>12}" for name in header))
    for count, figures in result["buckets"].items():
        commit = figures["commit"]
        cells = (
            count,
            figures["pieces_cpu_seconds"],
            figures["cpu_ratio"],
            figures["slowest_piece_seconds"],
            figures["peak_rss_mb"],
            commit["seconds"],
            commit["cpu_seconds"],
        )
        print(" ".join(f"{cell:>12}" for cell in cells))
    within = result["targets_met"]
    print(f"same items: {result['same_items']}; the pieces' CPU within 1.2x the single's: {within}")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = sized_parser(MODULE, __doc__, "uncompressed MB of the table")
    parser.add_argument("--child-bucket", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--child-commit", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_bucket:
        _child_bucket(args.child_bucket, args.spill_dir, args.count, args.index)
        return None
    if args.child_commit:
        _child_commit(args.child_commit, args.count)
        return None
    return print_result(run(int(args.size_mb * 1e6), args.workdir), args.json, _print_table)


if __name__ == "__main__":
    main()
