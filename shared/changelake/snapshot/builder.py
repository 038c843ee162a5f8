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

Bounded memory: the day's changes go through the external sorter (``DedupeSorter``: sorted runs
spilled to ``limits.spill_dir`` past ``limits.memory_budget_bytes``, merged by ``heapq.merge``) keyed by
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

The code, by job: ``layout`` (the folders, the days a layer holds, a table's origin), ``inputs`` (the
day's changes and its base's lines), ``day`` (one day on one base: planned, written, published) and
``chain`` (the days of a table in order). ``SnapshotBuilder`` puts them together for the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from changelake.clock import Clock, utc_now
from changelake.integrations.s3 import S3Store
from changelake.pieces import Piece
from changelake.publication import OpenUploads, Written
from changelake.snapshot.bucketed import BucketedDays, BucketResult
from changelake.snapshot.chain import MAX_CHAIN_ATTEMPTS, ChainResult, DayChain
from changelake.snapshot.day import DayBuilder, DayPlan, DayResult, Split
from changelake.snapshot.derived import DerivedFormat
from changelake.snapshot.inputs import DayInputs
from changelake.snapshot.layout import EMPTY, Base, Origin, Recheck, SnapshotLayout, day_range
from changelake.snapshot.manifest import DayManifest
from changelake.storage.limits import BuildLimits

__all__ = [
    "EMPTY",
    "MAX_CHAIN_ATTEMPTS",
    "Base",
    "BucketResult",
    "ChainResult",
    "DayPlan",
    "DayResult",
    "Origin",
    "Recheck",
    "SnapshotBuilder",
    "Split",
    "day_range",
]


class SnapshotBuilder(SnapshotLayout):
    """Brings the snapshot/ layer of a table up to date with raw/, day by day (see the module)."""

    def __init__(
        self,
        store: S3Store,
        *,
        raw_prefix: str = "raw",
        compacted_prefix: str = "compacted",
        snapshot_prefix: str = "snapshot",
        limits: BuildLimits = BuildLimits(),  # noqa: B008 - frozen, never changed
        derived: Sequence[DerivedFormat] = (),
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            store, raw_prefix=raw_prefix, compacted_prefix=compacted_prefix, snapshot_prefix=snapshot_prefix
        )
        self.limits = limits
        self.derived = tuple(derived)
        self.clock = clock
        self.inputs = DayInputs(self, limits)
        self.days = DayBuilder(self, self.inputs, limits, clock)
        self.chain = DayChain(self, self.days, self.derived)
        self.bucketed = BucketedDays(self, self.days, self.chain)

    def bring_up_to_date(
        self,
        table: str,
        target: date,
        *,
        check_from: date | None = None,
        may_build: Callable[[], bool] = lambda: True,
        split: Split | None = None,
    ) -> ChainResult:
        """``DayChain.bring_up_to_date``: every day of ``table`` from its origin to ``target``."""
        return self.chain.bring_up_to_date(
            table, target, check_from=check_from, may_build=may_build, split=split
        )

    def retire_before(self, table: str, first: date, built: Iterable[date] | None = None) -> int:
        return self.chain.retire_before(table, first, built)

    def base_of(self, table: str, day: date, previous: DayResult | None = None) -> Base | Recheck:
        return self.chain.base_of(table, day, previous)

    def refresh_day(
        self, table: str, day: date, base: Base, *, may_build: Callable[[], bool] = lambda: True
    ) -> DayResult:
        return self.days.refresh_day(table, day, base, may_build=may_build)

    def plan_day(self, table: str, day: date, base: Base) -> DayPlan | None:
        return self.days.plan_day(table, day, base)

    def write_day(
        self, table: str, day: date, base: Base, plan: DayPlan, uploads: OpenUploads
    ) -> Written[DayManifest]:
        return self.days.write_day(table, day, base, plan, uploads)

    def build_bucket(self, table: str, day: date, bucket: Piece) -> BucketResult:
        """``BucketedDays.build_bucket``: one bucket of ``day``, recorded, not published."""
        return self.bucketed.build_bucket(table, day, bucket)

    def commit_buckets(self, table: str, day: date, buckets: int) -> ChainResult:
        """``BucketedDays.commit``: ``day`` published from its recorded buckets."""
        return self.bucketed.commit(table, day, buckets)
