"""The bootstrap Scan's pure parts: its plan (segments, read rate), the token bucket, its events."""

from __future__ import annotations

import pytest

from changelake.exceptions import InvalidEventError
from changelake.snapshot.scan_export import (
    BYTES_PER_READ_UNIT,
    MAX_SEGMENT_BYTES,
    ON_DEMAND_SCAN_READ_UNITS,
    SCAN_CONCURRENCY,
    SCAN_READ_SHARE,
    SEGMENT_SECONDS,
    TokenBucket,
    parse_scan_event,
    scan_plan,
)

GB = 10**9


def test_a_provisioned_table_is_read_at_its_share_of_capacity_split_over_the_running_segments() -> None:
    # GIVEN a 10 GB table with 400 provisioned read units
    # WHEN its Scan is planned
    plan = scan_plan(10 * GB, 400)

    # THEN all segments together read at a quarter of it, each sized for about 10 minutes
    assert plan.read_units_per_second * SCAN_CONCURRENCY == 400 * SCAN_READ_SHARE
    segment_bytes = plan.read_units_per_second * BYTES_PER_READ_UNIT * SEGMENT_SECONDS
    assert (plan.segments - 1) * segment_bytes < 10 * GB <= plan.segments * segment_bytes
    assert plan.seconds == pytest.approx(10 * GB / (100 * BYTES_PER_READ_UNIT))


def test_an_on_demand_table_is_read_at_the_documented_fixed_rate_and_a_small_one_still_in_parallel() -> None:
    # GIVEN an on-demand table (0 provisioned units), large and tiny
    large, tiny = scan_plan(10 * GB, 0), scan_plan(1000, 0)

    # THEN the rate is the fixed one, and even a tiny table gets one segment per running function
    assert large.read_units_per_second * SCAN_CONCURRENCY == ON_DEMAND_SCAN_READ_UNITS
    assert large.segments == 38  # 10 GB in segments of 256 MiB (10 minutes would be 2.46 GB)
    assert tiny.segments == SCAN_CONCURRENCY


def test_no_segment_holds_more_items_than_a_function_builds_in_memory() -> None:
    # GIVEN on-demand and generously provisioned tables of 1 GB to 200 GB
    for table_bytes in (GB, 10 * GB, 200 * GB):
        for read_units in (0, 40_000):
            # WHEN each Scan is planned
            plan = scan_plan(table_bytes, read_units)

            # THEN its segments together cover the table and none is over MAX_SEGMENT_BYTES
            assert table_bytes / plan.segments <= MAX_SEGMENT_BYTES


def test_the_token_bucket_waits_off_the_units_a_page_consumed_beyond_the_rate() -> None:
    # GIVEN a bucket of 100 units a second and a clock that stands still
    slept: list[float] = []
    bucket = TokenBucket(100.0, clock=lambda: 0.0, sleep=slept.append)

    # WHEN pages take 60, then 90 units at once
    bucket.take(60)
    bucket.take(90)

    # THEN the first fits in the second's burst, the second waits the 50 units of debt off (0.5 s)
    assert slept == [pytest.approx(0.5)]


@pytest.mark.parametrize(
    ("scan", "field"),
    [
        ({"export_id": "x", "segments": 2}, "scan"),
        ({"export_id": "x", "segments": 2, "segment": 2, "read_units_per_second": 5}, "scan.segment"),
        ({"export_id": "x", "segments": 2, "segment": 0}, "scan.segment"),
        ({"export_id": "x", "segments": 2, "commit": True}, "scan.started"),
        (
            {"export_id": "../x", "segments": 2, "commit": True, "started": "2026-11-27T12:00:00Z"},
            "scan.export_id",
        ),
        (
            {"export_id": "x", "segments": 0, "commit": True, "started": "2026-11-27T12:00:00Z"},
            "scan.segments",
        ),
    ],
)
def test_a_malformed_scan_event_is_refused_naming_the_field(scan: dict[str, object], field: str) -> None:
    # GIVEN a scan event with one thing wrong WHEN it is parsed THEN the error names the field
    with pytest.raises(InvalidEventError) as refused:
        parse_scan_event({"table": "orders", "scan": scan})
    assert refused.value.field == field
