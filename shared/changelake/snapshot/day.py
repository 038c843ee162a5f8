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
from changelake.storage.io import PartsWriter, Prefetcher
from changelake.storage.limits import BuildLimits


@dataclass(slots=True)
class DayResult:
    """What bringing one day up to date did. ``status``: built, completed (rolled forward),
    unchanged, deferred (it needed a build and the run had no time left), or moved (its base was
    replaced after this run read it: nothing was written)."""

    table: str
    day: date
    status: str
    manifest: DayManifest | None = None
    writes: int = 0
    etag: str | None = None  # of the day's manifest when this run last saw it current
    #: Its derived copies (``changelake.snapshot.derived``) by format name, once derived.
    derived: dict[str, DerivedDay] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.table}/dt={self.day.isoformat()}"


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
        self, table: str, day: date, base: Base, *, may_build: Callable[[], bool] = lambda: True
    ) -> DayResult:
        """Bring one day up to date on ``base`` (idempotent: an up-to-date day is not written)."""
        outcome = publish(_DayGeneration(self, table, day, base, may_build))
        if outcome.status == "empty":  # the base moved: nothing to publish on it
            return DayResult(table, day, "moved")
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
        self, table: str, day: date, base: Base, plan: DayPlan, uploads: OpenUploads
    ) -> Written[DayManifest]:
        """The day (its items and its removed keys) as open parts, and the manifest naming them."""
        started = time.monotonic()
        inputs, generation = plan.inputs, plan.generation
        folder = self.layout.day_folder(table, day)
        writer, removals = writers = [
            self._writer(folder + subfolder, generation) for subfolder in ("", REMOVED_FOLDER)
        ]
        for each in writers:
            uploads.on_abort(each.abort)
        merged = MergeCounts()
        with self.inputs.sorted_changes(table, day, inputs) as (sorter, hours_compacted):
            winners = _Counted(latest_per_key(sorter.sorted_unique()))
            changes = applied(winners)
            with (
                Prefetcher(self.store, base.files) as items,
                Prefetcher(self.store, base.removed) as gone,
            ):
                rows = self.inputs.base_rows(base.files, items)
                removed = self.inputs.base_rows(base.removed, gone) if base.removed else ()
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
        manifest = DayManifest(
            table=table,
            dt=day.isoformat(),
            generation=generation,
            base=base.ref,
            inputs=tuple(FileRef.of(item) for item in inputs),
            outputs=tuple(OutputPart.of(part) for part in parts),
            removed=tuple(OutputPart.of(part) for part in removed_parts),
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
        )
        return Written(manifest.body(), manifest)

    def _writer(self, folder: str, generation: str) -> PartsWriter:
        return PartsWriter(
            self.store,
            lambda index: folder + part_name(generation, index),
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


class _DayGeneration(Generation[DayPlan, DayManifest]):
    """One snapshot day on one base as a generation."""

    def __init__(
        self, builder: DayBuilder, table: str, day: date, base: Base, may_build: Callable[[], bool]
    ) -> None:
        self.builder = builder
        self.table = table
        self.day = day
        self.base = base
        self._may_build = may_build
        self.publication = builder.layout.day_publication(table, day)

    def plan(self, current: Manifest | None) -> DayPlan | None:
        return self.builder.plan_day(self.table, self.day, self.base)

    def is_current(self, plan: DayPlan, current: Manifest) -> bool:
        manifest = DayManifest.from_body(current.body)
        return manifest is not None and manifest.generation == plan.generation

    def may_build(self) -> bool:
        return self._may_build()

    def write(self, plan: DayPlan, uploads: OpenUploads) -> Written[DayManifest]:
        return self.builder.write_day(self.table, self.day, self.base, plan, uploads)
