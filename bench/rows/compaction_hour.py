"""Benchmark: compact one hour of ``size_bytes`` of uncompressed change records; compare with the floor.

Generation (in this process): aggregator-sized raw/ files (about 2 MB of records each, as
``changelake.ingest.aggregator.raw_object`` writes them), with about 5 % of the records redelivered in
extra files, written to two stores: a moto S3 server (``python -m moto.server`` in a child process
of its own, on 127.0.0.1) and a local folder (``LocalStore``, the same small store interface over
files: no HTTP, no XML, no server).

Measured, each in a fresh subprocess so generation does not pollute the figures:

* compaction on moto: ``Compactor.compact`` of the hour against the moto server, with the
  function's default memory budget; throughput = uncompressed raw bytes / seconds. The server is
  a separate process, so its CPU is not counted in the compaction's CPU, but on a 2-core machine
  it still competes for the cores while the compaction runs: a lower bound of what it does on S3.
* compaction on the local store: the same, without the server: what compaction itself costs.
* floor: ``gzip -dc | gzip > /dev/null`` over the same raw bytes (the raw objects concatenated, a
  multi-member gzip file); throughput and the larger peak RSS of the two gzip processes.

Peak RSS of compaction is its own process's plus that of its full-check process (the two run at
the same time), each read from ``/proc/<pid>/status`` ``VmHWM`` (``ru_maxrss`` survives ``exec``
and would count the RSS of the forking parent). CPU seconds (user + system, the compaction's
threads and child included) are reported beside wall seconds because other work on a shared
machine changes wall times.

Run: ``.venv/bin/python -m bench.rows.compaction_hour --size-mb 1000``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from bench.support.children import child_environment, cpu_seconds, print_result, run_child, sized_parser

BUCKET = "changelake-bench"
TABLE = "orders"
HOUR_START = 1_795_348_800  # 2026-11-22T12:00:00Z
FILE_BYTES = 2_000_000
REDELIVERED_SHARE = 0.05
MEMORY_BUDGET = 128 * 1024 * 1024


def _templates(count: int = 400) -> list[bytes]:
    """Tails (after ``sequence_number``) of real change lines: keys, images, size, identity."""
    from changelake.formats.change_line import to_change_line
    from changelake_testing.stream_records import change_batch

    records = change_batch(random.Random(42), count, tables=(TABLE,), start=HOUR_START, item_bytes=900)
    tails = []
    for record in records:
        line = to_change_line(record).line
        tails.append(line[line.index(b',"keys":') :])
    return tails


class _LocalBody:
    """A file opened for reading, with ``close``, as a streaming body."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()


