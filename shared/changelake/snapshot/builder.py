"""Building the snapshot of a table, day by day: the table at the end of each UTC day.

The snapshot of day D is the snapshot of D-1 (or the bootstrap export for the table's first day,
or nothing) with the latest change of each item on day D applied where it is later than the item's
state on D-1 (``changelake.snapshot.merge``). Layout of one day (``<snapshot>/<table>/dt=YYYY-MM-DD/``)::

    part-<generation>-00000.jsonl.gz            gzip JSON Lines, one line per item, sorted by key
    part-<generation>-00001.jsonl.gz            ... only when the previous part passed the target size
    _removed/part-<generation>-00000.jsonl.gz   the removed keys (not data), sorted by key
    _manifest.json                              the commit record: base, raw inputs, outputs, counts

Staleness: ``<generation>`` digests the day's raw/ objects (keys, ETags, sizes) and the base's
generation, so a day is up to date exactly when its manifest's generation is what its inputs give
now. A late raw/ file changes its day's generation, and so, through the base, every later day's.
A day whose generation did not change is not rewritten (not a single write).

Bounded memory: the day's changes go through the external sorter of compaction (``DedupeSorter``:
sorted runs spilled to ``spill_dir`` past the memory budget, merged by ``heapq.merge``) keyed by
item, and the previous snapshot and its removed keys are streamed in key order, a chunk at a time,
beside them. Neither the table nor the day is ever held whole.

Retirement: days before a table's bootstrap day are not part of its history (the export holds
their changes); every chain of a bootstrapped table retires any it finds, their derived days first
(``Publication.retire``: the manifest, then the files), so a run that dies part way is completed
by the next.

Publication is compaction's, ``changelake.publication.Publication``, one per day folder: parts are
written as multipart uploads left open (invisible), the manifest, read before the inputs, is
replaced with a conditional PUT, then the uploads are completed and superseded parts deleted by a
guarded promotion. A run that dies before the commit leaves the day as it was; one that dies after
it is rolled forward by the next run; of two concurrent runs one commit wins and the other looks
again (usually finding the day done). A base is read from exactly the files its manifest names,
never by listing the folder, and a day is not built on a base whose manifest changed since it was
read (the chain is checked again from there).

Input: an hour is read from compacted/ when its compaction manifest lists exactly the hour's raw/
objects (the same changes, fewer objects), else from raw/; the generation is the raw objects'.

Delivery guarantee: each item of the day exactly once in the day's folder, once the day is
published; a day whose raw/ holds a line that is not a change of that table and day is not
published (``SnapshotInputError`` names the file and line), and neither is any later day.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from changelake.clock import Clock, utc_now
from changelake.compaction.manifest import inputs_document
from changelake.exceptions import (
    DeliveryError,
    ObjectNotFoundError,
    RecordRejected,
    SnapshotInputError,
    UnreadableInputError,
)
from changelake.formats.layout import (
    bootstrap_prefix,
    day_of_folder,
    day_prefix,
    lake_tables,
    parse_partition_prefix,
    part_name,
    table_prefix,
)
from changelake.integrations.s3 import ObjectInfo, S3Store
from changelake.publication import Generation, Manifest, OpenUploads, Publication, Written, publish
from changelake.snapshot.derived import DerivedDay, DerivedFormat
from changelake.snapshot.lines import Entry, base_key, change_entry
from changelake.snapshot.manifest import (
    EMPTY_BASE,
    REMOVED_FILES,
    REMOVED_FOLDER,
    BaseRef,
    BootstrapManifest,
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
from changelake.storage.io import PartsWriter, Prefetcher, split_lines
from changelake.storage.sort import DedupeSorter

_RAW_FILE = re.compile(r"hour=(?:[01][0-9]|2[0-3])/[^/]+\.jsonl\.gz\Z")


@dataclass(frozen=True, slots=True)
class Base:
    """What a day builds on: its reference (for the generation), its data files in key order, the
    manifest it was read from with that manifest's ETag (None for the empty base), and its removed
    keys' files in key order."""

    ref: BaseRef
    files: tuple[str, ...] = ()
    manifest_key: str | None = None
    etag: str | None = None
    removed: tuple[str, ...] = ()


EMPTY = Base(EMPTY_BASE)


@dataclass(frozen=True, slots=True)
class Origin:
    """A table's first snapshot day and what that day builds on. ``moved``: its bootstrap was
    replaced by a newer one while this run read it (the chain is checked again from its day)."""

    day: date
    base: Base
    moved: bool = False


