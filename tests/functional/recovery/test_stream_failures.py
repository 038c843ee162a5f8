"""Stream-failure replay on a moto server: a failed range comes back from the stream, or is reported lost."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError

from changelake.ingest.consumer import StreamConsumer
from changelake.integrations.s3 import S3Store
from changelake.integrations.sqs import Backoff, SqsQueue
from changelake.integrations.streams import StreamReader
from changelake.recovery.receive import Deadline
from changelake.recovery.stream_failures import StreamFailureReplayer
from tests.conftest import REGION, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import create_stream_table, read_jsonl_gz, sqs_event

TABLE = "orders"
NO_WAIT = Backoff(attempts=2, sleep=lambda _: None)


@pytest.fixture
def table(stack: Stack) -> dict[str, Any]:
    """A table with a NEW_AND_OLD_IMAGES stream on the moto server; returns its description."""
    return create_stream_table(TABLE)


def write_changes(count: int) -> list[dict[str, Any]]:
    """``count`` inserts, then a modify and a remove; returns the items as written."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    items = [
        {
            "pk": {"S": f"customer#{index}"},
            "sk": {"S": f"order#{index:03d}"},
            "total": {"N": "12345678901234567890123456789012345678"},
            "ratio": {"N": "0.1234567890123456789012345678901234567"},
            "blob": {"B": bytes([index, 0, 255])},
            "tags": {"SS": ["a", "b"]},
            "lines": {"L": [{"M": {"sku": {"S": "x"}, "qty": {"N": "2"}, "raw": {"B": b"\x01"}}}]},
            "gift": {"BOOL": index % 2 == 0},
            "note": {"NULL": True},
        }
        for index in range(count)
    ]
    for item in items:
        dynamodb.put_item(TableName=TABLE, Item=item)
    dynamodb.put_item(TableName=TABLE, Item={**items[0], "total": {"N": "1"}})
    dynamodb.delete_item(TableName=TABLE, Key={"pk": items[1]["pk"], "sk": items[1]["sk"]})
    return items


def shard_records(stream_arn: str) -> tuple[str, list[dict[str, Any]]]:
    """The shard id and every record in it, read independently of the code under test."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator)
        if not page["Records"]:
            return shard["ShardId"], records
        records.extend(page["Records"])
        iterator = page["NextShardIterator"]


def stream_of_changes(table: dict[str, Any], count: int) -> tuple[str, str, list[dict[str, Any]]]:
    """``write_changes(count)``, then the table's stream ARN, its shard id and every record in it."""
    write_changes(count)
    stream_arn = str(table["LatestStreamArn"])
    shard_id, records = shard_records(stream_arn)
    return stream_arn, shard_id, records


def send_failure(stack: Stack, body: str) -> None:
    stack.sqs.send_message(QueueUrl=stack.stream_failure_queue_url, MessageBody=body)


def failure_record(
    stream_arn: str, shard_id: str, first: dict[str, Any], last: dict[str, Any], size: int
) -> str:
    """The invocation record Lambda sends to the on-failure destination for a failed batch."""
    return json.dumps(
        {
            "requestContext": {
                "requestId": "316aa6d0-8154-4b3a-9af7-85d5f4a6bc81",
                "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:changelake-StreamConsumer",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 4,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": "2026-11-22T12:13:49.717Z",
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": "2026-11-21T23:59:58Z",
                "approximateArrivalOfLastRecord": "2026-11-22T00:00:01Z",
                "batchSize": size,
                "streamArn": stream_arn,
            },
        }
    )


def expected_value(attribute: dict[str, Any]) -> Any:
    """The plain JSON of one attribute as boto3 returns it (binary as bytes), numbers as Decimal."""
    ((tag, value),) = attribute.items()
    if tag == "B":
        return base64.b64encode(value).decode()
    if tag == "BS":
        return [base64.b64encode(item).decode() for item in value]
    if tag == "N":
        return Decimal(value)
    if tag == "NS":
        return [Decimal(item) for item in value]
    if tag == "NULL":
        return None
    if tag == "M":
        return {name: expected_value(item) for name, item in value.items()}
    if tag == "L":
        return [expected_value(item) for item in value]
    return list(value) if tag == "SS" else value


def expected_image(image: dict[str, Any] | None) -> Any:
    return None if image is None else {name: expected_value(value) for name, value in image.items()}


