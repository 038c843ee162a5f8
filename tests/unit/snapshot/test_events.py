"""SnapshotFunction's events: scheduled, manual and bootstrap; malformed ones refused naming the field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from changelake.exceptions import InvalidEventError
from changelake.snapshot.events import (
    BootstrapEvent,
    BucketCommitEvent,
    BucketEvent,
    ManualEvent,
    PlanEvent,
    ScheduledEvent,
    parse_event,
)

EVENTS = Path(__file__).resolve().parents[3] / "events"
SUMMARY = "s3://changelake-data/exports/orders/AWSDynamoDB/01795348800000-a1b2c3d4/manifest-summary.json"


def test_the_sample_events_parse_to_their_kinds() -> None:
    # GIVEN the committed sample events WHEN parsed THEN each is the kind its name says
    def load(name: str) -> Any:
        return json.loads((EVENTS / name).read_text())

    assert isinstance(parse_event(load("snapshot_scheduled.json")), ScheduledEvent)
    manual = parse_event(load("snapshot_manual.json"))
    assert isinstance(manual, ManualEvent)
    assert manual.day == date(2026, 11, 22)
    bootstrap = parse_event(load("snapshot_bootstrap.json"))
    assert isinstance(bootstrap, BootstrapEvent)
    # AND the bootstrap sample names the local stack's DataBucket (the one bucket the function reads)
    assert bootstrap.bucket == load("env.json")["SnapshotFunction"]["BUCKET_NAME"]


def test_a_bootstrap_url_gives_the_export_folder() -> None:
    # GIVEN a bootstrap event with a prefix, and one without
    event = parse_event({"table": "orders", "bootstrap": SUMMARY})
    bare = parse_event(
        {"table": "orders", "bootstrap": "s3://bucket-1/AWSDynamoDB/0179-ab/manifest-summary.json"}
    )
    # WHEN its parts are read THEN the bucket, folder and export id are the URL's
    assert isinstance(event, BootstrapEvent)
    assert isinstance(bare, BootstrapEvent)
    assert event.bucket == "changelake-data"
    assert event.export_folder == "exports/orders/AWSDynamoDB/01795348800000-a1b2c3d4"
    assert event.export_id == "01795348800000-a1b2c3d4"
    assert event.summary_key == event.export_folder + "/manifest-summary.json"
    assert (bare.bucket, bare.export_folder) == ("bucket-1", "AWSDynamoDB/0179-ab")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "event"),
        ({"table": "orders"}, "dt"),
        ({"table": "orders", "dt": "2026-11-31"}, "dt"),
        ({"table": "orders", "dt": "22.11.2026"}, "dt"),
        ({"table": "orders", "dt": 20261122}, "dt"),
        ({"table": "../etc", "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-11-22", "hour": "12"}, "hour"),
        (
            {"table": "orders", "bootstrap": "https://bucket/x/AWSDynamoDB/1/manifest-summary.json"},
            "bootstrap",
        ),
        ({"table": "orders", "bootstrap": "s3://bucket/x/AWSDynamoDB/1/manifest-files.json"}, "bootstrap"),
        ({"table": "orders", "bootstrap": "s3://bucket/x/exports/1/manifest-summary.json"}, "bootstrap"),
        (
            {"table": "orders", "bootstrap": "s3://Bucket_Name/AWSDynamoDB/1/manifest-summary.json"},
            "bootstrap",
        ),
        ({"table": "x", "bootstrap": SUMMARY}, "table"),
        ({"table": "orders", "bootstrap": SUMMARY, "dt": "2026-11-22"}, "dt"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(event: Any, field: str) -> None:
    # GIVEN a malformed manual or bootstrap event WHEN parsed THEN InvalidEventError names the field
    with pytest.raises(InvalidEventError) as raised:
        parse_event(event)
    assert raised.value.field == field


def test_the_fan_out_events_parse_to_their_kinds() -> None:
    # GIVEN a bucket event, a commit event and a plan event
    day = {"table": "orders", "dt": "2026-11-22"}
    # WHEN parsed THEN each is its kind, with its fields
    bucket = parse_event(day | {"buckets": 4, "bucket": 3})
    assert isinstance(bucket, BucketEvent)
    assert (bucket.piece.index, bucket.piece.count, bucket.day) == (3, 4, date(2026, 11, 22))
    commit = parse_event(day | {"buckets": 4, "commit": True})
    assert isinstance(commit, BucketCommitEvent)
    assert commit.buckets == 4
    assert isinstance(parse_event(day | {"plan": True}), PlanEvent)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"buckets": 0, "bucket": 0}, "buckets"),
        ({"buckets": 1001, "bucket": 0}, "buckets"),
        ({"buckets": "4", "bucket": 0}, "buckets"),
        ({"buckets": 4.0, "bucket": 0}, "buckets"),
        ({"buckets": 4, "bucket": 4}, "bucket"),
        ({"buckets": 4, "bucket": -1}, "bucket"),
        ({"buckets": 4, "bucket": True}, "bucket"),
        ({"bucket": 1}, "buckets"),
        ({"buckets": 4}, "bucket"),
        ({"buckets": 4, "commit": False}, "commit"),
        ({"buckets": 4, "commit": True, "bucket": 1}, "bucket"),
        ({"commit": True}, "buckets"),
        ({"plan": 1}, "plan"),
        ({"plan": True, "buckets": 2}, "buckets"),
    ],
)
def test_a_malformed_fan_out_event_is_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    # GIVEN a day event with malformed fan-out fields WHEN parsed THEN it is refused naming the field
    with pytest.raises(InvalidEventError) as refused:
        parse_event({"table": "orders", "dt": "2026-11-22"} | fields)
    assert refused.value.field == field
