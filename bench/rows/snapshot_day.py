"""Benchmark: the snapshot of one day of a table of ``size_bytes``, 5 % of its items changed that day.

Generation (in this process, into a local folder store: ``bench.rows.compaction_hour.local_store``, the
store interface over files, no HTTP): the previous day's snapshot of the table, sorted by key, in
128 MiB gzip parts with its manifest, as the snapshot layer writes it (``size_bytes`` of
uncompressed lines, ~1.2 KB items with every DynamoDB type); and the day's changes in raw/ as the
aggregator writes them (~2 MB files per hour): for 5 % of the items, 80 % MODIFY, 10 % REMOVE and
10 % INSERT of new keys, with 21-digit sequence numbers and a few changed twice.

Measured, each in a fresh subprocess, on the very same bytes:

* ours: ``SnapshotBuilder.refresh_day`` of the day on the previous day's snapshot, with the
  function's default memory budget: reads the raw/ changes, sorts them by item, streams the base,
  merges, writes gzip parts (level 6).
* floor: ``gzip -dc | gzip > /dev/null`` over the same compressed bytes (base parts and raw files
  concatenated, a multi-member gzip file): reading and writing the bytes, nothing else.
* DuckDB: the same merge in SQL on the same files (``read_json`` of the base parts and the raw
  files, the latest change per key by sequence number compared as a number via (length, text),
  an anti join, the day's non-REMOVE images, ``ORDER BY`` the key, ``COPY ... (FORMAT JSON,
  COMPRESSION GZIP)``), with DuckDB's defaults (all cores, 80 % of RAM).

Throughput is uncompressed input MB (base + changes) per wall second; CPU seconds (user + system,
every thread and child) are reported beside it, because a shared machine moves wall times and
Lambda at 1,769 MB gives one vCPU. Peak RSS is ``VmHWM`` of the process (and, for the floor, the
larger of the two gzip processes).

Run: ``.venv/bin/python -m bench.rows.snapshot_day --size-mb 1000``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import zlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.support.children import child_environment, cpu_seconds, print_result, run_child, sized_parser

MODULE = "bench.rows.snapshot_day"
TABLE = "orders"
BASE_DAY = date(2026, 11, 21)
DAY = date(2026, 11, 22)
CHANGED_SHARE = 0.05
PART_BYTES = 128 * 1024 * 1024
RAW_FILE_BYTES = 2_000_000
FIRST_SEQUENCE = 10**20
_GZIP_WBITS = 31


def _item_templates(count: int = 64) -> list[tuple[str, str, str]]:
    """Plain JSON items (every type, ~1.2 KB) split around their pk and sk values."""
    from changelake.formats.dynamodb_json import item_text
    from changelake_testing.stream_records import realistic_item

    rng = random.Random(11)
    templates = []
    for _ in range(count):
        item = realistic_item(rng, "@@PK@@", 1100)
        item["sk"] = {"S": "@@SK@@"}
        text = item_text("item", item)
        head, rest = text.split("@@PK@@")
        middle, tail = rest.split("@@SK@@")
        templates.append((head, middle, tail))
    return templates


def _key(number: int) -> tuple[str, str]:
    return f"customer#{number:08d}", f"order#{number:08d}"


class _Parts:
    """Sorted snapshot lines into gzip parts of about ``PART_BYTES`` (as the builder splits them),
    each stored in the local store and appended to ``copy`` (one multi-member copy for the floor),
    if given; a day built in buckets names each bucket's parts with its ``piece``."""

    def __init__(self, store: Any, folder: str, generation: str, copy: Any = None, piece: Any = None) -> None:
        self.store, self.folder, self.generation, self.copy, self.piece = (
            store,
            folder,
            generation,
            copy,
            piece,
        )
        self.outputs: list[Any] = []
        self._start()

    def _start(self) -> None:
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
        self.data: list[bytes] = []
        self.size = self.rows = 0

    def write(self, lines: list[bytes]) -> None:
        compressed = self.compressor.compress(b"".join(lines))
        self.data.append(compressed)
        self.size += len(compressed)
        self.rows += len(lines)
        if self.size >= PART_BYTES:
            self.close()

    def close(self) -> None:
        from changelake.formats.layout import part_name
        from changelake.snapshot.manifest import OutputPart

        if not self.rows:
            return
        body = b"".join(self.data) + self.compressor.flush()
        piece = None if self.piece is None else self.piece.name
        key = self.folder + part_name(self.generation, len(self.outputs), piece=piece)
        self.store.put(key, body)
        if self.copy is not None:
            self.copy.write(body)
        self.outputs.append(
            OutputPart(
                key=key,
                rows=self.rows,
                bytes=len(body),
                uncompressed_bytes=0,
                upload_id="",
                part_etags=(),
                piece=None if self.piece is None else self.piece.index,
            )
        )
        self._start()


