"""Compaction: each hour of raw/ becomes the exactly-once compacted/ layer of docs/contracts.md.

Layout of one partition (``<compacted>/<table>/dt=YYYY-MM-DD/hour=HH/``)::

    part-<generation>-00000.jsonl.gz   gzip JSON Lines, each event_id once, in docs/contracts.md's order
    part-<generation>-00001.jsonl.gz   ... only when the previous part passed the target size
    _manifest.json                     the commit record: inputs, outputs, counts, when

``<generation>`` is derived from the raw inputs (a digest of their keys, ETags and sizes), so the
same inputs always give the same keys. Record lines are moved as bytes, never re-encoded.

Order and duplicates: ``event_time``, then ``sequence_number`` as a number, then ``event_id``;
of several copies of one change the one with the smallest line bytes is kept (see
``changelake.storage.sort``; redeliveries are byte-identical, differing copies are counted as
``conflicts``).

Publication (crash- and concurrency-safe; the protocol is ``changelake.publication``'s):

1. Parts are streamed as multipart uploads and left *open*: an open upload is invisible, so a run
   that dies here leaves compacted/ exactly as it was (the bucket lifecycle aborts the uploads).
2. Commit: ``_manifest.json`` is written with a conditional PUT, ``If-None-Match: *`` for the
   first generation and ``If-Match: <ETag read>`` afterwards (read before the inputs are listed,
   so a commit never puts older inputs back over newer ones). It names the inputs and the open
   uploads of the outputs. Of two concurrent runs exactly one commit wins; the loser aborts its
   own uploads and re-evaluates the partition once (usually finding it already done).
3. Promote, guarded on both sides: the winner lists the folder, checks that the manifest is still
   its own (ETag) *before* completing its uploads (each appears atomically) and again *after*,
   and only then deletes every listed ``part-*`` object the manifest does not name (superseded
   generations, strays). If a newer run's manifest replaced its own meanwhile, it completes
   nothing more of its own, brings the folder to the newer manifest instead (completing that
   one's uploads before deleting anything, its own completed parts included) and re-evaluates
   the partition once. Every step is idempotent and driven by the manifest, so a run that dies
   after the commit is rolled forward by the next run; a lost upload (aborted before it was
   completed) makes the next run rebuild the generation.

What readers see: a reader of the manifest sees the old or the new generation. A reader globbing
``hour=*/*.jsonl.gz`` (Athena, DuckDB; ``_manifest.json`` is hidden by its underscore) sees the
old set until the first completion, then, for the few requests of step 3 (milliseconds), the new
set together with the old one, then the new set. Rows are never missing. Two overlapping runs
(a late raw file arriving while a run is between its commit and its completions): the run whose
manifest was replaced either completes nothing, or deletes what it completed within the same few
requests (meanwhile a globbing reader may see those parts as a third set), so when both runs have
returned the folder holds exactly the current manifest's parts. Only a run that dies inside
step 3 leaves an overlap in place, until the next run (the handler raises, so Lambda's
asynchronous retry runs again within minutes).

Idempotence: a partition whose raw inputs equal the manifest's and whose folder holds exactly the
manifest's outputs is left alone without a single write. A late raw file changes the inputs, so
the next run covering the hour recompacts it: the scheduled run covers yesterday, the look-back
window and every hour named by a late-data marker (``changelake.late``: the aggregator marks raw
files of past days), however old; a run clears the markers it listed at its start once their
hour is compacted, and a failed hour keeps them. raw/ is never written or deleted.

Delivery guarantee: exactly-once per partition in compacted/, as above; a partition whose raw/
holds something that is not a change record of that hour is not published and reported failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Protocol

from changelake.budget import Deadline
from changelake.clock import Clock, utc_now
from changelake.compaction.check import FullCheck
from changelake.compaction.events import ManualEvent, scheduled_days
from changelake.compaction.manifest import (
    PART_PREFIX,
    CompactionManifest,
    Counts,
    generation_of,
)
from changelake.compaction.slices import Slice
from changelake.exceptions import (
    CompactionError,
    CompactionInputError,
    DeliveryError,
    RecordRejected,
    RunError,
    UnreadableInputError,
    UnsafeNameError,
)
from changelake.formats.change_line import order_key, parse_change_line, parse_own_prefix
from changelake.formats.layout import (
    Partition,
    day_prefix,
    lake_tables,
    parse_partition_prefix,
    part_name,
    partition_key,
)
from changelake.integrations.base import MultipartStore, ObjectInfo
from changelake.publication import Generation, Manifest, OpenUploads, Publication, Written, publish
from changelake.storage.io import PartsWriter, Prefetcher, split_lines
from changelake.storage.limits import BuildLimits
from changelake.storage.parts import OpenPart
from changelake.storage.sort import DedupeSorter
from changelake.summary import RunSummary

RAW_SUFFIX = ".jsonl.gz"
#: Compressed input bytes from which a partition takes the fast path (see ``Compactor.write_parts``).
FAST_PATH_MIN_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class PartitionResult:
    """What compacting one partition did. ``status``: compacted, completed, unchanged or empty.
    ``counts`` are the manifest's (``Counts``); the rest is what the build measured besides."""

    partition: Partition
    status: str
    generation: str = ""
    counts: Counts = field(default_factory=Counts)
    uncompressed_bytes_in: int = 0
    spilled_runs: int = 0
    writes: int = 0
    check_peak_rss_kb: int = 0  # of the fast path's checking process, if it ran
    parts: tuple[OpenPart, ...] = ()  # written by this build (left open until published)


