"""Benchmark: compact one hour of ``size_bytes`` of uncompressed change records; compare with the floor.

Generation (in this process): aggregator-sized raw/ files (about 2 MB of records each, as
``changelake.aggregator.raw_object`` writes them) on a local moto server (ThreadedMotoServer on
127.0.0.1), with about 5 % of the records redelivered in extra files.

Measured, each in a fresh subprocess so generation does not pollute the figures:

* compaction: ``Compactor.compact`` of the hour against the moto server, with the function's
  default memory budget; throughput = uncompressed raw bytes / seconds; peak RSS of that process.
* floor: ``gzip -dc | gzip > /dev/null`` over the same raw bytes (the raw objects concatenated,
  a multi-member gzip file); throughput and the larger peak RSS of the two gzip processes.

Run: ``.venv/bin/python -m bench.compaction --size-mb 1000``. The moto server runs in this
process and shares the machine's cores with the measured one, so compaction's figure is a lower
bound of what it does against S3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

BUCKET = "changelake-bench"
TABLE = "orders"
HOUR_START = 1_795_348_800  # 2026-11-22T12:00:00Z
FILE_BYTES = 2_000_000
REDELIVERED_SHARE = 0.05
MEMORY_BUDGET = 128 * 1024 * 1024


def _templates(count: int = 400) -> list[bytes]:
    """Tails (after ``sequence_number``) of real change lines: keys, images, size, identity."""
    from changelake.records import to_change_line
    from changelake_local.stream_records import change_batch

    records = change_batch(random.Random(42), count, tables=(TABLE,), start=HOUR_START, item_bytes=900)
    tails = []
    for record in records:
        line = to_change_line(record).line
        tails.append(line[line.index(b',"keys":') :])
    return tails


def _generate(client: Any, size_bytes: int, workdir: Path) -> dict[str, Any]:
    """Write the raw/ hour; returns counts and the path of the concatenated raw bytes."""
    from changelake.aggregator import raw_object
    from changelake.layout import Partition, partition_key
    from changelake.records import ChangeLine

    rng = random.Random(7)
    tails = _templates()
    partition = Partition(TABLE, date(2026, 11, 22), 12)
    concatenated = workdir / "raw-concatenated.jsonl.gz"
    total = rows = files = 0
    sequence = 10**20
    batch: list[ChangeLine] = []
    batch_bytes = 0
    names = ["INSERT", "MODIFY", "REMOVE"]
    with concatenated.open("wb") as sink:

        def flush(changes: list[ChangeLine]) -> None:
            nonlocal files
            name, body = raw_object(changes)
            client.put_object(Bucket=BUCKET, Key=partition_key("raw", partition, name), Body=body)
            sink.write(body)
            files += 1

        while total < size_bytes:
            sequence += 1
            millis = (sequence * 7919) % 3_600_000
            event_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(HOUR_START + millis // 1000))
            event_time += f".{millis % 1000:03d}Z"
            event_id = f"{TABLE}-{sequence}"
            line = (
                f'{{"event_id":"{event_id}","event_name":"{names[sequence % 3]}","table":"{TABLE}",'
                f'"event_time":"{event_time}","sequence_number":"{sequence}"'
            ).encode() + rng.choice(tails)
            change = ChangeLine(TABLE, event_id, event_time, str(sequence), line)
            batch.append(change)
            batch_bytes += len(line) + 1
            total += len(line) + 1
            rows += 1
            if batch_bytes >= FILE_BYTES:
                flush(batch)
                if rng.random() < REDELIVERED_SHARE * 2:  # redeliver about half of a batch
                    redelivered = batch[: len(batch) // 2]
                    flush(redelivered)
                    total += sum(len(c.line) + 1 for c in redelivered)
                batch, batch_bytes = [], 0
        if batch:
            flush(batch)
    return {
        "raw_files": files,
        "unique_rows": rows,
        "uncompressed_bytes": total,
        "concatenated": concatenated,
    }


def _child_compact(endpoint: str, spill_dir: str) -> None:
    """Runs in its own process: compact the hour and print the result as JSON."""
    import boto3

    from changelake.compaction import Compactor
    from changelake.integrations.s3 import S3Store
    from changelake.layout import Partition

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    compactor = Compactor(
        S3Store(BUCKET, client=client), memory_budget_bytes=MEMORY_BUDGET, spill_dir=Path(spill_dir)
    )
    started = time.perf_counter()
    result = compactor.compact(Partition(TABLE, date(2026, 11, 22), 12))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows_in": result.rows_in,
                "rows_out": result.rows_out,
                "duplicates_removed": result.duplicates_removed,
                "uncompressed_bytes_in": result.uncompressed_bytes_in,
                "bytes_in": result.bytes_in,
                "bytes_out": result.bytes_out,
                "spilled_runs": result.spilled_runs,
                "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _child_floor(path: str) -> None:
    """Runs in its own process: time ``gzip -dc | gzip`` and report the gzip processes' peak RSS."""
    started = time.perf_counter()
    subprocess.run(["sh", "-c", f'gzip -dc < "{path}" | gzip > /dev/null'], check=True)
    seconds = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "maxrss_kb": maxrss}))