def event_time(created: datetime) -> str:
    created = created.astimezone(UTC)
    return f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}Z"


def raw_records(stack: Stack) -> dict[str, dict[str, Any]]:
    return {str(r["event_id"]): r for key in stack.keys("raw/") for r in read_jsonl_gz(stack, key)}


def queue_depth(stack: Stack, url: str) -> tuple[int, int]:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_failed_range_is_replayed_into_raw_records_identical_to_the_changes(
    stack: Stack, table: dict[str, Any], load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN six inserts, a modify and a remove in the stream, and a failure record for records 3 to 8
    items = write_changes(6)
    stream_arn = table["LatestStreamArn"]
    shard_id, records = shard_records(stream_arn)
    assert len(records) == 8
    failed = records[2:8]
    send_failure(stack, failure_record(stream_arn, shard_id, failed[0], failed[-1], len(failed)))

    # WHEN the redrive runs and the aggregator drains the queue
    redrive = load_handler("dlq_redrive", stack.environment)
    summary = redrive.lambda_handler({"max_messages": 10}, lambda_context)
    aggregator = load_handler("aggregator", stack.environment)
    assert aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context) == {"batchItemFailures": []}

    # THEN exactly the range is in raw/, each record equal to its change in the stream
    stream = summary["stream_failures"]
    assert (stream["ranges_replayed"], stream["records_replayed"], stream["ranges_lost"]) == (1, 6, 0)
    found = raw_records(stack)
    assert set(found) == {record["eventID"] for record in failed}
    for source in failed:
        change, image = found[source["eventID"]], source["dynamodb"]
        assert change["event_name"] == source["eventName"]
        assert change["table"] == TABLE
        assert change["sequence_number"] == image["SequenceNumber"]
        assert change["event_time"] == event_time(image["ApproximateCreationDateTime"])
        assert change["keys"] == expected_image(image["Keys"])
        assert change["new_image"] == expected_image(image.get("NewImage"))
        assert change["old_image"] == expected_image(image.get("OldImage"))
        assert change["size_bytes"] == image["SizeBytes"]
        assert change["user_identity"] is None
    # AND against the items as written: 38 digits exact, binary as base64, the remove's old image
    insert = found[failed[0]["eventID"]]
    assert insert["new_image"]["total"] == Decimal("12345678901234567890123456789012345678")
    assert insert["new_image"]["blob"] == base64.b64encode(bytes([2, 0, 255])).decode()
    remove = found[failed[-1]["eventID"]]
    assert (remove["event_name"], remove["new_image"]) == ("REMOVE", None)
    assert remove["old_image"] == expected_image(items[1])
    # AND the failure record is gone
    assert queue_depth(stack, stack.stream_failure_queue_url) == (0, 0)


class Trimmed:
    """A streams client whose data is past retention (or whose shard is gone), as AWS reports it."""

    def __init__(self, real: Any, code: str, operation: str = "get_shard_iterator") -> None:
        self.real = real
        self.code = code
        self.operation = operation

    def __getattr__(self, name: str) -> Any:
        if name == self.operation:

            def refuse(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, name)

            return refuse
        return getattr(self.real, name)


@pytest.mark.parametrize(
    ("code", "operation"),
    [
        ("TrimmedDataAccessException", "get_shard_iterator"),
        ("ExpiredIteratorException", "get_records"),
        ("ResourceNotFoundException", "get_shard_iterator"),
    ],
)
def test_an_expired_range_is_reported_lost_and_its_failure_record_kept(
    stack: Stack,
    table: dict[str, Any],
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    code: str,
    operation: str,
) -> None:
    # GIVEN a failure record for a range the stream no longer holds
    stream_arn, shard_id, records = stream_of_changes(table, 3)
    body = failure_record(stream_arn, shard_id, records[0], records[2], 3)
    send_failure(stack, body)
    redrive = load_handler("dlq_redrive", stack.environment)
    redrive.replayer.reader = StreamReader(client=Trimmed(boto3.client("dynamodbstreams"), code, operation))
    capsys.readouterr()

    # WHEN the redrive runs
    summary = redrive.lambda_handler({}, lambda_context)

    # THEN a loss report names the range, the stream and the failure record
    stream = summary["stream_failures"]
    assert (stream["ranges_lost"], stream["ranges_replayed"]) == (1, 0)
    (key,) = stack.keys("lost/")
    assert key.startswith(f"lost/{TABLE}/dt=2026-11-21/")
    assert key.endswith(".json")
    assert stream["loss_reports"] == [key]
    report = json.loads(stack.read(key))
    assert report["stream_arn"] == stream_arn
    assert report["shard_id"] == shard_id
    assert report["start_sequence_number"] == records[0]["dynamodb"]["SequenceNumber"]
    assert report["end_sequence_number"] == records[2]["dynamodb"]["SequenceNumber"]
    assert report["error_code"] == code
    assert report["failure_record"] == json.loads(body)
    assert report["detected_at"].endswith("Z")
    # AND the LostRanges metric was emitted, nothing reached the queue or raw/
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(
        document.get("LostRanges") == [1.0] or document.get("LostRanges") == 1.0 for document in metrics
    )
    assert queue_depth(stack, stack.queue_url) == (0, 0)
    # AND the failure record is still in its queue, hidden for a while so runs do not hot-loop on it
    assert queue_depth(stack, stack.stream_failure_queue_url) == (0, 1)


