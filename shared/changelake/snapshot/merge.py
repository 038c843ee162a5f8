"""The merge of a day: the previous day's state plus the day's latest change per item. Pure.

The inputs arrive sorted by key, so the merge holds one line of each at a time, whatever the
size of the table: the previous snapshot and its removed keys are streamed from their files, and
the day's changes come out of the external sorter (``changelake.storage.sort.DedupeSorter``)
in key order.

The state of an item is its latest change (highest ``sequence_number``, compared as a number,
then ``event_id``: ``analytics.views.SEQUENCE_ORDER``); a latest change that is a REMOVE deletes
the item. So the day's latest change of an item replaces the previous day's state only if it is
later than that state's change: event times are approximate, and a change stamped just after
midnight can be older than one stamped just before it. The previous state of a removed item is
its removal line (the REMOVE's change fields), which the day's removed keys carry on; an item from
a bootstrap export has no change yet, so any change replaces it. Images are whole items, so
applying a change the base already reflects changes nothing.

A removal line is carried only while a change older than its REMOVE can still come: such a change
is stamped at most ``REMOVED_KEYS_HORIZON`` after the REMOVE, so a day keeps the removal lines
stamped within that horizon before its end (``removals_kept_from``) and drops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from heapq import merge as merge_sorted

from changelake.snapshot.lines import Entry, Order, event_time_of, is_removal, line_order

#: How long after a REMOVE an older change of its item (lower sequence number) can be stamped.
#: Event times are DynamoDB's ApproximateCreationDateTime, off from the true order by at most
#: seconds (it is rounded to the second, or to the millisecond when the stream asks for it), so
#: a day is generous: a removal line stamped a day before a day's end cannot meet a change of a
#: later day older than it, and the removed keys stay about one day's deletes instead of every
#: key ever deleted.
REMOVED_KEYS_HORIZON = timedelta(hours=24)

#: One item of a snapshot, or one removed key: (canonical key, its line).
Row = tuple[str, bytes]
#: The latest change of one item on the day: (canonical key, its order, its line, whether it is a
#: removal line).
Change = tuple[str, Order, bytes, bool]
#: One line out: (the line, whether it is a removal line, for the removed keys' files).
Written = tuple[bytes, bool]


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
    inserted: int = 0  # not in the base (absent or removed), written by a change
    updated: int = 0  # in the base, replaced by a change
    removed: int = 0  # in the base, deleted by a REMOVE
    absent_removes: int = 0  # a REMOVE of a key the base did not hold (recorded as removed all the same)
    outdated: int = 0  # a change older than the base's state of its item: not applied
    removed_keys: int = 0  # removal lines out: keys whose latest change is a REMOVE within the horizon
    expired_removals: int = 0  # removal lines dropped: their REMOVE is older than the horizon


def removals_kept_from(day: date) -> str:
    """The earliest event time (as change lines write it) of a removal line that ``day`` keeps:
    ``REMOVED_KEYS_HORIZON`` before the day's end."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    return (end - REMOVED_KEYS_HORIZON).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    """Each entry as a ``Change``: its key, order, line, and whether it removes the item."""
    for key, sequence, event_id, line in entries:
        yield key, (sequence, event_id), line, is_removal(line)


def _checked(rows: Iterable[Change], source: str) -> Iterator[Change]:
    previous: str | None = None
    for row in rows:
        if previous is not None and row[0] <= previous:
            raise OrderError(source, row[0], previous)
        previous = row[0]
        yield row


def _states(base: Iterable[Row], removed: Iterable[Row]) -> Iterable[tuple[str, bytes, bool]]:
    """The base's items and removed keys as one stream in key order: (key, line, removed)."""
    items = ((key, line, False) for key, line in base)
    return merge_sorted(items, ((key, line, True) for key, line in removed)) if removed else items


def merge(
    base: Iterable[Row],
    changes: Iterable[Change],
    counts: MergeCounts,
    removed: Iterable[Row] = (),
    *,
    removals_from: str = "",
) -> Iterator[Written]:
    """The lines of the new day, sorted by key: its items, and its removal lines (flagged) whose
    event time is ``removals_from`` or later (``removals_kept_from``; all of them if empty).

    Arguments as ``_merged``'s."""
    for line, removal in _merged(base, changes, counts, removed):
        if removal:
            if event_time_of(line) < removals_from:
                counts.expired_removals += 1
                continue
            counts.removed_keys += 1
        yield line, removal


def _merged(
    base: Iterable[Row],
    changes: Iterable[Change],
    counts: MergeCounts,
    removed: Iterable[Row],
) -> Iterator[Written]:
    """The lines of the new day, sorted by key: its items, and every removal line (flagged).

    ``base`` (the previous day's items) and ``removed`` (its removed keys) together, and
    ``changes``, must be strictly ascending by key (``OrderError`` otherwise, raised when met); a
    line of ``base`` or ``removed`` without its change fields raises ``RecordRejected``.
    The base's order is checked in this loop rather than by a wrapper: it runs once per item of
    the table, the changes' once per changed item.
    """
    pending = _checked(changes, "the changes")
    change = next(pending, None)
    previous = ""  # below every key: a key is a JSON object, so it starts with "{"
    for key, line, gone in _states(base, removed):
        if key <= previous:
            raise OrderError("the base snapshot", key, previous)
        previous = key
        while change is not None and change[0] < key:
            yield _insert(change, counts)
            change = next(pending, None)
        if change is not None and change[0] == key:
            yield _apply(change, line, gone, counts)
            change = next(pending, None)
        else:
            yield _kept(line, gone, counts)
    while change is not None:
        yield _insert(change, counts)
        change = next(pending, None)


def _apply(change: Change, line: bytes, gone: bool, counts: MergeCounts) -> Written:
    """The state of an item the base holds (``gone``: as removed) after the day's latest change."""
    _, order, new_line, removes = change
    state = line_order(line)  # None: an item from a bootstrap export, older than any change
    if state is not None and order <= state:  # older than the state it meets: the state stays
        counts.outdated += 1
        return _kept(line, gone, counts)
    if removes:
        counts.removed += 0 if gone else 1
        return new_line, True
    if gone:
        counts.inserted += 1
    else:
        counts.updated += 1
    counts.items += 1
    return new_line, False


def _kept(line: bytes, gone: bool, counts: MergeCounts) -> Written:
    """The base's state of an item, unchanged."""
    if not gone:
        counts.kept += 1
        counts.items += 1
    return line, gone


def _insert(change: Change, counts: MergeCounts) -> Written:
    """A key the base does not hold, in the state of its change."""
    _, _, line, removes = change
    if removes:
        counts.absent_removes += 1
    else:
        counts.inserted += 1
        counts.items += 1
    return line, removes