def _write_base(store: Any, size_bytes: int, concatenated: Path) -> tuple[int, int]:
    """The previous day's snapshot: sorted lines in gzip parts, and its manifest; (items, bytes)."""
    from changelake.snapshot.manifest import EMPTY_BASE, DayCounts, DayManifest, day_generation

    templates = _item_templates()
    rng = random.Random(3)
    generation = day_generation(TABLE, BASE_DAY, EMPTY_BASE, [])
    folder = f"snapshot/{TABLE}/dt={BASE_DAY.isoformat()}/"
    items = total = 0
    with concatenated.open("wb") as copy:
        parts = _Parts(store, folder, generation, copy)
        while total < size_bytes:
            lines = []
            for _ in range(1000):
                pk, sk = _key(items)
                head, middle, tail = rng.choice(templates)
                sequence = FIRST_SEQUENCE + items
                line = (
                    f'{{"keys":{{"pk":"{pk}","sk":"{sk}"}},"table":"{TABLE}",'
                    f'"item":{head}{pk}{middle}{sk}{tail},"event_id":"{TABLE}-{sequence}",'
                    f'"event_time":"{BASE_DAY.isoformat()}T12:00:00.000Z","sequence_number":"{sequence}"}}\n'
                ).encode()
                lines.append(line)
                items += 1
                total += len(line)
            parts.write(lines)
        parts.close()
    manifest = DayManifest(
        table=TABLE,
        dt=BASE_DAY.isoformat(),
        generation=generation,
        base=EMPTY_BASE,
        inputs=(),
        outputs=tuple(parts.outputs),
        counts=DayCounts(items=items),
        built_at="2026-11-22T01:45:00Z",
        seconds=0.0,
    )
    store.put(folder + "_manifest.json", manifest.to_json())
    return items, total


def _write_changes(store: Any, items: int, concatenated: Path) -> dict[str, int]:
    """The day's changes of 5 % of the items, as the aggregator writes raw/ (appended to the copy)."""
    from changelake.formats.change_line import to_change_line
    from changelake.formats.layout import Partition, partition_key
    from changelake.ingest.aggregator import raw_object
    from changelake_testing.stream_records import realistic_item, stream_record

    rng = random.Random(5)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp()
    chosen = sorted(rng.sample(range(items), max(1, int(items * CHANGED_SHARE))))
    counts = {"changes": 0, "modify": 0, "remove": 0, "insert": 0, "bytes": 0, "files": 0}
    lines = []
    for position, number in enumerate(chosen):
        roll = rng.random()
        pk, sk = _key(number)
        if roll < 0.1:
            name, keys = "INSERT", {"pk": {"S": pk}, "sk": {"S": sk + "-new"}}
        elif roll < 0.2:
            name, keys = "REMOVE", {"pk": {"S": pk}, "sk": {"S": sk}}
        else:
            name, keys = "MODIFY", {"pk": {"S": pk}, "sk": {"S": sk}}
        image = {**realistic_item(rng, pk, 1100), **keys}
        for repeat in range(2 if position % 20 == 0 else 1):  # a few items change twice
            sequence = FIRST_SEQUENCE + items + 2 * position + repeat
            record = stream_record(
                table=TABLE,
                event_name=name,
                sequence_number=sequence,
                created=start + (position * 86_399.0 / len(chosen)) + repeat,
                keys=keys,
                new_image=None if name == "REMOVE" else image,
                old_image=None if name == "INSERT" else image,
            )
            lines.append(to_change_line(record))
            counts[name.lower()] += 1
    lines.sort(key=lambda change: change.event_time)
    with concatenated.open("ab") as sink:
        batch: list[Any] = []
        size = 0
        for change in [*lines, None]:
            same_hour = change is not None and (
                not batch or batch[0].event_time[:13] == change.event_time[:13]
            )
            if batch and (not same_hour or size >= RAW_FILE_BYTES):
                name, body = raw_object(batch)
                store.put(
                    partition_key("raw", Partition.of_event_time(TABLE, batch[0].event_time), name), body
                )
                sink.write(body)
                counts["files"] += 1
                batch, size = [], 0
            if change is not None:
                batch.append(change)
                size += len(change.line) + 1
                counts["bytes"] += len(change.line) + 1
    counts["changes"] = len(lines)
    return counts


