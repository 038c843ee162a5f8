"""Every path of the stream consumer that does not put a record in SQS, on a real moto server."""

from __future__ import annotations

import base64
import gzip
import json
import random
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from changelake.exceptions import BatchUnrecoverableError, InvalidEventError
from changelake.formats.envelope import Claim, decode_body
from changelake.ingest.consumer import StreamConsumer
from changelake.integrations.s3 import S3Store
from changelake.integrations.sqs import Backoff, SqsQueue
from changelake_testing.stream_records import change_batch, stream_record
from tests.conftest import REGION, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import FailingEntriesSqs, FailingPutS3, ThrottlingSqs
from tests.functional.helpers import read_jsonl_gz, reference_image, sqs_event


class SleepRecorder:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def _consumer(
    stack: Stack, *, sqs: Any = None, s3: Any = None, max_message_bytes: int = 262_144, sleep: Any = None
) -> StreamConsumer:
    backoff = Backoff(attempts=3, sleep=sleep or SleepRecorder())
    return StreamConsumer(
        SqsQueue(stack.queue_url, client=sqs or stack.sqs, backoff=backoff),
        S3Store(stack.bucket, client=s3 or stack.s3),
        max_message_bytes=max_message_bytes,
    )


def _queued_event_ids(stack: Stack) -> list[str]:
    ids: list[str] = []
    for message in stack.drain():
        decoded = decode_body(message["Body"])
        assert not isinstance(decoded, Claim)
        ids.extend(json.loads(line)["event_id"] for line in decoded)
    return ids


def test_partial_sqs_failure_reports_the_first_unsent_sequence_number(stack: Stack) -> None:
    # GIVEN 200 records that pack into many small messages, and SQS refusing the fourth message
    records = change_batch(random.Random(1), 200, item_bytes=600)
    failing = FailingEntriesSqs(stack.sqs, fails=lambda entry_id: entry_id == "m3")
    consumer = _consumer(stack, sqs=failing, max_message_bytes=4096)

    # WHEN the batch is processed
    result = consumer.process(records)

    # THEN the first record of the refused message is reported, and is the first one not in SQS
    assert result.first_unstored is not None
    assert result.failed_sequence_number == records[result.first_unstored]["dynamodb"]["SequenceNumber"]
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": result.failed_sequence_number}]}
    queued = set(_queued_event_ids(stack))
    assert {record["eventID"] for record in records[: result.first_unstored]} <= queued
    assert records[result.first_unstored]["eventID"] not in queued
    # AND the refused entry was retried before giving up
    assert failing.calls["send_message_batch"] == 3


def test_an_unreachable_queue_fails_the_batch_from_its_first_record(stack: Stack) -> None:
    # GIVEN a queue that does not exist
    records = change_batch(random.Random(2), 20)
    consumer = StreamConsumer(
        SqsQueue(
            stack.queue_url + "-missing", client=stack.sqs, backoff=Backoff(attempts=2, sleep=SleepRecorder())
        ),
        S3Store(stack.bucket, client=stack.s3),
        max_message_bytes=262_144,
    )

    # WHEN the batch is processed
    result = consumer.process(records)

    # THEN nothing is reported stored: Lambda retries from the first record
    assert result.failed_sequence_number == records[0]["dynamodb"]["SequenceNumber"]
    assert result.records_sent == 0
    assert "NonExistentQueue" in result.errors[0] or "QueueDoesNotExist" in result.errors[0]


def test_an_endpoint_that_refuses_connections_fails_the_batch(stack: Stack) -> None:
    # GIVEN an SQS client pointed at a closed port
    closed = boto3.client("sqs", region_name=REGION, endpoint_url="http://127.0.0.1:9")
    records = change_batch(random.Random(3), 5)

    # WHEN the batch is processed
    result = _consumer(stack, sqs=closed).process(records)

    # THEN the first record is reported unsent
    assert result.failed_sequence_number == records[0]["dynamodb"]["SequenceNumber"]


def test_throttling_is_retried_with_backoff_until_it_recovers(stack: Stack) -> None:
    # GIVEN SQS throttling the first two requests
    records = change_batch(random.Random(4), 50)
    sleep = SleepRecorder()
    throttling = ThrottlingSqs(stack.sqs, throttled_calls=2)

    # WHEN the batch is processed
    result = _consumer(stack, sqs=throttling, sleep=sleep).process(records)

    # THEN every record is in the queue, after two pauses
    assert result.response() == {"batchItemFailures": []}
    assert len(sleep.pauses) == 2
    assert sorted(_queued_event_ids(stack)) == sorted(record["eventID"] for record in records)


