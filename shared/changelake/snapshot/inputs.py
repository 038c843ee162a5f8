"""What a snapshot day reads: the day's changes (from compacted/ where an hour's compaction is current,
else from raw/) through a bounded-memory sorter, and the lines of its base in key order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date

from changelake.compaction.manifest import inputs_document
from changelake.exceptions import ObjectNotFoundError, RecordRejected, SnapshotInputError
from changelake.formats.layout import parse_partition_prefix
from changelake.integrations.s3 import ObjectInfo
from changelake.pieces import Piece
from changelake.publication import Publication
from changelake.snapshot.buckets import SortedFiles, bucket_of
from changelake.snapshot.layout import SnapshotLayout
from changelake.snapshot.lines import base_key, change_entry, change_key_hint
from changelake.storage.io import Prefetcher, iter_gzip_lines, split_lines
from changelake.storage.limits import BuildLimits
from changelake.storage.sort import DedupeSorter

Row = tuple[str, bytes]
#: Compressed bytes read at a time from each bucket's stream when a base built in buckets is merged
#: (one open object per bucket: N of these, and their decompressed chunks, are what the merge holds).
MERGED_READ_BYTES = 64 * 1024


class DayInputs:
    """Reads a day's changes and its base's lines (see the module)."""

    def __init__(self, layout: SnapshotLayout, limits: BuildLimits) -> None:
        self.layout = layout
        self.limits = limits
        self.store = layout.store

    @contextmanager
    def sorted_changes(
        self, table: str, day: date, inputs: list[ObjectInfo], bucket: Piece | None = None
    ) -> Iterator[tuple[DedupeSorter, int]]:
        """A sorter holding the day's changes (of the keys of ``bucket`` only, if given), and how many
        hours were read from compacted/.

        An hour is read from its compacted/ parts when its compaction manifest was built from exactly
        the hour's raw/ objects listed now (the same changes, duplicates removed, in fewer and larger
        objects); otherwise, and if a compacted part is gone meanwhile (a concurrent compaction of a
        late file replaced it), from raw/. The day's generation is the raw objects' either way.
        """
        raw_keys = [item.key for item in inputs]
        keys, hours = self._sources(inputs)
        for attempt in (keys, raw_keys) if hours else (raw_keys,):
            sorter = DedupeSorter(self.limits.spill_dir, self.limits.memory_budget_bytes)
            try:
                self._read_changes(table, day, attempt, sorter, bucket)
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
            hour = parse_partition_prefix(self.layout.raw_prefix, folder)
            compacted = Publication(self.store, hour.prefix(self.layout.compacted_prefix)).read()
            current = compacted is not None and compacted.body.get("inputs") == inputs_document(raw)
            if compacted is not None and compacted.outputs is not None and current:
                keys += [output.key for output in compacted.outputs]
                hours += 1
            else:
                keys += [item.key for item in raw]
        return keys, hours

    def _read_changes(
        self, table: str, day: date, keys: list[str], sorter: DedupeSorter, bucket: Piece | None
    ) -> None:
        """Add every change line of the objects ``keys`` (of ``bucket``'s keys, if given) to ``sorter``;
        a bad line names its file and line (a line whose key tells another bucket is that bucket's
        to refuse: each bucket reads every line, so some bucket refuses it and the day is not
        published)."""
        day_text = day.isoformat()
        if bucket is not None and bucket.count == 1:  # the one bucket holds every key: nothing to hash
            bucket = None
        with Prefetcher(self.store, keys) as prefetcher:
            for key, chunks in zip(keys, prefetcher.chunks(), strict=True):
                resource = f"s3://{self.store.bucket}/{key}"
                for number, line in enumerate(split_lines(chunks), start=1):
                    if bucket is not None and not _may_be_in(line, bucket):
                        continue  # another bucket's change: that bucket checks it in full
                    try:
                        entry = change_entry(line, table=table, day=day_text)
                    except RecordRejected as exc:
                        raise SnapshotInputError(f"{resource} line {number}: {exc.reason}") from exc
                    if bucket is None or bucket_of(entry[0], bucket.count) == bucket.index:
                        sorter.add(entry)

    @contextmanager
    def sorted_rows(self, files: SortedFiles) -> Iterator[Iterator[Row]]:
        """(key, line) of every line of ``files`` in key order (of the bucket they keep, if any).

        One stream is read ahead by a ``Prefetcher``; the streams of a day built in buckets are read
        inline, a small chunk at a time each, and merged by ``heapq.merge``: memory grows with the
        count of buckets, never with the day."""
        with ExitStack() as stack:
            if len(files.streams) == 1:
                keys = files.streams[0]
                prefetcher = stack.enter_context(Prefetcher(self.store, keys))
                rows = self._rows(
                    zip(keys, (split_lines(chunks) for chunks in prefetcher.chunks()), strict=True)
                )
            else:
                rows = heapq.merge(*(self._rows(self._opened(keys)) for keys in files.streams))
            keep = files.keep
            if keep is None:
                yield rows
            else:
                yield (row for row in rows if bucket_of(row[0], keep.count) == keep.index)

    def _opened(self, keys: tuple[str, ...]) -> Iterator[tuple[str, Iterator[bytes]]]:
        """Each object of ``keys`` with its lines, opened when the previous one is read."""
        for key in keys:
            resource = f"s3://{self.store.bucket}/{key}"
            yield key, iter_gzip_lines(self.store.open(key), resource=resource, chunk_bytes=MERGED_READ_BYTES)

    def _rows(self, objects: Iterator[tuple[str, Iterator[bytes]]]) -> Iterator[Row]:
        """(key, line) of every line of the objects, in order; a line that is not a snapshot line is
        refused, naming its file and line."""
        for key, lines in objects:
            for number, line in enumerate(lines, start=1):
                item_key = base_key(line)
                if item_key is None:
                    raise SnapshotInputError(
                        f"s3://{self.store.bucket}/{key} line {number}: not a snapshot line"
                    )
                yield item_key, line


def _may_be_in(line: bytes, bucket: Piece) -> bool:
    """False only when the line's key is read fast and is another bucket's: the full parse of a
    change costs about as much as reading its share of the base, so a bucket skips the others'."""
    hint = change_key_hint(line)
    return hint is None or bucket_of(hint, bucket.count) == bucket.index