class TrimmedBefore:
    """A streams client whose shard no longer holds the records before ``first_held`` (as DynamoDB
    trims them after 24 hours): a read from before it is refused the way AWS refuses it, and
    TRIM_HORIZON starts at it."""

    def __init__(self, real: Any, first_held: str) -> None:
        self.real = real
        self.first_held = first_held

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        if kwargs["ShardIteratorType"] == "TRIM_HORIZON":
            kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=self.first_held)
        elif int(kwargs["SequenceNumber"]) < int(self.first_held):
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "x"}}, "Get")
        return self.real.get_shard_iterator(**kwargs)


def test_a_range_whose_start_was_trimmed_replays_the_rest_and_reports_only_the_gap(
    stack: Stack, table: dict[str, Any], load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a failure record for records 2 to 7, of which the stream no longer holds 2 to 4
    stream_arn, shard_id, records = stream_of_changes(table, 6)
    failed = records[1:7]
    body = failure_record(stream_arn, shard_id, failed[0], failed[-1], len(failed))
    send_failure(stack, body)
    first_held = failed[3]["dynamodb"]["SequenceNumber"]
    redrive = load_handler("dlq_redrive", stack.environment)
    redrive.replayer.reader = StreamReader(client=TrimmedBefore(boto3.client("dynamodbstreams"), first_held))

    # WHEN the redrive runs and the aggregator drains the queue
    summary = redrive.lambda_handler({}, lambda_context)
    aggregator = load_handler("aggregator", stack.environment)
    assert aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context) == {"batchItemFailures": []}

    # THEN the records the stream still holds are in raw/
    assert set(raw_records(stack)) == {record["eventID"] for record in failed[3:]}
    stream = summary["stream_failures"]
    assert (stream["records_replayed"], stream["ranges_lost"], stream["ranges_partly_lost"]) == (3, 1, 1)
    # AND the loss report names only the part that is gone: from the range's start up to the first held
    (key,) = stack.keys("lost/")
    report = json.loads(stack.read(key))
    assert report["reason"] == "the stream no longer holds part of this range; the rest was replayed"
    (part,) = report["lost_parts"]
    assert part["from_sequence_number"] == failed[0]["dynamodb"]["SequenceNumber"]
    assert part["before_sequence_number"] == first_held
    assert (part["after_sequence_number"], part["through_sequence_number"]) == (None, None)
    assert (report["records_replayed"], report["error_code"]) == (3, "TrimmedDataAccessException")
    assert report["failure_record"] == json.loads(body)
    # AND the failure record stays, hidden, for a human to deal with the loss
    assert queue_depth(stack, stack.stream_failure_queue_url) == (0, 1)


def test_a_range_trimmed_past_its_end_is_reported_lost_through_its_end(
    stack: Stack, table: dict[str, Any]
) -> None:
    # GIVEN a failure record for records 1 to 3, and a stream holding only records from 6 on
    stream_arn, shard_id, records = stream_of_changes(table, 6)
    send_failure(stack, failure_record(stream_arn, shard_id, records[0], records[2], 3))
    streams = TrimmedBefore(boto3.client("dynamodbstreams"), records[5]["dynamodb"]["SequenceNumber"])

    # WHEN the replay runs
    result = build_replayer(stack, reader=StreamReader(client=streams)).run(10, Deadline.after_seconds(60))

    # THEN the whole range is reported lost, from its start through its end, and nothing sent
    report = json.loads(stack.read(stack.keys("lost/")[0]))
    assert report["reason"] == "the stream no longer holds this range"
    (part,) = report["lost_parts"]
    assert part["from_sequence_number"] == records[0]["dynamodb"]["SequenceNumber"]
    assert part["through_sequence_number"] == records[2]["dynamodb"]["SequenceNumber"]
    assert (result.ranges_lost, result.ranges_partly_lost, result.records_replayed) == (1, 0, 0)
    assert queue_depth(stack, stack.queue_url) == (0, 0)


