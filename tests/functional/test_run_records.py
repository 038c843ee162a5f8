"""Run records under _runs/: written by the compaction, snapshot and redrive handlers, read back."""

from __future__ import annotations

import gzip
import io
import json
import logging
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

import pytest

from changelake.exceptions import InvalidEventError, SnapshotError
from changelake.runs import RUNS_PREFIX, RunRecord
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.compaction.test_compaction import changes, put_raw
from tests.functional.fakes import FailingPutS3


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def records(stack: Stack, kind: str) -> list[RunRecord]:
    return [RunRecord.from_json(stack.read(key)) for key in stack.keys(f"{RUNS_PREFIX}/{kind}/")]


def emitted_metrics(output: str) -> dict[str, Any]:
    """The EMF blobs Powertools printed, merged: metric name -> value."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = blob[definition["Name"]]
                values[definition["Name"]] = value[0] if isinstance(value, list) else value
    return values


def test_a_manual_compaction_leaves_one_record_with_its_figures(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one raw/ hour of 'orders'
    put_raw(stack, changes(1, 40))
    app = load_handler("compaction", stack.environment)
    # WHEN the compaction function is invoked by hand for its day
    with redirect_stdout(io.StringIO()) as out:
        result = app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    # THEN one run record names the run, its table and its rows, under the day it started
    (record,) = records(stack, "compaction")
    assert record.result == "succeeded"
    assert record.trigger == "manual"
    assert record.tables == ("orders",)
    assert record.rows == result["rows_out"] == 40
    assert record.bytes_out == result["bytes_out"] > 0
    assert record.request_id == lambda_context.aws_request_id
    today = datetime.now(UTC).date().isoformat()
    assert stack.keys(RUNS_PREFIX)[0].startswith(f"{RUNS_PREFIX}/compaction/dt={today}/")
    # AND the success metric the 'not succeeded for a day' alarm watches is 1
    assert emitted_metrics(out.getvalue())["CompactionSucceeded"] == 1


def test_the_same_request_retried_overwrites_its_record(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a compaction run already recorded
    put_raw(stack, changes(2, 10))
    app = load_handler("compaction", stack.environment)
    with redirect_stdout(io.StringIO()):
        app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
        # WHEN Lambda retries the same request (same request ID)
        app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    # THEN the request has one record, the retry's ('unchanged': nothing left to do)
    (record,) = records(stack, "compaction")
    assert record.request_id == lambda_context.aws_request_id
    assert record.summary["unchanged"] == 1


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("compaction", {"table": "orders", "dt": "not-a-day"}),
        ("snapshot", {"table": "orders", "dt": "not-a-day"}),
        ("snapshot", {"table": "orders", "dt": "2999-01-01"}),  # refused after reading: in the future
    ],
)
def test_a_refused_event_is_not_a_run(
    stack: Stack,
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    function: str,
    event: dict[str, str],
) -> None:
    # GIVEN the function, and a lake with changes
    put_raw(stack, changes(5, 3))
    app = load_handler(function, stack.environment)
    # WHEN it is invoked with an event it refuses
    with redirect_stdout(io.StringIO()), pytest.raises(InvalidEventError):
        app.lambda_handler(event, lambda_context)
    # THEN nothing is recorded (nothing was done)
    assert stack.keys(RUNS_PREFIX) == []


def test_a_run_that_crashes_is_recorded_as_error(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a compaction function whose planning crashes on an unexpected error
    put_raw(stack, changes(3, 5))
    app = load_handler("compaction", stack.environment)

    def crash(*args: object) -> None:
        raise RuntimeError("disk on fire")

    app.service.compactor.plan_manual = crash
    # WHEN it is invoked
    with redirect_stdout(io.StringIO()), pytest.raises(RuntimeError):
        app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    # THEN the record says error, with the exception, and the exception still reached Lambda
    (record,) = records(stack, "compaction")
    assert record.result == "error"
    assert record.error == "RuntimeError: disk on fire"


def test_a_record_that_cannot_be_stored_is_reported_and_the_run_stands(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, capsys: Any
) -> None:
    # GIVEN a bucket that refuses writes under _runs/ only
    put_raw(stack, changes(4, 12))
    app = load_handler("compaction", stack.environment)
    app.runs.store._client = FailingPutS3(stack.s3, f"{RUNS_PREFIX}/")
    logged = ListHandler()
    logging.getLogger("changelake").addHandler(logged)
    # WHEN a compaction runs
    try:
        result = app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    finally:
        logging.getLogger("changelake").removeHandler(logged)
    # THEN the run's result stands, no record exists, and the loss is logged and counted
    assert result["rows_out"] == 12
    assert stack.keys(RUNS_PREFIX) == []
    assert [r.getMessage() for r in logged.records if r.levelno == logging.ERROR] == ["run record not stored"]
    assert emitted_metrics(capsys.readouterr().out)["RunRecordsFailed"] == 1


def test_a_redrive_run_is_recorded(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two messages in ChangeDLQ
    for body in ("one", "two"):
        stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=body)
    app = load_handler("dlq_redrive", stack.environment)
    # WHEN the redrive function moves them
    with redirect_stdout(io.StringIO()) as out:
        summary = app.lambda_handler({"max_messages": 10}, lambda_context)
    # THEN its record counts the moved messages
    (record,) = records(stack, "redrive")
    assert summary["moved"] == 2
    assert (record.result, record.trigger, record.rows) == ("succeeded", "redrive", 2)
    assert emitted_metrics(out.getvalue())["RedriveSucceeded"] == 1


def test_a_manual_snapshot_leaves_one_record_with_its_figures(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one raw/ hour of 'orders' on 2026-11-22
    put_raw(stack, changes(6, 25))
    app = load_handler("snapshot", stack.environment)
    # WHEN the snapshot function is invoked by hand for that day
    with redirect_stdout(io.StringIO()) as out:
        result = app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    # THEN one run record names the run, its table, the day's items and the bytes written
    (record,) = records(stack, "snapshot")
    assert (record.result, record.trigger, record.tables) == ("succeeded", "manual", ("orders",))
    assert record.rows == result["items"] > 0
    assert record.bytes_out == result["bytes_out"] > 0
    assert record.summary["built"] == ["orders/dt=2026-11-22"]
    assert record.request_id == lambda_context.aws_request_id
    # AND the success metric the 'snapshot has not succeeded for a day' alarm watches is 1
    assert emitted_metrics(out.getvalue())["SnapshotSucceeded"] == 1


def test_a_snapshot_run_with_a_day_it_cannot_build_is_recorded_as_failed(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a raw/ object of 'orders' on 2026-11-22 that holds no change record
    put_raw(stack, changes(7, 5))
    bad = "raw/orders/dt=2026-11-22/hour=23/bad.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=bad, Body=gzip.compress(b"[]\n"))
    app = load_handler("snapshot", stack.environment)
    # WHEN a snapshot of that day runs
    with redirect_stdout(io.StringIO()) as out, pytest.raises(SnapshotError):
        app.lambda_handler({"table": "orders", "dt": "2026-11-22"}, lambda_context)
    # THEN its record says failed, names the table and the error, and the exception still reached Lambda
    (record,) = records(stack, "snapshot")
    assert (record.result, record.tables) == ("failed", ("orders",))
    assert record.error is not None
    assert record.error.startswith("SnapshotError: 1 table(s) not brought up to date")
    assert bad in record.error
    # AND the success metric is 0: the alarm keeps counting the day without a success
    assert emitted_metrics(out.getvalue())["SnapshotSucceeded"] == 0
