"""Benchmark: one snapshot day of ``size_bytes`` (JSON Lines, uncompressed) derived as Parquet.

Generation: the day's JSON snapshot exactly as bench row 7 (``snapshot_day._write_base``) writes it
into a local folder store (~1.2 KB items with every DynamoDB type, 38-digit numbers), and a JSON
Schema for those items: two DECIMALs (``amount`` DECIMAL(9,2), ``big`` DECIMAL(38,0)), strings,
a boolean, numbers without bounds (as text) and nested values (as JSON text).

Measured in a fresh subprocess: ``ParquetSnapshots.refresh`` of the day (read the JSON parts,
check and convert every value, DuckDB ``COPY`` to Parquet with zstd, upload, commit, promote):
wall and CPU seconds (user + system, every thread), peak RSS (``VmHWM``; the interpreter with
DuckDB imported is reported beside it), the Parquet bytes and files.

Run: ``.venv/bin/python -m bench.rows.snapshot_parquet --size-mb 500``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rows.snapshot_day import BASE_DAY, TABLE, _write_base
from bench.support.children import cpu_seconds

#: The JSON Schema of the generated items (``changelake_testing.stream_records.realistic_item``).
ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "sk": {"type": "string"},
        "amount": {"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 1_000_000},
        "precise": {"type": "number"},
        "big": {"type": "integer", "minimum": 0, "maximum": 10**38 - 1},
        "tiny": {"type": "number"},
        "active": {"type": "boolean"},
        "nothing": {"type": "null"},
        "blob": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "array", "items": {"type": "number"}},
        "blobs": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"street": {"type": "string"}}},
        "history": {"type": "array"},
        "notes": {"type": "string"},
    },
}


def _child(root: str, scratch: str) -> None:
    """Runs in its own process: derive the day's Parquet on the local store; print JSON."""
    import duckdb  # noqa: F401 - imported first, so the baseline RSS includes it

    from bench.rows.compaction_hour import local_store
    from changelake.compaction.check import peak_rss_kb
    from changelake.snapshot.builder import SnapshotBuilder
    from changelake.snapshot.columns import ColumnLayout
    from changelake.snapshot.parquet import ParquetSnapshots

    store = local_store(Path(root))
    day, _ = SnapshotBuilder(store).read_day(TABLE, BASE_DAY)
    assert day is not None
    baseline_kb = peak_rss_kb()
    parquet = ParquetSnapshots(
        store, {TABLE: ColumnLayout.from_schema(ITEM_SCHEMA)}, scratch_dir=Path(scratch)
    )
    cpu = cpu_seconds()
    started = time.perf_counter()
    result = parquet.refresh(day)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    assert result is not None
    document = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "maxrss_kb": peak_rss_kb(),
        "baseline_rss_kb": baseline_kb,
        "rows": result.rows,
        "parquet_bytes": result.bytes,
        "files": result.files,
        "json_gzip_bytes": sum(part.bytes for part in day.outputs),
    }
    print(json.dumps(document))


def run(size_bytes: int = 500_000_000, workdir: Path | None = None) -> dict[str, Any]:
    from bench.rows.compaction_hour import local_store

    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        root = Path(folder) / "store"
        items, total = _write_base(local_store(root), size_bytes, Path(folder) / "copy.gz")
        scratch = Path(folder) / "scratch"
        scratch.mkdir()
        child = subprocess.run(
            [sys.executable, "-m", "bench.rows.snapshot_parquet", "--child", str(root), str(scratch)],
            capture_output=True,
            check=True,
            text=True,
        )
    result = dict(json.loads(child.stdout))
    result |= {"items": items, "json_bytes": total, "mb_per_second": total / 1e6 / result["seconds"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "SCRATCH"))
    arguments = parser.parse_args()
    if arguments.child:
        _child(*arguments.child)
        return
    print(json.dumps(run(arguments.size_mb * 1_000_000), indent=1))


if __name__ == "__main__":
    main()
