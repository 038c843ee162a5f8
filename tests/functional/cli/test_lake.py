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
from changelake_cli.lake import Lake, LakePrefixes, LakeStore, ReadBudget
from tests.conftest import Stack
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
    compactor = Compactor(store, raw_prefix="r", compacted_prefix="c", spill_dir=tmp_path)
    for hour in (8, 9):
        compactor.compact(Partition("orders", DAY, hour))
    SnapshotBuilder(
        store, raw_prefix="r", compacted_prefix="c", snapshot_prefix="s", spill_dir=tmp_path
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