def local_store(root: Path) -> Any:
    """An ``S3Store`` over the folder ``root`` (objects are files; uploads are folders of parts).

    Only what compaction uses; single process; ETags are digests of the path, size and mtime.
    """
    import hashlib

    from changelake.exceptions import ObjectNotFoundError, PreconditionFailedError
    from changelake.integrations.base import ObjectInfo
    from changelake.integrations.s3 import S3Store

    objects = root / "objects"
    uploads = root / "uploads"

    class LocalStore(S3Store):
        def __init__(self) -> None:
            super().__init__("local", client=object())
            objects.mkdir(parents=True, exist_ok=True)
            uploads.mkdir(parents=True, exist_ok=True)

        def _path(self, key: str) -> Path:
            return objects / key

        def _info(self, key: str) -> ObjectInfo:
            path = self._path(key)
            try:
                stat = path.stat()
            except FileNotFoundError:
                raise ObjectNotFoundError(f"s3://local/{key}", "NoSuchKey") from None
            digest = hashlib.md5(f"{key}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
            return ObjectInfo(key, f'"{digest}"', stat.st_size)

        def put(
            self,
            key: str,
            body: bytes,
            *,
            content_type: str = "",
            if_none_match: bool = False,
            if_match: str | None = None,
            metadata: dict[str, str] | None = None,
        ) -> str:
            exists = self._path(key).exists()
            if (if_none_match and exists) or (if_match is not None and self._info(key).etag != if_match):
                raise PreconditionFailedError(f"s3://local/{key}", "PreconditionFailed")
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
            self._path(key).write_bytes(body)
            return self._info(key).etag

        def get_with_etag(self, key: str) -> tuple[bytes, str]:
            info = self._info(key)
            return self._path(key).read_bytes(), info.etag

        def get(self, key: str) -> bytes:
            return self.get_with_etag(key)[0]

        def open(self, key: str) -> Any:
            self._info(key)
            return _LocalBody(self._path(key))

        def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
            keys = sorted(str(path.relative_to(objects)) for path in objects.rglob("*") if path.is_file())
            return iter([self._info(key) for key in keys if key.startswith(prefix)])

        def list_folders(self, prefix: str) -> Iterator[str]:
            folder = objects / prefix
            if not folder.is_dir():
                return iter([])
            return iter(sorted(f"{prefix}{path.name}/" for path in folder.iterdir() if path.is_dir()))

        def head(self, key: str) -> ObjectInfo:
            return self._info(key)

        def create_multipart(
            self, key: str, *, content_type: str = "", metadata: dict[str, str] | None = None
        ) -> str:
            upload_id = hashlib.md5(f"{key}:{time.time_ns()}".encode()).hexdigest()
            (uploads / upload_id).mkdir()
            (uploads / upload_id / "key").write_text(key)
            return upload_id

        def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
            (uploads / upload_id / f"{number:05d}").write_bytes(body)
            return f'"{upload_id}-{number}"'

        def complete_multipart(
            self, key: str, upload_id: str, part_etags: list[str], *, if_none_match: bool = False
        ) -> str:
            folder = uploads / upload_id
            if not folder.is_dir():
                raise ObjectNotFoundError(f"s3://local/{key}", "NoSuchUpload")
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
            with self._path(key).open("wb") as sink:
                for number in range(1, len(part_etags) + 1):
                    sink.write((folder / f"{number:05d}").read_bytes())
            self.abort_multipart(key, upload_id)
            return self._info(key).etag

        def abort_multipart(self, key: str, upload_id: str) -> None:
            folder = uploads / upload_id
            if folder.is_dir():
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()

        def delete(self, key: str) -> None:
            self._path(key).unlink(missing_ok=True)

    return LocalStore()


def _generate(client: Any, local: Any, size_bytes: int, workdir: Path) -> dict[str, Any]:
    """Write the raw/ hour to moto and the local store; returns counts and the concatenated raw bytes."""
    from changelake.formats.change_line import ChangeLine
    from changelake.formats.layout import Partition, partition_key
    from changelake.ingest.aggregator import raw_object

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
            key = partition_key("raw", partition, name)
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            local.put(key, body)
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


def _child_compact(target: str, spill_dir: str) -> None:
    """Runs in its own process: compact the hour on ``target`` (endpoint or ``local:<dir>``), print JSON."""
    import hashlib

    import boto3

    from changelake.compaction.check import peak_rss_kb
    from changelake.compaction.compactor import Compactor
    from changelake.formats.layout import Partition
    from changelake.integrations.s3 import S3Store
    from changelake.storage.limits import BuildLimits

    if target.startswith("local:"):
        store = local_store(Path(target[len("local:") :]))
    else:
        store = S3Store(BUCKET, client=boto3.client("s3", endpoint_url=target, region_name="us-east-1"))
    compactor = Compactor(
        store, limits=BuildLimits(memory_budget_bytes=MEMORY_BUDGET, spill_dir=Path(spill_dir))
    )
    partition = Partition(TABLE, date(2026, 11, 22), 12)
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    result = compactor.compact(partition)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    self_maxrss = peak_rss_kb()
    check_maxrss = result.check_peak_rss_kb
    digest = hashlib.sha256()  # of the parts' bytes in part order (keys differ: ETags differ)
    for item in sorted(store.list_objects(partition.prefix("compacted")), key=lambda i: i.key[-14:]):
        if item.key.endswith(".jsonl.gz"):
            digest.update(store.get(item.key))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                **result.counts.document(),
                "uncompressed_bytes_in": result.uncompressed_bytes_in,
                "spilled_runs": result.spilled_runs,
                "self_maxrss_kb": self_maxrss,
                "check_maxrss_kb": check_maxrss,
                "output_sha256": digest.hexdigest(),
            }
        )
    )


def _child_floor(path: str) -> None:
    """Runs in its own process: time ``gzip -dc | gzip`` and report the gzip processes' peak RSS."""
    started = time.perf_counter()
    subprocess.run(["sh", "-c", f'gzip -dc < "{path}" | gzip > /dev/null'], check=True)
    seconds = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {"seconds": seconds, "cpu_seconds": cpu_seconds(resource.RUSAGE_CHILDREN), "maxrss_kb": maxrss}
        )
    )


