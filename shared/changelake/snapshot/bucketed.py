"""A snapshot day built in buckets: the bucket workers and the commit (``changelake.pieces``).

Bucket K of N of day D (``build_bucket``) builds on day D-1 *as published*: D-1 must exist and be
current for its inputs (its raw/ objects listed now, and the day it was built on), else it refuses
(``BaseNotCurrentError``: the days are planned again, in order). It reads D-1's files of bucket K
only when D-1 was built in the same N buckets, else all of D-1's files (merged by key when D-1 was
built in buckets) keeping bucket K's keys, and day D's changes of bucket K's keys. It computes the
day's generation exactly as a single invocation does (the digest of D's raw/ objects and D-1's
generation), writes its parts as open uploads named with the bucket, and records them
(``PieceRecords.put``): nothing is published. A day already current is left alone.

The commit (``commit``) is a ``publication.Generation``: after the day's manifest was read, it
plans the generation from the inputs listed now, and its ``write`` writes nothing: it collects the
N records of that generation (``CommitRefusedError`` when one is missing or was built from other
inputs: nothing changed) and names their uploads, in bucket order, in one manifest with the counts
summed and ``"buckets": N``; ``publish`` commits and promotes it. The pieces' uploads are not
registered with ``OpenUploads``: a commit that loses a race must not abort the uploads the winner
names. Once the day is published (or was already), the records are cleared and the derived formats
(Parquet) refreshed as after a single build.

Delivery guarantee: a bucket worker publishes nothing; a published commit holds each item of the
day exactly once (the buckets partition the keys), the same lines a single invocation writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

from changelake.exceptions import InvalidEventError
from changelake.pieces import CommitRefusedError, Piece, PieceRecord, PieceRecords
from changelake.publication import OpenUploads, Output, Written, publish
from changelake.snapshot.buckets import BaseNotCurrentError
from changelake.snapshot.chain import ChainResult, DayChain
from changelake.snapshot.day import DayBuilder, DayGeneration, DayPlan, DayResult
from changelake.snapshot.layout import Base, SnapshotLayout
from changelake.snapshot.manifest import DayCounts, DayManifest, OutputPart, day_generation

#: Counts that are the same for every bucket (each reads all of the day's inputs): not summed.
_SHARED_COUNTS = frozenset({"bytes_in", "hours_from_compacted"})


@dataclass(frozen=True, slots=True)
class BucketResult:
    """What one bucket worker did: ``built`` (its parts written and recorded) or ``unchanged`` (the
    day is current already: nothing written); its piece's counts when built."""

    table: str
    day: date
    bucket: Piece
    status: str
    manifest: DayManifest | None = None
    record_key: str | None = None

    @property
    def parts_written(self) -> int:
        return 0 if self.manifest is None else len(self.manifest.outputs) + len(self.manifest.removed)


