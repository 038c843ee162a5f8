"""One snapshot day on one base: planned (its inputs listed now, its generation), written (the merge of
the base and the day's changes, as open parts) and published as one generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from changelake.clock import Clock, utc_now
from changelake.exceptions import RecordRejected, SnapshotInputError
from changelake.formats.layout import part_name
from changelake.integrations.s3 import ObjectInfo
from changelake.pieces import Piece
from changelake.publication import Generation, Manifest, OpenUploads, Written, publish
from changelake.snapshot.derived import DerivedDay
from changelake.snapshot.inputs import DayInputs
from changelake.snapshot.layout import Base, SnapshotLayout
from changelake.snapshot.lines import Entry
from changelake.snapshot.manifest import (
    REMOVED_FOLDER,
    DayCounts,
    DayManifest,
    FileRef,
    OutputPart,
    day_generation,
)
from changelake.snapshot.merge import (
    MergeCounts,
    OrderError,
    applied,
    latest_per_key,
    merge,
    removals_kept_from,
)
from changelake.storage.io import PartsWriter
from changelake.storage.limits import BuildLimits


@dataclass(slots=True)
class DayResult:
    """What bringing one day up to date did. ``status``: built, completed (rolled forward),
    unchanged, deferred (it needed a build and the run had no time left), split (it needed a build
    too large for this run: it is to be built in ``buckets``, ``changelake.snapshot.bucketed``), or
    moved (its base was replaced after this run read it: nothing was written)."""

    table: str
    day: date
    status: str
    manifest: DayManifest | None = None
    writes: int = 0
    etag: str | None = None  # of the day's manifest when this run last saw it current
    #: Its derived copies (``changelake.snapshot.derived``) by format name, once derived.
    derived: dict[str, DerivedDay] = field(default_factory=dict)
    buckets: int | None = None  # of a split day

    @property
    def name(self) -> str:
        return f"{self.table}/dt={self.day.isoformat()}"


#: Asked with a day's input bytes before it is built: how many buckets to build it in instead (None:
#: build it here). ``changelake.fan_out.FanOut.pieces_for``.
Split = Callable[[int], int | None]


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a day is built from: its raw/ objects listed after its manifest was read, and the
    generation they and the base give."""

    inputs: list[ObjectInfo]
    generation: str