def test_a_record_larger_than_a_message_travels_as_a_claim_check_and_arrives_whole(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a 300 KB item (incompressible) under a 64 KiB message limit, between two small ones
    rng = random.Random(5)
    big_text = base64.b64encode(rng.randbytes(225_000)).decode()
    keys = {"pk": {"S": "big"}, "sk": {"S": "1"}}
    records = change_batch(rng, 2)
    big = stream_record(
        table="orders",
        event_name="INSERT",
        sequence_number=5 * 10**20,
        created=1_795_780_900.0,
        keys=keys,
        new_image={**keys, "payload": {"S": big_text}},
    )
    records.insert(1, big)
    consumer = load_handler("stream_consumer", stack.environment, MAX_MESSAGE_BYTES="65536")
    aggregator = load_handler("aggregator", stack.environment)

    # WHEN it flows through consumer and aggregator
    response = consumer.lambda_handler({"Records": records}, lambda_context)
    messages = stack.drain()
    stored = aggregator.lambda_handler(sqs_event(messages), lambda_context)

    # THEN no message passed the limit, one went through claims/, and raw/ holds the item whole
    assert response == {"batchItemFailures": []}
    assert stored == {"batchItemFailures": []}
    assert all(len(message["Body"]) <= 65536 for message in messages)
    assert len(stack.keys("claims/")) == 1
    found = {record["event_id"]: record for key in stack.keys("raw/") for record in read_jsonl_gz(stack, key)}
    assert set(found) == {record["eventID"] for record in records}
    assert found[big["eventID"]]["new_image"] == reference_image(big["dynamodb"]["NewImage"])


def test_a_poison_record_goes_to_quarantine_while_its_neighbours_flow(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a batch whose middle record has an unknown DynamoDB type tag
    records = change_batch(random.Random(6), 5)
    poison = records[2]
    image = poison["dynamodb"].get("NewImage") or poison["dynamodb"]["OldImage"]
    image["address"]["M"]["geo"]["L"][1] = {"X": "1"}
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)

    # WHEN the batch flows through
    response = consumer.lambda_handler({"Records": records}, lambda_context)
    aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context)

    # THEN the batch succeeds, the neighbours are in raw/ and the poison record is quarantined whole
    assert response == {"batchItemFailures": []}
    stored = {record["event_id"] for key in stack.keys("raw/") for record in read_jsonl_gz(stack, key)}
    assert stored == {record["eventID"] for record in records} - {poison["eventID"]}
    (key,) = stack.keys("quarantine/")
    assert key.startswith("quarantine/orders/dt=2026-11-27/")
    (entry,) = read_jsonl_gz(stack, key)
    assert "geo[1]" in str(entry["reason"])
    assert "unknown type tag" in str(entry["reason"])
    assert entry["record"]["eventID"] == poison["eventID"]


def test_a_failed_quarantine_write_reports_the_poison_record(stack: Stack) -> None:
    # GIVEN a poison record and S3 refusing quarantine writes
    records = change_batch(random.Random(7), 6)
    records[3]["eventName"] = "UPSERT"
    failing = FailingPutS3(stack.s3, "quarantine/")

    # WHEN the batch is processed
    result = _consumer(stack, s3=failing).process(records)

    # THEN the poison record's sequence number is reported, so Lambda retries it
    assert result.failed_sequence_number == records[3]["dynamodb"]["SequenceNumber"]
    assert result.quarantined == 0


def test_a_failed_claim_check_upload_reports_the_oversized_record(stack: Stack) -> None:
    # GIVEN an oversized record and S3 refusing claim writes
    rng = random.Random(8)
    records = change_batch(rng, 4)
    payload = base64.b64encode(rng.randbytes(20_000)).decode()
    records[2]["dynamodb"]["NewImage"] = {"pk": {"S": "x"}, "payload": {"S": payload}}
    failing = FailingPutS3(stack.s3, "claims/")

    # WHEN the batch is processed under a 4 KiB limit
    result = _consumer(stack, s3=failing, max_message_bytes=4096).process(records)

    # THEN the oversized record is the first unstored one
    assert result.failed_sequence_number == records[2]["dynamodb"]["SequenceNumber"]


