"""An hour of compacted/ built in slices by parallel invocations and published by one commit.

The fan-out state machine (``changelake.fan_out``) runs, for a busy hour, N slice workers and then
the commit (``changelake.pieces`` holds the protocol; ``changelake.compaction.slices`` the ranges):

* A slice worker (``build``) lists the hour's raw/ objects, takes the generation from them exactly
  as one invocation does (``generation_of``), reads every object, keeps the lines of its slice,
  and writes them with the same order and deduplication (``Compactor.write_parts``) as parts named
  with the slice (``part-<generation>-KKKK-of-NNNN-<index>.jsonl.gz``), left open; then it records
  them (``PieceRecords.put``). It publishes nothing. An hour already current for its inputs is
  left alone (nothing written, nothing recorded: the commit finds it current too).
* The commit (``commit``) is a ``publication.Generation``: the manifest is read, the inputs listed
  after it and the generation computed from them; if the manifest already is that generation it is
  promoted (a commit that died after its manifest commit is rolled forward here); else ``write``
  collects the N records of that generation (``CommitRefusedError`` naming what is missing or
  stale: nothing changed) and commits one manifest naming the slices' parts in slice order, with
  the slices' counts summed (``bytes_in``: the hour's raw bytes, which every slice reads), then
  promotes it (completes the parts). Once the hour is published its records are cleared.

Delivery guarantee: a slice worker publishes nothing (its uploads stay open and invisible until a
commit names them); the commit is exactly-once per hour like a single invocation (the same manifest
protocol): two overlapping commits leave one generation, and a stale or missing slice changes
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from changelake.compaction.compactor import Compactor, HourGeneration, PartitionResult
from changelake.compaction.manifest import CompactionManifest, Counts, generation_of
from changelake.compaction.slices import Slice
from changelake.formats.layout import Partition
from changelake.integrations.base import ObjectInfo
from changelake.pieces import Piece, PieceRecord, PieceRecords
from changelake.publication import OpenUploads, Output, Written, publish
from changelake.storage.parts import OpenPart


class SlicedHours:
    """Slice workers and commits of hours of compacted/ (see the module)."""

    def __init__(self, compactor: Compactor) -> None:
        self.compactor = compactor

    def records(self, partition: Partition) -> PieceRecords:
        return PieceRecords(self.compactor.store, partition.prefix(self.compactor.compacted_prefix))

    def build(self, partition: Partition, piece: Piece) -> PartitionResult:
        """Write slice ``piece`` of the hour as open parts and record them; publishes nothing.
        ``status``: built, unchanged (the hour is current already) or empty (no raw/ objects)."""
        compactor = self.compactor
        inputs = compactor.raw_inputs(partition)
        if not inputs:
            return PartitionResult(partition, "empty")
        generation = generation_of(inputs)
        current = compactor.publication(partition).read()
        if current is not None and HourGeneration(compactor, partition).is_current(inputs, current):
            return PartitionResult(partition, "unchanged", generation=generation)
        uploads = OpenUploads()  # this slice's own: aborted if it fails before its record is stored
        try:
            built = compactor.write_parts(partition, inputs, uploads, share=Slice.of(piece)).built
            self.records(partition).put(
                PieceRecord(
                    piece,
                    generation,
                    tuple(Output(part.key, part.upload_id, part.part_etags) for part in built.parts),
                    counts=built.counts.document(),
                    detail={"output_counts": [_part_counts(part) for part in built.parts]},
                )
            )
        except BaseException:
            uploads.abort()
            raise
        built.status = "built"
        built.writes = len(built.parts) + 1
        return built

    def commit(self, partition: Partition, count: int) -> PartitionResult:
        """Publish the hour from its ``count`` slices (idempotent); ``CommitRefusedError`` if one is
        missing or stale. The slices' records are cleared once the hour is published."""
        outcome = publish(_SlicedHourGeneration(self, partition, count))
        if outcome.status in ("built", "completed", "unchanged"):
            self.records(partition).clear()
        if outcome.built is not None:
            outcome.built.writes = outcome.writes
            return outcome.built
        generation = generation_of(outcome.plan) if outcome.plan else ""
        return PartitionResult(partition, outcome.status, generation=generation, writes=outcome.writes)


def _part_counts(part: OpenPart) -> dict[str, int]:
    return {"rows": part.rows, "bytes": part.bytes, "uncompressed_bytes": part.uncompressed_bytes}


def _open_part(output: Output, counts: Mapping[str, int]) -> OpenPart:
    return OpenPart(
        output.key,
        output.upload_id,
        output.part_etags,
        counts["rows"],
        counts["bytes"],
        counts["uncompressed_bytes"],
    )


class _SlicedHourGeneration(HourGeneration):
    """The commit of an hour built in ``count`` slices: the same plan and currency as one
    invocation's; ``write`` writes nothing but collects the slices' records."""

    def __init__(self, hours: SlicedHours, partition: Partition, count: int) -> None:
        super().__init__(hours.compactor, partition)
        self.hours = hours
        self.count = count

    def write(self, plan: list[ObjectInfo], uploads: OpenUploads) -> Written[PartitionResult]:
        # The slices' uploads are not registered with ``uploads``: a commit that loses a race must
        # not abort them (the winner's manifest may name the very same uploads).
        started = time.monotonic()
        generation = generation_of(plan)
        records = self.hours.records(self.partition).collect(generation, self.count)
        parts = tuple(
            _open_part(output, counts)
            for record in records
            for output, counts in zip(record.outputs, _output_counts(record), strict=True)
        )
        counts = sum((Counts(**record.counts) for record in records), Counts())
        counts = replace(counts, bytes_in=sum(item.size for item in plan))  # every slice read them all
        manifest = CompactionManifest(
            self.partition,
            generation,
            compacted_at=self.compactor.clock(),
            seconds=round(time.monotonic() - started, 3),
            inputs=tuple(plan),
            outputs=parts,
            counts=counts,
        )
        built = PartitionResult(
            self.partition, "compacted", generation=generation, counts=counts, parts=parts
        )
        return Written(manifest.to_json() | {"pieces": self.count}, built)


def _output_counts(record: PieceRecord) -> list[dict[str, int]]:
    """The rows and bytes of each of a slice's parts, in output order (its record's detail)."""
    return [
        {str(name): int(value) for name, value in counts.items()} for counts in record.detail["output_counts"]
    ]
