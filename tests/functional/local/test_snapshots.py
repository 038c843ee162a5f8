"""make run's snapshot check (changelake_local.snapshots) on moto: it passes a right snapshot, catches a
wrong one, and its export reads back through the bootstrap."""

from __future__ import annotations

import gzip
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from changelake.formats.change_line import to_change_line
from changelake.snapshot.bootstrap import Bootstrapper
from changelake.snapshot.events import BootstrapEvent
from changelake_local.generator import _as_boto3
from changelake_local.snapshots import SnapshotChecker, scan, write_export
from changelake_testing.stream_records import realistic_item, stream_record
from tests.conftest import REGION, Stack
from tests.functional.snapshot.support import builder, create_table, data_keys, put_raw

DAY = datetime(2026, 11, 21, 12, tzinfo=UTC)


def table_with_items(stack: Stack, endpoint: str) -> list[dict[str, Any]]:
    """ChangeTable's shape on moto with three realistic items (every type, sets); their DynamoDB JSON."""
    create_table()
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    rng = random.Random(5)
    items = [realistic_item(rng, f"customer#{n}") for n in range(3)]
    for item in items:
        dynamodb.put_item(TableName="orders", Item=_as_boto3(item))
    return items


def inserted(items: list[dict[str, Any]]) -> list:
    return [
        to_change_line(
            stream_record(
                table="orders",
                event_name="INSERT",
                sequence_number=10**20 + index,
                created=DAY.timestamp() + index,
                keys={"pk": item["pk"], "sk": item["sk"]},
                new_image=item,
            )
        )
        for index, item in enumerate(items)
    ]


def test_a_snapshot_equal_to_the_table_passes_and_a_wrong_one_is_caught(
    stack: Stack, endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a table of three items, their INSERTs in raw/, and the day's snapshot built
    items = table_with_items(stack, endpoint)
    put_raw(stack, inserted(items))
    builder(stack, tmp_path).bring_up_to_date("orders", DAY.date())
    final_scan = scan(endpoint, "orders")
    checker = SnapshotChecker(endpoint, stack.bucket, "orders")

    # WHEN it is checked against the Scan THEN it passes, every item compared
    verified = checker.verify(final_scan)
    assert verified.ok, verified
    assert (verified.last_day, verified.items) == ("2026-11-21", 3)

    # WHEN one item's value is changed and another item dropped in the snapshot
    (key,) = data_keys(stack, DAY.date())
    lines = gzip.decompress(stack.read(key)).splitlines()
    lines[0] = lines[0].replace(b'"active":', b'"was_active":', 1)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=gzip.compress(b"\n".join(lines[:2]) + b"\n"))
    wrong = checker.verify(final_scan)

    # THEN the check fails, naming both
    assert not wrong.ok
    assert len(wrong.different) == 1
    assert len(wrong.missing) == 1


def test_the_removed_keys_beside_a_day_are_not_read_as_a_day_or_as_data(
    stack: Stack, endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a table of three items, one of them then deleted, its REMOVE in raw/ and the day built
    items = table_with_items(stack, endpoint)
    keys = {"pk": items[0]["pk"], "sk": items[0]["sk"]}
    boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint).delete_item(
        TableName="orders", Key=_as_boto3(keys)
    )
    remove = stream_record(
        table="orders",
        event_name="REMOVE",
        sequence_number=10**20 + 10,
        created=DAY.timestamp() + 10,
        keys=keys,
        new_image=None,
        old_image=items[0],
    )
    put_raw(stack, [*inserted(items), to_change_line(remove)])
    builder(stack, tmp_path).bring_up_to_date("orders", DAY.date())
    assert stack.keys("snapshot/orders/dt=2026-11-21/_removed/")

    # WHEN it is checked against the Scan THEN it passes: one day of the two items left
    verified = SnapshotChecker(endpoint, stack.bucket, "orders").verify(scan(endpoint, "orders"))
    assert verified.ok, verified
    assert (verified.last_day, verified.items) == ("2026-11-21", 2)


def test_the_runner_s_export_is_read_back_by_the_bootstrap(
    stack: Stack, endpoint: str, tmp_path: Path
) -> None:
    # GIVEN the table's items exported by the runner in AWS's layout
    items = table_with_items(stack, endpoint)
    url = write_export(endpoint, stack.bucket, "orders", scan(endpoint, "orders"), DAY)

    # WHEN bootstrapped from it
    result = Bootstrapper(builder(stack, tmp_path)).run(BootstrapEvent(table="orders", bootstrap=url))

    # THEN every item is read, as of the export time
    assert (result.items_read, result.export_time, result.files) == (3, "2026-11-21T12:00:00.000Z", 3)
    assert len(items) == 3
