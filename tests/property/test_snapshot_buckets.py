"""Days built in buckets hold exactly the lines single invocations write, whatever the counts.

Each example: a random history of a few items over three days (``test_snapshot_state``'s, with its
event times around the midnights and its late arrivals), and a random count of buckets for each day
(1 included, and different counts on consecutive days, so a bucket reads a base built in another
count, merged by key). Every day is built in its buckets and committed, in order; the same history
is built by single invocations elsewhere. Each day must hold the same set of lines and the same
counts. Then the late changes arrive, and the days are built again in buckets (new counts): a late
change rebuilds its bucketed day and every day after it, again equal to single invocations'.
"""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import date, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from changelake.pieces import Piece
from changelake.snapshot.builder import SnapshotBuilder
from tests.conftest import Stack
from tests.functional.snapshot.support import builder, put_raw
from tests.property.conftest import MAX_EXAMPLES
from tests.property.test_snapshot_state import DAYS, history, steps

COUNTS = (
    "items",
    "changes_read",
    "duplicates",
    "changes_applied",
    "inserted",
    "updated",
    "removed",
    "kept",
    "outdated",
    "removed_keys",
)
bucket_counts = st.lists(st.integers(1, 4), min_size=len(DAYS), max_size=len(DAYS))
_tables = itertools.count()


def lines(stack: Stack, prefix: str, table: str, day: date) -> list[bytes]:
    folder = f"{prefix}/{table}/dt={day.isoformat()}/"
    keys = [key for key in stack.keys(folder) if key[len(folder) :].startswith("part-")]
    return sorted(line for key in keys for line in gzip.decompress(stack.read(key)).splitlines())


def counts(stack: Stack, prefix: str, table: str, day: date) -> list[int]:
    document = json.loads(stack.read(f"{prefix}/{table}/dt={day.isoformat()}/_manifest.json"))
    return [document["counts"][name] for name in COUNTS]


def in_buckets(snapshots: SnapshotBuilder, table: str, per_day: list[int]) -> list[date]:
    """Every day of ``table`` from its first one built in buckets (``per_day``) and committed, in order."""
    origin = snapshots.origin(table)
    if origin is None:
        return []
    days = []
    day = origin.day
    while day <= DAYS[-1]:
        count = per_day[DAYS.index(day)]
        for index in range(count):
            snapshots.build_bucket(table, day, Piece(index, count))
        snapshots.commit_buckets(table, day, count)
        days.append(day)
        day += timedelta(days=1)
    return days


def assert_equal_days(stack: Stack, table: str, days: list[date]) -> None:
    for day in days:
        assert lines(stack, "snapshot", table, day) == lines(stack, "single", table, day), day
        assert counts(stack, "snapshot", table, day) == counts(stack, "single", table, day), day


@settings(max_examples=MAX_EXAMPLES)
@given(writes=steps, long_from=st.integers(0, 25), first_counts=bucket_counts, late_counts=bucket_counts)
def test_days_built_in_buckets_equal_single_invocations(
    stack: Stack,
    tmp_path: Path,
    writes: list,
    long_from: int,
    first_counts: list[int],
    late_counts: list[int],
) -> None:
    # GIVEN a history, part of it arriving late, and a count of buckets per day
    table = f"bucketed{next(_tables):04d}"
    changes = history(table, writes, long_from)
    bucketed = builder(stack, tmp_path)
    single = builder(stack, tmp_path, snapshot_prefix="single")

    # WHEN the days are built in buckets from what arrived first, and by single invocations
    put_raw(stack, [line for line, late in changes if not late])
    days = in_buckets(bucketed, table, first_counts)
    single.bring_up_to_date(table, DAYS[-1])

    # THEN each day holds the same lines and counts
    assert_equal_days(stack, table, days)

    # WHEN the late changes arrive and the days are built again in buckets (other counts), and singly
    put_raw(stack, [line for line, late in changes if late])
    days = in_buckets(bucketed, table, late_counts)
    single.bring_up_to_date(table, DAYS[-1])

    # THEN the late changes' days and every later one are rebuilt, equal to single invocations' again
    assert_equal_days(stack, table, days)
