"""The command's reading of the lake on a moto server, for a stack whose functions write under
prefixes of their own: tables, each hour's state, the figures per layer and the last change."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from changelake.compaction.compactor import Compactor
from changelake.formats.change_line import ChangeLine
from changelake.formats.layout import Partition, partition_key
from changelake.ingest.aggregator import raw_object
from changelake.integrations.s3 import S3Store
from changelake.snapshot.builder import SnapshotBuilder
from changelake.storage.limits import BuildLimits
from changelake_cli.lake import Lake, LakePrefixes, LakeStore, ReadBudget, SnapshotDay, SnapshotState
from tests.conftest import FakeLambdaContext, Stack
from tests.functional.snapshot.support import create_table, put_raw
from tests.functional.snapshot.test_bootstrap import EXPORT, EXPORT_ID, PREFIX, item_changes, service
from tests.snapshot_support import change

DAY = date(2026, 11, 21)
PREFIXES = LakePrefixes(raw="r", compacted="c", snapshot="s", lost="l")
SEQ = 10**20


def put_hour(stack: Stack, hour: int, lines: list[ChangeLine]) -> str:
    """One raw object of ``lines`` in hour ``hour`` of DAY, under the stack's raw prefix."""
    name, body = raw_object(lines)
    key = partition_key(PREFIXES.raw, Partition("orders", DAY, hour), name)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    return key


def lake_of(stack: Stack) -> Lake:
    return Lake(LakeStore(stack.bucket, client=stack.s3), PREFIXES)


