"""The event-time ranges of an hour's slices."""

from __future__ import annotations

import pytest

from changelake.compaction.slices import HOUR_MS, Slice


def event_time(milliseconds: int) -> str:
    minutes, rest = divmod(milliseconds, 60_000)
    return f"2026-11-22T12:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}Z"


@pytest.mark.parametrize("count", [1, 2, 3, 7, 1000])
def test_the_slices_of_an_hour_cover_it_without_gaps_or_overlaps(count: int) -> None:
    # GIVEN the slices of an hour WHEN each instant at and around their boundaries is asked
    slices = [Slice(index, count) for index in range(count)]
    points = {0, HOUR_MS - 1} | {
        s.start_ms + d for s in slices for d in (-1, 0, 1) if 0 <= s.start_ms + d < HOUR_MS
    }

    # THEN exactly one slice holds it: the one whose floor-divided range contains it
    for point in points:
        (holder,) = [s.index for s in slices if s.holds(event_time(point))]
        assert slices[holder].start_ms <= point < slices[holder].end_ms


def test_slice_bounds_are_floor_divided_milliseconds() -> None:
    # GIVEN slice 1 of 7 THEN it spans [514285, 1028571) ms: 12:08:34.285 included, 12:17:08.571 not
    middle = Slice(1, 7)
    assert (middle.start_ms, middle.end_ms) == (514_285, 1_028_571)
    assert middle.holds("2026-11-22T12:08:34.285Z")
    assert not middle.holds("2026-11-22T12:08:34.284Z")
    assert middle.holds("2026-11-22T12:17:08.570Z")
    assert not middle.holds("2026-11-22T12:17:08.571Z")