@dataclass(slots=True)
class CompactionSummary(RunSummary):
    """A compaction run's summary: the partitions compacted, unchanged, failed and handed on."""

    ERROR: ClassVar[type[RunError]] = CompactionError
    UNDONE: ClassVar[str] = "partition(s) not compacted"

    partitions: int = 0
    unchanged: int = 0
    rows_in: int = 0
    rows_out: int = 0
    duplicates_removed: int = 0
    conflicts: int = 0
    compacted: list[str] = field(default_factory=list)
    handoff_invocations: int = 0
    #: Hours a scheduled run planned because late-data markers named them (any age).
    late: list[str] = field(default_factory=list)
    #: Hours handed to the fan-out state machine (in ``handed_off`` too): built there in slices.
    fanned_out: list[str] = field(default_factory=list)
    #: A slice worker's: the slices it built and the parts it wrote (left open for the commit).
    slices_built: list[str] = field(default_factory=list)
    parts_written: int = 0
    #: A plan's answer to the state machine (docs/operations.md): None in any other run.
    done: bool | None = None
    pieces: list[dict[str, Any]] | None = None
    commit: dict[str, Any] | None = None

    def add(self, result: PartitionResult) -> None:
        if result.status in ("compacted", "completed"):
            self.partitions += 1
            self.compacted.append(result.partition.path)
        elif result.status == "unchanged":
            self.unchanged += 1
        counts = result.counts
        self.rows_in += counts.rows_in
        self.rows_out += counts.rows_out
        self.duplicates_removed += counts.duplicates_removed
        self.conflicts += counts.conflicts
        self.bytes_in += counts.bytes_in
        self.bytes_out += counts.bytes_out

    def as_dict(self) -> dict[str, Any]:
        document = RunSummary.as_dict(self)
        for name in ("done", "pieces", "commit"):  # a plan's answer only
            if document[name] is None:
                del document[name]
        return document

    def metrics(self) -> dict[str, int | float]:
        return {
            "PartitionsCompacted": self.partitions,
            "PartitionsUnchanged": self.unchanged,
            "PartitionsFailed": len(self.failed),
            "PartitionsHandedOff": len(self.handed_off),
            "LatePartitions": len(self.late),
            "RowsIn": self.rows_in,
            "RowsOut": self.rows_out,
            "DuplicatesRemoved": self.duplicates_removed,
            "BytesIn": self.bytes_in,
            "BytesOut": self.bytes_out,
            "Seconds": round(self.seconds, 3),
        }


class HourFanOut(Protocol):
    """Where a run hands the hours too large for one invocation (the fan-out state machine)."""

    def takes(self, raw_bytes: int) -> bool:
        """Whether an hour of ``raw_bytes`` of raw/ objects is handed off rather than built here."""
        ...

    def start(self, partition: Partition) -> None:
        """Hand ``partition`` off (a ``DeliveryError`` if that failed: nothing was handed off)."""
        ...


class _Unverified(Exception):
    """The fast path met input it cannot vouch for: the partition is rebuilt on the strict path."""