def test_a_lake_under_other_prefixes_is_read_where_the_functions_write(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three hours of "orders" under the raw prefix "r": hour 08 compacted, hour 09 compacted
    # and then given a late raw file, hour 10 never compacted; and the day's snapshot under "s"
    put_hour(stack, 8, [change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT")])
    put_hour(stack, 9, [change("b", "2026-11-21T09:00:00+00:00", SEQ + 2, name="INSERT")])
    store = S3Store(stack.bucket, client=stack.s3)
    compactor = Compactor(store, raw_prefix="r", compacted_prefix="c", limits=BuildLimits(spill_dir=tmp_path))
    for hour in (8, 9):
        compactor.compact(Partition("orders", DAY, hour))
    SnapshotBuilder(
        store,
        raw_prefix="r",
        compacted_prefix="c",
        snapshot_prefix="s",
        limits=BuildLimits(spill_dir=tmp_path),
    ).bring_up_to_date("orders", DAY)
    put_hour(stack, 9, [change("c", "2026-11-21T09:30:00+00:00", SEQ + 3, name="INSERT")])
    put_hour(stack, 10, [change("d", "2026-11-21T10:00:00+00:00", SEQ + 4, name="INSERT")])
    lake = lake_of(stack)

    # WHEN the command reads the table's day and its last change
    report = lake.day_report("orders", DAY, ReadBudget())
    last = lake.last_change("orders")

    # THEN it finds the table, each hour in its state, and every layer's files and changes
    assert lake.tables() == ["orders"]
    assert report.hours == {"08": "compacted", "09": "stale", "10": "pending"}
    assert (report.raw.files, report.raw.changes, report.raw.complete) == (4, 4, True)
    assert (report.compacted.files, report.compacted.changes) == (2, 2)
    assert (report.snapshot.files, report.snapshot.changes) == (1, 2)
    # AND the last change is the newest raw object's, from its newest partition
    assert last is not None
    assert (last.partition, last.event_time) == ("dt=2026-11-21/hour=10", "2026-11-21T10:00:00.000Z")


def test_an_unreadable_manifest_makes_its_hour_stale(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a compacted hour whose manifest is replaced by something that is not one
    put_hour(stack, 8, [change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT")])
    Compactor(S3Store(stack.bucket, client=stack.s3), raw_prefix="r", compacted_prefix="c").compact(
        Partition("orders", DAY, 8)
    )
    manifest_key = partition_key("c", Partition("orders", DAY, 8), "_manifest.json")
    stack.s3.put_object(Bucket=stack.bucket, Key=manifest_key, Body=json.dumps({"format": 99}).encode())

    # WHEN the command reads the day
    report = lake_of(stack).day_report("orders", DAY, ReadBudget())

    # THEN the hour is stale (the next compaction replaces the manifest), its raw lines counted
    assert report.hours == {"08": "stale"}
    assert (report.raw.changes, report.compacted.changes) == (1, 0)


def test_each_hours_changes_are_counted_and_an_hour_past_the_budget_is_a_floor(stack: Stack) -> None:
    # GIVEN a compacted hour of two changes and a pending hour of two raw objects
    put_hour(
        stack,
        8,
        [
            change("a", "2026-11-21T08:00:00+00:00", SEQ + 1),
            change("b", "2026-11-21T08:01:00+00:00", SEQ + 2),
        ],
    )
    Compactor(S3Store(stack.bucket, client=stack.s3), raw_prefix="r", compacted_prefix="c").compact(
        Partition("orders", DAY, 8)
    )
    put_hour(stack, 10, [change("c", "2026-11-21T10:00:00+00:00", SEQ + 3)])
    put_hour(stack, 10, [change("d", "2026-11-21T10:30:00+00:00", SEQ + 4)])
    lake = lake_of(stack)

    # WHEN the day is read with room for every object, then with room for one raw GET only
    whole = lake.day_report("orders", DAY, ReadBudget())
    floor = lake.day_report("orders", DAY, ReadBudget(objects=1))

    # THEN each hour has its changes: the compacted one from its manifest, the pending one counted
    assert (whole.changes_by_hour, whole.hours_counted_in_part) == ({"08": 2, "10": 2}, [])
    # AND past the budget the pending hour's count is a floor, and said to be one
    assert (floor.changes_by_hour, floor.hours_counted_in_part) == ({"08": 2, "10": 1}, ["10"])
    assert (floor.raw.changes, floor.raw.complete) == (3, False)


def test_the_snapshot_state_is_the_newest_day_and_the_bootstrap(stack: Stack, tmp_path: Path) -> None:
    # GIVEN "orders" bootstrapped from the fixture export of 2026-11-21T06:00Z (5 items), with changes
    # from before it on, and its days built up to 2026-11-22
    for path in sorted((EXPORT / "AWSDynamoDB" / EXPORT_ID).rglob("*")):
        if path.is_file():
            key = f"{PREFIX}/{path.relative_to(EXPORT / 'AWSDynamoDB' / EXPORT_ID)}"
            stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=path.read_bytes())
    create_table()
    put_raw(stack, item_changes())
    context = FakeLambdaContext()
    service(stack, tmp_path).handle(
        {"table": "orders", "bootstrap": f"s3://{stack.bucket}/{PREFIX}/manifest-summary.json"}, context
    )
    service(stack, tmp_path).handle({"table": "orders", "dt": "2026-11-22"}, context)
    lake = Lake(LakeStore(stack.bucket, client=stack.s3))

    # WHEN the command reads the table's snapshot state
    state = lake.snapshot_state("orders")

    # THEN the newest day is 2026-11-22 with its items, and the bootstrap says when and from what
    assert state.last_day == SnapshotDay(date(2026, 11, 22), 5, "2026-11-23T00:45:00Z", "snapshot")
    assert state.bootstrap is not None
    assert (state.bootstrap.export_time, state.bootstrap.items, state.bootstrap.first_day) == (
        "2026-11-21T06:00:00.000Z",
        5,
        date(2026, 11, 21),
    )
    assert state.bootstrap.missing_possible is False
    assert state.bootstrap.bootstrapped_at.startswith("2026-11-23T00:45:00")
    # AND a table never snapshotted has neither
    assert lake.snapshot_state("payments") == SnapshotState(None, None)