def test_a_lost_range_is_reported_once_however_often_it_is_seen(stack: Stack, table: dict[str, Any]) -> None:
    # GIVEN a lost range whose failure record becomes visible again at once
    stream_arn, shard_id, records = stream_of_changes(table, 2)
    send_failure(stack, failure_record(stream_arn, shard_id, records[0], records[1], 2))
    replayer = build_replayer(
        stack,
        reader=StreamReader(client=Trimmed(boto3.client("dynamodbstreams"), "TrimmedDataAccessException")),
    )
    replayer.lost_hold_seconds = 0

    # WHEN two runs see it
    first = replayer.run(10, Deadline.after_seconds(60))
    report = stack.read(stack.keys("lost/")[0])
    second = replayer.run(10, Deadline.after_seconds(60))

    # THEN the first wrote the report, the second left it as it was, and the record is still queued
    assert (first.ranges_lost, first.ranges_lost_already_reported) == (1, 0)
    assert (second.ranges_lost, second.ranges_lost_already_reported) == (0, 1)
    assert len(stack.keys("lost/")) == 1
    assert stack.read(stack.keys("lost/")[0]) == report
    assert queue_depth(stack, stack.stream_failure_queue_url) == (1, 0)


def build_replayer(
    stack: Stack, *, reader: StreamReader | None = None, queue_client: Any = None
) -> StreamFailureReplayer:
    sqs = boto3.client("sqs", region_name=REGION)
    store = S3Store(stack.bucket)
    consumer = StreamConsumer(
        SqsQueue(stack.queue_url, client=queue_client or sqs, backoff=NO_WAIT),
        store,
        max_message_bytes=262_144,
    )
    return StreamFailureReplayer(
        SqsQueue(stack.stream_failure_queue_url, client=sqs), consumer, reader or StreamReader(), store
    )


