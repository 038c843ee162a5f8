"""The merge of a day: the previous snapshot plus the day's latest change per item. Pure.

Both inputs arrive sorted by key, so the merge holds one line of each at a time, whatever the
size of the table: the previous snapshot is streamed from its files, and the day's changes come
out of the external sorter (``changelake.compaction.sort.DedupeSorter``) in key order.

The state of an item is its latest change (highest ``sequence_number``, compared as a number); a
latest change that is a REMOVE deletes the item. Images are whole items, so applying a change
the base already reflects changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from changelake.snapshot.lines import REMOVED, Entry

#: One item of a snapshot: (canonical key, its snapshot line).
Row = tuple[str, bytes]
#: The latest change of one item: (canonical key, its new snapshot line, or None: removed).
Change = tuple[str, bytes | None]


class OrderError(ValueError):
    """An input of the merge is not sorted by key, or repeats a key: it cannot be merged."""

    def __init__(self, source: str, key: str, previous: str) -> None:
        super().__init__(f"{source} is not sorted by key: {key[:200]} after {previous[:200]}")
        self.source = source


@dataclass(slots=True)
class MergeCounts:
    """What a merge did: items out, and how each came to be."""

    items: int = 0
    kept: int = 0  # copied from the base unchanged
    inserted: int = 0  # not in the base, written by a change
    updated: int = 0  # in the base, replaced by a change
    removed: int = 0  # in the base, deleted by a REMOVE
    absent_removes: int = 0  # a REMOVE of an item the base did not hold (nothing to do)


def latest_per_key(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Of entries sorted by key and then sequence number, the last one of each key."""
    pending: Entry | None = None
    for entry in entries:
        if pending is not None and entry[0] != pending[0]:
            yield pending
        pending = entry
    if pending is not None:
        yield pending


def applied(entries: Iterable[Entry]) -> Iterator[Change]:
    """Each entry as a ``Change``: its key and its snapshot line (None where it removes the item)."""
    for key, _, _, line in entries:
        yield key, line if line != REMOVED else None


def _checked(rows: Iterable[Change], source: str) -> Iterator[Change]:
    previous: str | None = None
    for row in rows:
        if previous is not None and row[0] <= previous:
            raise OrderError(source, row[0], previous)
        previous = row[0]
        yield row


def merge(base: Iterable[Row], changes: Iterable[Change], counts: MergeCounts) -> Iterator[bytes]:
    """The lines of the new snapshot, sorted by key: ``base`` with ``changes`` applied.

    Both inputs must be strictly ascending by key (``OrderError`` otherwise, raised when met).
    The base's order is checked in this loop rather than by a wrapper: it runs once per item of
    the table, the changes' once per changed item.
    """
    pending = _checked(changes, "the changes")
    change = next(pending, None)
    previous = ""  # below every key: a key is a JSON object, so it starts with "{"
    for key, line in base:
        if key <= previous:
            raise OrderError("the base snapshot", key, previous)
        previous = key
        while change is not None and change[0] < key:
            yield from _insert(change, counts)
            change = next(pending, None)
        if change is not None and change[0] == key:
            if change[1] is None:
                counts.removed += 1
            else:
                counts.updated += 1
                counts.items += 1
                yield change[1]
            change = next(pending, None)
        else:
            counts.kept += 1
            counts.items += 1
            yield line
    while change is not None:
        yield from _insert(change, counts)
        change = next(pending, None)


def _insert(change: Change, counts: MergeCounts) -> Iterator[bytes]:
    if change[1] is None:
        counts.absent_removes += 1
        return
    counts.inserted += 1
    counts.items += 1
    yield change[1]