def _generated(
    store: Any, size_bytes: int, work: Path, concatenated: Path
) -> tuple[int, int, dict[str, int]]:
    """The inputs, generated, or reused from an earlier run in the same ``--workdir`` (the day's own
    snapshot, which that run built, is removed first, so it is built again)."""
    record = work / "generated.json"
    if record.exists():
        done = json.loads(record.read_text())
        if done["size_bytes"] == size_bytes:
            for item in list(store.list_objects(f"snapshot/{TABLE}/dt={DAY.isoformat()}/")):
                store.delete(item.key)
            return int(done["items"]), int(done["base_bytes"]), dict(done["changes"])
    items, base_bytes = _write_base(store, size_bytes, concatenated)
    changes = _write_changes(store, items, concatenated)
    document = {"size_bytes": size_bytes, "items": items, "base_bytes": base_bytes, "changes": changes}
    record.write_text(json.dumps(document))
    return items, base_bytes, changes


def _child_ours(root: str, spill_dir: str) -> None:
    """Runs in its own process: build the day on the local store; print JSON."""
    import hashlib

    from bench.rows.compaction_hour import local_store
    from changelake.compaction.check import peak_rss_kb
    from changelake.snapshot.builder import Base, SnapshotBuilder
    from changelake.storage.limits import BuildLimits

    store = local_store(Path(root))
    builder = SnapshotBuilder(store, limits=BuildLimits(spill_dir=Path(spill_dir)))
    base = builder.base_of(TABLE, BASE_DAY)
    assert isinstance(base, Base), base  # the bench's base day is built and current
    cpu = cpu_seconds()
    started = time.perf_counter()
    result = builder.refresh_day(TABLE, DAY, base)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    assert result.manifest is not None
    counts = result.manifest.counts
    digest = hashlib.sha256()  # read a chunk at a time: the peak RSS is the build's, not this check's
    for output in result.manifest.outputs:
        body = store.open(output.key)
        while chunk := body.read(1 << 20):
            digest.update(chunk)
        body.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "maxrss_kb": peak_rss_kb(),
                "items": counts.items,
                "changes_read": counts.changes_read,
                "changes_applied": counts.changes_applied,
                "removed": counts.removed,
                "bytes_out": counts.bytes_out,
                "parts": len(result.manifest.outputs),
                "spilled_runs": counts.spilled_runs,
                "output_sha256": digest.hexdigest(),
            }
        )
    )


_DUCKDB_MERGE = """
COPY (
  WITH base AS (
    SELECT * FROM read_json('{base}', format = 'newline_delimited', compression = 'gzip', columns = {{
      keys: 'JSON', "table": 'VARCHAR', item: 'JSON', event_id: 'VARCHAR', event_time: 'VARCHAR',
      sequence_number: 'VARCHAR'}})
  ), changes AS (
    SELECT * FROM read_json('{raw}', format = 'newline_delimited', compression = 'gzip', columns = {{
      event_id: 'VARCHAR', event_name: 'VARCHAR', "table": 'VARCHAR', event_time: 'VARCHAR',
      sequence_number: 'VARCHAR', keys: 'JSON', new_image: 'JSON', old_image: 'JSON',
      size_bytes: 'BIGINT', user_identity: 'JSON'}})
  ), latest AS (
    SELECT keys->>'pk' AS pk, keys->>'sk' AS sk, * FROM changes
    QUALIFY row_number() OVER (
      PARTITION BY keys->>'pk', keys->>'sk'
      ORDER BY length(sequence_number) DESC, sequence_number DESC) = 1
  ), merged AS (
    SELECT keys->>'pk' AS pk, keys->>'sk' AS sk, keys, "table", item, event_id, event_time, sequence_number
    FROM base ANTI JOIN latest ON base.keys->>'pk' = latest.pk AND base.keys->>'sk' = latest.sk
    UNION ALL
    SELECT pk, sk, json_object('pk', pk, 'sk', sk), "table", new_image, event_id, event_time, sequence_number
    FROM latest WHERE event_name <> 'REMOVE'
  )
  SELECT keys, "table", item, event_id, event_time, sequence_number FROM merged ORDER BY pk, sk
) TO '{out}' (FORMAT JSON, COMPRESSION GZIP)
"""


def _child_duckdb(root: str, out: str) -> None:
    """Runs in its own process: the same merge in DuckDB on the same files; print JSON."""
    import duckdb

    from changelake.compaction.check import peak_rss_kb

    objects = Path(root) / "objects"
    base = objects / "snapshot" / TABLE / f"dt={BASE_DAY.isoformat()}" / "part-*.jsonl.gz"
    raw = objects / "raw" / TABLE / f"dt={DAY.isoformat()}" / "*" / "*.jsonl.gz"
    with duckdb.connect() as connection:
        cpu = cpu_seconds()
        started = time.perf_counter()
        connection.execute(_DUCKDB_MERGE.format(base=base, raw=raw, out=out))
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        columns = "columns = {keys: 'JSON'}"
        check = f"SELECT count(*) FROM read_json('{out}', format = 'newline_delimited', {columns})"
        items = connection.execute(check).fetchone()  # outside the timing
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "maxrss_kb": peak_rss_kb(),
                "items": items[0] if items else None,
                "bytes_out": Path(out).stat().st_size,
            }
        )
    )