def test_a_batch_with_no_checkpointable_record_fails_whole(stack: Stack) -> None:
    # GIVEN a first record with no sequence number, and quarantine unavailable
    records = change_batch(random.Random(9), 3)
    del records[0]["dynamodb"]["SequenceNumber"]
    failing = FailingPutS3(stack.s3, "quarantine/")

    # WHEN / THEN the consumer refuses to report anything stored: Lambda retries the whole batch
    with pytest.raises(BatchUnrecoverableError):
        _consumer(stack, s3=failing).process(records)


def test_an_event_without_records_is_refused(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN the consumer handler
    consumer = load_handler("stream_consumer", stack.environment)

    # WHEN / THEN a malformed event is refused naming the field
    with pytest.raises(InvalidEventError, match="Records"):
        consumer.lambda_handler({"records": []}, lambda_context)


def test_quarantined_batches_are_gzip_json_lines_with_reason_and_record(stack: Stack) -> None:
    # GIVEN two poison records of the same table and day
    records = change_batch(random.Random(10), 4)
    records[0]["dynamodb"]["SizeBytes"] = "big"
    records[1]["dynamodb"]["SequenceNumber"] = "12ab"

    # WHEN processed
    result = _consumer(stack).process(records)

    # THEN both are in one quarantine object, each with its own reason
    assert result.quarantined == 2
    (key,) = stack.keys("quarantine/")
    lines = gzip.decompress(stack.read(key)).decode().splitlines()
    reasons = [json.loads(line)["reason"] for line in lines]
    assert reasons == [
        "dynamodb.SizeBytes must be a non-negative integer",
        "dynamodb.SequenceNumber must be a string of digits",
    ]


def test_a_schema_violation_is_quarantined_with_the_failing_path(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, tmp_path: Any
) -> None:
    # GIVEN a schema for table "orders" that requires a numeric amount below 1,000,000
    schema = {"type": "object", "properties": {"amount": {"type": "number", "maximum": 999_999}}}
    (tmp_path / "orders.json").write_text(json.dumps(schema))
    records = change_batch(random.Random(11), 3)
    for record in records:
        record["eventName"] = "INSERT"
        record["dynamodb"]["NewImage"] = {"pk": {"S": "a"}, "amount": {"N": "5"}}
        record["dynamodb"].pop("OldImage", None)
        record.pop("userIdentity", None)
    records[1]["dynamodb"]["NewImage"]["amount"] = {"N": "12345678901234567890"}
    consumer = load_handler("stream_consumer", stack.environment, SCHEMA_DIR=str(tmp_path))

    # WHEN the batch is processed
    response = consumer.lambda_handler({"Records": records}, lambda_context)

    # THEN the batch succeeds and the violating record is quarantined with the path that failed
    assert response == {"batchItemFailures": []}
    (key,) = stack.keys("quarantine/")
    (entry,) = read_jsonl_gz(stack, key)
    assert str(entry["reason"]).startswith("schema violation at new_image.amount")
    assert entry["record"]["eventID"] == records[1]["eventID"]
    assert len(_queued_event_ids(stack)) == 2


def test_numbers_past_their_schema_by_less_than_a_float_can_tell_are_quarantined_and_none_is_lost(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, tmp_path: Any
) -> None:
    # GIVEN the schema of the docs' orders (amount DECIMAL(10,2), quantity DECIMAL(7,0) in the
    # snapshot's Parquet), and INSERTs at its edges and past them by less than a float can tell
    schema = (Path(__file__).parents[3] / "docs" / "athena" / "orders.json").read_text()
    (tmp_path / "orders.json").write_text(schema)
    images = [
        ("12.30", "1000000"),  # the edges: accepted
        ("12.3000000000000000001", "1"),  # 12.3 as a float, but not a multiple of 0.01
        ("99999999.99", "1.0000000000000000001"),  # 1.0 as a float, but not an integer
        ("99999999.990000000001", "7"),  # 99999999.99 as a float, but above the maximum
        ("0", "1E+2"),  # an integer written with an exponent: accepted
    ]
    records = change_batch(random.Random(13), len(images))
    for record, (amount, quantity) in zip(records, images, strict=True):
        record["eventName"] = "INSERT"
        record["dynamodb"]["NewImage"] = {
            **record["dynamodb"]["Keys"],
            "amount": {"N": amount},
            "quantity": {"N": quantity},
        }
        record["dynamodb"].pop("OldImage", None)
    consumer = load_handler("stream_consumer", stack.environment, SCHEMA_DIR=str(tmp_path))

    # WHEN the batch is processed
    response = consumer.lambda_handler({"Records": records}, lambda_context)

    # THEN the batch succeeds, the three are quarantined whole with a reason naming the attribute,
    assert response == {"batchItemFailures": []}
    (key,) = stack.keys("quarantine/")
    quarantined = {entry["record"]["eventID"]: entry for entry in read_jsonl_gz(stack, key)}
    assert {event_id: entry["reason"] for event_id, entry in quarantined.items()} == {
        records[1]["eventID"]: "schema violation at new_image.amount: data.amount must be multiple of 0.01",
        records[2]["eventID"]: "schema violation at new_image.quantity: data.quantity must be integer",
        records[3]["eventID"]: "schema violation at new_image.amount: data.amount must be smaller than or "
        "equal to 99999999.99",
    }
    assert all(quarantined[records[index]["eventID"]]["record"] == records[index] for index in (1, 2, 3))
    # AND the others are in the queue: every record is in exactly one of the two
    queued = _queued_event_ids(stack)
    assert sorted(queued) == sorted(records[index]["eventID"] for index in (0, 4))
    assert not set(queued) & set(quarantined)


def _nested_map(levels: int) -> dict[str, Any]:
    """A DynamoDB attribute value: ``levels`` maps, one inside the other, around a string."""
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(levels):
        value = {"M": {"inner": value}}
    return value


def test_records_nested_deeper_than_dynamodb_allows_are_quarantined_while_their_neighbours_flow(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a batch with one image nested 33 levels (DynamoDB stops at 32) and one nested 5,000
    # levels (past the recursion limit), among good records
    records = change_batch(random.Random(12), 5)
    for index, levels in ((1, 33), (3, 5000)):
        image = records[index]["dynamodb"].get("NewImage") or records[index]["dynamodb"]["OldImage"]
        image["doc"] = _nested_map(levels)
    consumer = load_handler("stream_consumer", stack.environment)

    # WHEN the batch is processed
    response = consumer.lambda_handler({"Records": records}, lambda_context)

    # THEN it succeeds: the good records are queued, the two deep ones quarantined with the reason
    assert response == {"batchItemFailures": []}
    assert sorted(_queued_event_ids(stack)) == sorted(records[i]["eventID"] for i in (0, 2, 4))
    (key,) = stack.keys("quarantine/")
    shallow, deep = read_jsonl_gz(stack, key)
    too_deep = ": nested deeper than DynamoDB's 32 levels"
    assert str(shallow["reason"]).endswith(".doc" + ".inner" * 32 + too_deep)
    assert shallow["record"]["eventID"] == records[1]["eventID"]
    # AND the record json cannot write is kept as its JSON text
    assert str(deep["reason"]).endswith(too_deep)
    assert deep["record_format"] == "json-text"
    assert str(deep["record"]).startswith('{"eventID":"' + records[3]["eventID"] + '"')
    assert str(deep["record"]).count('{"M":{"inner":') == 5000


def test_a_user_identity_holding_nan_is_quarantined_and_every_line_written_is_strict_json(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a TTL delete whose userIdentity holds NaN (a passthrough field), among good records
    records = change_batch(random.Random(13), 5)
    records[2]["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    records[2]["userIdentity"]["n"] = float("nan")
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)

    # WHEN the batch flows through the consumer and the aggregator
    assert consumer.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context) == {"batchItemFailures": []}

    # THEN every line in raw/ and quarantine/ is strict JSON (a strict parser reads it)
    written = {key: gzip.decompress(stack.read(key)).splitlines() for key in stack.keys("")}
    strict = {key: [orjson.loads(line) for line in lines] for key, lines in written.items()}
    stored = {line["event_id"] for key, lines in strict.items() if key.startswith("raw/") for line in lines}
    assert stored == {record["eventID"] for index, record in enumerate(records) if index != 2}
    # AND the record is in quarantine with the reason, kept as its JSON text
    (entry,) = [line for key, lines in strict.items() if key.startswith("quarantine/") for line in lines]
    assert str(entry["reason"]).startswith("userIdentity is not strict JSON: Out of range float values")
    assert entry["record_format"] == "json-text"
    assert json.loads(entry["record"])["eventID"] == records[2]["eventID"]
    assert '"n":NaN' in entry["record"]
