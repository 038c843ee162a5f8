"""Unit tests for compaction's pure parts: external sort and dedupe, gzip line reading, events, planning."""

from __future__ import annotations

import gzip
import io
import random
from datetime import date
from pathlib import Path

import pytest

from changelake.compaction.compactor import Compactor
from changelake.compaction.events import HandoffEvent, ManualEvent, is_scheduled_event, scheduled_days
from changelake.compaction.io import iter_gzip_lines
from changelake.compaction.manifest import generation_of, part_name
from changelake.compaction.service import CompactionService
from changelake.compaction.sort import _FRAME, DedupeSorter, Entry
from changelake.exceptions import CompactionInputError, InvalidEventError
from changelake.integrations.base import ObjectInfo
from changelake.integrations.s3 import S3Store


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
    monkeypatch.setattr("changelake.compaction.sort.MAX_FAN_IN", 3)
    data = entries(300, seed=3)
    with DedupeSorter(tmp_path, 3_000) as sorter:
        for entry in data:
            sorter.add(entry)
        assert list(sorter.sorted_unique()) == sorted(data)
        assert sorter.spilled_runs > 10


def test_gzip_lines_are_read_across_chunks_and_members() -> None:
    # GIVEN two gzip members (as concatenated files are) with long and empty lines
    lines = [b"x" * 5000, b"short", b"", b"y" * 70_000]
    body = gzip.compress(b"\n".join(lines[:2]) + b"\n") + gzip.compress(b"\n".join(lines[2:]))
    # WHEN read in 100-byte chunks
    out = list(iter_gzip_lines(io.BytesIO(body), resource="r", chunk_bytes=100))
    # THEN every non-empty line comes back whole
    assert out == [lines[0], lines[1], lines[3]]


@pytest.mark.parametrize(
    "body", [gzip.compress(b"a\nb\n")[:-6], b"not gzip at all"], ids=["truncated", "garbage"]
)
def test_gzip_lines_refuse_a_broken_stream(body: bytes) -> None:
    with pytest.raises(CompactionInputError):
        list(iter_gzip_lines(io.BytesIO(body), resource="r"))


def test_generation_depends_on_the_inputs_only() -> None:
    a = [ObjectInfo("raw/a", '"1"', 10), ObjectInfo("raw/b", '"2"', 20)]
    assert generation_of(a) == generation_of(a[::-1])
    assert generation_of(a) != generation_of([*a, ObjectInfo("raw/c", '"3"', 5)])
    assert generation_of(a) != generation_of([a[0], ObjectInfo("raw/b", '"9"', 20)])
    assert part_name(generation_of(a), 3).endswith("-00003.jsonl.gz")


def test_scheduled_days_are_yesterday_and_the_lookback_window() -> None:
    assert scheduled_days(date(2026, 3, 1), 2) == [date(2026, 2, 26), date(2026, 2, 27), date(2026, 2, 28)]
    assert scheduled_days(date(2026, 1, 1), 0) == [date(2025, 12, 31)]


def test_scheduled_event_is_recognised_by_its_detail_type() -> None:
    assert is_scheduled_event({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    assert not is_scheduled_event({"table": "orders", "dt": "2026-11-22"})
    assert not is_scheduled_event([])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"table": "a/b", "dt": "2026-11-22"}, "table"),
        ({"table": "..", "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-13-01"}, "dt"),
        ({"table": "orders", "dt": 20261122}, "dt"),
        ({"table": "orders", "dt": "2026-11-22", "hour": "7"}, "hour"),
        ({"table": "orders", "dt": "2026-11-22", "extra": 1}, "extra"),
        ("orders", "event"),
        ({"handoff": "other", "partitions": ["orders/dt=2026-11-22/hour=01"]}, "handoff"),
        ({"handoff": "changelake.compaction", "partitions": []}, "partitions"),
    ],
)
def test_bad_events_name_the_field(event: object, field: str) -> None:
    service = CompactionService(Compactor(S3Store("unused", client=object())))
    with pytest.raises(InvalidEventError) as raised:
        service.plan(event)
    assert raised.value.field.split(".")[0] == field


def test_good_events_parse() -> None:
    assert ManualEvent.model_validate({"table": "orders", "dt": "2026-11-22"}).hour is None
    service = CompactionService(Compactor(S3Store("unused", client=object())))
    trigger, partitions = service.plan(
        HandoffEvent(
            handoff="changelake.compaction", partitions=["orders/dt=2026-11-22/hour=05"]
        ).model_dump()
    )
    assert trigger == "handoff"
    assert [p.path for p in partitions] == ["orders/dt=2026-11-22/hour=05"]
    _, manual = service.plan({"table": "orders", "dt": "2026-11-22", "hour": "23"})
    assert [p.path for p in manual] == ["orders/dt=2026-11-22/hour=23"]


def test_spilled_runs_are_plain_until_the_plain_limit_then_compressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plain-spill limit a few runs large and a budget that spills many runs
    monkeypatch.setattr("changelake.compaction.sort.SPILL_PLAIN_BYTES", 60_000)
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