class BucketedDays:
    """The bucket workers and the commit of a table's days (see the module)."""

    def __init__(self, layout: SnapshotLayout, days: DayBuilder, chain: DayChain) -> None:
        self.layout = layout
        self.days = days
        self.chain = chain

    def current_base(self, table: str, day: date) -> Base:
        """What ``day`` builds on, checked current: its origin's base on the table's first day, else
        the day before as published (rolled forward), current for its raw/ objects and its own base.
        ``BaseNotCurrentError`` otherwise; ``InvalidEventError`` for a day before the table's first."""
        origin = self.layout.origin(table)
        if origin is None:
            raise InvalidEventError("table", f"{table} has no changes in raw/ and no bootstrap")
        if day < origin.day:
            raise InvalidEventError("dt", f"{day} is before {table}'s first day {origin.day}")
        if day == origin.day:
            if origin.moved:
                raise BaseNotCurrentError(f"{table}: its bootstrap was replaced meanwhile; plan again")
            return origin.base
        before = day - timedelta(days=1)
        where = f"s3://{self.layout.store.bucket}/{self.layout.day_folder(table, before)}"
        manifest, current = self.layout.read_day(table, before)
        if manifest is None or current is None:
            raise BaseNotCurrentError(f"{where}: the day before {day} is not built; plan again")
        publication = self.layout.day_publication(table, before)
        if publication.promote(current).status != "published":
            raise BaseNotCurrentError(f"{where}: the day before {day} was replaced meanwhile; plan again")
        inputs = self.layout.raw_inputs(table, before)
        if day_generation(table, before, manifest.base, inputs) != manifest.generation:
            raise BaseNotCurrentError(f"{where}: the day before {day} is stale (raw/ changed); plan again")
        if not self._base_is_current(table, manifest):
            raise BaseNotCurrentError(
                f"{where}: the day before {day} is built on an outdated day; plan again"
            )
        return Base.of_day(manifest, publication.manifest_key, current.etag)

    def _base_is_current(self, table: str, manifest: DayManifest) -> bool:
        """Whether the day ``manifest`` describes was built on the generation its own base has now."""
        ref = manifest.base
        if ref.kind == "snapshot" and ref.dt is not None:
            below, _ = self.layout.read_day(table, date.fromisoformat(ref.dt))
            return below is not None and below.generation == ref.generation
        if ref.kind == "bootstrap":
            bootstrap, _ = self.layout.read_bootstrap(table)
            return bootstrap is not None and bootstrap.generation == ref.generation
        return True

    def build_bucket(self, table: str, day: date, bucket: Piece) -> BucketResult:
        """Build bucket ``bucket`` of ``day`` and record its open parts (see the module)."""
        base = self.current_base(table, day)
        folder = self.layout.day_folder(table, day)
        current = self.layout.day_publication(table, day).read()  # the manifest before the inputs
        plan = self.days.plan_day(table, day, base)
        if plan is None:
            raise BaseNotCurrentError(
                f"s3://{self.layout.store.bucket}/{folder}: its base was replaced; plan again"
            )
        published = DayManifest.from_body(current.body) if current is not None else None
        if published is not None and published.generation == plan.generation:
            return BucketResult(table, day, bucket, "unchanged")
        uploads = OpenUploads()
        try:
            written = self.days.write_day(table, day, base, plan, uploads, bucket=bucket)
            piece = written.built
            record = PieceRecord(
                bucket,
                plan.generation,
                tuple(_output(part) for part in piece.outputs),
                tuple(_output(part) for part in piece.removed),
                piece.counts.model_dump(),
                piece.body(),
            )
            key = PieceRecords(self.layout.store, folder).put(record)
        except BaseException:
            uploads.abort()  # recorded by no one: nothing will ever complete them
            raise
        return BucketResult(table, day, bucket, "built", piece, key)

    def commit(self, table: str, day: date, buckets: int) -> ChainResult:
        """Publish ``day`` from its ``buckets`` recorded pieces, then clear the records and refresh its
        derived formats; ``CommitRefusedError`` (nothing changed) when a piece is missing or stale."""
        try:
            base = self.current_base(table, day)
        except BaseNotCurrentError as exc:
            # Refused as every commit is (the state machine plans again on this error's name).
            raise CommitRefusedError(str(exc)) from exc
        outcome = publish(_BucketsCommit(self, table, day, base, buckets))
        if outcome.manifest is None:  # the base moved after it was checked ("empty")
            raise CommitRefusedError(f"{table}/dt={day}: its base was replaced meanwhile; plan again")
        PieceRecords(self.layout.store, self.layout.day_folder(table, day)).clear()
        manifest = outcome.built or DayManifest.from_body(outcome.manifest.body)
        result = DayResult(table, day, outcome.status, manifest, outcome.writes, outcome.manifest.etag)
        chain = ChainResult(table, day, days=[result])
        self.chain.derive(chain, result, lambda: True)
        return chain


def _output(part: OutputPart) -> Output:
    return Output(part.key, part.upload_id, part.part_etags)


def summed(pieces: list[DayManifest]) -> DayCounts:
    """The counts of a day built in ``pieces``: each bucket's summed, but what every bucket read alike
    (the day's raw/ bytes, the hours read from compacted/) counted once."""
    fields = DayCounts.model_fields
    totals = {name: sum(getattr(piece.counts, name) for piece in pieces) for name in fields}
    first = pieces[0].counts
    return DayCounts(**(totals | {name: getattr(first, name) for name in _SHARED_COUNTS}))


class _BucketsCommit(DayGeneration):
    """The commit of a day built in buckets: planned and compared as a single build is, but its
    ``write`` writes nothing."""

    def __init__(self, owner: BucketedDays, table: str, day: date, base: Base, buckets: int) -> None:
        super().__init__(owner.days, table, day, base)
        self.owner = owner
        self.count = buckets

    def write(self, plan: DayPlan, uploads: OpenUploads) -> Written[DayManifest]:
        started = time.monotonic()
        records = PieceRecords(self.owner.layout.store, self.publication.folder)
        pieces = [self._piece(record) for record in records.collect(plan.generation, self.count)]
        manifest = DayManifest(
            table=self.table,
            dt=self.day.isoformat(),
            generation=plan.generation,
            base=self.base.ref,
            inputs=pieces[0].inputs,
            outputs=tuple(part for piece in pieces for part in piece.outputs),
            removed=tuple(part for piece in pieces for part in piece.removed),
            counts=summed(pieces),
            built_at=self.owner.days.clock().isoformat().replace("+00:00", "Z"),
            # The build's wall time: the slowest bucket (they run in parallel) and this commit.
            seconds=round(max(piece.seconds for piece in pieces) + time.monotonic() - started, 3),
            buckets=self.count,
        )
        return Written(manifest.body(), manifest)

    def _piece(self, record: PieceRecord) -> DayManifest:
        """The bucket a record describes; refused if its detail does not name the uploads it records."""
        piece = DayManifest.from_body(dict(record.detail))
        if (
            piece is None
            or tuple(map(_output, (*piece.outputs, *piece.removed))) != record.outputs + record.side
        ):
            raise CommitRefusedError(
                f"s3://{self.owner.layout.store.bucket}/{self.publication.folder}: the record of bucket "
                f"{record.piece.index} of {record.piece.count} is not readable; build that bucket again"
            )
        return piece
