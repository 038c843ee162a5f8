"""The snapshot layer's folders and what they hold: the day folders of a table and their
publications, the raw/ objects of a day, the days a layer holds, a table's origin (its bootstrap or
its first raw/ day), and the typed manifests of a day and of a bootstrap. Reading only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from changelake.exceptions import ObjectNotFoundError, SnapshotInputError
from changelake.formats.layout import bootstrap_prefix, day_of_folder, day_prefix, lake_tables, table_prefix
from changelake.integrations.s3 import ObjectInfo, S3Store
from changelake.pieces import Piece
from changelake.publication import Manifest, Publication
from changelake.snapshot.buckets import SortedFiles
from changelake.snapshot.manifest import EMPTY_BASE, REMOVED_FILES, BaseRef, BootstrapManifest, DayManifest

_RAW_FILE = re.compile(r"hour=(?:[01][0-9]|2[0-3])/[^/]+\.jsonl\.gz\Z")


@dataclass(frozen=True, slots=True)
class Base:
    """What a day builds on: its reference (for the generation), its data files in key order, the
    manifest it was read from with that manifest's ETag (None for the empty base), and its removed
    keys' files in key order. A day built in ``buckets`` (``changelake.snapshot.buckets``) has its
    files in key order within each bucket: ``file_buckets`` and ``removed_buckets`` give each file's."""

    ref: BaseRef
    files: tuple[str, ...] = ()
    manifest_key: str | None = None
    etag: str | None = None
    removed: tuple[str, ...] = ()
    buckets: int | None = None
    file_buckets: tuple[int, ...] = ()
    removed_buckets: tuple[int, ...] = ()
    #: Compressed bytes of its files (what a day built on it reads besides its changes).
    size: int = 0

    @classmethod
    def of_day(cls, manifest: DayManifest, manifest_key: str, etag: str | None) -> Base:
        """A published day as the base of the next."""
        return cls(
            manifest.as_base(),
            tuple(output.key for output in manifest.outputs),
            manifest_key,
            etag,
            tuple(output.key for output in manifest.removed),
            manifest.buckets,
            tuple(output.piece or 0 for output in manifest.outputs),
            tuple(output.piece or 0 for output in manifest.removed),
            sum(output.bytes for output in (*manifest.outputs, *manifest.removed)),
        )

    def data(self, keep: Piece | None = None) -> SortedFiles:
        """Its data files as read by bucket ``keep`` (None: by a single invocation)."""
        return SortedFiles.of(self.files, self.buckets, self.file_buckets, keep)

    def removed_keys(self, keep: Piece | None = None) -> SortedFiles:
        """Its removed keys' files as read by bucket ``keep`` (None: by a single invocation)."""
        return SortedFiles.of(self.removed, self.buckets, self.removed_buckets, keep)


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


def day_range(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


class SnapshotLayout:
    """Where a table's snapshot days, their raw/ and compacted/ inputs lie, and reading them."""

    def __init__(
        self,
        store: S3Store,
        *,
        raw_prefix: str = "raw",
        compacted_prefix: str = "compacted",
        snapshot_prefix: str = "snapshot",
    ) -> None:
        self.store = store
        self.raw_prefix = raw_prefix
        self.compacted_prefix = compacted_prefix
        self.snapshot_prefix = snapshot_prefix

    def day_folder(self, table: str, day: date) -> str:
        return day_prefix(self.snapshot_prefix, table, day)

    def bootstrap_folder(self, table: str) -> str:
        return bootstrap_prefix(self.snapshot_prefix, table)

    def tables(self) -> list[str]:
        """Every table with a folder in raw/ or snapshot/, sorted."""
        return lake_tables(self.store, [self.raw_prefix, self.snapshot_prefix])

    def layer_days(self, layer: str, table: str) -> list[date]:
        prefix = table_prefix(layer, table)
        days = (day_of_folder(folder[len(prefix) :]) for folder in self.store.list_folders(prefix))
        return sorted(day for day in days if day is not None)

    def raw_days(self, table: str) -> list[date]:
        return self.layer_days(self.raw_prefix, table)

    def built_days(self, table: str) -> list[date]:
        return self.layer_days(self.snapshot_prefix, table)

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
            size = sum(output.bytes for output in bootstrap.outputs)
            base = Base(bootstrap.as_base(), files, publication.manifest_key, current.etag, size=size)
            return Origin(bootstrap.day, base, moved)
        days = self.raw_days(table)
        return Origin(days[0], EMPTY) if days else None

    def base_moved(self, base: Base) -> bool:
        """Whether the base's manifest is no longer the one it was read from."""
        return base.manifest_key is not None and _etag(self.store, base.manifest_key) != base.etag


def _etag(store: S3Store, key: str) -> str | None:
    try:
        return store.head(key).etag
    except ObjectNotFoundError:
        return None