def _measure(args: list[str], environ: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m bench.rows.compaction_hour <args>`` and return its JSON."""
    return run_child("bench.rows.compaction_hour", args, environ)


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_moto(environ: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    import boto3

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environ,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.2)
        else:
            return server, endpoint


def _figures(prefix: str, measured: dict[str, Any], mb: float, floor: dict[str, Any]) -> dict[str, Any]:
    rss_mb = (measured["self_maxrss_kb"] + measured["check_maxrss_kb"]) / 1024
    ratio = floor["seconds"] / measured["seconds"]
    return {
        f"{prefix}seconds": round(measured["seconds"], 2),
        f"{prefix}cpu_seconds": round(measured["cpu_seconds"], 2),
        f"{prefix}mb_per_s": round(mb / measured["seconds"], 1),
        f"{prefix}peak_rss_mb": round(rss_mb, 1),
        f"{prefix}process_rss_mb": round(measured["self_maxrss_kb"] / 1024, 1),
        f"{prefix}check_rss_mb": round(measured["check_maxrss_kb"] / 1024, 1),
        f"{prefix}throughput_ratio": round(ratio, 2),
        f"{prefix}cpu_ratio": round(floor["cpu_seconds"] / measured["cpu_seconds"], 2),
        f"{prefix}targets_met": rss_mb < 300 and ratio >= 0.5,
    }


def run(size_bytes: int = 1_000_000_000, workdir: Path | None = None) -> dict[str, Any]:
    """Generate, compact (moto and local) and measure; returns a JSON-able dict of the figures.

    Keys without a prefix (``compaction_*``, ``throughput_ratio``, ``targets_met``) are the moto
    figures; ``local_*`` are those of the local store.
    """
    import boto3

    with tempfile.TemporaryDirectory(prefix="changelake-bench-") as scratch:
        work = workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        environ = child_environment(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
        )
        os.environ.update({k: environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        server, endpoint = _start_moto(environ)
        try:
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            local_root = work / "local-store"
            started = time.perf_counter()
            generated = _generate(client, local_store(local_root), size_bytes, work)
            generation_seconds = time.perf_counter() - started
            spill = str(work / "spill")
            server_cpu = _process_cpu_seconds(server.pid)
            on_moto = _measure(["--child-compact", endpoint, "--spill-dir", spill], environ)
            server_cpu = _process_cpu_seconds(server.pid) - server_cpu
        finally:
            server.kill()
            server.wait()
        on_local = _measure(["--child-compact", f"local:{local_root}", "--spill-dir", spill], environ)
        floor = _measure(["--child-floor", str(generated["concatenated"])], environ)
    mb = generated["uncompressed_bytes"] / 1e6
    moto = _figures("", on_moto, mb, floor)
    return {
        "size_mb": round(mb, 1),
        "raw_files": generated["raw_files"],
        "rows_in": on_moto["rows_in"],
        "rows_out": on_moto["rows_out"],
        "duplicates_removed": on_moto["duplicates_removed"],
        "spilled_runs": on_moto["spilled_runs"],
        "raw_compressed_mb": round(on_moto["bytes_in"] / 1e6, 1),
        "compacted_compressed_mb": round(on_moto["bytes_out"] / 1e6, 1),
        "same_output_on_both_stores": on_moto["output_sha256"] == on_local["output_sha256"],
        "output_sha256": on_moto["output_sha256"],
        "generation_seconds": round(generation_seconds, 1),
        "moto_server_cpu_seconds_during_compaction": round(server_cpu, 2),
        **{
            ("compaction_" + k if not k.startswith(("throughput", "cpu_ratio", "targets")) else k): v
            for k, v in moto.items()
        },
        **_figures("local_", on_local, mb, floor),
        "floor_seconds": round(floor["seconds"], 2),
        "floor_cpu_seconds": round(floor["cpu_seconds"], 2),
        "floor_mb_per_s": round(mb / floor["seconds"], 1),
        "floor_peak_rss_mb": round(floor["maxrss_kb"] / 1024, 1),
    }


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"one hour: {result['size_mb']} MB uncompressed, {result['raw_files']} raw files, "
        f"{result['rows_in']} rows in, {result['rows_out']} out, {result['spilled_runs']} spilled runs; "
        f"same output on both stores: {result['same_output_on_both_stores']}"
    )
    print(
        f"{'':22} {'seconds':>9} {'CPU s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'ratio':>6} {'CPU ratio':>10}"
    )
    for label, prefix in (("compaction (moto)", "compaction_"), ("compaction (local)", "local_")):
        ratio_key = "throughput_ratio" if prefix == "compaction_" else "local_throughput_ratio"
        cpu_key = "cpu_ratio" if prefix == "compaction_" else "local_cpu_ratio"
        print(
            f"{label:22} {result[prefix + 'seconds']:>9} {result[prefix + 'cpu_seconds']:>8} "
            f"{result[prefix + 'mb_per_s']:>8} {result[prefix + 'peak_rss_mb']:>12} "
            f"{result[ratio_key]:>6} {result[cpu_key]:>10}"
        )
    print(
        f"{'floor (gzip -dc|gzip)':22} {result['floor_seconds']:>9} {result['floor_cpu_seconds']:>8} "
        f"{result['floor_mb_per_s']:>8} {result['floor_peak_rss_mb']:>12}"
    )
    server_cpu = result["moto_server_cpu_seconds_during_compaction"]
    print(f"moto server CPU seconds during the moto compaction: {server_cpu}")
    print(
        f"targets (RSS < 300 MB, throughput ratio >= 0.5) met: moto {result['targets_met']}, "
        f"local {result['local_targets_met']}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = sized_parser("bench.rows.compaction_hour", __doc__, "uncompressed MB of change records")
    parser.add_argument("--child-compact", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--child-floor", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_compact:
        _child_compact(args.child_compact, args.spill_dir)
        return None
    if args.child_floor:
        _child_floor(args.child_floor)
        return None
    return print_result(run(int(args.size_mb * 1e6), args.workdir), args.json, _print_table)


if __name__ == "__main__":
    main()
