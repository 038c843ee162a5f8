"""External merge sort with deduplication (storage.sort)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from changelake.storage.sort import _FRAME, DedupeSorter, Entry


def entries(count: int, seed: int = 1) -> list[Entry]:
    rng = random.Random(seed)
    return [
        (
            f"2026-11-22T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}.000Z",
            rng.randrange(10**25),
            f"id-{i}",
            f'{{"event_id":"id-{i}","pad":"{"x" * rng.randrange(50, 300)}"}}'.encode(),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("budget", [10**9, 20_000, 2_000])
def test_sorter_yields_each_key_once_in_order_whatever_the_budget(tmp_path: Path, budget: int) -> None:
    # GIVEN 2,000 entries, each delivered one to three times, shuffled
    rng = random.Random(2)
    unique = entries(2000)
    delivered = [entry for entry in unique for _ in range(rng.randrange(1, 4))]
    rng.shuffle(delivered)

    # WHEN they go through the sorter with the given memory budget
    with DedupeSorter(tmp_path, budget) as sorter:
        for entry in delivered:
            sorter.add(entry)
        out = list(sorter.sorted_unique())

    # THEN each key comes out once, in (event_time, numeric sequence, event_id) order
    assert out == sorted(unique)
    assert (sorter.rows_in, sorter.rows_out, sorter.duplicates) == (
        len(delivered),
        2000,
        len(delivered) - 2000,
    )
    # AND small budgets spilled (more runs than the fan-in for the smallest), and nothing is left on disk
    assert (sorter.spilled_runs > 0) == (budget < 10**9)
    assert list(tmp_path.iterdir()) == [] or all(not any(p.iterdir()) for p in tmp_path.iterdir())


def test_sorter_keeps_the_smallest_line_of_differing_copies_and_counts_the_conflict(tmp_path: Path) -> None:
    # GIVEN two copies of one change whose bytes differ, in either order, across spilled runs
    key = ("2026-11-22T12:00:00.000Z", 5, "id-1")
    older, newer = b'{"a":1}', b'{"a":1,"b":2}'
    for first, second in ((older, newer), (newer, older)):
        with DedupeSorter(tmp_path, 1) as sorter:  # a budget of 1 byte: every entry is its own run
            sorter.add((*key, first))
            sorter.add((*key, second))
            out = list(sorter.sorted_unique())
        # THEN the same one is kept whatever the order, and the difference is counted
        assert out == [(*key, min(older, newer))]
        assert sorter.conflicts == 1


def test_sorter_compares_sequence_numbers_as_numbers(tmp_path: Path) -> None:
    with DedupeSorter(tmp_path, 10**6) as sorter:
        for seq in (100, 9, 10):
            sorter.add(("2026-11-22T12:00:00.000Z", seq, f"id-{seq}", b"{}"))
        assert [entry[1] for entry in sorter.sorted_unique()] == [9, 10, 100]


def test_sorter_merges_in_passes_past_the_fan_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("changelake.storage.sort.MAX_FAN_IN", 3)
    data = entries(300, seed=3)
    with DedupeSorter(tmp_path, 3_000) as sorter:
        for entry in data:
            sorter.add(entry)
        assert list(sorter.sorted_unique()) == sorted(data)
        assert sorter.spilled_runs > 10


def test_spilled_runs_are_plain_until_the_plain_limit_then_compressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plain-spill limit a few runs large and a budget that spills many runs
    monkeypatch.setattr("changelake.storage.sort.SPILL_PLAIN_BYTES", 60_000)
    data = entries(1500, seed=4)
    with DedupeSorter(tmp_path, 20_000) as sorter:
        for entry in data:
            sorter.add(entry)
        # WHEN the runs are on disk
        runs = sorted(p for folder in tmp_path.iterdir() for p in folder.iterdir())
        flags = [_FRAME.unpack(path.read_bytes()[: _FRAME.size])[1] for path in runs]
        out = list(sorter.sorted_unique())
    # THEN the first runs are plain, the later ones compressed, and the output is the same
    assert flags[0] is False
    assert flags[-1] is True
    assert out == sorted(data)
