"""What a snapshot day reads: the day's changes (from compacted/ where an hour's compaction is current,
else from raw/) through a bounded-memory sorter, and the lines of its base in key order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from changelake.compaction.manifest import inputs_document
from changelake.exceptions import ObjectNotFoundError, RecordRejected, SnapshotInputError
from changelake.formats.layout import parse_partition_prefix
from changelake.integrations.s3 import ObjectInfo
from changelake.publication import Publication
from changelake.snapshot.layout import SnapshotLayout
from changelake.snapshot.lines import base_key, change_entry
from changelake.storage.io import Prefetcher, split_lines
from changelake.storage.limits import BuildLimits
from changelake.storage.sort import DedupeSorter


class DayInputs:
    """Reads a day's changes and its base's lines (see the module)."""

    def __init__(self, layout: SnapshotLayout, limits: BuildLimits) -> None:
        self.layout = layout
        self.limits = limits
        self.store = layout.store

    @contextmanager
    def sorted_changes(
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
            sorter = DedupeSorter(self.limits.spill_dir, self.limits.memory_budget_bytes)
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
            hour = parse_partition_prefix(self.layout.raw_prefix, folder)
            compacted = Publication(self.store, hour.prefix(self.layout.compacted_prefix)).read()
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

    def base_rows(self, files: tuple[str, ...], prefetcher: Prefetcher) -> Iterator[tuple[str, bytes]]:
        """(key, line) of every line of the base's files, in order."""
        for key, chunks in zip(files, prefetcher.chunks(), strict=True):
            for number, line in enumerate(split_lines(chunks), start=1):
                item_key = base_key(line)
                if item_key is None:
                    raise SnapshotInputError(
                        f"s3://{self.store.bucket}/{key} line {number}: not a snapshot line"
                    )
                yield item_key, line
