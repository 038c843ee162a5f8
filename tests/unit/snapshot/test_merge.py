"""The pure merge: a key-sorted base plus the latest change per key, in bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from changelake.compaction.sort import DedupeSorter
from changelake.snapshot.lines import REMOVED, Entry
from changelake.snapshot.merge import MergeCounts, OrderError, applied, latest_per_key, merge


def test_changes_insert_update_and_remove_items_of_the_base() -> None:
    # GIVEN a base of a, b, c, e and changes: a updated, b removed, d inserted, f removed (absent), g inserted
    base = [("a", b"A0"), ("b", b"B0"), ("c", b"C0"), ("e", b"E0")]
    changes = [("a", b"A1"), ("b", None), ("d", b"D1"), ("f", None), ("g", b"G1")]
    counts = MergeCounts()
    # WHEN merged
    lines = list(merge(base, changes, counts))
    # THEN the result is sorted by key, each item once, in its latest state
    assert lines == [b"A1", b"C0", b"D1", b"E0", b"G1"]
    assert counts == MergeCounts(items=5, kept=2, inserted=2, updated=1, removed=1, absent_removes=1)


def test_an_empty_base_takes_the_changes_and_no_changes_keep_the_base() -> None:
    # GIVEN an empty base, then no changes WHEN merged THEN the other side comes out unchanged
    assert list(merge([], [("a", b"A"), ("b", None)], MergeCounts())) == [b"A"]
    assert list(merge([("a", b"A"), ("b", b"B")], [], MergeCounts())) == [b"A", b"B"]
    assert list(merge([], [], MergeCounts())) == []


@pytest.mark.parametrize(
    ("base", "changes", "source"),
    [
        ([("b", b"B"), ("a", b"A")], [], "the base snapshot"),
        ([("a", b"A"), ("a", b"A2")], [], "the base snapshot"),
        ([], [("b", b"B"), ("a", b"A")], "the changes"),
    ],
)
def test_unsorted_or_repeated_keys_are_refused(base: list, changes: list, source: str) -> None:
    # GIVEN an input out of key order or repeating a key WHEN merged THEN it is refused, naming the input
    with pytest.raises(OrderError, match=source):
        list(merge(base, changes, MergeCounts()))


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
    # GIVEN an entry with a line and one that removes its item WHEN applied THEN line, and None to remove
    entries: list[Entry] = [("a", 1, "e1", b"x"), ("b", 2, "e2", REMOVED)]
    assert list(applied(entries)) == [("a", b"x"), ("b", None)]