@dataclass(frozen=True, slots=True)
class Recheck:
    """The chain must be checked again: from ``day``, whose snapshot a concurrent run replaced after
    this run read it (building on it could put an outdated day back), or from its origin (None: a
    base not checked in this run has no readable, complete manifest, so it is rebuilt)."""

    day: date | None


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


@dataclass(slots=True)
class ChainResult:
    """What bringing a table up to a target day did, day by day, oldest first."""

    table: str
    target: date
    days: list[DayResult] = field(default_factory=list)
    origin: date | None = None
    retired: int = 0  # days before the origin (a later bootstrap) taken away
    failed: str | None = None  # the error of the first day that failed (later days were not built)
    stopped: bool = False  # out of time before the target
    #: Days a derived format could not copy (their JSON day is published; later days go on).
    derived_failed: list[tuple[date, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed is None and not self.stopped and not self.derived_failed

    @property
    def target_manifest(self) -> DayManifest | None:
        last = self.days[-1] if self.days else None
        return last.manifest if last is not None and last.day == self.target else None


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a day is built from: its raw/ objects listed after its manifest was read, and the
    generation they and the base give."""

    inputs: list[ObjectInfo]
    generation: str


#: Times a chain is checked again because concurrent runs kept replacing its days under this one.
MAX_CHAIN_ATTEMPTS = 4


def day_range(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


class SnapshotBuilder:
    """Brings the snapshot/ layer of a table up to date with raw/, day by day (see the module)."""

    def __init__(
        self,
        store: S3Store,
        *,
        raw_prefix: str = "raw",
        compacted_prefix: str = "compacted",
        snapshot_prefix: str = "snapshot",
        target_part_bytes: int = 128 * 1024 * 1024,
        memory_budget_bytes: int = 128 * 1024 * 1024,
        spill_dir: Path = Path("/tmp"),  # noqa: S108 - Lambda's scratch space
        derived: Sequence[DerivedFormat] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.raw_prefix = raw_prefix
        self.compacted_prefix = compacted_prefix
        self.snapshot_prefix = snapshot_prefix
        self.target_part_bytes = target_part_bytes
        self.memory_budget_bytes = memory_budget_bytes
        self.spill_dir = spill_dir
        self.derived = tuple(derived)
        self.clock = clock

    # ------------------------------------------------------------------ layout and state

    def day_folder(self, table: str, day: date) -> str:
        return day_prefix(self.snapshot_prefix, table, day)

    def bootstrap_folder(self, table: str) -> str:
        return bootstrap_prefix(self.snapshot_prefix, table)

    def tables(self) -> list[str]:
        """Every table with a folder in raw/ or snapshot/, sorted."""
        return lake_tables(self.store, [self.raw_prefix, self.snapshot_prefix])

    def _days(self, layer: str, table: str) -> list[date]:
        prefix = table_prefix(layer, table)
        days = (day_of_folder(folder[len(prefix) :]) for folder in self.store.list_folders(prefix))
        return sorted(day for day in days if day is not None)

    def raw_days(self, table: str) -> list[date]:
        return self._days(self.raw_prefix, table)

    def built_days(self, table: str) -> list[date]:
        return self._days(self.snapshot_prefix, table)

    def raw_inputs(self, table: str, day: date) -> list[ObjectInfo]:
        """The raw/ objects of ``table`` on ``day``: ``hour=HH/<name>.jsonl.gz``, in key order."""
        prefix = day_prefix(self.raw_prefix, table, day)
        return [item for item in self.store.list_objects(prefix) if _RAW_FILE.match(item.key[len(prefix) :])]

    def day_publication(self, table: str, day: date) -> Publication:
        return Publication(self.store, self.day_folder(table, day), side=REMOVED_FILES)

    def bootstrap_publication(self, table: str) -> Publication:
        return Publication(self.store, self.bootstrap_folder(table))

    def read_day(self, table: str, day: date) -> tuple[DayManifest | None, Manifest | None]:
        """The day's manifest, typed (None if missing or not one) and as published (None if missing)."""
        current = self.day_publication(table, day).read()
        return (DayManifest.from_body(current.body) if current is not None else None), current

    def read_bootstrap(self, table: str) -> tuple[BootstrapManifest | None, Manifest | None]:
        current = self.bootstrap_publication(table).read()
        return (BootstrapManifest.from_body(current.body) if current is not None else None), current

    def origin(self, table: str) -> Origin | None:
        """The first day of ``table``'s history: its bootstrap export's day, else its first raw/ day."""
        bootstrap, current = self.read_bootstrap(table)
        if bootstrap is not None and current is not None and bootstrap.table == table:
            publication = self.bootstrap_publication(table)
            promotion = publication.promote(current)
            moved = promotion.status == "superseded"  # a newer bootstrap meanwhile: look again
            if promotion.status == "lost":
                raise SnapshotInputError(
                    f"s3://{self.store.bucket}/{publication.folder}: the bootstrap's files are lost (its "
                    "uploads expired before they were completed); bootstrap the table again"
                )
            files = tuple(output.key for output in bootstrap.outputs)
            base = Base(bootstrap.as_base(), files, publication.manifest_key, current.etag)
            return Origin(bootstrap.day, base, moved)
        days = self.raw_days(table)
        return Origin(days[0], EMPTY) if days else None

    # ------------------------------------------------------------------ the chain of days

    def bring_up_to_date(
        self,
        table: str,
        target: date,
        *,
        check_from: date | None = None,
        may_build: Callable[[], bool] = lambda: True,
    ) -> ChainResult:
        """Make every day of ``table`` from its origin to ``target`` exist and be up to date.

        Days from ``check_from`` on (all days if None) are checked against their inputs; earlier
        days are trusted when they exist (late data in them is announced by late markers, which
        move ``check_from``). A missing day is built wherever it is, and every day after a built
        one is checked. ``may_build()`` is asked before each build; when it says no, the chain
        stops (``stopped``). A day that fails stops the chain (``failed``): later days build on it.
        """
        result = ChainResult(table, target)
        check = check_from
        for _ in range(MAX_CHAIN_ATTEMPTS):
            recheck = self._chain(result, check, may_build)
            if recheck is None:
                return result
            check = _recheck_from(check, recheck)
        result.failed = f"{table}: concurrent runs kept replacing its days; left to the next run"
        return result

    def _chain(
        self, result: ChainResult, check_from: date | None, may_build: Callable[[], bool]
    ) -> Recheck | None:
        """Bring the days up to date, oldest first; a ``Recheck`` when a base moved or was lost."""
        start = self._start(result)
        if isinstance(start, Recheck):
            return start
        if start is None or result.target < start[0].day:
            return None
        origin, built = start
        result.origin = origin.day
        checking = False  # once set (the window starts, a day is missing or rebuilt), every later day
        previous: DayResult | None = None
        for day in day_range(origin.day, result.target):
            checking = checking or check_from is None or day >= check_from or day not in built
            # The origin day is always checked: a new bootstrap changes its base.
            if not checking and day != origin.day:
                previous = None
                continue
            outcome = self._check_day(result, origin, day, previous, may_build)
            if isinstance(outcome, Recheck) or outcome is None:
                return outcome
            checking = checking or outcome.status == "built"
            previous = outcome
        return None

    def _check_day(
        self,
        result: ChainResult,
        origin: Origin,
        day: date,
        previous: DayResult | None,
        may_build: Callable[[], bool],
    ) -> DayResult | Recheck | None:
        """Bring ``day`` up to date on the day before it (``previous``, as this run left it, or read)
        and derive its copies; None when the chain stops there (``failed`` or ``stopped`` set)."""
        table = result.table
        try:
            before = day - timedelta(days=1)
            base = origin.base if day == origin.day else self.base_of(table, before, previous)
            if isinstance(base, Recheck):
                return base
            outcome = self.refresh_day(table, day, base, may_build=may_build)
        except (UnreadableInputError, DeliveryError) as exc:
            result.failed = f"{table}/dt={day.isoformat()}: {exc}"
            return None
        if outcome.status == "moved":
            return Recheck(day - timedelta(days=1))
        derived = self._derive(result, outcome, may_build)
        _record(result, outcome)
        # Out of time before the day's build, or before its derived copies: the hand-off does them.
        result.stopped = not derived or outcome.status == "deferred"
        return None if result.stopped else outcome

    def _start(self, result: ChainResult) -> tuple[Origin, set[date]] | Recheck | None:
        """The table's origin and its snapshot days as listed, once the days before a bootstrap's are
        retired; None for a table without history, or (``failed`` set) one that cannot be read."""
        table = result.table
        try:
            origin = self.origin(table)
            if origin is None:
                return None
            if origin.moved:
                return Recheck(origin.day)
            built = set(self.built_days(table))
            if origin.base.ref.kind == "bootstrap":
                result.retired += self.retire_before(table, origin.day, built)
        except (UnreadableInputError, DeliveryError) as exc:
            result.failed = f"{table}: {exc}"
            return None
        return origin, built

    def _derive(self, result: ChainResult, outcome: DayResult, may_build: Callable[[], bool]) -> bool:
        """The derived copies of a day this run checked (``changelake.snapshot.derived``); False when
        ``may_build`` says there is no time left for the next one (it reads the whole day again and
        writes it: a build of its own). A failure is the format's alone: the JSON day stays
        published, later days are built, and the run reports it in ``derived_failed`` and fails."""
        if outcome.manifest is None:
            return True
        failures = [failure for failure in result.derived_failed if failure[0] != outcome.day]
        for index, derived in enumerate(self.derived):
            if not may_build():
                if index:  # the copies tried so far replace the day's earlier failures
                    result.derived_failed = failures
                return False
            try:
                copy = derived.refresh(outcome.manifest)
            # Any failure, DuckDB's own errors and a full /tmp included, not only ours: the JSON layer
            # of this table and of every later table must not wait on an optional derived copy.
            # Nothing is swallowed: the failure is in the summary, and the run raises at its end.
            except Exception as exc:  # noqa: BLE001
                ours = isinstance(exc, (UnreadableInputError, DeliveryError))  # they name the object already
                detail = str(exc) if ours else f"{type(exc).__name__}: {exc}"
                failures.append((outcome.day, f"{outcome.name} ({derived.name}): {detail}"))
                continue
            if copy is not None:
                outcome.derived[derived.name] = copy
        result.derived_failed = failures
        return True

    def retire_before(self, table: str, first: date, built: Iterable[date] | None = None) -> int:
        """Retire every snapshot day of ``table`` before ``first`` (its bootstrap day), and their
        derived days; how many snapshot days were retired. ``built``: the table's snapshot days as
        listed (listed here if None). The derived days go first and are listed on their own, so a run
        that dies part way, or a run of an older origin that published one meanwhile, leaves nothing
        the next call does not find."""
        for derived in self.derived:
            for day in self._days(derived.prefix, table):
                if day < first:
                    derived.publication(table, day).retire()
        days = sorted(day for day in (self.built_days(table) if built is None else built) if day < first)
        return sum(self.day_publication(table, day).retire() for day in days)

    def base_of(self, table: str, day: date, previous: DayResult | None = None) -> Base | Recheck:
        """The snapshot of ``day`` as a base: as this run left it (``previous``), or read (and
        rolled forward); a ``Recheck`` when it cannot be built on as it is."""
        publication = self.day_publication(table, day)
        manifest, etag = (previous.manifest, previous.etag) if previous is not None else (None, None)
        if manifest is None:
            manifest, current = self.read_day(table, day)
            if manifest is None or current is None:
                return Recheck(None)
            promotion = publication.promote(current)
            if promotion.status == "superseded":
                return Recheck(day)
            if promotion.status == "lost":
                return Recheck(None)
            etag = current.etag
        files = tuple(output.key for output in manifest.outputs)
        removed = tuple(output.key for output in manifest.removed)
        return Base(manifest.as_base(), files, publication.manifest_key, etag, removed)

    def _base_moved(self, base: Base) -> bool:
        """Whether the base's manifest is no longer the one it was read from."""
        return base.manifest_key is not None and _etag(self.store, base.manifest_key) != base.etag

    # ------------------------------------------------------------------ one day

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
        if self._base_moved(base):
            return None
        inputs = self.raw_inputs(table, day)
        return DayPlan(inputs, day_generation(table, day, base.ref, inputs))

    def write_day(
        self, table: str, day: date, base: Base, plan: DayPlan, uploads: OpenUploads
    ) -> Written[DayManifest]:
        """The day (its items and its removed keys) as open parts, and the manifest naming them."""
        started = time.monotonic()
        inputs, generation = plan.inputs, plan.generation
        folder = self.day_folder(table, day)
        writer, removals = writers = [
            self._writer(folder + subfolder, generation) for subfolder in ("", REMOVED_FOLDER)
        ]
        for each in writers:
            uploads.on_abort(each.abort)
        merged = MergeCounts()
        with self._sorted_changes(table, day, inputs) as (sorter, hours_compacted):
            winners = _Counted(latest_per_key(sorter.sorted_unique()))
            changes = applied(winners)
            with (
                Prefetcher(self.store, base.files) as items,
                Prefetcher(self.store, base.removed) as gone,
            ):
                rows = self._base_rows(base.files, items)
                removed = self._base_rows(base.removed, gone) if base.removed else ()
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
            target_bytes=self.target_part_bytes,
            metadata={"generation": generation},
        )

    @contextmanager
    def _sorted_changes(
        self, table: str, day: date, inputs: list[ObjectInfo]
    ) -> Iterator[tuple[DedupeSorter, int]]:
        """A sorter holding the day's changes, and how many hours were read from compacted/.

        An hour is read from its compacted/ parts when its compaction manifest was built from exactly
        the hour's raw/ objects listed now (the same changes, duplicates removed, in fewer and larger
        objects); otherwise, and if a compacted part is gone meanwhile (a concurrent compaction of a
        late file replaced it), from raw/. The day's generation is the raw objects' either way.
        """
        raw_keys = [item.key for item in inputs]
        keys, hours = self._sources(inputs)
        for attempt in (keys, raw_keys) if hours else (raw_keys,):
            sorter = DedupeSorter(self.spill_dir, self.memory_budget_bytes)
            try:
                self._read_changes(table, day, attempt, sorter)
            except ObjectNotFoundError:
                sorter.close()
                if attempt is raw_keys:
                    raise
                continue
            except BaseException:
                sorter.close()
                raise
            with sorter:
                yield sorter, (hours if attempt is keys else 0)
            return

    def _sources(self, inputs: list[ObjectInfo]) -> tuple[list[str], int]:
        """The objects to read the day's changes from, hour by hour, and the hours taken from compacted/."""
        by_hour: dict[str, list[ObjectInfo]] = {}
        for item in inputs:
            by_hour.setdefault(item.key.rsplit("/", 1)[0] + "/", []).append(item)
        keys: list[str] = []
        hours = 0
        for folder, raw in by_hour.items():
            hour = parse_partition_prefix(self.raw_prefix, folder)
            compacted = Publication(self.store, hour.prefix(self.compacted_prefix)).read()
            current = compacted is not None and compacted.body.get("inputs") == inputs_document(raw)
            if compacted is not None and compacted.outputs is not None and current:
                keys += [output.key for output in compacted.outputs]
                hours += 1
            else:
                keys += [item.key for item in raw]
        return keys, hours

    def _read_changes(self, table: str, day: date, keys: list[str], sorter: DedupeSorter) -> None:
        """Add every change line of the objects ``keys`` to ``sorter``; a bad line names its file and line."""
        day_text = day.isoformat()
        with Prefetcher(self.store, keys) as prefetcher:
            for key, chunks in zip(keys, prefetcher.chunks(), strict=True):
                resource = f"s3://{self.store.bucket}/{key}"
                for number, line in enumerate(split_lines(chunks), start=1):
                    try:
                        sorter.add(change_entry(line, table=table, day=day_text))
                    except RecordRejected as exc:
                        raise SnapshotInputError(f"{resource} line {number}: {exc.reason}") from exc

    def _base_rows(self, files: tuple[str, ...], prefetcher: Prefetcher) -> Iterator[tuple[str, bytes]]:
        """(key, line) of every line of the base's files, in order."""
        for key, chunks in zip(files, prefetcher.chunks(), strict=True):
            for number, line in enumerate(split_lines(chunks), start=1):
                item_key = base_key(line)
                if item_key is None:
                    raise SnapshotInputError(
                        f"s3://{self.store.bucket}/{key} line {number}: not a snapshot line"
                    )
                yield item_key, line


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


def _recheck_from(check: date | None, recheck: Recheck) -> date | None:
    """The day a chain is checked from again: every day when a base was lost (so it is rebuilt),
    else from the moved day on, or from where it was checked already if that is earlier."""
    if recheck.day is None:
        return None
    return recheck.day if check is None else min(check, recheck.day)


def _record(result: ChainResult, outcome: DayResult) -> None:
    result.days = [day for day in result.days if day.day != outcome.day] + [outcome]


def _etag(store: S3Store, key: str) -> str | None:
    try:
        return store.head(key).etag
    except ObjectNotFoundError:
        return None


class _DayGeneration(Generation[DayPlan, DayManifest]):
    """One snapshot day on one base as a generation."""

    def __init__(
        self, builder: SnapshotBuilder, table: str, day: date, base: Base, may_build: Callable[[], bool]
    ) -> None:
        self.builder = builder
        self.table = table
        self.day = day
        self.base = base
        self._may_build = may_build
        self.publication = builder.day_publication(table, day)

    def plan(self, current: Manifest | None) -> DayPlan | None:
        return self.builder.plan_day(self.table, self.day, self.base)

    def is_current(self, plan: DayPlan, current: Manifest) -> bool:
        manifest = DayManifest.from_body(current.body)
        return manifest is not None and manifest.generation == plan.generation

    def may_build(self) -> bool:
        return self._may_build()

    def write(self, plan: DayPlan, uploads: OpenUploads) -> Written[DayManifest]:
        return self.builder.write_day(self.table, self.day, self.base, plan, uploads)
