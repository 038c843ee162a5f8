"""The local stack end to end: template.yaml on moto, the mappings runner, load, drain, verification.

Runs the real pipeline for a short while with a poison record injected into the stream and the
aggregator's first invocations failing, and checks the run's own verification plus the lake.
"""

from __future__ import annotations

import base64
import errno
import gzip
import json
import os
import re
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from changelake_local import Hooks, RunOptions, run_pipeline
from changelake_local.deploy import DeployedStack
from changelake_local.endpoint import HOST, MotoEndpoint, PortInUseError, check_port_free, moto_api
from changelake_local.errors import TemplateError
from changelake_local.esm import lambda_stream_record
from changelake_local.user_tables import ITEMS_BEFORE_STREAM
from changelake_testing.tables import pk_sk_table

pytestmark = pytest.mark.integration

FAST = {"AggregatorBatchingWindowSeconds": "2", "StreamBatchingWindowSeconds": "1"}


class PoisonOnce:
    """Gives the first INSERT it sees an attribute with an unknown type tag (cannot be converted)."""

    def __init__(self) -> None:
        self.event_id: str | None = None

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            if self.event_id is None and record["eventName"] == "INSERT":
                record["dynamodb"]["NewImage"]["poison"] = {"X": "not a DynamoDB type"}
                self.event_id = record["eventID"]
        return records


class FailFirstAggregations:
    """The aggregator 'crashes' on its first ``count`` invocations (before touching anything)."""

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.failed = 0

    def __call__(self, function: str, event: dict[str, Any]) -> None:
        if function == "AggregatorFunction" and self.remaining > 0:
            self.remaining -= 1
            self.failed += 1
            raise RuntimeError("injected aggregator failure")