class SendRefused:
    """An SQS client whose SendMessageBatch always fails (ChangeQueue cannot be reached)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message_batch(self, **_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "x"}}, "Send"
        )


def test_a_range_that_cannot_reach_the_queue_keeps_its_failure_record(
    stack: Stack, table: dict[str, Any]
) -> None:
    # GIVEN a replayable range, and a ChangeQueue that refuses every send
    stream_arn, shard_id, records = stream_of_changes(table, 3)
    send_failure(stack, failure_record(stream_arn, shard_id, records[0], records[4], 5))
    replayer = build_replayer(stack, queue_client=SendRefused(boto3.client("sqs", region_name=REGION)))

    # WHEN the replay runs
    result = replayer.run(10, Deadline.after_seconds(60))

    # THEN the range is reported failed, and its failure record is visible for the next run; nothing is lost
    assert (result.ranges_failed, result.ranges_replayed, result.ranges_lost) == (1, 0, 0)
    assert queue_depth(stack, stack.stream_failure_queue_url) == (1, 0)
    assert stack.keys("lost/") == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"version": "1.0", "requestContext": {}}),
        json.dumps(
            {
                "DDBStreamBatchInfo": {
                    "shardId": "s",
                    "startSequenceNumber": "9",
                    "endSequenceNumber": "1",
                    "streamArn": f"arn:aws:dynamodb:{REGION}:1:table/{TABLE}/stream/x",
                }
            }
        ),
        json.dumps(
            {
                "DDBStreamBatchInfo": {
                    "shardId": "s",
                    "startSequenceNumber": "1",
                    "endSequenceNumber": "2",
                    "streamArn": "arn:aws:sqs:us-east-1:1:not-a-stream",
                }
            }
        ),
    ],
    ids=["not-json", "no-batch-info", "start-after-end", "not-a-stream-arn"],
)
def test_a_malformed_failure_record_is_quarantined_whole_never_silently_deleted(
    stack: Stack, body: str
) -> None:
    # GIVEN a stream-failure message that is not a usable invocation record
    send_failure(stack, body)
    replayer = build_replayer(stack)

    # WHEN the replay runs
    result = replayer.run(10, Deadline.after_seconds(60))

    # THEN it is in quarantine with a reason and the original body, and only then left the queue
    assert result.malformed == 1
    (key,) = stack.keys("quarantine/_/")
    (entry,) = [json.loads(line) for line in gzip.decompress(stack.read(key)).splitlines()]
    assert entry["record"] == body
    assert entry["reason"]
    assert entry["source"] == "stream-failure-queue"
    assert queue_depth(stack, stack.stream_failure_queue_url) == (0, 0)


def test_dry_run_samples_failure_records_without_hiding_or_replaying(
    stack: Stack, table: dict[str, Any], load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a failure record
    stream_arn, shard_id, records = stream_of_changes(table, 2)
    send_failure(stack, failure_record(stream_arn, shard_id, records[0], records[1], 2))
    redrive = load_handler("dlq_redrive", stack.environment)

    # WHEN a dry run is invoked
    summary = redrive.lambda_handler({"dry_run": True}, lambda_context)

    # THEN it describes the range, replays nothing and hides nothing
    (item,) = summary["stream_failures"]["sample"]
    assert (item["table"], item["shard_id"], item["batch_size"]) == (TABLE, shard_id, 2)
    assert summary["stream_failures"]["failure_records_visible"] == 1
    assert queue_depth(stack, stack.stream_failure_queue_url) == (1, 0)
    assert queue_depth(stack, stack.queue_url) == (0, 0)


def test_a_failure_record_nested_past_the_recursion_limit_is_quarantined_and_the_rest_still_flows(
    stack: Stack, table: dict[str, Any], load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a failure record with a field nested 5,000 levels deep, then a good one, and a DLQ message
    stream_arn, shard_id, records = stream_of_changes(table, 3)
    good = failure_record(stream_arn, shard_id, records[0], records[4], 5)
    poisoned = good[:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}"
    for body in (poisoned, good):
        send_failure(stack, body)
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="a dead letter")

    # WHEN the redrive runs
    redrive = load_handler("dlq_redrive", stack.environment)
    summary = redrive.lambda_handler({}, lambda_context)

    # THEN the poisoned record is quarantined whole, the good range replayed, and the DLQ moved
    stream = summary["stream_failures"]
    assert (stream["malformed"], stream["ranges_replayed"], stream["records_replayed"]) == (1, 1, 5)
    assert (summary["moved"], summary["stopped"]) == (1, "empty")
    (key,) = stack.keys("quarantine/_/")
    (entry,) = [json.loads(line) for line in gzip.decompress(stack.read(key)).splitlines()]
    assert entry["record"] == poisoned
    assert entry["reason"] == "not a DynamoDB stream invocation record: nested deeper than 32 levels"
    assert queue_depth(stack, stack.stream_failure_queue_url) == (0, 0)
    assert "a dead letter" in [message["Body"] for message in stack.drain()]


def test_a_failure_record_that_is_not_strict_json_is_quarantined_never_copied_into_a_loss_report(
    stack: Stack, table: dict[str, Any]
) -> None:
    # GIVEN a failure record holding NaN (Lambda never writes one) for a range the stream no longer holds
    stream_arn, shard_id, records = stream_of_changes(table, 2)
    body = failure_record(stream_arn, shard_id, records[0], records[1], 2)
    body = body.replace('"approximateInvokeCount": 4', '"approximateInvokeCount": NaN')
    assert "NaN" in body
    send_failure(stack, body)
    reader = StreamReader(client=Trimmed(boto3.client("dynamodbstreams"), "TrimmedDataAccessException"))

    # WHEN the replay runs
    result = build_replayer(stack, reader=reader).run(10, Deadline.after_seconds(60))

    # THEN it is quarantined whole with the reason, and no loss report copies the NaN
    assert (result.malformed, result.ranges_lost) == (1, 0)
    assert stack.keys("lost/") == []
    (key,) = stack.keys("quarantine/_/")
    (entry,) = [orjson.loads(line) for line in gzip.decompress(stack.read(key)).splitlines()]
    assert entry["record"] == body
    assert entry["reason"] == "not a DynamoDB stream invocation record: NaN is not strict JSON"
