"""Helpers for the snapshot's functional tests: raw/ written as the aggregator does, snapshots read
back as a reader globbing ``dt=*/*.jsonl.gz`` would, and the expected table computed independently."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from changelake.formats.change_line import ChangeLine
from changelake.formats.layout import Partition, partition_key
from changelake.ingest.aggregator import raw_object
from changelake.integrations.s3 import S3Store
from changelake.snapshot.builder import SnapshotBuilder
from changelake.storage.limits import BuildLimits
from tests.conftest import REGION, Stack

TABLE = "orders"


def create_table(table: str = TABLE) -> None:
    """``table`` on the moto server with ChangeTable's key schema (pk, sk), for DescribeTable."""
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=table,
        # range key first: the bootstrap must not rely on DescribeTable's order
        KeySchema=[{"AttributeName": "sk", "KeyType": "RANGE"}, {"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def put_raw(stack: Stack, lines: list[ChangeLine]) -> list[str]:
    """``lines`` as raw/ objects, one per hour partition, exactly as the aggregator writes them."""
    by_partition: dict[Partition, list[ChangeLine]] = defaultdict(list)
    for line in lines:
        by_partition[Partition.of_event_time(line.table, line.event_time)].append(line)
    keys = []
    for partition, changes in sorted(by_partition.items()):
        name, body = raw_object(changes)
        keys.append(partition_key("raw", partition, name))
        stack.s3.put_object(Bucket=stack.bucket, Key=keys[-1], Body=body)
    return keys


def builder(stack: Stack, tmp_path: Path, client: Any = None, **overrides: Any) -> SnapshotBuilder:
    return SnapshotBuilder(
        S3Store(stack.bucket, client=client or stack.s3),
        **({"limits": BuildLimits(spill_dir=tmp_path)} | overrides),
    )


def clock(at: str) -> Any:
    moment = datetime.fromisoformat(at).astimezone(UTC)
    return lambda: moment


def exact(line: bytes) -> dict[str, Any]:
    return dict(json.loads(line, parse_float=Decimal, parse_int=Decimal))


def data_keys(stack: Stack, day: date, table: str = TABLE) -> list[str]:
    """The data files of a day, as a reader's glob sees them (names starting with ``_`` are not data)."""
    folder = f"snapshot/{table}/dt={day.isoformat()}/"
    return [
        key
        for key in stack.keys(folder)
        if key.endswith(".jsonl.gz") and not key[len(folder) :].startswith(("_", "."))
    ]


def snapshot_lines(stack: Stack, day: date, table: str = TABLE) -> list[bytes]:
    return [
        line for key in data_keys(stack, day, table) for line in gzip.decompress(stack.read(key)).splitlines()
    ]


def read_snapshot(stack: Stack, day: date, table: str = TABLE) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The day's items by key; fails if an item appears twice or lines are out of key order."""
    lines = snapshot_lines(stack, day, table)
    documents = [exact(line) for line in lines]
    keys = [tuple(sorted(document["keys"].items())) for document in documents]
    assert len(set(keys)) == len(keys), "an item appears twice"
    assert [line[: line.index(b',"table":')] for line in lines] == sorted(
        line[: line.index(b',"table":')] for line in lines
    ), "not sorted by key"
    return dict(zip(keys, documents, strict=True))


def manifest(stack: Stack, day: date, table: str = TABLE) -> dict[str, Any]:
    return dict(json.loads(stack.read(f"snapshot/{table}/dt={day.isoformat()}/_manifest.json")))


def expected_table(changes: list[ChangeLine], day: date) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The table at the end of ``day``, replayed independently: per item, the change with the highest
    sequence number up to that day; a REMOVE leaves it absent."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for change in changes:
        record = exact(change.line)
        if date.fromisoformat(record["event_time"][:10]) > day:
            continue
        key = tuple(sorted(record["keys"].items()))
        if key not in latest or int(record["sequence_number"]) > int(latest[key]["sequence_number"]):
            latest[key] = record
    return {key: record for key, record in latest.items() if record["event_name"] != "REMOVE"}


def assert_snapshot_is(stack: Stack, day: date, changes: list[ChangeLine], table: str = TABLE) -> None:
    """The day's snapshot holds exactly the expected items, each with its latest change's fields."""
    actual = read_snapshot(stack, day, table)
    expected = expected_table(changes, day)
    assert sorted(actual) == sorted(expected)
    for key, record in expected.items():
        document = actual[key]
        assert document["item"] == record["new_image"], key
        assert (document["event_id"], document["event_time"], document["sequence_number"]) == (
            record["event_id"],
            record["event_time"],
            record["sequence_number"],
        )
        assert document["table"] == table