def _measure(args: list[str], environ: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Run ``python -m bench.compaction <args>`` and return its JSON and its peak RSS (KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    command = [sys.executable, "-m", "bench.compaction", *args]
    completed = subprocess.run(command, check=False, capture_output=True, env=environ, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {completed.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(completed.stdout.strip().splitlines()[-1]), after if after > before else -1


def run(size_bytes: int = 1_000_000_000, workdir: Path | None = None) -> dict[str, Any]:
    """Generate, compact and measure; returns a JSON-able dict of the figures."""
    import boto3
    from moto.server import ThreadedMotoServer

    with tempfile.TemporaryDirectory(prefix="changelake-bench-") as scratch:
        work = workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            environ = {
                **os.environ,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, ["shared", ".", os.environ.get("PYTHONPATH", "")])
                ),
            }
            os.environ.update({k: environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            started = time.perf_counter()
            generated = _generate(client, size_bytes, work)
            generation_seconds = time.perf_counter() - started
            compaction, compaction_rss = _measure(
                ["--child-compact", endpoint, "--spill-dir", str(work)], environ
            )
            floor, _ = _measure(["--child-floor", str(generated["concatenated"])], environ)
        finally:
            server.stop()
    mb = generated["uncompressed_bytes"] / 1e6
    rss_mb = (compaction_rss if compaction_rss > 0 else compaction["self_maxrss_kb"]) / 1024
    return {
        "size_mb": round(mb, 1),
        "raw_files": generated["raw_files"],
        "rows_in": compaction["rows_in"],
        "rows_out": compaction["rows_out"],
        "duplicates_removed": compaction["duplicates_removed"],
        "spilled_runs": compaction["spilled_runs"],
        "raw_compressed_mb": round(compaction["bytes_in"] / 1e6, 1),
        "compacted_compressed_mb": round(compaction["bytes_out"] / 1e6, 1),
        "generation_seconds": round(generation_seconds, 1),
        "compaction_seconds": round(compaction["seconds"], 2),
        "compaction_mb_per_s": round(mb / compaction["seconds"], 1),
        "compaction_peak_rss_mb": round(rss_mb, 1),
        "floor_seconds": round(floor["seconds"], 2),
        "floor_mb_per_s": round(mb / floor["seconds"], 1),
        "floor_peak_rss_mb": round(floor["maxrss_kb"] / 1024, 1),
        "throughput_ratio": round(floor["seconds"] / compaction["seconds"], 2),
        "targets_met": rss_mb < 300 and floor["seconds"] / compaction["seconds"] >= 0.5,
    }


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"one hour: {result['size_mb']} MB uncompressed, {result['raw_files']} raw files, "
        f"{result['rows_in']} rows in, {result['rows_out']} out, {result['spilled_runs']} spilled runs"
    )
    print(f"{'':12} {'seconds':>9} {'MB/s':>8} {'peak RSS MB':>12}")
    print(
        f"{'compaction':12} {result['compaction_seconds']:>9} {result['compaction_mb_per_s']:>8} "
        f"{result['compaction_peak_rss_mb']:>12}"
    )
    print(
        f"{'floor':12} {result['floor_seconds']:>9} {result['floor_mb_per_s']:>8} "
        f"{result['floor_peak_rss_mb']:>12}"
    )
    print(
        f"throughput ratio (compaction / floor): {result['throughput_ratio']}; "
        f"targets (RSS < 300 MB, ratio >= 0.5) met: {result['targets_met']}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m bench.compaction", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=1000.0, help="uncompressed MB of change records")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--child-compact", metavar="ENDPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--child-floor", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--spill-dir", default=tempfile.gettempdir(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_compact:
        _child_compact(args.child_compact, args.spill_dir)
        return None
    if args.child_floor:
        _child_floor(args.child_floor)
        return None
    result = run(int(args.size_mb * 1e6), args.workdir)
    print(json.dumps(result, indent=1)) if args.json else _print_table(result)
    return result


if __name__ == "__main__":
    main()