def _confirm(check: FullCheck | None) -> None:
    """Wait for the full check of a fast-path run; ``_Unverified`` unless every line agreed."""
    if check is not None and not check.verdict():
        raise _Unverified


class Compactor:
    """Compacts partitions of raw/ into compacted/ (see the module docstring for the protocol)."""

    def __init__(
        self,
        store: MultipartStore,
        *,
        raw_prefix: str = "raw",
        compacted_prefix: str = "compacted",
        limits: BuildLimits | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.raw_prefix = raw_prefix
        self.compacted_prefix = compacted_prefix
        self.limits = limits or BuildLimits()
        self.clock = clock

    # -- planning

    def tables(self) -> list[str]:
        """Every table with a folder under raw/, sorted."""
        return lake_tables(self.store, [self.raw_prefix])

    def partitions_of_day(self, table: str, day: date) -> list[Partition]:
        """The hours of ``table`` on ``day`` that have a raw/ folder."""
        partitions = []
        for folder in self.store.list_folders(day_prefix(self.raw_prefix, table, day)):
            try:
                partitions.append(parse_partition_prefix(self.raw_prefix, folder))
            except UnsafeNameError:
                continue  # not an hour=HH folder
        return partitions

    def plan_scheduled(self, today: date, lookback_days: int) -> list[Partition]:
        days = scheduled_days(today, lookback_days)
        return [p for table in self.tables() for day in days for p in self.partitions_of_day(table, day)]

    def plan_manual(self, event: ManualEvent) -> list[Partition]:
        day = date.fromisoformat(event.dt)
        if event.hour is not None:
            return [Partition(event.table, day, int(event.hour))]
        return self.partitions_of_day(event.table, day)

    # -- one partition

    def compact(
        self, partition: Partition, *, builds: Callable[[int], bool] | None = None
    ) -> PartitionResult:
        """Bring one partition of compacted/ up to date with raw/ (idempotent).

        ``builds(raw bytes)`` False: a partition that needs a build is not built here but returned
        ``deferred`` (with its raw bytes in ``counts.bytes_in``), for the fan-out to build in slices.
        """
        outcome = publish(HourGeneration(self, partition, builds))
        if outcome.built is not None:  # built now
            outcome.built.writes = outcome.writes
            return outcome.built
        generation = generation_of(outcome.plan) if outcome.plan else ""
        bytes_in = sum(item.size for item in outcome.plan or ())
        return PartitionResult(
            partition,
            outcome.status,
            generation=generation,
            counts=Counts(bytes_in=bytes_in),
            writes=outcome.writes,
        )

    def raw_inputs(self, partition: Partition) -> list[ObjectInfo]:
        prefix = partition.prefix(self.raw_prefix)
        return [
            item
            for item in self.store.list_objects(prefix)
            if item.key.endswith(RAW_SUFFIX) and "/" not in item.key[len(prefix) :]
        ]

    def publication(self, partition: Partition) -> Publication:
        """The partition's folder of compacted/, published by manifest commits."""
        return Publication(self.store, partition.prefix(self.compacted_prefix), data_prefix=PART_PREFIX)

    def manifest_key(self, partition: Partition) -> str:
        return self.publication(partition).manifest_key

    def write_parts(
        self,
        partition: Partition,
        inputs: list[ObjectInfo],
        uploads: OpenUploads,
        *,
        share: Slice | None = None,
    ) -> Written[PartitionResult]:
        """Compact ``inputs``: large ones on the fast path first; whatever it cannot vouch for strictly.

        The fast path reads each line's routing fields from the prefix we write
        (``parse_own_prefix``) while a second process checks every line in full
        (``changelake.compaction.check``). Before the commit it asks for the verdict; if the check
        or anything else about the input disagrees, the fast run is aborted (nothing published)
        and the partition is rebuilt reading every line with ``parse_change_line``, as the strict
        path always did, so results, and errors with their file and line, are exactly the strict
        path's. Partitions under ``FAST_PATH_MIN_BYTES`` take the strict path at once (starting
        the checking process would cost more than it saves).

        ``share``: only that slice of the hour is written (``changelake.compaction.slices``), its
        parts named with the slice. Every line of ``inputs`` is still read, checked (the hour's
        check and, on the fast path, the full check of every line in the second process) and
        routed exactly as for the whole hour; the lines of other slices are dropped once their
        ``event_time`` is known, before the sort. So a line whose prefix disagrees with its full
        parse, in any slice, sends every slice to the strict path, and each slice then routes
        every line by its full parse: the slices hold exactly the lines the whole hour would.
        """
        if sum(item.size for item in inputs) < FAST_PATH_MIN_BYTES:
            return self._write_once(partition, inputs, uploads, strict=True, share=share)
        try:
            return self._write_once(partition, inputs, uploads, strict=False, share=share)
        except _Unverified:
            uploads.abort()  # the fast run's parts go before the strict run writes its own
            return self._write_once(partition, inputs, uploads, strict=True, share=share)

    def _write_once(
        self,
        partition: Partition,
        inputs: list[ObjectInfo],
        uploads: OpenUploads,
        *,
        strict: bool,
        share: Slice | None,
    ) -> Written[PartitionResult]:
        """Sort ``inputs`` (of ``share``, if given) into open parts and the manifest that names them."""
        started = time.monotonic()
        generation = generation_of(inputs)
        result = PartitionResult(partition, "compacted", generation=generation)
        piece = None if share is None else share.piece.name
        writer = PartsWriter(
            self.store,
            lambda index: partition_key(
                self.compacted_prefix, partition, part_name(generation, index, piece=piece)
            ),
            target_bytes=self.limits.target_part_bytes,
            metadata={"generation": generation},
        )
        uploads.on_abort(writer.abort)
        parts = self._sort_into_parts(partition, inputs, writer, result, strict=strict, share=share)
        manifest = CompactionManifest(
            partition,
            generation,
            compacted_at=self.clock(),
            seconds=round(time.monotonic() - started, 3),
            inputs=tuple(inputs),
            outputs=tuple(parts),
            counts=result.counts,
        )
        return Written(manifest.to_json(), result)

    def _sort_into_parts(
        self,
        partition: Partition,
        inputs: list[ObjectInfo],
        writer: PartsWriter,
        result: PartitionResult,
        *,
        strict: bool,
        share: Slice | None,
    ) -> list[OpenPart]:
        """Every line of ``inputs``, sorted and each change once, written as parts left open; the
        counts go to ``result``. On the fast path (``strict`` False) a second process checks every
        line in full, and anything but its agreement raises ``_Unverified``."""
        limits = self.limits
        check = None if strict else FullCheck(limits.spill_dir, share)
        try:
            with DedupeSorter(limits.spill_dir, limits.memory_budget_bytes) as sorter:
                result.uncompressed_bytes_in = self._read_all(
                    partition, inputs, sorter, check, strict=strict, share=share
                )
                for entry in sorter.sorted_unique():
                    writer.write(entry[3])
                parts = writer.close()
                result.spilled_runs = sorter.spilled_runs
            _confirm(check)
        finally:
            if check is not None:
                check.close()
                result.check_peak_rss_kb = check.maxrss_kb
        result.counts = Counts(
            sorter.rows_in,
            sorter.rows_out,
            sorter.duplicates,
            sorter.conflicts,
            bytes_in=sum(item.size for item in inputs),
            bytes_out=sum(part.bytes for part in parts),
        )
        result.parts = tuple(parts)
        return parts

    def _read_all(
        self,
        partition: Partition,
        inputs: list[ObjectInfo],
        sorter: DedupeSorter,
        check: FullCheck | None,
        *,
        strict: bool,
        share: Slice | None,
    ) -> int:
        """Add every line of ``inputs`` to ``sorter`` (a copy of each object goes to ``check``);
        returns their uncompressed size."""
        size = 0
        try:
            with Prefetcher(self.store, [item.key for item in inputs], copy_to=check) as prefetcher:
                for item, chunks in zip(inputs, prefetcher.chunks(), strict=True):
                    size += self._read_into(partition, item, chunks, sorter, strict=strict, share=share)
        except UnreadableInputError as exc:
            if strict:
                raise
            raise _Unverified from exc  # the strict path names the first bad line
        return size

    def _read_into(
        self,
        partition: Partition,
        item: ObjectInfo,
        chunks: Iterator[bytes],
        sorter: DedupeSorter,
        *,
        strict: bool,
        share: Slice | None,
    ) -> int:
        """Add every line of ``item`` (its decompressed ``chunks``; of ``share`` only, if given) to
        ``sorter``; returns its size."""
        hour_prefix = f"{partition.dt.isoformat()}T{partition.hour:02d}"
        resource = f"s3://{self.store.bucket}/{item.key}"
        size = 0
        for number, line in enumerate(split_lines(chunks), start=1):
            change = None if strict else parse_own_prefix(line)
            if change is None:
                try:
                    change = parse_change_line(line)
                except RecordRejected as exc:
                    raise CompactionInputError(f"{resource} line {number}: {exc.reason}") from exc
            if change.table != partition.table or not change.event_time.startswith(hour_prefix):
                raise CompactionInputError(f"{resource} line {number}: change of another partition")
            size += len(line) + 1
            if share is None or share.holds(change.event_time):
                sorter.add((*order_key(change), line))
        return size

    # -- a run

    def run(
        self,
        partitions: Iterable[Partition],
        *,
        trigger: str,
        deadline: Deadline | None = None,
        hand_off: Callable[[list[Partition]], int] | None = None,
        settled: Callable[[Partition], None] | None = None,
        unsettled: Callable[[Partition], None] | None = None,
        fan_out: HourFanOut | None = None,
    ) -> CompactionSummary:
        """Compact ``partitions`` in order; when the ``deadline`` (its reserve kept) has expired,
        ``hand_off`` the rest (it returns the invocations made) and stop. After each partition
        that succeeded, ``settled(partition)``; its failure is reported like a failed partition.
        After each that failed, ``unsettled(partition)`` (leaves it for a later run to retry); its
        own failure is reported too. A partition that needs a build and that ``fan_out`` takes
        (by its raw bytes) is started there instead, and neither settled nor unsettled: its late
        markers stay until a later run finds it compacted."""
        started = time.monotonic()
        summary = CompactionSummary(trigger)
        todo = list(partitions)
        for index, partition in enumerate(todo):
            if deadline is not None and hand_off is not None and deadline.expired():
                rest = todo[index:]
                summary.handoff_invocations = hand_off(rest)
                summary.handed_off = [p.path for p in rest]
                break
            try:
                result = self.compact(partition, builds=None if fan_out is None else _builds_here(fan_out))
                if result.status == "deferred" and fan_out is not None:
                    fan_out.start(partition)
                    summary.handed_off.append(partition.path)
                    summary.fanned_out.append(partition.path)
                    continue
                summary.add(result)
                if settled is not None:
                    settled(partition)
            except (DeliveryError, UnreadableInputError) as exc:
                summary.failed.append({"partition": partition.path, "error": str(exc)[:500]})
                self._unsettle(partition, unsettled, summary)
        summary.seconds = time.monotonic() - started
        return summary

    @staticmethod
    def _unsettle(
        partition: Partition, unsettled: Callable[[Partition], None] | None, summary: CompactionSummary
    ) -> None:
        if unsettled is None:
            return
        try:
            unsettled(partition)
        except DeliveryError as exc:
            # The run raises anyway: Lambda retries it, then sends it to AsyncFailureQueue (alarmed).
            summary.failed.append({"partition": partition.path, "error": f"no retry marker: {exc}"[:500]})


def _builds_here(fan_out: HourFanOut) -> Callable[[int], bool]:
    return lambda raw_bytes: not fan_out.takes(raw_bytes)


class HourGeneration(Generation[list[ObjectInfo], PartitionResult]):
    """One hour of compacted/ as a generation: built from the hour's raw/ objects listed now."""

    def __init__(
        self, compactor: Compactor, partition: Partition, builds: Callable[[int], bool] | None = None
    ) -> None:
        self.compactor = compactor
        self.partition = partition
        self.publication = compactor.publication(partition)
        self.builds = builds
        self.raw_bytes = 0

    def plan(self, current: Manifest | None) -> list[ObjectInfo] | None:
        inputs = self.compactor.raw_inputs(self.partition)
        self.raw_bytes = sum(item.size for item in inputs)
        return inputs or None

    def may_build(self) -> bool:
        return self.builds is None or self.builds(self.raw_bytes)

    def is_current(self, plan: list[ObjectInfo], current: Manifest) -> bool:
        built = CompactionManifest.from_json(current.body)
        return built is not None and built.has_inputs(plan)

    def write(self, plan: list[ObjectInfo], uploads: OpenUploads) -> Written[PartitionResult]:
        return self.compactor.write_parts(self.partition, plan, uploads)
