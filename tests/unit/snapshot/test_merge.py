"""The pure merge: a key-sorted base and its removed keys, plus the latest change per key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from changelake.exceptions import RecordRejected
from changelake.snapshot.lines import Entry, snapshot_line
from changelake.snapshot.merge import (
    Change,
    MergeCounts,
    OrderError,
    Row,
    applied,
    latest_per_key,
    merge,
    removals_kept_from,
)
from changelake.storage.sort import DedupeSorter

AT = "2026-11-22T00:00:00.000Z"


def line(key: str, sequence: int | None, value: str | None = "v", event_id: str = "", at: str = AT) -> bytes:
    """The snapshot line of item ``key`` after change ``sequence`` stamped ``at`` (None: from an
    export), or its removal line (``value`` None)."""
    return snapshot_line(
        "orders",
        f'{{"pk":"{key}"}}',
        b"null" if value is None else f'{{"v":"{value}"}}'.encode(),
        event_id=None if sequence is None else event_id or f"e{sequence}",
        event_time=None if sequence is None else at,
        sequence_number=None if sequence is None else str(sequence),
    )


def row(key: str, sequence: int | None, value: str | None = "v", event_id: str = "", at: str = AT) -> Row:
    return f'{{"pk":"{key}"}}', line(key, sequence, value, event_id, at)


def changed(key: str, sequence: int, value: str | None = "new", event_id: str = "", at: str = AT) -> Change:
    new_line = line(key, sequence, value, event_id, at)
    entry = (f'{{"pk":"{key}"}}', sequence, event_id or f"e{sequence}", new_line)
    (result,) = applied([entry])
    return result


def test_changes_insert_update_and_remove_items_of_the_base() -> None:
    # GIVEN a base of a, b, c, e and changes: a updated, b removed, d inserted, f removed (absent), g inserted
    base = [row("a", 1), row("b", 1), row("c", 1), row("e", 1)]
    changes = [
        changed("a", 5),
        changed("b", 5, None),
        changed("d", 5),
        changed("f", 5, None),
        changed("g", 5),
    ]
    counts = MergeCounts()
    # WHEN merged
    written = list(merge(base, changes, counts))
    # THEN the result is sorted by key, each item once in its latest state, and the removed keys with them
    assert written == [
        (line("a", 5, "new"), False),
        (line("b", 5, None), True),
        (line("c", 1), False),
        (line("d", 5, "new"), False),
        (line("e", 1), False),
        (line("f", 5, None), True),
        (line("g", 5, "new"), False),
    ]
    assert counts == MergeCounts(
        items=5, kept=2, inserted=2, updated=1, removed=1, absent_removes=1, removed_keys=2
    )


def test_an_empty_base_takes_the_changes_and_no_changes_keep_the_base() -> None:
    # GIVEN an empty base, then no changes WHEN merged THEN the other side comes out unchanged
    assert list(merge([], [changed("a", 1), changed("b", 2, None)], MergeCounts())) == [
        (line("a", 1, "new"), False),
        (line("b", 2, None), True),
    ]
    assert list(merge([row("a", 1), row("b", 1)], [], MergeCounts(), [row("c", 1, None)])) == [
        (line("a", 1), False),
        (line("b", 1), False),
        (line("c", 1, None), True),
    ]
    assert list(merge([], [], MergeCounts())) == []


def test_a_change_older_than_the_state_it_meets_is_not_applied() -> None:
    # GIVEN items and removed keys of the day before, and the day's latest change of each: older by
    # sequence number (a, r), later (b, s), equal but with a later event_id (c), on an exported item (x)
    base = [row("a", 300), row("b", 300), row("c", 300, event_id="e1"), row("x", None)]
    removed = [row("r", 300, None), row("s", 300, None)]
    changes = [
        changed("a", 200),
        changed("b", 400, None),
        changed("c", 300, event_id="e2"),
        changed("r", 200),
        changed("s", 400),
        changed("x", 1),
    ]
    counts = MergeCounts()
    # WHEN merged
    written = list(merge(base, changes, counts, removed))
    # THEN the older changes leave their states (a stays, r stays removed), the later ones replace them
    # (b removed, s back), the tie goes to the later event_id, and an exported item takes any change
    assert written == [
        (line("a", 300), False),
        (line("b", 400, None), True),
        (line("c", 300, "new", event_id="e2"), False),
        (line("r", 300, None), True),
        (line("s", 400, "new"), False),
        (line("x", 1, "new"), False),
    ]
    assert counts == MergeCounts(
        items=4, kept=1, inserted=1, updated=2, removed=1, outdated=2, removed_keys=2
    )


def test_removal_lines_older_than_the_horizon_before_the_days_end_are_dropped() -> None:
    # GIVEN removed keys of the day before stamped 25 hours and 23 hours before the end of
    # 2026-11-22, and REMOVEs of the day itself, one of a key the base held, one of an absent key
    removed = [
        row("a", 1, None, at="2026-11-21T22:59:59.999Z"),
        row("b", 2, None, at="2026-11-22T01:00:00.000Z"),
    ]
    base = [row("c", 3)]
    changes = [changed("c", 4, None, at="2026-11-22T23:59:59.000Z"), changed("d", 5, None)]
    counts = MergeCounts()
    # WHEN merged into 2026-11-22
    kept_from = removals_kept_from(date(2026, 11, 22))
    written = list(merge(base, changes, counts, removed, removals_from=kept_from))
    # THEN the removal line older than the horizon is dropped, those within it are kept
    assert kept_from == "2026-11-22T00:00:00.000Z"
    assert written == [
        (line("b", 2, None, at="2026-11-22T01:00:00.000Z"), True),
        (line("c", 4, None, at="2026-11-22T23:59:59.000Z"), True),
        (line("d", 5, None), True),
    ]
    assert counts == MergeCounts(removed=1, absent_removes=1, removed_keys=3, expired_removals=1)


@pytest.mark.parametrize(
    ("base", "removed", "changes", "source"),
    [
        ([row("b", 1), row("a", 1)], [], [], "the base snapshot"),
        ([row("a", 1), row("a", 2)], [], [], "the base snapshot"),
        ([row("a", 1)], [row("a", 2, None)], [], "the base snapshot"),  # an item and a removed key
        ([], [row("b", 1, None), row("a", 1, None)], [], "the base snapshot"),
        ([], [], [changed("b", 1), changed("a", 1)], "the changes"),
    ],
)
def test_unsorted_or_repeated_keys_are_refused(base: list, removed: list, changes: list, source: str) -> None:
    # GIVEN an input out of key order or repeating a key WHEN merged THEN it is refused, naming the input
    with pytest.raises(OrderError, match=source):
        list(merge(base, changes, MergeCounts(), removed))


def test_a_base_line_without_its_change_fields_is_refused_when_a_change_meets_it() -> None:
    # GIVEN a base line cut before its change fields, and a change of that item
    key, whole = row("a", 1)
    cut = whole[: whole.index(b',"event_id"')] + b"}"
    # WHEN merged THEN it is refused, not taken as older than the change
    with pytest.raises(RecordRejected, match="change fields"):
        list(merge([(key, cut)], [changed("a", 2)], MergeCounts()))


def test_the_latest_change_is_the_highest_sequence_number_as_a_number(tmp_path: Path) -> None:
    # GIVEN changes of one item whose sequence numbers have 21 to 40 digits (string order is wrong),
    # a redelivered copy, and a second item, added in no particular order
    short, long = 10**20 + 5, 10**39 + 1
    entries: list[Entry] = [
        ("item-a", long, "e-long", b"LONG"),
        ("item-a", short, "e-short", b"SHORT"),
        ("item-b", 7, "e-b", b"B"),
        ("item-a", long, "e-long", b"LONG"),
    ]
    assert str(short) > str(long)  # what a string comparison would pick
    # WHEN sorted by the external sorter (spilling after every entry) and reduced to one per key
    with DedupeSorter(tmp_path, memory_budget_bytes=1) as sorter:
        for entry in entries:
            sorter.add(entry)
        latest = list(latest_per_key(sorter.sorted_unique()))
    # THEN the numerically highest sequence number wins, and each key comes once
    assert [(key, line) for key, _, _, line in latest] == [("item-a", b"LONG"), ("item-b", b"B")]
    assert sorter.spilled_runs >= 2


def test_applied_turns_entries_into_changes() -> None:
    # GIVEN an entry with an item line and one with a removal line WHEN applied
    entries: list[Entry] = [("a", 1, "e1", line("a", 1)), ("b", 2, "e2", line("b", 2, None))]
    # THEN each keeps its key, order and line, and says whether it removes its item
    assert list(applied(entries)) == [
        ("a", (1, "e1"), line("a", 1), False),
        ("b", (2, "e2"), line("b", 2, None), True),
    ]