class DayBuilder:
    """Builds and publishes one day of a table on a given base."""

    def __init__(
        self, layout: SnapshotLayout, inputs: DayInputs, limits: BuildLimits, clock: Clock = utc_now
    ) -> None:
        self.layout = layout
        self.inputs = inputs
        self.limits = limits
        self.clock = clock
        self.store = layout.store

    def refresh_day(
        self,
        table: str,
        day: date,
        base: Base,
        *,
        may_build: Callable[[], bool] = lambda: True,
        split: Split | None = None,
    ) -> DayResult:
        """Bring one day up to date on ``base`` (idempotent: an up-to-date day is not written).
        ``split``: asked before a build with the day's input bytes (its base's and its raw/ objects');
        a count of buckets leaves the day to be built in that many (``split``)."""
        generation = DayGeneration(self, table, day, base, may_build=may_build, split=split)
        outcome = publish(generation)
        if outcome.status == "empty":  # the base moved: nothing to publish on it
            return DayResult(table, day, "moved")
        if generation.buckets is not None:
            return DayResult(table, day, "split", buckets=generation.buckets)
        if outcome.status == "deferred" or outcome.manifest is None:
            return DayResult(table, day, "deferred")
        manifest = outcome.built or DayManifest.from_body(outcome.manifest.body)
        return DayResult(table, day, outcome.status, manifest, outcome.writes, outcome.manifest.etag)

    def plan_day(self, table: str, day: date, base: Base) -> DayPlan | None:
        """The day's inputs listed now and its generation, once its manifest was read; None if the
        base is no longer the one read (whatever replaced it may be newer than this day's manifest)."""
        if self.layout.base_moved(base):
            return None
        inputs = self.layout.raw_inputs(table, day)
        return DayPlan(inputs, day_generation(table, day, base.ref, inputs))

    def write_day(
        self,
        table: str,
        day: date,
        base: Base,
        plan: DayPlan,
        uploads: OpenUploads,
        *,
        bucket: Piece | None = None,
    ) -> Written[DayManifest]:
        """The day (its items and its removed keys) as open parts, and the manifest naming them; with
        ``bucket``, only that bucket's items (``changelake.snapshot.buckets``), in parts named with it."""
        started = time.monotonic()
        inputs, generation = plan.inputs, plan.generation
        folder = self.layout.day_folder(table, day)
        piece = bucket.name if bucket is not None else None
        writer, removals = writers = [
            self._writer(folder + subfolder, generation, piece) for subfolder in ("", REMOVED_FOLDER)
        ]
        for each in writers:
            uploads.on_abort(each.abort)
        merged = MergeCounts()
        with (
            self.inputs.sorted_changes(table, day, inputs, bucket) as (sorter, hours_compacted),
            self.inputs.sorted_rows(base.data(bucket)) as rows,
            self.inputs.sorted_rows(base.removed_keys(bucket)) as removed,
        ):
            winners = _Counted(latest_per_key(sorter.sorted_unique()))
            changes = applied(winners)
            try:
                kept_from = removals_kept_from(day)
                for line, removal in merge(rows, changes, merged, removed, removals_from=kept_from):
                    (removals if removal else writer).write(line)
            except OrderError as exc:
                raise SnapshotInputError(f"the base of {folder} ({base.ref.text}): {exc}") from exc
            except RecordRejected as exc:
                raise SnapshotInputError(f"the base of {folder} ({base.ref.text}): {exc.reason}") from exc
            parts = writer.close()
            removed_parts = removals.close()
        index = bucket.index if bucket is not None else None
        manifest = DayManifest(
            table=table,
            dt=day.isoformat(),
            generation=generation,
            base=base.ref,
            inputs=tuple(FileRef.of(item) for item in inputs),
            outputs=tuple(OutputPart.of(part, index) for part in parts),
            removed=tuple(OutputPart.of(part, index) for part in removed_parts),
            counts=DayCounts(
                items=merged.items,
                changes_read=sorter.rows_in,
                duplicates=sorter.duplicates,
                changes_applied=winners.count - merged.outdated,
                inserted=merged.inserted,
                updated=merged.updated,
                removed=merged.removed,
                kept=merged.kept,
                outdated=merged.outdated,
                removed_keys=merged.removed_keys,
                bytes_in=sum(item.size for item in inputs),
                bytes_out=sum(part.bytes for part in (*parts, *removed_parts)),
                uncompressed_bytes_out=sum(part.uncompressed_bytes for part in (*parts, *removed_parts)),
                spilled_runs=sorter.spilled_runs,
                hours_from_compacted=hours_compacted,
            ),
            built_at=self.clock().isoformat().replace("+00:00", "Z"),
            seconds=round(time.monotonic() - started, 3),
            buckets=bucket.count if bucket is not None else None,
        )
        return Written(manifest.body(), manifest)

    def _writer(self, folder: str, generation: str, piece: str | None) -> PartsWriter:
        return PartsWriter(
            self.store,
            lambda index: folder + part_name(generation, index, piece=piece),
            target_bytes=self.limits.target_part_bytes,
            metadata={"generation": generation},
        )


class _Counted:
    """An iterator of entries that counts what passed through it."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._entries = iter(entries)
        self.count = 0

    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        entry = next(self._entries)
        self.count += 1
        return entry


class DayGeneration(Generation[DayPlan, DayManifest]):
    """One snapshot day on one base as a generation."""

    def __init__(
        self,
        builder: DayBuilder,
        table: str,
        day: date,
        base: Base,
        *,
        may_build: Callable[[], bool] = lambda: True,
        split: Split | None = None,
    ) -> None:
        self.builder = builder
        self.table = table
        self.day = day
        self.base = base
        self._may_build = may_build
        self._split = split
        self._input_bytes = 0
        self.buckets: int | None = None  # set when ``split`` chose buckets instead of a build
        self.publication = builder.layout.day_publication(table, day)

    def plan(self, current: Manifest | None) -> DayPlan | None:
        plan = self.builder.plan_day(self.table, self.day, self.base)
        self._input_bytes = self.base.size + sum(item.size for item in plan.inputs) if plan else 0
        return plan

    def is_current(self, plan: DayPlan, current: Manifest) -> bool:
        manifest = DayManifest.from_body(current.body)
        return manifest is not None and manifest.generation == plan.generation

    def may_build(self) -> bool:
        if self._split is not None:
            self.buckets = self._split(self._input_bytes)
            if self.buckets is not None:
                return False
        return self._may_build()

    def write(self, plan: DayPlan, uploads: OpenUploads) -> Written[DayManifest]:
        return self.builder.write_day(self.table, self.day, self.base, plan, uploads)