def run(size_bytes: int = 1_000_000_000, workdir: Path | None = None) -> dict[str, Any]:
    """Generate, then measure ours, the floor and DuckDB; returns a JSON-able dict of the figures."""
    from bench.rows.compaction_hour import local_store

    with tempfile.TemporaryDirectory(prefix="changelake-bench-snapshot-") as scratch:
        work = workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        environ = child_environment()
        root = work / "local-store"
        store = local_store(root)
        started = time.perf_counter()
        concatenated = work / "base-and-changes.gz"
        items, base_bytes, changes = _generated(store, size_bytes, work, concatenated)
        generation_seconds = time.perf_counter() - started
        ours = run_child(MODULE, ["--child-ours", str(root), "--spill-dir", str(work / "spill")], environ)
        # the very floor of the compaction row: gzip -dc | gzip over the concatenated bytes
        floor = run_child("bench.rows.compaction_hour", ["--child-floor", str(concatenated)], environ)
        peer = run_child(
            MODULE, ["--child-duckdb", str(root), "--out", str(work / "duckdb.jsonl.gz")], environ
        )
    mb = (base_bytes + changes["bytes"]) / 1e6
    return {
        "table_mb": round(base_bytes / 1e6, 1),
        "input_mb": round(mb, 1),
        "items_before": items,
        "changes": changes,
        "generation_seconds": round(generation_seconds, 1),
        "ours": _figures(ours, mb),
        "floor": _figures(floor, mb),
        "duckdb": _figures(peer, mb),
        "same_items": ours["items"] == peer["items"],
        "throughput_ratio_floor": round(floor["seconds"] / ours["seconds"], 2),
        "throughput_ratio_duckdb": round(peer["seconds"] / ours["seconds"], 2),
        "cpu_ratio_floor": round(floor["cpu_seconds"] / ours["cpu_seconds"], 2),
        "targets_met": (
            ours["maxrss_kb"] / 1024 < 300
            and floor["seconds"] / ours["seconds"] >= 0.5
            and ours["seconds"] < peer["seconds"]
        ),
        "details": {"ours": ours, "duckdb": peer},
    }


def _figures(measured: dict[str, Any], mb: float) -> dict[str, Any]:
    return {
        "seconds": round(measured["seconds"], 2),
        "cpu_seconds": round(measured["cpu_seconds"], 2),
        "mb_per_s": round(mb / measured["seconds"], 1),
        "mb_per_cpu_s": round(mb / measured["cpu_seconds"], 1),
        "peak_rss_mb": round(measured["maxrss_kb"] / 1024, 1),
    }


def _print_table(result: dict[str, Any]) -> None:
    changes = result["changes"]
    print(
        f"table {result['table_mb']} MB ({result['items_before']:,} items), day's changes "
        f"{changes['changes']:,} ({changes['modify']:,} MODIFY, {changes['remove']:,} REMOVE, "
        f"{changes['insert']:,} INSERT) in {changes['files']} raw files; input {result['input_mb']} MB; "
        f"same items out (ours, DuckDB): {result['same_items']}"
    )
    print(f"{'':26} {'seconds':>9} {'CPU s':>8} {'MB/s':>8} {'MB/CPU s':>9} {'peak RSS MB':>12}")
    for label, name in (
        ("ours (SnapshotBuilder)", "ours"),
        ("floor (gzip -dc | gzip)", "floor"),
        ("DuckDB", "duckdb"),
    ):
        figures = result[name]
        print(
            f"{label:26} {figures['seconds']:>9} {figures['cpu_seconds']:>8} {figures['mb_per_s']:>8} "
            f"{figures['mb_per_cpu_s']:>9} {figures['peak_rss_mb']:>12}"
        )
    print(
        f"throughput: {result['throughput_ratio_floor']}x the floor, {result['throughput_ratio_duckdb']}x "
        f"DuckDB; targets (>= 0.5x floor, ahead of DuckDB, RSS < 300 MB) met: {result['targets_met']}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = sized_parser(MODULE, __doc__, "uncompressed MB of the table")
    parser.add_argument("--child-ours", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--child-duckdb", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_ours:
        _child_ours(args.child_ours, args.spill_dir)
        return None
    if args.child_duckdb:
        _child_duckdb(args.child_duckdb, args.out)
        return None
    return print_result(run(int(args.size_mb * 1e6), args.workdir), args.json, _print_table)


if __name__ == "__main__":
    main()