def test_poison_and_failing_aggregator_lose_nothing(tmp_path: Path) -> None:
    # GIVEN the stack deployed from template.yaml, a poison record and an aggregator failing 3 times
    poison, failures = PoisonOnce(), FailFirstAggregations(3)
    deployed: list[DeployedStack] = []
    # WHEN it streams for 12 s, then drains, redrives the dead letters, compacts and verifies
    summary = run_pipeline(
        RunOptions(
            duration=12,
            rate=25,
            night=6,
            parameters=FAST,
            hooks=Hooks(stream_records=poison, before_invoke=failures),
            lake_dir=tmp_path / "lake",
            failed_visibility_seconds=1,
            drain_timeout=90,
        ),
        on_deployed=deployed.append,
    )
    # THEN the verification passes: nothing lost, everything exactly once in compacted/
    assert summary.ok, summary.render()
    # AND the stack was announced once deployed, on the port the server chose (RunOptions' port is 0)
    (stack,) = deployed
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", stack.endpoint), stack.endpoint
    assert summary.written > 100
    assert summary.stream_records == summary.written
    assert summary.verification.missing_in_raw == []
    assert summary.verification.duplicated_in_compacted == []
    assert summary.compacted_records == summary.raw_unique == summary.written - 1
    # AND the poison record is in quarantine, not in raw/
    assert poison.event_id is not None
    assert summary.quarantined_ids == [poison.event_id]
    lake = tmp_path / "lake"
    raw_ids = {
        json.loads(line)["event_id"]
        for path in (lake / "raw").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
    }
    assert poison.event_id not in raw_ids
    quarantined = [
        json.loads(line)
        for path in (lake / "quarantine").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    assert [entry["record"]["eventID"] for entry in quarantined] == [poison.event_id]
    # AND the aggregator failed, a message reached ChangeDLQ and the redrive moved it back
    assert failures.failed == 3
    assert summary.function_errors.get("AggregatorFunction", 0) >= 3
    assert sum(int(result.get("moved", 0)) for result in summary.redriven) >= 1, summary.redriven
    # AND the DuckDB query over the local lake ran
    assert summary.duckdb_sample is not None
    assert "DuckDB could not" not in summary.duckdb_sample
    # AND its answer shows the items' 38-digit numbers exactly (a 38-digit integer, a 38-digit decimal)
    assert re.search(r"\b[1-9][0-9]{37}\b", summary.duckdb_sample), summary.duckdb_sample
    assert "1234567890123456789012345678.9012345678" in summary.duckdb_sample
    # AND the snapshot, bootstrapped halfway from an export, equals the table when the writes stopped
    assert summary.bootstrap is not None
    assert summary.bootstrap["items_read"] > 0, summary.bootstrap
    assert summary.snapshot is not None
    assert summary.snapshot.ok, summary.snapshot
    assert summary.snapshot.items > 0
    assert summary.duckdb_query is not None
    assert "snapshot" in summary.duckdb_query


def test_a_run_with_pieces_builds_every_hour_and_day_through_the_fan_out_and_is_verified(
    tmp_path: Path,
) -> None:
    # GIVEN the stack deployed with the fan-out's thresholds at 1 byte and 4 pieces (--pieces 4)
    # WHEN the pipeline streams for 10 s, then drains, compacts and snapshots through the state machine
    summary = run_pipeline(
        RunOptions(duration=10, rate=25, night=0, parameters=FAST, pieces=4, lake_dir=tmp_path / "lake")
    )
    # THEN every execution succeeded, each built its pieces, and the lake is VERIFIED as without them:
    # every change once in compacted/, the last snapshot equal to a Scan of the table
    assert summary.ok, summary.render()
    assert set(summary.fan_out_executions) == {"SUCCEEDED"}
    assert summary.fan_out_pieces >= 4 * 2  # an hour's 4 slices and a day's 4 buckets at least
    assert summary.fan_out_pieces % 4 == 0
    assert "the fan-out state machine built" in summary.render().splitlines()[-1]


def test_two_user_tables_are_attached_bootstrapped_and_verified_each(tmp_path: Path) -> None:
    # GIVEN two tables made as a user's exist (items before their streams; the first with
    # point-in-time recovery, the second without), and the stack deployed following both
    deployed: list[DeployedStack] = []
    # WHEN the pipeline streams into both for 10 s, bootstraps each with `changelake bootstrap`,
    # then drains, compacts and verifies
    summary = run_pipeline(
        RunOptions(duration=10, rate=25, night=0, tables=2, parameters=FAST, lake_dir=tmp_path / "lake"),
        on_deployed=deployed.append,
    )
    # THEN the run is VERIFIED for both: every change in raw/ and once in compacted/, each snapshot
    # equal to a Scan of its table, which holds the items from before its stream too
    assert summary.ok, summary.render()
    assert "for each of the 2 tables" in summary.render().splitlines()[-1]
    (stack,) = deployed
    assert not stack.creates_change_table
    assert sorted(spec.source_arn.split("/")[1] for spec in stack.mappings() if spec.is_stream) == [
        "user-table-1",
        "user-table-2",
    ]
    assert summary.stream_records == summary.written == summary.compacted_records > 0
    assert {s.table: s.ok for s in summary.snapshots} == {"user-table-1": True, "user-table-2": True}
    assert all(s.items >= ITEMS_BEFORE_STREAM for s in summary.snapshots)
    # AND one table was bootstrapped by export, the other by Scan, each with its items from before
    assert {table: b["method"] for table, b in summary.bootstraps.items()} == {
        "user-table-1": "export",
        "user-table-2": "scan",
    }
    assert all(b["items_read"] >= ITEMS_BEFORE_STREAM for b in summary.bootstraps.values())
    # AND the writes went to both tables
    assert {partition.split("/")[0] for partition in summary.files_per_partition} == {
        "user-table-1",
        "user-table-2",
    }


@pytest.mark.parametrize("listener_reuses_address", [False, True], ids=["plain", "like-our-server"])
def test_a_port_in_use_is_named(listener_reuses_address: bool) -> None:
    # GIVEN a port already taken by a listener (one binding as our own server does, too)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(listener_reuses_address))
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN the endpoint is started on it THEN the error names the port
        with pytest.raises(PortInUseError, match=str(port)):
            MotoEndpoint(port=port).start()


def port_left_in_time_wait() -> int:
    """A port nothing listens on any more, holding the server side of a closed connection: as the
    moto child leaves it when stopped (it closes first, so its end waits in TIME_WAIT a minute)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the moto server does
        listener.bind((HOST, 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            served, _ = listener.accept()
            served.close()  # the server closes first
        port: int = listener.getsockname()[1]
    return port


def test_connections_in_time_wait_do_not_block_the_port() -> None:
    # GIVEN a port whose last server closed its connection and stopped listening,
    # which a plain bind (the check before the fix) still finds taken
    port = port_left_in_time_wait()
    with socket.socket() as plain, pytest.raises(OSError, match=os.strerror(errno.EADDRINUSE)):
        plain.bind((HOST, port))
    # WHEN the port is checked and the endpoint is started on it
    check_port_free(port)
    with MotoEndpoint(port=port) as endpoint:
        # THEN the endpoint listens there and answers
        assert endpoint.port == port
        assert moto_api(endpoint.url, "data.json")


def test_a_template_error_stops_everything(tmp_path: Path) -> None:
    # GIVEN a template whose function has no code
    bad = tmp_path / "template.yaml"
    bad.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: app.handler, Runtime: python3.13}\n"
    )
    threads_before = threading.active_count()
    # WHEN the pipeline is run with it THEN a TemplateError explains it, and nothing is left running
    with pytest.raises(TemplateError, match="could not be translated"):
        run_pipeline(RunOptions(duration=1, template=bad, lake_dir=None))
    assert threading.active_count() <= threads_before


def test_env_json_matches_the_local_stack() -> None:
    # GIVEN the stack deployed to a fresh endpoint (names seeded, so every run gets the same ones)
    from changelake_local.deploy import deploy
    from changelake_local.invoke import ENV_JSON, docker_environment

    with MotoEndpoint(port=0) as endpoint:
        stack = deploy(endpoint.url)
        # WHEN events/env.json is compared with the stack's function environments
        expected = docker_environment(stack)
    # THEN they agree (regenerate with `python -m changelake_local env-json` when the template changes)
    assert json.loads(ENV_JSON.read_text()) == expected


def _stream_records(url: str, item: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write ``item`` twice (INSERT, MODIFY) to a new table at ``url``; its stream via boto3 and raw."""
    from changelake_local.aws import client
    from changelake_local.streams_wire import StreamsWire

    dynamodb, streams = client("dynamodb", url), client("dynamodbstreams", url)
    table = dynamodb.create_table(**pk_sk_table(f"wire-{uuid.uuid4().hex[:8]}", stream=True))[
        "TableDescription"
    ]
    dynamodb.put_item(TableName=table["TableName"], Item=item)
    dynamodb.put_item(TableName=table["TableName"], Item={**item, "amount": {"N": "2"}})
    arn = table["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def iterator() -> str:
        return str(
            streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ]
        )

    parsed = streams.get_records(ShardIterator=iterator())["Records"]
    wire = StreamsWire(url)
    try:
        raw = wire.call("GetRecords", {"ShardIterator": iterator(), "Limit": 1000})["Records"]
    finally:
        wire.close()
    return [lambda_stream_record(r, arn) for r in parsed], [
        lambda_stream_record(r, arn, wire=True) for r in raw
    ]


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    dynamodb = {
        k: v
        for k, v in record["dynamodb"].items()
        # moto's SizeBytes is the length of its JSON of the record, timestamp digits included, so it
        # differs by a byte or two between two servers writing the same item.
        if k not in ("SequenceNumber", "ApproximateCreationDateTime", "SizeBytes")
    }
    return {
        **{k: v for k, v in record.items() if k not in ("eventID", "eventSourceARN", "dynamodb")},
        **dynamodb,
    }


def test_stream_records_read_raw_from_the_local_endpoint_match_moto(moto_server: str) -> None:
    # GIVEN an item with every DynamoDB type, written (INSERT, then MODIFY) to the local endpoint
    # (changelake_local.moto_server, GetRecords encoded by moto's dynamo_json_dump) and to plain moto
    import random

    from changelake_local.generator import _as_boto3
    from changelake_testing.stream_records import realistic_item

    item = _as_boto3(realistic_item(random.Random(3), "customer#0001"))
    with MotoEndpoint(port=0) as local:
        # WHEN the stream is read through boto3 and raw (as the mapping reads it) from each
        local_parsed, local_raw = _stream_records(local.url, item)
    moto_parsed, moto_raw = _stream_records(moto_server, item)
    # THEN every way gives the same Lambda records as plain moto through boto3
    expected = [_comparable(record) for record in moto_parsed]
    assert [r["eventName"] for r in moto_parsed] == ["INSERT", "MODIFY"]
    assert expected[1]["NewImage"]["blob"] == {"B": base64.b64encode(item["blob"]["B"]).decode()}
    assert [_comparable(r) for r in local_parsed] == expected
    assert [_comparable(r) for r in local_raw] == expected
    assert [_comparable(r) for r in moto_raw] == expected
    assert all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], float) for r in local_raw)
